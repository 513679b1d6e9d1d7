"""The forward pass, the loss, and backprop: the notes' algorithm, batched.

Forward, k = 1..r:    z[k] = W[k] a[k-1] + b[k],   a[k] = sigma(z[k]) (k < r),   tau = z[r]
Loss:                 J = (1/m) sum_i 1/2 ||y_i - tau_i||^2
Backward, k = r..1:   dJ/dz[r] = -(y - tau) / m                                   (Lemma 3)
                      dJ/dW[k], dJ/db[k], dJ/da[k-1] from dJ/dz[k]                (Lemma 1)
                      dJ/dz[k-1] = dJ/da[k-1] ⊙ sigma'(z[k-1])                    (Lemma 2)

A batch holds one example per row: a[k] is (m, n[k]), so z[k] = a[k-1] W[k]^T + b[k] is one matmul
for all m examples (W[k]^T is a transposed view that BLAS reads in place), and the backward pass is
two matmuls per layer (one at k = 1 unless dJ/dx is wanted). Cost: forward r matmuls, gradient
3r - 1 (3r with dJ/dx): the cheap-gradient principle's factor 3.

Nothing non-finite is returned: finite parameters and data can still overflow (x ~ 1e200 through an
identity layer), and every public function then raises NetworkNonFiniteError naming the layer k and
the quantity (z[k], J, dJ/dz[k], dJ/dW[k], ...) that overflowed first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import checkpoint as _ckpt
from ._inputs import all_finite, as_input, as_target, first_nonfinite, overflow, product_finite
from .activations import get_activation
from .errors import NetworkNonFiniteError, NetworkShapeError
from .lemmas import lemma1, lemma2, lemma3
from .network import Network

Array = np.ndarray


@dataclass(eq=False)
class Cache:
    """What the forward pass keeps for the backward pass.

    Attributes:
        z: z[0] = None, z[k] of shape (m, n[k]) for k = 1..r.
        a: a[0] = x as (m, n[0]); a[k] = sigma(z[k]) for 0 < k < r; a[r] is z[r] (the same array:
            the output layer is linear).
        single: x was one example of shape (n[0],).
    """

    z: list[Array | None]
    a: list[Array]
    single: bool

    @property
    def tau(self) -> Array:
        """tau = z[r], shape (m, n[r])."""
        return self.z[-1]

    @property
    def m(self) -> int:
        """The number of examples."""
        return self.a[0].shape[0]


@dataclass(eq=False)
class Grads:
    """The gradients backprop returns, in the notes' layout.

    Every list is indexed by the notes' layer k (testbed.nn.network's docstring): slot 0 is None
    but in `da`, where layer 0 is the input.

    Attributes:
        dW: [None, dJ/dW[1], ..., dJ/dW[r]]: dW[k] = dJ/dW[k], shaped like W[k]; dW[0] = None.
        db: [None, dJ/db[1], ..., dJ/db[r]]: db[k] = dJ/db[k], shaped like b[k]; db[0] = None.
        dx: dJ/dx shaped like x (None when not asked for).
        dz: dz[k] = dJ/dz[k] of shape (m, n[k]) for k = 1..r, dz[0] = None. Row i is the gradient of
            J (the batch mean) w.r.t. example i's z[k], so it carries the 1/m.
        da: da[k] = dJ/da[k] of shape (m, n[k]) for k = 0..r-1 (da[0] = dJ/dx as (m, n[0]) or None),
            and da[r] = dJ/dtau (the same array as dz[r]).
    """

    dW: list[Array | None]
    db: list[Array | None]
    dx: Array | None
    dz: list[Array | None]
    da: list[Array | None]


def _forward(net: Network, x2: Array) -> Cache:
    """Forward pass on a validated batch x2 of shape (m, n[0]); unchecked (call under errstate)."""
    sigma = get_activation(net.activation).sigma
    r = net.depth
    z: list[Array | None] = [None]
    a: list[Array] = [x2]
    for k in range(1, r + 1):
        zk = a[k - 1] @ net.W[k].T
        zk += net.b[k]  # in place: saves a temporary of shape (m, n[k])
        z.append(zk)
        a.append(sigma(zk) if k < r else zk)
    return Cache(z=z, a=a, single=False)


def forward_overflow(net: Network, cache: Cache) -> tuple[int, str] | None:
    """(k, description) of the first layer whose z[k] is non-finite, None if all are finite.

    a[k] = sigma(z[k]) is finite whenever z[k] is (every sigma maps reals to reals), but not the
    other way: tanh(inf) = 1 and relu(-inf) = 0 would hide an overflow, so z[k] is what is checked.
    """
    for k in range(1, net.depth + 1):
        zk = cache.z[k]
        if not all_finite(zk):
            return k, str(overflow(k, f"z[{k}] = W[{k}] a[{k - 1}] + b[{k}]", zk,
                                   f"; max |W[{k}]| = {np.abs(net.W[k]).max():.3g}, max "
                                   f"|a[{k - 1}]| = {np.abs(cache.a[k - 1]).max():.3g}"))
    return None


def _checked_forward(net: Network, x2: Array) -> Cache:
    """_forward, then NetworkNonFiniteError if a z[k] overflowed; call under errstate."""
    cache = _forward(net, x2)
    bad = forward_overflow(net, cache)
    if bad is not None:
        raise NetworkNonFiniteError(bad[1])
    return cache


def forward(net: Network, x: Array) -> Cache:
    """z[k] = W[k] a[k-1] + b[k], a[k] = sigma(z[k]) for k = 1..r-1, tau = z[r]; a[0] = x.

    Args:
        x: one example (n[0],) or a batch (m, n[0]), one example per row.
    Returns:
        The Cache; its arrays are 2-D, (m, n[k]), also for one example (m = 1).
    Raises:
        NetworkNonFiniteError: some z[k] overflowed (the message names k).
    """
    x2, single = as_input(net, x)
    with np.errstate(over="ignore", invalid="ignore"):
        cache = _checked_forward(net, x2)
    cache.single = single
    return cache


def _loss(tau: Array, y2: Array) -> float:
    """J = (1/m) sum_i 1/2 ||y_i - tau_i||^2 for (m, n[r]) arrays; unchecked."""
    d = (y2 - tau).ravel()
    return float(0.5 * (d @ d) / tau.shape[0])


def _checked_loss(net: Network, tau: Array, y2: Array) -> float:
    """_loss, then NetworkNonFiniteError if J overflowed; call under errstate."""
    J = _loss(tau, y2)
    if not math.isfinite(J):
        r = net.depth
        raise NetworkNonFiniteError(
            f"layer k={r}: J = 1/2 ||y - tau||^2 / m overflowed although tau = z[{r}] is finite "
            f"(max |tau| = {np.abs(tau).max():.3g}, max |y| = {np.abs(y2).max():.3g})"
        )
    return J


def loss(net: Network, x: Array, y: Array) -> float:
    """J = 1/2 ||y - tau||^2 for one example; the mean of it over the rows of a batch.

    Args:
        x: (n[0],) or (m, n[0]).
        y: (n[r],) or (m, n[r]); when n[r] = 1 also a scalar or (m,).
    Raises:
        NetworkNonFiniteError: some z[k], or J itself, overflowed (the message names which).
    """
    x2, single = as_input(net, x)
    y2 = as_target(net, y, x2.shape[0], single)
    with np.errstate(over="ignore", invalid="ignore"):
        return _checked_loss(net, _checked_forward(net, x2).tau, y2)


def _backward(net: Network, cache: Cache, y2: Array, need_dx: bool,
              into: tuple[list[Array], list[Array]] | None = None) -> Grads:
    """Backprop on validated data: Lemma 3, then Lemma 1 and Lemma 2 alternately, k = r..1.

    Unchecked (call under errstate). `into` is `train`'s private path: (dW list, db list) of
    arrays that train owns (slot 0 None, like net.W), into which Lemma 1's dJ/dW[k] and dJ/db[k]
    are written instead of fresh arrays: a fresh parameter-sized array costs page faults, which
    made a whole gradient 1.4-1.7x slower at widths 512-2048 when measured (benchmarks/deepnet.py,
    "grad into").
    """
    act = get_activation(net.activation)
    r = net.depth
    dz: list[Array | None] = [None] * (r + 1)
    da: list[Array | None] = [None] * (r + 1)
    dW: list[Array | None] = [None] * (r + 1)
    db: list[Array | None] = [None] * (r + 1)
    dz[r] = da[r] = lemma3(y2, cache.tau)
    for k in range(r, 0, -1):
        # dJ/da[0] = dJ/dx costs a matmul and is only computed when asked for
        need_da_prev = k > 1 or need_dx
        if into is None:
            dW[k], db[k], da[k - 1] = lemma1(dz[k], cache.a[k - 1], net.W[k],
                                             need_da_prev=need_da_prev, k=k)
        else:  # Lemma 1 written into train's arrays (the same products as lemma1's)
            outer = np.multiply if cache.m == 1 else np.matmul
            dW[k] = outer(dz[k].T, cache.a[k - 1], out=into[0][k])
            db[k] = np.sum(dz[k], axis=0, out=into[1][k])
            da[k - 1] = dz[k] @ net.W[k] if need_da_prev else None
        if k > 1:
            dz[k - 1] = lemma2(da[k - 1], cache.z[k - 1], act)
    dx = da[0]
    if dx is not None and cache.single:
        dx = dx.reshape(-1)
    return Grads(dW=dW, db=db, dx=dx, dz=dz, da=da)


def _check_grads(grads: Grads, cache: Cache) -> None:
    """NetworkNonFiniteError for the first non-finite quantity of the backward pass.

    Every non-finite dJ/dz[k] or dJ/da[k] reaches dJ/dW[k] or dJ/db[k] or dJ/dx (inf * 0 is nan,
    sigma' >= 0), so the outputs are checked first and the pass is searched only when one fails.
    """
    r = len(grads.dW) - 1
    if all(product_finite(grads.dz[k], cache.a[k - 1], grads.dW[k])
           and all_finite(grads.db[k]) for k in range(1, r + 1)) and (
            grads.dx is None or all_finite(grads.dx)):
        return
    order: list[tuple[int, str, Array | None]] = [(r, f"dJ/dz[{r}] = -(y - tau) / m", grads.dz[r])]
    for k in range(r, 0, -1):
        order += [(k, f"dJ/dW[{k}]", grads.dW[k]), (k, f"dJ/db[{k}]", grads.db[k]),
                  (k, f"dJ/da[{k - 1}] = W[{k}]^T dJ/dz[{k}]", grads.da[k - 1]),
                  (k - 1, f"dJ/dz[{k - 1}]", grads.dz[k - 1])]
    raise first_nonfinite(order) or NetworkNonFiniteError("the backward pass overflowed")


def _check_cache(net: Network, cache: Cache) -> None:
    r = net.depth
    if len(cache.z) != r + 1 or any(
            cache.z[k].shape != (cache.m, net.W[k].shape[0]) for k in range(1, r + 1)):
        got = [None if zk is None else zk.shape for zk in cache.z]
        raise NetworkShapeError(
            f"the cache does not belong to this network: its z[k] have shapes {got}, the network's "
            f"sizes are {list(net.sizes)}"
        )


def backward(net: Network, cache: Cache, y: Array, need_dx: bool = True) -> Grads:
    """Backprop: dJ/dW[k], dJ/db[k] for k = 1..r and dJ/dx, from `forward(net, x)`'s cache.

    The Grads lists are indexed by k: g.dW[k] = dJ/dW[k], g.dz[k] = dJ/dz[k] (slot 0 None).

        dJ/dz[r] = -(y - tau) / m                                         (Lemma 3)
        for k = r, r-1, ..., 1:
            dJ/dW[k] = dJ/dz[k] a[k-1]^T,  dJ/db[k] = dJ/dz[k]            (Lemma 1)
            dJ/da[k-1] = W[k]^T dJ/dz[k]                                  (Lemma 1)
            dJ/dz[k-1] = dJ/da[k-1] ⊙ sigma'(z[k-1])   (k > 1)            (Lemma 2)

    Args:
        y: the targets, (n[r],) or (m, n[r]) as for `loss`.
        need_dx: compute dJ/dx = dJ/da[0] (one extra matmul).
    Raises:
        NetworkNonFiniteError: a quantity of the backward pass overflowed (the message names it
            and its layer).
    """
    _check_cache(net, cache)
    y2 = as_target(net, y, cache.m, cache.single)
    with np.errstate(over="ignore", invalid="ignore"):
        grads = _backward(net, cache, y2, need_dx)
        _check_grads(grads, cache)
    return grads


def value_and_grad(net: Network, x: Array, y: Array, need_dx: bool = True,
                   checkpoints: int | str | None = None) -> tuple[float, Grads]:
    """(J, Grads): one forward and one backward pass, each checked as in `loss` and `backward`.

    checkpoints=s (an int) or "sqrt": backprop with checkpoints (testbed.nn.checkpoint): a[k]
    stored at a few layers and recomputed elsewhere, Griewank's binomial schedule with s stored
    activations or Chen et al.'s every ceil(sqrt r)-th layer; the same gradients bit for bit,
    Grads.dz and Grads.da then None but at the output layer.
    """
    x2, single = as_input(net, x)
    y2 = as_target(net, y, x2.shape[0], single)
    checkpoints = _ckpt.check(checkpoints)
    if checkpoints is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                J, dW, db, dx, dz_r, _, _ = _ckpt.run(net, x2, y2, need_dx, checkpoints)
            except _ckpt.Overflow:
                pass  # plain backprop below names the layer and the quantity that overflowed
            else:
                if math.isfinite(J):
                    r = net.depth
                    if dx is not None and single:
                        dx = dx.reshape(-1)
                    return J, Grads(dW=dW, db=db, dx=dx, dz=[None] * r + [dz_r],
                                    da=[None] * r + [dz_r])
    with np.errstate(over="ignore", invalid="ignore"):
        cache = _checked_forward(net, x2)
        cache.single = single
        J = _checked_loss(net, cache.tau, y2)
        grads = _backward(net, cache, y2, need_dx)
        _check_grads(grads, cache)
    return J, grads
