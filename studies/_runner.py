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
import gc
import logging
import multiprocessing
import os
import socket
import sys
import time
from collections.abc import Iterator

import pandas as pd

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
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
        try:
            yield ex
        except BaseException:
            ex.shutdown(wait=True, cancel_futures=True)
            raise


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


def run_cells(study: Study, cells: list[dict], seed: int, executor: cf.Executor,
              progress: bool | None = None) -> tuple[list[pd.DataFrame], list[float]]:
    """Submit every cell, collect their frames in grid order (with a tqdm bar if `progress`)."""
    from tqdm.auto import tqdm

    progress = progress_enabled() if progress is None else progress
    futures = {executor.submit(_timed, study.cell, params, seed): i
               for i, params in enumerate(cells)}
    frames: list[pd.DataFrame | None] = [None] * len(cells)
    walls = [0.0] * len(cells)
    with tqdm(total=len(cells), desc=study.name, unit="cell", disable=not progress,
              leave=False) as bar:
        try:
            for fut in cf.as_completed(futures):
                i = futures[fut]
                try:
                    frames[i], walls[i] = fut.result()
                except Exception as exc:
                    first = (str(exc).splitlines() or [""])[0]  # the CLI prints one line
                    raise RunError(f"{study.name}: cell {cells[i]} failed: "
                                   f"{type(exc).__name__}: {first}") from exc
                bar.update()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return frames, walls  # type: ignore[return-value]


def run_study(study: Study, *, quick: bool, seed: int, executor: cf.Executor,
              progress: bool | None = None) -> StudyResult:
    """Run the grid, aggregate, evaluate the claims: the tables, not yet written anywhere."""
    t0 = time.perf_counter()
    cells = study.grid(quick)
    frames, walls = run_cells(study, cells, seed, executor, progress)
    raw = pd.concat(frames, ignore_index=True)
    table = study.aggregate(raw, quick)
    claims = study.claims(table, quick)
    summary = study.summarise(table) if study.summarise is not None else None
    meta = {"study": study.name, "title": study.title, "where": study.where, "quick": quick,
            "seed": seed, "cells": len(cells), "wall_s": round(time.perf_counter() - t0, 2),
            "cell_wall_s_sum": round(sum(walls), 2)}
    return StudyResult(study, table, claims, summary, meta)
