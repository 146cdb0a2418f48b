"""`hydra/sweeper=lossbench`: Hydra's basic sweeper that does not compose again the jobs
lossbench's plan has composed and validated, and checks every other batch as Hydra does."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.plugins.sweeper import Sweeper

from hydra_plugins.lossbench_launcher.sweeper import PlannedSweeper
from lossbench import launch
from lossbench.config import compose_raw
from tests.test_cli import lossbench


def test_plan_records_each_job_without_the_hydra_overrides_that_the_sweeper_drops(tmp_path):
    launch.plan(
        ["seed=0,1", "loss=bce,focal", f"hydra.sweep.dir={tmp_path / 's'}", "hydra/launcher=basic"],
        multirun=True,
    )
    assert launch.was_planned(["seed=1", "loss=focal"])
    assert launch.planned_backend(["seed=1", "loss=focal"]) == "tensorflow"
    assert launch.planned_backend(["seed=2", "loss=focal"]) is None
    assert launch.was_planned(["seed=0", "loss=bce", "hydra.job.chdir=false"])
    assert not launch.was_planned(["seed=2", "loss=focal"])
    assert not launch.was_planned(["seed=1", "loss=focal", "trainer.epochs=3"])
    # Only the last planned sweep's jobs count.
    launch.plan(["seed=5", f"hydra.sweep.dir={tmp_path / 't'}"], multirun=True)
    assert launch.was_planned(["seed=5"])
    assert not launch.was_planned(["seed=1", "loss=focal"])


def test_only_batches_with_an_unplanned_job_are_checked_again(monkeypatch):
    checked: list[list[list[str]]] = []
    # Hydra's check lives in its Sweeper base class (its plugin scan may reload BasicSweeper).
    monkeypatch.setattr(Sweeper, "validate_batch_is_legal", lambda _, b: checked.append(b))
    monkeypatch.setattr(launch, "_PLANNED", {("seed=0", "loss=bce"): "tensorflow"})
    sweeper = PlannedSweeper(max_batch_size=None, params=None)
    sweeper.basic.validate_batch_is_legal([["seed=0", "loss=bce"]])
    assert checked == []
    batch = [["seed=0", "loss=bce"], ["seed=1", "loss=bce"]]
    sweeper.basic.validate_batch_is_legal(batch)
    assert checked == [batch]


def test_it_is_the_default_sweeper_and_keeps_the_basic_sweepers_options():
    cfg = compose_raw(["hydra.sweeper.max_batch_size=2"], with_hydra=True, multirun=True)
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.lossbench_launcher.sweeper.PlannedSweeper"
    assert cfg.hydra.sweeper.max_batch_size == 2
    assert cfg.hydra.sweeper.params is None


@pytest.mark.parametrize("cwd_is_repo", [False, True])
def test_a_sweep_started_by_hydras_own_flags_is_still_checked_before_any_job_runs(
    tmp_path: Path, cwd_is_repo: bool
):
    """Hydra's flags (`-cn`) bypass lossbench's plan: the bad second job must stop the sweep
    before the first one runs, as with Hydra's basic sweeper. From the repository's root,
    Hydra's plugin scan also executes the sweeper's file itself."""
    sweep = tmp_path / "sweep"
    cwd = Path(__file__).resolve().parents[1] if cwd_is_repo else tmp_path
    proc = lossbench(
        "-m", "-cn", "config", "loss=bce,nonexistent", f"hydra.sweep.dir={sweep}", cwd=cwd
    )
    assert proc.returncode != 0
    assert "`loss`" in proc.stderr and "'nonexistent'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(sweep.glob("*/summary.json"))
