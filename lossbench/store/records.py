"""Per-step records: the columnar buffers a run fills, and the runners' packed rows unpacked."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class StepRecords:
    """Per-step values in columnar arrays (one row per optimizer step)."""

    epoch: np.ndarray
    batch_size: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    layer_grad_norms: np.ndarray  # (steps, layers)
    multiplier: np.ndarray  # the loss schedule's factor applied at each step
    components: np.ndarray  # (steps, components): batch means of the loss's parts
    # (steps, units): each unit's (group's, class's) contribution to the step's gradient, its
    # norm and its share (`lossbench.run.shares`); NaN on steps that did not record units.
    unit_norm: np.ndarray
    unit_share: np.ndarray
    unit_samples: np.ndarray  # the unit's samples in the step's batch

    @classmethod
    def allocate(
        cls, n_steps: int, n_layers: int, n_components: int = 0, n_units: int = 0
    ) -> StepRecords:
        nan = np.full(n_steps, np.nan, dtype="float32")
        units = np.full((n_steps, n_units), np.nan, dtype="float32")
        return cls(
            epoch=np.zeros(n_steps, dtype="int32"),
            batch_size=np.zeros(n_steps, dtype="int32"),
            loss=nan.copy(),
            grad_norm=nan.copy(),
            layer_grad_norms=np.full((n_steps, n_layers), np.nan, dtype="float32"),
            multiplier=np.ones(n_steps, dtype="float32"),
            components=np.full((n_steps, n_components), np.nan, dtype="float32"),
            unit_norm=units.copy(),
            unit_share=units.copy(),
            unit_samples=units.copy(),
        )

    def truncated(self, n: int) -> StepRecords:
        """The first `n` steps."""
        return StepRecords(*(getattr(self, f)[:n] for f in self.__dataclass_fields__))


def split_records(
    packed: np.ndarray, n_steps: int, n_layers: int, record: bool, n_units: int = 0
) -> dict[str, np.ndarray]:
    """Unpack a runner's per-step buffer into the `run` contract.

    Runners write each step's values as one row, ``[loss, layer_sq..., components...]`` (the
    layer columns only when recording), then, when the runner records units, ``[grad_sq,
    unit_sq..., unit_dot..., unit_count...]`` (NaN on steps without them): one in-place buffer
    update per step instead of one per record is what brought `make bench`'s c/d on the
    TensorFlow MLP from 0.78 to about 0.95.
    """
    rows = packed[:n_steps]
    width = n_layers if record else 0
    layer_sq = rows[:, 1 : 1 + width] if record else np.zeros((n_steps, n_layers), "float32")
    end = rows.shape[1] - (1 + 3 * n_units if n_units else 0)
    out = {"loss": rows[:, 0], "layer_sq": layer_sq, "components": rows[:, 1 + width : end]}
    if n_units:
        grad_sq, unit = rows[:, end : end + 1], rows[:, end + 1 :]
        out["unit_sq"] = unit[:, :n_units]
        out["unit_dot"] = unit[:, n_units : 2 * n_units]
        out["unit_count"] = unit[:, 2 * n_units :]
        out["grad_sq"] = grad_sq[:, 0]
    return out


def first_non_finite(loss: np.ndarray, layer_sq: np.ndarray) -> int | None:
    """Index of the first step whose loss or any layer's gradient norm is NaN or infinite."""
    bad = ~np.isfinite(loss) | ~np.isfinite(layer_sq).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None
