"""One experiment built from a validated config: data, loss, model, optimizer and runner.

Nothing here knows Hydra; `lossbench.run.training` trains what is built here and writes the
tables. The framework is imported inside `build_experiment`, after the backend is chosen.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import platform
import sys
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from lossbench.bounds import memory_budget
from lossbench.config.memory import fit_problems
from lossbench.config.schema import Config, CustomModel, SyntheticData, Task
from lossbench.errors import ConfigError, LossbenchError


def select_backend(backend: str) -> None:
    """Point Keras at `backend` and import it; this only works before Keras is first imported."""
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise LossbenchError(
                f"invalid value for `backend`: this process already runs Keras on "
                f"{keras.backend.backend()!r}, received {backend!r}; run it in its own process"
            )
        return
    os.environ["KERAS_BACKEND"] = backend
    # TensorFlow's C++ start-up notes (CUDA probing, oneDNN) bypass TF_CPP_MIN_LOG_LEVEL in 2.21
    # and are noise in a CLI: hide fd 2 while Keras imports it.
    # Setting the level below 2 asks for TensorFlow's notes, and then they are shown.
    level = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    quiet = not (level.isdigit() and int(level) < 2)
    with _stderr_silenced(quiet), _without_unused_imports(backend):
        import keras
    if quiet:
        # A sweep builds a model per job, which TensorFlow's retracing warnings report as a
        # possible mistake; they are notes for TensorFlow's own users, not for lossbench's.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


# Packages that Keras or TensorFlow import when they can, which no lossbench run uses: JAX (from
# TensorFlow's TFLite helpers, about 0.5 s) unless it is the backend, and matplotlib (from Keras's
# image-gallery helper, about 0.35 s). Keras then leaves those optional helpers off.
def unused_imports(backend: str) -> list[str]:
    """The optional packages to keep from loading while Keras imports the `backend`."""
    return [name for name in ("jax", "matplotlib") if name != backend]


@contextmanager
def _without_unused_imports(backend: str) -> Iterator[None]:
    """Keep Keras's and TensorFlow's import from loading the packages `unused_imports` names,
    when nothing has loaded them yet; they stay importable afterwards for code that wants them."""
    blocked = [name for name in unused_imports(backend) if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        yield
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


@contextmanager
def _stderr_silenced(active: bool) -> Iterator[None]:
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    out = [("python", platform.python_version())]
    for pkg in ("lossbench", "keras", "tensorflow", "jax", "numpy", "hydra-core"):
        try:
            out.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(out)


def versions() -> dict[str, str]:
    """Versions of Python and the packages that decide the numbers (looked up once per process:
    each lookup scans the installed packages)."""
    return dict(_versions())


def layer_groups(model: Any) -> tuple[list[str], list[list[int]]]:
    """Trainable layers and, for each, the indices of its variables in `trainable_variables`.

    A layer is named by its variables' path without the variable's own name (`hidden_0`,
    `conv_1`, or `backbone/conv_1` inside a user's nested model), so the layers of a model
    within the model are told apart."""
    groups: dict[str, list[int]] = {}
    for i, variable in enumerate(model.trainable_variables):
        layer = variable.path.rpartition("/")[0] or variable.path
        groups.setdefault(layer, []).append(i)
    return list(groups), list(groups.values())


@dataclass
class Experiment:
    """Everything built for one run, before training."""

    cfg: Config
    data: Any  # lossbench.data.dataset.Dataset
    loss: Any  # a LossbenchLoss
    model: Any  # keras.Model
    runner: Any  # the backend's runner
    device: str
    layer_names: list[str]
    select_metric: str | None = None  # the validation metric that picks the epoch; None: last
    units: Any = None  # lossbench.run.shares.Units the gradient is decomposed into (record_groups)

    def extra(self, split: Any) -> Any:
        """The per-sample ids the loss packs: node ids on the graph task, else group ids."""
        return split_extra(self.data.task, split)


def split_extra(task: Task, split: Any) -> Any:
    """The per-sample ids a loss packs into `y_true`: node ids on the graph task, else groups."""
    return split.ids if task is Task.graph else split.groups


MAX_CACHED_RUNNERS = 8


class RunnerCache:
    """Runners built for one process's jobs, kept for its later jobs of the same structure (a
    sweep over seeds): XLA's compilation cache in TensorFlow never evicts, so compiling anew for
    every job would grow memory by about 16 MB per job, and reusing also saves each job its
    compile time. Owned by whatever runs the jobs (the CLI's task function) and passed down."""

    def __init__(self, size: int = MAX_CACHED_RUNNERS) -> None:
        self.size = size
        self.models_built = 0  # the first model has no earlier one to collect
        self._built: OrderedDict[str, tuple[Any, Any, Any, str, list[str]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._built)

    def find(self, key: str) -> tuple[Any, Any, Any, str, list[str]] | None:
        """Model, loss, runner, device and layer names built under `key`, or None."""
        if key not in self._built:
            return None
        self._built.move_to_end(key)
        return self._built[key]

    def keep(self, key: str, built: tuple[Any, Any, Any, str, list[str]]) -> None:
        """Keep `built` under `key`, forgetting the least recently used past `size`."""
        self._built[key] = built
        while len(self._built) > self.size:
            self._built.popitem(last=False)


def _fingerprint(*parts: Any) -> str:
    """A key that differs whenever anything compiled into a runner differs (arrays by hash)."""

    def default(value: Any) -> Any:
        import numpy as np

        if isinstance(value, np.ndarray):
            digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
            return {"array": digest, "shape": value.shape, "dtype": str(value.dtype)}
        if isinstance(value, np.generic):
            return value.item()
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        return repr(value)

    return json.dumps(parts, sort_keys=True, default=default)


def build_experiment(
    cfg: Config, loss: Any = None, runners: RunnerCache | None = None
) -> Experiment:
    """Build data, loss, model, optimizer and runner for a validated config.

    A runner in `runners` built for the same backend, model, optimizer settings, data shapes
    and loss configuration is reused: its model gets this seed's initial weights and its
    optimizer a fresh state, so the job trains exactly as a newly built one would.

    Args:
        cfg: a validated config.
        loss: a loss to use instead of the configured one (the benchmark's baselines).
        runners: the runners earlier jobs of this process built (None: build anew).
    """
    task = cfg.loss.training_task()
    # The data first: it needs no framework, and a config whose data would be degenerate is
    # refused before one loads.
    data, metric = _checked_data(cfg, task)
    units = _units(cfg, data)
    select_backend(cfg.backend.value)
    _seed_frameworks(cfg)
    if loss is None:
        loss = _configured_loss(cfg, task, data)
    y_train = loss.pack_targets(data.train.y, split_extra(task, data.train))
    membership = units.membership(data.train) if units is not None else None
    model, loss, runner, device, names = _runner(
        cfg, task, data, loss, y_train, membership, RunnerCache() if runners is None else runners
    )
    return Experiment(cfg, data, loss, model, runner, device, names, metric, units)


def _units(cfg: Config, data: Any) -> Any:
    """The units `trainer.record_groups` decomposes the gradient into (None when off),
    refused when the data has neither groups nor classes."""
    if not cfg.trainer.record_groups:
        return None
    from lossbench.config.checks import NO_UNITS, NO_UNITS_DATA
    from lossbench.run.shares import units_of

    units = units_of(data)
    if not len(units):
        received = f"true ({data.task.value} data: {NO_UNITS_DATA})"
        raise ConfigError("trainer.record_groups", NO_UNITS, received)
    return units


def _checked_data(cfg: Config, task: Task) -> tuple[Any, str | None]:
    """The config's dataset for `task` and the metric `trainer.select` picks epochs by (None:
    the last), refused by name when the loss, batch or selection cannot use the data."""
    from lossbench.data.load import checked_dataset
    from lossbench.run.metrics import selectable, selected_metric

    data = checked_dataset(task, cfg.data, cfg.seed)
    if data.task is not task:
        raise ConfigError(
            "loss",
            f"a loss for the {data.task.value} task this data has (see `lossbench --help`; "
            f"data.task sets the task)",
            f"{cfg.loss.name} (trains on the {task.value} task)",
        )
    if cfg.trainer.batch_size > len(data.train):
        raise ConfigError(
            "trainer.batch_size",
            f"an integer in [1, {len(data.train)}] (the training split's size)",
            cfg.trainer.batch_size,
        )
    # The data's metrics (its groups' too) are known now.
    return data, selected_metric(cfg.trainer.select, lambda: selectable(data))


def _seed_frameworks(cfg: Config) -> None:
    """Weights, data and batch order come from NumPy generators seeded by cfg.seed, the same on
    every backend; Keras's own seed only matters for layers that draw at run time."""
    if cfg.backend.value == "tensorflow":
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(cfg.seed)  # it imports TF, so only on TF
        # TensorFlow's own kernels need the switch to be deterministic; XLA's CPU programs are
        # deterministic as they are, and under the switch TensorFlow refuses to compile some
        # gradients (MaxPool's), so compiled runs leave it off (the same tables either way:
        # tests/test_pinned_tables.py).
        if cfg.trainer.jit_compile is False:
            tf.config.experimental.enable_op_determinism()
        else:  # an earlier job of this process may have switched it on; TF has no public off
            from tensorflow.python.framework import config as tf_config

            tf_config.disable_op_determinism()


def _configured_loss(cfg: Config, task: Task, data: Any) -> Any:
    """The config's loss variant, built for this data."""
    from lossbench.variants.registry import BuildContext

    width = data.train.y.shape[1]
    generated = cfg.data if isinstance(cfg.data, SyntheticData) else None  # a table: its width
    ctx = BuildContext(
        data=data,
        epsilon=cfg.scale.epsilon,
        n_outputs=generated.n_outputs if generated and task is not Task.grouped else width,
        n_classes=generated.n_classes if generated and task is not Task.multiclass else width,
        grid=(generated.grid[0], generated.grid[1]) if generated else (1, 1),
    )
    return cfg.loss.build(ctx)


def _check_fit(cfg: Config, model: Any, n_train: int, n_units: int | None) -> None:
    """Refuse a job whose per-step tables or new model (None: a kept one) would not fit the
    memory budget: the model from its variables' shapes and its layers' output shapes, before
    its weights are allocated."""
    from lossbench.run.models import activation_count

    sizes = None
    if model is not None:
        sizes = (model.count_params(), activation_count(model), len(layer_groups(model)[0]))
    for problem in fit_problems(cfg, n_train, n_units, sizes, memory_budget()):
        raise ConfigError(*problem)


def _choose_program(cfg: Config, runner: Any, model: Any, n_train: int) -> None:
    """Leave `runner` in the fastest program form for `model` where the config leaves it open
    and the model is not of dense layers only (`lossbench.trainer.programs`)."""
    from lossbench.trainer import programs
    from lossbench.trainer.base import CONV_UNROLL
    from lossbench.trainer.loop import chunk_capacity

    t, backend = cfg.trainer, cfg.backend.value
    if programs.runs_only_loop_layers(model) or (
        t.unroll is not None and t.jit_compile is not None
    ):
        return
    random = programs.draws_random_numbers(model)
    forms = programs.candidate_forms(runner.form, t.unroll, t.jit_compile, backend, CONV_UNROLL,
                                     random)  # fmt: skip
    choice = programs.choose_form(runner, forms, n_train, t.batch_size, chunk_capacity(n_train, t))
    if backend == "tensorflow" and not choice.form.jit_compile:
        # TensorFlow's own kernels are deterministic under this switch only, which applies to
        # programs traced after it (XLA's ran in the probe before it: it refuses some of them).
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        runner.use(choice.form, fresh=True)
        runner.choice = choice


def _runner(
    cfg: Config, task: Task, data: Any, loss: Any, y_train: Any, units: Any, runners: RunnerCache
) -> tuple[Any, ...]:
    """Model, loss, runner, device and layer names: a kept runner reset to this seed, or a new
    one (then kept in `runners`)."""
    import keras

    from lossbench.run.models import ModelBuilder, check_weights
    from lossbench.trainer import make_runner

    t, n_units = cfg.trainer, None if units is None else units.shape[-1]
    n_features = data.train.x.shape[1]
    builder = ModelBuilder(task, cfg.model, n_features, data.input_shape or (n_features,),
                           tuple(data.train.y.shape[1:]))  # fmt: skip
    key = _fingerprint(
        cfg.backend.value, task.value, cfg.model, t.optimizer.value, t.learning_rate, t.record,
        t.jit_compile, t.unroll, data.train.x.shape, data.input_shape, y_train.shape,
        type(loss).__name__, loss.get_config(), None if units is None else units.shape,
    )  # fmt: skip
    if (kept := runners.find(key)) is not None:
        _check_fit(cfg, None, len(data.train), n_units)
        model, loss, runner, device, names = kept
        builder.reseed(model, cfg.seed)
        runner.reset(data.train.x, y_train, units)
        if cfg.backend.value == "tensorflow" and not runner.jit_compile:  # as it was chosen
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        return model, loss, runner, device, names
    # A clean Keras state for every new model (reused processes leak nothing). The garbage
    # collection it does by default takes about 0.2 s and frees only earlier models.
    keras.backend.clear_session(free_memory=runners.models_built > 0)
    runners.models_built += 1
    model = builder.build(cfg.seed, lambda built: _check_fit(cfg, built, len(data.train), n_units))
    if isinstance(cfg.model, CustomModel):
        check_weights(model, str(cfg.model.target))
    names, slices = layer_groups(model)
    optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    optimizer = optimizers[t.optimizer.value](learning_rate=t.learning_rate)
    runner, device = make_runner(
        cfg.backend.value, model=model, loss=loss, optimizer=optimizer, x=data.train.x,
        y=y_train, layer_slices=slices, record=t.record, jit_compile=t.jit_compile,
        unroll=t.unroll, units=units,
    )  # fmt: skip
    _choose_program(cfg, runner, model, len(data.train))
    runners.keep(key, (model, loss, runner, device, names))
    return model, loss, runner, device, names
