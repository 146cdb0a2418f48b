"""Sweeps that answer questions: aggregated tables, reports with plots, launchers, studies and
TensorBoard event files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lossbench.config.compose import compose
from lossbench.variants.registry import variants
from tests.conftest import TINY
from tests.processes import marked_loss_args, start, wait_for
from tests.test_cli import LOSSBENCH, ROOT, lossbench

REPORT = [sys.executable, "-c", "from lossbench.sweep.cli import main; main()"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sweep(tmp_path: Path, name: str, *args: str) -> tuple[Path, subprocess.CompletedProcess]:
    sweep = tmp_path / name
    proc = lossbench("-m", *TINY, *args, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    return sweep, proc


def _check_aggregate(sweep: Path, losses: list[str], seeds: list[int]) -> pd.DataFrame:
    table = pd.read_csv(sweep / "summary.csv")
    assert len(table) == len(losses) * len(seeds)
    assert (table["status"] == "ok").all()
    assert sorted(set(table["loss"])) == sorted(losses)
    comparison = pd.read_csv(sweep / "comparison.csv")
    assert comparison["loss"].tolist() == losses
    for _, row in comparison.iterrows():
        runs = table[table["loss"] == row["loss"]]
        assert row["jobs"] == row["ok"] == len(seeds)
        for col in ("final_loss", "val_loss"):
            assert row[f"{col}_mean"] == pytest.approx(runs[col].mean())
            if len(seeds) > 1:
                assert row[f"{col}_std"] == pytest.approx(runs[col].std(ddof=1))
            else:
                assert np.isnan(row[f"{col}_std"])
        # Each job's row holds what its own summary.json says.
        for _, job in runs.iterrows():
            summary = json.loads((sweep / job["job"] / "summary.json").read_text())
            assert job["final_loss"] == pytest.approx(summary["final_loss"])
            assert job["seed"] == summary["seed"]
    return table


@pytest.mark.slow
def test_a_sweep_writes_tables_and_the_report_draws_them(tmp_path):
    sweep, proc = _sweep(tmp_path, "sweep", "loss=bce,focal", "seed=0,1")
    assert proc.returncode == 0, proc.stderr
    _check_aggregate(sweep, ["bce", "focal"], [0, 1])
    assert "lossbench sweep:" in proc.stdout and "focal" in proc.stdout
    (sweep / "summary.csv").unlink()  # the report aggregates again from the job folders
    report = subprocess.run([*REPORT, str(sweep)], capture_output=True, text=True, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    _check_aggregate(sweep, ["bce", "focal"], [0, 1])
    text = (sweep / "report.md").read_text()
    assert "| loss | ok | jobs | final_loss | val_loss |" in text
    assert text.count("| bce | 2 | 2 |") == 1 and text.count("| focal | 2 | 2 |") == 1
    for png in ("loss.png", "grad_norm.png", "layer_grad_norms.png", "metrics.png"):
        assert f"]({png})" in text
        data = (sweep / png).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000


@pytest.mark.slow
def test_the_report_works_on_one_run_folder(tmp_path):
    run = tmp_path / "run"
    proc = lossbench("loss=group_dro", *TINY, f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = subprocess.run([*REPORT, str(run), "--quiet"], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    table = pd.read_csv(run / "summary.csv")
    assert table["loss"].tolist() == ["group_dro"] and table["status"].tolist() == ["ok"]
    assert (run / "loss.png").read_bytes().startswith(PNG_MAGIC)
    missing = subprocess.run([*REPORT, str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


@pytest.fixture(scope="module")
def basic_sweep(tmp_path_factory):
    """Two jobs run one after another in this process (Hydra's basic launcher)."""
    sweep, proc = _sweep(tmp_path_factory.mktemp("basic"), "basic", "loss=mse,group_dro")
    assert proc.returncode == 0, proc.stderr
    return sweep


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [
        pytest.param(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], marks=pytest.mark.long),
        pytest.param(["hydra/launcher=submitit_local"], marks=pytest.mark.long),
    ],
)
def test_launchers_run_the_same_jobs_as_the_basic_launcher(tmp_path, launcher, basic_sweep):
    """Jobs in worker processes write the same bytes as jobs run one after another here."""
    other, proc = _sweep(tmp_path, "other", "loss=mse,group_dro", *launcher)
    assert proc.returncode == 0, proc.stderr
    table = _check_aggregate(other, ["mse", "group_dro"], [0])
    for job in table["job"]:
        for name in ("steps.csv", "grad_norms.csv", "epochs.csv"):
            assert (other / job / name).read_bytes() == (basic_sweep / job / name).read_bytes()


@pytest.mark.slow
@pytest.mark.long
def test_a_failing_job_in_a_parallel_sweep_is_named(tmp_path):
    sweep, proc = _sweep(tmp_path, "sweep", "loss=mse", "data.nan_rate=0,0.05",
                         "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")  # fmt: skip
    assert proc.returncode == 1
    table = pd.read_csv(sweep / "summary.csv")
    assert table["status"].tolist() == ["ok", "diverged"]
    assert "1 of 2 jobs did not finish: 1_mse_seed0 (diverged" in proc.stderr


STUDIES = {
    "imbalance": {"bce", "sample_weights", "threshold", "focal", "class_balanced",
                  "logit_adjusted"},
    "groups": {"mse", "grouped", "grouped_dynamic", "group_dro"},
    "calibration": {"temperature"},
    "multitask": {"multitask"},
    "breast_cancer": {"bce", "sample_weights", "focal", "class_balanced", "logit_adjusted"},
}  # fmt: skip


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_every_study_composes_and_sweeps_valid_variants_over_at_least_five_seeds(study):
    from lossbench.config.compose import compose_raw

    cfg = compose_raw([f"+experiment={study}"], with_hydra=True)
    params = dict(cfg.hydra.sweeper.params)
    assert len(params["seed"].split(",")) >= 5
    losses = set(params["loss"].split(",")) if "loss" in params else {cfg.loss.name}
    assert losses == STUDIES[study] and losses <= set(variants())
    # Every job of the study is a valid config.
    others = [(k, v.split(",")) for k, v in params.items() if k not in ("loss", "seed")]
    for loss in losses:
        for k, values in others or [("seed", ["0"])]:
            for value in values:
                job = compose([f"+experiment={study}", f"loss={loss}", f"{k}={value}"])
                assert job.loss.name == loss
    doc = (ROOT / "experiments" / "README.md").read_text()
    assert f"make study NAME={study}" in doc


@pytest.mark.slow
def test_tensorboard_event_files_hold_the_tables(tmp_path):
    import tensorflow as tf

    run = tmp_path / "run"
    proc = lossbench("loss=grouped_dynamic", *TINY, "trainer.tensorboard=true",
                     f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = list((run / "tensorboard").glob("events.out.tfevents.*.v2"))
    assert len(events) == 1  # and the HParams session beside it (tests/tracking/test_hparams.py)
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*.hparams"))) == 1
    scalars: dict[str, dict[int, float]] = {}
    histograms: set[str] = set()
    for event in tf.compat.v1.train.summary_iterator(str(events[0])):
        for value in event.summary.value:
            tensor = tf.make_ndarray(value.tensor)
            if value.metadata.plugin_data.plugin_name == "histograms":
                histograms.add(value.tag)
            else:
                scalars.setdefault(value.tag, {})[event.step] = float(tensor)
    steps = pd.read_csv(run / "steps.csv")
    norms = pd.read_csv(run / "grad_norms.csv")
    epochs = pd.read_csv(run / "epochs.csv")
    np.testing.assert_array_equal(list(scalars["train/loss"].values()),
                                  steps["loss"].to_numpy("float32"))  # fmt: skip
    np.testing.assert_allclose(list(scalars["train/grad_norm"].values()), steps["grad_norm"],
                               rtol=1e-6)  # fmt: skip
    head = norms[norms["layer"] == "head"]["grad_norm"].to_numpy("float32")
    np.testing.assert_array_equal(list(scalars["grad_norm/head"].values()), head)
    assert list(scalars["epoch/val_loss"]) == epochs["step"].tolist()
    assert {"grad_norm_hist/hidden_0", "grad_norm_hist/head"} <= histograms
    assert any(tag.startswith("weights/") for tag in histograms)


def test_experiment_presets_ship_with_the_package():
    from importlib import resources

    names = {e.name for e in resources.files("lossbench.conf").joinpath("experiment").iterdir()}
    assert {f"{s}.yaml" for s in STUDIES} <= names
    for study in STUDIES:
        text = (ROOT / "experiments" / f"{study}.yaml").read_text()
        assert text.startswith("# @package _global_")
        seeds = yaml.safe_load(text)["hydra"]["sweeper"]["params"]["seed"]
        assert len(str(seeds).split(",")) >= 5


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file()}  # fmt: skip


@pytest.mark.slow
@pytest.mark.long
def test_resume_reruns_only_unfinished_or_changed_jobs_and_keeps_the_others(tmp_path):
    sweep = tmp_path / "sweep"
    # JAX: a quicker start than TensorFlow for these three short sweeps.
    args = ["-m", "loss=mse", "seed=0,1,2", *TINY, "trainer.epochs=1", "backend=jax",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    first = lossbench(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    # Job 1 was killed: its folder says "running".
    killed = sweep / "1_mse_seed1" / "summary.json"
    killed.write_text(json.dumps({**json.loads(killed.read_text()), "status": "running"}))
    kept = {name: _mtimes(sweep / name) for name in ("0_mse_seed0", "2_mse_seed2")}
    again = lossbench(*args, "resume=true", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert {name: _mtimes(sweep / name) for name in kept} == kept
    assert json.loads(killed.read_text())["status"] == "ok"
    table = pd.read_csv(sweep / "summary.csv")
    assert list(table["job"]) == ["0_mse_seed0", "1_mse_seed1", "2_mse_seed2"]
    assert "resume" not in table.columns and (table["status"] == "ok").all()
    # A changed config reruns every job.
    changed = lossbench(*args, "trainer.learning_rate=0.01", "resume=true", cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    assert all(_mtimes(sweep / name) != kept[name] for name in kept)
    assert (pd.read_csv(sweep / "summary.csv")["trainer.learning_rate"] == 0.01).all()


def _summaries(sweep: Path) -> dict[str, bytes]:
    return {str(p.relative_to(sweep)): p.read_bytes() for p in sweep.glob("*/summary.json")}


@pytest.mark.slow
@pytest.mark.long
def test_a_resumed_sweep_holds_exactly_its_own_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    common = [*TINY, "trainer.epochs=1", "backend=jax", f"hydra.sweep.dir={sweep}"]
    assert lossbench("-m", "loss=bce,focal", "seed=0,1", *common, cwd=tmp_path).returncode == 0
    results = {json.loads(b)["loss"] + str(json.loads(b)["seed"]): b
               for b in _summaries(sweep).values()}  # fmt: skip
    # The same jobs in another order: every finished result is reused, none runs again.
    again = lossbench("-m", "seed=0,1", "loss=bce,focal", "resume=true", *common, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    table = pd.read_csv(sweep / "summary.csv")
    assert len(table) == 4 and "left out" not in again.stderr
    for job in table["job"]:
        summary = (sweep / job / "summary.json").read_bytes()
        assert summary == results[json.loads(summary)["loss"] + str(json.loads(summary)["seed"])]
    # Seeds 0,2: seed 1's jobs stay on disk, out of the tables, and are named.
    changed = lossbench("-m", "seed=0,2", "loss=bce,focal", "resume=true", *common, cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    table = pd.read_csv(sweep / "summary.csv")
    jobs = sorted(zip(table["loss"], table["seed"], strict=True))
    assert jobs == [("bce", 0), ("bce", 2), ("focal", 0), ("focal", 2)]
    assert "left out of this sweep's tables: 2 job folders" in changed.stderr
    assert len(_summaries(sweep)) == 6
    # Another sweep resumed into this folder: its tables hold its own job only.
    other = lossbench("-m", "loss=mse", "resume=true", *common, cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert list(pd.read_csv(sweep / "summary.csv")["loss"]) == ["mse"]
    assert list(pd.read_csv(sweep / "comparison.csv")["loss"]) == ["mse"]


@pytest.mark.slow
@pytest.mark.long
def test_a_resumed_job_whose_loss_file_changed_runs_again(tmp_path):
    sweep = tmp_path / "sweep"
    (tmp_path / "mine.py").write_text(
        "from keras import ops\n"
        "def f(y_true, y_pred):\n    return ops.mean(ops.square(y_true - y_pred), axis=-1)\n"
    )
    args = ["-m", "loss=custom", "loss.target=mine.py:f", "loss.task=binary", "seed=0,1", *TINY,
            "trainer.epochs=1", "backend=jax", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    assert lossbench(*args, cwd=tmp_path).returncode == 0
    before = _summaries(sweep)
    unchanged = lossbench(*args, "resume=true", cwd=tmp_path)
    assert unchanged.returncode == 0 and _summaries(sweep) == before
    with (tmp_path / "mine.py").open("a") as f:
        f.write("# edited\n")
    edited = lossbench(*args, "resume=true", cwd=tmp_path)
    assert edited.returncode == 0, edited.stderr
    assert edited.stderr.count("the file of loss.target (mine.py) changed") == 2
    after = _summaries(sweep)
    assert after.keys() == before.keys() and all(after[k] != before[k] for k in before)


@pytest.mark.slow
@pytest.mark.timing
def test_a_sweep_interrupted_in_its_second_job_resumes_only_that_job(tmp_path):
    sweep, marker = tmp_path / "sweep", tmp_path / "training"
    overrides, env = marked_loss_args(marker)
    args = ["-m", *overrides, "seed=0,1", "data.n_samples=4000", "trainer.epochs=30",
            "trainer.progress=false", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    proc = start([*LOSSBENCH, *args], cwd=tmp_path, env=env)
    first = sweep / "0_custom_seed0" / "summary.json"

    def first_finished() -> bool:
        return first.exists() and json.loads(first.read_text() or "{}").get("status") == "ok"

    wait_for(first_finished, proc, "the first job finished")
    marker.unlink()  # every compiled step makes it again: from now on, only the second job's
    wait_for(marker.exists, proc, "the second job training")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert json.loads((sweep / "1_custom_seed1" / "summary.json").read_text())["status"] == (
        "interrupted"
    )
    kept = _mtimes(sweep / "0_custom_seed0")
    again = start([*LOSSBENCH, *args, "resume=true"], cwd=tmp_path, env=env)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert _mtimes(sweep / "0_custom_seed0") == kept
    table = pd.read_csv(sweep / "summary.csv")
    assert list(table["status"]) == ["ok", "ok"] and list(table["seed"]) == [0, 1]
