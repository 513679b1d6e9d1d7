"""Study `hvp`: the corollary, Hessian-vector products in O(N + l) (docs/theory.md, "Differentiable
circuits"; Pearlmutter 1994; Griewank & Walther 2008).

Corollary: for every v in R^l, (grad^2 f(x))^T v can be computed in O(N + l) time. testbed
computes it forward over reverse: the reverse sweep run on duals (value, tangent along v), node for
node forward mode through the gradient circuit without writing it, i.e. Pearlmutter's R-operator
R_v{grad f} = H v, so

    ops(hvp) <= 5 |grad(c)| <= 25 ops(f)     (testbed's bounds; Griewank & Walther: 7-10 x f)
    ops(hessian) = l ops(hvp) = O(N l)         (the full Hessian, one HVP per column)

Measured on seeded random circuits (families "wide" and "deep", as in `complexity`): exact op
counts, the rule applications the executors actually ran (`testbed.evaluate.counting`), median
wall times of hvp against N and against l' at fixed N (one circuit, l' of its inputs free: the
"+ l"), the full Hessian from l HVPs (one batched sweep, `testbed.hessian`) against l' at fixed N
(one circuit) and against N, beside `jax.jit(jax.hessian(...))`; and on deep networks
Pearlmutter's R-pass (`testbed.nn.hvp`) beside `jax.jit` of jvp-of-grad (the JAX cookbook's HVP).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

import testbed
import testbed.nn
from testbed.costs import op_counts, total
from testbed.evaluate import counting, executor_of
from testbed.random_circuits import BOX

from ._builders import (
    agreement,
    at_most,
    exact,
    inside,
    interval,
    slope_text,
    undecided_unless,
    worst_of,
)
from ._claims import PASSED, claims_table, fmt, interval_verdict
from ._engine import (
    IN_CACHE_MIN,
    JAX_RTOL,
    SIZES_N,
    SLOPE_ONE,
    WIDE_FIT_N,
    agrees,
    built_circuit,
    in_cache,
    in_cache_claim,
    in_cache_max,
    jax_timed,
    memory_probe,
    mlp_forward_ops,
    mlp_grad_ops,
    net_sizes,
    sci,
    sweep_generator,
    with_memory_probe,
)
from ._fits import linear_fit, loglog_fit, t95
from ._plots import FONT, finish, reference
from ._seeds import generator
from ._study import Study
from ._timing import fix_inputs, import_jax, timings

WHERE = "docs/theory.md: Differentiable circuits (corollary: H v in O(N + l))"
WHERE_NN = "Pearlmutter, Neural Computation 6(1) 1994 (R-operator)"
WHERE_JAX = "testbed's cross-validation against JAX (jax.hessian, jax.jvp of jax.grad)"
# forward mode through the gradient circuit G (|G| <= 5 N + 1): its forward pass plus each node's
# tangent rule (at most 4 ops: dsigmoid's and sech2's), so ops(hvp) <= 5 |G| <= 25 N + 5
HVP_BOUND = 25
GRIEWANK_WALTHER = (7, 10)
SLOPE_CI = "95% CI of the slope"
# the R-pass runs a forward and a backward pass and their R-versions: at least one gradient, and
# at most ROP_OVER_GRAD: (8r - 5) / (3r - 1) = 2.45 layer matmuls at r = 4, + elementwise work
ROP_OVER_GRAD = (1.0, 4.0)
# "+ l": the extra time per free input, in units of the time per node (t / N at the smallest l'):
# O(N + l) with an input costing no more than a node; two-sided, so that a fall of the time with
# l' beyond the noise is not read as support
PER_INPUT = (-1.0, 1.0)
# the work dominates a Hessian sweep where its fixed cost is below this fraction of the time
OVERHEAD_MAX = 0.25
AGREE = 1e-10
BATCH = 64
# the bytes a slot of the fused sweep reads at random (value, tangent, cotangent and its tangent:
# 4 x 8), for the wide family's in-cache range (studies._engine.in_cache_max)
SLOT_BYTES = 32
# hvp against N: complexity's sizes (no gradient circuit is built: the fused sweep needs none)
SIZES_HVP = SIZES_N


FULL = {
    "N": {"wide": SIZES_HVP, "deep": SIZES_HVP}, "l_fixed": 10,
    "fit": {"wide": WIDE_FIT_N, "deep": 10**4},  # the regimes: see studies.complexity
    # the Hessian against l': one wide circuit of hess_l_N nodes with max(hess_l) inputs
    "hess_l_N": 10**4, "hess_l": [1, 10, 30, 100, 200, 300, 500, 1000], "hess_fit_l": 100,
    # the Hessian against N at l = hess_N_l
    "hess_N_l": 10, "hess_N": [100, 1000, 10**4, 2 * 10**4, 5 * 10**4, 10**5, 2 * 10**5],
    "hess_fit_N": 10**4, "hess_jax_N_max": 1000, "hess_jax_unrolled_N_max": 100,
    # the "+ l" of the HVP: one wide circuit of plus_l_N nodes and as many inputs
    "plus_l_N": 3 * 10**4, "plus_l": [1, 10, 100, 1000, 3000, 10**4, 3 * 10**4],
    "widths": [32, 64, 128, 256, 512, 1024],
    "budget": 0.5,  # seconds per timed method and cell (3..15 repeats; networks 5..25)
}
QUICK = {
    "N": {"wide": [100, 10**4, 2 * 10**4, 4 * 10**4], "deep": [100, 1000, 3000, 10**4]},
    "l_fixed": 10, "fit": {"wide": 10**4, "deep": 1000},
    "hess_l_N": 300, "hess_l": [1, 10, 30, 100], "hess_fit_l": 10,
    "hess_N_l": 10, "hess_N": [100, 1000, 3000], "hess_fit_N": 100, "hess_jax_N_max": 100,
    "hess_jax_unrolled_N_max": 0,
    "plus_l_N": 3000, "plus_l": [1, 10, 100, 1000, 3000],
    "widths": [32],
    "budget": 0.05,
}
REMEASURE_BUDGET_S = 30.0
# The Hessian's sweeps run l points through every slot: arrays of 32 l bytes a slot, which for a
# wide circuit's random reads cross the cache sizes inside the fit ranges (l = 10: from N ~ 2 10^4;
# the l sweep: from l' ~ 20). The deep family reads the last few slots, so its memory behaves alike
# at every N and l (changed from "wide" after the first compiled run; disclosed in the notes).
HESS_FAMILY = "deep"


def grid(quick: bool) -> list[dict]:
    """HVP against N (both families) and against l' (wide); Hessians against l' and N (deep);
    networks by width."""
    cfg = QUICK if quick else FULL
    base = {"budget": cfg["budget"], "quick": quick, "attempt": 0}
    cells = [{"part": "hvp", "family": fam, "N": n, "l": cfg["l_fixed"], "l_max": 0, **base}
             for fam in ("wide", "deep") for n in cfg["N"][fam]]
    cells += [{"part": "hvp_l", "family": "wide", "N": cfg["plus_l_N"], "l": l,
               "l_max": max(cfg["plus_l"]), **base} for l in cfg["plus_l"]]
    # the Hessian's points: each outside its fit range a cell of its own; the fit range's points
    # all in ONE cell per sweep (`hessian_fit`), timed round-robin in one process
    hess = [{"part": "hessian", "sweep": "l", "family": HESS_FAMILY, "N": cfg["hess_l_N"],
             "l": l, "l_max": max(cfg["hess_l"]), "jax": [], **base} for l in cfg["hess_l"]]
    for n in cfg["hess_N"]:
        jax = ["scan"] if n <= cfg["hess_jax_N_max"] else []
        jax += ["unrolled"] if n <= cfg["hess_jax_unrolled_N_max"] else []
        hess.append({"part": "hessian", "sweep": "N", "family": HESS_FAMILY, "N": n,
                     "l": cfg["hess_N_l"], "l_max": 0, "jax": jax, **base})
    for sweep, x, start in (("l", "l", cfg["hess_fit_l"]), ("N", "N", cfg["hess_fit_N"])):
        points = [q for q in hess if q["sweep"] == sweep and q[x] >= start]
        cells += [q for q in hess if q["sweep"] == sweep and q[x] < start]
        cells.append({**points[0], "part": "hessian_fit", "points": [q[x] for q in points],
                      "jax": sorted({m for q in points for m in q["jax"]})})
        if any(q["jax"] for q in points):
            cells[-1]["jax_by_point"] = [q["jax"] for q in points]
    cells += [{"part": "network", "width": w, **base} for w in cfg["widths"]]
    return cells


def _in_fit(p: dict) -> bool:
    cfg = FULL
    if p["part"] == "hvp":
        return p["N"] >= cfg["fit"][p["family"]]
    if p["part"] == "hessian":  # the fit range's points are in the hessian_fit cells
        return False
    return True  # hessian_fit, hvp_l and network: every cell counts


def claims_fed(p: dict) -> set[str]:
    """The ids of the timing claims a cell's measurement feeds (empty outside the fit ranges)."""
    # the wide family's in-cache claim has its own fit range, below the DRAM one
    if p["part"] == "hvp" and p["family"] == "wide" and in_cache(p["N"], SLOT_BYTES):
        return {"hvp-linear-in-n-wide-in-cache"}
    if not _in_fit(p):
        return set()
    if p["part"] == "hvp":
        return {f"hvp-linear-in-n-{p['family']}"}
    if p["part"] == "hessian_fit":
        return {f"hessian-linear-in-{p['sweep'].lower()}"}
    return {"hvp-plus-l"} if p["part"] == "hvp_l" else {"rop-costs-a-gradient"}


def alone(p: dict) -> bool:
    """Cells timed with no cell beside them (the two cores share the last-level cache and the
    memory bus): the in-cache claim's, whose arrays a neighbour streaming a far-regime circuit
    through DRAM evicts, and the Hessian fits', whose sweeps stream 32 l bytes a slot.

    Measured on 2026-12-04 (two runs, before this rule): the re-measurement, beside far-regime
    cells, timed the four in-cache cells 1.21-1.49x slower than their first measurement. The
    Hessian's time per column and node then read 26-51 ns from cell to cell, and still 25-43 ns
    with its cells alone; the same call (deep, N = 2 10^4, l = 10) in eight fresh processes, each
    staying on one core with no context switch, read 48-87 ns, steady within each process: a
    factor of the process, which `hessian_fit_cell` cancels by timing a fit's points in one."""
    return bool(claims_fed(p) & {"hvp-linear-in-n-wide-in-cache", "hessian-linear-in-l",
                                 "hessian-linear-in-n"})


def remeasure(p: dict, attempt: int, inconclusive: frozenset[str]) -> dict | None:
    """One more measurement, at twice the time budget, of a cell an inconclusive timing claim rests
    on (no JAX); None in quick mode and for cells that feed no inconclusive claim."""
    if p.get("quick") or not claims_fed(p) & inconclusive:
        return None
    q = {**p, "attempt": attempt, "budget": 2 * FULL["budget"],
         **({"jax": []} if "jax" in p else {})}
    q.pop("jax_by_point", None)
    return q


# --- cells ----------------------------------------------------------------------------------------


def _circuit(p: dict, seed: int) -> tuple[testbed.Circuit, np.ndarray, np.ndarray, float]:
    """The cell's circuit, point and direction. With p["l_max"] the circuit is drawn once per
    (part, N, l_max) with l_max inputs, and all but the first l' = p["l"] are held at their values."""
    if p["l_max"]:
        rng = generator(seed, "hvp", p["part"], "l-sweep", p["family"], p["N"], p["l_max"])
        l_draw = p["l_max"]
    elif p["part"] == "hvp":  # the N sweep: complexity's circuits (see sweep_generator)
        rng, l_draw = sweep_generator(seed, p["family"], p["N"], p["l"]), p["l"]
    else:
        rng = generator(seed, "hvp", p["part"], p["family"], p["N"], p["l"])
        l_draw = p["l"]
    c, build = built_circuit(rng, p["N"], l_draw, p["family"])
    x = rng.uniform(-BOX, BOX, c.l)
    v = rng.standard_normal(c.l)
    if p["l_max"]:
        c = fix_inputs(c, p["l"], x)
        x, v = x[:p["l"]], v[:p["l"]]
    return c, x, v, build


def _applications(fn: object) -> int:
    """Scalar rule applications the executors ran during fn() (nodes x points, every sweep)."""
    with counting() as cnt:
        fn()
    return int(sum(cnt.values()))


def hvp_cell(p: dict, seed: int) -> dict:
    """Op counts of f, grad, hvp; wall times of forward, grad and hvp (gradient circuit cached)."""
    c, x, v, build = _circuit(p, seed)
    row = {"N": c.size, "l": c.l, "depth": c.depth,
           **{f"ops_{m}": total(op_counts(c, m)) for m in ("forward", "grad", "hvp")}}
    row["executor"] = executor_of(c)
    calls = {"forward": lambda: c(x), "grad": lambda: testbed.value_and_grad(c, x),
             "hvp": lambda: testbed.hvp(c, x, v)}
    if p["part"] == "hvp":
        calls["gather"] = memory_probe(c)
    samples = timings(calls, p["budget"])
    row.update({f"wall_{k}": float(np.median(t)) for k, t in samples.items()})
    row["wall_build"] = build
    return row


def _hessian_point(p: dict, seed: int) -> tuple[dict, dict, object]:
    """One point of a Hessian sweep: (its row of counts, its calls to time, a function that adds
    the JAX comparison and the build time to the row once the timing is done)."""
    c, x, v, build = _circuit(p, seed)
    row = {"N": c.size, "l": c.l, "depth": c.depth, "ops_forward": c.size,
           "ops_hvp": total(op_counts(c, "hvp")), "ops_hessian": total(op_counts(c, "hessian"))}
    H = testbed.hessian(c, x)  # also makes the plans
    row["counted_hvp"] = _applications(lambda: testbed.hvp(c, x, v))
    row["counted_hessian"] = _applications(lambda: testbed.hessian(c, x))
    calls = {"hvp": lambda: testbed.hvp(c, x, v), "hessian": lambda: testbed.hessian(c, x)}

    def complete() -> None:
        for method in p["jax"]:
            r = jax_timed(c, x, H, method, p["budget"], transform="hessian")
            pre = "jax" if method == "scan" else "jax_unrolled"
            row.update({f"wall_{pre}_hessian_compile": r["compile"], f"wall_{pre}_hessian": r["run"],
                        f"{pre}_agrees": r["agrees"]})
        if "scan" in p["jax"]:
            jax = import_jax()
            f = testbed.to_jax(c, method="scan")
            hv = jax.jit(lambda a, t: jax.jvp(jax.grad(f), (a,), (t,))[1])(x, v)
            row["jax_hvp_agrees"] = agrees(hv, testbed.hvp(c, x, v))
        row["wall_build"] = build

    return row, calls, complete


def hessian_cell(p: dict, seed: int) -> dict:
    """The full Hessian: l HVPs in one batched sweep, beside one HVP (times and counted
    applications) and jax.hessian."""
    row, calls, complete = _hessian_point(p, seed)
    samples = timings(calls, p["budget"])
    row.update({f"wall_{k}": float(np.median(t)) for k, t in samples.items()})
    complete()
    return row


def hessian_fit_cell(p: dict, seed: int) -> list[dict]:
    """The points of a Hessian sweep's fit range (p["points"]: the l' or N of each), in one
    process and timed round-robin: a factor this machine gives a whole process (the same call
    read up to 1.8x slower in one fresh process than in another; see `alone`) is then common to
    every point of the fit and cancels in its slope, as in the project's other ratios. Each point
    is the cell `hessian_cell` would time alone: same circuit, point, counts and columns."""
    x = "l" if p["sweep"] == "l" else "N"
    jax_by_point = p.get("jax_by_point", [[]] * len(p["points"]))
    points = [_hessian_point({**p, "part": "hessian", x: value, "jax": jax}, seed)
              for value, jax in zip(p["points"], jax_by_point, strict=True)]
    calls = {f"{name}@{i}": fn for i, (_, cs, _) in enumerate(points) for name, fn in cs.items()}
    samples = timings(calls, p["budget"])
    rows = []
    for i, (row, cs, complete) in enumerate(points):
        row.update({f"wall_{name}": float(np.median(samples[f"{name}@{i}"])) for name in cs})
        complete()
        rows.append({"N_nominal": p["points"][i] if x == "N" else p["N"], **row})
    return rows


def network_cell(p: dict, seed: int) -> dict:
    """(w, w, w, w, 1) tanh network, batch 64: R-pass HVP, gradient, and jax.jit jvp-of-grad."""
    nn = testbed.nn
    w = p["width"]
    sizes = net_sizes(w)
    rng = generator(seed, "hvp", "network", w)
    net = nn.init_network(sizes, "tanh", "xavier_normal", rng)
    x = rng.standard_normal((BATCH, w))
    y = rng.standard_normal((BATCH, 1))
    VW = [None] + [rng.standard_normal(Wk.shape) for Wk in net.W[1:]]
    Vb = [None] + [rng.standard_normal(bk.shape) for bk in net.b[1:]]
    HW, Hb = nn.hvp(net, x, y, (VW, Vb))

    jax = import_jax()
    J = nn.to_jax_loss(net)

    def jvp_of_grad(W: list, b: list, VW: list, Vb: list) -> tuple:
        def g(W: list, b: list) -> tuple:
            return jax.grad(J, argnums=(0, 1))(W, b, x, y)

        return jax.jvp(g, (W, b), (VW, Vb))[1]

    fn = jax.jit(jvp_of_grad)
    t0 = time.perf_counter()
    jW, jb = jax.block_until_ready(fn(net.W, net.b, VW, Vb))
    compile_s = time.perf_counter() - t0
    err = max(float(np.max(np.abs(np.asarray(a) - e))) / max(1e-300, float(np.max(np.abs(e))))
              for a, e in zip([*jW[1:], *jb[1:]], [*HW[1:], *Hb[1:]], strict=True))
    samples = timings({  # cheap calls: more repeats, for a steady ratio
        "forward": lambda: nn.loss(net, x, y),
        "grad": lambda: nn.value_and_grad(net, x, y, need_dx=False),
        "rop_hvp": lambda: nn.hvp(net, x, y, (VW, Vb)),
        "jax_hvp": lambda: jax.block_until_ready(fn(net.W, net.b, VW, Vb))},
        p["budget"], min_reps=5, max_reps=25)
    # R-pass / gradient per round of the round-robin (the two samples of a round pair up)
    n = min(len(samples["rop_hvp"]), len(samples["grad"]))
    logr = np.log(samples["rop_hvp"][:n] / samples["grad"][:n])
    return {"width": w, "batch": BATCH, "l": net.n_params, "N": mlp_forward_ops(sizes, BATCH),
            "ops_grad": mlp_grad_ops(sizes, BATCH), "rop_matches_jax": bool(err <= AGREE),
            **{f"wall_{k}": float(np.median(t)) for k, t in samples.items()},
            "wall_jax_hvp_compile": compile_s, "wall_logratio_rop_mean": float(logr.mean()),
            "wall_logratio_rop_sd": float(logr.std(ddof=1)) if n > 1 else np.nan,
            "wall_logratio_rop_n": n}


def cell(p: dict, seed: int) -> pd.DataFrame:
    """One cell of any part: one row (a `hessian_fit` cell: one `hessian` row per point)."""
    keys = {"sweep": p.get("sweep", ""), "family": p.get("family", "mlp"),
            "N_nominal": p.get("N", np.nan), "l_max": p.get("l_max", np.nan),
            "attempt": p.get("attempt", 0)}
    if p["part"] == "hessian_fit":
        return pd.DataFrame([{"part": "hessian", **keys, **row} for row in hessian_fit_cell(p, seed)])
    fn = {"hvp": hvp_cell, "hvp_l": hvp_cell, "hessian": hessian_cell,
          "network": network_cell}[p["part"]]
    return pd.DataFrame([{"part": p["part"], **keys, **fn(p, seed)}])


def aggregate(raw: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """Rows in a fixed order (re-measurements of a point beside it), the fit ranges marked: `fit`
    (hvp vs N), `fit_l` and `fit_N` (Hessian vs l' and vs N)."""
    cfg = QUICK if quick else FULL
    order = {"hvp": 0, "hvp_l": 1, "hessian": 2, "network": 3}
    t = raw.assign(_k=raw["part"].map(order))
    keys = [c for c in ("_k", "sweep", "family", "N_nominal", "l", "width", "attempt")
            if c in t.columns]
    t = t.sort_values(keys, ignore_index=True, kind="stable").drop(columns="_k")
    hv, he = t["part"] == "hvp", t["part"] == "hessian"
    t["fit"] = hv & (t["N_nominal"] >= t["family"].map(cfg["fit"]))
    t["fit_l"] = he & (t["sweep"] == "l") & (t["l"] >= cfg["hess_fit_l"])
    t["fit_N"] = he & (t["sweep"] == "N") & (t["N_nominal"] >= cfg["hess_fit_N"])
    front = [c for c in ("part", "sweep", "family", "N_nominal", "l_max", "attempt", "N", "l",
                         "depth", "width", "batch", "executor", "fit",
                         "fit_l", "fit_N") if c in t.columns]
    walls = [c for c in t.columns if c.startswith("wall_")]
    rest = [c for c in t.columns if c not in front + walls]
    return t[front + rest + walls]


# --- claims ---------------------------------------------------------------------------------------


def fixed_cost_fraction(fit: pd.DataFrame, x: str) -> float:
    """The part of the Hessian's time that does not grow with x, relative to its time at the
    smallest x of the fit range: a / t(x_min), a the intercept of the least-squares line
    t = a + b x (not log-log) over the fit range. Near 0 (or below) where the work dominates;
    per-call overhead, or a cost per value that falls as the batch grows, make it large.
    """
    if "wall_hessian" not in fit.columns:
        return np.nan
    d = fit[[x, "wall_hessian"]].dropna()
    a, _, _, _, n = linear_fit(d[x], d["wall_hessian"]) if len(d) else (np.nan,) * 4 + (0,)
    if not np.isfinite(a):
        return np.nan
    return float(a / d.loc[d[x] == d[x].min(), "wall_hessian"].median())


def _slope(t: pd.DataFrame, x: str, col: str) -> tuple[float, float, float, int, str]:
    d = t[[x, col]].dropna() if col in t.columns else pd.DataFrame(columns=[x, col])
    b, lo, hi, n = loglog_fit(d[x], d[col])
    span = f"{x} = {fmt(d[x].min())}..{fmt(d[x].max())}" if n else f"{x}: no data"
    return b, lo, hi, n, span


def executor_text_rows(t: pd.DataFrame) -> str:
    """'; timed on the compiled executor': which executors the rows ran on."""
    names = sorted(t["executor"].dropna().unique()) if "executor" in t.columns else []
    return f"; timed on the {' and '.join(names)} executor" if names else ""


def _describe(b: float, lo: float, hi: float, n: int, span: str) -> str:
    return f"slope {slope_text(b, lo, hi)} over {span} ({n} points)"


def _marked(t: pd.DataFrame, flag: str) -> pd.DataFrame:
    """The rows with a true `flag` (none when the column is missing)."""
    return t[t[flag].astype(bool)] if flag in t.columns else t.iloc[0:0]


def _ops_ratio(hv: pd.DataFrame) -> tuple[pd.Series, str]:
    """(hvp ops / forward ops per circuit of the first attempt, its range per family)."""
    first = hv[hv["attempt"] == 0]
    r = first["ops_hvp"] / first["ops_forward"] if len(first) else pd.Series(dtype=float)
    by_family = "; ".join(f"{fam}: {fmt(g.min(), 4)}..{fmt(g.max(), 4)}"
                          for fam, g in r.groupby(first["family"]))
    return r, (f"max {fmt(r.max(), 4)}, median {fmt(r.median(), 4)} over {len(r)} circuits, N = "
               f"{first['N'].min() if len(first) else 'nan'}..{first['N'].max() if len(first) else 'nan'}"
               f" ({by_family}); Griewank & Walther: {GRIEWANK_WALTHER[0]}-{GRIEWANK_WALTHER[1]}")


def _in_n(hv: pd.DataFrame, family: str, quick: bool) -> dict:
    """The family's hvp slope in N over its fit range, the memory probe beside it."""
    t = hv[(hv["family"] == family) & hv["fit"].astype(bool)]
    b, lo, hi, n, span = _slope(t, "N", "wall_hvp")
    pb, plo, phi, pn, _ = _slope(t, "N", "wall_gather")
    row = interval(f"hvp-linear-in-n-{family}", f"circuits ({family}): hvp time grows linearly in "
                   "N" + (" (arrays far beyond the last-level cache)" if family == "wide" else ""),
                   WHERE, _describe(b, lo, hi, n, span) + f", l = "
                   f"{int(hv['l'].max()) if len(hv) else 'nan'}" + executor_text_rows(t),
                   (lo, hi), SLOPE_ONE, quick=quick, subject=SLOPE_CI)
    return with_memory_probe(row, {"slope": pb, "lo": plo, "hi": phi, "points": pn})


def _plus_l(t: pd.DataFrame) -> tuple[str, tuple[float, float]]:
    """(measured, 95% interval) of the cost of one input in units of one node: t(hvp) = a + b l'
    at fixed N, b / (a / N)."""
    d = t[["l", "N", "wall_hvp"]].dropna() if "wall_hvp" in t.columns else t.iloc[0:0]
    a, b, b_lo, b_hi, n = linear_fit(d["l"], d["wall_hvp"]) if len(d) else (np.nan,) * 4 + (0,)
    node = a / float(d["N"].iloc[0]) if len(d) and np.isfinite(a) and a > 0 else np.nan
    lo, hi = b_lo / node, b_hi / node
    measured = (f"t(hvp) = a + b l' over l' = {fmt(d['l'].min())}..{fmt(d['l'].max())} ({n} points)"
                f" at N = {int(d['N'].iloc[0]) if len(d) else 'nan'} (one circuit, l' of its inputs "
                f"free): a = {fmt(a)} s, b = {fmt(b)} s per input, i.e. {fmt(b / node)} [95% CI "
                f"{fmt(lo)}, {fmt(hi)}] times the time per node a / N") if len(d) else "no data"
    return measured, (lo, hi)


def _hessian_counted(he: pd.DataFrame) -> tuple[bool | None, str]:
    """(counted applications of hessian = l x one hvp's in every row, the counts)."""
    cnt = he.dropna(subset=["counted_hessian", "counted_hvp"]) if len(he) else he
    ok = cnt["counted_hessian"] == cnt["l"] * cnt["counted_hvp"]
    return (bool(ok.all()) if len(cnt) else None), (
        f"applications counted while hessian and hvp ran: hessian = l x hvp in "
        f"{int(ok.sum())}/{len(cnt)} circuits (N = {cnt['N'].min() if len(cnt) else 'nan'}.."
        f"{cnt['N'].max() if len(cnt) else 'nan'}, l = {cnt['l'].min() if len(cnt) else 'nan'}.."
        f"{cnt['l'].max() if len(cnt) else 'nan'})")


def _hessian(he: pd.DataFrame, x: str, quick: bool) -> dict:
    """The full Hessian's slope in x (l' or N), undecided while a fixed cost dominates."""
    fit = _marked(he, f"fit_{x}")
    b, lo, hi, n, span = _slope(fit, x, "wall_hessian")
    span = span.replace("l =", "l' =", 1) if x == "l" else span
    worst = fixed_cost_fraction(fit, x)
    fixed = (f"N = {int(fit['N'].iloc[0])} (one circuit, l' of its inputs free)" if x == "l"
             else f"l = {int(fit['l'].iloc[0])}") if len(fit) else ""
    measured = (f"{_describe(b, lo, hi, n, span)}; "
                f"{fixed}; fixed cost (intercept of t = a + b {XLABEL[x]}) = {fmt(worst, 2)} of the "
                "time at the smallest size")
    what = "l' at fixed N" if x == "l" else "N at fixed l"
    row = interval(f"hessian-linear-in-{x.lower()}", f"the full Hessian's time grows linearly in "
                   f"{what} (O(N l), two-sided)", WHERE, measured, (lo, hi), SLOPE_ONE,
                   quick=quick, subject=SLOPE_CI,
                   note=f", fixed cost <= {OVERHEAD_MAX:g} of the time")
    # where a fixed cost dominates, the slope says nothing about O(N l), either way
    return undecided_unless(row, bool(np.isfinite(worst) and worst <= OVERHEAD_MAX)
                            or not np.isfinite(lo + hi),
                            f"the fixed cost ({fmt(worst, 2)} of the time) is not below "
                            f"{OVERHEAD_MAX:g}: the work does not dominate")


def _hessian_jax(he: pd.DataFrame) -> list[tuple[str, int, int]]:
    checks = []
    for col, name in (("jax_agrees", "jax.hessian (scan)"),
                      ("jax_unrolled_agrees", "jax.hessian (unrolled)"),
                      ("jax_hvp_agrees", "jax.jvp of jax.grad")):
        if col in he.columns and he[col].notna().any():
            v = he[col].dropna().astype(bool)
            checks.append((name, int(v.sum()), len(v)))
    return checks


def _rop_equals(nw: pd.DataFrame) -> tuple[bool | None, str]:
    nw1 = nw[nw["attempt"] == 0]
    ok = nw1["rop_matches_jax"].astype(bool) if len(nw1) else pd.Series(dtype=bool)
    return (bool(ok.all()) if len(nw1) else None), (
        f"max relative difference <= {AGREE:g} at {int(ok.sum())}/{len(nw1)} widths "
        f"({', '.join(str(int(w)) for w in nw1['width'])})" if len(nw1) else "no data")


def _rop_intervals(nw: pd.DataFrame) -> pd.DataFrame:
    """Per width: the 95% interval of the R-pass / gradient time ratio, pooling every row's
    per-round log ratios (count, mean, sd)."""
    out = []
    cols = ("wall_logratio_rop_mean", "wall_logratio_rop_sd", "wall_logratio_rop_n")
    if not set(cols) <= set(nw.columns):
        return pd.DataFrame(columns=["width", "ratio", "lo", "hi"])
    for w, g in nw.groupby("width", sort=True):
        g = g.dropna(subset=list(cols))
        n = g["wall_logratio_rop_n"].to_numpy(dtype=float)
        m = g["wall_logratio_rop_mean"].to_numpy(dtype=float)
        s = g["wall_logratio_rop_sd"].to_numpy(dtype=float)
        total_n = n.sum()
        if total_n < 2:
            out.append({"width": w, "ratio": np.nan, "lo": np.nan, "hi": np.nan})
            continue
        mean = float((n * m).sum() / total_n)
        ss = float(((n - 1) * s**2).sum() + (n * (m - mean) ** 2).sum())
        half = t95(total_n) * np.sqrt(ss / (total_n - 1) / total_n)
        out.append({"width": w, "ratio": np.exp(mean), "lo": np.exp(mean - half),
                    "hi": np.exp(mean + half)})
    return pd.DataFrame(out)


def _rop_cost(nw: pd.DataFrame, quick: bool) -> dict:
    """Every width's R-pass / gradient time interval inside ROP_OVER_GRAD."""
    iv = _rop_intervals(nw)
    parts = [((r.lo, r.hi), ROP_OVER_GRAD) for r in iv.itertuples()]
    detail = ", ".join(f"w {int(r.width)}: {fmt(r.ratio, 3)} [{fmt(r.lo, 3)}, {fmt(r.hi, 3)}]"
                       for r in iv.itertuples())
    bad = [f"w {int(r.width)}" for r in iv.itertuples()
           if interval_verdict(r.lo, r.hi, *ROP_OVER_GRAD) != PASSED]
    return worst_of(
        "rop-costs-a-gradient", "deep network: the R-pass HVP costs about one gradient (a "
        "constant factor)", WHERE_NN, parts, f"R-pass / gradient time, 95% CI per width: "
        f"{detail or 'no data'}; batch {BATCH}, depth 4, tanh",
        f"every width's {inside(ROP_OVER_GRAD)} ((8r - 5)/(3r - 1) = 2.45 layer matmuls at r = 4, "
        "+ elementwise work)", quick=quick,
        reason=f"not inside the tolerance at {', '.join(bad)}" if bad and not quick else None)


def claims(table: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """The corollary's claims, from the table alone."""
    hv = table[table["part"] == "hvp"]
    he = table[table["part"] == "hessian"]
    nw = table[table["part"] == "network"]
    rows = [
        at_most("hvp-ops-bounded", "hvp ops / forward ops is bounded by a constant over N", WHERE,
                *_ops_ratio(hv), HVP_BOUND,
                note=" at every N (5 x testbed's gradient-circuit bound 5 N + 1)"),
        _in_n(hv, "wide", quick),
        _in_n(hv, "deep", quick),
        in_cache_claim(hv[hv["family"] == "wide"], "hvp-linear-in-n-wide-in-cache", "hvp", SLOT_BYTES,
                       WHERE, quick),
        interval("hvp-plus-l", "hvp: the + l of O(N + l): at fixed N the time grows at most "
                 "linearly in l', an input costing no more than a node", WHERE,
                 *_plus_l(table[table["part"] == "hvp_l"]), PER_INPUT, quick=quick,
                 subject="95% CI of b / (a / N)"),
        exact("hessian-ops-counted", "the full Hessian runs exactly l HVPs: its counted rule "
              "applications are l x one hvp's", WHERE, *_hessian_counted(he),
              "exact in every row"),
        _hessian(he, "l", quick),
        _hessian(he, "N", quick),
        agreement("jax-agrees", "circuits: testbed's Hessian and HVP agree with JAX's", WHERE_JAX,
                  _hessian_jax(he), f"max |jax - testbed| <= {JAX_RTOL:g} max(1, |testbed|) in "
                  "every check"),
        exact("rop-equals-jax", "deep network: Pearlmutter's R-pass HVP equals jax.jit(jvp of "
              "grad)", WHERE_NN, *_rop_equals(nw), f"<= {AGREE:g} relative at every width"),
        _rop_cost(nw, quick),
    ]
    return claims_table("hvp", rows, quick)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per part: the ratios and slopes the claims rest on."""
    rows = []
    hv = table[table["part"] == "hvp"]
    for family, t in hv.groupby("family", sort=False):
        fit = t[t["fit"].astype(bool)]
        b, lo, hi, n, span = _slope(fit, "N", "wall_hvp")
        rows.append({"part": "hvp vs N", "case": family,
                     "ops ratio": f"{fmt((t.ops_hvp / t.ops_forward).min(), 3)}.."
                                  f"{fmt((t.ops_hvp / t.ops_forward).max(), 3)} x f",
                     "wall ratio": f"hvp/grad {fmt((t.wall_hvp / t.wall_grad).median(), 3)} "
                                   "(median)",
                     "slope": b, "95% lo": lo, "95% hi": hi, "fit": span})
    he = table[table["part"] == "hessian"]
    for x in ("l", "N"):
        t = he[he["sweep"] == x]
        b, lo, hi, n, span = _slope(_marked(t, f"fit_{x}"), x, "wall_hessian")
        rows.append({"part": f"hessian vs {x}", "case": HESS_FAMILY,
                     "ops ratio": f"{fmt((t.ops_hessian / (t.N * t.l)).max(), 3)} x N l (max)",
                     "wall ratio": f"hessian/hvp {fmt((t.wall_hessian / t.wall_hvp).median(), 3)} "
                                   "(median)",
                     "slope": b, "95% lo": lo, "95% hi": hi, "fit": span})
    for r in _rop_intervals(table[table["part"] == "network"]).itertuples():
        rows.append({"part": "network R-pass", "case": f"width {int(r.width)}",
                     "ops ratio": "", "wall ratio": f"R/grad {fmt(r.ratio, 3)}",
                     "slope": np.nan, "95% lo": r.lo, "95% hi": r.hi, "fit": ""})
    return pd.DataFrame(rows)


# --- plots ----------------------------------------------------------------------------------------


def plot_hvp(table: pd.DataFrame, fig) -> None:
    """HVP against N (two families) and against l' (the "+ l"); op counts relative to f."""
    fig.set_size_inches(14, 10)
    ax = fig.subplots(2, 2)
    hv = table[table["part"] == "hvp"]
    for j, family in enumerate(("wide", "deep")):
        t = hv[hv["family"] == family]
        a = ax[0, j]
        for col, color, marker in (("forward", "C0", "o"), ("grad", "C1", "s"), ("hvp", "C3", "v")):
            d = t.groupby("N", as_index=False)[f"wall_{col}"].median()
            a.plot(d["N"], d[f"wall_{col}"], marker=marker, ms=5, mfc="none", color=color,
                   label=col)
        fit = t[t["fit"].astype(bool)]
        reference(a, fit["N"], fit["wall_hvp"], label="slope 1 (theory) through hvp's fit range")
        a.set(xscale="log", yscale="log", xlabel="N (operations)", ylabel="median CPU time per call (s)",
              title=f"circuits ({family}): hvp against N, l = {int(t['l'].iloc[0]) if len(t) else '?'}")
    a = ax[1, 0]
    t = table[table["part"] == "hvp_l"]
    for col, color, marker in (("forward", "C0", "o"), ("grad", "C1", "s"), ("hvp", "C3", "v")):
        if f"wall_{col}" in t.columns:
            d = t.groupby("l", as_index=False)[f"wall_{col}"].median()
            a.plot(d["l"], d[f"wall_{col}"], marker=marker, ms=5, mfc="none", color=color, label=col)
    if len(t):
        a0 = t.loc[t["l"] == t["l"].min(), "wall_hvp"].median()
        ls = np.sort(t["l"].unique()).astype(float)
        n = float(t["N"].iloc[0])
        a.plot(ls, a0 * (1 + ls / n), ":", color="grey",
               label="O(N + l): t(l'=1) (1 + l'/N), an input costing a node (theory)")
    a.set(xscale="log", yscale="log", xlabel="l' (free inputs)", ylabel="median CPU time per call (s)",
          title=f"wide circuit, N = {int(t['N'].iloc[0]) if len(t) else '?'}: the + l of O(N + l)")
    a = ax[1, 1]
    for family, ls in (("wide", "-"), ("deep", "--")):
        t = hv[(hv["family"] == family) & (hv["attempt"] == 0)]
        a.plot(t["N"], t["ops_hvp"] / t["ops_forward"], ls, marker="v", ms=5, mfc="none",
               color="C3", label=f"hvp / f ops ({family})")
        a.plot(t["N"], t["ops_grad"] / t["ops_forward"], ls, marker="s", ms=5, mfc="none",
               color="C1", label=f"grad / f ops ({family})")
    a.axhspan(*GRIEWANK_WALTHER, color="C2", alpha=0.15, label="Griewank & Walther 7-10 (theory)")
    a.axhline(HVP_BOUND, color="grey", ls=":", label=f"testbed's bound {HVP_BOUND}")
    a.set(xscale="log", xlabel="N (operations)", ylabel="operations / forward operations",
          title="circuits: exact op counts relative to f")
    finish(fig)


XLABEL = {"l": "l'", "N": "N"}


def plot_hessian(table: pd.DataFrame, fig) -> None:
    """The full Hessian against l' and N beside jax.hessian; the network's R-pass against JAX."""
    fig.set_size_inches(14, 10)
    ax = fig.subplots(2, 2)
    he = table[table["part"] == "hessian"]
    for j, x in enumerate(("l", "N")):
        t = he[he["sweep"] == x]
        a = ax[0, j]
        for col, color, marker, lab in (("wall_hessian", "C3", "o", "testbed.hessian (l HVPs)"),
                                        ("wall_hvp", "C1", "s", "one hvp"),
                                        ("wall_jax_hessian", "C7", "*", "jax.hessian, scan"),
                                        ("wall_jax_unrolled_hessian", "C8", "h",
                                         "jax.hessian, unrolled")):
            if col in t.columns and t[col].notna().any():
                d = t.groupby(x, as_index=False)[col].median().dropna()
                a.plot(d[x], d[col], marker=marker, ms=5, mfc="none", color=color, label=lab)
        fit = _marked(t, f"fit_{x}")
        reference(a, fit[x], fit["wall_hessian"] if "wall_hessian" in fit else [],
                  label="slope 1 (theory) through the Hessian's fit range")
        fixed = (f"N = {int(t['N'].iloc[0])}, one circuit" if x == "l" and len(t)
                 else f"l = {int(t['l'].iloc[0])}" if len(t) else "")
        a.set(xscale="log", yscale="log", xlabel="l' (free inputs)" if x == "l" else
              "N (operations)", ylabel="median CPU time per call (s)",
              title=f"full Hessian against {XLABEL[x]} ({fixed}, wide)\n"
                    "jax compile time not included")
    a = ax[1, 0]
    for x, marker, color, lab in (("l", "o", "C3", "per column, l' sweep (x = l')"),
                                  ("N", "s", "C0", "per node, N sweep (x = N)")):
        t = he[he["sweep"] == x]
        if "wall_hessian" in t.columns and len(t):
            d = t.groupby(x, as_index=False)["wall_hessian"].median()
            per = d["wall_hessian"] / d[x]
            a.plot(d[x], per / per.iloc[-1], marker, mfc="none", color=color,
                   label=f"Hessian time {lab}")
    a.axhline(1.0, color="grey", ls=":", label="constant: the work dominates (theory)")
    a.set(xscale="log", yscale="log", xlabel="l' (l' sweep) or N (N sweep)",
          ylabel="time per unit / at the largest size",
          title="full Hessian: does the work dominate?")
    nw = table[table["part"] == "network"]
    a = ax[1, 1]
    for col, color, marker, lab in (("wall_forward", "C0", "o", "forward"),
                                    ("wall_grad", "C1", "s", "gradient"),
                                    ("wall_rop_hvp", "C3", "v", "R-pass HVP (numpy)"),
                                    ("wall_jax_hvp", "C7", "*", "jax.jit jvp-of-grad")):
        if col in nw.columns:
            d = nw.groupby("width", as_index=False)[col].median()
            a.plot(d["width"], d[col], marker=marker, ms=5, mfc="none", color=color, label=lab)
    a.set(xscale="log", yscale="log", xlabel="width w of (w, w, w, w, 1)",
          ylabel="median CPU time per call (s)", title=f"deep network, batch {BATCH}, tanh")
    for a in ax.flat:
        a.title.set_fontsize(FONT)
    finish(fig)



def _notes() -> str:
    f = FULL
    return (
        f"Part `hvp`: random circuits (l = {f['l_fixed']}, N_nominal {sci(min(SIZES_HVP))}.."
        f"{sci(max(SIZES_HVP))}: 1-2-5 to 10^6, then "
        f"{', '.join(sci(n) for n in SIZES_HVP if n > 10**6)}), exact op counts and median times "
        "on the compiled executor (numba kernels generated from the primitive table; the "
        "`executor` column and NAME.json record it), the HVP by the fused forward-over-reverse "
        "sweep (no gradient circuit is written). Its circuits are those of the complexity "
        "study's N sweep, drawn from the same seeded generator, so that both studies time the "
        "same circuits and a run builds each once (`wall_build` is that build's time; results "
        "before 2026-12-04 drew this part's circuits from a key of its own). The slope is fitted "
        "over wide N >= "
        f"{sci(f['fit']['wide'])} (the regime where the duals' arrays, 32 bytes a slot, exceed 8 x "
        "the 8 MiB last-level cache: fixed from the cache sizes before any timing, see "
        f"`complexity`) and deep N >= {sci(f['fit']['deep'])}. Part `hvp_l` (the "
        f"+ l of O(N + l)): ONE wide circuit of N_nominal = {sci(f['plus_l_N'])} drawn with as many "
        f"inputs, l' = {min(f['plus_l'])}..{sci(max(f['plus_l']))} of them free and the others held "
        "as constants at their values (`fix_inputs`: same operations and point), t(hvp) fitted as "
        "a + b l'; the claim compares b with the time per node a / N. A second wide claim fits "
        f"the in-cache regime, N_nominal {sci(IN_CACHE_MIN)}..{in_cache_max(SLOT_BYTES):.3g} (32 bytes a "
        "slot within the 8 MiB last-level cache), specified after the first compiled run had "
        "shown the far regime still bending at 10^7 (since 2026-12-04 its cells are re-measured "
        "like every timing claim's, which the re-measurement plan had left out, and timed with no "
        "other cell beside them: the cores share the last-level cache, and its first "
        "re-measurement, beside far-regime cells, read them 1.21-1.49x slower); the "
        "memory probe (`wall_gather`, a numpy "
        "gather of every node's argument slots, no arithmetic) measures the reads' own price "
        "beside each wide claim. Part `hessian` (deep "
        "family, changed from wide after that run: its l points per slot make 32 l bytes a slot, "
        "whose random reads on a wide circuit cross the cache sizes inside the fit ranges): "
        "`testbed.hessian`, the l HVPs in one batched sweep, against l' on ONE circuit "
        f"of N_nominal = {sci(f['hess_l_N'])} with {max(f['hess_l'])} inputs (l' = "
        f"{min(f['hess_l'])}..{max(f['hess_l'])}, fitted from l' = {f['hess_fit_l']}) and against "
        f"N at l = {f['hess_N_l']} (N_nominal {sci(min(f['hess_N']))}..{sci(max(f['hess_N']))}, "
        f"fitted from {sci(f['hess_fit_N'])}), two-sided (slope in [{SLOPE_ONE[0]}, "
        f"{SLOPE_ONE[1]}]). The fixed cost of a sweep is the intercept a of the line t = a + b x "
        "fitted (not log-log) over its fit range, relative to the time at the smallest x: where it "
        f"exceeds {OVERHEAD_MAX:g}, the work does not dominate and the claim reads INCONCLUSIVE "
        "(this replaced, before any full run, a per-cell estimate from one hvp against the "
        "Hessian, which quick probes showed blind to a cost per value that falls as the batch "
        "grows). Since 2026-12-04 each fit range's points are ONE cell (`hessian_fit_cell`), "
        "timed round-robin in one process with no other cell beside it: that day the same "
        "Hessian call read 48-87 ns per column and node from one fresh process to another "
        "(steady within each, no migration or context switch), a factor of the process that "
        "scattered the fits when each point ran in whichever worker; in one process it is common "
        "to every point and cancels in the slope. "
        "Counted applications (`testbed.evaluate.counting()`) check that the Hessian runs l "
        "HVPs. Beside it `jax.jit(jax.hessian(to_jax(c, 'scan')))` (and the unrolled version at "
        f"N = {f['hess_jax_unrolled_N_max']}) and jax.jvp of jax.grad up to N = "
        f"{f['hess_jax_N_max']}; compile times in `wall_*_compile`. Part `network`: (w, w, w, w, "
        f"1) tanh networks, widths {', '.join(str(w) for w in f['widths'])}, batch {BATCH}, "
        "Pearlmutter's R-pass (`testbed.nn.hvp`) against `jax.jit` of `jax.jvp(jax.grad(J))` "
        "(one XLA thread, like numpy's one BLAS thread per worker); the R-pass / gradient ratio's "
        "interval comes from the per-round ratios of the round-robin samples. Times are "
        "timeit-style medians of CPU seconds of the measuring process as in `complexity` "
        "(`wall_build` and compile times are wall clock). A timed claim "
        "is re-measured (the cells of its "
        f"fit range, twice the time budget, rows pooled) while inconclusive, within "
        f"{REMEASURE_BUDGET_S:g} s per run. Chosen after seeing data: the Hessian's sizes (N = "
        f"{sci(f['hess_l_N'])} for the l' sweep and the N sweep from {sci(f['hess_fit_N'])}, where "
        "an earlier run showed the per-call overhead still dominating at N = 10^3; sizes above "
        "2 10^5 cost too much of the time budget, on the numpy executors); the sizes to 10^7 and "
        "the wide fit range, set for the compiled executor before its first timing; the "
        f"bound on hvp ops / f ops is {HVP_BOUND} = 5 x 5 (earlier 20 = 4 x 5, and before that 15 = "
        "3 x 5, which left out the gradient circuit's own forward pass): the tangent rules of "
        "sigmoid's and tanh's cancellation-free derivatives (dsigmoid, sech2) take 4 ops, one more "
        "than the others (from the derivation, not from data: every measured ratio lies under "
        f"10); the tolerances (slope [{SLOPE_ONE[0]:g}, {SLOPE_ONE[1]:g}], R-pass / "
        f"gradient [{ROP_OVER_GRAD[0]:g}"
        f", {ROP_OVER_GRAD[1]:g}], per input [{PER_INPUT[0]:g}, {PER_INPUT[1]:g}] node, fixed cost "
        f"<= {OVERHEAD_MAX:g}) were fixed before these measurements. In --quick mode the sizes "
        "are too small for the timing claims, which read INCONCLUSIVE; the counts and the JAX "
        "agreement decide at any size.")


STUDY = Study(
    name="hvp",
    title="Hessian-vector products in O(N + l), Hessians in O(N l)",
    where=WHERE,
    grid=grid, cell=cell, aggregate=aggregate, claims=claims, plot=plot_hvp, summarise=summarise,
    figures={"hessian": plot_hessian},
    notes=_notes(),
    timed=True,
    remeasure=remeasure, remeasure_budget_s=REMEASURE_BUDGET_S, alone=alone,
    reproducibility=("Every wall_* column. The agreement columns compare to 1e-9 (circuits) and "
                     "1e-10 (networks), far above last-bit differences between BLAS builds."),
)
