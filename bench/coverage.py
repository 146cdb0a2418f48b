"""How often lossbench's verdicts call a winner when there is none, at the seed counts people use.

Each cell: the share of 1,000 paired comparisons, with no true difference between variant and
baseline, that end `better` or `worse` (a 95% interval should do so about 5% of the time), for
lossbench's t interval and, beside it, the 95% percentile bootstrap it replaced.

Usage: python bench/coverage.py [--trials 1000]
"""

from __future__ import annotations

import argparse

import numpy as np

from lossbench.sweep.stats import compare


def _bootstrap_verdict(d: np.ndarray, rng: np.random.Generator) -> bool:
    means = d[rng.integers(0, len(d), size=(2000, len(d)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return bool(low > 0 or high < 0)


DRAWS = {
    "normal": lambda rng, n: 0.8 + 0.02 * rng.standard_normal(n),
    "heavy-tailed (t, 3 df)": lambda rng, n: 0.8 + 0.02 * rng.standard_t(3, n),
    "skewed (lognormal)": lambda rng, n: 0.9 - 0.01 * rng.lognormal(0.0, 1.0, n),
}


def main() -> None:
    """Print the table (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    trials = parser.parse_args().trials
    print("| metric values | seeds | t interval (lossbench) | percentile bootstrap |")
    print("| --- | ---: | ---: | ---: |")
    for name, draw in DRAWS.items():
        for n in (2, 3, 5, 10):
            rng = np.random.default_rng(n)
            ours = theirs = 0
            for _ in range(trials):
                base, variant = draw(rng, n), draw(rng, n)
                verdict = compare(dict(enumerate(variant)), dict(enumerate(base)), "roc_auc")
                ours += verdict.verdict in ("better", "worse")
                theirs += _bootstrap_verdict(variant - base, rng)
            print(f"| {name} | {n} | {ours / trials:.1%} | {theirs / trials:.1%} |")


if __name__ == "__main__":
    main()
