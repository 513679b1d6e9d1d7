"""Initialisers: the sample mean and variance match the formula each docstring states.

The statistical bound: with N = n_out n_in i.i.d. draws, the sample mean has standard deviation
sigma / sqrt(N) and the sample variance sigma^2 sqrt((kappa - 1) / N) (kappa = 3 for a normal, 9/5
for a uniform), both nearly normal for N >= 900. A check fails beyond Z = 6 standard deviations:
false-alarm probability 2.0e-9 per check, so at most 200 x 2 x 2.0e-9 = 8e-7 for the whole
property below (the seeds are drawn by Hypothesis; the ci profile is derandomized, so a given
run is deterministic and this is the chance that a correct initialiser's seed trips it).
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import testbed.nn as nn
from testbed.nn import init

Z = 6.0
KURTOSIS = {"normal": 3.0, "uniform": 9.0 / 5.0}
KWARGS = {"normal": {"std": 0.3}, "uniform": {"a": 0.7}, "scaled_normal": {"sigma_w": 1.5},
          "constant": {"c": 0.25}}
RANDOM = sorted(name for name in init.INITIALISERS if init.FAMILY[name] != "point")


def _check_moments(name, W, n_in, n_out, z=Z):
    kw = KWARGS.get(name, {})
    mu, var = init.mean(name, n_in, n_out, **kw), init.variance(name, n_in, n_out, **kw)
    N = W.size
    assert abs(W.mean() - mu) <= z * math.sqrt(var / N), (name, W.mean(), mu)
    kappa = KURTOSIS[init.FAMILY[name]]
    assert abs(W.var(ddof=1) - var) <= z * var * math.sqrt((kappa - 1) / N), (name, W.var(), var)


@given(st.sampled_from(RANDOM), st.integers(30, 150), st.integers(30, 150),
       st.integers(0, 2**32 - 1))
def test_sample_moments_match_the_stated_variance(name, n_out, n_in, seed):
    W = init.INITIALISERS[name](n_out, n_in, np.random.default_rng(seed), **KWARGS.get(name, {}))
    assert W.shape == (n_out, n_in) and W.dtype == np.float64
    _check_moments(name, W, n_in, n_out)


@pytest.mark.parametrize("name", RANDOM)
def test_moments_on_a_large_sample(name):
    """10^6 draws: a 1.5% error in a variance formula would be caught (sd of s^2 is 0.14%)."""
    n_out, n_in = 500, 2000  # unequal, so xavier's 2/(n_in+n_out) differs from lecun's 1/n_in
    W = init.INITIALISERS[name](n_out, n_in, np.random.default_rng(12345), **KWARGS.get(name, {}))
    _check_moments(name, W, n_in, n_out)


def test_stated_formulas():
    n_in, n_out = 200, 50
    assert init.variance("xavier_normal", n_in, n_out) == 2 / 250
    assert init.variance("xavier_uniform", n_in, n_out) == 2 / 250
    assert init.variance("he_normal", n_in, n_out) == 0.01
    assert init.variance("he_uniform", n_in, n_out) == 0.01
    assert init.variance("lecun", n_in, n_out) == 1 / 200
    assert init.variance("standard", n_in, n_out) == 1 / 600  # n_in Var(w) = 1/3 (Glorot)
    assert init.variance("normal", n_in, n_out, std=0.3) == pytest.approx(0.09)
    assert init.variance("uniform", n_in, n_out, a=0.6) == pytest.approx(0.12)
    assert init.variance("scaled_normal", n_in, n_out, sigma_w=2**0.5) == pytest.approx(0.01)
    assert init.variance("zeros", n_in, n_out) == init.variance("constant", n_in, n_out, c=3) == 0
    assert init.mean("constant", n_in, n_out, c=3) == 3 and init.mean("he_normal", 1, 1) == 0
    # uniform bounds: sqrt(3 Var)
    rng = np.random.default_rng(0)
    for name, bound in (("xavier_uniform", math.sqrt(6 / 250)), ("he_uniform", math.sqrt(6 / 200)),
                        ("standard", 1 / math.sqrt(200))):
        W = init.INITIALISERS[name](n_out, n_in, rng)
        assert np.abs(W).max() <= bound and np.abs(W).max() > 0.99 * bound
    np.testing.assert_array_equal(init.zeros(3, 4, rng), np.zeros((3, 4)))
    np.testing.assert_array_equal(init.constant(3, 4, rng, c=0.5), np.full((3, 4), 0.5))


def test_every_initialiser_states_its_variance():
    for name, fn in init.INITIALISERS.items():
        assert "Var(w)" in fn.__doc__, name
        assert init.FAMILY[name] in ("point", "normal", "uniform")


@given(st.sampled_from(sorted(init.INITIALISERS)), st.integers(0, 2**32 - 1))
def test_the_generator_alone_decides(name, seed):
    """Same seed, same weights; the global numpy random state is neither used nor touched."""
    state = np.random.get_state()[1].copy()
    kw = KWARGS.get(name, {})
    a = nn.init_network([3, 5, 2], "relu", name, np.random.default_rng(seed), **kw)
    b = nn.init_network([3, 5, 2], "relu", name, np.random.default_rng(seed), **kw)
    for Wa, Wb in zip(a.W[1:] + a.b[1:], b.W[1:] + b.b[1:], strict=True):
        np.testing.assert_array_equal(Wa, Wb)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_init_network_biases_and_sizes():
    rng = np.random.default_rng(1)
    net = nn.init_network([4, 300, 200, 3], "tanh", "xavier_normal", rng)
    assert net.sizes == (4, 300, 200, 3) and net.depth == 3
    assert net.n_params == 300 * 5 + 200 * 301 + 3 * 201
    assert net.W[0] is None and net.b[0] is None
    assert all(not net.b[k].any() for k in net.layers)
    net = nn.init_network([4, 300, 200, 3], "tanh", "xavier_normal", rng, bias_std=0.5)
    assert abs(net.b[1].std() - 0.5) < 6 * 0.5 / math.sqrt(2 * 300)  # sd of a sample sd
    net = nn.init_network([2, 3], "relu", "constant", rng, c=0.1, bias_value=0.2)
    np.testing.assert_array_equal(net.b[1], [0.2, 0.2, 0.2])
    np.testing.assert_array_equal(net.W[1], np.full((3, 2), 0.1))


def test_bad_initialiser_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(nn.UnknownNameError, match="glorot.*known"):
        nn.init_network([2, 3], "relu", "glorot", rng)
    with pytest.raises(nn.NetworkError, match="normal.*std"):
        nn.init_network([2, 3], "relu", "normal", rng)  # std is required
    with pytest.raises(nn.NetworkError, match="he_normal"):
        nn.init_network([2, 3], "relu", "he_normal", rng, std=1.0)  # he takes none
    with pytest.raises(nn.NetworkError, match="Generator"):
        nn.init_network([2, 3], "relu", "he_normal", 42)
    with pytest.raises(nn.UnknownNameError):
        init.variance("nope", 1, 1)
