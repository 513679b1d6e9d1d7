"""The lecture notes' deep network: parameters W[k], b[k] for k = 1..r and one hidden activation.

    z[k] = W[k] a[k-1] + b[k],   a[k] = sigma(z[k])  (k < r),   tau = z[r]  (linear output),
    a[0] = x,  W[k] of shape (n[k], n[k-1]),  b[k] of shape (n[k],).

Python lists are 0-based, so the notes' W[k] is `net.W[k - 1]`; everywhere else (messages, Cache,
Grads) k means the notes' layer index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .activations import get_activation
from .errors import NetworkError, NetworkNonFiniteError, NetworkShapeError
from .init import check_kwargs, check_real, check_scale, get_initialiser

Array = np.ndarray


def _nonfinite_summary(arr: Array) -> str:
    """'3 non-finite entries, first nan at (0, 2)' for the error messages."""
    bad = ~np.isfinite(arr)
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    n = int(bad.sum())
    return f"{n} non-finite entr{'y' if n == 1 else 'ies'}, first {arr[first]} at {first}"


def as_float(value: object, what: str, shape: str = "") -> Array:
    """value as a float64 array; TypeError unless it holds real numbers (float or integer dtype).

    `shape` (e.g. "(m, 3)") is only for the message, which says what was expected.
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        want = f"a real float array{' of shape ' + shape if shape else ''}"
        why = " (bools are not numbers here: pass 1.0 * mask)" if arr.dtype.kind == "b" else ""
        raise TypeError(f"{what} must be {want}, got dtype {arr.dtype}{why}")
    return arr.astype(np.float64, copy=False)



@dataclass(eq=False)
class Network:
    """A deep network in the notes' notation (see the module docstring).

    Attributes:
        W: W[k-1] is the notes' W[k], shape (n[k], n[k-1]).
        b: b[k-1] is the notes' b[k], shape (n[k],).
        activation: the hidden layers' sigma ("relu", "sigmoid", "tanh", "identity"); the output
            layer is linear, tau = z[r].

    The arrays are converted to float64 (without a copy when they already are) and validated:
    shapes must chain and every entry must be finite. Functions in testbed.nn never modify them.
    """

    W: list[Array]
    b: list[Array]
    activation: str = "relu"

    def __post_init__(self) -> None:
        get_activation(self.activation)  # UnknownNameError for an unknown name
        if isinstance(self.W, np.ndarray) or isinstance(self.b, np.ndarray):
            raise NetworkError("W and b must be lists of arrays, one per layer k = 1..r")
        W = list(self.W)
        b = list(self.b)
        if len(W) == 0:
            raise NetworkShapeError("empty network: W and b must hold at least one layer (r >= 1)")
        if len(W) != len(b):
            raise NetworkShapeError(
                f"W has {len(W)} layers but b has {len(b)}: one W[k] and one b[k] per layer k"
            )
        for k in range(1, len(W) + 1):
            Wk = as_float(W[k - 1], f"W[{k}]", f"(n[{k}], n[{k - 1}])")
            bk = as_float(b[k - 1], f"b[{k}]", f"(n[{k}],)")
            if Wk.ndim != 2 or min(Wk.shape) < 1:
                raise NetworkShapeError(
                    f"layer k={k}: W[{k}] must be a non-empty matrix (n[{k}], n[{k - 1}]), "
                    f"got shape {Wk.shape}"
                )
            if k > 1 and Wk.shape[1] != W[k - 2].shape[0]:
                raise NetworkShapeError(
                    f"layer k={k}: W[{k}] has shape {Wk.shape}, so it expects n[{k - 1}]="
                    f"{Wk.shape[1]} inputs, but W[{k - 1}] has shape {W[k - 2].shape}, so "
                    f"a[{k - 1}] has n[{k - 1}]={W[k - 2].shape[0]} units; W[{k}] must be "
                    f"({Wk.shape[0]}, {W[k - 2].shape[0]})"
                )
            if bk.shape != (Wk.shape[0],):
                raise NetworkShapeError(
                    f"layer k={k}: b[{k}] has shape {bk.shape} but W[{k}] has shape {Wk.shape}, "
                    f"so b[{k}] must be ({Wk.shape[0]},)"
                )
            for name, arr in ((f"W[{k}]", Wk), (f"b[{k}]", bk)):
                if not np.isfinite(arr).all():
                    raise NetworkNonFiniteError(
                        f"layer k={k}: {name} (shape {arr.shape}) holds {_nonfinite_summary(arr)}"
                    )
            W[k - 1], b[k - 1] = Wk, bk
        self.W, self.b = W, b

    @classmethod
    def _trusted(cls, W: list[Array], b: list[Array], activation: str) -> Network:
        """Build without validation: for parameters produced by testbed.nn itself (SGD updates)."""
        net = cls.__new__(cls)
        net.W, net.b, net.activation = W, b, activation
        return net

    @property
    def sizes(self) -> tuple[int, ...]:
        """(n[0], n[1], ..., n[r])."""
        return (self.W[0].shape[1],) + tuple(Wk.shape[0] for Wk in self.W)

    @property
    def depth(self) -> int:
        """r, the number of layers with parameters (hidden layers + the output layer)."""
        return len(self.W)

    @property
    def n_params(self) -> int:
        """l = sum_k n[k] (n[k-1] + 1)."""
        return sum(Wk.size + bk.size for Wk, bk in zip(self.W, self.b, strict=True))

    def copy(self) -> Network:
        """A deep copy (new arrays)."""
        return Network._trusted([Wk.copy() for Wk in self.W], [bk.copy() for bk in self.b],
                                self.activation)

    def __repr__(self) -> str:
        with np.errstate(over="ignore"):  # rms of a huge W[k] shows as inf, without a warning
            return self._describe()

    def _describe(self) -> str:
        layers = ", ".join(
            f"W[{k}]{Wk.shape} rms={np.sqrt(np.mean(Wk * Wk)):.3g} "
            f"|b[{k}]|={np.linalg.norm(bk):.3g}"
            for k, (Wk, bk) in enumerate(zip(self.W, self.b, strict=True), start=1)
        )
        return (f"Network(activation={self.activation!r}, sizes={list(self.sizes)}, "
                f"n_params={self.n_params}; {layers})")


def init_network(sizes: Sequence[int], activation: str, init: str, rng: np.random.Generator,
                 **init_kwargs: float) -> Network:
    """A network with sizes (n[0], ..., n[r]): W[k] = init(n[k], n[k-1], rng, **init_kwargs).

    Biases are 0 unless `bias_std` (b ~ N(0, bias_std^2)) or `bias_value` (b = bias_value) is
    given; those two keywords are taken out before the rest goes to the initialiser. Layers are
    drawn in order k = 1..r from the one Generator, so a seed fixes the whole network.
    """
    bias_std = check_scale(init_kwargs.pop("bias_std", 0.0), "bias_std", "init_network")
    bias_value = check_real(init_kwargs.pop("bias_value", 0.0), "bias_value", "init_network")
    fn = get_initialiser(init)
    check_kwargs(init, **init_kwargs)
    get_activation(activation)
    if not isinstance(rng, np.random.Generator):
        raise NetworkError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng)}"
        )
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence | np.ndarray):
        raise TypeError(f"sizes must be a sequence of integers (n[0], ..., n[r]), got {sizes!r}")
    for k, n in enumerate(sizes):
        # a width is a count: 2.5 or True is a mistake to report, not a number to truncate
        if isinstance(n, bool | np.bool_) or not isinstance(n, int | np.integer):
            raise TypeError(f"layer k={k}: n[{k}] = {n!r} ({type(n).__name__}), but a width must "
                            f"be an integer >= 1")
    sizes = [int(n) for n in sizes]
    if len(sizes) < 2:
        raise NetworkShapeError(
            f"empty network: sizes must be (n[0], ..., n[r]) with r >= 1, got {sizes}"
        )
    for k, n in enumerate(sizes):
        if n < 1:
            raise NetworkShapeError(f"layer k={k}: n[{k}] = {n}, every layer needs >= 1 unit")
    W, b = [], []
    for k in range(1, len(sizes)):
        W.append(fn(sizes[k], sizes[k - 1], rng, **init_kwargs))
        bk = np.full(sizes[k], bias_value)
        if bias_std > 0:
            bk = bk + rng.normal(0.0, bias_std, size=sizes[k])
        b.append(bk)
    return Network(W, b, activation)


def ravel_params(net: Network) -> Array:
    """theta = (W[1] row by row, b[1], W[2] row by row, b[2], ..., b[r]): one vector of length l."""
    return np.concatenate([piece.ravel() for Wk, bk in zip(net.W, net.b, strict=True)
                           for piece in (Wk, bk)])


def unravel_params(theta: Array, sizes: Sequence[int]) -> tuple[list[Array], list[Array]]:
    """The inverse of `ravel_params`: (W list, b list) for a network with these sizes."""
    theta = np.asarray(theta, dtype=np.float64)
    expected = sum(sizes[k] * (sizes[k - 1] + 1) for k in range(1, len(sizes)))
    if theta.shape != (expected,):
        raise NetworkShapeError(
            f"theta has shape {theta.shape} but sizes {list(sizes)} need ({expected},)"
        )
    return split_params(theta, sizes)


def split_params(theta: object, sizes: Sequence[int]) -> tuple[list, list]:
    """theta = [W[1].ravel(), b[1], W[2].ravel(), b[2], ...] cut into (W list, b list), unchecked.

    Only slicing and `reshape`, so that it runs on numpy and jax.numpy arrays (and jax tracers)
    alike: the one statement of the layout, shared by `unravel_params` and the jax twin.
    """
    W, b, pos = [], [], 0
    for k in range(1, len(sizes)):
        n_out, n_in = sizes[k], sizes[k - 1]
        W.append(theta[pos:pos + n_out * n_in].reshape(n_out, n_in))
        pos += n_out * n_in
        b.append(theta[pos:pos + n_out])
        pos += n_out
    return W, b
