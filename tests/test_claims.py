"""The verdict rule of the claims table and the re-measurement of inconclusive timing claims."""

from __future__ import annotations

import concurrent.futures as cf
import math

import numpy as np
import pandas as pd
import pytest

from studies._claims import (
    CLAIM_COLUMNS,
    FAILED,
    INCONCLUSIVE,
    PASSED,
    QUICK_UNDECIDABLE,
    claim,
    claims_table,
    interval_reason,
    interval_verdict,
)
from studies._runner import QUICK_REMEASURE_BUDGET_S, run_study
from studies._seeds import generator
from studies._study import Study

INF = math.inf
NAN = math.nan


# --- interval_verdict at its boundaries ---------------------------------------------------------
@pytest.mark.parametrize("lo, hi, expected", [
    (0.95, 1.05, PASSED),     # strictly inside
    (0.90, 1.10, PASSED),     # equal to the tolerance: closed bounds
    (0.90, 0.90, PASSED),     # a point on the lower bound
    (1.10, 1.10, PASSED),     # a point on the upper bound
    (0.85, 1.00, INCONCLUSIVE),  # straddles the lower bound
    (1.00, 1.20, INCONCLUSIVE),  # straddles the upper bound
    (0.50, 1.50, INCONCLUSIVE),  # wider than the tolerance
    (0.50, 0.90, INCONCLUSIVE),  # touches the lower bound from outside
    (1.10, 1.50, INCONCLUSIVE),  # touches the upper bound from outside
    (0.50, np.nextafter(0.9, 0), FAILED),  # just below
    (np.nextafter(1.1, 2), 1.5, FAILED),   # just above
    (1.2, 1.3, FAILED),
    (-5.0, -4.0, FAILED),
])
def test_interval_verdict_boundaries(lo, hi, expected):
    assert interval_verdict(lo, hi, 0.9, 1.1) == expected


def test_interval_verdict_one_sided_and_missing():
    assert interval_verdict(2.0, 3.0, -INF, 3.0) == PASSED
    assert interval_verdict(2.0, 3.5, -INF, 3.0) == INCONCLUSIVE
    assert interval_verdict(3.5, 4.0, -INF, 3.0) == FAILED
    assert interval_verdict(1e300, 1e301, 0.0, INF) == PASSED
    assert interval_verdict(-1.0, 1.0, 0.0, INF) == INCONCLUSIVE
    for lo, hi in [(NAN, 1.0), (0.0, NAN), (None, 1.0), (0.0, INF), (-INF, 0.0), ("x", 1.0)]:
        assert interval_verdict(lo, hi, -INF, INF) == FAILED
    for tol in [(NAN, 1.0), (0.0, None), (INF, INF), (-INF, -INF)]:
        assert interval_verdict(0.5, 0.6, *tol) == FAILED
    assert interval_verdict(1.0, 0.5, 0.0, 2.0) == FAILED  # an empty interval decides nothing
    with pytest.raises(ValueError, match="tolerance .* is empty"):
        interval_verdict(0.5, 0.6, 1.0, 0.0)


def test_interval_reasons_say_which_bound():
    assert interval_reason(0.95, 1.05, 0.9, 1.1) == ""
    assert interval_reason(0.98, 1.25, 0.9, 1.1) == "95% CI [0.98, 1.25] straddles the upper bound 1.1"
    assert interval_reason(0.8, 1.0, 0.9, 1.1) == "95% CI [0.8, 1] straddles the lower bound 0.9"
    assert "wider than the tolerance [0.9, 1.1]" in interval_reason(0.5, 1.5, 0.9, 1.1)
    assert interval_reason(1.2, 1.3, 0.9, 1.1) == "95% CI [1.2, 1.3] lies above the upper bound 1.1"
    assert interval_reason(0.2, 0.3, 0.9, 1.1) == "95% CI [0.2, 0.3] lies below the lower bound 0.9"
    assert "missing or not finite" in interval_reason(NAN, 1.0, 0.9, 1.1)
    assert interval_reason(0.2, 0.3, 0.9, 1.1, name="range over seeds").startswith("range over seeds")


# --- claim(): the same rule, and the boolean form -----------------------------------------------
def _one(**kw) -> dict:
    return claim("c", "w", "m", "e", id="c", **kw)


def test_claim_interval_verdicts_and_reasons():
    assert _one(interval=(0.95, 1.05), tolerance=(0.9, 1.1))["verdict"] == PASSED
    assert _one(interval=(0.95, 1.05), tolerance=(0.9, 1.1))["reason"] == ""
    row = _one(interval=(0.98, 1.25), tolerance=(0.9, 1.1))
    assert row["verdict"] == INCONCLUSIVE and "straddles the upper bound 1.1" in row["reason"]
    row = _one(interval=(1.2, 1.3), tolerance=(0.9, 1.1))
    assert row["verdict"] == FAILED and "lies above" in row["reason"]
    assert _one(interval=(NAN, NAN), tolerance=(0.9, 1.1))["verdict"] == FAILED
    row = _one(interval=(1.2, 1.3), tolerance=(0.9, 1.1), reason="custom\nwords")
    assert row["reason"] == "custom words"  # one line


@pytest.mark.parametrize("holds, expected", [
    (True, PASSED), (np.bool_(True), PASSED), (False, FAILED), (np.bool_(False), FAILED),
    (None, FAILED), (NAN, FAILED), (1, FAILED), ("yes", FAILED),
    (PASSED, PASSED), (FAILED, FAILED), (INCONCLUSIVE, INCONCLUSIVE),
])
def test_claim_holds(holds, expected):
    row = _one(holds=holds)
    assert row["verdict"] == expected
    assert (row["reason"] == "") == (expected == PASSED)


def test_claim_arguments_are_checked():
    with pytest.raises(TypeError, match="exactly one"):
        claim("c", "w", "m", "e", id="c")
    with pytest.raises(TypeError, match="exactly one"):
        claim("c", "w", "m", "e", True, id="c", interval=(0, 1), tolerance=(0, 1))
    with pytest.raises(TypeError, match="needs tolerance"):
        claim("c", "w", "m", "e", id="c", interval=(0, 1))
    with pytest.raises(TypeError, match="id"):
        claim("c", "w", "m", "e", True)  # every claim has an id
    for bad in ("Has-Caps", "under_score", "-lead", "trail-", "two--dashes", "", "a b", 5, None):
        with pytest.raises(ValueError, match="kebab-case"):
            claim("c", "w", "m", "e", True, id=bad)


def test_quick_undecidable_reads_inconclusive_unless_data_are_missing():
    for kw in ({"holds": False}, {"holds": True}, {"interval": (5.0, 6.0), "tolerance": (0, 1)}):
        row = _one(quick_undecidable=True, **kw)
        assert row["verdict"] == INCONCLUSIVE and row["reason"] == QUICK_UNDECIDABLE
    assert _one(quick_undecidable=True, holds=None)["verdict"] == FAILED
    assert _one(quick_undecidable=True, interval=(NAN, 1.0), tolerance=(0, 1))["verdict"] == FAILED
    assert _one(quick_undecidable=False, holds=False)["verdict"] == FAILED


def test_claims_table_schema_ids_and_mode():
    rows = [claim("a", "w", "m", "e", True, id="first"),
            claim("b", "w", "m", "e", id="second", interval=(2, 3), tolerance=(0, 1))]
    t = claims_table("toy", rows, quick=True)
    assert list(t.columns) == CLAIM_COLUMNS
    assert t["id"].tolist() == ["first", "second"] and set(t["mode"]) == {"quick"}
    assert t["verdict"].tolist() == [PASSED, FAILED] and t["reason"].iloc[0] == ""
    with pytest.raises(ValueError, match="claim 2 .'b'. has no id"):
        claims_table("toy", [rows[0], {**rows[1], "id": None}], quick=False)
    with pytest.raises(ValueError, match="'first' is used twice"):
        claims_table("toy", rows + [claim("c", "w", "m", "e", True, id="first")], quick=False)


# --- a doctored table flips a claim through a study's claims function ---------------------------
def _mean_ci(x: np.ndarray) -> tuple[float, float]:
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))
    return x.mean() - half, x.mean() + half


def _toy_claims(table: pd.DataFrame, quick: bool) -> pd.DataFrame:
    lo, hi = _mean_ci(table["wall_s"].to_numpy()) if len(table) > 1 else (NAN, NAN)
    return claims_table("toy", [claim("time per call is 1 s", "nowhere", f"[{lo:.3g}, {hi:.3g}]",
                                      "in [0.9, 1.1]", id="time-is-one", interval=(lo, hi),
                                      tolerance=(0.9, 1.1))], quick)


def test_doctored_tables_flip_each_verdict():
    verdict = lambda x: _toy_claims(pd.DataFrame({"wall_s": x}), False)["verdict"].iloc[0]  # noqa: E731
    assert verdict([1.0, 1.01, 0.99, 1.0]) == PASSED
    assert verdict([2.0, 2.01, 1.99, 2.0]) == FAILED
    assert verdict([0.7, 1.3, 0.8, 1.2]) == INCONCLUSIVE
    assert verdict([1.0]) == FAILED  # no interval from one sample: missing, not dropped


# --- re-measurement of an inconclusive timing claim ---------------------------------------------
def _toy_cell(params: dict, seed: int) -> pd.DataFrame:
    # stands for a timing: samples of mean 1 s and spread 0.2 s, drawn per (cell, attempt)
    rng = generator(seed, "toy-timing", params["i"], params["attempt"])
    return pd.DataFrame({"i": params["i"], "wall_s": 1.0 + 0.2 * rng.standard_normal(params["reps"])})


def _timed_toy(budget: float, remeasure=True) -> Study:
    return Study(
        name="toy", title="toy", where="nowhere", timed=True, remeasure_budget_s=budget,
        grid=lambda quick: [{"i": i, "reps": 2, "attempt": 0} for i in range(2)],
        cell=_toy_cell, aggregate=lambda raw, quick: raw, claims=_toy_claims,
        plot=lambda table, fig: None,
        remeasure=(lambda params, attempt, ids: {**params, "reps": 25, "attempt": attempt})
        if remeasure is True else remeasure)


def _run_toy(study: Study, quick: bool = False):
    with cf.ThreadPoolExecutor(2) as ex:
        return run_study(study, quick=quick, seed=0, executor=ex, progress=False)


def test_inconclusive_timing_claim_is_remeasured_and_pooled():
    first = _run_toy(_timed_toy(budget=0.0))
    assert first.claims["verdict"].tolist() == [INCONCLUSIVE]  # 4 samples: the CI straddles
    assert first.meta["remeasure"]["attempts"] == 0 and len(first.table) == 4
    result = _run_toy(_timed_toy(budget=60.0))
    r = result.meta["remeasure"]
    assert result.claims["verdict"].tolist() == [PASSED]
    assert r["attempts"] >= 1 and r["budget_s"] == 60.0 and 0 <= r["used_s"] <= 60.0
    assert r["verdicts_before"][INCONCLUSIVE] == 1 and r["verdicts_after"][PASSED] == 1
    # the old rows are kept and pooled with the new ones
    assert len(result.table) == 4 + 50 * r["attempts"]
    pd.testing.assert_frame_equal(result.table.head(4), first.table)
    # deterministic: the same run gives the same pooled samples
    pd.testing.assert_frame_equal(_run_toy(_timed_toy(budget=60.0)).table, result.table)


def test_remeasure_stops_when_no_cell_asks_for_more():
    result = _run_toy(_timed_toy(budget=60.0, remeasure=lambda params, attempt, ids: None))
    assert result.claims["verdict"].tolist() == [INCONCLUSIVE]
    assert result.meta["remeasure"]["attempts"] == 0


def test_untimed_study_is_never_remeasured():
    study = _timed_toy(budget=60.0)
    untimed = Study(**{**study.__dict__, "timed": False})
    result = _run_toy(untimed)
    assert result.claims["verdict"].tolist() == [INCONCLUSIVE] and "remeasure" not in result.meta


def test_quick_mode_caps_the_budget_and_skips_undecidable_claims():
    result = _run_toy(_timed_toy(budget=600.0), quick=True)
    assert result.meta["remeasure"]["budget_s"] == QUICK_REMEASURE_BUDGET_S
    assert result.claims["verdict"].tolist() == [PASSED]  # the path runs in quick mode too

    def undecidable(table, quick):
        return claims_table("toy", [claim("c", "w", "m", "e", False, id="c",
                                          quick_undecidable=quick)], quick)

    study = Study(**{**_timed_toy(budget=600.0).__dict__, "claims": undecidable})
    result = _run_toy(study, quick=True)
    assert result.claims["verdict"].tolist() == [INCONCLUSIVE]
    assert result.meta["remeasure"]["attempts"] == 0  # more repetitions cannot decide it
