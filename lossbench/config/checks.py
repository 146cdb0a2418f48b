"""Range checks: everything a type cannot express, decided before any framework is imported.

`validate` raises `ConfigError` for the first problem, naming the key, the expectation and the
value received. The checks run in this order:
1. keys the schema lacks (a `+key=value` or an `_target_`);
2. the variant's identity (`loss.name` must be the chosen option's);
3. every float anywhere in the config must be finite, every seed in the generators' range;
4. each key's range, with `bounds.in_range` (which refuses NaN and +/-inf by construction): the
   loss's own checks beside its schema (`LossConfig.check`), then each parameter's bound as its
   field declares it (`lossbench.bounds.bounded`);
5. memory: every key that sizes an allocation is bounded by what the run would allocate.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import math
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lossbench import bounds
from lossbench.bounds import MAX_GRAPH_NODES, all_in_range, declared_problems, in_range
from lossbench.config.memory import memory_problems
from lossbench.config.schema import (
    DATA_SCHEMAS,
    MODEL_SCHEMAS,
    SKLEARN_DATASETS,
    TABLE_SUFFIXES,
    TABLE_TASKS,
    Config,
    CustomModel,
    DataConfig,
    LossConfig,
    MlpModel,
    Problem,
    RealData,
    ScaleConfig,
    SklearnData,
    SyntheticData,
    TableData,
    Task,
    TrackerConfig,
    TrackerName,
)
from lossbench.errors import ConfigError
from lossbench.user_code import target_problems

# Backends the trainer has a runner for (lossbench/trainer); the others fail at validation.

ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "silu", "elu", "linear")

# NumPy's legacy seeding (which Keras's set_random_seed calls) takes seeds in [0, 2 ** 32).
MAX_SEED = 2**32 - 1


def one_of(key: str, value: Any, options: tuple[str, ...] | list[str]) -> Iterator[Problem]:
    """Yield a problem unless `value` is one of `options`."""
    if value not in options:
        yield key, f"one of {', '.join(options)}", value


def _walk(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, leaf value) of a dataclass tree, with dicts and lists."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            yield from _walk(getattr(node, f.name), f"{prefix}{f.name}.")
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{prefix}{k}.")
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            yield from _walk(v, f"{prefix[:-1]}[{i}].")
    else:
        yield prefix[:-1], node


def _leaf_problems(cfg: Config) -> Iterator[Problem]:
    """Every float must be finite; every seed (`seed`, `*_seed`) a seed the generators accept."""
    for key, value in _walk(cfg, ""):
        if isinstance(value, float) and not math.isfinite(value):
            yield key, "a finite number (NaN and +/-inf are refused)", value
        name = key.rsplit(".", 1)[-1]
        if name == "seed" or name.endswith("_seed"):
            yield from in_range(key, value, ge=0, le=MAX_SEED, integer=True)


def n_train_samples(d: SyntheticData, task: Task) -> int:
    """Training-split size: samples, or nodes for the graph task."""
    n = d.n_nodes if task is Task.graph else d.n_samples
    return n - math.ceil(n * d.val_fraction) - math.ceil(n * d.test_fraction)


def _data_problems(d: DataConfig) -> Iterator[Problem]:
    """The keys every source reads."""
    yield from in_range("data.val_fraction", d.val_fraction, gt=0, lt=1)
    yield from in_range("data.test_fraction", d.test_fraction, ge=0, lt=1)
    if d.val_fraction + d.test_fraction >= 1:
        yield (
            "data.test_fraction",
            "a fraction that leaves rows for training "
            f"(val_fraction + test_fraction < 1, val_fraction={d.val_fraction})",
            d.test_fraction,
        )
    yield from in_range("data.nan_rate", d.nan_rate, ge=0, lt=1)


def _synthetic_problems(d: SyntheticData) -> Iterator[Problem]:
    yield from in_range("data.n_samples", d.n_samples, ge=2, integer=True)
    yield from in_range("data.n_features", d.n_features, ge=1, integer=True)
    yield from in_range("data.spurious", d.spurious, gt=0, lt=1, optional=True)
    yield from in_range("data.positive_rate", d.positive_rate, gt=0, lt=1)
    yield from in_range("data.n_groups", d.n_groups, ge=1, integer=True)
    yield from in_range("data.group_skew", d.group_skew, ge=0)
    yield from in_range("data.group_scale_min", d.group_scale_min, gt=0)
    yield from in_range("data.group_scale_max", d.group_scale_max, gt=0)
    if d.group_scale_min > d.group_scale_max:
        yield (
            "data.group_scale_min",
            "0 < group_scale_min <= group_scale_max",
            f"{d.group_scale_min} (group_scale_max={d.group_scale_max})",
        )
    yield from in_range("data.n_outputs", d.n_outputs, ge=1, integer=True)
    yield from in_range("data.noise", d.noise, ge=0)
    yield from in_range("data.n_classes", d.n_classes, ge=2, integer=True)
    yield from in_range("data.class_imbalance", d.class_imbalance, gt=0, le=1)
    if len(d.grid) != 2 or any(not isinstance(n, int) or n < 1 for n in d.grid):
        yield "data.grid", "two integers >= 1 (rows, columns)", list(d.grid)
    yield from in_range("data.n_nodes", d.n_nodes, ge=2, le=MAX_GRAPH_NODES, integer=True)
    yield from in_range("data.embedding_dim", d.embedding_dim, ge=1, integer=True)
    yield from in_range("data.graph_p_in", d.graph_p_in, ge=0, le=1)
    yield from in_range("data.graph_p_out", d.graph_p_out, ge=0, le=1)


def _real_data_problems(d: RealData) -> Iterator[Problem]:
    """A table or bundled dataset: what can be checked before the file is read."""
    from pathlib import Path

    if isinstance(d, TableData):
        if not d.path:
            yield "data.path", f"a {', '.join(TABLE_SUFFIXES)} file", d.path
            return
        path = Path(d.path).expanduser()
        if path.suffix not in TABLE_SUFFIXES:
            yield "data.path", f"a {', '.join(TABLE_SUFFIXES)} file", d.path
        elif not path.is_file():
            yield "data.path", "an existing file", f"{d.path} (no such file)"
        if d.target is None:
            yield "data.target", "the target column (or a list of columns)", None
    elif isinstance(d, SklearnData):
        yield from one_of("data.name", d.name, SKLEARN_DATASETS)
    targets = d.target if isinstance(d.target, list) else [d.target]
    if d.target is not None and not all(isinstance(t, str | int) for t in targets):
        yield "data.target", "a column name or a list of column names", d.target
    yield from in_range("data.positive_fraction", d.positive_fraction, gt=0, lt=1, optional=True)
    if d.input_shape is not None:
        if not d.input_shape:
            yield "data.input_shape", "a list of sizes >= 1 (one sample's shape), or null", []
        yield from all_in_range("data.input_shape", d.input_shape, ge=1, integer=True)
    if d.task is not None and d.task.value not in TABLE_TASKS:
        yield "data.task", f"one of {', '.join(TABLE_TASKS)} (or null: inferred)", d.task.value


def _split_problems(d: SyntheticData, task: Task) -> Iterator[Problem]:
    n = d.n_nodes if task is Task.graph else d.n_samples
    size_key = "data.n_nodes" if task is Task.graph else "data.n_samples"
    if n_train_samples(d, task) < 1:
        key = "data.test_fraction" if d.test_fraction else "data.val_fraction"
        yield (
            key,
            f"a fraction that leaves a training split ({size_key}={n})",
            f"{getattr(d, key.split('.')[1])} (an empty training split)",
        )
    if d.spurious is not None and task is not Task.binary:
        yield (
            "data.spurious",
            "null unless the task is binary (a label the attribute can track)",
            f"{d.spurious} (the loss trains on the {task.value} task)",
        )


def loss_problems(loss: LossConfig, data: DataConfig, prefix: str = "loss") -> Iterator[Problem]:
    """The loss's own checks (`check`: what its parameters are, such as a list's length or a
    base variant's name), then its parameters outside their declared bounds, with keys under
    `prefix`."""
    for key, expected, received in itertools.chain(loss.check(data), declared_problems(loss)):
        yield f"{prefix}.{key}", expected, received
    task = loss.training_task()
    if loss.task is not None and loss.task is not task:
        yield (
            f"{prefix}.task",
            f"{task.value} (the task {loss.name} trains on), or null",
            loss.task.value,
        )


# trainer.record_groups on data with nothing to decompose the gradient into.
NO_UNITS = (
    "false for data without groups or classes (data.n_groups > 1, or a binary or multiclass task)"
)
NO_UNITS_DATA = "one group, no classes"


def _trainer_problems(cfg: Config, task: Task) -> Iterator[Problem]:
    t, m = cfg.trainer, cfg.model
    if isinstance(m, CustomModel):
        if not m.target:
            yield "model.target", "path/to/file.py:function or package.module:function", m.target
        else:
            yield from target_problems("model.target", m.target)
    elif isinstance(m, MlpModel):
        if not m.hidden:
            yield "model.hidden", "a non-empty list of integers >= 1", list(m.hidden)
        yield from all_in_range("model.hidden", m.hidden, ge=1, integer=True)
        yield from one_of("model.activation", m.activation, ACTIVATIONS)
    yield from in_range("trainer.epochs", t.epochs, ge=1, integer=True)
    if t.tensorboard and importlib.util.find_spec("tensorboard") is None:
        yield (
            "trainer.tensorboard",
            "false, or the tensorboard package installed (pip install 'lossbench[tensorboard]')",
            True,
        )
    if isinstance(cfg.data, SyntheticData):
        if t.record_groups and cfg.data.n_groups < 2 and task not in (Task.binary, Task.multiclass):
            yield "trainer.record_groups", NO_UNITS, f"true ({task.value} data: {NO_UNITS_DATA})"
        n_train = max(n_train_samples(cfg.data, task), 1)
        yield from in_range("trainer.batch_size", t.batch_size, ge=1, le=n_train, integer=True)
    else:  # the training split's size is known once the table is read
        yield from in_range("trainer.batch_size", t.batch_size, ge=1, integer=True)
    yield from in_range("trainer.learning_rate", t.learning_rate, gt=0)
    yield from in_range("trainer.steps_per_chunk", t.steps_per_chunk, ge=1, integer=True)
    yield from in_range("trainer.unroll", t.unroll, ge=0, le=64, integer=True, optional=True)
    yield from in_range("trainer.record_groups_every", t.record_groups_every, ge=1, integer=True)
    if t.record_groups_every != 1 and not t.record_groups:
        yield (
            "trainer.record_groups_every",
            "its default 1 with trainer.record_groups=false (it thins what record_groups records)",
            t.record_groups_every,
        )
    how, _, metric = t.select.partition(":")
    if t.select != "last" and not (how == "best" and metric.strip()):
        yield (
            "trainer.select",
            "last, or best:<metric> (a validation metric of the task, or val_loss)",
            t.select,
        )


def unread_problems(cfg: Config) -> Iterator[Problem]:
    """Keys outside `loss` set away from their default that the chosen loss does not read (they
    would be ignored without a word; a data or model source reads every key of its schema)."""
    from lossbench.variants.registry import get_variant, variants

    default_epsilon = ScaleConfig().epsilon
    if cfg.scale.epsilon != default_epsilon and "scale.epsilon" not in cfg.loss.shared_keys():
        readers = [v for v in variants() if "scale.epsilon" in get_variant(v).reads]
        yield (
            "scale.epsilon",
            f"its default {default_epsilon:g} with loss={cfg.loss.name} (only "
            f"{', '.join(readers)} reads it)",
            cfg.scale.epsilon,
        )


def problems(cfg: Config) -> Iterator[Problem]:
    """Yield (key, expected, received) for every out-of-range value of a typed config."""
    yield from _leaf_problems(cfg)
    yield from in_range("scale.epsilon", cfg.scale.epsilon, bound=bounds.SCALE_EPSILON)
    yield from unread_problems(cfg)
    yield from _data_problems(cfg.data)
    synthetic = isinstance(cfg.data, SyntheticData)
    if synthetic:
        yield from _synthetic_problems(cfg.data)
    elif isinstance(cfg.data, RealData):
        yield from _real_data_problems(cfg.data)
    yield from loss_problems(cfg.loss, cfg.data)
    task = cfg.loss.training_task()  # the loss's checks make sure its task is decidable
    if synthetic:  # real data: sizes and splits are checked once the table is read
        yield from _split_problems(cfg.data, task)
    yield from _trainer_problems(cfg, task)
    yield from _tracker_problems(cfg.tracker)
    if synthetic:
        yield from memory_problems(cfg, task)


def _tracker_problems(t: TrackerConfig) -> Iterator[Problem]:
    """The tracker's package is installed; its keys are read by the tracker that has them."""
    package = {
        TrackerName.mlflow: ("mlflow", "track"),
        TrackerName.tensorboard: ("tensorboard", "tensorboard"),
    }
    if t.name in package and importlib.util.find_spec(package[t.name][0]) is None:
        module, extra = package[t.name]
        yield (
            "tracker",
            f"none, or {module} installed (pip install 'lossbench[{extra}]')",
            t.name.value,
        )
    for key in ("uri", "experiment"):
        value = getattr(t, key)
        if value is not None and t.name is not TrackerName.mlflow:
            yield f"tracker.{key}", "null (only tracker=mlflow reads it)", value
        elif value is not None and not value.strip():
            yield f"tracker.{key}", "null or a non-empty string", value


def _identity_problems(obj: Config) -> Iterator[Problem]:
    """The loss config must be a registered variant's schema, and `loss.name` its name; the
    data and model configs their source's schema."""
    from lossbench.variants.registry import variant_name, variants

    for group, schemas in (("data", DATA_SCHEMAS), ("model", MODEL_SCHEMAS)):
        node = getattr(obj, group)
        if schemas.get(node.source) is not type(node):
            chosen = next((s for s, t in schemas.items() if t is type(node)), None)
            options = ", ".join(schemas)
            yield (
                f"{group}.source",
                f"{chosen or options}, the chosen {group} source (choose "
                f"another with {group}=<{'|'.join(schemas)}>)",
                str(node.source),
            )

    name = variant_name(obj.loss)
    if name is None:
        received = getattr(obj.loss, "name", None) or (
            obj.loss.get("name") if isinstance(obj.loss, dict) else None
        )
        yield "loss", f"one of {', '.join(variants())}", received
    elif obj.loss.name != name:
        yield (
            "loss.name",
            f"{name!r}, the name of the chosen loss (choose another with loss=<name>)",
            obj.loss.name,
        )


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
    for key, expected, received in _identity_problems(obj):
        raise ConfigError(key, expected, received)
    for key, expected, received in problems(obj):
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
