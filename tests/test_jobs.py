"""lossbench.jobs: what a finished job prints and the exit status a single run ends with."""

from __future__ import annotations

import math

import pytest

from lossbench import jobs
from lossbench.errors import EXIT_DIVERGED
from lossbench.store.run_folder import Status, Summary


def _summary(status: Status, final_loss: float | None) -> Summary:
    message = "diverged at step 3 (epoch 0): loss nan"
    return Summary(status=status, loss="bce", seed=0, steps=3, final_loss=final_loss,
                   metrics={"accuracy": 0.5}, message=message)  # fmt: skip


def test_a_sweeps_job_returns_its_final_loss_and_says_where_it_diverged(tmp_path, capsys):
    assert jobs.job_finished(_summary(Status.ok, 0.25), tmp_path / "0_bce", True) == 0.25
    assert capsys.readouterr().out.startswith("0_bce: ok accuracy=0.5")
    value = jobs.job_finished(_summary(Status.diverged, None), tmp_path / "1_bce", True)
    assert math.isnan(value)
    assert "diverged at step 3" in capsys.readouterr().err


def test_a_single_run_exits_with_its_status_code(tmp_path):
    assert jobs.job_finished(_summary(Status.ok, 0.5), tmp_path, False) == 0.5
    with pytest.raises(SystemExit) as stop:
        jobs.job_finished(_summary(Status.diverged, None), tmp_path, False)
    assert stop.value.code == EXIT_DIVERGED
