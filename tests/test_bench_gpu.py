"""`make bench-gpu` (bench/gpu.py): its table comparison, and a quick sitting on this machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from gpu import TABLES, compare_tables  # noqa: E402


def _folder(path: Path, steps: pd.DataFrame) -> Path:
    path.mkdir()
    for name in TABLES:
        steps.to_csv(path / name, index=False)
    return path


def test_compare_tables_counts_and_sizes_the_differences(tmp_path):
    base = pd.DataFrame({"step": [0, 1, 2], "loss": [1.0, 0.5, np.nan], "norm": [2.0, 4.0, 8.0]})
    other = base.copy()
    other.loc[1, "loss"] = 0.5 + 1e-7
    other.loc[2, "norm"] = np.nan  # a NaN on one side only is a difference
    same = compare_tables(_folder(tmp_path / "a", base), _folder(tmp_path / "b", base.copy()))
    assert same["steps.csv"] == {"same_bytes": True, "cells_differing": 0, "cells": 6,
                                 "max_abs": 0.0, "max_rel": 0.0}  # fmt: skip
    diff = compare_tables(tmp_path / "a", _folder(tmp_path / "c", other))["epochs.csv"]
    assert not diff["same_bytes"] and diff["cells_differing"] == 2 and diff["cells"] == 6
    assert diff["max_abs"] == pytest.approx(1e-7) and diff["max_rel"] == pytest.approx(1e-7 / 0.5)


@pytest.mark.slow
@pytest.mark.long
def test_a_quick_sitting_measures_every_section_and_writes_the_page(tmp_path):
    out = tmp_path / "gpu.md"
    cmd = [sys.executable, str(ROOT / "bench" / "gpu.py"), "--quick", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["device"] == "CPU"  # this machine has no accelerator, and the page says so
    assert [r["loss"] for r in results["variants"]] == ["bce", "grouped_dynamic"]
    assert [r["status"] for r in results["variants"]] == ["ok"] * 2
    assert all(r["device_peak_bytes"] is None for r in results["variants"])  # a CPU reports none
    rows = {r["case"]: r for r in results["seeds"]["rows"]}
    assert set(rows) == {"1 together", "2 together"}
    assert rows["2 together"]["lanes"] == [2] and rows["1 together"]["lanes"] == [1]
    assert rows["1 together"]["wall_vs_one"] == 1.0
    assert all(r["wall_seconds"] > r["train_seconds"] > 0 for r in rows.values())
    # JAX on a CPU repeats a run exactly; the page says so for this sitting.
    assert all(t["same_bytes"] and t["cells_differing"] == 0 for t in results["repeat"].values())
    text = out.read_text()
    assert "| 2 together | 2 |" in text and "on CPU" in text
