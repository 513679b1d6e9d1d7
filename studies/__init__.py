"""testbed's studies: each measures claims of the theory (docs/theory.md) into tables, a plot and claims.

    python -m studies NAME [NAME ...] [--quick] [--seed S] [--workers K] [--scheduler ADDRESS]
                      [--out DIR]
    python -m studies all [...]          # every registered study, in registry order
    python -m studies list               # the registered names

writes, into the results folder OUT (`--out`; by default results/ in full mode and results-quick/
with --quick), NAME.csv (the main table), NAME.md (claims, summary, table, figures), NAME.png (the
plot) and NAME-<suffix>.png (its other figures, if any), NAME.claims.csv, NAME.summary.csv (if
any), NAME.json (command, mode, timings, environment, figure files), regenerates OUT/README.md, and
logs its progress to OUT/run.log (the command, each finished cell, each study's closing line,
warnings and errors, stamped with the seconds since the start; each run replaces the log, and it
is written as the run goes, so `tail -f OUT/run.log` follows a long run). The closing line of each
study on the terminal names every file written. OUT must be a new folder, an empty one, or one an
earlier run wrote (it holds the marker `.testbed-results`); any other folder is refused, so a run
never replaces a file it did not write, and the log too is written only there. A results folder
holds one mode: the marker records it (`mode: full` or `mode: quick`), and a run of the other
mode is refused, so quick-mode tables never replace full-mode ones. (A marker without that line,
as written before it was recorded, takes full runs as before and refuses quick runs when a NAME.json
there records a full-mode run.) From Python, without writing anything:

    from studies import run
    table, claims = run("variance", quick=True, seed=0)

Adding a study
--------------
1. Write `studies/NAME.py` ending in `STUDY = Study(...)` (see `studies._study`):

   - `grid(quick) -> list[dict]`: the independent cells, each a dict of JSON-able parameters. Quick
     mode is a smaller grid through the same code path.
   - `cell(params, seed) -> DataFrame`: a module-level function (it is pickled to worker processes
     or a Dask cluster). Draw every random number from `studies._seeds.generator(seed, *key)` with
     a key naming the replicate (e.g. the config and the replicate index), never global state.
     Columns whose names start with `wall` hold wall times; all other columns must be identical
     between two runs with the same seed (the tests check).
   - `aggregate(raw, quick) -> DataFrame`: the concatenated cell frames (grid order) -> main table.
   - `claims(table, quick) -> DataFrame`: a list of claim builders' rows (`studies._builders`:
     `interval`, `slope`, `line_slope`, `worst_of`, `exact`, `agreement`, `at_most`, ...) passed
     to `claims_table(NAME, rows, quick)`: one row per claim with columns study, id, claim,
     where, measured, expected, verdict, reason, mode. Each builder takes the claim's short
     kebab-case `id` (unique within the study; the README shows `NAME.id`), its text, where it
     is stated, the rows or the figures read off them, and the tolerance; it computes the
     interval, applies the one verdict rule (`studies._claims.interval_verdict`: PASSED /
     FAILED / INCONCLUSIVE from a 95% interval against the tolerance; an exact or logical claim
     holds or not) and writes the `expected` text from the tolerance, so a tolerance is typed
     once. Fits and t-quantiles come from `studies._fits`, figure styling from
     `studies._plots`. A claim that quick mode is too small to decide passes `quick=quick`
     (INCONCLUSIVE in quick mode, never FAILED). The verdict must be computed from `table`
     alone, so that a doctored table flips it; a claim whose data is missing is FAILED, never
     left out.
   - `plot(table, fig)`: draw on the given matplotlib Figure (Agg; set its size if needed), at most
     four panels. A study with more to show splits its panels by claim group into more figures:
     optional `figures={"suffix": plot_suffix, ...}`, functions like `plot`, each written as
     NAME-<suffix>.png and shown below NAME.png in NAME.md and the results README.
   - optional `summarise(table) -> DataFrame`: a short table for NAME.md and the README.
   - `timed=True` if claims rest on wall-clock times (the determinism test then compares only
     the non-wall columns of the tables, not the claims); then optionally
     `remeasure(params, attempt, inconclusive) -> dict | None` (`inconclusive`: the frozenset of
     the ids of the claims still INCONCLUSIVE, so that only the cells they rest on are re-run)
     and `remeasure_budget_s`: an INCONCLUSIVE claim
     makes the runner re-run the cells with the params `remeasure` returns (more repetitions),
     pool the new rows with the old, aggregate and claim again, within the budget (capped at a
     few seconds in quick mode; `studies._runner.run_study`).
   - optional `reproducibility`: which columns can differ in the last bits between machines or
     BLAS builds, and why (printed in the results README).
2. Add one line to `REGISTRY` below: `"NAME": "studies.NAME"`.
3. Test it in --quick mode: `tests/test_studies.py` shows the pattern (list the study and its
   required columns in REQUIRED_COLUMNS there, or in a test file of its own as
   `tests/test_studies_engine.py` does): files written, schema, determinism (each cell run
   twice; one study through a process pool and a local Dask cluster), doctored tables flipping
   verdicts, missing data -> FAILED.

Theory the studies share lives in `studies.meanfield` (the chained variance formula, mean-field
recursion, chi_1, Gauss-Hermite expectations).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from ._study import Study

# name -> module defining STUDY; order is the order of `python -m studies all` and of the README
REGISTRY: dict[str, str] = {
    "complexity": "studies.complexity",
    "hvp": "studies.hvp",
    "fd_step": "studies.fd_step",
    "variance": "studies.variance",
    "gradients": "studies.gradients",
    "symmetry": "studies.symmetry",
    "lemmas": "studies.lemmas",
    "curvature": "studies.curvature",
    "memory": "studies.memory",
}


def load(name: str) -> Study:
    """The Study registered under `name` (KeyError if there is none), imported only now."""
    return importlib.import_module(REGISTRY[name]).STUDY


def run(name: str, quick: bool = False, seed: int = 0, workers: int | None = None,
        scheduler: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run one study and return (its main table, its claims table); nothing is written."""
    from ._runner import make_executor, run_study

    with make_executor(workers, scheduler) as executor:
        result = run_study(load(name), quick=quick, seed=seed, executor=executor)
    return result.table, result.claims
