"""Random circuits with safe domains by construction (shared by the Hypothesis strategy and the
seeded generator used by benchmarks and studies).

Every slot carries an interval [lo, hi] that contains its value for every input in the box
[-BOX, BOX]^l. Before a primitive is applied, arguments that would leave its safe domain are
mapped into it by extra nodes (so no example is ever rejected):
  log(u)      needs lo >= DELTA         else u := exp(sin(u))          in [1/e, e]
  x / y       needs |y| >= DELTA        else y := exp(cos(y))          in [1/e, e]
  exp(u)      needs hi <= EXP_MAX       else u := sin(u)
  x op y      result within [-M, M]     else large arguments := tanh(arg)
Circuits of + - * / only are repaired with those operations alone (y := y*y + 1, u := u/(u*u + 1)),
so that they stay in the class Baur and Strassen's theorem is about. So values stay in [-M, M],
denominators away from 0 and exp far from overflow. The intervals come from each primitive's
`interval` rule in the primitive table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from . import primitives as P
from .circuit import Circuit, SlotTable
from .errors import TestbedError

BOX = 2.0
DELTA = 0.1
EXP_MAX = 5.0
M = 1e3
#: primitives without kinks: finite differences are accurate everywhere on these
SMOOTH_OPS: tuple[str, ...] = tuple(p.name for p in P.TABLE.values() if p.smooth)
RATIONAL_OPS = frozenset({"add", "sub", "mul", "div", "neg"})
DEFAULT_OPS: tuple[str, ...] = ("add", "sub", "mul", "div", "neg", "sin", "cos", "exp", "log",
                                "relu", "sigmoid", "tanh")


class Builder(SlotTable):
    """A slot table with an interval per slot (each primitive's `interval` rule); `apply` repairs
    domains as above."""

    def __init__(self, l: int, rational: bool = False):
        super().__init__(l)
        self.rational = rational  # repair with + - * / only (for circuits of the four operations)
        self.iv = [(-BOX, BOX)] * l
        self.uses = [0] * l
        self.n_ops = 0

    def const(self, value: float) -> int:
        self.iv.append((float(value), float(value)))
        self.uses.append(0)
        return self.append(P.CONST, value=float(value))

    def _emit(self, name: str, j: int, k: int = -1) -> int:
        prim = P.TABLE[name]
        if k < 0:
            iv = prim.interval(self.iv[j])
        elif prim is P.MUL and j == k:  # a square: interval arithmetic alone would allow negatives
            lo, hi = self.iv[j]
            iv = (0.0 if lo <= 0.0 <= hi else min(lo * lo, hi * hi), max(lo * lo, hi * hi))
        else:
            iv = prim.interval(self.iv[j], self.iv[k])
        self.iv.append(iv)
        self.uses.append(0)
        self.n_ops += 1
        self.uses[j] += 1
        if k >= 0:
            self.uses[k] += 1
        return self.append(prim.code, j, k)

    def _squash(self, j: int, bound: float) -> int:
        lo, hi = self.iv[j]
        if max(-lo, hi) <= bound:
            return j
        if self.rational:  # j / (j^2 + 1) lies in [-1/2, 1/2]
            den = self._emit("add", self._emit("mul", j, j), self.const(1.0))
            i = self._emit("div", j, den)
            self.iv[i] = (-0.5, 0.5)  # interval arithmetic alone cannot see j / (j^2 + 1) is bounded
            return i
        return self._emit("tanh", j)

    def _positive(self, j: int, via: str) -> int:
        """A slot in [1/e, e] (or [1, 1 + M] with rational repairs) computed from slot j."""
        if self.rational:  # squash first so that j^2 + 1 stays below M
            j = self._squash(j, 1.0)
            return self._emit("add", self._emit("mul", j, j), self.const(1.0))
        return self._emit("exp", self._emit(via, j))

    def apply(self, name: str, j: int, k: int = -1) -> int:
        """Emit name(v_j[, v_k]) after mapping the arguments into the safe domain."""
        if name == "log" and self.iv[j][0] < DELTA:
            j = self._positive(j, "sin")
        elif name == "exp" and self.iv[j][1] > EXP_MAX:
            j = self._emit("sin", j)
        elif name == "div":
            if -DELTA < self.iv[k][0] and self.iv[k][1] < DELTA or \
                    self.iv[k][0] <= 0.0 <= self.iv[k][1]:
                k = self._positive(k, "cos")
            j = self._squash(j, M * DELTA)
        elif name in ("add", "sub"):
            j, k = self._squash(j, M / 2), self._squash(k, M / 2)
        elif name == "mul":
            j, k = self._squash(j, math.sqrt(M)), self._squash(k, math.sqrt(M))
        return self._emit(name, j, k)

    def sum_sinks(self, last: int) -> int:
        """Fold every unused operation into the output by a balanced tree of adds (depth + log2 of
        the number of sinks), so that every node is live."""
        level = [i for i in range(self.l, len(self.op))
                 if self.uses[i] == 0 and self.op[i] > P.CONST and i != last] + [last]
        while len(level) > 1:
            nxt = [self.apply("add", level[m], level[m + 1]) for m in range(0, len(level) - 1, 2)]
            level = nxt + ([level[-1]] if len(level) % 2 else [])
        return level[0]


def random_circuit(rng: np.random.Generator, N: int, l: int, family: str = "wide",
                   window: int = 4, ops: Sequence[str] = DEFAULT_OPS, n_outputs: int = 1,
                   p_const: float = 0.02, live: bool = True, p_input: float = 0.05) -> Circuit:
    """A seeded random circuit with about N operations over l inputs.

    family "wide": each operand drawn uniformly from all earlier slots (depth ~ log N);
    family "deep": first operand the previous slot, the second drawn from the `window` slots
                   before it (an input with probability p_input), so the depth is about N.
    With live=True the unused nodes are summed into the (first) output, so every node matters.
    The inputs are meant to lie in [-2, 2]^l (the intervals assume it).
    """
    if family not in ("wide", "deep"):
        raise TestbedError(f"family must be 'wide' or 'deep', got {family!r}")
    for name in ops:
        P.lookup(name, where="random_circuit ops")
    b = Builder(l, rational=set(ops) <= RATIONAL_OPS)
    names = list(ops)
    arity = [P.TABLE[n].arity for n in names]
    # draw all random numbers up front: the per-node Python work is then only the bookkeeping
    target = max(1, int(N))
    picks = rng.integers(0, len(names), size=target)
    u = rng.random((target, 2))
    cflag = rng.random((target, 2)) < p_const
    cval = rng.uniform(-BOX, BOX, size=(target, 2))
    t = 0
    while b.n_ops < target:
        i = len(b.op)
        name = names[picks[t]]
        args = []
        for s in range(arity[picks[t]]):
            if family == "deep":
                if s == 0:
                    args.append(i - 1)
                elif u[t, 1] < p_input:
                    # an input now and then, so every input can matter (~ p_input N uses in all)
                    args.append(int(u[t, 0] * l))
                else:
                    # from the window but never the first operand: no v - v or v / v, which would
                    # cut the chain off from the inputs (an exactly zero gradient)
                    lo = max(0, i - window)
                    args.append(lo + int(u[t, 0] * max(1, i - 1 - lo)))
                continue
            if cflag[t, s]:
                args.append(b.const(round(float(cval[t, s]), 3)))
                continue
            args.append(int(u[t, s] * i))
        b.apply(name, *args)
        t += 1
    last = len(b.op) - 1
    outs = [b.sum_sinks(last) if live else last]
    ops_idx = [i for i in range(l, len(b.op)) if b.op[i] > P.CONST]
    for m in range(1, n_outputs):
        outs.append(ops_idx[-1 - (m * 7919) % len(ops_idx)])
    return b.circuit(outs)
