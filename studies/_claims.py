"""The claims table: one row per claim of the lecture notes (or the literature) a study checks.

Schema (CLAIM_COLUMNS), every entry a string:

    study     the study's name
    claim     the statement, in words
    where     where it is stated (a section of the lecture notes, or a paper)
    measured  the figure measured, with its uncertainty and the sizes it was measured at
    expected  the figure or range the claim predicts
    verdict   PASSED or FAILED, computed from the data by the study's claims function
    mode      "full" or "quick" (quick claims rest on smaller grids and fewer seeds)

A claim whose measurement is missing or not finite is FAILED, never dropped.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

CLAIM_COLUMNS = ["study", "claim", "where", "measured", "expected", "verdict", "mode"]
PASSED, FAILED = "PASSED", "FAILED"


def verdict(holds: object) -> str:
    """PASSED only for a true boolean (numpy or Python); False, None or NaN give FAILED."""
    if isinstance(holds, (bool, np.bool_)):
        return PASSED if bool(holds) else FAILED
    return FAILED


def claim(claim: str, where: str, measured: str, expected: str, holds: object) -> dict:
    """One row of the claims table (the study and mode columns are added by `claims_table`)."""
    return {"claim": claim, "where": where, "measured": measured, "expected": expected,
            "verdict": verdict(holds)}


def claims_table(study: str, rows: list[dict], quick: bool) -> pd.DataFrame:
    """The claims DataFrame with columns CLAIM_COLUMNS, in the order the rows were given."""
    df = pd.DataFrame(rows, columns=[c for c in CLAIM_COLUMNS if c not in ("study", "mode")])
    df.insert(0, "study", study)
    df["mode"] = "quick" if quick else "full"
    return df[CLAIM_COLUMNS].astype(str)


def fmt(x: float, digits: int = 3) -> str:
    """A number with `digits` significant digits ('nan' for a missing one)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.{digits}g}"


def within(x: float, lo: float, hi: float) -> bool:
    """lo <= x <= hi, False for NaN."""
    return bool(np.isfinite(x) and lo <= x <= hi)
