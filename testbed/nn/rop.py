"""Pearlmutter's R-operator: the Hessian-vector product H V of the network's loss, exactly.

R_V{g(theta)} = d/dr g(theta + r V) at r = 0, so R_V{grad J} = H V, and R{W[k]} = VW[k],
R{b[k]} = Vb[k] (Pearlmutter, Neural Computation 6(1), 1994). Applying R{.} with the product rule to
every line of the forward and of the backward pass gives two extra passes of the same shape:

R-forward, k = 1..r (R{a[0]} = R{x} = vx, 0 unless a direction for x is given):
    R{z[k]} = VW[k] a[k-1] + W[k] R{a[k-1]} + Vb[k]
    R{a[k]} = sigma'(z[k]) ⊙ R{z[k]}                   (k < r);   R{tau} = R{z[r]}
R-backward, k = r..1 (delta = dJ/dz, as in backprop):
    R{dJ/dz[r]} = R{tau} / m                                       (r_lemma3)
    R{dJ/dW[k]} = R{dJ/dz[k]} a[k-1]^T + dJ/dz[k] R{a[k-1]}^T     (r_lemma1)
    R{dJ/db[k]} = R{dJ/dz[k]}
    R{dJ/da[k-1]} = W[k]^T R{dJ/dz[k]} + VW[k]^T dJ/dz[k]
    R{dJ/dz[k-1]} = sigma'(z[k-1]) ⊙ R{dJ/da[k-1]}
                    + sigma''(z[k-1]) ⊙ R{z[k-1]} ⊙ dJ/da[k-1]    (r_lemma2)

H is never formed and nothing is differenced: the result is exact up to rounding. `r_pass` runs
these lines fused (each quantity beside its R{.} in one array, so one matmul serves both); the
test suite checks it against the same lines written with `testbed.nn.lemmas.r_lemma1..3`.
Finite parameters, data and directions can still overflow: `r_pass`, `hvp` and `hvp_x` then raise
NetworkNonFiniteError naming the layer and the quantity (z[k], R{z[k]}, J, dJ/dz[k], R{dJ/dz[k]},
R{dJ/dW[k]}, ...) that overflowed first.

Cost, counted in matmuls of the size of one layer (they dominate for wide layers): per layer the
passes above take 8 (z, two for R{z}, dJ/da[k-1], two for R{dJ/dW}, two for R{dJ/da[k-1]}); the
first layer only 3, because R{a[0]} = 0 drops a term of R{z[1]} and of R{dJ/dW[1]}, and no dJ/da[0]
is needed. One gradient takes 3 per layer (2 in the first). So for r equal layers

    HVP / gradient = (8r - 5) / (3r - 1) <= 8/3 ≈ 2.7
    (HVP and gradient together: (9r - 5) / (3r - 1) <= 3),

plus elementwise work of the same order as the gradient's. In Griewank & Walther's terms that is
about 8 forward passes, inside their 7-10 for forward-over-reverse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._inputs import (
    all_finite,
    as_float,
    as_input,
    as_target,
    check_finite,
    first_nonfinite,
    product_finite,
)
from .activations import get_activation
from .backprop import Grads, _loss
from .errors import NetworkError, NetworkNonFiniteError, NetworkShapeError
from .network import Network, check_layout

Array = np.ndarray


@dataclass(eq=False)
class RPass:
    """Everything one R-pass produces.

    The lists are indexed by the notes' layer k, like net.W: slot 0 is None.

    Attributes:
        J: the loss at (theta, x).
        HW: [None, R{dJ/dW[1]}, ..., R{dJ/dW[r]}]: HW[k] is the W[k]-block of H V, shaped like W[k].
        Hb: [None, R{dJ/db[1]}, ..., R{dJ/db[r]}]: Hb[k] is shaped like b[k].
        Hx: R{dJ/dx}, the x-block of H (V, vx) shaped like x (None unless asked for).
        grads: the gradient itself (None unless asked for; one more matmul per layer).
    """

    J: float
    HW: list[Array | None]
    Hb: list[Array | None]
    Hx: Array | None
    grads: Grads | None


def _as_direction(net: Network, V: object) -> tuple[list[Array], list[Array]]:
    """Validate V = (VW, Vb), shaped like (W, b): [None, VW[1], ..., VW[r]] and the same for Vb."""
    if not (isinstance(V, Sequence) and len(V) == 2):
        raise NetworkError("V must be a pair (VW, Vb) of lists shaped like (net.W, net.b): "
                           "[None, VW[1], ..., VW[r]] and [None, Vb[1], ..., Vb[r]]")
    VW = check_layout(V[0], "VW", "an array shaped like W[k]")
    Vb = check_layout(V[1], "Vb", "an array shaped like b[k]")
    r = net.depth
    if len(VW) != r + 1 or len(Vb) != r + 1:
        raise NetworkShapeError(
            f"V has {len(VW) - 1} W-directions and {len(Vb) - 1} b-directions; the network has "
            f"r={r} layers"
        )
    outW: list[Array | None] = [None]
    outb: list[Array | None] = [None]
    for k in range(1, r + 1):
        for name, v, target, out in ((f"VW[{k}]", VW[k], net.W[k], outW),
                                     (f"Vb[{k}]", Vb[k], net.b[k], outb)):
            arr = as_float(v, name, str(target.shape))
            if arr.shape != target.shape:
                raise NetworkShapeError(
                    f"layer k={k}: {name} has shape {arr.shape} but must be {target.shape}, "
                    f"like {name[1:]}"
                )
            check_finite(arr, f"layer k={k}: {name}")
            out.append(arr)
    return outW, outb


def _r_pass(net: Network, x2: Array, y2: Array, VW: list[Array], Vb: list[Array],
            vx2: Array | None, need_hx: bool, need_grad: bool) -> RPass:
    """The four passes on validated data; checked (NetworkNonFiniteError on an overflow)."""
    with np.errstate(over="ignore", invalid="ignore"):
        res, passes = _fused(net, x2, y2, VW, Vb, vx2, need_hx, need_grad)
        _check(res, *passes)
    return res


def _fused(net: Network, x2: Array, y2: Array, VW: list[Array], Vb: list[Array],
           vx2: Array | None, need_hx: bool,
           need_grad: bool) -> tuple[RPass, tuple[list[Array | None], ...]]:
    """The fused passes, unchecked: (RPass, (z, R{z}, dJ/dz, R{dJ/dz}) by layer, for the check).

    Layout: every quantity and its R{.} share one (2m, n) array, the quantity's rows on one side
    and R{.}'s on the other, so that one matmul of 2m rows serves both (same flops, half the calls,
    no parameter-sized temporaries):
        A[k] = [a[k]; R{a[k]}]                      (R{a[0]} = vx, or A[0] absent when vx = 0)
        D[k] = [R{dJ/dz[k]}; dJ/dz[k]]              (R on top: D[k]^T A[k-1] pairs R{dz} with a)
    """
    act = get_activation(net.activation)
    r, m = net.depth, x2.shape[0]
    W, b = net.W, net.b

    # forward and R-forward, k = 1..r
    A: list[Array | None] = [None if vx2 is None else np.concatenate([x2, vx2])]
    a: list[Array] = [x2]
    z: list[Array | None] = [None]
    Rz: list[Array | None] = [None]
    dsig: list[Array | None] = [None]  # sigma'(z[k]), used by the R-forward and both backwards
    for k in range(1, r + 1):
        if A[k - 1] is None:  # R{a[0]} = 0: the W[k] R{a[k-1]} term is absent
            zk = a[k - 1] @ W[k].T
            Rzk = a[k - 1] @ VW[k].T
        else:  # [z; R{z}] = [a; R{a}] W^T + [b; VW a + Vb]
            S = A[k - 1] @ W[k].T
            zk, Rzk = S[:m], S[m:]
            Rzk += a[k - 1] @ VW[k].T
        zk += b[k]
        Rzk += Vb[k]
        z.append(zk)
        Rz.append(Rzk)
        if k < r:
            Ak = np.empty((2 * m, zk.shape[1]))
            Ak[:m] = act.sigma(zk)                             # a = sigma(z)
            sp = act.dsigma(zk)
            np.multiply(sp, Rzk, out=Ak[m:])                   # R{a} = sigma'(z) ⊙ R{z}
            A.append(Ak)
            a.append(Ak[:m])
            dsig.append(sp)
    J = _loss(z[r], y2)

    # backward and R-backward, k = r..1
    HW: list[Array | None] = [None] * (r + 1)  # every list indexed by the layer k, slot 0 unused
    Hb: list[Array | None] = [None] * (r + 1)
    dW: list[Array | None] = [None] * (r + 1)
    db: list[Array | None] = [None] * (r + 1)
    dz: list[Array | None] = [None] * (r + 1)
    Rdz: list[Array | None] = [None] * (r + 1)
    factors: list[tuple[Array, Array]] = [None] * (r + 1)  # type: ignore[list-item]  # HW[k]'s
    da: list[Array | None] = [None] * (r + 1)
    Hx = None
    D = np.empty((2 * m, z[r].shape[1]))
    np.divide(Rz[r], m, out=D[:m])                             # R{dJ/dz[r]} = R{tau} / m
    np.subtract(z[r], y2, out=D[m:])
    D[m:] /= m                                                 # dJ/dz[r] = -(y - tau) / m
    for k in range(r, 0, -1):
        Rdzk, dzk = D[:m], D[m:]
        dz[k], Rdz[k] = dzk, Rdzk
        # R{dW} = R{dz} a^T + dz R{a}^T
        factors[k] = (Rdzk, a[k - 1]) if A[k - 1] is None else (D, A[k - 1])
        HW[k] = factors[k][0].T @ factors[k][1]
        Hb[k] = Rdzk.sum(axis=0)                               # R{db} = R{dz}
        if need_grad:
            dW[k] = dzk.T @ a[k - 1]
            db[k] = dzk.sum(axis=0)
        if k == 1 and not need_hx:
            break
        S = D @ W[k]                                           # [R{dz} W; dz W]
        Rda, dak = S[:m], S[m:]
        Rda += dzk @ VW[k]                                     # R{da} = W^T R{dz} + VW^T dz
        da[k - 1] = dak.copy() if need_grad else dak
        if k == 1:
            Hx = Rda
            break
        sp = dsig[k - 1]
        if act.curved:  # sigma'' = 0 for relu and identity: the term vanishes
            curvature = act.d2sigma(z[k - 1]) * Rz[k - 1] * dak
        Rda *= sp                          # R{dz} = sigma'(z) ⊙ R{da} + sigma''(z) ⊙ R{z} ⊙ da
        if act.curved:
            Rda += curvature
        dak *= sp                                              # dz = da ⊙ sigma'(z)
        D = S

    grads = None
    if need_grad:
        da[r] = dz[r]  # dJ/dtau, as backprop's Grads has it
        grads = Grads(dW=dW, db=db, dx=da[0], dz=dz, da=da)
    return RPass(J=J, HW=HW, Hb=Hb, Hx=Hx, grads=grads), (z, Rz, dz, Rdz, a, factors)


def _check(res: RPass, z: list[Array | None], Rz: list[Array | None], dz: list[Array | None],
           Rdz: list[Array | None], a: list[Array], factors: list[tuple[Array, Array]]) -> None:
    """NetworkNonFiniteError for the first non-finite quantity, in the order the passes make them.

    The hidden z[k] are checked on every call, because sigma can hide their overflow
    (tanh(inf) = 1, relu(-inf) = 0). Every other non-finite quantity, R{z[k]} included, reaches
    J or a returned block (sigma' >= 0 and inf * 0 is nan), so only when one of those is
    non-finite are the passes searched; dJ/da[k-1] and R{dJ/da[k-1]} are found through
    dJ/dz[k-1] and R{dJ/dz[k-1]}, which are computed in place from them and keep their inf/nan.
    """
    r = len(res.HW) - 1
    g = res.grads
    others = res.Hb[1:] + ([] if res.Hx is None else [res.Hx]) + (
        [] if g is None else g.db[1:] + ([] if g.dx is None else [g.dx]))
    if math.isfinite(res.J) and all(all_finite(q) for q in z[1:r] + others) and all(
            product_finite(*factors[k], res.HW[k])
            and (g is None or product_finite(dz[k], a[k - 1], g.dW[k])) for k in range(1, r + 1)):
        return
    order: list[tuple[int, str, Array | None]] = []
    for k in range(1, r + 1):
        order += [(k, f"z[{k}] = W[{k}] a[{k - 1}] + b[{k}]", z[k]),
                  (k, f"R{{z[{k}]}} = VW[{k}] a[{k - 1}] + W[{k}] R{{a[{k - 1}]}} + Vb[{k}]", Rz[k])]
    order.append((r, "J = 1/2 ||y - tau||^2 / m", np.asarray(res.J)))
    for k in range(r, 0, -1):
        order += [(k, f"dJ/dz[{k}]", dz[k]),
                  (k, f"R{{dJ/dz[{k}]}}", Rdz[k]),
                  (k, f"R{{dJ/dW[{k}]}}", res.HW[k]), (k, f"R{{dJ/db[{k}]}}", res.Hb[k])]
        if g is not None:
            order += [(k, f"dJ/dW[{k}]", g.dW[k]), (k, f"dJ/db[{k}]", g.db[k])]
    order += [(1, "R{dJ/dx}", res.Hx), (1, "dJ/dx", None if g is None else g.dx)]
    raise first_nonfinite(order) or NetworkNonFiniteError("the R-pass overflowed")


def r_pass(net: Network, x: Array, y: Array, V: tuple[list[Array], list[Array]],
           vx: Array | None = None, need_hx: bool = False, need_grad: bool = False) -> RPass:
    """One forward, R-forward, backward and R-backward pass (module docstring): H (V, vx).

    Args:
        V: (VW, Vb), lists shaped like (net.W, net.b): the parameter direction, [None, VW[1], ...,
            VW[r]] and [None, Vb[1], ..., Vb[r]] (NetworkLayoutError without the None slot 0).
        vx: a direction for x shaped like x (None: 0).
        need_hx: also return the x-block R{dJ/dx} (two more matmuls).
        need_grad: also return the gradient (one more matmul per layer).
    Raises:
        NetworkNonFiniteError: a quantity of one of the passes overflowed (the message names it
            and its layer).
    """
    x2, single = as_input(net, x)
    y2 = as_target(net, y, x2.shape[0], single)
    VW, Vb = _as_direction(net, V)
    vx2 = None
    if vx is not None:
        vx_arr = as_float(vx, "vx", f"{np.shape(x)}, like x")
        if vx_arr.shape != np.shape(x):
            raise NetworkShapeError(f"layer k=1: vx has shape {vx_arr.shape} but x has shape "
                                    f"{np.shape(x)}; vx must be shaped like x")
        check_finite(vx_arr, "vx")
        vx2 = vx_arr.reshape(x2.shape)
    res = _r_pass(net, x2, y2, VW, Vb, vx2, need_hx, need_grad)
    if single:
        if res.Hx is not None:
            res.Hx = res.Hx.reshape(-1)
        if res.grads is not None and res.grads.dx is not None:
            res.grads.dx = res.grads.dx.reshape(-1)
    return res


def hvp(net: Network, x: Array, y: Array,
        V: tuple[list[Array], list[Array]]) -> tuple[list[Array], list[Array]]:
    """H V for J(theta) at fixed (x, y), by Pearlmutter's R-operator: (HW list, Hb list).

    HW[k] is the W[k]-block R{dJ/dW[k]}, Hb[k] the b[k]-block; slot 0 is None, as in net.W.

    Cost: (8r - 5) layer-sized matmuls against the gradient's (3r - 1), i.e. at most 8/3 of one
    gradient (module docstring).
    """
    res = r_pass(net, x, y, V)
    return res.HW, res.Hb


def hvp_x(net: Network, x: Array, y: Array, V: tuple[list[Array], list[Array]],
          vx: Array) -> tuple[list[Array], list[Array], Array]:
    """H (V, vx) for J as a function of (theta, x) jointly: (HW list, Hb list, Hx)."""
    out = r_pass(net, x, y, V, vx=vx, need_hx=True)
    return out.HW, out.Hb, out.Hx
