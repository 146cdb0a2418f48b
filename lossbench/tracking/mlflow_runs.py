"""`tracker=mlflow`: a finished run or sweep folder as MLflow runs, through MLflow's own client.

A run folder is one MLflow run; a sweep is a parent run with one child per job; an Optuna search
is a parent with one child per trial and the trial's seeds as grandchildren. Every MLflow run
carries the folder it describes as a tag, so publishing a folder again (a resumed sweep) reuses
its parent, keeps the children of jobs that were not rerun, and replaces those that were.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lossbench.store.run_folder import SUMMARY, Status
from lossbench.tracking.records import STEP_METRICS, Job, Trial, kind_of, shown, sweep_folder_jobs
from lossbench.tracking.records import trials as read_trials

LOCAL_STORE = Path("outputs") / "mlflow.db"
SQLITE = "sqlite:///"
FOLDER_TAG = "lossbench.folder"
FOLDER_ID_TAG = "lossbench.folder_id"  # a hash of the folder: MLflow's filters quote paths badly
WRITTEN_TAG = "lossbench.summary_written"  # which summary.json a job's run published
TRIAL_TAG = "lossbench.trial"  # what a trial's run published: its state, values and jobs
# How lossbench's outcomes end an MLflow run (a folder still `running`: its process was killed).
RUN_STATUS = {
    Status.ok: "FINISHED",
    Status.diverged: "FAILED",
    Status.error: "FAILED",
    Status.unreadable: "FAILED",
    Status.interrupted: "KILLED",
    Status.pruned: "KILLED",
    Status.running: "KILLED",
}
TRIAL_STATUS = {"COMPLETE": "FINISHED", "FAIL": "FAILED", "PRUNED": "KILLED", "RUNNING": "KILLED"}
# A server that does not answer: a few quick tries, not MLflow's default of minutes.
# Nothing leaves the machine but what the user's tracking URI asks for (MLflow's usage telemetry
# is off unless the user turns it on).
MLFLOW_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
# Files of a sweep's own folder that its parent run keeps as artifacts.
SWEEP_FILES = ("*.csv", "*.md", "*.png", "*.yaml")


def tracking_uri(uri: str | None) -> str:
    """`tracker.uri`, else MLFLOW_TRACKING_URI, else the local SQLite store."""
    if uri:
        return uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    LOCAL_STORE.parent.mkdir(parents=True, exist_ok=True)
    return f"{SQLITE}{LOCAL_STORE.resolve()}"


def open_client(uri: str) -> Any:
    """MLflow's client on `uri` with its store opened (the slow part of a first call)."""
    for key, value in MLFLOW_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from mlflow import MlflowClient

    for name in ("mlflow", "alembic"):  # their INFO notes (creating tables) are not ours
        logging.getLogger(name).setLevel(logging.WARNING)
    client = MlflowClient(tracking_uri=uri)
    client.search_experiments(max_results=1)
    return client


def artifacts_of(uri: str, experiment: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside a SQLite database (MLflow's default,
    `./mlruns`, is wherever the run was started); a server or other store decides itself."""
    if not uri.startswith(SQLITE):
        return None
    return (Path(uri[len(SQLITE) :]).resolve().parent / "mlartifacts" / experiment).as_uri()


class Publisher:
    """Publishes folders into one MLflow experiment."""

    def __init__(self, uri: str, experiment: str, client: Any = None) -> None:
        self.uri = uri
        self.client = client or open_client(uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            self.experiment_id = found.experiment_id
        else:
            self.experiment_id = self.client.create_experiment(
                experiment, artifacts_of(uri, experiment)
            )

    def publish(self, folder: Path, outcome: tuple[str, str] = ("FINISHED", "")) -> str:
        """Publish `folder` (a run, sweep or search; a sweep's `outcome`: its MLflow status
        and message); return the top MLflow run's id."""
        kind = kind_of(folder)
        if kind is None:
            raise ValueError(
                f"{folder} holds no run, sweep or search (no {SUMMARY} in it or its folders)"
            )
        if kind == "run":
            return self.job(Job(folder), None)
        parent = self._parent(folder, kind, outcome)
        if kind == "search":
            runs = [self.trial(t, parent, folder) for t in read_trials(folder)]
        else:
            runs = [self.job(job, parent) for job in sweep_folder_jobs(folder)]
        for stale in self._children(parent):  # jobs the folder no longer has (moved, renamed)
            if stale.info.run_id not in runs:
                self.client.delete_run(stale.info.run_id)
        return parent

    def job(self, job: Job, parent: str | None) -> str:
        """One job's run: its config as params, its tables as metrics and artifacts."""
        written = str((job.path / SUMMARY).stat().st_mtime_ns)
        old = self._find(job.path)
        if old is not None and old.data.tags.get(WRITTEN_TAG) == written:
            return old.info.run_id  # published already (a resumed sweep kept this job)
        if old is not None:
            self.client.delete_run(old.info.run_id)
        s = job.summary
        status = job.status
        tags = {
            WRITTEN_TAG: written,
            "status": status.value,
            "device": str(s.get("device")),
            "loss": str(s.get("loss")),
        }
        if s.get("message"):
            tags["message"] = str(s["message"])[:5000]
        run = self._start(job.path, job.path.name, parent, tags, job.seconds)
        params = {k: shown(v) for k, v in job.config.items()}
        params.update({f"version.{k}": v for k, v in (s.get("versions") or {}).items()})
        self._log(run, params, self._job_metrics(job))
        self.client.log_artifacts(run, str(job.path))
        self.client.set_terminated(run, RUN_STATUS.get(status, "FAILED"))
        return run

    def trial(self, trial: Trial, parent: str, folder: Path) -> str:
        """One trial's run (its parameters, objective values and state) with its seeds' runs."""
        key = folder / f"trial {trial.number}"
        told = json.dumps([trial.state, trial.values, [j.path.name for j in trial.jobs]])
        old = self._find(key)
        if old is not None and old.data.tags.get(TRIAL_TAG) == told:
            for job in trial.jobs:
                self.job(job, old.info.run_id)
            return old.info.run_id
        if old is not None:  # the trial's outcome changed (a resumed search): published afresh
            for child in self._children(old.info.run_id):
                self.client.delete_run(child.info.run_id)
            self.client.delete_run(old.info.run_id)
        tags = {
            TRIAL_TAG: told,
            "state": trial.state,
            **({"message": trial.message} if trial.message else {}),
        }
        seconds = sum(j.seconds for j in trial.jobs)
        run = self._start(key, f"trial {trial.number}", parent, tags, seconds)
        self._log(
            run,
            {k: shown(v) for k, v in trial.params.items()},
            [self._metric(name, value, 0) for name, value in trial.values.items()],
        )
        for job in trial.jobs:
            self.job(job, run)
        self.client.set_terminated(run, TRIAL_STATUS.get(trial.state, "FAILED"))
        return run

    def _parent(self, folder: Path, kind: str, outcome: tuple[str, str]) -> str:
        """The sweep's run (a resumed sweep's earlier one, if any), with its tables as artifacts
        and its outcome as status."""
        status, message = outcome
        old = self._find(folder)
        tags = {"kind": kind, **_question(folder), **({"message": message} if message else {})}
        if old is None:
            run = self._start(folder, folder.name, None, tags, 0.0)
        else:
            run = old.info.run_id
            self._log(run, {}, [], tags)
            if not message and "message" in old.data.tags:  # it ended well this time
                self.client.delete_tag(run, "message")
        for pattern in SWEEP_FILES:
            for path in sorted(folder.glob(pattern)):
                self.client.log_artifact(run, str(path))
        self.client.set_terminated(run, status)
        return run

    def _start(
        self, key: Path, name: str, parent: str | None, tags: dict[str, str], seconds: float
    ) -> str:
        """Create a run for `key` (a folder, or a search's trial) that ran for `seconds`."""
        tags = {**tags, FOLDER_TAG: str(key.resolve()), FOLDER_ID_TAG: _folder_id(key)}
        if parent is not None:
            tags["mlflow.parentRunId"] = parent
        start = int((time.time() - seconds) * 1000)
        run = self.client.create_run(self.experiment_id, start_time=start, tags=tags, run_name=name)
        return run.info.run_id

    def _log(
        self,
        run: str,
        params: dict[str, str],
        metrics: list[Any],
        tags: dict[str, str] | None = None,
    ) -> None:
        from mlflow.entities import Param, RunTag

        self.client.log_batch(
            run,
            metrics=metrics,
            params=[Param(k, v[:6000]) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in (tags or {}).items()],
        )

    def _job_metrics(self, job: Job) -> list[Any]:
        """Each step's loss and gradient norm, each epoch's values at the epoch's last step, and
        the selected epoch's validation (`selected/`) and test (`test/`) metrics."""
        metrics = []
        steps = job.table("steps.csv")
        for name in STEP_METRICS if steps is not None else ():
            if name in steps:
                metrics += self._series(name, steps["step"], steps[name])
        epochs = job.table("epochs.csv")
        for name in epochs.columns if epochs is not None else ():
            if name not in ("epoch", "step"):
                metrics += self._series(f"epoch/{name}", epochs["step"], epochs[name])
        chosen = job.summary.get("selected_epoch")
        rows = epochs[epochs["epoch"] == chosen] if epochs is not None else []
        at = int(rows["step"].iloc[0]) if len(rows) else 0  # the selected epoch's last step
        return metrics + [self._metric(name, v, at) for name, v in job.results().items()]

    def _series(self, name: str, steps: Iterable[Any], values: Iterable[Any]) -> list[Any]:
        return [
            self._metric(name, v, s)
            for s, v in zip(steps, values, strict=True)
            if v == v or name in STEP_METRICS
        ]

    def _metric(self, name: str, value: float, step: Any) -> Any:
        from mlflow.entities import Metric

        return Metric(name, float(value), int(time.time() * 1000), int(step))

    def _find(self, key: Path) -> Any:
        """The active run that describes `key`, if any."""
        found = self.client.search_runs(
            [self.experiment_id], f"tags.`{FOLDER_ID_TAG}` = '{_folder_id(key)}'", max_results=1
        )
        return found[0] if found else None

    def _children(self, parent: str) -> list[Any]:
        return list(
            self.client.search_runs(
                [self.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'", max_results=10_000
            )
        )


def _question(folder: Path) -> dict[str, str]:
    """A search's objective and direction (from its best.yaml), as tags."""
    import yaml

    try:
        best = yaml.safe_load((folder / "best.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return {
        k: str(best[k]) for k in ("objective", "direction") if isinstance(best, dict) and k in best
    }


def _folder_id(key: Path) -> str:
    return hashlib.sha1(str(key.resolve()).encode()).hexdigest()[:20]
