"""The pictures: rendered to PNG (Agg), checked for size, content and the node counts they report.

The numbers a picture shows are checked against the engine: the input cotangents of the backprop
picture are grad f(x) (value_and_grad, itself cross-validated against JAX), the network picture's
norm panel holds the norms of testbed.nn.value_and_grad's arrays.
"""

import io
import re

import matplotlib.image
import numpy as np
import pytest

import testbed
import testbed.nn as nn
from testbed.draw import DEFAULT_MAX_NODES, sweep
from testbed.random_circuits import random_circuit


def _png(fig):
    """Render with Agg; return the pixels (h, w, 4) after checking the size is figsize x dpi."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    img = matplotlib.image.imread(io.BytesIO(buf.getvalue()), format="png")
    w, h = fig.get_size_inches() * fig.dpi
    assert img.shape[:2] == (round(h), round(w))
    ink = np.mean(np.any(img[..., :3] < 0.9, axis=-1))
    assert ink > 0.005, f"the picture is almost blank ({ink:.4f} of pixels drawn)"
    return img


def _nodes(ax):
    (col,) = [c for c in ax.collections if c.get_gid() == "nodes"]
    return len(col.get_offsets())


def _example():
    return testbed.trace(lambda x: testbed.sin(x[0] * x[1]) + x[2] / (x[0] * x[0] + 1.0), 3)


def test_draw_small_circuit_reports_and_draws_every_node():
    c = _example()
    fig = testbed.draw(c, np.array([1.0, 2.0, 3.0]))
    _png(fig)
    (ax,) = fig.axes
    assert _nodes(ax) == c.l + c.size == 9
    assert f"N={c.size} operations" in ax.get_title()
    texts = [t.get_text() for t in ax.texts]
    assert "sin" in texts and "x0" in texts
    assert [t.get_text() for t in ax.texts if t.get_gid() == "double"] == ["×2"]  # x0 * x0
    # values and cotangents of the output node: f(x) and 1
    assert any(t.startswith(f"v={float(c(np.array([1.0, 2.0, 3.0]))):.3g}") for t in texts)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("family", ["wide", "deep"])
def test_sweep_input_cotangents_are_the_gradient(seed, family):
    rng = np.random.default_rng(seed)
    c = random_circuit(rng, 60, 4, family=family)
    x = rng.uniform(0.5, 1.5, size=4)
    vals, cot, terms = sweep(c, x)
    f, g = testbed.value_and_grad(c, x)
    assert vals[c.outputs[0]] == f
    # the same rules in the same slot order, but a shared operand's two terms (x * x) are summed
    # before they are added to its cotangent: rounding may differ in the last bits
    np.testing.assert_allclose(cot[:c.l], g, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(g).max()))
    # every node's cotangent is the sum of the terms its outgoing edges send back
    back = np.zeros(c.n_slots)
    for (_, a), t in terms.items():
        back[a] += t
    back[c.outputs[0]] += 1.0
    live = c.op != 1  # constants take no cotangent
    np.testing.assert_allclose(back[live], cot[live], rtol=1e-12, atol=1e-300)


def test_sweep_of_a_vector_circuit_is_the_vjp():
    c = testbed.trace(lambda x: (x[0] * x[1], testbed.exp(x[0]) - x[1]), 2)
    x, u = np.array([0.3, -1.2]), np.array([2.0, -0.5])
    _, cot, _ = sweep(c, x, u)
    np.testing.assert_allclose(cot[:2], testbed.vjp(c, x, u)[1], rtol=1e-14)
    with pytest.raises(testbed.ShapeError, match="give their cotangent u"):
        sweep(c, x)
    with pytest.raises(testbed.ShapeError, match="one per output"):
        sweep(c, x, np.ones(3))


def test_draw_backprop_labels_every_edge():
    c = _example()
    fig = testbed.draw_backprop(c, np.array([1.0, 2.0, 3.0]))
    _png(fig)
    fwd, rev = fig.axes
    assert _nodes(fwd) == _nodes(rev) == 9
    _, _, terms = sweep(c, np.array([1.0, 2.0, 3.0]))
    labels = sorted(t.get_text() for t in rev.texts if t.get_gid() == "term")
    assert labels == sorted(f"{v:.3g}" for v in terms.values())
    assert len(terms) == 9  # x0 * x0 is one edge carrying both terms
    assert "reverse sweep" in rev.get_title()


def test_draw_sweep_one_panel_per_operation_ends_at_the_gradient():
    c = _example()
    x = np.array([1.0, 2.0, 3.0])
    fig = testbed.draw_sweep(c, x, columns=3)
    _png(fig)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == c.size == 6 and f"{c.size} steps" in fig.get_suptitle()
    _, _, terms = sweep(c, x)
    labelled = sorted(t.get_text() for ax in panels for t in ax.texts if t.get_gid() == "term")
    assert labelled == sorted(f"{v:.3g}" for v in terms.values())  # each edge labelled once
    g = testbed.value_and_grad(c, x)[1]
    last = [t.get_text() for t in panels[-1].texts if t.get_text().startswith("v̄=")][:c.l]
    assert last == [f"v̄={v:.3g}" for v in g]  # the input row of the last panel reads grad f(x)
    big = testbed.trace(lambda x: sum(testbed.sin(x[0] * k) for k in range(1, 20)), 1)
    with pytest.raises(testbed.TestbedError, match="use draw_backprop"):
        testbed.draw_sweep(big, np.ones(1))
    with pytest.raises(testbed.TestbedError, match="no operation"):
        testbed.draw_sweep(testbed.from_nodes(1, [], [0]), np.ones(1))


def test_draw_grad_is_a_circuit_beside_its_gradient():
    c = _example()
    fig = testbed.draw_grad(c)
    _png(fig)
    left, right = fig.axes
    g = testbed.grad(c)
    assert _nodes(left) == c.l + c.size and _nodes(right) == g.l + g.size
    assert f"{g.size} / {c.size}" in fig.get_suptitle()


def test_large_circuits_are_collapsed_and_say_so():
    rng = np.random.default_rng(0)
    c = random_circuit(rng, 3000, 10)
    assert c.l + c.size > DEFAULT_MAX_NODES
    fig = testbed.draw(c, rng.uniform(0.5, 1.5, 10))
    _png(fig)
    (ax,) = fig.axes
    bands = [t for t in ax.texts if t.get_gid() == "band"]
    assert len(bands) == min(24, c.depth + 1)
    assert "collapsed" in ax.get_title() and f"N={c.size:,}" in ax.get_title()
    assert "values at x not shown" in ax.get_title()
    counts = sum(int(t.get_text().split(": ")[1].split(" nodes")[0].replace(",", "")) for t in bands)
    assert counts == c.l + c.size


def test_a_long_chain_draws_without_recursion():
    n = 200_000

    def chain(x):
        v = x[0]
        for _ in range(n):
            v = testbed.sin(v)
        return v

    c = testbed.trace(chain, 1)
    fig = testbed.draw(c)
    (ax,) = fig.axes
    assert sum(1 for t in ax.texts if t.get_gid() == "band") == 24
    assert f"N={n:,}" in ax.get_title()


def test_to_dot_lists_every_node_and_edge():
    c = _example()
    dot = testbed.to_dot(c)
    assert dot.startswith("digraph circuit {") and dot.rstrip().endswith("}")
    assert sum(1 for line in dot.splitlines() if "[label=" in line) == c.l + c.size
    assert sum(1 for line in dot.splitlines() if "->" in line) == 9
    assert "peripheries=2" in dot  # the output
    assert c.to_dot() == dot  # the method is the same function


def test_draw_bad_input():
    c = _example()
    with pytest.raises(TypeError, match="needs a testbed Circuit"):
        testbed.draw("c")
    with pytest.raises(TypeError, match="needs a testbed Circuit"):
        testbed.to_dot(5)
    with pytest.raises(testbed.ShapeError, match="l=3"):
        testbed.draw(c, np.ones(2))
    with pytest.raises(testbed.ShapeError, match="one point"):
        testbed.draw(c, np.ones((2, 3)))
    with pytest.raises(testbed.TestbedError, match="max_nodes"):
        testbed.draw(c, max_nodes=0)
    with pytest.raises(testbed.ShapeError, match="needs a point"):
        testbed.draw_backprop(c, None)
    with pytest.raises(testbed.NonFiniteError):
        testbed.draw(c, np.array([1.0, np.nan, 0.0]))


# --- the deep network --------------------------------------------------------------------------


def _net(sizes, activation="tanh", init="xavier_normal", seed=0, m=8):
    rng = np.random.default_rng(seed)
    net = nn.init_network(sizes, activation, init, rng)
    return net, rng.normal(size=(m, sizes[0])), rng.normal(size=(m, sizes[-1]))


def test_nn_draw_forward_and_backward_with_norms():
    net, x, y = _net([3, 16, 16, 1])
    fig = nn.draw(net, x, y)
    _png(fig)
    top, panel = fig.axes
    r = net.depth
    boxes = [t for t in top.texts if t.get_gid() == "box"]
    # per layer: a[k] (k < r) forward and backward, z[k] and dJ/dz[k], dJ/dW[k], dJ/db[k], W[k], b[k]
    assert len(boxes) == 2 * (r + 1) - 2 + 6 * r
    assert f"{len(boxes)} value boxes" in top.get_title() and f"{r} of {r} layers" in top.get_title()
    texts = [t.get_text() for t in top.texts]
    assert "(8, 16)" in texts and "(8, 3)" in texts  # shapes on arrows: (m, n[k])
    # every arrow carries a shape: 4r - 1 forward arrows and Lemma 3's, 2r - 1 backward with a lemma
    shapes = [t for t in texts if re.fullmatch(r"\(8, \d+\)", t)]
    assert len(shapes) == 4 * r
    assert len([t for t in texts if re.fullmatch(r"\(8, \d+\)\nLemma [12]: .*", t)]) == 2 * r - 1
    _, g = nn.value_and_grad(net, x, y)
    lines = {ln.get_label(): ln.get_ydata() for ln in panel.get_lines()}
    np.testing.assert_array_equal(lines["‖dJ/dz[k]‖"], [np.linalg.norm(g.dz[k]) for k in range(1, r + 1)])
    np.testing.assert_array_equal(lines["‖dJ/dW[k]‖"], [np.linalg.norm(g.dW[k]) for k in net.layers])


def test_nn_draw_one_example_without_norms():
    net, x, y = _net([2, 4, 3])
    fig = nn.draw(net, x[0], y[0], norms=False)
    _png(fig)
    (top,) = fig.axes
    texts = [t.get_text() for t in top.texts]
    assert "(4)" in texts and "(3)" in texts and not any("‖·‖" in t for t in texts)


def test_nn_draw_elides_the_middle_of_deep_networks():
    net, x, y = _net([4] + [8] * 11 + [1], "sigmoid", "standard")
    fig = nn.draw(net, x, y, max_layers=4)
    _png(fig)
    top, panel = fig.axes
    assert "4 of 12 layers drawn; layers 3..10 elided" in top.get_title()
    assert len(panel.get_lines()[0].get_ydata()) == 12  # the norm panel has every layer
    dz = panel.get_lines()[0].get_ydata()
    assert dz[0] < 1e-3 * dz[-1]  # sigmoid + standard init: the gradient vanishes towards k = 1


def test_nn_draw_bad_input():
    net, x, y = _net([3, 4, 1])
    with pytest.raises(TypeError, match="Network"):
        nn.draw("net", x, y)
    with pytest.raises(nn.NetworkShapeError):
        nn.draw(net, x[:, :2], y)
    with pytest.raises(nn.NetworkShapeError):
        nn.draw(net, x, y[:3])
    with pytest.raises(testbed.TestbedError, match="max_layers"):
        nn.draw(net, x, y, max_layers=1)
