"""The transforms, named as in JAX: grad, value_and_grad, jvp, vjp, hvp, hessian, jacobians, fd_grad.

Notation: f: R^l -> R^k is the circuit, J(x) its k x l Jacobian, N its size.
  grad(c)             the gradient circuit (reverse mode written with the circuit's own ops)
  value_and_grad(c,x) (f(x), grad f(x)): one forward and one reverse sweep, O(N + l)
  jvp(c, x, v)        (f(x), J(x) v): one forward sweep and one tangent sweep, O(N + l)
  vjp(c, x, u)        (f(x), u^T J(x)): one forward and one reverse sweep, O(N + l)
  hvp(c, x, v)        (grad^2 f)(x) v = J_grad(x) v: forward mode through grad(c) (Pearlmutter's
                      R-operator, forward-over-reverse), O(N + l)
  hessian(c, x)       the l x l Hessian from l HVPs, O(N l)
  jacfwd, jacrev      the k x l Jacobian from l jvps, or from k vjps; `jacobian` picks the cheaper
  fd_grad(c, x)       finite differences: l + 1 (forward) or 2 l (central) evaluations, O(N l)
Every transform that computes numbers takes `executor="auto" | "sequential" | "vectorised"` and
runs its sweeps through testbed.evaluate's forward, reverse and tangent, which pick the executor.
"""

from __future__ import annotations

import numpy as np

from . import evaluate as E
from .circuit import Circuit, Tracer, trace
from .costs import jacobian_mode
from .errors import NonFiniteError, ShapeError, TestbedError


def _circuit(c: object, what: str) -> None:
    if not isinstance(c, Circuit):
        raise TypeError(f"{what} needs a testbed Circuit (made by testbed.trace or from_nodes), "
                        f"got {type(c).__name__}")


def _scalar(c: Circuit, what: str) -> None:
    _circuit(c, what)
    if c.n_outputs != 1:
        raise ShapeError(f"{what} needs a scalar circuit (one output); this one has "
                         f"{c.n_outputs}: use vjp or jvp")


def _forward_sym(c: Circuit, xs: list) -> list:
    """Re-emit every slot of c into the trace that owns the tracers xs."""
    b = xs[0]._trace
    p = E.seq_plan(c)
    v = list(xs)
    for prim, j, k, value in zip(p.prims[c.l:], p.a0[c.l:], p.a1[c.l:], p.consts[c.l:],
                                 strict=True):
        if prim is None:
            v.append(Tracer(b, b.const(value)))
        else:
            v.append(b.emit(prim, (v[j], v[k]) if k >= 0 else (v[j],)))
    return v


def grad(c: Circuit) -> Circuit:
    """The gradient circuit: l outputs, d f / d x_i, computing f along the way.

    Built by running the reverse sweep on tracers, so it is made of the same primitives and can be
    differentiated again. Its size is at most 5 N + 1: each live node adds its rule (at most 3 ops)
    and at most arity - 1 accumulating additions beyond the first contribution to each slot.
    """
    _scalar(c, "grad")
    if "grad" not in c._cache:
        def backprop(xs: list) -> list:
            b = xs[0]._trace
            v = _forward_sym(c, xs)
            adj = E.reverse_seq(c, v, [Tracer(b, b.const(1.0))])
            return [a if a is not None else Tracer(b, b.const(0.0)) for a in adj[:c.l]]

        c._cache["grad"] = trace(backprop, c.l)
    return c._cache["grad"]


def jvp_circuit(c: Circuit) -> Circuit:
    """The tangent circuit of c: 2 l inputs (x, v), 2 k outputs (f(x), J(x) v)."""
    _circuit(c, "jvp_circuit")
    if "jvp" not in c._cache:
        def tangent(zs: list) -> list:
            b = zs[0]._trace
            v = _forward_sym(c, zs[:c.l])
            t = E.tangent_seq(c, v, zs[c.l:], Tracer(b, b.const(0.0)))
            return [v[o] for o in c.outputs] + [t[o] for o in c.outputs]

        c._cache["jvp"] = trace(tangent, 2 * c.l)
    return c._cache["jvp"]


def hvp_circuit(c: Circuit) -> Circuit:
    """jvp_circuit(grad(c)): inputs (x, v), outputs (grad f(x), H(x) v)."""
    _scalar(c, "hvp_circuit")
    return jvp_circuit(grad(c))


def _one_point(c: Circuit, x: object, what: str) -> np.ndarray:
    X, batched = E.as_points(c, x)
    if batched:
        raise ShapeError(f"{what} takes one point of shape ({c.l},), got shape {np.shape(x)}; "
                         f"call it once per point")
    return X


def vjp(c: Circuit, x: object, u: object, executor: str = "auto") -> tuple:
    """(f(x), u^T J(x)) for u of shape (k,) (or (B, k) with a batch of x): one forward sweep, then
    one reverse sweep seeded with adj_o = u_o at output o."""
    _circuit(c, "vjp")
    X, batched = E.as_points(c, x)
    U = E.as_real(u, "u")
    want = (X.shape[1], c.n_outputs) if batched else (c.n_outputs,)
    if U.shape != want and not (c.n_outputs == 1 and U.shape == want[:-1]):
        raise ShapeError(f"u has shape {U.shape}; expected {want} (one cotangent per output"
                         f"{' per point' if batched else ''})")
    if not np.isfinite(U).all():
        raise NonFiniteError("u must be finite")
    U = U.reshape(*want).T  # (k,) or (k, B)
    vals = E.forward(c, X, executor)
    g = E.reverse(c, vals, U, executor)[:c.l]
    return E.outputs_of(c, vals, batched), (g.T.copy() if batched else g.copy())


def value_and_grad(c: Circuit, x: object, executor: str = "auto") -> tuple:
    """(f(x), grad f(x)): one forward sweep, then one reverse sweep seeded with d f / d f = 1."""
    _scalar(c, "value_and_grad")
    X, batched = E.as_points(c, x)
    return vjp(c, x, np.ones(X.shape[1]) if batched else np.ones(1), executor)


def jvp(c: Circuit, x: object, v: object, executor: str = "auto") -> tuple:
    """(f(x), J(x) v): one forward sweep, then one tangent sweep t_i = sum_j (d v_i / d v_j) t_j."""
    _circuit(c, "jvp")
    X, batched = E.as_points(c, x)
    V, _ = E.as_points(c, v, name="v")
    if V.shape != X.shape:
        raise ShapeError(f"v has shape {np.shape(v)}, x has shape {np.shape(x)}: they must match")
    vals = E.forward(c, X, executor)
    t = E.tangent(c, vals, V, executor)
    return E.outputs_of(c, vals, batched), E.outputs_of(c, t, batched)


def hvp(c: Circuit, x: object, v: object, executor: str = "auto") -> np.ndarray:
    """(grad^2 f)(x) v = J_grad(x) v by forward mode through the gradient circuit: O(N + l), never
    l-fold. `executor` runs the sweeps over the gradient circuit."""
    _scalar(c, "hvp")
    X, batched = E.as_points(c, x)
    Hv = np.asarray(jvp(grad(c), x, v, executor)[1], dtype=np.float64)
    return Hv.reshape(X.shape[1], c.l) if batched else Hv.reshape(c.l)


def hessian(c: Circuit, x: object, executor: str = "auto") -> np.ndarray:
    """The l x l Hessian, column i = hvp(c, x, e_i): l HVPs in one batched sweep, O(N l)."""
    _scalar(c, "hessian")
    X = _one_point(c, x, "hessian")
    H = np.asarray(jvp(grad(c), np.tile(X, (c.l, 1)), np.eye(c.l), executor)[1])  # row i is H e_i
    return H.reshape(c.l, c.l).T.copy()


def jacfwd(c: Circuit, x: object, executor: str = "auto") -> np.ndarray:
    """The k x l Jacobian J(x) by forward mode: column i = J(x) e_i, l tangent sweeps (one batch).

    x is one point of shape (l,); for a batch call it once per point. Costs l jvps: O(N l).
    """
    _circuit(c, "jacfwd")
    X = _one_point(c, x, "jacfwd")
    Jt = jvp(c, np.tile(X, (c.l, 1)), np.eye(c.l), executor)[1]  # row i is J e_i
    return np.asarray(Jt, dtype=np.float64).reshape(c.l, c.n_outputs).T.copy()


def jacrev(c: Circuit, x: object, executor: str = "auto") -> np.ndarray:
    """The k x l Jacobian J(x) by reverse mode: row o = e_o^T J(x), k reverse sweeps (one batch).

    x is one point of shape (l,); for a batch call it once per point. Costs k vjps: O(N k).
    """
    _circuit(c, "jacrev")
    X = _one_point(c, x, "jacrev")
    k = c.n_outputs
    return np.asarray(vjp(c, np.tile(X, (k, 1)), np.eye(k), executor)[1], dtype=np.float64)


def jacobian(c: Circuit, x: object, executor: str = "auto") -> np.ndarray:
    """The k x l Jacobian J(x) by l forward sweeps (`jacfwd`) or k reverse sweeps (`jacrev`),
    whichever costs fewer operations by `op_counts` (forward on a tie)."""
    _circuit(c, "jacobian")
    return (jacfwd if jacobian_mode(c) == "jacfwd" else jacrev)(c, x, executor)


_EPS = np.finfo(np.float64).eps
_FD_CHUNK = 1 << 24  # slot values per batched evaluation (128 MB of float64)


def fd_grad(c: Circuit, x: object, h: float | None = None, scheme: str = "forward",
            executor: str = "auto") -> np.ndarray:
    """Finite-difference gradient with exactly l + 1 (forward) or 2 l (central) evaluations.

    forward: (f(x + h_i e_i) - f(x)) / h_i, error ~ eps/h + h |f''|, default h_i = sqrt(eps) max(1, |x_i|)
    central: (f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i), error ~ eps/h + h^2 |f'''|,
             default h_i = eps^(1/3) max(1, |x_i|)
    The step actually taken, (x_i + h_i) - x_i, is used so that x + h e_i is exactly representable.
    """
    _scalar(c, "fd_grad")
    X = _one_point(c, x, "fd_grad")
    if scheme not in ("forward", "central"):
        raise TestbedError(f"scheme must be 'forward' or 'central', got {scheme!r}")
    if h is None:
        hs = (np.sqrt(_EPS) if scheme == "forward" else np.cbrt(_EPS)) * np.maximum(1.0, np.abs(X))
    else:
        if isinstance(h, (bool, np.bool_)) or not (
                isinstance(h, (int, float, np.integer, np.floating)) and np.isfinite(h) and h > 0):
            raise TestbedError(f"the finite-difference step h must be a finite number > 0, got {h!r}")
        hs = np.full(c.l, float(h))
    up = (X + hs) - X
    if np.any(up == 0):
        raise TestbedError(f"step h={h!r} is below the spacing of float64 at x: x + h == x")
    down = X - (X - hs)
    # evaluation points, made chunk by chunk: x itself (forward), then x + up_i e_i and, for the
    # central scheme, x - down_i e_i; never an (l+1) x l matrix (O(l^2) memory at large l)
    shifts = [(1.0, up)] if scheme == "forward" else [(1.0, up), (-1.0, down)]
    chunk = max(1, _FD_CHUNK // (c.n_slots + c.l))
    # f(x) through the batched executor too, like the shifted points: the same rounding on both sides
    f0 = np.atleast_1d(E.evaluate(c, X[None, :], executor))[0] if scheme == "forward" else None
    sides = []
    for sign, step in shifts:
        vals = []
        for s in range(0, c.l, chunk):
            idx = np.arange(s, min(c.l, s + chunk))
            pts = np.tile(X, (len(idx), 1))
            pts[np.arange(len(idx)), idx] += sign * step[idx]
            vals.append(np.atleast_1d(E.evaluate(c, pts, executor)))
        sides.append(np.concatenate(vals))
    if scheme == "forward":
        return (sides[0] - f0) / up
    return (sides[0] - sides[1]) / (up + down)
