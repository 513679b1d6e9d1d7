"""The network studies (variance, gradients, symmetry, lemmas) in --quick mode: files, table
schemas, claims computed from the data, determinism (each study's cells run twice; one study
through a process pool and through a local Dask cluster), and doctored tables that flip verdicts.

The two quick runs are the expensive part; every other test here reuses their output. Quick mode
is too small to decide the statistical claims of variance and gradients (they read INCONCLUSIVE
there), so the doctored tables are judged as full mode would judge them (`quick=False`). The
engine's studies have their own file.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from studies import REGISTRY, gradients, lemmas, load, variance
from studies._claims import CLAIM_COLUMNS, FAILED, INCONCLUSIVE, PASSED, VERDICTS
from studies._cli import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REQUIRED_COLUMNS = {
    "variance": ["config", "arch", "activation", "init", "k", "n_in", "n_out", "seeds", "B",
                 *[f"{q}_{s}" for q in ("z", "a", "dz", "dW")
                   for s in ("mean", "se_rel", "ci_lo", "ci_hi", "spread", "chained", "mf",
                             "below_resolution")],
                 "spread_formula", "z_factor_se_rel", "z_type_se", "dz_type_se"],
    "gradients": ["activation", "init", "sigma_w2", "depth", "target", "width", "B", "seeds", "k",
                  "dz_norm", "dz_se_rel", "dW_norm", "dW_se_rel", "q_mf", "chi1_q", "chi1_qstar",
                  "dz_norm_mf", "growth_se", "log_ratio_se"],
    "symmetry": ["activation", "init", "replicate", "step", "loss", "distinct_1", "distinct_2",
                 "distinct_3", "max_dW", "max_db_hidden", "db_out"],
    "lemmas": ["lemma", "activation", "m", "n_in", "n_out", "quantity", "max_abs_err", "scale",
               "rel_err"],
}
# claims quick mode decides (exact or logical): PASSED there; all others INCONCLUSIVE
DECIDED_IN_QUICK = {"symmetry": {"zeros-one-unit", "constant-one-unit", "relu-zeros-frozen"},
                    "lemmas": {"lemma1-matches-vjp", "lemma2-matches-vjp", "lemma3-matches-vjp",
                               "two-layer-example-matches-vjp"}}


DASK_STUDY = "symmetry"


def _is_wall(column: str) -> bool:
    return column.startswith("wall")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """These studies, quick, through a process pool; symmetry (the cheapest) again through a local
    Dask cluster. Each study's cells are checked for determinism one by one below."""
    from distributed import LocalCluster

    names = list(REQUIRED_COLUMNS)
    pool_dir = tmp_path_factory.mktemp("pool")
    assert main([*names, "--quick", "--workers", "2", "--out", str(pool_dir)]) == 0
    dask_dir = tmp_path_factory.mktemp("dask")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster:
        assert main([DASK_STUDY, "--quick", "--scheduler", cluster.scheduler_address,
                     "--out", str(dask_dir)]) == 0
    return pool_dir, dask_dir


def test_studies_are_registered():
    assert set(REQUIRED_COLUMNS) <= set(REGISTRY)


@pytest.mark.parametrize("name", list(REQUIRED_COLUMNS))
def test_files_written(runs, name):
    out, _ = runs
    for suffix in (".csv", ".md", ".png", ".claims.csv", ".json"):
        assert (out / f"{name}{suffix}").stat().st_size > 0
    assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((out / f"{name}.json").read_text())
    assert meta["quick"] is True
    assert meta["command"] == f"python -m studies {name} --quick --seed 0"
    assert not list(out.glob(".tmp*"))


@pytest.mark.parametrize("name", list(REQUIRED_COLUMNS))
def test_table_schema(runs, name):
    out, _ = runs
    table = pd.read_csv(out / f"{name}.csv")
    missing = set(REQUIRED_COLUMNS[name]) - set(table.columns)
    assert not missing
    assert len(table) > 0


@pytest.mark.parametrize("name", list(REQUIRED_COLUMNS))
def test_claims_schema_and_quick_verdicts(runs, name):
    out, _ = runs
    claims = pd.read_csv(out / f"{name}.claims.csv", dtype=str, keep_default_na=False)
    assert list(claims.columns) == CLAIM_COLUMNS
    assert len(claims) > 0 and claims["id"].is_unique
    assert set(claims["verdict"]) <= set(VERDICTS)
    assert (claims["mode"] == "quick").all()
    assert (claims["study"] == name).all()
    assert (claims[["claim", "where", "measured", "expected"]] != "").all().all()
    # quick mode never FAILS a claim it is too small to decide
    for _, row in claims.iterrows():
        expected = PASSED if row["id"] in DECIDED_IN_QUICK.get(name, ()) else INCONCLUSIVE
        assert row["verdict"] == expected, (row["id"], row["reason"])


def test_readme_lists_every_claim_and_study(runs):
    out, _ = runs
    readme = (out / "README.md").read_text()
    for name in REQUIRED_COLUMNS:
        assert f"python -m studies {name} --quick --seed 0" in readme
        assert f"![{name}]({name}.png)" in readme


@pytest.mark.parametrize("name", list(REQUIRED_COLUMNS))
def test_nothing_points_outside_the_repository(runs, name):
    text = (runs[0] / f"{name}.md").read_text() + (runs[0] / f"{name}.claims.csv").read_text()
    # spelled in pieces, so that this file does not itself name what it forbids
    for word in ("ANCH" + "ORS", "lecture" + " notes", "lecture" + "-notes", "shared" + "/",
                 "notes" + ":"):
        assert word not in text, word


def test_deterministic_across_executors(runs):
    pool_dir, dask_dir = runs
    for suffix in (".csv", ".summary.csv", ".claims.csv"):
        a = pd.read_csv(pool_dir / f"{DASK_STUDY}{suffix}")
        b = pd.read_csv(dask_dir / f"{DASK_STUDY}{suffix}")
        keep = [c for c in a.columns if not _is_wall(c)]
        pd.testing.assert_frame_equal(a[keep], b[keep], check_exact=True)


@pytest.mark.parametrize("name", list(REQUIRED_COLUMNS))
def test_cells_are_deterministic(name):
    # a cell is a pure function of (params, seed): run twice in one process, a hidden global RNG
    # or state carried from the first run would show
    study = load(name)
    grid = study.grid(True)
    for params in (grid[0], grid[-1]):
        a, b = study.cell(params, 3), study.cell(params, 3)
        keep = [c for c in a.columns if not _is_wall(c)]
        pd.testing.assert_frame_equal(a[keep], b[keep], check_exact=True)


# --- verdicts come from the data: doctored tables -------------------------------------------------
def _verdict(claims: pd.DataFrame, cid: str) -> str:
    rows = claims[claims["id"] == cid]
    assert len(rows) == 1, cid
    return rows["verdict"].iloc[0]


def _table(runs, name: str) -> pd.DataFrame:
    return pd.read_csv(runs[0] / f"{name}.csv")


def _full(study, t: pd.DataFrame) -> pd.DataFrame:
    """The claims as full mode judges them (quick mode leaves statistical claims undecided)."""
    return study.claims(t, False)


def test_quick_mode_reads_inconclusive_but_missing_data_fails(runs):
    study = load("variance")
    t = _table(runs, "variance")
    assert _verdict(study.claims(t, True), "standard-shrinks-deep") == INCONCLUSIVE
    claims = study.claims(t[t["config"] != "deep/identity/standard"], True)
    assert _verdict(claims, "standard-shrinks-deep") == FAILED


def test_variance_claims_follow_the_data(runs):
    study = load("variance")
    t = _table(runs, "variance")
    cid = "xavier-normal-keeps-forward"
    rows = t["config"] == "deep/identity/xavier_normal"
    t.loc[rows, ["z_mean", "z_ci_lo", "z_ci_hi"]] = [1.0, 0.98, 1.02]  # an ideal measurement
    assert _verdict(_full(study, t), cid) == PASSED
    t.loc[rows & (t["k"] == 15), ["z_mean", "z_ci_lo", "z_ci_hi"]] = [1.4, 1.3, 1.5]  # one layer off
    assert _verdict(_full(study, t), cid) == FAILED
    t.loc[rows & (t["k"] == 15), ["z_mean", "z_ci_lo", "z_ci_hi"]] = [1.2, 1.1, 1.3]  # straddles
    assert _verdict(_full(study, t), cid) == INCONCLUSIVE
    # a fitted factor: exact 1/2 per layer passes, 0.6 fails, too wide an interval is inconclusive
    rows = t["config"] == "deep/relu/xavier_normal"
    cid = "xavier-normal-relu-halves"
    t.loc[rows, "z_factor_se_rel"] = 0.005
    t.loc[rows, "z_mean"] = 0.5 ** t.loc[rows, "k"]
    assert _verdict(_full(study, t), cid) == PASSED
    t.loc[rows, "z_factor_se_rel"] = 0.1  # right factor, too few seeds
    assert _verdict(_full(study, t), cid) == INCONCLUSIVE
    t.loc[rows, "z_factor_se_rel"] = 0.005
    t.loc[rows, "z_mean"] = 0.6 ** t.loc[rows, "k"]
    assert _verdict(_full(study, t), cid) == FAILED
    # a layer below float64 resolution is left out of the fit: a wild value there changes nothing
    t.loc[rows, "z_mean"] = 0.5 ** t.loc[rows, "k"]
    last_hidden = rows & (t["k"] == t.loc[rows, "k"].max() - 1)
    t.loc[last_hidden, ["z_mean", "z_below_resolution"]] = [1e-40, True]
    assert _verdict(_full(study, t), cid) == PASSED
    # mean field: equal to q^k passes; an interval 20% wide straddles the 10% tolerance
    rows = t["config"] == "deep/tanh/mf sw2=2 sb2=0"
    cid = "meanfield-tanh-sw2-sb0"
    t.loc[rows, "z_mean"] = t.loc[rows, "z_mf"]
    t.loc[rows, "z_ci_lo"], t.loc[rows, "z_ci_hi"] = 0.99 * t.loc[rows, "z_mf"], \
        1.01 * t.loc[rows, "z_mf"]
    assert _verdict(_full(study, t), cid) == PASSED
    t.loc[rows, "z_ci_lo"], t.loc[rows, "z_ci_hi"] = 0.8 * t.loc[rows, "z_mf"], \
        1.2 * t.loc[rows, "z_mf"]
    assert _verdict(_full(study, t), cid) == INCONCLUSIVE


def _ideal_halves(t: pd.DataFrame, init: str) -> pd.Series:
    """Doctor one alternating-width linear config to follow both chained formulas exactly."""
    rows = t["config"] == f"alt/identity/{init}"
    t.loc[rows, "z_mean"] = t.loc[rows, "z_chained"]
    t.loc[rows, "dz_mean"] = t.loc[rows, "dz_chained"]
    t.loc[rows, ["z_type_se", "dz_type_se"]] = 0.001
    return rows


def test_the_two_halves_of_xavier_follow_the_data(runs):
    study = load("variance")
    t = _table(runs, "variance")
    for init in ("lecun", "fan_out", "xavier_normal"):
        _ideal_halves(t, init)
    claims = _full(study, t)
    for cid in ("fan-in-keeps-forward", "fan-in-backward-by-width-ratio", "fan-out-keeps-backward",
                "fan-out-forward-by-width-ratio", "xavier-compromise-forward",
                "xavier-compromise-backward"):
        assert _verdict(claims, cid) == PASSED, cid
    # fan-out measured to keep the forward variance instead: its backward claim fails
    rows = t["config"] == "alt/identity/fan_out"
    t.loc[rows, "dz_mean"] = t.loc[t["config"] == "alt/identity/lecun", "dz_mean"].to_numpy()
    assert _verdict(_full(study, t), "fan-out-keeps-backward") == FAILED
    # a wide interval on one layer type only: inconclusive
    rows = _ideal_halves(t, "fan_out")
    t.loc[rows & (t["n_in"] < t["n_out"]), "dz_type_se"] = 0.2
    assert _verdict(_full(study, t), "fan-out-keeps-backward") == INCONCLUSIVE


def test_the_fan_out_init_has_the_variance_it_claims(runs):
    t = _table(runs, "variance")
    rows = t[t["config"] == "alt/identity/fan_out"]
    assert np.allclose(rows["var_w"], 1.0 / rows["n_out"], rtol=1e-15)
    cell = next(p for p in variance.grid(True) if p.get("initialiser") == "fan_out")
    raw = variance.cell({**cell, "replicates": [0]}, 0)
    assert len(raw) == len(cell["sizes"]) - 1


def test_below_resolution_is_flagged_and_blank(runs):
    t = _table(runs, "variance")
    flagged = t[t["z_below_resolution"]]
    # sigmoid networks that forgot their input carry one value in every example at the output
    assert len(flagged) and (flagged["activation"] == "sigmoid").all()
    assert flagged[["z_mean", "z_ci_lo", "z_ci_hi", "z_spread"]].isna().all().all()
    assert t.loc[~t["z_below_resolution"] & (t["arch"] != "one-layer"), "z_mean"].notna().all()


def test_variance_one_layer_claim_follows_the_data(runs):
    study = load("variance")
    t = _table(runs, "variance")
    rows = t["arch"] == "one-layer"
    # name the quick one-layer configs as full mode's, so that the full-mode claims find them
    names = {f"one-layer {n}x{m} B={B}": f"one-layer {fn}x{fm} B={fB}" for (n, m, B), (fn, fm, fB)
             in zip(variance.QUICK["one_layer"], variance.FULL["one_layer"], strict=True)}
    t["config"] = t["config"].replace(names)
    t.loc[rows, "z_mean"] = t.loc[rows, "z_chained"]
    t.loc[rows, "z_ci_lo"], t.loc[rows, "z_ci_hi"] = 0.999 * t.loc[rows, "z_chained"], \
        1.001 * t.loc[rows, "z_chained"]
    t.loc[rows, "z_spread"] = t.loc[rows, "spread_formula"]
    t.loc[rows, "seeds"] = 10_000  # enough seeds for a narrow interval of the spread
    claims = _full(study, t)
    one = claims[claims["id"].str.startswith("one-layer")]
    assert len(one) == rows.sum() and (one["verdict"] == PASSED).all()
    t.loc[rows, "z_spread"] = 2 * t.loc[rows, "spread_formula"]
    one = _full(study, t)
    assert (one[one["id"].str.startswith("one-layer")]["verdict"] == FAILED).all()


def _set_curve(t: pd.DataFrame, cell: pd.Series, norms: np.ndarray, se: float = 0.001) -> None:
    t.loc[cell, "dz_norm"] = norms
    t.loc[cell, ["growth_se", "log_ratio_se"]] = se


def test_gradients_claims_follow_the_data(runs):
    study = load("gradients")
    t = _table(runs, "gradients")
    sig = (t["activation"] == "sigmoid") & (t["init"] == "standard") & (t["depth"] == 20) \
        & (t["target"] == "independent")
    cid = "sigmoid-standard-decay"
    _set_curve(t, sig, np.sqrt(t.loc[sig, "chi1_qstar"]) ** (20 - t.loc[sig, "k"]))
    assert _verdict(_full(study, t), cid) == PASSED
    t.loc[sig, ["growth_se", "log_ratio_se"]] = 0.2  # right decay, too few seeds to say so
    assert _verdict(_full(study, t), cid) == INCONCLUSIVE
    _set_curve(t, sig, 1.0)  # no vanishing at all
    assert _verdict(_full(study, t), cid) == FAILED
    # reverse one relu cell's curve: its growth changes sign
    cell = (t["activation"] == "relu") & (t["sigma_w2"] == 4.0) & (t["depth"] == 20) \
        & (t["target"] == "independent")
    off = (t["activation"] == "relu") & (t["target"] == "independent") & (t["depth"] >= 10) \
        & (t["init"] == "scaled_normal") & (t["sigma_w2"] != 2.0)
    for keys, g in t[off].groupby(["sigma_w2", "depth"]):
        rows = off & (t["sigma_w2"] == keys[0]) & (t["depth"] == keys[1])
        growth = 0.5 * np.log(g["chi1_qstar"].iloc[0])
        _set_curve(t, rows, np.exp(growth * (keys[1] - g["k"].to_numpy())))
    assert _verdict(_full(study, t), "relu-off-critical-sign") == PASSED
    t.loc[cell, "dz_norm"] = t.loc[cell, "dz_norm"].to_numpy()[::-1]
    assert _verdict(_full(study, t), "relu-off-critical-sign") == FAILED
    # an exponential trend at criticality fails the criticality claim
    crit = (t["activation"] == "relu") & (t["sigma_w2"] == 2.0) & (t["target"] == "zero")
    _set_curve(t, crit, np.sqrt(t.loc[crit, "depth"] - t.loc[crit, "k"] + 1.0))
    assert _verdict(_full(study, t), "relu-critical-no-trend") == PASSED
    _set_curve(t, crit, np.exp(0.3 * (t.loc[crit, "depth"] - t.loc[crit, "k"])))
    assert _verdict(_full(study, t), "relu-critical-no-trend") == FAILED


def test_sigmoid_saturation_claims_follow_the_data(runs):
    study = load("gradients")
    t = _table(runs, "gradients")
    sw2, L = gradients.SATURATION["sigma_w2"], gradients.SATURATION["depth"]
    cell = (t["activation"] == "sigmoid") & (t["sigma_w2"] == sw2) & (t["depth"] == L)
    assert cell.sum() == L
    chi = float(t.loc[cell, "chi1_qstar"].iloc[0])
    assert chi < 0.5 and np.sqrt(sw2) * gradients.SIGMOID_D0 == 1.0  # saturation's whole point
    _set_curve(t, cell, np.sqrt(chi) ** (L - t.loc[cell, "k"]))
    claims = _full(study, t)
    assert _verdict(claims, "sigmoid-saturation-faster") == PASSED
    assert _verdict(claims, "sigmoid-saturation-matches-chi1") == PASSED
    _set_curve(t, cell, 1.0)  # the small-pre-activation prediction, exactly: on the bound
    claims = _full(study, t)
    assert _verdict(claims, "sigmoid-saturation-faster") == INCONCLUSIVE
    assert _verdict(claims, "sigmoid-saturation-matches-chi1") == FAILED
    _set_curve(t, cell, 1.05 ** (L - t.loc[cell, "k"]))  # growing towards the input
    assert _verdict(_full(study, t), "sigmoid-saturation-faster") == FAILED


def test_symmetry_claims_follow_the_data(runs):
    study = load("symmetry")
    t = _table(runs, "symmetry")
    assert _verdict(study.claims(t, True), "zeros-one-unit") == PASSED
    assert _verdict(study.claims(t, True), "relu-zeros-frozen") == PASSED
    t2 = t.copy()
    t2.loc[(t2["init"] == "zeros") & (t2["step"] == 3), "distinct_2"] = 2
    assert _verdict(study.claims(t2, True), "zeros-one-unit") == FAILED
    t2 = t.copy()
    t2.loc[(t2["init"] == "zeros") & (t2["activation"] == "relu") & (t2["step"] == 5),
           "max_dW"] = 1e-12
    assert _verdict(study.claims(t2, True), "relu-zeros-frozen") == FAILED
    t2 = t.copy()
    last = t2["step"] == t2["step"].max()
    t2.loc[last & (t2["init"] == "xavier_normal"), "loss"] = 0.0
    assert _verdict(_full(study, t2), "xavier-breaks-symmetry") == PASSED
    t2.loc[last & (t2["init"] == "xavier_normal"), "loss"] = 10.0
    assert _verdict(_full(study, t2), "xavier-breaks-symmetry") == FAILED
    t2.loc[last & (t2["init"] == "xavier_normal"), "loss"] = 0.0
    t2.loc[(t2["init"] == "xavier_normal") & (t2["step"] == 7), "distinct_1"] = 15
    assert _verdict(_full(study, t2), "xavier-breaks-symmetry") == FAILED


def test_lemmas_claims_follow_the_data(runs):
    study = load("lemmas")
    t = _table(runs, "lemmas")
    assert (study.claims(t, True)["verdict"] == PASSED).all()
    for lemma, cid in (("lemma1", "lemma1-matches-vjp"), ("lemma2", "lemma2-matches-vjp"),
                       ("lemma3", "lemma3-matches-vjp"),
                       ("two-layer", "two-layer-example-matches-vjp")):
        t2 = t.copy()
        t2.loc[(t2["lemma"] == lemma).to_numpy().nonzero()[0][-1], "rel_err"] = 10 * lemmas.TOL
        claims = study.claims(t2, True)
        assert _verdict(claims, cid) == FAILED
        assert (claims["verdict"] == FAILED).sum() == 1


def test_lemmas_detect_a_wrong_lemma(monkeypatch):
    """A lemma broken in testbed.nn (sigma' dropped from Lemma 2) fails its claim."""
    import testbed.nn as nn

    monkeypatch.setattr(nn, "lemma2", lambda dJ_da, z, activation: dJ_da)
    raw = pd.concat([lemmas.cell({"lemma": "lemma2", "activation": "tanh",
                                  "shapes": [(4, 3, 5)], "z_scale": (1.0,)}, 0)])
    t = lemmas.aggregate(raw, True)
    assert t["rel_err"].max() > 0.1
    assert _verdict(lemmas.claims(t, True), "lemma2-matches-vjp") == FAILED


@pytest.mark.parametrize("name", list(REQUIRED_COLUMNS))
def test_missing_data_fails_claims_but_never_drops_them(runs, name):
    study = load(name)
    table = _table(runs, name)
    for quick in (True, False):
        full, empty = study.claims(table, quick), study.claims(table.iloc[:0], quick)
        assert len(empty) == len(full)
        assert (empty["verdict"] == FAILED).all(), empty[["id", "verdict"]]


# --- the helpers behind the intervals -------------------------------------------------------------
def test_deciding_picks_failed_then_inconclusive():
    inside, straddles, outside = ((0.1, 0.2), (0.0, 1.0)), ((0.5, 1.5), (0.0, 1.0)), \
        ((2.0, 3.0), (0.0, 1.0))
    assert gradients.deciding([inside, straddles, outside]) == outside
    assert gradients.deciding([inside, straddles]) == straddles
    assert gradients.deciding([inside]) == inside
    iv, _ = gradients.deciding([])
    assert np.isnan(iv).all()  # no parts: a missing interval, FAILED by the rule


def test_t95_is_students_quantile():
    assert gradients.t95(2) == pytest.approx(12.706, abs=1e-3)
    assert gradients.t95(1000) == pytest.approx(1.962, abs=1e-3)
    assert np.isnan(gradients.t95(1))


def test_growth_jackknife_is_zero_for_identical_seeds_and_grows_with_scatter():
    k = np.arange(1, 11)
    curve = np.exp(-0.3 * (10 - k)) ** 2  # squared norms of a clean geometric decay
    se_growth, se_ratio = gradients._jackknife_cell(np.tile(curve, (6, 1)), k)
    assert se_growth == pytest.approx(0.0, abs=1e-12) and se_ratio == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(0)
    noisy = curve * np.exp(rng.normal(0, 0.3, (6, 10)))
    assert gradients._jackknife_cell(noisy, k)[0] > 1e-3


def test_layer_type_factors_of_an_exact_alternating_profile():
    n = np.array([16, 64] * 5 + [16, 1])  # n[0..r]: alternating hidden widths, one output
    n_in, n_out = n[:-1], n[1:]
    f = {(16, 64): 0.4, (64, 16): 1.6, (16, 1): 1.0}  # per-layer forward factors by type
    v = np.cumprod([f[(a, b)] for a, b in zip(n_in, n_out, strict=True)])
    logs, applied = variance.layer_steps(v, n_in, n_out, "forward")
    means = variance.type_means(logs, applied, n_in, n_out)
    assert means == pytest.approx({(16, 64): np.log(0.4), (64, 16): np.log(1.6)}, abs=1e-12)
    se = variance._type_jackknife(np.tile(v, (5, 1)), n_in, n_out, "forward")
    assert all(abs(s) < 1e-12 for s in se.values())
