"""lossbench's loss library: `keras.losses.Loss` subclasses written with `keras.ops`.

Use them in plain Keras like any built-in loss; `build_loss` maps a typed loss config to one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossbench.losses.base import LossbenchLoss
from lossbench.losses.classification import BinaryCrossentropy
from lossbench.losses.regression import GroupedDynamicLoss, GroupedScaleLoss, MeanSquaredError

__all__ = [
    "BinaryCrossentropy",
    "GroupedDynamicLoss",
    "GroupedScaleLoss",
    "LossContext",
    "LossbenchLoss",
    "MeanSquaredError",
    "build_loss",
]


@dataclass(frozen=True)
class LossContext:
    """What a loss may take from the experiment besides its own config."""

    n_groups: int
    group_scales: np.ndarray
    epsilon: float


def _grouped(cfg: Any, ctx: LossContext) -> LossbenchLoss:
    scales = ctx.group_scales.tolist() if cfg.scales is None else list(cfg.scales)
    return GroupedScaleLoss(scales=scales, membership=_value(cfg.membership))


def _grouped_dynamic(cfg: Any, ctx: LossContext) -> LossbenchLoss:
    return GroupedDynamicLoss(
        num_groups=ctx.n_groups,
        epsilon=ctx.epsilon,
        statistic=_value(cfg.statistic),
        membership=_value(cfg.membership),
    )


def _value(x: Any) -> Any:
    """Enum members from typed configs to their plain values."""
    return getattr(x, "value", x)


BUILDERS: dict[str, Callable[[Any, LossContext], LossbenchLoss]] = {
    "mse": lambda cfg, ctx: MeanSquaredError(),
    "bce": lambda cfg, ctx: BinaryCrossentropy(),
    "grouped": _grouped,
    "grouped_dynamic": _grouped_dynamic,
}


def build_loss(cfg: Any, ctx: LossContext) -> LossbenchLoss:
    """Build the loss named by `cfg.name` from its typed config and the experiment context."""
    return BUILDERS[cfg.name](cfg, ctx)
