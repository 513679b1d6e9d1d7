"""`testbed._checks.check_int`: the one check of "an int but not a bool", and the entry points that
use it (or its predicate `is_int`): each refuses a bool with an error naming the argument."""

import numpy as np
import pytest

import testbed
import testbed.checkpoint as C
import testbed.curvature as cv
import testbed.nn as nn
from testbed._checks import check_int, is_int
from testbed.nn import init

# --- the helper -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [True, False, np.bool_(True), np.bool_(False)])
def test_bools_are_refused(bad):
    assert not is_int(bad)
    with pytest.raises(TypeError, match=rf"count must be an integer, got bool {bad!r}"):
        check_int(bad, "count")


@pytest.mark.parametrize("bad", [1.0, np.float64(2.0), 2.5, "3", None, 1 + 0j, [1]])
def test_what_is_not_an_integer_is_refused(bad):
    assert not is_int(bad)
    with pytest.raises(TypeError, match=rf"count must be an integer, got {type(bad).__name__} "):
        check_int(bad, "count")


@pytest.mark.parametrize("good", [0, 7, -3, 2**70, np.int8(5), np.int64(7), np.uint32(9)])
def test_python_and_numpy_integers_are_accepted_as_int(good):
    assert is_int(good)
    out = check_int(good, "count")
    assert out == int(good) and type(out) is int


def test_minimum_and_maximum_are_enforced_inclusively():
    assert check_int(1, "n", minimum=1) == 1 and check_int(5, "n", minimum=1, maximum=5) == 5
    with pytest.raises(testbed.TestbedError, match=r"^n must be an integer >= 1, got 0$"):
        check_int(0, "n", minimum=1)
    with pytest.raises(testbed.TestbedError, match=r"^n must be an integer in 1\.\.5, got 6$"):
        check_int(np.int64(6), "n", minimum=1, maximum=5)
    with pytest.raises(testbed.TestbedError, match=r"^n must be an integer <= 5, got 6$"):
        check_int(6, "n", maximum=5)
    assert issubclass(testbed.TestbedError, ValueError)


def test_the_message_names_the_argument_the_place_and_what_was_expected():
    with pytest.raises(TypeError, match=r"^variance\('normal'\): n_in must be an integer >= 1, "
                                        r"got bool True$"):
        check_int(True, "n_in", minimum=1, where="variance('normal')")
    with pytest.raises(TypeError, match=r"^k must be None or a count, got str 'x'$"):
        check_int("x", "k", expected="None or a count")
    with pytest.raises(TypeError, match=r"got str '" + "a" * 59 + "$"):  # a long repr is cut
        check_int("a" * 500, "k")


def test_the_caller_chooses_the_exception_types():
    with pytest.raises(nn.NetworkError, match="steps"):
        check_int(True, "steps", type_error=nn.NetworkError)
    with pytest.raises(C.CheckpointError, match="s must be an integer >= 1, got 0"):
        check_int(0, "s", minimum=1, error=C.CheckpointError)


# --- the entry points: a bool is refused with a clear error ---------------------------------------


def _circuit():
    return testbed.trace(lambda x: testbed.sin(x[0] * x[1]), 2)


def _net():
    return nn.init_network([3, 4, 2], "tanh", "xavier_normal", np.random.default_rng(0))


_X, _Y = np.ones((5, 3)), np.ones((5, 2))
_A = np.diag([1.0, 2.0, 3.0, 4.0])


def _pow(n):
    return testbed.trace(lambda x: x[0] ** n, 1)


ENTRY_POINTS = {
    "nn.init.variance n_in": (lambda b: init.variance("he_normal", b, 3),
                              TypeError, r"n_in must be an integer >= 1, got bool"),
    "nn.init.he_normal n_out": (lambda b: init.he_normal(b, 3, np.random.default_rng(0)),
                                TypeError, r"n_out must be an integer >= 1, got bool"),
    "nn.init_network sizes": (lambda b: nn.init_network([3, b, 1], "relu", "zeros",
                                                        np.random.default_rng(0)),
                              TypeError, r"a width must be an integer"),
    "nn.draw max_layers": (lambda b: nn.draw(_net(), _X, _Y, max_layers=b),
                           testbed.TestbedError, r"max_layers must be an integer >= 2, got bool"),
    "nn.value_and_grad checkpoints": (lambda b: nn.value_and_grad(_net(), _X, _Y, checkpoints=b),
                                      TypeError, r"checkpoints must be an int >= 1 or 'sqrt', got bool"),
    "nn.train steps": (lambda b: nn.train(_net(), _X, _Y, 0.1, steps=b),
                       nn.NetworkError, r"steps must be an integer >= 0, got bool"),
    "nn.train batch_size": (lambda b: nn.train(_net(), _X, _Y, 0.1, steps=1, batch_size=b,
                                               rng=np.random.default_rng(0)),
                            nn.NetworkError, r"batch_size must be None or an integer in 1\.\.m=5, got bool"),
    "nn.train snapshot_every": (lambda b: nn.train(_net(), _X, _Y, 0.1, steps=1, snapshot_every=b),
                                nn.NetworkError, r"snapshot_every must be None or an integer >= 1, got bool"),
    "curvature.top_eigenvalues k": (lambda b: cv.top_eigenvalues(_A, b, rng=np.random.default_rng(0)),
                                    TypeError, r"k must be an integer, got bool"),
    "curvature.lanczos k": (lambda b: cv.lanczos(_A, np.ones(4), b),
                            TypeError, r"k must be an integer, got bool"),
    "curvature.spectral_density n_probes": (
        lambda b: cv.spectral_density(_A, 2, b, rng=np.random.default_rng(0)),
        TypeError, r"n_probes must be an integer, got bool"),
    "Circuit.output": (lambda b: _circuit().output(b),
                       TypeError, r"output indices must be integers, got bool"),
    "trace l": (lambda b: testbed.trace(lambda x: x[0], b),
                TypeError, r"number of inputs l as an int, got bool"),
    "Tracer ** n": (_pow, testbed.TraceError, r"integer power >= 1, got"),
    "from_nodes argument slot": (lambda b: testbed.from_nodes(2, [("add", 0, b)], [2]),
                                 testbed.CircuitError, r"expects 2 integer argument slot\(s\)"),
    "draw max_nodes": (lambda b: testbed.draw(_circuit(), max_nodes=b),
                       testbed.TestbedError, r"max_nodes must be an integer >= 2, got bool"),
    "draw_grad max_nodes": (lambda b: testbed.draw_grad(_circuit(), max_nodes=b),
                            testbed.TestbedError, r"max_nodes must be an integer >= 2, got bool"),
    "draw_sweep columns": (lambda b: testbed.draw_sweep(_circuit(), np.ones(2), columns=b),
                           testbed.TestbedError, r"columns must be an integer >= 1, got bool"),
    "checkpoint.revolve n": (lambda b: C.revolve(b, 2), TypeError, r"n must be an int, got bool"),
    "checkpoint.forward_steps s": (lambda b: C.forward_steps(4, b),
                                   TypeError, r"s must be an int, got bool"),
}


@pytest.mark.parametrize("bad", [True, np.bool_(True)])
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_an_entry_point_refuses_a_bool_with_a_clear_error(entry, bad):
    call, error, match = ENTRY_POINTS[entry]
    with pytest.raises(error, match=match):
        call(bad)
