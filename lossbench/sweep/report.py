"""`lossbench-report DIR`: aggregate a run or sweep folder again, print the comparison, and
write report.md with PNG plots next to the tables.

Plots (matplotlib, no display needed): the loss and the global gradient norm per step for each
variant (mean across seeds with a min-max band, smoothed over a rolling window), a heatmap of
per-layer gradient norms over training, each metric's mean and 95% t interval per variant, and
(binary sweeps) reliability diagrams. Everything is read from the folders' files
(`lossbench.sweep.readback`), so any finished, failed or copied sweep can be reported.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench.store.run_folder import Status
from lossbench.sweep.aggregate import metrics_split, variant_keys
from lossbench.sweep.plots import plot_curves, plot_layer_heatmap, plot_metric_intervals
from lossbench.sweep.readback import load_curves, reliability_lines
from lossbench.sweep.results import SweepTables, sweep_tables
from lossbench.sweep.search_report import search_lines
from lossbench.sweep.share_report import share_lines
from lossbench.sweep.verdicts import describe_verdicts, why_no_verdicts


def _markdown(frame: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


def comparison_markdown(comparison: pd.DataFrame, keys: list[str], metrics: list[str]) -> str:
    """The comparison as a markdown table of "mean [95% CI]" cells."""
    table = comparison[[*keys, "ok", "jobs"]].copy()
    for metric in metrics:
        cells = zip(
            comparison[f"{metric}_mean"],
            comparison[f"{metric}_ci_low"],
            comparison[f"{metric}_ci_high"],
            strict=True,
        )
        table[metric] = [
            "-"
            if np.isnan(m)
            else (f"{m:.4g} [{lo:.3g}, {hi:.3g}]" if not np.isnan(lo) else f"{m:.4g}")
            for m, lo, hi in cells
        ]
    return _markdown(table)


class ReportError(Exception):
    """Nothing can be reported: one line for the user."""


def report(
    root: Path,
    baseline: str | None = None,
    *,
    prog: str = "lossbench",
    quiet: bool = False,
    markdown: bool = False,
) -> SweepTables:
    """The one reporter of a sweep folder, for the sweeper, the search and `lossbench-report`:
    aggregate its job folders, say on stderr each file left out (one line each, `prog` first),
    print the comparison unless `quiet`, then write summary.csv, comparison.csv and verdicts.csv
    and, with `markdown`, report.md and its plots. Every file that could not be read is in the
    returned tables' `problems`.

    Raises:
        ReportError: no run folder under `root`.
        OSError: a table, plot or the report cannot be written.
    """
    from lossbench.console import headline_metrics, print_or_drop, print_sweep
    from lossbench.store.claims import remove_leftovers
    from lossbench.sweep.aggregate import job_folders

    for folder in {root, *job_folders(root)}:  # those no process holds
        remove_leftovers(folder)
    tables = sweep_tables(root, baseline)
    _say_left_out(tables.problems, tables.left_out, prog)
    summary, comparison, verdicts = tables.summary, tables.comparison, tables.verdicts
    if summary.empty:
        raise ReportError(f"no run folders (summary.json) under {root}")
    keys = variant_keys(summary)
    metrics = headline_metrics(list(comparison.columns))
    sentences = describe_verdicts(verdicts, metrics)
    why = why_no_verdicts(summary, baseline) if verdicts.empty else None
    if not quiet:  # before writing: a folder that cannot be written still gets its comparison
        kind = "report" if markdown else "sweep"
        title = f"lossbench {kind}: {root} (metrics on the {metrics_split(summary)} split)"
        print_or_drop(print_sweep, comparison, keys, sentences, title)
        if why:
            print_or_drop(print, f"{prog}: {why}")
    tables.write(root)
    if markdown:
        _without_display()
        lines = _summary_lines(root, summary, comparison, verdicts, sentences, keys, metrics, why)
        said = len(tables.problems)
        lines += _figures(root, tables, keys, metrics)  # may find more files it cannot read
        _say_left_out(tables.problems[said:], [], prog)
        from lossbench.store.files import atomic_write_text

        atomic_write_text(root / "report.md", "\n".join(lines))
    return tables


def _without_display() -> None:
    """Plots go to files: no display is needed or opened."""
    import matplotlib

    matplotlib.use("Agg")


def _say_left_out(problems: list[str], folders: list[str], prog: str) -> None:
    """One line on stderr per file that could not be read, and one for the job folders the
    sweep did not plan."""
    for problem in problems:
        print(f"{prog}: left out: {problem}", file=sys.stderr)
    if folders:
        print(
            f"{prog}: left out of this sweep's tables: {len(folders)} job folders the sweep "
            f"did not plan ({', '.join(folders)})",
            file=sys.stderr,
        )


def _figures(root: Path, tables: SweepTables, keys: list[str], metrics: list[str]) -> list[str]:
    """The report's sections after its tables: the search, the curves, the gradient shares,
    the files left out, the metrics' intervals and the reliability diagrams."""
    summary, comparison, problems = tables.summary, tables.comparison, tables.problems
    lines = search_lines(root)
    lines += _curve_lines(root, load_curves(root, summary, keys, problems))
    lines += share_lines(root, summary, comparison, keys, problems)
    if problems:
        lines += [
            "## Files left out",
            "",
            "These files could not be read:",
            "",
            *(f"- `{problem}`" for problem in problems),
            "",
        ]
    if len(comparison) and plot_metric_intervals(comparison, keys, metrics, root / "metrics.png"):
        lines += [
            "## Metrics",
            "",
            "Each variant's mean across seeds (point) and its 95% t interval (line), on "
            "an axis fitted to the values; each variant's own loss is left out (it "
            "measures a different thing per variant).",
            "",
            "![metrics](metrics.png)",
            "",
        ]
    return lines + reliability_lines(root, summary, keys, problems)


def _summary_lines(
    root: Path,
    summary: pd.DataFrame,
    comparison: pd.DataFrame,
    verdicts: pd.DataFrame,
    sentences: list[str],
    keys: list[str],
    metrics: list[str],
    why: str | None,
) -> list[str]:
    """The report's verdicts, comparison table and the jobs that did not finish."""
    baselines = list(dict.fromkeys(verdicts["baseline"])) if len(verdicts) else []
    against = f"`{baselines[0]}`" if len(baselines) == 1 else None
    if len(baselines) > 1:  # a sweep over tasks: each task's plain loss
        against = "its task's plain loss (" + ", ".join(f"`{b}`" for b in baselines) + ")"
    says = [f"- {s}" for s in sentences] or [
        f"- {(why or 'no verdicts: the sweep has a single variant.').capitalize()}"
    ]
    lines = [
        f"# lossbench report: `{root.name}`",
        "",
        "## What this sweep says",
        "",
        f"Each variant against {against} with the same other settings, paired by seed "
        "(95% t intervals of the mean difference; `verdicts.csv` has every metric):"
        if against
        else "",
        "",
        *says,
        "",
        f"{len(summary)} jobs, {int((summary['status'] == Status.ok).sum())} finished. "
        "Tables: `summary.csv` (one row per job), `comparison.csv` (per variant: mean, "
        "standard deviation and 95% t interval of the mean across seeds), `verdicts.csv`. "
        f"Regenerate with `lossbench-report {root}`.",
        "",
        "## Comparison (mean [95% t interval] across seeds, finished jobs)",
        "",
        _split_sentence(metrics_split(summary)),
        "",
        comparison_markdown(comparison, keys, metrics),
        "",
    ]
    failed = summary[summary["status"] != Status.ok]
    if not failed.empty:
        lines += [
            "## Jobs that did not finish",
            "",
            _markdown(failed[["job", "status", "message"]]),
            "",
        ]
    return lines


def _split_sentence(split: str) -> str:
    """Which split the report's metrics are measured on."""
    if split == "test":
        return (
            "Metrics are measured on the held-out test split (`data.test_fraction`), at "
            "each run's selected epoch (`trainer.select`); losses are validation's."
        )
    if split == "val":
        return (
            "Metrics are measured on the validation split, at each run's selected epoch "
            "(`trainer.select`); set `data.test_fraction` to judge on a held-out test split."
        )
    return (
        "Metrics mix splits: runs with `data.test_fraction` are measured on their test split, "
        "the others on validation; compare like with like."
    )


def _curve_lines(root: Path, curves: Any) -> list[str]:
    """Draw the training curves; the report's section on them (none without curves)."""
    if not curves:
        return []
    window = plot_curves(curves, "loss", "loss", root / "loss.png")
    plot_curves(curves, "grad_norm", "global gradient norm", root / "grad_norm.png")
    plot_layer_heatmap(curves, root / "layer_grad_norms.png")
    smoothing = f" (rolling mean over {window} steps)" if window > 1 else ""
    return [
        "## Training curves",
        "",
        f"Per-step loss and global gradient norm{smoothing}; the line is the mean across "
        "seeds and the band spans the lowest to the highest seed. Each variant's loss is "
        "its own objective, so compare the shapes of the loss curves; the metrics above "
        "compare the variants on one scale.",
        "",
        "![loss per step](loss.png)",
        "",
        "![gradient norm per step](grad_norm.png)",
        "",
        "Per-layer gradient norms (log10, mean across seeds) over training:",
        "",
        "![per-layer gradient norms](layer_grad_norms.png)",
        "",
    ]


def report_sweep(sweep: Path, baseline: str | None = None) -> None:
    """The end of a sweep: its report on the console (`report`), where its tables are, and the
    jobs that did not finish.

    Raises:
        SweepIncomplete: some jobs did not finish (the exit status is 1).
    """
    from lossbench.console import print_or_drop
    from lossbench.errors import SweepIncomplete

    if not sweep.is_dir():
        return
    try:
        tables = report(sweep, baseline)
    except ReportError:  # no job wrote a folder: nothing to compare
        return
    written = [str(sweep / name) for name in ("summary.csv", "comparison.csv", "verdicts.csv")]
    print_or_drop(print, f"tables: {', '.join(written)}")
    failed = tables.failed_jobs()
    if not failed.empty:
        names = "; ".join(
            f"{r.job} ({r.status}"
            f"{': ' + str(r.message) if str(r.message) not in ('', 'nan') else ''})"
            for r in failed.itertuples()
        )
        total = len(tables.summary)
        raise SweepIncomplete(f"{len(failed)} of {total} jobs did not finish: {names}")
