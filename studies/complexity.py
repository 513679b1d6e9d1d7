"""Study `complexity`: the backprop theorem against finite differences (notes, "Differentiable Circuits").

Theorem (notes): a circuit of size N computing f: R^l -> R has a gradient computable in
O(N + l) time by a circuit of size O(N); finite differences need l + 1 evaluations, O(N l) time:

    ops(grad) <= C ops(f)  with C independent of N and l       (C = 3 for the multiplications and
                                                                divisions of + - * / circuits:
                                                                Baur & Strassen 1983)
    ops(fd_forward) = (l + 1) N,   ops(fd_central) = 2 l N

Measured on seeded random circuits (testbed.random_circuits, families "wide": operands drawn from
all earlier nodes, depth ~ log N, evaluated by the level-vectorised executor from N ~ 10^4 on;
"deep": operands from the last few nodes, depth ~ N, evaluated node by node) and on deep networks
(testbed.nn): exact operation counts and median wall times of forward, grad (value_and_grad),
jvp, hvp and finite differences, with `jax.jit(jax.grad(...))` beside them where it compiles.

Wall-time exponents are least-squares slopes of log(time) against log(size) with 95% t-intervals,
fitted within one executor regime and where the fixed per-call overhead is negligible (see
FULL["fit"]); the op-count claims are exact and machine-independent.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

import testbed
import testbed.nn
from testbed.costs import muldiv, op_counts, total
from testbed.evaluate import vec_plan
from testbed.random_circuits import BOX, DEFAULT_OPS, RATIONAL_OPS, random_circuit

from ._claims import claim, claims_table, fmt, within
from ._seeds import generator
from ._study import Study

WHERE = "notes: Differentiable Circuits (backprop theorem: O(N + l) vs l + 1 evaluations)"
WHERE_NN = "notes: Backprop Algorithm (forward and backward passes O(N))"
GRAD_BOUND = 5  # testbed's guarantee grad(c).size <= 5 N + 1 (issue 2), Griewank's classic bound
BAUR_STRASSEN = 3
SLOPE_ONE = (0.9, 1.1)
FLAT = 0.1  # |slope| below this counts as "independent of l" (or a 95% interval holding 0)
FLAT_TEXT = f"95% CI of the slope holds 0 or |slope| < {FLAT}; CI half-width <= {FLAT}"
# circuits: finite differences only where their op count, (l + 1) N or 2 l N, is below this
FD_MAX_OPS = {"forward": 400_000_000, "central": 100_000_000}
NET_DEPTH = 4  # a network is (w, w, w, w, 1): r = 4 layers (3 hidden of width w), tanh
ACTIVATION = "tanh"


def decades(lo: float, hi: float) -> list[int]:
    """1-2-5 steps from lo to hi."""
    out, d = [], 1
    while d <= hi:
        out += [int(m * d) for m in (1, 2, 5) if lo <= m * d <= hi]
        d *= 10
    return out


# circuit sizes: 1-2-5 steps, denser from 10^5 on, where the wide family's slope is fitted
SIZES_N = decades(100, 50_000) + [100_000, 150_000, 200_000, 300_000, 500_000, 700_000, 10**6]


FULL = {
    "N": {"wide": SIZES_N, "deep": SIZES_N}, "l_fixed": 10,
    "fd_N_max": 10**5,  # FD against N is no claim; at 10^6 one call takes 10-20 s
    # FD against l at N = 5 10^4: N >= 10 l up to l = 5000, as the notes assume N >= l (an
    # evaluation of l + 1 points also costs O(l) per point: at l ~ N that term is not negligible)
    "N_fixed_fd": 5 * 10**4, "l_fd": sorted(decades(1, 5000) + [3000]),
    "N_fixed_grad": 10**5, "l_grad": [1, 3, 10, 30, 100, 300, 1000, 3000, 10**4],
    "rational_N": [10**2, 10**3, 10**4, 10**5],
    "jax_N_max": 10**4, "jax_unrolled_N_max": 100,
    "net_width": 32, "net_m": [2**k for k in range(15)],
    "net_widths": [4, 8, 16, 32, 64, 128, 256], "net_N_target": 2**21, "net_jax": True,
    "net_fd_max_ops": 10**10,  # networks: FD is a Python loop of l + 1 forward passes
    "budget": 0.5,  # seconds per timed method and cell: cheap calls get more repeats (3..15)
    # fit ranges (the fixed per-call overhead negligible): wide circuits run level-vectorised,
    # and below ~10^5 nodes their per-level numpy calls (depth x primitives) still dominate;
    # deep circuits run node by node, linear from ~10^3 on (fitted from 10^4); finite
    # differences evaluate l + 1 points in one batch, one numpy call per node (or group) on
    # l + 1 values: ~1 us per call against ~1 ns per value, so l >= 1000; networks pay ~0.1 ms
    # of Python per call, negligible from ~10^6 ops (batch 256) on
    "fit": {"wide": 10**5, "deep": 10**4, "l_fd": 1000, "net_m": 256},
}
QUICK = {
    "N": {"wide": [100, 10**4, 2 * 10**4], "deep": [100, 1000, 3000]}, "l_fixed": 10,
    "fd_N_max": 10**4,
    "N_fixed_fd": 3000, "l_fd": [1, 10, 100, 300],
    "N_fixed_grad": 3000, "l_grad": [1, 10, 100, 300],
    "rational_N": [100, 1000, 10**4],
    "jax_N_max": 100, "jax_unrolled_N_max": 0, "jax_families": ("wide",),
    "net_width": 32, "net_m": [16, 64, 256],
    "net_widths": [8, 16, 32], "net_N_target": 2**16, "net_jax": False,
    "net_fd_max_ops": 3 * 10**8,
    "budget": 0.05,
    "fit": {"wide": 10**4, "deep": 1000, "l_fd": 10, "net_m": 64},
}


# --- measuring ------------------------------------------------------------------------------------


def median_walls(calls: dict[str, Callable[[], object]], budget: float, min_reps: int = 3,
                 max_reps: int = 15, min_sample: float | None = None) -> dict[str, float]:
    """Median wall time per call (s) of each call, timed as timeit does.

    A sample times `number` calls in a row, enough of them to last `min_sample` seconds (default
    budget / 25: 20 ms in full mode) on a
    busy machine the scheduler takes the core away for whole time slices (milliseconds), and a
    sample that spans several slices loses the same fraction of its time whatever the call, so
    the ratios of short to long calls stay fair. The samples are taken round-robin over the
    calls (a change of load hits all of them alike), `budget` seconds' worth per call and
    min_reps..max_reps of them, after a warm-up: the first call builds plans and caches, the
    second (skipped when the first took over 0.2 s) sizes the samples.
    """
    min_sample = budget / 25 if min_sample is None else min_sample
    plan = {}
    for name, fn in calls.items():
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        if dt < 0.2:
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
        dt = max(dt, 1e-7)
        number = max(1, int(np.ceil(min_sample / dt)))
        plan[name] = (number, int(np.clip(budget / (number * dt), min_reps, max_reps)))
    times: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(max((reps for _, reps in plan.values()), default=0)):
        for name, fn in calls.items():
            number, reps = plan[name]
            if i < reps:
                t0 = time.perf_counter()
                for _ in range(number):
                    fn()
                times[name].append((time.perf_counter() - t0) / number)
    return {name: float(np.median(ts)) for name, ts in times.items()}


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Building 10^5-10^6 node objects: the cyclic collector only slows it down (ANCHORS: ~4x)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def import_jax() -> object:
    """jax with float64 on; one XLA thread per process when jax is first imported here.

    The runner gives each worker one BLAS thread (two workers share two cores); XLA's own thread
    pool would otherwise compete with the other worker's timings.
    """
    if "jax" not in sys.modules:
        os.environ.setdefault("XLA_FLAGS",
                              "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def loglog_fit(x: object, y: object) -> tuple[float, float, float, int]:
    """(slope, 95% low, 95% high, points) of the least-squares line log y = a + b log x.

    The interval is b +- t_{0.975, n-2} SE(b); NaN when there are fewer than 3 usable points
    (the slope itself needs 2).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    X, Y = np.log(x[ok]), np.log(y[ok])
    n = int(ok.sum())
    if n < 2 or np.ptp(X) == 0:
        return np.nan, np.nan, np.nan, n
    b, a = np.polyfit(X, Y, 1)
    if n < 3:
        return float(b), np.nan, np.nan, n
    from scipy import stats

    resid = Y - (a + b * X)
    se = np.sqrt(resid @ resid / (n - 2) / ((X - X.mean()) ** 2).sum())
    t = float(stats.t.ppf(0.975, n - 2))
    return float(b), float(b - t * se), float(b + t * se), n


# --- circuits -------------------------------------------------------------------------------------


def _circuit_counts(c: testbed.Circuit) -> dict:
    counts = {mode: op_counts(c, mode) for mode in
              ("forward", "grad", "jvp", "hvp", "fd_forward", "fd_central")}
    row = {f"ops_{mode}": total(cnt) for mode, cnt in counts.items()}
    row["muldiv_forward"] = muldiv(counts["forward"])
    row["muldiv_grad"] = muldiv(counts["grad"])
    return row


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
    # 1e-9, not the suite's 1e-10: circuits of up to 10^4 nodes through XLA's libm accumulate more
    # ulp-level differences than the suite's small circuits; the suite is the 1e-10 check
    agrees = bool(np.max(np.abs(out - ref)) <= 1e-9 * max(1.0, float(np.max(np.abs(ref)))))
    return {"compile": compile_s, "run": run, "agrees": agrees}


def circuit_cell(p: dict, seed: int) -> dict:
    """One random circuit: exact op counts, then round-robin median wall times."""
    family, n, l = p["family"], p["N"], p["l"]
    rng = generator(seed, "complexity", p["kind"], family, n, l)
    ops = tuple(sorted(RATIONAL_OPS)) if p["kind"] == "rational" else DEFAULT_OPS
    with gc_paused():
        t0 = time.perf_counter()
        c = random_circuit(rng, n, l, family, ops=ops)
        build = time.perf_counter() - t0
    x = rng.uniform(-BOX, BOX, l)
    v = rng.standard_normal(l)
    row = {"N": c.size, "l": c.l, "depth": c.depth, **_circuit_counts(c), "wall_build": build}
    if p["kind"] == "rational":  # Baur-Strassen: counts only
        return row
    calls = {"forward": lambda: c(x), "grad": lambda: testbed.value_and_grad(c, x)}
    if p["jvp"]:
        calls["jvp"] = lambda: testbed.jvp(c, x, v)
    if p["hvp"]:
        with gc_paused():
            t0 = time.perf_counter()
            testbed.grad(c)  # hvp's first call builds and caches the gradient circuit: timed apart
            row["wall_grad_circuit"] = time.perf_counter() - t0
        calls["hvp"] = lambda: testbed.hvp(c, x, v)
    for scheme in ("forward", "central") if p["fd"] else ():
        if row[f"ops_fd_{scheme}"] <= FD_MAX_OPS[scheme]:
            calls[f"fd_{scheme}"] = lambda s=scheme: testbed.fd_grad(c, x, scheme=s)
    row.update({f"wall_{name}": t for name, t in median_walls(calls, p["budget"]).items()})
    row["executor"] = "vectorised" if vec_plan(c) is not None else "sequential"
    if p["jax"]:
        g = testbed.value_and_grad(c, x)[1]
        for method in p["jax"]:
            r = jax_timed(c, x, g, method, p["budget"])
            pre = "jax" if method == "scan" else "jax_unrolled"
            row.update({f"wall_{pre}_compile": r["compile"], f"wall_{pre}_grad": r["run"],
                        f"{pre}_agrees": r["agrees"]})
    return row


# --- deep networks ----------------------------------------------------------------------------------


def net_sizes(width: int) -> tuple[int, ...]:
    """(w, w, w, w, 1): the notes' network with r = 4 layers and one output."""
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


def mlp_grad_ops(sizes: tuple[int, ...], m: int) -> int:
    """Operations of testbed.nn.value_and_grad(need_dx=False): the forward pass, then backprop.

        dJ/dz[r] = (tau - y) / m                          2 m n[r]
        k = r..1:  dJ/dW[k] = dJ/dz[k]^T a[k-1]           n[k] n[k-1] (2m - 1)
                   dJ/db[k] = sum over rows of dJ/dz[k]   n[k] (m - 1)
        k > 1:     dJ/da[k-1] = dJ/dz[k] W[k]             m n[k-1] (2 n[k] - 1)
                   dJ/dz[k-1] = dJ/da[k-1] * sigma'(z)    2 m n[k-1] (sigma' counted as one op)
    """
    r = len(sizes) - 1
    ops = mlp_forward_ops(sizes, m) + 2 * m * sizes[r]
    for k in range(r, 0, -1):
        ops += sizes[k] * sizes[k - 1] * (2 * m - 1) + sizes[k] * (m - 1)
        if k > 1:
            ops += m * sizes[k - 1] * (2 * sizes[k] - 1) + 2 * m * sizes[k - 1]
    return ops


def mlp_fd_grad(net: testbed.nn.Network, x: np.ndarray, y: np.ndarray,
                h: float = float(np.sqrt(np.finfo(float).eps))) -> tuple[np.ndarray, int]:
    """Forward differences over theta = ravel_params(net): (gradient, number of evaluations of J).

    dJ/dtheta_i ~ (J(theta + h_i e_i) - J(theta)) / h_i with h_i = h max(1, |theta_i|): one
    evaluation at theta, then one per parameter, l + 1 in all.
    """
    nn = testbed.nn
    theta = nn.ravel_params(net)
    W, b = nn.unravel_params(theta, net.sizes)  # views into theta: perturbing theta moves them
    work = nn.Network(W, b, net.activation)
    J0, evals = nn.loss(work, x, y), 1
    g = np.empty_like(theta)
    for i in range(theta.size):
        old = theta[i]
        theta[i] = old + h * max(1.0, abs(old))
        step = theta[i] - old  # the step actually taken
        g[i] = (nn.loss(work, x, y) - J0) / step
        evals += 1
        theta[i] = old
    return g, evals


def _jax_mlp(net: testbed.nn.Network, x: np.ndarray, y: np.ndarray, grads: object,
             budget: float) -> dict:
    jax = import_jax()
    fn = jax.jit(jax.grad(testbed.nn.to_jax_loss(net), argnums=(0, 1)))
    t0 = time.perf_counter()
    gW, gb = fn(net.W, net.b, x, y)
    compile_s = time.perf_counter() - t0
    run = median_walls({"g": lambda: jax.block_until_ready(fn(net.W, net.b, x, y))}, budget)["g"]
    err = max(float(np.max(np.abs(np.asarray(a) - e))) / max(1.0, float(np.max(np.abs(e))))
              for a, e in zip([*gW, *gb], [*grads.dW, *grads.db], strict=True))
    # 1e-9 as in jax_timed: BLAS and XLA sum the batch in different orders (the suite checks 1e-10)
    return {"wall_jax_compile": compile_s, "wall_jax_grad": run, "jax_agrees": err <= 1e-9}


def mlp_cell(p: dict, seed: int) -> dict:
    """One network (w, w, w, w, 1) on a batch of m examples: counts and median wall times."""
    nn = testbed.nn
    w, m = p["width"], p["m"]
    sizes = net_sizes(w)
    rng = generator(seed, "complexity", "mlp", w, m)
    net = nn.init_network(sizes, ACTIVATION, "xavier_normal", rng)
    x = rng.standard_normal((m, w))
    y = rng.standard_normal((m, sizes[-1]))
    V = ([rng.standard_normal(Wk.shape) for Wk in net.W],
         [rng.standard_normal(bk.shape) for bk in net.b])
    N = mlp_forward_ops(sizes, m)
    l = net.n_params
    row = {"N": N, "l": l, "depth": net.depth, "width": w, "batch": m,
           "ops_forward": N, "ops_grad": mlp_grad_ops(sizes, m), "ops_fd_central": 2 * l * N}
    calls = {"forward": lambda: nn.loss(net, x, y),
             "grad": lambda: nn.value_and_grad(net, x, y, need_dx=False),
             "hvp": lambda: nn.hvp(net, x, y, V)}
    evals: list[int] = []
    if p["fd"]:
        calls["fd_forward"] = lambda: evals.append(mlp_fd_grad(net, x, y)[1])
    row.update({f"wall_{name}": t for name, t in median_walls(calls, p["budget"]).items()})
    if evals:
        row["ops_fd_forward"] = evals[0] * N  # the evaluations FD made, times N
    if p["jax"]:
        row.update(_jax_mlp(net, x, y, nn.value_and_grad(net, x, y, need_dx=False)[1],
                            p["budget"]))
    return row


# --- the study ------------------------------------------------------------------------------------


def _net_batch(width: int, n_target: int) -> int:
    """The batch that brings a (w, w, w, w, 1) network closest to n_target forward ops."""
    per_example = mlp_forward_ops(net_sizes(width), 1) - 1
    return max(1, round(n_target / per_example))


def grid(quick: bool) -> list[dict]:
    """Circuits: N sweep at fixed l, l sweeps at fixed N, rational circuits (counts only);
    networks: a batch sweep at fixed width (N at fixed l), a width sweep at fixed N."""
    cfg = QUICK if quick else FULL
    jax_families = cfg.get("jax_families", ("wide", "deep"))
    cells = []

    def jax_methods(family: str, n: int) -> list[str]:  # on the N sweep
        if family not in jax_families or n > cfg["jax_N_max"]:
            return []
        return ["scan"] + (["unrolled"] if n <= cfg["jax_unrolled_N_max"] else [])

    budget = cfg["budget"]
    for family in ("wide", "deep"):
        for n in cfg["N"][family]:
            cells.append({"kind": "circuit", "sweep": "N", "family": family, "N": n,
                          "l": cfg["l_fixed"], "hvp": True, "jvp": True,
                          "fd": n <= cfg["fd_N_max"], "budget": budget,
                          "jax": jax_methods(family, n)})
        # the l sweeps: finite differences at N_fixed_fd, grad alone at N_fixed_grad
        fd = {(cfg["N_fixed_fd"], l): True for l in cfg["l_fd"]}
        for l in cfg["l_grad"]:
            fd.setdefault((cfg["N_fixed_grad"], l), False)
        for (n, l), with_fd in sorted(fd.items()):
            cells.append({"kind": "circuit", "sweep": "l", "family": family, "N": n, "l": l,
                          "hvp": False, "jvp": False, "fd": with_fd, "budget": budget,
                          "jax": []})
        for n in cfg["rational_N"]:
            cells.append({"kind": "rational", "sweep": "N", "family": family, "N": n,
                          "l": cfg["l_fixed"], "hvp": False, "jvp": False, "fd": False,
                          "budget": budget, "jax": []})
    w = cfg["net_width"]
    for m in cfg["net_m"]:
        fd = (net_params(w) + 1) * mlp_forward_ops(net_sizes(w), m) <= cfg["net_fd_max_ops"]
        cells.append({"kind": "mlp", "sweep": "N", "family": "mlp", "width": w, "m": m,
                      "fd": bool(fd), "jax": cfg["net_jax"], "budget": budget})
    for w in cfg["net_widths"]:
        m = _net_batch(w, cfg["net_N_target"])
        fd = (net_params(w) + 1) * mlp_forward_ops(net_sizes(w), m) <= cfg["net_fd_max_ops"]
        cells.append({"kind": "mlp", "sweep": "l", "family": "mlp", "width": w, "m": m,
                      "fd": bool(fd), "jax": cfg["net_jax"], "budget": budget})
    return cells


def cell(p: dict, seed: int) -> pd.DataFrame:
    """One circuit or network of the grid: one row."""
    row = mlp_cell(p, seed) if p["kind"] == "mlp" else circuit_cell(p, seed)
    keys = {"kind": p["kind"], "sweep": p["sweep"], "family": p["family"],
            "N_nominal": p.get("N", np.nan), "l_nominal": p.get("l", np.nan)}
    return pd.DataFrame([{**keys, **row}])


KIND_ORDER = {"circuit": 0, "rational": 1, "mlp": 2}


def aggregate(raw: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """The rows in a fixed order, with the fit ranges marked (`fit_grad`, `fit_fd`)."""
    cfg = QUICK if quick else FULL
    fit = cfg["fit"]
    t = raw.assign(_k=raw["kind"].map(KIND_ORDER))
    t = t.sort_values(["_k", "sweep", "family", "N_nominal", "l_nominal", "width", "batch"],
                      ignore_index=True, na_position="first").drop(columns="_k")
    circ, sweep_n, sweep_l = t["kind"] == "circuit", t["sweep"] == "N", t["sweep"] == "l"
    mlp = t["kind"] == "mlp"
    big = t["N_nominal"] >= t["family"].map({"wide": fit["wide"], "deep": fit["deep"]})
    t["fit_grad"] = ((circ & sweep_n & big) | (circ & sweep_l & (t["N_nominal"] == cfg["N_fixed_grad"]))
                     | (mlp & sweep_n & (t["batch"] >= fit["net_m"])) | (mlp & sweep_l))
    t["fit_fd"] = ((circ & sweep_l & (t["N_nominal"] == cfg["N_fixed_fd"]) & (t["l"] >= fit["l_fd"]))
                   | (mlp & sweep_l))
    front = ["kind", "sweep", "family", "N_nominal", "l_nominal", "N", "l", "depth", "executor",
             "width", "batch", "fit_grad", "fit_fd"]
    front = [c for c in front if c in t.columns]
    ops = sorted(c for c in t.columns if c.startswith(("ops_", "muldiv_")))
    walls = [c for c in t.columns if c.startswith("wall_")]
    rest = [c for c in t.columns if c not in front + ops + walls]
    return t[front + ops + rest + walls]


# --- fits and claims ------------------------------------------------------------------------------

# "a/b": the ratio of two times measured in the same cell (round-robin). It cancels what the
# machine does to the whole cell (background load, BLAS efficiency of the cell's shapes) and
# keeps what the algorithm adds; shown beside the claims, which test the times themselves.
METHODS = ("forward", "grad", "jvp", "hvp", "fd_forward", "fd_central", "jax_grad",
           "grad/forward", "fd_forward/forward")


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

    x = N on the N sweeps (rows with fit_grad), x = l on the l sweeps: fd_* over the rows with
    fit_fd, the others over the rows with fit_grad. jax_grad is fitted over every row that has it
    (N <= 10^4 for circuits), beside the others, not used by a claim.
    """
    rows = []
    for (kind, sweep, family), t in table.groupby(["kind", "sweep", "family"], sort=False):
        if kind == "rational":
            continue
        x = "N" if sweep == "N" else "l"
        for method in METHODS:
            if method == "jax_grad":
                sel = t
            elif sweep == "l" and "fd_" in method:
                sel = t[t["fit_fd"].astype(bool)]
            else:
                sel = t[t["fit_grad"].astype(bool)]
            f = _fit(sel, x, method)
            if f["points"] == 0:
                continue
            fixed = sel["l" if x == "N" else "N_nominal"] if kind == "circuit" else \
                sel["width" if x == "N" else "N"]
            rows.append({"kind": kind, "family": family, "x": x, "method": method,
                         "fixed": f"{fixed.min():.4g}..{fixed.max():.4g}", **f})
    return pd.DataFrame(rows, columns=["kind", "family", "x", "method", "fixed", "slope", "lo",
                                       "hi", "points", "from", "to"])


def _get(f: pd.DataFrame, kind: str, family: str, x: str, method: str) -> dict:
    r = f[(f["kind"] == kind) & (f["family"] == family) & (f["x"] == x) & (f["method"] == method)]
    if len(r) == 0:
        return {"slope": np.nan, "lo": np.nan, "hi": np.nan, "points": 0, "from": np.nan,
                "to": np.nan, "fixed": "none"}
    return r.iloc[0].to_dict()


def slope_text(b: float, lo: float, hi: float) -> str:
    """'1.043 [95% CI 0.981, 1.105]': three decimals, so a verdict at a bound can be read off."""
    def f3(v: float) -> str:
        return f"{v:.3f}" if np.isfinite(v) else "nan"

    return f"{f3(b)} [95% CI {f3(lo)}, {f3(hi)}]"


def _describe(f: dict, x: str, ratio: dict | None = None) -> str:
    text = (f"slope {slope_text(f['slope'], f['lo'], f['hi'])} over {x} = "
            f"{fmt(f['from'])}..{fmt(f['to'])} ({int(f['points'])} sizes)")
    if ratio is not None and np.isfinite(ratio["slope"]):
        text += ("; the same time relative to one forward pass (same cell): slope "
                 + slope_text(ratio["slope"], ratio["lo"], ratio["hi"]))
    return text


def flat(f: dict) -> bool:
    """Independent of l: the 95% interval holds 0 or |slope| < FLAT, and the interval is
    informative (half-width <= FLAT), so that a noisy fit cannot pass by being vague."""
    b, lo, hi = f["slope"], f["lo"], f["hi"]
    if not (np.isfinite(b) and np.isfinite(lo) and np.isfinite(hi)):
        return False
    return bool((lo <= 0 <= hi or abs(b) < FLAT) and (hi - lo) / 2 <= FLAT)


def _ratio_claim(t: pd.DataFrame, what: str, where: str, num: str, den: str, bound: float,
                 expected: str) -> dict:
    r = (t[num] / t[den]).replace([np.inf, -np.inf], np.nan)
    if r.notna().sum() == 0:
        return claim(what, where, "no data", expected, False)
    i = r.idxmax()
    measured = (f"max {fmt(r.max(), 4)} at N = {t.loc[i, 'N']}, l = {t.loc[i, 'l']}; min "
                f"{fmt(r.min(), 4)}; {int(r.notna().sum())} sizes, N = {t['N'].min()}.."
                f"{t['N'].max()}, l = {t['l'].min()}..{t['l'].max()}")
    return claim(what, where, measured, expected, bool(r.notna().all() and r.max() <= bound))


def _fd_exact(t: pd.DataFrame, what: str, where: str, central: bool) -> dict:
    ok = t["ops_fd_forward"] == (t["l"] + 1) * t["N"]
    if central:
        ok &= t["ops_fd_central"] == 2 * t["l"] * t["N"]
    measured = f"exact in {int(ok.sum())}/{len(t)} rows (l = {t['l'].min()}..{t['l'].max()})" \
        if len(t) else "no data"
    exp = "(l + 1) N" + (" and 2 l N (central)" if central else "") + " in every row"
    return claim(what, where, measured, exp, bool(len(t)) and bool(ok.all()))


def claims(table: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """The theorem's claims on circuits (per family) and on networks, from the table alone."""
    f = fits(table)
    circ = table[table["kind"] == "circuit"]
    net = table[table["kind"] == "mlp"]
    rows = [
        _ratio_claim(circ, "circuits: grad ops / forward ops is bounded by a constant over all N "
                     "and l", WHERE, "ops_grad", "ops_forward", GRAD_BOUND,
                     f"<= {GRAD_BOUND} everywhere (testbed's bound; Griewank-Walther: 3-4 with "
                     "memory moves)"),
        _ratio_claim(table[table["kind"] == "rational"], "circuits of + - * /: grad mul+div / "
                     "forward mul+div <= 3 (Baur-Strassen)", "Baur & Strassen, TCS 22 (1983)",
                     "muldiv_grad", "muldiv_forward", BAUR_STRASSEN, f"<= {BAUR_STRASSEN}"),
        _fd_exact(circ, "circuits: finite-difference ops = (l + 1) N exactly", WHERE, True),
    ]
    for family in ("wide", "deep"):
        g, r = _get(f, "circuit", family, "N", "grad"), _get(f, "circuit", family, "N", "grad/forward")
        rows.append(claim(f"circuits ({family}): grad time grows linearly in N at fixed l",
                          WHERE, _describe(g, "N", r) + f"; l = {g['fixed']}",
                          f"slope in [{SLOPE_ONE[0]}, {SLOPE_ONE[1]}]", within(g["slope"], *SLOPE_ONE)))
    for family in ("wide", "deep"):
        g = _get(f, "circuit", family, "l", "fd_forward")
        r = _get(f, "circuit", family, "l", "fd_forward/forward")
        rows.append(claim(f"circuits ({family}): forward-difference time grows linearly in l at "
                          "fixed N", WHERE, _describe(g, "l", r) + f"; N = {g['fixed']}",
                          f"slope in [{SLOPE_ONE[0]}, {SLOPE_ONE[1]}]", within(g["slope"], *SLOPE_ONE)))
    for family in ("wide", "deep"):
        g, r = _get(f, "circuit", family, "l", "grad"), _get(f, "circuit", family, "l", "grad/forward")
        rows.append(claim(f"circuits ({family}): grad time is independent of l at fixed N",
                          WHERE, _describe(g, "l", r) + f"; N = {g['fixed']}", FLAT_TEXT, flat(g)))
    rows += [
        _ratio_claim(net, "networks: grad ops / forward ops is bounded by a constant over all N "
                     "and l", WHERE_NN, "ops_grad", "ops_forward", GRAD_BOUND,
                     f"<= {GRAD_BOUND} everywhere; -> 3 for wide layers (2 matmuls back per "
                     "matmul forward)"),
        _fd_exact(net[net["ops_fd_forward"].notna()] if "ops_fd_forward" in net else net,
                  "networks: finite-difference ops = (l + 1) N exactly (evaluations counted)",
                  WHERE_NN, False),
    ]
    g, r = _get(f, "mlp", "mlp", "N", "grad"), _get(f, "mlp", "mlp", "N", "grad/forward")
    rows.append(claim("networks: grad time grows linearly in N at fixed l (batch sweep)", WHERE_NN,
                      _describe(g, "N", r) + f"; width {g['fixed']}",
                      f"slope in [{SLOPE_ONE[0]}, {SLOPE_ONE[1]}]", within(g["slope"], *SLOPE_ONE)))
    g, r = _get(f, "mlp", "mlp", "l", "fd_forward"), _get(f, "mlp", "mlp", "l", "fd_forward/forward")
    rows.append(claim("networks: forward-difference time grows linearly in l at fixed N (width "
                      "sweep)", WHERE_NN, _describe(g, "l", r) + f"; N = {g['fixed']}",
                      f"slope in [{SLOPE_ONE[0]}, {SLOPE_ONE[1]}]", within(g["slope"], *SLOPE_ONE)))
    g, r = _get(f, "mlp", "mlp", "l", "grad"), _get(f, "mlp", "mlp", "l", "grad/forward")
    rows.append(claim("networks: grad time is independent of l at fixed N (width sweep)", WHERE_NN,
                      _describe(g, "l", r) + f"; N = {g['fixed']}", FLAT_TEXT, flat(g)))
    return claims_table("complexity", rows, quick)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """The fitted slopes (the claims use the grad and fd_forward rows)."""
    return fits(table)


# --- plot -----------------------------------------------------------------------------------------

STYLE = {"forward": "C0", "grad": "C1", "jvp": "C2", "hvp": "C3", "fd_forward": "C4",
         "fd_central": "C5", "jax_grad": "C7", "jax_unrolled_grad": "C8"}
LABEL = {"jax_grad": "jax grad (scan; jit for networks)", "jax_unrolled_grad": "jax grad (unrolled)"}


def _lines(ax: object, t: pd.DataFrame, x: str, methods: tuple, ls: str = "-",
           tag: str = "") -> None:
    for m in methods:
        col = f"wall_{m}"
        if col in t.columns and t[col].notna().any():
            d = t[[x, col]].dropna()
            ax.plot(d[x], d[col], ls, marker="o", ms=3, color=STYLE[m],
                    label=f"{LABEL.get(m, m)}{tag}")


def _fit_line(ax: object, t: pd.DataFrame, x: str, method: str, mask: str) -> None:
    sel = t[t[mask].astype(bool)]
    col = f"wall_{method}"
    if col not in sel.columns:
        return
    d = sel[[x, col]].dropna()
    b, _, _, n = loglog_fit(d[x], d[col])
    if n >= 2:
        xs = np.array([d[x].min(), d[x].max()], dtype=float)
        a = np.mean(np.log(d[col]) - b * np.log(d[x]))
        ax.plot(xs, np.exp(a) * xs ** b, "k--", lw=2, alpha=0.6, label=f"fit {method}: {b:.2f}")


def plot(table: pd.DataFrame, fig) -> None:
    """Times against N and l (circuits: two families; networks), and the op-count ratios."""
    fig.set_size_inches(22, 10)
    ax = fig.subplots(2, 4)
    circ = table[table["kind"] == "circuit"]
    for j, family in enumerate(("wide", "deep")):
        t = circ[(circ["sweep"] == "N") & (circ["family"] == family)]
        _lines(ax[0, j], t, "N", ("forward", "grad", "jvp", "hvp", "fd_forward", "fd_central",
                                  "jax_grad", "jax_unrolled_grad"))
        _fit_line(ax[0, j], t, "N", "grad", "fit_grad")
        l_fixed = int(t["l"].iloc[0]) if len(t) else "?"
        ax[0, j].set(xscale="log", yscale="log", xlabel="N (nodes)", ylabel="median wall time (s)",
                     title=f"circuits ({family}): time vs N, l = {l_fixed}")
    t = circ[circ["sweep"] == "N"]
    for family, ls in (("wide", "-"), ("deep", "--")):
        d = t[t["family"] == family]
        for m, col in (("grad", "C1"), ("jvp", "C2"), ("hvp", "C3")):
            ax[0, 2].plot(d["N"], d[f"ops_{m}"] / d["ops_forward"], ls, marker="o", ms=3,
                          color=col, label=f"{m}/f ops, {family}")
    rat = table[table["kind"] == "rational"]
    for family, ls in (("wide", "-"), ("deep", "--")):
        d = rat[rat["family"] == family]
        ax[0, 2].plot(d["N"], d["muldiv_grad"] / d["muldiv_forward"], ls, marker="s", ms=3,
                      color="k", label=f"grad/f mul+div, + - * / ({family})")
    ax[0, 2].axhline(BAUR_STRASSEN, color="grey", lw=0.8)
    ax[0, 2].axhline(GRAD_BOUND, color="grey", lw=0.8, ls=":")
    ax[0, 2].set(xscale="log", xlabel="N", ylabel="ops / forward ops",
                 title="exact op counts relative to f (lines at 3 and 5)")
    fixed_l = circ[circ["sweep"] == "l"]
    for j, (mask, title) in enumerate((("fit_fd", "finite differences"), ("fit_grad", "grad"))):
        n_fixed = fixed_l.loc[fixed_l[mask].astype(bool), "N_nominal"]
        a = ax[1, j]
        for family, ls in (("wide", "-"), ("deep", "--")):
            d = fixed_l[(fixed_l["family"] == family) & fixed_l["N_nominal"].isin(n_fixed)]
            methods = ("fd_forward", "fd_central", "grad", "jax_grad") if j == 0 else \
                ("forward", "grad", "jvp")
            _lines(a, d, "l", methods, ls, f" ({family})")
            _fit_line(a, d, "l", "fd_forward" if j == 0 else "grad", mask)
        a.set(xscale="log", yscale="log", xlabel="l (inputs)", ylabel="median wall time (s)",
              title=f"circuits: {title} vs l, N = {', '.join(f'{v:.0f}' for v in n_fixed.unique())}"
                    " (- wide, -- deep)")
    net = table[table["kind"] == "mlp"]
    for sweep, x in (("N", "N"), ("l", "l")):
        d = net[net["sweep"] == sweep]
        a = ax[0, 3] if sweep == "N" else ax[1, 2]
        _lines(a, d, x, ("forward", "grad", "hvp", "fd_forward", "jax_grad"))
        _fit_line(a, d, x, "grad", "fit_grad")
        if sweep == "l":
            _fit_line(a, d, x, "fd_forward", "fit_fd")
        a.set(xscale="log", yscale="log", ylabel="median wall time (s)",
              xlabel="N (forward ops)" if x == "N" else "l (parameters)",
              title="networks: " + ("batch sweep at fixed width (l fixed)" if x == "N" else
                                    "width sweep at N ~ fixed"))
    for sweep, x, marker in (("N", "N", "o"), ("l", "l", "s")):
        d = net[net["sweep"] == sweep]
        ax[1, 3].plot(d[x], d["ops_grad"] / d["ops_forward"], marker=marker, color="C1",
                      label=f"grad/f ops against {x} ({'batch' if x == 'N' else 'width'} sweep)")
    ax[1, 3].axhline(3, color="grey", lw=0.8)
    ax[1, 3].set(xscale="log", xlabel="N (batch sweep) or l (width sweep)",
                 ylabel="ops / forward ops", title="networks: exact op counts relative to f")
    for a in ax.flat:
        if not a.lines:  # nothing measured (a partial table): no log axis without data
            a.set(xscale="linear", yscale="linear")
            a.text(0.5, 0.5, "no data", ha="center", transform=a.transAxes)
            continue
        a.legend(fontsize=7)
        a.grid(True, which="major", alpha=0.3)


STUDY = Study(
    name="complexity",
    title="Backprop costs O(N), finite differences O(N l)",
    where=WHERE,
    grid=grid, cell=cell, aggregate=aggregate, claims=claims, plot=plot, summarise=summarise,
    notes=(
        "Random circuits (testbed.random_circuits, seeded; N is the real size c.size: domain "
        "repairs add ~40% to the nominal N of the wide family). N sweep: N_nominal = 10^2..10^6 "
        "(1-2-5, denser above 10^5) at l = 10, timing forward, grad, jvp, hvp (after `grad(c)` "
        "is built and cached: `wall_grad_circuit`) and finite differences up to N = 10^5 (FD "
        "against N is no claim; at 10^6 a call takes 10-20 s). l sweeps: l = 1..10^4 at N = 10^4 with finite "
        "differences wherever (l + 1) N and 2 l N <= 3.2e8, and at N = 10^5 for grad. JAX: "
        "`jax.jit(jax.grad(to_jax(c, 'scan')))` (a lax.scan interpreter; its gradient grows about "
        "as N^2 here) up to N = 10^4, and the unrolled jnp version at N = 10^2 only: its jit "
        "compile time explodes beyond a few hundred nodes (ANCHORS). Compile times have their "
        "own columns (`wall_*compile`); `jax_agrees` checks JAX's gradient against testbed's. "
        "Times are medians of 3-15 samples per call, timeit-style (a sample times enough "
        "consecutive calls to last 20 ms, so scheduler preemption on a busy machine costs short "
        "and long calls alike), taken round-robin across methods after warm-up calls; cells "
        "run two at a time, one per core (one BLAS and one XLA "
        "thread each). Fits (`fit_grad`, `fit_fd`) where the fixed per-call overhead is "
        "negligible, within one executor: wide N >= 10^5 (level-vectorised; below that its "
        "per-level numpy calls dominate), deep N >= 10^4 (node by node), finite differences "
        "against l for l >= 1000 (one numpy call per node on l + 1 values: ~1 us per call "
        "against ~1 ns per value), networks for batch >= 256. Networks (w, w, w, w, 1), tanh, "
        "xavier: N = forward ops of the batch (matmul multiplies and adds, bias adds, one op per "
        "activation, the loss: `mlp_forward_ops`), l = parameters; the width sweep picks the "
        "batch that keeps N ~ 2^21; FD there is a loop of l + 1 loss calls (`mlp_fd_grad`). The "
        "measured texts add each slope relative to one forward pass timed in the same cell. "
        "The deep family's circuits are, as generated, mostly constant in x (self-cancelling "
        "nodes v - v, v / v cut the inputs off: at N = 10^3 all of 20 seeds have a zero "
        "gradient); their counts and times stand (the engine does the same work). "
        "In --quick mode the sizes are too small for the wall-time slopes (per-call overhead "
        "dominates): those claims are expected to fail there; the exact counts hold at any size."),
)
