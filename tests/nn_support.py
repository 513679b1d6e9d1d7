"""Test helpers for testbed.nn: seeded problems, Hypothesis strategies, the R-pass by the lemmas.

Hypothesis draws the architecture (depth, widths, activation, batch) and a seed; the numbers come
from `np.random.default_rng(seed)`. Drawing the weights as continuous Gaussians rather than as
Hypothesis floats keeps every pre-activation away from relu's kink with probability 1: two correct
implementations that sum in different orders (numpy's BLAS, XLA) could otherwise land on different
sides of z = 0 and disagree for a reason that is not a bug. The kink itself is pinned by
`zero_init=True` cases, where z is exactly 0 in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

import testbed.nn as nn
from testbed.nn import ACTIVATIONS, Network

Array = np.ndarray


@dataclass(eq=False)
class Problem:
    """A network with a batch of data, a parameter direction V and an input direction vx.

    VW and Vb are in the Network's layout [None, VW[1], ..., VW[r]] (slot 0 unused).
    """

    net: Network
    x: Array
    y: Array
    VW: list[Array]
    Vb: list[Array]
    vx: Array
    seed: int
    recipe: str = ""

    def __repr__(self) -> str:
        # the call that rebuilds it, so a shrunk failing example can be pasted into an @example
        return f"{self.recipe}  # x{self.x.shape}, y{self.y.shape}, {self.net!r}"


def chain(activation: str, weights: list[float], biases: list[float] | None = None) -> Network:
    """A chain of 1-unit layers z[k] = w_k a[k-1] + b_k (zero biases unless given)."""
    biases = biases if biases is not None else [0.0] * len(weights)
    return Network([None] + [np.array([[w]]) for w in weights],
                   [None] + [np.array([b]) for b in biases], activation)


def make_problem(sizes: list[int], activation: str, m: int | None, seed: int,
                 gain: float = 1.0, bias_std: float = 0.5, zero_init: bool = False) -> Problem:
    """A seeded problem: W[k] ~ N(0, gain^2 / n[k-1]), b ~ N(0, bias_std^2), x, y, V, vx ~ N(0, 1).

    m = None gives one example (1-D x and y). The 1/n[k-1] scaling keeps pre-activations of order 1
    at every depth, so sigmoid and tanh are not saturated and relu units are not all dead.
    """
    rng = np.random.default_rng(seed)
    W, b, VW, Vb = [None], [None], [None], [None]  # indexed by the layer k, slot 0 unused
    for k in range(1, len(sizes)):
        shape = (sizes[k], sizes[k - 1])
        if zero_init:
            W.append(np.zeros(shape))
            b.append(np.zeros(sizes[k]))
        else:
            W.append(rng.normal(0.0, gain / np.sqrt(sizes[k - 1]), size=shape))
            b.append(rng.normal(0.0, bias_std, size=sizes[k]))
        VW.append(rng.normal(size=shape))
        Vb.append(rng.normal(size=sizes[k]))
    xshape = (sizes[0],) if m is None else (m, sizes[0])
    yshape = (sizes[-1],) if m is None else (m, sizes[-1])
    x = rng.normal(size=xshape)
    y = rng.normal(size=yshape)
    vx = rng.normal(size=xshape)
    recipe = (f"make_problem({list(sizes)}, {activation!r}, {m}, seed={seed}, gain={gain}, "
              f"bias_std={bias_std}, zero_init={zero_init})")
    return Problem(Network(W, b, activation), x, y, VW, Vb, vx, seed, recipe)


@st.composite
def architectures(draw: st.DrawFn, max_depth: int = 6, max_width: int = 16,
                  max_outputs: int = 3, min_depth: int = 1) -> list[int]:
    """sizes (n[0], ..., n[r]): r in min_depth..max_depth, n[k] in 1..max_width, n[r] in
    1..max_outputs."""
    r = draw(st.integers(min_depth, max_depth))
    widths = draw(st.lists(st.integers(1, max_width), min_size=r, max_size=r))
    return widths + [draw(st.integers(1, max_outputs))]


@st.composite
def problems(draw: st.DrawFn, max_depth: int = 6, max_width: int = 16, max_outputs: int = 3,
             max_batch: int = 8, single: bool = True, zero_init: bool = True) -> Problem:
    """A Problem over `architectures`, every activation, batch 1..max_batch or one 1-D example."""
    sizes = draw(architectures(max_depth, max_width, max_outputs))
    activation = draw(st.sampled_from(sorted(ACTIVATIONS)))
    batch = st.integers(1, max_batch)
    m = draw(st.one_of(st.none(), batch) if single else batch)
    seed = draw(st.integers(0, 2**32 - 1))
    gain = draw(st.sampled_from([0.5, 1.0, 1.5]))
    # one case in ten pins relu's kink: all-zero parameters make every z exactly 0
    zero = zero_init and draw(st.integers(0, 9)) == 0
    return make_problem(sizes, activation, m, seed, gain=gain, zero_init=zero)


def fewer_examples() -> settings:
    """Settings for secondary properties (plumbing, layouts): a quarter of the profile's examples,
    at least 50, so that the main properties keep the profile's full count within the time budget."""
    return settings(max_examples=max(50, settings.default.max_examples // 4))


def r_pass_by_lemmas(net: Network, x: Array, y: Array, VW: list[Array], Vb: list[Array],
                     vx: Array | None = None) -> tuple[list[Array], list[Array], Array, float]:
    """H (V, vx) written line by line with the public lemmas and R-lemmas (rop's docstring).

    The reference for the fused `nn.r_pass`: same equations, every quantity its own array. Batch
    form (x of shape (m, n[0])). Returns (R{dJ/dW[k]} list, R{dJ/db[k]} list, R{dJ/dx}, scale),
    the lists indexed by k with slot 0 None, like net.W:
    scale is the largest sum of |terms| over the entries of the R-lemma 1 sums,
    |R{dz}|^T |a| + |dz|^T |R{a}|, sum_i |R{dz}_i|, |R{dz}| |W| + |dz| |VW|, at every layer: the
    magnitude that the rounding of a sum is relative to, whatever the cancellation in its result.
    """
    act = nn.get_activation(net.activation)
    r = net.depth
    cache = nn.forward(net, x)
    a, z = cache.a, cache.z
    Ra: list = [vx] + [None] * r          # R{a[0]} = vx (None: 0)
    Rz: list = [None] * (r + 1)
    for k in range(1, r + 1):             # R-forward
        Rz[k] = a[k - 1] @ VW[k].T + Vb[k]
        if Ra[k - 1] is not None:
            Rz[k] = Rz[k] + Ra[k - 1] @ net.W[k].T
        Ra[k] = act.dsigma(z[k]) * Rz[k] if k < r else Rz[k]
    dz = nn.lemma3(np.asarray(y, dtype=float).reshape(cache.tau.shape), cache.tau)
    Rdz = nn.r_lemma3(Rz[r])
    HW: list = [None] * (r + 1)
    Hb: list = [None] * (r + 1)
    Rdx = None
    scale = 0.0
    for k in range(r, 0, -1):             # backward and R-backward
        _, _, da = nn.lemma1(dz, a[k - 1], net.W[k])
        HW[k], Hb[k], Rda = nn.r_lemma1(dz, Rdz, a[k - 1], Ra[k - 1], net.W[k], VW[k], k=k)
        absRa = np.zeros_like(a[k - 1]) if Ra[k - 1] is None else np.abs(Ra[k - 1])
        for terms in (np.abs(Rdz).T @ np.abs(a[k - 1]) + np.abs(dz).T @ absRa,
                      np.abs(Rdz).sum(axis=0),
                      np.abs(Rdz) @ np.abs(net.W[k]) + np.abs(dz) @ np.abs(VW[k])):
            scale = max(scale, float(terms.max()))
        if k == 1:
            Rdx = Rda
            break
        Rdz = nn.r_lemma2(da, Rda, z[k - 1], Rz[k - 1], act)
        dz = nn.lemma2(da, z[k - 1], act)
    return HW, Hb, Rdx, scale
