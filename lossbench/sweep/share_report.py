"""The report's section on where the gradient goes: each variant's mean share per group and
class across seeds (from comparison.csv's `share_*` columns) and its shares over training (a
stacked area per variant, from the runs' grad_groups.csv)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench.run.shares import GRAD_GROUPS, GRAD_GROUPS_COLUMNS
from lossbench.store.run_folder import Status
from lossbench.sweep.plots import figure_panels, smooth, variant_label
from lossbench.sweep.readback import TableProblem, job_dir, read_table

_SHARE = re.compile(r"^share_(group|class)_(.+?)(?:_(early|late))?_mean$")
PHASES = ("", "early", "late")
CURVE_POINTS = 50  # the curves are smoothed over about 1/50 of the recorded steps


def shared_units(comparison: pd.DataFrame) -> dict[str, list[str]]:
    """The units comparison.csv has shares of: by kind (`group`, `class`), their names."""
    units: dict[str, list[str]] = {}
    for column in comparison.columns:
        match = _SHARE.match(column)
        if match and match.group(3) is None:
            units.setdefault(match.group(1), []).append(match.group(2))
    return units


def share_table(comparison: pd.DataFrame, keys: list[str], by: str, names: list[str]) -> str:
    """A markdown table: per variant and unit, the mean share over training, early and late,
    each with its 95% t interval across seeds."""
    header = ["variant", by, "share", "early (first 10%)", "late (last 10%)"]
    lines = ["| " + " | ".join(header) + " |", "|---|---|---:|---:|---:|"]
    for _, row in comparison.iterrows():
        for name in names:
            cells = [_cell(row, f"share_{by}_{name}" + (f"_{p}" if p else "")) for p in PHASES]
            if cells == ["-"] * len(PHASES):  # a variant without this kind (no classes)
                continue
            label = variant_label(row, keys).replace("|", "\\|")
            lines.append(f"| {label} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(row: pd.Series, column: str) -> str:
    mean, low, high = (row.get(f"{column}_{s}", np.nan) for s in ("mean", "ci_low", "ci_high"))
    if mean is None or mean != mean:
        return "-"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]" if low == low else f"{mean:.3f}"


def share_lines(
    root: Path,
    summary: pd.DataFrame,
    comparison: pd.DataFrame,
    keys: list[str],
    problems: list[str] | None,
) -> list[str]:
    """The report's section (none when no run recorded its units): the tables and the plot."""
    units = shared_units(comparison)
    if not units:
        return []
    lines = [
        "## Where the gradient goes",
        "",
        "Each group's and class's share of every recorded step's gradient "
        "(`trainer.record_groups`): the projection of its samples' contribution on the "
        "step's gradient over the gradient's squared norm, so a step's shares of one kind "
        "add up to 1 and a negative share pulls against the update. Mean over training "
        "and over its first and last tenth, with 95% t intervals across seeds; each run's "
        f"steps are in its `{GRAD_GROUPS}`.",
        "",
    ]
    for by, names in units.items():
        lines += [share_table(comparison, keys, by, names), ""]
    curves = load_shares(root, summary, keys, problems)
    if curves:
        plot_shares(curves, root / "gradient_shares.png")
        lines += [
            "Shares over training, mean across seeds, smoothed; the smallest unit (fewest "
            "samples per batch) on top:",
            "",
            "![gradient shares](gradient_shares.png)",
            "",
        ]
    return lines


def load_shares(
    root: Path, summary: pd.DataFrame, keys: list[str], problems: list[str] | None
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (variant, kind): the recorded steps, the unit names (largest first by mean samples)
    and their shares averaged across the finished seeds, from grad_groups.csv."""
    pooled: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for _, row in summary[summary["status"] == Status.ok].iterrows():
        path = job_dir(root, str(row["job"])) / GRAD_GROUPS
        if not path.exists():
            continue
        try:
            frame = read_table(path, GRAD_GROUPS_COLUMNS)
        except TableProblem as problem:
            if problems is not None:
                problems.append(str(problem))
            continue
        for by, part in frame.groupby("by", sort=False):
            pooled.setdefault((variant_label(row, keys), str(by)), []).append(part)
    curves = {}
    for key, frames in pooled.items():
        rows = pd.concat(frames)
        rows["name"] = rows["name"].astype(str)
        shares = rows.pivot_table(index="step", columns="name", values="share", aggfunc="mean")
        order = rows.groupby("name")["samples"].mean().sort_values(ascending=False).index
        shares = shares[list(order)]
        curves[key] = {
            "steps": shares.index.to_numpy(),
            "names": list(order),
            "shares": shares.to_numpy(dtype="float64").T,
        }
    return curves


def plot_shares(curves: dict[tuple[str, str], dict[str, Any]], path: Path) -> None:
    """One panel per (variant, kind): its units' shares stacked over the steps."""
    import matplotlib.pyplot as plt

    fig, _, panels = figure_panels(len(curves), 3.6, 3.6, sharey=True)
    for ax, ((label, by), curve) in zip(panels, curves.items(), strict=True):
        window = max(1, len(curve["steps"]) // CURVE_POINTS)
        shares = smooth(curve["shares"], window)
        ax.stackplot(
            curve["steps"], shares, labels=[f"{by} {n}" for n in curve["names"]], alpha=0.85
        )
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_title(f"{label}\nby {by}", fontsize="small")
        ax.set_xlabel("step")
        handles, names = ax.get_legend_handles_labels()
        ax.legend(
            handles[::-1],
            names[::-1],
            fontsize="x-small",
            ncol=4,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.28),
        )
        ax.grid(alpha=0.3)
    panels[0].set_ylabel("share of the gradient")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
