"""Study `hvp`: the corollary, Hessian-vector products in O(N + l) (notes, "Differentiable Circuits").

Corollary (notes): for every v in R^l, (grad^2 f(x))^T v can be computed in O(N + l) time. testbed
computes it forward-over-reverse: forward mode (a JVP) through the gradient circuit, i.e.
Pearlmutter's R-operator R_v{grad f} = H v (ANCHORS), so

    ops(hvp) <= 3 ops(grad) <= 15 ops(f)      (testbed's bounds; Griewank-Walther: 7-10 x f)
    ops(hessian) = l ops(hvp) = O(N l)         (the full Hessian, one HVP per column)

Measured on seeded random circuits (families "wide" and "deep", as in `complexity`): exact op
counts, median wall times of hvp against N, the full Hessian from l HVPs (one batched sweep,
`testbed.hessian`) against l and N beside `jax.jit(jax.hessian(...))`, and on deep networks
Pearlmutter's R-pass (`testbed.nn.hvp`) beside `jax.jit` of jvp-of-grad (the JAX cookbook's HVP).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

import testbed
import testbed.nn
from testbed.costs import op_counts, total
from testbed.evaluate import vec_plan
from testbed.random_circuits import BOX, random_circuit

from ._claims import claim, claims_table, fmt, within
from ._seeds import generator
from ._study import Study
from .complexity import (
    SIZES_N,
    decades,
    gc_paused,
    import_jax,
    jax_timed,
    loglog_fit,
    median_walls,
    mlp_forward_ops,
    mlp_grad_ops,
    net_sizes,
    slope_text,
)

WHERE = "notes: Differentiable Circuits (corollary: H v in O(N + l))"
WHERE_NN = "Pearlmutter, Neural Computation 6(1) 1994 (R-operator); ANCHORS"
HVP_BOUND = 15  # 3 x the gradient circuit's 5 N + 1 (issue 2)
GRIEWANK_WALTHER = (7, 10)
SLOPE_ONE = (0.9, 1.1)
AT_MOST_LINEAR = 1.1
ROP_OVER_GRAD = 4.0  # wall-time bound: (8r - 5) / (3r - 1) = 2.45 layer matmuls at r = 4, + elementwise
AGREE = 1e-10
BATCH = 64


FULL = {
    "N": {"wide": SIZES_N, "deep": SIZES_N}, "l_fixed": 10,
    "fit": {"wide": 10**5, "deep": 10**4},
    "hess_N_fixed": 1000, "hess_l": decades(1, 1000), "hess_l_fixed": 10,
    "hess_N": [100, 1000, 10**4, 10**5], "hess_jax_l": [1, 10, 100], "hess_jax_N_max": 1000,
    "hess_jax_unrolled": True, "hess_fit_l": 10,
    "widths": [32, 64, 128, 256, 512, 1024],
    "budget": 0.5,  # seconds per timed method and cell (3..15 repeats; networks up to 25)
}
QUICK = {
    "N": {"wide": [100, 10**4, 2 * 10**4, 4 * 10**4], "deep": [100, 1000, 3000, 10**4]},
    "l_fixed": 10, "fit": {"wide": 10**4, "deep": 1000},
    "hess_N_fixed": 300, "hess_l": [1, 10, 30, 100], "hess_l_fixed": 10,
    "hess_N": [100, 1000], "hess_jax_l": [], "hess_jax_N_max": 100, "hess_jax_unrolled": False,
    "hess_fit_l": 10,
    "widths": [32],
    "budget": 0.05,
}


def grid(quick: bool) -> list[dict]:
    """HVP against N (both families); Hessians against l and N (wide); networks by width."""
    cfg = QUICK if quick else FULL
    budget = cfg["budget"]
    cells = [{"part": "hvp", "family": fam, "N": n, "l": cfg["l_fixed"], "budget": budget}
             for fam in ("wide", "deep") for n in cfg["N"][fam]]
    in_l = {(cfg["hess_N_fixed"], l) for l in cfg["hess_l"]}
    in_n = {(n, cfg["hess_l_fixed"]) for n in cfg["hess_N"]}
    for n, l in sorted(in_l | in_n):
        jax = n <= cfg["hess_jax_N_max"] and (l in cfg["hess_jax_l"] or (n, l) in in_n)
        unrolled = jax and cfg["hess_jax_unrolled"] and n <= 100
        cells.append({"part": "hessian", "family": "wide", "N": n, "l": l, "budget": budget,
                      "l_sweep": (n, l) in in_l, "N_sweep": (n, l) in in_n,
                      "jax": (["scan"] if jax else []) + (["unrolled"] if unrolled else [])})
    cells += [{"part": "network", "width": w, "budget": budget} for w in cfg["widths"]]
    return cells


# --- cells ----------------------------------------------------------------------------------------


def _circuit(p: dict, seed: int) -> tuple[testbed.Circuit, np.ndarray, np.ndarray, float]:
    rng = generator(seed, "hvp", p["part"], p["family"], p["N"], p["l"])
    with gc_paused():
        t0 = time.perf_counter()
        c = random_circuit(rng, p["N"], p["l"], p["family"])
        build = time.perf_counter() - t0
    return c, rng.uniform(-BOX, BOX, c.l), rng.standard_normal(c.l), build


def hvp_cell(p: dict, seed: int) -> dict:
    """Op counts of f, grad, hvp; wall times of forward, grad and hvp (gradient circuit cached)."""
    c, x, v, build = _circuit(p, seed)
    row = {"N": c.size, "l": c.l, "depth": c.depth,
           **{f"ops_{m}": total(op_counts(c, m)) for m in ("forward", "grad", "hvp")}}
    with gc_paused():
        t0 = time.perf_counter()
        G = testbed.grad(c)  # built once and cached; hvp is a JVP through it
        row["wall_grad_circuit"] = time.perf_counter() - t0
    row["executor"] = "vectorised" if vec_plan(c) is not None else "sequential"
    row.update({f"wall_{k}": t for k, t in median_walls({
        "forward": lambda: c(x),
        "grad": lambda: testbed.value_and_grad(c, x),
        "hvp": lambda: testbed.hvp(c, x, v)}, p["budget"]).items()})
    row["grad_circuit_executor"] = "vectorised" if vec_plan(G) is not None else "sequential"
    row["wall_build"] = build
    return row


def hessian_cell(p: dict, seed: int) -> dict:
    """The full Hessian: l HVPs in one batched sweep, beside one HVP and jax.hessian."""
    c, x, v, build = _circuit(p, seed)
    ops_hvp = total(op_counts(c, "hvp"))
    row = {"l_sweep": p["l_sweep"], "N_sweep": p["N_sweep"], "N": c.size, "l": c.l, "depth": c.depth,
           "ops_forward": c.size, "ops_hvp": ops_hvp,
           "ops_hessian": total(op_counts(c, "hessian"))}
    H = testbed.hessian(c, x)  # also builds the gradient circuit and its plans
    row.update({f"wall_{k}": t for k, t in median_walls({
        "hvp": lambda: testbed.hvp(c, x, v),
        "hessian": lambda: testbed.hessian(c, x)}, p["budget"]).items()})
    for method in p["jax"]:
        r = jax_timed(c, x, H, method, p["budget"], transform="hessian")
        pre = "jax" if method == "scan" else "jax_unrolled"
        row.update({f"wall_{pre}_hessian_compile": r["compile"], f"wall_{pre}_hessian": r["run"],
                    f"{pre}_agrees": r["agrees"]})
    return row


def network_cell(p: dict, seed: int) -> dict:
    """(w, w, w, w, 1) tanh network, batch 64: R-pass HVP, gradient, and jax.jit jvp-of-grad."""
    nn = testbed.nn
    w = p["width"]
    sizes = net_sizes(w)
    rng = generator(seed, "hvp", "network", w)
    net = nn.init_network(sizes, "tanh", "xavier_normal", rng)
    x = rng.standard_normal((BATCH, w))
    y = rng.standard_normal((BATCH, 1))
    VW = [rng.standard_normal(Wk.shape) for Wk in net.W]
    Vb = [rng.standard_normal(bk.shape) for bk in net.b]
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
              for a, e in zip([*jW, *jb], [*HW, *Hb], strict=True))
    walls = median_walls({  # cheap calls: more repeats, for a steady ratio
        "forward": lambda: nn.loss(net, x, y),
        "grad": lambda: nn.value_and_grad(net, x, y, need_dx=False),
        "rop_hvp": lambda: nn.hvp(net, x, y, (VW, Vb)),
        "jax_hvp": lambda: jax.block_until_ready(fn(net.W, net.b, VW, Vb))},
        p["budget"], min_reps=5, max_reps=25)
    return {"width": w, "batch": BATCH, "l": net.n_params, "N": mlp_forward_ops(sizes, BATCH),
            "ops_grad": mlp_grad_ops(sizes, BATCH), "rop_matches_jax": bool(err <= AGREE),
            **{f"wall_{k}": t for k, t in walls.items()}, "wall_jax_hvp_compile": compile_s}


def cell(p: dict, seed: int) -> pd.DataFrame:
    """One cell of any part: one row."""
    fn = {"hvp": hvp_cell, "hessian": hessian_cell, "network": network_cell}[p["part"]]
    row = fn(p, seed)
    return pd.DataFrame([{"part": p["part"], "family": p.get("family", "mlp"),
                          "N_nominal": p.get("N", np.nan), **row}])


def aggregate(raw: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """Rows in grid order, the fit ranges marked: `fit` (hvp vs N; Hessian vs l and vs N)."""
    cfg = QUICK if quick else FULL
    t = raw.copy()
    hv, he = t["part"] == "hvp", t["part"] == "hessian"
    big = t["N_nominal"] >= t["family"].map(cfg["fit"])
    t["fit"] = hv & big
    if he.any():  # the Hessian's l sweep is fitted from l = 10 on, its N sweep throughout
        t["fit_l"] = he & t["l_sweep"].astype(bool) & (t["l"] >= cfg["hess_fit_l"])
        t["fit_N"] = he & t["N_sweep"].astype(bool)
    front = [c for c in ("part", "family", "l_sweep", "N_sweep", "N_nominal", "N", "l", "depth", "width",
                         "batch", "executor", "grad_circuit_executor", "fit", "fit_l", "fit_N")
             if c in t.columns]
    walls = [c for c in t.columns if c.startswith("wall_")]
    rest = [c for c in t.columns if c not in front + walls]
    return t[front + rest + walls]


# --- claims ---------------------------------------------------------------------------------------


def _slope(t: pd.DataFrame, x: str, col: str) -> tuple[float, float, float, int, str]:
    d = t[[x, col]].dropna() if col in t.columns else pd.DataFrame(columns=[x, col])
    b, lo, hi, n = loglog_fit(d[x], d[col])
    span = f"{x} = {fmt(d[x].min())}..{fmt(d[x].max())}" if n else f"{x}: no data"
    return b, lo, hi, n, span


def _describe(b: float, lo: float, hi: float, n: int, span: str) -> str:
    return f"slope {slope_text(b, lo, hi)} over {span} ({n} sizes)"


def claims(table: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """The corollary's claims, from the table alone."""
    rows = []
    hv = table[table["part"] == "hvp"]
    r = hv["ops_hvp"] / hv["ops_forward"] if len(hv) else pd.Series(dtype=float)
    by_family = "; ".join(f"{fam}: {fmt(g.min(), 4)}..{fmt(g.max(), 4)}"
                          for fam, g in r.groupby(hv["family"]))
    rows.append(claim(
        "hvp ops / forward ops is bounded by a constant over N", WHERE,
        f"max {fmt(r.max(), 4)}, median {fmt(r.median(), 4)} over {len(r)} circuits, N = "
        f"{hv['N'].min() if len(hv) else 'nan'}..{hv['N'].max() if len(hv) else 'nan'} "
        f"({by_family}); Griewank-Walther: {GRIEWANK_WALTHER[0]}-{GRIEWANK_WALTHER[1]}",
        f"<= {HVP_BOUND} at every N (3 x testbed's gradient bound 5)",
        bool(len(r)) and bool(r.notna().all()) and r.max() <= HVP_BOUND))
    for family in ("wide", "deep"):
        t = hv[(hv["family"] == family) & hv["fit"].astype(bool)]
        b, lo, hi, n, span = _slope(t, "N", "wall_hvp")
        rows.append(claim(f"circuits ({family}): hvp time grows linearly in N", WHERE,
                          _describe(b, lo, hi, n, span) + f", l = {int(hv['l'].max()) if len(hv) else 'nan'}",
                          f"slope in [{SLOPE_ONE[0]}, {SLOPE_ONE[1]}]", within(b, *SLOPE_ONE)))
    he = table[table["part"] == "hessian"]
    exact = (he["ops_hessian"] == he["l"] * he["ops_hvp"]) if len(he) else pd.Series(dtype=bool)
    per = he["ops_hessian"] / (he["N"] * he["l"]) if len(he) else pd.Series(dtype=float)
    rows.append(claim(
        "the full Hessian from l HVPs costs O(N l) operations: exactly l x hvp ops", WHERE,
        f"ops = l x hvp ops in {int(exact.sum())}/{len(he)} circuits; ops / (N l) "
        f"{fmt(per.min(), 4)}..{fmt(per.max(), 4)} (N = {he['N'].min() if len(he) else 'nan'}.."
        f"{he['N'].max() if len(he) else 'nan'}, l = {he['l'].min() if len(he) else 'nan'}.."
        f"{he['l'].max() if len(he) else 'nan'})",
        f"exact in every row, ops / (N l) <= {HVP_BOUND}",
        bool(len(he)) and bool(exact.all()) and per.max() <= HVP_BOUND))
    bl = _slope(_marked(he, "fit_l"), "l", "wall_hessian")
    bn = _slope(_marked(he, "fit_N"), "N", "wall_hessian")
    jx = _jax_vs_testbed(he)
    rows.append(claim(
        "the full Hessian's time is O(N l): at most linear in l at fixed N and in N at fixed l",
        WHERE, f"vs l: {_describe(*bl)}; vs N: {_describe(*bn)}; {jx}",
        f"both slopes <= {AT_MOST_LINEAR}",
        bool(np.isfinite(bl[0]) and np.isfinite(bn[0]) and bl[0] <= AT_MOST_LINEAR
             and bn[0] <= AT_MOST_LINEAR)))
    nw = table[table["part"] == "network"]
    ok = nw["rop_matches_jax"].astype(bool) if len(nw) else pd.Series(dtype=bool)
    rows.append(claim(
        "deep network: Pearlmutter's R-pass HVP equals jax.jit(jvp of grad)", WHERE_NN,
        f"max relative difference <= {AGREE:g} at {int(ok.sum())}/{len(nw)} widths "
        f"({', '.join(str(int(w)) for w in nw['width'])})" if len(nw) else "no data",
        f"<= {AGREE:g} relative at every width", bool(len(nw)) and bool(ok.all())))
    ratio = nw["wall_rop_hvp"] / nw["wall_grad"] if len(nw) else pd.Series(dtype=float)
    vs_jax = nw["wall_jax_hvp"] / nw["wall_rop_hvp"] if len(nw) else pd.Series(dtype=float)
    detail = ", ".join(f"w {int(w)}: {fmt(a, 2)} (jax/R {fmt(b, 2)})"
                       for w, a, b in zip(nw["width"], ratio, vs_jax, strict=True))
    rows.append(claim(
        "deep network: the R-pass HVP costs about one gradient (a constant factor)", WHERE_NN,
        f"R-pass / gradient wall time: {detail or 'no data'}; batch {BATCH}, depth 4, tanh",
        f"<= {ROP_OVER_GRAD:g} at every width ((8r - 5)/(3r - 1) = 2.45 layer matmuls at r = 4)",
        bool(len(ratio)) and bool(ratio.notna().all()) and ratio.max() <= ROP_OVER_GRAD))
    return claims_table("hvp", rows, quick)


def _marked(t: pd.DataFrame, flag: str) -> pd.DataFrame:
    """The rows with a true `flag` (none when the column is missing)."""
    return t[t[flag].astype(bool)] if flag in t.columns else t.iloc[0:0]


def _jax_vs_testbed(he: pd.DataFrame) -> str:
    if "wall_jax_hessian" not in he.columns or he["wall_jax_hessian"].notna().sum() == 0:
        return "jax.hessian: not measured"
    d = he[he["wall_jax_hessian"].notna()]
    parts = [f"N {n}, l {l}: {fmt(j / t, 2)}x" for n, l, j, t in
             zip(d["N"], d["l"], d["wall_jax_hessian"], d["wall_hessian"], strict=True)]
    return "jax.hessian (scan) / testbed.hessian time: " + ", ".join(parts)


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
        t = _marked(he, f"{x}_sweep")
        b, lo, hi, n, span = _slope(_marked(t, f"fit_{x}"), x, "wall_hessian")
        rows.append({"part": f"hessian vs {x}", "case": "wide",
                     "ops ratio": f"{fmt((t.ops_hessian / (t.N * t.l)).max(), 3)} x N l (max)",
                     "wall ratio": f"hessian/hvp {fmt((t.wall_hessian / t.wall_hvp).median(), 3)} "
                                   "(median)",
                     "slope": b, "95% lo": lo, "95% hi": hi, "fit": span})
    nw = table[table["part"] == "network"]
    for _, r in nw.iterrows():
        rows.append({"part": "network R-pass", "case": f"width {int(r.width)}",
                     "ops ratio": f"grad {fmt(r.ops_grad / r.N, 3)} x f",
                     "wall ratio": f"R/grad {fmt(r.wall_rop_hvp / r.wall_grad, 3)}, jax/R "
                                   f"{fmt(r.wall_jax_hvp / r.wall_rop_hvp, 3)}",
                     "slope": np.nan, "95% lo": np.nan, "95% hi": np.nan, "fit": ""})
    return pd.DataFrame(rows)


# --- plot -----------------------------------------------------------------------------------------


def plot(table: pd.DataFrame, fig) -> None:
    """HVP vs N; op ratios; Hessian vs l and N beside jax.hessian; the network's R-pass vs JAX."""
    fig.set_size_inches(20, 10)
    ax = fig.subplots(2, 3)
    hv = table[table["part"] == "hvp"]
    for j, family in enumerate(("wide", "deep")):
        t = hv[hv["family"] == family]
        a = ax[0, j]
        for col, color in (("forward", "C0"), ("grad", "C1"), ("hvp", "C3"),
                           ("grad_circuit", "C7")):
            a.plot(t["N"], t[f"wall_{col}"], marker="o", ms=3, color=color,
                   label=col + (" (build, once)" if col == "grad_circuit" else ""))
        fit = t[t["fit"].astype(bool)]
        b, _, _, n, _ = _slope(fit, "N", "wall_hvp")
        if n >= 2:
            a0 = np.mean(np.log(fit["wall_hvp"]) - b * np.log(fit["N"]))
            xs = np.array([fit["N"].min(), fit["N"].max()], dtype=float)
            a.plot(xs, np.exp(a0) * xs**b, "k--", lw=2, alpha=0.6, label=f"fit hvp: {b:.2f}")
        a.set(xscale="log", yscale="log", xlabel="N", ylabel="median wall time (s)",
              title=f"circuits ({family}): hvp against N, l = 10")
    for family, ls in (("wide", "-"), ("deep", "--")):
        t = hv[hv["family"] == family]
        ax[0, 2].plot(t["N"], t["ops_hvp"] / t["ops_forward"], ls, marker="o", ms=3, color="C3",
                      label=f"hvp / f ops ({family})")
        ax[0, 2].plot(t["N"], t["ops_grad"] / t["ops_forward"], ls, marker="o", ms=3, color="C1",
                      label=f"grad / f ops ({family})")
    ax[0, 2].axhspan(*GRIEWANK_WALTHER, color="C2", alpha=0.15, label="Griewank-Walther 7-10")
    ax[0, 2].axhline(HVP_BOUND, color="grey", ls=":", label=f"bound {HVP_BOUND}")
    ax[0, 2].set(xscale="log", xlabel="N", ylabel="ops / forward ops",
                 title="exact op counts relative to f")
    he = table[table["part"] == "hessian"]
    for j, x in enumerate(("l", "N")):
        t = _marked(he, f"{x}_sweep")
        a = ax[1, j]
        a.plot(t[x], t["wall_hessian"], marker="o", color="C3", label="testbed.hessian (l HVPs)")
        a.plot(t[x], t["wall_hvp"], marker="o", color="C1", label="one hvp")
        for col, color, lab in (("wall_jax_hessian", "C7", "jax.hessian, scan"),
                                ("wall_jax_unrolled_hessian", "C8", "jax.hessian, unrolled")):
            if col in t.columns and t[col].notna().any():
                d = t[[x, col]].dropna()
                a.plot(d[x], d[col], "s--", color=color, label=lab)
        fixed = f"N ~ {int(t['N_nominal'].iloc[0])}" if x == "l" and len(t) else "l = 10"
        a.set(xscale="log", yscale="log", xlabel=x, ylabel="median wall time (s)",
              title=f"full Hessian against {x} ({fixed}, wide); jax compile not included")
    nw = table[table["part"] == "network"]
    a = ax[1, 2]
    for col, color, lab in (("wall_forward", "C0", "forward"), ("wall_grad", "C1", "gradient"),
                            ("wall_rop_hvp", "C3", "R-pass HVP (numpy)"),
                            ("wall_jax_hvp", "C7", "jax.jit jvp-of-grad")):
        if col in nw.columns:
            a.plot(nw["width"], nw[col], marker="o", color=color, label=lab)
    a.set(xscale="log", yscale="log", xlabel="width w of (w, w, w, w, 1)",
          ylabel="median wall time (s)", title=f"deep network, batch {BATCH}, tanh")
    for a in ax.flat:
        if not a.lines:
            a.set(xscale="linear", yscale="linear")
            a.text(0.5, 0.5, "no data", ha="center", transform=a.transAxes)
            continue
        a.legend(fontsize=7)
        a.grid(True, alpha=0.3)


STUDY = Study(
    name="hvp",
    title="Hessian-vector products in O(N + l), Hessians in O(N l)",
    where=WHERE,
    grid=grid, cell=cell, aggregate=aggregate, claims=claims, plot=plot, summarise=summarise,
    notes=(
        "Part `hvp`: random circuits (l = 10, N_nominal 10^2..10^6, 1-2-5, denser above 10^5), "
        "exact op counts and "
        "median wall times; `wall_grad_circuit` is the one-off cost of building grad(c), which "
        "hvp then reuses (not in `wall_hvp`). The slope is fitted over wide N >= 10^5 (vectorised "
        "executor, overhead negligible) and deep N >= 10^4. Part `hessian` (wide family): "
        "`testbed.hessian`, the l HVPs in one batched sweep, against l at N ~ 10^3 and against N "
        "at l = 10, beside `jax.jit(jax.hessian(to_jax(c, 'scan')))` (and the unrolled version "
        "at N = 100) where it compiles in seconds; compile times in `wall_*_compile`. O(N l) is "
        "an upper bound: the claim checks that neither slope exceeds 1.1 (fit over l >= 10). "
        "Part `network`: (w, w, w, w, 1) tanh networks, batch 64, Pearlmutter's R-pass "
        "(`testbed.nn.hvp`) against `jax.jit` of `jax.jvp(jax.grad(J))` (one XLA thread, like "
        "numpy's one BLAS thread per worker). Times are timeit-style medians as in `complexity`. "
        "In --quick mode the circuit sizes are too small for "
        "the wall-time slopes; the exact counts and the network claims hold at any size."),
)
