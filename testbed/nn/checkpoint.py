"""Backprop with checkpoints: the layers' activations stored at a few layers, recomputed elsewhere.

Plain backprop keeps every z[k] and a[k] of the forward pass: 2 r arrays of shape (m, n[k]). With
checkpoints it keeps a[k] at a few layers only and recomputes the others from the nearest one when
the backward pass needs them. The layers are the steps of a chain: step k takes a[k-1] to z[k] and
a[k]; its reversal recomputes z[k] from a[k-1] and applies Lemma 2 (dJ/dz[k] from dJ/da[k]; at the
output layer Lemma 3) and Lemma 1 (dJ/dW[k], dJ/db[k], dJ/da[k-1]).

    checkpoints=s        Griewank's binomial schedule (testbed.checkpoint.revolve) over the r
                         layers with s stored activations: the fewest recomputed layers, F(r, s)
    checkpoints="sqrt"   Chen et al. 2016: a[k] stored at every c-th layer, c = ceil(sqrt r); each
                         stretch of c layers recomputed once, keeping its z[k] and a[k], before
                         its backward pass: O(sqrt r) arrays for one extra forward pass

The same operations on the same arrays as plain backprop, so the gradients are bit for bit the
same (the tests check, and cross-validate against jax.grad of jax.checkpoint-wrapped layers). The
per-layer dJ/dz[k] and dJ/da[k] are not kept (that is the memory saved): Grads.dz and Grads.da
hold None but for the output layer.
"""

from __future__ import annotations

import math

import numpy as np

from testbed._checks import check_int
from testbed.checkpoint import CheckpointError, revolve

from .activations import get_activation
from .lemmas import lemma1, lemma2, lemma3
from .network import Network

Array = np.ndarray


def _z(net: Network, k: int, a_prev: Array) -> Array:
    zk = a_prev @ net.W[k].T
    zk += net.b[k]
    return zk


def _finite(*arrays: Array | None) -> bool:
    return all(a is None or bool(np.isfinite(a).all()) for a in arrays)


class Overflow(Exception):
    """A non-finite number met along the way: plain backprop then names it."""


def run(net: Network, x2: Array, y2: Array, need_dx: bool, checkpoints: object) -> tuple:
    """(J, dW, db, dx, dz_r, peak stored activations, layers advanced) with checkpoints (see the
    module docstring; dW and db indexed by the layer k, [None, dJ/dW[1], ..., dJ/dW[r]]; layers
    advanced: for the binomial schedule the forward steps beyond the r combined
    forward-and-reverse evaluations, F(r, s); for "sqrt" every layer computed forward, the first
    pass's r - 1 and the stretches' r);
    raises Overflow where a number is not finite (the caller re-runs plain backprop, which names
    the layer). Unchecked arithmetic: call under errstate."""
    r = net.depth
    act = get_activation(net.activation)
    dW: list[Array | None] = [None] * (r + 1)  # dW[k] = dJ/dW[k], slot 0 unused
    db: list[Array | None] = [None] * (r + 1)
    out: dict = {}

    def reverse(k: int, a_prev: Array, da_k: Array | None, zk: Array | None = None) -> Array | None:
        """Step k's reversal: z[k] from a[k-1] (unless given), then Lemmas 2 (3) and 1."""
        if zk is None:
            zk = _z(net, k, a_prev)
        if not _finite(zk):
            raise Overflow
        if k == r:
            from .backprop import _loss  # backprop imports this module: the loss is its own

            out["J"] = _loss(zk, y2)
            dz = lemma3(y2, zk)
            out["dz_r"] = dz
        else:
            dz = lemma2(da_k, zk, act)
        dW[k], db[k], da_prev = lemma1(dz, a_prev, net.W[k], need_da_prev=k > 1 or need_dx, k=k)
        if not _finite(dW[k], db[k], da_prev):
            raise Overflow
        return da_prev

    steps = [0]

    def advance(k: int, a_prev: Array) -> Array:
        steps[0] += 1
        zk = _z(net, k, a_prev)
        if not _finite(zk):
            raise Overflow
        return act.sigma(zk)

    if checkpoints == "sqrt":
        c = math.ceil(math.sqrt(r))
        stored = {0: x2}
        a = x2
        for k in range(1, r):  # keep a[k] at k = c, 2c, ... (a[0] = x is the first)
            a = advance(k, a)
            if k % c == 0:
                stored[k] = a
        most = len(stored)
        da = None
        for start in sorted(stored, reverse=True):
            # the stretch of layers start + 1 .. stop, recomputed once from its checkpoint with
            # every z[k] and a[k] kept, then reversed from them: one extra forward pass in all
            stop = min(start + c, r)
            acts, zs = [stored[start]], []
            for k in range(start + 1, stop + 1):
                steps[0] += 1
                zs.append(_z(net, k, acts[-1]))
                if not _finite(zs[-1]):
                    raise Overflow
                if k < stop:
                    acts.append(act.sigma(zs[-1]))
            most = max(most, len(stored) + len(acts) - 1)
            for k in range(stop, start, -1):
                da = reverse(k, acts[k - 1 - start], da, zs[k - 1 - start])
            del stored[start], acts, zs
        dx = da
    else:
        schedule = revolve(r, checkpoints)
        snapshots: dict[int, Array] = {}
        current, a, da, most = 0, x2, None, 0
        for kind, i in schedule.actions:
            if kind == "store":
                snapshots[i] = a
                most = max(most, len(snapshots))
            elif kind == "restore":
                current, a = i, snapshots[i]
            elif kind == "free":
                snapshots.pop(i, None)
            elif kind == "advance":
                for _ in range(i):
                    a = advance(current + 1, a)
                    current += 1
            else:  # reverse step i + 1 (state i is a[i])
                da = reverse(i + 1, a, da)
        dx = da
    return out["J"], dW, db, dx, out["dz_r"], most, steps[0]


def loss_streaming(net: Network, x2: Array, y2: Array) -> float:
    """J by a forward pass that keeps only the current a[k] (what the forward pass alone needs:
    one activation, not r); unchecked (call under errstate)."""
    from .backprop import _loss

    act = get_activation(net.activation)
    a = x2
    for k in range(1, net.depth):
        a = act.sigma(_z(net, k, a))
    return _loss(_z(net, net.depth, a), y2)


def check(checkpoints: object) -> object:
    """checkpoints as run() takes it: None, "sqrt" or an int >= 1 (CheckpointError, TypeError)."""
    if checkpoints is None or checkpoints == "sqrt":
        return checkpoints
    if isinstance(checkpoints, str):
        raise CheckpointError(f"checkpoints must be an int >= 1 or 'sqrt', got {checkpoints!r}")
    return check_int(checkpoints, "checkpoints", minimum=1, expected="an int >= 1 or 'sqrt'",
                     error=CheckpointError)
