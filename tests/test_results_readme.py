"""results/README.md and NAME.json: summary first, reasons, claim ids, environment, references."""

from __future__ import annotations

import concurrent.futures as cf
import json

import pandas as pd
import pytest

from studies._claims import claim, claims_table
from studies._readme import REFERENCES, ROOT, _link, write_readme
from studies._runner import run_study
from studies._study import Study
from studies._writer import write_study

ENV_KEYS = {"python", "numpy", "numba", "jax", "blas", "cpu", "cores", "date"}


def _cell(params: dict, seed: int) -> pd.DataFrame:
    return pd.DataFrame({"i": [params["i"]], "x": [float(params["i"])]})


def _study(name: str, verdicts: str, reproducibility: str = "") -> Study:
    """A study whose claims pass (p), fail (f), are inconclusive (i) or undecidable in quick mode (u)
    as `verdicts` says."""
    def claims(table, quick):
        rows = []
        for k, v in enumerate(verdicts):
            if v == "u":
                rows.append(claim(f"statement {k}", "somewhere", "m", "e", False, id=f"claim-u-{k}",
                                  quick_undecidable=quick))
                continue
            interval = {"p": (0.95, 1.05), "f": (2.0, 2.1), "i": (0.85, 0.95)}[v]
            rows.append(claim(f"statement {k}", "somewhere", "m", "e", id=f"claim-{v}-{k}",
                              interval=interval, tolerance=(0.9, 1.1)))
        return claims_table(name, rows, quick)

    return Study(name=name, title=f"{name} title", where="somewhere",
                 grid=lambda quick: [{"i": i} for i in range(3)], cell=_cell,
                 aggregate=lambda raw, quick: raw, claims=claims,
                 plot=lambda table, fig: fig.subplots().plot(table["i"], table["x"]),
                 reproducibility=reproducibility)


def _write(study: Study, out, quick: bool) -> None:
    with cf.ThreadPoolExecutor(1) as ex:
        result = run_study(study, quick=quick, seed=0, executor=ex, progress=False)
    result.meta["command"] = f"python -m studies {study.name}"
    result.meta["reproducibility"] = study.reproducibility
    write_study(result, out)


@pytest.fixture
def readme(tmp_path):
    _write(_study("alpha", "pfip", reproducibility="column `x` may differ in the last bit"),
           tmp_path, quick=False)
    _write(_study("beta", "pp"), tmp_path, quick=False)
    _write(_study("gamma", "fu"), tmp_path, quick=True)
    write_readme(tmp_path, ["alpha", "beta", "gamma"])
    return (tmp_path / "README.md").read_text()


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_order(readme):
    order = ["## Summary", "## Claims that did not pass", "## Quick-mode claims that did not pass",
             "## All claims", "## Environment", "## Reproducibility", "## Studies", "## References"]
    positions = [readme.index(h + "\n") for h in order]
    assert positions == sorted(positions)


def test_summary_counts_full_mode_only(readme):
    summary = _section(readme, "Summary")
    assert "| alpha | 4 | 2 | 1 | 1 |" in summary
    assert "| beta | 2 | 2 | 0 | 0 |" in summary
    assert "| **all** | 6 | 4 | 1 | 1 |" in summary
    assert "| gamma |" not in summary and "quick mode only" in summary and "gamma" in summary


def test_claims_that_did_not_pass_carry_their_reason(readme):
    bad = _section(readme, "Claims that did not pass")
    assert "| `alpha.claim-f-1` | FAILED | 95% CI [2, 2.1] lies above the upper bound 1.1 |" in bad
    assert ("| `alpha.claim-i-2` | INCONCLUSIVE | 95% CI [0.85, 0.95] straddles the lower bound 0.9 |"
            in bad)
    assert "`alpha.claim-p-" not in bad and "beta" not in bad
    quick = _section(readme, "Quick-mode claims that did not pass")
    assert "| `gamma.claim-f-0` | FAILED |" in quick
    # claims quick mode cannot decide are named in one sentence, not listed as if they had failed
    assert "| `gamma.claim-u-1`" not in quick
    assert ('INCONCLUSIVE with the reason "quick mode is too small to decide this claim" (full mode '
            'decides them), 1: `gamma.claim-u-1`.') in quick


def test_all_claims_have_short_ids_and_mode_only_where_it_varies(readme, tmp_path):
    table = _section(readme, "All claims")
    assert table.splitlines()[1] == "| id | claim | where | measured | expected | verdict | mode |"
    assert "| `beta.claim-p-1` |" in table and "| `gamma.claim-f-0` |" in table
    (tmp_path / "gamma.json").unlink()
    write_readme(tmp_path, ["alpha", "beta", "gamma"])
    text = (tmp_path / "README.md").read_text()
    assert "## All claims (all full mode)\n" in text
    assert "| id | claim | where | measured | expected | verdict |\n" in text


def test_environment_recorded_and_printed_once(readme, tmp_path):
    for name in ("alpha", "beta", "gamma"):
        env = json.loads((tmp_path / f"{name}.json").read_text())["environment"]
        assert set(env) == ENV_KEYS and env["cores"] >= 1
        assert all(str(v) for v in env.values())
    env_section = _section(readme, "Environment")
    assert readme.count("| python |") == 1 and "| blas |" in env_section and "| cpu |" in env_section
    assert "(UTC)" in env_section


def test_reproducibility_notes_and_references(readme):
    repro = _section(readme, "Reproducibility")
    assert "last bits" in repro and "- **alpha**: column `x` may differ in the last bit" in repro
    refs = _section(readme, "References")
    assert "docs/theory.md" in refs
    for cited in ("Strassen (1983)", "Walther (2008)", "Pearlmutter (1994)", "Bengio (2010)",
                  "J. Sun (2015)", "S. Ganguli (2016)", "J. Sohl-Dickstein (2017)",
                  "A. Talwalkar (2021)", "D. P. Woodruff (2021)"):
        assert sum(cited in ref for ref in REFERENCES) == 1 and cited in refs


def test_theory_link_is_relative_inside_the_repository(tmp_path):
    assert _link(ROOT / "docs" / "theory.md", ROOT / "results") == "../docs/theory.md"
    assert _link(ROOT / "docs" / "theory.md", tmp_path) == (ROOT / "docs" / "theory.md").as_posix()


def test_remeasurement_is_stated_in_name_md_and_readme(tmp_path):
    study = _study("delta", "p")
    with cf.ThreadPoolExecutor(1) as ex:
        result = run_study(study, quick=False, seed=0, executor=ex, progress=False)
    result.meta.update(command="python -m studies delta", remeasure={
        "attempts": 2, "budget_s": 60.0, "used_s": 12.5,
        "verdicts_before": {"PASSED": 0, "FAILED": 0, "INCONCLUSIVE": 1},
        "verdicts_after": {"PASSED": 1, "FAILED": 0, "INCONCLUSIVE": 0}})
    write_study(result, tmp_path)
    write_readme(tmp_path, ["delta"])
    sentence = ("Re-measurement of inconclusive timing claims: 2 attempt(s), 12.5 s of a 60 s budget; "
                "inconclusive claims 1 before, 0 after.")
    assert sentence in (tmp_path / "delta.md").read_text()
    assert sentence in (tmp_path / "README.md").read_text()


def test_environments_that_differ_are_listed_per_study(readme, tmp_path):
    meta = json.loads((tmp_path / "beta.json").read_text())
    meta["environment"]["numpy"] = "0.0-other"
    (tmp_path / "beta.json").write_text(json.dumps(meta))
    meta = json.loads((tmp_path / "gamma.json").read_text())
    del meta["environment"]  # written before the environment was recorded
    (tmp_path / "gamma.json").write_text(json.dumps(meta))
    write_readme(tmp_path, ["alpha", "beta", "gamma"])
    env = _section((tmp_path / "README.md").read_text(), "Environment")
    assert "The studies were run in different environments:" in env
    assert "| beta | " in env and "0.0-other" in env and "| alpha | " in env
    assert "Not recorded for: gamma" in env
