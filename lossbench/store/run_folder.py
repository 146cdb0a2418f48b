"""A run's summary.json: the one writer of it, the one reader, and the statuses it can hold.

summary.json says `running` from before a job is built until its outcome is known, so a folder
whose process was killed never looks finished. Its status decides a single run's exit status
(`Status.exit_code`); every reader compares against `Status`, never against bare strings.
"""

from __future__ import annotations

import json
import math
import signal
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from lossbench.errors import EXIT_DIVERGED, EXIT_ERROR, one_line, signal_exit_code
from lossbench.store.files import atomic_write_text

SUMMARY = "summary.json"


class Status(StrEnum):
    """What a run folder's summary says of its run."""

    running = "running"  # started; replaced when the run ends (a killed process leaves it)
    ok = "ok"
    diverged = "diverged"  # a non-finite loss or gradient stopped training
    interrupted = "interrupted"  # SIGINT/SIGTERM stopped training; tables through the last step
    pruned = "pruned"  # a search's pruner stopped it (hydra.sweeper.pruner); tables through its
    # last epoch
    error = "error"  # the run could not be built or trained; `message` says why
    unreadable = "unreadable"  # a reader could not parse the file (never written)

    def exit_code(self, signum: int | None = None) -> int:
        """A single run's exit status for this outcome (`signum`: the interrupting signal)."""
        if self is Status.interrupted:
            return signal_exit_code(signum or signal.SIGINT)
        return {Status.ok: 0, Status.diverged: EXIT_DIVERGED}.get(self, EXIT_ERROR)


@dataclass(frozen=True, kw_only=True)
class Summary:
    """What summary.json says of a run that trained (or that a pruner stopped before it could),
    in the file's order. Built once its outcome is known and written by `RunFolder.write`; a key
    whose value is None is left out, except the two a reader expects as null."""

    status: Status
    loss: str
    task: str | None = None
    description: str | None = None
    seed: int
    steps: int = 0
    epochs: int = 0
    final_loss: float | None = None  # null: no step finished
    train_seconds: float | None = None
    compile_seconds: float | None = None
    steps_per_second: float | None = None
    program: dict[str, Any] | None = None  # the program form and the probe's rates
    device: str | None = None
    backend: str | None = None
    versions: dict[str, str] | None = None
    select: str | None = None
    selected_epoch: int | None = None  # null: no epoch ended
    metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] | None = None
    gradient_shares: dict[str, float] | None = None
    data: dict[str, Any] | None = None  # a table's columns
    device_peak_bytes: int | None = None
    stopped: dict[str, Any] | None = None  # where and why training stopped early
    message: str | None = None
    vectorized_seeds: int | None = None
    wall_seconds: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))  # a bare string is a bug here

    def as_json(self) -> dict[str, Any]:
        """The file's object (`Status` values as their strings when dumped)."""
        nullable = ("final_loss", "selected_epoch")
        return {
            f.name: value
            for f in fields(self)
            if (value := getattr(self, f.name)) is not None or f.name in nullable
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if type(value).__module__ == "numpy":  # a NumPy scalar (numpy is not imported for it)
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; a reader sees null
    return value


class RunFolder:
    """One run's folder: what its summary.json says, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY

    def write(self, summary: Summary | dict[str, Any]) -> None:
        """Write `summary` (its `status` a `Status`); non-finite floats become null."""
        if isinstance(summary, Summary):
            summary = summary.as_json()
        Status(summary["status"])  # a bare string outside the enum is a bug, not a status
        atomic_write_text(self.summary_path, json.dumps(_jsonable(summary), indent=2) + "\n")

    def start(self, loss: str, seed: int) -> None:
        """Say that the run has started (and has not ended).

        Written in place, not through a temporary file as `write` does: whatever it replaces is
        not this run's result, and a marker torn by a kill reads as `unreadable`, which, like
        `running`, is not finished."""
        text = json.dumps({"status": Status.running, "loss": loss, "seed": seed}, indent=2)
        try:
            self.summary_path.write_text(text + "\n")
        except OSError as error:
            from lossbench.store.files import naming

            raise naming(error, self.summary_path) from error

    def fail(self, error: BaseException, loss: Any = None, seed: Any = None) -> None:
        """Say what went wrong; `loss` and `seed` name the job in a sweep's tables."""
        self.path.mkdir(parents=True, exist_ok=True)
        summary: dict[str, Any] = {
            "status": Status.error,
            "error_type": type(error).__name__,
            "message": one_line(error),
        }
        for key, value in (("loss", loss), ("seed", seed)):
            if isinstance(value, str | int) and not isinstance(value, bool):
                summary[key] = value
        self.write(summary)

    def discard(self) -> None:
        """Remove the summary and tables of a run whose folder cannot be written (a full disk):
        nothing is left that could pass for its results."""
        from lossbench.store.claims import RUN_FILES

        for name in (*RUN_FILES, "predictions.parquet"):
            (self.path / name).unlink(missing_ok=True)

    def forget(self) -> None:
        """Remove the summary of a run that never trained (a signal came first)."""
        self.summary_path.unlink(missing_ok=True)

    def read(self) -> dict[str, Any]:
        """The summary, or one whose status is `unreadable` with the reason as its message."""
        try:
            summary = json.loads(self.summary_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            return {"status": Status.unreadable, "message": f"{SUMMARY}: {error}"}
        if not isinstance(summary, dict):
            kind = type(summary).__name__
            return {"status": Status.unreadable, "message": f"{SUMMARY}: a {kind}, not an object"}
        return summary
