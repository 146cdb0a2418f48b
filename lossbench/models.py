"""The small Keras model: an MLP from config with the output head the task needs."""

from __future__ import annotations

import keras

from lossbench.config import ModelConfig, Task

# (units or None for "one per target column", activation) of the output head, by task.
HEADS: dict[Task, tuple[int | None, str]] = {
    Task.binary: (1, "sigmoid"),
    Task.grouped: (None, "linear"),
}


def build_model(task: Task, cfg: ModelConfig, n_features: int, n_targets: int) -> keras.Model:
    """Build an MLP whose layers have stable names (``hidden_0``, ..., ``head``).

    Stable names matter: they are the `layer` column of grad_norms.csv.

    Args:
        task: decides the head.
        cfg: hidden sizes and activation.
        n_features: input width.
        n_targets: target columns (used by heads without a fixed width).
    """
    units, activation = HEADS[task]
    layers: list[keras.layers.Layer] = [keras.Input((n_features,), name="features")]
    for i, width in enumerate(cfg.hidden):
        layers.append(keras.layers.Dense(width, activation=cfg.activation, name=f"hidden_{i}"))
    layers.append(keras.layers.Dense(units or n_targets, activation=activation, name="head"))
    return keras.Sequential(layers, name=f"mlp_{task.value}")
