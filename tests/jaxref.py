"""JAX references for the property tests: one jitted interpreter, compiled once per padded shape.

Each circuit is turned into a padded program (testbed.jax_bridge.padded_program) and run by the
same compiled JAX function, so 200 examples cost one compilation, not 200. The interpreter applies
the same jnp primitives in the same order as testbed.to_jax(c) (test_engine_jax checks the two agree).
"""

import jax
import numpy as np

from testbed.jax_bridge import interpret, padded_program

jax.config.update("jax_enable_x64", True)

L, K = 4, 3  # every program is padded to 4 inputs and 3 outputs
_BUCKETS = (64, 128, 256, 512)


def _prog(c):
    for n in _BUCKETS:
        if c.n_slots + (L - c.l) + 1 <= n:
            return padded_program(c, n, L, K)
    raise ValueError(f"circuit too large for the JAX reference: {c.n_slots} slots")


def _pad(x):
    return np.concatenate([np.asarray(x, dtype=np.float64), np.zeros(L - len(x))])


def _f0(x, p):
    return interpret(x, p)[0]


_value = jax.jit(interpret)
_grad = jax.jit(jax.grad(_f0))
_jvp = jax.jit(lambda x, v, p: jax.jvp(lambda y: interpret(y, p), (x,), (v,)))
_vjp = jax.jit(lambda x, u, p: jax.vjp(lambda y: interpret(y, p), x)[1](u)[0])
_hvp = jax.jit(lambda x, v, p: jax.jvp(lambda y: jax.grad(_f0)(y, p), (x,), (v,))[1])
_hess = jax.jit(jax.hessian(_f0))


def value(c, x):
    out = np.asarray(_value(_pad(x), _prog(c)))[:c.n_outputs]
    return float(out[0]) if c.n_outputs == 1 else out


def grad(c, x):
    return np.asarray(_grad(_pad(x), _prog(c)))[:c.l]


def jvp(c, x, v):
    f, t = _jvp(_pad(x), _pad(v), _prog(c))
    f, t = np.asarray(f)[:c.n_outputs], np.asarray(t)[:c.n_outputs]
    return (float(f[0]), float(t[0])) if c.n_outputs == 1 else (f, t)


def vjp(c, x, u):
    u = np.concatenate([np.atleast_1d(u), np.zeros(K - c.n_outputs)])
    return np.asarray(_vjp(_pad(x), u, _prog(c)))[:c.l]


def hvp(c, x, v):
    return np.asarray(_hvp(_pad(x), _pad(v), _prog(c)))[:c.l]


def hessian(c, x):
    return np.asarray(_hess(_pad(x), _prog(c)))[:c.l, :c.l]
