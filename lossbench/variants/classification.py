"""Classification variants: plain BCE, threshold-boosted BCE, softmax temperature."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lossbench import bounds
from lossbench.config.checks import in_range
from lossbench.config.schema import DataConfig, LossConfig, Problem, Task
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
    threshold: float = 0.4
    boost: float = 0.2
    epsilon: float = 1e-7

    def check(self, data: DataConfig) -> Iterator[Problem]:
        yield from in_range("threshold", self.threshold, bound=bounds.THRESHOLD)
        yield from in_range("boost", self.boost, bound=bounds.BOOST)
        yield from in_range("epsilon", self.epsilon, bound=bounds.CLIP_EPSILON)

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
    temperature: float = 2.0

    def check(self, data: DataConfig) -> Iterator[Problem]:
        yield from in_range("temperature", self.temperature, bound=bounds.TEMPERATURE)

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import TemperatureCrossentropy

        return TemperatureCrossentropy(temperature=self.temperature)
