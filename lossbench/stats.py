"""Statistics of a sweep: bootstrap confidence intervals over seeds and paired verdicts.

Every interval is a 95% percentile bootstrap (`scipy.stats.bootstrap`) with a fixed generator, so
the same jobs give the same numbers. A verdict compares a variant with a baseline on one metric,
paired by seed: `better` or `worse` when the interval of the mean difference excludes zero on
that side (each metric's direction decides which side is better), else `unclear`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 9999
SEED = 0

# Lower is better for losses, squared errors and calibration error; higher for the rest.
_LOWER = re.compile(r"(^|_)(loss|mse|ece|error)(_|$)")


def lower_is_better(metric: str) -> bool:
    """The metric's direction: True for losses, MSEs and ECE."""
    return bool(_LOWER.search(metric))


def bootstrap_ci(values: np.ndarray) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean (NaN with fewer than two values)."""
    from scipy.stats import bootstrap

    x = np.asarray(values, dtype="float64")
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return math.nan, math.nan
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    result = bootstrap(
        (x,), np.mean, confidence_level=CONFIDENCE, n_resamples=N_RESAMPLES,
        method="percentile", random_state=np.random.default_rng(SEED),
    )  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def probability_of_improvement(variant: np.ndarray, baseline: np.ndarray, lower: bool) -> float:
    """P(variant beats baseline) over all pairs of runs, ties counting half (rliable's
    probability of improvement, the normalised Mann-Whitney U statistic)."""
    x, y = np.asarray(variant, "float64"), np.asarray(baseline, "float64")
    if lower:
        x, y = -x, -y
    wins = (x[:, None] > y[None, :]).mean() + 0.5 * (x[:, None] == y[None, :]).mean()
    return float(wins)


def seeds_needed(differences: np.ndarray) -> int | None:
    """Seeds a clear verdict would likely need: n with 1.96 * sd / sqrt(n) < |mean difference|
    (None when the mean difference is zero: no number of seeds separates them)."""
    d = np.asarray(differences, "float64")
    if len(d) < 2 or d.mean() == 0:
        return None
    return max(len(d) + 1, math.ceil((1.96 * d.std(ddof=1) / abs(d.mean())) ** 2))


@dataclass
class Verdict:
    n: int
    diff_mean: float
    diff_ci_low: float
    diff_ci_high: float
    p_improvement: float
    verdict: str
    seeds_needed: int | None


def compare(variant: dict[int, float], baseline: dict[int, float], metric: str) -> Verdict | None:
    """Compare per-seed values of a variant and its baseline on `metric`.

    Differences (variant - baseline) are paired by seed where both sides have the seed; without
    any common seed the difference of means is bootstrapped from each side independently.
    """
    lower = lower_is_better(metric)
    xs = {s: v for s, v in variant.items() if np.isfinite(v)}
    ys = {s: v for s, v in baseline.items() if np.isfinite(v)}
    if not xs or not ys:
        return None
    common = sorted(set(xs) & set(ys))
    x_all, y_all = np.array(list(xs.values())), np.array(list(ys.values()))
    if common:
        d = np.array([xs[s] - ys[s] for s in common])
        low, high = bootstrap_ci(d)
        n, mean = len(d), float(d.mean())
    else:
        low, high = _unpaired_ci(x_all, y_all)
        n, mean = 0, float(x_all.mean() - y_all.mean())
        d = np.array([])
    # Sums of float metrics leave round-off (-1e-17 for a difference of 0): not evidence.
    tiny = 1e-9 * max(float(np.max(np.abs(x_all))), float(np.max(np.abs(y_all))), 1.0)
    low, high = (0.0 if abs(b) < tiny else b for b in (low, high))
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0 <= high:
        verdict = "unclear"
    elif (high < 0) == lower:
        verdict = "better"
    else:
        verdict = "worse"
    return Verdict(
        n, mean, low, high, probability_of_improvement(x_all, y_all, lower), verdict,
        seeds_needed(d) if verdict == "unclear" and len(d) else None,
    )  # fmt: skip


def _unpaired_ci(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from scipy.stats import bootstrap

    if len(x) < 2 or len(y) < 2:
        return math.nan, math.nan
    result = bootstrap(
        (x, y), lambda a, b, axis=-1: np.mean(a, axis=axis) - np.mean(b, axis=axis),
        confidence_level=CONFIDENCE, n_resamples=N_RESAMPLES, method="percentile",
        random_state=np.random.default_rng(SEED),
    )  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
