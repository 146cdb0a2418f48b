"""Weighted variants: per-sample weights by class or group, per-output weights, NaN/Inf-robust."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lossbench import bounds
from lossbench.bounds import bounded
from lossbench.config.checks import one_of
from lossbench.config.schema import DataConfig, LossConfig, Problem, SyntheticData, Task
from lossbench.errors import ConfigError
from lossbench.variants.registry import BuildContext, get_variant, register_variant

# What a per-sample weight is looked up by. OmegaConf matches enum members by name, and `class`
# is a keyword, hence the functional form.
WeightBy = StrEnum("WeightBy", [("class", "class"), ("group", "group")])

SAMPLE_WEIGHT_BASES = ("bce", "mse")


class OutputWeightScheme(StrEnum):
    """How each sample's per-output weights are made from the per-output base weights."""

    uniform = "uniform"
    inverse_group_scale = "inverse_group_scale"
    random = "random"


def weights_problems(key: str, weights: Any, size: int, what: str) -> Iterator[Problem]:
    """A list of `size` weights, not all zero (None: the default weights); each weight's bound
    is its field's (`bounds.WEIGHT`)."""
    if weights is None:
        return
    if len(weights) != size:
        yield key, f"a list of {size} numbers ({what})", f"{len(weights)} numbers"
        return
    if all(w == 0 for w in weights):  # a negative weight is its bound's to name
        yield key, "numbers >= 0, not all zero", list(weights)


@register_variant(
    "sample_weights",
    description=(
        "A base loss with per-sample weights by class or group (inverse frequency or given)."
    ),
)
@dataclass
class SampleWeightsConfig(LossConfig):
    base: str = "bce"
    by: WeightBy = WeightBy["class"]
    # null: inverse frequency in the training split; else one weight per class or group.
    weights: list[float] | None = bounded(None, bounds.WEIGHT, each=True)

    def training_task(self) -> Task:
        return Task.binary if self.base == "bce" else Task.grouped

    def check(self, data: DataConfig) -> Iterator[Problem]:
        if self.base not in SAMPLE_WEIGHT_BASES:
            yield from one_of("base", self.base, SAMPLE_WEIGHT_BASES)
        elif self.by is WeightBy["class"] and self.base != "bce":
            yield "by", "group (classes exist only for base bce)", self.by.value
        elif self.by is WeightBy["class"]:
            yield from weights_problems("weights", self.weights, 2, "one per class")
        elif isinstance(data, SyntheticData):  # real data's groups are checked in `build`
            yield from weights_problems("weights", self.weights, data.n_groups, "groups")

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import SampleWeightedLoss
        from lossbench.losses.weighted import inverse_frequency

        weights = self.weights
        if weights is not None and self.by is WeightBy["group"]:
            for problem in weights_problems(
                ctx.key("weights"), weights, ctx.data.n_groups, "groups"
            ):
                raise ConfigError(*problem)
        if weights is None:
            train = ctx.data.train
            if self.by is WeightBy["class"]:
                weights = inverse_frequency(train.y.reshape(-1).round(), 2)
            else:
                weights = inverse_frequency(train.groups, ctx.data.n_groups)
        base_schema = get_variant(self.base)
        assert base_schema is not None  # checked by `check`
        base = base_schema(name=self.base).build(ctx.nested("base"))
        return SampleWeightedLoss(base=base, weights=list(weights), by=self.by.value)


@register_variant(
    "output_weights",
    task=Task.grouped,
    description="Squared error with a weight per sample and per output.",
)
@dataclass
class OutputWeightsConfig(LossConfig):
    # null: all ones; else one base weight per output.
    output_weights: list[float] | None = bounded(None, bounds.WEIGHT, each=True)
    scheme: OutputWeightScheme = OutputWeightScheme.inverse_group_scale
    weight_seed: int = 0

    def check(self, data: DataConfig) -> Iterator[Problem]:
        if isinstance(data, SyntheticData):  # real data's outputs are checked in `build`
            yield from weights_problems(
                "output_weights", self.output_weights, data.n_outputs, "one per output"
            )

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import OutputWeightedLoss

        return self._build(OutputWeightedLoss, ctx)

    def _build(self, cls: Any, ctx: BuildContext) -> Any:
        key = ctx.key("output_weights")
        for problem in weights_problems(key, self.output_weights, ctx.n_outputs, "one per output"):
            raise ConfigError(*problem)
        weights = [1.0] * ctx.n_outputs if self.output_weights is None else self.output_weights
        return cls(
            output_weights=list(weights),
            scheme=self.scheme.value,
            group_scales=ctx.data.group_scales.tolist(),
            weight_seed=self.weight_seed,
        )


@register_variant(
    "robust_weights",
    task=Task.grouped,
    description="Weighted squared error that ignores NaN/Inf targets and predictions.",
)
@dataclass
class RobustWeightsConfig(OutputWeightsConfig):
    scheme: OutputWeightScheme = OutputWeightScheme.uniform

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import RobustWeightedLoss

        return self._build(RobustWeightedLoss, ctx)
