"""The literature's baselines: focal, class-balanced, logit-adjusted losses and group DRO."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossbench import bounds
from lossbench.bounds import bounded
from lossbench.config.schema import DataConfig, LossConfig, Problem, Task
from lossbench.errors import ConfigError
from lossbench.variants.registry import BuildContext, register_variant
from lossbench.variants.regression import Membership


def class_counts(ctx: BuildContext) -> np.ndarray:
    """Negatives and positives in the training split."""
    return np.bincount(ctx.data.train.y.reshape(-1).round().astype(int), minlength=2)[:2]


@register_variant(
    "focal",
    task=Task.binary,
    description=(
        "Focal loss (Lin et al. 2017), -alpha_t (1 - p_t)^gamma log p_t; down-weights easy samples."
    ),
)
@dataclass
class FocalConfig(LossConfig):
    gamma: float = bounded(2.0, bounds.GAMMA)
    alpha: float | None = bounded(0.25, bounds.ALPHA)  # positive-class weight; null: no weighting

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import FocalLoss

        return FocalLoss(gamma=self.gamma, alpha=self.alpha)


@register_variant(
    "class_balanced",
    task=Task.binary,
    description=(
        "Class-balanced BCE (Cui et al. 2019), class weights from the effective number of samples."
    ),
)
@dataclass
class ClassBalancedConfig(LossConfig):
    beta: float = bounded(0.999, bounds.BETA)  # effective-number parameter; 0: plain BCE
    gamma: float = bounded(0.0, bounds.GAMMA)  # > 0: the focal form

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import ClassBalancedLoss, effective_number_weights

        weights = effective_number_weights(class_counts(ctx), self.beta)
        return ClassBalancedLoss(class_weights=weights.tolist(), gamma=self.gamma, beta=self.beta)


@register_variant(
    "logit_adjusted",
    task=Task.binary,
    description=(
        "Logit-adjusted BCE (Menon et al. 2021), the logit shifted by tau * log prior ratio."
    ),
)
@dataclass
class LogitAdjustedConfig(LossConfig):
    tau: float = bounded(1.0, bounds.TAU)  # scaling of the log-prior shift; 0: plain BCE

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import LogitAdjustedLoss

        counts = class_counts(ctx)
        if (counts == 0).any():
            raise ConfigError("data.positive_rate", "training data with both classes", "one class")
        return LogitAdjustedLoss(priors=(counts / counts.sum()).tolist(), tau=self.tau)


# The tasks group DRO trains on, and the per-sample loss it weights on each.
GROUP_DRO_TASKS = {Task.grouped: "mse", Task.binary: "bce", Task.multiclass: "ce"}


@register_variant(
    "group_dro",
    task=Task.grouped,
    description=(
        "Worst-group objective after group DRO (Sagawa et al. 2020), softmax weights over "
        "batch groups; loss.task=binary or multiclass for classification."
    ),
)
@dataclass
class GroupDROConfig(LossConfig):
    # The inverse temperature over group losses; 0: the group-balanced mean.
    step_size: float = bounded(1.0, bounds.STEP_SIZE)
    membership: Membership = Membership.index
    # grouped (squared error), binary (cross-entropy of probabilities) or multiclass (of logits)
    task: Task = Task.grouped

    def training_task(self) -> Task:
        return self.task

    def check(self, data: DataConfig) -> Iterator[Problem]:
        if self.task not in GROUP_DRO_TASKS:
            tasks = ", ".join(t.value for t in GROUP_DRO_TASKS)
            yield "task", f"one of {tasks}", self.task.value

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import GroupDROLoss

        return GroupDROLoss(
            num_groups=ctx.data.n_groups,
            step_size=self.step_size,
            membership=self.membership.value,
            sample_loss=GROUP_DRO_TASKS[self.task],
        )
