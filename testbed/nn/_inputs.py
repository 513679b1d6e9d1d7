"""Validation of the data a network is applied to (x, y and directions shaped like them), and the
check that what the passes computed from them is finite.

Internally every batch is 2-D with examples in rows: x of shape (m, n[0]), y and tau of shape
(m, n[r]). One example may be given as a 1-D x of shape (n[0],) (the notes' column vector).
Inputs must be real numbers: float or integer arrays. Complex numbers, strings and objects are
rejected (TypeError), and so are bools: a bool array is almost always a mask passed by mistake,
and 1.0 * mask says so explicitly.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import NetworkNonFiniteError, NetworkShapeError
from .network import Network, _nonfinite_summary, as_float

Array = np.ndarray


def check_finite(arr: Array, what: str) -> None:
    if not np.isfinite(arr).all():
        raise NetworkNonFiniteError(f"{what} (shape {arr.shape}) holds {_nonfinite_summary(arr)}")


def all_finite(arr: Array) -> bool:
    """Whether every entry is finite, in one reduction when it is (the common case).

    Any inf or nan makes the sum inf or nan; a sum that merely overflows is a false alarm, so it
    falls back to the exact test. Call under np.errstate(over="ignore", invalid="ignore").
    """
    return math.isfinite(arr.sum()) or bool(np.isfinite(arr).all())


def product_finite(left: Array, right: Array, product: Array) -> bool:
    """Whether product = left^T right (a sum over the m rows of both) is finite.

    Each entry is a sum of m products, so |entry| <= m max|left| max|right|: when that bound
    (doubled, for rounding) is finite, so is every entry, and reading the two factors is cheaper
    than reading the product whenever they are smaller (one example against an (n, n) dJ/dW).
    Otherwise, or when the bound is not finite, the product itself is read.
    """
    if left.size + right.size < product.size:
        bound = 2.0 * left.shape[0] * float(np.max(np.abs(left))) * float(np.max(np.abs(right)))
        if math.isfinite(bound):
            return True
    return all_finite(product)


def overflow(k: int, what: str, arr: Array, why: str = "") -> NetworkNonFiniteError:
    """The error for a quantity a pass computed from finite inputs that came out non-finite."""
    finite = np.abs(arr[np.isfinite(arr)])
    largest = f"{finite.max():.3g}" if finite.size else "none"
    return NetworkNonFiniteError(
        f"layer k={k}: {what} overflowed although every input is finite: it holds "
        f"{_nonfinite_summary(arr)} (largest finite |entry| {largest}){why}"
    )


def first_nonfinite(quantities: list[tuple[int, str, Array | None]]) -> NetworkNonFiniteError | None:
    """The error for the first non-finite (k, name, array) in computation order, None if none is."""
    for k, what, arr in quantities:
        if arr is not None and not all_finite(np.asarray(arr)):
            return overflow(k, what, np.asarray(arr))
    return None


def as_input(net: Network, x: object, what: str = "x") -> tuple[Array, bool]:
    """(x as (m, n[0]), whether it was one example of shape (n[0],))."""
    n0 = net.W[1].shape[1]
    x = as_float(x, what, f"({n0},) or (m, {n0})")
    if x.ndim == 1 and x.shape[0] == n0:
        single = True
        x2 = x.reshape(1, n0)
    elif x.ndim == 2 and x.shape[1] == n0 and x.shape[0] >= 1:
        single = False
        x2 = x
    else:
        raise NetworkShapeError(
            f"layer k=1: {what} has shape {x.shape} but W[1] has shape {net.W[1].shape}, so "
            f"{what} must be one example ({n0},) or a batch (m, {n0}) with m >= 1"
        )
    check_finite(x2, what)
    return x2, single


def as_target(net: Network, y: object, m: int, single: bool, what: str = "y") -> Array:
    """y as (m, n[r]), matching tau = z[r]; a 1-D (m,) or scalar y is accepted when n[r] = 1."""
    r, nr = net.depth, net.W[-1].shape[0]
    y = as_float(y, what, f"({nr},) or (m, {nr})")
    if single:
        ok = y.shape == (nr,) or (nr == 1 and y.ndim == 0)
        want = f"({nr},)" + (" or a scalar" if nr == 1 else "")
    else:
        ok = y.shape == (m, nr) or (nr == 1 and y.shape == (m,))
        want = f"({m}, {nr})" + (f" or ({m},)" if nr == 1 else "")
    if not ok:
        raise NetworkShapeError(
            f"layer k={r}: {what} has shape {y.shape} but tau = z[{r}] has shape "
            f"{(nr,) if single else (m, nr)} (W[{r}] has shape {net.W[-1].shape}, m={m} "
            f"example{'s' if m != 1 else ''}); {what} must be {want}"
        )
    y2 = y.reshape(m, nr)
    check_finite(y2, what)
    return y2
