"""MLflow publishing (lossbench.tracking.mlflow_runs) into a real SQLite store, read back with
MLflow's own client: every value against the folder's files."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from lossbench.store.run_folder import RunFolder
from lossbench.tracking import publish
from lossbench.tracking.mlflow_runs import Publisher
from lossbench.tracking.records import flatten
from tests.tracking.folders import make_job, make_sweep

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(autouse=True)
def _nothing_lands_in_the_working_directory(tmp_path, monkeypatch):
    """A store's artifacts go beside its database, never into the folder a run starts in."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield
    assert not list(cwd.iterdir())


def runs(uri: str, experiment: str) -> list:
    client = mlflow.MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    return list(client.search_runs([found.experiment_id])) if found else []


def test_a_run_folder_is_one_run_with_its_config_tables_and_outcome(tmp_path, store):
    job = make_job(tmp_path / "run", steps=12, epochs=3)
    run_id = Publisher(store, "focal").publish(job)
    client = mlflow.MlflowClient(store)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    config = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
    expected = {k: v for k, v in flatten(config).items() if k.split(".")[0] not in
                ("resume", "debug", "tracker")}  # fmt: skip
    assert set(run.data.params) == {*expected, "version.keras"}
    assert run.data.params["loss.gamma"] == "2.0" and run.data.params["model.hidden"] == "[16, 8]"
    assert run.data.params["seed"] == "0" and run.data.params["backend"] == "tensorflow"
    assert run.data.tags["status"] == "ok" and run.data.tags["device"] == "CPU"
    assert run.data.tags["lossbench.folder"] == str(job.resolve())
    steps = pd.read_csv(job / "steps.csv")
    for name in ("loss", "grad_norm"):
        history = sorted(client.get_metric_history(run_id, name), key=lambda m: m.step)
        assert [m.step for m in history] == list(steps["step"])
        assert [m.value for m in history] == pytest.approx(list(steps[name]), rel=1e-12)
    epochs = pd.read_csv(job / "epochs.csv")
    history = client.get_metric_history(run_id, "epoch/accuracy")
    history = sorted(history, key=lambda m: m.step)
    assert [m.step for m in history] == list(epochs["step"])
    assert [m.value for m in history] == pytest.approx(list(epochs["accuracy"]), rel=1e-12)
    assert len(client.get_metric_history(run_id, "epoch/ece")) == 2  # its NaN epoch left out
    summary = json.loads((job / "summary.json").read_text())
    assert run.data.metrics["selected/accuracy"] == pytest.approx(summary["metrics"]["accuracy"])
    assert run.data.metrics["test/accuracy"] == 0.75
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"steps.csv", "epochs.csv", "summary.json", ".hydra"} <= names
    assert (tmp_path / "mlartifacts" / "focal" / run_id / "artifacts" / "steps.csv").exists()


ENDINGS = [("diverged", "FAILED"), ("error", "FAILED"), ("interrupted", "KILLED"),
           ("running", "KILLED")]  # fmt: skip


@pytest.mark.parametrize(("status", "ended"), ENDINGS)
def test_a_run_that_did_not_finish_ends_failed_or_killed_with_its_message(
    tmp_path, store, status, ended
):
    job = make_job(tmp_path / "run", status=status)
    run = mlflow.MlflowClient(store).get_run(Publisher(store, "x").publish(job))
    assert run.info.status == ended and run.data.tags["status"] == status
    assert run.data.tags["message"] == f"the run ended as {status}"


def test_a_resumed_sweep_adds_to_its_parent_and_replaces_only_rerun_jobs(tmp_path, store):
    sweep = tmp_path / "sweep"
    jobs = make_sweep(sweep)
    parent = Publisher(store, "lossbench").publish(sweep)
    first = {r.info.run_name: r.info.run_id for r in runs(store, "lossbench")}
    assert set(first) == {"sweep", *(j.name for j in jobs)}
    children = [r for r in runs(store, "lossbench") if r.info.run_name != "sweep"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent}
    # Resumed: one job ran again (a new summary), the others were kept.
    summary = RunFolder(jobs[1]).read()
    RunFolder(jobs[1]).write({**summary, "final_loss": 0.25})
    assert Publisher(store, "lossbench").publish(sweep) == parent
    again = {r.info.run_name: r.info.run_id for r in runs(store, "lossbench")}
    assert set(again) == set(first)
    assert again[jobs[1].name] != first[jobs[1].name]
    assert all(again[j.name] == first[j.name] for j in jobs if j != jobs[1])


def test_a_job_the_sweep_no_longer_has_leaves_its_parent(tmp_path, store):
    sweep = tmp_path / "sweep"
    jobs = make_sweep(sweep)
    Publisher(store, "lossbench").publish(sweep)
    moved = jobs[0].with_name("9_bce_seed0")
    jobs[0].rename(moved)  # resume moves a reused job into the folder its new number names
    Publisher(store, "lossbench").publish(sweep)
    names = sorted(r.info.run_name for r in runs(store, "lossbench"))
    assert names == sorted(["sweep", moved.name, *(j.name for j in jobs[1:])])


def test_an_unreachable_server_is_one_warning_and_nothing_else(tmp_path, capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    job = make_job(tmp_path / "run")
    tracker = {"name": "mlflow", "uri": f"http://127.0.0.1:{port}", "experiment": None}
    cfg = OmegaConf.create({"tracker": tracker, "trainer": {"tensorboard": False}})
    publish(job, cfg)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lossbench: warning: tracker=mlflow: "), err
    assert f"lossbench-report {job} --mlflow" in err[0]


def make_search(search: Path, state: str = "COMPLETE") -> None:
    """A search's folder: two trials of two seeds each, and its trials.csv."""
    rows = []
    for trial in range(2):
        names = [f"{2 * trial + s}_focal_seed{s}" for s in range(2)]
        for s, name in enumerate(names):
            if not (search / name).exists():
                make_job(search / name, seed=s, gamma=1.0 + trial)
        rows.append({"trial": trial, "state": state if trial else "COMPLETE",
                     "loss.gamma": 1.0 + trial, "minority_recall_seed0": 0.5,
                     "minority_recall_seed1": 0.7, "mean": 0.6, "jobs": " ".join(names),
                     "message": ""})  # fmt: skip
    pd.DataFrame(rows).to_csv(search / "trials.csv", index=False)


def test_a_search_is_trials_with_their_seeds_and_is_published_again_as_it_changes(tmp_path, store):
    search = tmp_path / "search"
    make_search(search)
    parent = Publisher(store, "s").publish(search)
    first = {r.info.run_name: r for r in runs(store, "s")}
    assert set(first) == {"search", "trial 0", "trial 1", *(f"{k}_focal_seed{k % 2}"
                                                             for k in range(4))}  # fmt: skip
    assert first["trial 1"].data.tags["mlflow.parentRunId"] == parent
    assert first["trial 1"].data.metrics == {"minority_recall": 0.6}
    assert first["trial 1"].data.params == {"loss.gamma": "2.0"}
    assert first["3_focal_seed1"].data.tags["mlflow.parentRunId"] == first["trial 1"].info.run_id
    Publisher(store, "s").publish(search)  # unchanged: every run kept
    assert {n: r.info.run_id for n, r in first.items()} == {
        r.info.run_name: r.info.run_id for r in runs(store, "s")}  # fmt: skip
    make_search(search, state="FAIL")  # trial 1's outcome changed: it and its seeds replaced
    Publisher(store, "s").publish(search)
    again = {r.info.run_name: r for r in runs(store, "s")}
    assert again["trial 1"].info.run_id != first["trial 1"].info.run_id
    assert again["trial 1"].info.status == "FAILED"
    assert again["trial 0"].info.run_id == first["trial 0"].info.run_id
    assert again["3_focal_seed1"].data.tags["mlflow.parentRunId"] == again["trial 1"].info.run_id


def test_a_sweep_refused_before_it_ran_leaves_the_earlier_ones_runs_alone(tmp_path, store):
    from lossbench.errors import ConfigError
    from lossbench.tracking import published

    sweep = tmp_path / "sweep"
    make_sweep(sweep)
    parent = Publisher(store, "lossbench").publish(sweep)
    cfg = OmegaConf.create({"tracker": {"name": "mlflow", "uri": store, "experiment": None},
                            "trainer": {"tensorboard": False}})  # fmt: skip
    with pytest.raises(ConfigError), published(sweep, cfg):
        raise ConfigError("hydra.sweeper.objective", "minority_recall (the study's)", "ece")
    run = mlflow.MlflowClient(store).get_run(parent)
    assert run.info.status == "FINISHED" and "message" not in run.data.tags
