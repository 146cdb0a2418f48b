"""Weighted losses: per-sample weights by class or group, per-output weights, NaN/Inf-robust.

Weights that belong to samples travel with them: a per-sample weight is looked up from the
sample's class (in `y_true`) or its group id (an extra column); per-output weights are extra
columns of `y_true`. Nothing sized to one batch is captured when the loss is built, so shuffling
and a partial last batch keep every weight on its sample.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from lossbench import bounds
from lossbench.bounds import check_arg
from lossbench.losses.base import (
    LossbenchLoss,
    deserialize_loss,
    serialize_loss,
)

WEIGHT_BY = ("class", "group")
SCHEMES = ("uniform", "inverse_group_scale", "random")


def inverse_frequency(labels: np.ndarray, n: int) -> list[float]:
    """Weights n_samples / (n * count_k), so that the weighted classes count equally.

    A label absent from `labels` gets weight 0 (it never occurs). The mean weight over the samples
    is 1, so the loss keeps its usual scale.
    """
    counts = np.bincount(np.asarray(labels, dtype="int64").reshape(-1), minlength=n)
    total = counts.sum()
    return [float(total / (n * c)) if c else 0.0 for c in counts]


@keras.saving.register_keras_serializable(package="lossbench")
class SampleWeightedLoss(LossbenchLoss):
    """A base loss with each sample's value multiplied by its class's or group's weight.

    Args:
        base: the per-sample loss (a lossbench loss or its serialized config).
        weights: one weight per class (binary labels: 2) or per group.
        by: ``"class"``: the weight of the sample's 0/1 label in `y_true`; ``"group"``: of the
            group id in the last column of `y_true` (see `pack_targets`).
    """

    config_args = ("weights", "by")

    def __init__(
        self,
        base: Any,
        weights: list[float],
        by: str = "class",
        name: str = "sample_weights",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.base = deserialize_loss(base)
        self.batch_coupling = getattr(self.base, "batch_coupling", "none")
        check_arg("by", by, by in WEIGHT_BY, "'class' or 'group'")
        weights = [float(w) for w in weights]
        check_arg("weights", weights, len(weights) >= 1, "at least one weight")
        for w in weights:
            bounds.WEIGHT.check("weights", w)
        self.weights, self.by = weights, by

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "base": serialize_loss(self.base)}

    def pack_targets(self, y: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        packed = self.base.pack_targets(y)
        if self.by == "class":
            return packed
        if extra is None:
            raise ValueError("SampleWeightedLoss(by='group') needs group ids; received None")
        return np.concatenate([packed, np.asarray(extra, "float32").reshape(-1, 1)], axis=1)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        weights = ops.convert_to_tensor(self.weights, dtype=y_pred.dtype)
        if self.by == "class":
            key, base_true = ops.cast(ops.round(y_true[:, 0]), "int32"), y_true
        else:
            key, base_true = ops.cast(y_true[:, -1], "int32"), y_true[:, :-1]
        return self.base.call(base_true, y_pred) * ops.take(weights, key, axis=0)


@keras.saving.register_keras_serializable(package="lossbench")
class OutputWeightedLoss(LossbenchLoss):
    """Squared error with a weight for every sample and output.

    ``value_i = mean_o w_io * (y_io - p_io) ** 2``: weights of shape (B, O) multiply errors of
    shape (B, O) element by element (a (B,) weight never broadcasts along the outputs). The
    weights are the last O columns of `y_true`; `pack_targets` builds them as
    ``output_weights[o] * factor_i`` from the scheme:

    - ``uniform``: factor 1;
    - ``inverse_group_scale``: ``1 / group_scales[g_i] ** 2``, so every group's errors count on
      the same scale;
    - ``random``: a log-normal reliability per sample and output, from `weight_seed`.

    Args:
        output_weights: one base weight per output.
        scheme: how each sample's factors are made.
        group_scales: per-group scales (``inverse_group_scale``).
        weight_seed: seed of the ``random`` scheme.
    """

    config_args = ("output_weights", "scheme", "group_scales", "weight_seed")

    def __init__(
        self,
        output_weights: list[float],
        scheme: str = "uniform",
        group_scales: list[float] | None = None,
        weight_seed: int = 0,
        name: str = "output_weights",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        output_weights = [float(w) for w in output_weights]
        check_arg("output_weights", output_weights, len(output_weights) >= 1, "one per output")
        for w in output_weights:
            bounds.WEIGHT.check("output_weights", w)
        check_arg("scheme", scheme, scheme in SCHEMES, f"one of {', '.join(SCHEMES)}")
        needs_scales = scheme == "inverse_group_scale"
        check_arg(
            "group_scales",
            group_scales,
            not needs_scales or (group_scales is not None and len(group_scales) >= 1),
            "one scale per group for scheme='inverse_group_scale'",
        )
        for s in group_scales or []:
            bounds.GROUP_SCALE.check("group_scales", s)
        self.output_weights, self.scheme, self.weight_seed = output_weights, scheme, weight_seed
        self.group_scales = None if group_scales is None else [float(s) for s in group_scales]
        self.n_outputs = len(output_weights)

    def sample_weights(self, n: int, groups: np.ndarray | None) -> np.ndarray:
        """The (n, O) weights of `n` samples under the scheme."""
        base = np.asarray(self.output_weights, dtype="float64")[None, :]
        if self.scheme == "uniform":
            factor = np.ones((n, 1))
        elif self.scheme == "inverse_group_scale":
            if groups is None:
                raise ValueError("scheme='inverse_group_scale' needs group ids; received None")
            factor = 1.0 / np.asarray(self.group_scales)[np.asarray(groups)][:, None] ** 2
        else:
            factor = np.random.default_rng(self.weight_seed).lognormal(
                0.0, 0.5, (n, self.n_outputs)
            )
        return (base * factor).astype("float32")

    def pack_targets(self, y: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        y = np.asarray(y, dtype="float32").reshape(len(y), -1)
        return np.concatenate([y, self.sample_weights(len(y), extra)], axis=1)

    def _split(self, y_true: Any) -> tuple[Any, Any]:
        return y_true[:, : -self.n_outputs], y_true[:, -self.n_outputs :]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        target, weights = self._split(y_true)
        return ops.mean(weights * ops.square(target - y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="lossbench")
class RobustWeightedLoss(OutputWeightedLoss):
    """`OutputWeightedLoss` that ignores entries whose target or prediction is NaN or Inf.

    Such entries are left out of the numerator and the denominator: the batch loss is
    ``sum(w * v * e) / sum(w * v)`` over all valid (v = 1) entries. To make Keras's mean over the
    batch give exactly that, each sample's value is ``B * sum_o(w v e)_i / sum(w v)``: it depends
    on the batch, like any loss normalised by the batch. The unsafe entries are replaced before
    the arithmetic ("double where"), so gradients stay finite; a batch without a valid entry has
    loss 0.
    """

    def __init__(self, *args: Any, name: str = "robust_weights", **kwargs: Any) -> None:
        super().__init__(*args, name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        target, weights = self._split(y_true)
        valid = ops.logical_and(ops.isfinite(target), ops.isfinite(y_pred))
        valid = ops.logical_and(valid, ops.isfinite(weights))
        diff = ops.where(valid, target, 0.0) - ops.where(valid, y_pred, 0.0)
        w = ops.where(valid, weights, 0.0)
        per_sample = ops.sum(w * ops.square(diff), axis=-1)
        total = ops.sum(w)
        batch = ops.cast(ops.shape(per_sample)[0], per_sample.dtype)
        return batch * per_sample / ops.where(total > 0, total, 1.0)
