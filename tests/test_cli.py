"""The `lossbench` command end to end: output files and columns, sweeps, errors, start-up."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossbench.variants.registry import variants
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
ALL_LOSSES = list(variants())
# Variants that run without user input (`custom` needs loss.target: tests/variants/test_custom.py).
SELF_CONTAINED = [name for name in ALL_LOSSES if name != "custom"]
LOSSBENCH = [sys.executable, "-c", "from lossbench.cli import main; main()"]


def lossbench(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", **(env or {})}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [*LOSSBENCH, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def check_run_folder(run: Path) -> dict:
    """Every table a user reads, with its columns, row counts and finite values."""
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "ok"
    for key in ("steps", "wall_seconds", "steps_per_second", "device", "backend", "versions"):
        assert key in summary
    assert summary["steps_per_second"] > 0 and summary["backend"] == "tensorflow"
    assert {"tensorflow", "keras", "python"} <= set(summary["versions"])
    cfg = (run / ".hydra" / "config.yaml").read_text()
    assert "loss:" in cfg

    steps = pd.read_csv(run / "steps.csv")
    assert list(steps.columns[:4]) == ["step", "epoch", "loss", "grad_norm"]
    assert len(steps) == summary["steps"]
    np.testing.assert_array_equal(steps["step"], np.arange(len(steps)))
    assert np.isfinite(steps[["loss", "grad_norm"]].to_numpy()).all()
    assert (steps["grad_norm"] > 0).all()

    norms = pd.read_csv(run / "grad_norms.csv")
    assert list(norms.columns) == ["step", "layer", "grad_norm"]
    layers = norms["layer"].unique().tolist()
    heads = ["box_head", "class_head"] if summary["task"] == "multitask" else ["head"]
    assert layers == ["hidden_0", "hidden_1", *heads]
    assert len(norms) == len(steps) * len(layers)
    assert np.isfinite(norms["grad_norm"]).all()
    # The global norm is the root of the sum of squared per-layer norms.
    by_step = np.sqrt(
        (norms.pivot(index="step", columns="layer", values="grad_norm") ** 2).sum(axis=1)
    )
    np.testing.assert_allclose(by_step.to_numpy(), steps["grad_norm"], rtol=1e-5)

    epochs = pd.read_csv(run / "epochs.csv")
    assert len(epochs) == summary["epochs"]
    assert {"epoch", "train_loss", "val_loss"} <= set(epochs.columns)
    assert np.isfinite(
        epochs.drop(columns=["epoch"]).dropna(axis=1, how="all").to_numpy(float)
    ).all()
    for key, value in summary["metrics"].items():
        if value is None:  # NaN (a group without positives has no recall) is JSON's null
            assert math.isnan(epochs.iloc[-1][key]), key
            continue
        assert math.isclose(value, epochs.iloc[-1][key], rel_tol=1e-9), key
    return summary


@pytest.mark.slow
def test_readme_command_writes_every_table(tmp_path):
    run = tmp_path / "run"
    proc = lossbench(
        "loss=grouped_dynamic", "scale.epsilon=1e-6", *TINY, f"hydra.run.dir={run}", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    summary = check_run_folder(run)
    # 600 samples, 20% held out -> 480 train rows, batch 32 -> 15 steps per epoch, 2 epochs.
    assert summary["steps"] == 30
    epochs = pd.read_csv(run / "epochs.csv")
    assert {"mse", "worst_group_mse", "mse_group_0", "mse_group_3"} <= set(epochs.columns)
    assert str(run) in proc.stdout and "steps_per_second" in proc.stdout


@pytest.mark.slow
def test_two_job_multirun_writes_one_folder_per_job(tmp_path):
    sweep = tmp_path / "sweep"
    proc = lossbench(
        "-m", "loss=bce,grouped", *TINY, f"hydra.sweep.dir={sweep}", "seed=1", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0_bce_seed1", "1_grouped_seed1"]
    summaries = [check_run_folder(job) for job in jobs]
    assert [s["loss"] for s in summaries] == ["bce", "grouped"]
    assert {"roc_auc", "pr_auc", "minority_recall", "accuracy"} <= set(summaries[0]["metrics"])


@pytest.mark.slow
@pytest.mark.long
def test_default_output_folders_do_not_collide(tmp_path):
    for _ in range(2):
        proc = lossbench("loss=mse", *TINY, "trainer.epochs=1", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    runs = list((tmp_path / "outputs" / "runs").glob("*/*"))
    assert len(runs) == 2
    for run in runs:
        assert json.loads((run / "summary.json").read_text())["status"] == "ok"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["loss=nope"],
            "lossbench: error: invalid value for `loss`: expected one of "
            f"{', '.join(sorted(ALL_LOSSES))}, received 'nope'",
        ),
        (
            ["scale.epsilon=-1"],
            "lossbench: error: invalid value for `scale.epsilon`: expected a finite number >= 0, "
            "received -1.0",
        ),
        (
            ["data.positive_rate=1.5"],
            "lossbench: error: invalid value for `data.positive_rate`: expected a number in "
            "(0, 1), received 1.5",
        ),
        (["trainer.batch_size=0"], "lossbench: error: invalid value for `trainer.batch_size`"),
        (["trainer.epochs=abc"], "lossbench: error: invalid value for `trainer.epochs`"),
        (["loss.bogus=1"], "lossbench: error: invalid value for `loss.bogus`"),
    ],
)
def test_bad_input_is_one_line_with_a_nonzero_exit(tmp_path, args, expected):
    run = tmp_path / "run"
    proc = lossbench(*args, f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not run.exists()  # refused before anything was written: no folder to mistake


def test_debug_flag_shows_the_traceback_and_keeps_the_exit_status(tmp_path):
    proc = lossbench("scale.epsilon=-1", "debug=true", f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" in proc.stderr
    assert "invalid value for `scale.epsilon`" in proc.stderr


def test_help_lists_losses_without_importing_a_framework(tmp_path):
    proc = lossbench("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for name in ALL_LOSSES:
        assert f"\n  {name} " in proc.stdout
    code = (
        "import sys; sys.argv = ['lossbench', '--cfg', 'job'];"
        "from lossbench.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'framework'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "scale:" in proc.stdout


@pytest.mark.parametrize("overrides", [[], ["loss=focal", "trainer.epochs=2"]])
def test_help_is_what_hydra_itself_prints(tmp_path, overrides):
    """`main` answers a plain --help itself (Hydra's own path spends a second listing config
    groups the template never shows); the text must not change."""
    ours = lossbench(*overrides, "--help", cwd=tmp_path)
    code = (
        f"import sys; sys.argv = ['lossbench', *{overrides!r}, '--help']\n"
        "from lossbench import cli\n"
        "cli.prepare_hydra()\n"
        "cli.run()\n"
    )
    hydras = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert ours.returncode == 0 and hydras.returncode == 0, hydras.stderr
    assert ours.stdout == hydras.stdout
    assert "focal" in ours.stdout and "== Config ==" in ours.stdout


@pytest.mark.slow
def test_wheel_ships_the_configs(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("lossbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for required in ("lossbench/conf/config.yaml", "lossbench/conf/loss/robust_weights.yaml",
                     "lossbench/conf/trainer/default.yaml", "lossbench/cli.py"):  # fmt: skip
        assert required in names


EXTRA_STEP_COLUMNS = {
    "context_graph": ["loss_fit", "loss_graph"],
    "multitask": ["loss_box", "loss_class"],
    "scaled": ["scale"],
}
TASK_METRICS = {
    "binary": ["roc_auc", "pr_auc", "minority_recall"],
    "grouped": ["mse", "worst_group_mse"],
    "multiclass": ["accuracy", "macro_recall", "ece"],
    "grid": ["mse", "mse_center", "mse_border"],
    "graph": ["mse", "edge_cosine"],
    "multitask": ["box_mse", "accuracy", "ece"],
}


@pytest.mark.slow
@pytest.mark.long
def test_every_loss_variant_runs_end_to_end_in_one_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    proc = lossbench(
        "-m", f"loss={','.join(SELF_CONTAINED)}", *TINY, "data.n_nodes=160",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    jobs = {p.name.split("_", 1)[1].rsplit("_seed", 1)[0]: p for p in sweep.iterdir() if p.is_dir()}
    assert sorted(jobs) == sorted(SELF_CONTAINED)
    for name, run in jobs.items():
        summary = check_run_folder(run)
        steps = pd.read_csv(run / "steps.csv")
        extra = EXTRA_STEP_COLUMNS.get(name, [])
        assert list(steps.columns) == ["step", "epoch", "loss", "grad_norm", *extra], name
        assert np.isfinite(steps[extra].to_numpy()).all()
        assert set(TASK_METRICS[summary["task"]]) <= set(summary["metrics"]), name
    assert (pd.read_csv(jobs["scaled"] / "steps.csv")["scale"] == 1.0).all()


@pytest.mark.slow
def test_scheduled_scale_is_recorded_per_step(tmp_path):
    run = tmp_path / "run"
    proc = lossbench(
        "loss=scaled", "loss.base=temperature", "loss.schedule=warmup", "loss.factor=2.0",
        "loss.warmup_epochs=1.5", "loss.start_factor=0.2", *TINY, f"hydra.run.dir={run}",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = check_run_folder(run)
    assert summary["task"] == "multiclass"
    steps = pd.read_csv(run / "steps.csv")
    per_epoch = summary["steps"] // 2
    progress = steps["epoch"] + (steps["step"] - steps["epoch"] * per_epoch) / per_epoch
    expected = 2.0 * (0.2 + 0.8 * np.clip(progress / 1.5, 0, 1))
    np.testing.assert_allclose(steps["scale"], expected, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.long
def test_jax_backend_writes_the_same_tables_as_tensorflow(tmp_path):
    """Same weights (drawn by NumPy), data and batches: the values agree to float32 precision."""
    losses = "loss=grouped_dynamic,multitask,context_graph,temperature"
    runs = {}
    for backend in ("tensorflow", "jax"):
        sweep = tmp_path / backend
        proc = lossbench(
            "-m", losses, f"backend={backend}", *TINY, "data.n_nodes=160",
            f"hydra.sweep.dir={sweep}", cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        runs[backend] = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in runs["tensorflow"]] == [p.name for p in runs["jax"]]
    for tf_run, jax_run in zip(runs["tensorflow"], runs["jax"], strict=True):
        assert json.loads((jax_run / "summary.json").read_text())["backend"] == "jax"
        for table in ("steps.csv", "grad_norms.csv", "epochs.csv"):
            a, b = pd.read_csv(tf_run / table), pd.read_csv(jax_run / table)
            assert list(a.columns) == list(b.columns), table
            numeric = a.select_dtypes("number").columns
            np.testing.assert_allclose(
                b[numeric].to_numpy(float), a[numeric].to_numpy(float), rtol=1e-4, atol=1e-6,
                err_msg=f"{tf_run.name}/{table}",
            )  # fmt: skip
