"""`tracker=mlflow` and `tracker=tensorboard` from the command line, against a real MLflow
tracking server (SQLite behind it, a temporary artifact root), the default SQLite store, a server
that does not answer, and TensorBoard's own HParams backend. `make test-long` (CI) runs them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import TINY
from tests.test_cli import lossbench
from tests.tracking.hparams_reader import session_groups

mlflow = pytest.importorskip("mlflow")
pytestmark = [pytest.mark.slow, pytest.mark.long]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server on 127.0.0.1, ready when its /health answers."""
    root = tmp_path_factory.mktemp("mlflow-server")
    uri = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
         "--port", uri.rsplit(":", 1)[1], "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the MLflow server did not answer /health in 180 s"
        time.sleep(0.2)  # polling a readiness marker, not guessing a duration
    yield uri
    proc.terminate()
    proc.wait(timeout=30)


def experiment_runs(uri: str, name: str) -> dict[str, object]:
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None, f"no experiment {name!r} at {uri}"
    return {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}


def check_job_run(client: object, run: object, folder: Path) -> None:
    """A job's MLflow run holds its folder's config, per-step tables, outcome and files."""
    summary = json.loads((folder / "summary.json").read_text())
    assert run.info.status == "FINISHED" and run.data.tags["status"] == summary["status"]
    assert run.data.params["loss.name"] == summary["loss"]
    assert run.data.params["seed"] == str(summary["seed"])
    assert run.data.tags["lossbench.folder"] == str(folder.resolve())
    steps = pd.read_csv(folder / "steps.csv")
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted(m.step for m in history) == list(steps["step"])
    epochs = pd.read_csv(folder / "epochs.csv")
    assert len(client.get_metric_history(run.info.run_id, "epoch/val_loss")) == len(epochs)
    for name, value in summary["metrics"].items():
        if value is not None:
            assert run.data.metrics[f"selected/{name}"] == pytest.approx(value)
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"steps.csv", "epochs.csv", "summary.json", "predictions.parquet"} <= files


def test_a_sweep_is_a_parent_run_with_a_child_per_job_on_a_real_server(tmp_path, server):
    sweep = tmp_path / "sweep"
    proc = lossbench("-m", "loss=bce,focal", "seed=0,1", *TINY, "tracker=mlflow",
                     f"tracker.uri={server}", f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"in experiment 'lossbench' ({server})" in proc.stdout
    runs = experiment_runs(server, "lossbench")
    jobs = sorted(p.parent for p in sweep.glob("*/summary.json"))
    assert set(runs) == {"sweep", *(job.name for job in jobs)}
    parent = runs["sweep"]
    assert parent.info.status == "FINISHED" and parent.data.tags["kind"] == "sweep"
    client = mlflow.MlflowClient(server)
    assert {"summary.csv", "comparison.csv", "verdicts.csv"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id)}  # fmt: skip
    for job in jobs:
        run = runs[job.name]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        check_job_run(client, run, job)
    # The report of a tracked sweep goes to its parent run too.
    report_main = "from lossbench.sweep.cli import main; main()"
    report = subprocess.run([sys.executable, "-c", report_main, str(sweep), "--quiet"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert f"mlflow: run {parent.info.run_id}" in report.stdout
    files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "report.md" in files and any(name.endswith(".png") for name in files)
    # Resumed with a third seed: the same parent, the finished jobs' runs kept.
    proc = lossbench("-m", "loss=bce,focal", "seed=0,1,2", *TINY, "tracker=mlflow",
                     f"tracker.uri={server}", f"hydra.sweep.dir={sweep}", "resume=true",
                     cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    again = experiment_runs(server, "lossbench")
    assert len(again) == 7 and again["sweep"].info.run_id == parent.info.run_id
    assert {r.data.tags["mlflow.parentRunId"] for n, r in again.items() if n != "sweep"} == {
        parent.info.run_id}  # fmt: skip


def test_a_search_is_a_parent_of_trials_with_their_seeds_as_grandchildren(tmp_path, server):
    search = tmp_path / "search"
    proc = lossbench("hparams_search=focal_optuna", "hydra.sweeper.n_trials=3",
                     "hydra.sweeper.seeds=2", *TINY, "tracker=mlflow", f"tracker.uri={server}",
                     f"hydra.sweep.dir={search}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    runs = experiment_runs(server, "focal_optuna")
    trials = pd.read_csv(search / "trials.csv")
    parent = runs["search"]
    assert parent.data.tags["kind"] == "search" and parent.data.tags["objective"]
    client = mlflow.MlflowClient(server)
    for row in trials.to_dict("records"):
        trial = runs[f"trial {row['trial']}"]
        assert trial.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert trial.info.status == "FINISHED" and trial.data.tags["state"] == "COMPLETE"
        objective = parent.data.tags["objective"]
        assert trial.data.metrics[objective] == pytest.approx(row["mean"])
        for key in ("loss.gamma", "loss.alpha"):  # the preset's search space
            assert float(trial.data.params[key]) == pytest.approx(row[key])
        seeds = row["jobs"].split()
        assert len(seeds) == 2
        for name in seeds:
            assert runs[name].data.tags["mlflow.parentRunId"] == trial.info.run_id
            check_job_run(client, runs[name], search / name)


def test_the_default_store_is_a_sqlite_database_under_outputs(tmp_path):
    proc = lossbench("loss=focal", *TINY, "tracker=mlflow", "hydra.run.dir=run", cwd=tmp_path,
                     env={"MLFLOW_TRACKING_URI": ""})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    store = f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"
    runs = experiment_runs(store, "focal")
    assert list(runs) == ["run"]
    check_job_run(mlflow.MlflowClient(store), runs["run"], tmp_path / "run")
    assert not (tmp_path / "mlruns").exists()  # artifacts beside the database, not in the cwd


def test_a_diverged_run_ends_failed_with_its_message_and_exit_status(tmp_path, server):
    proc = lossbench("loss=mse", "trainer.optimizer=sgd", "trainer.learning_rate=10", *TINY,
                     "tracker=mlflow", f"tracker.uri={server}", "tracker.experiment=diverged",
                     "hydra.run.dir=run", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    run = experiment_runs(server, "diverged")["run"]
    assert run.info.status == "FAILED" and run.data.tags["status"] == "diverged"
    assert run.data.tags["message"] == json.loads((tmp_path / "run/summary.json").read_text())[
        "message"]  # fmt: skip


def test_a_server_that_does_not_answer_is_one_warning_and_the_run_goes_on(tmp_path):
    proc = lossbench("loss=focal", *TINY, "tracker=mlflow",
                     f"tracker.uri=http://127.0.0.1:{free_port()}", "hydra.run.dir=run",
                     cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("lossbench:")]
    assert len(warnings) == 1 and warnings[0].startswith("lossbench: warning: tracker=mlflow:")
    assert json.loads((tmp_path / "run/summary.json").read_text())["status"] == "ok"


def test_a_tensorboard_sweep_is_listed_by_the_hparams_dashboard(tmp_path):
    sweep = tmp_path / "sweep"
    proc = lossbench("-m", "loss=bce,focal", "seed=0,1", *TINY, "tracker=tensorboard",
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    groups = session_groups(sweep)
    jobs = sorted(p.parent for p in sweep.glob("*/summary.json"))
    assert set(groups) == {job.name for job in jobs}
    for job in jobs:
        hparams, metrics = groups[job.name]
        summary = json.loads((job / "summary.json").read_text())
        assert hparams["loss"] == summary["loss"] and hparams["seed"] == summary["seed"]
        assert metrics["selected/accuracy"] == pytest.approx(summary["metrics"]["accuracy"])
        assert list((job / "tensorboard").glob("events.out.tfevents.*.v2"))  # the run's scalars


def test_an_interrupted_run_ends_killed_and_keeps_its_exit_status(tmp_path):
    import signal

    from tests.processes import marked_loss_args, start, wait_for
    from tests.test_cli import LOSSBENCH

    run, marker = tmp_path / "run", tmp_path / "training"
    overrides, env = marked_loss_args(marker)
    proc = start([*LOSSBENCH, *overrides, "data.n_samples=50000", "trainer.epochs=200",
                  "trainer.progress=false", "tracker=mlflow", f"hydra.run.dir={run}"],
                 cwd=tmp_path, env={**env, "MLFLOW_TRACKING_URI": ""})  # fmt: skip
    wait_for(marker.exists, proc, "a compiled training step")
    proc.send_signal(signal.SIGINT)  # the worker, in a session of its own, does not get it
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    run_info = experiment_runs(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}", "custom")["run"]
    assert run_info.info.status == "KILLED" and run_info.data.tags["status"] == "interrupted"
