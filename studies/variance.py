"""Study `variance`: Xavier's variance propagation, measured layer by layer against two theories.

Notes, "Xavier initialization": for o_i = sum_j w_ij x_j with independent zero-mean terms,

    Var(o) = n Var(w) Var(x),    and the heuristic  1/2 (n_in + n_out) Var(w) = 1.

Measured on deep networks (inputs x ~ N(0, 1), output error dJ/dtau = e / B with e ~ N(0, 1) drawn
independently of the network, i.e. the target y = tau - e, so that the backward pass carries an
error independent of the weights as both theories assume): per layer k the mean over seeds of
Var(z[k]), Var(a[k]), Var(dJ/dz[k]) and Var(dJ/dW[k]) (variance over all entries of the batch),
its standard error and 95% interval (mean +- 1.96 SE), and the single-network spread (std over
seeds / mean). Beside them:

- `*_notes`: the notes' formula chained through the layers with activations taken as linear,
  Var(z[k]) = Var(x) prod_{l<=k} n[l-1] Var(w[l]), backward prod_{l>k} n[l] Var(w[l]) from the
  measured Var(dJ/dz[r]), and Var(dJ/dW[k]) = B Var(dJ/dz[k]) Var(a[k-1]);
- `*_mf`: the mean-field recursion q^k (studies.meanfield), with E[phi^2] carried forward and
  E[phi'^2] at each layer's own q^k going backward; Var(dJ/dW[k]) = B E[dJ/dz[k]^2] E[a[k-1]^2].

Architectures: depth 30 (hidden layers) x width 256; the same with widths alternating 128/512
(n_in != n_out); Glorot & Bengio's 5 x 1000 tanh. Plus one-layer networks o = W x for the notes'
formula and its sampling spread (studies.meanfield.one_layer_spread).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from testbed.nn import backward, forward, init_network
from testbed.nn import variance as init_variance

from . import meanfield as mf
from ._claims import claim, claims_table, fmt, within
from ._seeds import generator
from ._study import Study

WHERE = "notes: Initializing Parameters / Xavier Initialization"
Z95 = 1.96  # 95% intervals: normal approximation to the mean over seeds
SE_TARGET = 0.03  # claims rest on averages whose standard error is below 3%
QUANTITIES = ("z", "a", "dz", "dW")
ACTIVATIONS = ("identity", "tanh", "relu", "sigmoid")
INITS = {  # label -> (testbed initialiser, its keyword arguments)
    "standard": ("standard", {}),
    "xavier_normal": ("xavier_normal", {}),
    "xavier_uniform": ("xavier_uniform", {}),
    "he_normal": ("he_normal", {}),
    "normal(0.01)": ("normal", {"std": 0.01}),
}
MF_GRID = [(sw2, sb2) for sw2 in (1.0, 1.5, 2.0) for sb2 in (0.0, 0.05)]

# Sizes. Quick mode keeps depth 30 and the code path, with narrower layers and fewer seeds.
# Seeds per configuration: linear networks carry the per-layer claims at the largest spread (up to
# 20% for one network at k = 30 with widths 128/512), the mean-field grid per-layer claims at up to
# 10%; the others' claims rest on fitted factors, whose jackknife SE is far below 3% already.
FULL = {"depth": 30, "width": 256, "alt": (128, 512), "glorot": (5, 1000), "B": 128,
        "seeds": {"identity": 64, "mf": 48, "other": 24}, "glorot_seeds": 16, "chunk": 16,
        "one_layer": [(256, 256, 1024), (1000, 1000, 8), (16, 16, 4096)], "one_layer_seeds": 200}
QUICK = {"depth": 30, "width": 32, "alt": (16, 64), "glorot": (5, 128), "B": 16,
         "seeds": {"identity": 4, "mf": 4, "other": 4}, "glorot_seeds": 4, "chunk": 8,
         "one_layer": [(64, 64, 256), (250, 250, 8), (16, 16, 1024)], "one_layer_seeds": 40}


def _arch_sizes(arch: str, cfg: dict) -> list[int]:
    """(n[0], ..., n[r]): hidden layers, then one linear output unit."""
    if arch == "deep":
        return [cfg["width"]] * (cfg["depth"] + 1) + [1]
    if arch == "alt":
        lo, hi = cfg["alt"]
        return [lo if k % 2 == 0 else hi for k in range(cfg["depth"] + 1)] + [1]
    depth, width = cfg["glorot"]
    return [width] * (depth + 1) + [1]


def _chunks(n: int, size: int) -> list[list[int]]:
    return [list(range(i, min(n, i + size))) for i in range(0, n, size)]


def grid(quick: bool) -> list[dict]:
    """One-layer cells, then deep configurations; each split into chunks of seeds."""
    cfg = QUICK if quick else FULL
    cells = []
    for n, m, B in cfg["one_layer"]:
        for reps in _chunks(cfg["one_layer_seeds"], cfg["one_layer_seeds"] // 4):
            cells.append({"kind": "one_layer", "config": f"one-layer {n}x{m} B={B}",
                          "n": n, "m": m, "B": B, "replicates": reps})
    deep = []
    for arch in ("deep", "alt"):
        for act in ACTIVATIONS:
            for label, (init, kw) in INITS.items():
                seeds = cfg["seeds"]["identity" if act == "identity" else "other"]
                deep.append((arch, act, label, init, kw, np.nan, 0.0, seeds))
    for label, (init, kw) in INITS.items():
        deep.append(("glorot", "tanh", label, init, kw, np.nan, 0.0, cfg["glorot_seeds"]))
    for sw2, sb2 in MF_GRID:
        kw = {"sigma_w": float(np.sqrt(sw2)), "bias_std": float(np.sqrt(sb2))}
        deep.append(("deep", "tanh", f"mf sw2={sw2:g} sb2={sb2:g}", "scaled_normal", kw, sw2,
                     sb2, cfg["seeds"]["mf"]))
    for arch, act, label, init, kw, sw2, sb2, seeds in deep:
        sizes = _arch_sizes(arch, cfg)
        for reps in _chunks(seeds, cfg["chunk"]):
            cells.append({"kind": "deep", "config": f"{arch}/{act}/{label}", "arch": arch,
                          "activation": act, "init": label, "initialiser": init,
                          "init_kwargs": kw, "sigma_w2": sw2, "sigma_b2": sb2, "sizes": sizes,
                          "B": cfg["B"], "replicates": reps})
    return cells


def _one_layer_cell(p: dict, seed: int) -> pd.DataFrame:
    """Var(o) = mean(o^2) of o = W x for xavier_normal W (m x n) and x ~ N(0, 1) (n x B)."""
    n, m, B = p["n"], p["m"], p["B"]
    var_w = init_variance("xavier_normal", n, m)
    rows = []
    for rep in p["replicates"]:
        rng = generator(seed, "variance", p["config"], rep)
        net = init_network([n, m], "identity", "xavier_normal", rng)
        x = rng.standard_normal((B, n))
        o = forward(net, x).z[1]
        # mean square, not np.var: the formula is about E o^2 with E o = 0 known
        rows.append({"replicate": rep, "var_o": float(np.mean(o * o))})
    df = pd.DataFrame(rows)
    df.insert(0, "config", p["config"])
    df["n"], df["m"], df["B"], df["var_w"] = n, m, B, var_w
    return df


def _deep_cell(p: dict, seed: int) -> pd.DataFrame:
    """Per replicate and layer: Var of z[k], a[k], dJ/dz[k], dJ/dW[k] over the batch's entries."""
    sizes, B = p["sizes"], p["B"]
    r = len(sizes) - 1
    kw = dict(p["init_kwargs"])
    w_kw = {k: v for k, v in kw.items() if k != "bias_std"}
    var_w = [init_variance(p["initialiser"], sizes[k - 1], sizes[k], **w_kw)
             for k in range(1, r + 1)]
    out = {q: [] for q in ("replicate", "k", "var_z", "var_a", "var_dz", "var_dW")}
    for rep in p["replicates"]:
        rng = generator(seed, "variance", p["config"], rep)
        net = init_network(sizes, p["activation"], p["initialiser"], rng, **kw)
        x = rng.standard_normal((B, sizes[0]))
        e = rng.standard_normal((B, sizes[-1]))
        cache = forward(net, x)
        grads = backward(net, cache, cache.tau - e, need_dx=False)  # dJ/dtau = e / B
        for k in range(1, r + 1):
            out["replicate"].append(rep)
            out["k"].append(k)
            out["var_z"].append(float(np.var(cache.z[k])))
            out["var_a"].append(float(np.var(cache.a[k])))
            out["var_dz"].append(float(np.var(grads.dz[k])))
            out["var_dW"].append(float(np.var(grads.dW[k - 1])))
    df = pd.DataFrame(out)
    for col in ("config", "arch", "activation", "init"):
        df[col] = p[col]
    df["sigma_w2"], df["sigma_b2"], df["B"] = p["sigma_w2"], p["sigma_b2"], B
    ks = df["k"].to_numpy()
    df["n_in"] = np.asarray(sizes[:-1])[ks - 1]
    df["n_out"] = np.asarray(sizes[1:])[ks - 1]
    df["var_w"] = np.asarray(var_w)[ks - 1]
    return df


def cell(params: dict, seed: int) -> pd.DataFrame:
    """One grid cell (a chunk of seeds of one configuration)."""
    if params["kind"] == "one_layer":
        return _one_layer_cell(params, seed)
    return _deep_cell(params, seed)


# --- aggregation ----------------------------------------------------------------------------------
TABLE_KEYS = ["config", "arch", "activation", "init", "sigma_w2", "sigma_b2", "k", "n_in",
              "n_out", "var_w", "B", "seeds"]


def _theory(layers: pd.DataFrame, activation: str, sigma_b2: float, B: int,
            top_dz: float) -> dict[str, np.ndarray]:
    """Chained-notes and mean-field predictions for one configuration's layers k = 1..r."""
    n_in, n_out = layers["n_in"].to_numpy(), layers["n_out"].to_numpy()
    var_w = layers["var_w"].to_numpy()
    r = len(layers)
    # notes: activations taken as linear, so Var(a[k]) = Var(z[k]); the output layer is linear
    z_notes = mf.chained_forward(n_in * var_w, var_x=1.0)
    dz_notes = mf.chained_backward(n_out * var_w, top=top_dz)
    a_prev_notes = np.concatenate([[1.0], z_notes[:-1]])
    # mean field: the output layer (k = r) is linear, so its a[r] = z[r]
    q = mf.forward_q(activation, n_in * var_w, sigma_b2, x_second_moment=1.0)
    mom = [mf.moments(activation, qk) for qk in q]
    a_mf = np.array([m["var"] for m in mom[:-1]] + [q[-1]])
    second_prev = np.array([1.0] + [m["second"] for m in mom[:-1]])
    dz2 = mf.backward_second_moment(activation, q, n_out * var_w, top=top_dz)
    return {"z_notes": z_notes, "a_notes": z_notes, "dz_notes": dz_notes,
            "dW_notes": B * dz_notes * a_prev_notes,
            "z_mf": q, "a_mf": a_mf, "dz_mf": dz2, "dW_mf": B * dz2 * second_prev,
            "k": np.arange(1, r + 1)}


def _factor_jackknife(rows: pd.DataFrame) -> float:
    """Relative jackknife SE, over seeds, of the fitted per-layer factor of mean Var(z[k]).

    The factor's own standard error: one network drifts like a random walk from layer to layer,
    so the per-layer SEs (large at k = 30 for relu) overstate the uncertainty of a fit over k.
    """
    hidden = rows[rows["k"] < rows["k"].max()]
    v = hidden.pivot(index="replicate", columns="k", values="var_z").to_numpy()
    S, k = v.shape[0], hidden["k"].unique().astype(float)
    if S < 2:
        return float("nan")
    full = fitted_factor(np.sort(k), v.mean(axis=0))
    loo = np.array([fitted_factor(np.sort(k), (v.sum(axis=0) - v[i]) / (S - 1)) for i in range(S)])
    return float(np.sqrt((S - 1) / S * np.sum((loo - loo.mean()) ** 2)) / full)


def _aggregate_deep(raw: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in TABLE_KEYS if c != "seeds"]
    g = raw.groupby(keys, sort=False, dropna=False)
    table = g.size().rename("seeds").reset_index()
    for q in QUANTITIES:
        stats = g[f"var_{q}"].agg(["mean", "std"]).reset_index(drop=True)
        mean, sd = stats["mean"].to_numpy(), stats["std"].to_numpy()
        se = sd / np.sqrt(table["seeds"].to_numpy())
        with np.errstate(invalid="ignore", divide="ignore"):
            # 0/0 when a quantity is exactly 0 in every seed (a sigmoid net that forgot its input)
            table[f"{q}_mean"] = mean
            table[f"{q}_se_rel"] = se / mean
            table[f"{q}_ci_lo"] = mean - Z95 * se
            table[f"{q}_ci_hi"] = mean + Z95 * se
            table[f"{q}_spread"] = sd / mean
    parts = []
    for config, t in table.groupby("config", sort=False):
        t = t.sort_values("k").copy()
        t["z_factor_se_rel"] = _factor_jackknife(raw[raw["config"] == config])
        top = float(t["dz_mean"].iloc[-1])
        th = _theory(t, t["activation"].iloc[0], float(t["sigma_b2"].iloc[0]),
                     int(t["B"].iloc[0]), top)
        for q in QUANTITIES:
            t[f"{q}_notes"] = th[f"{q}_notes"]
            t[f"{q}_mf"] = th[f"{q}_mf"]
        parts.append(t)
    return pd.concat(parts, ignore_index=True)


def _aggregate_one_layer(raw: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for config, t in raw.groupby("config", sort=False):
        n, m, B, var_w = (int(t["n"].iloc[0]), int(t["m"].iloc[0]), int(t["B"].iloc[0]),
                          float(t["var_w"].iloc[0]))
        v = t["var_o"].to_numpy()
        S = len(v)
        mean, sd = v.mean(), v.std(ddof=1)
        se = sd / np.sqrt(S)
        rows.append({"config": config, "arch": "one-layer", "activation": "identity",
                     "init": "xavier_normal", "sigma_w2": np.nan, "sigma_b2": 0.0, "k": 1,
                     "n_in": n, "n_out": m, "var_w": var_w, "B": B, "seeds": S,
                     "z_mean": mean, "z_se_rel": se / mean,
                     "z_ci_lo": mean - Z95 * se, "z_ci_hi": mean + Z95 * se,
                     "z_spread": sd / mean, "z_notes": n * var_w * 1.0,
                     "spread_formula": mf.one_layer_spread(n, m, B)})
    return pd.DataFrame(rows)


def aggregate(raw: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """Per configuration and layer: mean, relative SE, 95% CI, spread, notes and mean-field."""
    one = raw[raw["config"].str.startswith("one-layer")]
    deep = raw[~raw["config"].str.startswith("one-layer")]
    table = pd.concat([_aggregate_one_layer(one), _aggregate_deep(deep)], ignore_index=True)
    table["spread_formula"] = table["spread_formula"].astype(float)
    return table


# --- claims ---------------------------------------------------------------------------------------
def _cfg(table: pd.DataFrame, config: str) -> pd.DataFrame:
    """The hidden layers k = 1..r-1 of one configuration (layer r is the linear output unit);
    empty when the configuration is missing."""
    t = table[table["config"] == config]
    return t[t["k"] < t["k"].max()]


def fitted_factor(k: np.ndarray, v: np.ndarray) -> float:
    """exp(slope) of the least-squares line through (k, log v): the per-layer factor."""
    ok = np.isfinite(v) & (v > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.exp(np.polyfit(k[ok], np.log(v[ok]), 1)[0]))


def _seed_note(t: pd.DataFrame) -> str:
    k_last = int(t["k"].max())
    last = t[t["k"] == k_last]
    return (f"{int(t['seeds'].iloc[0])} seeds, max SE {100 * t['z_se_rel'].max():.1f}%, "
            f"one network's spread at k={k_last}: {100 * float(last['z_spread'].iloc[0]):.0f}%")


def _factor_claim(table: pd.DataFrame, config: str, lo: float, hi: float, text: str,
                  theory: str) -> dict:
    t = _cfg(table, config)
    f = fitted_factor(t["k"].to_numpy(float), t["z_mean"].to_numpy()) if len(t) else np.nan
    se = float(t["z_factor_se_rel"].iloc[0]) if len(t) else np.nan
    note = _seed_note(t).replace("max SE", "per-layer SE up to") if len(t) else "no data"
    measured = (f"fitted factor {fmt(f, 4)} +- {100 * se:.2f}% (jackknife SE) over "
                f"k=1..{len(t)} ({note})")
    return claim(f"{text} [{config}]", WHERE, measured,
                 f"in [{lo:g}, {hi:g}] ({theory}); SE of the factor < 3%",
                 within(f, lo, hi) and within(se, 0.0, SE_TARGET))


def claims(table: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """The issue's claims, each computed from the aggregated table only."""
    rows = []
    # 1. one layer: the mean within 3 SE of the formula's spread, the spread itself as predicted
    for n, m, B in (QUICK if quick else FULL)["one_layer"]:
        found = table[table["config"] == f"one-layer {n}x{m} B={B}"]
        if not len(found):
            rows.append(claim(f"one layer: E Var(o) = n Var(w) Var(x) within its sampling spread "
                              f"(n={n}, m={m}, B={B})", WHERE, "no data", "-", False))
            continue
        row = found.iloc[0]
        S, s = int(row["seeds"]), float(row["spread_formula"])
        ratio = row["z_mean"] / row["z_notes"]
        spread_ratio = row["z_spread"] / s
        tol = 3.0 / np.sqrt(2.0 * (S - 1))  # 3 SE of a sample std (normal data)
        rows.append(claim(
            f"one layer: E Var(o) = n Var(w) Var(x) within its sampling spread "
            f"(n={int(row['n_in'])}, m={int(row['n_out'])}, B={int(row['B'])}, {S} seeds)",
            WHERE,
            f"mean Var(o)/(n Var(w) Var(x)) = {fmt(ratio, 5)}; "
            f"spread over seeds {fmt(row['z_spread'])} "
            f"= {fmt(spread_ratio)} x formula",
            f"ratio 1 +- {fmt(3 * s / np.sqrt(S))} (3 SE); spread = sqrt(2/(nm) + 2(n+m+1)/(nmB)) "
            f"= {fmt(s)} within x(1 +- {fmt(tol, 2)})",
            abs(ratio - 1) <= 3 * s / np.sqrt(S) and abs(spread_ratio - 1) <= tol))
    # 2. xavier + identity keeps the mean Var(z[k]) within a factor 1.25 (equal widths)
    for init in ("xavier_normal", "xavier_uniform"):
        config = f"deep/identity/{init}"
        t = _cfg(table, config)
        v = t["z_mean"].to_numpy()
        worst = float(np.max(np.maximum(v, 1 / v))) if len(v) else np.nan
        rows.append(claim(
            f"xavier + identity keeps the mean Var(z[k]) within a factor 1.25 over {len(t)} "
            f"layers [{config}]", WHERE,
            f"Var(z[k]) in [{fmt(v.min() if len(v) else np.nan)}, "
            f"{fmt(v.max() if len(v) else np.nan)}], "
            f"worst factor {fmt(worst, 4)} ({_seed_note(t) if len(t) else 'no data'})",
            "every layer within [0.8, 1.25] x Var(x) = 1; SE < 3%",
            within(worst, 1.0, 1.25) and bool(len(t)) and t["z_se_rel"].max() < SE_TARGET))
    # 3-5. fitted per-layer factors
    for arch in ("deep", "alt"):
        rows.append(_factor_claim(table, f"{arch}/identity/standard", 0.30, 0.37,
                                  "standard init shrinks Var(z[k]) per layer",
                                  "theory n_in Var(w) = 1/3"))
    for arch in ("deep", "alt"):
        rows.append(_factor_claim(table, f"{arch}/relu/he_normal", 0.95, 1.05,
                                  "he + relu keeps Var(z[k])",
                                  "theory 2 E[relu(z)^2]/Var(z) = 1"))
    for init in ("xavier_normal", "xavier_uniform"):
        rows.append(_factor_claim(table, f"deep/relu/{init}", 0.45, 0.55,
                                  "xavier + relu halves Var(z[k]) per layer",
                                  "theory E[relu(z)^2]/Var(z) = 1/2"))
    # 6. mean field predicts tanh networks' mean Var(z[k]) within 10% at every layer
    for sw2, sb2 in MF_GRID:
        config = f"deep/tanh/mf sw2={sw2:g} sb2={sb2:g}"
        t = _cfg(table, config)
        err = (t["z_mean"] / t["z_mf"] - 1).abs()
        worst = float(err.max()) if len(t) else np.nan
        k_worst = int(t["k"].iloc[int(np.argmax(err.to_numpy()))]) if len(t) else -1
        rows.append(claim(
            f"mean-field q^k predicts the mean Var(z[k]) of tanh networks at every layer "
            f"(sigma_w^2={sw2:g}, sigma_b^2={sb2:g}, "
            f"width {int(t['n_in'].max()) if len(t) else 0})",
            "Poole et al. 2016 (ANCHORS: mean-field recursion)",
            f"worst |measured/q^k - 1| = {100 * worst:.1f}% at k={k_worst} "
            f"({_seed_note(t) if len(t) else 'no data'})",
            "<= 10% at every layer; SE < 3%",
            within(worst, 0.0, 0.10) and bool(len(t)) and t["z_se_rel"].max() < SE_TARGET))
    # 7. the notes' chained formula is exact in expectation for linear networks, any widths
    worst, where_worst, se_max = 0.0, "", 0.0
    configs = [f"{a}/identity/{i}" for a in ("deep", "alt") for i in INITS]
    for config in configs:
        t = _cfg(table, config)
        if not len(t):
            worst, where_worst = np.nan, f"{config} missing"
            break
        err = float((t["z_mean"] / t["z_notes"] - 1).abs().max())
        se_max = max(se_max, float(t["z_se_rel"].max()))
        if err > worst:
            worst, where_worst = err, config
    rows.append(claim(
        "the notes' Var(o) = n Var(w) Var(x), chained, predicts the mean Var(z[k]) of linear "
        "networks at every layer (5 initialisers x equal and alternating 128/512 widths; xavier's "
        "compromise loses 0.64 per pair of alternating layers)",
        WHERE, f"worst |measured/chained - 1| = {100 * worst:.1f}% ({where_worst}); "
               f"max SE {100 * se_max:.1f}%",
        "<= 10% at every layer; SE < 3%",
        within(worst, 0.0, 0.10) and se_max < SE_TARGET))
    return claims_table("variance", rows, quick)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per deep configuration: Var(z) at the first and last hidden layer, fitted factor, theory."""
    rows = []
    for config, t in table[table["arch"] != "one-layer"].groupby("config", sort=False):
        h = t[t["k"] <= t["k"].max() - 1]
        first, last = h.iloc[0], h.iloc[-1]
        rows.append({"config": config, "seeds": int(first["seeds"]), "layers": len(h),
                     "Var z[1]": first["z_mean"], "Var z[L]": last["z_mean"],
                     "notes z[L]": last["z_notes"], "mf z[L]": last["z_mf"],
                     "factor": fitted_factor(h["k"].to_numpy(float), h["z_mean"].to_numpy()),
                     "factor SE %": 100 * first["z_factor_se_rel"],
                     "max SE %": 100 * h["z_se_rel"].max(),
                     "spread z[L] %": 100 * last["z_spread"],
                     "Var dz[1]/dz[L]": first["dz_mean"] / last["dz_mean"],
                     "mf dz[1]/dz[L]": first["dz_mf"] / last["dz_mf"]})
    return pd.DataFrame(rows)


# --- plot -----------------------------------------------------------------------------------------
def _curve(ax, t: pd.DataFrame, q: str, label: str, color: str, theory: str | None) -> None:
    h = t[t["k"] <= t["k"].max() - 1]
    mean, se = h[f"{q}_mean"].to_numpy(), h[f"{q}_se_rel"].to_numpy()
    ax.plot(h["k"], mean, "o-", ms=3, color=color, label=label)
    # the 95% band as a factor exp(+-1.96 SE/mean): stays positive on a log axis
    ax.fill_between(h["k"], mean * np.exp(-Z95 * se), mean * np.exp(Z95 * se), color=color,
                    alpha=0.25, lw=0)
    if theory:
        ax.plot(h["k"], h[f"{q}_{theory}"], "--", color=color, lw=1)


def _widths(table: pd.DataFrame, arch: str) -> str:
    t = table[table["arch"] == arch]
    hidden = sorted(set(t.loc[t["n_out"] > 1, "n_out"]))
    return "/".join(str(int(n)) for n in hidden) or "?"


def plot(table: pd.DataFrame, fig) -> None:
    """Six panels: forward variances per init and activation, mean field, backward, one layer."""
    fig.set_size_inches(16, 10)
    axes = fig.subplots(2, 3)
    colors = dict(zip(INITS, ["C0", "C1", "C2", "C3", "C4"], strict=True))
    deep, alt, glorot = (_widths(table, a) for a in ("deep", "alt", "glorot"))
    panels = [(axes[0, 0], "deep", "identity", "z", "notes", f"identity, width {deep}: Var(z[k])"),
              (axes[0, 1], "alt", "identity", "z", "notes", f"identity, widths {alt}: Var(z[k])"),
              (axes[0, 2], "deep", "relu", "z", "mf", f"relu, width {deep}: Var(z[k])"),
              (axes[1, 1], "glorot", "tanh", "dW", "mf",
               f"Glorot 5 x {glorot} tanh: Var(dJ/dW[k])")]
    for ax, arch, act, q, theory, title in panels:
        for init, color in colors.items():
            t = table[table["config"] == f"{arch}/{act}/{init}"]
            if len(t):
                _curve(ax, t, q, init, color, theory)
        ax.set(yscale="log", xlabel="layer k",
               title=f"{title}\n(band: 95% CI over seeds; dashed: {theory})")
        ax.legend(fontsize=7)
    ax = axes[1, 0]
    for i, (sw2, sb2) in enumerate(MF_GRID):
        t = table[table["config"] == f"deep/tanh/mf sw2={sw2:g} sb2={sb2:g}"]
        if len(t):
            _curve(ax, t, "z", f"sw2={sw2:g} sb2={sb2:g}", f"C{i}", "mf")
    ax.set(yscale="log", xlabel="layer k",
           title=f"tanh, width {deep}: Var(z[k]) vs mean field q^k (dashed)")
    ax.legend(fontsize=7)
    ax = axes[1, 2]
    one = table[table["arch"] == "one-layer"]
    x = np.arange(len(one))
    ax.bar(x - 0.2, one["z_spread"], 0.4, label="measured spread over seeds")
    ax.bar(x + 0.2, one["spread_formula"], 0.4, label="sqrt(2/(nm) + 2(n+m+1)/(nmB))")
    ax.set_xticks(x, [c.replace("one-layer ", "") for c in one["config"]], fontsize=7)
    ax.set(yscale="log", title="one layer: relative spread of Var(o)")
    ax.legend(fontsize=7)


STUDY = Study(
    name="variance",
    title="Xavier's variance propagation through deep networks",
    where=WHERE,
    grid=grid, cell=cell, aggregate=aggregate, claims=claims, plot=plot, summarise=summarise,
    notes=("Inputs x ~ N(0, 1); the output error dJ/dtau = e/B with e ~ N(0, 1) independent of "
           "the network (target y = tau - e). Depth 30 hidden layers x width 256 (and widths "
           "alternating 128/512), one linear output unit, batch B = 128; seeds per configuration: "
           "64 for identity, 48 for the mean-field tanh grid, 24 for the others, 16 for Glorot's "
           "5 x 1000 tanh; one-layer checks with 200 seeds (--quick: widths 32, 16/64, 5 x 128, "
           "B = 16, 4 seeds, 40 for one layer). "
           "`*_mean` is the mean over seeds of the variance over a batch's entries, `*_se_rel` its "
           "relative standard error, `*_ci_lo/hi` mean +- 1.96 SE, `*_spread` one network's "
           "relative spread (std over seeds / mean), `*_notes` the notes' formula chained with "
           "linear activations, `*_mf` the mean-field recursion (Gauss-Hermite); "
           "`z_factor_se_rel` is the jackknife SE of the fitted per-layer factor of Var(z[k])."),
)
