"""What the loop drives and what both backends' runners share.

A runner holds one model, loss and optimizer with the training data on its device, and runs
chunks of optimizer steps as one compiled program (see the backend modules).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


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
    ) -> None:
        import keras

        self.model, self.loss, self.optimizer = model, loss, optimizer
        optimizer.build(model.trainable_variables)
        # The optimizer's fresh state, restored by `reset` when a later job reuses this runner.
        self._fresh_optimizer = [keras.ops.convert_to_numpy(v) for v in optimizer.variables]
        self.layer_slices = [list(s) for s in layer_slices]
        self.record = record
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

    def _compile(self, jit_compile: bool) -> None:
        raise NotImplementedError
