"""Generate results/README.md from what the studies wrote.

Order: a summary (per study: passed / failed / inconclusive, full-mode claims only), the claims that
did not pass with their one-line reason, the full claims table (ids `study.id`; the mode column only
when modes differ), the environment (once), what can differ between runs and machines, one section
per study (command, notes, summary table, figures), and the references.

It reads only files (NAME.json, NAME.claims.csv, NAME.summary.csv or NAME.csv), so running one
study refreshes the README without losing the others' sections.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ._claims import CLAIM_COLUMNS, FAILED, INCONCLUSIVE, PASSED, QUICK_UNDECIDABLE
from ._writer import (
    _require_results_folder,
    atomic_write_text,
    figure_links,
    markdown_table,
    remeasure_sentence,
)

README_HEAD_ROWS = 12
ROOT = Path(__file__).resolve().parents[1]  # the repository: studies/ is its top-level folder
THEORY = ROOT / "docs" / "theory.md"
ENVIRONMENT_KEYS = ("python", "numpy", "jax", "blas", "cpu", "cores")

REFERENCES = [
    "W. Baur and V. Strassen (1983). The complexity of partial derivatives. *Theoretical "
    "Computer Science* 22(3), 317-330.",
    "A. Griewank and A. Walther (2008). *Evaluating Derivatives: Principles and Techniques of "
    "Algorithmic Differentiation*, 2nd ed. SIAM.",
    "B. A. Pearlmutter (1994). Fast exact multiplication by the Hessian. *Neural Computation* "
    "6(1), 147-160.",
    "X. Glorot and Y. Bengio (2010). Understanding the difficulty of training deep feedforward "
    "neural networks. *AISTATS*, PMLR 9, 249-256.",
    "K. He, X. Zhang, S. Ren and J. Sun (2015). Delving deep into rectifiers: surpassing "
    "human-level performance on ImageNet classification. *ICCV*, 1026-1034.",
    "B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli (2016). Exponential "
    "expressivity in deep neural networks through transient chaos. *NeurIPS* 29.",
    "S. S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein (2017). Deep information "
    "propagation. *ICLR*.",
    "J. M. Cohen, S. Kaur, Y. Li, J. Z. Kolter and A. Talwalkar (2021). Gradient descent on neural "
    "networks typically occurs at the edge of stability. *ICLR*.",
    "R. A. Meyer, C. Musco, C. Musco and D. P. Woodruff (2021). Hutch++: optimal stochastic trace "
    "estimation. *SOSA*, 142-155.",
]

REPRODUCIBILITY = (
    "Same machine, same seed: every column except the wall-time columns (names starting with "
    "`wall`) is identical between two runs, whatever the number of workers or the executor (the "
    "tests check this for every study in quick mode): each cell draws its random numbers from its "
    "own seeded generator. Wall times, and so the timing claims, depend on the machine and on its "
    "load; a timing claim decides on a 95% interval over repetitions, so a noisy machine makes it "
    "INCONCLUSIVE (after re-measurement within the study's stated budget) rather than flipping it. "
    "Across machines, numpy and BLAS builds and BLAS thread counts, figures computed through "
    "floating-point sums can differ in their last bits: a matrix product's summation order depends "
    "on the BLAS kernel (blocking, SIMD width, fused multiply-add, threads), and libm's "
    "transcendental functions may round differently. Such figures agree to a few units in the last "
    "place, which moves no verdict unless the figure is itself at rounding level; the studies "
    "below say which of their columns are."
)


def _link(target: Path, out_dir: Path) -> str:
    # relative inside the repository (so the link works on GitHub), absolute elsewhere
    target, out_dir = target.resolve(), out_dir.resolve()
    if out_dir.is_relative_to(ROOT):
        return Path(os.path.relpath(target, out_dir)).as_posix()
    return target.as_posix()


def _load(out_dir: Path, name: str) -> tuple[dict, pd.DataFrame, pd.DataFrame, str]:
    meta = json.loads((out_dir / f"{name}.json").read_text())
    claims_path = out_dir / f"{name}.claims.csv"
    claims = (pd.read_csv(claims_path, dtype=str, keep_default_na=False) if claims_path.exists()
              else pd.DataFrame(columns=CLAIM_COLUMNS))
    # results written before claims had ids and reasons: numbered ids, no reason
    if "id" not in claims.columns:
        claims.insert(1, "id", [f"claim-{k + 1}" for k in range(len(claims))])
    if "reason" not in claims.columns:
        claims["reason"] = ""
    claims = claims[CLAIM_COLUMNS]
    summary_path = out_dir / f"{name}.summary.csv"
    if summary_path.exists():
        table, label = pd.read_csv(summary_path), "Summary"
    else:
        table, label = pd.read_csv(out_dir / f"{name}.csv"), f"Head of {name}.csv"
    return meta, claims, table, label


def _section(name: str, meta: dict, table: pd.DataFrame, label: str) -> str:
    mode = "quick" if meta["quick"] else "full"
    lines = [f"### {name}: {meta['title']}", "",
             f"Measures: {meta['where']}. Regenerate: `{meta['command']}` ({mode} mode, seed "
             f"{meta['seed']}, {meta['cells']} cells, {meta['wall_s']} s wall). Full table: "
             f"[{name}.csv]({name}.csv); with its claims: [{name}.md]({name}.md).", ""]
    if meta.get("remeasure"):
        lines += [remeasure_sentence(meta["remeasure"]), ""]
    if meta.get("notes"):
        lines += [meta["notes"], ""]
    # NAME.json lists the figure files; results written before it did have NAME.png alone
    lines += [f"{label}:", "", markdown_table(table, README_HEAD_ROWS), "",
              *figure_links(meta.get("figures", [f"{name}.png"]))]
    return "\n".join(lines)


def _summary(claims: pd.DataFrame, names: list[str]) -> list[str]:
    full = claims[claims["mode"] == "full"]
    quick_only = [n for n in names if n not in set(full["study"])]
    lines = ["## Summary", ""]
    if len(full):
        rows = []
        for name in [n for n in names if n in set(full["study"])]:
            v = full.loc[full["study"] == name, "verdict"]
            rows.append({"study": name, "claims": len(v), "passed": int((v == PASSED).sum()),
                         "failed": int((v == FAILED).sum()),
                         "inconclusive": int((v == INCONCLUSIVE).sum())})
        s = pd.DataFrame(rows)
        total = {"study": "**all**", **{c: int(s[c].sum()) for c in s.columns[1:]}}
        lines += ["Full-mode claims:", "", markdown_table(pd.concat([s, pd.DataFrame([total])])), ""]
    else:
        lines += ["No full-mode results in this folder.", ""]
    if quick_only:
        lines += [f"Run in quick mode only (claims labelled `quick`, left out of this summary): "
                  f"{', '.join(quick_only)}. Quick mode runs smaller grids through the same code; "
                  f"its verdicts are not evidence for the claims.", ""]
    return lines


def _not_passed(claims: pd.DataFrame) -> list[str]:
    lines = []
    for mode, title in (("full", "Claims that did not pass"),
                        ("quick", "Quick-mode claims that did not pass")):
        mine = claims[claims["mode"] == mode]
        if not len(mine):
            continue
        undecidable = mine[mine["reason"] == QUICK_UNDECIDABLE]
        bad = mine[(mine["verdict"] != PASSED) & (mine["reason"] != QUICK_UNDECIDABLE)]
        lines += [f"## {title}", ""]
        if len(bad):
            rows = pd.DataFrame({"claim": "`" + bad["study"] + "." + bad["id"] + "`",
                                 "verdict": bad["verdict"], "reason": bad["reason"],
                                 "statement": bad["claim"]})
            lines += [markdown_table(rows), ""]
        else:
            lines += ["None." if not len(undecidable)
                      else "No claim FAILED, and none is INCONCLUSIVE on its data.", ""]
        if len(undecidable):
            lines += [f"INCONCLUSIVE with the reason \"{QUICK_UNDECIDABLE}\" (full mode decides "
                      f"them), {len(undecidable)}: "
                      + ", ".join(f"`{r.study}.{r.id}`" for r in undecidable.itertuples()) + ".", ""]
    return lines


def _all_claims(claims: pd.DataFrame) -> list[str]:
    table = claims.assign(id="`" + claims["study"] + "." + claims["id"] + "`")
    cols = ["id", "claim", "where", "measured", "expected", "verdict"]
    if claims["mode"].nunique() > 1:
        cols.append("mode")
    mode = "" if claims["mode"].nunique() > 1 else f" (all {claims['mode'].iloc[0]} mode)"
    return [f"## All claims{mode}", "", markdown_table(table[cols]), ""]


def _environment(metas: dict[str, dict]) -> list[str]:
    envs = {n: m.get("environment") for n, m in metas.items()}
    missing = [n for n, e in envs.items() if not e]
    envs = {n: e for n, e in envs.items() if e}
    lines = ["## Environment", ""]
    if envs:
        shared = {k: {str(e.get(k)) for e in envs.values()} for k in ENVIRONMENT_KEYS}
        if all(len(v) == 1 for v in shared.values()):
            lines += [markdown_table(pd.DataFrame(
                {"": list(ENVIRONMENT_KEYS), "value": [next(iter(shared[k])) for k in ENVIRONMENT_KEYS]}
            )), ""]
        else:
            lines += ["The studies were run in different environments:", "",
                      markdown_table(pd.DataFrame([{"study": n, **{k: e.get(k) for k in ENVIRONMENT_KEYS}}
                                                   for n, e in envs.items()])), ""]
        dates = sorted(str(e.get("date")) for e in envs.values())
        lines += [f"Run between {dates[0]} and {dates[-1]} (UTC)." if dates[0] != dates[-1]
                  else f"Run on {dates[0]} (UTC).", ""]
    if missing:
        lines += [f"Not recorded for: {', '.join(missing)} (written before the environment was "
                  f"recorded).", ""]
    return lines


def _reproducibility(metas: dict[str, dict]) -> list[str]:
    lines = ["## Reproducibility", "", REPRODUCIBILITY, ""]
    notes = [(n, m["reproducibility"]) for n, m in metas.items() if m.get("reproducibility")]
    lines += [f"- **{n}**: {' '.join(text.split())}" for n, text in notes]
    return lines + ([""] if notes else [])


def write_readme(out_dir: Path, order: list[str]) -> Path:
    """Regenerate out_dir/README.md for the studies in `order` that have results there."""
    out_dir = Path(out_dir)
    _require_results_folder(out_dir)
    metas, claims, sections = {}, [], []
    for name in order:
        if not (out_dir / f"{name}.json").exists():
            continue
        meta, cl, table, label = _load(out_dir, name)
        metas[name] = meta
        claims.append(cl)
        sections.append(_section(name, meta, table, label))
    theory = _link(THEORY, out_dir)
    lines = ["# Results", "",
             "Generated by `python -m studies` (do not edit by hand). Each study is a grid of seeded "
             "cells; `--quick` runs a smaller grid through the same code. A claim about a fitted or "
             "estimated figure decides on its 95% interval: PASSED when the interval lies inside the "
             "tolerance, FAILED when it lies outside, INCONCLUSIVE when it straddles a bound. The "
             f"theory the claims come from: [docs/theory.md]({theory}).", ""]
    if claims:
        table = pd.concat(claims, ignore_index=True)
        lines += [*_summary(table, list(metas)), *_not_passed(table), *_all_claims(table),
                  *_environment(metas), *_reproducibility(metas)]
    lines += ["## Studies", "", *sections,
              "## References", "",
              f"- The project's theory: [docs/theory.md]({theory}).",
              *[f"- {ref}" for ref in REFERENCES], ""]
    path = out_dir / "README.md"
    atomic_write_text(path, "\n".join(lines))
    return path
