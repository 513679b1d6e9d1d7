"""Bad input gets a testbed error (a ValueError) naming what was wrong and where; never a NaN.
An argument of the wrong kind (f not callable, not a Circuit, a numpy function on a tracer) gets a
TypeError that names what was expected."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import testbed
from testbed.strategies import circuits, points


def test_every_error_is_a_value_error():
    for cls in (testbed.ShapeError, testbed.NonFiniteError, testbed.DomainError,
                testbed.CircuitError, testbed.TraceError, testbed.GradientCheckError):
        assert issubclass(cls, testbed.TestbedError) and issubclass(cls, ValueError)


@given(circuits(), st.integers(0, 6).filter(lambda n: n >= 0))
def test_input_of_wrong_length(c, n):
    if n == c.l:
        n = c.l + 1
    for f in (c, lambda x: testbed.value_and_grad(c, x) if c.n_outputs == 1 else c(x)):
        with pytest.raises(testbed.ShapeError, match=rf"l={c.l}"):
            f(np.zeros(n))


@given(circuits(), st.sampled_from([(2, 3, 4), (0,), ()]))
def test_input_of_wrong_rank(c, shape):
    with pytest.raises(testbed.ShapeError, match="shape"):
        c(np.zeros(shape))


def test_input_that_is_not_numbers():
    c = testbed.trace(lambda x: x[0] + x[1], 2)
    with pytest.raises(testbed.ShapeError):
        c(["a", "b"])


@given(circuits().flatmap(lambda c: st.tuples(
    st.just(c), points(c.l), st.integers(0, c.l - 1), st.sampled_from([np.nan, np.inf, -np.inf]))))
def test_non_finite_input_names_its_position(args):
    c, x, i, bad = args
    x[i] = bad
    with pytest.raises(testbed.NonFiniteError, match=rf"x\[{i}\]"):
        c(x)
    with pytest.raises(testbed.NonFiniteError):
        testbed.jvp(c, np.zeros(c.l), x)


@given(st.floats(-10, 0), st.booleans())
def test_log_of_non_positive_names_node_and_value(a, batched):
    c = testbed.trace(lambda x: testbed.sin(x[1]) + testbed.log(x[0] * 1.0), 2)
    x = np.array([a, 0.5])
    with pytest.raises(testbed.DomainError, match=r"log") as e:
        c(np.tile(x, (3, 1)) if batched else x)
    msg = str(e.value)
    assert re.search(r"node v\d+ = log v\d+", msg), msg
    assert repr(float(a * 1.0)) in msg or f"{a:.6g}" in msg, msg


@given(st.integers(2, 40), st.booleans())
def test_division_by_zero_names_node(n, batched):
    # a wide (vectorised) and a narrow (sequential) circuit, the zero denominator at the end
    def f(x):
        s = x[0]
        for _ in range(n):
            s = s + x[0] * x[0]
        return s / (x[1] - 1.0)

    c = testbed.trace(f, 2)
    x = np.array([0.5, 1.0])
    with pytest.raises(testbed.DomainError, match=r"division by zero") as e:
        c(np.tile(x, (4, 1)) if batched else x)
    assert re.search(r"node v\d+ = div v\d+ v\d+", str(e.value))


@given(st.floats(710, 1e5), st.booleans())
def test_exp_overflow_is_an_error_not_inf(a, batched):
    c = testbed.trace(lambda x: testbed.exp(x[0] * 1.0) - 1.0, 1)
    x = np.array([a])
    with pytest.raises(testbed.DomainError, match="exp overflows"):
        c(np.tile(x, (2, 1)) if batched else x)


@given(st.floats(1e160, 1e300))
def test_multiplication_overflow_names_node(a):
    c = testbed.trace(lambda x: testbed.sin(x[0] * x[0] * x[0]), 1)
    with pytest.raises(testbed.NonFiniteError, match=r"node v\d+ = mul .* overflowed"):
        c(np.array([a]))


def test_gradient_overflow_is_an_error():
    # f = x0 / x1 = 1e200 is finite; d f / d x1 = -x0 / x1^2 = -1e400 is not
    c = testbed.trace(lambda x: x[0] / x[1], 2)
    x = np.array([1.0, 1e-200])
    for sweep in (lambda: testbed.value_and_grad(c, x), lambda: testbed.vjp(c, x, [1.0]),
                  lambda: testbed.jvp(c, x, np.array([0.0, 1.0]))):
        with pytest.raises(testbed.NonFiniteError, match="overflowed"):
            sweep()


@given(st.text(min_size=1, max_size=8).filter(lambda s: s not in testbed.OPS and s != "const"))
def test_unknown_primitive(name):
    with pytest.raises(testbed.CircuitError, match=r"unknown primitive .* at node v2"):
        testbed.from_nodes(2, [(name, 0, 1)], [2])


@given(st.integers(0, 3), st.integers(0, 5))
def test_node_referring_forward_or_to_itself(m, ahead):
    nodes = [("add", 0, 1)] * m + [("mul", 0, 2 + m + ahead)]
    with pytest.raises(testbed.CircuitError,
                       match="refers to itself" if ahead == 0 else "refers forward"):
        testbed.from_nodes(2, nodes, [2 + m])


def test_wrong_arity_and_bad_outputs():
    with pytest.raises(testbed.CircuitError, match="expects 2"):
        testbed.from_nodes(1, [("add", 0)], [1])
    with pytest.raises(testbed.CircuitError, match="output"):
        testbed.from_nodes(1, [("sin", 0)], [5])
    with pytest.raises(testbed.CircuitError, match="at least one output"):
        testbed.from_nodes(1, [("sin", 0)], [])


@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.none(), st.text(max_size=3)))
def test_traced_function_returning_a_non_tracer(value):
    with pytest.raises(testbed.TraceError, match="must return tracers"):
        testbed.trace(lambda x: value, 2)
    with pytest.raises(testbed.TraceError, match="output 1"):
        testbed.trace(lambda x: (x[0], value), 2)


def test_tracer_used_after_its_trace_ended():
    leaked = []
    c = testbed.trace(lambda x: leaked.append(x[0]) or x[0] * 2.0, 1)
    assert c.size == 1
    for use in (lambda t: t + 1.0, lambda t: testbed.sin(t), lambda t: 3.0 * t, lambda t: -t):
        with pytest.raises(testbed.TraceError, match="after its trace ended"):
            use(leaked[0])
    with pytest.raises(testbed.TraceError, match="another trace"):
        testbed.trace(lambda x: x[0] + leaked[0], 1)


def test_failed_trace_leaves_nothing_half_built():
    leaked = []

    def f(x):
        leaked.append(x[0] * 2.0)
        raise RuntimeError("user bug")

    with pytest.raises(RuntimeError, match="user bug"):
        testbed.trace(f, 1)
    with pytest.raises(testbed.TraceError, match="after its trace ended"):
        leaked[0] + 1.0


def test_branching_on_a_tracer():
    with pytest.raises(testbed.TraceError, match="branching"):
        testbed.trace(lambda x: x[0] if x[0] > 0 else -x[0], 1)
    with pytest.raises(testbed.TraceError, match="integer power"):
        testbed.trace(lambda x: x[0] ** 0.5, 1)


def test_non_finite_constant_in_trace():
    with pytest.raises(testbed.NonFiniteError, match="constant"):
        testbed.trace(lambda x: x[0] * float("inf"), 1)


def test_transform_argument_errors():
    c2 = testbed.trace(lambda x: (x[0] * x[1], x[0] + x[1]), 2)
    c = testbed.trace(lambda x: x[0] * x[1], 2)
    x = np.array([1.0, 2.0])
    with pytest.raises(testbed.ShapeError, match="scalar circuit"):
        testbed.grad(c2)
    with pytest.raises(testbed.ShapeError, match="u has shape"):
        testbed.vjp(c2, x, np.ones(3))
    with pytest.raises(testbed.ShapeError, match="must match"):
        testbed.jvp(c, np.ones((3, 2)), np.ones(2))
    with pytest.raises(testbed.TestbedError, match="scheme"):
        testbed.fd_grad(c, x, scheme="backward")
    with pytest.raises(testbed.TestbedError, match="step h"):
        testbed.fd_grad(c, x, h=-1.0)
    with pytest.raises(testbed.TestbedError, match="spacing"):
        testbed.fd_grad(c, np.array([1e20, 1.0]), h=1.0)
    with pytest.raises(testbed.TestbedError, match="order"):
        testbed.check_grads(c, x, order=3)
    with pytest.raises(testbed.TestbedError, match="method"):
        testbed.to_jax(c, method="magic")
    with pytest.raises(testbed.TestbedError, match="mode"):
        testbed.op_counts(c, "sideways")
    with pytest.raises(testbed.TraceError, match="l >= 1"):
        testbed.trace(lambda x: x, 0)


# --- entry points: trace, tracing misuse, to_jax -----------------------------------------------------


@pytest.mark.parametrize("f", [5, None, "x[0] + x[1]", [lambda x: x[0]]])
def test_trace_needs_a_function(f):
    with pytest.raises(TypeError, match=r"needs a function f of one argument, the list x of l inputs"):
        testbed.trace(f, 3)


@pytest.mark.parametrize("l", [2.0, "3", None, True])
def test_trace_needs_an_integer_l(l):
    with pytest.raises(TypeError, match="number of inputs l as an int"):
        testbed.trace(lambda x: x[0], l)


def test_trace_with_a_function_of_the_wrong_arity():
    with pytest.raises(TypeError, match=r"ONE argument, the list x of l=3 inputs, but f takes \(a, b\)"):
        testbed.trace(lambda a, b: a + b, 3)
    with pytest.raises(TypeError, match=r"f takes \(\)"):
        testbed.trace(lambda: 1.0, 3)
    # signatures that accept one positional argument are fine
    assert testbed.trace(lambda x, scale=2.0: x[0] * scale, 1).size == 1
    assert testbed.trace(lambda *xs: xs[0][1] * 2.0, 2).size == 1


@pytest.mark.parametrize("l", [1, 3])
@pytest.mark.parametrize("past", [0, 4])
def test_trace_indexing_past_l(l, past):
    for i in (l + past, -l - 1 - past):
        with pytest.raises(testbed.TraceError, match=rf"x\[{i}\] is out of range: .* l={l} inputs"):
            testbed.trace(lambda x, i=i: x[i] * 2.0, l)
    # in-range negative indices and slices stay Python's
    c = testbed.trace(lambda x: x[-1] * 2.0 + x[:1][0], l)
    assert c(np.arange(1.0, l + 1.0)) == 2.0 * l + 1.0


@pytest.mark.parametrize("name", ["sin", "cos", "exp", "log", "tanh"])
def test_numpy_function_on_a_tracer_names_the_testbed_twin(name):
    assert callable(getattr(testbed, name))
    with pytest.raises(TypeError, match=rf"numpy\.{name} cannot record a node .*: use testbed\.{name}$"):
        testbed.trace(lambda x: getattr(np, name)(x[0]), 1)


def test_numpy_function_without_a_twin_lists_what_a_trace_may_use():
    for f in (np.sqrt, np.abs, np.floor):
        with pytest.raises(TypeError, match=rf"numpy\.{f.__name__} cannot be applied to a traced value"
                                            r".*testbed\.sin, testbed\.cos"):
            testbed.trace(lambda x, f=f: f(x[0]), 1)
    with pytest.raises(testbed.TraceError, match="branching"):
        testbed.trace(lambda x: np.less(x[0], 0.0) * 1.0, 1)


@given(points(2))
def test_numpy_scalars_combine_with_tracers(x):
    c = testbed.trace(lambda x: (np.float64(2.0) * x[0] - np.float64(0.5) / (x[1] * x[1] + 1.0)
                                 + np.int64(3) - x[1] * np.float32(0.25) + x[0] ** np.int64(3)), 2)
    a, b = x
    want = 2.0 * a - 0.5 / (b * b + 1.0) + 3.0 - b * 0.25 + a * a * a
    assert abs(c(x) - want) <= 1e-12 * max(1.0, abs(want))  # reassociation of a few float ops


@pytest.mark.parametrize("value", [1j, np.complex128(1.0), "2.0", True, np.bool_(True), [1.0]])
def test_non_real_constant_in_a_trace(value):
    with pytest.raises(testbed.TraceError, match=r"only tracers and real numbers \(int or float"):
        testbed.trace(lambda x: x[0] * value, 1)


@given(points(2))
def test_calling_a_circuit_inside_a_trace_composes(x):
    inner = testbed.trace(lambda x: (x[0] * x[1], testbed.sin(x[0])), 2)
    outer = testbed.trace(lambda x: inner([x[1], x[0]])[0] * inner([x[0], 2.0])[1], 2)
    a, b = x
    # 1e-14: numpy's sin and the engine's (math.sin) may differ by an ulp
    assert np.isclose(outer(x), (b * a) * np.sin(a), rtol=1e-14, atol=1e-14)
    g = testbed.value_and_grad(outer, x)[1]
    assert np.allclose(g, [b * np.sin(a) + a * b * np.cos(a), a * np.sin(a)], rtol=1e-12, atol=1e-12)


def test_calling_a_circuit_inside_a_trace_the_wrong_way():
    inner = testbed.trace(lambda x: x[0] * x[1], 2)
    with pytest.raises(testbed.ShapeError, match="l=2 inputs; it was called on 1 values"):
        testbed.trace(lambda x: inner([x[0]]), 2)
    with pytest.raises(testbed.ShapeError, match=r"call it as c\(\[x0, \.\.\.\]\)"):
        testbed.trace(lambda x: inner(x[0]), 2)
    with pytest.raises(testbed.TraceError, match="cannot use a Circuit as a value"):
        testbed.trace(lambda x: x[0] * inner, 2)


@pytest.mark.parametrize("c", [5, None, "c", lambda x: x])
def test_to_jax_needs_a_circuit(c):
    with pytest.raises(TypeError, match="to_jax needs a testbed Circuit"):
        testbed.to_jax(c)
