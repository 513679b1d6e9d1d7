"""SGD: the update rule, symmetry under constant initialisation, learning, divergence, history."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nn_support import architectures, make_problem

import testbed.nn as nn


def _regression(seed=0, m=64):
    """y = sin(x1) + x2^2 / 2 on x uniform in [-2, 2]^2."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(m, 2))
    return x, np.sin(x[:, 0]) + 0.5 * x[:, 1] ** 2


def test_sgd_step_is_theta_minus_lr_grad():
    p = make_problem([3, 5, 2], "tanh", 4, seed=0)
    new = nn.sgd_step(p.net, p.x, p.y, lr=0.3)
    _, g = nn.value_and_grad(p.net, p.x, p.y)
    assert new.W[0] is None and new.b[0] is None
    for k in p.net.layers:
        np.testing.assert_array_equal(new.W[k], p.net.W[k] - 0.3 * g.dW[k])
        np.testing.assert_array_equal(new.b[k], p.net.b[k] - 0.3 * g.db[k])
    assert new is not p.net and new.W[1] is not p.net.W[1]
    one = nn.sgd_step(p.net, p.x[0], p.y[0], lr=0.3)  # the notes' one-example step
    _, g1 = nn.value_and_grad(p.net, p.x[0], p.y[0])
    np.testing.assert_array_equal(one.W[1], p.net.W[1] - 0.3 * g1.dW[1])


def _spread(arr, axis):
    """max |unit_i - unit_0| over the units along `axis`, relative to the array's scale."""
    first = arr.take([0], axis=axis)
    return np.abs(arr - first).max() / max(np.abs(arr).max(), 1e-300)


@given(architectures(max_depth=4, max_width=8), st.sampled_from(sorted(nn.ACTIVATIONS)),
       st.sampled_from(["zeros", "constant"]), st.integers(1, 8), st.integers(1, 6),
       st.sampled_from([None, 1, 2]), st.integers(0, 2**32 - 1))
def test_constant_init_keeps_hidden_units_identical(sizes, activation, init, m, steps, batch,
                                                    seed):
    """Zeros or a constant give every hidden unit of a layer the same incoming and outgoing
    weights after any number of SGD steps: the units compute the same z, receive the same dJ/dz
    and get the same update (the notes: "every neuron will learn in the same way").

    Not bitwise, though: BLAS (OpenBLAS here) computes the entries of one matmul with different
    kernels at the edges of its register tiles, which sum the same terms in a different order, so
    two tied units can differ in the last bit (seen: [1, 6, 1], sigmoid, zeros, 3 steps, W[2]
    columns 4-5 one ulp apart). The bound is therefore 1e-13 relative, a few hundred ulps: a unit
    treated differently by the algorithm would differ at O(lr) = O(0.1), and in our runs the
    spread stayed below 6e-16 over 3000 steps (it is not amplified).
    """
    rng = np.random.default_rng(seed)
    # c = 0.1 keeps the layer gain c * width <= 0.8 for widths <= 8, so SGD at lr 0.1 cannot diverge
    # (with c = 0.3 an identity net [2, 3, 6, 7, 3] overflows in 5 steps, which is no symmetry test)
    kw = {"c": 0.1} if init == "constant" else {}
    net = nn.init_network(sizes, activation, init, rng, **kw)
    x, y = rng.normal(size=(m, sizes[0])), rng.normal(size=(m, sizes[-1]))
    batch = None if batch is None or batch > m else batch
    out = nn.train(net, x, y, lr=0.1, steps=steps, batch_size=batch, rng=rng).net
    for k in range(1, out.depth):  # hidden layers only: output units see different targets
        assert _spread(out.W[k], 0) <= 1e-13, f"layer {k}: incoming weights differ"
        assert _spread(out.b[k], 0) <= 1e-13, f"layer {k}: biases differ"
        assert _spread(out.W[k + 1], 1) <= 1e-13, f"layer {k}: outgoing weights differ"
        assert np.isfinite(out.W[k]).all()
    if steps >= 1 and init == "constant" and sizes[-1] == 1 and activation != "relu":
        # the weights did move, so the ties above were not a network frozen at its start
        assert any((out.W[k] != net.W[k]).any() for k in out.layers)


@given(architectures(max_depth=4, max_width=8, min_depth=2),
       st.sampled_from(["relu", "tanh", "identity"]), st.integers(1, 8), st.integers(1, 6),
       st.integers(0, 2**32 - 1))
def test_zero_init_hidden_layers_never_move(sizes, activation, m, steps, seed):
    """With W = 0, b = 0 and sigma(0) = 0 every hidden a[k] is exactly 0, so every dJ/dW[k] and
    dJ/db[k] but the output bias's is exactly 0 (whatever the BLAS): only b[r] learns."""
    rng = np.random.default_rng(seed)
    net = nn.init_network(sizes, activation, "zeros", rng)
    x, y = rng.normal(size=(m, sizes[0])), rng.normal(size=(m, sizes[-1]))
    out = nn.train(net, x, y, lr=0.1, steps=steps).net
    for k in range(1, out.depth + 1):
        assert not out.W[k].any(), f"W[{k}] moved"
    for k in range(1, out.depth):
        assert not out.b[k].any(), f"b[{k}] moved"


def test_xavier_init_breaks_the_symmetry():
    x, y = _regression()
    net = nn.init_network([2, 8, 8, 1], "tanh", "xavier_normal", np.random.default_rng(3))
    out = nn.train(net, x, y, lr=0.1, steps=5).net
    for k in (1, 2):
        assert len(np.unique(out.W[k], axis=0)) == out.sizes[k]  # all rows distinct
    # and the symmetric start does learn less: it is a one-unit network in disguise
    const = nn.init_network([2, 8, 8, 1], "tanh", "constant", np.random.default_rng(3), c=0.1)
    J_sym = nn.train(const, x, y, lr=0.1, steps=300).history.loss.iloc[-1]
    J_xav = nn.train(net, x, y, lr=0.1, steps=300).history.loss.iloc[-1]
    assert J_xav < 0.5 * J_sym


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_full_batch_gradient_descent_learns_a_regression(activation):
    """1000 full-batch steps bring J below 5% of its start (measured: about 0.4%)."""
    x, y = _regression()
    net = nn.init_network([2, 16, 16, 1], activation, "xavier_normal", np.random.default_rng(1))
    res = nn.train(net, x, y, lr=0.1, steps=1000)
    J0 = res.history.loss.iloc[0]
    assert J0 == nn.loss(net, x, y)
    assert nn.loss(res.net, x, y) < 0.05 * J0
    assert (res.history.loss.diff().dropna() <= 1e-12).mean() > 0.95  # nearly monotone


def test_one_example_sgd_learns_a_regression():
    """The notes' SGD, one example per step: 2000 steps bring J below 10% (measured: about 2%)."""
    x, y = _regression()
    net = nn.init_network([2, 16, 16, 1], "tanh", "xavier_normal", np.random.default_rng(1))
    res = nn.train(net, x, y, lr=0.02, steps=2000, batch_size=1, rng=np.random.default_rng(2))
    assert nn.loss(res.net, x, y) < 0.10 * nn.loss(net, x, y)
    # and the run is a function of the seeds alone
    again = nn.train(net, x, y, lr=0.02, steps=2000, batch_size=1, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(again.net.W[1], res.net.W[1])


def test_history_layers_and_snapshots():
    x, y = _regression(m=16)
    net = nn.init_network([2, 4, 3, 1], "relu", "he_normal", np.random.default_rng(0))
    res = nn.train(net, x, y, lr=0.05, steps=7, record_layers=True, snapshot_every=3)
    h = res.history
    assert isinstance(h, pd.DataFrame) and list(h.step) == list(range(7))
    assert {"loss", "W_norm_1", "dW_norm_3", "db_norm_2", "dz_norm_1", "a_rms_2"} <= set(h)
    _, g = nn.value_and_grad(net, x, y)
    assert h.dW_norm_2.iloc[0] == np.linalg.norm(g.dW[2])
    assert h.dz_norm_1.iloc[0] == np.linalg.norm(g.dz[1])
    assert sorted(res.snapshots) == [0, 3, 6, 7] and res.snapshots[0] is net
    assert res.snapshots[7] is res.net
    np.testing.assert_array_equal(
        nn.train(net, x, y, lr=0.05, steps=3).net.W[1], res.snapshots[3].W[1])
    long = res.layer_stats()
    assert list(long.columns[:2]) == ["step", "k"] and len(long) == 7 * 3
    empty = nn.train(net, x, y, lr=0.05, steps=0)
    assert len(empty.history) == 0 and empty.net is net


def test_overflowing_layer_is_named_with_its_step():
    """A huge W[2] overflows z[2] at the first step: step 0, layer 2."""
    x, y = _regression(m=8)
    net = nn.init_network([2, 4, 4, 1], "relu", "he_normal", np.random.default_rng(0))
    W = [None] + [np.abs(net.W[k]) for k in net.layers]
    W[2] = np.full_like(W[2], 1e308)
    b = [None] + [np.full_like(net.b[k], 2.0) for k in net.layers]  # a[1] >= 2 > 0: z[2] = inf
    net = nn.Network(W, b, "relu")
    x = np.abs(x)
    with pytest.raises(nn.TrainingDivergedError, match=r"step 0.*layer k=2") as info:
        nn.train(net, x, y, lr=0.1, steps=3)
    assert info.value.step == 0 and info.value.layer == 2
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("activation", ["identity", "relu", "tanh"])
def test_too_large_a_learning_rate_diverges_with_step_and_layer(activation):
    x, y = _regression()
    net = nn.init_network([2, 8, 8, 1], activation, "xavier_normal", np.random.default_rng(0))
    with pytest.raises(nn.TrainingDivergedError) as info:
        nn.train(net, x, y, lr=5.0, steps=5000)
    err = info.value
    assert f"step {err.step}" in str(err) and f"layer k={err.layer}" in str(err)
    assert 0 < err.step < 5000 and 1 <= err.layer <= 3
    # replaying up to that step reproduces a finite network whose next step breaks in that layer
    before = nn.train(net, x, y, lr=5.0, steps=err.step).net
    with np.errstate(all="ignore"):
        cache = nn.forward(before, x)
        J = 0.5 * np.mean((y - cache.tau[:, 0]) ** 2)
    if np.isfinite(J):  # detected in the update: the step's gradient overflows W[layer]
        with pytest.raises(nn.TrainingDivergedError, match=f"layer k={err.layer}"):
            nn.sgd_step(before, x, y, lr=5.0)
    else:  # detected in the forward pass: the first non-finite z[k] (or the loss itself, k = r)
        first = next((k for k in range(1, before.depth + 1)
                      if not np.isfinite(cache.z[k]).all() or not np.isfinite(cache.a[k]).all()),
                     before.depth)
        assert first == err.layer


def test_an_overflowing_update_names_its_layer():
    """A finite gradient times lr = 1e308 overflows W[k] for the first k with max |dJ/dW[k]| > 1.8."""
    x, y = _regression(m=8)
    net = nn.init_network([2, 4, 4, 1], "tanh", "xavier_normal", np.random.default_rng(0))
    y = 10 * y
    _, g = nn.value_and_grad(net, x, y)
    big = [None] + [max(np.abs(g.dW[k]).max(), np.abs(g.db[k]).max()) for k in net.layers]
    expected = next(k for k in net.layers if big[k] > 2.0)  # 2 * 1e308 > the largest float
    assert all(b < 1.0 for b in big[1:expected])
    with pytest.raises(nn.TrainingDivergedError, match=f"step 0.*update of layer k={expected}"):
        nn.train(net, x, y, lr=1e308, steps=2)
    with pytest.raises(nn.TrainingDivergedError, match=f"update of layer k={expected}") as info:
        nn.sgd_step(net, x, y, lr=1e308)
    assert info.value.step is None and info.value.layer == expected


def test_train_never_writes_into_a_network_the_user_holds():
    """train recycles only arrays of networks it made and nobody sees: the input network and every
    snapshot keep their values (the recycled arrays would show up here as changed parameters)."""
    x, y = _regression(m=16)
    net = nn.init_network([2, 8, 8, 1], "tanh", "xavier_normal", np.random.default_rng(0))
    before = net.copy()
    res = nn.train(net, x, y, lr=0.05, steps=9, snapshot_every=2)
    kept = {t: snap.copy() for t, snap in res.snapshots.items()}
    nn.train(res.net, x, y, lr=0.05, steps=5)   # a second run from the result
    for k in net.layers:
        np.testing.assert_array_equal(net.W[k], before.W[k])
        np.testing.assert_array_equal(net.b[k], before.b[k])
        for t, snap in res.snapshots.items():
            np.testing.assert_array_equal(snap.W[k], kept[t].W[k])
    # no two networks the user can reach share an array
    reachable = [net, res.net, *res.snapshots.values()]
    ids = {id(arr) for n in reachable for arr in n.W[1:] + n.b[1:]}
    distinct = {id(n) for n in reachable}
    assert len(ids) == len(distinct) * 2 * net.depth


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_an_overflow_that_sigma_hides_still_stops_training(activation):
    """z[1] = -inf maps to a finite a[1] (tanh -1, sigmoid 0, relu 0): J is finite, yet it diverged."""
    net = nn.Network([None, np.array([[-1e200]]), np.array([[1.0]])],
                     [None, np.zeros(1), np.zeros(1)], activation)
    x, y = np.array([[1e200], [1.0]]), np.zeros((2, 1))
    with pytest.raises(nn.TrainingDivergedError, match=r"step 0.*layer k=1: z\[1\]") as info:
        nn.train(net, x, y, lr=0.1, steps=2)
    assert info.value.layer == 1
    with pytest.raises(nn.TrainingDivergedError, match=r"layer k=1: z\[1\]"):
        nn.sgd_step(net, x, y, lr=0.1)


@pytest.mark.parametrize("batch_size", [None, 1, 4])
def test_train_equals_repeated_sgd_steps(batch_size):
    """train's private path (gradients written into recycled arrays, from step 1 on) computes what
    sgd_step's public path does, bit for bit: the same products, only the destination differs."""
    x, y = _regression(m=16)
    net = nn.init_network([2, 8, 8, 1], "tanh", "xavier_normal", np.random.default_rng(3))
    res = nn.train(net, x, y, lr=0.05, steps=6, batch_size=batch_size,
                   rng=None if batch_size is None else np.random.default_rng(4))
    order_rng = np.random.default_rng(4)
    order, pos, step_net = np.arange(16), 16, net
    for _ in range(6):
        idx = np.arange(16)
        if batch_size is not None:
            if pos + batch_size > 16:
                order, pos = order_rng.permutation(16), 0
            idx, pos = order[pos:pos + batch_size], pos + batch_size
        step_net = nn.sgd_step(step_net, x[idx], y[idx], lr=0.05)
    for k in net.layers:
        np.testing.assert_array_equal(res.net.W[k], step_net.W[k])
        np.testing.assert_array_equal(res.net.b[k], step_net.b[k])
