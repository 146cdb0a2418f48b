"""What the loop drives and what both backends' runners share.

A runner holds one model, loss and optimizer with the training data on its device, and runs
chunks of optimizer steps as one compiled program (see the backend modules).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from lossbench.errors import ConfigError
from lossbench.store.records import split_records
from lossbench.trainer.programs import ProgramChoice, ProgramForm

# Steps per unrolled program for models with convolutions on TensorFlow on a CPU. XLA's CPU
# backend runs a convolution with its fast kernels only in one layout, and rewrites the others
# into it only outside loops (see `jax_rewrites`): inside the chunk's loop, the gradient
# convolutions of `make bench`'s small CNN ran 4-5x slower per step than written out. The JAX
# runner rewrites them itself and keeps its loop; a TensorFlow graph leaves no such place. 4
# steps per program compile about as fast as the loop did; 8 or more gain a few percent per
# step for twice the compile time or more.
CONV_UNROLL = 4


# The most bytes a chunk's batches may take to be gathered all at once before its loop, one
# vectorized gather, so that each step reads a contiguous slice as a loop over pre-cut batches
# does (the default MLP's step: about 15% faster on TensorFlow, 10% on JAX, on a 2-core CPU).
# A larger chunk gathers each step's batch inside the loop: 1024 steps of 64 samples take 8 MiB
# for the default MLP's 40 features, 200 MiB for 28 x 28 images.
GATHER_BYTES = 64 * 2**20


def gathers_chunk(n_indices: int, arrays: Sequence[Any]) -> bool:
    """Whether a chunk of `n_indices` sample indices into `arrays` (the data on the device,
    one row per sample) gathers its batches before its loop (`GATHER_BYTES`)."""
    row_bytes = sum(math.prod(a.shape[1:]) * np.dtype(a.dtype.name).itemsize for a in arrays)
    return n_indices * row_bytes <= GATHER_BYTES


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
    n_units: int

    def run(
        self,
        idx: np.ndarray,
        n_steps: int,
        multiplier: np.ndarray,
        unit_steps: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]: ...

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def peak_bytes(self) -> int | None: ...

    def sync(self) -> None: ...

    def reset(self, x: np.ndarray, y: np.ndarray, units: np.ndarray | None = None) -> None: ...


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
            `use` changes both later (`lossbench.trainer.programs`).
        units: (n, U) one-hot membership of each training sample in U units (its group, its
            class: `lossbench.run.shares`); the steps `run` is told to record get each unit's
            contribution to the gradient. None: no units.
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
        units: np.ndarray | None = None,
    ) -> None:
        import keras

        self.model, self.loss, self.optimizer = model, loss, optimizer
        optimizer.build(model.trainable_variables)
        # The optimizer's fresh state, restored by `reset` when a later job reuses this runner.
        self._fresh_optimizer = [keras.ops.convert_to_numpy(v) for v in optimizer.variables]
        self.layer_slices = [list(s) for s in layer_slices]
        self.record = record
        self.component_names = tuple(getattr(loss, "component_names", ()))
        self.n_units = 0 if units is None else int(units.shape[1])
        self.reset(x, y, units)
        self._programs: dict[bool, dict[str, Any]] = {}  # by jit_compile
        self.use(ProgramForm(unroll, jit_compile))

    def use(self, form: ProgramForm, fresh: bool = False) -> None:
        """Run later chunks in `form`; its programs are built once (compiled at first call),
        or again when `fresh` (after a switch that applies when a program is traced)."""
        if fresh or form.jit_compile not in self._programs:
            self._programs[form.jit_compile] = self._compile(form.jit_compile)
        for name, program in self._programs[form.jit_compile].items():
            setattr(self, name, program)
        self.form = form
        self.unroll, self.jit_compile = form.unroll, form.jit_compile
        self.choice = ProgramChoice(form)  # the probe's, when it ran (`choose_form`)

    @property
    def row_width(self) -> int:
        """Columns of a step's packed row: loss, layer norms when recording, components, and
        the units' columns (see `split_records`)."""
        layers = len(self.layer_slices) if self.record else 0
        units = 1 + 3 * self.n_units if self.n_units else 0
        return 1 + layers + len(self.component_names) + units

    def loss_and_components(self, y_true: Any, y_pred: Any) -> tuple[Any, list[Any]]:
        """The batch loss and, for a loss with parts, their per-sample values (one computation)."""
        if self.component_names:
            return self.loss.value_and_components(y_true, y_pred)
        return self.loss(y_true, y_pred), []

    def sample_values(self, y_true: Any, y_pred: Any) -> Any:
        """The loss's per-sample values, as its `__call__` computes them before the reduction."""
        return self.loss.sample_values(y_true, y_pred)

    def split(self, packed: np.ndarray, n_steps: int) -> dict[str, np.ndarray]:
        """A chunk's packed rows as the `run` contract (`split_records`)."""
        return split_records(packed, n_steps, len(self.layer_slices), self.record, self.n_units)

    def reset(self, x: np.ndarray, y: np.ndarray, units: np.ndarray | None = None) -> None:
        raise NotImplementedError

    def blocks(self, n_steps: int) -> list[tuple[int, int]]:
        """(start, length) of the unrolled programs that run a chunk's `n_steps` steps."""
        return [(s, min(self.unroll, n_steps - s)) for s in range(0, n_steps, self.unroll)]

    def snapshot(self) -> Any:
        """The weights and optimizer state as they are now, for `restore`."""
        raise NotImplementedError

    def restore(self, state: Any) -> None:
        """Put back the weights and optimizer state of a `snapshot`."""
        raise NotImplementedError

    def _compile(self, jit_compile: bool) -> dict[str, Any]:
        """The runner's programs (attribute name: function), compiled with XLA or not."""
        raise NotImplementedError


def unit_matrix(units: np.ndarray | None, n: int) -> np.ndarray:
    """The (n, U) float32 unit membership a runner keeps on its device; (n, 0) without units."""
    if units is None:
        return np.zeros((n, 0), dtype="float32")
    return np.asarray(units, dtype="float32")


def step_flags(unit_steps: np.ndarray | None, width: int) -> np.ndarray:
    """A chunk's per-step "record the units" flags as float32 (none recorded when None)."""
    if unit_steps is None:
        return np.zeros(width, dtype="float32")
    return np.asarray(unit_steps, dtype="float32")


def check_sample_values(shape: Sequence[int | None], batch: int | None) -> None:
    """Refuse, while the step is traced, a loss whose `call` gives no value per sample: the
    units' contributions go through each sample's value."""
    if len(shape) == 0 or (batch is not None and shape[0] is not None and shape[0] != batch):
        raise ConfigError(
            "trainer.record_groups",
            "a loss whose `call` returns one value per sample (shape (batch, ...)); set "
            "trainer.record_groups=false for this loss",
            f"a loss whose `call` returns shape {tuple(shape)} for a batch of {batch}",
        )
