"""Multi-task variant: box regression plus classification with weighted task losses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lossbench import bounds
from lossbench.bounds import bounded
from lossbench.config.schema import LossConfig, Task
from lossbench.variants.registry import BuildContext, register_variant


class MultitaskMode(StrEnum):
    loss_weighting = "loss_weighting"
    prediction_scaling = "prediction_scaling"


@register_variant(
    "multitask",
    task=Task.multitask,
    description="Box regression plus classification (two heads) with weighted task losses.",
)
@dataclass
class MultitaskConfig(LossConfig):
    box_weight: float = bounded(1.0, bounds.TASK_WEIGHT)
    class_weight: float = bounded(1.0, bounds.TASK_WEIGHT)
    mode: MultitaskMode = MultitaskMode.loss_weighting

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.data.synthetic import N_BOX
        from lossbench.losses import MultiTaskLoss

        return MultiTaskLoss(
            n_box=N_BOX,
            n_classes=ctx.n_classes,
            box_weight=self.box_weight,
            class_weight=self.class_weight,
            mode=self.mode.value,
        )
