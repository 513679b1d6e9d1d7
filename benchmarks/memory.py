"""Benchmark of checkpointing: memory against recomputation, side by side in one run.

  1. A depth-64 network of width 512 (batch 256, tanh): plain backprop, sqrt(L) checkpointing
     (Chen et al. 2016) and the revolve schedule with a few snapshots; peak memory (tracemalloc:
     numpy's allocations are traced) and median time, and beside them JAX: jax.grad of the same
     network with every layer under jax.checkpoint, jitted, its memory from XLA's own analysis of
     the compiled program (temporary buffers).
  2. A deep random circuit of 10^6 nodes with s = 10 snapshots against plain value_and_grad:
     peak memory and time, against the targets (memory <= 1/10 of plain, time <= (1 + t) x 1.3
     of plain's forward + reverse, t the repetition number of the schedule).

    python benchmarks/memory.py            # both parts (about a minute)
    python benchmarks/memory.py --quick    # smaller sizes
"""

import argparse
import gc
import statistics
import time
import tracemalloc

import numpy as np

import testbed
import testbed.nn as nn
from testbed import checkpoint as C
from testbed.random_circuits import random_circuit


def _peak(fn) -> tuple[float, object]:
    """(peak bytes traced while fn ran, its result)."""
    gc.collect()
    tracemalloc.start()
    out = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, out


def _median(fn, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def network_part(depth: int, width: int, batch: int) -> None:
    rng = np.random.default_rng(0)
    net = nn.init_network([width] * depth + [1], "tanh", "xavier_normal", rng)
    x, y = rng.standard_normal((batch, width)), rng.standard_normal((batch, 1))
    r = net.depth
    variants = {"plain": None, "sqrt": "sqrt", "revolve s=8": 8, "revolve s=4": 4}
    rows = {}
    ref = nn.value_and_grad(net, x, y)[1]
    grads_bytes = sum(a.nbytes for a in [*ref.dW[1:], *ref.db[1:]])  # the outputs themselves
    for name, ck in variants.items():
        nn.value_and_grad(net, x, y, checkpoints=ck)
        peak, (_, g) = _peak(lambda ck=ck: nn.value_and_grad(net, x, y, checkpoints=ck))
        same = all(np.array_equal(a, b) for a, b in zip([*ref.dW[1:], *ref.db[1:]],
                                                        [*g.dW[1:], *g.db[1:]], strict=True))
        t = _median(lambda ck=ck: nn.value_and_grad(net, x, y, checkpoints=ck), 5)
        rows[name] = (peak, peak - grads_bytes, t, same)
    import jax

    jax.config.update("jax_enable_x64", True)
    sigma = jax.numpy.tanh

    def hidden(a, W, b):
        return sigma(a @ W.T + b)

    def output(a, W, b):
        return a @ W.T + b

    def J(W, b, x, y, remat):  # W, b as in nn.Network: [None, W[1], ..., W[r]]
        a = x
        for k in range(1, len(W)):
            f = output if k == len(W) - 1 else hidden
            a = (jax.checkpoint(f) if remat else f)(a, W[k], b[k])
        d = y - a
        return 0.5 * jax.numpy.sum(d * d) / x.shape[0]

    for remat in (False, True):
        fn = jax.jit(jax.grad(lambda W, b, x, y, remat=remat: J(W, b, x, y, remat), argnums=(0, 1)))
        mem = fn.lower(net.W, net.b, x, y).compile().memory_analysis()
        jax.block_until_ready(fn(net.W, net.b, x, y))
        t = _median(lambda fn=fn: jax.block_until_ready(fn(net.W, net.b, x, y)), 5)
        rows[f"jax {'checkpoint' if remat else 'plain'}"] = (
            mem.output_size_in_bytes + mem.temp_size_in_bytes, mem.temp_size_in_bytes, t, None)
    _, plain_extra, plain_t, _ = rows["plain"]
    print(f"\nNetwork: depth {r}, width {width}, batch {batch}, tanh (one activation array "
          f"{batch * width * 8 / 2**20:.1f} MiB, the gradients {grads_bytes / 2**20:.1f} MiB)")
    print(f"{'':>16} {'peak MiB':>9} {'beyond grads':>13} {'/ plain':>8} {'time s':>8} "
          f"{'/ plain':>8}  bit for bit")
    for name, (peak, extra, t, same) in rows.items():
        print(f"{name:>16} {peak / 2**20:9.1f} {extra / 2**20:13.1f} {extra / plain_extra:8.3f} "
              f"{t:8.3f} {t / plain_t:8.3f}  {'' if same is None else same}")
    print("  testbed rows: peak traced memory of the call (tracemalloc), and beyond the gradients "
          "it returns;\n  jax rows: XLA's own analysis of the compiled gradient, its output and "
          "temporary buffers, and the temporaries alone\n  (XLA may place activations in the "
          "gradients' output buffers before it writes them); time ratios are to testbed's plain")
    _, s_extra, s_t, _ = rows["sqrt"]
    print(f"  sqrt(L): memory beyond the gradients {s_extra / plain_extra:.3f} of plain, time "
          f"{s_t / plain_t:.3f} x plain (one more forward pass)")


def circuit_part(N: int, s: int) -> None:
    rng = np.random.default_rng(0)
    gc.disable()
    c = random_circuit(rng, N, 10, "deep")
    gc.enable()
    gc.freeze()
    x = rng.uniform(-2, 2, 10)
    cold_plain, _ = _peak(lambda: testbed.value_and_grad(c, x))  # the first calls make plans
    cold_ck, _ = _peak(lambda: testbed.value_and_grad(c, x, checkpoints=s))
    plain_peak, (f0, g0) = _peak(lambda: testbed.value_and_grad(c, x))
    ck_peak, (f1, g1) = _peak(lambda: testbed.value_and_grad(c, x, checkpoints=s))
    plan_bytes = sum(a.nbytes for S in C._segment_circuits(c, C._plan(c, C.default_segments(s),
                                                                          "slots"))
                     for a in (S.op, S.a0, S.a1, S.consts, S.level))
    n_seg = len(C._plan(c, C.default_segments(s), "slots"))
    t = C.revolve(n_seg, s).repetitions
    t_plain = _median(lambda: testbed.value_and_grad(c, x), 5)
    t_ck = _median(lambda: testbed.value_and_grad(c, x, checkpoints=s), 5)
    ratio = t_ck / t_plain
    print(f"\nDeep circuit N = {c.size}, l = 10, s = {s} snapshots over {n_seg} segments "
          f"(repetition number t = {t}), compiled executor")
    print(f"  peak memory, warm calls: plain {plain_peak / 2**20:.1f} MiB, checkpointed "
          f"{ck_peak / 2**20:.2f} MiB"
          f" = {ck_peak / plain_peak:.3f} of plain (target <= 0.1): "
          f"{'met' if ck_peak <= plain_peak / 10 else 'NOT met'}")
    print(f"  first calls (plans made, kept with the circuit): plain {cold_plain / 2**20:.1f} MiB, "
          f"checkpointed {cold_ck / 2**20:.1f} MiB, of which the segment circuits' structure "
          f"{plan_bytes / 2**20:.1f} MiB ({plan_bytes / c.size:.0f} B a node: a segmented copy of the "
          "circuit)")
    print(f"  time: plain {t_plain:.3f} s, checkpointed {t_ck:.3f} s = {ratio:.2f} x (target <= (1 + t)"
          f" x 1.3 = {(1 + t) * 1.3:.1f}): {'met' if ratio <= (1 + t) * 1.3 else 'NOT met'}")
    print(f"  gradient bit for bit equal: {bool(np.array_equal(g0, g1))}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        network_part(16, 128, 64)
        circuit_part(10**5, 10)
    else:
        network_part(64, 512, 256)
        circuit_part(10**6, 10)


if __name__ == "__main__":
    main()
