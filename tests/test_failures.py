"""Tables never lie: every failure is one clear line, nothing is lost, nothing is stale."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lossbench.sweep.aggregate import summary_frame
from tests.conftest import TINY
from tests.test_cli import LOSSBENCH, lossbench

REPORT = [sys.executable, "-c", "from lossbench.sweep.cli import main; main()"]
FAST = [*TINY, "trainer.epochs=1"]


def _one_error_line(proc: subprocess.CompletedProcess[str], key: str) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"lossbench: error: invalid value for `{key}`"), lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("sweep", "key"),
    [
        (["loss=mse,nonexistent"], "loss"),
        (["model.activation=relu,swishy"], "model.activation"),
        (["data.noise=0.1,nan"], "data.noise"),
    ],
)
def test_a_sweep_that_cannot_start_says_why_in_one_line_and_writes_nothing(tmp_path, sweep, key):
    folder = tmp_path / "sweep"
    proc = lossbench("-m", *sweep, *FAST, f"hydra.sweep.dir={folder}", cwd=tmp_path)
    line = _one_error_line(proc, key)
    assert "in sweep job:" in line
    assert not folder.exists()


def test_a_sweep_folder_that_cannot_be_written_is_named(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")  # even root cannot make a folder inside a file
    proc = lossbench("-m", "seed=0,1", *FAST, f"hydra.sweep.dir={blocker}/s", cwd=tmp_path)
    _one_error_line(proc, "hydra.sweep.dir")


@pytest.mark.slow
def test_a_run_folder_belongs_to_one_run(tmp_path):
    run = tmp_path / "run"
    first = lossbench("loss=mse", *FAST, f"hydra.run.dir={run}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    # A second run, good or bad, into the finished folder is refused and changes nothing.
    for args in (["loss=mse"], ["loss=mse", "trainer.batch_size=0"]):
        again = lossbench(*args, *FAST, f"hydra.run.dir={run}", cwd=tmp_path)
        _one_error_line(again, "hydra.run.dir")
        assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert not (run / ".lossbench.lock").exists()


@pytest.mark.slow
@pytest.mark.timing
def test_two_processes_in_one_folder_one_is_refused(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    args = [*LOSSBENCH, "loss=mse", *FAST, f"hydra.run.dir={run}"]
    procs = [
        subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    results = [(*p.communicate(timeout=300), p.returncode) for p in procs]
    codes = sorted(code for _, _, code in results)
    assert codes == [0, 2], results
    refused = next(err for _, err, code in results if code == 2)
    assert "hydra.run.dir" in refused and "Traceback" not in refused
    assert json.loads((run / "summary.json").read_text())["status"] == "ok"


@pytest.mark.slow
def test_a_sweep_into_another_sweeps_folder_is_refused_and_keeps_it(tmp_path):
    folder = tmp_path / "sweep"
    first = lossbench("-m", "loss=mse", "seed=0,1", *FAST, f"hydra.sweep.dir={folder}",
                      cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    table = (folder / "summary.csv").read_bytes()
    second = lossbench("-m", "loss=bce", *FAST, f"hydra.sweep.dir={folder}", cwd=tmp_path)
    _one_error_line(second, "hydra.sweep.dir")
    assert (folder / "summary.csv").read_bytes() == table
    assert len(pd.read_csv(folder / "summary.csv")) == 2


def test_aggregation_survives_corrupt_and_foreign_job_folders(tmp_path):
    for name, text in [("0_a", "[1, 2]"), ("1_b", "{not json"), ("2_c", '"text"'),
                       ("3_d", '{"status": "ok", "metrics": [1]}')]:  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(text)
    frame = summary_frame(tmp_path)
    assert list(frame["status"]) == ["unreadable", "unreadable", "unreadable", "ok"]
    assert "a list, not an object" in frame.loc[0, "message"]


@pytest.mark.slow
def test_lossbench_report_names_bad_tables_and_reports_the_rest(tmp_path):
    folder = tmp_path / "sweep"
    proc = lossbench("-m", "loss=mse", "seed=0,1,2", *FAST, f"hydra.sweep.dir={folder}",
                     cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p for p in folder.iterdir() if p.is_dir())
    (jobs[0] / "steps.csv").write_text('loss,grad_norm\n"1,2\n')
    (jobs[1] / "grad_norms.csv").unlink()
    report = subprocess.run([*REPORT, str(folder), "--quiet"], capture_output=True, text=True)
    assert report.returncode == 1 and "Traceback" not in report.stderr
    lines = report.stderr.strip().splitlines()
    assert len(lines) == 2
    assert any("steps.csv: unreadable" in line for line in lines)
    assert any("grad_norms.csv: missing" in line for line in lines)
    assert (folder / "report.md").exists() and (folder / "loss.png").exists()
    # A summary.json that is a list: the job is reported as unreadable, not a crash.
    (jobs[2] / "summary.json").write_text("[]")
    report = subprocess.run([*REPORT, str(folder), "--quiet"], capture_output=True, text=True)
    assert "Traceback" not in report.stderr
    assert "unreadable" in pd.read_csv(folder / "summary.csv")["status"].tolist()
    # A read-only folder: one line naming it.
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        report = subprocess.run([*REPORT, str(folder), "--quiet"], capture_output=True, text=True)
        assert report.returncode == 2 and "Traceback" not in report.stderr
        assert f"cannot write in {folder}" in report.stderr
    finally:
        folder.chmod(stat.S_IRWXU)


@pytest.mark.slow
def test_output_plumbing_closed_pipe_file_modes_and_no_hydra_error_line(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    # `lossbench ... | head -1`: the run's exit status, not a broken-pipe failure.
    shell = f"{' '.join(map(repr, LOSSBENCH))} loss=mse {' '.join(FAST)} hydra.run.dir={run}"
    proc = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {shell} | head -c 1 >/dev/null"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Broken pipe" not in proc.stderr
    config_mode = stat.S_IMODE((run / ".hydra" / "config.yaml").stat().st_mode)
    for name in ("steps.csv", "summary.json", "epochs.csv", "grad_norms.csv"):
        assert stat.S_IMODE((run / name).stat().st_mode) == config_mode
    assert not list(run.glob(".*.tmp"))


def test_generated_data_that_would_fake_a_result_is_refused(tmp_path):
    from lossbench.config.compose import compose
    from lossbench.data.load import check_dataset, make_dataset
    from lossbench.errors import ConfigError

    cfg = compose(["loss=mse", "data.noise=1e300", *FAST])
    data = make_dataset(cfg.loss.training_task(), cfg.data, 0)
    with pytest.raises(ConfigError) as info:
        check_dataset(data, cfg.data)
    assert info.value.key == "data.noise"
    cfg = compose(
        ["loss=bce", "data.n_samples=40", "data.positive_rate=0.01", "trainer.batch_size=8"]
    )
    # Each seed draws its own rare positive: some put it in the validation split, leaving a
    # training split of one class (refused), others in training (accepted).
    draws = {seed: make_dataset(cfg.loss.training_task(), cfg.data, seed) for seed in range(20)}
    one_class = [s for s, d in draws.items() if not 0 < d.train.y.sum() < len(d.train)]
    assert one_class and len(one_class) < len(draws)
    for seed, data in draws.items():
        if seed not in one_class:
            check_dataset(data, cfg.data)
            continue
        with pytest.raises(ConfigError) as info:
            check_dataset(data, cfg.data)
        assert info.value.key == "data.positive_rate"
        assert np.isfinite(data.train.x).all()


def _file_size_limit(limit: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("limit", "fails"),
    [(0, ".hydra/config.yaml"),  # the job's record: nothing of the run is left
     (8192, "grad_norms.csv")],  # the tables: the summary says why, no partial table is left
)  # fmt: skip
def test_a_disk_that_fills_up_is_one_line_and_a_folder_that_says_so(tmp_path, limit, fails):
    """A file-size limit makes a write beyond it fail as a full disk's does (EFBIG for ENOSPC),
    at the stage the limit picks."""
    run = tmp_path / "run"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run(
        [*LOSSBENCH, "trainer.epochs=1", "trainer.progress=false", f"hydra.run.dir={run}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: _file_size_limit(limit),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line == f"lossbench: error: {run / fails}: File too large", line
    if fails.startswith(".hydra"):
        assert not run.exists()
        return
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "error" and summary["message"] == line.split("error: ", 1)[1]
    assert not [p.name for p in run.iterdir() if p.suffix in (".csv", ".parquet", ".tmp")]
