"""The engine twin: the network traced into testbed's circuit engine, a third, independent
implementation (beside the numpy one and the jax.numpy twin).

J(theta) is written with scalar operations only (Python loops over units and examples), so the
engine sees the notes' circuit of +, *, the activation and the square, and differentiates it by its
own rules. theta is `ravel_params(net)`. Meant for tiny networks: the circuit has about
2 m n_params + m sum_k n[k] nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from testbed.circuit import trace

from ._inputs import as_input, as_target
from .activations import get_activation
from .network import Network, ravel_params, unravel_params


def loss_of_theta(net: Network, x: np.ndarray, y: np.ndarray) -> Callable[[Sequence], object]:
    """f(theta) = J for the network's sizes and activation at fixed data, with scalar operations.

    theta may be any sequence of numbers or engine tracers; the returned value is a tracer then.
    """
    x2, single = as_input(net, x)
    y2 = as_target(net, y, x2.shape[0], single)
    sizes = net.sizes
    sigma = get_activation(net.activation).engine
    r, m = net.depth, x2.shape[0]
    xs = x2.tolist()
    ys = y2.tolist()

    def f(theta: Sequence) -> object:
        W, b = unravel_params(np.arange(len(theta)), sizes)  # index arrays into theta
        total = 0.0
        for i in range(m):
            a = xs[i]
            for k in range(1, r + 1):
                Wk, bk = W[k], b[k]
                z = []
                for u in range(sizes[k]):
                    s = theta[int(bk[u])]
                    for j in range(sizes[k - 1]):
                        s = s + theta[int(Wk[u, j])] * a[j]
                    z.append(s)
                a = [sigma(zu) for zu in z] if k < r else z
            for u in range(sizes[r]):
                d = ys[i][u] - a[u]
                total = total + 0.5 * (d * d)
        return total * (1.0 / m)

    return f


def trace_loss(net: Network, x: np.ndarray, y: np.ndarray) -> tuple[object, np.ndarray]:
    """(circuit of J(theta), theta at the network's parameters) via `testbed.trace`."""
    theta = ravel_params(net)
    return trace(loss_of_theta(net, x, y), theta.size), theta
