"""The same network written in jax.numpy: the reference the tests, studies and benchmark compare with.

Conventions are those of testbed.nn exactly: examples in rows, z[k] = a[k-1] W[k]^T + b[k], the
hidden activation's jax.numpy twin from the activation table, a linear output, and
J = (1/m) sum_i 1/2 ||y_i - tau_i||^2. jax is imported when a twin is built, not with testbed.nn;
call `jax.config.update("jax_enable_x64", True)` before making arrays to compare in float64.
"""

from __future__ import annotations

from collections.abc import Callable

from .activations import get_activation
from .network import Network, split_params


def _activation_name(net_or_activation: Network | str) -> str:
    if isinstance(net_or_activation, Network):
        return net_or_activation.activation
    return get_activation(net_or_activation).name


def to_jax_forward(net_or_activation: Network | str) -> Callable:
    """tau(W, b, x) in jax.numpy: W and b lists as in Network, x of shape (m, n[0]); imports jax."""
    import jax  # here, not at the top: importing testbed.nn must not load jax

    sigma = get_activation(_activation_name(net_or_activation)).jnp(jax)

    def tau(W: list, b: list, x: jax.Array) -> jax.Array:
        a = x
        for k in range(1, len(W) + 1):
            z = a @ W[k - 1].T + b[k - 1]
            a = sigma(z) if k < len(W) else z
        return a

    return tau


def to_jax_loss(net_or_activation: Network | str) -> Callable:
    """J(W, b, x, y) in jax.numpy, x (m, n[0]) and y (m, n[r]): differentiate it with jax.grad."""
    import jax  # as in to_jax_forward

    tau_of = to_jax_forward(net_or_activation)

    def J(W: list, b: list, x: jax.Array, y: jax.Array) -> jax.Array:
        d = y - tau_of(W, b, x)
        return 0.5 * jax.numpy.sum(d * d) / x.shape[0]

    return J


def to_jax_flat(net: Network) -> tuple[Callable, Callable]:
    """(tau(theta, x), J(theta, x, y)) in jax.numpy, theta in `testbed.nn.flatten`'s order
    [W[1].ravel(), b[1], ..., W[r].ravel(), b[r]]: for jax.hessian / jax.jacobian in theta."""
    if not isinstance(net, Network):
        raise TypeError(f"to_jax_flat needs a testbed.nn.Network (for its sizes), got {type(net)}")
    tau_of, J_of = to_jax_forward(net), to_jax_loss(net)
    sizes = net.sizes

    def tau(theta: object, x: object) -> object:
        return tau_of(*split_params(theta, sizes), x)

    def J(theta: object, x: object, y: object) -> object:
        return J_of(*split_params(theta, sizes), x, y)

    return tau, J
