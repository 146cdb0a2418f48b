"""A process that loaded a framework ends without the interpreter's teardown, its output flushed
and its exit status kept; without a framework it exits normally."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import atexit, logging, sys
from lossbench.process import exit_now
if {loaded}:
    sys.modules["jax"] = type(sys)("jax")  # stands for a loaded framework
atexit.register(lambda: print("teardown ran"))
logging.basicConfig(filename=sys.argv[1], level=logging.INFO)
logging.info("logged")
print("written", end="")  # still in the buffer when exit_now is called
exit_now(3)
"""


@pytest.mark.parametrize("loaded", [True, False])
def test_exit_now_keeps_the_status_and_flushes_output_and_logs(tmp_path, loaded):
    log = tmp_path / "run.log"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(loaded=loaded), str(log)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.startswith("written")
    assert ("teardown ran" in proc.stdout) is not loaded
    assert "logged" in log.read_text()


def test_a_framework_blocked_in_sys_modules_does_not_count_as_loaded(monkeypatch):
    """`import jax` made to fail (a None entry, as a TensorFlow process does for JAX, or a
    machine without TensorFlow) is not a loaded framework: a worker pool may still fork."""
    from lossbench.process import FRAMEWORKS, framework_loaded

    for name in FRAMEWORKS:
        monkeypatch.setitem(sys.modules, name, None)
    assert not framework_loaded()
    monkeypatch.setitem(sys.modules, "keras", type(sys)("keras"))
    assert framework_loaded()


@pytest.mark.slow
@pytest.mark.long
def test_a_run_leaves_nothing_in_the_temporary_folder(tmp_path):
    from tests.conftest import TINY
    from tests.test_cli import lossbench

    temp = tmp_path / "tmp"
    temp.mkdir()
    (tmp_path / "mine.py").write_text(
        "from keras import ops\n"
        "def mine(y_true, y_pred):\n"
        "    if y_pred.shape[-1] == 1:  # Python control flow: autograph converts this file\n"
        "        y_pred = y_pred[:, 0]\n"
        "    return ops.square(y_true[:, 0] - y_pred)\n"
    )
    run = tmp_path / "run"
    ok = lossbench("loss=custom", "loss.target=mine.py:mine", "loss.task=binary", *TINY,
                   f"hydra.run.dir={run}", cwd=tmp_path, env={"TMPDIR": str(temp)})  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert list(temp.iterdir()) == []  # TensorFlow's autograph modules went with the process
