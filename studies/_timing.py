"""Timing and fitting helpers of the timed studies (`complexity`, `hvp`).

    samples = timings({"f": f, "g": g}, budget=0.5)      # seconds per call, round-robin samples
    b, lo, hi, n = loglog_fit(x, t)                      # slope of log t on log x, 95% t-interval
    a, b, b_lo, b_hi, n = linear_fit(x, t)               # t = a + b x, 95% t-interval of b
    lo, hi = mean_interval(values)                       # 95% t-interval of a mean
    c_free = fix_inputs(c, n_free, x)                    # the same circuit, inputs n_free.. fixed

Every interval here is a 95% Student-t interval; a claim decides on it (see `studies._claims`).
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


def _t975(dof: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, dof))


def loglog_fit(x: object, y: object) -> tuple[float, float, float, int]:
    """(slope, 95% low, 95% high, points) of the least-squares line log y = a + b log x.

    The interval is b +- t_{0.975, n-2} SE(b); NaN when there are fewer than 3 usable points
    (the slope itself needs 2). Several y at the same x (repeated measurements) all count.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    X, Y = np.log(x[ok]), np.log(y[ok])
    n = int(ok.sum())
    if n < 2 or np.ptp(X) == 0:
        return np.nan, np.nan, np.nan, n
    b, a = np.polyfit(X, Y, 1)
    if n < 3:
        return float(b), np.nan, np.nan, n
    resid = Y - (a + b * X)
    se = np.sqrt(resid @ resid / (n - 2) / ((X - X.mean()) ** 2).sum())
    t = _t975(n - 2)
    return float(b), float(b - t * se), float(b + t * se), n


def linear_fit(x: object, y: object) -> tuple[float, float, float, float, int]:
    """(a, b, 95% low of b, 95% high of b, points) of the least-squares line y = a + b x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    X, Y = x[ok], y[ok]
    n = int(ok.sum())
    if n < 3 or np.ptp(X) == 0:
        return np.nan, np.nan, np.nan, np.nan, n
    b, a = np.polyfit(X, Y, 1)
    resid = Y - (a + b * X)
    se = np.sqrt(resid @ resid / (n - 2) / ((X - X.mean()) ** 2).sum())
    t = _t975(n - 2)
    return float(a), float(b), float(b - t * se), float(b + t * se), n


def mean_interval(values: object) -> tuple[float, float, float, int]:
    """(mean, 95% low, 95% high, n): the Student-t interval of the mean of `values`."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n < 2:
        m = float(v.mean()) if n else np.nan
        return m, np.nan, np.nan, n
    m, se = float(v.mean()), float(v.std(ddof=1) / np.sqrt(n))
    t = _t975(n - 1)
    return m, m - t * se, m + t * se, n


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
