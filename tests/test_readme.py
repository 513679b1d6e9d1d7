"""The README's examples really run, and the figures it quotes are those of the results."""

import pathlib
import re

ROOT = pathlib.Path(__file__).parent.parent


def test_readme_python_blocks_run(capsys):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3, "the README has lost an example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert "circuit(l=3" in capsys.readouterr().out


def test_readme_set_up_is_two_commands():
    text = (ROOT / "README.md").read_text()
    setup = re.search(r"## Set-up.*?```sh\n(.*?)```", text, flags=re.S).group(1)
    assert [line.split()[:2] for line in setup.strip().splitlines()] == [["make", "reproduce"],
                                                                         ["make", "test"]]


def test_readme_claims_summary_is_the_results_summary():
    """The README's summary line counts the full-mode verdicts of results/*.claims.csv."""
    import pandas as pd

    claims = pd.concat([pd.read_csv(p, dtype=str) for p in sorted((ROOT / "results").glob("*.claims.csv"))])
    verdicts = claims.loc[claims["mode"] == "full", "verdict"]
    counts = [f"{len(verdicts)} claims"] + [f"{int((verdicts == v).sum())} {v.lower()}"
                                            for v in ("PASSED", "FAILED", "INCONCLUSIVE")
                                            if (verdicts == v).any() or v != "INCONCLUSIVE"]
    expected = ", ".join(counts)
    quoted = re.search(r"\*\*(\d+ claims[^*]*?)\.?\*\*", (ROOT / "README.md").read_text())
    assert quoted, "the README has no claims summary line"
    assert quoted.group(1) == expected, f"the README says {quoted.group(1)!r}; results/ say {expected!r}"
