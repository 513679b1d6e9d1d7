"""The one table of primitives: implementation and derivative rules of every operation.

Every primitive is a scalar function applied elementwise. Each row of `TABLE` gives
  scalar  the implementation on one float (the `math` module or plain arithmetic; numba compiles
       it unchanged into testbed.compiled's kernels),
  array   the implementation on numpy arrays (for batches and for whole levels of a circuit),
  domain  None, or a predicate on the arguments (floats, arrays, or inside a numba kernel) that is
       False where the primitive is undefined or overflows: log x > 0, division y != 0, exp
       x <= 709.78; `refusal` words the DomainError there,
  py, np  scalar and array, refusing arguments outside the domain (derived from the three above:
       what the sequential and vectorised executors call),
  vjp  the reverse-mode rule  (g, ans, *args) -> one cotangent contribution per argument,
       g * d ans / d arg_i, or None where that contribution is identically zero,
  jvp  the forward-mode rule  (ans, *args, *tangents) -> tangent of ans,
  jnp  the JAX twin: a function of the `jax` module returning the jax.numpy implementation (so that
       this module, and `import testbed`, do not import jax; `testbed.to_jax` calls it),
  interval  the image of argument intervals: ([lo, hi], ...) -> [lo', hi'] containing prim(x, ...)
       for every x in the intervals, valid where the intervals lie in the primitive's domain (random
       circuits use it to keep log, division and exp in their safe domains),
  smooth  False for the primitives with a kink (relu, step), where finite differences fail.
The rules use only +, -, *, /, unary minus and the generic functions of this module, so they run
unchanged on floats, on arrays and on tracers: applied to tracers they write the derivative as a
circuit, which is why grad-of-grad and jvp-of-grad need no extra code (as in HIPS autograd and JAX).
Rules for exp, sigmoid, tanh and div use the answer `ans` they already computed (JAX's defjvp2).

`Dual` (a value with its tangent) runs the same rules in forward mode by overloading: a vjp rule
applied to duals also returns its own tangent, the jvp of the vjp, which the fused Hessian-vector
sweep needs (testbed.evaluate.reverse_tangent); no second-order rule is written anywhere.

`step` (the Heaviside function, step(x) = 1 if x > 0 else 0) is not among the notes' primitives: it
is relu's derivative, needed so that relu' is itself a circuit. relu'(0) = 0, as `jax.nn.relu`.
Nor are `dsigmoid` and `sech2`, the derivatives of sigmoid and tanh:
    sigmoid'(x) = sigmoid(x) sigmoid(-x) = e / (1 + e)^2,       e = exp(-|x|)
    tanh'(x)    = sech(x)^2             = 4 e / (1 + e)^2,      e = exp(-2 |x|)
computed without the cancellation of the textbook forms s (1 - s) and 1 - tanh^2, which are
exactly 0 once s or tanh rounds to 1 (|x| > 37 and > 19): a saturated unit's gradient is the
vanishing-gradient story itself, so it is computed to full relative precision, 3.7e-44 at
sigmoid'(100) and 5.5e-87 at tanh'(100) (JAX's own rules give 0 there). Their own derivatives are
cancellation-free too: dsigmoid' = dsigmoid(x) tanh(-x/2), sech2' = -2 sech2(x) tanh(x).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import CircuitError, DomainError


@dataclass(frozen=True)
class Primitive:
    """One row of the table. `code` is the primitive's opcode inside a circuit."""

    name: str
    code: int
    arity: int
    py: Callable
    np: Callable
    vjp: Callable | None
    jvp: Callable | None
    # defaults only so that a variant of a row can be written positionally (a rule swapped for
    # another); every row of TABLE sets all three
    jnp: Callable | None = None
    interval: Callable | None = None
    smooth: bool = True
    scalar: Callable | None = None
    domain: Callable | None = None

    def __repr__(self) -> str:
        return f"<primitive {self.name}/{self.arity}>"


# --- generic functions: tracer -> new node, dual -> value and tangent, float -> math, else numpy --


def _apply(prim: Primitive, *args: object) -> object:
    for a in args:
        trace = getattr(a, "_trace", None)
        if trace is not None:
            return trace.emit(prim, args)
    for a in args:
        if type(a) is Dual:
            return _dual_apply(prim, args)
    if all(type(a) is float or type(a) is int for a in args):
        return prim.py(*map(float, args))
    return prim.np(*(np.asarray(a, dtype=np.float64) for a in args))


def sin(x: object) -> object:
    """sin(x), elementwise; on tracers, a `sin` node."""
    return _apply(SIN, x)


def cos(x: object) -> object:
    """cos(x), elementwise; on tracers, a `cos` node."""
    return _apply(COS, x)


def exp(x: object) -> object:
    """exp(x), elementwise; on tracers, an `exp` node."""
    return _apply(EXP, x)


def log(x: object) -> object:
    """log(x) for x > 0, elementwise; on tracers, a `log` node."""
    return _apply(LOG, x)


def relu(x: object) -> object:
    """relu(x) = max(x, 0), elementwise; relu'(0) = 0 as in `jax.nn.relu`."""
    return _apply(RELU, x)


def sigmoid(x: object) -> object:
    """sigmoid(x) = 1 / (1 + exp(-x)), computed without overflow for any finite x."""
    return _apply(SIGMOID, x)


def tanh(x: object) -> object:
    """tanh(x), elementwise; on tracers, a `tanh` node."""
    return _apply(TANH, x)


def step(x: object) -> object:
    """Heaviside step, 1 if x > 0 else 0: relu's derivative (its own derivative is 0)."""
    return _apply(STEP, x)


def dsigmoid(x: object) -> object:
    """sigmoid'(x) = sigmoid(x) sigmoid(-x), without cancellation for any finite x."""
    return _apply(DSIGMOID, x)


def sech2(x: object) -> object:
    """tanh'(x) = sech(x)^2 = 1 - tanh(x)^2, without cancellation for any finite x."""
    return _apply(SECH2, x)


# --- dual numbers: forward mode through the rules themselves ---------------------------------------


class Dual:
    """A value v with its tangent t (floats, numpy arrays or tracers, like the rules' arguments).

    Arithmetic on duals applies each primitive and its jvp rule: prim(v, ...) with tangent
    jvp(ans, v..., t...), and tangent 0.0 for a plain number or a primitive without a jvp rule. So
    a vjp rule run on duals returns its contributions together with their tangents, the jvp of the
    vjp rule (Pearlmutter's R-operator applied to one line of the reverse sweep), node for node the
    same operations as forward mode over the gradient circuit.
    """

    __slots__ = ("v", "t")

    def __init__(self, v: object, t: object):
        self.v = v
        self.t = t

    def __add__(self, o: object) -> Dual:
        return _dual_apply(ADD, (self, o))

    def __radd__(self, o: object) -> Dual:
        return _dual_apply(ADD, (o, self))

    def __sub__(self, o: object) -> Dual:
        return _dual_apply(SUB, (self, o))

    def __rsub__(self, o: object) -> Dual:
        return _dual_apply(SUB, (o, self))

    def __mul__(self, o: object) -> Dual:
        return _dual_apply(MUL, (self, o))

    def __rmul__(self, o: object) -> Dual:
        return _dual_apply(MUL, (o, self))

    def __truediv__(self, o: object) -> Dual:
        return _dual_apply(DIV, (self, o))

    def __rtruediv__(self, o: object) -> Dual:
        return _dual_apply(DIV, (o, self))

    def __neg__(self) -> Dual:
        return _dual_apply(NEG, (self,))

    def __pos__(self) -> Dual:
        return self

    def __repr__(self) -> str:
        return f"Dual({self.v!r}, {self.t!r})"


def _dual_apply(prim: Primitive, args: tuple) -> Dual:
    vs = [a.v if type(a) is Dual else a for a in args]
    ts = [a.t if type(a) is Dual else 0.0 for a in args]
    ans = _apply(prim, *vs)
    return Dual(ans, 0.0 if prim.jvp is None else prim.jvp(ans, *vs, *ts))


# --- implementations on floats (numba compiles these unchanged) ------------------------------------


def _sigmoid(x: float) -> float:  # pragma: no mutate block (numba-compiled)
    # exp of a non-positive number only: no overflow for any finite x.
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _relu(x: float) -> float:  # pragma: no mutate block (numba-compiled)
    return x if x > 0.0 else 0.0


def _step(x: float) -> float:  # pragma: no mutate block (numba-compiled)
    return 1.0 if x > 0.0 else 0.0


def _dsigmoid(x: float) -> float:  # pragma: no mutate block (numba-compiled)
    # sigmoid(x) sigmoid(-x) = e / (1 + e)^2 with e = exp(-|x|) <= 1: no overflow, no cancellation
    e = math.exp(-abs(x))
    return e / ((1.0 + e) * (1.0 + e))


def _sech2(x: float) -> float:  # pragma: no mutate block (numba-compiled)
    # 4 e / (1 + e)^2 with e = exp(-2 |x|); |x| capped at 400 (e is 0 from 373 on) so 2|x| is finite
    e = math.exp(-2.0 * min(abs(x), 400.0))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


# --- implementations on arrays ---------------------------------------------------------------------


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def _np_relu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0.0, x, 0.0)


def _np_step(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0.0, 1.0, 0.0)


def _np_dsigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return e / ((1.0 + e) * (1.0 + e))


def _np_sech2(x: np.ndarray) -> np.ndarray:
    e = np.exp(-2.0 * np.minimum(np.abs(x), 400.0))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


# --- domains: where a primitive is defined, and the words for where it is not -----------------------

#: exp's largest argument: math.exp overflows float64 past log(max float) = 709.78...
EXP_MAX_ARG = 709.78


def _nonzero_divisor(x: float, y: float) -> bool:  # pragma: no mutate block (numba-compiled)
    return y != 0.0


def _positive(x: float) -> bool:  # pragma: no mutate block (numba-compiled)
    return x > 0.0


def _exp_finite(x: float) -> bool:  # pragma: no mutate block (numba-compiled)
    return x <= EXP_MAX_ARG


def _checked_py(scalar: Callable, domain: Callable | None, refusal: Callable | None) -> Callable:
    """`scalar`, raising DomainError(refusal(*args)) where domain(*args) is False."""
    if domain is None:
        return scalar

    def py(*args: float) -> float:
        if not domain(*args):
            raise DomainError(refusal(*args))
        return scalar(*args)

    return py


def _checked_np(array: Callable, domain: Callable | None, refusal: Callable | None) -> Callable:
    """`array`, raising DomainError naming the first argument outside the domain."""
    if domain is None:
        return array

    def np_(*args: np.ndarray) -> np.ndarray:
        bad = ~np.asarray(domain(*args))
        if bad.any():
            raise DomainError(refusal(*(_first(a, bad) for a in args)))
        return array(*args)

    return np_


def _first(x: np.ndarray, mask: np.ndarray) -> float:
    return float(np.broadcast_to(x, mask.shape)[mask].flat[0])


# --- interval images (for random circuits' safe domains) ------------------------------------------


def _iv_mul(a: tuple, b: tuple) -> tuple[float, float]:
    ps = (a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1])
    return min(ps), max(ps)


def _iv_div(a: tuple, b: tuple) -> tuple[float, float]:
    # the domain: 0 outside [b0, b1], so 1/y runs over [1/b1, 1/b0]
    return _iv_mul(a, (1.0 / b[1], 1.0 / b[0]))


def _increasing(f: Callable) -> Callable:
    """The interval rule of a non-decreasing f: [lo, hi] -> [f(lo), f(hi)]."""
    return lambda a: (f(a[0]), f(a[1]))


def _exp_bound(t: float) -> float:
    return math.exp(t) if t <= EXP_MAX_ARG else math.inf


def _log_bound(t: float) -> float:
    return math.log(t) if t > 0.0 else -math.inf


def _unit(a: tuple) -> tuple[float, float]:
    return -1.0, 1.0


def _even_peaked(f: Callable) -> Callable:
    """The interval rule of an even f that decreases in |x|: largest at the point nearest 0."""
    def rule(a: tuple) -> tuple[float, float]:
        near = 0.0 if a[0] <= 0.0 <= a[1] else min(abs(a[0]), abs(a[1]))
        return f(max(abs(a[0]), abs(a[1]))), f(near)

    return rule


# --- the table -------------------------------------------------------------------------------------
# Opcodes 0 and 1 are the non-operations of a circuit: its inputs and its constants.
INPUT, CONST = 0, 1
_rows: list[Primitive] = []


def _def(name: str, arity: int, scalar: Callable, array: Callable, vjp: Callable | None,
         jvp: Callable | None, jnp: Callable, interval: Callable, smooth: bool = True,
         domain: Callable | None = None, refusal: Callable | None = None) -> Primitive:
    p = Primitive(name, len(_rows) + 2, arity, _checked_py(scalar, domain, refusal),
                  _checked_np(array, domain, refusal), vjp, jvp, jnp, interval, smooth, scalar,
                  domain)
    _rows.append(p)
    return p


ADD = _def("add", 2, operator.add, np.add,
           lambda g, ans, x, y: (g, g),
           lambda ans, x, y, tx, ty: tx + ty,
           lambda jax: jax.numpy.add,
           lambda a, b: (a[0] + b[0], a[1] + b[1]))
SUB = _def("sub", 2, operator.sub, np.subtract,
           lambda g, ans, x, y: (g, -g),
           lambda ans, x, y, tx, ty: tx - ty,
           lambda jax: jax.numpy.subtract,
           lambda a, b: (a[0] - b[1], a[1] - b[0]))
MUL = _def("mul", 2, operator.mul, np.multiply,
           lambda g, ans, x, y: (g * y, g * x),
           lambda ans, x, y, tx, ty: tx * y + x * ty,
           lambda jax: jax.numpy.multiply,
           _iv_mul)
# d(x/y) = (dx - ans dy) / y; sharing q = g/y keeps Baur-Strassen's 3 mul/div per division.
DIV = _def("div", 2, operator.truediv, np.divide,
           lambda g, ans, x, y: _div_vjp(g / y, ans),
           lambda ans, x, y, tx, ty: (tx - ans * ty) / y,
           lambda jax: jax.numpy.divide,
           _iv_div,
           domain=_nonzero_divisor, refusal=lambda x, y: f"division by zero: {x!r} / 0.0")
NEG = _def("neg", 1, operator.neg, np.negative,
           lambda g, ans, x: (-g,),
           lambda ans, x, tx: -tx,
           lambda jax: jax.numpy.negative,
           lambda a: (-a[1], -a[0]))
SIN = _def("sin", 1, math.sin, np.sin,
           lambda g, ans, x: (g * cos(x),),
           lambda ans, x, tx: cos(x) * tx,
           lambda jax: jax.numpy.sin,
           _unit)
COS = _def("cos", 1, math.cos, np.cos,
           lambda g, ans, x: (-(g * sin(x)),),
           lambda ans, x, tx: -(sin(x) * tx),
           lambda jax: jax.numpy.cos,
           _unit)
EXP = _def("exp", 1, math.exp, np.exp,
           lambda g, ans, x: (g * ans,),
           lambda ans, x, tx: ans * tx,
           lambda jax: jax.numpy.exp,
           _increasing(_exp_bound),
           domain=_exp_finite, refusal=lambda x: f"exp overflows float64: exp({x!r}) > 1.8e308")
LOG = _def("log", 1, math.log, np.log,
           lambda g, ans, x: (g / x,),
           lambda ans, x, tx: tx / x,
           lambda jax: jax.numpy.log,
           _increasing(_log_bound),
           domain=_positive, refusal=lambda x: f"log of a non-positive number: log({x!r})")
# jax.nn.relu has derivative 0 at 0, as testbed's relu (jnp.maximum(x, 0) would give 0.5).
RELU = _def("relu", 1, _relu, _np_relu,
            lambda g, ans, x: (g * step(x),),
            lambda ans, x, tx: step(x) * tx,
            lambda jax: jax.nn.relu,
            _increasing(_relu),
            smooth=False)
# sigmoid' and tanh' are the internal primitives below (no cancellation where the units saturate)
SIGMOID = _def("sigmoid", 1, _sigmoid, _np_sigmoid,
               lambda g, ans, x: (g * dsigmoid(x),),
               lambda ans, x, tx: dsigmoid(x) * tx,
               lambda jax: jax.nn.sigmoid,
               _increasing(_sigmoid))
TANH = _def("tanh", 1, math.tanh, np.tanh,
            lambda g, ans, x: (g * sech2(x),),
            lambda ans, x, tx: sech2(x) * tx,
            lambda jax: jax.numpy.tanh,
            _increasing(math.tanh))
STEP = _def("step", 1, _step, _np_step,
            lambda g, ans, x: (None,),
            None,  # None: the tangent of a step is identically zero
            lambda jax: lambda x: jax.numpy.where(x > 0.0, 1.0, 0.0),
            _increasing(_step),
            smooth=False)
# d/dx sigmoid(x) sigmoid(-x) = sigmoid'(x) (sigmoid(-x) - sigmoid(x)) = dsigmoid(x) tanh(-x / 2)
DSIGMOID = _def("dsigmoid", 1, _dsigmoid, _np_dsigmoid,
                lambda g, ans, x: (g * (ans * tanh(x * -0.5)),),
                lambda ans, x, tx: ans * tanh(x * -0.5) * tx,
                lambda jax: lambda x: _jnp_dsigmoid(jax, x),
                _even_peaked(_dsigmoid))
# d/dx sech(x)^2 = -2 sech(x)^2 tanh(x)
SECH2 = _def("sech2", 1, _sech2, _np_sech2,
             lambda g, ans, x: (g * (ans * (tanh(x) * -2.0)),),
             lambda ans, x, tx: ans * (tanh(x) * -2.0) * tx,
             lambda jax: lambda x: _jnp_sech2(jax, x),
             _even_peaked(_sech2))


def _jnp_dsigmoid(jax: object, x: object) -> object:
    e = jax.numpy.exp(-jax.numpy.abs(x))
    return e / ((1.0 + e) * (1.0 + e))


def _jnp_sech2(jax: object, x: object) -> object:
    e = jax.numpy.exp(-2.0 * jax.numpy.minimum(jax.numpy.abs(x), 400.0))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


def _div_vjp(q: object, ans: object) -> tuple:
    return q, -(q * ans)


TABLE: dict[str, Primitive] = {p.name: p for p in _rows}
BY_CODE: list[Primitive | None] = [None, None, *_rows]
NAMES: list[str] = ["input", "const", *(p.name for p in _rows)]
OPS: tuple[str, ...] = tuple(TABLE)
#: The primitives of the lecture notes (plus neg and tanh); `step`, `dsigmoid` and `sech2` are
#: internal to derivatives.
NOTES_OPS: tuple[str, ...] = ("add", "sub", "mul", "div", "cos", "sin", "exp", "log", "relu",
                              "sigmoid")


def passes(prim: Primitive) -> tuple[bool, ...]:
    """Which arguments prim's vjp rule passes a cotangent to (False where the rule returns None:
    a contribution that is identically zero, such as step's)."""
    return tuple(a is not None for a in prim.vjp(1.0, 1.0, *([1.0] * prim.arity)))


def lookup(name: str, where: str = "") -> Primitive:
    """The table row for `name`, or a CircuitError naming the unknown primitive and where it was."""
    try:
        return TABLE[name]
    except (KeyError, TypeError):
        raise CircuitError(
            f"unknown primitive {name!r}{' at ' + where if where else ''}; "
            f"known: {', '.join(OPS)}") from None
