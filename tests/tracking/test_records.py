"""Reading finished folders for the trackers (lossbench.tracking.records)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from lossbench.tracking.records import Job, flatten, kind_of, shown, trials
from tests.tracking.folders import make_job, make_sweep


def test_a_config_flattens_to_dotted_keys_in_yamls_spelling():
    flat = flatten({"loss": {"name": "focal", "gamma": 2.0, "alpha": None},
                    "model": {"hidden": [16, 8]}, "seed": 3})  # fmt: skip
    assert flat == {"loss.name": "focal", "loss.gamma": 2.0, "loss.alpha": None,
                    "model.hidden": [16, 8], "seed": 3}  # fmt: skip
    assert [shown(v) for v in (None, True, 2.0, [16, 8], "a b")] == [
        "null", "true", "2.0", "[16, 8]", "a b"]  # fmt: skip


def test_a_folder_is_a_run_a_sweep_a_search_or_nothing(tmp_path):
    assert kind_of(make_job(tmp_path / "run")) == "run"
    make_sweep(tmp_path / "sweep")
    assert kind_of(tmp_path / "sweep") == "sweep"
    (tmp_path / "empty").mkdir()
    assert kind_of(tmp_path / "empty") is None  # a run a signal stopped before it was built


def test_a_searchs_trials_name_their_objective_parameters_and_seeds(tmp_path):
    search = tmp_path / "search"
    make_job(search / "0_focal_seed0", seed=0)
    make_job(search / "1_focal_seed1", seed=1)
    pd.DataFrame([
        {"trial": 0, "state": "COMPLETE", "loss.gamma": 2.5, "minority_recall_seed0": 0.5,
         "minority_recall_seed1": 0.7, "mean": 0.6, "jobs": "0_focal_seed0 1_focal_seed1",
         "message": ""},
        {"trial": 1, "state": "FAIL", "loss.gamma": 0.5, "minority_recall_seed0": None,
         "minority_recall_seed1": None, "mean": None, "jobs": "", "message": "diverged"},
    ]).to_csv(search / "trials.csv", index=False)  # fmt: skip
    assert kind_of(search) == "search"
    first, second = trials(search)
    assert first.params == {"loss.gamma": 2.5} and first.values == {"minority_recall": 0.6}
    assert [job.path.name for job in first.jobs] == ["0_focal_seed0", "1_focal_seed1"]
    assert second.state == "FAIL" and second.values == {} and second.message == "diverged"


def test_a_jobs_results_are_its_selected_and_test_metrics_with_a_value(tmp_path):
    job = Job(make_job(tmp_path / "run"))
    results = job.results()
    assert set(results) == {"selected/val_loss", "selected/accuracy", "selected/ece",
                            "test/accuracy"}  # fmt: skip
    assert job.overrides["loss.gamma"] == "2.0" and "tracker" not in job.overrides


def test_choosing_no_tracker_imports_no_tracker():
    """`tracker=none` costs nothing: the modules a run and a sweep import leave MLflow and
    TensorBoard alone."""
    code = ("import sys, lossbench.jobs, lossbench.run.training, lossbench.tracking, "
            "lossbench.sweep.report, "
            "hydra_plugins.lossbench_launcher.sweeper; "
            "print(sorted(m for m in ('mlflow', 'tensorboard') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
