"""Hypothesis strategies for deep networks and their data (imports hypothesis: for tests).

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

from .activations import ACTIVATIONS
from .network import Network

Array = np.ndarray


@dataclass(eq=False)
class Problem:
    """A network with a batch of data, a parameter direction V and an input direction vx."""

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


def make_problem(sizes: list[int], activation: str, m: int | None, seed: int,
                 gain: float = 1.0, bias_std: float = 0.5, zero_init: bool = False) -> Problem:
    """A seeded problem: W[k] ~ N(0, gain^2 / n[k-1]), b ~ N(0, bias_std^2), x, y, V, vx ~ N(0, 1).

    m = None gives one example (1-D x and y). The 1/n[k-1] scaling keeps pre-activations of order 1
    at every depth, so sigmoid and tanh are not saturated and relu units are not all dead.
    """
    rng = np.random.default_rng(seed)
    W, b, VW, Vb = [], [], [], []
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


RTOL = 1e-10


def fewer_examples() -> settings:
    """Settings for secondary properties (plumbing, buffers): a quarter of the profile's examples,
    at least 50, so that the main properties keep the profile's full count within the time budget."""
    return settings(max_examples=max(50, settings.default.max_examples // 4))


def assert_close(ours: Array, ref: Array, what: str, rtol: float = RTOL,
                 atol: float = 0.0) -> None:
    """|ours - ref| <= rtol |ref| + max(rtol max|ref|, atol) elementwise; the message names `what`.

    The floor rtol * max|ref|: an entry that cancels to nearly 0 still carries the rounding error
    of the array's scale, so relative to itself it may exceed rtol without either side being wrong.
    `atol` is for callers that know the scale better than max|ref| does.
    """
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        raise AssertionError(f"{what}: shape {ours.shape} != reference {ref.shape}")
    err = np.abs(ours - ref)
    bound = rtol * np.abs(ref) + max(rtol * np.max(np.abs(ref), initial=0.0), atol)
    if not (err <= bound).all():
        i = np.unravel_index(np.argmax(err - bound), err.shape)
        raise AssertionError(
            f"{what}: max |ours - ref| = {err.max():.3g} exceeds rtol={rtol} (worst at {i}: "
            f"ours {ours[i]!r}, ref {ref[i]!r}; max |ref| = {np.max(np.abs(ref), initial=0):.3g})"
        )
