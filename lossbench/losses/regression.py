"""Squared-error losses: the MSE baseline and the grouped-scaling variants.

Grouped losses read group membership from the last column(s) of `y_true`: one column holding the
group id (``membership="index"``) or ``num_groups`` one-hot columns (``membership="onehot"``).
`pack_targets` builds that array; both layouts give the same value.
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
    per_sample_mean,
)

MEMBERSHIPS = ("index", "onehot")
STATISTICS = ("rms", "mean_abs")


@keras.saving.register_keras_serializable(package="lossbench")
class MeanSquaredError(LossbenchLoss):
    """Mean squared error per sample (mean over every non-batch axis): the regression baseline."""

    def __init__(self, name: str = "mse", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return per_sample_mean(ops.square(y_true - y_pred))


class _GroupedLoss(LossbenchLoss):
    """Shared handling of group membership packed into `y_true`."""

    num_groups: int
    membership: str

    def _check_membership(self) -> None:
        check_arg(
            "membership", self.membership, self.membership in MEMBERSHIPS, "'index' or 'onehot'"
        )

    def pack_targets(self, y: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        groups = extra
        if groups is None:
            raise ValueError(f"{type(self).__name__} needs group ids; received groups=None")
        y = np.asarray(y, dtype="float32").reshape(len(y), -1)
        groups = np.asarray(groups).reshape(-1)
        if self.membership == "index":
            member = groups[:, None].astype("float32")
        else:
            member = np.eye(self.num_groups, dtype="float32")[groups]
        return np.concatenate([y, member], axis=1)

    def _split(self, y_true: Any) -> tuple[Any, Any]:
        """Return (targets, membership): int ids of shape (B,) or one-hot of shape (B, G)."""
        if self.membership == "index":
            return y_true[:, :-1], ops.cast(y_true[:, -1], "int32")
        return y_true[:, : -self.num_groups], y_true[:, -self.num_groups :]

    def _group_sums(self, values: Any, member: Any) -> tuple[Any, Any]:
        """Per-group sum of per-sample `values` and per-group sample count, both (G,)."""
        if self.membership == "index":
            total = ops.segment_sum(values, member, num_segments=self.num_groups)
            count = ops.segment_sum(ops.ones_like(values), member, num_segments=self.num_groups)
            return total, count
        return ops.matmul(ops.transpose(member), values), ops.sum(member, axis=0)

    def _per_sample(self, group_values: Any, member: Any) -> Any:
        """Look up each sample's group value: (G,) -> (B,)."""
        if self.membership == "index":
            return ops.take(group_values, member, axis=0)
        return ops.matmul(member, group_values)


@keras.saving.register_keras_serializable(package="lossbench")
class GroupedScaleLoss(_GroupedLoss):
    """Squared error after scaling each sample's prediction by its group's fixed factor.

    ``value_i = mean_o (y_io - scales[g_i] * p_io) ** 2``. With every scale 1 it equals MSE.

    Args:
        scales: one positive factor per group.
        membership: ``"index"`` (a group-id column in `y_true`) or ``"onehot"``.
    """

    config_args = ("scales", "membership")

    def __init__(
        self, scales: list[float], membership: str = "index", name: str = "grouped", **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        scales = [float(s) for s in np.asarray(scales, dtype="float64").reshape(-1)]
        check_arg("scales", scales, len(scales) >= 1, "at least one group scale")
        for s in scales:
            bounds.GROUP_SCALE.check("scales", s)
        self.scales, self.membership, self.num_groups = scales, membership, len(scales)
        self._check_membership()

    def call(self, y_true: Any, y_pred: Any) -> Any:
        target, member = self._split(y_true)
        scales = ops.convert_to_tensor(self.scales, dtype=y_pred.dtype)
        scale = self._per_sample(scales, member)
        scaled = y_pred * ops.expand_dims(scale, -1)
        return ops.mean(ops.square(target - scaled), axis=-1)

    def effective_prediction(self, y_pred: np.ndarray, groups: np.ndarray) -> np.ndarray:
        return y_pred * np.asarray(self.scales, dtype=y_pred.dtype)[groups][:, None]


@keras.saving.register_keras_serializable(package="lossbench")
class GroupedDynamicLoss(_GroupedLoss):
    """Squared error with each residual divided by its group's target magnitude in the batch.

    ``value_i = mean_o ((y_io - p_io) / (stat[g_i] + epsilon)) ** 2`` where ``stat[g]`` is the RMS
    (or mean absolute value) of the targets of group g in this batch, so that every group counts on
    a comparable scale. Ids may come in any order; groups absent from the batch are never looked up.

    Args:
        num_groups: number of groups (a static size for the segment sums).
        epsilon: added to the statistic before dividing; >= 0.
        statistic: ``"rms"`` or ``"mean_abs"``.
        membership: ``"index"`` or ``"onehot"``.
    """

    batch_coupling = "group"  # each residual is divided by its group's statistic in the batch

    config_args = ("num_groups", "epsilon", "statistic", "membership")

    def __init__(
        self,
        num_groups: int,
        epsilon: float = 1e-6,
        statistic: str = "rms",
        membership: str = "index",
        name: str = "grouped_dynamic",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        bounds.COUNT.check("num_groups", num_groups)
        bounds.SCALE_EPSILON.check("epsilon", epsilon)
        check_arg("statistic", statistic, statistic in STATISTICS, "'rms' or 'mean_abs'")
        self.num_groups, self.epsilon = num_groups, float(epsilon)
        self.statistic, self.membership = statistic, membership
        self._check_membership()

    def group_scales(self, y_true: Any) -> Any:
        """Per-group scale 1 / (stat + epsilon) of shape (G,), from this batch's targets."""
        target, member = self._split(y_true)
        if self.statistic == "rms":
            per_sample = ops.mean(ops.square(target), axis=-1)
        else:
            per_sample = ops.mean(ops.abs(target), axis=-1)
        total, count = self._group_sums(per_sample, member)
        mean = total / ops.maximum(count, 1.0)
        stat = ops.sqrt(mean) if self.statistic == "rms" else mean
        denom = stat + self.epsilon
        # With epsilon=0 an all-zero group would divide by zero: such a group keeps scale 1.
        positive = denom > 0
        return ops.stop_gradient(ops.where(positive, 1.0 / ops.where(positive, denom, 1.0), 1.0))

    def call(self, y_true: Any, y_pred: Any) -> Any:
        target, member = self._split(y_true)
        scale = self._per_sample(self.group_scales(y_true), member)
        return ops.mean(ops.square((target - y_pred) * ops.expand_dims(scale, -1)), axis=-1)
