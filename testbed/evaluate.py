"""Sweeps over a circuit: forward (values), reverse (cotangents) and tangent (forward mode).

Two executors compute the same sweeps:
  level-vectorised  slots grouped by (level, primitive); one numpy call evaluates a whole group.
                    Used when groups are large (wide circuits): a 10^6-node circuit of depth ~50
                    costs ~10^3 numpy calls instead of 10^6 Python steps.
  sequential        one Python step per slot, in slot order. Used for deep circuits, whose levels
                    hold a node or two each. Its loops are generic in the value type: Python floats
                    (the `math` implementations), numpy rows (a batch) or tracers -- run on tracers,
                    the reverse sweep *is* `grad`: it writes the gradient circuit.
Both visit slots in an order in which every argument precedes its use, iteratively: no recursion.
"""

from __future__ import annotations

import numpy as np

from . import primitives as P
from .circuit import Circuit
from .errors import DomainError, NonFiniteError, ShapeError, TestbedError

_MIN_GROUP = 16  # average group size below which numpy call overhead loses to a Python loop


# --- inputs ----------------------------------------------------------------------------------------


def as_points(c: Circuit, x: object, name: str = "x") -> tuple[np.ndarray, bool]:
    """Validate x of shape (l,) or (B, l); return it as (l,) or (l, B) float64 and `batched`."""
    try:
        X = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ShapeError(f"{name} must be a real array of shape ({c.l},) or (B, {c.l}): {e}") from None
    if X.ndim not in (1, 2) or X.shape[-1] != c.l or (X.ndim == 2 and X.shape[0] == 0):
        raise ShapeError(f"{name} has shape {X.shape}; this circuit has l={c.l} inputs, so {name} "
                         f"must have shape ({c.l},) or (B, {c.l}) with B >= 1")
    bad = ~np.isfinite(X)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NonFiniteError(f"{name}{list(where)} is {X[where]}: inputs must be finite")
    return (X.T.copy() if X.ndim == 2 else X), X.ndim == 2


# --- plans -----------------------------------------------------------------------------------------


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


def vec_plan(c: Circuit) -> _Vec | None:
    """The level-vectorised plan, or None when the circuit is too deep for it to pay."""
    if "vec" not in c._cache:
        ops = np.flatnonzero(c.op > P.CONST)
        key = c.level[ops] * 64 + c.op[ops]
        order = np.argsort(key, kind="stable")
        ops, key = ops[order], key[order]
        cuts = np.flatnonzero(np.diff(key)) + 1
        ok = ops.size == 0 or ops.size / (len(cuts) + 1) >= _MIN_GROUP
        c._cache["vec"] = _Vec(c, ops, cuts) if ok else None
    return c._cache["vec"]


def seq_plan(c: Circuit) -> _Seq:
    if "seq" not in c._cache:
        c._cache["seq"] = _Seq(c)
    return c._cache["seq"]


# --- forward ---------------------------------------------------------------------------------------


def forward_values(c: Circuit, x: object) -> np.ndarray:
    """Every slot's value: shape (n_slots,) for one point, (n_slots, B) for a batch."""
    X, _ = as_points(c, x)
    return _forward(c, X)


def evaluate(c: Circuit, x: object) -> float | np.ndarray:
    """f(x): a float (one output, one point), (k,) outputs, (B,) or (B, k) for a batch of B."""
    X, batched = as_points(c, x)
    return outputs_of(c, _forward(c, X), batched)


def outputs_of(c: Circuit, vals: np.ndarray, batched: bool) -> float | np.ndarray:
    out = vals[c.outputs]  # (k,) or (k, B)
    if batched:
        return out[0].copy() if c.n_outputs == 1 else out.T.copy()
    return float(out[0]) if c.n_outputs == 1 else out.copy()


def _forward(c: Circuit, X: np.ndarray) -> np.ndarray:
    plan = vec_plan(c)
    if plan is not None:
        vals = np.empty((c.n_slots, *X.shape[1:]))
        vals[:c.l] = X
        vals[plan.const_idx] = plan.const_val.reshape(-1, *([1] * (X.ndim - 1)))
        for prim, idx, j, k in plan.groups:
            try:
                vals[idx] = prim.np(vals[j]) if k is None else prim.np(vals[j], vals[k])
            except DomainError:
                _blame_group(c, vals, prim, idx)
    else:
        vals = np.array(_forward_seq(c, X if X.ndim == 1 else list(X)), dtype=np.float64)
    _check_finite(c, vals)
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


# --- reverse ---------------------------------------------------------------------------------------


def reverse_seq(c: Circuit, v: list, seeds: list) -> list:
    """Cotangents adj_i = sum over uses m of i of vjp_m(adj_m, ...), for every slot, in reverse.

    `seeds[o]` is the cotangent of output o. A slot nobody's cotangent reaches stays None (a
    symbolic zero), and its rule is never run: the sweep touches only the live part of the circuit.
    Constants receive no cotangent. Generic in the value type: floats, numpy rows or tracers.
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


def reverse_vec(c: Circuit, vals: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The same cotangents, level by level (dense: dead slots get exact zeros)."""
    plan = vec_plan(c)
    adj = np.zeros_like(vals)
    np.add.at(adj, c.outputs, seeds)
    for prim, idx, j, k in reversed(plan.groups):
        if prim is P.STEP:
            continue
        g = adj[idx]
        if k is None:
            (cj,) = prim.vjp(g, vals[idx], vals[j])
            np.add.at(adj, j, cj)
        else:
            cj, ck = prim.vjp(g, vals[idx], vals[j], vals[k])
            np.add.at(adj, j, cj)
            np.add.at(adj, k, ck)
    adj[plan.const_idx] = 0.0
    return adj


# --- tangent (forward mode) ------------------------------------------------------------------------


def tangent_seq(c: Circuit, v: list, t_inputs: list, zero: object) -> list:
    """Tangents t_i = sum_j (d v_i / d v_j) t_j slot by slot; constants get `zero`."""
    p = seq_plan(c)
    t = list(t_inputs)
    app = t.append
    for i, (prim, j, k) in enumerate(zip(p.prims[c.l:], p.a0[c.l:], p.a1[c.l:], strict=True),
                                     start=c.l):
        if prim is None or prim.jvp is None:  # a constant, or a primitive with zero derivative
            app(zero)
        elif k >= 0:
            app(prim.jvp(v[i], v[j], v[k], t[j], t[k]))
        else:
            app(prim.jvp(v[i], v[j], t[j]))
    return t


def tangent_vec(c: Circuit, vals: np.ndarray, T: np.ndarray) -> np.ndarray:
    """The same tangents, level by level."""
    plan = vec_plan(c)
    t = np.zeros_like(vals)
    t[:c.l] = T
    for prim, idx, j, k in plan.groups:
        if prim.jvp is None:
            continue
        if k is None:
            t[idx] = prim.jvp(vals[idx], vals[j], t[j])
        else:
            t[idx] = prim.jvp(vals[idx], vals[j], vals[k], t[j], t[k])
    return t
