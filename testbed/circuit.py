"""The circuit: an explicit, ordered, single-assignment list of primitive applications.

A circuit over l inputs is a table of slots 0 .. n-1. Slots 0 .. l-1 are the inputs x_0 .. x_{l-1};
every later slot is a constant or one operation `v_i = prim(v_j[, v_k])` with j, k < i, so slot order
is a topological order and no traversal ever needs recursion. `size` is N, the number of operations
(inputs and constants are not operations). The arrays `op`, `a0`, `a1` hold each slot's opcode and
argument slots (-1 where absent); `outputs` lists the slots the circuit returns.

Circuits are made by tracing (`trace(f, l)`) or from an explicit node list (`from_nodes`); both
append to a `SlotTable`.
"""

from __future__ import annotations

import gc
import inspect
import math
from collections.abc import Callable, Sequence

import numpy as np

from . import evaluate as E
from . import primitives as P
from ._checks import check_int, is_int
from .errors import CircuitError, NonFiniteError, ShapeError, TraceError

_MAX_REPR_LINES = 40


class Circuit:
    """A single-assignment circuit computing f: R^l -> R^k (k = number of outputs).

    `c(x)` evaluates it: x of shape (l,) gives a float (k = 1) or an array (k,); a batch X of shape
    (B, l) gives an array (B,) or (B, k). See `testbed.evaluate` for how.
    """

    def __init__(self, l: int, op: np.ndarray, a0: np.ndarray, a1: np.ndarray,
                 consts: np.ndarray, outputs: Sequence[int], level: np.ndarray | None = None):
        # Immutable: the arrays are the circuit's own copies, read-only, and its attributes cannot
        # be rebound, so the plans and the gradient circuit cached in _cache can never go stale.
        set_ = object.__setattr__
        set_(self, "l", int(l))
        set_(self, "op", _frozen(op, np.int8))
        set_(self, "a0", _frozen(a0, np.int64))
        set_(self, "a1", _frozen(a1, np.int64))
        set_(self, "consts", _frozen(consts, np.float64))
        set_(self, "outputs", _frozen(np.reshape(outputs, -1), np.int64))
        _validate(self)
        set_(self, "level", _frozen(_levels(self) if level is None else level, np.int64))
        set_(self, "_cache", {})  # evaluation plans, the gradient circuit: derived, never mutated

    @classmethod
    def _trusted(cls, l: int, op: np.ndarray, a0: np.ndarray, a1: np.ndarray, consts: np.ndarray,
                 outputs: np.ndarray, level: np.ndarray) -> Circuit:
        """A circuit from arrays testbed has just derived from a validated circuit (checkpoint
        segments): taken as they are, made read-only in place, not validated or copied again."""
        c = object.__new__(cls)
        for name, a, dtype in (("op", op, np.int8), ("a0", a0, np.int64), ("a1", a1, np.int64),
                               ("consts", consts, np.float64), ("outputs", outputs, np.int64),
                               ("level", level, np.int64)):
            a = np.ascontiguousarray(a, dtype=dtype)
            a.setflags(write=False)
            object.__setattr__(c, name, a)
        object.__setattr__(c, "l", int(l))
        object.__setattr__(c, "_cache", {})
        return c

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Circuit is immutable: its {name!r} cannot be set (build a new "
                             f"circuit, e.g. with testbed.Circuit(l, op, a0, a1, consts, outputs))")

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)

    # --- shape -------------------------------------------------------------------------------------
    @property
    def n_slots(self) -> int:
        """Inputs + constants + operations."""
        return len(self.op)

    @property
    def size(self) -> int:
        """N: the number of operation nodes."""
        return int(np.count_nonzero(self.op > P.CONST))

    @property
    def n_outputs(self) -> int:
        return len(self.outputs)

    @property
    def depth(self) -> int:
        """Length of the longest path from an input or constant to any slot."""
        return int(self.level.max(initial=0))

    def counts(self) -> dict[str, int]:
        """Operation counts of one evaluation, by primitive (primitives that do not occur omitted)."""
        codes, n = np.unique(self.op[self.op > P.CONST], return_counts=True)
        return {P.NAMES[c]: int(k) for c, k in zip(codes, n, strict=True)}

    # --- outputs -----------------------------------------------------------------------------------
    def output(self, index: int | Sequence[int]) -> Circuit:
        """The circuit of output `index` alone, or of outputs index[0], index[1], ... in that order.

        It keeps the l inputs (so it takes the same x) and only the slots those outputs depend on:
        slot i is kept iff it is an input or an output's argument chain reaches it. Slot order is
        preserved, so the result is again topologically ordered; levels do not change. For a
        gradient circuit G = grad(c), G.output(i) computes d f / d x_i, and grad(G.output(i)) is
        row i of the Hessian (reverse over reverse).
        """
        picks = _output_indices(index, self.n_outputs)
        roots = self.outputs[picks]
        live = np.zeros(self.n_slots, dtype=bool)
        live[:self.l] = True
        live[roots] = True
        # one backward pass over slots in reverse order: a live slot makes its arguments live
        # (arguments are earlier slots, so each is decided before it is visited)
        keep = live.tolist()
        for i, j, k in zip(range(self.n_slots - 1, self.l - 1, -1), self.a0[:self.l - 1:-1].tolist(),
                           self.a1[:self.l - 1:-1].tolist(), strict=True):
            if keep[i]:
                if j >= 0:
                    keep[j] = True
                if k >= 0:
                    keep[k] = True
        kept = np.flatnonzero(keep)
        new = np.full(self.n_slots + 1, -1, dtype=np.int64)  # new[-1] = -1 maps "no argument"
        new[kept] = np.arange(len(kept))
        return Circuit(self.l, self.op[kept], new[self.a0[kept]], new[self.a1[kept]],
                       self.consts[kept], new[roots], self.level[kept])

    # --- evaluation --------------------------------------------------------------------------------
    def __call__(self, x: object) -> float | np.ndarray:
        """c(x) for x of shape (l,) or (B, l). Inside a trace, c on a list of traced values records
        c's nodes there (composition) and returns a tracer, or a tuple of k tracers."""
        if isinstance(x, (list, tuple)) and any(type(t) is Tracer for t in x):
            return compose(self, x)
        if type(x) is Tracer:
            raise ShapeError(f"a circuit takes the list of its l={self.l} inputs; inside a trace "
                             f"call it as c([x0, ...]), not on a single traced value")
        return E.evaluate(self, x)

    def slot_values(self, x: object) -> np.ndarray:
        """Every slot's value at x (shape (n_slots,), or (n_slots, B) for a batch): for debugging."""
        return E.forward_values(self, x)

    # --- printing ----------------------------------------------------------------------------------
    def _name(self, i: int) -> str:
        if i < self.l:
            return f"x{i}"
        if self.op[i] == P.CONST:
            return repr(float(self.consts[i]))
        return f"v{i}"

    def _line(self, i: int) -> str:
        args = [self._name(int(a)) for a in (self.a0[i], self.a1[i]) if a >= 0]
        return f"  v{i} = {P.NAMES[self.op[i]]} {' '.join(args)}"

    def to_dot(self) -> str:
        """Graphviz text of the circuit (see `testbed.draw.to_dot`); `draw` needs no Graphviz."""
        from .draw import to_dot  # draw.py imports this module: the one import that breaks a cycle

        return to_dot(self)

    def pretty(self, max_lines: int | None = None) -> str:
        """The circuit one node per line, like a jaxpr; constants are printed inline."""
        ops = np.flatnonzero(self.op > P.CONST)
        head = (f"circuit(l={self.l}, N={self.size}, outputs={self.n_outputs}) "
                f"{{ lambda {' '.join(f'x{i}' for i in range(min(self.l, 12)))}"
                f"{' ...' if self.l > 12 else ''} .")
        if max_lines is not None and len(ops) > max_lines:
            k = max_lines // 2
            body = [self._line(i) for i in ops[:k]]
            body.append(f"  ... {len(ops) - 2 * k} more nodes ...")
            body += [self._line(i) for i in ops[-k:]]
        else:
            body = [self._line(i) for i in ops]
        outs = ", ".join(self._name(int(o)) for o in self.outputs[:12])
        tail = f"  in ({outs}{', ...' if self.n_outputs > 12 else ''}) }}"
        return "\n".join([head, *body, tail])

    def __repr__(self) -> str:
        return self.pretty(max_lines=_MAX_REPR_LINES)


def _frozen(a: object, dtype: type) -> np.ndarray:
    """A read-only copy of a as a C-ordered array of dtype."""
    out = np.array(a, dtype=dtype, order="C", copy=True)
    out.setflags(write=False)
    return out


def _validate(c: Circuit) -> None:
    n = len(c.op)
    if c.l < 1:
        raise CircuitError(f"a circuit needs at least one input, got l={c.l}")
    if not (len(c.a0) == len(c.a1) == len(c.consts) == n):
        raise CircuitError(f"op, a0, a1, consts differ in length: {n}, {len(c.a0)}, "
                           f"{len(c.a1)}, {len(c.consts)}")
    if n < c.l or np.any(c.op[:c.l] != P.INPUT) or np.any(c.op[c.l:] == P.INPUT):
        raise CircuitError(f"slots 0..{c.l - 1} must be the inputs and no later slot an input")
    bad = np.flatnonzero((c.op < 0) | (c.op >= len(P.NAMES)))
    if bad.size:
        i = int(bad[0])
        raise CircuitError(f"node v{i}: unknown opcode {int(c.op[i])}")
    arity = np.array([0, 0, *(p.arity for p in P.BY_CODE[2:])])[c.op]
    idx = np.arange(n)
    for j, a in enumerate((c.a0, c.a1)):
        needed = arity > j
        wrong = np.flatnonzero(needed != (a >= 0))
        if wrong.size:
            i = int(wrong[0])
            raise CircuitError(f"node v{i} = {P.NAMES[c.op[i]]}: expects {arity[i]} argument(s)")
        for test, what in ((a == idx, "refers to itself"), (a > idx, "refers forward")):
            hit = np.flatnonzero(needed & test)
            if hit.size:
                i = int(hit[0])
                raise CircuitError(f"node v{i} = {P.NAMES[c.op[i]]} {what} "
                                   f"(argument {j} is v{int(a[i])}); arguments must be earlier slots")
    bad = np.flatnonzero((c.op == P.CONST) & ~np.isfinite(c.consts))
    if bad.size:
        raise NonFiniteError(f"constant v{int(bad[0])} is {c.consts[bad[0]]}: constants must be finite")
    if c.outputs.size == 0:
        raise CircuitError("a circuit needs at least one output")
    bad = np.flatnonzero((c.outputs < 0) | (c.outputs >= n))
    if bad.size:
        raise CircuitError(f"output {int(bad[0])} refers to slot {int(c.outputs[bad[0]])}, "
                           f"outside 0..{n - 1}")


def _output_indices(index: object, k: int) -> list[int]:
    many = isinstance(index, (list, tuple, np.ndarray))
    picks = list(np.asarray(index).reshape(-1).tolist()) if isinstance(index, np.ndarray) else (
        list(index) if many else [index])
    if many and not picks:
        raise CircuitError("output() needs at least one output index, got an empty sequence")
    for i in picks:
        check_int(i, "output indices", expected="integers")  # TypeError
        if not 0 <= i < k:
            raise CircuitError(f"output index {i} is out of range: this circuit has {k} output(s), "
                               f"valid indices 0..{k - 1}")
    return [int(i) for i in picks]


def _levels(c: Circuit) -> np.ndarray:
    lev = [0] * len(c.op)
    for i, j, k in zip(range(c.l, len(c.op)), c.a0[c.l:].tolist(), c.a1[c.l:].tolist(),
                       strict=True):
        if j >= 0:
            lev[i] = 1 + (lev[j] if lev[j] >= lev[k] or k < 0 else lev[k])
    return np.asarray(lev, dtype=np.int64)


# --- tracing --------------------------------------------------------------------------------------


class Tracer:
    """A value inside a trace: arithmetic on it records a node instead of computing a number."""

    __slots__ = ("_trace", "_i")

    def __init__(self, trace: _Builder, i: int):
        self._trace = trace
        self._i = i

    def __add__(self, o: object) -> Tracer:
        return self._trace.emit(P.ADD, (self, o))

    def __radd__(self, o: object) -> Tracer:
        return self._trace.emit(P.ADD, (o, self))

    def __sub__(self, o: object) -> Tracer:
        return self._trace.emit(P.SUB, (self, o))

    def __rsub__(self, o: object) -> Tracer:
        return self._trace.emit(P.SUB, (o, self))

    def __mul__(self, o: object) -> Tracer:
        return self._trace.emit(P.MUL, (self, o))

    def __rmul__(self, o: object) -> Tracer:
        return self._trace.emit(P.MUL, (o, self))

    def __truediv__(self, o: object) -> Tracer:
        return self._trace.emit(P.DIV, (self, o))

    def __rtruediv__(self, o: object) -> Tracer:
        return self._trace.emit(P.DIV, (o, self))

    def __neg__(self) -> Tracer:
        return self._trace.emit(P.NEG, (self,))

    def __pos__(self) -> Tracer:
        return self

    def __pow__(self, n: object) -> Tracer:
        """x ** n for an integer n >= 1, by repeated squaring (ceil(log2 n) + popcount(n) - 1 muls)."""
        if not is_int(n) or n < 1:
            raise TraceError(f"a traced value can only be raised to an integer power >= 1, got "
                             f"{n!r}; write exp(y * log(x)) for x > 0")
        n = int(n)
        result, base = None, self
        while True:
            if n & 1:
                result = base if result is None else result * base
            n >>= 1
            if not n:
                return result
            base = base * base

    def _no(self, *_: object) -> None:
        raise TraceError("a traced value has no truth value or number: branching on it (if, while,"
                         " comparisons, float()) cannot be recorded in a circuit; use relu or step")

    __bool__ = __float__ = __int__ = __index__ = __lt__ = __le__ = __gt__ = __ge__ = _no
    __hash__ = object.__hash__

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: object, **kw: object) -> object:
        """numpy scalars with a tracer (np.float64(2.0) * x[0]) record the node; np.sin(x[0]) and
        other numpy functions are refused with the testbed function to use instead."""
        prim = _UFUNC_OPS.get(ufunc.__name__)
        if method == "__call__" and not kw and prim is not None:
            return self._trace.emit(prim, inputs)
        if method == "__call__" and not kw and ufunc is np.power and inputs[0] is self:
            return self ** inputs[1]
        if ufunc.__name__ in _COMPARISONS:
            self._no()
        twin = _UFUNC_TWINS.get(ufunc.__name__)
        if twin is not None:
            raise TypeError(f"numpy.{ufunc.__name__} cannot record a node on a traced value: "
                            f"use testbed.{twin}")
        raise TypeError(f"numpy.{ufunc.__name__} cannot be applied to a traced value: a traced "
                        f"function may use + - * / ** (integer), unary minus, real numbers and "
                        f"testbed.{', testbed.'.join(n for n in P.OPS if callable(getattr(P, n, None)))}")

    def __repr__(self) -> str:
        return f"Tracer(v{self._i})"


# numpy ufuncs that are a primitive (numpy scalars reach them: np.float64(2.0) * x[0] calls
# np.multiply), the comparisons (branching), and the numpy functions with a testbed twin
_UFUNC_OPS = {"add": P.ADD, "subtract": P.SUB, "multiply": P.MUL, "divide": P.DIV,
              "negative": P.NEG}
_COMPARISONS = frozenset({"less", "less_equal", "greater", "greater_equal", "equal", "not_equal"})
_UFUNC_TWINS = {"sin": "sin", "cos": "cos", "exp": "exp", "log": "log", "tanh": "tanh",
                "heaviside": "step", "maximum": "relu (for maximum(x, 0))"}


class SlotTable:
    """A growing slot table: slots 0..l-1 the inputs, then constants and operations in order.

    The one builder of circuits: tracing, `from_nodes` and the random circuits all append to one.
    """

    def __init__(self, l: int):
        self.l = l
        self.op = [P.INPUT] * l
        self.a0 = [-1] * l
        self.a1 = [-1] * l
        self.consts = [0.0] * l

    def append(self, code: int, j: int = -1, k: int = -1, value: float = 0.0) -> int:
        """Append one slot (opcode, argument slots, constant value); return its index."""
        self.op.append(code)
        self.a0.append(j)
        self.a1.append(k)
        self.consts.append(value)
        return len(self.op) - 1

    def circuit(self, outputs: Sequence[int], level: Sequence[int] | None = None) -> Circuit:
        """The table as a validated Circuit returning the given slots."""
        return Circuit(self.l, np.array(self.op, dtype=np.int8), np.array(self.a0, dtype=np.int64),
                       np.array(self.a1, dtype=np.int64), np.array(self.consts, dtype=np.float64),
                       list(outputs), None if level is None else np.array(level, dtype=np.int64))


class _Builder(SlotTable):
    """The slot table of one trace, with levels and shared constants. Closed when the trace ends:
    its tracers then refuse."""

    def __init__(self, l: int):
        super().__init__(l)
        self.level = [0] * l
        self._const_slot: dict[tuple[float, float], int] = {}
        self.closed = False

    def _slot(self, a: object) -> int:
        if type(a) is Tracer:
            if a._trace is not self:
                raise TraceError(f"{a!r} belongs to another trace" + (
                    " that has ended" if a._trace.closed else ""))
            return a._i
        if isinstance(a, (int, float, np.floating, np.integer)) and not isinstance(a, bool):
            return self.const(float(a))
        if isinstance(a, Circuit):
            raise TraceError("cannot use a Circuit as a value in a traced function; to compose, "
                             "call it on a list of values: c([x[0], x[1], ...])")
        raise TraceError(f"cannot use {type(a).__name__} {a!r:.60} in a circuit: only tracers and "
                         f"real numbers (int or float, not complex, bool or str)")

    def const(self, value: float) -> int:
        if not math.isfinite(value):
            raise NonFiniteError(f"constant {value!r} in a traced function: constants must be finite")
        key = (value, math.copysign(1.0, value))
        i = self._const_slot.get(key)
        if i is None:
            i = self.append(P.CONST, value=value)
            self.level.append(0)
            self._const_slot[key] = i
        return i

    def emit(self, prim: P.Primitive, args: tuple) -> Tracer:
        if self.closed:
            raise TraceError(f"a tracer was used after its trace ended (applying {prim.name}); "
                             f"tracers live only while the traced function runs")
        # the hot path of tracing (millions of calls when writing gradient circuits): `append`
        # and `_slot` inlined
        a = args[0]
        j = a._i if type(a) is Tracer and a._trace is self else self._slot(a)
        lev = self.level
        if prim.arity == 1:
            k, new_level = -1, lev[j] + 1
        else:
            a = args[1]
            k = a._i if type(a) is Tracer and a._trace is self else self._slot(a)
            lj, lk = lev[j], lev[k]
            new_level = (lj if lj > lk else lk) + 1
        self.op.append(prim.code)
        self.a0.append(j)
        self.a1.append(k)
        self.consts.append(0.0)
        lev.append(new_level)
        return Tracer(self, len(self.op) - 1)

    def finish(self, outputs: Sequence[int]) -> Circuit:
        return self.circuit(outputs, self.level)


class _Inputs(list):
    """The list of l tracers a traced function receives: indexing past l names l and the index."""

    __slots__ = ()

    def __getitem__(self, i: object) -> object:
        try:
            return list.__getitem__(self, i)
        except IndexError:
            raise TraceError(f"x[{i}] is out of range: the function is traced with l={len(self)} "
                             f"inputs x[0] .. x[{len(self) - 1}]") from None


def trace(f: Callable, l: int) -> Circuit:
    """Record f: R^l -> R^k as a circuit by calling f on a list of l tracers.

    f may use + - * / **(int), unary minus, real numbers (numpy scalars too), testbed's sin, cos,
    exp, log, relu, sigmoid, tanh, step and other circuits called on lists of its values (their
    nodes are recorded in place), and returns one tracer or a tuple/list of them (the outputs, in
    order). A non-callable f, an f that does not take one argument, or a numpy function applied to
    a tracer raise TypeError; x[i] past l and other misuse raise TraceError.
    """
    if not callable(f):
        raise TypeError(f"trace(f, l) needs a function f of one argument, the list x of l inputs; "
                        f"got {type(f).__name__} {f!r:.60}")
    if not is_int(l):
        raise TypeError(f"trace(f, l) needs the number of inputs l as an int, got "
                        f"{type(l).__name__} {l!r:.60}")
    if l < 1:
        raise TraceError(f"trace needs the number of inputs l >= 1, got {l!r}")
    _check_arity(f, int(l))
    b = _Builder(int(l))
    xs = _Inputs(Tracer(b, i) for i in range(int(l)))
    collecting = gc.isenabled()
    gc.disable()  # tracing allocates millions of acyclic objects: the cyclic collector only slows it
    try:
        out = f(xs)
    finally:
        b.closed = True  # tracers that escape f are dead from here on, whether f succeeded or not
        if collecting:
            gc.enable()
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    if not outs:
        raise TraceError("the traced function returned no outputs")
    for n, o in enumerate(outs):
        if type(o) is not Tracer:
            raise TraceError(f"the traced function must return tracers; output {n} is "
                             f"{type(o).__name__} {o!r}" + (
                                 " (a constant: it does not depend on the inputs)"
                                 if isinstance(o, (int, float)) else ""))
        if o._trace is not b:
            raise TraceError(f"output {n} ({o!r}) belongs to another trace")
    return b.finish([o._i for o in outs])


def _check_arity(f: Callable, l: int) -> None:
    """f must accept one positional argument: trace calls f(x) with x the list of l tracers."""
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):  # some builtins have no signature: let the call decide
        return
    try:
        sig.bind(None)
    except TypeError:
        params = ", ".join(sig.parameters)
        raise TypeError(f"trace calls f with ONE argument, the list x of l={l} inputs, but f takes "
                        f"({params}); write lambda x: f(x[0], x[1], ...)") from None


def record(c: Circuit, xs: Sequence) -> list[Tracer]:
    """Every slot of c, re-recorded in the running trace that owns the tracers among xs (c's l
    inputs; real numbers among them become constants): the same operations in the same order."""
    b = next(t._trace for t in xs if type(t) is Tracer)
    if len(xs) != c.l:
        raise ShapeError(f"this circuit has l={c.l} inputs; it was called on {len(xs)} values")
    v = [Tracer(b, b._slot(t)) for t in xs]
    for code, j, k, value in zip(c.op[c.l:].tolist(), c.a0[c.l:].tolist(), c.a1[c.l:].tolist(),
                                 c.consts[c.l:].tolist(), strict=True):
        if code == P.CONST:
            v.append(Tracer(b, b.const(value)))
        else:
            v.append(b.emit(P.BY_CODE[code], (v[j], v[k]) if k >= 0 else (v[j],)))
    return v


def compose(c: Circuit, xs: Sequence) -> Tracer | tuple[Tracer, ...]:
    """c applied to values xs inside a trace: one tracer (c has one output) or a tuple of k."""
    v = record(c, xs)
    outs = tuple(v[o] for o in c.outputs.tolist())
    return outs[0] if len(outs) == 1 else outs


def from_nodes(l: int, nodes: Sequence[tuple], outputs: Sequence[int]) -> Circuit:
    """Build a circuit from an explicit node list, validated.

    Slots 0..l-1 are the inputs; node m (0-based) becomes slot l + m and is either
    ("const", value) or (prim_name, arg_slot[, arg_slot]) with argument slots < l + m.
    """
    t = SlotTable(l)
    for m, node in enumerate(nodes):
        i = l + m
        if not isinstance(node, (tuple, list)) or not node:
            raise CircuitError(f"node v{i}: expected (prim, args...), got {node!r}")
        name, *args = node
        if name == "const":
            if len(args) != 1:
                raise CircuitError(f"node v{i}: a constant takes one value, got {args!r}")
            t.append(P.CONST, value=float(args[0]))
            continue
        prim = P.lookup(name, where=f"node v{i}")
        if len(args) != prim.arity or not all(is_int(a) for a in args):
            raise CircuitError(f"node v{i} = {name}: expects {prim.arity} integer argument "
                               f"slot(s), got {args!r}")
        t.append(prim.code, int(args[0]), int(args[1]) if prim.arity == 2 else -1)
    return t.circuit(outputs)
