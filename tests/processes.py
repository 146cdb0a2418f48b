"""Processes started as a terminal starts them, and the markers tests wait for instead of sleeping.

A test never guesses from the clock whether a process has reached a stage: it waits for something
the process shows (its signal handlers in /proc, a file its code writes) and then acts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# A user's loss that marks when training has reached a compiled step (tests/marked_loss.py).
MARKED_LOSS = Path(__file__).with_name("marked_loss.py")


def _default_signals() -> None:
    # A background job of a non-interactive shell inherits SIGINT ignored; a terminal's
    # foreground job has both signals at their defaults.
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_DFL)


def start(
    args: Sequence[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start `args` with SIGINT and SIGTERM at their defaults, as a terminal's foreground job."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", **(env or {})}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen(
        list(args), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_signals,
    )  # fmt: skip


def catches(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler for `signum` now (Python installs none for SIGTERM,
    so a SIGTERM handler is lossbench's own; a handler installed with SA_RESETHAND is gone once
    its signal was delivered)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) >> (signum - 1) & 1)


def wait_for(
    reached: Callable[[], bool], proc: subprocess.Popen[str], what: str, limit: float = 300
) -> None:
    """Poll until `reached()`; fail the test when the process ends first or `limit` seconds
    pass (a bound for a hung process, not a guess of when the stage comes)."""
    deadline = time.monotonic() + limit
    while not reached():
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"the process ended ({proc.returncode}) before {what}: {err}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {what} after {limit} s")
        time.sleep(0.005)


def marked_loss_args(marker: Path) -> tuple[list[str], dict[str, str]]:
    """Overrides and environment for a JAX run of tests/marked_loss.py that creates `marker`
    from inside its first compiled training step."""
    overrides = ["backend=jax", "loss=custom", f"loss.target={MARKED_LOSS}:marked_bce",
                 "loss.task=binary"]  # fmt: skip
    return overrides, {"KERAS_BACKEND": "jax", "LOSSBENCH_TEST_MARKER": str(marker)}
