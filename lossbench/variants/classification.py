"""Classification variants: plain BCE, threshold-boosted BCE, softmax temperature."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lossbench import bounds
from lossbench.bounds import bounded
from lossbench.config.schema import LossConfig, Task
from lossbench.variants.registry import BuildContext, register_variant


@register_variant(
    "bce",
    task=Task.binary,
    description="Binary cross-entropy on probabilities; the imbalanced-classification baseline.",
)
@dataclass
class BCEConfig(LossConfig):
    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import BinaryCrossentropy

        return BinaryCrossentropy()


@register_variant(
    "threshold",
    task=Task.binary,
    description=(
        "Binary cross-entropy on probabilities boosted below a threshold (p + boost * (1 - p))."
    ),
)
@dataclass
class ThresholdConfig(LossConfig):
    threshold: float = bounded(0.4, bounds.THRESHOLD)
    boost: float = bounded(0.2, bounds.BOOST)
    epsilon: float = bounded(1e-7, bounds.CLIP_EPSILON)

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import ThresholdBinaryCrossentropy

        return ThresholdBinaryCrossentropy(
            threshold=self.threshold, boost=self.boost, epsilon=self.epsilon
        )


@register_variant(
    "temperature",
    task=Task.multiclass,
    description=(
        "Categorical cross-entropy from logits divided by a temperature, on imbalanced classes."
    ),
)
@dataclass
class TemperatureConfig(LossConfig):
    temperature: float = bounded(2.0, bounds.TEMPERATURE)

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import TemperatureCrossentropy

        return TemperatureCrossentropy(temperature=self.temperature)
