"""Write a study's results atomically: NAME.csv, NAME.md, NAME.png (and NAME-<suffix>.png for each of
the study's extra `figures`), NAME.claims.csv, NAME.summary.csv (if any), NAME.json.

Only into a results folder: one that holds the marker file MARKER (`.testbed-results`), or that
`prepare_results_folder` creates or finds empty and then marks. A folder that exists, is not empty
and has no marker (the current folder, a home directory, a repository) is refused with OutputError,
so the writer never replaces a file it did not write.

The marker records the mode of the folder's results (a line `mode: full` or `mode: quick`) when
`prepare_results_folder` is given one (the command line always does), and a folder holds results of
one mode: a run of the other mode is refused, so quick-mode tables never replace full-mode ones. A
marker without a mode line (written before markers recorded it, like the repository's results/)
accepts full-mode runs as before, and quick-mode runs only while no NAME.json there records a
full-mode run; it is left as it is (never rewritten).

The run's log, RUN_LOG (`run.log`), is opened by `open_run_log` in a results folder only: it
replaces the previous run's log (atomically, like every other file) and is then written line by line
while the run goes on.

Every file is first written in full to a temporary file in the results folder (named .tmp*, ignored
by git), flushed to disk, and only then renamed over the old one with os.replace, which is atomic on
POSIX and Windows. All files of a study, every figure included, are rendered before the first
rename, so a run that fails or is interrupted while computing or rendering leaves the previous
results exactly as they were.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import pandas as pd

from ._study import Study, StudyResult

MD_FULL_TABLE_MAX_ROWS = 400  # NAME.md holds the whole table up to this size, its head beyond
MD_HEAD_ROWS = 40


MARKER = ".testbed-results"
MARKER_TEXT = ("This folder is written by `python -m studies` (testbed). Its files are replaced on "
               "every run; the writer refuses folders without this file.\n")
TEMP_PREFIX = ".tmp-"
MODES = ("full", "quick")
# the folder the command line writes into when --out is not given, by mode
DEFAULT_OUT = {"full": "results", "quick": "results-quick"}
RUN_LOG = "run.log"
_MODE_LINE = re.compile(r"^mode:[ \t]*(\S*)[ \t]*$", re.MULTILINE)


def marker_text(mode: str | None = None) -> str:
    """The marker's text; with a mode, a last line `mode: MODE` records the mode of the results."""
    if mode is None:
        return MARKER_TEXT
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return (MARKER_TEXT + "The line below is the mode of the results here; a run of the other mode "
            f"is refused.\nmode: {mode}\n")


def marker_mode(out_dir: str | Path) -> str | None:
    """The mode the marker of results folder `out_dir` records ('full', 'quick'), or None if its
    marker has no mode line. OutputError if the folder has no marker or it records another word."""
    path = Path(out_dir) / MARKER
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise OutputError(f"cannot read the results marker {str(path)!r} "
                          f"({exc.strerror or exc})") from None
    found = _MODE_LINE.findall(text)
    if not found:
        return None
    if len(set(found)) > 1 or found[0] not in MODES:
        raise OutputError(f"the results marker {str(path)!r} records an unknown mode "
                          f"{', '.join(map(repr, dict.fromkeys(found)))} (expected 'mode: full' or "
                          f"'mode: quick'); fix or remove that line")
    return found[0]


def full_mode_results(out_dir: str | Path) -> list[str]:
    """The NAME.json files in `out_dir` that record a full-mode run (`"quick": false`), sorted."""
    found = []
    for path in sorted(Path(out_dir).glob("*.json")):
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not one of ours, or unreadable: no claim about the mode
        if isinstance(meta, dict) and meta.get("quick") is False:
            found.append(path.name)
    return found


def check_mode(out_dir: str | Path, mode: str) -> None:
    """Refuse (OutputError) to write `mode` results into the marked folder `out_dir` when its
    marker records the other mode, or, for a quick run, when it records no mode and the folder
    holds full-mode results."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    recorded = marker_mode(out_dir)
    other = "full" if mode == "quick" else "quick"
    hint = (f"{mode} mode writes into {DEFAULT_OUT[mode]}/ unless --out names another folder; name "
            f"a new or empty folder, or one of {mode}-mode results")
    if recorded == other:
        raise OutputError(f"refusing to write {mode}-mode results into {str(out_dir)!r}: its "
                          f"{MARKER} marker says it holds {other}-mode results ({hint})")
    if recorded is None and mode == "quick":
        full = full_mode_results(out_dir)
        if full:
            shown = ", ".join(full[:3]) + (f" and {len(full) - 3} more" if len(full) > 3 else "")
            raise OutputError(f"refusing to write quick-mode results into {str(out_dir)!r}: it "
                              f"holds full-mode results ({shown}) and its {MARKER} marker records "
                              f"no mode ({hint})")


class OutputError(RuntimeError):
    """The results folder cannot be created or written, or is not a results folder."""


def _unwritable(out_dir: Path, exc: OSError) -> OutputError:
    return OutputError(f"results folder {str(out_dir)!r} is not writable ({exc.strerror or exc})")


def prepare_results_folder(out_dir: str | Path, mode: str | None = None) -> list[Path]:
    """Make `out_dir` a results folder and prove it writable; return the folders it created.

    A missing folder is created (with its missing parents) and marked; an existing empty one is
    marked; an existing one with the marker is used as it is. Anything else raises OutputError
    without touching it: an empty path, a file, a non-empty folder without the marker, a folder
    that cannot be written, and, when `mode` ('full' or 'quick') is given, a marked folder whose
    results are of the other mode (`check_mode`). A marker it writes records `mode`. Returns what it
    created (folders, and the marker if it wrote it): pass it to `remove_if_unused` when the run
    fails.
    """
    if str(out_dir).strip() == "":
        raise OutputError("the results folder must be named (got an empty path)")
    out_dir = Path(out_dir)
    missing = []
    for folder in (out_dir, *out_dir.parents):
        if folder.exists():
            break
        missing.append(folder)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputError(f"results folder {str(out_dir)!r} is a file, not a folder")
        if not (out_dir / MARKER).is_file():
            if any(out_dir.iterdir()):
                raise OutputError(
                    f"refusing to write into {str(out_dir)!r}: it is not empty and has no {MARKER} "
                    f"file, so it is not a results folder (name a new or empty folder with --out)")
        elif mode is not None:
            check_mode(out_dir, mode)
    created: list[Path] = []
    try:
        for folder in reversed(missing):
            folder.mkdir()
            created.append(folder)
        if not (out_dir / MARKER).is_file():
            (out_dir / MARKER).write_text(marker_text(mode), encoding="utf-8")
            created.append(out_dir / MARKER)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=f"{TEMP_PREFIX}probe-"):
            pass
    except OSError as exc:
        remove_if_unused(out_dir, created)
        raise _unwritable(out_dir, exc) from None
    return created


def remove_if_unused(out_dir: str | Path, created: list[Path]) -> None:
    """Undo `prepare_results_folder` when no result was written: if `out_dir` holds nothing but the
    marker and the run's log, remove the log and what `created` lists (the marker, then the
    folders, innermost first). (`created` lists the marker only if the folder was new or empty, so
    a log there is the current run's.)"""
    out_dir = Path(out_dir)
    if not created or not out_dir.is_dir():
        return
    if not {p.name for p in out_dir.iterdir()} <= {MARKER, RUN_LOG}:
        return
    with contextlib.suppress(OSError):
        (out_dir / RUN_LOG).unlink(missing_ok=True)
    for path in reversed(created):
        with contextlib.suppress(OSError):  # gone already, or not empty: leave it
            path.rmdir() if path.is_dir() else path.unlink()


def remove_stale_temporaries(out_dir: str | Path, older_than: float) -> list[Path]:
    """Remove the `.tmp-*` files a killed run left in the results folder `out_dir`.

    Only in a marked folder, and only files last modified before `older_than` (a time.time()
    stamp: the start of the current run), so that no file of the current run is touched. (Two runs
    writing into one folder at the same time are not supported: they replace each other's files.)
    """
    out_dir = Path(out_dir)
    if not (out_dir / MARKER).is_file():
        return []
    removed = []
    for path in out_dir.glob(f"{TEMP_PREFIX}*"):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < older_than:
                path.unlink()
                removed.append(path)
    return removed


def _require_results_folder(out_dir: Path, mode: str | None = None) -> None:
    if not (Path(out_dir) / MARKER).is_file():
        prepare_results_folder(out_dir)  # marks a new or empty folder, refuses any other
    elif mode is not None:
        recorded = marker_mode(out_dir)
        if recorded not in (None, mode):
            check_mode(out_dir, mode)  # raises: the marker records the other mode


def open_run_log(out_dir: str | Path) -> TextIO:
    """Open OUT/RUN_LOG for the current run, in the results folder `out_dir` only (OutputError
    for any other folder): a new file replaces the previous log atomically (a symlink named
    RUN_LOG is replaced, not followed), then the caller writes it line by line and closes it."""
    out_dir = Path(out_dir)
    _require_results_folder(out_dir)
    path = out_dir / RUN_LOG
    tmp = _temp_for(path)
    try:
        fh = open(tmp, "a", encoding="utf-8")  # noqa: SIM115 (returned to the caller, who closes it)
        try:
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            fh.close()
            raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return fh


def _temp_for(path: Path) -> Path:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}-")
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


def remeasure_sentence(r: dict) -> str:
    """One sentence on the re-measurement of inconclusive timing claims (meta["remeasure"])."""
    left = r["verdicts_after"].get("INCONCLUSIVE", 0)
    if r["attempts"] == 0:
        return ("Re-measurement: not needed (no inconclusive claim)." if left == 0 else
                f"Re-measurement: none run (budget {r['budget_s']:g} s, or no cell to re-run); "
                f"{left} claim(s) left inconclusive.")
    before, after = r["verdicts_before"], r["verdicts_after"]
    return (f"Re-measurement of inconclusive timing claims: {r['attempts']} attempt(s), "
            f"{r['used_s']:g} s of a {r['budget_s']:g} s budget; inconclusive claims "
            f"{before.get('INCONCLUSIVE', 0)} before, {after.get('INCONCLUSIVE', 0)} after.")


def figure_files(study: Study) -> list[str]:
    """The file names of a study's figures, in the order NAME.md shows them: NAME.png (`plot`),
    then NAME-<suffix>.png for each entry of `figures`."""
    return [f"{study.name}.png", *(f"{study.name}-{suffix}.png" for suffix in study.figures)]


def figure_links(files: list[str]) -> list[str]:
    """Markdown pictures of `files` (names relative to NAME.md), one paragraph each."""
    return [line for f in files for line in (f"![{f.removesuffix('.png')}]({f})", "")]


def study_markdown(result: StudyResult) -> str:
    """NAME.md: the command, the claims, the summary, the table (its head when it is long), the
    figures."""
    meta, name = result.meta, result.study.name
    parts = [f"# {name}: {result.study.title}", "",
             f"Regenerate: `{meta['command']}` ({'quick' if meta['quick'] else 'full'} mode, "
             f"{meta['cells']} cells, {meta['wall_s']} s).", ""]
    if meta.get("remeasure"):
        parts += [remeasure_sentence(meta["remeasure"]), ""]
    if meta.get("environment"):
        parts += ["Environment: " + ", ".join(f"{k} {v}" for k, v in meta["environment"].items())
                  + ".", ""]
    if result.study.notes:
        parts += [result.study.notes, ""]
    # one study, one mode (stated above): the table needs neither column
    claims = result.claims.drop(columns=[c for c in ("study", "mode") if c in result.claims.columns])
    parts += ["## Claims", "", markdown_table(claims), ""]
    if result.summary is not None:
        parts += ["## Summary", "", markdown_table(result.summary), ""]
    full = len(result.table) <= MD_FULL_TABLE_MAX_ROWS
    head = "" if full else f", first {MD_HEAD_ROWS} of {len(result.table)} rows"
    parts += [f"## Table ({name}.csv{head})",
              "", markdown_table(result.table, None if full else MD_HEAD_ROWS), "",
              *figure_links(figure_files(result.study))]
    return "\n".join(parts)


def write_study(result: StudyResult, out_dir: Path) -> list[Path]:
    """Write a study's files atomically (see the module docstring); returns their paths, in the
    order NAME.csv, NAME.md, the figures, NAME.claims.csv, NAME.summary.csv (if any), NAME.json.

    A folder whose marker records the other mode than `result.meta["quick"]` is refused
    (OutputError). (A folder it marks itself gets a marker without a mode: from Python, one folder
    may hold both modes, as the results README supports; the command line does not do that.)"""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    quick = result.meta.get("quick")
    _require_results_folder(out_dir, None if quick is None else ("quick" if quick else "full"))
    name = result.study.name

    def png(draw: Callable[..., None]) -> Callable[[Path], None]:
        def render(tmp: Path) -> None:
            fig = Figure(figsize=(12, 8))
            draw(result.table, fig)
            if fig.get_layout_engine() is None:
                # fixed margins: constrained layout would double the drawing time of a quick run
                fig.subplots_adjust(left=0.06, right=0.97, bottom=0.07, top=0.93, wspace=0.3,
                                    hspace=0.45)
            fig.savefig(tmp, format="png", dpi=90)
        return render

    pictures = figure_files(result.study)
    meta = {**result.meta, "figures": pictures}
    files: dict[Path, object] = {
        out_dir / f"{name}.csv": result.table.to_csv(index=False),
        out_dir / f"{name}.md": study_markdown(result),
        **{out_dir / f: png(draw) for f, draw in
           zip(pictures, [result.study.plot, *result.study.figures.values()], strict=True)},
        out_dir / f"{name}.claims.csv": result.claims.to_csv(index=False),
    }
    if result.summary is not None:
        files[out_dir / f"{name}.summary.csv"] = result.summary.to_csv(index=False)
    # NAME.json last: the README takes a study's presence from it
    files[out_dir / f"{name}.json"] = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    staged = StagedFiles(files)
    staged.commit()
    return list(files)
