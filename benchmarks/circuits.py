"""Benchmark of the circuit engine: testbed's executors beside plain compiled loops, and op counts.

Two seeded families (testbed.random_circuits), l = 100: "wide" (operands drawn from all earlier
slots, depth ~ log N) and "deep" (each node uses the previous one, depth ~ N). Each (family, N)
runs in its own process, so that memory figures are its own; every ratio is taken within one
process, the two sides timed in alternation (median of the rounds).

The reference is benchmarks/_reference.py: plain numba loops over the circuit's own arrays, the
same rules written out by hand, no checks, no batch dimension. testbed's side is the public API
(`testbed.value_and_grad(c, x)` and friends, executor "auto", i.e. compiled), argument checks,
error checks and allocation included.

    python benchmarks/circuits.py            # the full table (about 5 minutes)
    python benchmarks/circuits.py --quick    # N <= 10^5
"""

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

import testbed
from testbed.costs import JVP_COST, VJP_COST, muldiv, op_counts, total
from testbed.random_circuits import DEFAULT_OPS, RATIONAL_OPS, random_circuit

sys.path.insert(0, str(Path(__file__).parent))
import _reference as R  # noqa: E402

L = 100
TARGETS = {"vg_deep": 2.0, "vg_wide": 1.5, "first_hvp_deep": 3.0, "fd_per_pass": 1.5,
           "bytes_per_node": 64, "compile_s": 5.0, "cache_s": 1.0}


def _alternating(calls: dict, rounds: int) -> dict:
    """Median seconds per call, the calls timed in turn, `rounds` times."""
    times = {k: [] for k in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def _fresh(rng, N, family):
    gc.disable()  # building 10^6 Python objects: the cyclic collector only slows it down
    t = time.perf_counter()
    c = random_circuit(rng, N, L, family)
    build = time.perf_counter() - t
    gc.enable()
    gc.freeze()
    return c, build


def one(family: str, N: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, L)
    v = rng.standard_normal(L)
    warm = random_circuit(np.random.default_rng(seed + 1), 200, L, family)
    testbed.value_and_grad(warm, x), testbed.hvp(warm, x, v)  # kernels loaded: not timed below
    R.value_and_grad(warm, x), R.hvp(warm, x, v)
    c, build = _fresh(rng, N, family)
    row = {"family": family, "N": c.size, "depth": c.depth, "build_s": build,
           "executor": testbed.evaluate.executor_of(c)}
    # what a user pays on a fresh circuit: plans made on first use (peak memory traced meanwhile)
    tracemalloc.start()
    t = time.perf_counter()
    testbed.value_and_grad(c, x)
    row["first_vg_s"] = time.perf_counter() - t
    row["vg_bytes_per_node"] = tracemalloc.get_traced_memory()[1] / c.n_slots
    tracemalloc.stop()
    c2 = random_circuit(np.random.default_rng(seed), N, L, family)  # the same circuit, fresh again
    t = time.perf_counter()
    testbed.hvp(c2, x, v)
    row["first_hvp_s"] = time.perf_counter() - t
    del c2
    reps = 15 if N <= 10**5 else 7
    timed = _alternating({
        "forward": lambda: c(x), "ref_forward": lambda: R.forward(*R.arrays(c), x),
        "vg": lambda: testbed.value_and_grad(c, x), "ref_vg": lambda: R.value_and_grad(c, x),
        "hvp": lambda: testbed.hvp(c, x, v), "ref_hvp": lambda: R.hvp(c, x, v),
        "jvp": lambda: testbed.jvp(c, x, v)}, reps)
    row.update({f"{k}_s": t for k, t in timed.items()})
    ours, ref = testbed.value_and_grad(c, x)[1], R.value_and_grad(c, x)[1]
    row["grad_equal_to_reference"] = bool(np.array_equal(ours, ref))
    row["hvp_equal_to_reference"] = bool(np.allclose(testbed.hvp(c, x, v), R.hvp(c, x, v),
                                                     rtol=1e-12, atol=1e-300))
    if N <= 10**4:  # the readable references, for scale
        row.update({f"{e}_vg_s": t for e, t in _alternating(
            {e: (lambda e=e: testbed.value_and_grad(c, x, e)) for e in ("sequential", "vectorised")},
            3).items()})
    for mode in ("forward", "grad", "jvp", "hvp", "fd_forward"):
        counts = op_counts(c, mode)
        row[f"{mode}_ops"] = total(counts)
        row[f"{mode}_muldiv"] = muldiv(counts)
    return row


def fd_rows(N: int = 5000, seed: int = 0) -> list[dict]:
    """fd_grad against one forward pass on deep circuits of N nodes with l = 1, 10, 100 inputs."""
    rows = []
    for l in (1, 10, 100):
        rng = np.random.default_rng(seed)
        c = random_circuit(rng, N, l, "deep")
        x = rng.uniform(-2, 2, l)
        testbed.fd_grad(c, x)
        t = _alternating({"forward": lambda c=c, x=x: c(x),
                          "fd": lambda c=c, x=x: testbed.fd_grad(c, x)}, 21)
        rows.append({"l": l, "N": c.size, "forward_s": t["forward"], "fd_s": t["fd"],
                     "passes_per_evaluation": t["fd"] / t["forward"] / (l + 1)})
    return rows


def cold_start() -> dict:
    """A fresh process, twice, on an empty kernel cache: the first compiles, the second loads.
    Each calls value_and_grad, then hvp (their kernels only), and reports load_report()."""
    code = ("import time, numpy as np; t0 = time.perf_counter(); import testbed; "
            "c = testbed.trace(lambda x: testbed.sin(x[0]) * x[1], 2); x = np.ones(2); "
            "t = time.perf_counter(); testbed.value_and_grad(c, x); vg = time.perf_counter() - t; "
            "t = time.perf_counter(); testbed.hvp(c, x, x); hv = time.perf_counter() - t; "
            "import json; print(json.dumps({'vg_s': vg, 'hvp_s': hv, "
            "'report': testbed.compiled.load_report()}))")
    out = {}
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "TESTBED_CACHE_DIR": d}
        for name in ("compile", "cache"):
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True, env=env)
            out[name] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def per_primitive() -> list[dict]:
    """Worst case per primitive: circuits made of that primitive only (and the domain repairs)."""
    rows = []
    for name in DEFAULT_OPS:
        c = random_circuit(np.random.default_rng(1), 2000, 4, "deep", ops=(name,), live=True)
        f, g, h = total(c.counts()), total(op_counts(c, "grad")), total(op_counts(c, "hvp"))
        rows.append({"primitive": name, "vjp_rule_ops": total(VJP_COST[name]),
                     "jvp_rule_ops": total(JVP_COST[name]), "f_ops": f, "grad/f": g / f,
                     "hvp/grad": h / g, "hvp/f": h / f,
                     "muldiv grad/f": muldiv(op_counts(c, "grad")) / max(1, muldiv(c.counts()))})
    return rows


def baur_strassen(n_circuits: int = 50) -> float:
    """max over random + - * / circuits of muldiv(grad circuit) / muldiv(f)."""
    worst = 0.0
    for s in range(n_circuits):
        c = random_circuit(np.random.default_rng(s), 500, 10, ("wide", "deep")[s % 2],
                           ops=tuple(sorted(RATIONAL_OPS)))
        worst = max(worst, muldiv(testbed.grad(c).counts()) / max(1, muldiv(c.counts())))
    return worst


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--one", nargs=2, metavar=("FAMILY", "N"))
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]))))
        return
    import pandas as pd

    pd.set_option("display.width", 220)
    pd.set_option("display.max_columns", 40)
    cold = cold_start()
    sizes = [10**3, 10**4, 10**5] if args.quick else [10**3, 10**4, 10**5, 10**6]
    rows = []
    for family in ("wide", "deep"):
        for N in sizes:
            out = subprocess.run([sys.executable, __file__, "--one", family, str(N)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  measured {family} N={N}", file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    t = df[["family", "N", "depth", "executor"]].copy()
    t["fwd ns/node"] = 1e9 * df.forward_s / df.N
    t["vg ns/node"] = 1e9 * df.vg_s / df.N
    t["ref vg ns/node"] = 1e9 * df.ref_vg_s / df.N
    t["vg / ref"] = df.vg_s / df.ref_vg_s
    t["fwd / ref"] = df.forward_s / df.ref_forward_s
    t["hvp / ref"] = df.hvp_s / df.ref_hvp_s
    t["first hvp / ref"] = df.first_hvp_s / df.ref_hvp_s
    t["first vg s"] = df.first_vg_s
    t["grad/fwd"] = df.vg_s / df.forward_s
    t["hvp/fwd"] = df.hvp_s / df.forward_s
    t["vg B/node"] = df.vg_bytes_per_node
    t["grad == ref"] = df.grad_equal_to_reference
    print("\nWall time, testbed (public API, auto = compiled) against the plain compiled loops "
          "(benchmarks/_reference.py), l = 100, medians of alternating rounds")
    print(t.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if "sequential_vg_s" in df:
        s = df[df.sequential_vg_s.notna()][["family", "N"]].copy()
        for e in ("sequential", "vectorised"):
            s[f"{e} vg / compiled"] = df[f"{e}_vg_s"] / df.vg_s
        print("\nThe numpy executors (the readable references), value_and_grad time / compiled")
        print(s.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    fd = pd.DataFrame(fd_rows())
    print("\nfd_grad (forward, l + 1 evaluations) on deep circuits, N = 5000: time / ((l + 1) x one "
          "forward pass)")
    print(fd.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    o = df[["family", "N"]].copy()
    for m in ("grad", "jvp", "hvp", "fd_forward"):
        o[f"{m}/f ops"] = df[f"{m}_ops"] / df.forward_ops
    o["grad/f muldiv"] = df.grad_muldiv / df.forward_muldiv
    o["hvp/grad ops"] = df.hvp_ops / df.grad_ops
    o["fd ops = (l+1)N"] = df.fd_forward_ops == (L + 1) * df.N
    print("\nExact operation counts, ratios to f (Griewank-Walther: grad 3-4, tangent 2-2.5, HVP 7-10)")
    print(o.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nWorst case per primitive (circuits of one primitive only, plus domain repairs)")
    print(pd.DataFrame(per_primitive()).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nBaur-Strassen: max muldiv(grad circuit) / muldiv(f) over 50 random + - * / circuits: "
          f"{baur_strassen():.3f} (theorem: <= 3)")
    print("\nFirst call of a fresh process (empty kernel cache, then the same cache again):")
    for name in ("compile", "cache"):
        r = cold[name]
        kern = ", ".join(f"{k} {v['source']} {v['seconds']:.2f} s" for k, v in r["report"]["kernels"].items())
        print(f"  {name}: value_and_grad {r['vg_s']:.2f} s, then hvp {r['hvp_s']:.2f} s (numba and "
              f"module import {r['report']['import_s']:.2f} s; {kern})")
    print("\nTargets:")
    for _, r in df[df.N >= 900_000].iterrows():
        lim = TARGETS["vg_deep"] if r.family == "deep" else TARGETS["vg_wide"]
        print(f"  value_and_grad {r.family} N={r.N}: {r.vg_s / r.ref_vg_s:.2f} x the compiled loop "
              f"(target <= {lim}): {_met(r.vg_s / r.ref_vg_s <= lim)}; peak traced memory "
              f"{r.vg_bytes_per_node:.1f} B/node (target <= {TARGETS['bytes_per_node']}): "
              f"{_met(r.vg_bytes_per_node <= TARGETS['bytes_per_node'])}")
        if r.family == "deep":
            ratio = r.first_hvp_s / r.ref_hvp_s
            print(f"  first hvp on a fresh deep N={r.N}: {r.first_hvp_s:.3f} s = {ratio:.2f} x the "
                  f"reference's fused HVP (target <= {TARGETS['first_hvp_deep']}): "
                  f"{_met(ratio <= TARGETS['first_hvp_deep'])}")
    for _, r in fd.iterrows():
        print(f"  fd_grad deep N={r.N}, l={r.l}: {r.passes_per_evaluation:.2f} forward passes per "
              f"evaluation (target <= {TARGETS['fd_per_pass']}): "
              f"{_met(r.passes_per_evaluation <= TARGETS['fd_per_pass'])}")
    comp = cold["compile"]["vg_s"]
    cache = cold["cache"]["vg_s"]
    print(f"  first value_and_grad of a fresh process: compile {comp:.2f} s (target <= "
          f"{TARGETS['compile_s']}): {_met(comp <= TARGETS['compile_s'])}; from the cache "
          f"{cache:.2f} s (target <= {TARGETS['cache_s']}): {_met(cache <= TARGETS['cache_s'])}")
    print(f"  grad bit for bit equal to the reference loops: {bool(df.grad_equal_to_reference.all())}"
          f"; hvp within 1e-12: {bool(df.hvp_equal_to_reference.all())}")
    # forward mode over the gradient circuit adds each node's tangent rule (at most 3 ops): <= 4
    print(f"  max hvp/grad ops: {(df.hvp_ops / df.grad_ops).max():.3f} (bound <= 4)")


if __name__ == "__main__":
    main()
