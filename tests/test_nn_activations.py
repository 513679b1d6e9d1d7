"""sigma, sigma', sigma'' of each activation: against jax, against exact arithmetic, no warnings."""

import decimal
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from support import assert_close

import testbed.nn as nn

N = 32  # one fixed length, so jax compiles each derivative once

_JAX = {
    name: (jax.jit(jax.vmap(f)), jax.jit(jax.vmap(jax.grad(f))),
           jax.jit(jax.vmap(jax.grad(jax.grad(f)))))
    for name, f in ((name, act.jnp(jax)) for name, act in nn.ACTIVATIONS.items())
}


def _moderate():
    # |z| <= 4: jax writes sigmoid' as s (1 - s) and tanh' as (1 - t)(1 + t), which lose digits as
    # s, t -> 1 (relative error ~ 1e-16 / (1 - t): 3e-13 at z = 4, 5e-10 for tanh at z = 8, 1e-3
    # for sigmoid at 30); ours do not, so further out we compare with exact arithmetic instead
    # (test_derivatives_match_high_precision).
    return arrays(np.float64, N, elements=st.floats(-4, 4, allow_subnormal=False))


@given(name=st.sampled_from(sorted(nn.ACTIVATIONS)), z=_moderate())
@example(name="relu", z=np.zeros(N))
@example(name="sigmoid", z=np.zeros(N))
def test_sigma_and_derivatives_equal_jax(name, z):
    f, df, d2f = _JAX[name]
    assert_close(nn.sigma(name, z), f(z), what=f"{name}", scale=None)
    assert_close(nn.dsigma(name, z), df(z), what=f"{name}'", scale=None)
    # jax forms sigma'' with 1 - 2s or 1 - tanh^2, which cancels near z = 0: its absolute error
    # is ~ eps |sigma'| <= eps, so the floor is 1e-10 on the O(1) scale of sigma'' itself
    assert_close(nn.d2sigma(name, z), d2f(z), what=f"{name}''", scale=None, atol=1e-10)


def _exact(name, z):
    """(sigma, sigma', sigma'') at z by the textbook formulas in decimal arithmetic.

    The precision grows with the cancellation the formulas suffer (1 - s ~ e^-|z| for large |z|,
    1 - 2s ~ z for tiny z), so 30 significant digits survive every subtraction.
    """
    x = decimal.Decimal(float(z))
    lost = (0 if x == 0 else max(0, -x.adjusted())) + int(abs(z) * 0.87)
    with decimal.localcontext() as ctx:
        ctx.prec = 40 + lost
        one = decimal.Decimal(1)
        if name == "sigmoid":
            s = one / (one + (-x).exp())
            d = s * (one - s)
            return s, d, d * (one - 2 * s)
        t = ((2 * x).exp() - one) / ((2 * x).exp() + one)
        d = one - t * t
        return t, d, -2 * t * d


@given(name=st.sampled_from(["sigmoid", "tanh"]), z=st.floats(-1e3, 1e3))
@example(name="sigmoid", z=0.0)
@example(name="sigmoid", z=1e3)
@example(name="tanh", z=-1e3)
@example(name="sigmoid", z=30.0)
@example(name="tanh", z=30.0)
@example(name="tanh", z=-1e-9)
def test_derivatives_match_high_precision(name, z):
    ours = [nn.sigma(name, np.array([z]))[0], nn.dsigma(name, np.array([z]))[0],
            nn.d2sigma(name, np.array([z]))[0]]
    for got, want, what in zip(ours, _exact(name, z), ("sigma", "sigma'", "sigma''"), strict=True):
        # a few ulps relative; absolute 1e-300 because e^-|z| underflows to 0 below ~1e-308
        assert abs(decimal.Decimal(float(got)) - want) <= abs(want) * decimal.Decimal(
            "1e-14") + decimal.Decimal("1e-300"), (name, what, z, got, want)


@pytest.mark.parametrize("name", sorted(nn.ACTIVATIONS))
def test_no_overflow_warnings_far_out(name):
    z = np.array([-1e308, -1e3, -745.0, -710.0, 0.0, 710.0, 745.0, 1e3, 1e308])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        values = [nn.sigma(name, z), nn.dsigma(name, z), nn.d2sigma(name, z)]
    for v in values:
        assert np.isfinite(v).all()
    if name == "sigmoid":
        np.testing.assert_array_equal(values[0][[0, -1]], [0.0, 1.0])
        assert values[0][4] == 0.5


def test_relu_kink_convention():
    """relu'(0) = 0 like jax.nn.relu (jnp.maximum would give 1/2), relu''(0) = 0."""
    z = np.array([-1.0, -0.0, 0.0, 5e-324, 1.0])
    np.testing.assert_array_equal(nn.dsigma("relu", z), [0.0, 0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(nn.d2sigma("relu", z), np.zeros(5))
    assert float(jax.grad(jax.nn.relu)(0.0)) == 0.0
    assert float(jax.grad(lambda t: jnp.maximum(t, 0.0))(0.0)) == 0.5


def test_unknown_activation_is_a_network_error():
    with pytest.raises(nn.UnknownNameError, match="softplus.*known"):
        nn.get_activation("softplus")
    assert issubclass(nn.UnknownNameError, ValueError)


@pytest.mark.parametrize("name", sorted(nn.ACTIVATIONS))
def test_the_engine_primitive_of_each_row_is_its_sigma(name):
    """The table's engine column on floats equals its numpy sigma (the jnp column is checked above)."""
    act = nn.ACTIVATIONS[name]
    z = np.linspace(-6.0, 6.0, 25)
    assert_close([act.engine(float(t)) for t in z], act.sigma(z), what=name, scale=None)
