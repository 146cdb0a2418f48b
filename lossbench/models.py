"""The small Keras model: an MLP from config with the output head the task needs."""

from __future__ import annotations

import math

import keras
import numpy as np

from lossbench.config.schema import ModelConfig, Task
from lossbench.data import N_BOX

# Output activation by task: probabilities for the losses that take them, logits or raw values
# for the others.
HEAD_ACTIVATION: dict[Task, str] = {
    Task.binary: "sigmoid",
    Task.grouped: "linear",
    Task.multiclass: "linear",  # logits
    Task.grid: "sigmoid",
    Task.graph: "linear",
}


def build_model(
    task: Task, cfg: ModelConfig, n_features: int, target_shape: tuple[int, ...]
) -> keras.Model:
    """Build an MLP whose layers have stable names (``hidden_0``, ..., ``head``).

    Stable names matter: they are the `layer` column of grad_norms.csv. The multitask model has
    two heads, ``box_head`` and ``class_head`` (logits), concatenated into one output.

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
    if task is Task.multitask:
        box = keras.layers.Dense(N_BOX, name="box_head")(h)
        logits = keras.layers.Dense(target_shape[0] - N_BOX, name="class_head")(h)
        out = keras.layers.Concatenate(name="heads")([box, logits])
    else:
        units = math.prod(target_shape)
        out = keras.layers.Dense(units, activation=HEAD_ACTIVATION[task], name="head")(h)
        if len(target_shape) > 1:
            out = keras.layers.Reshape(target_shape, name="grid")(out)
    return keras.Model(inputs, out, name=f"mlp_{task.value}")


def initialize_weights(model: keras.Model, seed: int) -> None:
    """Set every weight from NumPy: Glorot-uniform kernels, zero biases.

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
