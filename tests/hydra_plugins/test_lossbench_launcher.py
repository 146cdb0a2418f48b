"""lossbench's Hydra sweeper and launcher (`hydra_plugins/lossbench_launcher`): every job checked
before the first starts, seeds trained as lanes of one JAX program equal to separate runs, and
and a bad launcher option refused by name."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pandas as pd
import pytest

from lossbench.config.compose import compose_raw
from lossbench.config.plugins import SWEEPER
from lossbench.sweep.plan import override_key, seed_free
from tests.conftest import TINY
from tests.processes import marked_loss_args, start, wait_for
from tests.test_cli import LOSSBENCH, lossbench

TABLES = ("steps.csv", "grad_norms.csv", "epochs.csv")


def test_it_is_the_default_sweeper_and_keeps_the_basic_sweepers_options():
    cfg = compose_raw(["hydra.sweeper.max_batch_size=2"], with_hydra=True, multirun=True)
    assert cfg.hydra.sweeper._target_ == SWEEPER
    assert cfg.hydra.sweeper.max_batch_size == 2
    assert cfg.hydra.sweeper.params is None


@pytest.mark.parametrize("cwd_is_repo", [False, True])
def test_a_bad_job_anywhere_stops_the_sweep_before_any_job_runs(tmp_path: Path, cwd_is_repo):
    """Also through Hydra's own flags (`-cn`); from the repository's root, Hydra's plugin scan
    executes the sweeper's file itself. Nothing is written: no sweep folder."""
    sweep = tmp_path / "sweep"
    cwd = Path(__file__).resolve().parents[2] if cwd_is_repo else tmp_path
    proc = lossbench(
        "-m", "-cn", "config", "loss=bce,nonexistent", f"hydra.sweep.dir={sweep}", cwd=cwd
    )
    assert proc.returncode == 2, proc.stderr
    assert "`loss`" in proc.stderr and "'nonexistent'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = lossbench(
        "-m", "seed=0,1", "trainer.epochs=2,0", f"hydra.sweep.dir={sweep}", cwd=tmp_path
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "lossbench: error: invalid value for `trainer.epochs`: expected an integer >= 1, "
        "received 0 (in sweep job: seed=0 trainer.epochs=0)"
    ]
    assert not sweep.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["hydra.launcher.vectorize=0"], "expected an integer in [1, 1024], received 0"),
        (["hydra.launcher.vectorize=2"], "expected 1 for a sweep without backend=jax jobs"),
    ],
)
def test_a_bad_vectorize_is_one_line_before_anything_starts(tmp_path, args, expected):
    sweep = tmp_path / "sweep"
    proc = lossbench("-m", "seed=0,1", "hydra/launcher=lossbench", *args,
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "`hydra.launcher.vectorize`" in proc.stderr and expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(sweep.glob("*/summary.json"))


def test_override_key_names_what_an_override_sets_and_seed_free_drops_only_the_seed():
    assert override_key("seed=3") == override_key("+seed=3") == "seed"
    assert override_key("~trainer.epochs") == "trainer.epochs"
    assert override_key("hydra/launcher=lossbench") == "hydra/launcher"
    assert seed_free(["loss=bce", "+seed=2", "seed_offset=1"]) == ("loss=bce", "seed_offset=1")


VARIANTS = "loss=bce,multitask,grouped_dynamic,logit_adjusted"


@pytest.mark.slow
@pytest.mark.long
def test_vectorized_seeds_write_the_tables_of_separate_runs_within_float32_round_off(tmp_path):
    """Three seeds with vectorize=2: a unit of two lanes in one program and one job alone. Every
    job's folder holds the tables the basic launcher's separate runs write, equal to float32
    round-off; a loss whose configuration depends on the seed's data (logit_adjusted's class
    priors) trains one job at a time and matches exactly."""
    args = ["-m", *TINY, "backend=jax", VARIANTS, "seed=0,1,2"]
    vec, sep = tmp_path / "vec", tmp_path / "sep"
    proc = lossbench(*args, "hydra/launcher=lossbench", "hydra.launcher.vectorize=2",
                     f"hydra.sweep.dir={vec}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "logit_adjusted: its seeds train one at a time" in proc.stderr
    proc = lossbench(*args, f"hydra.sweep.dir={sep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p.name for p in sep.iterdir() if (p / "summary.json").exists())
    assert len(jobs) == 12
    assert jobs == sorted(p.name for p in vec.iterdir() if (p / "summary.json").exists())
    for job in jobs:
        summary = json.loads((vec / job / "summary.json").read_text())
        together = summary.get("vectorized_seeds")
        if "logit_adjusted" in job or job.endswith("seed2"):
            assert together is None, job
        else:
            assert together == 2, job
        for name in TABLES:
            got, want = pd.read_csv(vec / job / name), pd.read_csv(sep / job / name)
            assert list(got.columns) == list(want.columns)
            pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-5, atol=1e-6)
            if together is None:
                assert (vec / job / name).read_bytes() == (sep / job / name).read_bytes(), job
        alone = json.loads((sep / job / "summary.json").read_text())
        assert summary["status"] == alone["status"] == "ok"
        assert summary["steps"] == alone["steps"]
        # Its own wall time: from its build to its group's writes, training included.
        assert summary["wall_seconds"] >= summary["train_seconds"] > 0


@pytest.mark.slow
@pytest.mark.long
def test_a_diverging_lane_stops_where_its_own_run_does_and_the_others_go_on(tmp_path):
    """A few NaN targets (data.nan_rate) make seeds 1 and 3 diverge in their first epoch while 0
    and 2 train on: each lane's folder says what its own run's does, step for step."""
    args = ["-m", *TINY, "backend=jax", "loss=mse", "data.nan_rate=0.0003", "seed=range(4)"]
    vec, sep = tmp_path / "vec", tmp_path / "sep"
    proc = lossbench(*args, "hydra/launcher=lossbench", "hydra.launcher.vectorize=4",
                     f"hydra.sweep.dir={vec}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1 and "2 of 4 jobs did not finish" in proc.stderr, proc.stderr
    assert lossbench(*args, f"hydra.sweep.dir={sep}", cwd=tmp_path).returncode == 1
    statuses = []
    for job in sorted(p.name for p in sep.iterdir() if p.is_dir()):
        got = json.loads((vec / job / "summary.json").read_text())
        want = json.loads((sep / job / "summary.json").read_text())
        assert got["vectorized_seeds"] == 4
        assert (got["status"], got["steps"], got["epochs"]) == (
            want["status"], want["steps"], want["epochs"])  # fmt: skip
        assert got.get("message") == want.get("message")
        statuses.append(got["status"])
        for name in TABLES:
            got_table, want_table = pd.read_csv(vec / job / name), pd.read_csv(sep / job / name)
            pd.testing.assert_frame_equal(got_table, want_table, rtol=1e-5, atol=1e-6)
    assert statuses == ["ok", "diverged", "ok", "diverged"]


@pytest.mark.slow
@pytest.mark.timing
def test_an_interrupted_vectorized_unit_writes_every_lane_and_starts_no_other(tmp_path):
    """A 4-seed sweep of long runs, 2 seeds a program: SIGINT once the first two train."""
    sweep, marker = tmp_path / "sweep", tmp_path / "training"
    overrides, env = marked_loss_args(marker)
    proc = start(
        [*LOSSBENCH, "-m", *overrides, "seed=0,1,2,3", "trainer.epochs=4000",
         "data.n_samples=4000", "trainer.steps_per_chunk=8", "trainer.progress=false",
         "hydra/launcher=lossbench", "hydra.launcher.vectorize=2", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env,
    )  # fmt: skip
    wait_for(marker.exists, proc, "the lanes training")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    summaries = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/summary.json")}
    assert set(summaries) == {"0_custom_seed0", "1_custom_seed1"}
    for job, summary in summaries.items():
        assert summary["status"] == "interrupted" and summary["vectorized_seeds"] == 2
        steps = pd.read_csv(sweep / job / "steps.csv")
        assert len(steps) == summary["steps"] > 0
    assert err.count("tables written through the last completed step") == 2
