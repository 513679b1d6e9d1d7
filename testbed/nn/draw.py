"""Pictures of the deep network: its forward pass and its backward pass, with shapes on every arrow.

Forward (top row, left to right), for k = 1..r:

    x = a[0] -> [W[k] . + b[k]] -> z[k] -> [sigma] -> a[k] -> ... -> z[r] = tau -> [J] -> J

each matmul fed by W[k] and b[k] from above. Backward (bottom row, right to left), under the same
columns:

    dJ/dz[r] -> dJ/da[r-1] -> dJ/dz[r-1] -> ... -> dJ/dz[1] -> dJ/da[0] = dJ/dx

by Lemma 3 (dJ/dz[r] = -(y - tau)), Lemma 1 (dJ/da[k-1] = W[k]^T dJ/dz[k]) and Lemma 2
(dJ/dz[k-1] = dJ/da[k-1] ⊙ sigma'(z[k-1])), with dJ/dW[k] = dJ/dz[k] a[k-1]^T and dJ/db[k] = dJ/dz[k]
tapped off each dJ/dz[k] (Lemma 1). Every arrow carries the shape of what flows along it: (n[k])
for one example, (m, n[k]) for a batch of m. With `norms`, every box also gives the Frobenius norm
of its array at (x, y), and a third panel plots ||dJ/dz[k]|| and ||dJ/dW[k]|| against k on a log
scale, so that vanishing or exploding gradients show. Networks deeper than `max_layers` are drawn
with their first and last layers and the middle elided (the figure says which); the norm panel
always has every layer.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_int
from ..errors import TestbedError
from .backprop import forward, value_and_grad
from .network import Network

_FWD, _REV, _PAR = "#4063a8", "#c0392b", "#6d6d6d"


def _box(ax: object, x: float, y: float, text: str, colour: str, face: str, gid: str = "box") -> None:
    ax.text(x, y, text, ha="center", va="center", fontsize=8, zorder=4, gid=gid,
            bbox=dict(boxstyle="round,pad=0.35", fc=face, ec=colour, lw=1.0))


def _arrow(ax: object, a: tuple, b: tuple, colour: str, label: str = "", above: bool = True) -> None:
    ax.annotate("", xy=b, xytext=a, gid="arrow",
                arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.1, shrinkA=17, shrinkB=17))
    if label:
        mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
        ax.text(mx, my + (0.12 if above else -0.12), label, ha="center",
                va="bottom" if above else "top", fontsize=6.5, color=colour, zorder=5)


def _shape(m: int | None, n: int) -> str:
    return f"({n})" if m is None else f"({m}, {n})"


def _sizes(n: tuple[int, ...]) -> str:
    """(3, 16, 16, 16, 1) as '[3, 16 (x3), 1]': runs of equal widths written once."""
    runs: list[list[int]] = []
    for w in n:
        if runs and runs[-1][0] == w:
            runs[-1][1] += 1
        else:
            runs.append([w, 1])
    return "[" + ", ".join(f"{w}" if k == 1 else f"{w} (×{k})" for w, k in runs) + "]"


def _norm(a: np.ndarray) -> str:
    return f"‖·‖={np.linalg.norm(a):.2g}"


def draw(net: Network, x: object, y: object, *, norms: bool = True, max_layers: int = 4) -> object:
    """The forward and backward passes of `net` at (x, y) as a matplotlib Figure (see the module).

    Args:
        x: one example (n[0],) or a batch (m, n[0]); y: its target, as for `testbed.nn.loss`.
        norms: write each array's norm into its box and add the per-layer norm panel.
        max_layers: draw at most this many layers (the first half and the last half of them);
            the rest are elided, and the figure says so.
    """
    if not isinstance(net, Network):
        raise TypeError(f"draw needs a testbed.nn.Network, got {type(net).__name__}")
    max_layers = check_int(max_layers, "max_layers", minimum=2, type_error=TestbedError)
    cache = forward(net, x)
    J, g = value_and_grad(net, x, y)  # validates y; NetworkShapeError names what is wrong
    r, n = net.depth, net.sizes
    m = None if cache.single else cache.m
    if r <= max_layers:
        shown, elided = list(range(1, r + 1)), None
    else:
        head = max_layers // 2
        shown = list(range(1, head + 1)) + list(range(r - (max_layers - head) + 1, r + 1))
        elided = (head + 1, r - (max_layers - head))

    from matplotlib.figure import Figure  # imported on demand: `import testbed.nn` stays light

    # columns: a[0], then per shown layer: matmul, z[k], (sigma, a[k] unless k = r); then J
    cols: list[tuple[str, int]] = [("a", 0)]
    for k in shown:
        if elided is not None and k == elided[1] + 1:
            cols.append(("gap", k))
        cols += [("mm", k), ("z", k)] + ([("sig", k), ("a", k)] if k < r else [])
    cols.append(("J", r))
    width = 1.1 * len(cols) + 1.0
    fig = Figure(figsize=(min(max(width, 8.0), 30.0), 7.6 if norms else 5.6), dpi=100,
                 layout="constrained")
    if norms:
        top, bottom = fig.subplots(2, 1, height_ratios=[2.3, 1.0])
    else:
        top, bottom = fig.add_subplot(), None
    ax = top
    X = {key: float(i) for i, key in enumerate(cols)}
    X[cols[-1]] += 0.5  # the loss box is wider than the others
    yf, yp, yb, yt = 1.0, 2.0, -0.6, -1.7  # rows: forward, parameters, backward, Lemma 1 taps

    def nrm(a: np.ndarray) -> str:
        return f"\n{_norm(a)}" if norms else ""

    n_boxes = 0
    prev = None
    for key in cols:
        kind, k = key
        cx = X[key]
        if kind == "gap":
            ax.text(cx, yf, "⋯", ha="center", va="center", fontsize=16)
            ax.text(cx, yb, "⋯", ha="center", va="center", fontsize=16)
            prev = None
            continue
        if kind == "a":
            label = "x = a[0]" if k == 0 else f"a[{k}]"
            _box(ax, cx, yf, label + nrm(cache.a[k]), _FWD, "#e8eef9")
            dlabel = "dJ/dx = dJ/da[0]" if k == 0 else f"dJ/da[{k}]"
            _box(ax, cx, yb, dlabel + nrm(g.da[k]), _REV, "#fde9e7")
            n_boxes += 2
        elif kind == "z":
            label = f"z[{k}]" + (" = τ" if k == r else "")
            _box(ax, cx, yf, label + nrm(cache.z[k]), _FWD, "#e8eef9")
            _box(ax, cx, yb, f"dJ/dz[{k}]" + nrm(g.dz[k]), _REV, "#fde9e7")
            _box(ax, cx - 0.42, yt, f"dJ/dW[{k}]" + nrm(g.dW[k]), _REV, "white")
            _box(ax, cx + 0.42, yt, f"dJ/db[{k}]" + nrm(g.db[k]), _REV, "white")
            for dx in (-0.42, 0.42):
                ax.annotate("", xy=(cx + dx, yt), xytext=(cx, yb), gid="arrow",
                            arrowprops=dict(arrowstyle="-|>", color=_REV, lw=0.9, shrinkA=15,
                                            shrinkB=12))
            ax.text(cx + 0.5, (yb + yt) / 2 + 0.05, "Lemma 1", fontsize=6, color=_REV, ha="left")
            n_boxes += 4
        elif kind == "mm":
            _box(ax, cx, yf, "W·+b", _FWD, "white", gid="op")
            _box(ax, cx - 0.3, yp, f"W[{k}]\n({n[k]}, {n[k - 1]})", _PAR, "#f2f2f2")
            _box(ax, cx + 0.3, yp, f"b[{k}]\n({n[k]})", _PAR, "#f2f2f2")
            for dx in (-0.3, 0.3):
                ax.annotate("", xy=(cx, yf), xytext=(cx + dx, yp), gid="arrow",
                            arrowprops=dict(arrowstyle="-|>", color=_PAR, lw=0.9, shrinkA=14,
                                            shrinkB=10))
            n_boxes += 2
        elif kind == "sig":
            _box(ax, cx, yf, net.activation, _FWD, "white", gid="op")
        else:  # the loss
            loss = "J = ½‖y − τ‖²" if m is None else "J = mean ½‖y − τ‖²"
            _box(ax, cx, yf, loss + (f"\n= {J:.3g}" if norms else ""), _FWD, "white", gid="op")
            lemma3 = "−(y − τ)" if m is None else "−(y − τ) / m"
            _box(ax, cx, yb, f"Lemma 3\ndJ/dz[r] = {lemma3}", _REV, "white", gid="op")
            ax.annotate("", xy=(cx, yb), xytext=(cx, yf), gid="arrow",
                        arrowprops=dict(arrowstyle="-|>", color=_REV, lw=1.1, shrinkA=17, shrinkB=17))
        if prev is not None:  # what flows out of a column has the source's layer width
            _arrow(ax, (X[prev], yf), (cx, yf), _FWD, _shape(m, n[prev[1]]))
        prev = key
    # backward arrows: between consecutive value columns, right to left, with the lemma used
    values = [key for key in cols if key[0] in ("a", "z")]
    for right, left in zip(values[::-1], values[-2::-1], strict=False):
        if cols.index(right) - cols.index(left) > 2:  # across the elided layers
            continue
        if right[0] == "z":
            lemma = f"Lemma 1: W[{right[1]}]ᵀ·"
        else:
            lemma = f"Lemma 2: ⊙σ'(z[{right[1]}])"
        _arrow(ax, (X[right], yb), (X[left], yb), _REV, f"{_shape(m, n[left[1]])}\n{lemma}",
               above=False)
    _arrow(ax, (X[cols[-1]], yb), (X[values[-1]], yb), _REV, _shape(m, n[r]), above=False)
    ax.set_xlim(-0.8, len(cols) + 0.3)
    ax.set_ylim(-2.35, 2.5)
    ax.set_axis_off()
    what = f"sizes n = {_sizes(n)}, r = {r}, activation {net.activation}, " + (
        "one example" if m is None else f"batch of m = {m}")
    note = f"{len(shown)} of {r} layers drawn" + (
        f"; layers {elided[0]}..{elided[1]} elided" if elided else "")
    ax.set_title(f"forward pass (top) and backward pass (bottom): {what}\n{note}; "
                 f"{n_boxes} value boxes", fontsize=9)
    if bottom is not None:
        ks = np.arange(1, r + 1)
        dz = np.array([np.linalg.norm(g.dz[k]) for k in ks])
        dW = np.array([np.linalg.norm(g.dW[k]) for k in ks])
        za = np.array([np.linalg.norm(cache.z[k]) for k in ks])
        for vals, lab, st, col in ((dz, "‖dJ/dz[k]‖", "o-", _REV), (dW, "‖dJ/dW[k]‖", "s--", "#8e44ad"),
                                   (za, "‖z[k]‖", "^:", _FWD)):
            bottom.semilogy(ks, np.where(vals > 0, vals, np.nan), st, color=col, label=lab, ms=4)
        bottom.set_xlabel("layer k")
        bottom.set_ylabel("Frobenius norm (log scale)")
        bottom.set_xticks(ks if r <= 20 else np.unique(np.linspace(1, r, 11).round().astype(int)))
        bottom.grid(True, which="major", alpha=0.3)
        bottom.legend(fontsize=7, loc="best")
        bottom.set_title("per-layer norms: a steady fall (rise) of ‖dJ/dz[k]‖ towards k = 1 is a "
                         "vanishing (exploding) gradient", fontsize=8)
    return fig
