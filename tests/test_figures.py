"""A study's extra figures (`Study.figures`): written as NAME-<suffix>.png beside NAME.png, shown in
NAME.md and the results README, listed in NAME.json, and rendered before anything is replaced."""

from __future__ import annotations

import concurrent.futures as cf
import json

import pandas as pd
import pytest

from studies._claims import claim, claims_table
from studies._readme import write_readme
from studies._runner import run_study
from studies._study import Study
from studies._writer import write_study

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _cell(params: dict, seed: int) -> pd.DataFrame:
    return pd.DataFrame({"i": [params["i"]], "x": [float(params["i"]) ** 2]})


def _toy(extras: bool = True, broken: str | None = None) -> Study:
    """A study with the main figure and, if `extras`, two more ("scatter", "bars"); the figure
    named by `broken` ("" for the main one) raises while it is drawn."""

    def drawer(suffix: str, draw):
        def plot(table, fig):
            if suffix == broken:
                raise RuntimeError(f"figure {suffix!r} broke")
            draw(fig.subplots(), table)
        return plot

    figures = {"scatter": drawer("scatter", lambda ax, t: ax.scatter(t["x"], t["i"])),
               "bars": drawer("bars", lambda ax, t: ax.bar(t["i"], t["x"]))} if extras else {}
    return Study(name="toy", title="toy", where="nowhere",
                 grid=lambda quick: [{"i": i} for i in range(4)], cell=_cell,
                 aggregate=lambda raw, quick: raw,
                 claims=lambda table, quick: claims_table(
                     "toy", [claim("x is a square", "nowhere", "x", "i^2",
                                   bool((table["x"] == table["i"] ** 2).all()), id="square")], quick),
                 plot=drawer("", lambda ax, t: ax.plot(t["i"], t["x"])), figures=figures)


def _write(study: Study, out) -> list:
    with cf.ThreadPoolExecutor(1) as ex:
        result = run_study(study, quick=True, seed=0, executor=ex, progress=False)
    result.meta["command"] = "python -m studies toy --quick"
    return write_study(result, out)


def _snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


FILES = ["toy.png", "toy-scatter.png", "toy-bars.png"]


def test_extra_figures_are_written_shown_and_listed(tmp_path):
    paths = _write(_toy(), tmp_path)
    assert {tmp_path / f for f in FILES} <= set(paths)
    pngs = [(tmp_path / f).read_bytes() for f in FILES]
    assert all(len(b) > len(PNG_MAGIC) and b.startswith(PNG_MAGIC) for b in pngs)
    assert len(set(pngs)) == 3  # each file holds its own drawing
    assert not list(tmp_path.glob(".tmp*"))
    assert json.loads((tmp_path / "toy.json").read_text())["figures"] == FILES
    md = (tmp_path / "toy.md").read_text()
    links = ["![toy](toy.png)", "![toy-scatter](toy-scatter.png)", "![toy-bars](toy-bars.png)"]
    at = [md.index(link) for link in links]
    assert at == sorted(at) and at[0] > md.index("## Table")  # below the table, main one first
    write_readme(tmp_path, ["toy"])
    section = (tmp_path / "README.md").read_text().split("### toy:", 1)[1]
    at = [section.index(link) for link in links]
    assert at == sorted(at)


def test_a_study_without_extra_figures_writes_and_lists_its_plot_alone(tmp_path):
    _write(_toy(extras=False), tmp_path)
    assert json.loads((tmp_path / "toy.json").read_text())["figures"] == ["toy.png"]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["toy.png"]
    assert "![toy-" not in (tmp_path / "toy.md").read_text()


def test_readme_of_results_written_before_figures_were_listed(tmp_path):
    _write(_toy(), tmp_path)
    meta = json.loads((tmp_path / "toy.json").read_text())
    del meta["figures"]
    (tmp_path / "toy.json").write_text(json.dumps(meta))
    text = write_readme(tmp_path, ["toy"]).read_text()
    assert "![toy](toy.png)" in text and "toy-scatter" not in text


@pytest.mark.parametrize("previous_extras", [True, False])
@pytest.mark.parametrize("broken", ["", "scatter", "bars"])
def test_a_figure_failing_leaves_the_previous_results_whole(tmp_path, previous_extras, broken):
    _write(_toy(extras=previous_extras), tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(RuntimeError, match=f"figure {broken!r} broke"):
        _write(_toy(broken=broken), tmp_path)
    assert _snapshot(tmp_path) == before  # nothing replaced, nothing added, no temporary left


@pytest.mark.parametrize("figures, error, message", [
    ({"": lambda table, fig: None}, ValueError, "the main figure is `plot`"),
    ({"Hessian": lambda table, fig: None}, ValueError, "figure suffix 'Hessian'"),
    ({"a/b": lambda table, fig: None}, ValueError, "figure suffix 'a/b'"),
    ({"-x": lambda table, fig: None}, ValueError, "figure suffix '-x'"),
    ({"hessian": "plot_hessian"}, TypeError, r"figures\['hessian'\] must be a function"),
])
def test_bad_figures_are_refused_when_the_study_is_defined(figures, error, message):
    with pytest.raises(error, match=message):
        Study(name="toy", title="toy", where="nowhere", grid=lambda quick: [], cell=_cell,
              aggregate=lambda raw, quick: raw, claims=lambda table, quick: None,
              plot=lambda table, fig: None, figures=figures)
