"""`lossbench-report DIR`: aggregate a run or sweep folder again, print the comparison, and
write report.md with PNG plots next to the tables.

Plots (matplotlib, no display needed): the loss and the global gradient norm per step for each
variant (mean across seeds with a min-max band, smoothed over a rolling window), a heatmap of
per-layer gradient norms over training, each metric's mean and 95% t interval per variant, and
(binary sweeps) reliability diagrams. Everything is read from the folders' files
(`lossbench.sweep.readback`), so any finished, failed or copied sweep can be reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench.errors import ConfigError
from lossbench.store.run_folder import Status
from lossbench.sweep.aggregate import (
    describe_verdicts,
    failed_jobs,
    metrics_split,
    resolve_baseline,
    summary_frame,
    sweep_settings,
    sweep_tables,
    variant_keys,
    why_no_verdicts,
    write_sweep_tables,
)
from lossbench.sweep.plots import plot_curves, plot_layer_heatmap, plot_metric_intervals
from lossbench.sweep.readback import load_curves, reliability_lines
from lossbench.sweep.search_report import search_lines
from lossbench.sweep.share_report import share_lines
from lossbench.sweep.stats import VERDICTS


def _markdown(frame: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + "---|" * len(frame.columns)]  # fmt: skip
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


def comparison_markdown(comparison: pd.DataFrame, keys: list[str], metrics: list[str]) -> str:
    """The comparison as a markdown table of "mean [95% CI]" cells."""
    table = comparison[[*keys, "ok", "jobs"]].copy()
    for metric in metrics:
        cells = zip(comparison[f"{metric}_mean"], comparison[f"{metric}_ci_low"],
                    comparison[f"{metric}_ci_high"], strict=True)  # fmt: skip
        table[metric] = [
            "-" if np.isnan(m) else (f"{m:.4g} [{lo:.3g}, {hi:.3g}]" if not np.isnan(lo)
                                     else f"{m:.4g}")
            for m, lo, hi in cells
        ]  # fmt: skip
    return _markdown(table)


class ReportError(Exception):
    """Nothing can be reported: one line for the user."""


def write_report(
    root: Path, quiet: bool = False, problems: list[str] | None = None, baseline: str | None = None
) -> tuple[Path, pd.DataFrame]:
    """Aggregate `root`, draw the plots, write report.md; return its path and the verdicts.

    Files that cannot be read (a job's tables, its overrides) are left out; each reason goes to
    `problems`.

    Raises:
        ReportError: no run folder under `root`.
        OSError: a table, plot or the report cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    from lossbench.console import headline_metrics, print_sweep
    from lossbench.store.claims import remove_leftovers
    from lossbench.sweep.aggregate import job_folders

    for folder in {root, *job_folders(root)}:
        remove_leftovers(folder)
    summary, comparison, verdicts = sweep_tables(root, baseline)
    if summary.empty:
        raise ReportError(f"no run folders (summary.json) under {root}")
    if problems is not None:
        problems.extend(summary.attrs.get("problems", []))
    left_out = summary.attrs.get("left_out", [])
    if left_out:
        print(f"lossbench-report: left out of the tables: {len(left_out)} job folders the "
              f"sweep did not plan ({', '.join(left_out)})", file=sys.stderr)  # fmt: skip
    keys = variant_keys(summary)
    metrics = headline_metrics(list(comparison.columns))
    sentences = describe_verdicts(verdicts, metrics)
    why = why_no_verdicts(summary, baseline) if verdicts.empty else None
    if not quiet:  # before writing: a folder that cannot be written still gets its comparison
        title = f"lossbench report: {root} (metrics on the {metrics_split(summary)} split)"
        print_sweep(comparison, keys, sentences, title)
        if why:
            print(f"lossbench-report: {why}")
    write_sweep_tables(root, summary, comparison, verdicts)
    lines = _summary_lines(root, summary, comparison, verdicts, sentences, keys, metrics, why)
    lines += search_lines(root)
    lines += _curve_lines(root, load_curves(root, summary, keys, problems))
    lines += share_lines(root, summary, comparison, keys, problems)
    if problems:
        lines += ["## Files left out", "", "These files could not be read:", "",
                  *(f"- `{problem}`" for problem in problems), ""]  # fmt: skip
    if len(comparison) and plot_metric_intervals(comparison, keys, metrics, root / "metrics.png"):
        lines += ["## Metrics", "",
                  "Each variant's mean across seeds (point) and its 95% t interval (line), on "
                  "an axis fitted to the values; each variant's own loss is left out (it "
                  "measures a different thing per variant).", "",
                  "![metrics](metrics.png)", ""]  # fmt: skip
    lines += reliability_lines(root, summary, keys, problems)
    from lossbench.store.files import atomic_write_text

    path = root / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path, verdicts


def _summary_lines(
    root: Path, summary: pd.DataFrame, comparison: pd.DataFrame, verdicts: pd.DataFrame,
    sentences: list[str], keys: list[str], metrics: list[str], why: str | None,
) -> list[str]:  # fmt: skip
    """The report's verdicts, comparison table and the jobs that did not finish."""
    baselines = list(dict.fromkeys(verdicts["baseline"])) if len(verdicts) else []
    against = f"`{baselines[0]}`" if len(baselines) == 1 else None
    if len(baselines) > 1:  # a sweep over tasks: each task's plain loss
        against = "its task's plain loss (" + ", ".join(f"`{b}`" for b in baselines) + ")"
    says = [f"- {s}" for s in sentences] or [
        f"- {(why or 'no verdicts: the sweep has a single variant.').capitalize()}"
    ]  # fmt: skip
    lines = [f"# lossbench report: `{root.name}`", "",
             "## What this sweep says", "",
             f"Each variant against {against} with the same other settings, paired by seed "
             "(95% t intervals of the mean difference; `verdicts.csv` has every metric):"
             if against else "", "", *says, "",
             f"{len(summary)} jobs, {int((summary['status'] == Status.ok).sum())} finished. "
             "Tables: `summary.csv` (one row per job), `comparison.csv` (per variant: mean, "
             "standard deviation and 95% t interval of the mean across seeds), `verdicts.csv`. "
             f"Regenerate with `lossbench-report {root}`.", "",
             "## Comparison (mean [95% t interval] across seeds, finished jobs)", "",
             _split_sentence(metrics_split(summary)), "",
             comparison_markdown(comparison, keys, metrics), ""]  # fmt: skip
    failed = failed_jobs(summary)
    if not failed.empty:
        lines += ["## Jobs that did not finish", "",
                  _markdown(failed[["job", "status", "message"]]), ""]  # fmt: skip
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
    return ["## Training curves", "",
            f"Per-step loss and global gradient norm{smoothing}; the line is the mean across "
            "seeds and the band spans the lowest to the highest seed. Each variant's loss is "
            "its own objective, so compare the shapes of the loss curves; the metrics above "
            "compare the variants on one scale.", "",
            "![loss per step](loss.png)", "", "![gradient norm per step](grad_norm.png)", "",
            "Per-layer gradient norms (log10, mean across seeds) over training:", "",
            "![per-layer gradient norms](layer_grad_norms.png)", ""]  # fmt: skip


def sweep_baseline(folder: Path) -> str | None:
    """The `report.baseline` the sweep in `folder` ran with (from Hydra's multirun.yaml)."""
    import yaml

    try:
        saved = yaml.safe_load((folder / "multirun.yaml").read_text())
        baseline = saved["report"]["baseline"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    return str(baseline) if baseline else None


def unmet_expectations(verdicts: pd.DataFrame, expectations: list[str]) -> list[str]:
    """The `VARIANT:METRIC:VERDICT` expectations that the verdicts do not meet, as sentences.

    VARIANT matches a verdict's variant label, or its loss when the label adds settings.

    Raises:
        ReportError: an expectation is not of that form.
    """
    unmet = []
    for expectation in expectations:
        # A variant's label may hold colons itself (`custom, loss.target=mine.py:f`).
        parts = expectation.rsplit(":", 2)
        if len(parts) != 3 or not all(parts) or parts[2] not in VERDICTS:
            raise ReportError(
                f"--expect takes VARIANT:METRIC:{'|'.join(VERDICTS)}, received {expectation!r}"
            )
        variant, metric, wanted = parts
        rows = verdicts[
            ((verdicts["variant"] == variant) | verdicts["variant"].str.startswith(f"{variant},"))
            & (verdicts["metric"] == metric)
        ] if len(verdicts) else verdicts  # fmt: skip
        if rows.empty:
            unmet.append(f"{expectation}: no verdict for {variant} on {metric}")
        for row in rows.itertuples():
            if row.verdict != wanted:
                unmet.append(
                    f"{expectation}: `{row.variant}` is {row.verdict} than `{row.baseline}` on "
                    f"{metric} (difference {row.diff_mean:+.3g}, 95% CI {row.diff_ci_low:+.3g} "
                    f"to {row.diff_ci_high:+.3g})"
                )
    return unmet


def report_sweep(sweep: Path, baseline: str | None = None) -> None:
    """Aggregate a sweep from its folders, print the comparison, and name failed jobs.

    Raises:
        SweepIncomplete: some jobs did not finish (the exit status is 1).
    """
    from lossbench.console import headline_metrics, print_or_drop, print_sweep
    from lossbench.errors import SweepIncomplete
    from lossbench.sweep.aggregate import aggregate

    if not sweep.is_dir():
        return
    summary, comparison, verdicts = aggregate(sweep, baseline)
    for problem in summary.attrs.get("problems", []):
        print(f"lossbench: left out: {problem}", file=sys.stderr)
    left_out = summary.attrs.get("left_out", [])
    if left_out:
        print(f"lossbench: left out of this sweep's tables: {len(left_out)} job folders of "
              f"another sweep ({', '.join(left_out)})", file=sys.stderr)  # fmt: skip
    if summary.empty:
        return
    sentences = describe_verdicts(verdicts, headline_metrics(list(comparison.columns)))
    title = f"lossbench sweep: {sweep} (metrics on the {metrics_split(summary)} split)"
    print_or_drop(print_sweep, comparison, variant_keys(summary), sentences, title)
    why = why_no_verdicts(summary, baseline) if verdicts.empty else None
    if why:
        print_or_drop(print, f"lossbench: {why}")
    tables = ", ".join(
        str(sweep / name) for name in ("summary.csv", "comparison.csv", "verdicts.csv")
    )
    print_or_drop(print, f"tables: {tables}")
    failed = failed_jobs(summary)
    if not failed.empty:
        names = "; ".join(
            f"{r.job} ({r.status}"
            f"{': ' + str(r.message) if str(r.message) not in ('', 'nan') else ''})"
            for r in failed.itertuples()
        )
        raise SweepIncomplete(f"{len(failed)} of {len(summary)} jobs did not finish: {names}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point of `lossbench-report`."""
    parser = argparse.ArgumentParser(
        prog="lossbench-report",
        description="Aggregate a lossbench run or sweep folder and write report.md with plots.",
    )
    parser.add_argument("folder", type=Path, help="a run folder, a sweep folder, or a parent")
    parser.add_argument("--quiet", action="store_true", help="do not print the table")
    parser.add_argument("--baseline", help="the loss to compare with (default: bce or mse)")
    parser.add_argument(
        "--expect", action="append", default=[], metavar="VARIANT:METRIC:better",
        help="exit 1 unless this verdict holds (repeatable): a loss-regression gate",
    )  # fmt: skip
    parser.add_argument(
        "--tensorboard",
        type=Path,
        metavar="DIR",
        help="also write TensorBoard's HParams sessions and experiment in DIR",
    )
    parser.add_argument(
        "--mlflow", nargs="?", const="", metavar="URI",
        help="also publish the folder to MLflow (URI default: MLFLOW_TRACKING_URI, else "
        "sqlite:///outputs/mlflow.db); a resumed sweep's parent run is reused",
    )  # fmt: skip
    parser.add_argument("--experiment", help="the MLflow experiment (default: the runs' loss)")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"lossbench-report: error: {args.folder} is not a folder", file=sys.stderr)
        raise SystemExit(2)
    problems: list[str] = []
    baseline = args.baseline or sweep_baseline(args.folder)
    if baseline:  # refused before any file is written
        try:
            resolve_baseline(sweep_settings(summary_frame(args.folder)), baseline,
                             "--baseline" if args.baseline else "report.baseline")  # fmt: skip
        except ConfigError as error:
            print(f"lossbench-report: error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
    try:
        path, verdicts = write_report(args.folder, args.quiet, problems, baseline)
        unmet = unmet_expectations(verdicts, args.expect)
    except ReportError as error:
        print(f"lossbench-report: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as error:
        where = Path(error.filename).parent if error.filename else args.folder
        print(
            f"lossbench-report: error: cannot write in {where}: {error.strerror}", file=sys.stderr
        )
        raise SystemExit(2) from None
    finally:
        for problem in problems:
            print(f"lossbench-report: left out: {problem}", file=sys.stderr)
    print(f"report: {path}")
    _publish(args)
    for line in unmet:
        print(f"lossbench-report: expectation not met: {line}", file=sys.stderr)
    if problems or unmet:
        raise SystemExit(1)


def _publish(args: argparse.Namespace) -> None:
    """`--tensorboard DIR` and `--mlflow [URI]`: publish the folder (a failure: exit 2); a
    folder whose runs were published to MLflow is published again, with its report."""
    from lossbench.errors import one_line
    from lossbench.tracking import publish_mlflow, warn_on_failure, write_hparams
    from lossbench.tracking.records import recorded_mlflow

    recorded = recorded_mlflow(args.folder) if args.mlflow is None else None
    if recorded is not None:  # a tracked sweep: its MLflow run gets the report and plots too
        warn_on_failure("mlflow", args.folder, lambda: publish_mlflow(args.folder, *recorded))
    try:
        if args.tensorboard is not None:
            logdir = write_hparams(args.folder, args.tensorboard)
            print(f"tensorboard: tensorboard --logdir {logdir}")
        if args.mlflow is not None:
            publish_mlflow(args.folder, args.mlflow or None, args.experiment)
    except ImportError as error:
        print(f"lossbench-report: error: {error.name} is not installed (pip install "
              f"'lossbench[{'track' if args.mlflow is not None else 'tensorboard'}]')",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2) from None
    except Exception as error:
        print(f"lossbench-report: error: {one_line(error)}", file=sys.stderr)
        raise SystemExit(2) from None
