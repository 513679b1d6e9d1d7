"""Write a study's results atomically: NAME.csv, NAME.md, NAME.png, NAME.claims.csv, NAME.json.

Every file is first written in full to a temporary file in the results folder (named .tmp*, ignored
by git), flushed to disk, and only then renamed over the old one with os.replace, which is atomic on
POSIX and Windows. All files of a study are rendered before the first rename, so a run that fails
or is interrupted while computing or rendering leaves the previous results exactly as they were.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from ._study import StudyResult

MD_FULL_TABLE_MAX_ROWS = 400  # NAME.md holds the whole table up to this size, its head beyond
MD_HEAD_ROWS = 40


class OutputError(RuntimeError):
    """The results folder cannot be created or written."""


def check_writable(out_dir: Path) -> Path:
    """Create `out_dir` if needed and prove it is writable (OutputError otherwise)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".tmp-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"results folder {str(out_dir)!r} is not writable "
                          f"({exc.strerror or exc})") from None
    return out_dir


def _temp_for(path: Path) -> Path:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}-")
    os.close(fd)
    return Path(name)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` via a temporary file and os.replace."""
    StagedFiles({path: text}).commit()


class StagedFiles:
    """Render several files to temporaries; `commit()` renames them all into place.

    Values are str (text), bytes, or callables taking the temporary Path and writing it (for
    matplotlib's savefig). If any rendering fails, the temporaries are removed and nothing is
    replaced.
    """

    def __init__(self, files: dict[Path, object]):
        self._staged: list[tuple[Path, Path]] = []
        try:
            for path, content in files.items():
                tmp = _temp_for(Path(path))
                self._staged.append((tmp, Path(path)))
                if isinstance(content, str):
                    tmp.write_text(content, encoding="utf-8")
                elif isinstance(content, bytes):
                    tmp.write_bytes(content)
                else:
                    content(tmp)
                os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; results are for everyone to read
                _fsync(tmp)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        for tmp, _ in self._staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self._staged = []

    def commit(self) -> None:
        try:
            for tmp, final in self._staged:
                os.replace(tmp, final)
        finally:
            self.discard()  # whatever was not renamed (an error mid-way) is removed


def markdown_table(df: pd.DataFrame, max_rows: int | None = None) -> str:
    """A GitHub markdown table (floats to 4 significant digits), the head if max_rows is given."""
    shown = df if max_rows is None or len(df) <= max_rows else df.head(max_rows)

    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(str(c)) for c in shown.columns) + " |",
             "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in shown.itertuples(index=False)]
    if len(shown) < len(df):
        lines.append(f"\n({len(df) - len(shown)} more rows in the CSV)")
    return "\n".join(lines)


def study_markdown(result: StudyResult) -> str:
    """NAME.md: the command, the claims, the summary and the table (its head when it is long)."""
    meta, name = result.meta, result.study.name
    parts = [f"# {name}: {result.study.title}", "",
             f"Regenerate: `{meta['command']}` ({'quick' if meta['quick'] else 'full'} mode, "
             f"{meta['cells']} cells, {meta['wall_s']} s).", ""]
    if result.study.notes:
        parts += [result.study.notes, ""]
    parts += ["## Claims", "", markdown_table(result.claims.drop(columns=["study"])), ""]
    if result.summary is not None:
        parts += ["## Summary", "", markdown_table(result.summary), ""]
    full = len(result.table) <= MD_FULL_TABLE_MAX_ROWS
    head = "" if full else f", first {MD_HEAD_ROWS} of {len(result.table)} rows"
    parts += [f"## Table ({name}.csv{head})",
              "", markdown_table(result.table, None if full else MD_HEAD_ROWS), "",
              f"![{name}]({name}.png)", ""]
    return "\n".join(parts)


def write_study(result: StudyResult, out_dir: Path) -> list[Path]:
    """Write a study's files atomically (see the module docstring); returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = result.study.name

    def png(tmp: Path) -> None:
        fig = Figure(figsize=(12, 8))
        result.study.plot(result.table, fig)
        if fig.get_layout_engine() is None:
            # fixed margins: constrained layout would double the drawing time of a quick run
            fig.subplots_adjust(left=0.06, right=0.97, bottom=0.07, top=0.93, wspace=0.3,
                                hspace=0.45)
        fig.savefig(tmp, format="png", dpi=90)

    files: dict[Path, object] = {
        out_dir / f"{name}.csv": result.table.to_csv(index=False),
        out_dir / f"{name}.claims.csv": result.claims.to_csv(index=False),
        out_dir / f"{name}.md": study_markdown(result),
        out_dir / f"{name}.png": png,
        out_dir / f"{name}.json": json.dumps(result.meta, indent=2, sort_keys=True) + "\n",
    }
    if result.summary is not None:
        files[out_dir / f"{name}.summary.csv"] = result.summary.to_csv(index=False)
    staged = StagedFiles(files)
    staged.commit()
    return list(files)
