"""What every lossbench loss shares: argument checks, a complete `get_config`, packed targets.

A lossbench loss is a plain `keras.losses.Loss`: `call(y_true, y_pred)` returns per-sample values
and Keras's `__call__` applies `sample_weight` and the reduction. Extras that must follow their
samples through shuffling and partial batches (group ids, say) travel as extra columns of `y_true`,
never as tensors captured when the loss is built.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import keras
import numpy as np
from keras import ops


def check_arg(name: str, value: Any, ok: bool, expected: str) -> None:
    """Raise a Keras-style ValueError naming the argument when `ok` is false."""
    if not ok:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected {expected}. Received: {name}={value!r}"
        )


def check_positive_finite(name: str, value: float, allow_zero: bool = False) -> None:
    """Check that a scalar argument is a finite number > 0 (or >= 0)."""
    ok = isinstance(value, int | float) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    check_arg(name, value, ok, "a finite number >= 0" if allow_zero else "a finite number > 0")


class LossbenchLoss(keras.losses.Loss):
    """Base class: subclasses set `config_args` (every constructor argument) and `call`.

    Subclasses that need per-sample extras override `pack_targets` (NumPy side, used by the
    trainer and by plain-Keras users) and read them back from `y_true` in `call`.
    """

    config_args: ClassVar[tuple[str, ...]] = ()

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({name: getattr(self, name) for name in self.config_args})
        return config

    def pack_targets(self, y: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """Return the `y_true` array this loss expects for targets `y` (and group ids)."""
        return np.asarray(y, dtype="float32")

    def effective_prediction(self, y_pred: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """The prediction that metrics should score (differs when the loss rescales outputs)."""
        return y_pred


def per_sample_mean(values: Any) -> Any:
    """Mean over every axis but the first: one value per sample."""
    if len(values.shape) <= 1:
        return values
    return ops.mean(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)
