"""The compiled executor: numba kernels generated from the primitive table.

Every primitive is defined once, in its row of `testbed.primitives.TABLE`. This module writes the
kernels' source from the rows: the primal is the row's `scalar` function (numba compiles it
unchanged) behind its `domain` predicate; each derivative rule is *traced* (run on tracers, as
`grad` does) into the few operations it writes, which are emitted as scalar statements. The
second-order rule of the fused Hessian-vector sweep is the vjp rule traced on duals of tracers
(`testbed.primitives.Dual`): the jvp of the vjp, written by the table's own jvp rules. So a change
to a row changes the kernels, and nothing here knows any derivative.

The kernels, each one loop over the circuit's slots with a dispatch on the opcode and the batch
looped inside (values are (n_slots, B) arrays, C order):
  forward          v_i = prim_i(v_j, v_k)
  tangent          t_i = jvp_i(v_i, v_j, v_k, t_j, t_k)
  forward_tangent  both in one pass (jvp and hvp)
  reverse_plan     which slots a cotangent reaches, and where each node's contributions go
  reverse          adj_j += vjp_i(adj_i, v_i, v_j, v_k)_j, from the last slot down
  reverse_tangent  the same on (adj, d adj), duals: the gradient and H v in one backward pass
  fd_values        f at x and at x + delta_m e_{col_m}, one point after another in one buffer
They compute the same numbers as the sequential executor in the same order (slot by slot, a
slot's cotangent contributions in the order its uses come in the reverse sweep, each rule's
operations in its own order), so values and derivatives agree with it bit for bit wherever both
call the same libm (the tests check; numpy's own tanh on arrays is the one exception measured).
A kernel stops at the first domain error or non-finite number and returns (status, slot, point);
`testbed.evaluate` words the error exactly as the other executors do.

The generated module is written once per table (its name is a hash of its source) into the cache
folder `$TESTBED_CACHE_DIR` (default `$XDG_CACHE_HOME/testbed`, else `~/.cache/testbed`), and
numba caches the machine code beside it (`cache=True`): the first call of a fresh process loads
the kernels from disk, and `load_report()` says what that cost (compile or cache) in seconds.
`import testbed` loads neither this module's kernels nor numba: they load on the first call.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import marshal
import math
import operator
import os
import re
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

from . import primitives as P
from ._checks import check_int
from .circuit import Tracer, _Builder
from .errors import TestbedError

log = logging.getLogger(__name__)

# status codes a kernel returns (with the slot and the batch point where it stopped)
OK, DOMAIN, NONFINITE_VALUE, NONFINITE_COTANGENT, NONFINITE_TANGENT, NONFINITE_DCOTANGENT = range(6)

_INFIX = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/"}


def available() -> bool:
    """Whether numba is importable (checked without importing it)."""
    return importlib.util.find_spec("numba") is not None


# --- emitting a traced rule as scalar statements ---------------------------------------------------


def _scalar_name(prim: P.Primitive) -> str:
    return f"_s_{prim.name}"


def _expr(prim: P.Primitive, args: list[str]) -> str:
    """prim applied to argument expressions, in the kernel's source."""
    f = prim.scalar
    if f in _INFIX:
        return f"{args[0]} {_INFIX[f]} {args[1]}"
    if f is operator.neg:
        return f"-{args[0]}"
    if isinstance(f, types.BuiltinFunctionType) and getattr(math, f.__name__, None) is f:
        return f"math.{f.__name__}({', '.join(args)})"
    return f"{_scalar_name(prim)}({', '.join(args)})"


def _literal(value: float) -> str:
    text = repr(float(value))
    return f"({text})" if text.startswith("-") else text


def emit_rule(rule: Callable, names: list[str], tag: str,
              duals: int = 0) -> tuple[list[str], list, set[str]]:
    """The statements a rule writes when run on tracers named `names`, its outputs, and the names
    it reads (the kernels load only those: a load is a cache miss on a large circuit).

    With duals=m, the first m names are values and the next m their tangents: the rule runs on
    Dual(value, tangent) of tracers, and each output is a (value, tangent) pair. An output is a
    name or a literal, or None where the rule passes no contribution. Temporaries are named
    _<tag>_<n>, so that rules of different primitives never share a variable.
    """
    b = _Builder(len(names))
    ins = [Tracer(b, i) for i in range(len(names))]
    if duals:
        out = rule(*(P.Dual(ins[i], ins[duals + i]) for i in range(duals)))
    else:
        out = rule(*ins)
    n_in = len(names)
    local = list(names)
    lines = []
    for i in range(n_in, len(b.op)):
        code = b.op[i]
        if code == P.CONST:
            local.append(_literal(b.consts[i]))
            continue
        prim = P.BY_CODE[code]
        args = [local[b.a0[i]]] + ([local[b.a1[i]]] if b.a1[i] >= 0 else [])
        name = f"_{tag}_{i - n_in}"
        lines.append(f"{name} = {_expr(prim, args)}")
        local.append(name)

    def ref(t: object) -> str | None:
        if t is None:
            return None
        if type(t) is Tracer:
            return local[t._i]
        return _literal(float(t))  # a plain number (a rule's constant contribution or tangent)

    outs = out if isinstance(out, (tuple, list)) else (out,)
    if duals:
        refs = [None if o is None else (ref(o.v) if type(o) is P.Dual else ref(o),
                                        ref(o.t) if type(o) is P.Dual else "0.0") for o in outs]
    else:
        refs = [ref(o) for o in outs]
    read = [*(line.split(" = ", 1)[1] for line in lines),
            *(r for ref_ in refs if ref_ is not None
              for r in (ref_ if isinstance(ref_, tuple) else (ref_,)))]
    words = set(re.findall(r"[A-Za-z_]\w*", " ".join(read)))
    return lines, refs, {n for n in names if n in words}


# --- the kernels' source ---------------------------------------------------------------------------

# lazily compiled: each kernel compiles (or loads from numba's cache) on its first call, so a
# process pays only for the kernels it uses; the callers in testbed.evaluate always pass the same
# types (int8 opcodes, int64 slots, C-ordered float64 arrays), one specialisation per kernel
_DECORATOR = '@numba.njit(cache=True, error_model="numpy", nogil=True, boundscheck=False)'


def _indent(lines: list[str], n: int) -> list[str]:
    return [" " * n + line for line in lines]


def _arg_names(prim: P.Primitive) -> list[str]:
    return ["x", "y"][:prim.arity]


def _dispatch(branch: Callable[[P.Primitive], list[str]]) -> list[str]:
    """if/elif over the opcode o of every primitive, with branch(prim)'s statements."""
    lines = []
    for prim in P.BY_CODE[P.CONST + 1:]:
        lines.append(f"{'elif' if lines else 'if'} o == {prim.code}:  # {prim.name}")
        lines += _indent(branch(prim) or ["pass"], 4)
    return lines


class _Layout:
    """How a kernel indexes its (n_slots, B) arrays: `batch` loops over the points inside each
    slot; `flat` is the same kernel for one point on (n_slots,) arrays (no loop, no second index:
    measurably faster, so single points get their own specialisation)."""

    def __init__(self, flat: bool):
        self.flat = flat

    def at(self, array: str, slot: str) -> str:
        return f"{array}[{slot}]" if self.flat else f"{array}[{slot}, b]"

    def loop(self, body: list[str]) -> list[str]:
        return ["b = 0", *body] if self.flat else ["for b in range(B):", *_indent(body, 4)]

    def shape(self) -> str:
        return "n = vals.shape[0]" if self.flat else "n, B = vals.shape"


# where each name a rule may read comes from: the slot's own value, its arguments j and k, their
# tangents, the cotangent g and its tangent dg
_SOURCES = {"ans": ("vals", "i"), "x": ("vals", "j"), "y": ("vals", "k"), "tx": ("t", "j"),
            "ty": ("t", "k"), "dans": ("t", "i"), "dx": ("t", "j"), "dy": ("t", "k")}


def _loads(names: set[str] | list[str], lay: _Layout) -> list[str]:
    return [f"{n} = {lay.at(*_SOURCES[n])}" for n in _SOURCES if n in names]


def _primal(prim: P.Primitive, lay: _Layout) -> list[str]:
    """Load x (, y) and compute ans, returning at an argument outside the domain."""
    lines = _loads(_arg_names(prim), lay)
    if prim.domain is not None:
        lines += [f"if not _d_{prim.name}({', '.join(_arg_names(prim))}):", "    return 1, i, b"]
    return lines + [f"ans = {_expr(prim, _arg_names(prim))}"]


def _tangent(prim: P.Primitive, lay: _Layout, have: tuple = ()) -> list[str]:
    """tt, the tangent of ans, from what the jvp rule reads of ans, x (, y), tx (, ty)."""
    if prim.jvp is None:
        return ["tt = 0.0"]
    names = ["ans", *_arg_names(prim), *(["tx", "ty"][:prim.arity])]
    lines, (out,), used = emit_rule(prim.jvp, names, f"t{prim.code}")
    return [*_loads(used - set(have), lay), *lines, f"tt = {out}"]


def _forward_src(with_tangent: bool, lay: _Layout) -> list[str]:
    def branch(prim: P.Primitive) -> list[str]:
        lines = _primal(prim, lay)
        if with_tangent:
            lines += _tangent(prim, lay, have=("ans", *_arg_names(prim)))
        return lines

    inner = ["ans = 0.0", *(["tt = 0.0"] if with_tangent else []), *_dispatch(branch),
             f"{lay.at('vals', 'i')} = ans", "if not math.isfinite(ans):", "    return 2, i, b"]
    if with_tangent:
        inner += [f"{lay.at('t', 'i')} = tt", "if bad_t < 0 and not math.isfinite(tt):",
                  "    bad_t = i", "    bad_b = b"]
    const = [f"{lay.at('vals', 'i')} = consts[i]"] + ([f"{lay.at('t', 'i')} = 0.0"]
                                                      if with_tangent else [])
    name = ("forward_tangent" if with_tangent else "forward") + ("_1" if lay.flat else "")
    args = "op, a0, a1, consts, vals, t, l" if with_tangent else "op, a0, a1, consts, vals, l"
    return [_DECORATOR, f"def {name}({args}):", f"    {lay.shape()}", "    bad_t = -1",
            "    bad_b = 0", "    for i in range(l, n):", "        o = op[i]",
            f"        if o == {P.CONST}:", *_indent(lay.loop(const), 12), "            continue",
            "        j = a0[i]", "        k = a1[i]", *_indent(lay.loop(inner), 8),
            "    if bad_t >= 0:", "        return 4, bad_t, bad_b", "    return 0, 0, 0"]


def _tangent_src(lay: _Layout) -> list[str]:
    inner = ["tt = 0.0", *_dispatch(lambda prim: _tangent(prim, lay)), f"{lay.at('t', 'i')} = tt",
             "if bad_t < 0 and not math.isfinite(tt):", "    bad_t = i", "    bad_b = b"]
    name = "tangent_1" if lay.flat else "tangent"
    return [_DECORATOR, f"def {name}(op, a0, a1, vals, t, l):", f"    {lay.shape()}",
            "    bad_t = -1", "    bad_b = 0", "    for i in range(l, n):", "        o = op[i]",
            f"        if o == {P.CONST}:", *_indent(lay.loop([f"{lay.at('t', 'i')} = 0.0"]), 12),
            "            continue", "        j = a0[i]", "        k = a1[i]",
            *_indent(lay.loop(inner), 8),
            "    if bad_t >= 0:", "        return 4, bad_t, bad_b", "    return 0, 0, 0"]


def _contributions(prim: P.Primitive, dual: bool, lay: _Layout) -> list[str]:
    """Load what the vjp rule reads, run it, and add its contributions (with dual: also their
    tangents, the rule run on duals) into the arguments' rows that receive them."""
    names = ["g", "ans", *_arg_names(prim)]
    if dual:
        lines, outs, used = emit_rule(prim.vjp, names + ["dg", "dans", *["dx", "dy"][:prim.arity]],
                                      f"h{prim.code}", duals=len(names))
    else:
        lines, outs, used = emit_rule(prim.vjp, names, f"r{prim.code}")
    lines = [*_loads(used, lay), *lines]
    # every contribution is added: onto -0.0 (the rows' initial value) a sum's first term is
    # exactly itself, so this is bit for bit the sequential `c if adj[a] is None else adj[a] + c`;
    # flags bits 4 and 8 say which arguments receive (not a constant, not a None of the rule)
    for bit, slot, out in zip((4, 8), "jk", outs, strict=False):
        if out is None:
            continue
        lines.append(f"if f & {bit}:")
        if dual:
            lines += [f"    {lay.at('adj', slot)} += {out[0]}", f"    {lay.at('dadj', slot)} += {out[1]}"]
        else:
            lines.append(f"    {lay.at('adj', slot)} += {out}")
    return lines


def _reverse_src(with_tangent: bool, lay: _Layout) -> list[str]:
    inner = [f"g = {lay.at('adj', 'i')}", "if not math.isfinite(g):", "    return 3, i, b"]
    if with_tangent:
        inner += [f"dg = {lay.at('dadj', 'i')}", "if bad_d < 0 and not math.isfinite(dg):",
                  "    bad_d = i", "    bad_b = b"]
    inner += _dispatch(lambda prim: _contributions(prim, with_tangent, lay))
    name = ("reverse_tangent" if with_tangent else "reverse") + ("_1" if lay.flat else "")
    if with_tangent:
        args = "op, a0, a1, flags, vals, t, adj, dadj, outputs, U, dU, l"
        seed = [f"{lay.at('adj', 'o')} += {lay.at('U', 'm')}",
                f"{lay.at('dadj', 'o')} += {lay.at('dU', 'm')}"]
    else:
        args = "op, a0, a1, flags, vals, adj, outputs, U, l"
        seed = [f"{lay.at('adj', 'o')} += {lay.at('U', 'm')}"]
    return [_DECORATOR, f"def {name}({args}):", f"    {lay.shape()}", "    bad_d = -1",
            "    bad_b = 0", "    for m in range(outputs.shape[0]):", "        o = outputs[m]",
            *_indent(lay.loop(seed), 8),
            "    for i in range(n - 1, l - 1, -1):", "        f = flags[i]",
            "        if not f & 2:", "            continue", "        o = op[i]",
            "        j = a0[i]", "        k = a1[i]", *_indent(lay.loop(inner), 8),
            "    if bad_d >= 0:", "        return 5, bad_d, bad_b", "    return 0, 0, 0"]


def _reverse_plan_src() -> list[str]:
    # The structure of the reverse sweep, the same at every point, so made once per circuit:
    # flags[i] bit 1: a cotangent reaches slot i; bit 2: slot i is an operation it reaches (its
    # rule runs); bits 4 and 8: its rule passes a contribution to its first / second argument
    # (not None, and the argument is not a constant). counts[op]: rules run, by opcode.
    return [_DECORATOR, "def reverse_plan(op, a0, a1, outputs, l, flags, counts):",
            "    n = op.shape[0]", "    for m in range(outputs.shape[0]):",
            "        flags[outputs[m]] = 1", "    for i in range(n - 1, l - 1, -1):",
            "        o = op[i]", f"        if not flags[i] or o == {P.CONST}:", "            continue",
            "        f = 3", "        counts[o] += 1", "        j = a0[i]",
            f"        if _PASS_J[o] and op[j] != {P.CONST}:", "            f |= 4",
            "            flags[j] |= 1", "        k = a1[i]",
            f"        if k >= 0 and _PASS_K[o] and op[k] != {P.CONST}:", "            f |= 8",
            "            flags[k] |= 1", "        flags[i] = f", "    return 0, 0, 0"]


def _fd_src() -> list[str]:
    # One buffer of n slots reused for every point: memory O(N), time (points) x one forward pass.
    return [_DECORATOR,
            "def fd_values(op, a0, a1, consts, l, x, col, delta, buf, out, slot):",
            "    for m in range(col.shape[0]):",
            "        for i in range(l):", "            buf[i] = x[i]",
            "        if col[m] >= 0:", "            buf[col[m]] = x[col[m]] + delta[m]",
            "        status, i, b = forward_1(op, a0, a1, consts, buf, l)",
            "        if status != 0:", "            return status, i, m",
            "        out[m] = buf[slot]",
            "    return 0, 0, 0"]


def _passes() -> list[str]:
    """Which arguments each opcode's vjp rule passes a cotangent to (a None it returns: none)."""
    flags = [(False, False)] * len(P.BY_CODE)
    for prim in P.BY_CODE[P.CONST + 1:]:
        flags[prim.code] = (*P.passes(prim), False)[:2]
    return [f"_PASS_J = np.array({[f[0] for f in flags]})",
            f"_PASS_K = np.array({[f[1] for f in flags]})"]


def _bindings() -> list[str]:
    """Module globals the kernels call: the rows' scalar functions and domain predicates that are
    Python functions (numba compiles them where the kernels call them)."""
    lines = []
    for prim in P.BY_CODE[P.CONST + 1:]:
        if prim.scalar is None:
            raise TestbedError(f"primitive {prim.name} has no scalar implementation (its row's "
                               f"`scalar`): the compiled executor needs one; the sequential and "
                               f"vectorised executors do not")
        if _expr(prim, ["x", "y"][:prim.arity]).startswith(_scalar_name(prim)):
            lines.append(f"{_scalar_name(prim)} = numba.njit(P.BY_CODE[{prim.code}].scalar)")
        if prim.domain is not None:
            lines.append(f"_d_{prim.name} = numba.njit(P.BY_CODE[{prim.code}].domain)")
    return lines


def _fingerprint(f: Callable | None) -> str:
    """What numba compiles of a row's Python function: its code, and the numbers it reads from its
    module (such as EXP_MAX_ARG), so that a change to either makes a new kernel module."""
    if f is None or not hasattr(f, "__code__"):  # None, or a builtin of math or operator
        return "none" if f is None else f"{f.__module__}.{f.__name__}"
    consts = {n: f.__globals__[n] for n in f.__code__.co_names
              if isinstance(f.__globals__.get(n), (int, float))}
    return hashlib.sha256(marshal.dumps(f.__code__) + repr(sorted(consts.items())).encode()).hexdigest()


def source() -> str:
    """The generated kernels' source, from the table as it is now."""
    rows = [f"#   {p.code:2d} {p.name}: scalar {_fingerprint(p.scalar)[:16]}, domain "
            f"{_fingerprint(p.domain)[:16]}" for p in P.BY_CODE[P.CONST + 1:]]
    parts = [
        '"""testbed\'s compiled kernels: generated by testbed.compiled from the primitive table. '
        'Do not edit:',
        'a change to the table writes a new module (its name is a hash of this text)."""',
        "# the rows' Python functions, by a hash of their code:", *rows,
        "import math", "", "import numba", "import numpy as np", "",
        "from testbed import primitives as P", "", *_bindings(), *_passes(), "", "",
        *_reverse_plan_src(), "", ""]
    for flat in (False, True):
        lay = _Layout(flat)
        for kernel in (_forward_src(False, lay), _forward_src(True, lay), _tangent_src(lay),
                       _reverse_src(False, lay), _reverse_src(True, lay)):
            parts += [*kernel, "", ""]
    parts += [*_fd_src(), ""]
    return "\n".join(parts)


# --- loading ---------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where the generated module (and numba's machine code, beside it) is kept."""
    if os.environ.get("TESTBED_CACHE_DIR"):
        return Path(os.environ["TESTBED_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "testbed"


def _writable(d: Path) -> Path:
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        return d
    except OSError:
        fallback = Path(tempfile.gettempdir()) / f"testbed-cache-{os.getuid()}"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def _module_file(text: str) -> Path:
    """The generated module on disk: written once under its hash, never over another file."""
    import numba

    digest = hashlib.sha256((text + numba.__version__).encode()).hexdigest()[:16]
    d = _writable(cache_dir())
    path = d / f"kernels_{digest}.py"
    if path.exists() and path.read_text() == text:
        return path
    if path.exists():  # not ours (or damaged): leave it, write beside it
        path = d / f"kernels_{digest}_{os.getpid()}.py"
    tmp = d / f".kernels_{digest}.{os.getpid()}.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


_LOADED: dict = {"table": None, "module": None, "path": None, "import_s": 0.0}
_FIRST: dict[str, dict] = {}  # kernel name -> what its first call cost
# every table this process has run, with its module and first-call costs: a test that replaces a
# row and then restores it gets the kernels it already loaded back, not a second load
_SEEN: list[tuple[dict, dict]] = []  # (_LOADED, _FIRST) of each table but the current one


def kernels() -> types.ModuleType:
    """The module of kernels for the table as it is now: generated and imported on first use (and
    again if the table's rows were replaced); each kernel compiles, or loads from numba's cache,
    on its own first call."""
    table = tuple(P.BY_CODE)
    if table == _LOADED["table"]:  # the very same rows (a tuple compares each row by identity
        return _LOADED["module"]    # first: no row's fields are read)
    global _FIRST
    if _LOADED["table"] is not None:
        _SEEN.append((dict(_LOADED), _FIRST))
    for i, (loaded, first) in enumerate(_SEEN):
        if loaded["table"] == table:  # compared as above, row by row and by identity first
            del _SEEN[i]
            _LOADED.update(loaded)
            _FIRST = first
            return _LOADED["module"]
    t0 = time.perf_counter()
    import numba  # noqa: F401  (what the first call pays: about half a second)

    path = _module_file(source())
    name = f"testbed._kernels_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _LOADED.update(table=table, module=module, path=str(path), import_s=time.perf_counter() - t0)
    _FIRST = {}
    return module


def run(name: str, *args: object) -> tuple[int, int, int]:
    """Call kernel `name`; the first call of each kernel records its cost in `load_report`."""
    kernel = getattr(kernels(), name)
    if name in _FIRST:
        return kernel(*args)
    t0 = time.perf_counter()
    out = kernel(*args)
    seconds = time.perf_counter() - t0
    hits = sum(kernel.stats.cache_hits.values())
    _FIRST[name] = {"source": "cache" if hits else "compiled", "seconds": seconds}
    log.info("testbed: numba kernel %s %s in %.2f s", name,
             "loaded from the cache" if hits else "compiled", seconds)
    return out


def load_report() -> dict:
    """What this process paid for the compiled executor so far: {"import_s": importing numba and
    the generated module, "path": that module, "kernels": {name: {"source": "compiled" | "cache",
    "seconds": its first call, compile or cache load included}}}."""
    return {"import_s": _LOADED["import_s"], "path": _LOADED["path"],
            "kernels": {k: dict(v) for k, v in _FIRST.items()}}



def warm(part: int = 0, parts: int = 1) -> dict:
    """Compile (or load from the cache) every kernel now: each one is a dispatch over every
    opcode, compiled once per argument layout, so one small circuit run through every transform
    at a single point and at a batch reaches them all. A test run about to start several
    processes then finds every kernel in the cache. Returns `load_report()`.

    `parts` processes can share the work: the one given `part` (0 <= part < parts) runs every
    parts-th of the transform calls, so that `parts` cold compiles run side by side (`make test`
    runs two). A kernel two parts both need is compiled by both (numba's cache takes either).
    """
    import numpy as np

    import testbed

    from . import evaluate as E

    parts = check_int(parts, "parts", minimum=1, where="warm")
    part = check_int(part, "part", minimum=0, maximum=parts - 1, where="warm")
    c = testbed.trace(lambda x: testbed.sin(x[0] * x[1]) + testbed.log(x[0] + 2.0) / x[1], 2)
    calls = [lambda: testbed.fd_grad(c, np.full(2, 0.5), executor="compiled")]
    for x in (np.full(2, 0.5), np.full((3, 2), 0.5)):
        v = np.ones_like(x)
        X, _ = E.as_points(c, x)  # (l,) or (l, B)
        calls += [lambda x=x: testbed.evaluate.evaluate(c, x, executor="compiled"),
                  lambda x=x: testbed.value_and_grad(c, x, executor="compiled"),
                  lambda x=x, v=v: testbed.jvp(c, x, v, executor="compiled"),
                  lambda x=x, v=v: testbed.hvp(c, x, v, executor="compiled"),
                  lambda X=X: E.tangent(c, E.forward(c, X, executor="compiled"), np.ones_like(X),
                                        executor="compiled")]
    for call in calls[part::parts]:
        call()
    return load_report()
