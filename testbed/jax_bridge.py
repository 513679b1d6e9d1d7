"""to_jax: the very same circuit as a jax.numpy function, to hand to jax.grad, jvp, vjp, hessian."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import primitives as P
from .circuit import Circuit
from .errors import ShapeError, TestbedError


def _jax():
    # imported here, not at the top: `import testbed` stays free of jax (about a second of import
    # time), which loads on the first to_jax
    import jax

    # float64 everywhere: testbed compares against JAX to 1e-10, which float32 cannot reach.
    jax.config.update("jax_enable_x64", True)
    return jax


def _jnp_rows(jax: object) -> list[Callable]:
    """The JAX twin of every primitive, indexed by opcode - (CONST + 1), from the primitive table."""
    return [p.jnp(jax) for p in P.BY_CODE[P.CONST + 1:]]


def _as_x(jnp: object, x: object, l: int) -> object:
    """x as a float64 jnp array of shape (l,), or a ShapeError (shapes are static: works under jit)."""
    x = jnp.asarray(x)
    if x.shape != (l,):
        raise ShapeError(f"x has shape {x.shape}; this circuit has l={l} inputs, so x must have "
                         f"shape ({l},) (use jax.vmap for a batch)")
    if not (jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)):
        raise ShapeError(f"x has dtype {x.dtype}; it must be real (float or int), not complex or bool")
    return x.astype(jnp.float64)


def to_jax(c: Circuit, method: str = "unrolled") -> Callable:
    """A function of one jnp array x of shape (l,) computing c: a scalar (one output) or (k,).

    method="unrolled" writes every node as its own jnp call (exact same operations; jit compile time
    grows fast with N, practical to a few hundred nodes). method="scan" interprets the op codes with
    lax.scan + lax.switch (compiles in about a second at any N; its gradient costs O(N^2) here).
    x of another shape or of a complex or bool dtype raises ShapeError (under jit too).
    """
    if not isinstance(c, Circuit):
        raise TypeError(f"to_jax needs a testbed Circuit (from testbed.trace), got "
                        f"{type(c).__name__} {c!r:.60}")
    if method not in ("unrolled", "scan"):
        raise TestbedError(f"to_jax method must be 'unrolled' or 'scan', got {method!r}")
    jax = _jax()
    jnp = jax.numpy
    if method == "scan":
        return _scan_interpreter(c, jnp)
    rows = _jnp_rows(jax)
    nodes = [(int(o) - P.CONST - 1, int(j), int(k), float(v))
             for o, j, k, v in zip(c.op[c.l:], c.a0[c.l:], c.a1[c.l:], c.consts[c.l:], strict=True)]
    outputs = c.outputs.tolist()
    l = c.l

    def f(x: object) -> object:
        x = _as_x(jnp, x, l)
        v = [x[i] for i in range(l)]
        for w, j, k, value in nodes:
            if w < 0:  # a constant
                v.append(jnp.asarray(value))
            else:
                v.append(rows[w](v[j], v[k]) if k >= 0 else rows[w](v[j]))
        outs = [v[o] for o in outputs]
        return outs[0] if len(outs) == 1 else jnp.stack(outs)

    return f


def _scan_interpreter(c: Circuit, jnp: object) -> Callable:
    # the same interpreter the property tests compile once, given this circuit as its program
    prog = padded_program(c, c.n_slots + 1, c.l, c.n_outputs)

    def f(x: object) -> object:
        out = interpret(_as_x(jnp, x, c.l), prog)
        return out[0] if c.n_outputs == 1 else out

    return f


# --- one compiled interpreter for many circuits ------------------------------------------------
# Property tests compare thousands of small circuits with JAX. Tracing and compiling each circuit
# would cost ~0.1-1 s apiece; instead the circuit becomes *data* (a padded program) for one jitted
# interpreter, compiled once per padded shape. It applies the same jnp primitives, in the same order.


def padded_program(c: Circuit, n_slots: int, l: int, k: int) -> dict:
    """c as arrays for `interpret`, padded to n_slots slots, l inputs and k outputs.

    The circuit's inputs stay at slots 0..c.l-1, its other slots move up by l - c.l; padding
    nodes write `add x0 x0` into the scratch slot n_slots - 1, padding outputs read it.
    """
    shift = l - c.l
    if c.n_slots + shift + 1 > n_slots or c.l > l or c.n_outputs > k:
        raise TestbedError(f"circuit (slots {c.n_slots}, l {c.l}, outputs {c.n_outputs}) does not "
                           f"fit the padding (slots {n_slots}, l {l}, outputs {k})")
    move = np.concatenate([np.arange(c.l), np.arange(c.l, c.n_slots) + shift])
    scratch = n_slots - 1
    ops = np.flatnonzero(c.op > P.CONST)
    n_ops = n_slots - l - 1  # at most this many operation nodes fit

    def pad(a: np.ndarray, fill: int, n: int) -> np.ndarray:
        return np.concatenate([a, np.full(n - len(a), fill)]).astype(np.int32)

    consts = np.flatnonzero(c.op == P.CONST)
    return {
        "target": pad(move[ops], scratch, n_ops),
        "which": pad(c.op[ops].astype(np.int64) - (P.CONST + 1), P.ADD.code - (P.CONST + 1), n_ops),
        "a0": pad(move[c.a0[ops]], 0, n_ops),
        "a1": pad(move[np.where(c.a1[ops] >= 0, c.a1[ops], 0)], 0, n_ops),
        "const_slot": pad(move[consts], scratch, n_slots),
        "const_val": np.concatenate([c.consts[consts], np.zeros(n_slots - len(consts))]),
        "outputs": pad(move[c.outputs], scratch, k),
    }


def _binary(fn: Callable, arity: int) -> Callable:
    # lax.switch needs one signature for all branches: unary ones ignore the second operand
    return fn if arity == 2 else (lambda a, b: fn(a))


def interpret(x: object, prog: dict) -> object:
    """Evaluate a padded program at x (shape (l,)) with jnp: returns the (k,) padded outputs."""
    jax = _jax()
    jnp, lax = jax.numpy, jax.lax
    branches = [_binary(fn, p.arity) for p, fn in zip(P.BY_CODE[P.CONST + 1:], _jnp_rows(jax),
                                                        strict=True)]
    n = prog["target"].shape[0] + x.shape[0] + 1
    buf = jnp.zeros(n, dtype=jnp.float64).at[:x.shape[0]].set(x)
    buf = buf.at[prog["const_slot"]].set(prog["const_val"])

    def body(buf: object, node: tuple) -> tuple:
        i, w, j, k = node
        return buf.at[i].set(lax.switch(w, branches, buf[j], buf[k])), None

    buf, _ = lax.scan(body, buf, (prog["target"], prog["which"], prog["a0"], prog["a1"]))
    return buf[prog["outputs"]]
