"""The network's curvature as LinearOperators over theta = (W[1] row by row, b[1], ..., W[r], b[r]).

    H = d^2 J / d theta^2,     J = (1/m) sum_i 1/2 ||y_i - tau_i||^2,
    H = G + (1/m) sum_i sum_o (tau_io - y_io) d^2 tau_io / d theta^2,
    G = (1/m) sum_i J_i^T J_i,  J_i = d tau_i / d theta  (n[r] x l),

G being the Gauss-Newton matrix: positive semi-definite, of rank at most m n[r], equal to H where
the residuals tau - y vanish. `hessian_operator`'s product is Pearlmutter's R-pass
(`testbed.nn.hvp`); `gauss_newton_operator`'s is Schraudolph's (2002) G v: the R-forward pass gives
R{tau_i} = J_i v, and one backward pass with dJ/dtau_i replaced by R{tau_i} / m gives
(1/m) sum_i J_i^T J_i v (Lemmas 1 and 2 applied to that seed, with no second-order term). Both feed
the algorithms of `testbed.curvature` (Lanczos, Hutch++, stochastic Lanczos quadrature).

Both operators are snapshots, the rule of `testbed.curvature`: building one copies the network's
weights and biases, x and y, so that changing any of them in place afterwards (net.W[1][...] = ...,
x[...] = ...) changes none of its products: H v and G v stay the products at the parameters and
data of build time. To follow new weights, build a new operator.
"""

from __future__ import annotations

import numpy as np

from ..curvature import LinearOperator, symmetric_operator
from ._inputs import as_input, as_target
from .activations import get_activation
from .backprop import forward
from .errors import NetworkError, NetworkShapeError
from .network import Network, check_layout, ravel_params, unravel_params
from .rop import hvp

Array = np.ndarray


def flatten(params: Network | tuple[list[Array], list[Array]]) -> Array:
    """theta = (W[1].ravel(), b[1], W[2].ravel(), b[2], ...), row-major: one vector of length l.

    `params` is a Network or a pair (W list, b list) shaped like one (e.g. an HVP's (HW, Hb)),
    in the layout [None, W[1], ..., W[r]] (NetworkLayoutError without the None slot 0).
    """
    if isinstance(params, Network):
        return ravel_params(params)
    if not (isinstance(params, tuple | list) and len(params) == 2):
        raise NetworkError("flatten takes a Network or a pair (W list, b list), each "
                           "[None, X[1], ..., X[r]]")
    W = check_layout(params[0], "W", "an array shaped like W[k]")
    b = check_layout(params[1], "b", "an array shaped like b[k]")
    if len(W) != len(b):
        raise NetworkShapeError(f"flatten: the W list has {len(W) - 1} layers but the b list "
                                f"has {len(b) - 1}")
    return ravel_params(Network._trusted(W, b, "identity"))


def unflatten(theta: Array, net: Network) -> tuple[list[Array | None], list[Array | None]]:
    """The inverse of `flatten`: (W list, b list) shaped like net's parameters (views of theta),
    [None, W[1], ..., W[r]] and [None, b[1], ..., b[r]]."""
    return unravel_params(theta, net.sizes)


def _snapshot(net: Network, x: Array, y: Array) -> tuple[Network, Array, Array]:
    """Copies of net, x (as (m, n[0])) and y (as (m, n[r])), validated: what an operator is built at."""
    if not isinstance(net, Network):
        raise TypeError(f"net must be a testbed.nn.Network, got {type(net)}")
    x2, single = as_input(net, x)
    y2 = as_target(net, y, x2.shape[0], single)
    # as_input and as_target return views of the caller's arrays when they can: copy them
    return net.copy(), x2.copy(), y2.copy()


def hessian_operator(net: Network, x: Array, y: Array) -> LinearOperator:
    """H = d^2 J / d theta^2 at (x, y) as an l x l LinearOperator over `flatten`'s order.

    H v = flatten(hvp(net, x, y, unflatten(v, net))): one R-pass (Pearlmutter 1994), exact up to
    rounding, at most 8/3 of a gradient's matmuls. A snapshot: net, x and y are copied here, so
    that the operator stays the Hessian at the parameters and data it was built at.
    """
    net, x2, y2 = _snapshot(net, x, y)

    def matvec(v: Array) -> Array:
        return flatten(hvp(net, x2, y2, unflatten(v, net)))

    return symmetric_operator(net.n_params, matvec)


def gauss_newton_operator(net: Network, x: Array, y: Array) -> LinearOperator:
    """G = (1/m) sum_i J_i^T J_i, J_i = d tau_i / d theta, as an l x l LinearOperator (Schraudolph 2002).

    G v in two passes, no Hessian term:
        R-forward (k = 1..r):  R{z[k]} = V_W[k] a[k-1] + W[k] R{a[k-1]} + V_b[k],
                               R{a[k]} = sigma'(z[k]) * R{z[k]},  R{a[0]} = 0,  so R{tau} = J v;
        backward (k = r..1):   d[r] = R{tau} / m,  G_W[k] = d[k]^T a[k-1],  G_b[k] = sum_i d[k]_i,
                               d[k-1] = sigma'(z[k-1]) * (d[k] W[k]).
    u^T G u = (1/m) sum_i ||J_i u||^2 >= 0: positive semi-definite by construction, with rank at most
    m n[r]. `y` enters only through the check of its shape (G does not depend on the targets).
    A snapshot: net and x are copied here (and the forward pass run on the copies), so that the
    operator stays G at the parameters and data it was built at.
    """
    net, x2, _ = _snapshot(net, x, y)
    act = get_activation(net.activation)
    cache = forward(net, x2)
    r, m = net.depth, x2.shape[0]
    dsig = [None] + [act.dsigma(cache.z[k]) for k in range(1, r)]

    def matvec(v: Array) -> Array:
        VW, Vb = unflatten(v, net)
        Ra = None  # R{a[0]} = 0
        for k in range(1, r + 1):
            Rz = cache.a[k - 1] @ VW[k].T + Vb[k]
            if Ra is not None:
                Rz += Ra @ net.W[k].T
            Ra = dsig[k] * Rz if k < r else Rz
        d = Ra / m
        GW: list[Array | None] = [None] * (r + 1)  # GW[k] is the W[k]-block, slot 0 unused
        Gb: list[Array | None] = [None] * (r + 1)
        for k in range(r, 0, -1):
            GW[k] = d.T @ cache.a[k - 1]
            Gb[k] = d.sum(axis=0)
            if k > 1:
                d = (d @ net.W[k]) * dsig[k - 1]
        return flatten((GW, Gb))

    return symmetric_operator(net.n_params, matvec)
