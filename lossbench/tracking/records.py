"""What a finished folder says, as a tracker publishes it: its jobs, each job's settings,
status, per-step and per-epoch values, and (for an Optuna search) its trials.

Trackers read the folders lossbench has already written, after the run or sweep ends, so that
tracking can never change what a run computes or how it ends, and a folder can be published
again (a resumed sweep, `lossbench-report --tensorboard`) with the same result.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lossbench.store.resume import (
    NOT_PART_OF_THE_RESULT,
    PLAN,
    override_pair,
    read_overrides,
    sweep_jobs,
)
from lossbench.store.run_folder import SUMMARY, RunFolder, Status

if TYPE_CHECKING:
    import pandas as pd

TRIALS = "trials.csv"  # an Optuna search's table (lossbench.tune.study), read without Optuna
# The tables a job's run publishes as metrics: per step, and per epoch (at the epoch's last step).
STEP_METRICS = ("loss", "grad_norm")


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted keys (`loss.gamma`); lists stay values."""
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(flatten(value, f"{prefix}{key}." if isinstance(value, dict) else prefix + key))
    return flat


def shown(value: Any) -> str:
    """A setting as a tracker shows it: YAML's spelling (null, true, [64, 32])."""
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, list) else yaml.safe_dump(value).split("\n")[0]


@dataclass(frozen=True)
class Job:
    """One job's folder (a single run's folder is its only job)."""

    path: Path

    @cached_property
    def summary(self) -> dict[str, Any]:
        return RunFolder(self.path).read()

    @property
    def status(self) -> Status:
        return Status(self.summary.get("status", Status.unreadable))

    @cached_property
    def config(self) -> dict[str, Any]:
        """The composed config, flattened; keys that are not part of the result left out."""
        try:
            cfg = yaml.safe_load((self.path / ".hydra" / "config.yaml").read_text()) or {}
        except (OSError, yaml.YAMLError):
            return {}
        kept = {k: v for k, v in cfg.items() if k not in NOT_PART_OF_THE_RESULT and k != "hydra"}
        return flatten(kept)

    @cached_property
    def overrides(self) -> dict[str, str]:
        """The job's own settings from its command line (a sweep: the swept keys and the fixed
        ones), as key -> value."""
        try:
            items = read_overrides(self.path)
        except ValueError:
            return {}
        return dict(pair for pair in map(override_pair, items) if pair is not None)

    def table(self, name: str) -> pd.DataFrame | None:
        """One of the job's CSV tables (None when it has none)."""
        import pandas as pd

        path = self.path / name
        return pd.read_csv(path) if path.exists() else None

    @property
    def seconds(self) -> float:
        s = self.summary
        return float(
            s.get("wall_seconds") or (s.get("train_seconds") or 0) + (s.get("compile_seconds") or 0)
        )

    def results(self) -> dict[str, float]:
        """The selected epoch's validation (`selected/<metric>`) and test (`test/<metric>`)
        metrics that have a value."""
        found = {}
        for section, prefix in (("metrics", "selected"), ("test_metrics", "test")):
            for name, value in (self.summary.get(section) or {}).items():
                if isinstance(value, int | float) and math.isfinite(value):
                    found[f"{prefix}/{name}"] = float(value)
        return found


@dataclass(frozen=True)
class Trial:
    """One trial of an Optuna search: its parameters, state, objective values and seeds' jobs."""

    number: int
    state: str
    params: dict[str, Any]
    values: dict[str, float]
    jobs: list[Job]
    message: str


def kind_of(folder: Path) -> str | None:
    """`run` (a run folder), `search` (an Optuna search), `sweep`, or None (none of them: a run
    that a signal stopped before it was built leaves no summary)."""
    if (folder / SUMMARY).exists():
        return "run"
    if (folder / TRIALS).exists():
        return "search"
    return "sweep" if (folder / PLAN).exists() or any(folder.glob(f"*/{SUMMARY}")) else None


def sweep_folder_jobs(folder: Path) -> list[Job]:
    """The jobs of the sweep in `folder`, in job order (another sweep's folders left out)."""
    from lossbench.sweep.aggregate import job_folders

    own, _ = sweep_jobs(folder, job_folders(folder))
    return [Job(path) for path in own]


def trials(folder: Path) -> list[Trial]:
    """The trials of the search in `folder`, from its trials.csv."""
    import pandas as pd

    frame = pd.read_csv(folder / TRIALS, keep_default_na=False, na_values=[""])
    per_seed = [c for c in frame.columns if "_seed" in c and c.rsplit("_seed", 1)[1].isdigit()]
    names = list(dict.fromkeys(c.rsplit("_seed", 1)[0] for c in per_seed)) or ["objective"]
    means = {"mean": names[0]} if "mean" in frame.columns else {f"{n}_mean": n for n in names}
    fixed = {"trial", "state", "jobs", "message", *per_seed, *means}
    params = [c for c in frame.columns if c not in fixed]
    found = []
    for row in frame.to_dict("records"):
        jobs = str(row["jobs"] or "").split()
        found.append(
            Trial(
                number=int(row["trial"]),
                state=str(row["state"]),
                params={p: row[p] for p in params if not _missing(row[p])},
                values={n: float(row[c]) for c, n in means.items() if not _missing(row.get(c))},
                jobs=[Job(folder / name) for name in jobs if (folder / name / SUMMARY).exists()],
                message=str(row.get("message") or ""),
            )
        )
    return found


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def jobs_of(folder: Path) -> list[Job]:
    """The jobs of a run (itself), a sweep (its own, in job order) or a search (its trials'
    seeds, trial by trial); none for a folder that is none of them."""
    kind = kind_of(folder)
    if kind == "run":
        return [Job(folder)]
    if kind == "search":
        return [job for trial in trials(folder) for job in trial.jobs]
    return sweep_folder_jobs(folder) if kind == "sweep" else []


def experiment_name(folder: Path) -> str:
    """A folder's default experiment: its runs' loss when they share one, else `lossbench`."""
    losses = {str(job.summary.get("loss")) for job in jobs_of(folder)}
    return losses.pop() if len(losses) == 1 else "lossbench"


def recorded_mlflow(folder: Path) -> tuple[str | None, str | None] | None:
    """(tracker.uri, the experiment) that the runs in `folder` were published with, when they
    were (`tracker=mlflow`: read from the first job's record); else None."""
    for job in jobs_of(folder)[:1]:
        try:
            cfg = yaml.safe_load((job.path / ".hydra" / "config.yaml").read_text()) or {}
            hydra = yaml.safe_load((job.path / ".hydra" / "hydra.yaml").read_text()) or {}
        except (OSError, yaml.YAMLError):
            return None
        tracker = cfg.get("tracker") or {}
        if tracker.get("name") != "mlflow":
            return None
        choices = ((hydra.get("hydra") or {}).get("runtime") or {}).get("choices") or {}
        study = choices.get("experiment") or choices.get("hparams_search")
        return tracker.get("uri"), tracker.get("experiment") or study
    return None
