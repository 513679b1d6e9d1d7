"""What a study is: a grid of independent cells, how to aggregate them, its claims and its plot.

A study module defines one `STUDY = Study(...)`. The runner calls, in order:

    params = grid(quick)                    # list of JSON-able dicts, one per cell, fixed order
    rows_i = cell(params_i, seed)           # one DataFrame per cell, run on any executor
    table  = aggregate(concat(rows), quick) # the main table, written to results/NAME.csv
    claims = claims(table, quick)           # one row per claim (see studies._claims)
    # a timed study with an INCONCLUSIVE claim and a `remeasure`: re-run cells with more
    # repetitions, pool the new raw rows with the old ones, aggregate and claim again, while
    # claims stay inconclusive and `remeasure_budget_s` lasts (see studies._runner.run_study)
    summary = summarise(table)              # optional short table for NAME.md and the README
    plot(table, fig)                        # draws NAME.png on a matplotlib Figure
    figures[suffix](table, fig)             # optional: each draws NAME-<suffix>.png on its own

`cell` must be a module-level function (it is pickled to worker processes or a Dask cluster) and
must draw every random number from `studies._seeds.generator(seed, ...)`, so that a cell's numbers
depend only on (seed, its parameters), never on the executor, the worker or the order of cells.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

# a figure's suffix goes into a file name (NAME-<suffix>.png) and a markdown link: plain words only
FIGURE_SUFFIX = re.compile(r"[a-z0-9]+(?:[_-][a-z0-9]+)*")


@dataclass(frozen=True)
class Study:
    """One study: see the module docstring for the order the runner calls these in."""

    name: str
    title: str
    where: str  # the section of docs/theory.md (or the paper) the study measures
    grid: Callable[[bool], list[dict]]
    cell: Callable[[dict, int], pd.DataFrame]
    aggregate: Callable[[pd.DataFrame, bool], pd.DataFrame]
    claims: Callable[[pd.DataFrame, bool], pd.DataFrame]
    plot: Callable[..., None]
    summarise: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    notes: str = ""  # a paragraph for the README: setup, sizes, what to read off the plot
    # True when claims rest on wall-clock times: then only the tables' non-wall columns are
    # reproducible, and the determinism test skips the claims table
    timed: bool = False
    # Re-measurement of an inconclusive timing claim (timed studies only). remeasure(params,
    # attempt, inconclusive) -> the params of one more measurement of that cell (attempt = 1, 2,
    # ...: e.g. more repetitions, and the attempt in the params so that the cell draws its own
    # seeds), or None when this cell needs none; `inconclusive` is the frozenset of the ids of the
    # claims that more data could decide. The new cells' rows are appended to the raw rows, so `aggregate`
    # must pool rows that measure the same point (group by the point, not by the cell).
    remeasure: Callable[[dict, int, frozenset[str]], dict | None] | None = None
    remeasure_budget_s: float = 0.0  # wall seconds re-measurement may take in all, per run
    # alone(params) -> True for a cell that must run with no other cell beside it (timed studies):
    # a timing whose premise is the last-level cache, which the cores share, and which a neighbour
    # streaming through DRAM evicts. The runner runs these one after another once the rest are done.
    alone: Callable[[dict], bool] | None = None
    # Which columns can differ in the last bits between machines or BLAS builds, and why: shown in
    # the results README's reproducibility section ("" = nothing beyond the wall-time columns).
    reproducibility: str = ""
    # More figures, each drawn like `plot` on a Figure of its own and written as NAME-<suffix>.png
    # below NAME.png (in this order): a study whose panels exceed a figure's four splits them by
    # claim group. `plot` stays the main figure, so the suffix "" is not allowed here.
    figures: dict[str, Callable[..., None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for suffix, draw in self.figures.items():
            if not isinstance(suffix, str) or not FIGURE_SUFFIX.fullmatch(suffix):
                raise ValueError(
                    f"study {self.name!r}: figure suffix {suffix!r} must be lower-case words joined "
                    "by '-' or '_' (e.g. 'hessian'); the main figure is `plot`, not figures[\"\"]")
            if not callable(draw):
                raise TypeError(f"study {self.name!r}: figures[{suffix!r}] must be a function "
                                f"(table, fig) -> None, got {type(draw).__name__}")


@dataclass
class StudyResult:
    """What a run of one study produced (tables are pandas DataFrames)."""

    study: Study
    table: pd.DataFrame
    claims: pd.DataFrame
    summary: pd.DataFrame | None
    meta: dict = field(default_factory=dict)
