"""Random circuits with safe domains by construction (shared by the Hypothesis strategy and the
seeded generator used by benchmarks and studies).

The promise. For every input x in the box [-BOX, BOX]^l = [-2, 2]^l and every slot of a circuit
built here (`random_circuit`, `testbed.strategies.circuits`, or `Builder.apply` / `Builder.const`
directly), its float64 value as any executor computes it satisfies
  every `log` argument u          u >= DELTA = 0.1
  every `div` denominator y       |y| >= DELTA = 0.1
  every `exp` argument u          u <= EXP_MAX = 5
  every value (inputs, constants, operations, the repair nodes below included)  |v| <= M = 1e3.
The repair nodes count as much as the drawn ones: later operands are drawn among all earlier slots.

How. Every slot carries an interval [lo, hi] containing its value for every input in the box.
Before a primitive is applied, arguments that would leave its safe domain are mapped into it by
extra nodes (so no example is ever rejected):
  log(u)      needs lo >= DELTA                else u := exp(sin(u))     in [1/e, e]
  x / y       needs lo >= DELTA or hi <= -DELTA (no point of [lo, hi] within DELTA of 0)
                                               else y := exp(cos(y))     in [1/e, e]
              and |x| <= M DELTA               else x := tanh(x)
  exp(u)      needs hi <= EXP_MAX              else u := sin(u)
  x + y, x - y   need |x|, |y| <= M / 2        else the large ones := tanh(.)  (the squash)
  x * y          needs |x|, |y| <= sqrt(M)     else the large ones := tanh(.)
Circuits of + - * / only are repaired with those operations alone, so that they stay in the class
Baur and Strassen's theorem is about: y := u * u + 1 in [1, 2], with u = y where |y| <= 1 and the
squash of y otherwise; the squash of u is u / (u * u + 1) in [-1/2, 1/2], after u := u * 2^-k
(k <= 5, exact) where u * u + 1 could exceed M. By induction every slot's interval lies in [-M, M],
which `Builder` checks at each node (a TestbedError there is a bug of this module, not the caller's).

The intervals are outward-correct for float64 evaluation, not only for exact arithmetic: add, sub,
mul, div (corner quotients x_i / y_j, not the table's x * (1 / y)), neg, relu and step are
evaluated at the corners in the same round-to-nearest arithmetic as the executors, and rounding is
monotone, so the corners' rounded results bracket every rounded result; the transcendental rules
(the table's `interval`, evaluated with `math`) are widened by a relative 2^-40 (plus 1e-300), far
more than the few ulps by which numpy's, numba's and libm's implementations may differ, and clipped
to the functions' ranges (sin, cos, tanh in [-1, 1], sigmoid in [0, 1], ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

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
# Primitives whose interval rule, run in round-to-nearest at the corners, already brackets every
# rounded result (rounding is monotone): no widening. div's is computed here (`_div_corners`).
_CORNER_EXACT = frozenset({"add", "sub", "mul", "neg", "relu", "step"})
# What float64 implementations of the others cannot leave: the widened rule is clipped to it, so
# that e.g. tanh's hi = 1.0 stays 1.0 (a faithfully rounded sin or tanh never exceeds 1, and
# sigmoid's 1 / (1 + e), e / (1 + e) with e >= 0 never do either). dsigmoid's and sech2's maxima
# 1/4 and 1 are not clipped: their rounded formulas may overshoot those by an ulp.
_RANGE: dict[str, tuple[float, float]] = {
    "sin": (-1.0, 1.0), "cos": (-1.0, 1.0), "tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0),
    "exp": (0.0, math.inf), "dsigmoid": (0.0, math.inf), "sech2": (0.0, math.inf)}
_REL = 2.0 ** -40  # ~4000 ulps: libm, numpy (SIMD) and numba differ from math by a few ulps at most
_TINY = 1e-300  # where results underflow, errors are absolute (subnormals): covers those


def _div_corners(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    # x / y is monotone in x and in y on a box where y keeps its sign: extremes at the corners,
    # and the rounded corner quotients bracket every rounded quotient (the table's rule multiplies
    # by rounded reciprocals, which can miss a rounded x / y by an ulp). b must not contain 0
    # (Builder.apply makes |b| >= DELTA).
    qs = (a[0] / b[0], a[0] / b[1], a[1] / b[0], a[1] / b[1])
    return min(qs), max(qs)


def _widened(prim: P.Primitive) -> Callable:
    """prim's interval rule widened by _REL and _TINY and clipped to prim's range."""
    rule = prim.interval
    rlo, rhi = _RANGE.get(prim.name, (-math.inf, math.inf))

    def enclose(*ivs: tuple[float, float]) -> tuple[float, float]:
        lo, hi = rule(*ivs)
        return max(rlo, lo - (abs(lo) * _REL + _TINY)), min(rhi, hi + (abs(hi) * _REL + _TINY))

    return enclose


#: per primitive, an interval rule containing the float64 value prim(x[, y]) for every x in the
#: first interval (and y in the second), as every executor computes it
_ENCLOSE: dict[str, Callable] = {
    p.name: _div_corners if p is P.DIV else p.interval if p.name in _CORNER_EXACT else _widened(p)
    for p in P.TABLE.values()}


class Builder(SlotTable):
    """A slot table with an interval per slot (outward-correct, see above); `apply` repairs domains
    as above, so every circuit built by `const` and `apply` alone keeps the module's promise."""

    def __init__(self, l: int, rational: bool = False):
        super().__init__(l)
        self.rational = rational  # repair with + - * / only (for circuits of the four operations)
        self.iv = [(-BOX, BOX)] * l
        self.uses = [0] * l
        self.n_ops = 0

    def const(self, value: float) -> int:
        value = float(value)
        if not abs(value) <= M:  # NaN too: a constant is a value, and every value is promised
            raise TestbedError(f"random circuit constants must lie in [-{M:g}, {M:g}], got {value!r}")
        self.iv.append((value, value))
        self.uses.append(0)
        return self.append(P.CONST, value=float(value))

    def _emit(self, name: str, j: int, k: int = -1) -> int:
        prim = P.TABLE[name]
        if k < 0:
            iv = _ENCLOSE[name](self.iv[j])
        elif prim is P.MUL and j == k:  # a square: interval arithmetic alone would allow negatives
            lo, hi = self.iv[j]
            iv = (0.0 if lo <= 0.0 <= hi else min(lo * lo, hi * hi), max(lo * lo, hi * hi))
        else:
            iv = _ENCLOSE[name](self.iv[j], self.iv[k])
        if not (-M <= iv[0] and iv[1] <= M):  # NaN fails too
            # the repairs in `apply` make this unreachable: if it is reached, they have a gap
            raise TestbedError(f"internal: random circuit slot {len(self.op)} = {name} has interval "
                               f"{iv}, outside [-{M:g}, {M:g}]")
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
            # j^2 + 1 is a slot too (and may be drawn as an operand later): scale j by an exact
            # power of two first where j^2 + 1 could exceed M (|j| <= M: k <= 5)
            a = max(-lo, hi)
            s = 1.0
            while a * s * (a * s) + 1.0 > M:
                s *= 0.5
            if s < 1.0:
                j = self._emit("mul", j, self.const(s))
            den = self._emit("add", self._emit("mul", j, j), self.const(1.0))
            i = self._emit("div", j, den)
            # interval arithmetic alone cannot see that j / (j^2 + 1) is bounded. Rounded, too:
            # with t = |j|, t^2 >= 2t - 1, and 2t - 1, 2t are floats for 1/2 <= t < 2^51, so by
            # monotone rounding fl(fl(t t) + 1) >= 2t and fl(t / that) <= fl(t / 2t) = 1/2 (for
            # t < 1/2, fl(t t) + 1 >= 1 > 2t already). No widening: it would move exact sums of
            # these halves (1, 100, 500) past the bounds they are compared with, for nothing.
            self.iv[i] = (-0.5, 0.5)
            return i
        return self._emit("tanh", j)

    def _positive(self, j: int, via: str) -> int:
        """A slot in [1/e, e] (or [1, 2] with rational repairs) computed from slot j."""
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
            # |y| >= DELTA on all of [lo, hi] only if the whole interval lies on one side, at
            # least DELTA from 0: [0.0067, 0.37] reaches 0.0067 although it does not contain 0
            lo, hi = self.iv[k]
            if not (lo >= DELTA or hi <= -DELTA):
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
