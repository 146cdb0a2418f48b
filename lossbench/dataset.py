"""The arrays an experiment trains on: a dataset's train and validation splits."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Dataset:
    task: Task
    train: Split
    val: Split
    group_scales: np.ndarray
    adjacency: np.ndarray | None = None  # graph task: (n_nodes, n_nodes), indexed by node id

    @property
    def n_groups(self) -> int:
        return len(self.group_scales)
