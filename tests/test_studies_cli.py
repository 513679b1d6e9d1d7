"""The command line's results folders by mode, its closing line and its log.

Quick mode writes into results-quick/ by default and never into a folder of full-mode results; the
closing line of a study lists every file the run wrote; the run's progress goes to OUT/run.log,
written only into a results folder. A tiny study on a thread pool stands in for the real ones
(one test runs `python -m studies lemmas --quick` end to end).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import studies
import studies._cli
from studies import _runner
from studies._claims import claim, claims_table
from studies._cli import build_parser, main
from studies._seeds import generator
from studies._study import Study
from studies._writer import MARKER, MARKER_TEXT, RUN_LOG, marker_mode

ROOT = Path(__file__).resolve().parents[1]


# --- a tiny study with every kind of file: summary, an extra figure ------------------------------
def _cell(params: dict, seed: int) -> pd.DataFrame:
    if params.get("fail"):
        raise ValueError("boom")
    x = generator(seed, "cli-toy", params["i"]).standard_normal(16)
    return pd.DataFrame({"i": [params["i"]], "mean": [float(x.mean())]})


def _claims(table: pd.DataFrame, quick: bool) -> pd.DataFrame:
    return claims_table("toy", [claim("means are small", "nowhere",
                                      f"{table['mean'].abs().max():.3f}", "< 10",
                                      bool((table["mean"].abs() < 10).all()), id="means-small")],
                        quick)


def _toy(fail: bool = False) -> Study:
    return Study(name="toy", title="a toy", where="nowhere",
                 grid=lambda quick: [{"i": i, "fail": fail and i == 1}
                                     for i in range(2 if quick else 3)],
                 cell=_cell, aggregate=lambda raw, quick: raw, claims=_claims,
                 plot=lambda table, fig: fig.subplots().plot(table["i"], table["mean"]),
                 figures={"bars": lambda table, fig: fig.subplots().bar(table["i"], table["mean"])},
                 summarise=lambda table: table[["i", "mean"]].head(1))


@pytest.fixture
def toy(monkeypatch):
    """`python -m studies toy` runs the tiny study on one thread; call it with a Study to swap."""
    current = {"study": _toy()}
    monkeypatch.setattr(studies._cli, "REGISTRY", {"toy": "not-imported"})
    monkeypatch.setattr(studies, "load", lambda name: current["study"])

    @contextlib.contextmanager
    def threads(workers=None, scheduler=None, timeout=None):
        with cf.ThreadPoolExecutor(1) as ex:
            yield ex

    monkeypatch.setattr(_runner, "make_executor", threads)

    def use(study: Study) -> None:
        current["study"] = study

    return use


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("studies: error: "), err
    return err


def _quick_flag(folder: Path, name: str = "toy") -> bool:
    return json.loads((folder / f"{name}.json").read_text())["quick"]


def test_all_runs_every_registered_study_in_registry_order(toy, tmp_path, monkeypatch):
    monkeypatch.setattr(studies._cli, "REGISTRY", {"toy": "not-imported", "toy2": "not-imported"})
    names = []
    monkeypatch.setattr(studies, "load", lambda name: names.append(name) or
                        Study(**{**_toy().__dict__, "name": name}))
    assert main(["all", "--quick", "--out", str(tmp_path)]) == 0
    assert names == ["toy", "toy2"]
    for name in names:
        assert (tmp_path / f"{name}.csv").exists()
    readme = (tmp_path / "README.md").read_text()
    assert readme.index("toy.png") < readme.index("toy2.png")


# --- 1. quick mode never writes over full-mode results --------------------------------------------
def test_quick_defaults_to_results_quick_and_leaves_results_alone(toy, tmp_path, monkeypatch,
                                                                  capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["toy"]) == 0  # full mode: results/
    assert _quick_flag(tmp_path / "results") is False
    full = _snapshot(tmp_path / "results")
    assert main(["toy", "--quick"]) == 0
    assert _quick_flag(tmp_path / "results-quick") is True
    assert _snapshot(tmp_path / "results") == full  # the full-mode results are untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "results-quick"]
    assert marker_mode(tmp_path / "results") == "full"
    assert marker_mode(tmp_path / "results-quick") == "quick"
    capsys.readouterr()


def test_quick_into_a_full_mode_folder_is_refused(toy, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["toy", "--out", str(out)]) == 0
    capsys.readouterr()
    before = _snapshot(out)
    assert main(["toy", "--quick", "--out", str(out)]) == 1
    err = _one_error_line(capsys)
    assert f"refusing to write quick-mode results into {str(out)!r}" in err
    assert "full-mode results" in err and "results-quick" in err
    assert _snapshot(out) == before  # nothing written, not even the log


def test_full_into_a_quick_mode_folder_is_refused(toy, tmp_path, capsys):
    out = tmp_path / "results-quick"
    assert main(["toy", "--quick", "--out", str(out)]) == 0
    capsys.readouterr()
    before = _snapshot(out)
    assert main(["toy", "--out", str(out)]) == 1
    err = _one_error_line(capsys)
    assert f"refusing to write full-mode results into {str(out)!r}" in err
    assert "quick-mode results" in err
    assert _snapshot(out) == before


def _legacy(folder: Path) -> None:
    """Give `folder` the marker written before markers recorded the mode."""
    (folder / MARKER).write_text("This folder is written by `python -m studies` (testbed). Its "
                                 "files are replaced on every run; the writer refuses folders "
                                 "without this file.\n")
    assert marker_mode(folder) is None


def test_legacy_marker_holding_full_results_refuses_quick_accepts_full(toy, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["toy", "--out", str(out)]) == 0
    _legacy(out)
    capsys.readouterr()
    before = _snapshot(out)
    assert main(["toy", "--quick", "--out", str(out)]) == 1
    err = _one_error_line(capsys)
    assert f"refusing to write quick-mode results into {str(out)!r}" in err
    assert "full-mode results (toy.json)" in err and "records no mode" in err
    assert _snapshot(out) == before
    assert main(["toy", "--out", str(out)]) == 0  # full mode: as before markers had a mode
    assert _quick_flag(out) is False
    assert marker_mode(out) is None  # the legacy marker is left as it was


def test_legacy_marker_holding_quick_results_accepts_both_modes(toy, tmp_path, capsys):
    out = tmp_path / "old-quick"
    assert main(["toy", "--quick", "--out", str(out)]) == 0
    _legacy(out)
    assert main(["toy", "--quick", "--out", str(out)]) == 0
    assert _quick_flag(out) is True
    assert main(["toy", "--out", str(out)]) == 0
    assert _quick_flag(out) is False
    # now it holds full-mode results: quick mode is refused there
    capsys.readouterr()
    assert main(["toy", "--quick", "--out", str(out)]) == 1
    assert "full-mode results (toy.json)" in _one_error_line(capsys)


def test_the_committed_results_folder_is_recognised_as_full_mode(toy, tmp_path, capsys):
    # a copy (marker and NAME.json files) of the repository's results/, never the folder itself
    committed = ROOT / "results"
    if not (committed / MARKER).is_file() or not list(committed.glob("*.json")):
        pytest.skip("no committed results")
    out = tmp_path / "results"
    out.mkdir()
    for p in [committed / MARKER, *committed.glob("*.json")]:
        shutil.copy(p, out / p.name)
    before = _snapshot(out)
    assert main(["toy", "--quick", "--out", str(out)]) == 1
    assert "refusing to write quick-mode results" in _one_error_line(capsys)
    assert _snapshot(out) == before


def test_a_marker_with_an_unknown_mode_is_refused(toy, tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / MARKER).write_text(MARKER_TEXT + "mode: fast\n")
    assert main(["toy", "--out", str(out)]) == 1
    err = _one_error_line(capsys)
    assert "unknown mode 'fast'" in err and str(out / MARKER) in err
    assert sorted(p.name for p in out.iterdir()) == [MARKER]


def test_help_names_the_default_folder_of_each_mode_and_the_log():
    text = " ".join(build_parser().format_help().split())
    assert "default: results/ in full mode, results-quick/ with --quick" in text
    assert "refused" in text and "full-mode results" in text
    assert RUN_LOG in text


# --- 2. the closing line lists every file the run wrote -------------------------------------------
def _listed(stdout: str, name: str) -> tuple[Path, list[str]]:
    line = [ln for ln in stdout.splitlines() if ln.startswith(f"{name}: ")][-1]
    folder, files = line.split(" -> ", 1)[1].rsplit(": ", 1)
    return Path(folder), files.split(", ")


def test_closing_line_lists_every_file_written(toy, tmp_path, capsys):
    out = tmp_path / "new"
    assert main(["toy", "--quick", "--out", str(out)]) == 0
    folder, files = _listed(capsys.readouterr().out, "toy")
    assert folder == out
    written = sorted(p.name for p in out.iterdir() if p.name != MARKER)
    assert sorted(files) == written
    assert {"toy.csv", "toy.md", "toy.png", "toy-bars.png", "toy.claims.csv", "toy.summary.csv",
            "toy.json", "README.md", RUN_LOG} == set(written)


# --- 3. progress goes to OUT/run.log, only in a results folder ------------------------------------
def test_progress_and_closing_line_reach_the_log(toy, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["toy", "--quick", "--seed", "4", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    log = (out / RUN_LOG).read_text()
    assert f"python -m studies toy --quick --seed 4 --out {out}" in log
    assert "toy: 2 cells (quick mode, seed 4)" in log
    assert "toy: cell 1/2 done" in log and "toy: cell 2/2 done" in log
    closing = [ln for ln in stdout.splitlines() if ln.startswith("toy: ")]
    assert closing and all(ln in log for ln in closing)
    assert oct((out / RUN_LOG).stat().st_mode & 0o777) == "0o644"
    # the next run replaces the log: it holds that run alone
    assert main(["toy", "--quick", "--seed", "5", "--out", str(out)]) == 0
    log = (out / RUN_LOG).read_text()
    assert "--seed 5" in log and "--seed 4" not in log


def test_a_failing_cell_is_logged_and_earlier_results_stay_whole(toy, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["toy", "--quick", "--out", str(out)]) == 0
    results = {k: v for k, v in _snapshot(out).items() if k != RUN_LOG}
    toy(_toy(fail=True))
    assert main(["toy", "--quick", "--out", str(out)]) == 1
    err = _one_error_line(capsys)
    assert {k: v for k, v in _snapshot(out).items() if k != RUN_LOG} == results
    assert err.strip() in (out / RUN_LOG).read_text()  # the error is in the log too


def test_a_failed_run_in_a_new_folder_leaves_no_folder_and_no_log(toy, tmp_path, capsys):
    toy(_toy(fail=True))
    assert main(["toy", "--quick", "--out", str(tmp_path / "new" / "r")]) == 1
    _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []
    assert main(["toy", "--quick", "--out", str(tmp_path)]) == 1  # an empty folder stays empty
    _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_no_log_in_a_folder_that_is_not_a_results_folder(toy, tmp_path, capsys):
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "notes.txt").write_text("the user's own file\n")
    assert main(["toy", "--quick", "--out", str(folder)]) == 1
    assert "not empty and has no .testbed-results" in _one_error_line(capsys)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_the_log_replaces_a_symlink_not_the_file_it_points_to(toy, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["toy", "--quick", "--out", str(out)]) == 0
    theirs = tmp_path / "theirs.txt"
    theirs.write_text("not written by studies\n")
    (out / RUN_LOG).unlink()
    os.symlink(theirs, out / RUN_LOG)
    assert main(["toy", "--quick", "--out", str(out)]) == 0
    assert theirs.read_text() == "not written by studies\n"
    assert not (out / RUN_LOG).is_symlink() and "toy: cell 1/2 done" in (out / RUN_LOG).read_text()


# --- end to end: python -m studies lemmas --quick, next to committed full-mode results -------------
def test_python_m_studies_quick_end_to_end(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / MARKER).write_text(MARKER_TEXT)  # a marker without a mode, as in the repository
    (results / "lemmas.csv").write_text("full-mode table\n")
    (results / "lemmas.json").write_text(json.dumps({"study": "lemmas", "quick": False}) + "\n")
    before = _snapshot(results)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}

    def studies_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "studies", "lemmas", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)

    proc = studies_cli("--quick", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    quick = tmp_path / "results-quick"
    folder, files = _listed(proc.stdout, "lemmas")
    assert folder == Path("results-quick")
    assert sorted(files) == sorted(p.name for p in quick.iterdir() if p.name != MARKER)
    assert "lemmas: cell 10/10 done" in (quick / RUN_LOG).read_text()
    assert _snapshot(results) == before
    proc = studies_cli("--quick", "--out", "results")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "refusing to write quick-mode results" in proc.stderr
    assert _snapshot(results) == before
