"""The transforms, named as in JAX: grad, value_and_grad, jvp, vjp, hvp, hessian, jacobians, fd_grad.

Notation: f: R^l -> R^k is the circuit, J(x) its k x l Jacobian, N its size.
  grad(c)             the gradient circuit (reverse mode written with the circuit's own ops)
  value_and_grad(c,x) (f(x), grad f(x)): one forward and one reverse sweep, O(N + l)
  jvp(c, x, v)        (f(x), J(x) v): one forward sweep and one tangent sweep, O(N + l)
  vjp(c, x, u)        (f(x), u^T J(x)): one forward and one reverse sweep, O(N + l)
  hvp(c, x, v)        (grad^2 f)(x) v: the reverse sweep run on duals (value, tangent along v),
                      forward over reverse fused (Pearlmutter's R-operator), O(N + l); the same
                      numbers as forward mode through the circuit grad(c), which it never writes
  hessian(c, x)       the l x l Hessian from l HVPs, O(N l)
  jacfwd, jacrev      the k x l Jacobian from l jvps, or from k vjps; `jacobian` picks the cheaper
  fd_grad(c, x)       finite differences: l + 1 (forward) or 2 l (central) evaluations, O(N l)
Every transform that computes numbers takes `executor="auto" | "sequential" | "vectorised" |
"compiled"` and runs its sweeps through testbed.evaluate's sweeps, which pick the executor.
"""

from __future__ import annotations

import numpy as np

from . import evaluate as E
from .checkpoint import vjp as checkpoint_vjp
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
    differentiated again. Its size is at most 5 N + 1: each live node adds its rule (at most 3 ops
    for a binary primitive, 4 for a unary one) and at most arity - 1 accumulating additions beyond
    the first contribution to each slot, so at most 4 per node besides the node itself.
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


def vjp(c: Circuit, x: object, u: object, executor: str = "auto",
        checkpoints: int | None = None, segments: int | None = None) -> tuple:
    """(f(x), u^T J(x)) for u of shape (k,) (or (B, k) with a batch of x): one forward sweep, then
    one reverse sweep seeded with adj_o = u_o at output o.

    checkpoints=s: binomial checkpointing (testbed.checkpoint): the circuit cut into segments at
    level cuts, s stored states, each segment's values recomputed when its reverse sweep needs
    them; the same numbers, bit for bit, in O(s x width + one segment) memory instead of O(N).
    segments: how many segments (default testbed.checkpoint.default_segments(s)).
    """
    _circuit(c, "vjp")
    X, batched = E.as_points(c, x)
    U = E.as_real(u, "u")
    want = (X.shape[1], c.n_outputs) if batched else (c.n_outputs,)
    if U.shape != want and not (c.n_outputs == 1 and U.shape == want[:-1]):
        raise ShapeError(f"u has shape {U.shape}; expected {want} (one cotangent per output"
                         f"{' per point' if batched else ''})")
    if not np.isfinite(U).all():
        raise NonFiniteError("u must be finite")
    return _forward_reverse(c, X, batched, U.reshape(*want).T, executor, checkpoints, segments)


def _forward_reverse(c: Circuit, X: np.ndarray, batched: bool, U: np.ndarray, executor: str,
                     checkpoints: int | None, segments: int | None = None) -> tuple:
    """(outputs, u^T J) for U of shape (k,) or (k, B)."""
    if checkpoints is None and segments is not None:
        raise TestbedError("segments= goes with checkpoints=s")
    if checkpoints is not None:
        E.executor_of(c, executor)  # a bad executor name is refused before any work
        out, g, _ = checkpoint_vjp(c, X, U, checkpoints, executor, segments)
        value = out.T.copy() if batched else out.copy()
        if c.n_outputs == 1:
            value = value.reshape(-1) if batched else float(value[0])
        return value, (g.T.copy() if batched else g.copy())
    vals = E.forward(c, X, executor)
    g = E.reverse(c, vals, U, executor)[:c.l]
    return E.outputs_of(c, vals, batched), (g.T.copy() if batched else g.copy())


def value_and_grad(c: Circuit, x: object, executor: str = "auto",
                   checkpoints: int | None = None, segments: int | None = None) -> tuple:
    """(f(x), grad f(x)): one forward sweep, then one reverse sweep seeded with d f / d f = 1
    (checkpoints=s: with s stored states over `segments` segments, as in `vjp`)."""
    _scalar(c, "value_and_grad")
    X, batched = E.as_points(c, x)
    return _forward_reverse(c, X, batched, np.ones((1, *X.shape[1:])), executor, checkpoints,
                            segments)


def jvp(c: Circuit, x: object, v: object, executor: str = "auto") -> tuple:
    """(f(x), J(x) v): one forward sweep, then one tangent sweep t_i = sum_j (d v_i / d v_j) t_j."""
    _circuit(c, "jvp")
    X, batched = E.as_points(c, x)
    V, _ = E.as_points(c, v, name="v")
    if V.shape != X.shape:
        raise ShapeError(f"v has shape {np.shape(v)}, x has shape {np.shape(x)}: they must match")
    vals, t = E.forward_tangent(c, X, V, executor)
    return E.outputs_of(c, vals, batched), E.outputs_of(c, t, batched)


def _hvp_sweeps(c: Circuit, X: np.ndarray, V: np.ndarray, executor: str) -> np.ndarray:
    """H v at each point: values and tangents forward, cotangents and their tangents backward,
    seeded with d f / d f = 1 (tangent 0). Rows (l,) or (l, B)."""
    vals, t = E.forward_tangent(c, X, V, executor)
    seed = np.ones((1, *X.shape[1:]))
    return E.reverse_tangent(c, vals, t, seed, np.zeros_like(seed), executor)[1][:c.l]


def hvp(c: Circuit, x: object, v: object, executor: str = "auto") -> np.ndarray:
    """(grad^2 f)(x) v by forward over reverse, fused (`testbed.evaluate.reverse_tangent`): one
    forward sweep of values and tangents, one reverse sweep of cotangents and their tangents,
    O(N + l), never l-fold, and no gradient circuit written (`hvp_circuit(c)` is that circuit)."""
    _scalar(c, "hvp")
    X, batched = E.as_points(c, x)
    V, _ = E.as_points(c, v, name="v")
    if V.shape != X.shape:
        raise ShapeError(f"v has shape {np.shape(v)}, x has shape {np.shape(x)}: they must match")
    Hv = _hvp_sweeps(c, X, V, executor)
    return Hv.T.copy() if batched else Hv.copy()


def hessian(c: Circuit, x: object, executor: str = "auto") -> np.ndarray:
    """The l x l Hessian, column i = hvp(c, x, e_i): l HVPs in one batched sweep, O(N l)."""
    _scalar(c, "hessian")
    X = _one_point(c, x, "hessian")
    H = _hvp_sweeps(c, np.tile(X[:, None], (1, c.l)), np.eye(c.l), executor)  # column i is H e_i
    return H.copy()


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
    # the evaluation points: x itself (forward), then x + up_i e_i and, for the central scheme,
    # x - down_i e_i (added as -down_i: x + (-d) is x - d exactly)
    cols = np.arange(c.l)
    if scheme == "forward":
        f = E.values_at_steps(c, X, np.concatenate([[-1], cols]),
                              np.concatenate([[0.0], up]), executor)
        return (f[1:] - f[0]) / up
    f = E.values_at_steps(c, X, np.concatenate([cols, cols]), np.concatenate([up, -down]),
                          executor)
    return (f[:c.l] - f[c.l:]) / (up + down)
