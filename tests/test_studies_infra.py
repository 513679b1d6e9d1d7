"""The study machinery without the studies: CLI errors, atomic writing, seeds, progress, theory."""

from __future__ import annotations

import concurrent.futures as cf
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studies import _runner, meanfield
from studies._claims import CLAIM_COLUMNS, FAILED, PASSED, claim, claims_table, verdict
from studies._cli import main
from studies._runner import RunError, progress_enabled, run_study
from studies._seeds import generator, seed_sequence
from studies._study import Study
from studies._writer import MARKER, MARKER_TEXT, StagedFiles, write_study

ROOT = Path(__file__).resolve().parents[1]


# --- a tiny study, run on a thread pool -----------------------------------------------------------
def _cell(params: dict, seed: int) -> pd.DataFrame:
    if params.get("fail"):
        raise ValueError("boom")
    x = generator(seed, "toy", params["i"]).standard_normal(100)
    return pd.DataFrame({"i": [params["i"]], "mean": [x.mean()], "wall_s": [0.0]})


def _toy(fail: bool = False, plot_fails: bool = False) -> Study:
    def plot(table, fig):
        if plot_fails:
            raise RuntimeError("plot broke")
        fig.subplots().plot(table["i"], table["mean"])

    def claims(table, quick):
        return claims_table("toy", [claim("means are small", "nowhere",
                                          f"{table['mean'].abs().max():.3f}", "< 1",
                                          bool((table["mean"].abs() < 1).all()), id="means-small")], quick)

    return Study(name="toy", title="toy", where="nowhere",
                 grid=lambda quick: [{"i": i, "fail": fail and i == 2} for i in range(4)],
                 cell=_cell, aggregate=lambda raw, quick: raw, claims=claims, plot=plot)


def _run(study: Study):
    with cf.ThreadPoolExecutor(2) as ex:
        result = run_study(study, quick=True, seed=3, executor=ex, progress=False)
    result.meta["command"] = "python -m studies toy --quick --seed 3"
    return result


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_toy_study_runs_and_writes(tmp_path):
    result = _run(_toy())
    assert list(result.table["i"]) == [0, 1, 2, 3]  # grid order, whatever finished first
    assert result.claims["verdict"].tolist() == [PASSED]
    paths = write_study(result, tmp_path)
    assert all(p.exists() for p in paths)
    assert not list(tmp_path.glob(".tmp*"))
    assert oct((tmp_path / "toy.csv").stat().st_mode & 0o777) == "0o644"


def _spanned_cell(params: dict, seed: int) -> pd.DataFrame:
    t0 = time.perf_counter()
    time.sleep(0.05)
    return pd.DataFrame({"i": [params["i"]], "t0": [t0], "t1": [time.perf_counter()]})


def test_cells_marked_alone_run_with_no_other_cell_beside_them():
    """Study.alone's cells run after the others, one at a time; the table keeps grid order."""
    study = Study(name="toy", title="toy", where="nowhere",
                  grid=lambda quick: [{"i": i} for i in range(8)], cell=_spanned_cell,
                  aggregate=lambda raw, quick: raw,
                  claims=lambda table, quick: claims_table("toy", [], quick),
                  plot=lambda table, fig: None, alone=lambda p: p["i"] in (1, 4, 5))
    with cf.ThreadPoolExecutor(3) as ex:
        t = run_study(study, quick=True, seed=0, executor=ex, progress=False).table
    assert list(t["i"]) == list(range(8))
    spans = {int(r.i): (r.t0, r.t1) for r in t.itertuples()}
    for i in (1, 4, 5):
        a0, a1 = spans[i]
        others = [j for j in spans if j != i and spans[j][0] < a1 and a0 < spans[j][1]]
        assert not others, f"cell {i} ran beside {others}"
    shared = [spans[j] for j in spans if j not in (1, 4, 5)]
    assert max(b for _, b in shared) <= min(spans[i][0] for i in (1, 4, 5))
    # the rest did share the pool: the first two started before either finished
    first = sorted(shared)[:2]
    assert first[1][0] < first[0][1]


def test_failing_cell_is_a_run_error():
    with pytest.raises(RunError, match="cell .* failed: ValueError: boom"):
        _run(_toy(fail=True))


def test_failed_rendering_leaves_previous_results_whole(tmp_path):
    write_study(_run(_toy()), tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(RuntimeError, match="plot broke"):
        write_study(_run(_toy(plot_fails=True)), tmp_path)
    assert _snapshot(tmp_path) == before  # nothing replaced, no temporary left


def test_rename_failing_midway_leaves_every_file_whole(tmp_path, monkeypatch):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    StagedFiles({a: "old a", b: "old b"}).commit()
    real_replace, calls = os.replace, []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OSError, match="disk full"):
        StagedFiles({a: "new a", b: "new b"}).commit()
    assert a.read_text() == "new a" and b.read_text() == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


# --- CLI: bad input is one line on stderr, a non-zero exit, results untouched ---------------------
@pytest.fixture
def previous(tmp_path):
    # a results folder an earlier run wrote: it holds the marker
    out = tmp_path / "results"
    out.mkdir()
    (out / MARKER).write_text(MARKER_TEXT)
    (out / "variance.csv").write_text("old results\n")
    return out


@pytest.mark.parametrize("argv, status, message", [
    (["nosuch"], 2, "unknown study 'nosuch'"),
    (["variance", "nosuch"], 2, "unknown study 'nosuch'"),
    (["variance", "--workers", "0"], 2, "--workers: must be a positive integer, got 0"),
    (["variance", "--workers", "-3"], 2, "--workers: must be a positive integer, got -3"),
    (["variance", "--workers", "two"], 2, "--workers: must be a positive integer, got 'two'"),
    (["variance", "--seed", "abc"], 2, "--seed: must be a non-negative integer, got 'abc'"),
    (["variance", "--seed", "1.5"], 2, "--seed: must be a non-negative integer, got '1.5'"),
    (["variance", "--seed", "-1"], 2, "--seed: must be a non-negative integer, got -1"),
    (["variance", "--frobnicate"], 2, "unrecognized arguments: --frobnicate"),
])
def test_bad_options(previous, capsys, argv, status, message):
    before = _snapshot(previous)
    assert main([*argv, "--out", str(previous)]) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("studies: error: ") and message in err
    assert _snapshot(previous) == before


def test_unwritable_results_folder(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["symmetry", "--quick", "--out", str(blocker / "results")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not writable" in err
    assert blocker.read_text() == "not a folder"


def test_unreachable_scheduler(previous, capsys, monkeypatch):
    monkeypatch.setattr(_runner, "SCHEDULER_TIMEOUT_S", 1.0)
    before = _snapshot(previous)
    assert main(["variance", "--quick", "--scheduler", "tcp://127.0.0.1:1",
                 "--out", str(previous)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach the Dask scheduler" in err
    assert _snapshot(previous) == before


def test_cli_subprocess_exit_status_and_one_line():
    proc = subprocess.run([sys.executable, "-m", "studies", "nosuch"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "unknown study 'nosuch'" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "studies", "list"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "variance" in proc.stdout.split()


# --- small pieces ---------------------------------------------------------------------------------
def test_progress_is_quiet_in_ci_and_off_a_terminal(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert progress_enabled() is False
    monkeypatch.delenv("CI")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert progress_enabled() is False


def test_seeds_depend_on_seed_and_key_only():
    a = generator(0, "x", 1).standard_normal(4)
    assert np.array_equal(a, generator(0, "x", 1).standard_normal(4))
    assert not np.array_equal(a, generator(1, "x", 1).standard_normal(4))
    assert not np.array_equal(a, generator(0, "x", 2).standard_normal(4))
    with pytest.raises(ValueError):
        seed_sequence(-1, "x")


def test_verdict_is_failed_unless_true():
    assert verdict(True) == verdict(np.bool_(True)) == PASSED
    for bad in (False, np.bool_(False), None, float("nan"), 1):
        assert verdict(bad) == FAILED
    table = claims_table("s", [claim("c", "w", "m", "e", float("nan"), id="c")], quick=False)
    assert list(table.columns) == CLAIM_COLUMNS and table["verdict"].tolist() == [FAILED]


def test_meanfield_closed_forms():
    for q in (0.3, 1.0, 4.0):
        relu = meanfield.moments("relu", q)
        assert relu["second"] == pytest.approx(q / 2, rel=1e-12)
        assert relu["dphi2"] == pytest.approx(0.5, rel=1e-12)  # no node on the kink
        assert meanfield.moments("identity", q)["second"] == pytest.approx(q, rel=1e-12)
        assert meanfield.moments("sigmoid", q)["mean"] == pytest.approx(0.5, abs=1e-12)
    # tanh for small q: E tanh^2 = q - 2 q^2 + O(q^3), E tanh'^2 = 1 - 2q + O(q^2)
    q = 1e-3
    assert meanfield.moments("tanh", q)["second"] == pytest.approx(q - 2 * q * q, rel=1e-5)
    assert meanfield.chi1("tanh", 1.0, q) == pytest.approx(1 - 2 * q, rel=1e-5)
    assert meanfield.chi1("relu", 2.0, 0.0) == pytest.approx(1.0)
    assert meanfield.fixed_point("tanh", 0.5) == pytest.approx(0.0, abs=1e-10)
    assert meanfield.fixed_point("relu", 3.0) == float("inf")
    np.testing.assert_allclose(meanfield.forward_q("identity", [2.0, 0.5, 3.0], 0.1),
                               [2.1, 1.15, 3.55])
    np.testing.assert_allclose(meanfield.chained_forward([2.0, 0.5, 3.0]), [2.0, 1.0, 3.0])
    np.testing.assert_allclose(meanfield.chained_backward([5.0, 2.0, 3.0], top=1.0),
                               [6.0, 3.0, 1.0])
    # backward recursion of a linear network equals the chained backward formula of docs/theory.md
    q = meanfield.forward_q("identity", [1.0, 1.0, 1.0])
    back = meanfield.backward_second_moment("identity", q, [5.0, 2.0, 3.0], top=1.0)
    np.testing.assert_allclose(back, [6.0, 3.0, 1.0])


def test_one_layer_spread_matches_monte_carlo():
    rng = np.random.default_rng(7)
    n, m, B = 20, 10, 5
    v = [np.mean((rng.standard_normal((m, n)) @ rng.standard_normal((n, B))) ** 2) / n
         for _ in range(4000)]
    # the formula is exact for Gaussian W and x: std of 4000 draws within 5% of it
    assert np.std(v) == pytest.approx(meanfield.one_layer_spread(n, m, B), rel=0.05)
