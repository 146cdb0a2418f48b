"""What every lossbench loss shares: argument checks, a complete `get_config`, packed targets.

A lossbench loss is a plain `keras.losses.Loss`: `call(y_true, y_pred)` returns per-sample values
and Keras's `__call__` applies `sample_weight` and the reduction. Extras that must follow their
samples through shuffling and partial batches (group ids, say) travel as extra columns of `y_true`,
never as tensors captured when the loss is built.
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import numpy as np
from keras import ops


class LossbenchLoss(keras.losses.Loss):
    """Base class: subclasses set `config_args` (every constructor argument) and `call`.

    Hooks with defaults that subclasses override where they need to:
    - `pack_targets`: the `y_true` array the loss expects (NumPy side; extras such as group or
      node ids become extra columns).
    - `component_names` / `call_with_components`: per-sample parts (e.g. one per task) that the
      trainer records as their own columns.
    - `scheduled` / `schedule_multiplier` / `step_columns`: a factor that changes during
      training, applied by the trainer, and the columns it adds to steps.csv.
    - `effective_prediction`: what metrics should score when the loss transforms outputs.
    """

    config_args: ClassVar[tuple[str, ...]] = ()
    component_names: tuple[str, ...] = ()
    # Which other samples of the batch a sample's value may depend on, by design: "none", its
    # "group" (statistics of its group in the batch), or the whole "batch". lossbench-check's
    # batch-independence check holds the loss to it.
    batch_coupling: ClassVar[str] = "none"

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({name: getattr(self, name) for name in self.config_args})
        return config

    def pack_targets(self, y: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """Return the `y_true` array for targets `y` and the per-sample `extra` ids it needs."""
        return np.asarray(y, dtype="float32")

    def call_with_components(self, y_true: Any, y_pred: Any) -> tuple[Any, list[Any]]:
        """Per-sample values and, computed on the way, the per-sample value of each component.

        A loss with parts overrides this (and its `call` returns the first element), so the
        trainer gets value and parts from one computation inside its compiled step.
        """
        return self.call(y_true, y_pred), []

    def components(self, y_true: Any, y_pred: Any) -> list[Any]:
        """Per-sample values of each named component (empty: the loss has none)."""
        return self.call_with_components(y_true, y_pred)[1]

    def value_and_components(
        self, y_true: Any, y_pred: Any, sample_weight: Any = None
    ) -> tuple[Any, list[Any]]:
        """The reduced loss, exactly as `__call__` gives it, and the per-sample components."""
        if not self.component_names:
            return self(y_true, y_pred, sample_weight=sample_weight), []
        values, parts = self.call_with_components(y_true, y_pred)
        return self.reduce(values, sample_weight), parts

    def sample_values(self, y_true: Any, y_pred: Any) -> Any:
        """The per-sample values `__call__` weights and reduces (inputs in the loss's dtype, as
        `__call__` converts them)."""
        y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        return self.call_with_components(y_true, y_pred)[0]

    def reduce(self, values: Any, sample_weight: Any = None) -> Any:
        """Keras's weighting and reduction of per-sample `values`, as `__call__` applies them:
        ``self.reduce(self.sample_values(t, p))`` is ``self(t, p)``."""
        reduction = _Reduction(name=self.name, reduction=self.reduction, dtype=self.dtype)
        return reduction(values, values, sample_weight=sample_weight)

    @property
    def scheduled(self) -> bool:
        """Whether `schedule_multiplier` changes during training."""
        return False

    def step_columns(self, multiplier: np.ndarray) -> dict[str, np.ndarray]:
        """Extra steps.csv columns from the per-step schedule multipliers (none by default)."""
        return {}

    def schedule_multiplier(self, epoch: float) -> float:
        """Factor in effect at fractional `epoch` (1: no schedule)."""
        return 1.0

    def effective_prediction(self, y_pred: np.ndarray, extra: np.ndarray) -> np.ndarray:
        """The prediction that metrics should score (differs when the loss rescales outputs)."""
        return y_pred


class _Reduction(keras.losses.Loss):
    """Keras's own weighting and reduction of per-sample values, through its public `__call__`:
    `call` hands back the values it is given as `y_pred`."""

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return y_pred


def serialize_loss(loss: keras.losses.Loss) -> dict[str, Any]:
    """A nested loss as a config dict (for wrappers' `get_config`)."""
    return keras.saving.serialize_keras_object(loss)


def deserialize_loss(loss: keras.losses.Loss | dict[str, Any]) -> keras.losses.Loss:
    """Accept a loss or its serialized config (what `from_config` hands a wrapper)."""
    if isinstance(loss, keras.losses.Loss):
        return loss
    return keras.saving.deserialize_keras_object(loss)


def safe_norm(x: Any, axis: int, floor: float) -> Any:
    """L2 norm with a floor, finite with finite gradients at zero vectors."""
    return ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), floor**2))


def per_sample_mean(values: Any) -> Any:
    """Mean over every axis but the first: one value per sample."""
    if len(values.shape) <= 1:
        return values
    return ops.mean(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)
