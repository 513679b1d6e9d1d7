"""Sweeps over a circuit: forward (values), reverse (cotangents) and tangent (forward mode).

The three public sweeps, each over every slot i of the circuit, in an order in which every argument
precedes its use (iteratively: no recursion):
  forward(c, X)      v_i = prim_i(v_j, v_k), the inputs v_0..v_{l-1} = x
  reverse(c, v, U)   adj_i = sum over the uses m of slot i of vjp_m(adj_m, v_m, ...)_i, with the
                     outputs seeded adj_o = u_o: the adjoints (cotangents), adj_{0..l-1} = u^T J
  tangent(c, v, T)   t_i = sum over the arguments j of slot i of (d v_i / d v_j) t_j, the inputs
                     t_{0..l-1} = v: the tangents, t_outputs = J v
Each takes `executor`, one of
  "vectorised"  slots grouped by (level, primitive); one numpy call evaluates a whole group. A
                10^6-node circuit of depth ~50 costs ~10^3 numpy calls instead of 10^6 Python steps.
  "sequential"  one Python step per slot, in slot order. Its loops are generic in the value type:
                Python floats (the `math` implementations), numpy rows (a batch) or tracers -- run on
                tracers, the reverse sweep *is* `grad`: it writes the gradient circuit.
  "auto"        (the default) vectorised when the average (level, primitive) group has >= 16 slots
                (wide circuits), sequential otherwise (deep circuits, whose levels hold a node or two).
Both executors compute the same numbers (the tests run every JAX cross-validation on both).

`counting()` records what the sweeps actually ran, for the studies of cost.
"""

from __future__ import annotations

import numbers
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from . import primitives as P
from .errors import DomainError, NonFiniteError, ShapeError, TestbedError

if TYPE_CHECKING:
    from .circuit import Circuit

EXECUTORS = ("auto", "sequential", "vectorised")
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


def executor_of(c: Circuit, executor: str = "auto") -> str:
    """The executor that runs c: `executor` itself, or for "auto" the one the group sizes pick."""
    if not isinstance(executor, str) or executor not in EXECUTORS:
        raise TestbedError(f"executor must be one of {', '.join(map(repr, EXECUTORS))}, "
                           f"got {executor!r}")
    if executor != "auto":
        return executor
    if "executor" not in c._cache:
        ops, cuts = _grouping(c)
        wide = ops.size == 0 or ops.size / (len(cuts) + 1) >= _MIN_GROUP
        c._cache["executor"] = "vectorised" if wide else "sequential"
    return c._cache["executor"]


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
    if executor_of(c, executor) == "vectorised":
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
        raise DomainError(f"node {_describe(c, i, v)}: {e}") from None
    except (ValueError, OverflowError):  # math.* on an argument that already overflowed
        _check_finite(c, np.array(v, dtype=np.float64))
        raise
    return v


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
    """No non-finite cotangent or tangent: name the slot where the sweep first met one."""
    bad = ~np.isfinite(vals.reshape(len(vals), -1)).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        i = int(rows[-1] if sweep == "reverse" else rows[0])  # reverse meets the last slot first
        what = "cotangent" if sweep == "reverse" else "tangent"
        raise NonFiniteError(f"the {sweep} sweep overflowed: the {what} of {c._name(i)} = "
                             f"{P.NAMES[c.op[i]]} is not finite")


# --- reverse ---------------------------------------------------------------------------------------


def reverse(c: Circuit, vals: np.ndarray, U: np.ndarray, executor: str = "auto") -> np.ndarray:
    """Every slot's cotangent adj_i (shape of `vals`), seeded with adj_o += U_o at output o.

    `vals` are the slot values from `forward`; U has shape (k,) or (k, B). adj[:l] is u^T J(x).
    Constants and slots that no cotangent reaches get exact zeros. Raises NonFiniteError naming the
    slot whose cotangent overflowed.
    """
    if executor_of(c, executor) == "vectorised":
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
    if executor_of(c, executor) == "vectorised":
        with np.errstate(**_QUIET):
            t = _tangent_vec(c, vals, T)
    else:
        batched = vals.ndim == 2
        if batched:
            with np.errstate(**_QUIET):
                t = np.array(tangent_seq(c, list(vals), list(T), np.zeros(vals.shape[1])))
        else:
            t = np.array(tangent_seq(c, vals.tolist(), T.tolist(), 0.0))
        if _COUNTERS:
            for name, n in c.counts().items():
                if P.TABLE[name].jvp is not None:
                    _count("tangent", name, n * _batch(vals))
    _check_sweep(c, t, "tangent")
    return t


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
