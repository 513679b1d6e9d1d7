"""Binomial checkpointing: the reverse sweep of a chain of n steps with s stored states.

Reverse mode needs every intermediate value of the forward pass: for a chain of n steps that is
n stored states, O(N) memory where the forward pass alone needs one. Griewank's binomial
checkpointing (Griewank 1992; Griewank & Walther, ACM TOMS 26 (2000), "Algorithm 799: revolve";
Evaluating Derivatives, 2nd ed., ch. 12) keeps s states instead and recomputes the others from
the nearest stored one, in the order that minimises the recomputation.

The schedule (`revolve(n, s)`) is a list of actions on states 0 .. n (state i is the input of
step i, state n the chain's output):
  ("advance", k)    run k steps forward from the current state (k forward steps)
  ("store", i)      keep the current state, state i, in a free snapshot
  ("restore", i)    make the stored state i the current one
  ("reverse", i)    run step i forward recording its intermediates and then backward (the
                    combined forward-and-reverse evaluation of step i), from the current state i
  ("free", i)       release the snapshot of state i
It starts with state 0 stored (the first of the s snapshots) and ends with every step reversed,
from step n - 1 down to 0.

Convention: the forward-step count excludes the one combined forward-and-reverse evaluation of each
step. With it, the minimum number of forward steps is

    F(n, s) = t n - C(s + t, t - 1),   t the least integer with C(s + t, s) >= n

(t is the repetition number: no step is advanced more than t times), which equals the recursion
F(1, s) = 0, F(n, 1) = n (n - 1) / 2, F(n, s) = min over 1 <= m < n of m + F(n - m, s - 1) +
F(m, s): advance m steps, store, reverse the last n - m with one snapshot fewer, restore, reverse
the first m. The schedule splits at an m that attains the minimum,

    max(n - C(s - 1 + t, t), C(s + t - 2, s)) <= m <= min(C(s + t - 1, s), n - C(s + t - 2, t - 1)),

(m steps advanced with the remaining n - m reversible in t repetitions by s - 1 snapshots, and
the first m in t - 1 by s), and its counts equal F(n, s) exactly (the tests check every
n <= 200, s <= 8 against both forms). The schedule is made by an explicit stack: no recursion.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np

from ._checks import check_int
from .errors import TestbedError


class CheckpointError(TestbedError):
    """A bad checkpointing request: n or s not a positive integer, or more than the circuit allows."""


def _count(value: object, name: str) -> int:
    value = check_int(value, name, expected="an int")  # TypeError
    if value < 1:
        raise CheckpointError(f"{name} must be >= 1, got {value}")
    return value


def repetitions(n: int, s: int) -> int:
    """t, the least integer with C(s + t, s) >= n: with s snapshots no step of an n-step chain
    need be advanced more than t times (and some must be, for n > C(s + t - 1, s))."""
    n, s = _count(n, "n"), _count(s, "s")
    t = 0
    while comb(s + t, s) < n:
        t += 1
    return t


def forward_steps(n: int, s: int) -> int:
    """F(n, s) = t n - C(s + t, t - 1): the fewest forward steps that reverse n steps with s
    snapshots (not counting the n combined forward-and-reverse evaluations)."""
    n, s = _count(n, "n"), _count(s, "s")
    if n == 1:
        return 0
    t = repetitions(n, s)
    return t * n - comb(s + t, t - 1)


@dataclass(frozen=True)
class Schedule:
    """A revolve schedule and what it costs.

    Attributes:
        n, s: steps and snapshots.
        actions: the actions, in order (see the module docstring).
        forward_steps: the steps advanced, F(n, s) (combined forward-and-reverse not included).
        reversals: n, one combined forward-and-reverse evaluation per step.
        max_snapshots: the most snapshots held at once (<= s; state 0's included).
        repetitions: t, the most times any step is advanced.
    """

    n: int
    s: int
    actions: tuple
    forward_steps: int
    reversals: int
    max_snapshots: int
    repetitions: int

    def __repr__(self) -> str:
        return (f"Schedule(n={self.n}, s={self.s}: {self.forward_steps} forward steps, "
                f"{self.reversals} reversals, <= {self.max_snapshots} snapshots, "
                f"t = {self.repetitions}, {len(self.actions)} actions)")


def _split(n: int, s: int) -> int:
    """An m attaining min over m of m + F(n - m, s - 1) + F(m, s) (s >= 2, n >= 2)."""
    t = repetitions(n, s)
    lo = max(1, n - comb(s - 1 + t, t), comb(s + t - 2, s) if t >= 2 else 1)
    return lo


def revolve(n: int, s: int) -> Schedule:
    """The optimal schedule for reversing a chain of n steps with s snapshots (see the module
    docstring for the actions and the convention of the counts).

    n and s must be ints >= 1 (TypeError for another type, CheckpointError for n, s < 1).
    """
    n, s = _count(n, "n"), _count(s, "s")
    actions: list[tuple[str, int]] = [("store", 0)]
    held = {0}
    most = 1
    steps = 0
    advanced = [0] * n  # how often each step was advanced
    current = 0
    # tasks: ("rev", a, b, k): reverse steps a .. b - 1 with k snapshots, state a stored;
    # ("restore", a), ("free", a)
    stack: list[tuple] = [("rev", 0, n, s)]
    while stack:
        task = stack.pop()
        kind = task[0]
        if kind == "free":
            held.discard(task[1])
            actions.append(("free", task[1]))
            continue
        if kind == "restore":
            if current != task[1]:
                actions.append(("restore", task[1]))
                current = task[1]
            continue
        _, a, b, k = task
        if current != a:
            actions.append(("restore", a))
            current = a
        if b - a == 1:
            actions.append(("reverse", a))
            current = -1  # a reversal consumes the current state: the next action restores one
            continue
        if k == 1:  # one snapshot: advance from state a to each step in turn, last first
            for i in range(b - 1, a - 1, -1):
                if current != a:
                    actions.append(("restore", a))
                    current = a
                if i > a:
                    actions.append(("advance", i - a))
                    steps += i - a
                    for j in range(a, i):
                        advanced[j] += 1
                actions.append(("reverse", i))
                current = -1
            continue
        m = _split(b - a, k)
        actions.append(("advance", m))
        steps += m
        for j in range(a, a + m):
            advanced[j] += 1
        actions.append(("store", a + m))
        held.add(a + m)
        most = max(most, len(held))
        current = a + m
        # after the last n - m: free their snapshot, go back to state a, reverse the first m
        stack += [("rev", a, a + m, k), ("restore", a), ("free", a + m), ("rev", a + m, b, k - 1)]
    actions.append(("free", 0))
    return Schedule(n, s, tuple(actions), steps, n, most, max(advanced, default=0))


# --- checkpointed gradients of circuits -------------------------------------------------------------
#
# A circuit is cut into segments run one after another; segment k is run as a circuit of its own,
# S_k, whose inputs are x and the state at its first cut (the operations of earlier segments that
# it or a later segment reads, or that are outputs) and whose outputs are the state at its last
# cut and x (passed through, so that the cotangents of x accumulate in the order of the whole
# sweep). The revolve schedule over the segments keeps s states; each segment's values are
# recomputed from the nearest stored state when its reverse sweep needs them. Inputs and
# constants are never state: x is always at hand, and S_k writes the constants it reads itself.
#
# How the segments are cut follows the order in which the executor's reverse sweep accumulates
# cotangents, so that each cotangent is summed in the very same order as without checkpoints:
#   "slots"   ranges of consecutive slots (the sequential and compiled executors sweep slot by
#             slot, from the last down)
#   "levels"  ranges of levels (the vectorised executor sweeps level by level): a segment holds
#             the operations of its levels, in slot order, and keeps their levels


@dataclass(frozen=True)
class _Segment:
    slots: np.ndarray       # its slots, in slot order: operations, and in "slots" mode the
                            # constants among them (a contiguous range lo .. hi - 1)
    state_in: np.ndarray    # the state at its first cut (sorted slots)
    state_out: np.ndarray   # the state at its last cut (sorted slots)
    lo: int = -1            # "slots" mode: the range, so that positions are a subtraction
    hi: int = -1


def default_segments(s: int) -> int:
    """C(s + 2, s): the most segments s snapshots reverse with no segment advanced more than
    twice (repetition number t = 2): the default, a balance between memory (s states and one
    segment's values) and time (about 1 + t forward passes)."""
    return comb(s + 2, s)


def segmentation(executor: str) -> str:
    """"levels" for the vectorised executor, "slots" for the others (see above)."""
    return "levels" if executor == "vectorised" else "slots"


def _plan(c: object, n_segments: int, mode: str) -> list[_Segment]:
    from .primitives import CONST

    key = ("checkpoint_plan", n_segments, mode)
    if key in c._cache:
        return c._cache[key]
    ops = np.flatnonzero(c.op > CONST)
    if ops.size < 2:
        raise CheckpointError(f"checkpointing needs at least two operations to cut between, this "
                              f"circuit has {ops.size}")
    if mode == "slots":
        order, key_of = ops, ops  # segment by position among the operations, in slot order
    else:
        order = ops[np.argsort(c.level[ops], kind="stable")]
        key_of = c.level[ops]
    # cut points: about equal numbers of operations per segment, never inside a level
    sorted_keys = key_of if mode == "slots" else np.sort(key_of, kind="stable")
    targets = (np.arange(1, n_segments) * ops.size) // n_segments
    cut_keys = np.unique(sorted_keys[targets])
    cut_keys = cut_keys[cut_keys > sorted_keys[0]]
    if cut_keys.size == 0:
        raise CheckpointError(f"this circuit's {ops.size} operations lie on one level: there is "
                              "nothing to cut between (checkpointing is for deep circuits)")
    seg_of_op = np.searchsorted(cut_keys, key_of, side="right")  # segment of each operation
    seg_of = np.full(c.n_slots, -1, dtype=np.int64)  # -1: an input or a constant
    seg_of[ops] = seg_of_op
    n = int(cut_keys.size) + 1
    members = [order[a:b] for a, b in zip(
        [0, *np.searchsorted(sorted_keys, cut_keys).tolist()],
        [*np.searchsorted(sorted_keys, cut_keys).tolist(), ops.size], strict=True)]
    ranges = [(-1, -1)] * len(members)
    if mode == "levels":
        members = [np.sort(m) for m in members]
    else:  # whole slot ranges, the constants among the operations included
        starts = [int(c.l)] + [int(m[0]) for m in members[1:]]
        ends = starts[1:] + [c.n_slots]
        ranges = list(zip(starts, ends, strict=True))
        members = [np.arange(a, b) for a, b in ranges]
    after = np.unique(c.outputs[seg_of[c.outputs] >= 0])
    segments: list[_Segment] = [None] * n  # type: ignore[list-item]
    for k in range(n - 1, -1, -1):
        S = members[k]
        args = np.concatenate([c.a0[S], c.a1[S]])
        args = args[args >= 0]
        reads = args[(seg_of[args] >= 0) & (seg_of[args] < k)]
        state_in = np.union1d(after[seg_of[after] < k], reads)
        segments[k] = _Segment(S, state_in, after, *ranges[k])
        after = state_in
    c._cache[key] = segments
    return segments


def _segment_circuits(c: object, plan: list[_Segment]) -> list:
    """The plan's segment circuits, each made on first use and kept with the circuit (like its
    other plans: structure only, about the circuit's own size in all); the values a gradient
    computes are what checkpointing keeps few of."""
    key = ("checkpoint_circuits", id(plan))
    if key not in c._cache:
        c._cache[key] = [None] * len(plan)
    return c._cache[key]


def _segment(c: object, plan: list[_Segment], k: int) -> object:
    made = _segment_circuits(c, plan)
    if made[k] is None:
        made[k] = _segment_circuit(c, plan[k])
    return made[k]


def _segment_circuit(c: object, seg: _Segment) -> object:
    """S_k: inputs x and seg.state_in, then the constants it reads, then its operations; outputs
    seg.state_out, then x (passed through). Its levels are the circuit's own, so that the
    level-grouped executor groups S_k's operations exactly as it groups them in c."""
    from .circuit import Circuit
    from .primitives import CONST, INPUT

    l, S = c.l, seg.slots
    contiguous = seg.lo >= 0
    a0, a1 = (c.a0[seg.lo:seg.hi], c.a1[seg.lo:seg.hi]) if contiguous else (c.a0[S], c.a1[S])
    early = np.concatenate([a0, a1])
    early = early[(early >= l) & ((early < seg.lo) if contiguous else True)]
    consts = np.unique(early[c.op[early] == CONST])
    if not contiguous:  # a segment's own constants are in S only in "slots" mode
        consts = consts[~np.isin(consts, S)]
    w, q = seg.state_in.size, consts.size
    base = l + w + q

    def position(a: np.ndarray) -> np.ndarray:
        """Where slot a of c is in S_k: an input, a constant, an operation of S_k, or the state."""
        out = np.where(a < l, a, -1)
        if contiguous:
            in_seg = a >= seg.lo
            out[in_seg] = base + (a[in_seg] - seg.lo)
        else:
            mine = np.searchsorted(S, a)
            in_seg = (a >= l) & (mine < S.size) & (S[np.minimum(mine, S.size - 1)] == a)
            out = np.where(in_seg, base + mine, out)
        rest = (a >= l) & ~in_seg
        if rest.any():
            j = a[rest]
            is_const = c.op[j] == CONST
            out[rest] = np.where(is_const, l + w + np.searchsorted(consts, j),
                                 l + np.searchsorted(seg.state_in, j))
        return out

    op = np.concatenate([np.full(l + w, INPUT, dtype=np.int8), np.full(q, CONST, dtype=np.int8),
                         c.op[S]])
    cv = np.concatenate([np.zeros(l + w), c.consts[consts], c.consts[S]])
    level = np.concatenate([np.zeros(l + w + q, dtype=np.int64), c.level[S]])
    pad = np.full(l + w + q, -1, dtype=np.int64)
    b0 = position(a0)
    b1 = np.where(a1 >= 0, position(np.maximum(a1, 0)), -1)
    outputs = np.concatenate([position(seg.state_out), np.arange(l)])
    return Circuit._trusted(l + w, op, np.concatenate([pad, b0]), np.concatenate([pad, b1]), cv,
                            outputs, level)


def _as_seed(adj_rows: np.ndarray, reached: np.ndarray) -> np.ndarray:
    """Cotangent rows as the next segment's seeds: -0.0 where no cotangent arrived (the sum's
    identity: -0.0 + c is c, bit for bit, as the un-checkpointed sweep's first stored term)."""
    out = np.array(adj_rows, dtype=np.float64)
    out[~reached] = -0.0
    return out


def vjp(c: object, X: np.ndarray, U: np.ndarray, s: int, executor: str = "auto",
        segments: int | None = None) -> tuple[np.ndarray, np.ndarray, Schedule]:
    """(the outputs' rows, u^T J rows, the schedule) of c at X ((l,) or (l, B), as
    testbed.evaluate takes it), U of shape (k,) or (k, B), with s snapshots over `segments`
    segments (default default_segments(s); fewer where the circuit has fewer places to cut):
    the revolve schedule run over the segment circuits.

    The numbers are the un-checkpointed reverse sweep's, bit for bit, on every executor: the
    segments follow the executor's order of accumulation (see `segmentation`), and a cotangent no
    later node sent is passed on as -0.0, the identity of the sum. Errors (a domain error, an
    overflow) are the un-checkpointed sweep's own: where a segment raises, the whole sweep is run
    again to name the node as it would.
    """
    from . import evaluate as E

    s = _count(s, "checkpoints")
    n_seg = default_segments(s) if segments is None else _count(segments, "segments")
    plan = _plan(c, n_seg, segmentation(E.executor_of(c, executor)))
    n = len(plan)
    schedule = revolve(n, s)
    batch = X.shape[1:]
    # the adjoint state at the end: the outputs' seeds, accumulated as the flat sweep seeds them
    seeds: dict[int, np.ndarray] = {}
    gx = np.full((c.l, *batch), -0.0)
    for o, u in zip(c.outputs.tolist(), U, strict=True):
        if o < c.l:
            gx[o] = gx[o] + u  # -0.0 + u is u: the flat sweep's first stored seed
        elif c.op[o] > 1:
            seeds[o] = u if o not in seeds else seeds[o] + u
    last_out = plan[-1].state_out.tolist()
    adj_state = (np.stack([seeds.get(j, np.full(batch, -0.0)) for j in last_out]) if last_out
                 else np.zeros((0, *batch)))
    reached_x = np.zeros(c.l, dtype=bool)
    reached_x[c.outputs[c.outputs < c.l]] = True
    last = None
    try:
        state = np.zeros((0, *batch))  # the state at cut 0: nothing crosses it
        snapshots: dict[int, np.ndarray] = {}
        current = 0
        for kind, i in schedule.actions:
            if kind == "store":
                snapshots[i] = state.copy()
            elif kind == "restore":
                state, current = snapshots[i].copy(), i
            elif kind == "free":
                snapshots.pop(i, None)
            elif kind == "advance":
                for _ in range(i):
                    S = _segment(c, plan, current)
                    vals = E.forward(S, np.concatenate([X, state]), executor)
                    state = vals[S.outputs[:plan[current].state_out.size]]
                    current += 1
            else:  # reverse segment i from its state
                S = _segment(c, plan, i)
                vals = E.forward(S, np.concatenate([X, state]), executor)
                if i == n - 1:
                    last = (S, vals)
                adj = E.reverse(S, vals, np.concatenate([adj_state, gx]), executor)
                flags, _, _ = E.reverse_plan(S)
                w = plan[i].state_in.size
                adj_state = _as_seed(adj[c.l:c.l + w], flags[c.l:c.l + w] != 0)
                gx = adj[:c.l]
                passes = np.bincount(S.a0[(flags & 4) != 0], minlength=S.n_slots)
                passes += np.bincount(S.a1[(flags & 8) != 0], minlength=S.n_slots)
                reached_x |= passes[:c.l] > 0
                state = None  # consumed: the next action restores a stored state
    except TestbedError:
        vals = E.forward(c, X, executor)  # raises the un-checkpointed sweep's own error
        E.reverse(c, vals, U, executor)
        raise
    gx = np.array(gx)
    gx[~reached_x] = 0.0  # no cotangent reached these inputs: exact zeros, as without checkpoints
    return _circuit_outputs(c, plan[-1], *last, X), gx, schedule


def _circuit_outputs(c: object, seg: _Segment, S: object, vals: np.ndarray,
                     X: np.ndarray) -> np.ndarray:
    """The rows of c's outputs, from the last segment's values (an output is an input, a
    constant, or an operation of the state at the end)."""
    rows = []
    for o in c.outputs.tolist():
        if o < c.l:
            rows.append(X[o])
        elif c.op[o] == 1:
            rows.append(np.full(X.shape[1:], c.consts[o]))
        else:
            rows.append(vals[S.outputs[int(np.searchsorted(seg.state_out, o))]])
    return np.stack(rows)


def recomputation_counts(c: object, s: int, segments: int | None = None,
                         executor: str = "auto") -> dict[str, int]:
    """The operations a checkpointed gradient runs beyond the un-checkpointed one, by primitive:
    the forward operations of every segment the revolve schedule advances (its combined
    forward-and-reverse evaluations are the plain sweep's own forward pass). The segments, and so
    the count, depend on the executor's segmentation (see `segmentation`)."""
    from . import evaluate as E
    from . import primitives as P

    s = _count(s, "checkpoints")
    n_seg = default_segments(s) if segments is None else _count(segments, "segments")
    plan = _plan(c, n_seg, segmentation(E.executor_of(c, executor)))
    schedule = revolve(len(plan), s)
    times = np.zeros(len(plan), dtype=np.int64)
    current = 0
    for kind, i in schedule.actions:
        if kind == "restore":
            current = i
        elif kind == "advance":
            times[current:current + i] += 1
            current += i
    total: dict[str, int] = {}
    for seg, k in zip(plan, times.tolist(), strict=True):
        if k:
            codes, cnt = np.unique(c.op[seg.slots], return_counts=True)
            for code, m in zip(codes.tolist(), cnt.tolist(), strict=True):
                if code > P.CONST:
                    total[P.NAMES[code]] = total.get(P.NAMES[code], 0) + k * m
    return dict(sorted(total.items()))


def evaluate_streaming(c: object, X: np.ndarray, segments: int, executor: str = "auto") -> np.ndarray:
    """c's output rows at X ((l,) or (l, B)) by a forward pass over `segments` segments that keeps
    only the state at the current cut and one segment's values: the memory the forward pass
    alone needs, O(width + N / segments), where the reverse sweep needs every value."""
    from . import evaluate as E

    plan = _plan(c, _count(segments, "segments"), segmentation(E.executor_of(c, executor)))
    state = np.zeros((0, *X.shape[1:]))
    for k, seg in enumerate(plan):
        S = _segment(c, plan, k)
        vals = E.forward(S, np.concatenate([X, state]), executor)
        state = vals[S.outputs[:seg.state_out.size]]
    return _circuit_outputs(c, plan[-1], S, vals, X)
