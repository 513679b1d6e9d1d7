"""Binomial checkpointing: the revolve schedule, and checkpointed gradients bit for bit.

The schedule's forward-step count is checked exhaustively (n <= 200, s <= 8) against both the
closed form F(n, s) = t n - C(s + t, t - 1) and the recursion it solves, and every schedule is run
on a simulated chain: each step reversed once, last to first, from its own input state, restored
only from states that are stored, never more than s at once.
"""

import math
from functools import cache

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import EXECUTORS, bits_equal, sin_chain

import testbed
from testbed import checkpoint as C
from testbed import primitives as P
from testbed.evaluate import counting
from testbed.random_circuits import random_circuit


@cache
def _recursion(n: int, s: int) -> int:
    if n == 1:
        return 0
    if s == 1:
        return n * (n - 1) // 2
    return min(m + _recursion(n - m, s - 1) + _recursion(m, s) for m in range(1, n))


def _simulate(schedule: C.Schedule) -> tuple[int, list[int]]:
    """Run the actions on a chain whose states are their indices: (forward steps, reversed)."""
    stored, current, steps, reversed_ = set(), 0, 0, []
    most = 0
    for kind, i in schedule.actions:
        if kind == "store":
            assert current == i, (kind, i, current)
            stored.add(i)
            most = max(most, len(stored))
        elif kind == "restore":
            assert i in stored, (kind, i, stored)
            current = i
        elif kind == "free":
            stored.discard(i)
        elif kind == "advance":
            assert current >= 0 and i >= 1
            current += i
            steps += i
        else:
            assert kind == "reverse" and current == i, (kind, i, current)
            assert reversed_ == [] or reversed_[-1] == i + 1, "steps reversed out of order"
            reversed_.append(i)
            current = -1  # consumed
    assert most <= schedule.s and most == schedule.max_snapshots
    assert not stored, "every snapshot is freed at the end"
    return steps, reversed_


def test_revolve_is_optimal_and_valid_for_every_small_case():
    for s in range(1, 9):
        for n in range(1, 201):
            sched = C.revolve(n, s)
            t = C.repetitions(n, s)
            closed = 0 if n == 1 else t * n - math.comb(s + t, t - 1)
            assert sched.forward_steps == closed == _recursion(n, s) == C.forward_steps(n, s), (n, s)
            steps, order = _simulate(sched)
            assert steps == sched.forward_steps and order == list(range(n - 1, -1, -1))
            assert sched.reversals == n and sched.repetitions <= t


@pytest.mark.parametrize("bad", [0, -3])
def test_revolve_refuses_non_positive_counts(bad):
    for call in (lambda: C.revolve(bad, 2), lambda: C.revolve(5, bad), lambda: C.forward_steps(bad, 1)):
        with pytest.raises(C.CheckpointError, match="must be >= 1"):
            call()


@pytest.mark.parametrize("bad", [2.0, "3", True, None])
def test_revolve_refuses_what_is_not_an_int(bad):
    with pytest.raises(TypeError, match="must be an int"):
        C.revolve(bad, 2)
    with pytest.raises(TypeError, match="must be an int"):
        C.revolve(4, bad)


@st.composite
def deep_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    l = draw(st.integers(1, 4))
    c = random_circuit(rng, draw(st.integers(40, 400)), l, "deep", n_outputs=draw(st.integers(1, 2)))
    B = draw(st.integers(1, 3))
    X = rng.uniform(-2, 2, (B, l))
    U = rng.standard_normal((B, c.n_outputs))
    return c, X, U, draw(st.integers(1, 6)), draw(st.integers(2, 40))


@given(deep_cases())
def test_checkpointed_vjp_is_the_plain_vjp_bit_for_bit_on_every_executor(case):
    c, X, U, s, segments = case
    for e in EXECUTORS:
        for pts, us in ((X[0], U[0]), (X, U)):
            f0, g0 = testbed.vjp(c, pts, us, e)
            X_, _ = testbed.evaluate.as_points(c, pts)
            f1, g1, sched = C.vjp(c, X_, np.asarray(us, dtype=float).T, s, e, segments=segments)
            _, g2 = testbed.vjp(c, pts, us, e, checkpoints=s)
            assert bits_equal(g1.T if np.ndim(pts) == 2 else g1, g0), (e, s, segments)
            assert bits_equal(g2, g0), (e, s)
            assert sched.max_snapshots <= s


@given(deep_cases())
def test_checkpointing_counts_its_recomputation_exactly(case):
    c, X, _, s, _ = case
    c = c.output(0)
    plain = testbed.op_counts(c, "grad")
    for e in EXECUTORS:
        extra = C.recomputation_counts(c, s, executor=e)
        both = testbed.op_counts(c, "grad", checkpoints=s, executor=e)
        assert both == {k: plain.get(k, 0) + extra.get(k, 0) for k in set(plain) | set(extra)}
        with counting() as k:  # what ran: every forward sweep of every segment the schedule ran
            testbed.value_and_grad(c, X[0], e, checkpoints=s)
        forward = {key.split(":")[1]: n for key, n in k.items() if key.startswith("forward:")}
        expect = {name: c.counts().get(name, 0) + extra.get(name, 0) for name in c.counts()}
        assert forward == expect, e


def test_the_recomputation_is_the_schedules_forward_steps_in_segments():
    # a chain of equal segments: the recomputed operations are F(n, s) segments' worth
    n_seg, per = 20, 50
    b = testbed.circuit.SlotTable(1)
    v = 0
    for _ in range(n_seg * per):
        v = b.append(P.SIN.code, v)
    c = b.circuit([v])
    s = 3
    extra = C.recomputation_counts(c, s, segments=n_seg)
    assert extra == {"sin": C.forward_steps(n_seg, s) * per}


def test_a_million_node_chain_with_ten_checkpoints():
    n = 10**6
    c = sin_chain(n)
    x = np.array([0.3, 0.1])
    f0, g0 = testbed.value_and_grad(c, x)
    f1, g1 = testbed.value_and_grad(c, x, checkpoints=10)
    assert f0 == f1 and bits_equal(g1, g0)


def test_checkpointing_needs_something_to_cut_and_says_so():
    # two operations on one level: the level-by-level sweep has nothing to cut between
    c = testbed.trace(lambda x: (x[0] * x[1], x[0] + x[1]), 2)
    with pytest.raises(C.CheckpointError, match="one level"):
        testbed.vjp(c, np.ones(2), np.ones(2), "vectorised", checkpoints=2)
    with pytest.raises(C.CheckpointError, match="two operations"):
        testbed.value_and_grad(testbed.trace(lambda x: testbed.sin(x[0]), 1), np.ones(1), checkpoints=2)
    with pytest.raises(C.CheckpointError, match=">= 1"):
        testbed.value_and_grad(testbed.trace(lambda x: testbed.sin(x[0]), 1), np.ones(1), checkpoints=0)
    with pytest.raises(testbed.TestbedError, match="checkpoints apply"):
        testbed.op_counts(testbed.trace(lambda x: testbed.sin(x[0]), 1), "hvp", checkpoints=2)


def test_errors_are_the_plain_sweeps_errors():
    def chain(x):
        v = x[0]
        for _ in range(60):
            v = testbed.sin(v) + x[1]
        return testbed.log(v - 10.0) + v  # log of a negative number near the end

    c = testbed.trace(chain, 2)
    x = np.array([0.3, 0.1])
    with pytest.raises(testbed.DomainError) as plain:
        testbed.value_and_grad(c, x)
    with pytest.raises(testbed.DomainError) as ck:
        testbed.value_and_grad(c, x, checkpoints=2)
    assert str(ck.value) == str(plain.value)


@given(deep_cases())
def test_the_streaming_forward_pass_gives_the_plain_values(case):
    c, X, _, _, segments = case
    for e in EXECUTORS:
        X_, _ = testbed.evaluate.as_points(c, X)
        ours = C.evaluate_streaming(c, X_, segments, e)
        assert bits_equal(ours.T, np.reshape(testbed.evaluate.evaluate(c, X, e), (len(X), -1))), e
