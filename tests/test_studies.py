"""The studies in --quick mode: files, table schemas, claims computed from the data, determinism
across two runs (process pool, then a local Dask cluster), and doctored tables that flip verdicts.

The two quick runs of variance, gradients and symmetry are the expensive part (about 12 s each on
2 cores); every other test here reuses their output. The engine's studies have their own file.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from studies import REGISTRY, load
from studies._claims import CLAIM_COLUMNS, FAILED, PASSED
from studies._cli import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REQUIRED_COLUMNS = {
    "variance": ["config", "arch", "activation", "init", "k", "n_in", "n_out", "seeds", "B",
                 *[f"{q}_{s}" for q in ("z", "a", "dz", "dW")
                   for s in ("mean", "se_rel", "ci_lo", "ci_hi", "spread", "notes", "mf")],
                 "spread_formula", "z_factor_se_rel"],
    "gradients": ["activation", "init", "sigma_w2", "depth", "target", "width", "B", "seeds", "k",
                  "dz_norm", "dz_se_rel", "dW_norm", "dW_se_rel", "q_mf", "chi1_q", "chi1_qstar",
                  "dz_norm_mf"],
    "symmetry": ["activation", "init", "replicate", "step", "loss", "distinct_1", "distinct_2",
                 "distinct_3", "max_dW", "max_db_hidden", "db_out"],
}


def _is_wall(column: str) -> bool:
    return column.startswith("wall")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """These studies, quick, twice: a process pool, then a local Dask cluster."""
    from distributed import LocalCluster

    names = list(REQUIRED_COLUMNS)
    pool_dir = tmp_path_factory.mktemp("pool")
    assert main([*names, "--quick", "--workers", "2", "--out", str(pool_dir)]) == 0
    dask_dir = tmp_path_factory.mktemp("dask")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster:
        assert main([*names, "--quick", "--scheduler", cluster.scheduler_address,
                     "--out", str(dask_dir)]) == 0
    return pool_dir, dask_dir


def test_studies_are_registered():
    assert set(REQUIRED_COLUMNS) <= set(REGISTRY)


def test_all_runs_every_registered_study(tmp_path, monkeypatch):
    import studies._cli

    monkeypatch.setattr(studies._cli, "REGISTRY", {"symmetry": "studies.symmetry"})
    assert main(["all", "--quick", "--workers", "1", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "symmetry.csv").exists() and (tmp_path / "README.md").exists()


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
def test_claims_schema(runs, name):
    out, _ = runs
    claims = pd.read_csv(out / f"{name}.claims.csv", dtype=str)
    assert list(claims.columns) == CLAIM_COLUMNS
    assert len(claims) > 0
    assert set(claims["verdict"]) <= {PASSED, FAILED}
    assert (claims["mode"] == "quick").all()
    assert (claims["study"] == name).all()
    assert claims[["claim", "where", "measured", "expected"]].notna().all().all()


def test_readme_lists_every_claim_and_study(runs):
    out, _ = runs
    readme = (out / "README.md").read_text()
    for name in REQUIRED_COLUMNS:
        assert f"python -m studies {name} --quick --seed 0" in readme
        assert f"![{name}]({name}.png)" in readme
        for text in pd.read_csv(out / f"{name}.claims.csv", dtype=str)["claim"]:
            assert text.replace("|", "\\|")[:60] in readme


@pytest.mark.parametrize("name", list(REQUIRED_COLUMNS))
def test_deterministic_across_runs_and_executors(runs, name):
    pool_dir, dask_dir = runs
    suffixes = [".csv", ".summary.csv", ".claims.csv"]
    if load(name).timed:
        suffixes = [".csv"]  # fits and claims computed from wall times cannot repeat exactly
    for suffix in suffixes:
        if not (pool_dir / f"{name}{suffix}").exists():
            continue
        a = pd.read_csv(pool_dir / f"{name}{suffix}")
        b = pd.read_csv(dask_dir / f"{name}{suffix}")
        keep = [c for c in a.columns if not _is_wall(c)]
        pd.testing.assert_frame_equal(a[keep], b[keep], check_exact=True)


# --- verdicts come from the data: doctored tables -------------------------------------------------
def _verdict(claims: pd.DataFrame, contains: str) -> str:
    rows = claims[claims["claim"].str.contains(contains, regex=False)]
    assert len(rows) == 1, contains
    return rows["verdict"].iloc[0]


def _table(runs, name: str) -> pd.DataFrame:
    return pd.read_csv(runs[0] / f"{name}.csv")


def test_variance_claims_follow_the_data(runs):
    study = load("variance")
    t = _table(runs, "variance")
    key = "xavier + identity keeps the mean Var(z[k]) within a factor 1.25 over 30 layers " \
          "[deep/identity/xavier_normal]"
    rows = t["config"] == "deep/identity/xavier_normal"
    t.loc[rows, "z_mean"], t.loc[rows, "z_se_rel"] = 1.0, 0.01  # an ideal measurement
    assert _verdict(study.claims(t, True), key) == PASSED
    t.loc[rows & (t["k"] == 15), "z_mean"] = 1.3  # one layer off by 30%
    assert _verdict(study.claims(t, True), key) == FAILED
    # a fitted factor: exact 1/2 per layer passes, 0.6 fails
    rows = t["config"] == "deep/relu/xavier_normal"
    key = "halves Var(z[k]) per layer [deep/relu/xavier_normal]"
    t.loc[rows, "z_factor_se_rel"] = 0.005
    t.loc[rows, "z_mean"] = 0.5 ** t.loc[rows, "k"]
    assert _verdict(study.claims(t, True), key) == PASSED
    t.loc[rows, "z_factor_se_rel"] = 0.05  # right factor, too few seeds
    assert _verdict(study.claims(t, True), key) == FAILED
    t.loc[rows, "z_factor_se_rel"] = 0.005
    t.loc[rows, "z_mean"] = 0.6 ** t.loc[rows, "k"]
    assert _verdict(study.claims(t, True), key) == FAILED
    # mean field: equal to q^k passes; SE above 3% fails even when the mean is right
    rows = t["config"] == "deep/tanh/mf sw2=2 sb2=0"
    t.loc[rows, "z_mean"], t.loc[rows, "z_se_rel"] = t.loc[rows, "z_mf"], 0.01
    key = "sigma_w^2=2, sigma_b^2=0,"
    assert _verdict(study.claims(t, True), key) == PASSED
    t.loc[rows, "z_se_rel"] = 0.05
    assert _verdict(study.claims(t, True), key) == FAILED
    # missing data: the claim stays in the table, FAILED
    claims = study.claims(t[t["config"] != "deep/identity/standard"], True)
    assert _verdict(claims, "per layer [deep/identity/standard]") == FAILED


def test_variance_one_layer_claim_follows_the_data(runs):
    study = load("variance")
    t = _table(runs, "variance")
    rows = t["arch"] == "one-layer"
    t.loc[rows, "z_mean"] = t.loc[rows, "z_notes"]
    t.loc[rows, "z_spread"] = t.loc[rows, "spread_formula"]
    claims = study.claims(t, True)
    one = claims[claims["claim"].str.startswith("one layer")]
    assert len(one) == rows.sum() and (one["verdict"] == PASSED).all()
    t.loc[rows, "z_spread"] = 2 * t.loc[rows, "spread_formula"]
    one = study.claims(t, True)
    assert (one[one["claim"].str.startswith("one layer")]["verdict"] == FAILED).all()


def test_gradients_claims_follow_the_data(runs):
    study = load("gradients")
    t = _table(runs, "gradients")
    sig = (t["activation"] == "sigmoid") & (t["init"] == "standard") & (t["depth"] == 20) \
        & (t["target"] == "independent")
    key = "sigmoid with standard init"
    t.loc[sig, "dz_norm"] = np.sqrt(t.loc[sig, "chi1_qstar"]) ** (20 - t.loc[sig, "k"])
    assert _verdict(study.claims(t, True), key) == PASSED
    t.loc[sig, "dz_norm"] = 1.0  # no vanishing at all
    assert _verdict(study.claims(t, True), key) == FAILED
    # reverse one relu cell's curve: its growth changes sign
    cell = (t["activation"] == "relu") & (t["sigma_w2"] == 4.0) & (t["depth"] == 20) \
        & (t["target"] == "independent")
    key = "relu, off criticality (|log chi_1| > 0.1), depth >= 10"
    before = _verdict(study.claims(t, True), key)
    t.loc[cell, "dz_norm"] = t.loc[cell, "dz_norm"].to_numpy()[::-1]
    assert _verdict(study.claims(t, True), key) == FAILED
    assert before in (PASSED, FAILED)
    # an exponential trend at criticality fails the criticality claim
    crit = (t["activation"] == "relu") & (t["sigma_w2"] == 2.0) & (t["target"] == "zero")
    t.loc[crit, "dz_norm"] = np.exp(0.3 * (t.loc[crit, "depth"] - t.loc[crit, "k"]))
    assert _verdict(study.claims(t, True), "relu at criticality") == FAILED


def test_symmetry_claims_follow_the_data(runs):
    study = load("symmetry")
    t = _table(runs, "symmetry")
    assert _verdict(study.claims(t, True), "zeros initialisation keeps") == PASSED
    assert _verdict(study.claims(t, True), "relu with zeros: no weight moves") == PASSED
    t2 = t.copy()
    t2.loc[(t2["init"] == "zeros") & (t2["step"] == 3), "distinct_2"] = 2
    assert _verdict(study.claims(t2, True), "zeros initialisation keeps") == FAILED
    t2 = t.copy()
    t2.loc[(t2["init"] == "zeros") & (t2["activation"] == "relu") & (t2["step"] == 5),
           "max_dW"] = 1e-12
    assert _verdict(study.claims(t2, True), "relu with zeros: no weight moves") == FAILED
    t2 = t.copy()
    last = t2["step"] == t2["step"].max()
    t2.loc[last & (t2["init"] == "xavier_normal"), "loss"] = 10.0
    assert _verdict(study.claims(t2, True), "xavier gives") == FAILED


@pytest.mark.parametrize("name", list(REQUIRED_COLUMNS))
def test_missing_data_fails_claims_but_never_drops_them(runs, name):
    study = load(name)
    table = _table(runs, name)
    full, empty = study.claims(table, True), study.claims(table.iloc[:0], True)
    assert len(empty) == len(full)
    assert (empty["verdict"] == FAILED).all()
