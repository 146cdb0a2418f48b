"""`lossbench-report DIR`: report a run or sweep folder again (`lossbench.sweep.report.report`:
the tables, the comparison on the console, report.md with its plots), gate on expected
verdicts (`--expect`), and publish the folder to TensorBoard's HParams or MLflow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from lossbench.errors import ConfigError
from lossbench.sweep.aggregate import summary_frame, sweep_settings
from lossbench.sweep.report import ReportError, report
from lossbench.sweep.stats import VERDICTS
from lossbench.sweep.verdicts import resolve_baseline


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
    baseline = args.baseline or sweep_baseline(args.folder)
    if baseline:  # refused before any file is written
        try:
            resolve_baseline(sweep_settings(summary_frame(args.folder)), baseline,
                             "--baseline" if args.baseline else "report.baseline")  # fmt: skip
        except ConfigError as error:
            print(f"lossbench-report: error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
    try:
        tables = report(args.folder, baseline, prog="lossbench-report", quiet=args.quiet,
                        markdown=True)  # fmt: skip
        unmet = unmet_expectations(tables.verdicts, args.expect)
    except ReportError as error:
        print(f"lossbench-report: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as error:
        where = Path(error.filename).parent if error.filename else args.folder
        print(
            f"lossbench-report: error: cannot write in {where}: {error.strerror}", file=sys.stderr
        )
        raise SystemExit(2) from None
    print(f"report: {args.folder / 'report.md'}")
    _publish(args)
    for line in unmet:
        print(f"lossbench-report: expectation not met: {line}", file=sys.stderr)
    if tables.problems or unmet:
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
