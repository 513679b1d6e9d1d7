"""check_grads: a jax.test_util.check_grads-style checker for users' own circuits."""

from __future__ import annotations

import numpy as np

from . import transforms as T
from .circuit import Circuit
from .errors import GradientCheckError, TestbedError
from .evaluate import as_points, evaluate


def _central(c: Circuit, x: np.ndarray, v: np.ndarray, eps: float, executor: str) -> np.ndarray:
    """(f(x + eps v) - f(x - eps v)) / (2 eps): error ~ eps^2 |f'''| + float64 eps / eps."""
    return (np.atleast_1d(evaluate(c, x + eps * v, executor))
            - np.atleast_1d(evaluate(c, x - eps * v, executor))) / (2 * eps)


def _agree(a: np.ndarray, b: np.ndarray, tol: float) -> float:
    a, b = np.atleast_1d(a), np.atleast_1d(b)
    return float(np.max(np.abs(a - b) / (1.0 + np.abs(b)), initial=0.0)) / tol


def check_grads(c: Circuit, x: object, order: int = 2, modes: tuple = ("fwd", "rev"),
                eps: float | None = None, tol: float = 1e-5,
                rng: np.random.Generator | None = None, executor: str = "auto") -> dict[str, float]:
    """Check c's derivatives at x against central differences along random directions.

    For each order (1: c itself; 2: its gradient circuit, i.e. Hessian-vector products):
      fwd  jvp(c, x, v) = lim (c(x + e v) - c(x - e v)) / 2e, to `tol` (relative, floor 1)
      rev  <u, jvp(c, x, v)> = <vjp(c, x, u), v> to 1e-10 (both exact: the inner-product identity),
           and <vjp(c, x, u), v> against the difference quotient of <u, c> to `tol`
    The default tol 1e-5 is the central difference's own error with eps ~ 1e-5 (eps^2 truncation
    plus roundoff 1e-16/eps), as in jax.test_util.check_grads. Directions are drawn from `rng`
    (default: a Generator seeded with 0); every sweep runs on `executor` (as in `evaluate`).
    Returns each check's error in units of its tolerance; raises GradientCheckError naming the
    order and mode that failed.
    """
    if order not in (1, 2):
        raise TestbedError(f"order must be 1 or 2, got {order!r}")
    if not set(modes) <= {"fwd", "rev"} or not modes:
        raise TestbedError(f"modes must be a non-empty subset of ('fwd', 'rev'), got {modes!r}")
    X, batched = as_points(c, x)
    if batched:
        raise TestbedError("check_grads takes one point of shape (l,)")
    rng = np.random.default_rng(0) if rng is None else rng
    eps = 1e-5 * max(1.0, float(np.max(np.abs(X)))) if eps is None else eps
    report: dict[str, float] = {}
    circuits = [c] if order == 1 else [c, T.grad(c)]
    for n, f in enumerate(circuits, start=1):
        v = rng.standard_normal(f.l)
        v /= np.linalg.norm(v)
        u = rng.standard_normal(f.n_outputs)
        _, jv = T.jvp(f, X, v, executor)
        jv = np.atleast_1d(jv)
        fd = _central(f, X, v, eps, executor)
        if "fwd" in modes:
            report[f"order{n}/fwd"] = _agree(jv, fd, tol)
        if "rev" in modes:
            _, ju = T.vjp(f, X, u, executor)
            lhs, rhs = float(u @ jv), float(ju @ v)
            # both sides are exact up to rounding, which is relative to the magnitudes the two
            # sweeps went through, not to the (possibly tiny, e.g. sigma''(0) = 0) result
            S = max(1.0, float(np.max(np.abs(f.slot_values(X)))))
            scale = (float(np.abs(u) @ np.abs(jv)) + float(np.abs(ju) @ np.abs(v))
                     + float(np.abs(u).sum() * np.abs(v).sum()) * S * 1e-6)
            report[f"order{n}/rev-identity"] = abs(lhs - rhs) / scale / 1e-10
            report[f"order{n}/rev"] = _agree(rhs, float(u @ fd), tol)
    worst = max(report, key=report.get)
    if report[worst] > 1.0:
        raise GradientCheckError(
            f"check_grads failed at {worst}: error {report[worst]:.3g} x tolerance "
            f"(all: {', '.join(f'{k}={v:.2g}' for k, v in report.items())})")
    return report
