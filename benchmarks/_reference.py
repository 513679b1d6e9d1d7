"""The benchmark's own reference: plain numba loops over a circuit's arrays, written by hand.

One loop over the slots of `op`, `a0`, `a1`, `consts` (the circuit's own arrays), a dispatch on the
opcode, the same rules as testbed's table (written out here once more, for the benchmark only:
testbed's kernels are generated from its table, and this file is what they are measured against),
no domain checks, no non-finite checks, no batch dimension. What a compiled loop costs with
nothing else around it: testbed's compiled executor should come within a small factor of it.

    value_and_grad(op, a0, a1, consts, out, x)      -> (f, grad)
    hvp(op, a0, a1, consts, out, x, v)              -> H v   (forward over reverse, fused)
    forward(op, a0, a1, consts, out, x)             -> f
"""

import math

import numba
import numpy as np

from testbed import primitives as P

ADD, SUB, MUL, DIV, NEG = (P.TABLE[n].code for n in ("add", "sub", "mul", "div", "neg"))
SIN, COS, EXP, LOG = (P.TABLE[n].code for n in ("sin", "cos", "exp", "log"))
RELU, SIGMOID, TANH, STEP = (P.TABLE[n].code for n in ("relu", "sigmoid", "tanh", "step"))
CONST = P.CONST


@numba.njit(cache=True)
def _sig(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@numba.njit(cache=True)
def _dsig(x):
    # sigma'(x) = sigma(x) sigma(-x) = e / (1 + e)^2, e = exp(-|x|): no cancellation when saturated
    e = math.exp(-abs(x))
    return e / ((1.0 + e) * (1.0 + e))


@numba.njit(cache=True)
def _sech2(x):
    # tanh'(x) = 4 e / (1 + e)^2, e = exp(-2 |x|) (|x| capped at 400, where e is already 0)
    e = math.exp(-2.0 * min(abs(x), 400.0))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


@numba.njit(cache=True)
def _forward(op, a0, a1, consts, v):
    n = op.shape[0]
    for i in range(n):
        o = op[i]
        if o == 0:
            continue
        if o == CONST:
            v[i] = consts[i]
            continue
        x = v[a0[i]]
        y = v[a1[i]] if a1[i] >= 0 else 0.0
        if o == ADD:
            r = x + y
        elif o == SUB:
            r = x - y
        elif o == MUL:
            r = x * y
        elif o == DIV:
            r = x / y
        elif o == NEG:
            r = -x
        elif o == SIN:
            r = math.sin(x)
        elif o == COS:
            r = math.cos(x)
        elif o == EXP:
            r = math.exp(x)
        elif o == LOG:
            r = math.log(x)
        elif o == RELU:
            r = x if x > 0.0 else 0.0
        elif o == SIGMOID:
            r = _sig(x)
        elif o == TANH:
            r = math.tanh(x)
        else:
            r = 1.0 if x > 0.0 else 0.0
        v[i] = r


@numba.njit(cache=True)
def _reverse(op, a0, a1, v, adj):
    for i in range(op.shape[0] - 1, -1, -1):
        o = op[i]
        if o <= CONST:
            continue
        g = adj[i]
        j = a0[i]
        k = a1[i]
        x = v[j]
        if o == ADD:
            adj[j] += g
            adj[k] += g
        elif o == SUB:
            adj[j] += g
            adj[k] -= g
        elif o == MUL:
            adj[j] += g * v[k]
            adj[k] += g * x
        elif o == DIV:
            q = g / v[k]
            adj[j] += q
            adj[k] -= q * v[i]
        elif o == NEG:
            adj[j] -= g
        elif o == SIN:
            adj[j] += g * math.cos(x)
        elif o == COS:
            adj[j] -= g * math.sin(x)
        elif o == EXP:
            adj[j] += g * v[i]
        elif o == LOG:
            adj[j] += g / x
        elif o == RELU:
            adj[j] += g if x > 0.0 else 0.0
        elif o == SIGMOID:
            adj[j] += g * _dsig(x)
        elif o == TANH:
            adj[j] += g * _sech2(x)


@numba.njit(cache=True)
def _value_and_grad(op, a0, a1, consts, out, x):
    n = op.shape[0]
    v = np.empty(n)
    v[:x.shape[0]] = x
    _forward(op, a0, a1, consts, v)
    adj = np.zeros(n)
    adj[out] = 1.0
    _reverse(op, a0, a1, v, adj)
    return v[out], adj[:x.shape[0]].copy()


@numba.njit(cache=True)
def forward(op, a0, a1, consts, out, x):
    v = np.empty(op.shape[0])
    v[:x.shape[0]] = x
    _forward(op, a0, a1, consts, v)
    return v[out]


@numba.njit(cache=True)
def _hvp(op, a0, a1, consts, out, x, tv):
    n = op.shape[0]
    l = x.shape[0]
    v = np.empty(n)
    t = np.zeros(n)
    v[:l] = x
    t[:l] = tv
    for i in range(l, n):  # values and tangents
        o = op[i]
        if o == CONST:
            v[i] = consts[i]
            continue
        j = a0[i]
        k = a1[i]
        a = v[j]
        ta = t[j]
        b = v[k] if k >= 0 else 0.0
        tb = t[k] if k >= 0 else 0.0
        if o == ADD:
            v[i] = a + b
            t[i] = ta + tb
        elif o == SUB:
            v[i] = a - b
            t[i] = ta - tb
        elif o == MUL:
            v[i] = a * b
            t[i] = ta * b + a * tb
        elif o == DIV:
            r = a / b
            v[i] = r
            t[i] = (ta - r * tb) / b
        elif o == NEG:
            v[i] = -a
            t[i] = -ta
        elif o == SIN:
            v[i] = math.sin(a)
            t[i] = math.cos(a) * ta
        elif o == COS:
            v[i] = math.cos(a)
            t[i] = -math.sin(a) * ta
        elif o == EXP:
            r = math.exp(a)
            v[i] = r
            t[i] = r * ta
        elif o == LOG:
            v[i] = math.log(a)
            t[i] = ta / a
        elif o == RELU:
            v[i] = a if a > 0.0 else 0.0
            t[i] = ta if a > 0.0 else 0.0
        elif o == SIGMOID:
            r = _sig(a)
            v[i] = r
            t[i] = _dsig(a) * ta
        elif o == TANH:
            r = math.tanh(a)
            v[i] = r
            t[i] = _sech2(a) * ta
        else:
            v[i] = 1.0 if a > 0.0 else 0.0
            t[i] = 0.0
    adj = np.zeros(n)
    dadj = np.zeros(n)
    adj[out] = 1.0
    for i in range(n - 1, l - 1, -1):  # cotangents and their tangents
        o = op[i]
        if o == CONST:
            continue
        g = adj[i]
        dg = dadj[i]
        j = a0[i]
        k = a1[i]
        a = v[j]
        ta = t[j]
        if o == ADD:
            adj[j] += g
            dadj[j] += dg
            adj[k] += g
            dadj[k] += dg
        elif o == SUB:
            adj[j] += g
            dadj[j] += dg
            adj[k] -= g
            dadj[k] -= dg
        elif o == MUL:
            adj[j] += g * v[k]
            dadj[j] += dg * v[k] + g * t[k]
            adj[k] += g * a
            dadj[k] += dg * a + g * ta
        elif o == DIV:
            q = g / v[k]
            dq = (dg - q * t[k]) / v[k]
            adj[j] += q
            dadj[j] += dq
            adj[k] -= q * v[i]
            dadj[k] -= dq * v[i] + q * t[i]
        elif o == NEG:
            adj[j] -= g
            dadj[j] -= dg
        elif o == SIN:
            adj[j] += g * math.cos(a)
            dadj[j] += dg * math.cos(a) - g * math.sin(a) * ta
        elif o == COS:
            adj[j] -= g * math.sin(a)
            dadj[j] -= dg * math.sin(a) + g * math.cos(a) * ta
        elif o == EXP:
            adj[j] += g * v[i]
            dadj[j] += dg * v[i] + g * t[i]
        elif o == LOG:
            adj[j] += g / a
            dadj[j] += (dg - g / a * ta) / a
        elif o == RELU:
            if a > 0.0:
                adj[j] += g
                dadj[j] += dg
        elif o == SIGMOID:
            d = _dsig(a)  # sigma'' = sigma' tanh(-a/2)
            adj[j] += g * d
            dadj[j] += dg * d + g * (d * math.tanh(a * -0.5)) * ta
        elif o == TANH:
            d = _sech2(a)  # tanh'' = -2 sech^2 tanh
            adj[j] += g * d
            dadj[j] += dg * d - g * (2.0 * d * v[i]) * ta
    return dadj[:l].copy()


def arrays(c):
    """The circuit's own arrays, as the reference loops take them."""
    return (np.ascontiguousarray(c.op), np.ascontiguousarray(c.a0), np.ascontiguousarray(c.a1),
            np.ascontiguousarray(c.consts), int(c.outputs[0]))


def value_and_grad(c, x):
    return _value_and_grad(*arrays(c), np.asarray(x, dtype=np.float64))


def hvp(c, x, v):
    return _hvp(*arrays(c), np.asarray(x, dtype=np.float64), np.asarray(v, dtype=np.float64))
