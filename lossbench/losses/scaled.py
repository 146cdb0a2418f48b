"""A loss times a constant factor, or times a schedule that changes during training."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from lossbench import bounds
from lossbench.bounds import check_arg
from lossbench.losses.base import (
    LossbenchLoss,
    deserialize_loss,
    serialize_loss,
)

SCHEDULES = ("constant", "warmup", "step")


@keras.saving.register_keras_serializable(package="lossbench")
class ScaledLoss(LossbenchLoss):
    """``factor * base`` per sample, with an optional schedule on top.

    `call` applies the constant `factor`, so the loss works (and saves and loads: the base is
    serialized with it) in plain Keras. The schedule is a multiplier of the training progress,
    `schedule_multiplier(epoch)`, that lossbench's trainer evaluates on the host for every step
    and feeds into the compiled program as an input, so the compiled step sees every new value on
    every backend (a Python float would be frozen into the program, and a variable held only by
    the loss is ignored under JAX's jit):

    - ``constant``: 1;
    - ``warmup``: linear from `start_factor` to 1 over the first `warmup_epochs` epochs;
    - ``step``: 1 before epoch `step_epoch`, `step_factor` from then on.

    Args:
        base: the loss to scale (or its serialized config).
        factor: constant factor > 0.
        schedule: ``"constant"``, ``"warmup"`` or ``"step"``.
        warmup_epochs, start_factor, step_epoch, step_factor: the schedule's parameters.
    """

    config_args = (
        "factor",
        "schedule",
        "warmup_epochs",
        "start_factor",
        "step_epoch",
        "step_factor",
    )

    def __init__(
        self,
        base: Any,
        factor: float = 1.0,
        schedule: str = "constant",
        warmup_epochs: float = 1.0,
        start_factor: float = 0.0,
        step_epoch: int = 1,
        step_factor: float = 0.1,
        name: str = "scaled",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.base = deserialize_loss(base)
        self.batch_coupling = getattr(self.base, "batch_coupling", "none")
        bounds.FACTOR.check("factor", factor)
        check_arg("schedule", schedule, schedule in SCHEDULES, f"one of {', '.join(SCHEDULES)}")
        bounds.WARMUP_EPOCHS.check("warmup_epochs", warmup_epochs)
        bounds.START_FACTOR.check("start_factor", start_factor)
        bounds.STEP_EPOCH.check("step_epoch", step_epoch)
        bounds.STEP_FACTOR.check("step_factor", step_factor)
        self.factor, self.schedule = float(factor), schedule
        self.warmup_epochs, self.start_factor = float(warmup_epochs), float(start_factor)
        self.step_epoch, self.step_factor = step_epoch, float(step_factor)
        self.component_names = getattr(self.base, "component_names", ())

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "base": serialize_loss(self.base)}

    def schedule_multiplier(self, epoch: float) -> float:
        if self.schedule == "warmup":
            progress = float(np.clip(epoch / self.warmup_epochs, 0.0, 1.0))
            return self.start_factor + (1.0 - self.start_factor) * progress
        if self.schedule == "step":
            return self.step_factor if epoch >= self.step_epoch else 1.0
        return 1.0

    def pack_targets(self, y: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        return self.base.pack_targets(y, extra)

    @property
    def scheduled(self) -> bool:
        return self.schedule != "constant"

    def step_columns(self, multiplier: np.ndarray) -> dict[str, np.ndarray]:
        """The scale in effect at each step: the factor times the schedule's multiplier."""
        return {"scale": self.factor * multiplier}

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return self.factor * self.base.call(y_true, y_pred)

    def call_with_components(self, y_true: Any, y_pred: Any) -> tuple[Any, list[Any]]:
        values, parts = self.base.call_with_components(y_true, y_pred)
        return self.factor * values, parts

    def effective_prediction(self, y_pred: np.ndarray, extra: np.ndarray) -> np.ndarray:
        return self.base.effective_prediction(y_pred, extra)
