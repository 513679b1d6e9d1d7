"""The engine's studies (complexity, hvp, fd_step) in --quick mode: files, table schemas, claims
computed from the data (doctored tables flip verdicts, in full mode's rule), determinism of every
non-wall column, a timing claim's verdict under a competing busy process, and the helpers the
studies measure with (fits, fixed inputs, network op counts, finite differences, third derivatives).

One quick run of the three studies on a two-process pool (about a minute on 2 cores) feeds most tests.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import testbed
from studies import REGISTRY, _fits, _timing, complexity, fd_step, hvp, load
from studies._claims import CLAIM_COLUMNS, FAILED, INCONCLUSIVE, PASSED, VERDICTS
from studies._runner import run_study
from studies._writer import write_study
from testbed.random_circuits import random_circuit

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

NAMES = ("complexity", "hvp", "fd_step")
REQUIRED_COLUMNS = {
    "complexity": ["kind", "sweep", "family", "N_nominal", "l_nominal", "l_max", "attempt", "N", "l",
                   "fd_evals", "depth", "executor", "width", "batch", "fit_grad", "fit_fd", "ops_forward",
                   "ops_grad", "ops_grad_dx", "ops_jvp", "ops_hvp", "ops_fd_forward",
                   "ops_fd_central", "counted_fd_forward", "counted_fd_central",
                   "counted_fd_evals", "muldiv_forward", "muldiv_grad", "jax_agrees",
                   "jax_value_agrees", "jax_jvp_agrees", "jax_hvp_agrees", "wall_build",
                   "wall_forward", "wall_grad", "wall_grad_dx", "wall_ratio_dx", "wall_jvp",
                   "fit_cache", "wall_gather", "wall_hvp", "wall_fd_forward", "wall_fd_central",
                   "wall_jax_compile", "wall_jax_grad"],
    "hvp": ["part", "sweep", "family", "N_nominal", "l_max", "attempt", "N", "l", "depth", "width",
            "batch", "executor", "fit", "fit_l", "fit_N", "ops_forward",
            "ops_grad", "ops_hvp", "ops_hessian", "counted_hvp", "counted_hessian",
            "rop_matches_jax", "jax_agrees", "jax_hvp_agrees", "wall_forward", "wall_grad",
            "wall_gather", "wall_hvp", "wall_hessian",
            "wall_jax_hessian", "wall_jax_hessian_compile", "wall_rop_hvp", "wall_jax_hvp",
            "wall_jax_hvp_compile", "wall_logratio_rop_mean", "wall_logratio_rop_sd",
            "wall_logratio_rop_n"],
    "fd_step": ["circuit", "N", "point", "i", "scheme", "h", "err", "abs_f", "abs_g", "abs_f2",
                "abs_f3", "h_theory", "err_theory"],
}
N_CLAIMS = {"complexity": 17, "hvp": 11, "fd_step": 8}
# the claims quick mode decides (counts, agreement); the others are timing claims, INCONCLUSIVE there
DECIDED_IN_QUICK = {
    "complexity": {"grad-ops-bounded", "baur-strassen", "fd-ops-counted", "net-grad-ops-bounded",
                   "net-fd-evals-counted", "jax-agrees"},
    "hvp": {"hvp-ops-bounded", "hessian-ops-counted", "jax-agrees", "rop-equals-jax"},
}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The three studies, quick, cell after cell in this process: (folder, {name: StudyResult}).
    (In-process: the JAX references compile once, not once per pool worker; the process pool and
    the Dask path are tested with the network studies and the CLI.)"""
    out = tmp_path_factory.mktemp("engine_studies")
    results = {}
    with cf.ThreadPoolExecutor(1) as ex:
        for name in NAMES:
            result = run_study(load(name), quick=True, seed=0, executor=ex, progress=False)
            result.meta["command"] = f"python -m studies {name} --quick --seed 0"
            write_study(result, out)
            results[name] = result
    return out, results


def _table(quick, name: str) -> pd.DataFrame:
    return pd.read_csv(quick[0] / f"{name}.csv")


def _verdict(claims: pd.DataFrame, key: str) -> str:
    """The verdict of the claim with id `key` (or, for studies without ids, whose text holds it)."""
    rows = claims[claims["id"] == key] if (claims["id"] == key).any() else \
        claims[claims["claim"].str.contains(key, regex=False)]
    assert len(rows) == 1, key
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
    for col in table.columns:  # timing columns hold seconds: positive numbers where measured
        if col.startswith("wall") and "logratio" not in col and "overhead" not in col:
            assert (table[col].dropna() > 0).all(), col


@pytest.mark.parametrize("name", NAMES)
def test_claims_schema(quick, name):
    claims = pd.read_csv(quick[0] / f"{name}.claims.csv", dtype=str, keep_default_na=False)
    assert list(claims.columns) == CLAIM_COLUMNS
    assert len(claims) == N_CLAIMS[name]
    assert set(claims["verdict"]) <= set(VERDICTS)
    assert (claims["mode"] == "quick").all() and (claims["study"] == name).all()
    assert (claims[["claim", "where", "measured", "expected"]] != "").all().all()
    assert claims["id"].is_unique


@pytest.mark.parametrize("name", ["complexity", "hvp"])
def test_quick_mode_decides_counts_and_leaves_timings_inconclusive(quick, name):
    """The machine-independent claims hold at any size; a timing claim is too small to decide in
    quick mode: INCONCLUSIVE, never FAILED."""
    claims = pd.read_csv(quick[0] / f"{name}.claims.csv", dtype=str, keep_default_na=False)
    for _, row in claims.iterrows():
        if row["id"] in DECIDED_IN_QUICK[name]:
            assert row["verdict"] == PASSED, (row["id"], row["measured"])
        else:
            assert row["verdict"] == INCONCLUSIVE, (row["id"], row["reason"])
    assert DECIDED_IN_QUICK[name] <= set(claims["id"])


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
    picks += [p for p in grid if p["kind"] == "circuit" and p["sweep"] == "l_fd"][1:2]
    picks += [p for p in grid if p["kind"] == "rational"][:1]
    picks += [p for p in grid if p["kind"] == "mlp" and p["sweep"] == "l"][:1]
    fresh = complexity.aggregate(pd.concat([complexity.cell(p, 0) for p in picks]), True)
    _same_rows(fresh, quick[1]["complexity"].table,
               ["kind", "sweep", "family", "N_nominal", "l_nominal", "width", "batch", "attempt"])


def test_hvp_cells_are_deterministic(quick):
    grid = hvp.grid(True)
    picks = [p for p in grid if p["part"] == "hvp"][:1]
    picks += [p for p in grid if p["part"] == "hvp_l"][1:2]
    picks += [p for p in grid if p["part"] == "hessian" and not p["jax"]][:1]
    picks += [p for p in grid if p["part"] == "hessian_fit" and not p["jax"]][:1]  # several rows
    picks += [p for p in grid if p["part"] == "network"][:1]
    fresh = hvp.aggregate(pd.concat([hvp.cell(p, 0) for p in picks]), True)
    _same_rows(fresh, quick[1]["hvp"].table, ["part", "sweep", "family", "N_nominal", "l", "width"])


def test_fd_step_is_deterministic(quick):
    raw = pd.concat([fd_step.cell(p, 0) for p in fd_step.grid(True)], ignore_index=True)
    pd.testing.assert_frame_equal(fd_step.aggregate(raw, True), quick[1]["fd_step"].table,
                                  check_exact=True)


# --- verdicts come from the data: doctored tables, judged by full mode's rule ----------------------
def test_complexity_claims_follow_the_data(quick):
    study, t0 = load("complexity"), _table(quick, "complexity")

    def verdict(t: pd.DataFrame, key: str) -> str:
        return _verdict(study.claims(t, False), key)

    t = t0.copy()
    i = t.index[t["kind"] == "circuit"][0]
    t.loc[i, "ops_grad"] = 6 * t.loc[i, "ops_forward"]
    assert verdict(t, "grad-ops-bounded") == FAILED
    t = t0.copy()
    j = t.index[t["counted_fd_forward"].notna()][0]
    assert verdict(t, "fd-ops-counted") == PASSED
    t.loc[j, "counted_fd_forward"] += 1  # one application more than (l + 1) N
    assert verdict(t, "fd-ops-counted") == FAILED
    t = t0.copy()
    j = t.index[t["counted_fd_evals"].notna()][0]
    t.loc[j, "counted_fd_evals"] -= 1
    assert verdict(t, "net-fd-evals-counted") == FAILED
    # an ideal linear law passes, a quadratic one fails, a noisy one is inconclusive
    key = "grad-linear-in-n-deep"
    rows = (t0["kind"] == "circuit") & (t0["sweep"] == "N") & (t0["family"] == "deep")
    t = t0.copy()
    t.loc[rows, "wall_grad"] = 1e-6 * t.loc[rows, "N"]
    assert verdict(t, key) == PASSED
    t.loc[rows, "wall_grad"] = 1e-9 * t.loc[rows, "N"] ** 2
    assert verdict(t, key) == FAILED
    noise = np.resize([1.0, 3.0, 0.4, 2.0], int(rows.sum()))
    t.loc[rows, "wall_grad"] = 1e-6 * t.loc[rows, "N"] * noise
    assert verdict(t, key) == INCONCLUSIVE
    # a bend the forward pass shares (grad / forward flat) is named as the cause; one it does not
    # share is not
    t.loc[rows, "wall_forward"] = 1e-7 * t.loc[rows, "N"] ** 0.8
    t.loc[rows, "wall_grad"] = 2 * t.loc[rows, "wall_forward"]
    row = study.claims(t, False).set_index("id").loc[key]
    assert row["verdict"] == FAILED and "the forward pass's time bends alike" in row["reason"]
    t.loc[rows, "wall_grad"] = 1e-9 * t.loc[rows, "N"] ** 2
    row = study.claims(t, False).set_index("id").loc[key]
    assert row["verdict"] == FAILED and "bends alike" not in row["reason"]
    # flat in l' passes; growing as sqrt(l') fails
    key = "grad-flat-in-l-wide"
    rows = (t0["kind"] == "circuit") & (t0["sweep"] == "l_grad") & (t0["family"] == "wide")
    t.loc[rows, "wall_grad"] = 1e-3
    assert verdict(t, key) == PASSED
    t.loc[rows, "wall_grad"] = 1e-3 * np.sqrt(t.loc[rows, "l"])
    assert verdict(t, key) == FAILED
    key = "net-fd-linear-in-l"
    rows = (t0["kind"] == "mlp") & (t0["sweep"] == "l")
    t.loc[rows, "wall_fd_forward"] = 1e-4 * t.loc[rows, "l"]
    assert verdict(t, key) == PASSED
    t.loc[rows, "wall_fd_forward"] = 1e-4 * t.loc[rows, "l"] ** 0.5
    assert verdict(t, key) == FAILED
    # the last step dJ/dx: the op count's ratio passes, twice the time fails
    rows = (t0["kind"] == "mlp") & (t0["sweep"] == "N")
    t.loc[rows, "wall_ratio_dx"] = t.loc[rows, "ops_grad_dx"] / t.loc[rows, "ops_grad"]
    assert verdict(t, "net-dx-step") == PASSED
    t.loc[rows, "wall_ratio_dx"] = 2.0
    assert verdict(t, "net-dx-step") == FAILED
    t = t0.copy()
    t.loc[t["jax_jvp_agrees"].notna().idxmax(), "jax_jvp_agrees"] = False
    assert verdict(t, "jax-agrees") == FAILED
    # missing data: the claim stays, FAILED
    claims = study.claims(t0[~((t0["kind"] == "circuit") & (t0["family"] == "deep"))], False)
    assert len(claims) == N_CLAIMS["complexity"]
    assert _verdict(claims, "grad-linear-in-n-deep") == FAILED


def test_hvp_claims_follow_the_data(quick):
    study, t0 = load("hvp"), _table(quick, "hvp")

    def verdict(t: pd.DataFrame, key: str) -> str:
        return _verdict(study.claims(t, False), key)

    hv, he, nw = (t0["part"] == p for p in ("hvp", "hessian", "network"))
    t = t0.copy()
    t.loc[t.index[hv][0], "ops_hvp"] = (hvp.HVP_BOUND + 1) * t.loc[t.index[hv][0], "ops_forward"]
    assert verdict(t, "hvp-ops-bounded") == FAILED
    key = "hvp-linear-in-n-wide"
    rows = hv & (t0["family"] == "wide")
    t = t0.copy()
    t.loc[rows, "wall_hvp"] = 1e-6 * t.loc[rows, "N"]
    assert verdict(t, key) == PASSED
    t.loc[rows, "wall_hvp"] = 1e-9 * t.loc[rows, "N"] ** 1.5
    assert verdict(t, key) == FAILED
    t = t0.copy()
    assert verdict(t, "hessian-ops-counted") == PASSED
    t.loc[t.index[he][0], "counted_hessian"] += 1
    assert verdict(t, "hessian-ops-counted") == FAILED
    # the Hessian: linear in l' (in N) passes; quadratic fails; linear under a large fixed cost
    # (the work does not dominate) is inconclusive, whatever the slope
    for x, sweep in (("l", he & (t0["sweep"] == "l")), ("n", he & (t0["sweep"] == "N"))):
        t = t0.copy()
        work = 1e-7 * t.loc[sweep, "N"] * t.loc[sweep, "l"]
        t.loc[sweep, "wall_hessian"] = work
        assert verdict(t, f"hessian-linear-in-{x}") == PASSED
        t.loc[sweep, "wall_hessian"] = 1e-9 * (t.loc[sweep, "N"] * t.loc[sweep, "l"]) ** 2
        assert verdict(t, f"hessian-linear-in-{x}") == FAILED
        t.loc[sweep, "wall_hessian"] = work + 10 * work.max()
        assert verdict(t, f"hessian-linear-in-{x}") == INCONCLUSIVE
    # the + l: flat passes, an input costing 3 nodes fails
    rows = t0["part"] == "hvp_l"
    t = t0.copy()
    t.loc[rows, "wall_hvp"] = 1e-3 * (1 + 0.01 * t.loc[rows, "l"] / t.loc[rows, "N"])
    assert verdict(t, "hvp-plus-l") == PASSED
    t.loc[rows, "wall_hvp"] = 1e-3 * (1 + 3 * t.loc[rows, "l"] / t.loc[rows, "N"])
    assert verdict(t, "hvp-plus-l") == FAILED
    t = t0.copy()
    t.loc[t.index[nw][0], "rop_matches_jax"] = False
    assert verdict(t, "rop-equals-jax") == FAILED
    t = t0.copy()
    t.loc[t["jax_hvp_agrees"].notna().idxmax(), "jax_hvp_agrees"] = False
    assert verdict(t, "jax-agrees") == FAILED
    key = "rop-costs-a-gradient"
    t = t0.copy()
    t.loc[nw, ["wall_logratio_rop_mean", "wall_logratio_rop_sd", "wall_logratio_rop_n"]] = \
        [np.log(2.0), 0.05, 10]
    assert verdict(t, key) == PASSED
    t.loc[nw, "wall_logratio_rop_mean"] = np.log(5.0)
    assert verdict(t, key) == FAILED
    t.loc[nw, ["wall_logratio_rop_mean", "wall_logratio_rop_sd"]] = [np.log(4.0), 0.5]
    assert verdict(t, key) == INCONCLUSIVE


def test_fd_step_claims_follow_the_data(quick):
    study, t0 = load("fd_step"), _table(quick, "fd_step")
    eps = fd_step.EPS
    t = t0.copy()
    fwd, ctr = t["scheme"] == "forward", t["scheme"] == "central"
    t.loc[fwd, "err"] = eps / t.loc[fwd, "h"] + t.loc[fwd, "h"]  # the theory's V, unit scale
    t.loc[ctr, "err"] = eps / t.loc[ctr, "h"] + t.loc[ctr, "h"] ** 2
    assert (study.claims(t, False)["verdict"] == PASSED).all()
    t.loc[fwd, "err"] = 1e4 * eps / t.loc[fwd, "h"] + t.loc[fwd, "h"]  # optimum 100x further right
    claims = study.claims(t, False)
    assert _verdict(claims, "forward differences: the error is smallest") == FAILED
    assert _verdict(claims, "forward differences: slope -1 left") == PASSED
    t.loc[ctr, "err"] = eps / t.loc[ctr, "h"] ** 0.5 + t.loc[ctr, "h"] ** 2
    assert _verdict(study.claims(t, False), "central differences: slope -1 left") == FAILED


# --- re-measurement: pooled rows, quick mode never re-measured -------------------------------------
@pytest.mark.parametrize("mod", [complexity, hvp])
def test_remeasure_plans(mod):
    """Only the cells of an inconclusive timing claim are re-measured, never in quick mode."""
    full = mod.grid(False)
    fed = set().union(*(mod.claims_fed(p) for p in full))
    assert fed  # every timing claim is fed by some cells
    assert all(mod.remeasure(p, 1, frozenset()) is None for p in full)  # nothing inconclusive
    fed = frozenset(fed)
    assert all(mod.remeasure(p, 1, fed) is None for p in mod.grid(True))  # quick: never
    again = [q for q in (mod.remeasure(p, 1, fed) for p in full) if q is not None]
    assert 0 < len(again) < len(full)
    assert all(q["attempt"] == 1 and q["budget"] > mod.FULL["budget"] for q in again)
    one = sorted(fed)[0]
    some = [p for p in full if mod.remeasure(p, 1, frozenset({one})) is not None]
    assert some and all(one in mod.claims_fed(p) for p in some)
    assert mod.STUDY.timed and mod.STUDY.remeasure_budget_s > 0


@pytest.mark.parametrize("name", ["complexity", "hvp"])
def test_every_claim_that_reads_the_timings_can_be_re_measured(quick, name):
    """A claim whose measured figure moves with the wall times is fed by cells of the full grid
    (claims_fed), so an INCONCLUSIVE reading of it is re-measured like every other."""
    mod, t = {"complexity": complexity, "hvp": hvp}[name], _table(quick, name)
    rng = np.random.default_rng(0)
    walls = [c for c in t.columns if c.startswith("wall_")]
    noisy = t.copy()
    noisy[walls] = t[walls] * np.exp(rng.normal(0.0, 0.3, size=(len(t), len(walls))))
    before = mod.claims(t, True).set_index("id")["measured"]
    after = mod.claims(noisy, True).set_index("id")["measured"]
    timed = set(before.index[before != after])
    fed = set().union(*(mod.claims_fed(p) for p in mod.grid(False)))
    assert timed and timed <= fed, f"timing claims no cell feeds: {sorted(timed - fed)}"


def test_pooled_rows_count_in_the_fits(quick):
    """A re-measured point adds rows; the fit uses all of them."""
    t0 = _table(quick, "complexity")
    rows = (t0["kind"] == "circuit") & (t0["sweep"] == "N") & (t0["family"] == "deep")
    again = t0[rows].assign(attempt=1)
    pooled = complexity.aggregate(pd.concat([t0, again], ignore_index=True), True)
    f0 = complexity._get(complexity.fits(t0), "circuit", "N", "deep", "grad")
    f1 = complexity._get(complexity.fits(pooled), "circuit", "N", "deep", "grad")
    assert f1["points"] == 2 * f0["points"]
    assert f1["slope"] == pytest.approx(f0["slope"])


# --- reproducibility: a competing busy process must not flip a timing verdict -----------------------
def _deep_grad_verdict() -> str:
    """Claim grad-linear-in-n-deep, measured small but within full mode's fit range (N >= 10^4)."""
    cells = [{"kind": "circuit", "sweep": "N", "family": "deep", "N": n, "l": 10, "l_max": 0,
              "hvp": False, "jvp": False, "fd": False, "jax": [], "jax_check": False,
              "budget": 0.2, "quick": False, "attempt": 0} for n in (10**4, 2 * 10**4, 5 * 10**4)]
    raw = pd.concat([complexity.cell(p, 0) for p in cells], ignore_index=True)
    claims = complexity.claims(complexity.aggregate(raw, False), False)
    return _verdict(claims, "grad-linear-in-n-deep")


def test_a_busy_core_makes_a_timing_claim_inconclusive_never_flips_it():
    quiet = _deep_grad_verdict()
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = _deep_grad_verdict()
    finally:
        spin.kill()
        spin.wait()
    assert {quiet, busy} != {PASSED, FAILED}, (quiet, busy)
    assert quiet == busy or INCONCLUSIVE in (quiet, busy)


# --- the helpers the studies measure with ---------------------------------------------------------
def test_loglog_fit_recovers_a_power_law():
    x = np.array([1.0, 10.0, 100.0, 1000.0])
    b, lo, hi, n = _fits.loglog_fit(x, 3.0 * x**1.5)
    assert n == 4 and b == pytest.approx(1.5) and lo == pytest.approx(1.5)
    assert hi == pytest.approx(1.5)
    assert np.isnan(_fits.loglog_fit(x[:2], x[:2])[1])  # two points: no interval
    rng = np.random.default_rng(0)
    y = 3.0 * x**1.5 * np.exp(0.1 * rng.standard_normal(4))
    b, lo, hi, _ = _fits.loglog_fit(x, y)
    assert lo < b < hi and lo < 1.5 < hi


def test_linear_fit_and_mean_interval():
    x = np.array([1.0, 2.0, 3.0, 5.0])
    a, b, lo, hi, n = _fits.linear_fit(x, 2.0 + 0.5 * x)
    assert (a, b, n) == (pytest.approx(2.0), pytest.approx(0.5), 4)
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    m, lo, hi, n = _fits.mean_interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, t_{0.975, 2} = 4.303: 2 +- 4.303 / sqrt(3)
    assert m == 2.0 and n == 3 and hi - m == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)


def test_fix_inputs_keeps_the_operations_and_the_value():
    rng = np.random.default_rng(3)
    c = random_circuit(rng, 300, 40, "wide")
    x = rng.uniform(-1, 1, 40)
    for n_free in (1, 7, 40):
        d = _timing.fix_inputs(c, n_free, x)
        assert (d.l, d.size, d.n_slots) == (n_free, c.size, c.n_slots)
        assert d(x[:n_free]) == c(x)
        np.testing.assert_array_equal(testbed.value_and_grad(d, x[:n_free])[1],
                                      testbed.value_and_grad(c, x)[1][:n_free])
    with pytest.raises(ValueError, match="n_free"):
        _timing.fix_inputs(c, 0, x)


def test_timings_pair_up_and_use_cpu_time():
    calls = {"a": lambda: sum(range(2000)), "b": lambda: sum(range(4000))}
    samples = _timing.timings(calls, budget=0.02, min_reps=3, max_reps=4)
    assert set(samples) == {"a", "b"} and all(3 <= len(s) <= 4 for s in samples.values())
    assert all((s > 0).all() for s in samples.values())
    assert _timing.CLOCK is __import__("time").process_time


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
    exact = np.concatenate([p.ravel() for W, b in zip(grads.dW[1:], grads.db[1:], strict=True)
                            for p in (W, b)])
    assert evals == net.n_params + 1
    # a forward difference (h ~ sqrt(eps)) is good to ~1e-8 per entry; 1e-6 leaves room for |f''|
    np.testing.assert_allclose(g, exact, atol=1e-6)
    np.testing.assert_array_equal(testbed.nn.ravel_params(net), before)  # net left untouched
    for n_free in (1, 17, net.n_params):  # the first l' parameters: l' + 1 evaluations
        g, evals = complexity.mlp_fd_grad(net, x, y, n_free)
        assert evals == n_free + 1
        np.testing.assert_allclose(g, exact[:n_free], atol=1e-6)  # as above
        np.testing.assert_array_equal(complexity.mlp_grad_first(net, x, y, n_free), exact[:n_free])


def test_network_grad_ops_tend_to_the_matmul_counts():
    """grad / forward ops -> 8/3 without dJ/dx and 3 with it (forward 3 matmuls; backward 3 for
    dJ/dW, 2 for dJ/da, one more for dJ/dx)."""
    assert complexity.grad_limit(False) == pytest.approx(8 / 3)
    assert complexity.grad_limit(True) == pytest.approx(3.0)
    sizes, m = complexity.net_sizes(4096), 4096  # large m: dJ/dW's 2m - 1 ~ 2m
    f = complexity.mlp_forward_ops(sizes, m)
    assert complexity.mlp_grad_ops(sizes, m) / f == pytest.approx(8 / 3, rel=1e-3)
    assert complexity.mlp_grad_ops(sizes, m, need_dx=True) / f == pytest.approx(3.0, rel=1e-3)


def test_third_derivatives_match_differences_of_the_hessian():
    c = testbed.trace(lambda x: testbed.sin(x[0] * x[1]) + x[1] * x[1] * x[1] * testbed.exp(x[0]), 2)
    x = np.array([0.3, -0.7])
    d3 = fd_step.third_derivatives(c, x)
    h = 1e-5
    for i in range(2):
        e = np.eye(2)[i]
        fd = (testbed.hessian(c, x + h * e)[i, i] - testbed.hessian(c, x - h * e)[i, i]) / (2 * h)
        assert d3[i] == pytest.approx(fd, rel=1e-6)


def _circuit_arrays(c: testbed.Circuit) -> list[np.ndarray]:
    return [np.asarray(c.l), c.op, c.a0, c.a1, c.consts, c.outputs, c.level]


@pytest.mark.parametrize("family", ["wide", "deep"])
def test_a_kept_circuit_is_the_circuit_a_build_gives(tmp_path, monkeypatch, family):
    """built_circuit's file: the same circuit and the same later draws as a fresh build, and the
    first build's seconds; keyed by the generator's state and the arguments, so a different seed,
    size or op set builds anew; without the folder nothing is written."""
    from studies._engine import built_circuit, sweep_generator
    from studies._runner import CIRCUITS_ENV

    def fresh(seed=3, n=400):
        return sweep_generator(seed, family, n, 7)

    monkeypatch.delenv(CIRCUITS_ENV, raising=False)
    rng_ref = fresh()
    ref = random_circuit(rng_ref, 400, 7, family)
    after_ref = rng_ref.standard_normal(5)

    c0, b0 = built_circuit(fresh(), 400, 7, family, keep_min_n=100)
    assert list(tmp_path.iterdir()) == []  # no folder named: nothing kept
    monkeypatch.setenv(CIRCUITS_ENV, str(tmp_path))
    rng1 = fresh()
    c1, b1 = built_circuit(rng1, 400, 7, family, keep_min_n=100)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    rng2 = fresh()
    c2, b2 = built_circuit(rng2, 400, 7, family, keep_min_n=100)  # read back
    assert len(list(tmp_path.glob("*.npz"))) == 1 and b2 == b1
    for c in (c0, c1, c2):
        for got, want in zip(_circuit_arrays(c), _circuit_arrays(ref), strict=True):
            np.testing.assert_array_equal(got, want)
            assert got.dtype == want.dtype
    np.testing.assert_array_equal(rng1.standard_normal(5), after_ref)
    np.testing.assert_array_equal(rng2.standard_normal(5), after_ref)
    x = np.linspace(-1, 1, 7)
    assert testbed.value_and_grad(c2, x)[0] == testbed.value_and_grad(ref, x)[0]

    built_circuit(fresh(seed=4), 400, 7, family, keep_min_n=100)  # another seed
    built_circuit(fresh(n=401), 401, 7, family, keep_min_n=100)  # another size
    built_circuit(fresh(), 400, 7, family, ops=("add", "mul", "sin"), keep_min_n=100)
    assert len(list(tmp_path.glob("*.npz"))) == 4
    built_circuit(fresh(), 99, 7, family, keep_min_n=100)  # below keep_min_n: not kept
    assert len(list(tmp_path.glob("*.npz"))) == 4 and not list(tmp_path.glob("*.tmp"))


def test_a_run_keeps_its_circuits_in_a_folder_that_goes_with_it():
    """make_executor's pool: the workers see the folder; after the block it is gone, and the
    parent's environment was never changed."""
    import os

    from studies._runner import CIRCUITS_ENV, make_executor

    before = os.environ.get(CIRCUITS_ENV)
    with make_executor(workers=1) as ex:
        folder = ex.submit(os.getenv, CIRCUITS_ENV).result()
        assert folder is not None and os.path.isdir(folder)
        assert os.environ.get(CIRCUITS_ENV) == before
    assert not os.path.exists(folder)
    assert os.environ.get(CIRCUITS_ENV) == before
