"""Tests written to kill the mutants `make mutants` (mutmut) found surviving in testbed/nn's lemmas and
activations: see tests/MUTANTS.md for the run, the figure and the survivors judged equivalent.

Each test states a property of the real code that one or more surviving mutants broke without any
other test noticing; the mutant names are given next to the assertions.
"""

import re

import numpy as np
import pytest

import testbed.nn as nn
from testbed.nn import activations as A


# --- testbed/nn/lemmas.py: what lemma1's and r_lemma1's shape errors say -------------------------
def test_lemma1_shape_error_names_lemma1_and_its_layer():
    # x_lemma1__mutmut_6 (the name None), _12, _13 (the name changed)
    with pytest.raises(nn.NetworkShapeError) as info:
        nn.lemma1(np.ones((2, 3)), np.ones((2, 5)), np.ones((3, 4)), k=2)
    assert str(info.value) == ("layer k=2: lemma1 needs dJ/dz (m, n[k]), a[k-1] (m, n[k-1]), W[k] "
                               "(n[k], n[k-1]); got dJ/dz (2, 3), a[k-1] (2, 5), W[k] (3, 4)")
    with pytest.raises(nn.NetworkShapeError, match=r"^lemma1 needs dJ/dz"):
        nn.lemma1(np.ones(3), np.ones((2, 4)), np.ones((3, 4)))


def test_lemma1_refuses_batches_of_different_sizes():
    # x__check_linear__mutmut_11 (the m check only for 3-D arrays): numpy would fail, or broadcast,
    # without naming the shapes
    for m_dz, m_a in ((2, 4), (1, 4), (4, 1)):
        with pytest.raises(nn.NetworkShapeError, match=rf"dJ/dz \({m_dz}, 3\), a\[k-1\] \({m_a}, 5\)"):
            nn.lemma1(np.ones((m_dz, 3)), np.ones((m_a, 5)), np.ones((3, 5)))


def _r_lemma1_error(**changes):
    args = dict(dJ_dz=np.ones((2, 3)), R_dJ_dz=np.ones((2, 3)), a_prev=np.ones((2, 5)),
                R_a_prev=np.ones((2, 5)), W=np.ones((3, 5)), VW=np.ones((3, 5)))
    k = changes.pop("k", None)
    args.update(changes)
    with pytest.raises(nn.NetworkShapeError) as info:
        nn.r_lemma1(args["dJ_dz"], args["R_dJ_dz"], args["a_prev"], args["R_a_prev"], args["W"],
                    args["VW"], k=k)
    return str(info.value)


def test_r_lemma1_linear_shape_error_names_r_lemma1_and_its_layer():
    # x_r_lemma1__mutmut_5 (k dropped), _6 (the name None), _12, _13 (the name changed)
    msg = _r_lemma1_error(W=np.ones((3, 4)), k=3)
    assert msg.startswith("layer k=3: r_lemma1 needs dJ/dz (m, n[k]), a[k-1] (m, n[k-1]), W[k] "
                          "(n[k], n[k-1]); got "), msg
    assert msg.endswith("dJ/dz (2, 3), a[k-1] (2, 5), W[k] (3, 4)"), msg
    # without a layer the message has no layer prefix
    assert _r_lemma1_error(W=np.ones((3, 4))).startswith("r_lemma1 needs dJ/dz"), msg


def test_r_lemma1_direction_shape_error_words_exactly():
    # x_r_lemma1__mutmut_17.._19 (the name R{a[k-1]} changed), _27 (a "layer k=None: " prefix when
    # k is None), _29 ("XXXX" in place of the empty prefix)
    assert _r_lemma1_error(R_a_prev=np.ones((2, 6))) == \
        "r_lemma1 needs R{a[k-1]} of shape (2, 5), got (2, 6)"
    assert _r_lemma1_error(R_a_prev=np.ones((2, 6)), k=4) == \
        "layer k=4: r_lemma1 needs R{a[k-1]} of shape (2, 5), got (2, 6)"
    assert re.fullmatch(r"r_lemma1 needs R\{dJ/dz\} of shape \(2, 3\), got \(2, 4\)",
                        _r_lemma1_error(R_dJ_dz=np.ones((2, 4))))


# --- testbed/nn/activations.py: sigma, sigma', sigma'' read any array-like as float64 --------------
@pytest.mark.parametrize("name", sorted(nn.ACTIVATIONS))
def test_sigma_and_derivatives_read_integers_and_booleans_as_float64(name):
    # x_sigma__mutmut_4/_6, x_dsigma__mutmut_4/_6, x_d2sigma__mutmut_4/_6 (np.asarray without
    # dtype=float64): identity would return integers, and sigmoid/tanh cannot negate booleans
    z = np.array([-2.0, 0.0, 1.0, 3.0])
    for f in (A.sigma, A.dsigma, A.d2sigma):
        want = f(name, z)
        assert want.dtype == np.float64
        for like in ([-2, 0, 1, 3], np.array([-2, 0, 1, 3], dtype=np.int64)):
            got = f(name, like)
            assert got.dtype == np.float64, (f.__name__, like)
            np.testing.assert_array_equal(got, want)  # the same float64 computation: exact
        got = f(name, [False, True])
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, f(name, np.array([0.0, 1.0])))


@pytest.mark.parametrize("name", ["relu", "identity"])
def test_the_rows_constant_derivatives_are_float64_zeros_and_ones(name):
    # x__zeros__mutmut_2/_4 (np.zeros_like without dtype=float64): sigma'' of relu and identity,
    # called on the row itself (as the R-pass does), are float64 whatever z's dtype (the rows of the
    # curved activations follow z's float dtype, so they are not asked this)
    row = nn.ACTIVATIONS[name]
    for z in (np.array([-1, 0, 2]), np.array([-1.0, 0.0, 2.0], dtype=np.float32)):
        for f in (row.dsigma, row.d2sigma):
            got = f(z)
            assert got.dtype == np.float64, (f, z.dtype)
            np.testing.assert_array_equal(got, f(z.astype(np.float64)))
