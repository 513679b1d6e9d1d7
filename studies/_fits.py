"""The fits and intervals every study uses, in one place.

    b, lo, hi, n = loglog_fit(x, y)          # slope of log y on log x, 95% t-interval
    a, b, lo, hi, n = linear_fit(x, y)       # y = a + b x, 95% t-interval of b
    m, lo, hi, n = mean_interval(values)     # the mean and its 95% t-interval
    b = slope(x, y, log_x=True, log_y=True)  # a least-squares slope alone (no interval)
    t95(n)                                   # Student's t quantile for n values (n - 1 dof)

Every interval here is a 95% Student-t interval; a claim decides on it (see `studies._claims`).
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def t95(n: float, dof: float | None = None) -> float:
    """Student's t quantile for a two-sided 95% interval: n - 1 degrees of freedom for the mean of
    n values, or `dof` given explicitly (n - 2 for a fitted line); NaN below one degree."""
    d = n - 1 if dof is None else dof
    return float(stats.t.ppf(0.975, d)) if d >= 1 else float("nan")


def _line(X: np.ndarray, Y: np.ndarray) -> tuple[float, float, float]:
    """(intercept, slope, standard error of the slope) of the least-squares line through (X, Y)."""
    b, a = np.polyfit(X, Y, 1)
    n = len(X)
    if n < 3:
        return float(a), float(b), np.nan
    resid = Y - (a + b * X)
    se = np.sqrt(resid @ resid / (n - 2) / ((X - X.mean()) ** 2).sum())
    return float(a), float(b), float(se)


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
    _, b, se = _line(X, Y)
    if n < 3:
        return b, np.nan, np.nan, n
    t = t95(n, n - 2)
    return b, b - t * se, b + t * se, n


def linear_fit(x: object, y: object) -> tuple[float, float, float, float, int]:
    """(a, b, 95% low of b, 95% high of b, points) of the least-squares line y = a + b x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    X, Y = x[ok], y[ok]
    n = int(ok.sum())
    if n < 3 or np.ptp(X) == 0:
        return np.nan, np.nan, np.nan, np.nan, n
    a, b, se = _line(X, Y)
    t = t95(n, n - 2)
    return a, b, b - t * se, b + t * se, n


def mean_interval(values: object) -> tuple[float, float, float, int]:
    """(mean, 95% low, 95% high, n): the Student-t interval of the mean of the finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n < 2:
        m = float(v.mean()) if n else np.nan
        return m, np.nan, np.nan, n
    m, se = float(v.mean()), float(v.std(ddof=1) / np.sqrt(n))
    t = t95(n)
    return m, m - t * se, m + t * se, n


def slope(x: object, y: object, log_x: bool = True, log_y: bool = True,
          log: object = np.log) -> float:
    """The least-squares slope of (log) y on (log) x over the usable points, no interval (NaN
    with fewer than two); `log` the logarithm taken (np.log10 where a study reads decades)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & ((x > 0) if log_x else True) & ((y > 0) if log_y else True)
    if ok.sum() < 2:
        return np.nan
    X = log(x[ok]) if log_x else x[ok]
    Y = log(y[ok]) if log_y else y[ok]
    if np.ptp(X) == 0:
        return np.nan
    return float(np.polyfit(X, Y, 1)[0])
