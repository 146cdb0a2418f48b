"""t intervals, metric directions, paired verdicts, and what a sweep folder says."""

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
from scipy import stats as scipy_stats

from lossbench.sweep.results import aggregate
from lossbench.sweep.stats import (
    FRAGILE_MARGIN,
    TOO_FEW,
    compare,
    lower_is_better,
    mean_ci,
    probability_of_improvement,
    seeds_needed,
    welch_ci,
)

REPORT = [sys.executable, "-c", "from lossbench.sweep.cli import main; main()"]


def test_interval_of_the_mean_is_the_t_interval():
    values = np.array([0.61, 0.65, 0.70, 0.58, 0.66, 0.72])
    reference = scipy_stats.t.interval(
        0.95, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values)
    )
    assert mean_ci(values) == pytest.approx(reference, rel=1e-12)
    assert all(np.isnan(mean_ci(values[:1])))  # one seed: no interval
    assert mean_ci(np.array([0.5, 0.5, 0.5])) == (0.5, 0.5)
    assert mean_ci(np.array([0.5, np.nan, 0.7])) == pytest.approx(mean_ci(np.array([0.5, 0.7])))


def test_welch_interval_matches_scipy():
    x, y = np.array([0.9, 0.93, 0.95, 0.91]), np.array([0.5, 0.6, 0.52])
    low, high = welch_ci(x, y)
    ci = scipy_stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
    assert (low, high) == pytest.approx((ci.low, ci.high), rel=1e-10)


def _false_verdict_rate(n: int, draw, trials: int = 1000) -> float:
    """Share of `trials` comparisons with no true difference that end better or worse."""
    rng = np.random.default_rng(n)
    wrong = 0
    for _ in range(trials):
        base = draw(rng, n)
        variant = draw(rng, n)
        v = compare(dict(enumerate(variant)), dict(enumerate(base)), "roc_auc")
        wrong += v.verdict in ("better", "worse")
    return wrong / trials


def _normal(rng, n):
    return 0.8 + 0.02 * rng.standard_normal(n)


def _heavy_tailed(rng, n):
    return 0.8 + 0.02 * rng.standard_t(3, n)


def _skewed(rng, n):
    return 0.9 - 0.01 * rng.lognormal(0.0, 1.0, n)


def _seed_shared(rng, n):
    """Values that share each seed's draw (data split, init) on both sides."""
    shared = np.random.default_rng(int(rng.integers(1 << 30))).standard_normal(n)
    return 0.8 + 0.05 * shared + 0.01 * rng.standard_normal(n)


@pytest.mark.parametrize("n", [2, 3, 5, 10])
@pytest.mark.parametrize("draw", [_normal, _heavy_tailed, _skewed], ids=lambda f: f.__name__)
def test_with_no_true_difference_verdicts_are_wrong_about_5_percent_of_the_time(n, draw):
    # 1,000 paired comparisons with a known zero difference: a 95% interval excludes zero about
    # 5% of the time (binomial sd 0.7%; 7.5% is 3.5 sd above 5%). A percentile bootstrap gives
    # a verdict about half the time at n = 2 and a quarter at n = 3 (bench/coverage.py).
    assert _false_verdict_rate(n, draw) <= 0.075


def test_verdicts_still_find_a_real_difference():
    # A paired difference of 4 sd over 5 seeds: the interval clears zero by FRAGILE_MARGIN of
    # its half-width in 98% of draws (the noncentral t distribution).
    rng = np.random.default_rng(1)
    found = 0
    for _ in range(200):
        base = 0.8 + 0.02 * rng.standard_normal(5)
        variant = base + 0.04 + 0.01 * rng.standard_normal(5)
        verdict = compare(dict(enumerate(variant)), dict(enumerate(base)), "roc_auc")
        found += verdict.verdict == "better"
    assert found / 200 > 0.9


def test_two_close_seeds_are_not_a_verdict():
    # +0.001 and +0.002: the percentile bootstrap's "95% CI" was their range, [0.001, 0.002].
    v = compare({0: 0.801, 1: 0.802}, {0: 0.800, 1: 0.800}, "roc_auc")
    assert v.verdict == "unclear" and v.diff_ci_low < 0 < v.diff_ci_high
    d = np.array([0.001, 0.002])
    half = scipy_stats.t.ppf(0.975, 1) * d.std(ddof=1) / np.sqrt(2)
    assert (v.diff_ci_low, v.diff_ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert v.seeds_needed is None  # two differences: their spread is no basis for a plan


def test_one_seed_is_too_few_for_a_verdict():
    v = compare({0: 0.9}, {0: 0.8}, "roc_auc")
    assert v.verdict == TOO_FEW and v.seeds_needed is None and v.n == 1
    unpaired = compare({0: 0.9, 1: 0.91}, {5: 0.8}, "roc_auc")
    assert unpaired.verdict == TOO_FEW


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
    worse = compare({0: 0.20, 1: 0.25, 2: 0.22}, {0: 0.10, 1: 0.12, 2: 0.11}, "mse")
    assert worse.verdict == "worse" and worse.diff_mean > 0  # lower is better
    better = compare({0: 0.08, 1: 0.09, 2: 0.085}, {0: 0.10, 1: 0.12, 2: 0.11}, "mse")
    assert better.verdict == "better"


def test_an_unpaired_comparison_uses_welchs_interval():
    v = compare({0: 0.9, 1: 0.91, 2: 0.92}, {5: 0.5, 6: 0.52, 7: 0.51}, "roc_auc")
    assert v.n == 0 and v.verdict == "better" and v.diff_ci_low > 0.3
    assert v.p_improvement == 1.0


def test_unclear_verdicts_estimate_the_seeds_needed():
    v = compare({0: 0.5, 1: 0.7, 2: 0.4}, {0: 0.45, 1: 0.6, 2: 0.45}, "accuracy")
    assert v.verdict == "unclear"
    d = np.array([0.05, 0.1, -0.05])
    ratio = d.std(ddof=1) / d.mean()
    # The smallest n whose interval clears zero by FRAGILE_MARGIN of its half-width.
    by_hand = next(n for n in range(4, 1001)
                   if (1 + FRAGILE_MARGIN) * scipy_stats.t.ppf(0.975, n - 1) * ratio / np.sqrt(n)
                   < 1)  # fmt: skip
    assert v.seeds_needed == seeds_needed(d) == by_hand
    assert seeds_needed(np.array([0.001, -0.001, 0.00002])) is None  # beyond any practical n


@pytest.mark.parametrize(
    ("differences", "verdict"),
    [([0.10, 0.11, 0.12], "better"),  # mean 0.11, half-width 0.025: clears zero by 4 halves
     ([0.03, 0.05, 0.07], "fragile"),  # mean 0.05, half-width 0.0497: near bound 0.0003
     ([-0.02, 0.05, 0.12], "unclear"),
     ([-0.10, -0.11, -0.12], "worse")],
)  # fmt: skip
def test_an_interval_that_barely_clears_zero_is_fragile(differences, verdict):
    """Fragile: the interval clears zero by less than FRAGILE_MARGIN of its half-width."""
    baseline = {s: 0.5 for s in range(len(differences))}
    v = compare({s: 0.5 + d for s, d in enumerate(differences)}, baseline, "accuracy")
    d = np.array(differences)
    half = scipy_stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    near = abs(d.mean()) - half
    assert v.diff_ci_low == pytest.approx(d.mean() - half)
    expected = "unclear" if near <= 0 else "fragile" if near < FRAGILE_MARGIN * half else verdict
    assert v.verdict == expected == verdict
    if verdict == "fragile":
        assert v.seeds_needed is not None and v.seeds_needed > len(d)


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
    comparison = aggregate(tmp_path).comparison
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
    from lossbench.sweep.aggregate import variant_keys

    _fake_sweep(tmp_path, {("class_balanced", s): 0.2 + 0.01 * s for s in range(3)})
    tables = aggregate(tmp_path)
    summary, comparison = tables.summary, tables.comparison
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
    assert set(ece["verdict"]) == {"worse"} and set(ece["baseline"]) == {"loss.temperature=1.0"}
