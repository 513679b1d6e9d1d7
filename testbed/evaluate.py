"""Sweeps over a circuit: forward (values), reverse (cotangents) and tangent (forward mode).

The public sweeps, each over every slot i of the circuit, in an order in which every argument
precedes its use (iteratively: no recursion):
  forward(c, X)      v_i = prim_i(v_j, v_k), the inputs v_0..v_{l-1} = x
  reverse(c, v, U)   adj_i = sum over the uses m of slot i of vjp_m(adj_m, v_m, ...)_i, with the
                     outputs seeded adj_o = u_o: the adjoints (cotangents), adj_{0..l-1} = u^T J
  tangent(c, v, T)   t_i = sum over the arguments j of slot i of (d v_i / d v_j) t_j, the inputs
                     t_{0..l-1} = v: the tangents, t_outputs = J v
  forward_tangent(c, X, T)  forward and tangent together (one pass on the compiled executor)
  reverse_tangent(c, v, t, U, dU)  the reverse sweep and its tangent along t (forward over
                     reverse, fused): (adj, d adj), with d adj_{0..l-1} = u^T (D^2 f) v + du^T J,
                     so u = 1, du = 0 gives grad f and H v without writing a gradient circuit
Each takes `executor`, one of
  "compiled"    numba kernels generated from the primitive table (testbed.compiled): one loop over
                the slots with the batch inside. Bit for bit the sequential executor's numbers.
  "vectorised"  slots grouped by (level, primitive); one numpy call evaluates a whole group. A
                10^6-node circuit of depth ~50 costs ~10^3 numpy calls instead of 10^6 Python steps.
  "sequential"  one Python step per slot, in slot order: the readable reference. Its loops are
                generic in the value type: Python floats (the `math` implementations), numpy rows
                (a batch), duals or tracers -- run on tracers, the reverse sweep *is* `grad`: it
                writes the gradient circuit; run on duals, it is the fused HVP sweep.
  "auto"        (the default) compiled when numba is importable; otherwise vectorised when the
                average (level, primitive) group has >= 16 slots (wide circuits), sequential when
                not (deep circuits, whose levels hold a node or two).
All executors compute the same numbers (the tests run every JAX cross-validation on each).
Every sweep stops at the first thing that goes wrong in slot order (the reverse sweeps: from the
last slot down) and names the node: an argument outside a primitive's domain (DomainError) or a
value that overflowed (NonFiniteError), whichever comes first.

`counting()` records what the sweeps actually ran, for the studies of cost.
"""

from __future__ import annotations

import numbers
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from . import compiled as K
from . import primitives as P
from .errors import DomainError, NonFiniteError, ShapeError, TestbedError

if TYPE_CHECKING:
    from .circuit import Circuit

EXECUTORS = ("auto", "sequential", "vectorised", "compiled")
_MIN_GROUP = 16  # average group size below which numpy call overhead loses to a Python loop
# every sweep checks its result for inf/NaN and raises NonFiniteError naming the node, so numpy's own
# overflow warnings would only repeat it, less precisely
_QUIET = dict(over="ignore", invalid="ignore")


# --- inputs ----------------------------------------------------------------------------------------


def as_real(a: object, name: str) -> np.ndarray:
    """a as a float64 array, refusing what would convert silently to a wrong number.

    Accepted: real floats and integers (and arrays of them). Refused with a ShapeError naming
    `name`: complex numbers (their imaginary part would be dropped), strings ("1.5" would parse),
    booleans (True would be 1.0: almost always a mistake for a point or a direction) and any
    other object.
    """
    A = np.asarray(a)
    kind = A.dtype.kind
    if kind == "O":
        bad = [e for e in A.flat if isinstance(e, bool) or not isinstance(e, numbers.Real)][:1]
        if bad:
            bad = bad[0]
            raise ShapeError(f"{name} must be a real float array; it holds {type(bad).__name__} "
                             f"{bad!r}")
    elif kind not in "iuf":
        what = {"c": "complex", "b": "bool", "U": "string", "S": "bytes"}.get(kind, str(A.dtype))
        raise ShapeError(f"{name} must be a real float array, got a {what} array "
                         f"(dtype {A.dtype})" + (": the imaginary part would be dropped"
                                                 if kind == "c" else ""))
    return A.astype(np.float64, copy=False)


def as_points(c: Circuit, x: object, name: str = "x") -> tuple[np.ndarray, bool]:
    """Validate x of shape (l,) or (B, l); return it as (l,) or (l, B) float64 and `batched`."""
    X = as_real(x, name)
    if X.ndim not in (1, 2) or X.shape[-1] != c.l or (X.ndim == 2 and X.shape[0] == 0):
        raise ShapeError(f"{name} has shape {X.shape}; this circuit has l={c.l} inputs, so {name} "
                         f"must have shape ({c.l},) or (B, {c.l}) with B >= 1")
    bad = ~np.isfinite(X)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NonFiniteError(f"{name}{list(where)} is {X[where]}: inputs must be finite")
    return (X.T.copy() if X.ndim == 2 else X), X.ndim == 2


# --- plans and the choice of executor --------------------------------------------------------------


class _Vec:
    """Groups of same-level, same-primitive slots, in level order."""

    def __init__(self, c: Circuit, ops: np.ndarray, cuts: np.ndarray):
        self.groups = []
        for idx in np.split(ops, cuts) if ops.size else []:
            prim = P.BY_CODE[int(c.op[idx[0]])]
            self.groups.append((prim, idx, c.a0[idx], c.a1[idx] if prim.arity == 2 else None))
        self.const_idx = np.flatnonzero(c.op == P.CONST)
        self.const_val = c.consts[self.const_idx]


class _Seq:
    """Per-slot Python lists for the sequential executor."""

    def __init__(self, c: Circuit):
        self.prims = [P.BY_CODE[o] for o in c.op.tolist()]
        self.a0 = c.a0.tolist()
        self.a1 = c.a1.tolist()
        self.consts = c.consts.tolist()
        self.is_const = (c.op == P.CONST).tolist()


def _grouping(c: Circuit) -> tuple[np.ndarray, np.ndarray]:
    """The operation slots sorted by (level, opcode), and where each group starts."""
    ops = np.flatnonzero(c.op > P.CONST)
    key = c.level[ops] * 64 + c.op[ops]
    order = np.argsort(key, kind="stable")
    ops, key = ops[order], key[order]
    return ops, np.flatnonzero(np.diff(key)) + 1


_NUMBA: list[bool] = []  # whether numba is importable, found out once


def _has_numba() -> bool:
    if not _NUMBA:
        _NUMBA.append(K.available())
    return _NUMBA[0]


def executor_of(c: Circuit, executor: str = "auto") -> str:
    """The executor that runs c: `executor` itself, or for "auto" compiled when numba is
    importable, else the one the group sizes pick."""
    if not isinstance(executor, str) or executor not in EXECUTORS:
        raise TestbedError(f"executor must be one of {', '.join(map(repr, EXECUTORS))}, "
                           f"got {executor!r}")
    if executor == "compiled" and not _has_numba():
        raise TestbedError("executor 'compiled' needs numba, which is not installed "
                           "(pip install numba); 'sequential' and 'vectorised' need only numpy")
    if executor != "auto":
        return executor
    return "compiled" if _has_numba() else numpy_executor_of(c)


def numpy_executor_of(c: Circuit) -> str:
    """The numpy executor suited to c: "vectorised" when its (level, primitive) groups hold
    >= 16 slots on average (wide circuits), "sequential" otherwise (deep ones)."""
    if "numpy_executor" not in c._cache:
        ops, cuts = _grouping(c)
        wide = ops.size == 0 or ops.size / (len(cuts) + 1) >= _MIN_GROUP
        c._cache["numpy_executor"] = "vectorised" if wide else "sequential"
    return c._cache["numpy_executor"]


def _vec(c: Circuit) -> _Vec:
    if "vec" not in c._cache:
        c._cache["vec"] = _Vec(c, *_grouping(c))
    return c._cache["vec"]


def seq_plan(c: Circuit) -> _Seq:
    """Per-slot lists of primitives, arguments and constants (the sequential executor's plan)."""
    if "seq" not in c._cache:
        c._cache["seq"] = _Seq(c)
    return c._cache["seq"]


# --- counting what the sweeps ran ------------------------------------------------------------------

_COUNTERS: list[Counter] = []  # the open counting() blocks, innermost last


@contextmanager
def counting() -> Iterator[Counter]:
    """Count the scalar rule applications that the sweeps inside the block actually execute.

    Yields a Counter with keys "forward:<prim>", "reverse:<prim>", "tangent:<prim>": how many times
    the primitive's implementation, vjp rule or jvp rule was applied to one scalar (nodes x batch
    points). The vectorised executor adds len(group) * B per (level, primitive) group it runs; the
    sequential one counts the slots its loops visit: every operation forward, the live slots (those
    a cotangent reaches) in reverse, every operation whose primitive has a jvp rule in the tangent
    sweep. Sweeps that write circuits (grad, jvp_circuit on tracers) are not counted: they run no
    rule on numbers. Blocks may nest; each counts everything run inside it. Outside any block the
    sweeps only test one empty list.
    """
    counter: Counter = Counter()
    _COUNTERS.append(counter)
    try:
        yield counter
    finally:
        del _COUNTERS[next(i for i, k in enumerate(_COUNTERS) if k is counter)]


def _count(sweep: str, name: str, n: int) -> None:
    for counter in _COUNTERS:
        counter[f"{sweep}:{name}"] += n


def _batch(X: np.ndarray) -> int:
    return X.shape[1] if X.ndim == 2 else 1


# --- forward ---------------------------------------------------------------------------------------


def forward(c: Circuit, X: np.ndarray, executor: str = "auto") -> np.ndarray:
    """Every slot's value v_i = prim_i(v_j, v_k): shape (n_slots,) for X of shape (l,), or
    (n_slots, B) for a batch X of shape (l, B) (as returned by `as_points`).

    Raises DomainError naming the node where a primitive left its domain, NonFiniteError naming the
    first node that overflowed.
    """
    ex = executor_of(c, executor)
    if ex == "compiled":
        vals = _forward_compiled(c, X)
        if _COUNTERS:
            for name, n in c.counts().items():
                _count("forward", name, n * _batch(X))
        return vals
    if ex == "vectorised":
        with np.errstate(**_QUIET):
            vals = _forward_vec(c, X)
    else:
        if X.ndim == 1:  # Python floats: math.* raises instead of warning
            vals = np.array(_forward_seq(c, X), dtype=np.float64)
        else:
            with np.errstate(**_QUIET):
                vals = np.array(_forward_seq(c, list(X)), dtype=np.float64)
        if _COUNTERS:
            for name, n in c.counts().items():
                _count("forward", name, n * _batch(X))
    _check_finite(c, vals)
    return vals


def forward_values(c: Circuit, x: object, executor: str = "auto") -> np.ndarray:
    """Every slot's value at x: shape (n_slots,) for one point, (n_slots, B) for a batch."""
    X, _ = as_points(c, x)
    return forward(c, X, executor)


def evaluate(c: Circuit, x: object, executor: str = "auto") -> float | np.ndarray:
    """f(x): a float (one output, one point), (k,) outputs, (B,) or (B, k) for a batch of B."""
    X, batched = as_points(c, x)
    return outputs_of(c, forward(c, X, executor), batched)


# The sequential executor's two ways of evaluating P points: a loop of Python float sweeps costs
# ~0.6 us per node and point, one sweep over numpy rows ~5.8 us per node plus ~20 ns per node and
# point (measured on a deep 5000-node circuit; benchmarks/circuits.py prints both), so the loop
# wins up to about 9 points.
_SEQ_LOOP_MAX = 8
_CHUNK = 1 << 24  # slot values per batched evaluation (128 MB of float64)


def values_at_steps(c: Circuit, x: np.ndarray, cols: np.ndarray, deltas: np.ndarray,
                    executor: str = "auto") -> np.ndarray:
    """f at the points x + deltas[m] e_cols[m] (cols[m] = -1: x itself), m = 0 .. P - 1, for a
    scalar circuit: what finite differences evaluate. Time P forward passes and memory O(N) or
    O(N x chunk) whatever P: the compiled executor loops over the points inside one kernel, on
    one buffer; the sequential one loops over them as floats when there are few (cheaper than
    numpy rows) and sweeps numpy rows of up to a chunk of points otherwise, as the vectorised one
    always does. Each point is evaluated as it would be alone (x[cols[m]] + deltas[m] rounded)."""
    ex = executor_of(c, executor)
    P_ = len(cols)
    if ex == "compiled":
        op, a0, a1, consts, outputs = _arrays(c)
        out = np.empty(P_)
        status = K.run("fd_values", op, a0, a1, consts, c.l, np.array(x, dtype=np.float64),
                       np.ascontiguousarray(cols, dtype=np.int64),
                       np.ascontiguousarray(deltas, dtype=np.float64), np.empty(c.n_slots), out,
                       int(outputs[0]))
        if status[0]:  # the same error as that point alone gets
            forward(c, _step_point(x, cols[status[2]], deltas[status[2]]), "compiled")
            raise TestbedError("internal: a point the fd kernel refused evaluates")
        if _COUNTERS:
            for name, n in c.counts().items():
                _count("forward", name, n * P_)
        return out
    if ex == "sequential" and P_ <= _SEQ_LOOP_MAX:
        return np.array([float(outputs_of(c, forward(c, _step_point(x, j, d), ex), False))
                         for j, d in zip(cols.tolist(), deltas.tolist(), strict=True)])
    chunk = max(1, _CHUNK // (c.n_slots + c.l))
    out = []
    for s in range(0, P_, chunk):
        pts = np.tile(x[:, None], (1, min(P_, s + chunk) - s))  # (l, points)
        for m, (j, d) in enumerate(zip(cols[s:s + chunk].tolist(), deltas[s:s + chunk].tolist(),
                                       strict=True)):
            if j >= 0:
                pts[j, m] = x[j] + d
        out.append(np.atleast_1d(outputs_of(c, forward(c, pts, ex), True)))
    return np.concatenate(out)


def _step_point(x: np.ndarray, j: int, d: float) -> np.ndarray:
    p = x.copy()
    if j >= 0:
        p[j] = x[j] + d
    return p


def outputs_of(c: Circuit, vals: np.ndarray, batched: bool) -> float | np.ndarray:
    """The output rows of a sweep's values, shaped as `evaluate` returns them."""
    out = vals[c.outputs]  # (k,) or (k, B)
    if batched:
        return out[0].copy() if c.n_outputs == 1 else out.T.copy()
    return float(out[0]) if c.n_outputs == 1 else out.copy()


def _forward_vec(c: Circuit, X: np.ndarray) -> np.ndarray:
    plan = _vec(c)
    vals = np.empty((c.n_slots, *X.shape[1:]))
    vals[:c.l] = X
    vals[plan.const_idx] = plan.const_val.reshape(-1, *([1] * (X.ndim - 1)))
    for prim, idx, j, k in plan.groups:
        try:
            vals[idx] = prim.np(vals[j]) if k is None else prim.np(vals[j], vals[k])
        except DomainError:
            _blame_group(c, vals, prim, idx)
        if _COUNTERS:
            _count("forward", prim.name, len(idx) * _batch(X))
    return vals


def _forward_seq(c: Circuit, X: object) -> list:
    """v_i = prim(v_j, v_k) slot by slot; X is a float vector or a list of numpy rows."""
    p = seq_plan(c)
    rows = not isinstance(X, np.ndarray)
    v = list(X) if rows else X.tolist()
    app = v.append
    i = c.l
    try:
        for prim, j, k, value in zip(p.prims[c.l:], p.a0[c.l:], p.a1[c.l:], p.consts[c.l:],
                                     strict=True):
            if k >= 0:
                app(prim.np(v[j], v[k]) if rows else prim.py(v[j], v[k]))
            elif j >= 0:
                app(prim.np(v[j]) if rows else prim.py(v[j]))
            else:
                app(np.full(len(v[0]), value) if rows else value)
            i += 1
    except DomainError as e:
        _check_finite(c, np.array(v, dtype=np.float64))  # an earlier overflow is what went wrong
        raise DomainError(f"node {_describe(c, i, v)}: {e}") from None
    except (ValueError, OverflowError):  # math.* on an argument that already overflowed
        _check_finite(c, np.array(v, dtype=np.float64))
        raise
    return v


def _arrays(c: Circuit) -> tuple:
    """The circuit's arrays as the compiled kernels take them (no copy when they already are)."""
    if "compiled" not in c._cache:
        c._cache["compiled"] = (np.ascontiguousarray(c.op, dtype=np.int8),
                                np.ascontiguousarray(c.a0, dtype=np.int64),
                                np.ascontiguousarray(c.a1, dtype=np.int64),
                                np.ascontiguousarray(c.consts, dtype=np.float64),
                                np.ascontiguousarray(c.outputs, dtype=np.int64))
    return c._cache["compiled"]


def _columns(A: np.ndarray, rows: int, B: int) -> np.ndarray:
    """A of shape (rows,) or (rows, B) as the kernels take it: C-ordered float64, (rows,) for one
    point (the flat kernels), (rows, B) for more."""
    out = np.ascontiguousarray(A.reshape(rows) if B == 1 else A.reshape(rows, B), dtype=np.float64)
    # writable, always: a read-only array is another type to numba (another compilation)
    return out if out.flags.writeable else out.copy()


def _kernel(name: str, B: int) -> str:
    """The kernel for a batch of B points: one point has its own, flat specialisation."""
    return f"{name}_1" if B == 1 else name


def _forward_compiled(c: Circuit, X: np.ndarray, T: np.ndarray | None = None) -> object:
    """The forward kernel (with T: forward_tangent); values shaped like X's batch."""
    op, a0, a1, consts, _ = _arrays(c)
    B = _batch(X)
    shape = (c.n_slots,) if B == 1 else (c.n_slots, B)
    vals = np.empty(shape)
    vals[:c.l] = X.reshape(c.l, *shape[1:])
    if T is None:
        status = K.run(_kernel("forward", B), op, a0, a1, consts, vals, c.l)
    else:
        t = np.empty(shape)
        t[:c.l] = T.reshape(c.l, *shape[1:])
        status = K.run(_kernel("forward_tangent", B), op, a0, a1, consts, vals, t, c.l)
    shape = (c.n_slots,) if X.ndim == 1 else (c.n_slots, B)
    vals = vals.reshape(shape)
    if status[0] in (K.DOMAIN, K.NONFINITE_VALUE):
        _blame_slot(c, vals, status[1])
    if T is None:
        return vals
    if status[0] == K.NONFINITE_TANGENT:
        _raise_sweep(c, status[1], "tangent")
    return vals, t.reshape(shape)


def _blame_slot(c: Circuit, vals: np.ndarray, i: int) -> None:
    """Raise the error the numpy executors raise at slot i, where a kernel stopped: slots before i
    are computed and finite; slot i left its domain or overflowed, at one point of the batch at
    least (the kernel did not compute the points after it)."""
    prim = P.BY_CODE[c.op[i]]
    args = [vals[a] for a in (c.a0[i], c.a1[i]) if a >= 0]
    try:
        with np.errstate(**_QUIET):
            vals[i] = prim.py(*map(float, args)) if vals.ndim == 1 else prim.np(*args)
    except DomainError as e:
        raise DomainError(f"node {_describe(c, i, vals)}: {e}") from None
    _check_finite(c, vals[:i + 1])
    raise TestbedError(f"internal: the compiled kernel stopped at node v{i}, which is finite")


def _raise_sweep(c: Circuit, i: int, sweep: str) -> None:
    what = {"reverse": "cotangent", "tangent": "tangent",
            "reverse_tangent": "tangent of the cotangent"}[sweep]
    raise NonFiniteError(f"the {sweep.replace('_', ' ')} sweep overflowed: the {what} of "
                         f"{c._name(i)} = {P.NAMES[c.op[i]]} is not finite")


def _describe(c: Circuit, i: int, vals: object) -> str:
    args = [int(a) for a in (c.a0[i], c.a1[i]) if a >= 0]
    shown = ", ".join(f"{c._name(a)}={_val(vals[a])}" for a in args)
    return f"v{i} = {P.NAMES[c.op[i]]} {' '.join(c._name(a) for a in args)} (with {shown})"


def _val(v: object) -> str:
    a = np.asarray(v, dtype=np.float64)
    return repr(float(a)) if a.ndim == 0 else f"[{', '.join(f'{float(t):.6g}' for t in a[:4])}" \
        f"{', ...' if a.size > 4 else ''}]"


def _blame_group(c: Circuit, vals: np.ndarray, prim: P.Primitive, idx: np.ndarray) -> None:
    for i in np.sort(idx):
        args = [vals[a] for a in (c.a0[i], c.a1[i]) if a >= 0]
        try:
            prim.np(*args)
        except DomainError as e:
            raise DomainError(f"node {_describe(c, int(i), vals)}: {e}") from None
    raise TestbedError(f"internal: a {prim.name} group failed but no node of it does")


def _check_finite(c: Circuit, vals: np.ndarray) -> None:
    bad = ~np.isfinite(vals)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(vals), -1).any(axis=1))
        i = int(rows[0])  # the earliest non-finite slot: its own arguments are finite
        raise NonFiniteError(f"node {_describe(c, i, vals)} is {_val(vals[i])}: "
                             f"{P.NAMES[c.op[i]]} overflowed float64")


def _check_sweep(c: Circuit, vals: np.ndarray, sweep: str) -> None:
    """No non-finite cotangent or tangent: name the slot where the sweep first met one (sweep
    "reverse", "tangent" or "reverse_tangent", the tangents of the cotangents)."""
    bad = ~np.isfinite(vals.reshape(len(vals), -1)).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        # the reverse sweeps meet the last slot first
        _raise_sweep(c, int(rows[0] if sweep == "tangent" else rows[-1]), sweep)


# --- reverse ---------------------------------------------------------------------------------------


def reverse(c: Circuit, vals: np.ndarray, U: np.ndarray, executor: str = "auto") -> np.ndarray:
    """Every slot's cotangent adj_i (shape of `vals`), seeded with adj_o += U_o at output o.

    `vals` are the slot values from `forward`; U has shape (k,) or (k, B). adj[:l] is u^T J(x).
    Constants and slots that no cotangent reaches get exact zeros. Raises NonFiniteError naming the
    slot whose cotangent overflowed.
    """
    ex = executor_of(c, executor)
    if ex == "compiled":
        return _reverse_compiled(c, vals, U)[0]
    if ex == "vectorised":
        with np.errstate(**_QUIET):
            adj = _reverse_vec(c, vals, U)
    else:
        batched = vals.ndim == 2
        if batched:
            with np.errstate(**_QUIET):
                adj_seq = reverse_seq(c, list(vals), list(U))
        else:
            adj_seq = reverse_seq(c, vals.tolist(), U.tolist())
        zero = np.zeros(vals.shape[1]) if batched else 0.0
        if _COUNTERS:
            prims = seq_plan(c).prims
            live = Counter(prims[i].name for i in range(c.l, c.n_slots)
                           if adj_seq[i] is not None and prims[i] is not None)
            for name, n in live.items():
                _count("reverse", name, n * (vals.shape[1] if batched else 1))
        adj = np.array([zero if a is None else a for a in adj_seq], dtype=np.float64)
    _check_sweep(c, adj, "reverse")
    return adj


def reverse_seq(c: Circuit, v: list, seeds: list) -> list:
    """Cotangents adj_i = sum over uses m of i of vjp_m(adj_m, ...), for every slot, in reverse.

    `seeds[o]` is the cotangent of output o. A slot nobody's cotangent reaches stays None (a
    symbolic zero), and its rule is never run: the sweep touches only the live part of the circuit.
    A rule that returns None for an argument passes it no cotangent; constants receive none.
    Generic in the value type: floats, numpy rows or tracers.
    """
    p = seq_plan(c)
    adj: list = [None] * c.n_slots
    for o, g in zip(c.outputs.tolist(), seeds, strict=True):
        adj[o] = g if adj[o] is None else adj[o] + g
    prims, A0, A1, is_const = p.prims, p.a0, p.a1, p.is_const
    for i in range(c.n_slots - 1, c.l - 1, -1):
        g = adj[i]
        if g is None:
            continue
        prim = prims[i]
        if prim is None:  # a constant
            continue
        j, k = A0[i], A1[i]
        if k >= 0:
            cj, ck = prim.vjp(g, v[i], v[j], v[k])
            for a, ca in ((j, cj), (k, ck)):
                if ca is not None and not is_const[a]:
                    adj[a] = ca if adj[a] is None else adj[a] + ca
        else:
            (cj,) = prim.vjp(g, v[i], v[j])
            if cj is not None and not is_const[j]:
                adj[j] = cj if adj[j] is None else adj[j] + cj
    return adj


def _reverse_vec(c: Circuit, vals: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The same cotangents, level by level (dense: dead slots get exact zeros)."""
    plan = _vec(c)
    adj = np.zeros_like(vals)
    np.add.at(adj, c.outputs, seeds)
    for prim, idx, j, k in reversed(plan.groups):
        g = adj[idx]
        if k is None:
            contributions = zip((j,), prim.vjp(g, vals[idx], vals[j]), strict=True)
        else:
            contributions = zip((j, k), prim.vjp(g, vals[idx], vals[j], vals[k]), strict=True)
        for a, ca in contributions:
            if ca is not None:  # None: the rule passes this argument no cotangent
                np.add.at(adj, a, ca)
        if _COUNTERS:
            _count("reverse", prim.name, len(idx) * _batch(vals))
    adj[plan.const_idx] = 0.0
    return adj


# --- tangent (forward mode) ------------------------------------------------------------------------


def tangent(c: Circuit, vals: np.ndarray, T: np.ndarray, executor: str = "auto") -> np.ndarray:
    """Every slot's tangent t_i (shape of `vals`) for input tangents T of shape (l,) or (l, B).

    `vals` are the slot values from `forward`; t[outputs] is J(x) v. Raises NonFiniteError naming the
    first slot whose tangent overflowed.
    """
    ex = executor_of(c, executor)
    if ex == "compiled":
        op, a0, a1, _, _ = _arrays(c)
        B = _batch(vals)
        V = _columns(vals, c.n_slots, B)
        t = np.empty_like(V)
        t[:c.l] = T.reshape(c.l, *V.shape[1:])
        status = K.run(_kernel("tangent", B), op, a0, a1, V, t, c.l)
        if status[0]:
            _raise_sweep(c, status[1], "tangent")
        _count_tangent(c, _batch(vals))
        return t.reshape(vals.shape)
    if ex == "vectorised":
        with np.errstate(**_QUIET):
            t = _tangent_vec(c, vals, T)
    else:
        batched = vals.ndim == 2
        if batched:
            with np.errstate(**_QUIET):
                t = np.array(tangent_seq(c, list(vals), list(T), np.zeros(vals.shape[1])))
        else:
            t = np.array(tangent_seq(c, vals.tolist(), T.tolist(), 0.0))
        _count_tangent(c, _batch(vals))
    _check_sweep(c, t, "tangent")
    return t


def _count_tangent(c: Circuit, B: int) -> None:
    if _COUNTERS:
        for name, n in c.counts().items():
            if P.TABLE[name].jvp is not None:
                _count("tangent", name, n * B)


def tangent_seq(c: Circuit, v: list, t_inputs: list, zero: object) -> list:
    """Tangents t_i = sum_j (d v_i / d v_j) t_j slot by slot; constants get `zero`, and so does
    every primitive whose jvp is None (its derivative is identically zero)."""
    p = seq_plan(c)
    t = list(t_inputs)
    app = t.append
    for i, (prim, j, k) in enumerate(zip(p.prims[c.l:], p.a0[c.l:], p.a1[c.l:], strict=True),
                                     start=c.l):
        if prim is None or prim.jvp is None:
            app(zero)
        elif k >= 0:
            app(prim.jvp(v[i], v[j], v[k], t[j], t[k]))
        else:
            app(prim.jvp(v[i], v[j], t[j]))
    return t


def _tangent_vec(c: Circuit, vals: np.ndarray, T: np.ndarray) -> np.ndarray:
    """The same tangents, level by level."""
    plan = _vec(c)
    t = np.zeros_like(vals)
    t[:c.l] = T
    for prim, idx, j, k in plan.groups:
        if prim.jvp is None:
            continue
        if k is None:
            t[idx] = prim.jvp(vals[idx], vals[j], t[j])
        else:
            t[idx] = prim.jvp(vals[idx], vals[j], vals[k], t[j], t[k])
        if _COUNTERS:
            _count("tangent", prim.name, len(idx) * _batch(vals))
    return t


# --- the compiled reverse sweeps -------------------------------------------------------------------


def reverse_plan(c: Circuit) -> tuple:
    """(flags, counts, dead): the structure of the reverse sweep, the same at every point.

    flags[i] bit 1: a cotangent reaches slot i (an output, or an argument a reached operation's
    rule passes a contribution to); bit 2: slot i is a reached operation (its rule runs); bits 4
    and 8: that rule passes a contribution to its first / second argument (the rule's output is
    not None and the argument is not a constant). counts[op]: the rules run, by opcode; dead: the
    slots no cotangent reaches. Made once per circuit, by a compiled kernel where numba is there
    (the sequential loop below otherwise; the tests check that the two agree).
    """
    if "reverse_plan" not in c._cache:
        if _has_numba():
            op, a0, a1, _, outputs = _arrays(c)
            flags = np.zeros(c.n_slots, dtype=np.uint8)
            counts = np.zeros(len(P.NAMES), dtype=np.int64)
            K.run("reverse_plan", op, a0, a1, outputs, c.l, flags, counts)
        else:
            flags, counts = _reverse_plan_seq(c)
        c._cache["reverse_plan"] = (flags, counts, np.flatnonzero(flags == 0))
    return c._cache["reverse_plan"]


def _reverse_plan_seq(c: Circuit) -> tuple[np.ndarray, np.ndarray]:
    """reverse_plan's flags and counts by a Python loop over the slots, from the last down."""
    passes = {p.code: P.passes(p) for p in P.BY_CODE[P.CONST + 1:]}
    op, A0, A1 = c.op.tolist(), c.a0.tolist(), c.a1.tolist()
    flags = [0] * c.n_slots
    counts = [0] * len(P.NAMES)
    for o in c.outputs.tolist():
        flags[o] = 1
    for i in range(c.n_slots - 1, c.l - 1, -1):
        if not flags[i] or op[i] == P.CONST:
            continue
        f = 3
        counts[op[i]] += 1
        for bit, a, passed in zip((4, 8), (A0[i], A1[i]), passes[op[i]], strict=False):
            if passed and op[a] != P.CONST:
                f |= bit
                flags[a] |= 1
        flags[i] = f
    return np.array(flags, dtype=np.uint8), np.array(counts, dtype=np.int64)


def _reverse_compiled(c: Circuit, vals: np.ndarray, U: np.ndarray, t: np.ndarray | None = None,
                      dU: np.ndarray | None = None) -> tuple:
    """The reverse kernel, or with t and dU the reverse_tangent kernel: (adj, d adj or None),
    shaped like vals. Slots no cotangent reaches get exact zeros, as on the other executors."""
    op, a0, a1, _, outputs = _arrays(c)
    flags, counts, dead = reverse_plan(c)
    B = _batch(vals)
    V = _columns(vals, c.n_slots, B)
    adj = np.full(V.shape, -0.0)  # -0.0 + c is c: the first contribution is stored
    Uc = _columns(U, c.n_outputs, B)
    if t is None:
        status = K.run(_kernel("reverse", B), op, a0, a1, flags, V, adj, outputs, Uc, c.l)
        dadj = None
    else:
        dadj = np.full(V.shape, -0.0)
        status = K.run(_kernel("reverse_tangent", B), op, a0, a1, flags, V,
                       _columns(t, c.n_slots, B), adj, dadj, outputs, Uc,
                       _columns(dU, c.n_outputs, B), c.l)
    if status[0] == K.NONFINITE_COTANGENT:
        _raise_sweep(c, status[1], "reverse")
    _check_sweep(c, adj[:c.l], "reverse")  # the inputs' cotangents, which no slot consumed
    if status[0] == K.NONFINITE_DCOTANGENT:
        _raise_sweep(c, status[1], "reverse_tangent")
    adj[dead] = 0.0  # no cotangent reached them: exact zeros, as on the other executors
    if dadj is not None:
        _check_sweep(c, dadj[:c.l], "reverse_tangent")
        dadj[dead] = 0.0
    if _COUNTERS:
        for code in np.flatnonzero(counts).tolist():
            _count("reverse", P.NAMES[code], int(counts[code]) * B)
            if dadj is not None:
                _count("reverse_tangent", P.NAMES[code], int(counts[code]) * B)
    return adj.reshape(vals.shape), None if dadj is None else dadj.reshape(vals.shape)


# --- forward over reverse, fused: the gradient and H v in one backward pass ------------------------


def forward_tangent(c: Circuit, X: np.ndarray, T: np.ndarray, executor: str = "auto") -> tuple:
    """(values, tangents): `forward` and `tangent` at once (one pass on the compiled executor,
    the two sweeps in turn on the others; the same numbers either way)."""
    if executor_of(c, executor) == "compiled":
        vals, t = _forward_compiled(c, X, T)
        if _COUNTERS:
            for name, n in c.counts().items():
                _count("forward", name, n * _batch(X))
        _count_tangent(c, _batch(X))
        return vals, t
    vals = forward(c, X, executor)
    return vals, tangent(c, vals, T, executor)


def reverse_tangent(c: Circuit, vals: np.ndarray, t: np.ndarray, U: np.ndarray,
                    dU: np.ndarray | None = None, executor: str = "auto") -> tuple:
    """(adj, d adj): the reverse sweep and, along the tangents t of `forward_tangent`, its tangent.

    The reverse sweep run on duals (value, tangent) of every slot: each vjp rule applied to duals
    returns its contributions and their tangents (the jvp of the vjp rule, from the table's own
    jvp rules: testbed.primitives.Dual), accumulated like the cotangents. With seeds U (cotangents
    of the outputs) and dU (their tangents, default 0), d adj[:l] = U^T (D^2 f)[t_in] + dU^T J;
    for a scalar f, U = 1 and dU = 0, adj[:l] = grad f and d adj[:l] = H v (Pearlmutter's
    R-operator), node for node the numbers forward mode over `grad(c)` computes, without writing
    that circuit. Raises NonFiniteError naming the slot whose cotangent, or the tangent of it,
    overflowed.
    """
    dU = np.zeros_like(U) if dU is None else dU
    ex = executor_of(c, executor)
    if ex == "compiled":
        return _reverse_compiled(c, vals, U, t, dU)
    if ex == "vectorised":
        with np.errstate(**_QUIET):
            adj, dadj = _reverse_tangent_vec(c, vals, t, U, dU)
    else:
        batched = vals.ndim == 2
        if batched:
            with np.errstate(**_QUIET):
                duals = reverse_seq(c, [P.Dual(a, b) for a, b in zip(vals, t, strict=True)],
                                    [P.Dual(a, b) for a, b in zip(U, dU, strict=True)])
        else:
            duals = reverse_seq(c, [P.Dual(a, b) for a, b in zip(vals.tolist(), t.tolist(),
                                                                 strict=True)],
                                [P.Dual(a, b) for a, b in zip(U.tolist(), dU.tolist(), strict=True)])
        adj, dadj = np.zeros_like(vals), np.zeros_like(vals)
        for i, d in enumerate(duals):
            if d is not None:  # a plain number (a rule's constant) has no tangent
                adj[i], dadj[i] = (d.v, d.t) if type(d) is P.Dual else (d, 0.0)
        if _COUNTERS:
            prims = seq_plan(c).prims
            live = Counter(prims[i].name for i in range(c.l, c.n_slots)
                           if duals[i] is not None and prims[i] is not None)
            for name, n in live.items():
                _count("reverse", name, n * _batch(vals))
                _count("reverse_tangent", name, n * _batch(vals))
    _check_sweep(c, adj, "reverse")
    _check_sweep(c, dadj, "reverse_tangent")
    return adj, dadj


def _reverse_tangent_vec(c: Circuit, vals: np.ndarray, t: np.ndarray, U: np.ndarray,
                         dU: np.ndarray) -> tuple:
    """The same on duals of whole (level, primitive) groups."""
    plan = _vec(c)
    adj, dadj = np.zeros_like(vals), np.zeros_like(vals)
    np.add.at(adj, c.outputs, U)
    np.add.at(dadj, c.outputs, dU)
    for prim, idx, j, k in reversed(plan.groups):
        args = (j,) if k is None else (j, k)
        out = prim.vjp(P.Dual(adj[idx], dadj[idx]), P.Dual(vals[idx], t[idx]),
                       *(P.Dual(vals[a], t[a]) for a in args))
        for a, ca in zip(args, out, strict=True):
            if ca is not None:  # None: the rule passes this argument no cotangent
                np.add.at(adj, a, ca.v if type(ca) is P.Dual else ca)
                np.add.at(dadj, a, ca.t if type(ca) is P.Dual else 0.0)
        if _COUNTERS:
            _count("reverse", prim.name, len(idx) * _batch(vals))
            _count("reverse_tangent", prim.name, len(idx) * _batch(vals))
    adj[plan.const_idx] = 0.0
    dadj[plan.const_idx] = 0.0
    return adj, dadj
