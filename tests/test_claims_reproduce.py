"""Every committed claims table is what its study's `claims()` computes from the committed main
table, byte for byte in every column.

The claims are a pure function of the table (`studies.__init__`: "the verdict must be computed
from `table` alone"), and NAME.csv round-trips exactly (pandas writes floats with repr), so this
holds for every study, timed or not: a refactor of a study's claims (its builders, fits,
texts) that changed a measured figure, an expected text, a verdict or a reason fails here, and so
does a claims table edited by hand or left stale beside a newer table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from studies import REGISTRY, load

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.mark.parametrize("name", list(REGISTRY))
def test_committed_claims_are_what_the_committed_table_gives(name):
    table_path, claims_path = RESULTS / f"{name}.csv", RESULTS / f"{name}.claims.csv"
    assert table_path.exists() and claims_path.exists(), f"results/ has no full run of {name}"
    table = pd.read_csv(table_path, low_memory=False)
    committed = pd.read_csv(claims_path, dtype=str, keep_default_na=False)
    assert set(committed["mode"]) == {"full"}, f"results/{name}.claims.csv is not a full run"
    got = load(name).claims(table, quick=False).astype(str).reset_index(drop=True)
    assert list(got.columns) == list(committed.columns)
    assert list(got["id"]) == list(committed["id"]), f"{name}: claim ids differ"
    for col in committed.columns:
        bad = [(i, a, b) for i, (a, b) in enumerate(zip(got[col], committed[col], strict=True))
               if a != b]
        assert not bad, (f"{name}.{got['id'][bad[0][0]]}: column {col!r} computed\n  {bad[0][1]}\n"
                         f"committed\n  {bad[0][2]}")
