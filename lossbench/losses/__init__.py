"""lossbench's loss library: `keras.losses.Loss` subclasses written with `keras.ops`.

Use them in plain Keras like any built-in loss; `build_loss` maps a typed loss config (and the
experiment's data) to one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lossbench.config import ScaledConfig, base_config
from lossbench.data import N_BOX, Dataset
from lossbench.errors import ConfigError
from lossbench.losses.base import LossbenchLoss
from lossbench.losses.baselines import (
    ClassBalancedLoss,
    FocalLoss,
    GroupDROLoss,
    LogitAdjustedLoss,
    effective_number_weights,
)
from lossbench.losses.classification import (
    BinaryCrossentropy,
    TemperatureCrossentropy,
    ThresholdBinaryCrossentropy,
)
from lossbench.losses.context import ContextGraphLoss, ContextMaskLoss, mask_pattern
from lossbench.losses.multitask import MultiTaskLoss
from lossbench.losses.regression import GroupedDynamicLoss, GroupedScaleLoss, MeanSquaredError
from lossbench.losses.scaled import ScaledLoss
from lossbench.losses.weighted import (
    OutputWeightedLoss,
    RobustWeightedLoss,
    SampleWeightedLoss,
    inverse_frequency,
)

__all__ = [
    "BinaryCrossentropy",
    "ClassBalancedLoss",
    "ContextGraphLoss",
    "ContextMaskLoss",
    "FocalLoss",
    "GroupDROLoss",
    "GroupedDynamicLoss",
    "GroupedScaleLoss",
    "LogitAdjustedLoss",
    "LossContext",
    "LossbenchLoss",
    "MeanSquaredError",
    "MultiTaskLoss",
    "OutputWeightedLoss",
    "RobustWeightedLoss",
    "SampleWeightedLoss",
    "ScaledLoss",
    "TemperatureCrossentropy",
    "ThresholdBinaryCrossentropy",
    "build_loss",
    "load_array",
]


@dataclass(frozen=True)
class LossContext:
    """What a loss may take from the experiment besides its own config."""

    data: Dataset
    epsilon: float  # scale.epsilon
    n_outputs: int
    n_classes: int
    grid: tuple[int, int]


def load_array(path: str, key: str, shape: tuple[int, ...]) -> np.ndarray:
    """Read a NumPy array file safely (no pickles) and check its shape.

    Raises:
        ConfigError: naming `key` when the file is missing, unreadable, pickled or misshapen.
    """
    file = Path(path).expanduser()
    if file.suffix != ".npy":
        raise ConfigError(key, "the path of an .npy file", path)
    if not file.is_file():
        raise ConfigError(key, "an existing .npy file", f"{path} (no such file)")
    try:
        array = np.load(file, allow_pickle=False)
    except ValueError as error:  # object arrays need pickle, which is refused
        raise ConfigError(key, "a numeric .npy array (pickles are refused)", str(error)) from None
    except OSError as error:
        raise ConfigError(key, "a readable .npy file", f"{path} ({error})") from None
    if array.dtype.kind not in "biuf":
        raise ConfigError(key, "a numeric array", f"dtype {array.dtype}")
    if array.shape != shape:
        raise ConfigError(key, f"an array of shape {shape}", f"shape {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any():
        raise ConfigError(key, "finite values >= 0", "negative or non-finite values")
    return array


def _value(x: Any) -> Any:
    """Enum members from typed configs to their plain values."""
    return getattr(x, "value", x)


def _grouped(cfg: Any, ctx: LossContext) -> LossbenchLoss:
    scales = ctx.data.group_scales.tolist() if cfg.scales is None else list(cfg.scales)
    return GroupedScaleLoss(scales=scales, membership=_value(cfg.membership))


def _grouped_dynamic(cfg: Any, ctx: LossContext) -> LossbenchLoss:
    return GroupedDynamicLoss(
        num_groups=ctx.data.n_groups,
        epsilon=ctx.epsilon,
        statistic=_value(cfg.statistic),
        membership=_value(cfg.membership),
    )


def _context_mask(cfg: Any, ctx: LossContext, key: str = "loss.mask") -> LossbenchLoss:
    if cfg.mask.endswith(".npy"):
        mask = load_array(cfg.mask, key, ctx.grid)
    else:
        mask = mask_pattern(cfg.mask, ctx.grid, cfg.strength, cfg.mask_seed)
    return ContextMaskLoss(mask=mask)


def _context_graph(cfg: Any, ctx: LossContext, key: str = "loss.adjacency") -> LossbenchLoss:
    adjacency = ctx.data.adjacency
    if cfg.adjacency is not None:
        n = len(adjacency)
        adjacency = load_array(cfg.adjacency, key, (n, n))
    return ContextGraphLoss.from_adjacency(
        adjacency, graph_weight=cfg.graph_weight, epsilon=cfg.epsilon
    )


def _sample_weights(cfg: Any, ctx: LossContext) -> LossbenchLoss:
    by = _value(cfg.by)
    weights = cfg.weights
    if weights is None:
        train = ctx.data.train
        if by == "class":
            weights = inverse_frequency(train.y.reshape(-1).round(), 2)
        else:
            weights = inverse_frequency(train.groups, ctx.data.n_groups)
    base = BinaryCrossentropy() if cfg.base == "bce" else MeanSquaredError()
    return SampleWeightedLoss(base=base, weights=list(weights), by=by)


def _output_weights(cfg: Any, ctx: LossContext, robust: bool = False) -> LossbenchLoss:
    cls = RobustWeightedLoss if robust else OutputWeightedLoss
    weights = [1.0] * ctx.n_outputs if cfg.output_weights is None else list(cfg.output_weights)
    return cls(
        output_weights=weights,
        scheme=_value(cfg.scheme),
        group_scales=ctx.data.group_scales.tolist(),
        weight_seed=cfg.weight_seed,
    )


def _class_counts(ctx: LossContext) -> np.ndarray:
    """Negatives and positives in the training split."""
    return np.bincount(ctx.data.train.y.reshape(-1).round().astype(int), minlength=2)[:2]


def _class_balanced(cfg: Any, ctx: LossContext) -> LossbenchLoss:
    weights = effective_number_weights(_class_counts(ctx), cfg.beta)
    return ClassBalancedLoss(class_weights=weights.tolist(), gamma=cfg.gamma, beta=cfg.beta)


def _logit_adjusted(cfg: Any, ctx: LossContext) -> LossbenchLoss:
    counts = _class_counts(ctx)
    if (counts == 0).any():
        raise ConfigError("data.positive_rate", "training data with both classes", "one class")
    return LogitAdjustedLoss(priors=(counts / counts.sum()).tolist(), tau=cfg.tau)


def _scaled(cfg: ScaledConfig, ctx: LossContext) -> LossbenchLoss:
    base_cfg = base_config(cfg)
    return ScaledLoss(
        base=BUILDERS[base_cfg.name](base_cfg, ctx),
        factor=cfg.factor,
        schedule=_value(cfg.schedule),
        warmup_epochs=cfg.warmup_epochs,
        start_factor=cfg.start_factor,
        step_epoch=cfg.step_epoch,
        step_factor=cfg.step_factor,
    )


BUILDERS: dict[str, Callable[[Any, LossContext], LossbenchLoss]] = {
    "mse": lambda cfg, ctx: MeanSquaredError(),
    "bce": lambda cfg, ctx: BinaryCrossentropy(),
    "grouped": _grouped,
    "grouped_dynamic": _grouped_dynamic,
    "context_mask": _context_mask,
    "context_graph": _context_graph,
    "sample_weights": _sample_weights,
    "output_weights": _output_weights,
    "robust_weights": lambda cfg, ctx: _output_weights(cfg, ctx, robust=True),
    "threshold": lambda cfg, ctx: ThresholdBinaryCrossentropy(
        threshold=cfg.threshold, boost=cfg.boost, epsilon=cfg.epsilon
    ),
    "focal": lambda cfg, ctx: FocalLoss(gamma=cfg.gamma, alpha=cfg.alpha),
    "class_balanced": _class_balanced,
    "logit_adjusted": _logit_adjusted,
    "group_dro": lambda cfg, ctx: GroupDROLoss(
        num_groups=ctx.data.n_groups, step_size=cfg.step_size, membership=_value(cfg.membership)
    ),
    "temperature": lambda cfg, ctx: TemperatureCrossentropy(temperature=cfg.temperature),
    "multitask": lambda cfg, ctx: MultiTaskLoss(
        n_box=N_BOX,
        n_classes=ctx.n_classes,
        box_weight=cfg.box_weight,
        class_weight=cfg.class_weight,
        mode=_value(cfg.mode),
    ),
    "scaled": _scaled,
}


def build_loss(cfg: Any, ctx: LossContext) -> LossbenchLoss:
    """Build the loss named by `cfg.name` from its typed config and the experiment context."""
    return BUILDERS[cfg.name](cfg, ctx)
