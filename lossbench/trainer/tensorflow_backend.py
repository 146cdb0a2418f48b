"""The TensorFlow runner: many optimizer steps inside one XLA-compiled program.

Data stays on the device as tensors; a chunk receives a (C, B) matrix of sample indices and a step
count, gathers each batch in the graph, applies the optimizer, and writes the step's loss and
squared gradient norms as one row of a fixed-size TensorArray that comes back to the host once per
chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from lossbench.records import split_records
from lossbench.trainer.base import RunnerBase


def device_name() -> str:
    """The device TensorFlow places ops on: a GPU when one is visible, else the CPU."""
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0]
        )
        return f"GPU:0 ({details.get('device_name', 'unknown')})"
    return "CPU"


def peak_bytes() -> int | None:
    """Peak bytes in use on the first GPU; None without one."""
    if not tf.config.list_logical_devices("GPU"):
        return None
    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])


class TensorFlowRunner(RunnerBase):
    """Runs chunks of training steps for one model, loss and optimizer (see `RunnerBase`)."""

    def _compile(self, jit_compile: bool) -> None:
        model = self.model
        self.variables = model.trainable_variables
        self._chunk = tf.function(self._chunk_steps, jit_compile=jit_compile)
        self._block = tf.function(self._block_steps, jit_compile=jit_compile)
        self._forward = tf.function(
            lambda x: model(x, training=False), jit_compile=jit_compile, reduce_retracing=True
        )

    def reset(self, x: np.ndarray, y: np.ndarray) -> None:
        """Start over on new data of the same shapes with a fresh optimizer state; the model's
        weights are whatever its variables hold (set them first). The compiled programs are
        kept, which is the point: a sweep's jobs over seeds compile once."""
        self.x, self.y = tf.constant(x), tf.constant(y)
        for variable, value in zip(self.optimizer.variables, self._fresh_optimizer, strict=True):
            variable.assign(value)

    def _step(self, x: Any, y: Any, batch: Any, m: Any) -> Any:
        """One optimizer step on the samples `batch`; its row [loss, layer_sq..., parts...]."""
        xb, yb = tf.gather(x, batch), tf.gather(y, batch)
        with tf.GradientTape() as tape:
            pred = self.model(xb, training=True)
            loss, step_parts = self.loss_and_components(yb, pred)
            # The schedule's value is an input of the program, so every step sees its own.
            loss = loss * m
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply(grads, self.variables)
        row = [tf.reshape(tf.cast(loss, tf.float32), [1])]
        if self.record:
            row.append(self._layer_sq(grads))
        if self.component_names:
            row.append(tf.cast(tf.stack([tf.reduce_mean(c) for c in step_parts]), tf.float32))
        return tf.concat(row, 0)

    def _block_steps(self, x: Any, y: Any, idx: Any, multiplier: Any) -> Any:
        """`idx.shape[0]` steps written out one after another (no loop: see `CONV_UNROLL`)."""
        return tf.stack([self._step(x, y, idx[i], multiplier[i]) for i in range(idx.shape[0])])

    def _chunk_steps(self, x: Any, y: Any, idx: Any, n_steps: Any, multiplier: Any) -> Any:
        # One row per step (see `split_records`); the TensorArray lowers to an in-place
        # dynamic-update-slice under XLA.
        rows = tf.TensorArray(tf.float32, size=idx.shape[0], element_shape=[self.row_width])
        for i in tf.range(n_steps):
            rows = rows.write(i, self._step(x, y, idx[i], multiplier[i]))
        # Rows past n_steps were never written; they stack as zeros and the host drops them.
        return rows.stack()

    def _layer_sq(self, grads: Sequence[Any]) -> Any:
        """Squared gradient norm per layer: one reduction over each layer's flattened gradients
        (fewer, larger XLA fusions than one reduction per variable)."""
        per_layer = []
        for s in self.layer_slices:
            flat = tf.concat([tf.reshape(tf.cast(grads[j], tf.float32), [-1]) for j in s], 0)
            per_layer.append(tf.reduce_sum(tf.square(flat)))
        return tf.stack(per_layer)

    def run(self, idx: np.ndarray, n_steps: int, multiplier: np.ndarray) -> dict[str, np.ndarray]:
        """Run `n_steps` steps; row k of `idx` holds step k's sample indices.

        Args:
            idx: (capacity, batch) sample indices; rows past `n_steps` are padding.
            n_steps: steps to run.
            multiplier: (capacity,) factor applied to each step's loss (the loss schedule).

        Returns:
            ``loss`` (n_steps,), ``layer_sq`` (n_steps, n_layers): squared gradient norms, and
            ``components`` (n_steps, n_components): the batch means of the loss's components.
        """
        if self.unroll:
            packed = np.concatenate([
                self._block(self.x, self.y, tf.constant(idx[start : start + k]),
                            tf.constant(multiplier[start : start + k], tf.float32)).numpy()
                for start, k in self.blocks(n_steps)
            ])  # fmt: skip
            return split_records(packed, n_steps, len(self.layer_slices), self.record)
        packed = self._chunk(
            self.x,
            self.y,
            tf.constant(idx),
            tf.constant(n_steps),
            tf.constant(multiplier, tf.float32),
        )
        return split_records(packed.numpy(), n_steps, len(self.layer_slices), self.record)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Model outputs for `x` (inference mode)."""
        return self._forward(tf.constant(x)).numpy()

    def sync(self) -> None:
        """Nothing to do: the weights live in the Keras variables throughout."""
