"""Signal-propagation theory the studies measure against (independent of testbed.nn).

Two theories of how variances travel through a deep network with W[k] of shape (n[k], n[k-1]):

1. The linear-layer formula (docs/theory.md; Glorot & Bengio 2010), chained. For o = W x with
   independent zero-mean terms,
   Var(o) = n_in Var(w) Var(x); chained through the layers as if every activation were linear
   (Glorot's "linear regime", sigma'(0) = 1):

       Var(z[k])       = Var(x) * prod_{l<=k} n[l-1] Var(w[l])
       Var(dJ/dz[k])   = Var(dJ/dz[r]) * prod_{l>k} n[l] Var(w[l])

2. The mean-field recursion (Poole et al. 2016; Schoenholz et al. 2017). With sigma_w2[k] =
   n[k-1] Var(w[k]) and biases N(0, sigma_b2), the pre-activations of a wide layer are Gaussian with
   variance q^k:

       q^1 = sigma_w2[1] E[x^2] + sigma_b2,
       q^k = sigma_w2[k] E_{g~N(0,1)}[phi(sqrt(q^{k-1}) g)^2] + sigma_b2,
       chi_1(q) = sigma_w2 E[phi'(sqrt(q) g)^2],

   and (assuming the back-propagated error is independent of the forward weights)
   E[(dJ/dz[k])^2] = n[k+1] Var(w[k+1]) E[phi'(sqrt(q^k) g)^2] E[(dJ/dz[k+1])^2], which is chi_1 per
   layer when widths are equal. Note E[phi^2], not Var(phi): sigmoid has mean 1/2, and that mean is
   carried to the next layer.

Gaussian expectations use Gauss-Hermite quadrature (probabilists' weights exp(-g^2/2)) with an even
number of nodes, so no node sits on relu's kink at 0 and E[relu'(g)^2] = 1/2 exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Array = np.ndarray

GH_NODES = 200


def _gauss_hermite(n: int) -> tuple[Array, Array]:
    g, w = np.polynomial.hermite_e.hermegauss(n)
    return g, w / w.sum()  # weights of N(0, 1): they sum to 1


_G, _WG = _gauss_hermite(GH_NODES)


def _sigmoid(z: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # the tanh form never overflows


# phi and phi' of each activation, written here so the theory does not lean on the code it checks.
PHI: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "identity": (lambda z: z, np.ones_like),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
}


def gauss_expect(f: Callable[[Array], Array], q: float) -> float:
    """E_{g~N(0,1)}[f(sqrt(q) g)] by Gauss-Hermite quadrature (exact for polynomials up to 399).

    q = 0 is read as the limit q -> 0+ (relu'(0+ g) is 1 for g > 0, not relu'(0) = 0).
    """
    return float(_WG @ f(np.sqrt(max(q, 1e-300)) * _G))


def moments(activation: str, q: float) -> dict[str, float]:
    """For z ~ N(0, q): E[phi], E[phi^2], Var(phi) and E[phi'^2]."""
    phi, dphi = PHI[activation]
    m1 = gauss_expect(phi, q)
    m2 = gauss_expect(lambda z: phi(z) ** 2, q)
    return {"mean": m1, "second": m2, "var": m2 - m1 * m1,
            "dphi2": gauss_expect(lambda z: dphi(z) ** 2, q)}


def forward_q(activation: str, sigma_w2: Sequence[float], sigma_b2: float = 0.0,
              x_second_moment: float = 1.0) -> Array:
    """q^1..q^L for layers whose sigma_w2[k-1] = n[k-1] Var(w[k]) (the first layer sees x).

    Returns an array of length L = len(sigma_w2): q^k, the predicted Var(z[k]).
    """
    q = np.empty(len(sigma_w2))
    prev_second = x_second_moment  # E[a[0]^2] = E[x^2]: the input is not an activation
    for k, s in enumerate(sigma_w2):
        q[k] = s * prev_second + sigma_b2
        prev_second = moments(activation, q[k])["second"]
    return q


def chi1(activation: str, sigma_w2: float, q: float) -> float:
    """chi_1(q) = sigma_w2 E[phi'(sqrt(q) g)^2]: the factor E(dJ/dz)^2 gains per layer backwards."""
    return sigma_w2 * moments(activation, q)["dphi2"]


def fixed_point(activation: str, sigma_w2: float, sigma_b2: float = 0.0, q0: float = 1.0,
                iterations: int = 2000, tol: float = 1e-13) -> float:
    """q* = sigma_w2 E[phi(sqrt(q*) g)^2] + sigma_b2 by iterating the map from q0.

    Where the map has no finite fixed point (relu or identity with sigma_w2 > 1 and no bias) it
    returns inf; with sigma_w2 < 1 it returns the attracting one (0 for tanh without bias).
    """
    q = q0
    for _ in range(iterations):
        q_new = sigma_w2 * moments(activation, q)["second"] + sigma_b2
        if not np.isfinite(q_new) or q_new > 1e100:
            return float("inf")
        if abs(q_new - q) <= tol * max(1.0, q):
            return float(q_new)
        q = q_new
    return float(q)


def backward_second_moment(activation: str, q: Array, fan_out_var: Sequence[float],
                           top: float) -> Array:
    """E[(dJ/dz[k])^2] for k = 1..r, from E[(dJ/dz[r])^2] = top going down.

    `q` holds q^1..q^L (forward); fan_out_var[k-1] = n[k] Var(w[k]) for k = 1..L (the last entry is
    unused). Layer L is linear (tau = z[L]); for k < L the factor is n[k+1] Var(w[k+1]) E[phi'^2] at
    q^k: the layer's own q^k, not q*.
    """
    L = len(q)
    out = np.empty(L)
    out[L - 1] = top
    for k in range(L - 2, -1, -1):
        out[k] = fan_out_var[k + 1] * moments(activation, q[k])["dphi2"] * out[k + 1]
    return out


def chained_forward(fan_in_var: Sequence[float], var_x: float = 1.0) -> Array:
    """Chained forward: Var(z[k]) = Var(x) prod_{l<=k} n[l-1] Var(w[l]) (activations taken as linear)."""
    return var_x * np.cumprod(np.asarray(fan_in_var, dtype=float))


def chained_backward(fan_out_var: Sequence[float], top: float) -> Array:
    """Chained backward: Var(dJ/dz[k]) = Var(dJ/dz[r]) prod_{l>k} n[l] Var(w[l])."""
    f = np.asarray(fan_out_var, dtype=float)
    # suffix products of f[k+1:] for k = 0..L-1 (empty product 1 at the top layer)
    suffix = np.append(np.cumprod(f[:0:-1])[::-1], 1.0)
    return top * suffix


def one_layer_spread(n: int, m: int, B: int) -> float:
    """Relative std of the measured Var(o) = mean(o^2) over an m x B output of o = W x.

    Gaussian W (n inputs, m outputs) and x ~ N(0, 1) with B examples:
    Var[mean o^2] / (n Var(w))^2 = 2/(n m) + 2(n + m + 1)/(n m B). (The +1
    is the exact Gaussian fourth-moment term and changes nothing at these sizes.)
    """
    return float(np.sqrt(2.0 / (n * m) + 2.0 * (n + m + 1) / (n * m * B)))
