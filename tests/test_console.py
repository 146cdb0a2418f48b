"""lossbench.console: what a person reads in an 80-column terminal."""

from __future__ import annotations

import dataclasses
import io

import pandas as pd
from rich.console import Console

from lossbench import console
from lossbench.store.run_folder import Status, Summary


def _comparison() -> pd.DataFrame:
    rows = []
    for t in (0.25, 4.0):
        row = {"loss": "temperature", "loss.temperature": t, "ok": 5, "jobs": 5}
        for m, v in (("final_loss", 0.78), ("val_loss", 0.86), ("minority_recall", 0.3369)):
            row |= {f"{m}_mean": v, f"{m}_ci_low": v - 0.1, f"{m}_ci_high": v + 0.1}
        rows.append(row)
    return pd.DataFrame(rows)


def test_the_comparison_fits_80_columns_without_cutting_a_name(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(console, "console", Console(file=out, width=80, color_system=None))
    console.print_sweep(_comparison(), ["loss", "loss.temperature"], [], "lossbench sweep: s")
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    for word in ("temperature", "loss.temperature=0.25", "loss.temperature=4.0", "minority_recall"):
        assert word in text, word
    assert "[0.237, 0.437]" in text  # numbers whole too


def test_a_sweep_job_is_one_line(monkeypatch, tmp_path):
    out = io.StringIO()
    monkeypatch.setattr(console, "console", Console(file=out, width=80, color_system=None))
    metrics = {"accuracy": 0.95, "roc_auc": 0.97, "mse_group_0": 1.0}
    summary = Summary(status=Status.ok, loss="focal", seed=1, metrics=metrics)
    console.job_line(summary, tmp_path / "3_focal_seed1")
    assert out.getvalue() == "3_focal_seed1: ok accuracy=0.95 roc_auc=0.97\n"


def _wide_comparison() -> pd.DataFrame:
    """A multitask sweep's comparison: long setting names and many metrics with wide numbers."""
    rows = []
    for mode in ("loss_weighting", "prediction_scaling"):
        row = {"loss": "multitask", "loss.mode": mode, "loss.box_weight": 0.2, "ok": 10, "jobs": 10}
        for m in ("final_loss", "val_loss", "box_mse", "accuracy", "macro_recall",
                  "minority_recall", "balanced_accuracy", "worst_group_accuracy"):  # fmt: skip
            row |= {f"{m}_mean": -0.012345, f"{m}_ci_low": -12345.6, f"{m}_ci_high": 0.0001234}
        rows.append(row)
    return pd.DataFrame(rows)


def test_a_wide_comparison_keeps_every_column_within_80_columns(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(console, "console", Console(file=out, width=80, color_system=None))
    keys = ["loss", "loss.mode", "loss.box_weight"]
    console.print_comparison(_wide_comparison(), keys, "lossbench sweep: s")
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "variant" in line)
    assert all(name in header for name in ("metric", "mean", "95% CI", " n "))
    assert out.getvalue().count("10/10") == 2 and "[-1.23e+04, 0.000123]" in out.getvalue()
    assert "worst_group_accuracy" in out.getvalue()
    # The variant's name folds inside a setting only when no more room is left: read whole.
    names = "".join(line.split("│")[1].strip() for line in lines if line.startswith("│"))
    assert names.count("multitaskloss.mode=loss_weightingloss.box_weight=0.2") == 1


def test_a_run_with_a_test_split_shows_its_test_metrics_beside_validation(monkeypatch, tmp_path):
    out = io.StringIO()
    monkeypatch.setattr(console, "console", Console(file=out, width=80, color_system=None))
    summary = Summary(loss="focal", task="binary", status=Status.ok, seed=0, steps=10,
                      steps_per_second=100.0, wall_seconds=1.0, device="CPU", backend="jax",
                      metrics={"accuracy": 0.9123, "mse_group_0": 1.0},
                      test_metrics={"accuracy": 0.8765})  # fmt: skip
    console.print_summary(summary, tmp_path)
    row = next(line for line in out.getvalue().splitlines() if "accuracy" in line)
    assert [cell.strip() for cell in row.split("│")[1:-1]] == ["accuracy", "0.9123", "0.8765"]
    assert "validation" in out.getvalue() and "test" in out.getvalue()
    summary = dataclasses.replace(summary, test_metrics=None)
    out.truncate(0)
    console.print_summary(summary, tmp_path)
    assert "validation" not in out.getvalue() and "0.8765" not in out.getvalue()
