"""Scoring a run after each epoch, and keeping what the selected epoch answers.

After every epoch `Evaluation` scores the validation split (the row epochs.csv gets). For the
epoch `trainer.select` picks (`last`, or the best validation value of a metric) it keeps that
row, the held-out test split's metrics at that epoch, and the predictions behind both, which the
run writes to predictions.parquet. The test split is scored only for a newly selected epoch and
never takes part in choosing it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossbench.config.schema import Task
from lossbench.data.dataset import Dataset, Split
from lossbench.run.experiment import Experiment
from lossbench.run.metrics import lower_is_better, softmax, task_metrics


@dataclass
class Selected:
    """The selected epoch: its index, its validation row, and per split its prediction
    columns (`prediction_columns`)."""

    epoch: int
    row: dict[str, float]
    predictions: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    test_metrics: dict[str, float] | None = None


class Evaluation:
    """The per-epoch evaluator of one experiment (callable with a runner), and its selection."""

    def __init__(self, exp: Experiment) -> None:
        self.exp = exp
        self.metric = exp.select_metric
        self.selected: Selected | None = None
        self._epochs = 0
        data, loss = exp.data, exp.loss
        self._val_targets = loss.pack_targets(data.val.y, exp.extra(data.val))

    def __call__(self, runner: Any) -> dict[str, float]:
        """Score the validation split; keep this epoch when the selection prefers it."""
        import keras

        exp, data, loss = self.exp, self.exp.data, self.exp.loss
        pred = runner.predict(data.val.x)
        row = {"val_loss": float(loss(self._val_targets, pred))}
        parts = loss.components(self._val_targets, pred)
        for name, part in zip(loss.component_names, parts, strict=True):
            row[f"val_loss_{name}"] = float(keras.ops.mean(part))
        scored = np.asarray(loss.effective_prediction(pred, exp.extra(data.val)))
        row.update(task_metrics(data, data.val, scored))
        epoch, self._epochs = self._epochs, self._epochs + 1
        if self._prefers(row):
            # Its columns are made now, while the epoch's predictions are at hand, so that the
            # run's end only writes them.
            self.selected = Selected(epoch, row)
            self.selected.predictions["val"] = prediction_columns(data, "val", data.val, scored)
            if data.test is not None:
                test = self._scored(runner, data.test)
                self.selected.predictions["test"] = prediction_columns(
                    data, "test", data.test, test
                )
                self.selected.test_metrics = task_metrics(data, data.test, test)
        return row

    def _prefers(self, row: dict[str, float]) -> bool:
        """Last: every epoch. Best: a finite value better than the selected one (ties keep the
        earlier epoch); the first epoch is selected whatever its value."""
        if self.metric is None or self.selected is None:
            return True
        new, old = row[self.metric], self.selected.row[self.metric]
        if not math.isfinite(new):
            return False
        if not math.isfinite(old):
            return True
        return new < old if lower_is_better(self.metric) else new > old

    def _scored(self, runner: Any, split: Split) -> np.ndarray:
        pred = runner.predict(split.x)
        return np.asarray(self.exp.loss.effective_prediction(pred, self.exp.extra(split)))

    def predictions(self) -> dict[str, np.ndarray] | None:
        """The selected epoch's prediction columns for every scored split (None before one)."""
        if self.selected is None:
            return None
        frames = list(self.selected.predictions.values())
        return {key: np.concatenate([f[key] for f in frames]) for key in frames[0]}


def prediction_columns(data: Dataset, name: str, split: Any, pred: np.ndarray) -> dict[str, Any]:
    """predictions.parquet's columns for one split: `split`, `index` (the row's id in the data),
    `y_true` and `y_pred` (one column each, or `_0`, `_1`, ... per output), and `group` when the
    data has groups. Binary: the label and P(y=1); multiclass: the class index and one
    probability per class; regression: targets and predictions in the data's units."""
    n = len(split)
    out: dict[str, Any] = {"split": np.full(n, name, dtype=object), "index": split.ids}
    y, p = np.asarray(split.y), np.asarray(pred)
    if data.task is Task.binary:
        out["y_true"], out["y_pred"] = y.reshape(-1).round().astype("int64"), p.reshape(-1)
    elif data.task is Task.multiclass:
        out["y_true"] = y.argmax(axis=1).astype("int64")
        out.update({f"y_pred_{k}": col for k, col in enumerate(softmax(p).T)})
    else:
        if data.task is Task.grouped:
            y, p = data.in_data_units(y), data.in_data_units(p)
        for side, values in (("y_true", y.reshape(n, -1)), ("y_pred", p.reshape(n, -1))):
            if values.shape[1] == 1:
                out[side] = values[:, 0]
            else:
                out.update({f"{side}_{k}": col for k, col in enumerate(values.T)})
    if data.n_groups > 1:
        out["group"] = split.groups
    return out
