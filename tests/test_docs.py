"""The documentation: no dead relative link or #anchor, nothing outside the repository, and an API
reference that pdoc builds from the docstrings without a warning."""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(md: pathlib.Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    in_code = False
    for line in md.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else re.match(r"#{1,6}\s+(.*)", line)
        if m:
            s = _slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def _links(md: pathlib.Path) -> list[str]:
    text = re.sub(r"```.*?```", "", md.read_text(), flags=re.S)  # links inside code blocks are code
    return LINK.findall(text)


def test_slugs_follow_github():
    assert _slug("complexity: Backprop costs O(N), finite differences O(N l)") == \
        "complexity-backprop-costs-on-finite-differences-on-l"
    assert _slug("2. The backprop theorem, against finite differences") == \
        "2-the-backprop-theorem-against-finite-differences"


@pytest.mark.parametrize("md", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(md):
    links = _links(md)
    assert links, f"{md} has no links"
    dead = []
    for target in links:
        if re.match(r"[a-z]+:", target):
            continue  # a web address: not checked (the suite runs offline)
        path, _, anchor = target.partition("#")
        dest = (md.parent / path).resolve() if path else md
        if not dest.exists():
            dead.append(f"{target}: no file {dest.relative_to(ROOT) if ROOT in dest.parents else dest}")
            continue
        assert ROOT in dest.parents or dest == ROOT, f"{md.name} links outside the repository: {target}"
        if anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            dead.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    assert not dead, f"dead links in {md.relative_to(ROOT)}:\n" + "\n".join(dead)


def test_claim_ids_the_docs_cite_are_claims_of_their_study():
    """`study.id` in the docs names a study of studies/ that makes a claim with that id."""
    cited = {m for md in DOCS for m in re.findall(r"`([a-z_]+)\.([a-z0-9]+(?:-[a-z0-9]+)+)`", md.read_text())}
    assert cited, "the docs cite no claim id"
    missing = [f"{study}.{cid}" for study, cid in sorted(cited)
               if not (ROOT / "studies" / f"{study}.py").exists()
               or f'"{cid}"' not in (ROOT / "studies" / f"{study}.py").read_text()]
    assert not missing, f"claim ids cited but made by no study: {missing}"


def test_the_pictures_the_docs_show_are_generated_by_make_docs():
    script = (ROOT / "docs" / "make_figures.py").read_text()
    shown = {m for md in DOCS for m in re.findall(r"img/([\w.-]+\.png)", md.read_text())}
    assert shown, "the docs show no picture"
    assert all(f'"{name}"' in script for name in shown), "a picture is not made by make_figures.py"


def test_api_reference_builds_without_warnings(tmp_path):
    """`make docs` runs pdoc over the modules the Makefile lists; here with warnings as errors."""
    pytest.importorskip("pdoc", reason="pdoc is in the test extra: pip install -e '.[test]'")
    (line,) = [ln for ln in (ROOT / "Makefile").read_text().splitlines() if ln.startswith("API_MODULES")]
    modules = line.split("=", 1)[1].split()
    assert "testbed" in modules and "testbed.nn" in modules
    out = subprocess.run([sys.executable, "-W", "error", "-m", "pdoc", *modules, "-o", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Warn" not in out.stderr, out.stderr[-3000:]
    for m in modules:
        assert (tmp_path / (m.replace(".", "/") + ".html")).exists(), f"no page for {m}"


def _run_tour():
    pytest.importorskip("nbclient", reason="nbclient is in the test extra: pip install -e '.[test]'")
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import run_tour
    finally:
        sys.path.remove(str(ROOT / "docs"))
    return run_tour


def test_tour_runs_and_the_committed_notebook_is_in_sync():
    """docs/tour.py executes without error (nbclient raises on the first failing cell) and
    docs/tour.ipynb, committed with its outputs, holds exactly the script's code."""
    import nbformat

    run_tour = _run_tour()
    nb = run_tour.build()
    committed = nbformat.read(run_tour.NOTEBOOK, as_version=4)
    assert run_tour.code_cells(committed) == run_tour.code_cells(nb), \
        "docs/tour.ipynb is out of date: run `make docs`"
    def kinds(book):  # the kinds of output of each cell: a notebook saved unexecuted has none
        return [[o.output_type for o in cell.outputs] for cell in book.cells if cell.cell_type == "code"]

    assert kinds(committed) == kinds(nb), "docs/tour.ipynb's outputs are stale: run `make docs`"
    images = sum(1 for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
                 if "image/png" in o.get("data", {}))
    assert images == 7  # four circuit pictures, the network picture, the variance plots, the spectrum
