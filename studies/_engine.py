"""What the engine's timed studies (`complexity`, `hvp`) measure with, in one place.

    SIZES_N, WIDE_FIT_N, IN_CACHE_MIN, in_cache_max, in_cache   the sizes, the cache regimes
    agrees(out, ref), jax_timed(c, x, ref, ...)       JAX beside testbed: agreement, timing
    built_circuit(rng, n, l, family), sweep_generator  a random circuit, built once per run
    memory_probe(c)                                    a gather of the argument slots (no arithmetic)
    with_memory_probe(row, probe), in_cache_claim(...) the probe as a claim's measured cause; the
                                                       wide family's slope inside the cache
    net_sizes, net_params, mlp_forward_ops, mlp_grad_ops, grad_limit   deep networks' op counts
    decades(lo, hi), sci(n)                            1-2-5 grids, 10^k in notes and titles
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

import testbed
from testbed.random_circuits import DEFAULT_OPS, random_circuit

from ._builders import slope, slope_text
from ._claims import PASSED, QUICK_UNDECIDABLE, fmt
from ._fits import loglog_fit
from ._runner import CIRCUITS_ENV
from ._seeds import generator
from ._timing import gc_paused, import_jax, median_walls

SLOPE_ONE = (0.9, 1.1)
NET_DEPTH = 4  # a network is (w, w, w, w, 1): r = 4 layers (3 hidden of width w), tanh
JAX_RTOL = 1e-9


def decades(lo: float, hi: float) -> list[int]:
    """1-2-5 steps from lo to hi."""
    out, d = [], 1
    while d <= hi:
        out += [int(m * d) for m in (1, 2, 5) if lo <= m * d <= hi]
        d *= 10
    return out


def sci(n: float) -> str:
    """10^k for a power of ten, else 'm 10^k' or the plain number: for notes and titles."""
    n = float(n)
    if n <= 0 or not np.isfinite(n):
        return fmt(n)
    k = int(np.floor(np.log10(n) + 1e-9))
    m = n / 10**k
    if k < 3:
        return f"{n:g}"
    return f"10^{k}" if abs(m - 1) < 1e-9 else f"{m:g} 10^{k}"


# circuit sizes: 1-2-5 steps to 10^6, then denser to 10^7, where the wide family's slope is fitted
SIZES_N = decades(100, 10**6) + [2 * 10**6, 3 * 10**6, 5 * 10**6, 7 * 10**6, 10**7]
# The wide family's fit range, fixed from the machine's caches before any timing: a wide node
# reads two slots drawn from all earlier ones, so its sweeps are random reads over the value and
# cotangent arrays (16 bytes per slot, 32 for the HVP's duals). Such a line bends while those
# arrays leave the caches (L2 1 MiB per core, L3 8 MiB shared: lscpu), so the fit keeps to one
# regime, the one where they exceed 8 x L3 (64 MiB: N_nominal >= 3 10^6, ~4 10^6 slots), and
# nearly every read misses the last-level cache. Deep circuits read the last few slots: one regime
# at every N.
LLC_BYTES = 8 * 2**20
WIDE_FIT_N = 3 * 10**6
# The other regime, added after the first compiled run had shown the DRAM regime still bending at
# 10^7 (disclosed in the notes): the arrays inside the last-level cache, 16 bytes a slot times
# ~1.4 slots per node (the domain repairs) <= 8 MiB, from N = 10^4 on, where the compiled
# executor's ~30 us per call is about a tenth of the time
IN_CACHE_MIN = 10**4


def in_cache_max(bytes_per_slot: int) -> float:
    """The largest N_nominal whose random-read arrays (bytes_per_slot x ~1.4 N) fit in the LLC."""
    return LLC_BYTES / (bytes_per_slot * 1.4)


def in_cache(n_nominal: object, bytes_per_slot: int) -> object:
    """Whether N_nominal (a number or a Series) is in the in-cache fit range, IN_CACHE_MIN to
    in_cache_max(bytes_per_slot): the cells and rows of the wide family's in-cache claims."""
    return (n_nominal >= IN_CACHE_MIN) & (n_nominal <= in_cache_max(bytes_per_slot))


# --- random circuits, built once per run ------------------------------------------------------------
# CIRCUITS_ENV names the folder where a run keeps the circuits it built (`_runner.make_executor`
# makes one for its process pool and removes it afterwards); unset, every cell builds its own.
#: below this many nodes a circuit builds in well under a second: not worth a file. Above it the
#: build is the cells' largest cost (~7 us a node, a Python loop: 100 s for a wide 10^7), and the
#: N sweep's circuits recur: in complexity, in hvp, and in every re-measurement of a timed claim
KEEP_MIN_N = 10**5


def sweep_generator(seed: int, family: str, n: int, l: int) -> np.random.Generator:
    """The generator of the N sweeps' circuits: complexity's key, which the hvp study's N sweep
    shares, so that both time the same circuits (and a run builds each once)."""
    return generator(seed, "complexity", "circuit", family, n, l)


def built_circuit(rng: np.random.Generator, n: int, l: int, family: str,
                  ops: Sequence[str] = DEFAULT_OPS,
                  keep_min_n: int = KEEP_MIN_N) -> tuple[testbed.Circuit, float]:
    """random_circuit(rng, n, l, family, ops) and the wall seconds its build took.

    random_circuit is a function of the generator's state and its arguments, and leaves the
    generator in a state they determine. Keyed by both, a circuit of n >= keep_min_n built by one
    cell is read back by the next that asks, with the generator set to the state the build left
    it in: the circuit and every later draw (the cell's x and v) are those a build would give. The
    seconds returned are then the original build's, read from the file.
    """
    folder = os.environ.get(CIRCUITS_ENV)
    path = None
    if folder and n >= keep_min_n:
        key = json.dumps([rng.bit_generator.state, int(n), int(l), family, list(ops)],
                         sort_keys=True)
        path = Path(folder) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"
        if path.exists():
            with np.load(path) as f:
                c = testbed.Circuit(int(f["l"]), f["op"], f["a0"], f["a1"], f["consts"],
                                    f["outputs"], f["level"])
                rng.bit_generator.state = json.loads(str(f["state"]))
                return c, float(f["build_s"])
    with gc_paused():
        t0 = time.perf_counter()
        c = random_circuit(rng, n, l, family, ops=ops)
        build = time.perf_counter() - t0
    if path is not None:
        # written whole under a name of this process, then renamed: a reader never sees half a file
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, l=c.l, op=c.op, a0=c.a0, a1=c.a1, consts=c.consts, outputs=c.outputs,
                     level=c.level, state=json.dumps(rng.bit_generator.state), build_s=build)
        os.replace(tmp, path)
    return c, build


def agrees(out: object, ref: object) -> bool:
    """max |out - ref| <= JAX_RTOL max(1, max |ref|)."""
    out, ref = np.asarray(out, dtype=float), np.asarray(ref, dtype=float)
    return bool(out.shape == ref.shape and np.all(np.isfinite(out))
                and np.max(np.abs(out - ref)) <= JAX_RTOL * max(1.0, float(np.max(np.abs(ref)))))


def jax_timed(c: testbed.Circuit, x: np.ndarray, ref: np.ndarray, method: str, budget: float,
              transform: str = "grad") -> dict:
    """Compile time (first call), median run time and agreement of jax.jit(jax.<transform>(to_jax(c)))
    with testbed's `ref` (transform: "grad" or "hessian")."""
    jax = import_jax()
    fn = jax.jit(getattr(jax, transform)(testbed.to_jax(c, method=method)))
    xj = jax.numpy.asarray(x)
    t0 = time.perf_counter()
    out = np.asarray(fn(xj))
    compile_s = time.perf_counter() - t0
    run = median_walls({"f": lambda: fn(xj).block_until_ready()}, budget)["f"]
    return {"compile": compile_s, "run": run, "agrees": agrees(out, ref)}


def memory_probe(c: testbed.Circuit) -> object:
    """A call that reads what a sweep reads and computes nothing: numpy's gather of the values of
    every operation's argument slots (a0, a1), the circuit's own access pattern. Its time per node
    is the memory hierarchy's price of those reads, which the unit-cost model of the theorem
    leaves out: random for a wide circuit, sequential for a deep one."""
    from testbed import primitives as P

    ops = np.flatnonzero(c.op > P.CONST)
    j = c.a0[ops]
    k = np.where(c.a1[ops] >= 0, c.a1[ops], j)
    vals = np.ones(c.n_slots)
    return lambda: np.add(vals[j], vals[k])


def net_sizes(width: int) -> tuple[int, ...]:
    """(w, w, w, w, 1): the network with r = 4 layers and one output."""
    return (width,) * NET_DEPTH + (1,)


def net_params(width: int) -> int:
    """l = sum_k n[k] (n[k-1] + 1) for (w, w, w, w, 1)."""
    sizes = net_sizes(width)
    return sum(sizes[k] * (sizes[k - 1] + 1) for k in range(1, len(sizes)))


def mlp_forward_ops(sizes: tuple[int, ...], m: int) -> int:
    """N of a network: scalar multiply/add/activation operations of one forward pass and the loss.

        z[k] = a[k-1] W[k]^T + b[k]:  m n[k] n[k-1] mul + m n[k] (n[k-1] - 1) add + m n[k] add
        a[k] = sigma(z[k]), k < r:   m n[k] activations (one op each)
        J = (1/m) 1/2 sum (y - tau)^2:  m n[r] sub, m n[r] mul, m n[r] - 1 add, 2 scalings
    so N = sum_k 2 m n[k] n[k-1] + m sum_{k<r} n[k] + 3 m n[r] + 1.
    """
    r = len(sizes) - 1
    return (sum(2 * m * sizes[k] * sizes[k - 1] for k in range(1, r + 1))
            + m * sum(sizes[1:r]) + 3 * m * sizes[r] + 1)


def mlp_grad_ops(sizes: tuple[int, ...], m: int, need_dx: bool = False) -> int:
    """Operations of testbed.nn.value_and_grad(need_dx=...): the forward pass, then backprop.

        dJ/dz[r] = (tau - y) / m                          2 m n[r]
        k = r..1:  dJ/dW[k] = dJ/dz[k]^T a[k-1]           n[k] n[k-1] (2m - 1)
                   dJ/db[k] = sum over rows of dJ/dz[k]   n[k] (m - 1)
        k > 1:     dJ/da[k-1] = dJ/dz[k] W[k]             m n[k-1] (2 n[k] - 1)
                   dJ/dz[k-1] = dJ/da[k-1] * sigma'(z)    2 m n[k-1] (sigma' counted as one op)
        need_dx:   dJ/dx = dJ/da[0] = dJ/dz[1] W[1]       m n[0] (2 n[1] - 1)
    For (w, w, w, w, 1) and large w: forward 3 matmuls (6 m w^2), backward 3 for dJ/dW and 2 for
    dJ/da (10 m w^2), so grad / forward -> 16/6 = 8/3; with dJ/dx one more, 18/6 = 3.
    """
    r = len(sizes) - 1
    ops = mlp_forward_ops(sizes, m) + 2 * m * sizes[r]
    for k in range(r, 0, -1):
        ops += sizes[k] * sizes[k - 1] * (2 * m - 1) + sizes[k] * (m - 1)
        if k > 1:
            ops += m * sizes[k - 1] * (2 * sizes[k] - 1) + 2 * m * sizes[k - 1]
    if need_dx:
        ops += m * sizes[0] * (2 * sizes[1] - 1)
    return ops


def grad_limit(need_dx: bool) -> float:
    """grad ops / forward ops of (w, w, w, w, 1) as w -> infinity: matmuls back / matmuls forward."""
    forward = NET_DEPTH - 1  # w x w matmuls (the output layer's 1 x w is of lower order)
    back = (NET_DEPTH - 1) + (NET_DEPTH - 2) + (1 if need_dx else 0)
    return (forward + back) / forward


def with_memory_probe(row: dict, probe: dict) -> dict:
    """The claim with the memory probe's slope over its fit range in `measured`, and, when it did
    not pass, the probe as the measured cause in `reason`."""
    if not probe.get("points"):
        return row
    text = (f"memory probe (a gather of the argument slots, no arithmetic) over the same N: slope "
            f"{slope_text(probe['slope'], probe['lo'], probe['hi'])}")
    row = {**row, "measured": f"{row['measured']}; {text}"}
    if row["verdict"] != PASSED and row["reason"] != QUICK_UNDECIDABLE:
        # a cause only where the probe measures one: its own slope above 1 at 95%
        cause = ("the time per read grows as the arrays leave the caches (the unit-cost model's "
                 "blind spot, not the algorithm's)" if probe["lo"] > 1 else
                 "its interval reaches 1, so the reads' price is not shown to grow here: no cause "
                 "measured")
        row["reason"] = f"{row['reason']}; the {text}: {cause}"
    return row


def in_cache_claim(wide: pd.DataFrame, cid: str, method: str, bytes_per_slot: int, where: str,
                   quick: bool) -> dict:
    """The wide family's slope in N inside the last-level cache (N_nominal from IN_CACHE_MIN to
    `in_cache_max(bytes_per_slot)`), from the rows of its N sweep; specified after the first
    compiled run (disclosed in the claim)."""
    col = f"wall_{method}"
    hi_n = in_cache_max(bytes_per_slot)
    rows = wide[in_cache(wide["N_nominal"], bytes_per_slot)]
    d = rows[["N", col]].dropna() if col in rows.columns else rows.iloc[0:0]
    row = slope(cid, f"circuits (wide): {method} time grows linearly in N at fixed l (arrays "
                "inside the last-level cache; specified after seeing the data)", where,
                d["N"], d[col] if col in d.columns else d["N"], SLOPE_ONE, quick=quick,
                extra=f", N_nominal {sci(IN_CACHE_MIN)}..{hi_n:.3g}: {bytes_per_slot} bytes a "
                      f"slot within {LLC_BYTES // 2**20} MiB")
    # the same memory probe as the far regime's: inside the L3 the arrays still leave the L2
    # (1 MiB a core) within this range, and the probe says whether the reads slow down there
    g = rows[["N", "wall_gather"]].dropna() if "wall_gather" in rows.columns else rows.iloc[0:0]
    b, lo, hi, n = loglog_fit(g["N"], g["wall_gather"]) if len(g) else (np.nan,) * 3 + (0,)
    return with_memory_probe(row, {"slope": b, "lo": lo, "hi": hi, "points": n})
