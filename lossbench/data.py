"""Synthetic data, deterministic by seed: imbalanced binary labels and skewed, scaled groups.

Every sample has features, a group id and the task's targets:
- groups: sizes skewed as 1 / (rank + 1) ** group_skew; group g's regression targets are scaled by
  a factor spaced geometrically in [group_scale_min, group_scale_max], so a plain squared error is
  dominated by the large-scale groups. The group's one-hot is appended to the features.
- binary: a label with the configured positive rate, from a noisy nonlinear score of the features.
- grouped: `n_outputs` regression targets, group scale times a smooth function of the features.
Only NumPy is used here, so the same seed gives the same arrays bit for bit on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossbench.config import DataConfig, Task


@dataclass(frozen=True)
class Split:
    """One split: features `x` (n, f), targets `y` (n, t) and group ids (n,)."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class Dataset:
    task: Task
    train: Split
    val: Split
    group_scales: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.group_scales)


def group_scales(cfg: DataConfig) -> np.ndarray:
    """The per-group target scales, geometric in [group_scale_min, group_scale_max]."""
    return np.geomspace(cfg.group_scale_min, cfg.group_scale_max, cfg.n_groups)


def make_dataset(task: Task, cfg: DataConfig, seed: int) -> Dataset:
    """Make the arrays for `task` from `cfg`, deterministically from `seed`.

    Args:
        task: which targets to make.
        cfg: sizes, rates and group settings.
        seed: the only source of randomness.

    Returns:
        A `Dataset` with float32 features and targets and int32 group ids.
    """
    rng = np.random.default_rng(seed)
    n, f, g = cfg.n_samples, cfg.n_features, cfg.n_groups
    x = rng.standard_normal((n, f))
    size_weights = 1.0 / np.arange(1, g + 1) ** cfg.group_skew
    groups = rng.choice(g, size=n, p=size_weights / size_weights.sum()).astype("int32")
    scales = group_scales(cfg)

    if task is Task.binary:
        w = rng.standard_normal(f) / np.sqrt(f)
        score = x @ w + 0.5 * np.tanh(x[:, 0] * x[:, min(1, f - 1)])
        score = score + cfg.noise * rng.standard_normal(n)
        # The label is the top `positive_rate` of the score: the rate is exact, the signal real.
        y = (score > np.quantile(score, 1.0 - cfg.positive_rate)).astype("float32")[:, None]
    elif task is Task.grouped:
        w = rng.standard_normal((f, cfg.n_outputs)) / np.sqrt(f)
        v = rng.standard_normal((f, cfg.n_outputs)) / np.sqrt(f)
        base = x @ w + 0.5 * np.sin(2.0 * (x @ v))
        base = base + cfg.noise * rng.standard_normal(base.shape)
        y = (scales[groups][:, None] * base).astype("float32")
    else:  # pragma: no cover - Task is an enum, checked at compose time
        raise ValueError(f"unknown task {task!r}")

    features = np.concatenate([x, np.eye(g)[groups]], axis=1).astype("float32")
    n_val = int(np.ceil(n * cfg.val_fraction))
    order = rng.permutation(n)
    val, train = order[:n_val], order[n_val:]
    return Dataset(
        task=task,
        train=Split(features[train], y[train], groups[train]),
        val=Split(features[val], y[val], groups[val]),
        group_scales=scales,
    )
