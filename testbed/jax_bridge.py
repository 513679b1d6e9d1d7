"""to_jax: the very same circuit as a jax.numpy function, to hand to jax.grad, jvp, vjp, hessian."""

from __future__ import annotations

from collections.abc import Callable

from . import primitives as P
from .circuit import Circuit
from .errors import TestbedError


def _jax():
    import jax

    # float64 everywhere: testbed compares against JAX to 1e-10, which float32 cannot reach.
    jax.config.update("jax_enable_x64", True)
    return jax


def _jnp_table(jax: object) -> dict[str, Callable]:
    jnp = jax.numpy
    return {
        "add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "div": jnp.divide,
        "neg": jnp.negative, "sin": jnp.sin, "cos": jnp.cos, "exp": jnp.exp, "log": jnp.log,
        # jax.nn.relu has derivative 0 at 0, as testbed's relu (jnp.maximum would give 0.5).
        "relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh,
        "step": lambda x: jnp.where(x > 0, 1.0, 0.0),
    }


def to_jax(c: Circuit, method: str = "unrolled") -> Callable:
    """A function of one jnp array x of shape (l,) computing c: a scalar (one output) or (k,).

    method="unrolled" writes every node as its own jnp call (exact same operations; jit compile time
    grows fast with N, practical to a few hundred nodes). method="scan" interprets the op codes with
    lax.scan + lax.switch (compiles in about a second at any N; its gradient costs O(N^2) here).
    """
    jax = _jax()
    jnp = jax.numpy
    table = _jnp_table(jax)
    if method == "unrolled":
        nodes = [(P.NAMES[o], int(j), int(k), float(v))
                 for o, j, k, v in zip(c.op[c.l:], c.a0[c.l:], c.a1[c.l:], c.consts[c.l:],
                                       strict=True)]
        outputs = c.outputs.tolist()

        def f(x: object) -> object:
            x = jnp.asarray(x)
            v = [x[i] for i in range(c.l)]
            for name, j, k, value in nodes:
                if name == "const":
                    v.append(jnp.asarray(value))
                else:
                    v.append(table[name](v[j], v[k]) if k >= 0 else table[name](v[j]))
            outs = [v[o] for o in outputs]
            return outs[0] if len(outs) == 1 else jnp.stack(outs)

        return f
    if method == "scan":
        return _scan_interpreter(c, jax, table)
    raise TestbedError(f"to_jax method must be 'unrolled' or 'scan', got {method!r}")


def _scan_interpreter(c: Circuit, jax: object, table: dict) -> Callable:
    import numpy as np

    jnp, lax = jax.numpy, jax.lax
    names = list(P.TABLE)
    branches = [(lambda fn: (lambda x, y: fn(x, y)))(table[n]) if P.TABLE[n].arity == 2
                else (lambda fn: (lambda x, y: fn(x)))(table[n]) for n in names]
    ops = np.flatnonzero(c.op > P.CONST)
    which = np.array([names.index(P.NAMES[o]) for o in c.op[ops]], dtype=np.int32)
    a0, a1 = c.a0[ops], np.where(c.a1[ops] >= 0, c.a1[ops], 0)
    consts = np.flatnonzero(c.op == P.CONST)

    def f(x: object) -> object:
        buf = jnp.zeros(c.n_slots, dtype=jnp.float64)
        buf = buf.at[:c.l].set(jnp.asarray(x)).at[consts].set(c.consts[consts])

        def body(buf: object, node: tuple) -> tuple:
            i, w, j, k = node
            return buf.at[i].set(lax.switch(w, branches, buf[j], buf[k])), None

        buf, _ = lax.scan(body, buf, (ops, which, a0, a1))
        out = buf[c.outputs]
        return out[0] if c.n_outputs == 1 else out

    return f
