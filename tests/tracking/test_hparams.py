"""TensorBoard's HParams data (lossbench.tracking.hparams), read back by TensorBoard's own
HParams backend: the session groups its dashboard lists."""

from __future__ import annotations

import pytest

from lossbench.tracking import write_hparams
from lossbench.tracking.records import Job
from tests.tracking.folders import make_sweep
from tests.tracking.hparams_reader import experiment_hparams, session_groups

pytest.importorskip("tensorboard")


def test_a_sweeps_jobs_are_session_groups_with_their_settings_and_selected_metrics(tmp_path):
    sweep = tmp_path / "sweep"
    jobs = make_sweep(sweep, losses=("bce", "focal"), seeds=2)
    logdir = write_hparams(sweep, tmp_path / "hparams")
    groups = session_groups(logdir)
    assert set(groups) == {job.name for job in jobs}
    for job in jobs:
        hparams, metrics = groups[job.name]
        summary = Job(job).summary
        assert hparams["loss"] == summary["loss"] and hparams["seed"] == summary["seed"]
        assert hparams["loss.gamma"] == 2.0 and "trainer.progress" not in hparams
        expected = {f"selected/{k}": v for k, v in summary["metrics"].items()}
        assert metrics == pytest.approx({**expected, "test/accuracy": 0.75}, rel=1e-6)
    assert experiment_hparams(logdir) == ["loss", "loss.gamma", "seed"]


def test_publishing_again_replaces_a_jobs_session(tmp_path):
    sweep = tmp_path / "sweep"
    jobs = make_sweep(sweep, losses=("bce",), seeds=2)
    write_hparams(sweep)
    write_hparams(sweep)  # a resumed sweep publishes its kept jobs again
    assert len(list((jobs[0] / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert set(session_groups(sweep)) == {job.name for job in jobs}
