"""The README's usage example really runs."""

import pathlib
import re


def test_readme_python_blocks_run(capsys):
    text = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has no python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert "circuit(l=3" in capsys.readouterr().out
