"""Study `complexity`: the backprop theorem against finite differences (docs/theory.md, "Differentiable
circuits"; Baur & Strassen 1983; Griewank & Walther 2008, ch. 4).

Theorem: a circuit of size N computing f: R^l -> R has a gradient computable in O(N + l) time by a
circuit of size O(N); finite differences need l + 1 evaluations, O(N l) time:

    ops(grad) <= C ops(f)  with C independent of N and l       (C = 3 for the multiplications and
                                                                divisions of + - * / circuits:
                                                                Baur & Strassen 1983)
    ops(fd_forward) = (l + 1) N,   ops(fd_central) = 2 l N

Measured on seeded random circuits (testbed.random_circuits, families "wide": operands drawn from
all earlier nodes, depth ~ log N, level-vectorised executor from N ~ 10^4 on; "deep": operands
from the last few nodes, depth ~ N, node by node) and on deep networks (testbed.nn): op counts,
the scalar rule applications the executors actually ran (`testbed.evaluate.counting`), and median
wall times of forward, grad (value_and_grad), jvp, hvp and finite differences, with JAX beside
them where it compiles.

Sweeps in l hold the circuit (or network) and the point fixed and vary l', the number of free
inputs: the other inputs are held as constants at their values (`studies._timing.fix_inputs`), so
N and every operation stay the same and only l' changes, up to l' ~ N.

Wall-time exponents are least-squares slopes of log(time) against log(size) with 95% t-intervals,
fitted within one executor regime and where the fixed per-call overhead is negligible (FULL["fit"]);
a claim passes when the interval lies inside its tolerance (`studies._claims`).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

import testbed
import testbed.nn
from testbed.costs import muldiv, op_counts, total
from testbed.evaluate import counting, executor_of
from testbed.random_circuits import BOX, DEFAULT_OPS, RATIONAL_OPS

from ._builders import agreement, at_most, exact, interval, slope_text
from ._claims import claims_table, fmt
from ._engine import (
    IN_CACHE_MIN,
    JAX_RTOL,
    KEEP_MIN_N,
    LLC_BYTES,
    SIZES_N,
    SLOPE_ONE,
    WIDE_FIT_N,
    agrees,
    built_circuit,
    grad_limit,
    in_cache,
    in_cache_claim,
    in_cache_max,
    jax_timed,
    memory_probe,
    mlp_forward_ops,
    mlp_grad_ops,
    net_params,
    net_sizes,
    sci,
    sweep_generator,
    with_memory_probe,
)
from ._fits import loglog_fit, mean_interval
from ._plots import finish, reference
from ._seeds import generator
from ._study import Study
from ._timing import fix_inputs, import_jax, median_walls, paired_log_ratio, timings

WHERE = "docs/theory.md: Differentiable circuits (backprop theorem: O(N + l) vs l + 1 evaluations)"
WHERE_NN = "docs/theory.md: Backprop algorithm (forward and backward passes O(N))"
WHERE_BS = "Baur & Strassen, TCS 22 (1983)"
WHERE_JAX = "testbed's cross-validation against JAX (jax.grad, jax.jvp)"
GRAD_BOUND = 5  # testbed's guarantee grad(c).size <= 5 N + 1, Griewank & Walther's classic bound
BAUR_STRASSEN = 3
FLAT = 0.1  # "independent of l": the slope's 95% interval inside [-FLAT, FLAT]
# the last step dJ/dx: time(grad with dJ/dx) / time(grad without) between 1 (it costs something)
# and 1 + DX_SLACK x the extra the op count predicts (fixed before any data: BLAS runs the extra
# matmul, of the same shapes as the backward pass's others, at about their speed)
DX_SLACK = 2.0
# circuits: finite differences only where their op count, (l + 1) N or 2 l N, is below this
FD_MAX_OPS = {"forward": 400_000_000, "central": 100_000_000}
ACTIVATION = "tanh"
# jax vs testbed: 1e-9 relative, not the suite's 1e-10: circuits of up to 10^4 nodes through XLA's
# libm, and BLAS and XLA summing a batch in different orders, accumulate more ulp-level differences
# than the suite's small cases; the test suite is the 1e-10 check


NET_WIDTH = 32


def _net_l_sweep(width: int) -> list[int]:
    """l' = 16, 32, 64, ... and all the network's parameters."""
    full = net_params(width)
    return [2**k for k in range(4, 20) if 2**k < full] + [full]


# the bytes a slot of value_and_grad reads at random (value and cotangent: 2 x 8), for the wide
# family's in-cache range (studies._engine.in_cache_max)
SLOT_BYTES = 16


FULL = {
    "N": {"wide": SIZES_N, "deep": SIZES_N}, "l_fixed": 10,
    "fd_N_max": 10**5,  # FD against N is no claim; at 10^6 one call takes 10-20 s
    # jvp and hvp against N are no claim here (the hvp study fits hvp): timed up to this N only
    "hvp_N_max": 10**5,
    # FD against l' on one circuit of N_fixed_fd nodes and as many inputs: l'/N up to ~1
    # l' = 1..N: with the compiled executor, fd_grad is l' + 1 forward passes from l' = 1 on, and
    # its claim fits the time against the number of evaluations, l' + 1
    "N_fixed_fd": 5000, "l_fd": [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
    # grad against l' on one circuit of N_fixed_grad nodes and as many inputs
    "N_fixed_grad": 10**5, "l_grad": [1, 10, 100, 1000, 3000, 10**4, 3 * 10**4, 10**5],
    "rational_N": [10**2, 10**3, 10**4, 10**5],
    "jax_N_max": 10**4, "jax_unrolled_N_max": 100, "jax_check_N_max": 1000,
    "net_width": NET_WIDTH, "net_m": [16, 64, 256, 512, 1024, 2048, 4096, 8192],
    "net_l_batch": 256, "net_l": None,  # None: _net_l_sweep(net_width)
    "net_widths": [4, 8, 16, 32, 64, 128, 256], "net_jax": True,
    "budget": 0.5,  # seconds per timed method and cell: cheap calls get more repeats (3..15)
    # fit ranges (the fixed per-call overhead negligible): wide circuits run level-vectorised,
    # and below ~10^5 nodes their per-level numpy calls (depth x primitives) still dominate;
    # deep circuits run node by node, linear from ~10^3 on (fitted from 10^4); finite
    # differences evaluate l' + 1 points in one batch, one numpy call per node (or group) on
    # l' + 1 values: ~1 us per call against ~1 ns per value, so l' >= 1000; networks pay ~0.1 ms
    # of Python per call, negligible from ~10^6 ops (batch 256) on; network FD is a loop of
    # l' + 1 whole forward passes, linear from the first l' = 16
    "fit": {"wide": WIDE_FIT_N, "deep": 10**4, "l_fd": 1, "net_m": 256},
}
QUICK = {
    "N": {"wide": [100, 10**4, 2 * 10**4, 3 * 10**4], "deep": [100, 1000, 2000, 3000]}, "l_fixed": 10,
    "fd_N_max": 10**4, "hvp_N_max": 10**4,
    "N_fixed_fd": 3000, "l_fd": [1, 10, 100, 300],
    "N_fixed_grad": 3000, "l_grad": [1, 10, 100, 300, 3000],
    "rational_N": [100, 1000, 10**4],
    "jax_N_max": 100, "jax_unrolled_N_max": 0, "jax_check_N_max": 100, "jax_families": ("wide",),
    "net_width": 8, "net_m": [16, 64, 128, 256],
    "net_l_batch": 64, "net_l": None,
    "net_widths": [8, 16, 32], "net_jax": False,
    "budget": 0.05,
    "fit": {"wide": 10**4, "deep": 1000, "l_fd": 10, "net_m": 64},
}


# --- circuits -------------------------------------------------------------------------------------


def _circuit_counts(c: testbed.Circuit) -> dict:
    counts = {mode: op_counts(c, mode) for mode in
              ("forward", "grad", "jvp", "hvp", "fd_forward", "fd_central")}
    row = {f"ops_{mode}": total(cnt) for mode, cnt in counts.items()}
    row["muldiv_forward"] = muldiv(counts["forward"])
    row["muldiv_grad"] = muldiv(counts["grad"])
    return row


def jax_transforms_agree(c: testbed.Circuit, x: np.ndarray, v: np.ndarray) -> dict:
    """Value, jvp and hvp of testbed against jax.jit of the same transform of to_jax(c, 'scan')."""
    jax = import_jax()
    f = testbed.to_jax(c, method="scan")
    xj, vj = jax.numpy.asarray(x), jax.numpy.asarray(v)
    value = jax.jit(f)(xj)
    tangent = jax.jit(lambda a, t: jax.jvp(f, (a,), (t,))[1])(xj, vj)
    hv = jax.jit(lambda a, t: jax.jvp(jax.grad(f), (a,), (t,))[1])(xj, vj)
    return {"jax_value_agrees": agrees(value, c(x)),
            "jax_jvp_agrees": agrees(tangent, testbed.jvp(c, x, v)[1]),
            "jax_hvp_agrees": agrees(hv, testbed.hvp(c, x, v))}


def counted_fd(c: testbed.Circuit, x: np.ndarray, scheme: str) -> int:
    """Scalar rule applications that fd_grad actually ran (nodes x points, every sweep)."""
    with counting() as cnt:
        testbed.fd_grad(c, x, scheme=scheme)
    return int(sum(cnt.values()))


def circuit_cell(p: dict, seed: int) -> dict:
    """One random circuit: exact op counts, counted FD applications, round-robin median wall times.

    On the l sweeps (p["l_max"] set) the circuit is drawn with l_max inputs, once per (family, N,
    l_max), and its inputs l', ..., l_max - 1 are then held as constants: every cell of a sweep
    times the same operations at the same point.
    """
    family, n, l = p["family"], p["N"], p["l"]
    ops = tuple(sorted(RATIONAL_OPS)) if p["kind"] == "rational" else DEFAULT_OPS
    if p.get("l_max"):
        rng = generator(seed, "complexity", "l-sweep", family, n, p["l_max"])
        full, build = built_circuit(rng, n, p["l_max"], family, ops)
        x_full = rng.uniform(-BOX, BOX, p["l_max"])
        c, x = fix_inputs(full, l, x_full), x_full[:l]
    else:
        rng = (sweep_generator(seed, family, n, l) if p["kind"] == "circuit"
               else generator(seed, "complexity", p["kind"], family, n, l))
        c, build = built_circuit(rng, n, l, family, ops)
        x = rng.uniform(-BOX, BOX, l)
    v = rng.standard_normal(c.l)
    row = {"N": c.size, "l": c.l, "depth": c.depth, **_circuit_counts(c), "wall_build": build}
    if p["kind"] == "rational":  # Baur-Strassen: counts only
        return row
    calls = {"forward": lambda: c(x), "grad": lambda: testbed.value_and_grad(c, x)}
    if p["jvp"]:
        calls["jvp"] = lambda: testbed.jvp(c, x, v)
    if p["hvp"]:  # the fused forward-over-reverse sweep: no gradient circuit is built
        calls["hvp"] = lambda: testbed.hvp(c, x, v)
    # the l' sweep times forward differences only (its claim); central ones are counted and
    # timed on the N sweep
    for scheme in (("forward", "central") if p["sweep"] == "N" else ("forward",)) if p["fd"] else ():
        if row[f"ops_fd_{scheme}"] <= FD_MAX_OPS[scheme]:
            row[f"counted_fd_{scheme}"] = counted_fd(c, x, scheme)
            calls[f"fd_{scheme}"] = lambda s=scheme: testbed.fd_grad(c, x, scheme=s)
    if p["sweep"] == "N":
        calls["gather"] = memory_probe(c)
    row.update({f"wall_{name}": t for name, t in median_walls(calls, p["budget"]).items()})
    row["executor"] = executor_of(c)
    if p["jax"]:
        g = testbed.value_and_grad(c, x)[1]
        for method in p["jax"]:
            r = jax_timed(c, x, g, method, p["budget"])
            pre = "jax" if method == "scan" else "jax_unrolled"
            row.update({f"wall_{pre}_compile": r["compile"], f"wall_{pre}_grad": r["run"],
                        f"{pre}_agrees": r["agrees"]})
    if p.get("jax_check"):
        row.update(jax_transforms_agree(c, x, v))
    return row


# --- deep networks ----------------------------------------------------------------------------------


def mlp_fd_grad(net: testbed.nn.Network, x: np.ndarray, y: np.ndarray, n_free: int | None = None,
                h: float = float(np.sqrt(np.finfo(float).eps))) -> tuple[np.ndarray, int]:
    """Forward differences over the first n_free entries of theta = ravel_params(net) (all by
    default): (those gradient entries, number of evaluations of J).

    dJ/dtheta_i ~ (J(theta + h_i e_i) - J(theta)) / h_i with h_i = h max(1, |theta_i|): one
    evaluation at theta, then one per free parameter, l' + 1 in all.
    """
    nn = testbed.nn
    theta = nn.ravel_params(net)
    n_free = theta.size if n_free is None else int(n_free)
    W, b = nn.unravel_params(theta, net.sizes)  # views into theta: perturbing theta moves them
    work = nn.Network(W, b, net.activation)
    J0, evals = nn.loss(work, x, y), 1
    g = np.empty(n_free)
    for i in range(n_free):
        old = theta[i]
        theta[i] = old + h * max(1.0, abs(old))
        step = theta[i] - old  # the step actually taken
        g[i] = (nn.loss(work, x, y) - J0) / step
        evals += 1
        theta[i] = old
    return g, evals


def mlp_grad_first(net: testbed.nn.Network, x: np.ndarray, y: np.ndarray, n_free: int) -> np.ndarray:
    """The first n_free entries of dJ/dtheta by backprop (testbed.nn.value_and_grad, no dJ/dx).

    theta starts with W[1], which every backward path reaches last: whatever n_free >= 1, reverse
    mode runs the whole backward pass; the entries written out are the only part that grows with
    n_free (the "+ l" of O(N + l)).
    """
    _, g = testbed.nn.value_and_grad(net, x, y, need_dx=False)
    out, pos = np.empty(n_free), 0
    for piece in (p for W, b in zip(g.dW[1:], g.db[1:], strict=True) for p in (W, b)):
        take = min(piece.size, n_free - pos)
        out[pos:pos + take] = piece.ravel()[:take]
        pos += take
        if pos == n_free:
            break
    return out


def _jax_mlp(net: testbed.nn.Network, x: np.ndarray, y: np.ndarray, grads: object,
             budget: float) -> dict:
    jax = import_jax()
    fn = jax.jit(jax.grad(testbed.nn.to_jax_loss(net), argnums=(0, 1)))
    t0 = time.perf_counter()
    gW, gb = fn(net.W, net.b, x, y)
    compile_s = time.perf_counter() - t0
    run = median_walls({"g": lambda: jax.block_until_ready(fn(net.W, net.b, x, y))}, budget)["g"]
    ok = all(agrees(a, e) for a, e in zip([*gW[1:], *gb[1:]], [*grads.dW[1:], *grads.db[1:]], strict=True))
    return {"wall_jax_compile": compile_s, "wall_jax_grad": run, "jax_agrees": ok}


def mlp_cell(p: dict, seed: int) -> dict:
    """One network (w, w, w, w, 1) on a batch of m examples.

    sweep "N": counts and median wall times of forward, grad with and without dJ/dx, hvp (and JAX);
    sweep "l": the same network for every cell, FD and backprop of the first l' parameters;
    sweep "count": op counts only.
    """
    nn = testbed.nn
    w, m = p["width"], p["m"]
    sizes = net_sizes(w)
    rng = generator(seed, "complexity", "mlp", w, m)
    net = nn.init_network(sizes, ACTIVATION, "xavier_normal", rng)
    x = rng.standard_normal((m, w))
    y = rng.standard_normal((m, sizes[-1]))
    N = mlp_forward_ops(sizes, m)
    l = p.get("l_free", net.n_params)
    row = {"N": N, "l": l, "depth": net.depth, "width": w, "batch": m, "n_params": net.n_params,
           "ops_forward": N, "ops_grad": mlp_grad_ops(sizes, m),
           "ops_grad_dx": mlp_grad_ops(sizes, m, need_dx=True)}
    if p["sweep"] == "count":
        return row
    calls = {"forward": lambda: nn.loss(net, x, y)}
    if p["sweep"] == "N":
        V = ([None] + [rng.standard_normal(Wk.shape) for Wk in net.W[1:]],
             [None] + [rng.standard_normal(bk.shape) for bk in net.b[1:]])
        calls.update({"grad": lambda: nn.value_and_grad(net, x, y, need_dx=False),
                      "grad_dx": lambda: nn.value_and_grad(net, x, y, need_dx=True),
                      "hvp": lambda: nn.hvp(net, x, y, V)})
        samples = timings(calls, p["budget"])
        # the round-robin samples pair up: the ratio within each round cancels slow rounds
        row["wall_ratio_dx"] = float(np.exp(paired_log_ratio(samples["grad_dx"], samples["grad"])))
    else:
        row["ops_fd_forward"] = (l + 1) * N
        row["counted_fd_evals"] = mlp_fd_grad(net, x, y, l)[1]
        calls.update({"grad": lambda: mlp_grad_first(net, x, y, l),
                      "fd_forward": lambda: mlp_fd_grad(net, x, y, l)})
        samples = timings(calls, p["budget"])
    row.update({f"wall_{name}": float(np.median(t)) for name, t in samples.items()})
    if p.get("jax"):
        row.update(_jax_mlp(net, x, y, nn.value_and_grad(net, x, y, need_dx=False)[1],
                            p["budget"]))
    return row


# --- the study ------------------------------------------------------------------------------------


def _cfg(quick: bool) -> dict:
    cfg = dict(QUICK if quick else FULL)
    if cfg["net_l"] is None:
        cfg["net_l"] = _net_l_sweep(cfg["net_width"])
    return cfg


def grid(quick: bool) -> list[dict]:
    """Circuits: N sweep at fixed l, l' sweeps on one circuit per family (FD; grad), rational
    circuits (counts only); networks: a batch sweep at fixed width, an l' sweep on one network,
    op counts by width."""
    cfg = _cfg(quick)
    jax_families = cfg.get("jax_families", ("wide", "deep"))
    base = {"budget": cfg["budget"], "quick": quick, "attempt": 0}
    cells = []

    def jax_methods(family: str, n: int) -> list[str]:  # on the N sweep
        if family not in jax_families or n > cfg["jax_N_max"]:
            return []
        return ["scan"] + (["unrolled"] if n <= cfg["jax_unrolled_N_max"] else [])

    for family in ("wide", "deep"):
        for n in cfg["N"][family]:
            cells.append({"kind": "circuit", "sweep": "N", "family": family, "N": n,
                          "l": cfg["l_fixed"], "l_max": 0, "hvp": n <= cfg["hvp_N_max"],
                          "jvp": n <= cfg["hvp_N_max"],
                          "fd": n <= cfg["fd_N_max"], "jax": jax_methods(family, n),
                          "jax_check": family in jax_families and n <= cfg["jax_check_N_max"],
                          **base})
        for sweep, n, ls, fd in (("l_fd", cfg["N_fixed_fd"], cfg["l_fd"], True),
                                 ("l_grad", cfg["N_fixed_grad"], cfg["l_grad"], False)):
            for l in ls:
                cells.append({"kind": "circuit", "sweep": sweep, "family": family, "N": n, "l": l,
                              "l_max": max(ls), "hvp": False, "jvp": False, "fd": fd, "jax": [],
                              "jax_check": False, **base})
        for n in cfg["rational_N"]:
            cells.append({"kind": "rational", "sweep": "N", "family": family, "N": n,
                          "l": cfg["l_fixed"], "l_max": 0, "hvp": False, "jvp": False,
                          "fd": False, "jax": [], "jax_check": False, **base})
    w = cfg["net_width"]
    for m in cfg["net_m"]:
        cells.append({"kind": "mlp", "sweep": "N", "family": "mlp", "width": w, "m": m,
                      "jax": cfg["net_jax"], **base})
    for l in cfg["net_l"]:
        cells.append({"kind": "mlp", "sweep": "l", "family": "mlp", "width": w,
                      "m": cfg["net_l_batch"], "l_free": l, "jax": False, **base})
    for width in cfg["net_widths"]:
        cells.append({"kind": "mlp", "sweep": "count", "family": "mlp", "width": width,
                      "m": cfg["net_l_batch"], "jax": False, **base})
    return cells


def _in_fit(p: dict, cfg: dict) -> bool:
    """Whether a cell feeds a fitted timing claim (see FULL["fit"])."""
    fit = cfg["fit"]
    if p["kind"] == "circuit":
        return {"N": p["N"] >= fit.get(p["family"], np.inf), "l_grad": True,
                "l_fd": p["l"] >= fit["l_fd"]}[p["sweep"]]
    if p["kind"] == "mlp":
        return p["sweep"] == "l" or (p["sweep"] == "N" and p["m"] >= fit["net_m"])
    return False


def claims_fed(p: dict) -> set[str]:
    """The ids of the timing claims a cell's measurement feeds (empty outside the fit ranges)."""
    # the wide family's in-cache claim has its own fit range, below the DRAM one
    if (p["kind"] == "circuit" and p["sweep"] == "N" and p["family"] == "wide"
            and in_cache(p["N"], SLOT_BYTES)):
        return {"grad-linear-in-n-wide-in-cache"}
    if not _in_fit(p, FULL):
        return set()
    if p["kind"] == "circuit":
        return {{"N": "grad-linear-in-n", "l_fd": "fd-linear-in-l",
                 "l_grad": "grad-flat-in-l"}[p["sweep"]] + f"-{p['family']}"}
    return {"net-grad-linear-in-n", "net-dx-step"} if p["sweep"] == "N" else \
        {"net-fd-linear-in-l", "net-grad-flat-in-l"}


def alone(p: dict) -> bool:
    """The in-cache claim's cells run with no cell beside them: the two cores share the
    last-level cache, and a neighbour streaming a far-regime circuit through DRAM evicts the arrays
    the claim keeps inside it (measured on 2026-12-04: hvp's re-measurement, run beside such
    cells, timed its four in-cache cells 1.21-1.49x slower than their first measurement)."""
    return "grad-linear-in-n-wide-in-cache" in claims_fed(p)


def remeasure(p: dict, attempt: int, inconclusive: frozenset[str]) -> dict | None:
    """One more measurement of a cell an inconclusive timing claim rests on: twice the time budget
    (more samples per median), no JAX and no untested methods; None for quick mode and for cells
    that feed no inconclusive claim."""
    if p.get("quick") or not claims_fed(p) & inconclusive:
        return None
    q = {**p, "attempt": attempt, "budget": 2 * FULL["budget"], "jax": [] if p["kind"] ==
         "circuit" else False, "jax_check": False}
    if p["kind"] == "circuit" and p["sweep"] == "N":
        q.update(fd=False, jvp=False, hvp=False)
    return q


REMEASURE_BUDGET_S = 60.0


def cell(p: dict, seed: int) -> pd.DataFrame:
    """One circuit or network of the grid: one row."""
    row = mlp_cell(p, seed) if p["kind"] == "mlp" else circuit_cell(p, seed)
    keys = {"kind": p["kind"], "sweep": p["sweep"], "family": p["family"],
            "N_nominal": p.get("N", np.nan), "l_nominal": p.get("l", p.get("l_free", np.nan)),
            "l_max": p.get("l_max", np.nan), "attempt": p.get("attempt", 0)}
    return pd.DataFrame([{**keys, **row}])


KIND_ORDER = {"circuit": 0, "rational": 1, "mlp": 2}


def aggregate(raw: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """The rows in a fixed order (re-measurements of a point beside it, `attempt` 1, 2, ...), with
    the fit ranges marked (`fit_grad`, `fit_fd`); every row counts in the fits."""
    cfg = _cfg(quick)
    fit = cfg["fit"]
    t = raw.assign(_k=raw["kind"].map(KIND_ORDER))
    keys = [c for c in ("_k", "sweep", "family", "N_nominal", "l_nominal", "width", "batch",
                        "attempt") if c in t.columns]
    t = t.sort_values(keys, ignore_index=True, na_position="first", kind="stable").drop(columns="_k")
    circ, mlp = t["kind"] == "circuit", t["kind"] == "mlp"
    sweep = t["sweep"]
    big = t["N_nominal"] >= t["family"].map({"wide": fit["wide"], "deep": fit["deep"]})
    batch = t["batch"] if "batch" in t.columns else pd.Series(np.nan, index=t.index)
    t["fit_grad"] = ((circ & (sweep == "N") & big) | (circ & (sweep == "l_grad"))
                     | (mlp & (sweep == "N") & (batch >= fit["net_m"])) | (mlp & (sweep == "l")))
    t["fit_fd"] = ((circ & (sweep == "l_fd") & (t["l"] >= fit["l_fd"])) | (mlp & (sweep == "l")))
    t["fd_evals"] = np.where(sweep == "N", np.nan, t["l"] + 1)  # forward differences: l' + 1
    # the wide family's in-cache regime (see IN_CACHE_MIN)
    t["fit_cache"] = (circ & (sweep == "N") & (t["family"] == "wide")
                      & in_cache(t["N_nominal"], SLOT_BYTES))
    front = ["kind", "sweep", "family", "N_nominal", "l_nominal", "l_max", "attempt", "N", "l",
             "fd_evals", "depth", "executor", "width", "batch", "n_params", "fit_grad", "fit_fd",
             "fit_cache"]
    front = [c for c in front if c in t.columns]
    ops = sorted(c for c in t.columns if c.startswith(("ops_", "muldiv_", "counted_")))
    walls = [c for c in t.columns if c.startswith("wall_")]
    rest = [c for c in t.columns if c not in front + ops + walls]
    return t[front + ops + rest + walls]


# --- fits and claims ------------------------------------------------------------------------------

# "a/b": the ratio of two times measured in the same cell (round-robin). It cancels what the
# machine does to the whole cell (background load, BLAS efficiency of the cell's shapes) and
# keeps what the algorithm adds; shown beside the claims, which test the times themselves.
METHODS = ("forward", "grad", "grad_dx", "jvp", "hvp", "fd_forward", "fd_central", "jax_grad",
           "gather", "grad/forward", "fd_forward/forward")


def _fit(t: pd.DataFrame, x: str, method: str) -> dict:
    cols = [f"wall_{m}" for m in method.split("/")]
    if not set(cols) <= set(t.columns):
        return {"slope": np.nan, "lo": np.nan, "hi": np.nan, "points": 0, "from": np.nan,
                "to": np.nan}
    d = t[[x, *cols]].dropna()
    y = d[cols[0]] / d[cols[1]] if len(cols) == 2 else d[cols[0]]
    b, lo, hi, n = loglog_fit(d[x], y)
    return {"slope": b, "lo": lo, "hi": hi, "points": n,
            "from": d[x].min() if n else np.nan, "to": d[x].max() if n else np.nan}


def fits(table: pd.DataFrame) -> pd.DataFrame:
    """Log-log slopes of every timed method over the marked fit ranges.

    x = N on the N sweeps, x = l' on the l sweeps; rows with fit_fd for finite differences and
    for everything on the circuits' FD sweep, rows with fit_grad otherwise; jax_grad over every
    row that has it (circuits up to N = jax_N_max), beside the others, not used by a claim.
    Re-measured rows count as further points.
    """
    rows = []
    for (kind, sweep, family), t in table.groupby(["kind", "sweep", "family"], sort=False):
        if kind == "rational" or sweep == "count":
            continue
        for method in METHODS:
            # finite differences against their evaluations, l' + 1 (the theorem's count)
            x = "N" if sweep == "N" else "fd_evals" if "fd_" in method else "l"
            if method == "jax_grad":
                sel = t
            elif sweep == "l_fd" or "fd_" in method:
                sel = t[t["fit_fd"].astype(bool)]
            else:
                sel = t[t["fit_grad"].astype(bool)]
            f = _fit(sel, x, method)
            if f["points"] == 0:
                continue
            fixed = sel["N" if x != "N" else "l"]
            ex = ",".join(sorted(sel["executor"].dropna().unique())) if "executor" in sel else ""
            rows.append({"kind": kind, "sweep": sweep, "family": family, "x": x, "method": method,
                         "fixed": f"{fixed.min():.4g}..{fixed.max():.4g}", "executors": ex, **f})
    return pd.DataFrame(rows, columns=["kind", "sweep", "family", "x", "method", "fixed",
                                       "executors", "slope", "lo", "hi", "points", "from", "to"])


def _get(f: pd.DataFrame, kind: str, sweep: str, family: str, method: str) -> dict:
    r = f[(f["kind"] == kind) & (f["sweep"] == sweep) & (f["family"] == family)
          & (f["method"] == method)]
    if len(r) == 0:
        return {"slope": np.nan, "lo": np.nan, "hi": np.nan, "points": 0, "from": np.nan,
                "to": np.nan, "fixed": "none"}
    return r.iloc[0].to_dict()


def _describe(f: dict, x: str, ratio: dict | None = None) -> str:
    text = (f"slope {slope_text(f['slope'], f['lo'], f['hi'])} over {x} = "
            f"{fmt(f['from'])}..{fmt(f['to'])} ({int(f['points'])} points)")
    if ratio is not None and np.isfinite(ratio["slope"]):
        text += ("; the same time relative to one forward pass (same cell): slope "
                 + slope_text(ratio["slope"], ratio["lo"], ratio["hi"]))
    return text


def _fitted(f: pd.DataFrame, kind: str, sweep: str, family: str, method: str,
            fixed: str) -> tuple[str, tuple[float, float]]:
    """(measured text, 95% interval) of a fitted slope: the method's time, beside the same time
    relative to one forward pass, the size held fixed and the executor."""
    g = _get(f, kind, sweep, family, method)
    r = _get(f, kind, sweep, family, f"{method}/forward")
    x = "N" if sweep == "N" else "l' + 1" if "fd_" in method else "l'"
    measured = (_describe(g, x, r) + f"; {fixed} {g['fixed']}"
                + executor_text(f, kind, sweep, family))
    return measured, (g["lo"], g["hi"])


def _forward_shares(f: pd.DataFrame, kind: str, family: str, method: str) -> str | None:
    """The measured cause of a time-against-N slope that does not pass, where there is one: the
    same time relative to one forward pass (same cells) flat at 95% (inside [-FLAT, FLAT]), so the
    bend is the forward pass's as well: the machine's rate over the range, not the method's cost."""
    r = _get(f, kind, "N", family, f"{method}/forward")
    if not (np.isfinite(r["lo"]) and -FLAT <= r["lo"] and r["hi"] <= FLAT):
        return None
    return (f"relative to one forward pass (same cells) its slope is "
            f"{slope_text(r['slope'], r['lo'], r['hi'])}, inside [-{FLAT:g}, {FLAT:g}]: the forward "
            f"pass's time bends alike, the machine's rate over this range rather than the "
            f"{method}'s cost")


def executor_text(f: pd.DataFrame, kind: str, sweep: str, family: str) -> str:
    """'; timed on the compiled executor': which executors the claim's rows ran on."""
    if kind != "circuit" or "executors" not in f.columns:
        return ""
    r = f[(f["kind"] == kind) & (f["sweep"] == sweep) & (f["family"] == family)]
    names = sorted({e for v in r["executors"] for e in str(v).split(",") if e})
    return f"; timed on the {' and '.join(names)} executor" if names else ""


def _ratios(t: pd.DataFrame, num: str, den: str) -> tuple[pd.Series, str]:
    """(num / den per row, where its largest and smallest are): op-count ratios."""
    r = (t[num] / t[den]).replace([np.inf, -np.inf], np.nan) if len(t) else pd.Series(dtype=float)
    if r.notna().sum() == 0:
        return pd.Series(dtype=float), "no data"
    i = r.idxmax()
    return r, (f"max {fmt(r.max(), 4)} at N = {t.loc[i, 'N']}, l = {t.loc[i, 'l']}; min "
               f"{fmt(r.min(), 4)}; {int(r.notna().sum())} rows, N = {t['N'].min()}.."
               f"{t['N'].max()}, l = {t['l'].min()}..{t['l'].max()}")


def _counted_fd(t: pd.DataFrame) -> tuple[bool | None, str]:
    """(counted rule applications of fd_grad = (l + 1) N (forward) and 2 l N (central) in every
    row, the counts): None without counted rows."""
    parts, ok, n = [], True, 0
    for scheme, expect in (("forward", (t["l"] + 1) * t["N"]), ("central", 2 * t["l"] * t["N"])):
        col = f"counted_fd_{scheme}"
        if col not in t.columns:
            continue
        have = t[col].notna()
        same = (t.loc[have, col] == expect[have])
        ok &= bool(same.all())
        n += int(have.sum())
        parts.append(f"{scheme}: {int(same.sum())}/{int(have.sum())} rows")
    if not n:
        return None, "no data"
    ls = t.loc[t.filter(like="counted_fd").notna().any(axis=1), "l"]
    return ok, (f"applications counted while fd_grad ran = the formula in {'; '.join(parts)} "
                f"(l = {ls.min()}..{ls.max()})")


def _net_fd_evals(net: pd.DataFrame) -> tuple[bool | None, str]:
    """(network FD evaluated J exactly l' + 1 times in every row, the counts)."""
    fd = net[(net["sweep"] == "l")]
    evals = fd["counted_fd_evals"] if "counted_fd_evals" in fd.columns else \
        pd.Series(np.nan, index=fd.index)
    fd = fd[evals.notna()]
    if not len(fd):
        return None, "no data"
    ok = evals[fd.index] == fd["l"] + 1
    return bool(ok.all()), (f"evaluations counted = l' + 1 in {int(ok.sum())}/{len(fd)} rows "
                            f"(l' = {fd['l'].min()}..{fd['l'].max()})")


def _jax_checks(table: pd.DataFrame) -> list[tuple[str, int, int]]:
    """(transform, agreeing, checked) for every JAX twin the table holds."""
    cols = {"jax_agrees": "grad (circuits: scan; networks: jit)",
            "jax_unrolled_agrees": "grad (circuits, unrolled)", "jax_value_agrees": "value",
            "jax_jvp_agrees": "jvp", "jax_hvp_agrees": "hvp (jvp of grad)"}
    checks = []
    for col, name in cols.items():
        if col in table.columns:
            v = table[col].dropna().astype(bool)
            if len(v):
                checks.append((name, int(v.sum()), len(v)))
    return checks


def _dx_step(net: pd.DataFrame) -> tuple[str, tuple[float, float], tuple[float, float]]:
    """(measured, 95% interval, tolerance) of time(grad with dJ/dx) / time(grad without): the
    geometric mean over the batch sweep, its tolerance [1, 1 + DX_SLACK (predicted - 1)] from
    the same rows' op counts."""
    d = net[(net["sweep"] == "N") & net["fit_grad"].astype(bool)]
    if "wall_ratio_dx" not in d.columns:
        d = d.assign(wall_ratio_dx=np.nan)
    d = d[d["wall_ratio_dx"].notna()]
    predicted = (d["ops_grad_dx"] / d["ops_grad"]).mean() if len(d) else np.nan
    extra = predicted - 1
    m, lo, hi, n = mean_interval(np.log(d["wall_ratio_dx"]))
    tol = (1.0, 1 + DX_SLACK * extra) if np.isfinite(extra) else (1.0, 1.0)
    measured = (f"time(grad with dJ/dx) / time(grad without): {fmt(np.exp(m), 4)} [95% CI "
                f"{fmt(np.exp(lo), 4)}, {fmt(np.exp(hi), 4)}], geometric mean over {n} batches "
                f"({int(d['batch'].min()) if n else 'nan'}..{int(d['batch'].max()) if n else 'nan'}"
                f"), width {int(d['width'].iloc[0]) if n else 'nan'}; op count predicts "
                f"{fmt(predicted, 4)}")
    return measured, (np.exp(lo), np.exp(hi)), tol


def claims(table: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """The theorem's claims on circuits (per family) and on networks, from the table alone."""
    f = fits(table)
    circ = table[table["kind"] == "circuit"]
    net = table[table["kind"] == "mlp"]
    first = table["attempt"] == 0 if "attempt" in table.columns else pd.Series(True, table.index)
    wide_n = circ[(circ["sweep"] == "N") & (circ["family"] == "wide")]
    slope_ci = "95% CI of the slope"
    rows = [
        at_most("grad-ops-bounded", "circuits: grad ops / forward ops is bounded by a constant "
                "over all N and l", WHERE, *_ratios(circ[first[circ.index]], "ops_grad",
                                                    "ops_forward"), GRAD_BOUND,
                note=" everywhere (testbed's bound; Griewank & Walther 2008: 3-4 with memory moves)"),
        at_most("baur-strassen", "circuits of + - * /: grad mul+div / forward mul+div <= 3",
                WHERE_BS, *_ratios(table[table["kind"] == "rational"], "muldiv_grad",
                                   "muldiv_forward"), BAUR_STRASSEN),
        exact("fd-ops-counted", "circuits: finite differences run (l + 1) N scalar operations "
              "(forward) and 2 l N (central)", WHERE, *_counted_fd(circ),
              "(l + 1) N and 2 l N in every row"),
        *(with_memory_probe(interval(
            f"grad-linear-in-n-{family}", f"circuits ({family}): grad time grows linearly in N at "
            "fixed l" + (" (arrays far beyond the last-level cache)" if family == "wide" else ""),
            WHERE, *_fitted(f, "circuit", "N", family, "grad", "l ="), SLOPE_ONE, quick=quick,
            subject=slope_ci, why_not=_forward_shares(f, "circuit", family, "grad")),
            _get(f, "circuit", "N", family, "gather"))
          for family in ("wide", "deep")),
        in_cache_claim(wide_n, "grad-linear-in-n-wide-in-cache", "grad", SLOT_BYTES, WHERE, quick),
        *(interval(f"fd-linear-in-l-{family}", f"circuits ({family}): forward-difference time "
                   "grows linearly in its l' + 1 evaluations at fixed N (one circuit, l' = 1..N of "
                   "its inputs free)", WHERE, *_fitted(f, "circuit", "l_fd", family, "fd_forward",
                                                       "N ="), SLOPE_ONE, quick=quick,
                   subject=slope_ci) for family in ("wide", "deep")),
        *(interval(f"grad-flat-in-l-{family}", f"circuits ({family}): grad time is independent of "
                   "l' at fixed N (one circuit, l' of its inputs free, l'/N up to ~1)", WHERE,
                   *_fitted(f, "circuit", "l_grad", family, "grad", "N ="), (-FLAT, FLAT),
                   quick=quick, subject=slope_ci) for family in ("wide", "deep")),
        at_most("net-grad-ops-bounded", "networks: grad ops / forward ops is bounded by a constant "
                "over all N and l", WHERE_NN, *_ratios(net[net["sweep"].isin(["N", "count"])],
                                                       "ops_grad", "ops_forward"), GRAD_BOUND,
                note=f" everywhere; -> {fmt(grad_limit(False), 4)} (8/3) for wide layers without "
                     f"dJ/dx, {fmt(grad_limit(True), 4)} with it"),
        exact("net-fd-evals-counted", "networks: finite differences over l' parameters evaluate J "
              "exactly l' + 1 times, (l' + 1) N operations", WHERE_NN, *_net_fd_evals(net),
              "l' + 1 in every row"),
        interval("net-grad-linear-in-n", "networks: grad time grows linearly in N at fixed l "
                 "(batch sweep)", WHERE_NN, *_fitted(f, "mlp", "N", "mlp", "grad", "l ="),
                 SLOPE_ONE, quick=quick, subject=slope_ci,
                 why_not=_forward_shares(f, "mlp", "mlp", "grad")),
        interval("net-fd-linear-in-l", "networks: forward-difference time grows linearly in its "
                 "l' + 1 evaluations at fixed N (one network and batch, FD over its first l' "
                 "parameters)", WHERE_NN, *_fitted(f, "mlp", "l", "mlp", "fd_forward", "N ="),
                 SLOPE_ONE, quick=quick, subject=slope_ci),
        interval("net-grad-flat-in-l", "networks: grad time is independent of l' at fixed N (one "
                 "network and batch, backprop for its first l' parameters)", WHERE_NN,
                 *_fitted(f, "mlp", "l", "mlp", "grad", "N ="), (-FLAT, FLAT), quick=quick,
                 subject=slope_ci),
        interval("net-dx-step", "networks: the last step of the backward pass, dJ/dx = dJ/dz[1] "
                 "W[1], costs the one matmul the op count adds", WHERE_NN, *_dx_step(net),
                 quick=quick, derived=f"[1, 1 + {DX_SLACK:g} x (predicted - 1)]"),
        agreement("jax-agrees", "every transform JAX also computes agrees with testbed's: value, "
                  "grad, jvp, hvp", WHERE_JAX, _jax_checks(table),
                  f"max |jax - testbed| <= {JAX_RTOL:g} max(1, |testbed|) in every check"),
    ]
    return claims_table("complexity", rows, quick)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """The fitted slopes (the claims use the grad and fd_forward rows)."""
    return fits(table)


# --- plots ----------------------------------------------------------------------------------------

# one colour and one marker per method, so that no series hides another
STYLE = {"forward": ("C0", "o"), "grad": ("C1", "s"), "grad_dx": ("C9", "P"), "jvp": ("C2", "^"),
         "hvp": ("C3", "v"), "fd_forward": ("C4", "D"), "fd_central": ("C5", "X"),
         "jax_grad": ("C7", "*"), "jax_unrolled_grad": ("C8", "h")}
LABEL = {"jax_grad": "jax grad (scan; jit for networks)", "jax_unrolled_grad": "jax grad (unrolled)",
         "grad_dx": "grad with dJ/dx", "fd_forward": "FD forward", "fd_central": "FD central"}


def _lines(ax: object, t: pd.DataFrame, x: str, methods: tuple, ls: str = "-",
           tag: str = "") -> None:
    for m in methods:
        col = f"wall_{m}"
        if col in t.columns and t[col].notna().any():
            d = t[[x, col]].dropna().groupby(x, as_index=False)[col].median()
            color, marker = STYLE[m]
            ax.plot(d[x], d[col], ls, marker=marker, ms=5, color=color, mfc="none",
                    label=f"{LABEL.get(m, m)}{tag}")


def plot_n(table: pd.DataFrame, fig) -> None:
    """Circuits: times against N (two families) and the op counts relative to f."""
    fig.set_size_inches(14, 10)
    ax = fig.subplots(2, 2)
    circ = table[table["kind"] == "circuit"]
    for j, family in enumerate(("wide", "deep")):
        a = ax[0, j]
        t = circ[(circ["sweep"] == "N") & (circ["family"] == family)]
        _lines(a, t, "N", ("forward", "grad", "jvp", "hvp", "fd_forward", "fd_central",
                           "jax_grad", "jax_unrolled_grad"))
        fit = t[t["fit_grad"].astype(bool)]
        reference(a, fit["N"], fit["wall_grad"] if "wall_grad" in fit else [],
                  label="slope 1 (theory) through grad's fit range")
        l_fixed = int(t["l"].iloc[0]) if len(t) else "?"
        a.set(xscale="log", yscale="log", xlabel="N (operations)", ylabel="median CPU time per call (s)",
              title=f"circuits ({family}): time against N, l = {l_fixed}")
    a = ax[1, 0]
    t = circ[circ["sweep"] == "N"]
    for family, ls in (("wide", "-"), ("deep", "--")):
        d = t[(t["family"] == family) & (t["attempt"] == 0)]
        for m in ("grad", "jvp", "hvp"):
            color, marker = STYLE[m]
            a.plot(d["N"], d[f"ops_{m}"] / d["ops_forward"], ls, marker=marker, ms=5, mfc="none",
                   color=color, label=f"{m} / f ops ({family})")
    rat = table[table["kind"] == "rational"]
    for family, ls in (("wide", "-"), ("deep", "--")):
        d = rat[rat["family"] == family]
        a.plot(d["N"], d["muldiv_grad"] / d["muldiv_forward"], ls, marker="s", ms=5,
               color="k", label=f"grad / f mul+div, + - * / ({family})")
    a.axhline(BAUR_STRASSEN, color="grey", lw=1, label="Baur-Strassen bound 3")
    a.axhline(GRAD_BOUND, color="grey", lw=1, ls=":", label=f"testbed's bound {GRAD_BOUND}")
    a.set(xscale="log", xlabel="N (operations)", ylabel="operations / forward operations",
          title="circuits: exact op counts relative to f")
    a = ax[1, 1]
    t = circ[(circ["sweep"] == "N") & circ["fit_grad"].astype(bool)]
    for family, marker in (("wide", "o"), ("deep", "s")):
        d = t[t["family"] == family]
        a.plot(d["N"], d["wall_grad"] / d["wall_forward"], marker, color="C1", mfc="none",
               label=f"grad / forward time ({family})")
        a.plot(d["N"], d["ops_grad"] / d["ops_forward"], marker, color="grey", ms=4,
               label=f"grad / forward ops ({family}, theory)")
    a.set(xscale="log", xlabel="N (operations)", ylabel="ratio to one forward pass",
          title="circuits: grad against forward, fit range")
    finish(fig)


def plot_l(table: pd.DataFrame, fig) -> None:
    """Sweeps in l' (one circuit or network, l' inputs free): FD grows as l', grad stays flat."""
    fig.set_size_inches(14, 10)
    ax = fig.subplots(2, 2)
    circ = table[table["kind"] == "circuit"]
    for j, (sweep, methods, method) in enumerate((("l_fd", ("forward", "fd_forward", "fd_central"),
                                                   "fd_forward"),
                                                  ("l_grad", ("forward", "grad"), "grad"))):
        a = ax[0, j]
        n_fixed = []
        for family, ls in (("wide", "-"), ("deep", "--")):
            d = circ[(circ["sweep"] == sweep) & (circ["family"] == family)]
            _lines(a, d, "l", methods, ls, f" ({family})")
            if len(d):
                n_fixed.append(f"{family} N = {int(d['N'].iloc[0])}")
            fit = d[d["fit_fd" if sweep == "l_fd" else "fit_grad"].astype(bool)]
            col = f"wall_{method}"
            if col in fit.columns:
                reference(a, fit["l"], fit[col], 1.0 if sweep == "l_fd" else 0.0,
                          label=f"slope {1 if sweep == 'l_fd' else 0} (theory), {family}")
        a.set(xscale="log", yscale="log", xlabel="l' (free inputs)", ylabel="median CPU time per call (s)",
              title=("circuits: finite differences" if sweep == "l_fd" else "circuits: grad")
              + f" against l' ({'; '.join(n_fixed)})")
    net = table[(table["kind"] == "mlp") & (table["sweep"] == "l")]
    a = ax[1, 0]
    _lines(a, net, "l", ("forward", "grad", "fd_forward"))
    for col, slope in (("wall_fd_forward", 1.0), ("wall_grad", 0.0)):
        if col in net.columns:
            reference(a, net["l"], net[col], slope,
                      label=f"slope {slope:g} (theory), {'FD' if slope else 'grad'}")
    shape = (f"width {int(net['width'].iloc[0])}, batch {int(net['batch'].iloc[0])}, N = "
             f"{int(net['N'].iloc[0])}") if len(net) else ""
    a.set(xscale="log", yscale="log", xlabel="l' (free parameters)", ylabel="median CPU time per call (s)",
          title=f"network: FD and backprop of the first l' parameters ({shape})")
    a = ax[1, 1]
    counts = table[(table["kind"] == "mlp") & table["sweep"].isin(["count", "N"])]
    for sweep, marker, what in (("count", "o", "width sweep"), ("N", "s", "batch sweep")):
        d = counts[(counts["sweep"] == sweep) & (counts["attempt"] == 0)]
        x = d["width"] if sweep == "count" else d["batch"]
        a.plot(x, d["ops_grad"] / d["ops_forward"], marker, color="C1", mfc="none",
               label=f"grad / f ops, no dJ/dx ({what})")
        a.plot(x, d["ops_grad_dx"] / d["ops_forward"], marker, color="C9", mfc="none",
               label=f"grad / f ops, with dJ/dx ({what})")
    a.axhline(grad_limit(False), color="C1", ls=":", label="limit 8/3 (theory, no dJ/dx)")
    a.axhline(grad_limit(True), color="C9", ls=":", label="limit 3 (theory, with dJ/dx)")
    a.set(xscale="log", xlabel="width w (width sweep) or batch m (batch sweep)",
          ylabel="operations / forward operations", title="networks: exact op counts relative to f")
    finish(fig)


def plot_net(table: pd.DataFrame, fig) -> None:
    """Networks against the batch: times, and the cost of the last step dJ/dx."""
    fig.set_size_inches(14, 5.5)
    ax = fig.subplots(1, 2)
    net = table[(table["kind"] == "mlp") & (table["sweep"] == "N")]
    a = ax[0]
    _lines(a, net, "N", ("forward", "grad", "grad_dx", "hvp", "jax_grad"))
    fit = net[net["fit_grad"].astype(bool)]
    if "wall_grad" in fit.columns:
        reference(a, fit["N"], fit["wall_grad"], label="slope 1 (theory) through grad's fit range")
    width = int(net["width"].iloc[0]) if len(net) else "?"
    a.set(xscale="log", yscale="log", xlabel="N (forward operations of the batch)",
          ylabel="median CPU time per call (s)", title=f"network (w = {width}): time against N (batch)")
    a = ax[1]
    if "wall_ratio_dx" in net.columns:
        a.plot(net["batch"], net["wall_ratio_dx"], "o", color="C9", mfc="none",
               label="measured time ratio (paired rounds)")
        pred = net["ops_grad_dx"] / net["ops_grad"]
        a.plot(net["batch"], pred, "-", color="grey", label="op-count ratio (theory)")
        a.fill_between(np.sort(net["batch"].to_numpy(dtype=float)), 1.0,
                       1 + DX_SLACK * (pred.mean() - 1), color="C9", alpha=0.1,
                       label="claim's tolerance")
    a.set(xscale="log", xlabel="batch m", ylabel="time(grad with dJ/dx) / time(grad without)",
          title="networks: the last step dJ/dx")
    finish(fig)



def _notes() -> str:
    f, fit = FULL, FULL["fit"]
    w = f["net_width"]
    return (
        "Random circuits (testbed.random_circuits, seeded; N is the real size c.size: domain "
        "repairs add ~40% to the nominal N of the wide family). N sweep: N_nominal = "
        f"{sci(min(SIZES_N))}..{sci(max(SIZES_N))} (1-2-5, denser above 10^5) at l = "
        f"{f['l_fixed']}, timing forward and grad, and jvp, hvp (the `hvp` study fits it) and "
        f"finite differences up to N = {sci(f['fd_N_max'])} (no claim here). Every circuit is "
        "timed on the compiled executor (numba kernels generated from the primitive table, bit "
        "for bit the sequential executor's numbers; the `executor` column and NAME.json record "
        "it). l' sweeps: ONE circuit per family and sweep, "
        "drawn with as many inputs as its nominal size, of which the first l' are free and the "
        "others held as constants at "
        "their values (`fix_inputs`: same operations, same point, only l' changes): finite "
        f"differences at N_nominal = {sci(f['N_fixed_fd'])}, l' = {min(f['l_fd'])}.."
        f"{sci(max(f['l_fd']))}, fitted against the l' + 1 evaluations they run (the theorem's "
        "count; `fd_evals`) from l' = 1 on (forward differences; central ones are counted and "
        "timed on the "
        f"N sweep wherever 2 l N <= {FD_MAX_OPS['central']:.1e}), and grad at N_nominal = "
        f"{sci(f['N_fixed_grad'])}, l' = "
        f"{min(f['l_grad'])}..{sci(max(f['l_grad']))}: l'/N reaches ~1 in both. FD operation "
        "counts are the scalar rule applications `testbed.evaluate.counting()` saw while fd_grad "
        "ran, not a formula. JAX: `jax.jit(jax.grad(to_jax(c, 'scan')))` (a lax.scan "
        f"interpreter) up to N = {sci(f['jax_N_max'])}, the unrolled jnp version at N = "
        f"{f['jax_unrolled_N_max']} only (its jit compile time explodes beyond a few hundred "
        f"nodes), and value, jvp and hvp (jvp of grad) checked against jax up to N = "
        f"{f['jax_check_N_max']}; compile times in `wall_*compile`. Times (the `wall_*` columns, "
        "so named because they vary between runs) are CPU seconds of the measuring process "
        "(`time.process_time`, all its threads: a competing process on the same core adds little "
        "to them, where it would stretch wall time), except `wall_build` "
        f"(the circuit's build, wall clock; a circuit of >= {sci(KEEP_MIN_N)} nodes is built once "
        "per run and "
        "read back by the cells and re-measurements that draw it again, here and in `hvp`, with "
        "its first build's time) and the compile times, which are wall clock. They are medians of 3-15 "
        "samples per call, timeit-style (a sample times enough consecutive calls to last "
        f"{1000 * f['budget'] / 25:g} ms), taken round-robin across methods after warm-up calls; "
        "cells run two at a time, one per core (one BLAS and one XLA thread each). Fits "
        "(`fit_grad`, `fit_fd`) within one regime of the machine: deep N >= "
        f"{sci(fit['deep'])} (a deep node reads the last few slots, so memory behaves alike at "
        f"every N, and the compiled executor's ~30 us per call is below 1/10 of the time from "
        f"there on); wide N >= {sci(fit['wide'])}, fixed from the caches before any timing (L2 "
        f"1 MiB per core, L3 {LLC_BYTES // 2**20} MiB shared): a wide node reads two slots drawn "
        "from all earlier ones, random reads over the values and cotangents (16 bytes a slot, 32 "
        "for the HVP), which leave the last-level cache as N grows, and the fit keeps to the "
        "regime where those arrays exceed 8 x L3 and nearly every read misses it (a second wide "
        f"claim, specified after the first compiled run had shown that regime still bending at "
        f"10^7, fits the in-cache regime N_nominal {sci(IN_CACHE_MIN)}..{in_cache_max(SLOT_BYTES):.3g}, "
        "16 bytes a slot within the L3; since 2026-12-04 its cells are re-measured like every "
        "timing claim's (the re-measurement plan had left them out) and timed with no other cell "
        "beside them (the cores share the L3, which a far-regime neighbour evicts); `wall_gather`, "
        "a numpy "
        "gather of every node's argument "
        "slots with no arithmetic, measures the reads' own price beside both); circuit FD "
        f"for l' >= {fit['l_fd']}; networks for batch >= {fit['net_m']}. Networks (w, w, w, w, 1), "
        f"{ACTIVATION}, xavier: N = forward ops of the batch (`mlp_forward_ops`), l = "
        f"parameters. Batch sweep at w = {w}, m = {min(f['net_m'])}..{max(f['net_m'])}: forward, "
        "grad without and with dJ/dx (the pictorial view's last step; their time ratio is taken "
        "per round of the round-robin and compared with the op count's), hvp, jax. l' sweep: one "
        f"network (w = {w}, batch {f['net_l_batch']}), l' = 16, 32, ..., {net_params(w)} (all): "
        "FD over the first l' parameters is a loop of l' + 1 loss calls (evaluations counted), "
        "backprop of the same l' entries runs the whole backward pass for every l' >= 1 (theta "
        "starts with W[1], which the backward pass reaches last), so what varies with l' is only "
        "the entries written out. grad / forward ops tend to 8/3 for wide layers without dJ/dx "
        "(3 forward matmuls, 5 backward) and 3 with it. A timed claim is re-measured (the cells "
        f"of its fit range, twice the time budget, rows pooled) while inconclusive, within "
        f"{REMEASURE_BUDGET_S:g} s per run. Chosen after seeing data: the l' sweeps' sizes (the "
        f"FD sweep moved from N = 5 10^4 to {sci(f['N_fixed_fd'])} so that l'/N reaches 1 within the "
        "time budget, on the numpy executors) and the deep fit threshold, set on an earlier "
        "run's per-call overheads; for the compiled executor (this run) the sizes were extended "
        "to 10^7 and l' = 1..N, the FD claims refitted against l' + 1 and the wide fit range set "
        "from the cache sizes, all before its first timing; the "
        "tolerances ([0.9, 1.1] for slope 1, [-0.1, 0.1] for slope 0) predate all data, the "
        f"dJ/dx tolerance (1 to 1 + {DX_SLACK:g} x the predicted extra) was fixed before its "
        "first measurement. In --quick mode "
        "the sizes are too small for the wall-time claims, which then read INCONCLUSIVE; the "
        "counts decide at any size.")


STUDY = Study(
    name="complexity",
    title="Backprop costs O(N), finite differences O(N l)",
    where=WHERE,
    grid=grid, cell=cell, aggregate=aggregate, claims=claims, plot=plot_l, summarise=summarise,
    figures={"n": plot_n, "net": plot_net},
    notes=_notes(),
    timed=True,
    remeasure=remeasure, remeasure_budget_s=REMEASURE_BUDGET_S, alone=alone,
    reproducibility=("Every wall_* column. The jax_*_agrees columns compare to 1e-9, far above the "
                     "last-bit differences between BLAS builds and XLA versions."),
)
