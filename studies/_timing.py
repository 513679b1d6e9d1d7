"""Timing helpers of the timed studies (`complexity`, `hvp`).

    samples = timings({"f": f, "g": g}, budget=0.5)      # seconds per call, round-robin samples
    walls = median_walls({"f": f}, budget=0.5)           # the median of each
    c_free = fix_inputs(c, n_free, x)                    # the same circuit, inputs n_free.. fixed

The fits and intervals the claims decide on live in `studies._fits`.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

import testbed
from testbed import primitives as P

CLOCK = time.process_time  # CPU seconds of this process, all its threads (see `timings`)


def timings(calls: dict[str, Callable[[], object]], budget: float, min_reps: int = 3,
            max_reps: int = 15, min_sample: float | None = None,
            clock: Callable[[], float] = CLOCK) -> dict[str, np.ndarray]:
    """Time samples (seconds per call) of each call, timed as timeit does.

    The clock is the process's CPU time by default, not the wall clock: a competing process on
    the same core takes wall time from the call but adds no CPU time to it (it still costs some:
    shared caches and memory bandwidth), so a loaded machine shifts the measurement much less.
    BLAS is held to one thread while timing (threadpoolctl): the process's CPU time would
    otherwise add the other BLAS threads' spin-waiting, and the studies time one core per cell.

    A sample times `number` calls in a row, enough of them to last `min_sample` seconds (default
    budget / 25: 20 ms at a budget of 0.5 s): on a busy machine the scheduler takes the core away
    for whole time slices (milliseconds), and a sample that spans several slices loses the same
    fraction of its time whatever the call, so the ratios of short to long calls stay fair. The
    samples are taken round-robin over the calls (a change of load hits all of them alike),
    `budget` seconds' worth per call and min_reps..max_reps of them, after a warm-up: the first
    call builds plans and caches, the second (skipped when the first took over 0.2 s) sizes the
    samples. Sample i of every call is taken in the same round, so samples pair up across calls.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _timings(calls, budget, min_reps, max_reps,
                        budget / 25 if min_sample is None else min_sample, clock)


def _timings(calls: dict[str, Callable[[], object]], budget: float, min_reps: int, max_reps: int,
             min_sample: float, clock: Callable[[], float]) -> dict[str, np.ndarray]:
    plan = {}
    for name, fn in calls.items():
        t0 = clock()
        fn()
        dt = clock() - t0
        if dt < 0.2:
            t0 = clock()
            fn()
            dt = clock() - t0
        dt = max(dt, 1e-7)
        number = max(1, int(np.ceil(min_sample / dt)))
        plan[name] = (number, int(np.clip(budget / (number * dt), min_reps, max_reps)))
    times: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(max((reps for _, reps in plan.values()), default=0)):
        for name, fn in calls.items():
            number, reps = plan[name]
            if i < reps:
                t0 = clock()
                for _ in range(number):
                    fn()
                times[name].append(max(clock() - t0, 1e-9) / number)
    return {name: np.array(ts) for name, ts in times.items()}


def median_walls(calls: dict[str, Callable[[], object]], budget: float, min_reps: int = 3,
                 max_reps: int = 15, min_sample: float | None = None,
                 clock: Callable[[], float] = CLOCK) -> dict[str, float]:
    """The median of `timings(...)` per call (s)."""
    return {name: float(np.median(ts))
            for name, ts in timings(calls, budget, min_reps, max_reps, min_sample, clock).items()}


def paired_log_ratio(num: np.ndarray, den: np.ndarray) -> float:
    """Median over rounds of log(num_i / den_i): two calls' samples taken in the same round."""
    n = min(len(num), len(den))
    return float(np.median(np.log(np.asarray(num[:n]) / np.asarray(den[:n]))))


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Building 10^5-10^6 node objects: Python's cyclic collector only slows it down (several
    times at 10^6 objects), and it frees nothing there."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def import_jax() -> object:
    """jax with float64 on; one XLA thread per process when jax is first imported here.

    The runner gives each worker one BLAS thread (two workers share two cores); XLA's own thread
    pool would otherwise compete with the other worker's timings.
    """
    if "jax" not in sys.modules:
        os.environ.setdefault("XLA_FLAGS",
                              "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def fix_inputs(c: testbed.Circuit, n_free: int, x: np.ndarray) -> testbed.Circuit:
    """The same circuit with inputs x_{n_free}, ..., x_{l-1} held as constants at x's values.

    Slots, operations and levels are unchanged (inputs and constants are not operations, so N is
    the same): only the number of free inputs, l' = n_free, changes. f'(x[:n_free]) = f(x).
    """
    if not 1 <= n_free <= c.l:
        raise ValueError(f"n_free must be in 1..{c.l}, got {n_free}")
    op, consts = c.op.copy(), c.consts.copy()
    op[n_free:c.l] = P.CONST
    consts[n_free:c.l] = np.asarray(x, dtype=np.float64)[n_free:c.l]
    return testbed.Circuit(n_free, op, c.a0, c.a1, consts, c.outputs, level=c.level)
