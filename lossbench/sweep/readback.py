"""Reading a sweep's run tables back: per-step curves and predictions, each file checked, and
what cannot be read named (never a traceback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench.store.run_folder import Status
from lossbench.sweep.plots import plot_reliability, variant_label


def job_dir(root: Path, job: str) -> Path:
    return root if job == root.name and (root / "summary.json").exists() else root / job


class TableProblem(Exception):
    """A run table that cannot be read as lossbench writes it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")


def read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """Read a run table and check its columns.

    Raises:
        TableProblem: naming the file and what is wrong with it.
    """
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except FileNotFoundError:
        raise TableProblem(path, "missing") from None
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.EmptyDataError) as e:
        raise TableProblem(path, f"unreadable ({str(e).splitlines()[0]})") from None
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise TableProblem(path, f"no column {absent[0]!r}")
    return frame


def _job_curves(folder: Path) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    steps = read_table(folder / "steps.csv", ["loss", "grad_norm"])
    norms = read_table(folder / "grad_norms.csv", ["step", "layer", "grad_norm"])
    layers = list(dict.fromkeys(norms["layer"]))
    if not layers or len(norms) != len(steps) * len(layers):
        raise TableProblem(
            folder / "grad_norms.csv", f"{len(norms)} rows for {len(steps)} steps in steps.csv"
        )
    return steps, layers, norms["grad_norm"].to_numpy(dtype="float64").reshape(-1, len(layers))


def load_curves(
    root: Path, summary: pd.DataFrame, keys: list[str], problems: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per variant: (seeds, steps) arrays of loss and grad_norm, and (seeds, steps, layers)
    per-layer norms with the layer names, from the finished jobs' CSV files. A job whose tables
    cannot be read is left out, with the reason appended to `problems`."""
    curves: dict[str, dict[str, Any]] = {}
    ok = summary[summary["status"] == Status.ok]
    for _, row in ok.iterrows():
        folder = job_dir(root, str(row["job"]))
        try:
            steps, layers, per_layer = _job_curves(folder)
        except TableProblem as problem:
            if problems is not None:
                problems.append(str(problem))
            continue
        entry = curves.setdefault(
            variant_label(row, keys),
            {"loss": [], "grad_norm": [], "layers": layers, "per_layer": []},
        )
        entry["loss"].append(steps["loss"].to_numpy())
        entry["grad_norm"].append(steps["grad_norm"].to_numpy())
        entry["per_layer"].append(per_layer)
    for entry in curves.values():
        n = min(len(a) for a in entry["loss"])  # seeds of one variant train the same steps
        for key in ("loss", "grad_norm", "per_layer"):
            entry[key] = np.stack([a[:n] for a in entry[key]])
    return curves


def reliability_lines(
    root: Path, summary: pd.DataFrame, keys: list[str], problems: list[str] | None
) -> list[str]:
    """Draw a binary sweep's reliability diagrams from its runs' predictions.parquet (the test
    split's rows when there are any, else validation's); the report's section on them."""
    from lossbench.run.metrics import ECE_BINS, binary_calibration_error, reliability_bins
    from lossbench.sweep.aggregate import metrics_split

    if "task" not in summary or set(summary["task"].dropna()) != {"binary"}:
        return []
    split = "test" if metrics_split(summary) == "test" else "val"
    pooled: dict[str, list[pd.DataFrame]] = {}
    for _, row in summary[summary["status"] == Status.ok].iterrows():
        path = job_dir(root, str(row["job"])) / "predictions.parquet"
        try:
            frame = read_table(path, ["split", "y_true", "y_pred"])
        except TableProblem as problem:
            if problems is not None:
                problems.append(str(problem))
            continue
        pooled.setdefault(variant_label(row, keys), []).append(frame[frame["split"] == split])
    bins = {}
    for label, frames in pooled.items():
        rows = pd.concat(frames)
        y, p = rows["y_true"].to_numpy(), rows["y_pred"].to_numpy()
        bins[label] = (*reliability_bins(p, y), binary_calibration_error(p, y))
    if not bins:
        return []
    plot_reliability(bins, split, root / "reliability.png")
    return [
        "## Calibration",
        "",
        f"Reliability diagrams of P(y=1) on the {split} split, seeds pooled, in "
        f"{ECE_BINS} equal-width bins: on the diagonal a predicted probability is the "
        "observed frequency; below it the loss is overconfident in class 1.",
        "",
        "![reliability diagrams](reliability.png)",
        "",
    ]
