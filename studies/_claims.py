"""The claims table and its one verdict rule.

Schema (CLAIM_COLUMNS), every entry a string:

    study     the study's name
    id        a short kebab-case id, unique within the study (the README shows `study.id`)
    claim     the statement, in words
    where     where it is stated (a section of the project's theory, or a paper)
    measured  the figure measured, with its uncertainty and the sizes it was measured at
    expected  the figure or range the claim predicts
    verdict   PASSED, FAILED or INCONCLUSIVE, computed from the data by the study's claims function
    reason    one line saying why a claim did not pass ("" for PASSED)
    mode      "full" or "quick" (quick claims rest on smaller grids and fewer seeds; the results
              README leaves them out of its summary)

The rule (`interval_verdict`): a claim about a fitted or estimated figure decides on its interval
[lo, hi] (a 95% confidence interval unless the claim says otherwise) against the tolerance
[tol_lo, tol_hi] the claim allows:

    PASSED        tol_lo <= lo and hi <= tol_hi        the whole interval is inside
    FAILED        hi < tol_lo or lo > tol_hi           the whole interval is outside
    INCONCLUSIVE  otherwise                            the interval straddles a bound

The tolerance is closed, so an interval touching a bound from inside passes and one touching it from
outside is inconclusive. A one-sided claim gives -inf or inf as the open bound. A missing or
non-finite interval bound is FAILED, never dropped: a claim whose measurement is missing is a bug
the table must show.

Exact or logical claims (an op count, a property that holds or not) pass `holds`: True -> PASSED,
anything else (False, None, NaN) -> FAILED, or one of the three verdict strings.

Quick mode. A claim whose quick-mode grid is too small to decide it (sizes below the regime the claim
is about, too few seeds for the interval to fit inside the tolerance) passes
`quick_undecidable=quick`: in quick mode it then reads INCONCLUSIVE with the reason "quick mode is
too small to decide this claim", whatever its data say, and FAILED only when its data are missing.
Claims that quick mode can decide leave it False and get their verdict from the rule.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

CLAIM_COLUMNS = ["study", "id", "claim", "where", "measured", "expected", "verdict", "reason", "mode"]
PASSED, FAILED, INCONCLUSIVE = "PASSED", "FAILED", "INCONCLUSIVE"
VERDICTS = (PASSED, FAILED, INCONCLUSIVE)
QUICK_UNDECIDABLE = "quick mode is too small to decide this claim"

_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_NOT_GIVEN = object()


def _finite(x: object) -> bool:
    try:
        return math.isfinite(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _is_number(x: object) -> bool:
    try:
        return not math.isnan(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _num(x: float) -> str:
    return f"{x:.4g}"


def interval_verdict(lo: float, hi: float, tol_lo: float, tol_hi: float) -> str:
    """The one verdict rule: PASSED when lo >= tol_lo and hi <= tol_hi, FAILED when hi < tol_lo
    or lo > tol_hi, INCONCLUSIVE otherwise (the interval straddles a bound).

    FAILED when lo or hi is missing or not finite, when lo > hi (no interval), or when a tolerance
    bound is missing (NaN, None) or infinite on the wrong side (tol_lo = +inf, tol_hi = -inf); a
    one-sided tolerance gives -inf as tol_lo or +inf as tol_hi. Raises ValueError when
    tol_lo > tol_hi: that is a mistake in the claim, not in the data.
    """
    if not (_finite(lo) and _finite(hi)):
        return FAILED
    if not (_is_number(tol_lo) and _is_number(tol_hi)) or float(tol_lo) == math.inf \
            or float(tol_hi) == -math.inf:
        return FAILED
    lo, hi, tol_lo, tol_hi = float(lo), float(hi), float(tol_lo), float(tol_hi)
    if tol_lo > tol_hi:
        raise ValueError(f"tolerance [{tol_lo}, {tol_hi}] is empty: its lower bound exceeds its upper")
    if lo > hi:
        return FAILED
    if tol_lo <= lo and hi <= tol_hi:
        return PASSED
    if hi < tol_lo or lo > tol_hi:
        return FAILED
    return INCONCLUSIVE


def interval_reason(lo: float, hi: float, tol_lo: float, tol_hi: float, name: str = "95% CI") -> str:
    """The one-line reason of `interval_verdict(lo, hi, tol_lo, tol_hi)` ("" when it passes)."""
    v = interval_verdict(lo, hi, tol_lo, tol_hi)
    if v == PASSED:
        return ""
    if not (_finite(lo) and _finite(hi)):
        return f"the {name} is missing or not finite ({lo}, {hi})"
    if not (_is_number(tol_lo) and _is_number(tol_hi)) or float(tol_lo) == math.inf \
            or float(tol_hi) == -math.inf:
        return f"the tolerance [{tol_lo}, {tol_hi}] is missing or not a range"
    lo, hi, tol_lo, tol_hi = float(lo), float(hi), float(tol_lo), float(tol_hi)
    ci = f"{name} [{_num(lo)}, {_num(hi)}]"
    if lo > hi:
        return f"{ci} is empty (its lower end exceeds its upper end)"
    if hi < tol_lo:
        return f"{ci} lies below the lower bound {_num(tol_lo)}"
    if lo > tol_hi:
        return f"{ci} lies above the upper bound {_num(tol_hi)}"
    if lo < tol_lo and hi > tol_hi:
        return f"{ci} is wider than the tolerance [{_num(tol_lo)}, {_num(tol_hi)}]"
    if lo < tol_lo:
        return f"{ci} straddles the lower bound {_num(tol_lo)}"
    return f"{ci} straddles the upper bound {_num(tol_hi)}"


def verdict(holds: object) -> str:
    """PASSED only for a true boolean (numpy or Python), a verdict string as given; False, None,
    NaN or anything else give FAILED."""
    if isinstance(holds, (bool, np.bool_)):
        return PASSED if bool(holds) else FAILED
    if isinstance(holds, str) and holds in VERDICTS:
        return holds
    return FAILED


def claim(claim: str, where: str, measured: str, expected: str, holds: object = _NOT_GIVEN, *,
          id: str, interval: tuple[float, float] | None = None,
          tolerance: tuple[float, float] | None = None, reason: str | None = None,
          quick_undecidable: bool = False, interval_name: str = "95% CI") -> dict:
    """One row of the claims table (the study and mode columns are added by `claims_table`).

    Give exactly one of `holds` (exact or logical claims: see `verdict`) or `interval=(lo, hi)`
    with `tolerance=(tol_lo, tol_hi)` (verdict by `interval_verdict`, reason generated). `id` is a
    short kebab-case id unique within the study. `reason` replaces the generated one-line reason
    of a claim that did not pass. `quick_undecidable=True` makes the verdict INCONCLUSIVE (see the
    module docstring); pass `quick_undecidable=quick`.
    """
    if not isinstance(id, str) or not _ID.fullmatch(id):
        raise ValueError(f"claim id must be short kebab-case (e.g. 'fd-linear-in-l'), got {id!r}")
    if (holds is _NOT_GIVEN) == (interval is None):
        raise TypeError("claim() needs exactly one of `holds` or `interval` (with `tolerance`)")
    if interval is not None:
        if tolerance is None:
            raise TypeError("claim(interval=...) needs tolerance=(tol_lo, tol_hi)")
        (lo, hi), (tol_lo, tol_hi) = interval, tolerance
        v = interval_verdict(lo, hi, tol_lo, tol_hi)
        generated = interval_reason(lo, hi, tol_lo, tol_hi, interval_name)
        missing = not (_finite(lo) and _finite(hi))
    else:
        v = verdict(holds)
        generated = {PASSED: "", INCONCLUSIVE: "the data do not decide the claim",
                     FAILED: "the measured figures do not satisfy the expected condition"}[v]
        missing = holds is None or (isinstance(holds, float) and math.isnan(holds))
    if quick_undecidable and not missing:
        v, generated = INCONCLUSIVE, QUICK_UNDECIDABLE
    why = "" if v == PASSED else (reason if reason else generated)
    return {"id": id, "claim": claim, "where": where, "measured": measured, "expected": expected,
            "verdict": v, "reason": " ".join(str(why).split())}


def claims_table(study: str, rows: list[dict], quick: bool) -> pd.DataFrame:
    """The claims DataFrame with columns CLAIM_COLUMNS, in the order the rows were given.

    Raises ValueError when a row has no id or two rows share one.
    """
    seen: set[str] = set()
    for k, r in enumerate(rows):
        if not r.get("id"):
            raise ValueError(f"study {study!r}: claim {k + 1} ({r.get('claim')!r}) has no id")
        if r["id"] in seen:
            raise ValueError(f"study {study!r}: claim id {r['id']!r} is used twice")
        seen.add(r["id"])
    cols = [c for c in CLAIM_COLUMNS if c not in ("study", "mode")]
    df = pd.DataFrame([{"reason": "", **r} for r in rows], columns=cols)
    df.insert(0, "study", study)
    df["mode"] = "quick" if quick else "full"
    return df[CLAIM_COLUMNS].fillna("").astype(str)


def fmt(x: float, digits: int = 3) -> str:
    """A number with `digits` significant digits ('nan' for a missing one)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.{digits}g}"


def deciding(parts: list[tuple[tuple[float, float], tuple[float, float]]]) -> tuple:
    """The (interval, tolerance) pair that decides a claim made of several: a claim holds only if
    every part does, so the first FAILED part decides it, else the first INCONCLUSIVE one, else
    (all PASSED) the part closest to its tolerance's bounds, which the claim then shows. No
    parts: a missing interval (FAILED)."""
    if not parts:
        return (np.nan, np.nan), (0.0, 0.0)
    verdicts = [interval_verdict(*i, *t) for i, t in parts]
    for v in (FAILED, INCONCLUSIVE):
        if v in verdicts:
            return parts[verdicts.index(v)]
    margins = [min(lo - tlo, thi - hi) for (lo, hi), (tlo, thi) in parts]
    return parts[int(np.argmin(margins))]
