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

from lossbench.trainer.base import (
    RunnerBase,
    check_sample_values,
    gathers_chunk,
    step_flags,
    unit_matrix,
)


def device_name() -> str:
    """The device TensorFlow places ops on: a GPU when one is visible, else the CPU."""
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0]
        )
        return f"GPU:0 ({details.get('device_name', 'unknown')})"
    return "CPU"


class TensorFlowRunner(RunnerBase):
    """Runs chunks of training steps for one model, loss and optimizer (see `RunnerBase`)."""

    def _compile(self, jit_compile: bool) -> dict[str, Any]:
        model = self.model
        self.variables = model.trainable_variables
        return {
            "_chunk": tf.function(self._chunk_steps, jit_compile=jit_compile),
            "_block": tf.function(self._block_steps, jit_compile=jit_compile),
            "_forward": tf.function(
                lambda x: model(x, training=False), jit_compile=jit_compile, reduce_retracing=True
            ),
        }

    def snapshot(self) -> Any:
        """The model's variables (weights, statistics, seed states) and the optimizer's."""
        return [v.numpy() for v in (*self.model.variables, *self.optimizer.variables)]

    def restore(self, state: Any) -> None:
        """Put back a `snapshot`."""
        variables = (*self.model.variables, *self.optimizer.variables)
        for variable, value in zip(variables, state, strict=True):
            variable.assign(value)

    def reset(self, x: np.ndarray, y: np.ndarray, units: np.ndarray | None = None) -> None:
        """Start over on new data of the same shapes with a fresh optimizer state; the model's
        weights are whatever its variables hold (set them first). The compiled programs are
        kept, which is the point: a sweep's jobs over seeds compile once."""
        self.x, self.y = tf.constant(x), tf.constant(y)
        self.u = tf.constant(unit_matrix(units, len(x)))
        for variable, value in zip(self.optimizer.variables, self._fresh_optimizer, strict=True):
            variable.assign(value)

    def _step(self, x: Any, y: Any, u: Any, batch: Any, m: Any, units_on: Any) -> Any:
        """One optimizer step on the samples `batch`; its row [loss, layer_sq..., parts...]
        (then the units' columns when `units_on` > 0, see `split_records`)."""
        batches = (tf.gather(x, batch), tf.gather(y, batch), tf.gather(u, batch))
        return self._batch_step(*batches, m, units_on)

    def _batch_step(self, xb: Any, yb: Any, ub: Any, m: Any, units_on: Any) -> Any:
        """`_step` on a gathered batch."""
        with tf.GradientTape() as tape:
            pred = self.model(xb, training=True)
            loss, step_parts = self.loss_and_components(yb, pred)
            # The schedule's value is an input of the program, so every step sees its own.
            loss = loss * m
        grads = tape.gradient(loss, self.variables)
        units = None
        if self.n_units:  # from the weights this step starts with, before they move
            width = 1 + 3 * self.n_units
            units = tf.cond(
                units_on > 0,
                lambda: self._unit_stats(xb, yb, ub, m, grads),
                lambda: tf.fill([width], float("nan")),
            )
        self.optimizer.apply(grads, self.variables)
        row = [tf.reshape(tf.cast(loss, tf.float32), [1])]
        if self.record:
            row.append(self._layer_sq(grads))
        if self.component_names:
            row.append(tf.cast(tf.stack([tf.reduce_mean(c) for c in step_parts]), tf.float32))
        if units is not None:
            row.append(units)
        return tf.concat(row, 0)

    def _unit_stats(self, xb: Any, yb: Any, ub: Any, m: Any, grads: Any) -> Any:
        """``[|g|^2, |g_k|^2..., <g_k, g>..., n_k...]`` (see `JaxRunner._unit_stats`): one
        gradient of the per-sample values per unit, with the batch loss's cotangent kept on the
        unit's samples. The forward pass is the model's stateless call, so nothing the step
        itself computes or updates (a normalization's statistics, a dropout's seed) changes."""
        model = self.model
        weights = [v.value for v in model.trainable_variables]
        state = [v.value for v in model.non_trainable_variables]
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(weights)
            pred, _ = model.stateless_call(weights, state, xb, training=True)
            values = self.sample_values(yb, pred)
            loss = self.loss.reduce(values) * m
        check_sample_values(values.shape, xb.shape[0])
        cotangent = tape.gradient(loss, values)
        flat = tf.concat([tf.reshape(tf.cast(g, tf.float32), [-1]) for g in grads], 0)
        ones = [1] * (len(values.shape) - 1)
        sq, dot = [], []
        for k in range(self.n_units):
            mask = tf.reshape(tf.cast(ub[:, k], cotangent.dtype), [-1, *ones])
            unit = tape.gradient(values, weights, output_gradients=cotangent * mask)
            unit_flat = tf.concat(
                [
                    tf.reshape(tf.cast(tf.zeros_like(w) if g is None else g, tf.float32), [-1])
                    for g, w in zip(unit, weights, strict=True)
                ],
                0,
            )
            sq.append(tf.reduce_sum(tf.square(unit_flat)))
            dot.append(tf.reduce_sum(unit_flat * flat))
        grad_sq = tf.reshape(tf.reduce_sum(tf.square(flat)), [1])
        return tf.concat([grad_sq, tf.stack(sq), tf.stack(dot), tf.reduce_sum(ub, axis=0)], 0)

    def _block_steps(
        self, x: Any, y: Any, u: Any, idx: Any, multiplier: Any, unit_steps: Any
    ) -> Any:
        """`idx.shape[0]` steps written out one after another (no loop: see `CONV_UNROLL`)."""
        return tf.stack(
            [self._step(x, y, u, idx[i], multiplier[i], unit_steps[i]) for i in range(idx.shape[0])]
        )

    def _chunk_steps(
        self, x: Any, y: Any, u: Any, idx: Any, n_steps: Any, multiplier: Any, unit_steps: Any
    ) -> Any:
        # One row per step (see `split_records`); the TensorArray lowers to an in-place
        # dynamic-update-slice under XLA.
        rows = tf.TensorArray(tf.float32, size=idx.shape[0], element_shape=[self.row_width])
        if gathers_chunk(idx.shape[0] * idx.shape[1], (x, y, u)):  # see `gathers_chunk`
            xs, ys, us = tf.gather(x, idx), tf.gather(y, idx), tf.gather(u, idx)
            for i in tf.range(n_steps):
                row = self._batch_step(xs[i], ys[i], us[i], multiplier[i], unit_steps[i])
                rows = rows.write(i, row)
        else:
            for i in tf.range(n_steps):
                rows = rows.write(i, self._step(x, y, u, idx[i], multiplier[i], unit_steps[i]))
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

    def run(
        self,
        idx: np.ndarray,
        n_steps: int,
        multiplier: np.ndarray,
        unit_steps: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Run `n_steps` steps; row k of `idx` holds step k's sample indices.

        Args:
            idx: (capacity, batch) sample indices; rows past `n_steps` are padding.
            n_steps: steps to run.
            multiplier: (capacity,) factor applied to each step's loss (the loss schedule).
            unit_steps: (capacity,) 1 where a step records its units' contributions (a runner
                built with units); None: none does.

        Returns:
            ``loss`` (n_steps,), ``layer_sq`` (n_steps, n_layers): squared gradient norms,
            ``components`` (n_steps, n_components): the batch means of the loss's components,
            and with units ``grad_sq``, ``unit_sq``, ``unit_dot`` and ``unit_count`` (see
            `split_records`).
        """
        flags = step_flags(unit_steps, len(multiplier))
        if self.unroll:
            packed = np.concatenate(
                [
                    self._block(
                        self.x,
                        self.y,
                        self.u,
                        tf.constant(idx[start : start + k]),
                        tf.constant(multiplier[start : start + k], tf.float32),
                        tf.constant(flags[start : start + k]),
                    ).numpy()
                    for start, k in self.blocks(n_steps)
                ]
            )
            return self.split(packed, n_steps)
        packed = self._chunk(
            self.x,
            self.y,
            self.u,
            tf.constant(idx),
            tf.constant(n_steps),
            tf.constant(multiplier, tf.float32),
            tf.constant(flags),
        )
        return self.split(packed.numpy(), n_steps)

    @staticmethod
    def peak_bytes() -> int | None:
        """Peak bytes this process has had in use on the first GPU; None without one."""
        if not tf.config.list_logical_devices("GPU"):
            return None
        return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Model outputs for `x` (inference mode)."""
        return self._forward(tf.constant(x)).numpy()

    def sync(self) -> None:
        """Nothing to do: the weights live in the Keras variables throughout."""
