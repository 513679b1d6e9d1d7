"""Pictures of circuits: the layered graph, the backprop picture, a circuit beside its gradient.

A circuit is drawn as a layered graph: one row per level (row 0 holds the inputs x_0 .. x_{l-1}),
each operation node labelled with its primitive and drawn below its arguments, edges pointing from
an argument to its use. Constants are not nodes of the picture: they are written into the label of
the node that uses them (as `Circuit.pretty` prints them inline).

At a point x the picture can carry each node's value v_i and its cotangent (adjoint)

    vbar_i = d f / d v_i = sum over uses m of v_i of  vbar_m * d v_m / d v_i,

the quantity the reverse sweep accumulates; `draw_backprop` also writes each edge's term
vbar_m * d v_m / d v_i on the edge, so the sweep can be followed edge by edge. The input cotangents
vbar_0 .. vbar_{l-1} are the gradient.

Circuits with more than `max_nodes` drawn nodes are collapsed: nodes are grouped by (band of
levels, primitive), each group drawn once with its node count, and the figure says so. Their
values are not drawn, but a point x (and u) is checked exactly as for a detailed picture: the
engine's ShapeError, NonFiniteError or DomainError (naming the node), whatever the size.

Everything is drawn with matplotlib's own layout (no Graphviz binary is needed); `to_dot` gives
Graphviz text for those who have it. The functions return a `matplotlib.figure.Figure` that is not
registered with pyplot (no global state): `fig.savefig("c.png")` renders it.
"""

from __future__ import annotations

import numpy as np

from . import evaluate as E
from . import primitives as P
from ._checks import check_int
from .circuit import Circuit
from .errors import NonFiniteError, ShapeError, TestbedError
from .transforms import grad

DEFAULT_MAX_NODES = 200  # above this many drawn nodes (inputs + operations) a circuit is collapsed
_BANDS = 24  # rows of a collapsed picture
_NODE_PT = 30.0  # node diameter in points
_FWD, _REV, _OUT = "#4063a8", "#c0392b", "#2e7d32"


def _check_circuit(c: object, what: str) -> None:
    if not isinstance(c, Circuit):
        raise TypeError(f"{what} needs a testbed Circuit, got {type(c).__name__}")


def _check_max_nodes(max_nodes: object) -> int:
    return check_int(max_nodes, "max_nodes", minimum=2, type_error=TestbedError)


def _fmt(v: float) -> str:
    return f"{v:.3g}"


# --- the values and cotangents of one point -----------------------------------------------------


def _values_at(c: Circuit, x: object) -> np.ndarray:
    """Every slot's value at one point x, x validated as the engine validates it.

    ShapeError for x of the wrong shape (a batch included: a picture shows one point),
    NonFiniteError for an inf or NaN in x or a value that overflows, DomainError naming the node
    where a primitive leaves its domain. Every picture of a point calls this, collapsed or not.
    """
    X, batched = E.as_points(c, x)
    if batched:
        raise ShapeError(f"the pictures take one point of shape ({c.l},), got shape {np.shape(x)}")
    return E.forward(c, X)


def _output_cotangent(c: Circuit, u: object) -> np.ndarray:
    """u, the cotangent of the outputs, as shape (k,): 1 for a scalar circuit when not given."""
    if u is None:
        if c.n_outputs != 1:
            raise ShapeError(f"this circuit has {c.n_outputs} outputs: give their cotangent u, "
                             f"shape ({c.n_outputs},)")
        return np.ones(1)
    U = E.as_real(u, "u").reshape(-1) if np.ndim(u) <= 1 else None  # no str, bool, complex
    if U is None or U.shape != (c.n_outputs,) or not np.isfinite(U).all():
        raise ShapeError(f"u must be {c.n_outputs} finite number(s), one per output; got {u!r}")
    return U


def sweep(c: Circuit, x: object, u: object = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(values, cotangents, edge terms) of c at one point x, for the pictures.

    values[i] = v_i (every slot); cotangents[i] = vbar_i = d (u . f) / d v_i (0 for constants and for
    slots no cotangent reaches); terms[(i, j)] = vbar_i * d v_i / d v_j, the contribution that the
    edge from argument slot j to node i sends back (edges from constants carry none). u is the
    cotangent of the outputs, shape (k,); for a scalar circuit it defaults to 1, giving grad f.
    The loop visits the slots once, last to first, and applies each primitive's reverse rule from
    the table: the reverse sweep written out, so that the picture can show each edge's share.

    Raises what the engine raises at x (ShapeError, NonFiniteError, DomainError naming the node),
    ShapeError for a bad u, and NonFiniteError naming the slot whose cotangent overflowed.
    """
    _check_circuit(c, "sweep")
    X = _values_at(c, x)  # ShapeError / NonFiniteError / DomainError on a bad x
    U = _output_cotangent(c, u)
    terms: dict[tuple[int, int], float] = {}
    adj = _seeded(c, U)
    for _, step in _reverse_steps(c, X, adj):
        terms.update(step)
    cot = np.asarray(adj, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(cot))
    if bad.size:  # as testbed.evaluate.reverse: name the slot the reverse sweep met first
        i = int(bad[-1])
        raise NonFiniteError(f"the reverse sweep overflowed: the cotangent of {c._name(i)} = "
                             f"{P.NAMES[c.op[i]]} is not finite")
    cot[c.op == P.CONST] = 0.0
    return X, cot, terms


def _seeded(c: Circuit, U: np.ndarray) -> list[float]:
    """The cotangents before the sweep: u on the outputs, 0 elsewhere."""
    adj = [0.0] * c.n_slots
    for o, g in zip(c.outputs.tolist(), U.tolist(), strict=True):
        adj[o] += g
    return adj


def _reverse_steps(c: Circuit, X: np.ndarray, adj: list[float]) -> object:
    """The reverse sweep one node at a time, accumulating into `adj` in place: yields
    (i, {(i, j): term}) after node i has sent its terms to its arguments j, i = last .. first."""
    v = X.tolist()
    op, A0, A1 = c.op.tolist(), c.a0.tolist(), c.a1.tolist()
    for i in range(c.n_slots - 1, c.l - 1, -1):
        if op[i] == P.CONST:
            continue
        prim = P.BY_CODE[op[i]]
        args = [a for a in (A0[i], A1[i]) if a >= 0]
        contrib = prim.vjp(adj[i], v[i], *(v[a] for a in args))
        step: dict[tuple[int, int], float] = {}
        for a, ca in zip(args, contrib, strict=True):
            if op[a] == P.CONST:
                continue
            t = 0.0 if ca is None else float(ca)
            step[(i, a)] = step.get((i, a), 0.0) + t  # x * x: both edges of one pair, summed
            adj[a] += t
        yield i, step


# --- layout ---------------------------------------------------------------------------------------


class _Layout:
    """Positions of the drawn nodes: row = level, order within a row by the mean position of the
    arguments (one top-down pass, which removes most crossings of a layered drawing)."""

    def __init__(self, c: Circuit):
        self.c = c
        drawn = np.flatnonzero(c.op != P.CONST)
        self.nodes = drawn.tolist()
        level = c.level.tolist()
        rows: dict[int, list[int]] = {}
        for i in self.nodes:
            rows.setdefault(level[i], []).append(i)
        self.xy: dict[int, tuple[float, float]] = {}
        A0, A1, op = c.a0.tolist(), c.a1.tolist(), c.op.tolist()
        self.width = max(len(r) for r in rows.values())
        for lev in sorted(rows):
            row = rows[lev]
            if lev > 0:
                def key(i: int) -> tuple[float, int]:
                    xs = [self.xy[a][0] for a in (A0[i], A1[i]) if a >= 0 and op[a] != P.CONST]
                    return (sum(xs) / len(xs) if xs else 0.0, i)

                row.sort(key=key)
            off = (self.width - len(row)) / 2
            for pos, i in enumerate(row):
                self.xy[i] = (off + pos, -float(lev))
        self.n_rows = len(rows)
        self.edges = [(a, i) for i in self.nodes[c.l:] for a in dict.fromkeys((A0[i], A1[i]))
                      if a >= 0 and op[a] != P.CONST]


def _label(c: Circuit, i: int) -> str:
    if i < c.l:
        return f"x{i}"
    name = P.NAMES[c.op[i]]
    consts = [_fmt(float(c.consts[a])) for a in (c.a0[i], c.a1[i]) if a >= 0 and c.op[a] == P.CONST]
    return name if not consts else f"{name}\n{', '.join(consts)}"


def _new_figure(width: float, height: float) -> object:
    from matplotlib.figure import Figure  # imported when a picture is asked for: `import testbed` stays light

    return Figure(figsize=(min(max(width, 4.0), 30.0), min(max(height, 3.0), 30.0)), dpi=100,
                  layout="constrained")


def _draw_detailed(ax: object, c: Circuit, values: np.ndarray | None, cot: np.ndarray | None,
                   terms: dict | None, reverse: bool, lay: _Layout | None = None) -> int:
    """Draw every input and operation node of c on ax; return how many nodes were drawn.

    With `terms`, each edge in it is labelled with its term; when `terms` does not cover every
    edge (one step of the sweep), the other edges are drawn faint."""
    lay = _Layout(c) if lay is None else lay
    outputs = set(c.outputs.tolist())
    colour = _REV if reverse else _FWD
    partial = terms is not None and len(terms) < len(lay.edges)
    for a, i in lay.edges:
        tail, head = (lay.xy[i], lay.xy[a]) if reverse else (lay.xy[a], lay.xy[i])
        faint = partial and (i, a) not in terms
        ax.annotate("", xy=head, xytext=tail, gid="edge",
                    arrowprops=dict(arrowstyle="-|>", color="#bbbbbb" if faint else colour,
                                    lw=1.0 if faint else 1.4 if partial else 1.0, alpha=0.8,
                                    shrinkA=_NODE_PT / 2, shrinkB=_NODE_PT / 2 + 1))
        if faint:
            continue
        if terms is None and c.a0[i] == c.a1[i]:  # v * v: one drawn edge standing for both operands
            (x0, y0), (x1, y1) = lay.xy[a], lay.xy[i]
            ax.text((x0 + x1) / 2 + 0.08, (y0 + y1) / 2, "×2", fontsize=6.5, color=colour, gid="double")
        if terms is not None:
            # in the gap just below the argument's row, so that labels of long edges stay off nodes
            (x0, y0), (x1, y1) = lay.xy[a], lay.xy[i]
            t = 0.62 / (y0 - y1)
            ax.text(x0 + t * (x1 - x0), y0 - 0.62, _fmt(terms[(i, a)]), gid="term",
                    fontsize=6.5, color=_REV, ha="center", va="center",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    pts = np.array([lay.xy[i] for i in lay.nodes])
    face = ["#fde9e7" if reverse else "#e8eef9" for _ in lay.nodes]
    edge = [_OUT if i in outputs else colour for i in lay.nodes]
    ax.scatter(pts[:, 0], pts[:, 1], s=_NODE_PT ** 2, c=face, edgecolors=edge,
               linewidths=[2.2 if i in outputs else 1.0 for i in lay.nodes], zorder=3, gid="nodes")
    for i in lay.nodes:
        x, y = lay.xy[i]
        ax.text(x, y, _label(c, i), ha="center", va="center", fontsize=6.5, zorder=4)
        below = []
        if values is not None:
            below.append(f"v={_fmt(values[i])}")
        if cot is not None:
            below.append(f"v̄={_fmt(cot[i])}")
        if below:
            ax.text(x, y - 0.27, "\n".join(below), ha="center", va="top", fontsize=6.5, zorder=4,
                    color=_REV if reverse or values is None else "black",
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.85))
    ax.set_xlim(-0.7, lay.width - 0.3)
    ax.set_ylim(-(lay.n_rows - 1) - 0.9, 0.6)
    ax.set_axis_off()
    return len(lay.nodes)


def _draw_collapsed(ax: object, c: Circuit, bands: int) -> int:
    """Group the drawn nodes into bands of consecutive levels; one box per band with its node count
    and commonest primitives, one arrow per pair of bands joined by edges (width ~ log of their
    number; arrows that skip bands bow to the side). Returns the number of bands drawn."""
    drawn = np.flatnonzero(c.op != P.CONST)
    n_levels = c.depth + 1
    n_bands = min(bands, n_levels)
    band_of = (c.level * n_bands) // n_levels
    ops = drawn[drawn >= c.l]
    pairs = []
    for a in (c.a0[ops], c.a1[ops]):
        ok = a >= 0
        ok[ok] = c.op[a[ok]] != P.CONST
        pairs.append(band_of[a[ok]] * n_bands + band_of[ops[ok]])
    edge_keys, edge_n = np.unique(np.concatenate(pairs), return_counts=True)
    src_b, dst_b = np.divmod(edge_keys, n_bands)
    for s, d, n in zip(src_b.tolist(), dst_b.tolist(), edge_n.tolist(), strict=True):
        if s == d:
            continue
        # arc3 bows by about rad * length / 2: arrows that skip more bands bow further, up to 1.9
        bow = 0.0 if d == s + 1 else 0.7 + 1.2 * (d - s) / n_bands
        ax.annotate("", xy=(0.0, -float(d)), xytext=(0.0, -float(s)), gid="edge",
                    arrowprops=dict(arrowstyle="-|>", color=_FWD, lw=0.5 + 0.8 * np.log10(n),
                                    alpha=0.5, shrinkA=12, shrinkB=13,
                                    connectionstyle=f"arc3,rad={-2 * bow / (d - s)}"))
    count = np.bincount(band_of[drawn], minlength=n_bands)
    for b in range(n_bands):
        levels = np.flatnonzero((np.arange(n_levels) * n_bands) // n_levels == b)
        kinds = c.op[drawn[band_of[drawn] == b]]
        names, k = np.unique(kinds, return_counts=True)
        top = np.argsort(-k, kind="stable")[:4]
        mix = ", ".join(f"{'x' if names[t] == P.INPUT else P.NAMES[names[t]]} {k[t]:,}" for t in top)
        span = f"level {levels[0]}" if len(levels) == 1 else f"levels {levels[0]}-{levels[-1]}"
        ax.text(0.0, -float(b), f"{span}: {count[b]:,} nodes\n{mix}", ha="center", va="center",
                fontsize=7, zorder=4, gid="band",
                bbox=dict(boxstyle="round,pad=0.35", fc="#e8eef9", ec=_FWD, lw=0.8))
    ax.set_xlim(-2.3, 2.3)
    ax.set_ylim(-(n_bands - 1) - 0.7, 0.7)
    ax.set_axis_off()
    return n_bands

def _draw_on(ax: object, c: Circuit, x: object, u: object, max_nodes: int, edge_terms: bool,
             reverse: bool, values: bool, cotangents: bool, title: str) -> str:
    drawn = c.l + c.size
    if drawn > max_nodes:
        if x is not None:
            # nothing of x is drawn here, but x is checked as on the detailed path: the engine's
            # ShapeError / NonFiniteError / DomainError (and u, and the reverse sweep's overflow,
            # when the detailed picture would have computed the cotangents)
            vals = _values_at(c, x)
            if cotangents or edge_terms:
                E.reverse(c, vals, _output_cotangent(c, u))
        n_bands = _draw_collapsed(ax, c, _BANDS)
        note = (f"collapsed: {drawn:,} nodes (l={c.l}, N={c.size:,}, depth {c.depth})\n"
                f"drawn as {n_bands} bands of levels"
                + ("; values at x not shown" if x is not None else ""))
    else:
        vals = cot = terms = None
        if x is not None:
            vals, cot, terms = sweep(c, x, u) if (cotangents or edge_terms) else (
                _values_at(c, x), None, None)
        n = _draw_detailed(ax, c, vals if values else None, cot if cotangents else None,
                           terms if edge_terms else None, reverse)
        note = f"{n} nodes: l={c.l} inputs, N={c.size} operations, depth {c.depth}"
    ax.set_title(f"{title}\n{note}", fontsize=9)
    return note


def _figure_size(c: Circuit, max_nodes: int, text_rows: int) -> tuple[float, float]:
    if c.l + c.size > max_nodes:
        return 6.0, 0.55 * min(_BANDS, c.depth + 1) + 1.5
    lay = _Layout(c)
    return 1.05 * lay.width + 0.8, (0.75 + 0.15 * text_rows) * lay.n_rows + 1.2


def draw(c: Circuit, x: object = None, *, u: object = None, cotangents: bool = True,
         max_nodes: int = DEFAULT_MAX_NODES, title: str | None = None) -> object:
    """The circuit as a layered graph: a matplotlib Figure.

    One row per level, each node labelled with its primitive (constants inline); the output(s)
    ringed in green. With a point x of shape (l,), each node also carries its value v_i and, if
    `cotangents`, its cotangent vbar_i = d (u . f) / d v_i (u = 1 for a scalar circuit), so that the
    input row reads grad f(x). Above `max_nodes` drawn nodes (inputs + operations) the circuit is
    collapsed into (level band, primitive) groups and the figure says so in its title.
    """
    _check_circuit(c, "draw")
    max_nodes = _check_max_nodes(max_nodes)
    rows = 0 if x is None else (2 if cotangents else 1)
    fig = _new_figure(*_figure_size(c, max_nodes, rows))
    ax = fig.add_subplot()
    _draw_on(ax, c, x, u, max_nodes, edge_terms=False, reverse=False, values=x is not None,
             cotangents=cotangents and x is not None, title=title or "circuit")
    return fig


def draw_backprop(c: Circuit, x: object, *, u: object = None,
                  max_nodes: int = DEFAULT_MAX_NODES) -> object:
    """The backprop picture of c at x: two panels, forward sweep then reverse sweep.

    Left: the forward sweep, edges pointing from argument to use, each node labelled with its value
    v_i. Right: the reverse sweep on the same layout, edges reversed, each edge labelled with the
    term vbar_m * d v_m / d v_i it sends back and each node with its cotangent vbar_i (the sum of the
    terms arriving at it); the output starts with vbar = u (1 for a scalar f), the input row ends
    with grad f(x).
    """
    _check_circuit(c, "draw_backprop")
    if x is None:
        raise ShapeError(f"draw_backprop needs a point x of shape ({c.l},)")
    max_nodes = _check_max_nodes(max_nodes)
    w, h = _figure_size(c, max_nodes, 1)
    fig = _new_figure(2 * w, h)
    left, right = fig.subplots(1, 2)
    _draw_on(left, c, x, u, max_nodes, edge_terms=False, reverse=False, values=True,
             cotangents=False, title="forward sweep: values v_i")
    _draw_on(right, c, x, u, max_nodes, edge_terms=True, reverse=True, values=False,
             cotangents=True, title="reverse sweep: cotangents v̄_i, edge terms v̄_m ∂v_m/∂v_i")
    return fig


MAX_STEPS = 24  # draw_sweep draws one panel per operation: beyond this, use draw_backprop


def draw_sweep(c: Circuit, x: object, *, u: object = None, columns: int = 4) -> object:
    """The reverse sweep of c at x step by step: one panel per operation, last to first.

    Panel s shows the cotangents after the s-th node m of the reverse order has sent its terms
    vbar_m * d v_m / d v_i back along its edges (drawn in colour and labelled; the other edges
    faint): each v̄_i grows by one term per use of v_i, and the input row of the last panel is
    grad f(x). For circuits of at most MAX_STEPS operations.
    """
    _check_circuit(c, "draw_sweep")
    if x is None:
        raise ShapeError(f"draw_sweep needs a point x of shape ({c.l},)")
    if c.size > MAX_STEPS:
        raise TestbedError(f"draw_sweep draws one panel per operation and this circuit has N = "
                           f"{c.size} > {MAX_STEPS}: use draw_backprop, which shows every edge's term "
                           f"in one picture")
    columns = check_int(columns, "columns", minimum=1, type_error=TestbedError)
    X, _, _ = sweep(c, x, u)  # validates x and u
    adj = _seeded(c, _output_cotangent(c, u))
    lay = _Layout(c)
    steps = [(i, np.array(adj), step) for i, step in _reverse_steps(c, X, adj)]
    if not steps:
        raise TestbedError("this circuit has no operation: its reverse sweep has no step to draw")
    rows = -(-len(steps) // columns)
    w, h = _figure_size(c, DEFAULT_MAX_NODES, 1)
    fig = _new_figure(w * min(columns, len(steps)), h * rows)
    axes = np.atleast_1d(fig.subplots(rows, min(columns, len(steps)))).ravel()
    for s, (ax, (i, adj, step)) in enumerate(zip(axes, steps, strict=False), start=1):
        adj[c.op == P.CONST] = 0.0
        _draw_detailed(ax, c, None, adj, step, reverse=True, lay=lay)
        ax.set_title(f"step {s}: {P.NAMES[c.op[i]]} v{i} sends v̄={_fmt(adj[i])} back",
                     fontsize=8)
    for ax in axes[len(steps):]:
        ax.set_axis_off()
    fig.suptitle(f"the reverse sweep, one node at a time ({len(steps)} steps, N={c.size}, l={c.l})",
                 fontsize=10)
    return fig


def draw_grad(c: Circuit, *, max_nodes: int = DEFAULT_MAX_NODES) -> object:
    """c beside grad(c): the gradient is itself a circuit, a small constant times the size of c.

    The title gives both sizes N and their ratio (at most 5, about 3 in practice).
    """
    _check_circuit(c, "draw_grad")
    max_nodes = _check_max_nodes(max_nodes)
    g = grad(c)
    (w1, h1), (w2, h2) = _figure_size(c, max_nodes, 0), _figure_size(g, max_nodes, 0)
    fig = _new_figure(w1 + w2, max(h1, h2))
    left, right = fig.subplots(1, 2, width_ratios=[max(w1, 1.0), max(w2, 1.0)])
    _draw_on(left, c, None, None, max_nodes, False, False, False, False, "c")
    _draw_on(right, g, None, None, max_nodes, False, False, False, False,
             f"grad(c): l={g.l} outputs")
    fig.suptitle(f"N(grad c) / N(c) = {g.size} / {c.size} = {g.size / max(c.size, 1):.2f}",
                 fontsize=11)
    return fig


def to_dot(c: Circuit) -> str:
    """Graphviz text of c: one node per input and operation, constants inline, one rank per level.

    `dot -Tsvg` (if Graphviz is installed) lays it out top to bottom like `draw`.
    """
    _check_circuit(c, "to_dot")
    outputs = set(c.outputs.tolist())
    lines = ["digraph circuit {", "  rankdir=TB;", '  node [shape=circle, fontsize=10];']
    level: dict[int, list[str]] = {}
    for i in np.flatnonzero(c.op != P.CONST).tolist():
        label = _label(c, i).replace("\n", "\\n")
        extra = ", peripheries=2" if i in outputs else ""
        lines.append(f'  v{i} [label="{label}"{extra}];')
        level.setdefault(int(c.level[i]), []).append(f"v{i}")
    for i in range(c.l, c.n_slots):
        if c.op[i] == P.CONST:
            continue
        for a in dict.fromkeys((int(c.a0[i]), int(c.a1[i]))):
            if a >= 0 and c.op[a] != P.CONST:
                lines.append(f"  v{a} -> v{i};")
    lines += [f"  {{rank=same; {'; '.join(names)};}}" for _, names in sorted(level.items())]
    lines.append("}")
    return "\n".join(lines) + "\n"
