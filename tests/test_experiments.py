"""experiments/README.md's tables are the committed results/ of each study (experiments/tables.py
writes them), so a stated result cannot drift from the files behind it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _tables():
    spec = importlib.util.spec_from_file_location("tables", ROOT / "experiments" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readmes_tables_are_the_committed_results():
    tables = _tables()
    text = tables.README.read_text()
    assert tables.rewritten(text) == text, "run `python experiments/tables.py`"


def test_the_verdict_table_keeps_clear_verdicts_of_headline_metrics_only():
    verdicts = pd.DataFrame({
        "variant": ["a", "a", "a", "b"], "metric": ["ece", "mse_group_3", "accuracy", "ece"],
        "verdict": ["better", "worse", "unclear", "worse"], "diff_mean": [-0.0027, 0.1, 0.0, 0.02],
        "diff_ci_low": [-0.004, 0.05, -0.1, 0.01], "diff_ci_high": [-0.0013, 0.2, 0.1, 0.03],
        "p_improvement": [0.64, 0.1, 0.5, 0.2],
    })  # fmt: skip
    rows = _tables().verdict_table(verdicts).splitlines()[2:]
    assert rows == [
        "| a | ece | better | -0.0027 [-0.004, -0.0013] | 0.64 |",
        "| b | ece | worse | +0.02 [+0.01, +0.03] | 0.20 |",
    ]
