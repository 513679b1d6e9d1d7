"""Bad input: a NetworkError (TestbedError, ValueError) naming layer and shapes, or a TypeError."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nn_support import architectures, make_problem

import testbed
import testbed.nn as nn


def _net(sizes=(3, 4, 2), activation="tanh"):
    return make_problem(list(sizes), activation, 5, seed=0).net


def test_error_hierarchy():
    assert issubclass(nn.NetworkError, testbed.TestbedError)
    assert issubclass(nn.NetworkError, ValueError)
    assert issubclass(nn.NetworkShapeError, testbed.ShapeError)
    assert issubclass(nn.NetworkNonFiniteError, testbed.NonFiniteError)
    for cls in (nn.NetworkShapeError, nn.NetworkNonFiniteError, nn.UnknownNameError,
                nn.TrainingDivergedError, nn.NetworkLayoutError):
        assert issubclass(cls, nn.NetworkError)


@given(architectures(min_depth=2, max_depth=5, max_width=8), st.data())
def test_shapes_that_do_not_chain_name_the_layer(sizes, data):
    """Change the column count of one W[k] (k >= 2): the error names k and both shapes."""
    net = make_problem(sizes, "relu", 2, seed=0).net
    k = data.draw(st.integers(2, net.depth))
    W = [None] + [net.W[j].copy() for j in net.layers]
    bad_cols = W[k].shape[1] + data.draw(st.sampled_from([-1, 1, 3]))
    if bad_cols < 1:
        bad_cols = W[k].shape[1] + 1
    W[k] = np.ones((W[k].shape[0], bad_cols))
    with pytest.raises(nn.NetworkShapeError) as info:
        nn.Network(W, net.b, "relu")
    msg = str(info.value)
    assert f"layer k={k}" in msg and str(W[k].shape) in msg and str(W[k - 1].shape) in msg


def test_bias_of_the_wrong_shape():
    net = _net()
    b = [None, net.b[1], np.zeros(3)]
    with pytest.raises(nn.NetworkShapeError, match=r"layer k=2: b\[2\] has shape \(3,\).*\(2,\)"):
        nn.Network(net.W, b, "tanh")
    with pytest.raises(nn.NetworkShapeError, match="layer k=1.*W\\[1\\].*matrix"):
        nn.Network([None, np.ones(3)], [None, np.ones(3)], "tanh")
    with pytest.raises(nn.NetworkShapeError, match="W has 2 layers but b has 1"):
        nn.Network(net.W, net.b[:2], "tanh")


def test_empty_network():
    with pytest.raises(nn.NetworkShapeError, match="empty network"):
        nn.Network([], [], "relu")
    with pytest.raises(nn.NetworkShapeError, match="empty network"):
        nn.Network([None], [None], "relu")
    with pytest.raises(nn.NetworkShapeError, match="empty network"):
        nn.init_network([3], "relu", "zeros", np.random.default_rng(0))
    with pytest.raises(nn.NetworkShapeError, match="layer k=1: n\\[1\\] = 0"):
        nn.init_network([3, 0, 1], "relu", "zeros", np.random.default_rng(0))
    with pytest.raises(nn.NetworkShapeError, match="layer k=1.*\\(0, 3\\)"):
        nn.Network([None, np.ones((0, 3))], [None, np.ones(0)], "relu")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_parameters(bad):
    net = _net()
    W = [None] + [w.copy() for w in net.W[1:]]
    W[2][1, 2] = bad
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=2: W\[2\] \(shape \(2, 4\)\).*"
                                                         r"\(1, 2\)"):
        nn.Network(W, net.b, "tanh")
    b = [None] + [v.copy() for v in net.b[1:]]
    b[1][3] = bad
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=1: b\[1\]"):
        nn.Network(net.W, b, "tanh")


def test_unknown_activation_and_initialiser():
    net = _net()
    with pytest.raises(nn.UnknownNameError, match="'swish'.*known.*relu"):
        nn.Network(net.W, net.b, "swish")
    with pytest.raises(nn.UnknownNameError, match="'orthogonal'.*known.*xavier_normal"):
        nn.init_network([2, 3], "relu", "orthogonal", np.random.default_rng(0))


@pytest.mark.parametrize("x_shape", [(5, 4), (4,), (5, 3, 1), (0, 3), ()])
def test_x_of_the_wrong_shape(x_shape):
    net = _net()
    with pytest.raises(nn.NetworkShapeError, match=r"layer k=1: x has shape .*W\[1\] has shape "
                                                    r"\(4, 3\).*\(3,\) or a batch \(m, 3\)"):
        nn.forward(net, np.ones(x_shape))


@pytest.mark.parametrize("y_shape", [(5, 3), (5,), (4, 2), (2,), (1, 2)])
def test_y_of_the_wrong_size(y_shape):
    net = _net()
    with pytest.raises(nn.NetworkShapeError, match=r"layer k=2: y has shape .*tau = z\[2\] has "
                                                    r"shape \(5, 2\).*must be \(5, 2\)"):
        nn.value_and_grad(net, np.ones((5, 3)), np.ones(y_shape))
    with pytest.raises(nn.NetworkShapeError, match="y has shape"):
        nn.loss(net, np.ones((5, 3)), np.ones(y_shape))
    with pytest.raises(nn.NetworkShapeError, match="y has shape"):
        nn.backward(net, nn.forward(net, np.ones((5, 3))), np.ones(y_shape))


def test_y_accepted_shapes_for_one_output():
    net = _net((3, 4, 1))
    x = np.ones((5, 3))
    J = nn.loss(net, x, np.zeros((5, 1)))
    assert nn.loss(net, x, np.zeros(5)) == J
    assert nn.loss(net, x[0], 0.0) == nn.loss(net, x[0], np.zeros(1))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_inputs_and_targets(bad):
    net = _net()
    x, y = np.ones((5, 3)), np.ones((5, 2))
    x[2, 1] = bad
    with pytest.raises(nn.NetworkNonFiniteError, match=r"x \(shape \(5, 3\)\).*\(2, 1\)"):
        nn.forward(net, x)
    y[4, 0] = bad
    with pytest.raises(nn.NetworkNonFiniteError, match=r"y \(shape \(5, 2\)\).*\(4, 0\)"):
        nn.loss(net, np.ones((5, 3)), y)


NOT_REAL = {
    "complex": lambda shape: np.ones(shape) + 1j,
    "string": lambda shape: np.full(shape, "1.5"),
    "bool": lambda shape: np.ones(shape, dtype=bool),
    "object": lambda shape: np.full(shape, None, dtype=object),
}


@pytest.mark.parametrize("kind", sorted(NOT_REAL))
def test_inputs_that_are_not_real_numbers_are_rejected(kind):
    """Complex, numeric strings, bools, objects: a TypeError saying what is expected, everywhere."""
    p = make_problem([3, 4, 2], "tanh", 5, seed=0)
    bad = NOT_REAL[kind]
    want = r"must be a real float array of shape"
    with pytest.raises(TypeError, match=rf"x {want} \(3,\) or \(m, 3\), got dtype"):
        nn.forward(p.net, bad((5, 3)))
    with pytest.raises(TypeError, match=rf"y {want} \(2,\) or \(m, 2\)"):
        nn.value_and_grad(p.net, p.x, bad((5, 2)))
    with pytest.raises(TypeError, match=rf"y {want}"):
        nn.backward(p.net, nn.forward(p.net, p.x), bad((5, 2)))
    with pytest.raises(TypeError, match=rf"VW\[2\] {want} \(2, 4\)"):
        nn.hvp(p.net, p.x, p.y, ([None, p.VW[1], bad((2, 4))], p.Vb))
    with pytest.raises(TypeError, match=rf"vx {want} \(5, 3\), like x"):
        nn.hvp_x(p.net, p.x, p.y, (p.VW, p.Vb), bad((5, 3)))
    with pytest.raises(TypeError, match=rf"W\[2\] {want} \(n\[2\], n\[1\]\)"):
        nn.Network([None, p.net.W[1], bad((2, 4))], p.net.b, "tanh")
    with pytest.raises(TypeError, match=rf"b\[1\] {want} \(n\[1\],\)"):
        nn.Network(p.net.W, [None, bad(4), p.net.b[2]], "tanh")
    if kind == "bool":
        with pytest.raises(TypeError, match="pass 1.0 \\* mask"):
            nn.loss(p.net, bad((5, 3)), p.y)


def test_integer_inputs_are_accepted_as_floats():
    p = make_problem([3, 4, 2], "tanh", 5, seed=0)
    x = np.arange(15).reshape(5, 3)
    assert nn.loss(p.net, x, p.y) == nn.loss(p.net, x.astype(float), p.y)


@pytest.mark.parametrize("sizes", [[3, 2.5, 1], [3, 2.0, 1], [3, True, 1], [3, "4", 1],
                                   [np.float64(3), 2]])
def test_widths_must_be_integers(sizes):
    """A width of 2.5 (or 2.0, True, "4") is reported, not truncated or converted."""
    with pytest.raises(TypeError, match=r"layer k=\d: n\[\d\] = .* a width must be an integer"):
        nn.init_network(sizes, "relu", "zeros", np.random.default_rng(0))


@pytest.mark.parametrize("sizes", [[3, 0, 1], [3, -2, 1], [0, 1]])
def test_widths_must_be_positive(sizes):
    with pytest.raises(nn.NetworkShapeError, match=r"layer k=\d: n\[\d\] = -?\d+, every layer"):
        nn.init_network(sizes, "relu", "zeros", np.random.default_rng(0))


def test_sizes_must_be_a_sequence():
    with pytest.raises(TypeError, match="sequence of integers"):
        nn.init_network("341", "relu", "zeros", np.random.default_rng(0))
    net = nn.init_network(np.array([3, 4, 1]), "relu", "zeros", np.random.default_rng(0))
    assert net.sizes == (3, 4, 1)


@pytest.mark.parametrize("lr", [0.0, -0.1, np.nan, np.inf])
def test_learning_rate_must_be_positive(lr):
    net = _net()
    x, y = np.ones((5, 3)), np.ones((5, 2))
    with pytest.raises(nn.NetworkError, match="learning rate"):
        nn.sgd_step(net, x, y, lr)
    with pytest.raises(nn.NetworkError, match="learning rate"):
        nn.train(net, x, y, lr, steps=3)


@pytest.mark.parametrize("lr", ["fast", "0.1", None, True, 0.1j])
def test_learning_rate_must_be_a_real_number(lr):
    net = _net()
    x, y = np.ones((5, 3)), np.ones((5, 2))
    with pytest.raises(TypeError, match="learning rate must be a real number"):
        nn.sgd_step(net, x, y, lr)
    with pytest.raises(TypeError, match="learning rate must be a real number"):
        nn.train(net, x, y, lr, steps=3)
    assert nn.sgd_step(net, x, y, np.float64(0.1)).depth == 2  # numpy scalars are numbers


def test_train_arguments():
    net = _net()
    x, y = np.ones((5, 3)), np.ones((5, 2))
    with pytest.raises(nn.NetworkError, match="steps"):
        nn.train(net, x, y, 0.1, steps=-1)
    with pytest.raises(nn.NetworkError, match="batch_size"):
        nn.train(net, x, y, 0.1, steps=1, batch_size=6, rng=np.random.default_rng(0))
    with pytest.raises(nn.NetworkError, match="rng=np.random.default_rng"):
        nn.train(net, x, y, 0.1, steps=1, batch_size=2)
    with pytest.raises(nn.NetworkError, match="one example"):
        nn.train(net, x[0], y[0], 0.1, steps=1)


def test_direction_shapes_for_hvp():
    p = make_problem([3, 4, 2], "tanh", 5, seed=0)
    VW = [None, p.VW[1], np.ones((2, 5))]
    with pytest.raises(nn.NetworkShapeError, match=r"layer k=2: VW\[2\] has shape \(2, 5\).*"
                                                    r"\(2, 4\)"):
        nn.hvp(p.net, p.x, p.y, (VW, p.Vb))
    with pytest.raises(nn.NetworkShapeError, match="r=2 layers"):
        nn.hvp(p.net, p.x, p.y, (p.VW[:2], p.Vb))
    Vb = [None, p.Vb[1], np.array([0.0, np.nan])]
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=2: Vb\[2\]"):
        nn.hvp(p.net, p.x, p.y, (p.VW, Vb))
    with pytest.raises(nn.NetworkShapeError, match="vx has shape"):
        nn.hvp_x(p.net, p.x, p.y, (p.VW, p.Vb), np.ones(3))


def test_cache_from_another_network():
    a, b = _net((3, 4, 2)), _net((3, 5, 2))
    with pytest.raises(nn.NetworkShapeError, match="cache does not belong"):
        nn.backward(a, nn.forward(b, np.ones((2, 3))), np.ones((2, 2)))


def test_repr_is_readable():
    net = _net((3, 4, 2))
    text = repr(net)
    assert "activation='tanh'" in text and "sizes=[3, 4, 2]" in text and "W[2](2, 4)" in text
    assert net.n_params == 4 * 4 + 2 * 5
    copy = net.copy()
    assert copy.W[0] is None and copy.b[0] is None
    assert copy.W[1] is not net.W[1] and (copy.W[1] == net.W[1]).all()
