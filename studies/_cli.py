"""The command line: `python -m studies NAME [NAME ...]|all|list [--quick] [--seed S]
[--workers K] [--scheduler ADDRESS] [--out DIR]`.

The results folder is `--out`, by default results/ in full mode and results-quick/ with --quick. A
folder holds results of one mode: a quick run into a folder of full-mode results is refused, and so
is a full run into a folder of quick-mode results (`studies._writer.check_mode`).

Every bad input (unknown study, invalid option, unwritable results folder, a folder that is not a
results folder or holds results of the other mode, unreachable scheduler, a failing cell) ends with
one line `studies: error: ...` on stderr and exit status 2 (usage) or 1 (run), before any result in
the folder has been replaced; a folder the run created and wrote no result into is removed again,
with its log. `--workers` above the cores this process may use is allowed (one
`studies: warning: ...` line), since a user may want it, but timed studies then measure the
contention.

Progress goes to the terminal (a bar per study on a terminal, a closing line per study naming every
file written) and to the log OUT/run.log: the command, one line per finished cell, the closing
lines, warnings and errors, each stamped with the seconds since the start. The log is opened once the
cells can run (the folder accepted, the executor up), replacing the previous run's log, and written
as the run goes (`tail -f` follows it).
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
from pathlib import Path
from typing import TextIO

from . import REGISTRY

EXIT_RUN_ERROR, EXIT_USAGE = 1, 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    # argparse prints the whole usage before the error; the issue asks for one line
    def error(self, message: str):  # noqa: ANN201 (NoReturn)
        raise _UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def _folder(text: str) -> str:
    # Path("") is the current folder: an empty --out must not silently mean "here"
    if text.strip() == "":
        raise argparse.ArgumentTypeError("must name a folder, got an empty path")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also documents the options: `python -m studies --help`)."""
    p = _Parser(prog="studies",
                description="Run testbed's studies and write their results into a folder: "
                            "results/ in full mode, results-quick/ with --quick (or --out DIR). "
                            "Progress is also written to DIR/run.log.")
    p.add_argument("names", nargs="+", metavar="NAME",
                   help=f"studies to run ({', '.join(REGISTRY)}), 'all', or 'list'")
    p.add_argument("--quick", action="store_true",
                   help="smaller grids, same code (CI, tests); writes into results-quick/ unless "
                        "--out is given, and never into a folder of full-mode results")
    p.add_argument("--seed", type=_seed, default=0, help="root seed (default 0)")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="worker processes (default: number of cores)")
    p.add_argument("--scheduler", default=None,
                   help="dask.distributed scheduler address: run the cells there instead")
    p.add_argument("--out", type=_folder, default=None,
                   help="results folder (default: results/ in full mode, results-quick/ with "
                        "--quick): new, empty, or one written by studies before in the same mode "
                        "(it holds a .testbed-results marker, which records the mode); any other "
                        "folder is refused, and so is a quick run into a folder of full-mode "
                        "results. The run's progress is logged to OUT/run.log, which each run "
                        "replaces")
    return p


class _Log:
    """The run's lines: each `say` goes to the terminal and, once `open` has been called, to
    OUT/run.log, stamped with the seconds since the start; `write` goes to the log alone. Lines
    said before `open` are kept and written when it opens; if it never does (the run stopped before
    its cells could run), they are dropped, so nothing is written into the folder. A log that
    cannot be written is closed and the run's error reported; later lines reach the terminal only."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._pending: list[str] = []
        self._fh: TextIO | None = None
        self._broken = False

    def _stamped(self, text: str) -> list[str]:
        stamp = f"[{time.perf_counter() - self._t0:8.1f} s] "
        return [stamp + line for line in text.splitlines() or [""]]

    def write(self, text: str) -> None:
        if self._broken:
            return
        lines = self._stamped(text)
        if self._fh is None:
            self._pending += lines
            return
        try:
            self._fh.write("".join(line + "\n" for line in lines))
            self._fh.flush()
        except OSError:
            self.close()
            self._broken = True
            raise

    def say(self, text: str, file: TextIO | None = None) -> None:
        print(text, file=sys.stdout if file is None else file)
        self.write(text)

    def say_quietly(self, text: str, file: TextIO | None = None) -> None:
        """`say` for the error paths: a log that cannot be written is not a second error."""
        print(text, file=sys.stdout if file is None else file)
        try:
            self.write(text)
        except OSError:
            pass

    def open(self, out: Path) -> None:
        from ._writer import open_run_log

        self._fh = open_run_log(out)
        pending, self._pending = self._pending, []
        for line in pending:  # already stamped
            self._fh.write(line + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                fh.close()
            except OSError:
                pass


def _command(name: str, quick: bool, seed: int) -> str:
    return f"python -m studies {name}" + (" --quick" if quick else "") + f" --seed {seed}"


def _invocation(argv: list[str] | None) -> str:
    return shlex.join(["python", "-m", "studies", *(sys.argv[1:] if argv is None else argv)])


def main(argv: list[str] | None = None) -> int:
    """Parse, validate, run; returns the exit status (errors: one line on stderr)."""
    try:
        args = build_parser().parse_args(argv)
        if args.names == ["list"]:
            print("\n".join(REGISTRY))
            return 0
        names = list(REGISTRY) if args.names == ["all"] else list(dict.fromkeys(args.names))
        for n in names:
            if n not in REGISTRY:
                raise _UsageError(f"unknown study {n!r}; known: {', '.join(REGISTRY)}, all, list")
    except _UsageError as exc:
        print(f"studies: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    from ._claims import QUICK_UNDECIDABLE
    from ._readme import write_readme
    from ._runner import RunError, make_executor, run_study, usable_cores
    from ._writer import (
        DEFAULT_OUT,
        RUN_LOG,
        OutputError,
        prepare_results_folder,
        remove_if_unused,
        remove_stale_temporaries,
        write_study,
    )

    started = time.time()
    mode = "quick" if args.quick else "full"
    out, created = Path(DEFAULT_OUT[mode] if args.out is None else args.out), []
    log = _Log()
    log.write(f"{_invocation(argv)}\n{mode} mode, seed {args.seed}, results folder {str(out)!r}, "
              f"started {datetime.datetime.now(datetime.UTC):%Y-%m-%dT%H:%M:%SZ}")
    cores = usable_cores()
    if args.workers is not None and args.workers > cores and args.scheduler is None:
        log.say(f"studies: warning: --workers {args.workers} is more than the {cores} cores this "
                f"process may use; cells will share cores and wall times will include the "
                f"contention", file=sys.stderr)
    try:
        created = prepare_results_folder(out, mode)
        remove_stale_temporaries(out, older_than=started)
        from . import load

        studies = [load(n) for n in names]
        with make_executor(args.workers, args.scheduler) as executor:
            log.open(out)  # the folder is accepted and the cells can run: the log starts
            for study in studies:
                t0 = time.perf_counter()
                result = run_study(study, quick=args.quick, seed=args.seed, executor=executor,
                                   log=log.write)
                result.meta["command"] = _command(study.name, args.quick, args.seed)
                result.meta["notes"] = study.notes
                result.meta["reproducibility"] = study.reproducibility
                written = [p.name for p in write_study(result, out)]
                written.append(write_readme(out, list(REGISTRY)).name)
                written.append(RUN_LOG)
                counts = result.claims["verdict"].value_counts()
                log.say(f"{study.name}: {len(result.claims)} claims"
                        f"{' (quick mode)' if args.quick else ''}: {counts.get('PASSED', 0)} "
                        f"passed, {counts.get('FAILED', 0)} failed, "
                        f"{counts.get('INCONCLUSIVE', 0)} inconclusive, "
                        f"{time.perf_counter() - t0:.1f} s -> {out}: {', '.join(written)}")
                undecidable = 0
                for row in result.claims.itertuples():
                    if row.reason == QUICK_UNDECIDABLE:
                        undecidable += 1
                    elif row.verdict != "PASSED":
                        log.say(f"  {row.verdict}: {row.study}.{row.id}: {row.reason}")
                if undecidable:
                    log.say(f"  {undecidable} INCONCLUSIVE: {QUICK_UNDECIDABLE} (full mode "
                            f"decides)")
            log.write(f"done: {len(studies)} {'study' if len(studies) == 1 else 'studies'} in "
                      f"{time.time() - started:.1f} s")
    except (RunError, OutputError) as exc:
        log.say_quietly(f"studies: error: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    except OSError as exc:  # e.g. the disk filled up while writing: the old files are still whole
        log.say_quietly(f"studies: error: cannot write results to {str(out)!r}: {exc}",
                        file=sys.stderr)
        return EXIT_RUN_ERROR
    except KeyboardInterrupt:
        log.say_quietly("studies: error: interrupted; results of unfinished studies left as they "
                        "were", file=sys.stderr)
        return 130
    finally:
        log.close()
        remove_if_unused(out, created)  # a run that wrote no result leaves no folder, no log
    return 0
