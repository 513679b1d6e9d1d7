"""Study `lemmas`: the three lemmas of backprop and the two-layer example, against `jax.vjp`.

The lemmas (docs/theory.md; testbed.nn.lemmas), for z = W a + b, a' = sigma(z) and J(tau):

    Lemma 1 (linear combination):  dJ/dW = dJ/dz a^T,  dJ/db = dJ/dz,  dJ/da = W^T dJ/dz
    Lemma 2 (activation):          dJ/dz = dJ/da ⊙ sigma'(z)
    Lemma 3 (output layer):        J = 1/2 ||y - tau||^2  ->  dJ/dtau = -(y - tau)

and the two-layer example, z[1] = W[1] x + b[1], a[1] = sigma(z[1]), tau = z[2] = W[2] a[1] + b[2],
whose full gradient is Lemma 3, then Lemma 1 at layer 2, Lemma 2, Lemma 1 at layer 1.

Each is compared with `jax.vjp` of its own one-line jax.numpy function (float64), over a grid of
shapes (one example as a 1-D vector, and batches of m examples in rows, whose J is the mean over
the batch) and the four activations. The figure is the normwise relative error of every output,
max |ours - jax| / scale, its maximum over the grid per lemma, with scale = max |jax| except for
Lemma 2, whose scale is max |dJ/da|: sigma'(z) is computed to a few eps absolutely, not relatively
(1 - tanh^2 z cancels at large |z|, where two tanh implementations differing in the last bit give
relative differences ~ eps / sigma'(z)), so the product is accurate to a few eps max |dJ/da|.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd

import testbed.nn as nn

from ._builders import at_most
from ._claims import claims_table, fmt
from ._plots import legible
from ._seeds import generator
from ._study import Study

WHERE = "docs/theory.md §4 (the three lemmas)"
ACTIVATIONS = ("relu", "sigmoid", "tanh", "identity")
# Both sides compute the same products and sums, in an order BLAS and XLA choose: a sum of n terms
# differs by at most ~n eps relative to the sum of the terms' magnitudes, here n <= 128, so ~3e-14
# times a ratio |terms| / |sum| of a few for random data. 1e-12 leaves a margin of 30 over that and
# is still 10^4 below the error of a wrong formula (a missing 1/m, a transposed W: O(1)).
TOL = 1e-12
# (m, n_in, n_out): m = 0 is one example as 1-D vectors (the notes' column vectors)
FULL = {"shapes": [(0, 1, 1), (0, 3, 5), (1, 7, 2), (5, 1, 9), (8, 16, 16), (64, 33, 17),
                   (32, 128, 64), (3, 100, 1)],
        "z_scale": (1.0, 8.0)}
QUICK = {"shapes": [(0, 3, 5), (5, 1, 9), (8, 16, 16)], "z_scale": (1.0, 8.0)}
LEMMAS = ("lemma1", "lemma2", "lemma3", "two-layer")


def grid(quick: bool) -> list[dict]:
    """One cell per lemma (and per activation where the lemma has one)."""
    cfg = QUICK if quick else FULL
    cells = [{"lemma": "lemma1", "activation": "-", "shapes": cfg["shapes"]},
             {"lemma": "lemma3", "activation": "-", "shapes": cfg["shapes"]}]
    for act in ACTIVATIONS:
        cells.append({"lemma": "lemma2", "activation": act, "shapes": cfg["shapes"],
                      "z_scale": cfg["z_scale"]})
        cells.append({"lemma": "two-layer", "activation": act, "shapes": cfg["shapes"]})
    return cells


def _rel(ours: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(max |ours - ref|, max |ref|) over all entries; an infinite error if the shapes differ."""
    if np.shape(ours) != np.shape(ref):
        return float("inf"), float(np.max(np.abs(ref), initial=0.0))
    return float(np.max(np.abs(ours - ref), initial=0.0)), float(np.max(np.abs(ref), initial=0.0))


# One compiled jax reference per lemma (and activation), whatever the shape: every case is embedded
# with zeros into (PAD_M examples, PAD_N units) arrays. The padding adds exact zeros to every real
# entry (and padded examples have weight 0 in J), so the real block of the jax result is the
# reference for the unpadded case; only the order of XLA's sums can differ, within TOL.
PAD_M = max(max(m, 1) for m, _, _ in FULL["shapes"])
PAD_N = max(max(a, b) for _, a, b in FULL["shapes"])


def _pad(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape)
    arr = np.asarray(arr, dtype=np.float64).reshape(
        (1,) * (len(shape) - np.ndim(arr)) + np.shape(arr))
    out[tuple(slice(0, n) for n in arr.shape)] = arr
    return out


@functools.cache
def _reference(lemma: str, activation: str) -> Callable:
    """The jitted jax function of one lemma (imports jax, float64 enabled before any array)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    if lemma == "lemma1":  # z = W a + b per example (rows), pulled back by jax.vjp
        def f(W, b, a, cot):
            return jax.vjp(lambda W, b, a: a @ W.T + b, W, b, a)[1](cot)
    elif lemma == "lemma2":  # a = sigma(z), pulled back by jax.vjp
        sigma = nn.get_activation(activation).jnp(jax)  # the activation table's jax twin

        def f(z, cot):
            return jax.vjp(sigma, z)[1](cot)[0]
    elif lemma == "lemma3":  # J = sum_i weight_i 1/2 ||y_i - tau_i||^2, weight_i = 1/m (0: padding)
        def f(tau, y, weight):
            return jax.grad(lambda t: 0.5 * jnp.sum(weight[:, None] * (y - t) ** 2))(tau)
    else:  # the two-layer example's J, differentiated in every parameter and x
        sigma = nn.get_activation(activation).jnp(jax)

        def J(W1, b1, W2, b2, x, y, weight):
            tau = sigma(x @ W1.T + b1) @ W2.T + b2
            return 0.5 * jnp.sum(weight[:, None] * (y - tau) ** 2)

        def f(W1, b1, W2, b2, x, y, weight):
            return jax.grad(J, argnums=(0, 1, 2, 3, 4))(W1, b1, W2, b2, x, y, weight)
    return jax.jit(f)


def _weight(m: int) -> np.ndarray:
    """Example weights of J: 1/m for the m real rows (1 for one 1-D example), 0 for padding."""
    w = np.zeros(PAD_M)
    w[:max(m, 1)] = 1.0 / max(m, 1)
    return w


def _block(ref: object, shape: tuple[int, ...]) -> np.ndarray:
    """The real block of a padded jax result, in the case's own shape (1-D cases included)."""
    arr = np.asarray(ref)
    rows = shape if len(shape) == arr.ndim else (1,) + shape
    return arr[tuple(slice(0, n) for n in rows)].reshape(shape)


def _lemma1(rng: np.random.Generator, m: int, n_in: int, n_out: int, act: str) -> list:

    W, b = rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out)
    shape_a, shape_z = ((n_in,), (n_out,)) if m == 0 else ((m, n_in), (m, n_out))
    a, dJ_dz = rng.standard_normal(shape_a), rng.standard_normal(shape_z)
    dW, db, da = nn.lemma1(dJ_dz, a, W)
    gW, gb, ga = _reference("lemma1", act)(_pad(W, (PAD_N, PAD_N)), _pad(b, (PAD_N,)),
                                           _pad(a, (PAD_M, PAD_N)), _pad(dJ_dz, (PAD_M, PAD_N)))
    return [("dJ/dW", *_rel(dW, _block(gW, W.shape))), ("dJ/db", *_rel(db, _block(gb, b.shape))),
            ("dJ/da", *_rel(da, _block(ga, a.shape)))]


def _lemma2(rng: np.random.Generator, m: int, n_in: int, n_out: int, act: str,
            scale: float) -> list:
    """Normalised by max |dJ/da| (see the module notes): sigma'(z) is accurate to a few eps
    absolutely, not relatively (1 - tanh^2 z cancels at large |z|)."""

    shape = (n_out,) if m == 0 else (m, n_out)
    z, dJ_da = scale * rng.standard_normal(shape), rng.standard_normal(shape)
    dz = nn.lemma2(dJ_da, z, act)
    ref = _block(_reference("lemma2", act)(_pad(z, (PAD_M, PAD_N)), _pad(dJ_da, (PAD_M, PAD_N))),
                 shape)
    err, _ = _rel(dz, ref)
    return [(f"dJ/dz (|z| ~ {scale:g})", err, float(np.max(np.abs(dJ_da))))]


def _lemma3(rng: np.random.Generator, m: int, n_in: int, n_out: int, act: str) -> list:

    shape = (n_out,) if m == 0 else (m, n_out)
    y, tau = rng.standard_normal(shape), rng.standard_normal(shape)
    g = _reference("lemma3", act)(_pad(tau, (PAD_M, PAD_N)), _pad(y, (PAD_M, PAD_N)), _weight(m))
    return [("dJ/dtau", *_rel(nn.lemma3(y, tau), _block(g, shape)))]


def _two_layer(rng: np.random.Generator, m: int, n_in: int, n_out: int, act: str) -> list:
    """The example's network (n_in inputs, n_out hidden units, one output), gradient two ways:
    the lemmas composed by hand as the example does, and testbed.nn.value_and_grad."""

    _, W1, W2 = nn.init_network([n_in, n_out, 1], act, "xavier_normal", rng).W
    b1, b2 = rng.standard_normal(n_out), rng.standard_normal(1)
    x = rng.standard_normal((n_in,) if m == 0 else (m, n_in))
    y = rng.standard_normal((1,) if m == 0 else (m, 1))
    # padded hidden units have zero weights in and out, so they add exact zeros to tau
    ref = _reference("two-layer", act)(
        _pad(W1, (PAD_N, PAD_N)), _pad(b1, (PAD_N,)), _pad(W2, (1, PAD_N)), b2,
        _pad(x, (PAD_M, PAD_N)), _pad(y, (PAD_M, 1)), _weight(m))
    ref = [_block(r, np.shape(v)) for r, v in zip(ref, (W1, b1, W2, b2, x), strict=True)]
    # by hand: forward, then Lemma 3, Lemma 1 (layer 2), Lemma 2, Lemma 1 (layer 1)
    act_fn = nn.get_activation(act)
    z1 = x @ W1.T + b1
    a1 = act_fn.sigma(z1)
    tau = a1 @ W2.T + b2
    dW2, db2, da1 = nn.lemma1(nn.lemma3(y, tau), a1, W2)
    dW1, db1, dx = nn.lemma1(nn.lemma2(da1, z1, act), x, W1)
    names = ("dJ/dW[1]", "dJ/db[1]", "dJ/dW[2]", "dJ/db[2]", "dJ/dx")
    out = [(f"{n} (lemmas)", *_rel(g, r))
           for n, g, r in zip(names, (dW1, db1, dW2, db2, dx), ref, strict=True)]
    if m > 0:  # testbed.nn's backprop takes batches in rows
        _, g = nn.value_and_grad(nn.Network([None, W1, W2], [None, b1, b2], act), x, y)
        out += [(f"{n} (backprop)", *_rel(o, r)) for n, o, r in
                zip(names, (g.dW[1], g.db[1], g.dW[2], g.db[2], g.dx), ref, strict=True)]
    return out


def cell(p: dict, seed: int) -> pd.DataFrame:
    """Every shape of the grid for one lemma (and activation): errors per output."""
    rows = []
    for m, n_in, n_out in p["shapes"]:
        rng = generator(seed, "lemmas", p["lemma"], p["activation"], m, n_in, n_out)
        act = p["activation"]
        if p["lemma"] == "lemma1":
            out = _lemma1(rng, m, n_in, n_out, act)
        elif p["lemma"] == "lemma3":
            out = _lemma3(rng, m, n_in, n_out, act)
        elif p["lemma"] == "lemma2":
            out = [r for s in p["z_scale"] for r in _lemma2(rng, m, n_in, n_out, act, s)]
        else:
            out = _two_layer(rng, m, n_in, n_out, act)
        for quantity, err, ref in out:
            rows.append({"lemma": p["lemma"], "activation": p["activation"],
                         "m": m, "n_in": n_in, "n_out": n_out, "quantity": quantity,
                         "max_abs_err": err, "scale": ref})
    return pd.DataFrame(rows)


def aggregate(raw: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """Adds rel_err = max |ours - jax| / scale (0 when the error is exactly 0)."""
    t = raw.reset_index(drop=True).copy()
    err, ref = t["max_abs_err"].to_numpy(float), t["scale"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t["rel_err"] = np.where(err == 0.0, 0.0, err / ref)
    return t


TEXT = {
    "lemma1": ("lemma1-matches-vjp",
               "Lemma 1: dJ/dW = dJ/dz a^T, dJ/db = dJ/dz, dJ/da = W^T dJ/dz equal jax.vjp of "
               "z = W a + b"),
    "lemma2": ("lemma2-matches-vjp",
               "Lemma 2: dJ/dz = dJ/da ⊙ sigma'(z) equals jax.vjp of a = sigma(z), every activation"),
    "lemma3": ("lemma3-matches-vjp",
               "Lemma 3: dJ/dtau = -(y - tau) equals jax.grad of J = 1/2 ||y - tau||^2"),
    "two-layer": ("two-layer-example-matches-vjp",
                  "the two-layer example: Lemmas 3, 1, 2, 1 composed (and testbed.nn's backprop) "
                  "give jax.grad of J for every parameter and x"),
}


def _worst(t: pd.DataFrame) -> str:
    """The largest relative error over a lemma's rows and where it is ("no data" without rows)."""
    if not len(t):
        return "no data"
    rel = t["rel_err"].to_numpy(float)
    worst = t.iloc[int(np.nanargmax(np.where(np.isfinite(rel), rel, np.inf)))]
    acts = sorted(set(t["activation"]) - {"-"})
    return (f"max relative error {fmt(float(np.max(rel)), 2)} over {len(t)} outputs "
            f"({t[['m', 'n_in', 'n_out']].drop_duplicates().shape[0]} shapes"
            + (f", activations {', '.join(acts)}" if acts else "")
            + f"); worst: {worst['quantity']} at m={int(worst['m'])}, "
              f"n_in={int(worst['n_in'])}, n_out={int(worst['n_out'])}"
            + (f", {worst['activation']}" if worst["activation"] != "-" else ""))


def claims(table: pd.DataFrame, quick: bool) -> pd.DataFrame:
    """One exact claim per lemma: the largest relative error over the grid is at most TOL."""
    rows = {lemma: table[table["lemma"] == lemma] if len(table) else table for lemma in LEMMAS}
    return claims_table("lemmas", [
        at_most(cid, text, WHERE, rows[lemma].get("rel_err", []), _worst(rows[lemma]), TOL,
                note=f" (reordered sums of <= {PAD_N} terms: ~n eps, margin 30)")
        for lemma, (cid, text) in TEXT.items()], quick)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per lemma and activation: outputs compared and the largest relative error."""
    g = table.groupby(["lemma", "activation"], sort=False)
    return pd.DataFrame({"outputs": g.size(), "max rel err": g["rel_err"].max()}).reset_index()


def plot(table: pd.DataFrame, fig) -> None:
    """One panel: the largest relative error per lemma and activation, beside eps and the tolerance."""
    fig.set_size_inches(9, 5)
    ax = fig.subplots()
    s = summarise(table)
    labels = [f"{r.lemma}\n{r.activation}" if r.activation != "-" else r.lemma
              for r in s.itertuples()]
    eps = float(np.finfo(np.float64).eps)
    # an error of exactly 0 is drawn at eps / 10, marked by hatching
    vals = s["max rel err"].to_numpy(float)
    shown = np.where(vals > 0, vals, eps / 10)
    bars = ax.bar(range(len(s)), shown, color="C0")
    for bar, v in zip(bars, vals, strict=True):
        if v == 0:
            bar.set_hatch("//")
            bar.set_facecolor("white")
            bar.set_edgecolor("C0")
    ax.axhline(TOL, color="C3", ls="--", label=f"tolerance {TOL:g}")
    ax.axhline(eps, color="k", ls=":", label="float64 eps")
    ax.set_xticks(range(len(s)), labels, fontsize=9)
    ax.set(yscale="log", ylabel="max |ours - jax| / scale (relative error)",
           title="Lemmas 1-3 and the two-layer example against jax.vjp (hatched: exactly 0)")
    ax.legend(fontsize=9)
    legible(fig)


STUDY = Study(
    name="lemmas",
    title="Lemmas 1-3 and the two-layer example against jax.vjp",
    where=WHERE,
    grid=grid, cell=cell, aggregate=aggregate, claims=claims, plot=plot, summarise=summarise,
    notes=(f"Shapes (m, n_in, n_out), m = 0 for one example as 1-D vectors: "
           f"{', '.join(str(s) for s in FULL['shapes'])} (--quick: "
           f"{', '.join(str(s) for s in QUICK['shapes'])}); Lemma 2 at pre-activations "
           f"N(0, s^2), s in {FULL['z_scale']}, for {', '.join(ACTIVATIONS)}; the two-layer "
           f"example with xavier_normal W and N(0, 1) biases, one output. `rel_err` is "
           f"max |ours - jax| / `scale` per output, `scale` = max |jax| (Lemma 2: max |dJ/da|); "
           f"jax.vjp / jax.grad in float64, jitted once per lemma on inputs embedded with zeros "
           f"in ({PAD_M}, {PAD_N}) arrays. The claim tolerance {TOL:g}: reordered sums of at "
           f"most {PAD_N} terms differ by ~n eps. Changed after seeing data: Lemma 2 was first "
           "normalised by max |jax| like the others, which at |z| ~ 8 (tanh' ~ 5e-7) measured "
           "the cancellation in 1 - tanh^2 z (9.7e-13), not the lemma; it is now normalised by "
           "max |dJ/da| (see the module docstring)."),
    reproducibility=("`max_abs_err` and `rel_err` are rounding differences (a few eps): they "
                     "change in the last bits with the BLAS and XLA builds and thread counts "
                     "(another order of summation), four orders of magnitude below the tolerance."),
)
