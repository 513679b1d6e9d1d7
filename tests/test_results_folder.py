"""Results folders a user cannot lose: the marker, refused folders, no empty folder left behind,
stale temporaries removed, worker processes that die with their parent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from studies import _runner
from studies._cli import main
from studies._readme import write_readme
from studies._runner import usable_cores
from studies._study import Study, StudyResult
from studies._writer import (
    MARKER,
    OutputError,
    prepare_results_folder,
    remove_if_unused,
    remove_stale_temporaries,
    write_study,
)

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE = ["--scheduler", "tcp://127.0.0.1:1"]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("studies: error: "), err
    return err


@pytest.fixture
def user_folder(tmp_path):
    """A folder of the user's own files (a repository, a home directory)."""
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "README.md").write_text("the user's own README\n")
    (folder / "variance.csv").write_text("the user's own data\n")
    return folder


@pytest.fixture
def fast_scheduler_timeout(monkeypatch):
    monkeypatch.setattr(_runner, "SCHEDULER_TIMEOUT_S", 1.0)


# --- refused folders -----------------------------------------------------------------------------
def test_out_dot_in_a_folder_of_user_files_is_refused(user_folder, monkeypatch, capsys):
    before = _snapshot(user_folder)
    monkeypatch.chdir(user_folder)
    assert main(["variance", "--quick", "--out", "."]) == 1
    assert "refusing to write into '.'" in _one_error_line(capsys)
    assert _snapshot(user_folder) == before  # README.md untouched, no marker added


def test_out_empty_is_refused(user_folder, monkeypatch, capsys):
    before = _snapshot(user_folder)
    monkeypatch.chdir(user_folder)
    for empty in ("", " "):
        assert main(["variance", "--quick", "--out", empty]) == 2
        assert "--out: must name a folder" in _one_error_line(capsys)
    assert _snapshot(user_folder) == before
    with pytest.raises(OutputError, match="must be named"):
        prepare_results_folder("")


def test_writer_and_readme_refuse_unmarked_folders(user_folder):
    before = _snapshot(user_folder)
    result = StudyResult(Study(name="variance", title="t", where="w", grid=list, cell=None,
                               aggregate=None, claims=None, plot=None),
                         table=pd.DataFrame({"a": [1]}), claims=pd.DataFrame(), summary=None,
                         meta={"command": "c", "quick": True, "cells": 1, "wall_s": 0.0})
    with pytest.raises(OutputError, match="not empty and has no .testbed-results"):
        write_study(result, user_folder)
    with pytest.raises(OutputError, match="not empty and has no .testbed-results"):
        write_readme(user_folder, ["variance"])
    assert _snapshot(user_folder) == before


def test_a_file_is_not_a_results_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        prepare_results_folder(tmp_path / "f")


@pytest.mark.parametrize("state", ["new", "empty", "marked"])
def test_new_empty_and_marked_folders_are_accepted(tmp_path, state):
    out = tmp_path / "a" / "b"
    if state != "new":
        out.mkdir(parents=True)
    if state == "marked":
        (out / MARKER).write_text("marker of an earlier run\n")
        (out / "variance.csv").write_text("earlier results\n")
    created = prepare_results_folder(out)
    assert (out / MARKER).is_file()
    assert created == {"new": [tmp_path / "a", out, out / MARKER], "empty": [out / MARKER],
                       "marked": []}[state]
    assert not list(out.glob(".tmp*"))  # the writability probe is gone


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs a git checkout to list the tracked files")
def test_committed_results_folder_is_marked():
    assert (ROOT / "results" / MARKER).is_file()
    tracked = subprocess.run(["git", "ls-files", f"results/{MARKER}"], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    assert tracked == [f"results/{MARKER}"]


# --- no empty folder left behind ------------------------------------------------------------------
def test_unreachable_scheduler_leaves_no_folder(tmp_path, capsys, fast_scheduler_timeout):
    out = tmp_path / "new" / "results"
    assert main(["variance", "--quick", *UNREACHABLE, "--out", str(out)]) == 1
    assert "cannot reach the Dask scheduler" in _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_scheduler_leaves_an_empty_folder_as_it_was(tmp_path, capsys,
                                                                fast_scheduler_timeout):
    assert main(["variance", "--quick", *UNREACHABLE, "--out", str(tmp_path)]) == 1
    _one_error_line(capsys)
    assert tmp_path.is_dir() and list(tmp_path.iterdir()) == []


def test_remove_if_unused_keeps_a_folder_with_results(tmp_path):
    out = tmp_path / "r"
    created = prepare_results_folder(out)
    (out / "x.csv").write_text("written by the run\n")
    remove_if_unused(out, created)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "x.csv"]


def test_more_workers_than_cores_is_a_warning(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")  # makes the run stop right after the warning, before any study runs
    assert main(["variance", "--quick", "--workers", str(usable_cores() + 1),
                 "--out", str(blocker / "out")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"studies: warning: --workers {usable_cores() + 1} is more than the "
                      f"{usable_cores()} cores this process may use; cells will share cores and "
                      f"wall times will include the contention")
    assert err[1].startswith("studies: error: ") and len(err) == 2
    assert main(["variance", "--quick", "--workers", str(usable_cores()),
                 "--out", str(blocker / "out")]) == 1
    assert "warning" not in capsys.readouterr().err


# --- stale temporaries ----------------------------------------------------------------------------
def _aged(path: Path, seconds: float) -> Path:
    path.write_text("half-written\n")
    t = time.time() + seconds
    os.utime(path, (t, t))
    return path


def test_stale_temporaries_only_older_ones_only_in_marked_folders(tmp_path, user_folder):
    out = tmp_path / "r"
    prepare_results_folder(out)
    old = _aged(out / ".tmp-variance.csv-abc", -60)
    young = _aged(out / ".tmp-variance.png-def", +60)  # written after the run started
    other = _aged(out / "variance.csv", -60)
    assert remove_stale_temporaries(out, older_than=time.time()) == [old]
    assert not old.exists() and young.exists() and other.exists()
    theirs = _aged(user_folder / ".tmp-something", -60)
    assert remove_stale_temporaries(user_folder, older_than=time.time()) == []
    assert theirs.exists()


# --- a run killed with SIGKILL --------------------------------------------------------------------
KILLED_RUN = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    import pandas as pd
    from studies._runner import make_executor, run_study
    from studies._study import Study
    from studies._writer import StagedFiles, _temp_for, prepare_results_folder

    def slow_cell(params, seed):
        # announce this worker, then stand for a long cell
        open(os.path.join(params["pids"], str(os.getpid())), "w").close()
        time.sleep(120)
        return pd.DataFrame({{"i": [params["i"]]}})

    if __name__ == "__main__":
        out, pids = sys.argv[1], sys.argv[2]
        prepare_results_folder(out)
        _temp_for(__import__("pathlib").Path(out) / "slow.csv")  # a file being written when killed
        study = Study(name="slow", title="t", where="w", cell=slow_cell,
                      grid=lambda quick: [{{"i": i, "pids": pids}} for i in range(2)],
                      aggregate=lambda raw, quick: raw, claims=None, plot=None)
        with make_executor(workers=2) as ex:
            run_study(study, quick=True, seed=0, executor=ex, progress=False)
""")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigkilled_run_leaves_no_workers_and_the_next_run_cleans_up(tmp_path, capsys,
                                                                   fast_scheduler_timeout):
    script, out, pids = tmp_path / "killed_run.py", tmp_path / "results", tmp_path / "pids"
    pids.mkdir()
    script.write_text(KILLED_RUN.format(root=str(ROOT)))
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(pids)], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60  # spawning two interpreters that import pandas
        while len(list(pids.iterdir())) < 2:
            assert proc.poll() is None, "the run ended before its workers started"
            assert time.monotonic() < deadline, "the workers did not start within 60 s"
            time.sleep(0.1)
        workers = [int(p.name) for p in pids.iterdir()]
        assert all(_alive(w) for w in workers)
        # every process the run started: the workers and multiprocessing's resource tracker
        started = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        assert set(workers) <= set(started)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        gone_by = time.monotonic() + 5
        while any(_alive(w) for w in started) and time.monotonic() < gone_by:
            time.sleep(0.1)
        assert not [w for w in started if _alive(w)], "processes outlived their parent by 5 s"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in [int(p.name) for p in pids.iterdir()]:  # if the test failed, end its workers
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    stale = list(out.glob(".tmp-*"))
    assert [p.name.startswith(".tmp-slow.csv-") for p in stale] == [True]
    # the next run (here one that stops at the unreachable scheduler) removes the stale temporary
    assert main(["variance", "--quick", *UNREACHABLE, "--out", str(out)]) == 1
    _one_error_line(capsys)
    assert not list(out.glob(".tmp-*")) and (out / MARKER).is_file()
