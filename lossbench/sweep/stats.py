"""Statistics of a sweep: intervals of the mean over seeds and paired verdicts.

Sweeps have few seeds (2 to 10 is usual), where a percentile bootstrap is not a 95% interval (over
two values it is their range). Every interval here is a Student t interval: of the mean across
seeds, and of the mean paired difference between a variant and its baseline (Welch's interval
when the two share no seed). Under "no difference", paired differences are symmetric about zero,
where the t interval keeps its coverage at any n >= 2 (tests/sweep/test_stats.py simulates it).

A verdict compares a variant with a baseline on one metric: `better` or `worse` when the interval
of the mean difference clears zero on that side (each metric's direction decides which side is
better) by at least FRAGILE_MARGIN of its half-width, `fragile` when it clears zero by less,
`unclear` when it does not clear zero, and `too few seeds` when there are not two values to
estimate the spread from.

Why the margin: float32 sums run in another order on another vector unit (XLA's AVX-512 code
against its AVX2 code, or another CPU's), and training carries the last bits' difference into
every metric. Rerunning the studies in experiments/ on an AMD EPYC and an Intel Xeon, natively
and with XLA capped to AVX2, moved 95% of their verdicts' interval bounds by less than 0.75 of a
half-width (experiments/README.md): an interval that clears zero by less can land on the other
side on another machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lossbench.run.metrics import lower_is_better

CONFIDENCE = 0.95
# A spread needs two values; a number of seeds to plan needs a spread from at least three.
MIN_SEEDS = 2
MIN_SEEDS_TO_PLAN = 3
# Past this many seeds an unclear verdict is reported as practically unresolvable.
MAX_SEEDS_WORTH_RUNNING = 1000
# How far a clear verdict's interval must clear zero, as a fraction of its half-width.
FRAGILE_MARGIN = 0.75
TOO_FEW = "too few seeds"
FRAGILE = "fragile"
FRAGILE_WHY = (
    f"its interval clears zero by less than {FRAGILE_MARGIN:g} of its half-width, which "
    "float32 rounding on another CPU can cross"
)
VERDICTS = ("better", "worse", FRAGILE, "unclear", TOO_FEW)

__all__ = ["lower_is_better", "mean_ci", "welch_ci"]


def _t(df: float) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + CONFIDENCE / 2, df))


def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """95% t interval of the mean of the finite values (NaN with fewer than two)."""
    x = np.asarray(values, dtype="float64")
    x = x[np.isfinite(x)]
    if len(x) < MIN_SEEDS:
        return math.nan, math.nan
    half = _t(len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def welch_ci(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """95% Welch t interval of mean(x) - mean(y) (NaN unless each side has two values)."""
    if len(x) < MIN_SEEDS or len(y) < MIN_SEEDS:
        return math.nan, math.nan
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    diff = float(x.mean() - y.mean())
    if vx + vy == 0:
        return diff, diff
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = _t(df) * math.sqrt(vx + vy)
    return diff - half, diff + half


def probability_of_improvement(variant: np.ndarray, baseline: np.ndarray, lower: bool) -> float:
    """P(variant beats baseline) over all pairs of runs, ties counting half (rliable's
    probability of improvement, the normalised Mann-Whitney U statistic)."""
    x, y = np.asarray(variant, "float64"), np.asarray(baseline, "float64")
    if lower:
        x, y = -x, -y
    wins = (x[:, None] > y[None, :]).mean() + 0.5 * (x[:, None] == y[None, :]).mean()
    return float(wins)


def seeds_needed(differences: np.ndarray) -> int | None:
    """Paired seeds a clear verdict would likely need: the smallest n whose t interval, at the
    observed spread, clears zero around the observed mean difference by FRAGILE_MARGIN of its
    half-width. None when it cannot be estimated (fewer than three differences, no spread, no
    difference) or exceeds MAX_SEEDS_WORTH_RUNNING."""
    d = np.asarray(differences, "float64")
    if len(d) < MIN_SEEDS_TO_PLAN or d.mean() == 0 or d.std(ddof=1) == 0:
        return None
    from scipy.stats import t

    ratio = d.std(ddof=1) / abs(d.mean())
    n = np.arange(len(d) + 1, MAX_SEEDS_WORTH_RUNNING + 1)
    half = t.ppf(0.5 + CONFIDENCE / 2, n - 1) * ratio / np.sqrt(n)  # in units of |mean|
    settled = n[half * (1 + FRAGILE_MARGIN) < 1]
    return int(settled[0]) if len(settled) else None


def can_plan(n: int) -> bool:
    """Whether `n` paired seeds are enough to estimate how many a verdict would need."""
    return n >= MIN_SEEDS_TO_PLAN


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
    any common seed, Welch's interval compares the two sides' means.
    """
    lower = lower_is_better(metric)
    xs = {s: v for s, v in variant.items() if np.isfinite(v)}
    ys = {s: v for s, v in baseline.items() if np.isfinite(v)}
    if not xs or not ys:
        return None
    common = sorted(set(xs) & set(ys))
    x_all, y_all = np.array(list(xs.values())), np.array(list(ys.values()))
    d = np.array([xs[s] - ys[s] for s in common])
    if common:
        low, high = mean_ci(d)
        n, mean = len(d), float(d.mean())
    else:
        low, high = welch_ci(x_all, y_all)
        n, mean = 0, float(x_all.mean() - y_all.mean())
    # Sums of float metrics leave round-off (-1e-17 for a difference of 0): not evidence.
    tiny = 1e-9 * max(float(np.max(np.abs(x_all))), float(np.max(np.abs(y_all))), 1.0)
    low, high = (0.0 if abs(b) < tiny else b for b in (low, high))
    verdict = _verdict(low, high, lower)
    return Verdict(
        n,
        mean,
        low,
        high,
        probability_of_improvement(x_all, y_all, lower),
        verdict,
        seeds_needed(d) if verdict in ("unclear", FRAGILE) else None,
    )


def _verdict(low: float, high: float, lower: bool) -> str:
    """The verdict of a difference's interval [low, high] on a metric (`lower`: is better)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return TOO_FEW
    if low <= 0 <= high:
        return "unclear"
    if min(abs(low), abs(high)) < FRAGILE_MARGIN * (high - low) / 2:
        return FRAGILE
    return "better" if (high < 0) == lower else "worse"
