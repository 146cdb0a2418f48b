"""`lossbench-check` end to end: exit statuses, the JSON report, both backends, bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import start, wait_for

EXAMPLES = Path(__file__).with_name("example_losses.py")
CHECK = [sys.executable, "-c", "from lossbench.check.cli import main; main()"]


def check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHECK, *args], cwd=cwd, capture_output=True, text=True)


def _report(path: Path) -> dict:
    report = json.loads(path.read_text())
    assert set(report) == {"target", "task", "backends", "checks"}
    for row in report["checks"]:
        assert {"id", "title", "status", "message", "hint", "where"} <= set(row)
        assert set(row) <= {"id", "title", "status", "message", "hint", "where", "detail", "trace"}
        assert row["status"] in ("pass", "fail", "skip", "error")
    return report


@pytest.mark.slow
def test_a_correct_loss_passes_on_both_backends(tmp_path):
    out = tmp_path / "r.json"
    proc = check(f"{EXAMPLES}:GoodFocal", "--task", "binary", "--param", "gamma=1.5",
                 "--json", str(out), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = _report(out)
    assert report["backends"] == ["tensorflow", "jax"]
    status = {row["id"]: row["status"] for row in report["checks"]}
    assert status["backends"] == "pass" and status["live-variables"] == "skip"
    assert "fail" not in status.values()
    assert "per-sample" in proc.stdout  # the rich table


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "task", "failing"),
    [("FrozenScale", "binary", "live-variables"), ("backend_specific", "grouped", "backends")],
)
def test_defects_only_one_backend_shows_are_found_with_both(tmp_path, name, task, failing):
    out = tmp_path / "r.json"
    proc = check(f"{EXAMPLES}:{name}", "--task", task, "--json", str(out), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    failed = [r for r in _report(out)["checks"] if r["status"] == "fail"]
    assert [r["id"] for r in failed] == [failing]
    if failing == "live-variables":
        assert failed[0]["message"].startswith("jax:")  # TensorFlow reads the variable


@pytest.mark.slow
def test_a_relative_target_is_found_from_the_working_directory(tmp_path):
    (tmp_path / "mine.py").write_text(EXAMPLES.read_text())
    proc = check("mine.py:good_mse", "--task", "grouped", "--backend", "tensorflow", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("args", "detail"),
    [
        (["missing.py:Loss", "--task", "binary"], "does not exist"),
        (["mine.py:Nope", "--task", "binary"], "a name defined in mine.py"),
        (["mine.py:CONSTANT", "--task", "binary"], "a keras.losses.Loss subclass or a function"),
        (["broken.py:Loss", "--task", "binary"], "ZeroDivisionError"),
        (["mine.py:GoodFocal", "--task", "ranking"], "argument --task"),
        (["mine.py:GoodFocal", "--task", "binary", "--param", "beta=1"], "beta"),
        (["mine.py:GoodFocal", "--task", "binary", "--param", "oops"], "NAME=VALUE"),
        (["no-colon", "--task", "binary"], "path/to/file.py:Name"),
        (["mine.py:GoodFocal", "--task", "binary", "--param", "gamma=.nan"], "a finite number"),
        (["mine.py:GoodFocal", "--task", "binary", "--param", "gamma=-.inf"], "--param gamma"),
        (["mine.py:GoodFocal", "--task", "binary", "--json", "absent/r.json"], "--json"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, detail):
    (tmp_path / "mine.py").write_text(EXAMPLES.read_text() + "\nCONSTANT = 3\n")
    (tmp_path / "broken.py").write_text("import keras\nx = 1 / 0\n")
    proc = check(*args, "--backend", "tensorflow", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lossbench-check: error: "), proc.stderr
    assert detail in lines[0] and "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.slow
def test_what_the_loss_prints_and_the_working_folders_modules_change_nothing(tmp_path):
    """A loss that prints without a newline, and a `random.py` beside it that would shadow the
    standard library's, still give the report."""
    (tmp_path / "random.py").write_text("raise ImportError('the working folder shadowed random')\n")
    (tmp_path / "noisy.py").write_text(
        "from keras import ops\n"
        "def noisy(y_true, y_pred):\n"
        "    print('{not json', end='')\n"
        "    return ops.mean(ops.square(y_true - y_pred), axis=-1)\n"
    )
    script = Path(sys.executable).with_name("lossbench-check")  # as users run it
    proc = subprocess.run([str(script), "noisy.py:noisy", "--task", "grouped", "--backend",
                           "tensorflow", "--json", "r.json"], cwd=tmp_path, capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(row["status"] != "fail" for row in _report(tmp_path / "r.json")["checks"])


@pytest.mark.slow
@pytest.mark.timing
def test_ctrl_c_while_a_loss_hangs_exits_130_and_leaves_no_worker(tmp_path):
    marker = tmp_path / "reached"
    (tmp_path / "hangs.py").write_text(
        f"import time\ndef hangs(y_true, y_pred):\n    open({str(marker)!r}, 'w').close()\n"
        "    time.sleep(3600)\n"
    )
    args = [*CHECK, "hangs.py:hangs", "--task", "binary", "--backend", "tensorflow"]
    proc = start(args, cwd=tmp_path)
    wait_for(marker.exists, proc, "the worker calling the loss")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["lossbench-check: interrupted"]
    left = subprocess.run(["pgrep", "-f", "lossbench.check.worker.*hangs.py"], capture_output=True)
    assert left.stdout == b"", left.stdout


# Defects of real losses, one per class of cause: the check each fails on both backends, and
# whether its finding points at the line marked `# defect` in example_losses.py.
DEFECTS = {
    "StaticArange": ("batch-shapes", True),
    "ContrastiveCall": ("sample-weight", False),
    "PredictionsUnused": ("finite-gradients", False),
    "CenterLoss": ("stateless-call", True),
    "NumpyInHelper": ("traceable", True),
}


# make test runs two of them through the CLI (tests/check/test_suite.py runs all in-process).
IN_MAKE_TEST = ("StaticArange", "CenterLoss")


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", [n if n in IN_MAKE_TEST else pytest.param(n, marks=pytest.mark.long) for n in DEFECTS]
)
def test_a_defect_is_named_once_with_the_users_line_in_the_json(tmp_path, name):
    expected, pointed = DEFECTS[name]
    proc = check(f"{EXAMPLES}:{name}", "--task", "binary", "--json", "r.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = {row["id"]: row for row in _report(tmp_path / "r.json")["checks"]}
    assert rows[expected]["status"] == "fail" and rows[expected]["hint"]
    others = [i for i, row in rows.items() if row["status"] != "pass" and i != expected
              and row["status"] != "skip"]  # fmt: skip
    for check_id in others:  # every other failure is the root cause's, said so
        assert "see " in rows[check_id]["message"] and rows[check_id]["detail"], rows[check_id]
    if pointed:
        lines = EXAMPLES.read_text().splitlines()
        marker = "np.asarray(y_pred)" if name == "NumpyInHelper" else "# defect"
        start = (
            0
            if name == "NumpyInHelper"
            else next(i for i, line in enumerate(lines) if f"class {name}(" in line)
        )
        line = next(i + 1 for i in range(start, len(lines)) if marker in lines[i])
        assert rows[expected]["where"] == f"{EXAMPLES}:{line}", rows[expected]
        assert f"example_losses.py:{line}" in rows[expected]["message"]
