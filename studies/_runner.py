"""Run a study's grid of cells on a concurrent.futures executor: local processes or a Dask cluster.

    with make_executor(workers=2) as ex:                      # ProcessPoolExecutor (spawn)
        result = run_study(STUDY, quick=True, seed=0, executor=ex)
    with make_executor(scheduler="tcp://host:8786") as ex:    # Client(...).get_executor()
        ...

Both are `concurrent.futures.Executor`s and receive the same picklable cell function; results are
put back in grid order, so the tables do not depend on which worker finished first.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime
import gc
import logging
import multiprocessing
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from ._claims import INCONCLUSIVE, QUICK_UNDECIDABLE, VERDICTS
from ._study import Study, StudyResult

SCHEDULER_TIMEOUT_S = 5.0


class RunError(RuntimeError):
    """A run that cannot start or finish (unreachable scheduler, a failing cell)."""


def progress_enabled() -> bool:
    """A progress bar only on a terminal and never in CI (CI=true or 1)."""
    in_ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
    return sys.stderr.isatty() and not in_ci


def _limit_blas_threads(workers: int) -> None:
    # Each worker process gets cores // workers BLAS threads, so that K workers doing matmuls do not
    # oversubscribe the machine. Must be in the environment before a worker imports numpy; explicit
    # user settings win.
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)


#: names the folder where a run keeps the circuits it built (see _engine.built_circuit)
CIRCUITS_ENV = "TESTBED_STUDY_CIRCUITS"


@contextlib.contextmanager
def make_executor(workers: int | None = None, scheduler: str | None = None,
                  timeout: float | None = None) -> Iterator[cf.Executor]:
    """A process pool of `workers` (default: all cores), or a Dask executor if `scheduler` is given.

    Raises RunError, within `timeout` seconds (default SCHEDULER_TIMEOUT_S), when the scheduler
    cannot be reached.
    """
    if scheduler is not None:
        client = _connect(scheduler, SCHEDULER_TIMEOUT_S if timeout is None else timeout)
        try:
            yield client.get_executor()
        finally:
            client.close()
        return
    workers = workers or os.cpu_count() or 1
    _limit_blas_threads(workers)
    # spawn, not fork: the parent may have imported JAX (threads), which fork would copy half-done
    ctx = multiprocessing.get_context("spawn")
    # the run's built circuits (_engine.built_circuit), in a folder of its own that goes with the
    # pool; each worker is told its name when it starts (the parent's environment is left alone)
    with tempfile.TemporaryDirectory(prefix="testbed-circuits-") as circuits, \
            cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_start_worker,
                                   initargs=(os.getpid(), circuits)) as ex:
        try:
            yield ex
        except BaseException:
            ex.shutdown(wait=True, cancel_futures=True)
            raise


WATCHDOG_INTERVAL_S = 0.5


def _start_worker(parent: int, circuits: str) -> None:
    """Worker initializer: the folder of the run's built circuits, then `_watch_parent`."""
    os.environ[CIRCUITS_ENV] = circuits
    _watch_parent(parent)


def _watch_parent(parent: int) -> None:
    """Worker initializer: exit as soon as the process that started the pool is gone.

    A worker blocked in a long cell would otherwise outlive a parent killed with SIGKILL (which
    runs no clean-up). A daemon thread polls os.getppid(): when the parent dies the worker is
    re-parented, so its parent id changes (POSIX). On Linux the kernel also sends SIGKILL at the
    parent's death (prctl PR_SET_PDEATHSIG), which needs no thread to get the GIL. (The kernel
    signal fires when the parent *thread* that started the worker ends: the pool submits from the
    thread inside `make_executor`'s block, which outlives the pool.)
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        except (OSError, AttributeError):
            pass  # the polling thread below still ends the worker
    if os.getppid() != parent:  # the parent died before this worker started
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCHDOG_INTERVAL_S)
        os._exit(1)  # no clean-up: the parent, who would collect the results, is gone

    threading.Thread(target=watch, name="testbed-parent-watchdog", daemon=True).start()


def _probe(address: str, timeout: float) -> None:
    """Fail fast when nothing listens at a tcp/tls address (a Client would retry until timeout)."""
    from distributed.comm import parse_address, parse_host_port

    scheme, location = parse_address(address)
    if scheme in ("tcp", "tls"):
        host, port = parse_host_port(location)
        with socket.create_connection((host, port), timeout=timeout):
            pass


def _connect(address: str, timeout: float):  # -> distributed.Client
    try:
        from distributed import Client
    except ImportError as exc:
        raise RunError("--scheduler needs dask.distributed: pip install 'testbed[dask]'") from exc
    # distributed logs every failed connection attempt; the CLI reports one line instead
    quiet = [logging.getLogger(n)
             for n in ("distributed", "distributed.client", "distributed.comm")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.CRITICAL)
    reason = None
    try:
        _probe(address, timeout)
        return Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # OSError, TimeoutError, ValueError for a malformed address, ...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    finally:
        for lg, level in zip(quiet, levels, strict=True):
            lg.setLevel(level)
    # A Client that failed to start complains from its __del__ when collected; collect it now,
    # with that complaint silenced, so the user sees one line.
    hook, sys.unraisablehook = sys.unraisablehook, lambda _: None
    try:
        gc.collect()
    finally:
        sys.unraisablehook = hook
    raise RunError(f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s "
                   f"({reason})")


def _timed(cell, params: dict, seed: int) -> tuple[pd.DataFrame, float]:
    # module-level so that it pickles; the cell's own wall time, measured where it ran
    t0 = time.perf_counter()
    frame = cell(params, seed)
    return frame, time.perf_counter() - t0


def describe_cell(params: dict, width: int = 100) -> str:
    """A short one-line description of a cell's params for the log: scalars as they are, a list or
    dict by its length, cut to `width` characters."""
    parts = [f"{k}={v}" if isinstance(v, str | int | float | bool | None)
             else f"{k}=<{len(v)} items>" if hasattr(v, "__len__") else f"{k}={type(v).__name__}"
             for k, v in params.items()]
    text = ", ".join(parts)
    return text if len(text) <= width else text[:width - 3] + "..."


def run_cells(study: Study, cells: list[dict], seed: int, executor: cf.Executor,
              progress: bool | None = None, log: Callable[[str], None] | None = None,
              ) -> tuple[list[pd.DataFrame], list[float]]:
    """Submit every cell, collect their frames in grid order (with a tqdm bar if `progress`).

    The cells `study.alone` marks run after all the others, one at a time (each submitted when
    the previous one is done), so nothing else runs beside them.
    `log`, if given, gets one line per finished cell (`NAME: cell k/n done (s): params`)."""
    from tqdm.auto import tqdm

    progress = progress_enabled() if progress is None else progress
    alone = [i for i, params in enumerate(cells) if study.alone is not None and study.alone(params)]
    shared = sorted(set(range(len(cells))) - set(alone))
    frames: list[pd.DataFrame | None] = [None] * len(cells)
    walls = [0.0] * len(cells)
    futures: dict[cf.Future, int] = {}
    done = 0

    def collect(batch: dict[cf.Future, int], bar: object) -> None:
        nonlocal done
        for fut in cf.as_completed(batch):
            i = batch[fut]
            try:
                frames[i], walls[i] = fut.result()
            except Exception as exc:
                first = (str(exc).splitlines() or [""])[0]  # the CLI prints one line
                raise RunError(f"{study.name}: cell {cells[i]} failed: "
                               f"{type(exc).__name__}: {first}") from exc
            done += 1
            bar.update()
            if log is not None:
                log(f"{study.name}: cell {done}/{len(cells)} done ({walls[i]:.2f} s): "
                    f"{describe_cell(cells[i])}")

    with tqdm(total=len(cells), desc=study.name, unit="cell", disable=not progress,
              leave=False) as bar:
        try:
            futures = {executor.submit(_timed, study.cell, cells[i], seed): i for i in shared}
            collect(futures, bar)
            for i in alone:
                one = {executor.submit(_timed, study.cell, cells[i], seed): i}
                futures.update(one)
                collect(one, bar)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return frames, walls  # type: ignore[return-value]


QUICK_REMEASURE_BUDGET_S = 5.0


def _undecided(claims: pd.DataFrame) -> frozenset[str]:
    """The ids of the claims inconclusive for want of data, which more repetitions can supply."""
    reason = claims["reason"] if "reason" in claims.columns else ""
    return frozenset(claims.loc[(claims["verdict"] == INCONCLUSIVE) & (reason != QUICK_UNDECIDABLE),
                                "id"])


def _verdicts(claims: pd.DataFrame) -> dict[str, int]:
    return {v: int((claims["verdict"] == v).sum()) for v in VERDICTS}


def run_study(study: Study, *, quick: bool, seed: int, executor: cf.Executor,
              progress: bool | None = None, log: Callable[[str], None] | None = None,
              ) -> StudyResult:
    """Run the grid, aggregate, evaluate the claims: the tables, not yet written anywhere.

    A timed study with a `remeasure` whose claims include an INCONCLUSIVE one is re-measured:
    attempt k = 1, 2, ... runs the cells `remeasure(params, k, ids)` returns (skipping None; ids
    are the inconclusive claims' ids, so that a study re-runs only the cells they rest on), appends
    their rows to the raw rows, aggregates and claims again; it stops when no claim is
    inconclusive or when the attempts so far have used `remeasure_budget_s` (an attempt is started
    only while the budget is not spent, so the last one may overrun it by its own length). Quick
    mode caps the budget at QUICK_REMEASURE_BUDGET_S, so that the path runs but stays short.
    Claims INCONCLUSIVE only because quick mode cannot decide them (reason QUICK_UNDECIDABLE) do
    not trigger it: more repetitions would not change them. meta["remeasure"] records the
    attempts, the budget and the seconds used.

    `log`, if given, gets the progress line by line: the number of cells, each finished cell
    (`run_cells`), each re-measurement attempt.
    """
    t0 = time.perf_counter()
    cells = study.grid(quick)
    if log is not None:
        log(f"{study.name}: {len(cells)} cells ({'quick' if quick else 'full'} mode, seed {seed})")
    frames, walls = run_cells(study, cells, seed, executor, progress, log)
    raw = pd.concat(frames, ignore_index=True)
    table = study.aggregate(raw, quick)
    claims = study.claims(table, quick)
    meta_remeasure = None
    if study.timed and study.remeasure is not None:
        before = _verdicts(claims)
        budget = study.remeasure_budget_s
        if quick:
            budget = min(budget, QUICK_REMEASURE_BUDGET_S)
        attempts, used = 0, 0.0
        while (undecided := _undecided(claims)) and used < budget:
            more = [p for p in (study.remeasure(dict(c), attempts + 1, undecided) for c in cells)
                    if p is not None]
            if not more:
                break
            t1 = time.perf_counter()
            if log is not None:
                log(f"{study.name}: re-measurement attempt {attempts + 1}: {len(more)} cells for "
                    f"the inconclusive claims {', '.join(sorted(undecided))} ({used:.1f} s of "
                    f"the {budget:g} s budget used)")
            new_frames, new_walls = run_cells(study, more, seed, executor, progress, log)
            attempts += 1
            walls += new_walls
            raw = pd.concat([raw, *new_frames], ignore_index=True)
            table = study.aggregate(raw, quick)
            claims = study.claims(table, quick)
            used += time.perf_counter() - t1
        meta_remeasure = {"attempts": attempts, "budget_s": budget,
                          "used_s": round(used, 2), "verdicts_before": before,
                          "verdicts_after": _verdicts(claims)}
    summary = study.summarise(table) if study.summarise is not None else None
    meta = {"study": study.name, "title": study.title, "where": study.where, "quick": quick,
            "seed": seed, "cells": len(cells), "wall_s": round(time.perf_counter() - t0, 2),
            "cell_wall_s_sum": round(sum(walls), 2), "environment": environment()}
    if "executor" in table.columns:  # which executors the circuits ran on, read off the table
        meta["executors"] = sorted(str(e) for e in table["executor"].dropna().unique())
    if meta_remeasure is not None:
        meta["remeasure"] = meta_remeasure
    return StudyResult(study, table, claims, summary, meta)


def _blas() -> str:
    # numpy >= 1.26 describes its build as a dict; older ones only print it
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]
        blas = deps.get("blas", {})
        text = " ".join(str(blas.get(k, "")) for k in ("name", "version")).strip()
        return text or "unknown"
    except Exception:  # noqa: BLE001 (a missing description is "unknown", not a failed run)
        return "unknown"


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS tells, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def environment() -> dict:
    """What the figures were measured with: python, numpy, jax, numba, blas, cpu, cores, date
    (UTC)."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:  # say so rather than fail the run
            return "not installed"

    return {"python": platform.python_version(), "numpy": np.__version__,
            "jax": installed("jax"), "numba": installed("numba"),
            "blas": _blas(), "cpu": _cpu(), "cores": usable_cores(),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
