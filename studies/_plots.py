"""Plot helpers the studies share: one figure style.

    legible(fig, size)          fonts scaled for the results README
    finish(fig)                 legends, grids, FONT-point labels; "no data" on an empty panel
    reference(ax, x, y, slope)  a grey line of the theory's log-log slope through the data
"""

from __future__ import annotations

import numpy as np

FONT = 11  # the timed studies' panel font (points)


def legible(fig, size: float = 12.0) -> None:
    """Fonts readable at the width the results README shows a figure: titles, axis labels, ticks
    and legends of every panel scaled to `size` points."""
    for ax in fig.axes:
        ax.title.set_fontsize(size)
        ax.xaxis.label.set_fontsize(size)
        ax.yaxis.label.set_fontsize(size)
        ax.tick_params(labelsize=size - 1)
        legend = ax.get_legend()
        if legend is not None:
            for text in legend.get_texts():
                text.set_fontsize(max(size - 2.5, 9.0))
    fig.tight_layout()  # larger fonts need the room: no label may be cut at the edge


def reference(ax: object, x: object, y: object, slope: float = 1.0, label: str | None = None,
              ls: str = ":") -> None:
    """A grey reference line of the given log-log slope through the data's geometric centre."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < 2:
        return
    x, y = x[ok], y[ok]
    a = np.mean(np.log(y) - slope * np.log(x))
    xs = np.array([x.min(), x.max()])
    ax.plot(xs, np.exp(a) * xs**slope, ls, color="grey", lw=1.5,
            label=label or f"slope {slope:g} (theory)")


def finish(fig: object) -> None:
    """Legends, grids and FONT-point titles and labels on every panel; a panel with nothing
    measured (a partial table) says 'no data' instead of an empty log-log frame."""
    for a in fig.axes:
        if not a.lines and not a.collections:  # nothing measured (a partial table)
            a.set(xscale="linear", yscale="linear")
            a.text(0.5, 0.5, "no data", ha="center", transform=a.transAxes)
            continue
        a.legend(fontsize=FONT - 3)
        a.grid(True, which="major", alpha=0.3)
        a.title.set_fontsize(FONT)
        a.xaxis.label.set_fontsize(FONT)
        a.yaxis.label.set_fontsize(FONT)
