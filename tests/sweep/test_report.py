"""lossbench.sweep.report: the one reporter of a sweep folder (the sweeper's, the search's and
lossbench-report's), on folders written by hand."""

from __future__ import annotations

import json

import pytest
import yaml

from lossbench.errors import SweepIncomplete
from lossbench.sweep.report import ReportError, report, report_sweep


def _job(root, k, loss, seed, status="ok", recall=0.5):
    job = root / f"{k}_{loss}_seed{seed}"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"loss={loss}", f"seed={seed}"]))
    summary = {"status": status, "loss": loss, "seed": seed, "final_loss": 0.1, "steps": 10,
               "metrics": {"minority_recall": recall}}  # fmt: skip
    if status != "ok":
        summary["message"] = "diverged at step 3"
    (job / "summary.json").write_text(json.dumps(summary))
    return job


def _sweep(root):
    jobs = [(loss, seed) for loss in ("bce", "focal") for seed in range(3)]
    for k, (loss, seed) in enumerate(jobs):
        _job(root, k, loss, seed, recall=0.1 * seed + (0.5 if loss == "focal" else 0.0))


def test_every_file_left_out_is_named_once_in_one_list(tmp_path, capsys):
    _sweep(tmp_path)
    (tmp_path / "1_bce_seed1" / "summary.json").write_text("{not json")
    tables = report(tmp_path, quiet=True)
    err = capsys.readouterr().err.splitlines()
    assert len(tables.problems) == 0  # an unreadable summary is a job row, not a lost file
    assert list(tables.summary["status"]).count("unreadable") == 1
    (tmp_path / "0_bce_seed0" / ".hydra" / "overrides.yaml").write_text("[unclosed")
    tables = report(tmp_path, prog="lossbench-report", quiet=True)
    err = capsys.readouterr().err.splitlines()
    assert len(tables.problems) == 1 and "overrides.yaml" in tables.problems[0]
    assert err == [f"lossbench-report: left out: {tables.problems[0]}"]
    for name in ("summary.csv", "comparison.csv", "verdicts.csv"):
        assert (tmp_path / name).is_file()
    assert not (tmp_path / "report.md").exists()  # only lossbench-report writes it


def test_the_sweepers_report_names_the_jobs_that_did_not_finish(tmp_path, capsys):
    _sweep(tmp_path)
    _job(tmp_path, 6, "focal", 3, status="diverged")
    with pytest.raises(SweepIncomplete, match=r"1 of 7 jobs did not finish: 6_focal_seed3 \("):
        report_sweep(tmp_path)
    out = capsys.readouterr().out
    assert "lossbench sweep:" in out and "tables: " in out and "focal" in out


def test_a_folder_without_runs_is_an_error_and_the_markdown_report_is_written(tmp_path):
    with pytest.raises(ReportError, match="no run folders"):
        report(tmp_path, quiet=True)
    _sweep(tmp_path)
    tables = report(tmp_path, quiet=True, markdown=True)
    text = (tmp_path / "report.md").read_text()
    assert "## What this sweep says" in text and "`bce`" in text
    assert list(tables.verdicts["variant"].unique()) == ["focal"]


def test_a_folder_that_cannot_be_written_still_gets_its_comparison(tmp_path, capsys, monkeypatch):
    from lossbench.sweep.results import SweepTables

    _sweep(tmp_path)

    def refuse(self, root):
        raise PermissionError(13, "Permission denied", str(root / "summary.csv"))

    monkeypatch.setattr(SweepTables, "write", refuse)
    with pytest.raises(PermissionError):
        report(tmp_path, prog="lossbench-report", markdown=True)
    out = capsys.readouterr().out
    assert "lossbench report:" in out and "focal" in out
    assert not (tmp_path / "summary.csv").exists() and not (tmp_path / "report.md").exists()
