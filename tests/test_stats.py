"""Bootstrap intervals, metric directions, paired verdicts, and what a sweep folder says."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lossbench.stats import (
    bootstrap_ci,
    compare,
    lower_is_better,
    probability_of_improvement,
    seeds_needed,
)
from lossbench.sweeps import aggregate

REPORT = [sys.executable, "-c", "from lossbench.report import main; main()"]


def test_bootstrap_interval_matches_one_computed_by_hand():
    values = np.array([0.61, 0.65, 0.70, 0.58, 0.66, 0.72])
    rng = np.random.default_rng(123)
    means = values[rng.integers(0, len(values), size=(200_000, len(values)))].mean(axis=1)
    by_hand = np.percentile(means, [2.5, 97.5])
    low, high = bootstrap_ci(values)
    assert low == pytest.approx(by_hand[0], abs=2e-3) and high == pytest.approx(
        by_hand[1], abs=2e-3
    )
    assert bootstrap_ci(values) == (low, high)  # deterministic
    assert all(np.isnan(bootstrap_ci(values[:1])))  # one seed: no interval
    assert bootstrap_ci(np.array([0.5, 0.5, 0.5])) == (0.5, 0.5)


@pytest.mark.parametrize(
    ("metric", "lower"),
    [("mse", True), ("worst_group_mse", True), ("mse_group_3", True), ("ece", True),
     ("box_mse", True), ("val_loss", True), ("accuracy", False), ("roc_auc", False),
     ("minority_recall", False), ("macro_recall", False), ("edge_cosine", False)],
)  # fmt: skip
def test_metric_directions(metric, lower):
    assert lower_is_better(metric) is lower


def test_differences_are_paired_by_seed():
    v = compare({0: 0.70, 1: 0.80, 2: 0.75}, {0: 0.60, 1: 0.70, 3: 0.90}, "accuracy")
    assert v.n == 2 and v.diff_mean == pytest.approx(0.10)
    assert v.diff_ci_low == pytest.approx(0.10) and v.verdict == "better"
    worse = compare({0: 0.20, 1: 0.25}, {0: 0.10, 1: 0.12}, "mse")  # lower is better
    assert worse.verdict == "worse" and worse.diff_mean > 0
    better = compare({0: 0.08, 1: 0.09}, {0: 0.10, 1: 0.12}, "mse")
    assert better.verdict == "better"


def test_an_unpaired_comparison_bootstraps_each_side():
    v = compare({0: 0.9, 1: 0.91, 2: 0.92}, {5: 0.5, 6: 0.52, 7: 0.51}, "roc_auc")
    assert v.n == 0 and v.verdict == "better" and v.diff_ci_low > 0.3
    assert v.p_improvement == 1.0


def test_unclear_verdicts_estimate_the_seeds_needed():
    v = compare({0: 0.5, 1: 0.7, 2: 0.4}, {0: 0.45, 1: 0.6, 2: 0.45}, "accuracy")
    assert v.verdict == "unclear"
    d = np.array([0.05, 0.1, -0.05])
    assert v.seeds_needed == seeds_needed(d) == int(np.ceil((1.96 * d.std(ddof=1) / d.mean()) ** 2))


def test_probability_of_improvement_counts_pairs_and_ties():
    assert probability_of_improvement(np.array([1, 2]), np.array([0, 3]), lower=False) == 0.5
    assert probability_of_improvement(np.array([1.0]), np.array([1.0]), lower=True) == 0.5
    assert probability_of_improvement(np.array([1.0]), np.array([2.0]), lower=True) == 1.0


def _fake_sweep(root: Path, results: dict[tuple[str, int], float]) -> None:
    for k, ((loss, seed), recall) in enumerate(results.items()):
        job = root / f"{k}_{loss}_seed{seed}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(
            yaml.safe_dump([f"loss={loss}", f"seed={seed}"])
        )
        summary = {
            "status": "ok",
            "loss": loss,
            "seed": seed,
            "final_loss": 0.1,
            "steps": 10,
            "metrics": {"minority_recall": recall, "accuracy": 0.9},
        }
        (job / "summary.json").write_text(json.dumps(summary))
        (job / "steps.csv").write_text("step,epoch,loss,grad_norm\n0,0,0.5,1.0\n1,0,0.4,0.9\n")
        (job / "grad_norms.csv").write_text("step,layer,grad_norm\n0,head,1.0\n1,head,0.9\n")


def test_a_sweep_folder_gets_intervals_verdicts_a_report_and_a_gate(tmp_path):
    results = {("bce", s): 0.10 + 0.01 * s for s in range(5)}
    results |= {("focal", s): 0.30 + 0.01 * s for s in range(5)}
    results |= {("threshold", s): 0.10 + (0.05 if s % 2 else -0.05) for s in range(5)}
    _fake_sweep(tmp_path, results)
    _, comparison, _ = aggregate(tmp_path)
    assert {"n", "minority_recall_ci_low", "minority_recall_ci_high"} <= set(comparison.columns)
    assert list(comparison["n"]) == [5, 5, 5]
    saved = pd.read_csv(tmp_path / "verdicts.csv")
    assert list(saved.columns[:9]) == [
        "variant",
        "baseline",
        "metric",
        "n",
        "diff_mean",
        "diff_ci_low",
        "diff_ci_high",
        "p_improvement",
        "verdict",
    ]
    recall = saved[saved["metric"] == "minority_recall"].set_index("variant")
    assert recall.loc["focal", "verdict"] == "better" and recall.loc["focal", "n"] == 5
    assert recall.loc["threshold", "verdict"] == "unclear"
    assert set(saved["metric"]) == {"minority_recall", "accuracy"}  # no final_loss verdicts
    ok = subprocess.run(
        [*REPORT, str(tmp_path), "--quiet", "--expect", "focal:minority_recall:better"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    report = (tmp_path / "report.md").read_text()
    assert report.index("## What this sweep says") < report.index("## Comparison")
    assert "`focal` is better than `bce` on minority_recall" in report
    assert "seeds would likely settle it" in report
    gate = subprocess.run(
        [*REPORT, str(tmp_path), "--quiet", "--expect", "threshold:minority_recall:better"],
        capture_output=True,
        text=True,
    )
    assert gate.returncode == 1 and "expectation not met" in gate.stderr
    assert "threshold" in gate.stderr and "unclear" in gate.stderr


def test_the_console_comparison_fits_80_columns(tmp_path):
    from rich.console import Console

    from lossbench import console as console_module
    from lossbench.sweeps import variant_keys

    _fake_sweep(tmp_path, {("class_balanced", s): 0.2 + 0.01 * s for s in range(3)})
    summary, comparison, _ = aggregate(tmp_path)
    buffer = io.StringIO()
    original = console_module.console
    console_module.console = Console(file=buffer, width=80)
    try:
        console_module.print_comparison(comparison, variant_keys(summary), "sweep")
    finally:
        console_module.console = original
    text = buffer.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text and "minority_recall" in text and "class_balanced" in text


def test_a_setting_as_baseline_read_from_the_sweeps_own_config(tmp_path):
    for k, (t, seed) in enumerate((t, s) for t in ("0.5", "1.0", "2.0") for s in range(3)):
        job = tmp_path / f"{k}_temperature_seed{seed}"
        (job / ".hydra").mkdir(parents=True)
        overrides = ["loss=temperature", f"loss.temperature={t}", f"seed={seed}"]
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        ece = {"0.5": 0.20, "1.0": 0.05, "2.0": 0.10}[t] + 0.001 * seed
        summary = {"status": "ok", "loss": "temperature", "seed": seed,
                   "metrics": {"ece": ece, "accuracy": 0.8}}  # fmt: skip
        (job / "summary.json").write_text(json.dumps(summary))
        (job / "steps.csv").write_text("step,epoch,loss,grad_norm\n0,0,0.5,1.0\n")
        (job / "grad_norms.csv").write_text("step,layer,grad_norm\n0,head,1.0\n")
    (tmp_path / "multirun.yaml").write_text(
        yaml.safe_dump({"report": {"baseline": "loss.temperature=1"}})
    )
    proc = subprocess.run([*REPORT, str(tmp_path), "--quiet", "--expect",
                           "temperature:ece:worse"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    verdicts = pd.read_csv(tmp_path / "verdicts.csv")
    ece = verdicts[verdicts["metric"] == "ece"]
    assert list(ece["variant"]) == ["temperature, loss.temperature=0.5",
                                    "temperature, loss.temperature=2.0"]  # fmt: skip
    assert set(ece["verdict"]) == {"worse"} and set(ece["baseline"]) == {"loss.temperature=1"}
