"""Tests written to kill the mutants `make mutants` (mutmut) found surviving in testbed/nn (activations,
lemmas, backprop, rop): see tests/MUTANTS.md for the run, the figure and the survivors judged equivalent.

Each test states a property of the real code that one or more surviving mutants broke without any
other test noticing; the mutant names are given next to the assertions.
"""

import re

import numpy as np
import pytest
from nn_support import chain
from support import assert_close

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


# --- testbed/nn/backprop.py: the checks of the passes, and train's write-into path ---------------
def test_a_forward_overflow_reports_its_factors():
    # x_forward_overflow__mutmut_15, _19 (the factors dropped), _23, _24 (a[k-1] misnamed), _27
    # (the largest |a| read from another layer)
    net = chain("tanh", [-1e200, 1.0, 1.0])
    with pytest.raises(nn.NetworkNonFiniteError) as info:
        nn.forward(net, np.array([[1e200]]))
    assert str(info.value).endswith("; max |W[1]| = 1e+200, max |a[0]| = 1e+200")


def test_the_overflow_bound_of_dJ_dW_uses_its_own_layers_factors():
    # x__check_grads__mutmut_14 (the bound read a[k-2]): one example through 4-unit layers, a[0] =
    # 1 but a[1] = 1e160, tau = 1e150 (J finite), dJ/dW[2] = dJ/dz[2] a[1]^T = 1e310: a bound from
    # a[0] would pass it as finite, and the gradient would hold inf
    net = nn.Network([None, 1e160 * np.eye(4), 1e-10 * np.eye(4)], [None, np.zeros(4), np.zeros(4)],
                     "identity")
    x, y = np.ones(4), np.zeros(4)
    assert np.isfinite(nn.loss(net, x, y))
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=2: dJ/dW\[2\] overflowed"):
        nn.value_and_grad(net, x, y)


def test_an_overflow_in_the_first_layer_is_named():
    # x__check_grads__mutmut_33 (the search stops before k = 1), _35 (every other layer): a[1] = 1,
    # tau = 1e100, dJ/da[1] = dJ/dz[1] = 1e200, dJ/dW[1] = 1, dJ/db[1] = 1e200, all finite, and
    # dJ/da[0] = W[1]^T dJ/dz[1] = 1e400 the first that is not
    net = chain("identity", [1e200, 1e100])
    with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=1: dJ/da\[0\] = W\[1\]\^T"):
        nn.value_and_grad(net, np.array([1e-200]), np.zeros(1))


@pytest.mark.filterwarnings("error")
def test_an_invalid_operation_in_the_backward_pass_raises_testbed_s_error_only():
    # x_backward__mutmut_16, _18 and x_value_and_grad__mutmut_20.._23 (numpy's errstate for invalid
    # or overflow dropped: a RuntimeWarning instead of testbed's error). relu with z[1] = -1: a[1] =
    # 0, tau = b[2] = 1e150 (J finite), dJ/da[1] = W[2] dJ/dz[2] = 1e310 = inf, and Lemma 2's
    # inf * relu'(-1) = inf * 0 is invalid
    net = chain("relu", [-1.0, 1e160], [0.0, 1e150])
    x, y = np.array([1.0]), np.zeros(1)
    match = r"layer k=2: dJ/da\[1\] = W\[2\]\^T dJ/dz\[2\] overflowed"
    with pytest.raises(nn.NetworkNonFiniteError, match=match):
        nn.backward(net, nn.forward(net, x), y)
    for checkpoints in (None, 1, "sqrt"):
        with pytest.raises(nn.NetworkNonFiniteError, match=match):
            nn.value_and_grad(net, x, y, checkpoints=checkpoints)


def test_a_cache_from_another_network_is_described():
    # x__check_cache__mutmut_16, _18 (the shapes of the cache's z[k] left out of the message)
    a = nn.init_network([3, 4, 2], "tanh", "xavier_normal", np.random.default_rng(0))
    b = nn.init_network([3, 5, 2], "tanh", "xavier_normal", np.random.default_rng(1))
    with pytest.raises(nn.NetworkShapeError) as info:
        nn.backward(a, nn.forward(b, np.ones((2, 3))), np.ones((2, 2)))
    assert str(info.value) == ("the cache does not belong to this network: its z[k] have shapes "
                               "[None, (2, 5), (2, 2)], the network's sizes are [3, 4, 2]")


@pytest.mark.parametrize("m", [1, 5])
def test_train_s_write_into_path_fills_its_arrays_with_the_plain_gradients(m):
    # x__backward__mutmut_62, _65, _72, _75 (a fresh array instead of train's: the page faults the
    # path exists to save), _82 (dJ/dx computed though train does not ask for it)
    from testbed.nn.backprop import _backward, _forward

    rng = np.random.default_rng(m)
    net = nn.init_network([3, 6, 4, 2], "tanh", "xavier_normal", rng)
    x, y = rng.standard_normal((m, 3)), rng.standard_normal((m, 2))
    into = ([None] + [np.empty_like(W) for W in net.W[1:]], [None] + [np.empty_like(b) for b in net.b[1:]])
    cache = _forward(net, x)
    g = _backward(net, cache, y, need_dx=False, into=into)
    ref = _backward(net, cache, y, need_dx=False)
    assert g.dx is None and ref.dx is None
    for k in range(1, net.depth + 1):
        assert g.dW[k] is into[0][k] and g.db[k] is into[1][k]
        np.testing.assert_array_equal(g.dW[k], ref.dW[k])
        np.testing.assert_array_equal(g.db[k], ref.db[k])


@pytest.mark.filterwarnings("error")
def test_a_loss_overflow_on_the_checkpointed_path_raises_testbed_s_error_only():
    # x_value_and_grad__mutmut_21, _23 (the checkpointed path's errstate for invalid dropped): one
    # example, relu with a[1] = (0, 1), tau = b[2] = 1e308 and y = -1e308: tau - y overflows, and
    # Lemma 1's dJ/dz[2] a[1]^T multiplies that inf by a[1]'s 0 (invalid)
    net = nn.Network([None, np.array([[-1.0], [1.0]]), np.array([[1.0, 1.0]])],
                     [None, np.zeros(2), np.array([1e308])], "relu")
    x, y = np.array([1.0]), np.array([-1e308])
    for checkpoints in (None, 1, 2, "sqrt"):
        with pytest.raises(nn.NetworkNonFiniteError, match=r"layer k=2: J = 1/2 \|\|y - tau"):
            nn.value_and_grad(net, x, y, checkpoints=checkpoints)


# --- testbed/nn/rop.py: what r_pass returns, its input checks, and its overflow check -----------
def _zero_direction(net):
    return ([None] + [np.zeros_like(W) for W in net.W[1:]], [None] + [np.zeros_like(b) for b in net.b[1:]])


@pytest.mark.parametrize("need_hx", [False, True])
def test_r_pass_returns_what_it_is_asked_for_and_the_gradient_is_backprop_s(need_hx):
    # x_r_pass__mutmut_1, _2 (need_hx or need_grad on by default); x__fused__mutmut_88, _100 (the
    # dz or da list one too long), _166 (da[k-1] a view that Lemma 2 then multiplies by sigma' in
    # place: da[k-1] comes back as dz[k-1]), _195, _196 (dz or da not returned)
    rng = np.random.default_rng(7)
    net = nn.init_network([3, 5, 4, 2], "tanh", "xavier_normal", rng)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    V = ([None] + [rng.standard_normal(W.shape) for W in net.W[1:]],
         [None] + [rng.standard_normal(b.shape) for b in net.b[1:]])
    plain = nn.r_pass(net, x, y, V)
    assert plain.Hx is None and plain.grads is None
    out = nn.r_pass(net, x, y, V, need_hx=need_hx, need_grad=True)
    J, g = nn.value_and_grad(net, x, y)
    r = net.depth
    assert (out.Hx is not None) == need_hx
    for name in ("dW", "db", "dz", "da"):
        assert len(getattr(out.grads, name)) == r + 1, name
    assert out.grads.dW[0] is None and out.grads.db[0] is None and out.grads.dz[0] is None
    # the same values as backprop's (not bit for bit: for k >= 2 the R-pass computes z[k] and
    # dJ/da[k-1] in matmuls of 2m rows, which BLAS may sum in another order than backprop's m rows)
    for k in range(1, r + 1):
        for name in ("dW", "db", "dz"):
            assert_close(getattr(out.grads, name)[k], getattr(g, name)[k], what=f"{name}[{k}]", scale=None)
    for k in range(1, r + 1):
        assert_close(out.grads.da[k], g.da[k], what=f"da[{k}]", scale=None)
    assert out.grads.da[r] is out.grads.dz[r]  # dJ/dtau, as backprop's Grads has it
    if need_hx:
        assert_close(out.grads.da[0], g.da[0], what="da[0]", scale=None)
        assert_close(out.grads.dx, g.dx, what="dx", scale=None)
    else:
        assert out.grads.da[0] is None and out.grads.dx is None


def test_r_pass_s_direction_errors_say_what_was_wrong():
    # x__as_direction__mutmut_2 (`and` made `or`: a non-sequence reaches len()), _5.._11 (the pair
    # message), _15, _18, _22.._24, _28, _31, _36, _37 (check_layout told another description of an
    # entry), _47.._50 (the counts off by one), _70 (the name's `V` stripped twice)
    net = nn.init_network([3, 4, 2], "tanh", "xavier_normal", np.random.default_rng(0))
    x, y = np.ones(3), np.ones(2)
    VW, Vb = _zero_direction(net)
    pair = ("V must be a pair (VW, Vb) of lists shaped like (net.W, net.b): [None, VW[1], ..., VW[r]] "
            "and [None, Vb[1], ..., Vb[r]]")
    for V in (5, (VW, Vb, Vb), (VW,)):
        with pytest.raises(nn.NetworkError) as info:
            nn.r_pass(net, x, y, V)
        assert str(info.value) == pair
    with pytest.raises(nn.NetworkError) as info:
        nn.r_pass(net, x, y, (np.zeros(3), Vb))
    assert str(info.value) == ("VW must be a list [None, VW[1], ..., VW[r]] with an array shaped like "
                               "W[k] per layer k = 1..r, got ndarray")
    with pytest.raises(nn.NetworkError) as info:
        nn.r_pass(net, x, y, (VW, "Vb"))
    assert str(info.value) == ("Vb must be a list [None, Vb[1], ..., Vb[r]] with an array shaped like "
                               "b[k] per layer k = 1..r, got str")
    with pytest.raises(nn.NetworkShapeError) as info:
        nn.r_pass(net, x, y, (VW + [np.zeros((1, 2))], Vb[:2]))
    assert str(info.value) == "V has 3 W-directions and 1 b-directions; the network has r=2 layers"
    with pytest.raises(nn.NetworkShapeError) as info:
        nn.r_pass(net, x, y, ([None, np.zeros((4, 3)), np.zeros((3, 4))], Vb))
    assert str(info.value) == "layer k=2: VW[2] has shape (3, 4) but must be (2, 4), like W[2]"


def test_r_pass_s_input_direction_errors_name_vx():
    # x_r_pass__mutmut_38 (x's shape read from None), _40, _43, _44 (check_finite told another name)
    net = nn.init_network([3, 4, 2], "tanh", "xavier_normal", np.random.default_rng(0))
    x, y, V = np.ones(3), np.ones(2), _zero_direction(net)
    with pytest.raises(nn.NetworkShapeError) as info:
        nn.r_pass(net, x, y, V, vx=np.ones(2))
    assert str(info.value) == "layer k=1: vx has shape (2,) but x has shape (3,); vx must be shaped like x"
    with pytest.raises(nn.NetworkNonFiniteError) as info:
        nn.r_pass(net, x, y, V, vx=np.array([1.0, np.inf, 0.0]))
    assert str(info.value).startswith("vx (shape (3,)) holds ")


@pytest.mark.filterwarnings("error")
def test_an_overflow_of_the_gradient_alone_is_found_in_the_r_pass():
    # x__check__mutmut_4 (the gradient not checked), _13, _18 (dJ/db and dJ/dx, or dJ/dx, left out of
    # the fast check), _95 (dJ/dx left out of the search), _90.._93 (its layer or name changed). One
    # example, identity, V = 0: tau = 1e300 * 1e-300 = 1, y = -1e10 (J finite), R{...} = 0, and
    # dJ/dx = W[1]^T dJ/dz[1] = 1e300 * 1e10 the only quantity that overflows
    net = chain("identity", [1e300])
    x, y, V = np.array([1e-300]), np.array([-1e10]), _zero_direction(net)
    out = nn.r_pass(net, x, y, V, need_hx=True)
    assert np.isfinite(out.J) and out.Hx == 0.0
    with pytest.raises(nn.NetworkNonFiniteError, match=r"^layer k=1: dJ/dx overflowed although"):
        nn.r_pass(net, x, y, V, need_hx=True, need_grad=True)


@pytest.mark.filterwarnings("error")
def test_a_batch_sum_overflow_of_the_first_layer_s_db_is_found():
    # x__check__mutmut_16 (dJ/db[1] left out of the fast check), _76, _78 (the search skips layer 1):
    # two examples, identity, V = 0: a[1] = 1e-290 * 1e-10, tau = 1e300 a[1] = 1, y = -2e8 (J finite),
    # dJ/dz[1] = 1e300 dJ/dz[2] = 1e308 per example (finite), dJ/dW[1] = 2e298, and dJ/db[1], the sum
    # of the two rows, 2e308 = inf
    net = chain("identity", [1e-290, 1e300])
    x, y, V = np.full((2, 1), 1e-10), np.full((2, 1), -2e8), _zero_direction(net)
    with pytest.raises(nn.NetworkNonFiniteError, match=r"^layer k=1: dJ/db\[1\] overflowed"):
        nn.r_pass(net, x, y, V, need_grad=True)


@pytest.mark.filterwarnings("error")
def test_a_batch_sum_overflow_of_the_first_layer_s_Hb_is_found():
    # x__check__mutmut_8 (R{dJ/db[1]} left out of the fast check): two examples, identity, W = 1,
    # VW[2] = 1e300: R{tau} = 1e300 * 1e-10, dJ/dz[2] = 1e8 per example, R{dJ/dz[1]} = W[2] R{dJ/dz[2]}
    # + VW[2] dJ/dz[2] = 1e308 per example, R{dJ/dW[1]} = 2e298, and R{dJ/db[1]} = 2e308 = inf
    net = chain("identity", [1.0, 1.0])
    x, y = np.full((2, 1), 1e-10), np.full((2, 1), -2e8)
    VW, Vb = _zero_direction(net)
    VW[2] = np.array([[1e300]])
    with pytest.raises(nn.NetworkNonFiniteError, match=r"^layer k=1: R\{dJ/db\[1\]\} overflowed"):
        nn.r_pass(net, x, y, (VW, Vb))


@pytest.mark.filterwarnings("error")
def test_the_overflow_bound_of_the_r_pass_s_dJ_dW_uses_its_own_layers_factors():
    # x__check__mutmut_41 (the bound of dJ/dW[k] read a[k-2]), _46 (dJ/dW[1] not checked). 4-unit
    # layers, one example, V = 0: x = 1e250, a[1] = 1e-310 x = 1e-60, tau = 1e60 a[1] = 1 (J finite),
    # dJ/dz[1] = 1e60, dJ/db[1] = 1e60, and dJ/dW[1] = dJ/dz[1] x^T = 1e310: a bound from a[1] (a[-1])
    # would pass it as finite
    net = nn.Network([None, 1e-310 * np.eye(4), 1e60 * np.eye(4)], [None, np.zeros(4), np.zeros(4)],
                     "identity")
    x, y, V = np.full(4, 1e250), np.zeros(4), _zero_direction(net)
    assert np.isfinite(nn.loss(net, x, y))
    with pytest.raises(nn.NetworkNonFiniteError, match=r"^layer k=1: dJ/dW\[1\] overflowed"):
        nn.r_pass(net, x, y, V, need_grad=True)


def test_an_r_forward_overflow_is_named_by_its_equation():
    # x__check__mutmut_63, _64 (R{a[k-1]} misnamed in R{z[k]}'s equation)
    net = chain("tanh", [1.0, 1.0])
    VW, Vb = _zero_direction(net)
    VW[1] = np.array([[1e300]])
    with pytest.raises(nn.NetworkNonFiniteError) as info:
        nn.r_pass(net, np.array([1e10]), np.zeros(1), (VW, Vb))
    assert str(info.value).startswith(
        "layer k=1: R{z[1]} = VW[1] a[0] + W[1] R{a[0]} + Vb[1] overflowed although every input is finite")
