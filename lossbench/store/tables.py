"""The run folder's tables: steps.csv, grad_norms.csv, epochs.csv and predictions.parquet
(summary.json: `runfolder`).

Names and columns are stable: users' scripts read them. Every file is written to a temporary file
in the same folder and renamed over the target, so a reader never sees half a table.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench.store.files import atomic_write_bytes, atomic_write_text
from lossbench.store.records import StepRecords

GRAD_NORMS_COLUMNS = ["step", "layer", "grad_norm"]
EPOCHS_COLUMNS = ["epoch", "step", "train_loss"]  # then val_loss, metrics and seconds
PREDICTIONS = "predictions.parquet"
GRAD_GROUPS = "grad_groups.csv"


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write a table atomically, floats in shortest round-trip form."""
    atomic_write_text(path, df.to_csv(index=False))


def steps_frame(
    records: StepRecords, extra_columns: dict[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """One row per optimizer step: step, epoch, loss, global grad_norm, then any extra columns
    (the loss scale in effect, per-task losses)."""
    columns = {
        "step": np.arange(len(records.loss), dtype="int64"),
        "epoch": records.epoch,
        "loss": records.loss,
        "grad_norm": records.grad_norm,
    }
    return pd.DataFrame({**columns, **(extra_columns or {})})


def grad_norms_frame(records: StepRecords, layer_names: list[str]) -> pd.DataFrame:
    """Long table: one row per (step, trainable layer)."""
    n_steps, n_layers = records.layer_grad_norms.shape
    return pd.DataFrame(
        {
            "step": np.repeat(np.arange(n_steps, dtype="int64"), n_layers),
            "layer": np.tile(np.asarray(layer_names, dtype=object), n_steps),
            "grad_norm": records.layer_grad_norms.reshape(-1),
        }
    )[GRAD_NORMS_COLUMNS]


def write_run_tables(
    out_dir: Path,
    records: StepRecords,
    layer_names: list[str],
    epochs: list[dict[str, Any]],
    step_columns: dict[str, np.ndarray] | None = None,
    grad_groups: pd.DataFrame | None = None,
    predictions: dict[str, np.ndarray] | None = None,
) -> None:
    """Write a run's tables into `out_dir`: steps.csv (with `step_columns` after the standard
    ones), grad_norms.csv, epochs.csv, grad_groups.csv (`lossbench.run.shares`) and
    predictions.parquet (`lossbench.run.evaluation.prediction_columns`). A table the run has
    none of is removed: an earlier run's would pass for this one's."""
    write_csv(steps_frame(records, step_columns), out_dir / "steps.csv")
    write_csv(grad_norms_frame(records, layer_names), out_dir / "grad_norms.csv")
    # A run stopped in its first epoch still gets a header, so readers find the columns.
    epochs_frame = pd.DataFrame(epochs) if epochs else pd.DataFrame(columns=EPOCHS_COLUMNS)
    write_csv(epochs_frame, out_dir / "epochs.csv")
    if grad_groups is not None:
        write_csv(grad_groups, out_dir / GRAD_GROUPS)
    else:
        (out_dir / GRAD_GROUPS).unlink(missing_ok=True)
    if predictions is not None:
        buffer = io.BytesIO()
        pd.DataFrame(predictions).to_parquet(buffer, index=False)
        atomic_write_bytes(out_dir / PREDICTIONS, buffer.getvalue())
    else:
        (out_dir / PREDICTIONS).unlink(missing_ok=True)
