"""lossbench.run.training: one path from built experiments to written folders, with a typed
summary per job and the runners a process's jobs share."""

from __future__ import annotations

import json
import math

import pytest

from lossbench.errors import ConfigError
from lossbench.run.experiment import RunnerCache
from lossbench.run.training import run_experiment, run_experiments
from lossbench.store.run_folder import Status, Summary


def _written(folder):
    return json.loads((folder / "summary.json").read_text())


def test_each_job_gets_the_summary_it_returns_and_seeds_share_one_runner(tiny_config, tmp_path):
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
    runners = RunnerCache()
    cfgs = [tiny_config("bce", f"seed={seed}") for seed in (0, 1)]
    outcomes = run_experiments(cfgs, folders, runners=runners)
    assert len(runners) == 1  # the second seed reused the first one's compiled runner
    for seed, (outcome, folder) in enumerate(zip(outcomes, folders, strict=True)):
        assert isinstance(outcome, Summary) and outcome.status is Status.ok
        assert outcome.seed == seed and outcome.steps > 0 and outcome.wall_seconds > 0
        written = _written(folder)
        # JSON has no NaN (a metric a tiny split cannot compute): the file says null.
        assert written == json.loads(json.dumps(outcome.as_json()).replace("NaN", "null"))
        assert written["final_loss"] == pytest.approx(outcome.final_loss)
        assert "vectorized_seeds" not in written and "message" not in written
    assert outcomes[0].final_loss != outcomes[1].final_loss  # two seeds, two runs


def test_a_job_that_cannot_be_built_is_its_error_and_the_others_still_train(tiny_config, tmp_path):
    folders = [tmp_path / "bad", tmp_path / "good"]
    for folder in folders:
        folder.mkdir()
    # Validation lets this fraction through; the test split built from it holds no positive.
    bad = tiny_config("bce", "data.test_fraction=0.001")
    outcomes = run_experiments([bad, tiny_config("bce")], folders)
    assert isinstance(outcomes[0], ConfigError) and "data.test_fraction" in str(outcomes[0])
    assert _written(folders[0])["status"] == "running"  # the caller writes the error
    assert isinstance(outcomes[1], Summary) and _written(folders[1])["status"] == "ok"


def test_a_single_run_raises_its_error(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match=r"data\.test_fraction"):
        run_experiment(tiny_config("bce", "data.test_fraction=0.001"), tmp_path)


def test_a_one_epoch_run_selects_its_only_epoch(tiny_config, tmp_path):
    summary = run_experiment(tiny_config("bce", "trainer.epochs=1"), tmp_path)
    assert summary.final_loss is not None and math.isfinite(summary.final_loss)
    assert _written(tmp_path)["selected_epoch"] == summary.selected_epoch == 0
