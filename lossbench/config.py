"""Typed config schemas, registered in Hydra's ConfigStore, and the range checks behind them.

Types and key names are enforced by OmegaConf when Hydra composes the config (a wrong key or type
fails there, naming the key). Ranges that a type cannot express are checked by `validate`, which
runs before any framework is imported and raises `ConfigError` naming the key, the expectation and
the value received.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from lossbench.errors import ConfigError


class Backend(StrEnum):
    tensorflow = "tensorflow"
    jax = "jax"
    torch = "torch"


class Task(StrEnum):
    """What data, output head and metrics an experiment has (see `lossbench.data`)."""

    binary = "binary"
    grouped = "grouped"


class Membership(StrEnum):
    """How group membership travels with the targets: an id column or one-hot columns."""

    index = "index"
    onehot = "onehot"


class GroupStatistic(StrEnum):
    rms = "rms"
    mean_abs = "mean_abs"


class Optimizer(StrEnum):
    adam = "adam"
    sgd = "sgd"


@dataclass
class LossConfig:
    """Fields every loss config has; each variant's schema adds its parameters."""

    name: str = MISSING
    task: Task = MISSING
    description: str = ""


@dataclass
class MSEConfig(LossConfig):
    pass


@dataclass
class BCEConfig(LossConfig):
    pass


@dataclass
class GroupedConfig(LossConfig):
    # None: the data's own group target scales (the oracle); else one scale per group.
    scales: list[float] | None = None
    membership: Membership = Membership.index


@dataclass
class GroupedDynamicConfig(LossConfig):
    statistic: GroupStatistic = GroupStatistic.rms
    membership: Membership = Membership.index


@dataclass
class DataConfig:
    n_samples: int = 16384
    n_features: int = 32
    val_fraction: float = 0.2
    positive_rate: float = 0.1
    n_groups: int = 8
    group_skew: float = 1.0
    group_scale_min: float = 0.25
    group_scale_max: float = 4.0
    n_outputs: int = 4
    noise: float = 0.1


@dataclass
class ModelConfig:
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "relu"


@dataclass
class TrainerConfig:
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: Optimizer = Optimizer.adam
    steps_per_chunk: int = 256
    record: bool = True
    jit_compile: bool = True
    progress: bool = True


@dataclass
class ScaleConfig:
    epsilon: float = 1e-6


@dataclass
class Config:
    loss: Any = MISSING
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    seed: int = 0
    backend: Backend = Backend.tensorflow
    debug: bool = False


LOSS_SCHEMAS: dict[str, type[LossConfig]] = {
    "mse": MSEConfig,
    "bce": BCEConfig,
    "grouped": GroupedConfig,
    "grouped_dynamic": GroupedDynamicConfig,
}

# Backends the trainer has a runner for (lossbench/trainer); the others fail at validation.
TRAINER_BACKENDS = ("tensorflow",)

ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "silu", "elu", "linear")


def register_configs() -> None:
    """Store the schemas so YAML files can extend them (`- /schema/loss/<name>@_here_`)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="lossbench_schema", node=Config)
    for name, schema in LOSS_SCHEMAS.items():
        cs.store(group="schema/loss", name=name, node=schema)
    cs.store(group="schema/data", name="synthetic", node=DataConfig)
    cs.store(group="schema/model", name="mlp", node=ModelConfig)
    cs.store(group="schema/trainer", name="default", node=TrainerConfig)


def _problems(cfg: Any) -> Iterator[tuple[str, str, Any]]:
    """Yield (key, expected, received) for every out-of-range value."""
    d, t, m = cfg.data, cfg.trainer, cfg.model
    if cfg.backend.value not in TRAINER_BACKENDS:
        yield (
            "backend",
            f"one of {', '.join(TRAINER_BACKENDS)} (the trainer has no runner for the others yet)",
            cfg.backend.value,
        )
    if not (math.isfinite(cfg.scale.epsilon) and cfg.scale.epsilon >= 0):
        yield "scale.epsilon", "a finite number >= 0", cfg.scale.epsilon
    if d.n_samples < 2:
        yield "data.n_samples", "an integer >= 2", d.n_samples
    if d.n_features < 1:
        yield "data.n_features", "an integer >= 1", d.n_features
    if not 0 < d.val_fraction < 1:
        yield "data.val_fraction", "a number in (0, 1)", d.val_fraction
    if not 0 < d.positive_rate < 1:
        yield "data.positive_rate", "a number in (0, 1)", d.positive_rate
    if d.n_groups < 1:
        yield "data.n_groups", "an integer >= 1", d.n_groups
    if d.group_skew < 0:
        yield "data.group_skew", "a number >= 0", d.group_skew
    if not 0 < d.group_scale_min <= d.group_scale_max:
        yield (
            "data.group_scale_min",
            "0 < group_scale_min <= group_scale_max",
            f"{d.group_scale_min} (group_scale_max={d.group_scale_max})",
        )
    if d.n_outputs < 1:
        yield "data.n_outputs", "an integer >= 1", d.n_outputs
    if d.noise < 0:
        yield "data.noise", "a number >= 0", d.noise
    if not m.hidden or any(h < 1 for h in m.hidden):
        yield "model.hidden", "a non-empty list of integers >= 1", list(m.hidden)
    if m.activation not in ACTIVATIONS:
        yield "model.activation", f"one of {', '.join(ACTIVATIONS)}", m.activation
    if t.epochs < 1:
        yield "trainer.epochs", "an integer >= 1", t.epochs
    n_train = d.n_samples - math.ceil(d.n_samples * d.val_fraction)
    if not 1 <= t.batch_size <= max(n_train, 1):
        yield (
            "trainer.batch_size",
            f"an integer in [1, {n_train}] (the training split's size)",
            t.batch_size,
        )
    if not (math.isfinite(t.learning_rate) and t.learning_rate > 0):
        yield "trainer.learning_rate", "a finite number > 0", t.learning_rate
    if t.steps_per_chunk < 1:
        yield "trainer.steps_per_chunk", "an integer >= 1", t.steps_per_chunk
    scales = getattr(cfg.loss, "scales", None)
    if scales is not None:
        if len(scales) != d.n_groups:
            yield (
                "loss.scales",
                f"a list of data.n_groups={d.n_groups} numbers",
                f"{len(scales)} numbers",
            )
        elif any(not (math.isfinite(s) and s > 0) for s in scales):
            yield "loss.scales", "finite numbers > 0", list(scales)


def validate(cfg: DictConfig | Config) -> Config:
    """Return the config as typed objects, or raise `ConfigError` for the first bad value.

    Args:
        cfg: the composed config (from Hydra) or a `Config` built in Python.

    Returns:
        The same config as a `Config` dataclass tree.
    """
    obj = OmegaConf.to_object(cfg) if isinstance(cfg, DictConfig) else cfg
    name = getattr(obj.loss, "name", None)
    if name not in LOSS_SCHEMAS:
        raise ConfigError("loss", f"one of {', '.join(sorted(LOSS_SCHEMAS))}", name)
    for key, expected, received in _problems(obj):
        raise ConfigError(key, expected, received)
    return obj
