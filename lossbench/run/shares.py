"""Where the gradient goes: each group's and each class's contribution to a step's gradient.

A step's gradient is ``g = sum_i (dL/dl_i) grad l_i`` over the batch's per-sample values l_i.
Unit k's (a group's, a class's) contribution is the same sum over k's samples only, ``g_k``; it
is defined for losses that couple samples too (group DRO, grouped_dynamic), since dL/dl_i
carries the coupling. The units of one kind partition the batch, so their contributions add up
to g, and their shares ``<g_k, g> / |g|^2`` add up to 1 (a negative share pulls against the
update). The runners compute ``|g_k|`` and ``<g_k, g>`` inside the compiled step
(`trainer.record_groups`); this module says which samples form which unit and writes the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lossbench.config.schema import Task
from lossbench.data.dataset import Dataset, Split
from lossbench.store import tables
from lossbench.store.records import StepRecords

GRAD_GROUPS = tables.GRAD_GROUPS
GRAD_GROUPS_COLUMNS = ["step", "by", "name", "grad_norm", "share", "samples"]
# The first and last tenth of training's recorded steps: "early" and "late" in summaries.
PHASE = 0.1


@dataclass(frozen=True)
class Units:
    """The units a run decomposes its gradient into: groups (data with more than one) and
    classes (classification), each with its name."""

    task: Task
    n_groups: int  # 0: the groups are not units
    n_classes: int  # 0: the classes are not units
    names: tuple[str, ...]

    @property
    def by(self) -> tuple[str, ...]:
        """Each unit's kind: ``group`` or ``class``."""
        return ("group",) * self.n_groups + ("class",) * self.n_classes

    def __len__(self) -> int:
        return self.n_groups + self.n_classes

    def membership(self, split: Split) -> np.ndarray:
        """(n, units) float32: 1 where a sample belongs to a unit (one group, one class)."""
        parts = []
        if self.n_groups:
            parts.append(np.eye(self.n_groups, dtype="float32")[split.groups])
        if self.n_classes:
            parts.append(np.eye(self.n_classes, dtype="float32")[class_ids(self.task, split.y)])
        return np.concatenate(parts, axis=1)


def class_ids(task: Task, y: np.ndarray) -> np.ndarray:
    """Each sample's class: the binary label (> 0.5), or the one-hot's index."""
    if task is Task.binary:
        return (np.asarray(y).reshape(len(y), -1)[:, 0] > 0.5).astype("int64")
    return np.argmax(y, axis=1)


def units_of(data: Dataset) -> Units:
    """The units of `data`: its groups when it has more than one, its classes on the binary and
    multi-class tasks (names from the data's own where it has them)."""
    n_groups = data.n_groups if data.n_groups > 1 else 0
    n_classes = 0
    if data.task is Task.binary:
        n_classes = 2
    elif data.task is Task.multiclass:
        n_classes = int(data.train.y.shape[1])
    group_names = _names(data.columns.get("groups"), n_groups)
    class_names = _names(data.columns.get("classes"), n_classes)
    return Units(data.task, n_groups, n_classes, (*group_names, *class_names))


def _names(given: Any, n: int) -> list[str]:
    """Names `given` by index (a dict or list), else the indices themselves."""
    if isinstance(given, dict):
        return [str(given.get(k, given.get(str(k), k))) for k in range(n)]
    if isinstance(given, list | tuple) and len(given) == n:
        return [str(v) for v in given]
    return [str(k) for k in range(n)]


def grad_groups_frame(records: StepRecords, units: Units) -> pd.DataFrame:
    """grad_groups.csv: one row per (recorded step, unit): its contribution's norm, its share
    of the step's gradient and its samples in the batch."""
    recorded = np.flatnonzero(np.isfinite(records.unit_samples).all(axis=1))
    n = len(units)
    return pd.DataFrame(
        {
            "step": np.repeat(recorded.astype("int64"), n),
            "by": np.tile(np.asarray(units.by, dtype=object), len(recorded)),
            "name": np.tile(np.asarray(units.names, dtype=object), len(recorded)),
            "grad_norm": records.unit_norm[recorded].reshape(-1),
            "share": records.unit_share[recorded].reshape(-1),
            "samples": records.unit_samples[recorded].reshape(-1).astype("int64"),
        }
    )[GRAD_GROUPS_COLUMNS]


def share_column(by: str, name: str, phase: str = "") -> str:
    """The summary's column of a unit's mean share (`phase`: "", "early" or "late")."""
    return f"share_{by}_{name}" + (f"_{phase}" if phase else "")


def mean_shares(records: StepRecords, units: Units) -> dict[str, float]:
    """Each unit's mean share over its recorded steps, and over the first and last tenth of
    them (early and late in training), as `share_column` names them."""
    recorded = np.flatnonzero(np.isfinite(records.unit_samples).all(axis=1))
    out: dict[str, float] = {}
    if not len(recorded):
        return out
    edge = max(1, int(np.ceil(PHASE * len(recorded))))
    phases = {"": recorded, "early": recorded[:edge], "late": recorded[-edge:]}
    for k, (by, name) in enumerate(zip(units.by, units.names, strict=True)):
        for phase, steps in phases.items():
            value = np.nanmean(records.unit_share[steps, k].astype("float64"))
            out[share_column(by, name, phase)] = float(value)
    return out


def recorded_shares(records: StepRecords, units: Units) -> tuple[pd.DataFrame, dict[str, float]]:
    """grad_groups.csv's frame, and the mean shares the summary reports."""
    return grad_groups_frame(records, units), mean_shares(records, units)
