"""The `memory` study in quick mode: files, schema, determinism, and verdicts that follow the data."""

import pandas as pd
import pytest

from studies import load, run
from studies._claims import FAILED, PASSED

EXACT = {"revolve-forward-steps-exact", "revolve-stored-states", "revolve-recomputation-counted"}


@pytest.fixture(scope="module")
def quick():
    return run("memory", quick=True, seed=0, workers=1)


def test_quick_run_has_every_claim_and_decides_the_exact_ones(quick):
    table, claims = quick
    assert len(claims) == 13 and claims["id"].is_unique
    for cid in EXACT:
        assert claims.loc[claims["id"] == cid, "verdict"].item() == PASSED, cid
    for part in ("plain-circuit", "plain-net", "revolve-net", "revolve-circuit", "sqrt-time"):
        assert (table["part"] == part).any(), part


def test_counts_repeat_exactly_and_memory_to_a_kib():
    # the counts and sizes repeat exactly; tracemalloc's peaks also count the interpreter's own
    # small objects, which vary by some hundred bytes between runs (the claims rest on
    # differences of 10^4 bytes and more: the study's reproducibility note says so). One cell of
    # each part, run twice in this process: a hidden global RNG or state kept between runs shows.
    study = load("memory")
    firsts = {}
    for params in study.grid(True):
        firsts.setdefault(params["part"], params)
    assert len(firsts) >= 5
    for params in firsts.values():
        a, b = study.cell(params, 0), study.cell(params, 0)
        mem = [c for c in a.columns if c.startswith("mem_")]
        keep = [c for c in a.columns if not c.startswith("wall") and c not in mem]
        pd.testing.assert_frame_equal(a[keep], b[keep], check_exact=True)
        diff = (a[mem] - b[mem]).abs().max().max() if mem else 0
        assert diff <= 1024, (params, diff)


def _verdict(table: pd.DataFrame, cid: str) -> str:
    c = load("memory").claims(table, False)
    return c.loc[c["id"] == cid, "verdict"].item()


def test_doctored_tables_flip_the_verdicts(quick):
    t0 = quick[0]
    t = t0.copy()
    i = t.index[t["part"] == "revolve-net"][0]
    t.loc[i, "layer_advances"] += 1
    assert _verdict(t, "revolve-forward-steps-exact") == FAILED
    t = t0.copy()
    t.loc[i, "stored_max"] = t.loc[i, "s"] + 1
    assert _verdict(t, "revolve-stored-states") == FAILED
    t = t0.copy()
    j = t.index[t["part"] == "revolve-circuit"][0]
    t.loc[j, "counted_forward"] += 1
    assert _verdict(t, "revolve-recomputation-counted") == FAILED
    # memory that does not grow with N fails the linear claim; memory that does fails the flat one
    t = t0.copy()
    pc = t["part"] == "plain-circuit"
    t.loc[pc, "mem_grad"] = 1e6
    t.loc[pc, "mem_forward"] = t.loc[pc, "N"] * 100.0
    assert _verdict(t, "grad-memory-linear-in-n") == FAILED
    assert _verdict(t, "forward-memory-flat-in-n") == FAILED


@pytest.mark.parametrize("part", ["plain-circuit", "plain-net", "revolve-net", "revolve-circuit",
                                  "sqrt-time"])
def test_missing_data_fails_claims_but_never_drops_them(quick, part):
    t = quick[0][quick[0]["part"] != part]
    c = load("memory").claims(t, False)
    assert len(c) == 13 and (c["verdict"] == FAILED).any()
