"""The inputs `lossbench-check` feeds a loss: NumPy only, deterministic, one layout per task.

Targets are raw (the task's `y`) with per-sample extra ids (group or node ids); the loss packs
them itself (`pack_targets`), as in training. Group ids are sorted in the standard batch, so that
a loss which assumes sorted ids fails only the check that shuffles (`order-invariance`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

BATCH = 64  # lossbench's default batch size
N_GROUPS = 4
N_OUTPUTS = 3
N_CLASSES = 4
GRID = (4, 5)
N_BOX = 4


@dataclass(frozen=True)
class Batch:
    """One batch: raw targets, predictions and per-sample extra ids."""

    y: np.ndarray
    pred: np.ndarray
    extra: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: np.ndarray) -> Batch:
        return Batch(self.y[rows], self.pred[rows], self.extra[rows])


def _f32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype="float32")


def standard(task: str, size: int = BATCH, seed: int = 0, n_nodes: int = 0) -> Batch:
    """A typical batch of `size` samples for `task`, with sorted group ids (or node ids)."""
    rng = np.random.default_rng([seed, size])
    groups = np.sort(rng.integers(0, N_GROUPS, size=size))
    groups[: min(size, N_GROUPS)] = np.arange(min(size, N_GROUPS))  # every group present
    groups = np.sort(groups)
    if task == "binary":
        y = (rng.random((size, 1)) < 0.3).astype("float64")
        y[0, 0], y[-1, 0] = 0.0, 1.0
        pred = rng.uniform(0.05, 0.95, (size, 1))
    elif task == "multiclass":
        y = np.eye(N_CLASSES)[rng.integers(0, N_CLASSES, size)]
        pred = 2.0 * rng.normal(size=(size, N_CLASSES))
    elif task == "grouped":
        scale = np.array([0.5, 1.0, 2.0, 4.0])[groups][:, None]
        y = scale * rng.normal(size=(size, N_OUTPUTS))
        pred = rng.normal(size=(size, N_OUTPUTS))
    elif task == "grid":
        y = rng.random((size, *GRID))
        pred = rng.random((size, *GRID))
    elif task == "graph":
        y = rng.normal(size=(size, N_OUTPUTS))
        pred = rng.normal(size=(size, N_OUTPUTS))
        groups = np.sort(rng.choice(max(n_nodes, size), size=size, replace=False))
    elif task == "multitask":
        labels = np.eye(N_CLASSES)[rng.integers(0, N_CLASSES, size)]
        y = np.concatenate([rng.random((size, N_BOX)), labels], axis=1)
        pred = np.concatenate([rng.random((size, N_BOX)), rng.normal(size=(size, N_CLASSES))], 1)
    else:
        raise ValueError(f"no inputs for task {task!r}")
    return Batch(_f32(y), _f32(pred), groups.astype("int32"))


def extremes(task: str, n_nodes: int = 0, size: int = BATCH) -> dict[str, Batch]:
    """Valid but extreme batches, by name: where unguarded logs, divisions and square roots
    turn into NaN or infinite values and gradients."""
    base = standard(task, size=size, n_nodes=n_nodes)
    y, pred, ids = base.y, base.pred, base.extra
    cases = {
        "perfect predictions": replace(base, pred=y.copy()),
        "all-zero targets": replace(base, y=np.zeros_like(y)),
    }
    if task == "binary":
        cases["fully wrong saturated predictions"] = replace(base, pred=1.0 - y)
        exact = np.where(np.arange(len(y))[:, None] % 2 == 0, 0.0, 1.0).astype("float32")
        cases["exact 0 and 1 probabilities"] = replace(base, pred=exact)
        cases["one-class batch"] = replace(base, y=np.ones_like(y))
    elif task == "multiclass":
        cases["large logits, right"] = replace(base, pred=_f32(1e4 * y))
        cases["large logits, wrong"] = replace(base, pred=_f32(1e4 * np.roll(y, 1, axis=1)))
        cases["one-class batch"] = replace(base, y=np.tile(np.eye(N_CLASSES)[:1], (len(y), 1)))
        cases["all-zero targets"] = replace(base, y=np.zeros_like(y))
    elif task == "grouped":
        zero_group = y.copy()
        zero_group[ids == 0] = 0.0
        cases["all-zero targets within one group"] = replace(base, y=zero_group)
        cases["a group absent from the batch"] = replace(base, extra=np.where(ids == 2, 3, ids))
        cases["one-group batch"] = replace(base, extra=np.full_like(ids, 1))
        cases["zero predictions"] = replace(base, pred=np.zeros_like(pred))
    elif task in ("graph", "grid", "multitask"):
        cases["zero predictions"] = replace(base, pred=np.zeros_like(pred))
    return cases


def replace_rows(batch: Batch, rows: np.ndarray, other: Batch) -> Batch:
    """`batch` with the targets and predictions of `rows` taken from `other` (ids unchanged)."""

    def mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(rows.reshape(-1, *([1] * (a.ndim - 1))), b, a).astype(a.dtype)

    return Batch(mix(batch.y, other.y), mix(batch.pred, other.pred), batch.extra)
