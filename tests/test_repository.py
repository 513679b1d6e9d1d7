"""The repository stands alone: no tracked file points outside it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Names of private material a clone does not have. Spelled in pieces so that this file does not
# itself match.
OUTSIDE = ["ANCH" + "ORS", "../" + "shared", "lecture" + "-notes", "STYLE" + ".md"]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs a git checkout to list the tracked files")
def test_no_tracked_file_points_outside_the_repository():
    args = ["git", "grep", "-n", "-I", "-F"] + [a for s in OUTSIDE for a in ("-e", s)]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr  # 1: no match
    hits = proc.stdout.splitlines()
    files = sorted({h.split(":", 1)[0] for h in hits})
    assert not hits, (f"{len(hits)} lines in {len(files)} tracked files point outside the "
                      f"repository ({', '.join(OUTSIDE)}): " + "; ".join(
                          f"{f} ({sum(h.startswith(f + ':') for h in hits)})" for f in files))
