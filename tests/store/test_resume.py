"""A sweep's own jobs and what a resumed job may reuse (lossbench.store.resume), from files
alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from lossbench.store.resume import (
    changed_inputs,
    input_files,
    job_key,
    sweep_jobs,
    write_inputs,
    write_plan,
)


def test_a_job_is_its_overrides_in_any_order_escapes_undone():
    assert job_key(["loss=a", "seed=1", "+x=2"]) == job_key(["x=2", "seed=1", "loss=a"])
    assert job_key([r"loss.target=a.py\:f"]) == job_key(["loss.target=a.py:f"])
    assert job_key(["loss=a", "resume=true", "debug=true"]) == job_key(["loss=a"])
    assert job_key(["loss=a", "seed=1"]) != job_key(["loss=a", "seed=2"])


def _job(sweep: Path, name: str, overrides: list[str], mtime: float) -> Path:
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / "summary.json").write_text(json.dumps({"status": "ok"}))
    os.utime(job / "summary.json", (mtime, mtime))
    return job


def test_a_sweep_holds_its_planned_jobs_the_newest_folder_of_each(tmp_path):
    a0 = _job(tmp_path, "0_a", ["loss=a", "seed=0"], 100)
    a1 = _job(tmp_path, "1_a", ["loss=a", "seed=1"], 100)
    older = _job(tmp_path, "2_a_old", ["seed=0", "loss=a"], 50)
    folders = [a0, a1, older]
    assert sweep_jobs(tmp_path, folders) == (folders, [])  # no plan: every folder
    write_plan(tmp_path, [["seed=0", "loss=a"], ["loss=b", "seed=0"]])
    assert sweep_jobs(tmp_path, folders) == ([a0], [a1, older])


def test_input_files_are_every_python_target_and_a_tables_path(tmp_path):
    cfg = {"loss": {"name": "scaled", "base_params": {"target": "losses/mine.py:f"}},
           "data": {"source": "table", "path": "data/t.csv"},
           "model": {"target": "pkg.m:Net"}}  # fmt: skip
    assert input_files(cfg) == {"loss.base_params.target": Path("losses/mine.py"),
                                "data.path": Path("data/t.csv")}  # fmt: skip
    synthetic = {"loss": {"name": "bce"}, "data": {"source": "synthetic", "path": "x.csv"}}
    assert input_files(synthetic) == {}
    module = {"loss": {"target": "tests.check.example_losses:GoodFocal"}, "data": {}}
    assert input_files(module) == {
        "loss.target": Path(__file__).parents[1] / "check" / "example_losses.py"
    }
    assert input_files({"loss": {"target": "no_such_module_x:f"}, "data": {}}) == {}


def test_a_changed_or_missing_input_file_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mine.py").write_text("x = 1\n")
    cfg = {"loss": {"name": "custom", "target": "mine.py:f"}, "data": {"source": "synthetic"}}
    job = tmp_path / "job"
    (job / ".hydra").mkdir(parents=True)
    write_inputs(job, cfg)
    assert changed_inputs(job, cfg) == []
    Path("mine.py").write_text("x = 2\n")
    assert changed_inputs(job, cfg) == ["loss.target"]
    Path("mine.py").unlink()
    assert changed_inputs(job, cfg) == ["loss.target"]
    (job / ".hydra" / "inputs.yaml").unlink()
    assert changed_inputs(job, cfg) == ["loss.target"]  # no record: cannot be the same


def test_the_tracker_is_not_part_of_a_jobs_identity():
    """Publishing a sweep elsewhere (tracker=mlflow on resume) reuses its finished jobs."""
    from lossbench.store.resume import job_key

    plain = job_key(["loss=focal", "seed=1"])
    assert job_key(["loss=focal", "tracker=mlflow", "seed=1", "tracker.uri=http://h"]) == plain
