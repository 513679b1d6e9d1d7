"""Bad input (issue section 5): a NetworkError (TestbedError, ValueError) naming layer, shapes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import testbed
import testbed.nn as nn
from testbed.nn.strategies import architectures, make_problem


def _net(sizes=(3, 4, 2), activation="tanh"):
    return make_problem(list(sizes), activation, 5, seed=0).net


def test_error_hierarchy():
    assert issubclass(nn.NetworkError, testbed.TestbedError)
    assert issubclass(nn.NetworkError, ValueError)
    assert issubclass(nn.NetworkShapeError, testbed.ShapeError)
    assert issubclass(nn.NetworkNonFiniteError, testbed.NonFiniteError)
    for cls in (nn.NetworkShapeError, nn.NetworkNonFiniteError, nn.UnknownNameError,
                nn.TrainingDivergedError):
        assert issubclass(cls, nn.NetworkError)


@given(architectures(min_depth=2, max_depth=5, max_width=8), st.data())
def test_shapes_that_do_not_chain_name_the_layer(sizes, data):
    """Change the column count of one W[k] (k >= 2): the error names k and both shapes."""
    net = make_problem(sizes, "relu", 2, seed=0).net
    k = data.draw(st.integers(2, net.depth))
    W = [w.copy() for w in net.W]
    bad_cols = W[k - 1].shape[1] + data.draw(st.sampled_from([-1, 1, 3]))
    if bad_cols < 1:
        bad_cols = W[k - 1].shape[1] + 1
    W[k - 1] = np.ones((W[k - 1].shape[0], bad_cols))
    with pytest.raises(nn.NetworkShapeError) as info:
        nn.Network(W, net.b, "relu")
    msg = str(info.value)
    assert f"layer k={k}" in msg and str(W[k - 1].shape) in msg and str(W[k - 2].shape) in msg


def test_bias_of_the_wrong_shape():
    net = _net()
    b = [net.b[0], np.zeros(3)]
    with pytest.raises(nn.NetworkShapeError, match=r"layer k=2: b\[2\] has shape \(3,\).*\(2,\)"):
        nn.Network(net.W, b, "tanh")
    with pytest.raises(nn.NetworkShapeError, match="layer k=1.*W\\[1\\].*matrix"):
        nn.Network([np.ones(3)], [np.ones(3)], "tanh")
    with pytest.raises(nn.NetworkShapeError, match="W has 2 layers but b has 1"):
        nn.Network(net.W, net.b[:1], "tanh")


def test_empty_network():
    with pytest.raises(nn.NetworkShapeError, match="empty network"):
        nn.Network([], [], "relu")
    with pytest.raises(nn.NetworkShapeError, match="empty network"):
        nn.init_network([3], "relu", "zeros", np.random.default_rng(0))
    with pytest.raises(nn.NetworkShapeError, match="layer k=1: n\\[1\\] = 0"):
        nn.init_network([3, 0, 1], "relu", "zeros", np.random.default_rng(0))
    with pytest.raises(nn.NetworkShapeError, match="layer k=1.*\\(0, 3\\)"):
        nn.Network([np.ones((0, 3))], [np.ones(0)], "relu")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_parameters(bad):
    net = _net()
    W = [w.copy() for w in net.W]
    W[1][1, 2] = bad
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=2: W\[2\] \(shape \(2, 4\)\).*"
                                                         r"\(1, 2\)"):
        nn.Network(W, net.b, "tanh")
    b = [v.copy() for v in net.b]
    b[0][3] = bad
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


def test_strings_and_objects_are_rejected():
    net = _net()
    with pytest.raises(nn.NetworkError, match="x must hold real numbers"):
        nn.forward(net, np.array(["a", "b", "c"]))
    with pytest.raises(nn.NetworkError, match=r"W\[1\] must hold real numbers"):
        nn.Network([np.array([["a"]])], [np.zeros(1)], "relu")


@pytest.mark.parametrize("lr", [0.0, -0.1, np.nan, np.inf, "fast", None])
def test_learning_rate_must_be_positive(lr):
    net = _net()
    x, y = np.ones((5, 3)), np.ones((5, 2))
    with pytest.raises(nn.NetworkError, match="learning rate"):
        nn.sgd_step(net, x, y, lr)
    with pytest.raises(nn.NetworkError, match="learning rate"):
        nn.train(net, x, y, lr, steps=3)


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
    VW = [p.VW[0], np.ones((2, 5))]
    with pytest.raises(nn.NetworkShapeError, match=r"layer k=2: VW\[2\] has shape \(2, 5\).*"
                                                    r"\(2, 4\)"):
        nn.hvp(p.net, p.x, p.y, (VW, p.Vb))
    with pytest.raises(nn.NetworkShapeError, match="r=2 layers"):
        nn.hvp(p.net, p.x, p.y, (p.VW[:1], p.Vb))
    Vb = [p.Vb[0], np.array([0.0, np.nan])]
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
    assert copy.W[0] is not net.W[0] and (copy.W[0] == net.W[0]).all()
