"""lossbench.console: what a person reads in an 80-column terminal."""

from __future__ import annotations

import io

import pandas as pd
from rich.console import Console

from lossbench import console


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
    summary = {"status": "ok", "metrics": {"accuracy": 0.95, "roc_auc": 0.97, "mse_group_0": 1.0}}
    console.job_line(summary, tmp_path / "3_focal_seed1")
    assert out.getvalue() == "3_focal_seed1: ok accuracy=0.95 roc_auc=0.97\n"
