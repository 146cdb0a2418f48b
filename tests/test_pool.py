"""`hydra/launcher=lossbench`: sweeps in worker processes write what the basic launcher writes,
and a job's failure, a lost worker and an interruption each leave the folders saying so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest

from lossbench.errors import ConfigError
from lossbench.pool import (
    core_slots,
    job_units,
    override_key,
    pool_size,
    seed_free,
    thread_environment,
)
from tests.conftest import TINY
from tests.test_cli import LOSSBENCH, lossbench

POOL = ["hydra/launcher=lossbench", "hydra.launcher.n_jobs=2"]
TABLES = ("steps.csv", "grad_norms.csv", "epochs.csv")


def test_pool_sizes_default_to_one_worker_per_two_cores_and_refuse_bad_values(monkeypatch):
    monkeypatch.setattr("lossbench.pool.usable_cores", lambda: 8)
    assert pool_size({"n_jobs": 0, "threads": 0}) == (4, 2)
    assert pool_size({"n_jobs": 3, "threads": 0}) == (3, 2)
    assert pool_size({"n_jobs": 16, "threads": 0}) == (16, 1)
    assert pool_size({"n_jobs": 2, "threads": 3}) == (2, 3)
    assert pool_size({"n_jobs": 0, "threads": 0}, jobs=3) == (3, 2)  # no idle workers
    assert pool_size({"n_jobs": 6, "threads": 0}, jobs=2) == (2, 4)
    assert pool_size({"n_jobs": 0, "threads": 0}, fit=2) == (2, 4)  # within the memory budget
    monkeypatch.setattr("lossbench.pool.usable_cores", lambda: 1)
    assert pool_size({"n_jobs": 0, "threads": 0}) == (1, 1)
    for key, value in (("n_jobs", -1), ("threads", 2.5), ("n_jobs", True), ("n_jobs", 10**6)):
        with pytest.raises(ConfigError) as info:
            pool_size({"n_jobs": 0, "threads": 0, key: value})
        assert info.value.key == f"hydra.launcher.{key}"


def test_workers_get_disjoint_cores_when_they_fit(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3, 6})
    assert core_slots(2, 2) == [{0, 1}, {2, 3}]
    assert core_slots(5, 1) == [{0}, {1}, {2}, {3}, {6}]
    assert core_slots(3, 2) == [None, None, None]  # more threads than cores: no pinning
    assert thread_environment(3)["TF_NUM_INTRAOP_THREADS"] == "3"


def test_workers_sharing_an_accelerator_allocate_its_memory_as_they_go(monkeypatch):
    """JAX takes 75% of a GPU when it starts: two workers would not both fit. With more than one
    worker the pool tells both frameworks to allocate on demand (a user's own setting wins)."""
    import sys

    from lossbench import pool

    seen = []

    class Recorder:
        def __init__(self, threads, cores, backend):
            seen.append({k: os.environ.get(k) for k in pool.SHARED_DEVICE})

    monkeypatch.setattr(pool, "_Worker", Recorder)
    for name in ("tensorflow", "jax", "keras"):  # the check only reads sys.modules
        monkeypatch.delitem(sys.modules, name, raising=False)
    for key in pool.SHARED_DEVICE:  # unset, and restored after the test whatever Pool sets
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    pool.Pool(1, 1)
    assert seen[-1] == dict.fromkeys(pool.SHARED_DEVICE)  # one worker: the frameworks' defaults
    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "false")
    pool.Pool(2, 1)
    assert seen[-1] == {
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "TF_FORCE_GPU_ALLOW_GROWTH": "false",
    }


def test_a_bad_pool_size_is_one_line_before_anything_starts(tmp_path):
    sweep = tmp_path / "sweep"
    proc = lossbench("-m", "seed=0,1", "hydra/launcher=lossbench", "hydra.launcher.n_jobs=-2",
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "lossbench: error: invalid value for `hydra.launcher.n_jobs`: expected an integer in "
        "[0, 1024], received -2"
    )
    assert not sweep.exists()


def test_more_workers_than_memory_holds_are_refused_by_name(monkeypatch):
    from lossbench.config.memory import GIB
    from lossbench.launch import plan

    monkeypatch.setattr("lossbench.config.memory.memory_budget", lambda: 3 * GIB)
    with pytest.raises(ConfigError) as info:
        plan(["seed=0,1,2,3", "hydra/launcher=lossbench", "hydra.launcher.n_jobs=4"], True)
    assert info.value.key == "hydra.launcher.n_jobs"
    assert info.value.expected.startswith("an integer <= 2 (this machine's memory budget is 3.0")
    monkeypatch.setattr("lossbench.pool.usable_cores", lambda: 8)
    chosen = plan(["seed=0,1,2,3", "hydra/launcher=lossbench"], True)  # the default fits itself
    assert chosen.pool == (2, 4)
    # Only as many workers start as there are jobs, and only those must fit.
    chosen = plan(["seed=0,1", "hydra/launcher=lossbench", "hydra.launcher.n_jobs=100"], True)
    assert chosen.pool == (2, 4)
    # Seeds trained together share one worker's memory: too many is refused by name.
    many = ["backend=jax", "seed=range(64)", "data.n_samples=1000000", "hydra/launcher=lossbench"]
    with pytest.raises(ConfigError) as info:
        plan([*many, "hydra.launcher.vectorize=64"], True)
    assert info.value.key == "hydra.launcher.vectorize"
    assert info.value.expected.startswith("an integer <= ")
    # Two lanes fit; the default worker count keeps their units within the budget too.
    assert plan([*many, "hydra.launcher.vectorize=2"], True).pool == (1, 8)


def test_vectorize_groups_jax_jobs_that_differ_only_in_their_seed():
    jobs = [["loss=bce", "seed=0"], ["loss=bce", "seed=1"], ["loss=mse", "seed=0"],
            ["loss=bce", "++seed=2"], ["loss=bce", "seed=3"], ["loss=mse", "seed=1"]]  # fmt: skip
    jax = ["jax"] * len(jobs)
    assert job_units(jobs, jax, {"vectorize": 3}) == [[0, 1, 3], [2, 5], [4]]
    assert job_units(jobs, jax, {"vectorize": 1}) == [[j] for j in range(6)]
    assert job_units(jobs, jax, {}) == [[j] for j in range(6)]  # the default: one by one
    mixed = ["jax", "tensorflow", "jax", "jax", "jax", "tensorflow"]
    assert job_units(jobs, mixed, {"vectorize": 8}) == [[0, 3, 4], [1], [2], [5]]
    with pytest.raises(ConfigError) as info:  # it would do nothing: said, not ignored
        job_units(jobs, ["tensorflow"] * len(jobs), {"vectorize": 4})
    assert info.value.key == "hydra.launcher.vectorize"
    assert "backend=jax" in info.value.expected
    for bad in (0, -3, 2.0, True, 5000):
        with pytest.raises(ConfigError) as info:
            job_units(jobs, jax, {"vectorize": bad})
        assert info.value.key == "hydra.launcher.vectorize"


VARIANTS = "loss=bce,multitask,grouped_dynamic,logit_adjusted"


@pytest.mark.slow
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
def test_workers_write_the_bytes_of_separate_runs_on_either_backend(tmp_path):
    """A sweep over both backends: Keras binds one backend per process, so the pool gives each
    its own workers; every job's tables equal a single run's of the same config."""
    sweep = tmp_path / "sweep"
    proc = lossbench("-m", *TINY, "backend=tensorflow,jax", "seed=1", *POOL,
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(sweep / "summary.csv")
    assert (table["status"] == "ok").all() and len(table) == 2
    for backend, seed in (("tensorflow", 1), ("jax", 1)):
        run = tmp_path / f"{backend}{seed}"
        single = lossbench(*TINY, f"backend={backend}", f"seed={seed}",
                           f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
        assert single.returncode == 0, single.stderr
        job = table[(table["backend"] == backend) & (table["seed"] == seed)]["job"].item()
        for name in TABLES:
            assert (sweep / job / name).read_bytes() == (run / name).read_bytes(), name
        config = (sweep / job / ".hydra" / "config.yaml").read_text()
        assert f"backend: {backend}" in config and f"seed: {seed}" in config


LOSS_FILE = """
import os
import signal

import keras


class DiesOnSeedOne(keras.losses.BinaryCrossentropy):
    def __init__(self, die=False, **kwargs):
        super().__init__(**kwargs)
        if die:  # a crash no Python handler sees, like the kernel's OOM killer
            os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_a_lost_worker_fails_its_job_and_the_sweep_goes_on(tmp_path):
    (tmp_path / "dying.py").write_text(LOSS_FILE)
    sweep = tmp_path / "sweep"
    target = f"loss.target={tmp_path / 'dying.py'}:DiesOnSeedOne"
    proc = lossbench("-m", *TINY, "loss=custom", target,
                     "loss.task=binary", "+loss.params.die=true,false", *POOL,
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    table = pd.read_csv(sweep / "summary.csv")
    assert table["status"].tolist() == ["error", "ok"]
    assert "1 of 2 jobs did not finish: 0_custom_seed0 (error: its worker process ended" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr


def _interrupt_long_sweep(tmp_path, sweep, extra, settle):
    """Start a 4-seed sweep of long runs, send SIGINT once two jobs have started and `settle`
    seconds have passed, and return its stderr after checking it exited 130 cleanly."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.Popen(
        [*LOSSBENCH, "-m", "seed=0,1,2,3", "trainer.epochs=4000", "data.n_samples=4000",
         "trainer.steps_per_chunk=8", "trainer.progress=false", *extra,
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(list(sweep.glob("*/summary.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(settle)  # the two jobs are training
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    return err


@pytest.mark.slow
def test_an_interrupted_pool_sweep_stops_its_jobs_gracefully(tmp_path):
    """Ctrl-C reaches the parent only (workers have their own process group); it passes the
    signal on, the running jobs write their tables and say so, and the sweep exits 130."""
    sweep = tmp_path / "sweep"
    err = _interrupt_long_sweep(tmp_path, sweep, POOL, settle=2.0)
    statuses = {
        p.parent.name: json.loads(p.read_text())["status"] for p in sweep.glob("*/summary.json")
    }
    assert set(statuses) == {"0_bce_seed0", "1_bce_seed1"}
    assert set(statuses.values()) == {"interrupted"}
    assert err.count("tables written through the last completed step") == 2


@pytest.mark.slow
def test_an_interrupted_vectorized_unit_writes_every_lane_and_starts_no_other(tmp_path):
    sweep = tmp_path / "sweep"
    together = ["backend=jax", "hydra/launcher=lossbench", "hydra.launcher.n_jobs=1",
                "hydra.launcher.vectorize=2"]  # fmt: skip
    err = _interrupt_long_sweep(tmp_path, sweep, together, settle=3.0)
    summaries = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/summary.json")}
    assert set(summaries) == {"0_bce_seed0", "1_bce_seed1"}
    for job, summary in summaries.items():
        assert summary["status"] == "interrupted" and summary["vectorized_seeds"] == 2
        steps = pd.read_csv(sweep / job / "steps.csv")
        assert len(steps) == summary["steps"] > 0
    assert err.count("tables written through the last completed step") == 2


def test_override_key_names_what_an_override_sets_and_seed_free_drops_only_the_seed():
    assert override_key("seed=3") == override_key("+seed=3") == "seed"
    assert override_key("~trainer.epochs") == "trainer.epochs"
    assert override_key("hydra/launcher=lossbench") == "hydra/launcher"
    assert seed_free(["loss=bce", "+seed=2", "seed_offset=1"]) == ("loss=bce", "seed_offset=1")


def test_lazy_configs_compose_each_job_once_when_first_read():
    from lossbench.pool import LazyConfigs

    composed: list[int] = []

    def compose(job: int) -> dict:
        composed.append(job)
        return {"job": job}

    configs = LazyConfigs(compose, 3)  # type: ignore[arg-type]
    assert len(configs) == 3 and composed == []
    assert configs[2] == {"job": 2} and configs[2] is configs[2]
    assert configs[0] == {"job": 0}
    assert composed == [2, 0]
    with pytest.raises(IndexError):
        configs[3]
