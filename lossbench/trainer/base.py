"""What the loop drives and what both backends' runners share.

A runner holds one model, loss and optimizer with the training data on its device, and runs
chunks of optimizer steps as one compiled program (see the backend modules).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

# Steps per unrolled program for models with convolutions on TensorFlow on a CPU. XLA's CPU
# backend runs a convolution with its fast kernels only in one layout, and rewrites the others
# into it only outside loops (see `jax_rewrites`): inside the chunk's loop, the gradient
# convolutions of `make bench`'s small CNN ran 4-5x slower per step than written out. The JAX
# runner rewrites them itself and keeps its loop; a TensorFlow graph leaves no such place. 4
# steps per program compile about as fast as the loop did; 8 or more gain a few percent per
# step for twice the compile time or more.
CONV_UNROLL = 4


def has_convolution_layer(model: Any) -> bool:
    """Whether `model`, or a model nested in it, has a convolution layer."""
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        if "Conv" in type(layer).__name__:
            return True
        stack.extend(getattr(layer, "layers", []))
    return False


def default_unroll(model: Any, device: str, backend: str) -> int:
    """`CONV_UNROLL` for a model with a convolution layer on TensorFlow on a CPU, else 0 (one
    loop per chunk)."""
    if backend == "tensorflow" and device == "CPU" and has_convolution_layer(model):
        return CONV_UNROLL
    return 0


class Runner(Protocol):
    component_names: tuple[str, ...]

    def run(
        self, idx: np.ndarray, n_steps: int, multiplier: np.ndarray
    ) -> dict[str, np.ndarray]: ...

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def sync(self) -> None: ...

    def reset(self, x: np.ndarray, y: np.ndarray) -> None: ...


class RunnerBase:
    """What both backends' runners share: their arguments and the optimizer's fresh state.

    Args:
        model: a built Keras model.
        loss: a Keras loss; a lossbench loss with components hands them to the step.
        optimizer: a Keras optimizer (built here for the model's trainable variables).
        x, y: training features and packed targets.
        layer_slices: for each trainable layer, the indices of its variables.
        record: compute gradient norms (the loss is always recorded).
        jit_compile: compile chunks with XLA.
        unroll: 0 runs a chunk's steps as one compiled loop; k > 0 as programs of k steps
            written out one after another, called in turn (`default_unroll` says when).
    """

    def __init__(
        self,
        model: Any,
        loss: Any,
        optimizer: Any,
        x: np.ndarray,
        y: np.ndarray,
        layer_slices: Sequence[Sequence[int]],
        record: bool,
        jit_compile: bool,
        unroll: int = 0,
    ) -> None:
        import keras

        self.model, self.loss, self.optimizer = model, loss, optimizer
        optimizer.build(model.trainable_variables)
        # The optimizer's fresh state, restored by `reset` when a later job reuses this runner.
        self._fresh_optimizer = [keras.ops.convert_to_numpy(v) for v in optimizer.variables]
        self.layer_slices = [list(s) for s in layer_slices]
        self.record = record
        self.unroll = unroll
        self.component_names = tuple(getattr(loss, "component_names", ()))
        self.reset(x, y)
        self._compile(jit_compile)

    @property
    def row_width(self) -> int:
        """Columns of a step's packed row: loss, layer norms when recording, components."""
        return 1 + (len(self.layer_slices) if self.record else 0) + len(self.component_names)

    def loss_and_components(self, y_true: Any, y_pred: Any) -> tuple[Any, list[Any]]:
        """The batch loss and, for a loss with parts, their per-sample values (one computation)."""
        if self.component_names:
            return self.loss.value_and_components(y_true, y_pred)
        return self.loss(y_true, y_pred), []

    def reset(self, x: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def blocks(self, n_steps: int) -> list[tuple[int, int]]:
        """(start, length) of the unrolled programs that run a chunk's `n_steps` steps."""
        return [(s, min(self.unroll, n_steps - s)) for s in range(0, n_steps, self.unroll)]

    def _compile(self, jit_compile: bool) -> None:
        raise NotImplementedError
