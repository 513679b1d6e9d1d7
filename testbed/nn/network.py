"""The lecture notes' deep network: parameters W[k], b[k] for k = 1..r and one hidden activation.

    z[k] = W[k] a[k-1] + b[k],   a[k] = sigma(z[k])  (k < r),   tau = z[r]  (linear output),
    a[0] = x,  W[k] of shape (n[k], n[k-1]),  b[k] of shape (n[k],).

One indexing for every per-layer list in testbed.nn: the notes' k. A list of something per layer
k = 1..r has length r + 1 and an unused slot 0 holding None, so that X[k] is the notes' X[k]:

    net.W = [None, W[1], ..., W[r]],   net.b = [None, b[1], ..., b[r]]

and so for a direction (VW, Vb), for Grads.dW, Grads.db, RPass.HW, RPass.Hb and what `unflatten`
returns. Lists of quantities that exist at layer 0 use slot 0 for it: Cache.a[0] = x and
Grads.da[0] = dJ/dx (Cache.z[0] and Grads.dz[0] are None, as there is no z[0]). Iterate over the
layers with `for k in net.layers` (k = 1..r) or over `net.W[1:]`. A list that is not in this layout
(an array in slot 0, as in the old 0-based layout where list[k-1] was layer k, or None in a slot
k >= 1) is refused with NetworkLayoutError, which names the list and the slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._checks import is_int
from .activations import get_activation
from .errors import NetworkError, NetworkLayoutError, NetworkNonFiniteError, NetworkShapeError
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


def check_layout(items: object, name: str, what: str = "an array") -> list:
    """items as a list in the per-layer layout [None, X[1], ..., X[r]] (module docstring).

    Raises NetworkError unless items is a list or tuple, and NetworkLayoutError when its slot 0 is
    not None (the old 0-based layout, most likely) or a slot k >= 1 is None. `what` describes one
    entry for the message ("an array shaped like W[k]").
    """
    if isinstance(items, np.ndarray | str | bytes) or not isinstance(items, Sequence):
        raise NetworkError(f"{name} must be a list [None, {name}[1], ..., {name}[r]] with {what} "
                           f"per layer k = 1..r, got {type(items).__name__}")
    items = list(items)
    if items and items[0] is not None:
        got = (f"an array of shape {np.shape(items[0])}" if isinstance(items[0], np.ndarray | list)
               else f"a {type(items[0]).__name__}")
        raise NetworkLayoutError(
            f"{name}[0] holds {got}, but slot 0 is unused: testbed.nn indexes layers as the notes "
            f"do, {name}[k] for k = 1..r, so {name} must be [None, {name}[1], ..., {name}[r]] "
            f"(a list of r + 1). A list of {len(items)} without the None slot 0 is the old 0-based "
            f"layout, where {name}[k-1] was layer k: pass [None, *{name}]"
        )
    for k in range(1, len(items)):
        if items[k] is None:
            raise NetworkLayoutError(f"{name}[{k}] is None, but only slot 0 is unused: {name}[{k}] "
                                     f"must be {what} for layer k={k}")
    return items


@dataclass(eq=False)
class Network:
    """A deep network in the notes' notation (see the module docstring).

    Attributes:
        W: [None, W[1], ..., W[r]]: W[k] is the notes' W[k], shape (n[k], n[k-1]); W[0] is None.
        b: [None, b[1], ..., b[r]]: b[k] is the notes' b[k], shape (n[k],); b[0] is None.
        activation: the hidden layers' sigma ("relu", "sigmoid", "tanh", "identity"); the output
            layer is linear, tau = z[r].

    The arrays are converted to float64 (without a copy when they already are) and validated:
    shapes must chain and every entry must be finite. Functions in testbed.nn never modify them.
    W and b in the old 0-based layout (no None in slot 0) raise NetworkLayoutError. `layers` is
    range(1, r + 1), the indices k of W[k] and b[k].
    """

    W: list[Array | None]
    b: list[Array | None]
    activation: str = "relu"

    def __post_init__(self) -> None:
        get_activation(self.activation)  # UnknownNameError for an unknown name
        if isinstance(self.W, np.ndarray) or isinstance(self.b, np.ndarray):
            raise NetworkError("W and b must be lists [None, W[1], ..., W[r]] and "
                               "[None, b[1], ..., b[r]] of arrays, one per layer k = 1..r")
        if len(self.W) == 0 or list(self.W) == [None]:
            raise NetworkShapeError("empty network: W and b must hold at least one layer (r >= 1): "
                                    "W = [None, W[1], ..., W[r]]")
        W = check_layout(self.W, "W", "a matrix (n[k], n[k-1])")
        b = check_layout(self.b, "b", "a vector (n[k],)")
        if len(W) != len(b):
            raise NetworkShapeError(
                f"W has {len(W) - 1} layers but b has {len(b) - 1}: one W[k] and one b[k] per "
                f"layer k = 1..r, W = [None, W[1], ..., W[r]] and b = [None, b[1], ..., b[r]]"
            )
        for k in range(1, len(W)):
            Wk = as_float(W[k], f"W[{k}]", f"(n[{k}], n[{k - 1}])")
            bk = as_float(b[k], f"b[{k}]", f"(n[{k}],)")
            if Wk.ndim != 2 or min(Wk.shape) < 1:
                raise NetworkShapeError(
                    f"layer k={k}: W[{k}] must be a non-empty matrix (n[{k}], n[{k - 1}]), "
                    f"got shape {Wk.shape}"
                )
            if k > 1 and Wk.shape[1] != W[k - 1].shape[0]:
                raise NetworkShapeError(
                    f"layer k={k}: W[{k}] has shape {Wk.shape}, so it expects n[{k - 1}]="
                    f"{Wk.shape[1]} inputs, but W[{k - 1}] has shape {W[k - 1].shape}, so "
                    f"a[{k - 1}] has n[{k - 1}]={W[k - 1].shape[0]} units; W[{k}] must be "
                    f"({Wk.shape[0]}, {W[k - 1].shape[0]})"
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
            W[k], b[k] = Wk, bk
        self.W, self.b = W, b

    @classmethod
    def _trusted(cls, W: list[Array | None], b: list[Array | None], activation: str) -> Network:
        """Build without validation: for parameters produced by testbed.nn itself (SGD updates),
        in the layout [None, W[1], ..., W[r]]."""
        net = cls.__new__(cls)
        net.W, net.b, net.activation = W, b, activation
        return net

    @property
    def sizes(self) -> tuple[int, ...]:
        """(n[0], n[1], ..., n[r])."""
        return (self.W[1].shape[1],) + tuple(self.W[k].shape[0] for k in self.layers)

    @property
    def depth(self) -> int:
        """r, the number of layers with parameters (hidden layers + the output layer)."""
        return len(self.W) - 1

    @property
    def layers(self) -> range:
        """range(1, r + 1): the layer indices k of W[k], b[k], Grads.dW[k], ... (slot 0 unused)."""
        return range(1, len(self.W))

    @property
    def n_params(self) -> int:
        """l = sum_k n[k] (n[k-1] + 1)."""
        return sum(self.W[k].size + self.b[k].size for k in self.layers)

    def copy(self) -> Network:
        """A deep copy (new arrays)."""
        return Network._trusted([None] + [self.W[k].copy() for k in self.layers],
                                [None] + [self.b[k].copy() for k in self.layers], self.activation)

    def __repr__(self) -> str:
        with np.errstate(over="ignore"):  # rms of a huge W[k] shows as inf, without a warning
            return self._describe()

    def _describe(self) -> str:
        layers = ", ".join(
            f"W[{k}]{self.W[k].shape} rms={np.sqrt(np.mean(self.W[k] * self.W[k])):.3g} "
            f"|b[{k}]|={np.linalg.norm(self.b[k]):.3g}"
            for k in self.layers
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
        if not is_int(n):
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
    W: list[Array | None] = [None]
    b: list[Array | None] = [None]
    for k in range(1, len(sizes)):
        W.append(fn(sizes[k], sizes[k - 1], rng, **init_kwargs))
        bk = np.full(sizes[k], bias_value)
        if bias_std > 0:
            bk = bk + rng.normal(0.0, bias_std, size=sizes[k])
        b.append(bk)
    return Network(W, b, activation)


def ravel_params(net: Network) -> Array:
    """theta = (W[1] row by row, b[1], W[2] row by row, b[2], ..., b[r]): one vector of length l."""
    return np.concatenate([piece.ravel() for k in net.layers for piece in (net.W[k], net.b[k])])


def unravel_params(theta: Array, sizes: Sequence[int]) -> tuple[list[Array | None],
                                                                 list[Array | None]]:
    """The inverse of `ravel_params`: (W list, b list) for a network with these sizes, in the
    layout [None, W[1], ..., W[r]] and [None, b[1], ..., b[r]]."""
    theta = np.asarray(theta, dtype=np.float64)
    expected = sum(sizes[k] * (sizes[k - 1] + 1) for k in range(1, len(sizes)))
    if theta.shape != (expected,):
        raise NetworkShapeError(
            f"theta has shape {theta.shape} but sizes {list(sizes)} need ({expected},)"
        )
    return split_params(theta, sizes)


def split_params(theta: object, sizes: Sequence[int]) -> tuple[list, list]:
    """theta = [W[1].ravel(), b[1], W[2].ravel(), b[2], ...] cut into (W list, b list), unchecked.

    The lists are [None, W[1], ..., W[r]] and [None, b[1], ..., b[r]]. Only slicing and
    `reshape`, so that it runs on numpy and jax.numpy arrays (and jax tracers) alike: the one
    statement of the layout, shared by `unravel_params` and the jax twin.
    """
    W: list = [None]
    b: list = [None]
    pos = 0
    for k in range(1, len(sizes)):
        n_out, n_in = sizes[k], sizes[k - 1]
        W.append(theta[pos:pos + n_out * n_in].reshape(n_out, n_in))
        pos += n_out * n_in
        b.append(theta[pos:pos + n_out])
        pos += n_out
    return W, b
