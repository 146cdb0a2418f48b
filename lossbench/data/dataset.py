"""The arrays an experiment trains on: a dataset's train, validation and test splits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossbench.config.schema import Task


@dataclass(frozen=True)
class Split:
    """One split: features `x` (n, f), targets `y` (n, ...), group ids and row ids (n,).

    `ids` are the rows' indices before the split: on the graph task, the node ids.
    """

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def spoil_targets(rng: np.random.Generator, y: np.ndarray, rate: float) -> np.ndarray:
    """A copy of `y` with about `rate` of its entries NaN, a tenth of those +inf instead
    (`data.nan_rate`: a loss's robustness to corrupt targets)."""
    y = y.copy()
    hit = rng.random(y.shape) < rate
    y[hit] = np.where(rng.random(int(hit.sum())) < 0.1, np.inf, np.nan)
    return y


@dataclass(frozen=True)
class Dataset:
    task: Task
    train: Split
    val: Split
    group_scales: np.ndarray
    test: Split | None = None  # held out (data.test_fraction): never trained on or selected by
    adjacency: np.ndarray | None = None  # graph task: (n_nodes, n_nodes), indexed by node id
    # Regression targets trained standardised: y = (original - target_mean) / target_std.
    target_mean: np.ndarray | None = None
    target_std: np.ndarray | None = None
    # Real data: which columns became features and targets, and the name of each group id and
    # class index (recorded in the run's summary.json).
    columns: dict[str, Any] = field(default_factory=dict)
    # The shape one sample's feature row stands for (data.input_shape; an .npz image array's);
    # None: a flat row.
    input_shape: tuple[int, ...] | None = None
    # Binary task: the rarer label of the training data (1 on a tie), whose recall is
    # `minority_recall`; synthetic data decide it from `data.positive_rate`.
    minority: int = 1

    def in_data_units(self, y: np.ndarray) -> np.ndarray:
        """Targets or predictions of the regression task in the data's own units."""
        if self.target_std is None or self.target_mean is None:
            return y
        return y * self.target_std + self.target_mean

    @property
    def n_groups(self) -> int:
        return len(self.group_scales)
