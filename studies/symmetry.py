"""Study `symmetry`: why the weights cannot start at zero (docs/theory.md, "Initialising parameters").

The weights cannot all start at zero: every hidden unit of a layer would then learn the same way
(symmetric weights). If two hidden units i, i' of layer k have the same incoming
weights and bias, they have the same z[k] and a[k] for every input; by Lemma 1 and 2 their
gradients dJ/dW[k]_i = dJ/dz[k]_i a[k-1]^T are equal as long as the units they feed treat them
alike, which the outgoing weights of a zero or constant initialisation do. So SGD keeps them equal:
the layer behaves as one unit, whatever its width.

Measured: networks (4, 16, 16, 16, 1) trained by mini-batch SGD on a fixed regression problem, with
zeros, constant(c) and xavier_normal initialisation, relu/tanh/sigmoid: at every step the number of
distinct hidden units per layer (bitwise-distinct rows of [W[k] | b[k]]), the loss J on the whole
training set, and how far the weights moved from their start.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from testbed.nn import init_network, loss, train

from ._builders import exact, logical
from ._claims import claims_table, fmt
from ._plots import legible
from ._seeds import generator
from ._study import Study

WHERE = "docs/theory.md §6 (symmetry)"
ACTIVATIONS = ("relu", "tanh", "sigmoid")
INITS = {"zeros": {}, "constant": {"c": 0.1}, "xavier_normal": {}}
SIZES = (4, 16, 16, 16, 1)
# lr and steps were chosen after seeing data, so that every xavier network leaves the plateau
# J = 1/2 E[y^2] of a constant prediction (at lr 0.05 and 400 steps the sigmoid networks had not
# started to learn); the study's notes say so
M, LR, BATCH = 256, 0.1, 16
FULL = {"steps": 800, "seeds": 3}
QUICK = {"steps": 150, "seeds": 2}


def grid(quick: bool) -> list[dict]:
    """activation x initialiser x replicate."""
    cfg = QUICK if quick else FULL
    return [{"activation": act, "init": init, "replicate": rep, "steps": cfg["steps"]}
            for act in ACTIVATIONS for init in INITS for rep in range(cfg["seeds"])]


def _problem(seed: int, rep: int) -> tuple[np.ndarray, np.ndarray]:
    """The replicate's data, shared by every initialiser and activation: a smooth teacher."""
    rng = generator(seed, "symmetry", "data", rep)
    x = rng.standard_normal((M, SIZES[0]))
    u = rng.standard_normal((2, SIZES[0])) / np.sqrt(SIZES[0])  # u.x ~ N(0, 1): a smooth target
    y = np.sin(x @ u[0]) + 0.5 * np.cos(x @ u[1])
    return x, y.reshape(M, 1)


def distinct_units(W: np.ndarray, b: np.ndarray) -> int:
    """The number of distinct rows of [W | b] (exact comparison): units with different weights."""
    rows = np.column_stack([W, b]) + 0.0  # + 0.0 maps -0.0 to 0.0, which compare equal
    return len({row.tobytes() for row in rows})


def cell(p: dict, seed: int) -> pd.DataFrame:
    """Train one network; one row per step t = 0..steps (parameters before update t)."""
    act, init, rep = p["activation"], p["init"], p["replicate"]
    x, y = _problem(seed, rep)
    net0 = init_network(SIZES, act, init, generator(seed, "symmetry", "init", act, init, rep),
                        **INITS[init])
    # the batch order depends on the replicate only, so initialisers are compared on equal terms
    result = train(net0, x, y, lr=LR, steps=p["steps"], batch_size=BATCH,
                   rng=generator(seed, "symmetry", "order", rep), snapshot_every=1)
    r = len(SIZES) - 1
    rows = []
    for t, net in sorted(result.snapshots.items()):
        row = {"activation": act, "init": init, "replicate": rep, "step": t,
               "loss": loss(net, x, y)}
        for k in range(1, r):
            row[f"distinct_{k}"] = distinct_units(net.W[k], net.b[k])
        row["max_dW"] = max(float(np.abs(net.W[k] - net0.W[k]).max()) for k in range(1, r + 1))
        row["max_db_hidden"] = max(float(np.abs(net.b[k] - net0.b[k]).max()) for k in range(1, r))
        row["db_out"] = float(np.abs(net.b[-1] - net0.b[-1]).max())
        rows.append(row)
    return pd.DataFrame(rows)


def aggregate(raw: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """The per-step rows as they are (already one row per activation, init, replicate, step)."""
    return raw.sort_values(["activation", "init", "replicate", "step"], ignore_index=True)


def _distinct_cols(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c.startswith("distinct_")]


def _one_unit(table: pd.DataFrame, init: str) -> tuple[bool, str]:
    """(every hidden layer of `init` has one distinct unit at every step, the counts per
    activation)."""
    cols, n_steps = _distinct_cols(table), int(table["step"].max()) if len(table) else 0
    t = table[table["init"] == init]
    d = t[cols].to_numpy()
    per_act = ", ".join(
        f"{a}: {int(g[cols].to_numpy().min())}..{int(g[cols].to_numpy().max())}"
        for a, g in t.groupby("activation"))
    return (bool(d.size) and bool((d == 1).all()),
            f"distinct units per layer over {len(cols)} layers x {n_steps + 1} steps x "
            f"{t['replicate'].nunique()} seeds: {per_act or 'no data'}")


def _frozen(table: pd.DataFrame) -> tuple[bool, str]:
    """(no weight and no hidden bias of relu with zeros moved, how far they and b[r] moved)."""
    t = table[(table["init"] == "zeros") & (table["activation"] == "relu")]
    moved = float(t[["max_dW", "max_db_hidden"]].to_numpy().max()) if len(t) else np.nan
    return (bool(np.isfinite(moved) and moved == 0.0),
            f"max |W[k] - W0[k]| and |b_hidden - b0| over all steps: {fmt(moved)}; output bias "
            f"moved by up to {fmt(float(t['db_out'].max()) if len(t) else np.nan)}")


def _xavier(table: pd.DataFrame, width: int) -> tuple[bool | None, str]:
    """(xavier keeps `width` distinct units and ends below zeros and constant in every
    (activation, seed) pair, None without xavier rows; the counts and seed 0's final losses)."""
    cols, n_steps = _distinct_cols(table), int(table["step"].max()) if len(table) else 0
    x = table[table["init"] == "xavier_normal"]
    dmin = int(x[cols].to_numpy().min()) if len(x) else -1
    final = table[table["step"] == n_steps].set_index(["activation", "replicate", "init"])["loss"]
    wins, total, detail = 0, 0, []
    for (act, rep), _ in x[x["step"] == n_steps].groupby(["activation", "replicate"]):
        fx = final.get((act, rep, "xavier_normal"), np.nan)
        others = [final.get((act, rep, i), np.nan) for i in ("zeros", "constant")]
        total += 1
        wins += int(all(np.isfinite(o) and fx < o for o in others) and np.isfinite(fx))
        if rep == 0:
            detail.append(f"{act}: {fmt(fx)} vs zeros {fmt(others[0])}, constant {fmt(others[1])}")
    return ((dmin == width and total > 0 and wins == total) if len(x) else None,
            f"min distinct units {dmin} (width {width}); final J lower in {wins}/{total} "
            f"(activation, seed) pairs; seed 0: {'; '.join(detail)}")


def claims(table: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """Symmetry claims, from the per-step table."""
    width = max(SIZES[1:-1])
    return claims_table("symmetry", [
        *(exact(f"{init}-one-unit", f"{init} initialisation{' (c=0.1)' if init == 'constant' else ''}"
                " keeps exactly one distinct unit per hidden layer at every SGD step", WHERE,
                *_one_unit(table, init), f"1 everywhere (width {width})")
          for init in ("zeros", "constant")),
        exact("relu-zeros-frozen", "relu with zeros: no weight moves at all (relu'(0) = 0 and every "
              "a[k] = relu(0) = 0, so dJ/dW[k] = dJ/dz[k] a[k-1]^T = 0 for k >= 2 and dJ/dz[k] = 0 "
              "for hidden k; only the output bias b[r] learns)", WHERE, *_frozen(table),
              "exactly 0"),
        # quick mode's few steps leave the sigmoid networks on the plateau (see the notes)
        logical("xavier-breaks-symmetry", "xavier gives as many distinct units as the width at "
                "every step, and a lower final loss than zeros and constant", WHERE,
                *_xavier(table, width), f"{width} distinct units; lower loss in every pair",
                quick=quick),
    ], quick)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per activation and initialiser: distinct units (min..max), J at the start and the end."""
    cols = _distinct_cols(table)
    n_steps = table["step"].max()
    rows = []
    for (act, init), t in table.groupby(["activation", "init"], sort=False):
        d = t[cols].to_numpy()
        rows.append({"activation": act, "init": init, "seeds": t["replicate"].nunique(),
                     "distinct min": int(d.min()), "distinct max": int(d.max()),
                     "J start": t.loc[t["step"] == 0, "loss"].mean(),
                     "J end": t.loc[t["step"] == n_steps, "loss"].mean(),
                     "max |dW|": t["max_dW"].max(), "max |db out|": t["db_out"].max()})
    return pd.DataFrame(rows)


def plot(table: pd.DataFrame, fig) -> None:
    """Four panels: the loss over steps per activation, and the distinct units per initialiser."""
    fig.set_size_inches(13, 10)
    axes = fig.subplots(2, 2).ravel()
    styles = {"zeros": ("--", "o"), "constant": (":", "s"), "xavier_normal": ("-", "^")}
    for ax, act in zip(axes[:3], ACTIVATIONS, strict=True):
        for i, init in enumerate(INITS):
            t = table[(table["activation"] == act) & (table["init"] == init)]
            loss_mean = t.groupby("step")["loss"].mean()
            ls, marker = styles[init]
            ax.plot(loss_mean, ls=ls, marker=marker, markevery=max(1, len(loss_mean) // 10),
                    ms=5, color=f"C{i}", label=init)
        ax.set(yscale="log", title=f"{act}: loss J on the training set", xlabel="SGD step",
               ylabel="J, mean over seeds (units of y^2)")
        ax.legend(fontsize=10)
    # distinct units: the min (bars side by side) and the max (open markers) over steps, seeds and
    # hidden layers, per initialiser and activation
    ax = axes[3]
    cols = _distinct_cols(table)
    width = 0.25
    for i, init in enumerate(INITS):
        lo, hi = [], []
        for act in ACTIVATIONS:
            d = table[(table["activation"] == act) & (table["init"] == init)][cols].to_numpy()
            lo.append(d.min() if d.size else np.nan)
            hi.append(d.max() if d.size else np.nan)
        x = np.arange(len(ACTIVATIONS)) + (i - 1) * width
        ax.bar(x, lo, width, color=f"C{i}", edgecolor="k", label=f"{init}: min")
        ax.plot(x, hi, "kv", ms=9, mfc="none", label="max" if i == 0 else None)
    ax.set_xticks(range(len(ACTIVATIONS)), ACTIVATIONS)
    ax.set(ylabel="distinct hidden units per layer (count)", ylim=(0, max(SIZES) + 2),
           title="distinct units over all steps, seeds and hidden layers")
    ax.legend(fontsize=9, ncol=2)
    legible(fig)


STUDY = Study(
    name="symmetry",
    title="Zero and constant initialisation keep hidden units identical",
    where=WHERE,
    grid=grid, cell=cell, aggregate=aggregate, claims=claims, plot=plot, summarise=summarise,
    notes=(f"Networks {SIZES}, SGD with lr {LR} on mini-batches of {BATCH} of a fixed regression "
           f"set (m = {M}, y = sin(u1.x) + cos(u2.x)/2), {FULL['steps']} steps, "
           f"{FULL['seeds']} seeds (--quick: {QUICK['steps']} steps, {QUICK['seeds']} seeds). "
           "`distinct_k` counts bitwise-distinct rows of [W[k] | b[k]]; `max_dW` is the largest "
           "change of any weight since initialisation, `db_out` that of the output bias; `loss` "
           "is J on the whole training set before the step's update. Chosen after seeing data: "
           f"lr {LR} and {FULL['steps']} steps (at lr 0.05 and 400 steps the sigmoid networks "
           "with xavier init had not left the plateau of a constant prediction, so the "
           "comparison of final losses would have said nothing); c = "
           f"{INITS['constant']['c']:g} for constant(c) so that "
           f"SGD at lr {LR} cannot diverge. Every claim here is exact (counts, equalities of "
           "floats, a comparison per seed): no interval is involved."),
    reproducibility=("`loss`, `max_dW` and `db_out` can differ in the last bits across machines and "
                     "BLAS builds. `distinct_k` compares rows bit for bit: identical rows stay "
                     "identical only if the BLAS computes every row of a matmul with the same "
                     "instruction sequence, which blocked kernels with remainder loops need not "
                     "do; on this machine they do (the claims say so), elsewhere a symmetric layer "
                     "could show rows differing in the last bit, which is not symmetry breaking."),
)
