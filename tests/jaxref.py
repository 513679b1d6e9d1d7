"""JAX references for the property tests: one jitted interpreter, compiled once per padded shape.

Each circuit is turned into a padded program (testbed.jax_bridge.padded_program) and run by the
same compiled JAX function, so a property's examples cost one compilation, not one each. The
interpreter applies the same jnp primitives in the same order as testbed.to_jax(c) (test_engine_jax
checks the two agree).
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


_jacfwd = jax.jit(jax.jacfwd(interpret))
_jacrev = jax.jit(jax.jacrev(interpret))
_third = jax.jit(jax.jacfwd(jax.hessian(_f0)))


def jacfwd(c, x):
    """jax.jacfwd of the circuit: the (k, l) Jacobian."""
    return np.asarray(_jacfwd(_pad(x), _prog(c)))[:c.n_outputs, :c.l]


def jacrev(c, x):
    """jax.jacrev of the circuit: the (k, l) Jacobian."""
    return np.asarray(_jacrev(_pad(x), _prog(c)))[:c.n_outputs, :c.l]


def third(c, x):
    """The (l, l, l) third derivative d^3 f / dx_i dx_j dx_m (forward over JAX's hessian)."""
    return np.asarray(_third(_pad(x), _prog(c)))[:c.l, :c.l, :c.l]


# --- batches: one call per batch of up to B_MAX points, vmapped, padded to B_MAX rows --------------
B_MAX = 3
_value_b = jax.jit(jax.vmap(interpret, in_axes=(0, None)))
_grad_b = jax.jit(jax.vmap(jax.grad(_f0), in_axes=(0, None)))
_jvp_b = jax.jit(jax.vmap(lambda x, v, p: jax.jvp(lambda y: interpret(y, p), (x,), (v,)),
                          in_axes=(0, 0, None)))
_vjp_b = jax.jit(jax.vmap(lambda x, u, p: jax.vjp(lambda y: interpret(y, p), x)[1](u)[0],
                          in_axes=(0, 0, None)))
_hess_b = jax.jit(jax.vmap(jax.hessian(_f0), in_axes=(0, None)))
_hvp_b = jax.jit(jax.vmap(lambda x, v, p: jax.jvp(lambda y: jax.grad(_f0)(y, p), (x,), (v,))[1],
                          in_axes=(0, 0, None)))


def _rows(X, width):
    """X (B, n) padded to (B_MAX, width): extra columns zero, extra rows copies of row 0."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    if len(X) > B_MAX:
        raise ValueError(f"at most {B_MAX} points per batch, got {len(X)}")
    out = np.zeros((B_MAX, width))
    out[:] = np.pad(X[0], (0, width - X.shape[1]))
    out[:len(X), :X.shape[1]] = X
    return out


def values(c, X):
    """The outputs at each point: (B, k)."""
    return np.asarray(_value_b(_rows(X, L), _prog(c)))[:len(X), :c.n_outputs]


def grads(c, X):
    """grad f at each point: (B, l)."""
    return np.asarray(_grad_b(_rows(X, L), _prog(c)))[:len(X), :c.l]


def jvps(c, X, V):
    """(f, J v) at each point: two (B, k) arrays."""
    f, t = _jvp_b(_rows(X, L), _rows(V, L), _prog(c))
    return np.asarray(f)[:len(X), :c.n_outputs], np.asarray(t)[:len(X), :c.n_outputs]


def vjps(c, X, U):
    """u^T J at each point: (B, l)."""
    return np.asarray(_vjp_b(_rows(X, L), _rows(U, K), _prog(c)))[:len(X), :c.l]


def hvps(c, X, V):
    """H v at each point: (B, l)."""
    return np.asarray(_hvp_b(_rows(X, L), _rows(V, L), _prog(c)))[:len(X), :c.l]


def hessians(c, X):
    """The Hessian at each point: (B, l, l)."""
    return np.asarray(_hess_b(_rows(X, L), _prog(c)))[:len(X), :c.l, :c.l]
