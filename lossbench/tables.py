"""The run folder's tables: steps.csv, grad_norms.csv, epochs.csv and summary.json.

Names and columns are stable: users' scripts read them. Every file is written to a temporary file
in the same folder and renamed over the target, so a reader never sees half a table.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench.signals import PENDING_FILES
from lossbench.trainer.records import StepRecords

GRAD_NORMS_COLUMNS = ["step", "layer", "grad_norm"]
EPOCHS_COLUMNS = ["epoch", "step", "train_loss"]  # then val_loss, metrics and seconds


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so that the file is either old or complete, never partial."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    PENDING_FILES.add(tmp)
    try:
        # mkstemp makes the file private (0600); a table gets the mode any new file gets here.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        PENDING_FILES.discard(tmp)


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


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None  # JSON has no NaN; a reader sees null
    return value


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write summary.json atomically (non-finite floats become null)."""
    atomic_write_text(path, json.dumps(_jsonable(summary), indent=2) + "\n")


def write_error_summary(out_dir: Path, error: BaseException, cfg: Any) -> None:
    """Make a job's folder say what went wrong (status "error"), naming the job's loss and seed
    where its config (a DictConfig) has them: a sweep's tables name failed jobs by them."""
    from omegaconf import OmegaConf

    from lossbench.errors import one_line

    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"status": "error", "error_type": type(error).__name__, "message": one_line(error)}
    for key, path in (("loss", "loss.name"), ("seed", "seed")):
        value = OmegaConf.select(cfg, path, default=None, throw_on_resolution_failure=False)
        if isinstance(value, str | int):
            summary[key] = value
    write_summary(out_dir / "summary.json", summary)


def write_run_tables(
    out_dir: Path,
    records: StepRecords,
    layer_names: list[str],
    epochs: list[dict[str, Any]],
    step_columns: dict[str, np.ndarray] | None = None,
) -> None:
    """Write steps.csv (with `step_columns` after the standard ones), grad_norms.csv and
    epochs.csv into `out_dir`."""
    write_csv(steps_frame(records, step_columns), out_dir / "steps.csv")
    write_csv(grad_norms_frame(records, layer_names), out_dir / "grad_norms.csv")
    # A run stopped in its first epoch still gets a header, so readers find the columns.
    epochs_frame = pd.DataFrame(epochs) if epochs else pd.DataFrame(columns=EPOCHS_COLUMNS)
    write_csv(epochs_frame, out_dir / "epochs.csv")
