"""Ctrl-C and SIGTERM at any moment (lossbench.signals): one line, 130 or 143, and a folder that
never looks finished. Every test waits for a marker the process shows, never for a guessed time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lossbench.signals import StopRequest, stop_on_signals
from tests.processes import catches, marked_loss_args, start, wait_for
from tests.test_cli import LOSSBENCH


@pytest.fixture(autouse=True)
def _no_signal_raised_yet(monkeypatch):
    """Each test starts as a process does: no signal has raised `Interrupted` yet."""
    from lossbench import signals

    monkeypatch.setattr(signals, "_raised", [])


REPORT = [sys.executable, "-c", "from lossbench.sweep.cli import main; main()"]
TABLES = ("steps.csv", "epochs.csv", "grad_norms.csv", "predictions.parquet")


def _interrupted(proc: subprocess.Popen[str], signum: int) -> str:
    """Wait for `proc`; check it ended as `signum` asks, with one line; return that line."""
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signum, err
    lines = err.strip().splitlines()
    name = signal.Signals(signum).name
    assert len(lines) == 1 and lines[0].startswith(f"lossbench: interrupted by {name}"), err
    return lines[0]


def _never_looks_finished(run: Path) -> None:
    """An interrupted run's folder: no summary and no tables, or an `interrupted` summary with
    every table through its last step."""
    summary = run / "summary.json"
    if not summary.exists():
        assert not [name for name in TABLES if (run / name).exists()]
        return
    written = json.loads(summary.read_text())
    assert written["status"] == "interrupted"
    assert written["stopped"]["step"] == written["steps"] == len(pd.read_csv(run / "steps.csv"))
    assert not list(run.glob(".*.tmp"))


@pytest.mark.slow
@pytest.mark.timing
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("after", [0.0, 0.05, 0.3, 1.0, 3.0])
def test_a_signal_at_any_moment_of_a_run_is_one_line(tmp_path, signum, after):
    """From the moment lossbench's handlers are in place: while Hydra is imported, the config
    composed, the framework imported, the model built or trained."""
    run = tmp_path / "run"
    proc = start([*LOSSBENCH, "loss=mse", "trainer.epochs=40", "trainer.progress=false",
                  f"hydra.run.dir={run}"], cwd=tmp_path)  # fmt: skip
    wait_for(lambda: catches(proc.pid, signal.SIGTERM), proc, "signal handlers")
    time.sleep(after)  # the contract holds at every offset: each one is a stage it must hold in
    proc.send_signal(signum)
    _interrupted(proc, signum)
    _never_looks_finished(run)


@pytest.mark.slow
@pytest.mark.timing
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_training_writes_the_tables_through_the_last_step(tmp_path, signum):
    run, marker = tmp_path / "run", tmp_path / "training"
    overrides, env = marked_loss_args(marker)
    args = [*LOSSBENCH, *overrides, "data.n_samples=50000", "trainer.epochs=200",
            "trainer.progress=false", f"hydra.run.dir={run}"]  # fmt: skip
    proc = start(args, cwd=tmp_path, env=env)
    wait_for(marker.exists, proc, "a compiled training step")
    proc.send_signal(signum)
    line = _interrupted(proc, signum)
    assert line.endswith(f"tables written through the last completed step in {run}")
    _never_looks_finished(run)
    summary = json.loads((run / "summary.json").read_text())
    steps = pd.read_csv(run / "steps.csv")
    assert summary["steps"] > 0 and steps["loss"].notna().all()
    assert len(pd.read_csv(run / "grad_norms.csv")) == 3 * len(steps)  # 3 layers, every step
    assert (pd.read_csv(run / "epochs.csv")["step"] <= len(steps)).all()


@pytest.mark.slow
@pytest.mark.timing
def test_a_second_signal_ends_the_process_at_once_even_inside_a_chunk(tmp_path):
    run, marker = tmp_path / "run", tmp_path / "training"
    overrides, env = marked_loss_args(marker)
    proc = start([*LOSSBENCH, *overrides, "trainer.progress=false", f"hydra.run.dir={run}"],
                 cwd=tmp_path, env={**env, "LOSSBENCH_TEST_HOLD": "1"})  # fmt: skip
    wait_for(marker.exists, proc, "a compiled training step")  # it holds the chunk from here
    proc.send_signal(signal.SIGINT)
    # Delivered once the kernel has reset the handler (SA_RESETHAND): the next one is default.
    wait_for(lambda: not catches(proc.pid, signal.SIGINT), proc, "the first SIGINT delivered")
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 1.0
    # The default action of SIGINT: the shell reports 130, Popen the negative signal number.
    assert proc.returncode == -signal.SIGINT and "Traceback" not in err
    assert json.loads((run / "summary.json").read_text())["status"] == "running"
    # What a killed process may leave (a half-written temporary file) is removed by the next
    # lossbench-report on the folder, which sees that no process holds it.
    (run / ".steps.csv.abc123.tmp").write_text("half a ta")
    report = subprocess.run([*REPORT, str(run), "--quiet"], capture_output=True, text=True)
    assert "Traceback" not in report.stderr
    assert not list(run.glob(".*.tmp")) and not (run / ".lossbench.lock").exists()


@pytest.mark.slow
@pytest.mark.timing
def test_ctrl_c_while_a_users_file_imports_ends_within_two_seconds(tmp_path):
    marker = tmp_path / "importing"
    (tmp_path / "slow.py").write_text(
        f"import time\nopen({str(marker)!r}, 'w').close()\ntime.sleep(60)\n"
        "def f(y_true, y_pred):\n    return (y_true - y_pred)[:, 0] ** 2\n"
    )
    run = tmp_path / "run"
    proc = start([*LOSSBENCH, "loss=custom", "loss.target=slow.py:f", "loss.task=binary",
                  "trainer.progress=false", f"hydra.run.dir={run}"], cwd=tmp_path)  # fmt: skip
    wait_for(marker.exists, proc, "the user's file importing")
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    line = _interrupted(proc, signal.SIGINT)
    assert time.monotonic() - sent < 2.0
    assert line == "lossbench: interrupted by SIGINT"
    _never_looks_finished(run)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_error_that_a_signal_caused_is_reported_as_the_signal(tmp_path, signum):
    """Code on the way out of a signal (a `finally` on a half-built object, as OmegaConf's can
    be) replaces lossbench's exception with its own error: the run still ends as interrupted."""
    (tmp_path / "torn.py").write_text(
        f"import os\ntry:\n    os.kill(os.getpid(), {int(signum)})\n    handled = True\n"
        "finally:\n    raise AttributeError(\"'NoneType' object has no attribute 'flags'\")\n"
        "def f(y_true, y_pred):\n    return (y_true - y_pred)[:, 0] ** 2\n"
    )
    run = tmp_path / "run"
    proc = start([*LOSSBENCH, "loss=custom", "loss.target=torn.py:f", "loss.task=binary",
                  "trainer.progress=false", f"hydra.run.dir={run}"], cwd=tmp_path)  # fmt: skip
    _interrupted(proc, signum)
    _never_looks_finished(run)


def test_only_an_error_caught_after_a_raised_signal_becomes_the_signal(monkeypatch):
    from lossbench import signals

    signals.reraise_if_interrupted(AttributeError("a user's own error"))  # no signal: unchanged
    monkeypatch.setattr(signals, "_raised", [signal.SIGTERM])
    torn = AttributeError("'NoneType' object has no attribute '_invalidate_flags_cache'")
    with pytest.raises(signals.Interrupted) as caught:
        signals.reraise_if_interrupted(torn)
    assert caught.value.exit_code == 143 and caught.value.__cause__ is torn


def test_the_outcome_is_fixed_once_training_ends():
    request = StopRequest()
    assert request.close() is None
    request.arrive(signal.SIGINT)  # after the outcome was written: too late for this run
    assert not request() and request.late == signal.SIGINT
    early = StopRequest()
    early.arrive(signal.SIGTERM)
    assert early.close() == signal.SIGTERM


def test_a_signal_while_a_run_is_built_raises_at_once():
    from lossbench.signals import Interrupted

    request = StopRequest()
    with pytest.raises(Interrupted) as caught, request.at_once():
        request.arrive(signal.SIGTERM)
        raise AssertionError("not reached: the signal raised where the block was")
    assert caught.value.exit_code == 143 and caught.value.written == []
    assert request() and request.close() == signal.SIGTERM


def test_the_first_signal_requests_a_stop_without_waiting_for_python():
    import os

    # What the process had: a background job of a non-interactive shell starts with SIGINT
    # ignored, a terminal's foreground job with Python's default handler.
    before = signal.getsignal(signal.SIGINT)
    with stop_on_signals() as request:
        assert isinstance(request, StopRequest) and not request()
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 2
        while not request() and time.monotonic() < deadline:
            time.sleep(0.01)  # the watcher thread reads the wakeup pipe
        assert request() and request.signum == signal.SIGTERM
    # Afterwards the handlers the process had before are back.
    assert signal.getsignal(signal.SIGINT) is before


def test_a_signal_after_a_sweeps_job_ended_stops_the_sweep_and_the_last_run_ignores_it():
    import os

    from lossbench.signals import Interrupted

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(Interrupted) as caught, stop_on_signals() as request:
        request.close()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0)  # Python runs the handler at the next bytecode
    assert caught.value.signum == signal.SIGINT and caught.value.written == []
    with stop_on_signals(last=True) as request:
        request.close()
    os.kill(os.getpid(), signal.SIGINT)  # ignored: the process's outcome is written
    for s, handler in before.items():
        signal.signal(s, handler)


def test_a_signal_raised_and_swallowed_before_a_run_still_stops_it(monkeypatch):
    from lossbench import signals

    monkeypatch.setattr(signals, "_raised", [signal.SIGINT])  # a bare `except:` ate it
    # The run's build (`at_once`): the signal stands.
    with stop_on_signals() as request, pytest.raises(signals.Interrupted) as caught, \
            request.at_once():  # fmt: skip
        raise AssertionError("not reached")
    assert caught.value.exit_code == 130


def test_an_interrupt_raised_where_it_cannot_propagate_is_not_printed(monkeypatch):
    """A signal whose handler runs inside a weakref callback (importlib's module-lock cleanup,
    found by `make test-stress`) leaves no "Exception ignored" traceback; other unraisable
    exceptions still reach the hook that was there."""
    import gc
    import weakref

    from lossbench import signals

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(type(u.exc_value)))
    signals.quiet_unraisable_interrupts()
    signals.quiet_unraisable_interrupts()  # a second call installs nothing more

    class Target:
        pass

    def raising(error):
        def callback(_ref):
            raise error

        target = Target()
        ref = weakref.ref(target, callback)
        del target
        gc.collect()
        return ref

    raising(signals.Interrupted(signal.SIGTERM))
    raising(ValueError("not ours"))
    assert seen == [ValueError]
