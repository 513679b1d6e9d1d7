"""Bad arguments to the initialisers and to `variance`/`mean`: testbed's own errors, naming them.

A value that is bad (a negative scale, NaN or inf, a fan-in of 0) raises a NetworkError (a
ValueError; NetworkNonFiniteError for NaN/inf); a value of the wrong type (a str, a bool, None
where a number is needed, a float where a count is needed) raises TypeError. Each is checked the
same way through `init_network`, a direct call of the initialiser and `variance`/`mean`.
"""

import math
import re

import numpy as np
import pytest

import testbed
import testbed.nn as nn
from testbed.nn import init

SCALES = [("normal", "std"), ("uniform", "a"), ("scaled_normal", "sigma_w")]
REAL = SCALES + [("constant", "c")]


def _three_ways(name, kw):
    """The three entry points that take an initialiser's keyword arguments, as callables."""
    rng = np.random.default_rng(0)
    return [lambda: nn.init_network([2, 3], "relu", name, rng, **kw),
            lambda: init.INITIALISERS[name](3, 2, rng, **kw),
            lambda: init.variance(name, 2, 3, **kw),
            lambda: init.mean(name, 2, 3, **kw)]


@pytest.mark.parametrize(("name", "arg"), SCALES)
@pytest.mark.parametrize("bad", [-1, -1.0, -1e-300, np.float64(-0.5)])
def test_a_negative_scale_is_refused_naming_it(name, arg, bad):
    for call in _three_ways(name, {arg: bad}):
        with pytest.raises(nn.NetworkError, match=rf"initialiser '{name}': {arg} must be >= 0"
                                                  rf".*got {re.escape(repr(bad))}") as info:
            call()
        assert isinstance(info.value, ValueError) and isinstance(info.value, testbed.TestbedError)


@pytest.mark.parametrize(("name", "arg"), REAL)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float64("nan")])
def test_a_non_finite_parameter_is_refused_naming_it(name, arg, bad):
    for call in _three_ways(name, {arg: bad}):
        with pytest.raises(nn.NetworkNonFiniteError,
                           match=rf"initialiser '{name}': {arg} must be a finite number, got "
                                 rf"{re.escape(repr(bad))}"):
            call()


@pytest.mark.parametrize(("name", "arg"), SCALES)
def test_a_scale_whose_variance_overflows_is_refused(name, arg):
    """std = 1e200: std^2 is inf, and U[-a, a] would overflow numpy's high - low."""
    for call in _three_ways(name, {arg: 1e200}):
        with pytest.raises(nn.NetworkNonFiniteError, match=rf"{arg} = 1e\+200 is too large"):
            call()
    assert init.variance(name, 1, 1, **{arg: 1e150}) > 1e299  # large but finite: accepted


def test_an_integer_beyond_float64_is_refused():
    with pytest.raises(nn.NetworkNonFiniteError, match=r"c must be a finite number.*bits"):
        init.constant(2, 2, np.random.default_rng(0), c=10**400)


@pytest.mark.parametrize(("name", "arg"), REAL)
@pytest.mark.parametrize("bad", ["1", "0.5", True, False, np.bool_(True), None, [1.0], 1j])
def test_a_parameter_of_the_wrong_type_is_a_type_error(name, arg, bad):
    for call in _three_ways(name, {arg: bad}):
        with pytest.raises(TypeError, match=rf"initialiser '{name}': {arg} must be a real number"
                                            rf".*got {type(bad).__name__}"):
            call()


@pytest.mark.parametrize(("name", "arg"), SCALES)
def test_a_zero_scale_is_a_point_mass_at_zero(name, arg):
    net = nn.init_network([2, 3], "relu", name, np.random.default_rng(0), **{arg: 0})
    np.testing.assert_array_equal(net.W[1], np.zeros((3, 2)))
    assert init.variance(name, 2, 3, **{arg: 0.0}) == 0.0


def test_valid_parameters_of_every_real_type_are_accepted():
    rng = np.random.default_rng(0)
    for std in (1, 0.5, np.float32(0.5), np.int64(2)):
        assert init.normal(3, 2, rng, std=std).shape == (3, 2)
    np.testing.assert_array_equal(init.constant(2, 2, rng, c=-3), np.full((2, 2), -3.0))
    assert init.mean("constant", 2, 2, c=np.float32(-0.5)) == -0.5


@pytest.mark.parametrize("name", sorted(init.INITIALISERS))
@pytest.mark.parametrize(("n_in", "n_out", "arg", "value"), [(0, 3, "n_in", 0), (3, 0, "n_out", 0),
                                                             (-2, 3, "n_in", -2)])
def test_variance_and_mean_need_positive_fans(name, n_in, n_out, arg, value):
    """lecun's 1 / n_in used to divide by zero; normal's std^2 ignored n_in = 0 altogether."""
    kw = {"normal": {"std": 1.0}, "uniform": {"a": 1.0}, "scaled_normal": {"sigma_w": 1.0},
          "constant": {"c": 1.0}}.get(name, {})
    for fn in (init.variance, init.mean):
        with pytest.raises(nn.NetworkError, match=rf"{fn.__name__}\('{name}'\): {arg} must be an "
                                                  rf"integer >= 1, got {value}"):
            fn(name, n_in, n_out, **kw)


@pytest.mark.parametrize("bad", [2.0, "3", True, None, np.bool_(True)])
def test_variance_fans_must_be_integers(bad):
    with pytest.raises(TypeError, match=rf"variance\('he_normal'\): n_in must be an integer >= 1, "
                                        rf"got {type(bad).__name__}"):
        init.variance("he_normal", bad, 3)
    with pytest.raises(TypeError, match=r"variance\('xavier_normal'\): n_out must be an integer"):
        init.variance("xavier_normal", 3, bad)
    assert init.variance("he_normal", np.int64(4), np.int32(1)) == 0.5


def test_variance_checks_the_scale_like_the_initialiser():
    with pytest.raises(nn.NetworkError, match=r"std must be >= 0.*got -1"):
        nn.variance("normal", 10, 10, std=-1)  # used to return 1.0, (-1)^2
    with pytest.raises(nn.NetworkError, match=r"n_in must be an integer >= 1, got 0"):
        nn.variance("normal", 0, 10, std=1.0)  # used to return 1.0


@pytest.mark.parametrize(("n_out", "n_in", "exc", "match"), [
    (0, 3, nn.NetworkError, r"initialiser 'he_normal': n_out must be an integer >= 1, got 0"),
    (3, 0, nn.NetworkError, r"n_in must be an integer >= 1, got 0"),
    (2.5, 3, TypeError, r"n_out must be an integer >= 1, got float 2.5"),  # was truncated to 2
    (3, True, TypeError, r"n_in must be an integer >= 1, got bool True"),
    (3, "3", TypeError, r"n_in must be an integer >= 1, got str '3'"),
])
def test_an_initialiser_called_directly_checks_its_shape(n_out, n_in, exc, match):
    with pytest.raises(exc, match=match):
        init.he_normal(n_out, n_in, np.random.default_rng(0))


@pytest.mark.parametrize("kw, error", [({"bias_std": "0.5"}, TypeError), ({"bias_value": True}, TypeError),
                                       ({"bias_std": None}, TypeError), ({"bias_std": -1.0}, ValueError),
                                       ({"bias_value": float("nan")}, ValueError)])
def test_bias_arguments_are_checked_like_the_scales(kw, error):
    with pytest.raises(error, match=next(iter(kw))):
        nn.init_network([2, 3, 1], "tanh", "xavier_normal", np.random.default_rng(0), **kw)
