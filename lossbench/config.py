"""Typed config schemas, registered in Hydra's ConfigStore, and the range checks behind them.

Types and key names are enforced by OmegaConf when Hydra composes the config (a wrong key or type
fails there, naming the key). Ranges that a type cannot express are checked by `validate`, which
runs before any framework is imported and raises `ConfigError` naming the key, the expectation and
the value received.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from lossbench.errors import ConfigError

# The graph task and loss hold dense N x N arrays; bounding N * N below 2 ** 31 keeps every
# flat index into them (the loss's bit table needs only N * N / 32) within int32.
MAX_GRAPH_NODES = 46_340  # the largest N with N * N < 2 ** 31


class Backend(StrEnum):
    tensorflow = "tensorflow"
    jax = "jax"
    torch = "torch"


class Task(StrEnum):
    """What data, output head and metrics an experiment has (see `lossbench.data`)."""

    binary = "binary"
    grouped = "grouped"
    multiclass = "multiclass"
    grid = "grid"
    graph = "graph"
    multitask = "multitask"


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


# What a per-sample weight is looked up by. OmegaConf matches enum members by name, and `class`
# is a keyword, hence the functional form.
WeightBy = StrEnum("WeightBy", [("class", "class"), ("group", "group")])


class OutputWeightScheme(StrEnum):
    """How each sample's per-output weights are made from the per-output base weights."""

    uniform = "uniform"
    inverse_group_scale = "inverse_group_scale"
    random = "random"


class MultitaskMode(StrEnum):
    loss_weighting = "loss_weighting"
    prediction_scaling = "prediction_scaling"


class Schedule(StrEnum):
    constant = "constant"
    warmup = "warmup"
    step = "step"


@dataclass
class LossConfig:
    """Fields every loss config has; each variant's schema adds its parameters.

    The task (data, head, metrics) follows from the variant: see `task()`.
    """

    name: str = MISSING
    description: str = ""

    def task(self) -> Task:
        return LOSS_TASKS[self.name]


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
class ContextMaskConfig(LossConfig):
    # center | border | random | ones, or the path of an .npy file shaped like data.grid.
    mask: str = "center"
    strength: float = 4.0
    mask_seed: int = 0


@dataclass
class ContextGraphConfig(LossConfig):
    graph_weight: float = 1.0
    # null: the data's own community graph; else the path of an (n_nodes, n_nodes) .npy file.
    adjacency: str | None = None
    epsilon: float = 1e-8


@dataclass
class SampleWeightsConfig(LossConfig):
    base: str = "bce"
    by: WeightBy = WeightBy["class"]
    # null: inverse frequency in the training split; else one weight per class or group.
    weights: list[float] | None = None

    def task(self) -> Task:
        return LOSS_TASKS[self.base]


@dataclass
class OutputWeightsConfig(LossConfig):
    # null: all ones; else one base weight per output.
    output_weights: list[float] | None = None
    scheme: OutputWeightScheme = OutputWeightScheme.inverse_group_scale
    weight_seed: int = 0


@dataclass
class RobustWeightsConfig(OutputWeightsConfig):
    scheme: OutputWeightScheme = OutputWeightScheme.uniform


@dataclass
class ThresholdConfig(LossConfig):
    threshold: float = 0.4
    boost: float = 0.2
    epsilon: float = 1e-7


@dataclass
class FocalConfig(LossConfig):
    gamma: float = 2.0
    alpha: float | None = 0.25  # positive-class weight; null: no class weighting


@dataclass
class ClassBalancedConfig(LossConfig):
    beta: float = 0.999  # effective-number parameter in [0, 1); 0: plain BCE
    gamma: float = 0.0  # > 0: the focal form


@dataclass
class LogitAdjustedConfig(LossConfig):
    tau: float = 1.0  # scaling of the log-prior shift; 0: plain BCE


@dataclass
class GroupDROConfig(LossConfig):
    step_size: float = 1.0  # inverse temperature over group losses; 0: group-balanced mean
    membership: Membership = Membership.index


@dataclass
class TemperatureConfig(LossConfig):
    temperature: float = 2.0


@dataclass
class MultitaskConfig(LossConfig):
    box_weight: float = 1.0
    class_weight: float = 1.0
    mode: MultitaskMode = MultitaskMode.loss_weighting


@dataclass
class ScaledConfig(LossConfig):
    base: str = "bce"
    # Parameters of the base variant (its own defaults otherwise), e.g. {temperature: 0.5}.
    base_params: dict[str, Any] = field(default_factory=dict)
    factor: float = 1.0
    schedule: Schedule = Schedule.constant
    warmup_epochs: float = 1.0
    start_factor: float = 0.0
    step_epoch: int = 1
    step_factor: float = 0.1

    def task(self) -> Task:
        return base_config(self).task()


def base_config(cfg: ScaledConfig) -> LossConfig:
    """The typed config of a scaled loss's base variant."""
    schema = LOSS_SCHEMAS[cfg.base]
    node = OmegaConf.merge(OmegaConf.structured(schema(name=cfg.base)), cfg.base_params)
    return OmegaConf.to_object(node)


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
    n_classes: int = 5
    class_imbalance: float = 0.4
    grid: list[int] = field(default_factory=lambda: [8, 8])
    n_nodes: int = 1024
    embedding_dim: int = 16
    graph_p_in: float = 0.05
    graph_p_out: float = 0.002
    nan_rate: float = 0.0


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
    steps_per_chunk: int = 1024
    record: bool = True
    jit_compile: bool = True
    progress: bool = True
    tensorboard: bool = False


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
    "context_mask": ContextMaskConfig,
    "context_graph": ContextGraphConfig,
    "sample_weights": SampleWeightsConfig,
    "output_weights": OutputWeightsConfig,
    "robust_weights": RobustWeightsConfig,
    "threshold": ThresholdConfig,
    "focal": FocalConfig,
    "class_balanced": ClassBalancedConfig,
    "logit_adjusted": LogitAdjustedConfig,
    "group_dro": GroupDROConfig,
    "temperature": TemperatureConfig,
    "multitask": MultitaskConfig,
    "scaled": ScaledConfig,
}

# The task of each variant (sample_weights and scaled take their base's).
LOSS_TASKS: dict[str, Task] = {
    "mse": Task.grouped,
    "bce": Task.binary,
    "grouped": Task.grouped,
    "grouped_dynamic": Task.grouped,
    "context_mask": Task.grid,
    "context_graph": Task.graph,
    "output_weights": Task.grouped,
    "robust_weights": Task.grouped,
    "threshold": Task.binary,
    "focal": Task.binary,
    "class_balanced": Task.binary,
    "logit_adjusted": Task.binary,
    "group_dro": Task.grouped,
    "temperature": Task.multiclass,
    "multitask": Task.multitask,
}

# Backends the trainer has a runner for (lossbench/trainer); the others fail at validation.
TRAINER_BACKENDS = ("tensorflow", "jax")

MASK_PATTERNS = ("center", "border", "random", "ones")

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


Problem = tuple[str, str, Any]


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _data_problems(d: DataConfig) -> Iterator[Problem]:
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
    if d.n_classes < 2:
        yield "data.n_classes", "an integer >= 2", d.n_classes
    if not 0 < d.class_imbalance <= 1:
        yield "data.class_imbalance", "a number in (0, 1]", d.class_imbalance
    if len(d.grid) != 2 or any(n < 1 for n in d.grid):
        yield "data.grid", "two integers >= 1 (rows, columns)", list(d.grid)
    if not 2 <= d.n_nodes <= MAX_GRAPH_NODES:
        yield "data.n_nodes", f"an integer in [2, {MAX_GRAPH_NODES}]", d.n_nodes
    if d.embedding_dim < 1:
        yield "data.embedding_dim", "an integer >= 1", d.embedding_dim
    for key in ("graph_p_in", "graph_p_out"):
        if not 0 <= getattr(d, key) <= 1:
            yield f"data.{key}", "a probability in [0, 1]", getattr(d, key)
    if not 0 <= d.nan_rate < 1:
        yield "data.nan_rate", "a number in [0, 1)", d.nan_rate


def _weights_problems(key: str, weights: Any, size: int, what: str) -> Iterator[Problem]:
    if weights is None:
        return
    if len(weights) != size:
        yield key, f"a list of {size} numbers ({what})", f"{len(weights)} numbers"
    elif any(not (_finite(w) and w >= 0) for w in weights) or not any(w > 0 for w in weights):
        yield key, "finite numbers >= 0, not all zero", list(weights)


def _loss_problems(loss: Any, d: DataConfig, prefix: str) -> Iterator[Problem]:
    """Range checks of one loss config; `prefix` is where it sits (`loss` or a base's)."""
    name = loss.name
    if name == "grouped" and loss.scales is not None:
        if len(loss.scales) != d.n_groups:
            yield (
                f"{prefix}.scales",
                f"a list of data.n_groups={d.n_groups} numbers",
                f"{len(loss.scales)} numbers",
            )
        elif any(not (_finite(s) and s > 0) for s in loss.scales):
            yield f"{prefix}.scales", "finite numbers > 0", list(loss.scales)
    elif name == "context_mask":
        if loss.mask not in MASK_PATTERNS and not loss.mask.endswith(".npy"):
            yield (
                f"{prefix}.mask",
                f"one of {', '.join(MASK_PATTERNS)} or the path of an .npy file",
                loss.mask,
            )
        if not (_finite(loss.strength) and loss.strength >= 0):
            yield f"{prefix}.strength", "a finite number >= 0", loss.strength
    elif name == "context_graph":
        if not (_finite(loss.graph_weight) and loss.graph_weight >= 0):
            yield f"{prefix}.graph_weight", "a finite number >= 0", loss.graph_weight
        if loss.adjacency is not None and not loss.adjacency.endswith(".npy"):
            yield f"{prefix}.adjacency", "null or the path of an .npy file", loss.adjacency
        if not (_finite(loss.epsilon) and loss.epsilon > 0):
            yield f"{prefix}.epsilon", "a finite number > 0", loss.epsilon
    elif name == "sample_weights":
        if loss.base not in ("bce", "mse"):
            yield f"{prefix}.base", "bce or mse", loss.base
        elif loss.by is WeightBy["class"] and loss.base != "bce":
            yield f"{prefix}.by", "group (classes exist only for base bce)", loss.by.value
        else:
            size, what = (
                (2, "one per class") if loss.by is WeightBy["class"] else (d.n_groups, "groups")
            )
            yield from _weights_problems(f"{prefix}.weights", loss.weights, size, what)
    elif name in ("output_weights", "robust_weights"):
        yield from _weights_problems(
            f"{prefix}.output_weights", loss.output_weights, d.n_outputs, "one per output"
        )
    elif name == "threshold":
        if not 0 <= loss.threshold <= 1:
            yield f"{prefix}.threshold", "a number in [0, 1]", loss.threshold
        if not 0 <= loss.boost < 1:
            yield f"{prefix}.boost", "a number in [0, 1)", loss.boost
        if not 0 < loss.epsilon < 0.5:
            yield f"{prefix}.epsilon", "a number in (0, 0.5)", loss.epsilon
    elif name == "focal":
        if not (_finite(loss.gamma) and loss.gamma >= 0):
            yield f"{prefix}.gamma", "a finite number >= 0", loss.gamma
        if loss.alpha is not None and not (_finite(loss.alpha) and 0 <= loss.alpha <= 1):
            yield f"{prefix}.alpha", "null or a number in [0, 1]", loss.alpha
    elif name == "class_balanced":
        if not (_finite(loss.beta) and 0 <= loss.beta < 1):
            yield f"{prefix}.beta", "a number in [0, 1)", loss.beta
        if not (_finite(loss.gamma) and loss.gamma >= 0):
            yield f"{prefix}.gamma", "a finite number >= 0", loss.gamma
    elif name == "logit_adjusted":
        if not (_finite(loss.tau) and loss.tau >= 0):
            yield f"{prefix}.tau", "a finite number >= 0", loss.tau
    elif name == "group_dro":
        if not (_finite(loss.step_size) and loss.step_size >= 0):
            yield f"{prefix}.step_size", "a finite number >= 0", loss.step_size
    elif name == "temperature":
        if not (_finite(loss.temperature) and loss.temperature > 0):
            yield f"{prefix}.temperature", "a finite number > 0", loss.temperature
    elif name == "multitask":
        for key in ("box_weight", "class_weight"):
            if not (_finite(getattr(loss, key)) and getattr(loss, key) >= 0):
                yield f"{prefix}.{key}", "a finite number >= 0", getattr(loss, key)
    elif name == "scaled":
        yield from _scaled_problems(loss, d, prefix)


def _scaled_problems(loss: ScaledConfig, d: DataConfig, prefix: str) -> Iterator[Problem]:
    if loss.base not in LOSS_TASKS:
        yield f"{prefix}.base", f"one of {', '.join(sorted(LOSS_TASKS))}", loss.base
        return
    if not (_finite(loss.factor) and loss.factor > 0):
        yield f"{prefix}.factor", "a finite number > 0", loss.factor
    if not (_finite(loss.warmup_epochs) and loss.warmup_epochs > 0):
        yield f"{prefix}.warmup_epochs", "a finite number > 0", loss.warmup_epochs
    if not (_finite(loss.start_factor) and loss.start_factor >= 0):
        yield f"{prefix}.start_factor", "a finite number >= 0", loss.start_factor
    if loss.step_epoch < 1:
        yield f"{prefix}.step_epoch", "an integer >= 1", loss.step_epoch
    if not (_finite(loss.step_factor) and loss.step_factor >= 0):
        yield f"{prefix}.step_factor", "a finite number >= 0", loss.step_factor
    try:
        base = base_config(loss)
    except Exception as error:  # OmegaConf: an unknown key or a wrong type
        yield (
            f"{prefix}.base_params",
            f"parameters of loss {loss.base!r}",
            str(error).split("\n")[0],
        )
        return
    yield from _loss_problems(base, d, f"{prefix}.base_params")


def _problems(cfg: Config) -> Iterator[Problem]:
    """Yield (key, expected, received) for every out-of-range value."""
    t, m = cfg.trainer, cfg.model
    if cfg.backend.value not in TRAINER_BACKENDS:
        yield (
            "backend",
            f"one of {', '.join(TRAINER_BACKENDS)} (the trainer has no runner for the others yet)",
            cfg.backend.value,
        )
    if not (_finite(cfg.scale.epsilon) and cfg.scale.epsilon >= 0):
        yield "scale.epsilon", "a finite number >= 0", cfg.scale.epsilon
    yield from _data_problems(cfg.data)
    yield from _loss_problems(cfg.loss, cfg.data, "loss")
    if not m.hidden or any(h < 1 for h in m.hidden):
        yield "model.hidden", "a non-empty list of integers >= 1", list(m.hidden)
    if m.activation not in ACTIVATIONS:
        yield "model.activation", f"one of {', '.join(ACTIVATIONS)}", m.activation
    if t.epochs < 1:
        yield "trainer.epochs", "an integer >= 1", t.epochs
    if t.tensorboard and importlib.util.find_spec("tensorboard") is None:
        yield (
            "trainer.tensorboard",
            "false, or the tensorboard package installed (pip install 'lossbench[tensorboard]')",
            True,
        )
    n_train = n_train_samples(cfg.data, cfg.loss.task())
    if not 1 <= t.batch_size <= max(n_train, 1):
        yield (
            "trainer.batch_size",
            f"an integer in [1, {n_train}] (the training split's size)",
            t.batch_size,
        )
    if not (_finite(t.learning_rate) and t.learning_rate > 0):
        yield "trainer.learning_rate", "a finite number > 0", t.learning_rate
    if t.steps_per_chunk < 1:
        yield "trainer.steps_per_chunk", "an integer >= 1", t.steps_per_chunk


def n_train_samples(d: DataConfig, task: Task) -> int:
    """Training-split size: samples, or nodes for the graph task."""
    n = d.n_nodes if task is Task.graph else d.n_samples
    return n - math.ceil(n * d.val_fraction)


def validate(cfg: DictConfig | Config) -> Config:
    """Return the config as typed objects, or raise `ConfigError` for the first bad value.

    Args:
        cfg: the composed config (from Hydra) or a `Config` built in Python.

    Returns:
        The same config as a `Config` dataclass tree.
    """
    if isinstance(cfg, DictConfig):
        # `+key=value` adds keys even to typed nodes; anything the schema lacks is refused here
        # (so a config can never smuggle in an `_target_` or a key that is silently ignored).
        for key, allowed in _unknown_keys(cfg):
            raise ConfigError(key, f"one of the keys {allowed}", cfg_value(cfg, key))
    obj = OmegaConf.to_object(cfg) if isinstance(cfg, DictConfig) else cfg
    name = getattr(obj.loss, "name", None)
    if name not in LOSS_SCHEMAS:
        raise ConfigError("loss", f"one of {', '.join(sorted(LOSS_SCHEMAS))}", name)
    for key, expected, received in _problems(obj):
        raise ConfigError(key, expected, received)
    return obj


def cfg_value(cfg: DictConfig, key: str) -> Any:
    """The value at a dotted key, unresolved (for error messages)."""
    node = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
    return OmegaConf.to_container(node) if isinstance(node, DictConfig) else node


def _unknown_keys(node: DictConfig, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(full key, allowed keys) for every key of a typed node that its dataclass does not have."""
    schema = OmegaConf.get_type(node)
    fields = (
        {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    )
    for key in node:
        if not prefix and key == "hydra":
            continue
        full = f"{prefix}{key}"
        if fields is not None and key not in fields:
            yield full, ", ".join(sorted(fields))
            continue
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            yield from _unknown_keys(child, f"{full}.")


def compose_raw(overrides: list[str] | None = None, with_hydra: bool = False) -> DictConfig:
    """Compose conf/config.yaml with command-line style `overrides`, unvalidated; `with_hydra`
    keeps Hydra's own `hydra` node (help template, sweeper parameters)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="lossbench.conf", version_base="1.3"):
        return hydra_compose(
            config_name="config", overrides=list(overrides or []), return_hydra_config=with_hydra
        )


def compose(overrides: list[str] | None = None) -> Config:
    """Compose conf/config.yaml with command-line style `overrides` and validate it.

    For Python use (tests, benchmarks, notebooks): the same config the CLI would run.
    """
    return validate(compose_raw(overrides))
