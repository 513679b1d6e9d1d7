"""Plot helpers the studies share."""

from __future__ import annotations


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
