"""Claim builders: a study's `claims()` is a list of calls to these.

Each builder takes the claim's id, its text, where it comes from, the rows (or the figures read
off them) and the tolerance; it computes the interval, applies the one verdict rule
(`studies._claims`) and writes the `expected` text from the tolerance, so that a tolerance is
typed once. All return one row of the claims table (a dict; `studies._claims.claims_table` makes
the table).

    interval(id, text, where, measured, (lo, hi), tol)      an estimated figure's interval
    slope(id, text, where, x, y, tol, over="N")             the log-log slope of y on x
    line_slope(id, text, where, x, y, tol, unit=...)        the slope b of y = a + b x
    worst_of(id, text, where, parts, measured)              every part's interval inside its
                                                            tolerance (the worst part decides)
    exact(id, text, where, ok, measured, expected)          a property of every row (counts,
                                                            bounds, agreements)
    agreement(id, text, where, checks, expected)            named checks that agree, k/n each
    at_most(id, text, where, values, measured, bound)       every value <= bound (exact figures)
    undecided_unless(row, ok, reason)                       INCONCLUSIVE when a precondition of
                                                            the measurement fails
    within_factor(id, text, where, measured, (lo, hi), ref, f)   an interval inside
                                                            [ref / f, ref x f]
    plus_minus(id, text, where, measured, (lo, hi), c, h)   an interval inside [c - h, c + h]
    in_range(id, text, where, measured, (lo, hi), tol)      an interval inside tol, expected
                                                            text the bare range '[lo, hi]'
    logical(id, text, where, ok, measured, expected)        a property that holds or not
                                                            (quick=: undecidable in quick mode)
    counted(id, text, where, parts, labels, what)           every case's interval inside its
                                                            tolerance, measured 'k/n <what>'
    span((lo, hi))                                          the text '[lo, hi]' of a tolerance
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ._claims import INCONCLUSIVE, PASSED, QUICK_UNDECIDABLE, claim, deciding, fmt
from ._fits import linear_fit, loglog_fit


def bound(v: float) -> str:
    """A tolerance bound as the expected text shows it."""
    return f"{v:g}"


def inside(tolerance: tuple[float, float], subject: str = "95% CI") -> str:
    """The expected text of a tolerance: '<subject> inside [lo, hi]' (one-sided: '>= lo' or
    '<= hi' when the other end is infinite)."""
    lo, hi = tolerance
    if math.isinf(lo) and not math.isinf(hi):
        return f"{subject} <= {bound(hi)}"
    if math.isinf(hi) and not math.isinf(lo):
        return f"{subject} >= {bound(lo)}"
    return f"{subject} inside [{bound(lo)}, {bound(hi)}]"


def slope_text(b: float, lo: float, hi: float) -> str:
    """'1.043 [95% CI 0.981, 1.105]': three decimals, so a verdict at a bound can be read off."""
    def f3(v: float) -> str:
        return f"{v:.3f}" if np.isfinite(v) else "nan"

    return f"{f3(b)} [95% CI {f3(lo)}, {f3(hi)}]"


def with_reason(row: dict, reason: str | None) -> dict:
    """The row with `reason` appended to the reason of a claim that did not pass (quick mode's
    own reason is kept as it is)."""
    if reason and row["verdict"] != PASSED and row["reason"] != QUICK_UNDECIDABLE:
        row = {**row, "reason": f"{row['reason']}: {reason}" if row["reason"] else reason}
    return row


def interval(cid: str, text: str, where: str, measured: str, iv: tuple[float, float],
             tolerance: tuple[float, float], *, quick: bool = False, subject: str = "95% CI",
             note: str = "", reason: str | None = None, why_not: str | None = None,
             derived: str | None = None) -> dict:
    """A claim about an estimated figure: PASSED when `iv` lies inside `tolerance`.

    `reason` replaces the generated reason of a claim that does not pass; `why_not` is appended
    to it (a measured cause). A tolerance computed from the data (e.g. from the op counts of the
    same rows) states the formula it was derived by instead: `derived="[1, 1 + 2 x (predicted -
    1)]"` reads '<subject> inside [1, 1 + 2 x (predicted - 1)]'."""
    expected = f"{subject} inside {derived}" if derived else inside(tolerance, subject)
    row = claim(text, where, measured, expected + note, id=cid, interval=iv,
                tolerance=tolerance, quick_undecidable=quick, reason=reason)
    return with_reason(row, why_not)


def slope(cid: str, text: str, where: str, x: object, y: object, tolerance: tuple[float, float],
          *, quick: bool = False, over: str = "N", extra: str = "", note: str = "",
          why_not: str | None = None) -> dict:
    """The slope of log y on log x (95% t-interval) inside the tolerance; `measured` reads
    'slope b [95% CI lo, hi] over <over> = x_min..x_max (n points)<extra>'."""
    x = pd.Series(x, dtype=float) if not isinstance(x, pd.Series) else x
    y = pd.Series(y, dtype=float) if not isinstance(y, pd.Series) else y
    b, lo, hi, n = loglog_fit(x, y) if len(x) else (np.nan, np.nan, np.nan, 0)
    span = f"{fmt(x.min())}..{fmt(x.max())}" if n else "nan..nan"
    measured = f"slope {slope_text(b, lo, hi)} over {over} = {span} ({n} points){extra}"
    return interval(cid, text, where, measured, (lo, hi), tolerance, quick=quick,
                    subject="95% CI of the slope", note=note, why_not=why_not)


def line_slope(cid: str, text: str, where: str, x: object, y: object,
               tolerance: tuple[float, float], *, unit: float = 1.0, quick: bool = False,
               describe: object = None, note: str = "") -> dict:
    """b of the line y = a + b x, in units of `unit`, inside the tolerance; `describe(a, b,
    lo, hi, n)` writes the measured text (b, lo, hi already divided by unit)."""
    a, b, lo, hi, n = linear_fit(x, y) if len(x) else (np.nan,) * 4 + (0,)
    b, lo, hi = b / unit, lo / unit, hi / unit
    measured = (describe(a, b, lo, hi, n) if describe
                else f"b = {fmt(b, 3)} [95% CI {fmt(lo, 3)}, {fmt(hi, 3)}]")
    return interval(cid, text, where, measured, (lo, hi), tolerance, quick=quick,
                    subject="95% CI of b", note=note)


def worst_of(cid: str, text: str, where: str, parts: list[tuple[tuple[float, float],
                                                                 tuple[float, float]]],
             measured: str, expected: str, *, quick: bool = False,
             reason: str | None = None) -> dict:
    """A claim made of parts (interval, tolerance), which holds only if every part does: the
    first FAILED part decides, else the first INCONCLUSIVE one, else the tightest (the verdict
    rule of `studies._claims.deciding`)."""
    iv, tol = deciding(parts)
    return claim(text, where, measured, expected, id=cid, interval=iv, tolerance=tol,
                 quick_undecidable=quick, reason=reason)


def exact(cid: str, text: str, where: str, ok: object, measured: str, expected: str,
          *, reason: str | None = None) -> dict:
    """A property of every row: PASSED when `ok` (a bool, or a boolean Series: all of it) holds,
    FAILED when it does not, FAILED too when there are no rows (None, an empty Series)."""
    if isinstance(ok, pd.Series):
        holds = bool(ok.all()) if len(ok) else None
    else:
        holds = ok
    return claim(text, where, measured if holds is not None else "no data", expected, holds,
                 id=cid, reason=reason)


def agreement(cid: str, text: str, where: str, checks: list[tuple[str, int, int]],
              expected: str) -> dict:
    """Named checks (name, agreeing, total): PASSED when every one agrees in every case."""
    n = sum(k for _, _, k in checks)
    measured = "; ".join(f"{name} {a}/{k}" for name, a, k in checks) + " agree" if n else "no data"
    return claim(text, where, measured, expected,
                 all(a == k for _, a, k in checks) if n else None, id=cid)


def at_most(cid: str, text: str, where: str, values: object, measured: str, bound: float,
            *, note: str = "") -> dict:
    """Every value <= bound (an exact figure per row, e.g. an op-count ratio): PASSED when all
    are finite and the largest is at most `bound`, FAILED otherwise or with no values; the
    expected text reads '<= bound<note>'."""
    v = pd.Series(values, dtype=float)
    holds = bool(v.notna().all() and np.isfinite(v).all() and v.max() <= bound) if len(v) else None
    return claim(text, where, measured if len(v) else "no data", f"<= {bound:g}{note}", holds,
                 id=cid)


def within_factor(cid: str, text: str, where: str, measured: str, iv: tuple[float, float],
                  reference: float, factor: float, *, digits: int = 3,
                  quick: bool = False) -> dict:
    """An estimated figure within a factor of a reference: PASSED when `iv` lies inside
    [reference / factor, reference x factor]; the expected text reads '<reference> within a
    factor <factor>' (the reference to `digits` significant digits)."""
    return claim(text, where, measured, f"{fmt(reference, digits)} within a factor {factor:g}",
                 id=cid, interval=iv, tolerance=(reference / factor, reference * factor),
                 quick_undecidable=quick)


def plus_minus(cid: str, text: str, where: str, measured: str, iv: tuple[float, float],
               centre: float, half: float, *, quick: bool = False) -> dict:
    """An estimated figure within +-half of a centre: PASSED when `iv` lies inside
    [centre - half, centre + half]; the expected text reads '<signed centre> +- <half>'."""
    return claim(text, where, measured, f"{centre:+g} +- {half:g}", id=cid, interval=iv,
                 tolerance=(centre - half, centre + half), quick_undecidable=quick)


def undecided_unless(row: dict, ok: bool, reason: str) -> dict:
    """A precondition of the claim's measurement (e.g. the work dominating a fixed cost): when
    it does not hold, a decided claim reads INCONCLUSIVE with `reason`, whatever its interval
    says, since the data cannot decide it either way; quick mode's INCONCLUSIVE keeps its own
    reason. (Missing data must still read FAILED: pass ok=True when the interval is missing.)"""
    if ok or row["reason"] == QUICK_UNDECIDABLE or row["verdict"] == INCONCLUSIVE:
        return row
    return {**row, "verdict": INCONCLUSIVE, "reason": reason}


def in_range(cid: str, text: str, where: str, measured: str, iv: tuple[float, float],
             tolerance: tuple[float, float], *, quick: bool = False,
             reason: str | None = None) -> dict:
    """An estimated figure's interval inside the tolerance, the expected text being the bare
    range '[lo, hi]' (`interval` writes '95% CI inside [lo, hi]'); `reason` replaces the
    generated reason of a claim that does not pass."""
    lo, hi = tolerance
    return claim(text, where, measured, f"[{bound(lo)}, {bound(hi)}]", id=cid, interval=iv,
                 tolerance=tolerance, quick_undecidable=quick, reason=reason)


def logical(cid: str, text: str, where: str, ok: object, measured: str, expected: str, *,
            quick: bool = False) -> dict:
    """A logical property decided from the data: PASSED when `ok` is True, FAILED when it is
    False or None (None: its data are missing, which quick mode does not excuse); `quick=True`
    (a claim quick mode's grid is too small for) makes a decided claim INCONCLUSIVE in quick
    mode. Unlike `exact`, `measured` is kept as given when the data are missing."""
    return claim(text, where, measured, expected, ok, id=cid, quick_undecidable=quick)


def span(tolerance: tuple[float, float]) -> str:
    """'[lo, hi]': a tolerance as an expected text quotes it (e.g. f"ratio in {span(tol)}")."""
    return f"[{bound(tolerance[0])}, {bound(tolerance[1])}]"


def counted(cid: str, text: str, where: str, parts: list[tuple[tuple[float, float],
                                                                tuple[float, float]]],
            labels: list[str], what: str, *, quick: bool = False) -> dict:
    """One case per part (interval, tolerance), every one of which must hold: decided as
    `worst_of` (the first FAILED part, else the first INCONCLUSIVE one, else the tightest);
    `measured` reads '<k>/<n> <what>' and, when k < n, '; not: <labels of the cases that did not
    pass>', `expected` reads '<n>/<n>'."""
    from ._claims import interval_verdict

    verdicts = [interval_verdict(*iv, *tol) for iv, tol in parts]
    missed = [label for label, v in zip(labels, verdicts, strict=True) if v != PASSED]
    measured = (f"{verdicts.count(PASSED)}/{len(parts)} {what}"
                + (f"; not: {', '.join(missed)}" if missed else ""))
    return worst_of(cid, text, where, parts, measured, f"{len(parts)}/{len(parts)}", quick=quick)
