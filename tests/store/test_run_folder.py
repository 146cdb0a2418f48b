"""lossbench.store.run_folder: summary.json's one writer and reader, and the statuses it holds."""

from __future__ import annotations

import json

import pytest

from lossbench.errors import ConfigError
from lossbench.store.run_folder import RunFolder, Status, Summary


def test_a_run_folder_says_running_then_its_outcome(tmp_path):
    folder = RunFolder(tmp_path)
    folder.start("focal", 3)
    assert json.loads((tmp_path / "summary.json").read_text()) == {
        "status": "running", "loss": "focal", "seed": 3
    }  # fmt: skip
    folder.write({"status": Status.ok, "final_loss": float("nan"), "metrics": {"auc": 0.9}})
    assert folder.read() == {"status": "ok", "final_loss": None, "metrics": {"auc": 0.9}}
    folder.forget()
    assert not (tmp_path / "summary.json").exists()


def test_a_failure_names_the_error_and_the_job(tmp_path):
    RunFolder(tmp_path / "job").fail(ConfigError("loss.gamma", "a number >= 0", -1), "focal", True)
    summary = RunFolder(tmp_path / "job").read()
    assert summary["status"] == Status.error and summary["error_type"] == "ConfigError"
    assert summary["message"].startswith("invalid value for `loss.gamma`")
    assert summary["loss"] == "focal" and "seed" not in summary  # a bool is no seed


def test_only_statuses_of_the_enum_are_written(tmp_path):
    with pytest.raises(ValueError):
        RunFolder(tmp_path).write({"status": "fine"})
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.parametrize(
    ("content", "reason"), [("{", "summary.json: Expecting"), ("[1]", "a list, not an object")]
)
def test_an_unreadable_summary_is_a_status_with_its_reason(tmp_path, content, reason):
    (tmp_path / "summary.json").write_text(content)
    summary = RunFolder(tmp_path).read()
    assert summary["status"] == Status.unreadable and reason in summary["message"]


def test_each_status_decides_a_single_runs_exit_status():
    assert Status.ok.exit_code() == 0
    assert Status.diverged.exit_code() == 3
    assert Status.error.exit_code() == 2
    assert Status.interrupted.exit_code(15) == 143
    assert Status.interrupted.exit_code() == 130


def test_a_summary_is_written_in_its_fields_order_without_the_keys_it_does_not_have(tmp_path):
    summary = Summary(status="pruned", loss="focal", seed=2, stopped={"step": 0, "pruned": True})
    assert summary.status is Status.pruned  # a status string becomes the enum member
    RunFolder(tmp_path).write(summary)
    text = (tmp_path / "summary.json").read_text()
    assert list(json.loads(text)) == [
        "status", "loss", "seed", "steps", "epochs", "final_loss", "selected_epoch", "metrics",
        "stopped",
    ]  # fmt: skip
    assert json.loads(text)["final_loss"] is None and json.loads(text)["metrics"] == {}
    with pytest.raises(ValueError, match="'done' is not a valid Status"):
        Summary(status="done", loss="focal", seed=2)
