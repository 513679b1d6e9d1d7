"""`python -m studies ...`: see `studies` (the package docstring) and `studies._cli`."""

from studies._cli import main

if __name__ == "__main__":  # spawned worker processes import this module as __mp_main__
    raise SystemExit(main())
