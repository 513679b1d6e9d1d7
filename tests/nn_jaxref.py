"""jax references for testbed.nn's tests: one compiled padded network for every small architecture.

Conventions are testbed.nn's (see testbed.nn.jax_twin); the activations' jax.numpy twins come from
the one activation table. Importing this module imports jax (the test suite's conftest has already
switched jax to float64).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from testbed.nn import ACTIVATIONS, Network

# --- one compiled reference for every small architecture ----------------------------------------
# jax compiles per shape, and an eager jax.grad of a new architecture costs seconds here, so a
# property test over hundreds of architectures cannot afford one compilation each. The reference
# below embeds any network with depth <= PAD_DEPTH, widths <= PAD_WIDTH and batch <= PAD_BATCH
# into fixed shapes, exactly: padded units have zero weights in and out, layers past the output
# are identity matrices with no activation, padded examples have weight 0 in the mean, and the
# activation is picked by an index. Adding the padding's exact zeros (and multiplying by 1) does not
# change any real entry, so the real block of its gradient is the gradient of the network itself.
PAD_DEPTH = 6
PAD_WIDTH = 16
PAD_BATCH = 8
_ORDER = tuple(ACTIVATIONS)  # every activation of the table, picked by index


def _padded_loss(W: list, b: list, x: jax.Array, y: jax.Array, weight: jax.Array,
                 hidden: jax.Array, act_index: jax.Array) -> jax.Array:
    branches = [ACTIVATIONS[name].jnp(jax) for name in _ORDER]
    a = x
    for k in range(PAD_DEPTH):
        z = a @ W[k].T + b[k]
        a = jnp.where(hidden[k], jax.lax.switch(act_index, branches, z), z)
    d = y - a
    return 0.5 * jnp.sum(weight[:, None] * (d * d))


def _padded_grad(W: list, b: list, x: jax.Array, y: jax.Array, weight: jax.Array,
                 hidden: jax.Array, act_index: jax.Array) -> tuple:
    return jax.value_and_grad(_padded_loss, argnums=(0, 1, 2))(W, b, x, y, weight, hidden,
                                                              act_index)


def _padded_hvp(W: list, b: list, x: jax.Array, y: jax.Array, weight: jax.Array,
                hidden: jax.Array, act_index: jax.Array, VW: list, Vb: list,
                vx: jax.Array) -> tuple:
    def grad_J(W: list, b: list, x: jax.Array) -> tuple:
        return jax.grad(_padded_loss, argnums=(0, 1, 2))(W, b, x, y, weight, hidden, act_index)

    return jax.jvp(grad_J, (W, b, x), (VW, Vb, vx))[1]


_padded_grad_jit = jax.jit(_padded_grad)
_padded_hvp_jit = jax.jit(_padded_hvp)


class PaddedReference:
    """jax.grad and jax.jvp(jax.grad) of a small network, through one compiled padded function.

    Build it from a Network and its data (x of shape (n[0],) or (m, n[0])); `value_and_grad()` and
    `hvp(VW, Vb, vx)` return numpy arrays with the Network's own shapes and layout: per-layer lists
    [None, X[1], ..., X[r]] indexed by k (VW, Vb are taken in that layout too). The padded lists
    passed to jax are 0-based internally: padded layer j is layer k = j + 1.
    """

    def __init__(self, net: Network, x: np.ndarray, y: np.ndarray):
        sizes = net.sizes
        r = net.depth
        x2 = np.atleast_2d(np.asarray(x, dtype=np.float64))
        m = x2.shape[0]
        if r > PAD_DEPTH or max(sizes) > PAD_WIDTH or m > PAD_BATCH:
            raise ValueError(f"PaddedReference holds depth <= {PAD_DEPTH}, widths <= {PAD_WIDTH}, "
                             f"batch <= {PAD_BATCH}; got sizes {list(sizes)}, m={m}")
        self.net, self.x_shape, self.m = net, np.shape(x), m
        self.W, self.b = self._pad_params(net.W, net.b, identity_tail=True)
        self.x = self._pad_rows(x2)
        self.y = self._pad_rows(np.asarray(y, dtype=np.float64).reshape(m, sizes[-1]))
        weight = np.zeros(PAD_BATCH)
        weight[:m] = 1.0 / m
        self.weight = weight
        self.hidden = np.arange(PAD_DEPTH) < r - 1
        self.act_index = _ORDER.index(net.activation)

    def _pad_params(self, W: list, b: list, identity_tail: bool) -> tuple[list, list]:
        assert W[0] is None and b[0] is None, "W and b in the Network's layout [None, W[1], ...]"
        Wp, bp = [], []
        for j in range(PAD_DEPTH):
            k = j + 1  # padded layer j is the network's layer k
            if k < len(W):
                Wk = np.zeros((PAD_WIDTH, PAD_WIDTH))
                Wk[:W[k].shape[0], :W[k].shape[1]] = W[k]
                bk = np.zeros(PAD_WIDTH)
                bk[:b[k].shape[0]] = b[k]
            else:  # past the output: identity layers for the parameters, zero for directions
                Wk = np.eye(PAD_WIDTH) if identity_tail else np.zeros((PAD_WIDTH, PAD_WIDTH))
                bk = np.zeros(PAD_WIDTH)
            Wp.append(Wk)
            bp.append(bk)
        return Wp, bp

    @staticmethod
    def _pad_rows(arr: np.ndarray) -> np.ndarray:
        out = np.zeros((PAD_BATCH, PAD_WIDTH))
        out[:arr.shape[0], :arr.shape[1]] = arr
        return out

    def _unpad(self, gW: list, gb: list) -> tuple[list, list]:
        shapes = {k: self.net.W[k].shape for k in self.net.layers}
        return ([None] + [np.asarray(gW[k - 1])[:s[0], :s[1]] for k, s in shapes.items()],
                [None] + [np.asarray(gb[k - 1])[:s[0]] for k, s in shapes.items()])

    def _unpad_x(self, gx: jax.Array) -> np.ndarray:
        return np.asarray(gx)[:self.m, :self.net.sizes[0]].reshape(self.x_shape)

    def value_and_grad(self) -> tuple[float, list, list, np.ndarray]:
        """(J, dJ/dW list, dJ/db list, dJ/dx); the lists [None, X[1], ..., X[r]]."""
        J, (gW, gb, gx) = _padded_grad_jit(self.W, self.b, self.x, self.y, self.weight,
                                           self.hidden, self.act_index)
        return (float(J), *self._unpad(gW, gb), self._unpad_x(gx))

    def hvp(self, VW: list, Vb: list,
            vx: np.ndarray | None = None) -> tuple[list, list, np.ndarray]:
        """H (V, vx) for J(W, b, x): (W-blocks, b-blocks, x-block)."""
        VWp, Vbp = self._pad_params(VW, Vb, identity_tail=False)
        vx2 = np.zeros(self.x.shape) if vx is None else self._pad_rows(np.atleast_2d(vx))
        hW, hb, hx = _padded_hvp_jit(self.W, self.b, self.x, self.y, self.weight, self.hidden,
                                     self.act_index, VWp, Vbp, vx2)
        return (*self._unpad(hW, hb), self._unpad_x(hx))
