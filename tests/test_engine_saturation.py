"""Saturated units: sigma' and tanh' to full relative precision, where the textbook forms give 0.

s (1 - s) and 1 - tanh^2 are exactly 0 once sigmoid(z) or tanh(z) rounds to 1 (|z| > 37, > 19):
the vanishing gradient of a saturated unit would vanish for a reason that is not the theory's.
testbed computes sigmoid' = sigmoid(z) sigmoid(-z) and tanh' = sech^2 z without cancellation
(testbed.primitives.DSIGMOID, SECH2), in the engine's rules and in testbed.nn. Checked here against
mpmath at 50 digits for |z| up to 700: relative error <= 1e-14 wherever the true value is a
normal float64 (>= 2.2e-308); below that the result is subnormal or 0 and carries an absolute
error below the smallest normal float, which is all float64 can hold there.
"""

import mpmath
import numpy as np
import pytest
from support import EXECUTORS

import testbed
import testbed.nn as nn
from testbed import primitives as P

mpmath.mp.dps = 50
TINY = np.finfo(np.float64).tiny  # the smallest normal float64
Z = np.concatenate([np.linspace(-700, 700, 561), [-100.0, -20.0, -0.5, 0.0, 1e-8, 20.0, 37.5, 100.0]])


def _exact(f, z):
    return np.array([float(f(mpmath.mpf(float(t)))) for t in z])


def _sig(t):
    return 1 / (1 + mpmath.exp(-t))


EXACT = {
    # value, first and second derivative
    "sigmoid": (_sig, lambda t: _sig(t) * _sig(-t), lambda t: _sig(t) * _sig(-t) * (_sig(-t) - _sig(t))),
    "tanh": (mpmath.tanh, lambda t: mpmath.sech(t) ** 2,
             lambda t: -2 * mpmath.tanh(t) * mpmath.sech(t) ** 2),
}


def _check(ours, exact, what):
    ours, exact = np.asarray(ours, dtype=np.float64), np.asarray(exact)
    normal = np.abs(exact) >= TINY
    rel = np.abs(ours[normal] - exact[normal]) / np.abs(exact[normal])
    assert rel.max(initial=0.0) <= 1e-14, (what, float(rel.max()), Z[normal][np.argmax(rel)])
    assert np.all(np.abs(ours[~normal] - exact[~normal]) <= TINY), what


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
@pytest.mark.parametrize("executor", EXECUTORS)
def test_engine_first_and_second_derivatives_of_saturated_units(name, executor):
    f, d1, d2 = EXACT[name]
    c = testbed.trace(lambda x: getattr(testbed, name)(x[0]), 1)
    X = Z[:, None]
    grads = testbed.value_and_grad(c, X, executor)[1][:, 0]
    hvps = testbed.hvp(c, X, np.ones_like(X), executor)[:, 0]
    _check(grads, _exact(d1, Z), f"{name}' ({executor})")
    _check(hvps, _exact(d2, Z), f"{name}'' ({executor})")
    # the gradient circuit (grad of grad) is just as precise
    _check(testbed.value_and_grad(testbed.grad(c), X, executor)[1][:, 0], _exact(d2, Z),
           f"grad(grad {name}) ({executor})")


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_nn_activation_derivatives_of_saturated_units(name):
    f, d1, d2 = EXACT[name]
    _check(nn.activations.dsigma(name, Z), _exact(d1, Z), f"nn {name}'")
    _check(nn.activations.d2sigma(name, Z), _exact(d2, Z), f"nn {name}''")


def test_the_textbook_forms_would_be_zero_where_ours_are_not():
    # what the rules replace: JAX's own sigmoid' and tanh' at z = 100 are 0 (s (1 - s), 1 - t^2)
    s, t = P.SIGMOID.py(100.0), P.TANH.py(100.0)
    assert s * (1.0 - s) == 0.0 and 1.0 - t * t == 0.0
    # (abs=0: pytest.approx's default absolute tolerance 1e-12 would pass any tiny number)
    assert P.DSIGMOID.py(100.0) == pytest.approx(3.720075976020836e-44, rel=1e-14, abs=0)
    assert P.SECH2.py(100.0) == pytest.approx(5.53558610694695e-87, rel=1e-14, abs=0)
