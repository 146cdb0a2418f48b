"""The TensorFlow runner: many optimizer steps inside one XLA-compiled program.

Data stays on the device as tensors; a chunk receives a (C, B) matrix of sample indices and a step
count, gathers each batch in the graph, applies the optimizer, and writes the step's loss and
squared gradient norms into fixed-size buffers that come back to the host once per chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf


def device_name() -> str:
    """The device TensorFlow places ops on: a GPU when one is visible, else the CPU."""
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0]
        )
        return f"GPU:0 ({details.get('device_name', 'unknown')})"
    return "CPU"


class TensorFlowRunner:
    """Runs chunks of training steps for one model, loss and optimizer.

    Args:
        model: a built Keras model.
        loss: a Keras loss returning the batch's scalar loss.
        optimizer: a Keras optimizer (built here for the model's trainable variables).
        x, y: training features and packed targets.
        sample_weight: optional per-sample weights, gathered with their samples.
        layer_slices: for each trainable layer, the indices of its variables.
        record: compute gradient norms (the loss is always recorded).
        jit_compile: compile chunks with XLA.
    """

    def __init__(
        self,
        model: keras.Model,
        loss: keras.losses.Loss,
        optimizer: keras.optimizers.Optimizer,
        x: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None,
        layer_slices: Sequence[Sequence[int]],
        record: bool,
        jit_compile: bool,
    ) -> None:
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.variables = model.trainable_variables
        optimizer.build(self.variables)
        self.x, self.y = tf.constant(x), tf.constant(y)
        self.w = None if sample_weight is None else tf.constant(sample_weight)
        self.layer_slices = [list(s) for s in layer_slices]
        self.record = record
        self._chunk = tf.function(self._chunk_steps, jit_compile=jit_compile)
        self._forward = tf.function(
            lambda x: model(x, training=False), jit_compile=jit_compile, reduce_retracing=True
        )

    def _chunk_steps(self, x: Any, y: Any, w: Any, idx: Any, n_steps: Any) -> dict[str, Any]:
        capacity = idx.shape[0]
        n_layers = len(self.layer_slices)
        losses = tf.zeros([capacity], tf.float32)
        layer_sq = tf.zeros([capacity, n_layers], tf.float32)
        for i in tf.range(n_steps):
            rows = idx[i]
            xb, yb = tf.gather(x, rows), tf.gather(y, rows)
            wb = None if w is None else tf.gather(w, rows)
            with tf.GradientTape() as tape:
                loss = self.loss(yb, self.model(xb, training=True), sample_weight=wb)
            grads = tape.gradient(loss, self.variables)
            self.optimizer.apply(grads, self.variables)
            at = tf.reshape(i, [1, 1])
            losses = tf.tensor_scatter_nd_update(losses, at, tf.reshape(loss, [1]))
            if self.record:
                sq = [tf.reduce_sum(tf.square(tf.cast(g, tf.float32))) for g in grads]
                per_layer = tf.stack([tf.add_n([sq[j] for j in s]) for s in self.layer_slices])
                layer_sq = tf.tensor_scatter_nd_update(layer_sq, at, per_layer[None, :])
        return {"loss": losses, "layer_sq": layer_sq}

    def run(self, idx: np.ndarray, n_steps: int) -> dict[str, np.ndarray]:
        """Run `n_steps` steps; row k of `idx` holds step k's sample indices.

        Returns:
            ``loss`` (n_steps,) and ``layer_sq`` (n_steps, n_layers): squared gradient norms.
        """
        out = self._chunk(self.x, self.y, self.w, tf.constant(idx), tf.constant(n_steps))
        return {k: v.numpy()[:n_steps] for k, v in out.items()}

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Model outputs for `x` (inference mode)."""
        return self._forward(tf.constant(x)).numpy()
