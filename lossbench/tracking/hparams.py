"""TensorBoard's HParams dashboard for finished runs: each job's session (its own settings and
the selected epoch's metrics) and a sweep's experiment (every setting and metric it varies).

Written with TensorBoard's own HParams API into event files of their own (`*.hparams`), which
are replaced when a folder is published again, so a session is never listed twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from lossbench.tracking.records import Job

SUFFIX = ".hparams"
# Settings that change how a run is shown, not what it computes.
NOT_SETTINGS = ("hydra.", "trainer.progress")


def hparam_values(job: Job) -> dict[str, bool | int | float | str]:
    """The job's settings from its command line, typed as YAML reads them (`loss.gamma=2` is a
    number), the Hydra keys left out."""
    values: dict[str, bool | int | float | str] = {}
    for key, text in job.overrides.items():
        if key.startswith(NOT_SETTINGS):
            continue
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        values[key] = value if isinstance(value, bool | int | float | str) else text
    return values


def write_session(job: Job, logdir: Path) -> None:
    """The job's HParams session in `logdir` (its earlier session there replaced)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    _clear(logdir)
    writer = tf.summary.create_file_writer(str(logdir), filename_suffix=SUFFIX)
    with writer.as_default():
        hp.hparams(hparam_values(job), trial_id=job.path.name)
        for name, value in job.results().items():
            tf.summary.scalar(name, value, step=0)
    writer.close()


def write_experiment(jobs: Sequence[Job], logdir: Path) -> None:
    """The HParams experiment of `jobs` in `logdir`: every setting and metric their sessions
    have, a setting's values as its domain where they share one type."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    settings: dict[str, set[Any]] = {}
    metrics: dict[str, None] = {}
    for job in jobs:
        for key, value in hparam_values(job).items():
            settings.setdefault(key, set()).add(value)
        metrics.update(dict.fromkeys(job.results()))
    hparams = [hp.HParam(key, _domain(values)) for key, values in sorted(settings.items())]
    _clear(logdir)
    writer = tf.summary.create_file_writer(str(logdir), filename_suffix=SUFFIX)
    with writer.as_default():
        hp.hparams_config(hparams=hparams, metrics=[hp.Metric(name) for name in metrics])
    writer.close()


def _domain(values: set[Any]) -> Any:
    from tensorboard.plugins.hparams import api as hp

    types = {type(v) for v in values}
    if types <= {int, float} and bool not in types:
        return hp.Discrete(sorted(float(v) for v in values))
    return hp.Discrete(sorted(values)) if len(types) == 1 else None


def _clear(logdir: Path) -> None:
    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob(f"events.out.tfevents.*{SUFFIX}"):
        old.unlink()
