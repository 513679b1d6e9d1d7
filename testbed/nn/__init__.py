"""testbed.nn: the lecture notes' deep network, its three lemmas, backprop and Pearlmutter's R-pass.

    z[k] = W[k] a[k-1] + b[k],  a[k] = sigma(z[k]) (k < r),  tau = z[r],  J = 1/2 ||y - tau||^2

A batch holds one example per row and J is the mean over it. Every per-layer list is indexed by
the notes' k = 1..r, with an unused slot 0 holding None: net.W = [None, W[1], ..., W[r]], and
likewise net.b, Grads.dW, Grads.db, Grads.dz, the direction V = (VW, Vb), the HVP's (HW, Hb) and
`unflatten`'s lists; Cache.a[0] = x and Grads.da[0] = dJ/dx are the layer-0 quantities. Loop over
`net.layers` (range(1, r + 1)). Lists in the old 0-based layout raise NetworkLayoutError.
Quick start (a test runs it):

    import numpy as np
    import testbed.nn as nn
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(64, 3))               # 64 examples, one per row
    y = np.sin(x[:, 0]) * x[:, 1] + x[:, 2]            # a target per example (n[r] = 1)
    net = nn.init_network([3, 16, 16, 1], "tanh", "xavier_normal", rng)
    J, g = nn.value_and_grad(net, x, y)                # g.dW[k] = dJ/dW[k] for k = 1..r, g.dx = dJ/dx
    assert g.dW[0] is None and g.dW[1].shape == net.W[1].shape == (16, 3)   # slot 0 is unused
    V = nn.unflatten(np.ones(net.n_params), net)       # (VW, Vb) shaped like (net.W, net.b)
    HW, Hb = nn.hvp(net, x, y, V)                      # H V by Pearlmutter's R-operator: HW[k] ~ W[k]
    result = nn.train(net, x, y, lr=0.05, steps=300)   # full-batch gradient descent
    print(result.history.loss.iloc[[0, -1]])           # J falls from 0.74 to 0.03

The jax.numpy twin (`to_jax_loss`, `to_jax_forward`; `to_jax_flat` in flat theta) imports jax only
when called; the engine twin (`trace_loss`) writes J(theta) as a circuit of testbed's engine. The
R-pass reads beside the lemmas: `r_lemma1..3` are R{.} of Lemmas 1-3, and `r_pass`/`hvp` run them fused.
"""

from . import init
from .activations import ACTIVATIONS, Activation, d2sigma, dsigma, get_activation, sigma
from .backprop import Cache, Grads, backward, forward, loss, value_and_grad
from .curvature import flatten, gauss_newton_operator, hessian_operator, unflatten
from .draw import draw
from .engine_twin import trace_loss
from .errors import (
    NetworkError,
    NetworkLayoutError,
    NetworkNonFiniteError,
    NetworkShapeError,
    TrainingDivergedError,
    UnknownNameError,
)
from .init import INITIALISERS, variance
from .jax_twin import to_jax_flat, to_jax_forward, to_jax_loss
from .lemmas import lemma1, lemma2, lemma3, r_lemma1, r_lemma2, r_lemma3
from .network import Network, init_network, ravel_params, unravel_params
from .rop import RPass, hvp, hvp_x, r_pass
from .train import TrainResult, sgd_step, train

__all__ = [
    "ACTIVATIONS",
    "INITIALISERS",
    "Activation",
    "Cache",
    "Grads",
    "Network",
    "NetworkError",
    "NetworkLayoutError",
    "NetworkNonFiniteError",
    "NetworkShapeError",
    "RPass",
    "TrainResult",
    "TrainingDivergedError",
    "UnknownNameError",
    "backward",
    "d2sigma",
    "draw",
    "flatten",
    "dsigma",
    "forward",
    "gauss_newton_operator",
    "get_activation",
    "hessian_operator",
    "hvp",
    "hvp_x",
    "init",
    "init_network",
    "lemma1",
    "lemma2",
    "lemma3",
    "loss",
    "r_lemma1",
    "r_lemma2",
    "r_lemma3",
    "r_pass",
    "ravel_params",
    "sgd_step",
    "sigma",
    "to_jax_flat",
    "to_jax_forward",
    "to_jax_loss",
    "trace_loss",
    "train",
    "unflatten",
    "unravel_params",
    "value_and_grad",
    "variance",
]
