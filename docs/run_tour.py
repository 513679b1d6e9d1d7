"""Build docs/tour.ipynb from docs/tour.py (jupytext) and execute it (nbclient): `make docs`.

`build()` is also what the test suite runs, to check that the tour executes without error and that
the committed notebook holds the same code as the script.
"""

import pathlib

import jupytext
import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).parent
SCRIPT, NOTEBOOK = HERE / "tour.py", HERE / "tour.ipynb"


def build(timeout: int = 120) -> nbformat.NotebookNode:
    """The tour as a notebook, executed in docs/ with the Agg-backed inline plots."""
    nb = jupytext.read(SCRIPT)
    for n, cell in enumerate(nb.cells):  # jupytext draws random cell ids: number them instead
        cell.id = f"cell-{n}"
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    return nb


def code_cells(nb: nbformat.NotebookNode) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


if __name__ == "__main__":
    nb = build()
    for cell in nb.cells:  # execution counts and timings change on every run: keep the diff small
        cell.get("metadata", {}).pop("execution", None)
    nbformat.write(nb, NOTEBOOK)
    print(NOTEBOOK)
