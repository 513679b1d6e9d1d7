"""The same network written in jax.numpy: the reference the tests, studies and benchmark compare with.

Conventions are those of testbed.nn exactly: examples in rows, z[k] = a[k-1] W[k]^T + b[k], the
hidden activation's jax.numpy twin from the activation table, a linear output, and
J = (1/m) sum_i 1/2 ||y_i - tau_i||^2. jax is imported when a twin is built, not with testbed.nn;
call `jax.config.update("jax_enable_x64", True)` before making arrays to compare in float64.
"""

from __future__ import annotations

from collections.abc import Callable

from .activations import get_activation
from .errors import NetworkShapeError
from .network import Network, check_layout, split_params


def _activation_name(net_or_activation: Network | str) -> str:
    if isinstance(net_or_activation, Network):
        return net_or_activation.activation
    return get_activation(net_or_activation).name


def to_jax_forward(net_or_activation: Network | str) -> Callable:
    """tau(W, b, x) in jax.numpy: W and b lists as in Network ([None, W[1], ..., W[r]]: jax.grad
    then returns its gradient in the same layout, slot 0 None), x of shape (m, n[0]); imports jax."""
    import jax  # here, not at the top: importing testbed.nn must not load jax

    sigma = get_activation(_activation_name(net_or_activation)).jnp(jax)

    def tau(W: list, b: list, x: jax.Array) -> jax.Array:
        W = check_layout(W, "W", "an array (n[k], n[k-1])")  # old 0-based lists are refused
        b = check_layout(b, "b", "an array (n[k],)")
        if len(W) != len(b) or len(W) < 2:
            raise NetworkShapeError(f"W and b must be [None, W[1], ..., W[r]] and "
                                    f"[None, b[1], ..., b[r]] with r >= 1, got lists of "
                                    f"{len(W)} and {len(b)}")
        r = len(W) - 1
        a = x
        for k in range(1, r + 1):
            z = a @ W[k].T + b[k]
            a = sigma(z) if k < r else z
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
