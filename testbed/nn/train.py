"""The notes' stochastic gradient descent: theta <- theta - alpha grad_theta J(theta).

`sgd_step` takes one step on the examples it is given (one example: the notes' J^(j); a batch: the
mean loss). `train` loops: full batch (batch_size=None), one example at a time (batch_size=1), or
mini-batches, drawing examples with an explicit Generator, and records a row per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._checks import check_int
from ._inputs import all_finite, as_input, as_target
from .backprop import Cache, Grads, _backward, _forward, _loss, forward_overflow
from .errors import NetworkError, TrainingDivergedError
from .network import Network, _nonfinite_summary

Array = np.ndarray


def _check_lr(lr: float) -> float:
    # a string ("0.1"), a bool or a complex number is a mistake to report, not a number to convert
    if isinstance(lr, bool | np.bool_) or not isinstance(lr, int | float | np.integer | np.floating):
        raise TypeError(f"the learning rate must be a real number > 0, got {lr!r}")
    lr = float(lr)
    if not (math.isfinite(lr) and lr > 0):
        raise NetworkError(f"the learning rate must be finite and > 0, got {lr}")
    return lr


def _diverged_forward(net: Network, cache: Cache, J: float, step: int | None,
                      lr: float) -> TrainingDivergedError | None:
    """The error for a forward pass that overflowed (some z[k], or J), None if it did not."""
    at = f"training diverged at step {step} (lr={lr})" if step is not None else \
        "the forward pass before the SGD step overflowed"
    bad = forward_overflow(net, cache)
    if bad is not None:
        return TrainingDivergedError(f"{at}: {bad[1]}", step=step, layer=bad[0])
    if not math.isfinite(J):
        r = net.depth
        return TrainingDivergedError(
            f"{at}: layer k={r}: the loss is {J}: tau = z[{r}] is finite (max |tau| = "
            f"{np.abs(cache.tau).max():.3g}) but 1/2 (y - tau)^2 overflows", step=step, layer=r)
    return None


def _update(net: Network, grads: Grads, lr: float, step: int | None) -> Network:
    """theta - lr * grad, checked: a non-finite new parameter names its layer.

    The new parameters are written over the gradient arrays (which the caller owns and no longer
    needs): W + (-lr dW) has the same bits as W - lr dW, and no parameter-sized temporary is made.
    """
    W: list[Array | None] = [None]  # slot 0 unused, as in net.W
    b: list[Array | None] = [None]
    for k in net.layers:
        Wk = grads.dW[k]
        Wk *= -lr
        Wk += net.W[k]
        bk = grads.db[k]
        bk *= -lr
        bk += net.b[k]
        if not (all_finite(Wk) and all_finite(bk)):
            at = f"step {step}" if step is not None else "an SGD step"
            name, bad = (f"W[{k}]", Wk) if not np.isfinite(Wk).all() else (f"b[{k}]", bk)
            raise TrainingDivergedError(
                f"training diverged at {at}: the update of layer k={k} overflowed (lr={lr}): "
                f"the new {name} (shape {bad.shape}) would hold {_nonfinite_summary(bad)}",
                step=step, layer=k)
        W.append(Wk)
        b.append(bk)
    return Network._trusted(W, b, net.activation)


def sgd_step(net: Network, x: Array, y: Array, lr: float) -> Network:
    """One SGD step, theta <- theta - lr * dJ/dtheta, on the example(s) given; a new Network.

    Args:
        x, y: one example ((n[0],), (n[r],)) or a batch ((m, n[0]), (m, n[r])), J the batch mean.
        lr: the learning rate alpha > 0.
    """
    lr = _check_lr(lr)
    x2, single = as_input(net, x)
    y2 = as_target(net, y, x2.shape[0], single)
    with np.errstate(over="ignore", invalid="ignore"):
        cache = _forward(net, x2)
        J = _loss(cache.tau, y2)
        error = _diverged_forward(net, cache, J, step=None, lr=lr)
        if error is not None:
            raise error
        grads = _backward(net, cache, y2, need_dx=False)
        return _update(net, grads, lr, step=None)


@dataclass(eq=False)
class TrainResult:
    """What `train` returns.

    Attributes:
        net: the network after the last step.
        history: one row per step t = 0..steps-1 with `step`, `loss` (J of that step's examples at
            the parameters before its update), `lr`, and with record_layers, for k = 1..r,
            `W_norm_k`, `dW_norm_k`, `db_norm_k`, `dz_norm_k` (Frobenius norms; dz over the batch)
            and `a_rms_k` (RMS of a[k] = z[r] for k = r) - all at the parameters before the update.
        snapshots: {step t: the network before step t's update} every `snapshot_every` steps, plus
            {steps: the final network}; empty unless asked for. Networks are immutable here (every
            step makes new arrays), so a snapshot costs no copy.
    """

    net: Network
    history: pd.DataFrame
    snapshots: dict[int, Network] = field(default_factory=dict)

    def layer_stats(self) -> pd.DataFrame:
        """The per-layer columns of `history` in long form: columns step, k, one per statistic."""
        stats = ("W_norm", "dW_norm", "db_norm", "dz_norm", "a_rms")
        if "W_norm_1" not in self.history:
            raise NetworkError("no per-layer statistics: train with record_layers=True")
        r = self.net.depth
        frames = []
        for k in range(1, r + 1):
            part = self.history[["step"] + [f"{s}_{k}" for s in stats]].copy()
            part.columns = ["step", *stats]
            part.insert(1, "k", k)
            frames.append(part)
        return pd.concat(frames, ignore_index=True).sort_values(["step", "k"], ignore_index=True)


def _layer_row(net: Network, cache: Cache, grads: Grads) -> dict[str, float]:
    row: dict[str, float] = {}
    for k in range(1, net.depth + 1):
        row[f"W_norm_{k}"] = float(np.linalg.norm(net.W[k]))
        row[f"dW_norm_{k}"] = float(np.linalg.norm(grads.dW[k]))
        row[f"db_norm_{k}"] = float(np.linalg.norm(grads.db[k]))
        row[f"dz_norm_{k}"] = float(np.linalg.norm(grads.dz[k]))
        row[f"a_rms_{k}"] = float(np.sqrt(np.mean(cache.a[k] * cache.a[k])))
    return row


def train(net: Network, x: Array, y: Array, lr: float, steps: int, batch_size: int | None = None,
          rng: np.random.Generator | None = None, record_layers: bool = False,
          snapshot_every: int | None = None) -> TrainResult:
    """Run `steps` SGD steps from `net` (which is left unchanged) on the data (x, y).

    Args:
        x, y: the training set, (m, n[0]) and (m, n[r]) (or (m,) when n[r] = 1).
        lr: the learning rate alpha > 0.
        steps: the number of updates (>= 0).
        batch_size: None for full-batch gradient descent; b in 1..m for SGD on b examples per step
            (1 is the notes' one-example SGD). Examples are visited in a fresh random order each
            epoch (a permutation from `rng`); an epoch's last incomplete batch is dropped.
        rng: the Generator that orders the examples; required when batch_size is not None.
        record_layers: add the per-layer statistics to `history`.
        snapshot_every: keep the network every this many steps (see TrainResult.snapshots).
    Raises:
        TrainingDivergedError: the loss or a parameter became non-finite; the message and the
            attributes say at which step and which layer first overflowed.
    """
    lr = _check_lr(lr)
    steps = check_int(steps, "steps", minimum=0, type_error=NetworkError, error=NetworkError)
    x2, single = as_input(net, x)
    if single:
        raise NetworkError(f"train needs a data set x of shape (m, n[0]), got one example "
                           f"{np.shape(x)}; use x.reshape(1, -1)")
    m = x2.shape[0]
    y2 = as_target(net, y, m, single=False)
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=m,
                               expected=f"None or an integer in 1..m={m}",
                               type_error=NetworkError, error=NetworkError)
        if not isinstance(rng, np.random.Generator):
            raise NetworkError("batch_size draws examples at random: pass "
                               "rng=np.random.default_rng(seed)")
    if snapshot_every is not None:  # a bool is refused too (it used to pass as 1)
        snapshot_every = check_int(snapshot_every, "snapshot_every", minimum=1,
                                   expected="None or an integer >= 1",
                                   type_error=NetworkError, error=NetworkError)

    rows: list[dict[str, float]] = []
    snapshots: dict[int, Network] = {}
    # Parameter arrays of a network this loop made, that the user never sees (not `net` as given,
    # not a snapshot) and that the loop no longer needs, become the next gradient's arrays: wide
    # layers then cost no fresh allocation (and no page faults) per step. This is testbed.nn's one
    # buffer-reusing path (backprop's `into`); every public function returns fresh arrays.
    spare: tuple[list[Array], list[Array]] | None = None
    order: Array = np.arange(m)
    pos = m  # forces a fresh permutation at the first mini-batch
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported as an error below
        for t in range(steps):
            if batch_size is None:
                xb, yb = x2, y2
            else:
                if pos + batch_size > m:
                    order, pos = rng.permutation(m), 0
                idx = order[pos:pos + batch_size]
                pos += batch_size
                xb, yb = x2[idx], y2[idx]
            if snapshot_every is not None and t % snapshot_every == 0:
                snapshots[t] = net
            cache = _forward(net, xb)
            J = _loss(cache.tau, yb)
            error = _diverged_forward(net, cache, J, step=t, lr=lr)
            if error is not None:
                raise error
            grads = _backward(net, cache, yb, need_dx=False, into=spare)
            row = {"step": t, "loss": J, "lr": lr}
            if record_layers:
                row.update(_layer_row(net, cache, grads))
            rows.append(row)
            new = _update(net, grads, lr, step=t)
            kept = t == 0 or (snapshot_every is not None and t % snapshot_every == 0)
            spare = None if kept else (net.W, net.b)
            net = new
    if snapshot_every is not None:
        snapshots[steps] = net
    columns = ["step", "loss", "lr"]
    history = pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)
    history["step"] = history["step"].astype(np.int64)
    return TrainResult(net=net, history=history, snapshots=snapshots)
