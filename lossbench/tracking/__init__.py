"""Runs where users already look at runs: MLflow (`tracker=mlflow`) and TensorBoard's HParams
dashboard (`tracker=tensorboard`, or `trainer.tensorboard=true`).

A run or sweep is published from its folder once it has ended (`published`): the folder is what
the run wrote, so tracking never decides a run's fate. A tracker that fails (a server that does
not answer) is one warning line, and the run's exit status stays what its folder says. Nothing
here imports MLflow, TensorBoard or pandas until a tracker is chosen.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lossbench.config.schema import TrackerName, tracker_of, writes_tensorboard
from lossbench.errors import ConfigError, one_line


@contextmanager
def published(folder: Path, cfg: Any, study: str | None = None) -> Iterator[None]:
    """Publish `folder` (a run, sweep or search) to the config's tracker once the block ends,
    however it ends (its exception, if any, is the sweep's outcome); a block with nothing to
    publish to does nothing at its end. With `tracker=mlflow`, a worker process imports MLflow
    and opens its store while the block runs (about two seconds that the run would otherwise
    wait for at its end: `lossbench.tracking.worker`).

    Args:
        study: the name of the study or search preset that made the sweep (the MLflow
            experiment's name when `tracker.experiment` is null).
    """
    tracker = tracker_of(cfg)
    if tracker is TrackerName.none and not writes_tensorboard(cfg):
        yield
        return
    from lossbench.tracking.worker import Worker

    worker = Worker.start(cfg.tracker.uri) if tracker is TrackerName.mlflow else None
    try:
        yield
    except ConfigError:  # refused before anything ran: the folder is an earlier run's
        if worker is not None:
            worker.dismiss()
        raise
    except BaseException as error:  # a sweep that failed or was interrupted: published so
        publish(folder, cfg, study, error, worker)
        raise
    publish(folder, cfg, study, None, worker)


def publish(
    folder: Path,
    cfg: Any,
    study: str | None = None,
    ended: BaseException | None = None,
    worker: Any = None,
) -> None:
    """Publish `folder` to the config's tracker (MLflow through `worker` when one was started);
    a failure is one warning line."""
    from lossbench.tracking.records import kind_of

    name = tracker_of(cfg).value
    if not folder.is_dir() or kind_of(folder) is None:  # nothing ran (a signal came first)
        if worker is not None:
            worker.dismiss()
        return
    if writes_tensorboard(cfg):
        warn_on_failure("tensorboard", folder, lambda: write_hparams(folder))
    if name != "mlflow":
        return
    experiment, outcome = cfg.tracker.experiment or study, outcome_of(ended)
    if worker is None or not worker.publish(folder, experiment, outcome):
        warn_on_failure(
            "mlflow", folder, lambda: publish_mlflow(folder, cfg.tracker.uri, experiment, outcome)
        )


def outcome_of(ended: BaseException | None) -> tuple[str, str]:
    """How a sweep's MLflow run ends (its status and message) after the block ended `ended`."""
    from lossbench.signals import Interrupted

    if ended is None:
        return "FINISHED", ""
    message = " ".join(str(ended).split())[:5000]
    return ("KILLED" if isinstance(ended, Interrupted | KeyboardInterrupt) else "FAILED"), message


def warn_on_failure(name: str, folder: Path, action: Callable[[], Any]) -> None:
    """Run `action`; its failure is one warning line (the run's outcome is decided already)."""
    try:
        action()
    except Exception as error:
        again = "--mlflow [URI]" if name == "mlflow" else "--tensorboard DIR"
        print(
            f"lossbench: warning: tracker={name}: {one_line(error)}; the run's tables are "
            f"complete (publish them later: lossbench-report {folder} {again})",
            file=sys.stderr,
            flush=True,
        )


def write_hparams(folder: Path, logdir: Path | None = None) -> Path:
    """The HParams session of each job of `folder` and, for a sweep, its experiment: in the
    jobs' own `tensorboard/` folders, or (with `logdir`) in `logdir` alone. Returns the folder
    to open with `tensorboard --logdir`."""
    from lossbench.tracking import hparams
    from lossbench.tracking.records import jobs_of, kind_of

    kind = kind_of(folder)
    jobs = jobs_of(folder)
    for job in jobs:
        where = job.path / "tensorboard" if logdir is None else logdir / job.path.name
        hparams.write_session(job, where)
    if kind == "run" and logdir is None:
        return folder / "tensorboard"
    hparams.write_experiment(jobs, (logdir or folder / "tensorboard"))
    return logdir or folder


def publish_mlflow(
    folder: Path,
    uri: str | None,
    experiment: str | None,
    outcome: tuple[str, str] = ("FINISHED", ""),
    client: Any = None,
) -> str:
    """Publish `folder` to MLflow (`uri` null: MLFLOW_TRACKING_URI or the local store; the
    experiment null: the runs' loss; `client`: one already open on `uri`); say where; return
    the top run's id."""
    from lossbench.tracking.mlflow_runs import Publisher, tracking_uri
    from lossbench.tracking.records import experiment_name

    uri = tracking_uri(uri)
    experiment = experiment or experiment_name(folder)
    run = Publisher(uri, experiment, client).publish(folder, outcome)
    print(f"mlflow: run {run} in experiment '{experiment}' ({uri})", flush=True)
    return run
