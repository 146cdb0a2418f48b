"""The runner protocol the loop drives, the constructor both backends share, and `make_runner`.

A runner holds one model, loss and optimizer with the training data on its device, and runs
chunks of optimizer steps as one compiled program (see the backend modules).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from lossbench.errors import LossbenchError


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


def make_runner(backend: str, **kwargs: Any) -> tuple[Runner, str]:
    """Build the runner for `backend`; return it with the device it runs on.

    Raises:
        LossbenchError: the backend has no runner yet.
    """
    if backend == "tensorflow":
        from lossbench.trainer import tensorflow_backend

        return tensorflow_backend.TensorFlowRunner(**kwargs), tensorflow_backend.device_name()
    if backend == "jax":
        from lossbench.trainer import jax_backend

        return jax_backend.JaxRunner(**kwargs), jax_backend.device_name()
    raise LossbenchError(
        f"invalid value for `backend`: the trainer runs on tensorflow and jax, received {backend!r}"
    )


def device_peak_bytes(backend: str) -> int | None:
    """The accelerator's peak memory in use by this process so far, in bytes; None on a CPU
    (which reports none: a run's host memory is measured from outside, by `make bench`)."""
    if backend == "tensorflow":
        from lossbench.trainer import tensorflow_backend

        return tensorflow_backend.peak_bytes()
    if backend == "jax":
        from lossbench.trainer import jax_backend

        return jax_backend.peak_bytes()
    return None
