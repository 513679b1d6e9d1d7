"""The command line: `python -m studies NAME [NAME ...]|all|list [--quick] [--seed S]
[--workers K] [--scheduler ADDRESS] [--out DIR]`.

Every bad input (unknown study, invalid option, unwritable results folder, a folder that is not a
results folder, unreachable scheduler, a failing cell) ends with one line `studies: error: ...` on
stderr and exit status 2 (usage) or 1 (run), before anything in the results folder has been
replaced; a folder the run created and did not write into is removed again. `--workers` above the
cores this process may use is allowed (one `studies: warning: ...` line), since a user may want it,
but timed studies then measure the contention.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import REGISTRY

EXIT_RUN_ERROR, EXIT_USAGE = 1, 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    # argparse prints the whole usage before the error; the issue asks for one line
    def error(self, message: str):  # noqa: ANN201 (NoReturn)
        raise _UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def _folder(text: str) -> str:
    # Path("") is the current folder: an empty --out must not silently mean "here"
    if text.strip() == "":
        raise argparse.ArgumentTypeError("must name a folder, got an empty path")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also documents the options: `python -m studies --help`)."""
    p = _Parser(prog="studies", description="Run testbed's studies and write results/.")
    p.add_argument("names", nargs="+", metavar="NAME",
                   help=f"studies to run ({', '.join(REGISTRY)}), 'all', or 'list'")
    p.add_argument("--quick", action="store_true", help="smaller grids, same code (CI, tests)")
    p.add_argument("--seed", type=_seed, default=0, help="root seed (default 0)")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="worker processes (default: number of cores)")
    p.add_argument("--scheduler", default=None,
                   help="dask.distributed scheduler address: run the cells there instead")
    p.add_argument("--out", type=_folder, default="results",
                   help="results folder: new, empty, or one written by studies before (it holds "
                        "a .testbed-results marker); any other folder is refused")
    return p


def _command(name: str, quick: bool, seed: int) -> str:
    return f"python -m studies {name}" + (" --quick" if quick else "") + f" --seed {seed}"


def main(argv: list[str] | None = None) -> int:
    """Parse, validate, run; returns the exit status (errors: one line on stderr)."""
    try:
        args = build_parser().parse_args(argv)
        if args.names == ["list"]:
            print("\n".join(REGISTRY))
            return 0
        names = list(REGISTRY) if args.names == ["all"] else list(dict.fromkeys(args.names))
        for n in names:
            if n not in REGISTRY:
                raise _UsageError(f"unknown study {n!r}; known: {', '.join(REGISTRY)}, all, list")
    except _UsageError as exc:
        print(f"studies: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    from ._claims import QUICK_UNDECIDABLE
    from ._readme import write_readme
    from ._runner import RunError, make_executor, run_study, usable_cores
    from ._writer import (
        OutputError,
        figure_files,
        prepare_results_folder,
        remove_if_unused,
        remove_stale_temporaries,
        write_study,
    )

    started = time.time()
    out, created = Path(args.out), []
    cores = usable_cores()
    if args.workers is not None and args.workers > cores and args.scheduler is None:
        print(f"studies: warning: --workers {args.workers} is more than the {cores} cores this "
              f"process may use; cells will share cores and wall times will include the "
              f"contention", file=sys.stderr)
    try:
        created = prepare_results_folder(out)
        remove_stale_temporaries(out, older_than=started)
        from . import load

        studies = [load(n) for n in names]
        with make_executor(args.workers, args.scheduler) as executor:
            for study in studies:
                t0 = time.perf_counter()
                result = run_study(study, quick=args.quick, seed=args.seed, executor=executor)
                result.meta["command"] = _command(study.name, args.quick, args.seed)
                result.meta["notes"] = study.notes
                result.meta["reproducibility"] = study.reproducibility
                write_study(result, out)
                write_readme(out, list(REGISTRY))
                counts = result.claims["verdict"].value_counts()
                print(f"{study.name}: {len(result.claims)} claims"
                      f"{' (quick mode)' if args.quick else ''}: {counts.get('PASSED', 0)} passed, "
                      f"{counts.get('FAILED', 0)} failed, {counts.get('INCONCLUSIVE', 0)} "
                      f"inconclusive, {time.perf_counter() - t0:.1f} s -> "
                      f"{out / study.name}.{{csv,md}}"
                      + "".join(f", {f}" for f in figure_files(study)))
                undecidable = 0
                for row in result.claims.itertuples():
                    if row.reason == QUICK_UNDECIDABLE:
                        undecidable += 1
                    elif row.verdict != "PASSED":
                        print(f"  {row.verdict}: {row.study}.{row.id}: {row.reason}")
                if undecidable:
                    print(f"  {undecidable} INCONCLUSIVE: {QUICK_UNDECIDABLE} (full mode decides)")
    except (RunError, OutputError) as exc:
        print(f"studies: error: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    except OSError as exc:  # e.g. the disk filled up while writing: the old files are still whole
        print(f"studies: error: cannot write results to {str(args.out)!r}: {exc}",
              file=sys.stderr)
        return EXIT_RUN_ERROR
    except KeyboardInterrupt:
        print("studies: error: interrupted; results of unfinished studies left as they were",
              file=sys.stderr)
        return 130
    finally:
        remove_if_unused(out, created)  # a run that wrote nothing leaves no empty folder
    return 0
