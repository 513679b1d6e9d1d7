"""Study `gradients`: vanishing and exploding gradients against mean-field theory.

Notes, "Vanishing/Exploding Gradients": backprop multiplies by W[k]^T and sigma'(z[k]) at every
layer, dJ/dz[k-1] = (W[k]^T dJ/dz[k]) ⊙ sigma'(z[k-1]), so norms change geometrically with depth.
Mean field (Schoenholz et al. 2017), weights N(0, sigma_w^2/n), no biases:

    E||dJ/dz[k]||^2 = chi_1(q^k) E||dJ/dz[k+1]||^2,   chi_1(q) = sigma_w^2 E[phi'(sqrt(q) g)^2],

so the per-layer growth of ||dJ/dz[k]|| going backwards is 1/2 log chi_1(q*) far from the input,
and 1/2 log chi_1(q^k) at each layer's own q^k near it. Measured: networks of depth L (L weight
layers, L - 1 hidden, all of width n, linear output of width n), batch B, S seeds; per layer the RMS
over seeds of the Frobenius norms of dJ/dz[k] and dJ/dW[k]. The growth is the least-squares slope of
log ||dJ/dz[k]|| against L - k over layers k = 2..L (layer 1 sees the input, whose q^1 = sigma_w^2
is not q*).

Two targets: `independent` (dJ/dtau = e / B with e ~ N(0, 1) independent of the network, i.e.
y = tau - e: the error signal mean-field theory assumes) and `zero` (y = 0, where a linear network
at criticality has E||dJ/dz[k]||^2 / ||dJ/dz[L]||^2 = L - k + 1: the law the criticality claim
compares with).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from testbed.nn import backward, forward, init_network

from . import meanfield as mf
from ._claims import claim, claims_table, fmt
from ._seeds import generator
from ._study import Study

WHERE = "notes: Vanishing/Exploding Gradients"
ACTIVATIONS = ("sigmoid", "tanh", "relu")
SIGMA_W2 = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
CRITICAL = {("relu", 2.0), ("tanh", 1.0)}
OFF_CRITICAL = 0.1  # |log chi_1| above this is "off criticality" (the threshold)

FULL = {"width": 256, "B": 64, "seeds": 8, "depths": (5, 10, 20, 30, 50)}
QUICK = {"width": 32, "B": 8, "seeds": 2, "depths": (5, 10, 20, 30)}


def grid(quick: bool) -> list[dict]:
    """activation x sigma_w^2 x depth x target, plus sigmoid with Glorot's standard init."""
    cfg = QUICK if quick else FULL
    inits = [(act, "scaled_normal", sw2) for act in ACTIVATIONS for sw2 in SIGMA_W2]
    inits.append(("sigmoid", "standard", 1.0 / 3.0))  # U[-1/sqrt(n), 1/sqrt(n)]: n Var(w) = 1/3
    return [{"activation": act, "init": init, "sigma_w2": sw2, "depth": L, "target": target,
             "width": cfg["width"], "B": cfg["B"], "seeds": cfg["seeds"]}
            for target in ("independent", "zero")
            for act, init, sw2 in inits
            for L in cfg["depths"]]


def cell(p: dict, seed: int) -> pd.DataFrame:
    """||dJ/dz[k]||_F and ||dJ/dW[k]||_F for k = 1..L, for each of the cell's seeds."""
    n, B, L = p["width"], p["B"], p["depth"]
    kw = {"sigma_w": float(np.sqrt(p["sigma_w2"]))} if p["init"] == "scaled_normal" else {}
    key = ("gradients", p["activation"], p["init"], p["sigma_w2"], L, p["target"], n, B)
    rows: dict[str, list] = {c: [] for c in ("replicate", "k", "dz_norm", "dW_norm")}
    for rep in range(p["seeds"]):
        rng = generator(seed, *key, rep)
        net = init_network([n] * (L + 1), p["activation"], p["init"], rng, **kw)
        x = rng.standard_normal((B, n))
        cache = forward(net, x)
        if p["target"] == "independent":
            y = cache.tau - rng.standard_normal((B, n))  # dJ/dtau = e / B
        else:
            y = np.zeros_like(cache.tau)
        grads = backward(net, cache, y, need_dx=False)
        for k in range(1, L + 1):
            rows["replicate"].append(rep)
            rows["k"].append(k)
            rows["dz_norm"].append(float(np.linalg.norm(grads.dz[k])))
            rows["dW_norm"].append(float(np.linalg.norm(grads.dW[k - 1])))
    df = pd.DataFrame(rows)
    for c in ("activation", "init", "sigma_w2", "depth", "target", "width", "B"):
        df[c] = p[c]
    return df


# --- theory and aggregation -----------------------------------------------------------------------
CELL_KEYS = ["activation", "init", "sigma_w2", "depth", "target", "width", "B"]


@functools.cache
def _chi1_star(activation: str, sigma_w2: float) -> float:
    """chi_1 at the fixed point q* (no biases); relu's chi_1 = sigma_w^2/2 does not depend on q."""
    q_star = mf.fixed_point(activation, sigma_w2)
    if not np.isfinite(q_star):
        q_star = 1.0  # relu/identity with no finite q*: chi_1 is the same at every q
    return mf.chi1(activation, sigma_w2, q_star)


@functools.cache
def _meanfield_curve(activation: str, sigma_w2: float, L: int) -> tuple[np.ndarray, np.ndarray]:
    """(q^k, chi_1(q^k)) for k = 1..L: inputs N(0, 1), so q^1 = sigma_w^2."""
    q = mf.forward_q(activation, [sigma_w2] * L, 0.0, x_second_moment=1.0)
    return q, np.array([mf.chi1(activation, sigma_w2, qk) for qk in q])


def aggregate(raw: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """Per cell and layer: RMS norms over seeds, their SE, and the mean-field prediction."""
    g = raw.groupby(CELL_KEYS + ["k"], sort=False)
    table = g.size().rename("seeds").reset_index()
    for q in ("dz", "dW"):
        sq = raw[f"{q}_norm"] ** 2
        stats = sq.groupby([raw[c] for c in CELL_KEYS + ["k"]], sort=False).agg(["mean", "std"])
        mean2, sd2 = stats["mean"].to_numpy(), stats["std"].to_numpy()
        table[f"{q}_norm"] = np.sqrt(mean2)
        # SE of the RMS, relative: half the relative SE of the mean square
        table[f"{q}_se_rel"] = 0.5 * sd2 / mean2 / np.sqrt(table["seeds"].to_numpy())
    cols = {c: np.empty(len(table)) for c in ("q_mf", "chi1_q", "chi1_qstar", "dz_norm_mf")}
    dz, k_all = table["dz_norm"].to_numpy(), table["k"].to_numpy()
    for keys, rows in table.groupby(CELL_KEYS, sort=False).indices.items():
        act, sw2 = keys[0], float(keys[2])
        rows = rows[np.argsort(k_all[rows])]  # layers k = 1..L
        q, chi = _meanfield_curve(act, sw2, len(rows))
        # ||dJ/dz[k]||^2 = ||dJ/dz[L]||^2 prod_{l=k}^{L-1} chi_1(q^l), anchored at the top
        log_pred = np.append(np.cumsum(np.log(chi[:-1])[::-1])[::-1], 0.0)
        cols["q_mf"][rows], cols["chi1_q"][rows] = q, chi
        cols["chi1_qstar"][rows] = _chi1_star(act, sw2)
        cols["dz_norm_mf"][rows] = dz[rows[-1]] * np.exp(0.5 * log_pred)
    for c, v in cols.items():
        table[c] = v
    return table


def _slope(x: np.ndarray, v: np.ndarray) -> float:
    """Least-squares slope of log v against x (NaN unless every v is finite and > 0)."""
    if len(v) < 2 or not np.all(np.isfinite(v) & (v > 0)):
        return float("nan")
    return float(np.polyfit(x, np.log(v), 1)[0])


def power_fit(j: np.ndarray, v: np.ndarray) -> tuple[float, float, float]:
    """(p, g, p_alone) for j = L - k: log v = c + p log(j+1) + g j over k = 1..L, and the power
    p_alone of c + p log(j+1) without the exponential term."""
    if len(v) < 3 or not np.all(np.isfinite(v) & (v > 0)):
        return float("nan"), float("nan"), float("nan")
    y = np.log(v)
    A = np.column_stack([np.ones_like(j), np.log(j + 1), j])
    _, p, gr = np.linalg.lstsq(A, y, rcond=None)[0]
    return float(p), float(gr), _slope(np.log(j + 1), v)


def depth_rate(cells: pd.DataFrame) -> float:
    """Slope against L of R(L) = log(||dJ/dz[1]|| / ||dJ/dz[L]||) over the given cells' depths."""
    if cells["depth"].nunique() < 2:
        return float("nan")
    R = -np.log(10) * cells["log10 |dz[L]|/|dz[1]|"].to_numpy()
    return float(np.polyfit(cells["depth"].to_numpy(float), R, 1)[0])


FIT_COLUMNS = CELL_KEYS + ["seeds", "log10 |dz[L]|/|dz[1]|", "growth", "growth_qstar", "growth_qk",
                           "chi1_qstar", "growth_dW", "power", "power_joint", "growth_joint"]


def fits(table: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: measured growth beside 1/2 log chi_1(q*) and the q^k-product fit."""
    rows = []
    k_all = table["k"].to_numpy()
    arrays = {c: table[c].to_numpy() for c in ("dz_norm", "dW_norm", "dz_norm_mf", "chi1_qstar",
                                               "seeds")}
    for keys, idx in table.groupby(CELL_KEYS, sort=False).indices.items():
        idx = idx[np.argsort(k_all[idx])]
        L = int(keys[CELL_KEYS.index("depth")])
        j = (L - k_all[idx]).astype(float)
        tail = k_all[idx] >= 2  # the fit range k = 2..L
        dzn = arrays["dz_norm"][idx]
        chi_star = float(arrays["chi1_qstar"][idx[0]])
        p, g_joint, p_alone = power_fit(j, dzn)
        row = dict(zip(CELL_KEYS, keys, strict=True))
        row.update({
            "seeds": int(arrays["seeds"][idx[0]]),
            "log10 |dz[L]|/|dz[1]|": float(np.log10(dzn[-1] / dzn[0])),
            "growth": _slope(j[tail], dzn[tail]),
            "growth_qstar": 0.5 * np.log(chi_star),
            "growth_qk": _slope(j[tail], arrays["dz_norm_mf"][idx][tail]),
            "chi1_qstar": chi_star,
            "growth_dW": _slope(j[tail], arrays["dW_norm"][idx][tail]),
            "power": p_alone, "power_joint": p, "growth_joint": g_joint,
        })
        rows.append(row)
    return pd.DataFrame(rows, columns=FIT_COLUMNS)


# --- claims ---------------------------------------------------------------------------------------
def claims(table: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """The issue's claims, from the per-layer table (fits recomputed here)."""
    f = fits(table)
    ind = f[f["target"] == "independent"]
    rows = []
    # 1. sigmoid, standard init, depth 20
    s = ind[(ind["activation"] == "sigmoid") & (ind["init"] == "standard") & (ind["depth"] == 20)]
    if len(s):
        r = s.iloc[0]
        loss_factor = 10 ** r["log10 |dz[L]|/|dz[1]|"]
        decay, theory = np.exp(r["growth"]), np.sqrt(r["chi1_qstar"])
        holds = loss_factor > 1e3 and abs(decay / theory - 1) <= 0.05
        measured = (f"|dJ/dz[L]| / |dJ/dz[1]| = {fmt(loss_factor)}; per-layer decay over k=2..20 "
                    f"{fmt(decay, 4)} = {fmt(decay / theory, 4)} x sqrt(chi_1)")
    else:
        holds, measured = False, "no data"
    rows.append(claim("sigmoid with standard init loses more than 10^3 between the last and first "
                      "layer at depth 20, decaying per layer by sqrt(chi_1)", WHERE, measured,
                      "> 1e3; decay within 5% of sqrt(chi_1(q*)) "
                      f"= {fmt(np.sqrt(r['chi1_qstar']), 4) if len(s) else 'nan'}", holds))
    # 2-3. off criticality: sign at depth >= 10, size within 20% at depth >= 20
    off = ind[(ind["init"] == "scaled_normal") & (np.log(ind["chi1_qstar"]).abs() > OFF_CRITICAL)]
    for act in ACTIVATIONS:
        a = off[(off["activation"] == act) & (off["depth"] >= 10)]
        ok = np.sign(a["growth"]) == np.sign(a["growth_qstar"])
        bad = a[~ok]
        rows.append(claim(
            f"{act}, off criticality (|log chi_1| > 0.1), depth >= 10: the fitted growth has the "
            "sign of log chi_1 in every cell", "Schoenholz et al. 2017 (ANCHORS)",
            f"{int(ok.sum())}/{len(a)} cells agree" + (
                "; disagree: " + ", ".join(f"sw2={b.sigma_w2:g} L={b.depth}"
                                            for b in bad.itertuples()) if len(bad) else ""),
            f"{len(a)}/{len(a)}", bool(len(a)) and bool(ok.all())))
    for act in ACTIVATIONS:
        a = off[(off["activation"] == act) & (off["depth"] >= 20)]
        rel = (a["growth"] / a["growth_qstar"] - 1).abs()
        i = int(np.argmax(rel.to_numpy())) if len(a) else -1
        worst = a.iloc[i] if len(a) else None
        rows.append(claim(
            f"{act}, off criticality, depth >= 20: fitted growth within 20% of 1/2 log chi_1(q*) "
            "in every cell", "Schoenholz et al. 2017 (ANCHORS)",
            (f"worst {100 * rel.max():.1f}% off (sw2={worst['sigma_w2']:g}, L={worst['depth']}: "
             f"{fmt(worst['growth'])} vs {fmt(worst['growth_qstar'])}; q^k-product fit "
             f"{fmt(worst['growth_qk'])}); {len(a)} cells") if len(a) else "no data",
            "<= 20% in every cell", bool(len(a)) and bool((rel <= 0.2).all())))
    # 4. criticality: no exponential trend. An exponential trend with rate g makes the log-ratio
    # R(L) = log(||dJ/dz[1]|| / ||dJ/dz[L]||) grow like g L; a power law only like log L. So the
    # slope of R against L over the depths >= 10 is the exponential rate, compared with the
    # off-criticality threshold 1/2 * 0.1 (|log chi_1| > 0.1 <=> |g| > 0.05). Target y = 0.
    z = f[(f["target"] == "zero") & (f["init"] == "scaled_normal") & (f["depth"] >= 10)]
    off_z = z[np.log(z["chi1_qstar"]).abs() > OFF_CRITICAL]
    others = [depth_rate(off_z[(off_z["activation"] == act) & (off_z["sigma_w2"] == sw2)])
              for act in ACTIVATIONS for sw2 in SIGMA_W2]
    others = np.abs([o for o in others if np.isfinite(o)])
    for act, sw2 in sorted(CRITICAL):
        c = z[(z["activation"] == act) & (z["sigma_w2"] == sw2)]
        rate = depth_rate(c)
        per_depth = "; ".join(
            f"L={L}: R={-np.log(10) * lr:+.2f}, power {p:.2f}" for L, lr, p in
            zip(c["depth"], c["log10 |dz[L]|/|dz[1]|"], c["power"], strict=True))
        rows.append(claim(
            f"{act} at criticality (sigma_w^2={sw2:g}, y = 0): no exponential trend in "
            "||dJ/dz[k]||; the measured curve beside the linear-network law sqrt(L-k+1)",
            "ANCHORS (edge of chaos; linear-network law)",
            f"slope of R(L) = log(||dJ/dz[1]||/||dJ/dz[L]||) over L >= 10: {rate:+.4f} per layer "
            f"({per_depth}; power p of (L-k+1)^p fitted per depth)"
            + (f"; off-criticality cells: |slope| {others.min():.3f} to {others.max():.3f}"
               if len(others) else ""),
            "|slope| < 0.05 per layer (the off-criticality threshold |log chi_1| = 0.1); power "
            "0.5 for a linear network", bool(np.isfinite(rate) and abs(rate) < 0.5 * OFF_CRITICAL)))
    return claims_table("gradients", rows, quick)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """The per-cell fits (independent target first)."""
    return fits(table)


# --- plot -----------------------------------------------------------------------------------------
def plot(table: pd.DataFrame, fig) -> None:
    """Heat-maps of log10 |dz[L]|/|dz[1]|; measured vs predicted growth; criticality curves."""
    fig.set_size_inches(18, 10)
    axes = fig.subplots(2, 3)
    f = fits(table)
    ind = f[(f["target"] == "independent") & (f["init"] == "scaled_normal")]
    for ax, act in zip(axes[0], ACTIVATIONS, strict=True):
        a = ind[ind["activation"] == act]
        heat = a.pivot(index="depth", columns="sigma_w2", values="log10 |dz[L]|/|dz[1]|")
        lim = max(1.0, float(np.nanmax(np.abs(heat.to_numpy())))) if len(a) else 1.0
        im = ax.imshow(heat.to_numpy(), cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto",
                       origin="lower")
        ax.set_xticks(range(len(heat.columns)), [f"{c:g}" for c in heat.columns])
        ax.set_yticks(range(len(heat.index)), [str(i) for i in heat.index])
        growth_map = a.pivot(index="depth", columns="sigma_w2", values="growth")
        for (i, j), val in np.ndenumerate(growth_map.to_numpy()):
            ax.text(j, i, f"{val:+.2f}", ha="center", va="center", fontsize=7)
        ax.set(xlabel="sigma_w^2", ylabel="depth L",
               title=f"{act}: log10 |dJ/dz[L]|/|dJ/dz[1]| (text: growth per layer)")
        fig.colorbar(im, ax=ax)
    ax = axes[1, 0]
    for i, act in enumerate(ACTIVATIONS):
        a = ind[(ind["activation"] == act) & (ind["depth"] >= 10)]
        ax.scatter(a["growth_qstar"], a["growth"], s=12, color=f"C{i}", label=f"{act} vs q*")
        ax.scatter(a["growth_qk"], a["growth"], s=12, marker="x", color=f"C{i}",
                   label=f"{act} vs q^k product")
    lims = [-2.2, 0.6]
    ax.plot(lims, lims, "k--", lw=1)
    ax.set(xlabel="predicted growth per layer", ylabel="fitted growth (k = 2..L)",
           title="measured vs mean field (depth >= 10, independent error)")
    ax.legend(fontsize=7)
    for ax, (act, sw2) in zip(axes[1, 1:], sorted(CRITICAL), strict=True):
        z = table[(table["target"] == "zero") & (table["activation"] == act)
                  & (table["sigma_w2"] == sw2) & (table["init"] == "scaled_normal")]
        for i, (L, t) in enumerate(z.groupby("depth")):
            j = L - t["k"].to_numpy() + 1
            ax.loglog(j, t["dz_norm"] / t["dz_norm"].iloc[-1], "o-", ms=3, color=f"C{i}",
                      label=f"L={L}")
        jj = np.arange(1, int(z["depth"].max()) + 1) if len(z) else np.arange(1, 2)
        ax.loglog(jj, np.sqrt(jj), "k--", label="sqrt(L-k+1)")
        ax.set(xlabel="L - k + 1", ylabel="||dJ/dz[k]|| / ||dJ/dz[L]||",
               title=f"{act}, sigma_w^2={sw2:g}, y = 0 (criticality)")
        ax.legend(fontsize=7)


STUDY = Study(
    name="gradients",
    title="Vanishing and exploding gradients against mean-field chi_1",
    where=WHERE,
    grid=grid, cell=cell, aggregate=aggregate, claims=claims, plot=plot, summarise=summarise,
    notes=("Width 256, batch 64, 8 seeds per cell, depths 5-50 (--quick: width 32, batch 8, "
           "2 seeds, depths 5-30); weights N(0, sigma_w^2/n) (and Glorot's "
           "standard U[-1/sqrt(n), 1/sqrt(n)] for sigmoid), no biases, inputs N(0, 1). "
           "`dz_norm` is the RMS over seeds of ||dJ/dz[k]||_F, `dz_norm_mf` the mean-field "
           "product of chi_1(q^l) for l = k..L-1 anchored at the measured top layer. The summary "
           "lists per cell the fitted growth (slope of log ||dJ/dz[k]|| against L - k over "
           "k = 2..L) beside 1/2 log chi_1(q*) and the same fit of the q^k-product curve, and for "
           "target y = 0 the power p of ||dJ/dz[k]|| ~ (L-k+1)^p."),
)
