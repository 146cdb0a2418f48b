"""The model: lossbench's MLP, or a user's backbone (`model=custom`), with the task's head.

Both take flat feature rows (the trainer gathers batches from one (n, features) array); a
dataset with an N-D `input_shape` (images) gets a Reshape first, so a user's backbone receives
its samples unflattened.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from lossbench.config.schema import CustomModel, MlpModel, Task
from lossbench.data.synthetic import N_BOX
from lossbench.errors import ConfigError

# Output activation by task: probabilities for the losses that take them, logits or raw values
# for the others.
HEAD_ACTIVATION: dict[Task, str] = {
    Task.binary: "sigmoid",
    Task.grouped: "linear",
    Task.multiclass: "linear",  # logits
    Task.grid: "sigmoid",
    Task.graph: "linear",
}


def task_head(task: Task, h: Any, target_shape: tuple[int, ...]) -> Any:
    """The task's output layers on features `h` (named `head`; multitask: `box_head` and
    `class_head`, concatenated)."""
    if task is Task.multitask:
        box = keras.layers.Dense(N_BOX, name="box_head")(h)
        logits = keras.layers.Dense(target_shape[0] - N_BOX, name="class_head")(h)
        return keras.layers.Concatenate(name="heads")([box, logits])
    out = keras.layers.Dense(
        math.prod(target_shape), activation=HEAD_ACTIVATION[task], name="head"
    )(h)
    if len(target_shape) > 1:
        out = keras.layers.Reshape(target_shape, name="grid")(out)
    return out


def build_model(
    task: Task, cfg: MlpModel, n_features: int, target_shape: tuple[int, ...]
) -> keras.Model:
    """Build an MLP whose layers have stable names (``hidden_0``, ..., ``head``).

    Stable names matter: they are the `layer` column of grad_norms.csv.

    Args:
        task: decides the head.
        cfg: hidden sizes and activation.
        n_features: input width.
        target_shape: shape of one sample's targets (without extras the loss packs).
    """
    inputs = keras.Input((n_features,), name="features")
    h = inputs
    for i, width in enumerate(cfg.hidden):
        h = keras.layers.Dense(width, activation=cfg.activation, name=f"hidden_{i}")(h)
    return keras.Model(inputs, task_head(task, h, target_shape), name=f"mlp_{task.value}")


def initialize_weights(model: keras.Model, seed: int) -> None:
    """Set every weight of the MLP from NumPy: Glorot-uniform kernels, zero biases.

    Keras's initializers draw different numbers on each backend; drawing them here makes a run
    start from the same weights on TensorFlow and JAX, so their tables can be compared.
    """
    rng = np.random.default_rng([seed, 2])
    for variable in model.weights:
        shape = tuple(variable.shape)
        if len(shape) == 2:
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            value = rng.uniform(-limit, limit, size=shape)
        else:
            value = np.zeros(shape)
        variable.assign(value.astype(variable.dtype))


@dataclass
class ModelBuilder:
    """Builds the configured model for a task and data shape, and seeds its weights.

    The MLP's weights are drawn by `initialize_weights`. A user's model starts from each layer's
    own initializer: Keras draws an unseeded initializer's seed from Python's `random`, which is
    seeded here just before the user's function runs, so the same seed builds the same weights
    (a reused model gets those of a twin built with the new seed).
    """

    task: Task
    cfg: MlpModel | CustomModel
    n_features: int
    input_shape: tuple[int, ...]
    target_shape: tuple[int, ...]

    def build(
        self, seed: int, before_weights: Callable[[keras.Model], None] | None = None
    ) -> keras.Model:
        """A new model with the weights of `seed`.

        Args:
            before_weights: called with the built model before any weight is allocated (a user's
                model: its variables have shapes and no values yet), to refuse one that would
                not fit in memory before it is made.
        """
        if isinstance(self.cfg, MlpModel):
            model = build_model(self.task, self.cfg, self.n_features, self.target_shape)
            if before_weights is not None:
                before_weights(model)
            initialize_weights(model, seed)
            return model
        random.seed(seed)
        # Inside a stateless scope Keras creates variables with their shapes and initializers
        # and draws their values only when the outermost scope is left with initialization on.
        with keras.StatelessScope(initialize_variables=False):
            model = self._custom()
        if before_weights is not None:
            before_weights(model)
        with keras.StatelessScope():
            pass  # leaving it initializes the variables created above
        return model

    def reseed(self, model: keras.Model, seed: int) -> None:
        """Give a built model (and its layers' state) the weights `build(seed)` would."""
        if isinstance(self.cfg, MlpModel):
            initialize_weights(model, seed)
            return
        twin = self.build(seed)
        for variable, value in zip(model.variables, twin.variables, strict=True):
            variable.assign(value)

    def _custom(self) -> keras.Model:
        from lossbench.user_code import load_target

        target = str(self.cfg.target)
        fn = load_target(target, "model.target", kind="any")
        backbone = _called(fn, target, self.input_shape, dict(self.cfg.params))
        inputs = keras.Input((self.n_features,), name="features")
        x = inputs
        if self.input_shape != (self.n_features,):
            x = keras.layers.Reshape(self.input_shape, name="input_shape")(x)
        try:
            h = backbone(x)
        except Exception as error:
            raise _problem(
                target, f"a model that takes inputs of shape {self.input_shape}", error
            ) from error
        if not self.cfg.head:
            _check_output(target, self.task, h, self.target_shape)
            return keras.Model(inputs, h, name=f"custom_{self.task.value}")
        if len(h.shape) > 2:
            h = keras.layers.Flatten(name="features_flat")(h)
        out = task_head(self.task, h, self.target_shape)
        return keras.Model(inputs, out, name=f"custom_{self.task.value}")


def _problem(target: str, expected: str, error: BaseException) -> ConfigError:
    detail = " ".join(str(error).split())[:300] or "no message"
    return ConfigError("model.target", expected, f"{target} ({type(error).__name__}: {detail})")


def _called(fn: Callable[..., Any], target: str, shape: tuple[int, ...], params: dict) -> Any:
    """The backbone `fn(input_shape, **params)` returns: a Keras model or layer."""
    if not callable(fn):
        raise ConfigError(
            "model.target",
            "a function fn(input_shape, **params)",
            f"{target} ({type(fn).__name__})",
        )
    try:
        backbone = fn(shape, **params)
    except Exception as error:
        raise _problem(target, "a function that builds a Keras model", error) from error
    if not isinstance(backbone, keras.layers.Layer):  # keras.Model is a Layer
        raise ConfigError(
            "model.target",
            "a function that returns a keras.Model or keras.layers.Layer",
            f"{target} (returned {type(backbone).__name__})",
        )
    return backbone


def _check_output(target: str, task: Task, out: Any, target_shape: tuple[int, ...]) -> None:
    """model.head=false: the user's outputs must have the task's shape."""
    received = tuple(out.shape[1:])
    if received != target_shape:
        what = {Task.binary: "P(y=1)", Task.multiclass: "class logits"}.get(task, "outputs")
        raise ConfigError(
            "model.target",
            f"a model ending in the {task.value} task's {what}: shape (batch, "
            f"{', '.join(map(str, target_shape))}) (or model.head=true)",
            f"{target} (output shape (batch, {', '.join(map(str, received))}))",
        )


def check_weights(model: keras.Model, target: str) -> None:
    """Refuse a model whose initial weights hold NaN or infinite values."""
    for variable in model.weights:
        value = keras.ops.convert_to_numpy(variable)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            bad = int((~np.isfinite(value)).sum())
            raise ConfigError(
                "model.target",
                "a model whose initial weights are finite",
                f"{target} ({bad} NaN or infinite values in {variable.path})",
            )


def activation_count(model: keras.Model) -> int:
    """Values one sample's forward pass produces: the outputs of every layer, nested models'
    included (a layer whose output is not known counts none)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += activation_count(layer)
            continue
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        total += math.prod(int(n) for n in shape[1:] if n is not None)
    return total
