"""The JAX runner: many optimizer steps inside one jitted `lax.fori_loop`.

The same contract as the TensorFlow runner: data stays on the device, a chunk gathers each batch
from an index matrix, applies the optimizer through Keras's stateless API, and writes the step's
loss and squared gradient norms as one row of a fixed-size buffer. Model and optimizer state
live here as arrays between chunks (donated to each call) and are written back to the Keras
variables by `sync`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lossbench.trainer.base import (
    RunnerBase,
    check_sample_values,
    gathers_chunk,
    step_flags,
    unit_matrix,
)
from lossbench.trainer.jax_adam import FlatAdam
from lossbench.trainer.jax_rewrites import rewritten_for_cpu


def device_name() -> str:
    """The device JAX runs on: the first accelerator when there is one, else the CPU."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        return "CPU"
    return f"{device.platform.upper()}:{device.id} ({device.device_kind})"


class JaxRunner(RunnerBase):
    """Runs chunks of training steps for one model, loss and optimizer (see `RunnerBase`)."""

    def __init__(self, model: Any, loss: Any, optimizer: Any, *args: Any, **kwargs: Any) -> None:
        variables = model.trainable_variables
        self.flat_adam = (
            FlatAdam(optimizer, [tuple(v.shape) for v in variables])
            if FlatAdam.fits(optimizer, variables)
            else None
        )
        super().__init__(model, loss, optimizer, *args, **kwargs)

    def _compile(self, jit_compile: bool) -> dict[str, Any]:
        # A compiled step on a CPU has its convolutions and max-pool gradients in the forms
        # XLA's CPU backend runs fast inside the chunk's loop (see `jax_rewrites`); a step
        # without them (the MLP's) compiles as before.
        on_cpu = device_name() == "CPU"
        maybe_jit = jax.jit if jit_compile else (lambda f, **_: f)
        return {
            "_train_step": rewritten_for_cpu(self._step) if jit_compile and on_cpu else self._step,
            "_chunk": maybe_jit(self._chunk_steps, donate_argnums=(0,)),
            "_block": maybe_jit(self._block_steps, donate_argnums=(0,)),
            "_forward": maybe_jit(self._forward_fn),
        }

    def snapshot(self) -> Any:
        """The state's arrays, copied to the host (a chunk donates the device's)."""
        return jax.tree.map(np.array, self.state)

    def restore(self, state: Any) -> None:
        """Put back a `snapshot`."""
        self.state = jax.tree.map(jax.device_put, state)

    def reset(self, x: np.ndarray, y: np.ndarray, units: np.ndarray | None = None) -> None:
        """Start over on new data from the model's current weights and a fresh optimizer state
        (see `TensorFlowRunner.reset`)."""
        # Fresh device buffers (the chunk donates them, and the Keras variables keep theirs),
        # put from the host: copying or converting on the device compiles a program per shape.
        self.x, self.y = jax.device_put(x), jax.device_put(y)
        self.u = jax.device_put(unit_matrix(units, len(x)))
        optimizer = self._fresh_optimizer
        if self.flat_adam is not None:
            optimizer = self.flat_adam.flatten(optimizer)
        self.state = (
            [jax.device_put(np.asarray(v.value)) for v in self.model.trainable_variables],
            [jax.device_put(np.asarray(v.value)) for v in self.model.non_trainable_variables],
            [jax.device_put(value) for value in optimizer],
        )

    def _loss_fn(self, trainable: Any, non_trainable: Any, xb: Any, yb: Any, m: Any):
        pred, non_trainable = self.model.stateless_call(trainable, non_trainable, xb, training=True)
        loss, parts = self.loss_and_components(yb, pred)
        loss = loss * m
        means = jnp.zeros((0,), jnp.float32)
        if parts:  # the components of this step, as auxiliary outputs
            means = jnp.stack([jnp.mean(c) for c in parts]).astype(jnp.float32)
        return loss, (non_trainable, means)

    def _step(
        self, state: Any, xb: Any, yb: Any, ub: Any, m: Any, units_on: Any
    ) -> tuple[Any, Any]:
        """One optimizer step on a batch; the new state and the step's row (with the units'
        contributions when `units_on` > 0)."""
        trainable, non_trainable, opt_vars = state
        grad_fn = jax.value_and_grad(self._loss_fn, has_aux=True)
        (loss, (step_state, means)), grads = grad_fn(trainable, non_trainable, xb, yb, m)
        units = None
        if self.n_units:  # from the weights and state this step started with
            width = 1 + 3 * self.n_units
            units = jax.lax.cond(
                units_on > 0,
                lambda: self._unit_stats(trainable, non_trainable, xb, yb, ub, m, grads),
                lambda: jnp.full((width,), jnp.nan, jnp.float32),
            )
        non_trainable = step_state
        if self.flat_adam is not None:
            trainable, opt_vars = self.flat_adam.apply(opt_vars, grads, trainable)
        else:
            trainable, opt_vars = self.optimizer.stateless_apply(opt_vars, grads, trainable)
        row = [jnp.reshape(loss, (1,))]
        if self.record:
            # One reduction per variable, summed per layer: XLA fuses each into the gradient's
            # producer, where a concatenation first would copy every gradient (about 15% of
            # the default MLP's step on a CPU).
            row += [sum(jnp.sum(jnp.square(grads[j])) for j in s)[None] for s in self.layer_slices]
        row.append(means)
        if units is not None:
            row.append(units)
        # One row per step, as on TensorFlow (see `split_records`).
        return (trainable, non_trainable, opt_vars), jnp.concatenate(row).astype(jnp.float32)

    def _unit_stats(
        self, trainable: Any, non_trainable: Any, xb: Any, yb: Any, ub: Any, m: Any, grads: Any
    ) -> Any:
        """``[|g|^2, |g_k|^2..., <g_k, g>..., n_k...]`` for the step's gradient g and each unit
        k's contribution g_k: the pullback of the per-sample values with the batch loss's
        cotangent kept on k's samples only, one vector-Jacobian product vmapped over units."""

        def values_of(weights: Any) -> Any:
            pred, _ = self.model.stateless_call(weights, non_trainable, xb, training=True)
            return self.sample_values(yb, pred)

        values, pullback = jax.vjp(values_of, trainable)
        check_sample_values(values.shape, xb.shape[0])
        cotangent = jax.grad(lambda v: self.loss.reduce(v) * m)(values)
        n = self.n_units
        masks = jnp.reshape(ub.T, (n, ub.shape[0]) + (1,) * (values.ndim - 1))
        (unit_grads,) = jax.vmap(pullback)(cotangent[None] * masks.astype(cotangent.dtype))
        sq = sum(jnp.sum(jnp.square(jnp.reshape(u, (n, -1))), axis=1) for u in unit_grads)
        dot = sum(
            jnp.sum(jnp.reshape(u, (n, -1)) * jnp.reshape(g, (1, -1)), axis=1)
            for u, g in zip(unit_grads, grads, strict=True)
        )
        grad_sq = sum(jnp.sum(jnp.square(g)) for g in grads)
        parts = [jnp.reshape(grad_sq, (1,)), sq, dot, jnp.sum(ub, axis=0)]
        return jnp.concatenate([p.astype(jnp.float32) for p in parts])

    def _block_steps(
        self, state: Any, x: Any, y: Any, u: Any, idx: Any, multiplier: Any, unit_steps: Any
    ) -> tuple[Any, Any]:
        """`idx.shape[0]` steps written out one after another (no loop: see `CONV_UNROLL`)."""
        rows = []
        for i in range(idx.shape[0]):
            batch = idx[i]
            state, row = self._train_step(
                state, x[batch], y[batch], u[batch], multiplier[i], unit_steps[i]
            )
            rows.append(row)
        return state, jnp.stack(rows)

    def _chunk_steps(
        self,
        state: Any,
        x: Any,
        y: Any,
        u: Any,
        idx: Any,
        n_steps: Any,
        multiplier: Any,
        unit_steps: Any,
    ) -> tuple[Any, Any]:
        capacity = idx.shape[0]
        batch_of = self._batches(x, y, u, idx)

        def step(i: Any, carry: Any) -> Any:
            state, rows = carry
            state, row = self._train_step(state, *batch_of(i), multiplier[i], unit_steps[i])
            return state, rows.at[i].set(row)

        rows = jnp.zeros((capacity, self.row_width), jnp.float32)
        return jax.lax.fori_loop(0, n_steps, step, (state, rows))

    @staticmethod
    def _batches(x: Any, y: Any, u: Any, idx: Any) -> Any:
        """Step i's batch, as a function of i: sliced from the chunk's batches gathered before
        the loop, or gathered in the loop when they would be too large (`gathers_chunk`)."""
        if gathers_chunk(idx.size, (x, y, u)):
            gathered = (x[idx], y[idx], u[idx])
            return lambda i: tuple(a[i] for a in gathered)
        return lambda i: (x[idx[i]], y[idx[i]], u[idx[i]])

    def run(
        self,
        idx: np.ndarray,
        n_steps: int,
        multiplier: np.ndarray,
        unit_steps: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Run `n_steps` steps; see `TensorFlowRunner.run`."""
        unit_steps = step_flags(unit_steps, len(multiplier))
        if self.unroll:
            parts = []
            for start, k in self.blocks(n_steps):
                self.state, rows = self._block(
                    self.state,
                    self.x,
                    self.y,
                    self.u,
                    jnp.asarray(idx[start : start + k]),
                    jnp.asarray(multiplier[start : start + k], jnp.float32),
                    jnp.asarray(unit_steps[start : start + k]),
                )
                parts.append(rows)
            return self.split(np.concatenate([np.asarray(rows) for rows in parts]), n_steps)
        self.state, packed = self._chunk(
            self.state,
            self.x,
            self.y,
            self.u,
            jnp.asarray(idx),
            jnp.asarray(n_steps, jnp.int32),
            jnp.asarray(multiplier, jnp.float32),
            jnp.asarray(unit_steps),
        )
        return self.split(np.asarray(packed), n_steps)

    def _forward_fn(self, trainable: Any, non_trainable: Any, x: Any) -> Any:
        pred, _ = self.model.stateless_call(trainable, non_trainable, x, training=False)
        return pred

    @staticmethod
    def peak_bytes() -> int | None:
        """Peak bytes this process has had in use on the first device, when it reports them
        (GPUs do, the CPU not)."""
        stats = jax.devices()[0].memory_stats()
        peak = (stats or {}).get("peak_bytes_in_use")
        return int(peak) if peak is not None else None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Model outputs for `x` (inference mode) with the current weights."""
        trainable, non_trainable, _ = self.state
        return np.asarray(self._forward(trainable, non_trainable, jnp.asarray(x)))

    def sync(self) -> None:
        """Write the runner's weights and optimizer state back into the Keras variables."""
        trainable, non_trainable, opt_vars = self.state
        if self.flat_adam is not None:
            opt_vars = self.flat_adam.unflatten(opt_vars)
        for variables, values in (
            (self.model.trainable_variables, trainable),
            (self.model.non_trainable_variables, non_trainable),
            (self.optimizer.variables, opt_vars),
        ):
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)
