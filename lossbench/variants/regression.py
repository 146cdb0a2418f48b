"""Regression variants: plain MSE and group-aware scaling of the grouped task."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lossbench import bounds
from lossbench.bounds import bounded
from lossbench.config.schema import DataConfig, LossConfig, Problem, SyntheticData, Task
from lossbench.errors import ConfigError
from lossbench.variants.registry import BuildContext, register_variant


class Membership(StrEnum):
    """How group membership travels with the targets: an id column or one-hot columns."""

    index = "index"
    onehot = "onehot"


class GroupStatistic(StrEnum):
    rms = "rms"
    mean_abs = "mean_abs"


@register_variant(
    "mse", task=Task.grouped, description="Mean squared error; the grouped-regression baseline."
)
@dataclass
class MSEConfig(LossConfig):
    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import MeanSquaredError

        return MeanSquaredError()


@register_variant(
    "grouped",
    task=Task.grouped,
    description="Predictions scaled by a fixed per-group factor before a squared error.",
)
@dataclass
class GroupedConfig(LossConfig):
    # None: the data's own group target scales (the oracle); else one scale per group.
    scales: list[float] | None = bounded(None, bounds.GROUP_SCALE, each=True)
    membership: Membership = Membership.index

    def check(self, data: DataConfig) -> Iterator[Problem]:
        # Real data's groups are known once it is read: `build` checks the length then.
        if (
            self.scales is not None
            and isinstance(data, SyntheticData)
            and len(self.scales) != data.n_groups
        ):
            yield (
                "scales",
                f"a list of data.n_groups={data.n_groups} numbers",
                f"{len(self.scales)} numbers",
            )

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import GroupedScaleLoss

        if self.scales is not None and len(self.scales) != ctx.data.n_groups:
            raise ConfigError(
                ctx.key("scales"),
                f"a list of {ctx.data.n_groups} numbers (one per group of the data)",
                list(self.scales),
            )
        scales = ctx.data.group_scales.tolist() if self.scales is None else list(self.scales)
        return GroupedScaleLoss(scales=scales, membership=self.membership.value)


@register_variant(
    "grouped_dynamic",
    task=Task.grouped,
    description=(
        "Residuals divided by each group's target magnitude in the batch (scale.epsilon guards it)."
    ),
)
@dataclass
class GroupedDynamicConfig(LossConfig):
    reads = ("scale.epsilon",)
    statistic: GroupStatistic = GroupStatistic.rms
    membership: Membership = Membership.index

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import GroupedDynamicLoss

        return GroupedDynamicLoss(
            num_groups=ctx.data.n_groups,
            epsilon=ctx.epsilon,
            statistic=self.statistic.value,
            membership=self.membership.value,
        )
