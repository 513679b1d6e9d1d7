"""Bad input at the entry points of the sweeps and transforms: a clear error, never a silent number.

Rules (see testbed.evaluate.as_real): points and directions are real float arrays. Complex numbers
(the imaginary part would be dropped), strings ("1.5" would parse), booleans (True would be 1.0)
and other objects are refused with a ShapeError naming the argument; integers are accepted. A
transform given something other than a Circuit raises a TypeError naming the expected type.
"""

import numpy as np
import pytest
from support import EXECUTORS

import testbed

C = testbed.trace(lambda x: testbed.sin(x[0]) * x[1], 2)
C2 = testbed.trace(lambda x: (x[0] * x[1], x[0] - x[1]), 2)
X = np.array([0.3, 0.4])

BAD = {
    "complex": (np.array([0.3 + 1e-3j, 0.4]), "complex"),
    "complex python": ([0.3 + 0j, 0.4], "complex"),
    "numeric strings": (["0.3", "0.4"], "string"),
    "numeric string array": (np.array(["0.3", "0.4"]), "string"),
    "bools": (np.array([True, False]), "bool"),
    "bool list": ([True, False], "bool"),
    "objects": (np.array([0.3, None], dtype=object), "NoneType"),
}


def _entry_points(arg):
    """Every public entry point, with `arg` in the position of x, v or u."""
    return {
        "c(x)": lambda: C(arg),
        "evaluate": lambda: testbed.evaluate.evaluate(C, arg),
        "slot_values": lambda: C.slot_values(arg),
        "value_and_grad": lambda: testbed.value_and_grad(C, arg),
        "vjp x": lambda: testbed.vjp(C2, arg, [1.0, 1.0]),
        "vjp u": lambda: testbed.vjp(C2, X, arg),
        "jvp x": lambda: testbed.jvp(C, arg, X),
        "jvp v": lambda: testbed.jvp(C, X, arg),
        "hvp x": lambda: testbed.hvp(C, arg, X),
        "hvp v": lambda: testbed.hvp(C, X, arg),
        "hessian": lambda: testbed.hessian(C, arg),
        "fd_grad": lambda: testbed.fd_grad(C, arg),
        "jacfwd": lambda: testbed.jacfwd(C2, arg),
        "jacrev": lambda: testbed.jacrev(C2, arg),
        "jacobian": lambda: testbed.jacobian(C2, arg),
    }


@pytest.mark.parametrize("kind", list(BAD))
def test_non_real_input_is_refused_everywhere(kind):
    arg, word = BAD[kind]
    for where, call in _entry_points(arg).items():
        with pytest.raises(testbed.ShapeError, match=rf"must be a real float array.*{word}") as e:
            call()
        name = "u" if where.endswith(" u") else "v" if where.endswith(" v") else "x"
        assert str(e.value).startswith(name), (where, str(e.value))


def test_complex_input_gives_no_warning_and_no_number(recwarn):
    with pytest.raises(testbed.ShapeError, match="imaginary part would be dropped"):
        C(np.array([0.3 + 0j, 0.4]))
    assert not [w for w in recwarn if issubclass(w.category, np.exceptions.ComplexWarning)]


def test_integers_are_real_points():
    assert C(np.array([0, 1])) == C(np.array([0.0, 1.0]))
    assert testbed.jvp(C, [0, 1], [1, 0]) == testbed.jvp(C, [0.0, 1.0], [1.0, 0.0])


@pytest.mark.parametrize("h", [True, False, np.True_, "1e-6", 1j, float("nan"), 0.0, -1e-6])
def test_fd_step_must_be_a_positive_real(h):
    with pytest.raises(testbed.TestbedError, match="step h must be a finite number > 0"):
        testbed.fd_grad(C, X, h=h)


@pytest.mark.parametrize("not_a_circuit", ["c", 5, None, lambda x: x, np.zeros(3)])
def test_transforms_and_op_counts_name_the_expected_type(not_a_circuit):
    calls = {
        "grad": lambda: testbed.grad(not_a_circuit),
        "value_and_grad": lambda: testbed.value_and_grad(not_a_circuit, X),
        "vjp": lambda: testbed.vjp(not_a_circuit, X, [1.0]),
        "jvp": lambda: testbed.jvp(not_a_circuit, X, X),
        "jvp_circuit": lambda: testbed.jvp_circuit(not_a_circuit),
        "hvp": lambda: testbed.hvp(not_a_circuit, X, X),
        "hvp_circuit": lambda: testbed.hvp_circuit(not_a_circuit),
        "hessian": lambda: testbed.hessian(not_a_circuit, X),
        "fd_grad": lambda: testbed.fd_grad(not_a_circuit, X),
        "jacfwd": lambda: testbed.jacfwd(not_a_circuit, X),
        "jacrev": lambda: testbed.jacrev(not_a_circuit, X),
        "jacobian": lambda: testbed.jacobian(not_a_circuit, X),
        "op_counts": lambda: testbed.op_counts(not_a_circuit, "grad"),
    }
    for name, call in calls.items():
        expected = rf"{name} needs a testbed Circuit.*{type(not_a_circuit).__name__}"
        with pytest.raises(TypeError, match=expected):
            call()


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("batched", [False, True])
def test_domain_and_overflow_errors_name_the_node_on_every_executor(executor, batched):
    def at(x):
        return np.tile(x, (3, 1)) if batched else np.asarray(x)

    c = testbed.trace(lambda x: testbed.sin(x[1]) + testbed.log(x[0] * 1.0), 2)
    with pytest.raises(testbed.DomainError, match=r"node v\d+ = log v\d+ \(with v\d+=.*-0\.5"):
        testbed.evaluate.evaluate(c, at([-0.5, 0.3]), executor)
    c = testbed.trace(lambda x: testbed.sin(x[0] * x[0] * x[0]), 1)
    with pytest.raises(testbed.NonFiniteError, match=r"node v\d+ = mul .* overflowed"):
        testbed.evaluate.evaluate(c, at([1e200]), executor)
    c = testbed.trace(lambda x: x[0] / x[1], 2)  # f = 1e200 is finite, d f / d x1 = -1e400 is not
    with pytest.raises(testbed.NonFiniteError, match=r"reverse sweep overflowed: the cotangent of x1"):
        testbed.value_and_grad(c, at([1.0, 1e-200]), executor)
    with pytest.raises(testbed.NonFiniteError, match=r"tangent sweep overflowed"):
        testbed.jvp(c, at([1.0, 1e-200]), at([0.0, 1.0]), executor)


def test_non_finite_cotangent_is_refused():
    with pytest.raises(testbed.NonFiniteError, match="u must be finite"):
        testbed.vjp(C2, X, [1.0, np.nan])


def test_object_arrays_of_real_numbers_are_accepted():
    from fractions import Fraction

    assert C(np.array([Fraction(3, 10), 0.4], dtype=object)) == C(np.array([0.3, 0.4]))
