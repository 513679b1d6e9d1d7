"""Exact operation counts of every evaluation and transform, by primitive.

Counts are those of the algorithm, i.e. of the circuit each transform writes when run on tracers
(so `op_counts(c, "grad") == grad(c).counts()` exactly; the tests check it). The level-vectorised
executor computes the same values with dense numpy calls and may touch dead slots as well; counts
are machine-independent and do not see that (`testbed.evaluate.counting()` records what ran).

Per-primitive rule costs are not written by hand: they are measured once, by tracing each rule.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from . import primitives as P
from .circuit import Circuit, Tracer, _Builder
from .errors import TestbedError
from .evaluate import reverse_plan

MODES = ("forward", "grad", "vjp", "jvp", "hvp", "hessian", "jacfwd", "jacrev", "jacobian",
         "fd_forward", "fd_central")


def _trace_rule(rule: object, n_args: int) -> tuple[Counter, tuple]:
    """The ops a rule writes when applied to tracers, and what it returns."""
    b = _Builder(n_args)
    out = rule(*(Tracer(b, i) for i in range(n_args)))
    return Counter(P.NAMES[o] for o in b.op[n_args:] if o > P.CONST), out


#: ops written by each primitive's reverse rule (g, ans, *args) and forward rule (ans, *args, *t)
VJP_COST: dict[str, Counter] = {p.name: _trace_rule(p.vjp, 2 + p.arity)[0] for p in P.TABLE.values()}
JVP_COST: dict[str, Counter] = {
    p.name: _trace_rule(p.jvp, 1 + 2 * p.arity)[0] if p.jvp else Counter() for p in P.TABLE.values()}


def _scale(counts: dict, k: int) -> Counter:
    return Counter({name: k * n for name, n in counts.items()})


def grad_counts(c: Circuit) -> Counter:
    """Forward ops + the rule of every live slot + one add per extra contribution to a slot.

    Live: reached by a cotangent from the outputs (constants take none, and a rule that returns
    None for an argument passes it none): `testbed.evaluate.reverse_plan`, the structure the
    reverse sweeps run. A slot that receives k contributions (outputs counting one each) costs
    k - 1 additions.
    """
    flags, live, _ = reverse_plan(c)
    total = Counter(c.counts())
    for code in np.flatnonzero(live).tolist():
        total.update(_scale(VJP_COST[P.NAMES[code]], int(live[code])))
    received = np.bincount(c.outputs, minlength=c.n_slots)
    received += np.bincount(c.a0[(flags & 4) != 0], minlength=c.n_slots)
    received += np.bincount(c.a1[(flags & 8) != 0], minlength=c.n_slots)
    adds = int(np.maximum(received - 1, 0).sum())
    if adds:
        total["add"] += adds
    return +total


def jvp_counts(counts: dict[str, int]) -> Counter:
    """Forward-mode sweep over a circuit with these op counts: its own ops + the tangent rule of
    every operation (a primitive without a jvp rule has a zero tangent: no ops)."""
    total = Counter(counts)
    for name, m in counts.items():
        total.update(_scale(JVP_COST[name], m))
    return +total


def op_counts(c: Circuit, mode: str, checkpoints: int | None = None,
              executor: str = "auto", segments: int | None = None) -> dict[str, int]:
    """Exact operation counts of one call of `mode` on c, by primitive.

    checkpoints=s (modes grad and vjp): with binomial checkpointing, the gradient's operations
    plus the forward operations of every segment the revolve schedule recomputes
    (`testbed.checkpoint.recomputation_counts`; the segments follow the executor's order).

    forward     one evaluation: c.counts()
    grad, vjp   value_and_grad / vjp: forward + reverse sweep (= the gradient circuit's size)
    jvp         forward + tangent sweep
    hvp         tangent sweep through the gradient circuit (forward + reverse + their tangents)
    hessian     l HVPs
    jacfwd      l jvps;  jacrev  k vjps (k outputs);  jacobian  the cheaper of the two (by total)
    fd_forward  (l + 1) N;  fd_central  2 l N
    """
    if not isinstance(c, Circuit):
        raise TypeError(f"op_counts needs a testbed Circuit as its first argument, got "
                        f"{type(c).__name__} {c!r:.40}")
    if checkpoints is not None and mode not in ("grad", "vjp"):
        raise TestbedError(f"checkpoints apply to the modes 'grad' and 'vjp', not {mode!r}")
    if mode == "jacobian":
        mode = jacobian_mode(c)
    if mode == "forward":
        out = Counter(c.counts())
    elif mode in ("grad", "vjp"):
        out = grad_counts(c)
        if checkpoints is not None:
            from .checkpoint import recomputation_counts

            out.update(recomputation_counts(c, checkpoints, segments, executor))
    elif mode == "jvp":
        out = jvp_counts(c.counts())
    elif mode == "hvp":
        out = jvp_counts(grad_counts(c))
    elif mode == "hessian":
        out = _scale(jvp_counts(grad_counts(c)), c.l)
    elif mode == "jacfwd":
        out = _scale(jvp_counts(c.counts()), c.l)
    elif mode == "jacrev":
        out = _scale(grad_counts(c), c.n_outputs)
    elif mode == "fd_forward":
        out = _scale(c.counts(), c.l + 1)
    elif mode == "fd_central":
        out = _scale(c.counts(), 2 * c.l)
    else:
        raise TestbedError(f"unknown cost mode {mode!r}; known: {', '.join(MODES)}")
    return dict(sorted(out.items()))


def jacobian_mode(c: Circuit) -> str:
    """"jacfwd" (l tangent sweeps) or "jacrev" (k reverse sweeps), whichever costs fewer operations
    in all; "jacfwd" on a tie."""
    if "jacobian_mode" not in c._cache:
        fwd, rev = total(op_counts(c, "jacfwd")), total(op_counts(c, "jacrev"))
        c._cache["jacobian_mode"] = "jacrev" if rev < fwd else "jacfwd"
    return c._cache["jacobian_mode"]


def total(counts: dict[str, int]) -> int:
    """All operations of a count dict."""
    return sum(counts.values())


def muldiv(counts: dict[str, int]) -> int:
    """Multiplications and divisions of a count dict (Baur-Strassen's measure)."""
    return counts.get("mul", 0) + counts.get("div", 0)
