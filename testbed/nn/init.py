"""Weight initialisers: each draws W[k] of shape (n_out, n_in) = (n[k], n[k-1]) i.i.d.

Every initialiser is `f(n_out, n_in, rng, **kw) -> ndarray (n_out, n_in)`, takes an explicit
`numpy.random.Generator` (no global state), and states in its docstring the mean and the variance
Var(w) it targets; `variance(name, n_in, n_out, **kw)` and `mean(name, n_in, n_out, **kw)` return
those targets so that tests and studies compare against one formula.

Why the variance matters (lecture notes, "Xavier initialization"): for o_i = sum_j w_ij x_j with
independent zero-mean terms, Var(o) = n_in Var(w) Var(x). The normal ones are plain (untruncated)
Gaussians; the uniform ones U[-a, a] have Var = a^2 / 3.

Note the layout: the notes' W[k] is (n_out, n_in); JAX's initialisers assume (fan_in, fan_out).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import numpy as np

from .errors import NetworkError, UnknownNameError

Array = np.ndarray


def _check_dims(n_out: int, n_in: int) -> None:
    if int(n_out) < 1 or int(n_in) < 1:
        raise NetworkError(f"an initialiser needs n_out >= 1 and n_in >= 1, got ({n_out}, {n_in})")


def zeros(n_out: int, n_in: int, rng: np.random.Generator) -> Array:
    """W = 0. Mean 0, Var(w) = 0: every hidden unit of a layer stays identical under SGD."""
    _check_dims(n_out, n_in)
    return np.zeros((n_out, n_in), dtype=np.float64)


def constant(n_out: int, n_in: int, rng: np.random.Generator, *, c: float) -> Array:
    """W = c everywhere. Mean c, Var(w) = 0 (as symmetric as zeros: units never differentiate)."""
    _check_dims(n_out, n_in)
    return np.full((n_out, n_in), float(c), dtype=np.float64)


def normal(n_out: int, n_in: int, rng: np.random.Generator, *, std: float) -> Array:
    """w ~ N(0, std^2). Mean 0, Var(w) = std^2, whatever the fan-in."""
    _check_dims(n_out, n_in)
    return rng.normal(0.0, float(std), size=(n_out, n_in))


def scaled_normal(n_out: int, n_in: int, rng: np.random.Generator, *, sigma_w: float) -> Array:
    """w ~ N(0, sigma_w^2 / n_in), the mean-field parametrisation. Var(w) = sigma_w^2 / n_in.

    sigma_w^2 = 1 is lecun, sigma_w^2 = 2 is he_normal (relu's edge of chaos).
    """
    _check_dims(n_out, n_in)
    return rng.normal(0.0, float(sigma_w) / math.sqrt(n_in), size=(n_out, n_in))


def uniform(n_out: int, n_in: int, rng: np.random.Generator, *, a: float) -> Array:
    """w ~ U[-a, a]. Mean 0, Var(w) = a^2 / 3."""
    _check_dims(n_out, n_in)
    return rng.uniform(-float(a), float(a), size=(n_out, n_in))


def standard(n_out: int, n_in: int, rng: np.random.Generator) -> Array:
    """Glorot & Bengio's "standard" baseline w ~ U[-1/sqrt(n_in), 1/sqrt(n_in)].

    Mean 0, Var(w) = 1 / (3 n_in), so n_in Var(w) = 1/3 and activations shrink layer by layer.
    """
    _check_dims(n_out, n_in)
    bound = 1.0 / math.sqrt(n_in)
    return rng.uniform(-bound, bound, size=(n_out, n_in))


def lecun(n_out: int, n_in: int, rng: np.random.Generator) -> Array:
    """LeCun normal: w ~ N(0, 1/n_in). Mean 0, Var(w) = 1 / n_in (keeps Var(z) for linear units)."""
    _check_dims(n_out, n_in)
    return rng.normal(0.0, math.sqrt(1.0 / n_in), size=(n_out, n_in))


def xavier_normal(n_out: int, n_in: int, rng: np.random.Generator) -> Array:
    """Xavier/Glorot normal: w ~ N(0, 2/(n_in + n_out)). Mean 0, Var(w) = 2 / (n_in + n_out).

    The notes' heuristic 1/2 (n_in + n_out) Var(w) = 1: a compromise between keeping the forward
    variance (n_in Var(w) = 1) and the backward one (n_out Var(w) = 1).
    """
    _check_dims(n_out, n_in)
    return rng.normal(0.0, math.sqrt(2.0 / (n_in + n_out)), size=(n_out, n_in))


def xavier_uniform(n_out: int, n_in: int, rng: np.random.Generator) -> Array:
    """Xavier/Glorot uniform: w ~ U[-sqrt(6/(n_in+n_out)), +sqrt(6/(n_in+n_out))].

    Mean 0, Var(w) = 2 / (n_in + n_out).
    """
    _check_dims(n_out, n_in)
    bound = math.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-bound, bound, size=(n_out, n_in))


def he_normal(n_out: int, n_in: int, rng: np.random.Generator) -> Array:
    """He/Kaiming normal: w ~ N(0, 2/n_in). Mean 0, Var(w) = 2 / n_in.

    For relu E[relu(z)^2] = Var(z) / 2, so Var(w) = 2 / n_in keeps the forward variance.
    """
    _check_dims(n_out, n_in)
    return rng.normal(0.0, math.sqrt(2.0 / n_in), size=(n_out, n_in))


def he_uniform(n_out: int, n_in: int, rng: np.random.Generator) -> Array:
    """He/Kaiming uniform: w ~ U[-sqrt(6/n_in), +sqrt(6/n_in)]. Mean 0, Var(w) = 2 / n_in."""
    _check_dims(n_out, n_in)
    bound = math.sqrt(6.0 / n_in)
    return rng.uniform(-bound, bound, size=(n_out, n_in))


INITIALISERS: dict[str, Callable[..., Array]] = {
    "zeros": zeros,
    "constant": constant,
    "normal": normal,
    "scaled_normal": scaled_normal,
    "uniform": uniform,
    "standard": standard,
    "lecun": lecun,
    "xavier_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}

# The targets stated in the docstrings above, as formulas of (n_in, n_out, keyword arguments).
_VARIANCE: dict[str, Callable[..., float]] = {
    "zeros": lambda n_in, n_out: 0.0,
    "constant": lambda n_in, n_out, c: 0.0,
    "normal": lambda n_in, n_out, std: float(std) ** 2,
    "scaled_normal": lambda n_in, n_out, sigma_w: float(sigma_w) ** 2 / n_in,
    "uniform": lambda n_in, n_out, a: float(a) ** 2 / 3.0,
    "standard": lambda n_in, n_out: 1.0 / (3.0 * n_in),
    "lecun": lambda n_in, n_out: 1.0 / n_in,
    "xavier_normal": lambda n_in, n_out: 2.0 / (n_in + n_out),
    "xavier_uniform": lambda n_in, n_out: 2.0 / (n_in + n_out),
    "he_normal": lambda n_in, n_out: 2.0 / n_in,
    "he_uniform": lambda n_in, n_out: 2.0 / n_in,
}

# The distribution family of each (for the kurtosis a statistical test needs).
FAMILY: dict[str, str] = {
    "zeros": "point",
    "constant": "point",
    "normal": "normal",
    "scaled_normal": "normal",
    "uniform": "uniform",
    "standard": "uniform",
    "lecun": "normal",
    "xavier_normal": "normal",
    "xavier_uniform": "uniform",
    "he_normal": "normal",
    "he_uniform": "uniform",
}


def get_initialiser(name: str) -> Callable[..., Array]:
    """The registered initialiser for a name (UnknownNameError listing the known names if none)."""
    try:
        return INITIALISERS[name]
    except (KeyError, TypeError):
        raise UnknownNameError(
            f"unknown initialiser {name!r}; known: {sorted(INITIALISERS)}"
        ) from None


def check_kwargs(name: str, **kw: float) -> None:
    """NetworkError unless `kw` is exactly what initialiser `name` takes (e.g. normal's std)."""
    fn = get_initialiser(name)
    try:
        inspect.signature(fn).bind(1, 1, None, **kw)
    except TypeError as exc:
        takes = [p for p in inspect.signature(fn).parameters if p not in ("n_out", "n_in", "rng")]
        raise NetworkError(
            f"initialiser {name!r} takes keyword arguments {takes}, got {sorted(kw)}: {exc}"
        ) from None


def variance(name: str, n_in: int, n_out: int, **kw: float) -> float:
    """The Var(w) that initialiser `name` targets for a layer with fan-in n_in and fan-out n_out."""
    check_kwargs(name, **kw)
    return float(_VARIANCE[name](n_in, n_out, **kw))


def mean(name: str, n_in: int, n_out: int, **kw: float) -> float:
    """The E[w] that initialiser `name` targets: c for constant, 0 for every other."""
    check_kwargs(name, **kw)
    return float(kw["c"]) if name == "constant" else 0.0
