"""Multi-task variant: box regression plus classification with weighted task losses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lossbench import bounds
from lossbench.config.checks import in_range
from lossbench.config.schema import DataConfig, LossConfig, Problem, Task
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
    box_weight: float = 1.0
    class_weight: float = 1.0
    mode: MultitaskMode = MultitaskMode.loss_weighting

    def check(self, data: DataConfig) -> Iterator[Problem]:
        yield from in_range("box_weight", self.box_weight, bound=bounds.TASK_WEIGHT)
        yield from in_range("class_weight", self.class_weight, bound=bounds.TASK_WEIGHT)

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
