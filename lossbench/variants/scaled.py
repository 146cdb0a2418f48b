"""The scaled variant: any other variant times a constant factor or a schedule."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lossbench import bounds
from lossbench.bounds import bounded
from lossbench.config.checks import loss_problems
from lossbench.config.schema import DataConfig, LossConfig, Problem, Task
from lossbench.errors import did_you_mean
from lossbench.variants.registry import BuildContext, get_variant, register_variant, variants


class Schedule(StrEnum):
    constant = "constant"
    warmup = "warmup"
    step = "step"


@register_variant(
    "scaled",
    description=(
        "Another variant times a constant factor or a schedule (linear warm-up, step change)."
    ),
)
@dataclass
class ScaledConfig(LossConfig):
    base: str = "bce"
    # Parameters of the base variant (its own defaults otherwise), e.g. {temperature: 0.5}.
    base_params: dict[str, Any] = field(default_factory=dict)
    factor: float = bounded(1.0, bounds.FACTOR)
    schedule: Schedule = Schedule.constant
    warmup_epochs: float = bounded(1.0, bounds.WARMUP_EPOCHS)
    start_factor: float = bounded(0.0, bounds.START_FACTOR)
    step_epoch: int = bounded(1, bounds.STEP_EPOCH)
    step_factor: float = bounded(0.1, bounds.STEP_FACTOR)

    def base_config(self) -> LossConfig:
        """The typed config of the base variant with `base_params` applied.

        Raises:
            ValueError: the base is not a variant, or a parameter is not one of its own.
        """
        from omegaconf import OmegaConf

        schema = get_variant(self.base)
        if schema is None or schema is ScaledConfig:
            raise ValueError(f"unknown base variant {self.base!r}")
        params = {f.name for f in dataclasses.fields(schema)} - {"name"}
        unknown = sorted(set(self.base_params) - params)
        if unknown:
            allowed = ", ".join(sorted(params)) or "none"
            raise ValueError(f"{unknown[0]!r} is not a parameter of {self.base!r} ({allowed})")
        node = OmegaConf.merge(OmegaConf.structured(schema(name=self.base)), self.base_params)
        return OmegaConf.to_object(node)

    def training_task(self) -> Task:
        return self.base_config().training_task()

    def shared_keys(self) -> frozenset[str]:
        try:
            return self.base_config().shared_keys()
        except ValueError:  # a bad base: `check` names it
            return frozenset()

    def check(self, data: DataConfig) -> Iterator[Problem]:
        others = [name for name in variants() if name != "scaled"]
        if self.base not in others:
            yield "base", f"one of {', '.join(others)}", self.base
            return
        bad = list(self._base_param_problems())
        if bad:
            yield from bad
            return
        yield from loss_problems(self.base_config(), data, "base_params")

    def _base_param_problems(self) -> Iterator[Problem]:
        """Each base parameter the base does not take, or of a type it cannot hold, by name."""
        from omegaconf import OmegaConf

        schema = get_variant(self.base)
        assert schema is not None  # `check` has made sure of the base
        types = {f.name: f.type for f in dataclasses.fields(schema) if f.name != "name"}
        for key, value in self.base_params.items():
            if key not in types:
                allowed = ", ".join(sorted(types)) or "none"
                hint = did_you_mean(key, types, "loss.base_params.")
                yield (
                    f"base_params.{key}",
                    f"a parameter of loss {self.base!r} ({allowed}{hint})",
                    value,
                )
                continue
            try:
                OmegaConf.merge(OmegaConf.structured(schema(name=self.base)), {key: value})
            except Exception:  # OmegaConf: a value its type cannot hold
                yield f"base_params.{key}", f"a value of type {types[key]}", value

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import ScaledLoss

        return ScaledLoss(
            base=self.base_config().build(ctx.nested("base_params")),
            factor=self.factor,
            schedule=self.schedule.value,
            warmup_epochs=self.warmup_epochs,
            start_factor=self.start_factor,
            step_epoch=self.step_epoch,
            step_factor=self.step_factor,
        )
