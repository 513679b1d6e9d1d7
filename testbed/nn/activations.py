"""The activation functions a = sigma(z) of the hidden layers: one table, one row per activation.

A row holds sigma, sigma' and sigma'' in numpy, the same sigma in jax.numpy (for the jax twin,
`to_jax_loss`) and as the circuit engine's primitive (for the engine twin, `trace_loss`): every
implementation of the network takes its activation from here. Lemma 2 needs sigma'(z);
Pearlmutter's R-pass needs sigma''(z) as well. All four work elementwise on
float64 arrays of any shape and never warn for |z| up to 1e3 (nor beyond: no exp of a positive
argument is ever taken).

    relu:      sigma = max(z, 0)       sigma' = [z > 0]  (0 at z = 0, as jax.nn.relu)   sigma'' = 0
    sigmoid:   sigma = 1 / (1 + e^-z)  sigma' = sigma (1 - sigma)   sigma'' = sigma' (1 - 2 sigma)
    tanh:      sigma = tanh z          sigma' = 1 - tanh^2 z        sigma'' = -2 tanh z sigma'
    identity:  sigma = z               sigma' = 1                   sigma'' = 0
The derivatives are computed in forms without cancellation (sigma(z) sigma(-z), sech^2 z: see
testbed.primitives), so that a saturated unit's sigma' keeps full relative precision: the
textbook forms above are exactly 0 once sigma or tanh rounds to 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from testbed import primitives

from .errors import UnknownNameError

Array = np.ndarray


@dataclass(frozen=True)
class Activation:
    """One activation: sigma, its first two derivatives, its twins, and whether sigma'' can be nonzero.

    Attributes:
        sigma, dsigma, d2sigma: sigma, sigma', sigma'' on float64 numpy arrays, elementwise.
        curved: False for the piecewise-linear ones (relu, identity), whose sigma'' is 0 wherever it
            exists: the R-pass then skips the sigma''(z) * R{z} * dJ/da term rather than multiply
            by 0.
        jnp: jax module -> sigma in jax.numpy. It takes the module so that this table imports no
            jax: only the caller that builds the jax twin does.
        engine: sigma on one scalar of the circuit engine (a float or a tracer): its primitive.
    """

    name: str
    sigma: Callable[[Array], Array]
    dsigma: Callable[[Array], Array]
    d2sigma: Callable[[Array], Array]
    curved: bool
    jnp: Callable[[object], Callable]
    engine: Callable[[object], object]

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


# --- relu -----------------------------------------------------------------------------------------
def _relu(z: Array) -> Array:
    return np.maximum(z, 0.0)


def _relu_d(z: Array) -> Array:
    # strict inequality: relu'(0) = 0, the convention of jax.nn.relu (jnp.maximum would give 1/2)
    return (z > 0.0).astype(np.float64)


def _zeros(z: Array) -> Array:
    return np.zeros_like(z, dtype=np.float64)


# --- sigmoid --------------------------------------------------------------------------------------
# Everything is written with e = exp(-|z|) <= 1, so nothing overflows for any z, and the derivatives
# avoid the cancellation in 1 - sigma when sigma is close to 1.
def _sigmoid(z: Array) -> Array:
    e = np.exp(-np.abs(z))
    inv = 1.0 / (1.0 + e)
    return np.where(z >= 0.0, inv, e * inv)


# sigma(z) sigma(-z) = e / (1 + e)^2: the engine's own sigmoid' (testbed.primitives.DSIGMOID)
_sigmoid_d = primitives.DSIGMOID.np


def _sigmoid_d2(z: Array) -> Array:
    # sigma'(z) (1 - 2 sigma(z)) = -sign(z) e (1 - e) / (1 + e)^3; expm1 keeps 1 - e exact at z ~ 0
    az = np.abs(z)
    e = np.exp(-az)
    inv = 1.0 / (1.0 + e)
    return -np.sign(z) * e * (-np.expm1(-az)) * inv * inv * inv


# --- tanh -----------------------------------------------------------------------------------------
# 1 - tanh^2 z = sech^2 z = 4 e / (1 + e)^2 with e = exp(-2|z|): no cancellation, no overflow;
# the engine's own tanh' (testbed.primitives.SECH2)
_tanh_d = primitives.SECH2.np


def _tanh_d2(z: Array) -> Array:
    return -2.0 * np.tanh(z) * _tanh_d(z)


# --- identity -------------------------------------------------------------------------------------
def _identity(z: Array) -> Array:
    return z


def _ones(z: Array) -> Array:
    return np.ones_like(z, dtype=np.float64)


# jax.nn.relu's derivative at 0 is 0, like ours; jax.nn.sigmoid and jnp.tanh are the jax originals.
ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", _relu, _relu_d, _zeros, curved=False,
                       jnp=lambda jax: jax.nn.relu, engine=primitives.relu),
    "sigmoid": Activation("sigmoid", _sigmoid, _sigmoid_d, _sigmoid_d2, curved=True,
                          jnp=lambda jax: jax.nn.sigmoid, engine=primitives.sigmoid),
    "tanh": Activation("tanh", np.tanh, _tanh_d, _tanh_d2, curved=True,
                       jnp=lambda jax: jax.numpy.tanh, engine=primitives.tanh),
    "identity": Activation("identity", _identity, _ones, _zeros, curved=False,
                           jnp=lambda jax: _identity, engine=_identity),
}


def get_activation(activation: str | Activation) -> Activation:
    """The registered Activation for a name (an Activation passes through)."""
    if isinstance(activation, Activation):
        return activation
    try:
        return ACTIVATIONS[activation]
    except (KeyError, TypeError):
        raise UnknownNameError(
            f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}"
        ) from None


def sigma(activation: str, z: Array) -> Array:
    """a = sigma(z), elementwise."""
    return get_activation(activation).sigma(np.asarray(z, dtype=np.float64))


def dsigma(activation: str, z: Array) -> Array:
    """sigma'(z), elementwise."""
    return get_activation(activation).dsigma(np.asarray(z, dtype=np.float64))


def d2sigma(activation: str, z: Array) -> Array:
    """sigma''(z), elementwise (0 for relu and identity, also at relu's kink)."""
    return get_activation(activation).d2sigma(np.asarray(z, dtype=np.float64))
