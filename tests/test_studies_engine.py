"""The engine's studies (complexity, hvp, fd_step) in --quick mode: files, table schemas, claims
computed from the data (doctored tables flip verdicts), determinism of every non-wall column, and
the helpers the studies measure with (network op counts, finite differences, third derivatives).

One quick run of the three studies on a two-process pool (about 30 s on 2 cores) feeds every test.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import testbed
from studies import REGISTRY, complexity, fd_step, hvp, load
from studies._claims import CLAIM_COLUMNS, FAILED, PASSED
from studies._runner import make_executor, run_study
from studies._writer import write_study

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

NAMES = ("complexity", "hvp", "fd_step")
REQUIRED_COLUMNS = {
    "complexity": ["kind", "sweep", "family", "N_nominal", "l_nominal", "N", "l", "depth",
                   "executor", "width", "batch", "fit_grad", "fit_fd", "ops_forward", "ops_grad",
                   "ops_jvp", "ops_hvp", "ops_fd_forward", "ops_fd_central", "muldiv_forward",
                   "muldiv_grad", "jax_agrees", "wall_build", "wall_forward", "wall_grad",
                   "wall_jvp", "wall_grad_circuit", "wall_hvp", "wall_fd_forward",
                   "wall_fd_central", "wall_jax_compile", "wall_jax_grad"],
    "hvp": ["part", "family", "N_nominal", "N", "l", "depth", "width", "batch", "executor",
            "grad_circuit_executor", "fit", "fit_l", "fit_N", "l_sweep", "N_sweep",
            "ops_forward", "ops_grad", "ops_hvp", "ops_hessian", "rop_matches_jax",
            "wall_forward", "wall_grad", "wall_grad_circuit", "wall_hvp", "wall_hessian",
            "wall_jax_hessian", "wall_jax_hessian_compile", "wall_rop_hvp", "wall_jax_hvp",
            "wall_jax_hvp_compile"],
    "fd_step": ["circuit", "N", "point", "i", "scheme", "h", "err", "abs_f", "abs_g", "abs_f2",
                "abs_f3", "h_theory", "err_theory"],
}
N_CLAIMS = {"complexity": 14, "hvp": 7, "fd_step": 8}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The three studies, quick, through one process pool: (folder, {name: StudyResult})."""
    out = tmp_path_factory.mktemp("engine_studies")
    results = {}
    with make_executor(workers=2) as ex:
        for name in NAMES:
            result = run_study(load(name), quick=True, seed=0, executor=ex, progress=False)
            result.meta["command"] = f"python -m studies {name} --quick --seed 0"
            write_study(result, out)
            results[name] = result
    return out, results


def _table(quick, name: str) -> pd.DataFrame:
    return pd.read_csv(quick[0] / f"{name}.csv")


def _verdict(claims: pd.DataFrame, contains: str) -> str:
    rows = claims[claims["claim"].str.contains(contains, regex=False)]
    assert len(rows) == 1, contains
    return rows["verdict"].iloc[0]


# --- files and schemas ----------------------------------------------------------------------------
def test_registered_before_the_other_studies():
    assert list(REGISTRY)[:3] == list(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_files_and_schema(quick, name):
    out, _ = quick
    for suffix in (".csv", ".md", ".png", ".claims.csv", ".json", ".summary.csv"):
        assert (out / f"{name}{suffix}").stat().st_size > 0
    assert json.loads((out / f"{name}.json").read_text())["quick"] is True
    table = _table(quick, name)
    assert len(table) > 0
    assert not set(REQUIRED_COLUMNS[name]) - set(table.columns)
    for col in table.columns:  # wall columns hold seconds: positive numbers where measured
        if col.startswith("wall"):
            assert (table[col].dropna() > 0).all(), col


@pytest.mark.parametrize("name", NAMES)
def test_claims_schema(quick, name):
    claims = pd.read_csv(quick[0] / f"{name}.claims.csv", dtype=str)
    assert list(claims.columns) == CLAIM_COLUMNS
    assert len(claims) == N_CLAIMS[name]
    assert set(claims["verdict"]) <= {PASSED, FAILED}
    assert (claims["mode"] == "quick").all() and (claims["study"] == name).all()
    assert claims[["claim", "where", "measured", "expected"]].notna().all().all()


def test_exact_counts_hold_in_quick_mode(quick):
    """The machine-independent claims hold at any size; the timing ones need the full grid."""
    c = pd.read_csv(quick[0] / "complexity.claims.csv", dtype=str)
    for key in ("circuits: grad ops / forward ops", "Baur-Strassen", "circuits: finite-difference",
                "networks: grad ops", "networks: finite-difference"):
        assert _verdict(c, key) == PASSED
    h = pd.read_csv(quick[0] / "hvp.claims.csv", dtype=str)
    for key in ("hvp ops / forward ops", "exactly l x hvp ops", "equals jax.jit"):
        assert _verdict(h, key) == PASSED


# --- determinism: a cell recomputed here (another process) gives the same non-wall columns --------
def _same_rows(fresh: pd.DataFrame, table: pd.DataFrame, keys: list[str]) -> None:
    for _, row in fresh.iterrows():
        match = table
        for k in keys:
            match = match[match[k].isna()] if pd.isna(row[k]) else match[match[k] == row[k]]
        assert len(match) == 1, dict(row[keys])
        for col in fresh.columns:
            if col.startswith("wall"):
                continue
            a, b = row[col], match[col].iloc[0]
            assert (pd.isna(a) and pd.isna(b)) or a == b or str(a) == str(b), (col, a, b)


def test_complexity_cells_are_deterministic(quick):
    grid = complexity.grid(True)
    picks = [p for p in grid if p["kind"] == "circuit" and p["N"] == 100 and not p["jax"]][:1]
    picks += [p for p in grid if p["kind"] == "rational"][:1]
    picks += [p for p in grid if p["kind"] == "mlp" and p["fd"]][:1]
    fresh = complexity.aggregate(pd.concat([complexity.cell(p, 0) for p in picks]), True)
    _same_rows(fresh, quick[1]["complexity"].table,
               ["kind", "sweep", "family", "N_nominal", "l_nominal", "width", "batch"])


def test_hvp_cells_are_deterministic(quick):
    grid = hvp.grid(True)
    picks = [p for p in grid if p["part"] == "hvp"][:1]
    picks += [p for p in grid if p["part"] == "hessian" and not p["jax"]][:1]
    picks += [p for p in grid if p["part"] == "network"][:1]
    fresh = hvp.aggregate(pd.concat([hvp.cell(p, 0) for p in picks]), True)
    _same_rows(fresh, quick[1]["hvp"].table, ["part", "family", "N_nominal", "l", "width"])


def test_fd_step_is_deterministic(quick):
    raw = pd.concat([fd_step.cell(p, 0) for p in fd_step.grid(True)], ignore_index=True)
    pd.testing.assert_frame_equal(fd_step.aggregate(raw, True), quick[1]["fd_step"].table,
                                  check_exact=True)


# --- verdicts come from the data: doctored tables -------------------------------------------------
def test_complexity_claims_follow_the_data(quick):
    study, t0 = load("complexity"), _table(quick, "complexity")
    t = t0.copy()
    i = t.index[t["kind"] == "circuit"][0]
    t.loc[i, "ops_grad"] = 6 * t.loc[i, "ops_forward"]
    assert _verdict(study.claims(t, True), "circuits: grad ops / forward ops") == FAILED
    t = t0.copy()
    t.loc[i, "ops_fd_forward"] += 1
    assert _verdict(study.claims(t, True), "circuits: finite-difference ops") == FAILED
    # an ideal linear law passes, a quadratic one fails
    key = "circuits (deep): grad time grows linearly in N"
    rows = (t0["kind"] == "circuit") & (t0["sweep"] == "N") & (t0["family"] == "deep")
    t = t0.copy()
    t.loc[rows, "wall_grad"] = 1e-6 * t.loc[rows, "N"]
    assert _verdict(study.claims(t, True), key) == PASSED
    t.loc[rows, "wall_grad"] = 1e-9 * t.loc[rows, "N"] ** 2
    assert _verdict(study.claims(t, True), key) == FAILED
    # flat in l passes; growing as sqrt(l) fails
    key = "circuits (wide): grad time is independent of l"
    rows = (t0["kind"] == "circuit") & (t0["sweep"] == "l") & (t0["family"] == "wide")
    t.loc[rows, "wall_grad"] = 1e-3
    assert _verdict(study.claims(t, True), key) == PASSED
    t.loc[rows, "wall_grad"] = 1e-3 * np.sqrt(t.loc[rows, "l"])
    assert _verdict(study.claims(t, True), key) == FAILED
    key = "networks: forward-difference time grows linearly in l"
    rows = (t0["kind"] == "mlp") & (t0["sweep"] == "l")
    t.loc[rows, "wall_fd_forward"] = 1e-4 * t.loc[rows, "l"]
    assert _verdict(study.claims(t, True), key) == PASSED
    # missing data: the claim stays, FAILED
    claims = study.claims(t0[~((t0["kind"] == "circuit") & (t0["family"] == "deep"))], True)
    assert len(claims) == N_CLAIMS["complexity"]
    assert _verdict(claims, "circuits (deep): grad time grows linearly in N") == FAILED


def test_hvp_claims_follow_the_data(quick):
    study, t0 = load("hvp"), _table(quick, "hvp")
    hv, he, nw = (t0["part"] == p for p in ("hvp", "hessian", "network"))
    t = t0.copy()
    t.loc[t.index[hv][0], "ops_hvp"] = 20 * t.loc[t.index[hv][0], "ops_forward"]
    assert _verdict(study.claims(t, True), "hvp ops / forward ops") == FAILED
    key = "circuits (wide): hvp time grows linearly in N"
    rows = hv & (t0["family"] == "wide")
    t = t0.copy()
    t.loc[rows, "wall_hvp"] = 1e-6 * t.loc[rows, "N"]
    assert _verdict(study.claims(t, True), key) == PASSED
    t.loc[rows, "wall_hvp"] = 1e-9 * t.loc[rows, "N"] ** 1.5
    assert _verdict(study.claims(t, True), key) == FAILED
    t = t0.copy()
    t.loc[t.index[he][0], "ops_hessian"] += 1
    assert _verdict(study.claims(t, True), "exactly l x hvp ops") == FAILED
    key = "the full Hessian's time is O(N l)"
    t = t0.copy()
    t.loc[he, "wall_hessian"] = 1e-7 * t.loc[he, "N"] * t.loc[he, "l"]
    assert _verdict(study.claims(t, True), key) == PASSED
    t.loc[he, "wall_hessian"] = 1e-9 * t.loc[he, "N"] * t.loc[he, "l"] ** 2
    assert _verdict(study.claims(t, True), key) == FAILED
    t = t0.copy()
    t.loc[t.index[nw][0], "rop_matches_jax"] = False
    assert _verdict(study.claims(t, True), "equals jax.jit") == FAILED
    key = "the R-pass HVP costs about one gradient"
    t.loc[nw, "wall_rop_hvp"] = 2 * t.loc[nw, "wall_grad"]
    assert _verdict(study.claims(t, True), key) == PASSED
    t.loc[nw, "wall_rop_hvp"] = 5 * t.loc[nw, "wall_grad"]
    assert _verdict(study.claims(t, True), key) == FAILED


def test_fd_step_claims_follow_the_data(quick):
    study, t0 = load("fd_step"), _table(quick, "fd_step")
    eps = fd_step.EPS
    t = t0.copy()
    fwd, ctr = t["scheme"] == "forward", t["scheme"] == "central"
    t.loc[fwd, "err"] = eps / t.loc[fwd, "h"] + t.loc[fwd, "h"]  # the theory's V, unit scale
    t.loc[ctr, "err"] = eps / t.loc[ctr, "h"] + t.loc[ctr, "h"] ** 2
    assert (study.claims(t, True)["verdict"] == PASSED).all()
    t.loc[fwd, "err"] = 1e4 * eps / t.loc[fwd, "h"] + t.loc[fwd, "h"]  # optimum 100x further right
    claims = study.claims(t, True)
    assert _verdict(claims, "forward differences: the error is smallest") == FAILED
    assert _verdict(claims, "forward differences: slope -1 left") == PASSED
    t.loc[ctr, "err"] = eps / t.loc[ctr, "h"] ** 0.5 + t.loc[ctr, "h"] ** 2
    assert _verdict(study.claims(t, True), "central differences: slope -1 left") == FAILED


# --- the helpers the studies measure with ---------------------------------------------------------
def test_loglog_fit_recovers_a_power_law():
    x = np.array([1.0, 10.0, 100.0, 1000.0])
    b, lo, hi, n = complexity.loglog_fit(x, 3.0 * x**1.5)
    assert n == 4 and b == pytest.approx(1.5) and lo == pytest.approx(1.5)
    assert hi == pytest.approx(1.5)
    assert np.isnan(complexity.loglog_fit(x[:2], x[:2])[1])  # two points: no interval
    assert complexity.flat({"slope": 0.02, "lo": -0.05, "hi": 0.09})
    assert not complexity.flat({"slope": 0.0, "lo": -2.0, "hi": 2.0})  # too vague to count


def test_network_op_counts_match_the_traced_circuit():
    """N by formula = the engine's count of the network traced into scalar operations, up to the
    loss: the trace scales every squared error by 1/2 (one more op per output and example), the
    numpy loss scales their sum once."""
    rng = np.random.default_rng(0)
    for sizes, m in (((3, 4, 4, 4, 1), 2), ((2, 3, 1), 1), ((5, 5, 5, 5, 1), 3)):
        net = testbed.nn.init_network(sizes, "tanh", "xavier_normal", rng)
        x, y = rng.standard_normal((m, sizes[0])), rng.standard_normal((m, 1))
        c, _ = testbed.nn.trace_loss(net, x, y)
        assert c.size == complexity.mlp_forward_ops(sizes, m) + m * sizes[-1]
        assert complexity.mlp_grad_ops(sizes, m) <= 3 * complexity.mlp_forward_ops(sizes, m)


def test_network_finite_differences_take_l_plus_one_evaluations():
    rng = np.random.default_rng(1)
    net = testbed.nn.init_network((3, 5, 5, 1), "tanh", "xavier_normal", rng)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 1))
    before = testbed.nn.ravel_params(net).copy()
    g, evals = complexity.mlp_fd_grad(net, x, y)
    _, grads = testbed.nn.value_and_grad(net, x, y, need_dx=False)
    exact = np.concatenate([p.ravel() for W, b in zip(grads.dW, grads.db, strict=True)
                            for p in (W, b)])
    assert evals == net.n_params + 1
    # a forward difference (h ~ sqrt(eps)) is good to ~1e-8 per entry; 1e-6 leaves room for |f''|
    np.testing.assert_allclose(g, exact, atol=1e-6)
    np.testing.assert_array_equal(testbed.nn.ravel_params(net), before)  # net left untouched


def test_third_derivatives_match_differences_of_the_hessian():
    c = testbed.trace(lambda x: testbed.sin(x[0] * x[1]) + x[1] * x[1] * x[1] * testbed.exp(x[0]), 2)
    x = np.array([0.3, -0.7])
    d3 = fd_step.third_derivatives(c, x)
    h = 1e-5
    for i in range(2):
        e = np.eye(2)[i]
        fd = (testbed.hessian(c, x + h * e)[i, i] - testbed.hessian(c, x - h * e)[i, i]) / (2 * h)
        assert d3[i] == pytest.approx(fd, rel=1e-6)
