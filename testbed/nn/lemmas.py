"""The lecture notes' three lemmas, the only calculus backprop needs.

Each works on one example (1-D vectors, the notes' column vectors) or on a batch of m examples
(2-D arrays, one example per row). For a batch, J is the mean of the per-example losses, and the
parameter gradients are sums over the rows of per-example terms: the 1/m of the mean enters once,
in Lemma 3, and flows through the others.
"""

from __future__ import annotations

import numpy as np

from .activations import Activation, get_activation
from .errors import NetworkShapeError

Array = np.ndarray


def lemma1(dJ_dz: Array, a_prev: Array, W: Array, need_da_prev: bool = True,
           k: int | None = None,
           out: tuple[Array, Array] | None = None) -> tuple[Array, Array, Array | None]:
    """Lemma 1 (linear combination z = W a + b): the gradients w.r.t. W, b and a from dJ/dz.

        dJ/dW = dJ/dz a^T        (n[k], n[k-1]); for a batch, sum_i dJ/dz_i a_i^T = dJ_dz^T a_prev
        dJ/db = dJ/dz            (n[k],);        for a batch, sum_i dJ/dz_i
        dJ/da = W^T dJ/dz        (n[k-1],);      for a batch, row i is W^T dJ/dz_i: dJ_dz W

    Args:
        dJ_dz: (n[k],) or (m, n[k]).
        a_prev: a[k-1], (n[k-1],) or (m, n[k-1]).
        W: W[k], (n[k], n[k-1]).
        need_da_prev: False skips dJ/da (one matmul), as backprop does at k = 1 unless dJ/dx
            is wanted.
        k: the layer, only for error messages.
        out: arrays shaped like (W, b) to write dJ/dW and dJ/db into (batch form only), instead
            of allocating them: for wide layers a fresh (n[k], n[k-1]) array costs page faults.
    Returns:
        (dJ/dW, dJ/db, dJ/da[k-1] or None).
    """
    if dJ_dz.ndim != a_prev.ndim or W.shape != (dJ_dz.shape[-1], a_prev.shape[-1]) or (
            dJ_dz.ndim == 2 and dJ_dz.shape[0] != a_prev.shape[0]):
        where = f"layer k={k}: " if k is not None else ""
        raise NetworkShapeError(
            f"{where}lemma1 needs dJ/dz (m, n[k]), a[k-1] (m, n[k-1]), W[k] (n[k], n[k-1]); got "
            f"dJ/dz {dJ_dz.shape}, a[k-1] {a_prev.shape}, W[k] {W.shape}"
        )
    if dJ_dz.ndim == 1:
        return np.outer(dJ_dz, a_prev), dJ_dz.copy(), (dJ_dz @ W if need_da_prev else None)
    out_dW, out_db = (None, None) if out is None else out
    if dJ_dz.shape[0] == 1:
        # one example: dJ/dW is an outer product, which BLAS's gemm with an inner dimension of 1
        # computes 2-3x slower than a broadcast multiply (the same products, so the same bits)
        dJ_dW = np.multiply(dJ_dz.T, a_prev, out=out_dW)
    else:
        # dJ_dz.T is a transposed view: BLAS reads it in place, no copy is made
        dJ_dW = np.matmul(dJ_dz.T, a_prev, out=out_dW)
    dJ_db = np.sum(dJ_dz, axis=0, out=out_db)
    dJ_da_prev = dJ_dz @ W if need_da_prev else None
    return dJ_dW, dJ_db, dJ_da_prev


def lemma2(dJ_da: Array, z: Array, activation: str | Activation) -> Array:
    """Lemma 2 (activation a = sigma(z), elementwise): dJ/dz = dJ/da ⊙ sigma'(z).

    Shapes: dJ_da and z both (n[k],) or both (m, n[k]).
    """
    if dJ_da.shape != z.shape:
        raise NetworkShapeError(
            f"lemma2 needs dJ/da and z of one shape, got {dJ_da.shape} and {z.shape}"
        )
    return dJ_da * get_activation(activation).dsigma(z)


def lemma3(y: Array, tau: Array) -> Array:
    """Lemma 3 (output layer, J = 1/2 ||y - tau||^2): dJ/dtau = -(y - tau).

    Convention for a batch: tau and y of shape (m, n[r]) and J = (1/m) sum_i 1/2 ||y_i - tau_i||^2
    (the mean over examples, summed over outputs), so row i of dJ/dtau is -(y_i - tau_i) / m.
    For one example (1-D tau) it is the notes' -(y - tau) exactly.
    """
    if np.shape(y) != tau.shape:
        raise NetworkShapeError(f"lemma3 needs y and tau of one shape, got {np.shape(y)} and "
                                f"{tau.shape}")
    if tau.ndim == 1:
        return tau - y
    # (tau - y) / m is -(y - tau) / m, written without the extra negation pass
    return (tau - y) / tau.shape[0]
