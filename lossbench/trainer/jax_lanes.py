"""Several seeds of one JAX runner trained as one compiled program: `jax.vmap` over lanes.

Every lane has its own weights, optimizer state, training data and batch order, stacked along a
leading axis; the chunk program is the single runner's (`JaxRunner._chunk_steps`) mapped over
that axis, so one launch advances every seed by a chunk of steps. On a GPU a small model's step
is bound by launches, and S seeds cost little more than one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lossbench.trainer.base import step_flags
from lossbench.trainer.jax_backend import JaxRunner

# Stacking and slicing happen on the host: on the device each would compile a program for
# every array shape (a second or more for a small model), and these arrays are small.


def _stack(trees: Sequence[Any]) -> Any:
    return jax.tree.map(
        lambda *leaves: jax.device_put(np.stack([np.asarray(a) for a in leaves])), *trees
    )


def _take(tree: Any, lane: Any) -> Any:
    return jax.tree.map(lambda leaf: leaf[lane], tree)


class JaxLanes:
    """`lossbench.trainer.loop.Lanes` over one `JaxRunner`'s model, loss and optimizer.

    Args:
        runner: the runner whose compiled step every lane runs (its own state is not used).
        lanes: each lane's (state, x, y, u): initial weights and optimizer state as
            `runner.state` holds them, and its training data and unit membership (`runner.u`),
            all of one shape across lanes.
        jit_compile: compile the chunk with XLA (as the runner does).
    """

    def __init__(
        self, runner: JaxRunner, lanes: Sequence[tuple[Any, Any, Any]], jit_compile: bool
    ) -> None:
        self.runner = runner
        self.component_names, self.n_units = runner.component_names, runner.n_units
        self.state, self.x, self.y, self.u = _stack(lanes)
        self._frozen: dict[int, Any] = {}
        self._host: Any = None  # the state on the host, fetched once after each chunk
        # Lanes differ in state, data and batch order; the step count, the loss schedule's
        # multipliers and the steps that record units are the same for all.
        chunk = jax.vmap(runner._chunk_steps, in_axes=(0, 0, 0, 0, 0, None, None, None))
        self._chunk = jax.jit(chunk, donate_argnums=(0,)) if jit_compile else chunk
        # One program picks a lane's weights and runs the forward pass: evaluating S lanes costs
        # S calls, not S calls plus one slicing call per weight array.
        self._forward_lane = jax.jit(
            lambda trainable, non_trainable, lane, x: runner._forward_fn(
                _take(trainable, lane), _take(non_trainable, lane), x
            )
        )

    def run(
        self,
        idx: list[np.ndarray],
        n_steps: int,
        multiplier: np.ndarray,
        unit_steps: np.ndarray | None = None,
    ) -> list[dict[str, np.ndarray]]:
        """Run `n_steps` steps in every lane; lane k's batches are the rows of `idx[k]`."""
        self.state, packed = self._chunk(
            self.state,
            self.x,
            self.y,
            self.u,
            jnp.asarray(np.stack(idx)),
            jnp.asarray(n_steps, jnp.int32),
            jnp.asarray(multiplier, jnp.float32),
            jnp.asarray(step_flags(unit_steps, len(multiplier))),
        )
        packed = np.asarray(packed)
        self._host = None
        return [self.runner.split(rows, n_steps) for rows in packed]

    def freeze(self, lane: int) -> None:
        """Keep lane `lane`'s weights as they are now; later chunks still compute it (a lane
        cannot leave a compiled program) but its result is what a run stopped here holds."""
        # A copy: the host view of a CPU buffer may share memory that the next chunk reuses.
        self._frozen[lane] = jax.tree.map(np.array, self.lane_state(lane))

    def lane_state(self, lane: int) -> Any:
        """Lane `lane`'s (trainable, non-trainable, optimizer) arrays, on the host."""
        if lane in self._frozen:
            return self._frozen[lane]
        if self._host is None:
            self._host = jax.device_get(self.state)
        return _take(self._host, lane)

    def lane(self, lane: int) -> _LaneView:
        """A runner-like view of one lane: `predict` with its weights, `sync` to its weights."""
        return _LaneView(self, lane)

    def sync(self) -> None:
        """Nothing here: each lane's weights are written back by its view's `sync`."""


class _LaneView:
    def __init__(self, lanes: JaxLanes, lane: int) -> None:
        self.lanes, self.index = lanes, lane
        self.component_names, self.n_units = lanes.component_names, lanes.n_units

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Model outputs for `x` (inference mode) with this lane's current weights."""
        lanes = self.lanes
        if self.index in lanes._frozen:
            trainable, non_trainable, _ = jax.device_put(lanes._frozen[self.index])
            return np.asarray(lanes.runner._forward(trainable, non_trainable, jnp.asarray(x)))
        trainable, non_trainable, _ = lanes.state
        lane = jnp.asarray(self.index, jnp.int32)
        return np.asarray(lanes._forward_lane(trainable, non_trainable, lane, jnp.asarray(x)))

    def sync(self) -> None:
        """Write this lane's weights and optimizer state into the shared Keras variables."""
        self.lanes.runner.state = self.lanes.lane_state(self.index)
        self.lanes.runner.sync()
