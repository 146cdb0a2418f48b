"""Rewrite the result tables of experiments/README.md from the committed results/ of each study.

`make studies` runs it after copying each study's tables into results/<study>/, so the README's
numbers are always those files; tests/test_experiments.py checks that they still are. The prose
findings are written by hand against these tables.

Usage: python experiments/tables.py [--check]   (--check: exit 1 if the README is out of date)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
LOSS_VALUES = ("final_loss", "val_loss")  # each variant's own objective: no column, no verdict


def _variant_columns(comparison: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """The settings that tell the variants apart: the swept keys whose value varies."""
    from lossbench.sweeps import variant_keys

    keys = variant_keys(summary)
    varying = [k for k in keys if comparison[k].nunique() > 1]
    return varying or keys[:1]


def result_table(comparison: pd.DataFrame, summary: pd.DataFrame) -> str:
    """Mean [95% interval] across seeds of each headline metric, one row per variant."""
    from lossbench.console import headline_metrics

    metrics = [m for m in headline_metrics(list(comparison.columns)) if m not in LOSS_VALUES]
    keys = _variant_columns(comparison, summary)
    lines = ["| " + " | ".join([*keys, "n", *metrics]) + " |",
             "|" + "---|" * (len(keys) + 1 + len(metrics))]  # fmt: skip
    for _, row in comparison.iterrows():
        cells = [str(row[k]) for k in keys] + [str(row["n"])]
        for m in metrics:
            mean, low, high = row[f"{m}_mean"], row[f"{m}_ci_low"], row[f"{m}_ci_high"]
            cells.append(f"{mean:.4g} [{low:.3g}, {high:.3g}]" if low == low else f"{mean:.4g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict_table(verdicts: pd.DataFrame) -> str:
    """The clear verdicts (better or worse), in the order of verdicts.csv; per-group and
    per-part breakdowns stay in the file."""
    breakdown = verdicts["metric"].str.contains(r"_group_\d+$|^val_loss_", regex=True)
    clear = verdicts[verdicts["verdict"].isin(["better", "worse"]) & ~breakdown]
    lines = ["| variant | metric | verdict | difference [95% CI] | P(improvement) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for _, r in clear.iterrows():
        diff = f"{r['diff_mean']:+.3g} [{r['diff_ci_low']:+.3g}, {r['diff_ci_high']:+.3g}]"
        lines.append(f"| {r['variant']} | {r['metric']} | {r['verdict']} | {diff} | "
                     f"{r['p_improvement']:.2f} |")  # fmt: skip
    return "\n".join(lines)


def _replace_table(section: str, after: str, table: str) -> str:
    """Replace the first Markdown table that follows the paragraph starting with `after`."""
    start = section.index(after)
    match = re.compile(r"\n\n(\|.*?\n)(?=\n|\Z)", re.S).search(section, start)
    if match is None:
        raise ValueError(f"no table after {after!r}")
    return section[: match.start(1)] + table + "\n" + section[match.end(1) :]


def rewritten(text: str) -> str:
    """The README with every study's two tables made from its results/ files."""
    parts = re.split(r"(?m)^(?=## )", text)
    out = []
    for part in parts:
        name = part[3:].split("\n", 1)[0].strip() if part.startswith("## ") else ""
        folder = HERE / "results" / name
        if name and (folder / "comparison.csv").exists():
            comparison = pd.read_csv(folder / "comparison.csv")
            summary = pd.read_csv(folder / "summary.csv")
            verdicts = pd.read_csv(folder / "verdicts.csv")
            part = _replace_table(part, "**Result**", result_table(comparison, summary))
            part = _replace_table(part, "**Clear verdicts**", verdict_table(verdicts))
        out.append(part)
    return "".join(out)


def main() -> None:
    text = README.read_text()
    new = rewritten(text)
    if "--check" in sys.argv[1:]:
        raise SystemExit(0 if new == text else "experiments/README.md: tables out of date")
    README.write_text(new)


if __name__ == "__main__":
    main()
