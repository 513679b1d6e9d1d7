"""Benchmark of the circuit engine: wall times and exact op counts, N = 10^3 .. 10^6, l = 100.

Two seeded families (testbed.random_circuits): "wide" (operands drawn from all earlier slots, depth
~ log N) and "deep" (each node uses the previous one, depth ~ N). Each (family, N) runs in its own
process, so that its peak memory (ru_maxrss) is its own. Ratios are within one process.

    python benchmarks/circuits.py            # the full table (about 3 minutes)
    python benchmarks/circuits.py --quick    # N <= 10^4
"""

import argparse
import gc
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

import testbed
from testbed.costs import JVP_COST, VJP_COST, muldiv, op_counts, total
from testbed.random_circuits import DEFAULT_OPS, RATIONAL_OPS, random_circuit

L = 100


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def one(family: str, N: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    gc.disable()  # building 10^6 Python objects: the cyclic collector only slows it down
    t = time.perf_counter()
    c = random_circuit(rng, N, L, family)
    build = time.perf_counter() - t
    gc.enable()
    gc.freeze()
    x = rng.uniform(-2, 2, L)
    v = rng.standard_normal(L)
    reps = 9 if N <= 10**4 else 5 if N <= 10**5 else 3
    row = {"family": family, "N": c.size, "depth": c.depth, "build_s": build}
    t = time.perf_counter()
    c(x)  # first call: makes the evaluation plan
    row["plan_s"] = time.perf_counter() - t
    row["executor"] = testbed.evaluate.executor_of(c)
    row["forward_s"] = _median_time(lambda: c(x), reps)
    row["grad_s"] = _median_time(lambda: testbed.value_and_grad(c, x), reps)
    # peak memory of building, evaluating and differentiating (before the HVP's gradient circuit)
    row["rss_vg_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["jvp_s"] = _median_time(lambda: testbed.jvp(c, x, v), reps)
    t = time.perf_counter()
    G = testbed.grad(c)
    row["grad_circuit_build_s"] = time.perf_counter() - t
    testbed.hvp(c, x, v)
    row["hvp_s"] = _median_time(lambda: testbed.hvp(c, x, v), reps)
    row["fd_s"] = _median_time(lambda: testbed.fd_grad(c, x), 1) if N <= 10**4 else None
    for mode in ("forward", "grad", "jvp", "hvp", "fd_forward"):
        counts = op_counts(c, mode)
        row[f"{mode}_ops"] = total(counts)
        row[f"{mode}_muldiv"] = muldiv(counts)
    row["grad_circuit_size"] = G.size
    row["peak_rss_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--one", nargs=2, metavar=("FAMILY", "N"))
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]))))
        return
    sizes = [10**3, 10**4] if args.quick else [10**3, 10**4, 10**5, 10**6]
    rows = []
    for family in ("wide", "deep"):
        for N in sizes:
            out = subprocess.run([sys.executable, __file__, "--one", family, str(N)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  measured {family} N={N}", file=sys.stderr, flush=True)
    import pandas as pd

    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 40)
    df = pd.DataFrame(rows)
    t = df[["family", "N", "depth", "executor", "forward_s", "grad_s", "jvp_s", "hvp_s", "fd_s",
            "grad_circuit_build_s", "rss_vg_MiB", "peak_rss_MiB"]].copy()
    t["grad/fwd"] = df.grad_s / df.forward_s
    t["jvp/fwd"] = df.jvp_s / df.forward_s
    t["hvp/fwd"] = df.hvp_s / df.forward_s
    t["fd/fwd"] = df.fd_s / df.forward_s
    print("\nWall time (median seconds) and ratios to one forward evaluation, l = 100")
    print(t.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
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
    print("\nTargets:")
    big = df[df.N >= 900_000]
    for _, r in big.iterrows():
        limit = 1.0 if r.family == "wide" else 4.0
        print(f"  value_and_grad {r.family} N={r.N}: {r.grad_s:.3f} s (target < {limit} s): "
              f"{'met' if r.grad_s < limit else 'NOT met'}; peak RSS of value_and_grad "
              f"{r.rss_vg_MiB:.0f} MiB (target < 1024): {'met' if r.rss_vg_MiB < 1024 else 'NOT met'}"
              f"; with the HVP's gradient circuit {r.peak_rss_MiB:.0f} MiB")
    worst = (df.grad_s / df.forward_s).max()
    print(f"  max grad/forward wall ratio: {worst:.2f} (target <= 5): "
          f"{'met' if worst <= 5 else 'NOT met'}")
    print(f"  max grad/f ops: {(df.grad_ops / df.forward_ops).max():.3f} (target <= 5)")
    # forward mode over the gradient circuit adds each node's tangent rule (at most 3 ops): <= 4
    print(f"  max hvp/grad ops: {(df.hvp_ops / df.grad_ops).max():.3f} (bound <= 4)")


if __name__ == "__main__":
    main()
