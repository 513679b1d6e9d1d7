"""No silent inf or NaN: finite parameters and data that overflow raise NetworkNonFiniteError.

Each entry point (forward, loss, value_and_grad, backward, r_pass, hvp, hvp_x) is driven into an
overflow at a chosen quantity and layer, and the message must name both. A property then scales
random problems by huge factors: every call either raises NetworkNonFiniteError or returns only
finite numbers, and no RuntimeWarning escapes either way.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nn_support import chain, problems

import testbed.nn as nn


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("activation", sorted(nn.ACTIVATIONS))
def test_forward_names_the_layer_whose_z_overflows(activation):
    # z[1] = -1e200 * 1e200 overflows; tanh and sigmoid map it to a finite -1 or 0, relu to 0, so
    # nothing downstream shows it: the pass must check z[1] itself
    net = chain(activation, [-1e200, 1.0, 1.0])
    x = np.array([[1e200]])
    V = ([None] + [np.ones((1, 1))] * 3, [None] + [np.ones(1)] * 3)
    for call in (lambda: nn.forward(net, x), lambda: nn.loss(net, x, np.zeros(1)),
                 lambda: nn.value_and_grad(net, x, np.zeros(1)),
                 lambda: nn.hvp(net, x, np.zeros(1), V)):
        with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=1: z\[1\] = W\[1\] a\[0\]"):
            call()


def test_the_loss_overflows_with_a_finite_tau():
    net = chain("identity", [1.0, 1.0])
    x = np.array([1e200])
    for call in (lambda: nn.loss(net, x, np.zeros(1)),
                 lambda: nn.value_and_grad(net, x, np.zeros(1)),
                 lambda: nn.r_pass(net, x, np.zeros(1),
                                   ([None] + [np.zeros((1, 1))] * 2, [None] + [np.zeros(1)] * 2))):
        with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=2: J = 1/2 \|\|y - tau"):
            call()


def test_backprop_names_the_gradient_that_overflows():
    # a[1] = 1e160, tau = 1e150: J = 5e299 is finite, dJ/dW[2] = dJ/dz[2] a[1] = 1e310 is not
    net = chain("identity", [1.0, 1e-10])
    x, y = np.array([[1e160]]), np.zeros((1, 1))
    assert np.isfinite(nn.loss(net, x, y))
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=2: dJ/dW\[2\] overflowed"):
        nn.value_and_grad(net, x, y)
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=2: dJ/dW\[2\]"):
        nn.backward(net, nn.forward(net, x), y)


def test_backprop_names_dJ_da_when_it_overflows_first():
    # a[1] = 1e-10, dJ/dz[2] = tau = 1e150 (J = 5e299, y = 0), dJ/dW[2] = 1e140: all finite, but
    # dJ/da[1] = W[2]^T dJ/dz[2] = 1e310
    net = chain("identity", [1e-10, 1e160])
    x, y = np.array([[1.0]]), np.zeros((1, 1))
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=2: dJ/da\[1\] = W\[2\]\^T"):
        nn.value_and_grad(net, x, y, need_dx=False)


def test_r_pass_names_the_R_quantity_that_overflows():
    x, y = np.array([[1e160]]), np.zeros((1, 1))
    # R{z[1]} = VW[1] x = 1e300 * 1e160
    net = chain("tanh", [1e-200, 1.0])
    V = ([None, np.array([[1e300]]), np.ones((1, 1))], [None] + [np.zeros(1)] * 2)
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=1: R\{z\[1\]\} = VW\[1\] a\[0\]"):
        nn.hvp(net, x, y, V)
    # a[1] = 1e160, tau = 1e150, R{a[1]} = 1e160: R{dJ/dW[2]} = R{dz} a + dz R{a} ~ 1e320
    net = chain("identity", [1.0, 1e-10])
    V = ([None] + [np.ones((1, 1))] * 2, [None] + [np.zeros(1)] * 2)
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=2: R\{dJ/dW\[2\]\} overflowed"):
        nn.hvp(net, x, y, V)
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=2: (R\{)?dJ/dW\[2\]"):
        nn.r_pass(net, x, y, V, need_grad=True)


def test_hvp_x_names_the_x_block():
    # one layer tau = W x with W = 1e200, x = 1e-200, y = 0, V = 0, vx = 1: R{tau} = W vx = 1e200,
    # R{dJ/dW} = R{tau} x + tau vx = 2 and R{dJ/db} = 1e200 are finite, R{dJ/dx} = W R{tau} is not
    net = chain("identity", [1e200])
    x, y = np.array([[1e-200]]), np.zeros((1, 1))
    V = ([None, np.zeros((1, 1))], [None, np.zeros(1)])
    HW, Hb, Hx = nn.hvp_x(net, x, y, V, np.zeros((1, 1)))  # a zero direction: H 0 = 0, finite
    assert np.all(Hx == 0)
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=1: R\{dJ/dx\}"):
        nn.hvp_x(net, x, y, V, np.ones((1, 1)))


def _finite(tree):
    arrays = tree if isinstance(tree, list | tuple) else [tree]
    return all(np.isfinite(np.asarray(q)).all() for q in arrays if q is not None)


@given(problems(max_depth=4, max_width=6), st.sampled_from([1e100, 1e154, 1e200, 1e300]),
       st.sampled_from(["x", "W", "V"]))
def test_every_entry_point_raises_or_is_finite(p, scale, what):
    """Scale x, the parameters or the direction by a huge factor: never a silent inf or nan."""
    net, x, VW = p.net, p.x, p.VW
    if what == "x":
        x = x * scale
    elif what == "W":
        net = nn.Network([None] + [w * scale for w in net.W[1:]], net.b, net.activation)
    else:
        VW = [None] + [v * scale for v in VW[1:]]
    V = (VW, p.Vb)
    calls = {
        "forward": lambda: [*nn.forward(net, x).z[1:], *nn.forward(net, x).a],
        "loss": lambda: nn.loss(net, x, p.y),
        "value_and_grad": lambda: (lambda J, g: [J, *g.dW, *g.db, g.dx])(
            *nn.value_and_grad(net, x, p.y)),
        "hvp": lambda: [*nn.hvp(net, x, p.y, V)[0], *nn.hvp(net, x, p.y, V)[1]],
        "r_pass": lambda: (lambda o: [o.J, *o.HW, *o.Hb, o.Hx, *o.grads.dW, *o.grads.db,
                                      o.grads.dx])(
            nn.r_pass(net, x, p.y, V, vx=p.vx, need_hx=True, need_grad=True)),
    }
    for name, call in calls.items():
        try:
            out = call()
        except nn.NetworkNonFiniteError as error:
            assert "layer k=" in str(error), (name, str(error))
        else:
            assert _finite(out), f"{name} returned a non-finite value silently"


def test_an_overflowing_dJ_dW_wider_than_its_factors_is_found():
    """One example through 3-unit layers: dJ/dW[2] (3 x 3) is checked through the bound
    m max|dJ/dz| max|a| on its factors (6 numbers); the bound is inf here, so dJ/dW[2] itself is read."""
    net = nn.Network([None, np.eye(3), 1e-10 * np.eye(3)], [None, np.zeros(3), np.zeros(3)], "identity")
    x, y = np.full(3, 1e160), np.zeros(3)  # a[1] = 1e160, tau = 1e150, J = 1.5e300
    assert np.isfinite(nn.loss(net, x, y))
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=2: dJ/dW\[2\] overflowed"):
        nn.value_and_grad(net, x, y)
    V = ([None, np.eye(3), np.zeros((3, 3))], [None] + [np.zeros(3)] * 2)  # R{a[1]} = x: R{dJ/dW[2]} ~ 1e310
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=2: R\{dJ/dW\[2\]\} overflowed"):
        nn.hvp(net, x, y, V)
    # where the bound (2 max|dJ/dz| max|a| = 2e308) is inf but dJ/dW = 1e308 is finite, dJ/dW is
    # read and accepted
    net = nn.Network([None, np.eye(3), np.eye(3)], [None, np.zeros(3), np.zeros(3)], "identity")
    x = np.array([1e154, 0.0, 0.0])
    J, g = nn.value_and_grad(net, x, np.zeros(3))
    assert J == 0.5e308 and g.dW[2][0, 0] == 1e308 and g.dW[1][0, 0] == 1e308
