"""Reference baselines from the literature, so that comparisons on imbalanced and grouped data
mean something: focal loss, class-balanced loss, logit-adjusted loss and a group-DRO objective.

The binary ones take probabilities (the binary task's sigmoid head), clipped to
``[epsilon, 1 - epsilon]`` as Keras clips them; each reduces to binary cross-entropy at its
neutral setting (gamma 0, beta 0, tau 0), which the tests check against Keras's built-ins.
"""

from __future__ import annotations

import math
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
from lossbench.losses.regression import _GroupedLoss

EPSILON = 1e-7  # Keras's backend epsilon, the clip bound of its cross-entropies
# Group DRO's per-sample losses: squared error, binary cross-entropy, categorical cross-entropy.
SAMPLE_LOSSES = ("mse", "bce", "ce")


def _clipped(p: Any) -> Any:
    return ops.clip(p, EPSILON, 1.0 - EPSILON)


@keras.saving.register_keras_serializable(package="lossbench")
class FocalLoss(LossbenchLoss):
    """Binary focal loss (Lin et al. 2017): ``-alpha_t (1 - p_t)**gamma log(p_t)``.

    ``p_t`` is the probability given to the true class and ``alpha_t`` is ``alpha`` for positives
    and ``1 - alpha`` for negatives (no class weighting when alpha is None). The factor
    ``(1 - p_t)**gamma`` shrinks the loss of samples already classified well. gamma 0 without
    alpha is binary cross-entropy; with alpha it equals Keras's
    ``BinaryFocalCrossentropy(apply_class_balancing=True)``.

    Args:
        gamma: focusing parameter >= 0.
        alpha: positive-class weight in [0, 1], or None.
    """

    config_args = ("gamma", "alpha")

    def __init__(
        self, gamma: float = 2.0, alpha: float | None = 0.25, name: str = "focal", **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        bounds.GAMMA.check("gamma", gamma)
        if alpha is not None:
            bounds.ALPHA.check("alpha", alpha)
        self.gamma = float(gamma)
        self.alpha = None if alpha is None else float(alpha)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        p = _clipped(y_pred)
        p_t = y_true * p + (1.0 - y_true) * (1.0 - p)
        value = -ops.power(1.0 - p_t, self.gamma) * ops.log(p_t)
        if self.alpha is not None:
            value = value * (y_true * self.alpha + (1.0 - y_true) * (1.0 - self.alpha))
        return per_sample_mean(value)


def effective_number_weights(counts: np.ndarray, beta: float) -> np.ndarray:
    """Class weights from the effective number of samples (Cui et al. 2019).

    ``w_c = (1 - beta) / (1 - beta**n_c)``, normalised to sum to the number of classes; beta 0
    gives equal weights and beta -> 1 approaches inverse frequency. A class with no sample gets
    weight 0 before normalising.
    """
    counts = np.asarray(counts, dtype="float64")
    effective = (1.0 - np.power(beta, counts)) / (1.0 - beta)  # 0 for an empty class
    weights = np.where(counts > 0, 1.0 / np.where(effective > 0, effective, 1.0), 0.0)
    return weights * len(counts) / weights.sum()


@keras.saving.register_keras_serializable(package="lossbench")
class ClassBalancedLoss(LossbenchLoss):
    """Class-balanced loss (Cui et al. 2019): each sample's binary cross-entropy (or focal loss)
    times its class's weight from the effective number of samples.

    Args:
        class_weights: ``[w_negative, w_positive]``, from `effective_number_weights`.
        gamma: 0 for cross-entropy, > 0 for the focal form (no alpha: the class weight takes
            its place, as in the paper).
        beta: recorded for the config (the weights already carry it).
    """

    config_args = ("class_weights", "gamma", "beta")

    def __init__(
        self,
        class_weights: list[float],
        gamma: float = 0.0,
        beta: float = 0.999,
        name: str = "class_balanced",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        weights = [float(w) for w in class_weights]
        check_arg(
            "class_weights",
            class_weights,
            len(weights) == 2 and all(math.isfinite(w) and w >= 0 for w in weights),
            "two finite weights >= 0 (negative, positive)",
        )
        bounds.GAMMA.check("gamma", gamma)
        bounds.BETA.check("beta", beta)
        self.class_weights, self.gamma, self.beta = weights, float(gamma), float(beta)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        p = _clipped(y_pred)
        p_t = y_true * p + (1.0 - y_true) * (1.0 - p)
        value = -ops.power(1.0 - p_t, self.gamma) * ops.log(p_t)
        w_neg, w_pos = self.class_weights
        return per_sample_mean(value * (y_true * w_pos + (1.0 - y_true) * w_neg))


@keras.saving.register_keras_serializable(package="lossbench")
class LogitAdjustedLoss(LossbenchLoss):
    """Logit-adjusted cross-entropy (Menon et al. 2021), binary form.

    The model's logit ``z`` (recovered from its clipped probability) is shifted by
    ``tau * log(prior_1 / prior_0)`` inside the cross-entropy:
    ``softplus(-(z + delta))`` for positives and ``softplus(z + delta)`` for negatives. Training
    this way makes the unshifted output favour the rare class as the balanced error requires;
    predictions are used as they come (no post-hoc shift). tau 0 is binary cross-entropy.

    Args:
        priors: ``[prior_negative, prior_positive]``, the training class frequencies.
        tau: scaling of the adjustment, >= 0.
    """

    config_args = ("priors", "tau")

    def __init__(
        self, priors: list[float], tau: float = 1.0, name: str = "logit_adjusted", **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        values = [float(p) for p in priors]
        check_arg(
            "priors",
            priors,
            len(values) == 2 and all(0 < p < 1 for p in values),
            "two class frequencies in (0, 1) (negative, positive)",
        )
        bounds.TAU.check("tau", tau)
        self.priors, self.tau = values, float(tau)
        self.delta = self.tau * math.log(values[1] / values[0])

    def call(self, y_true: Any, y_pred: Any) -> Any:
        p = _clipped(y_pred)
        z = ops.log(p) - ops.log1p(-p) + self.delta
        value = y_true * ops.softplus(-z) + (1.0 - y_true) * ops.softplus(z)
        return per_sample_mean(value)


@keras.saving.register_keras_serializable(package="lossbench")
class GroupDROLoss(_GroupedLoss):
    """A worst-group objective after group DRO (Sagawa et al. 2020), in batch form.

    The batch loss is ``sum_g q_g L_g`` over the groups present in the batch, where ``L_g`` is
    group g's mean per-sample loss (squared error for regression, binary cross-entropy of
    probabilities, or categorical cross-entropy of logits) and ``q = softmax(step_size * L)``
    (held constant for the gradient). step_size 0 weights every present group equally (a
    group-balanced loss); a large step_size puts all weight on the batch's worst group. Sagawa et
    al. carry q from step to step (exponentiated-gradient ascent); a Keras loss is stateless, so q
    here is recomputed from each batch: the same fixed point when group losses change slowly,
    without state to checkpoint.

    Per-sample values (what `call` returns) are each sample's loss times ``q_g * B / n_g``, so
    Keras's mean over the batch gives the weighted objective exactly.

    Args:
        num_groups: number of groups (a static size for the segment sums).
        step_size: the softmax's inverse temperature, >= 0.
        membership: ``"index"`` or ``"onehot"``.
        sample_loss: ``"mse"`` (regression), ``"bce"`` (binary, probabilities) or ``"ce"``
            (multiclass, logits).
    """

    batch_coupling = "batch"  # group weights come from every group's loss in the batch

    config_args = ("num_groups", "step_size", "membership", "sample_loss")

    def __init__(
        self,
        num_groups: int,
        step_size: float = 1.0,
        membership: str = "index",
        sample_loss: str = "mse",
        name: str = "group_dro",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        bounds.COUNT.check("num_groups", num_groups)
        bounds.STEP_SIZE.check("step_size", step_size)
        check_arg(
            "sample_loss",
            sample_loss,
            sample_loss in SAMPLE_LOSSES,
            f"one of {', '.join(SAMPLE_LOSSES)}",
        )
        self.num_groups, self.step_size, self.membership = num_groups, float(step_size), membership
        self.sample_loss = sample_loss
        self._check_membership()

    def _sample_losses(self, target: Any, y_pred: Any) -> Any:
        if self.sample_loss == "bce":
            p = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
            return -ops.mean(target * ops.log(p) + (1.0 - target) * ops.log(1.0 - p), axis=-1)
        if self.sample_loss == "ce":
            return -ops.sum(target * ops.log_softmax(y_pred, axis=-1), axis=-1)
        return ops.mean(ops.square(target - y_pred), axis=-1)

    def group_weights(self, y_true: Any, y_pred: Any) -> tuple[Any, Any, Any]:
        """(q, per-sample loss, per-group counts); q is 0 for absent groups."""
        target, member = self._split(y_true)
        err = self._sample_losses(target, y_pred)
        total, count = self._group_sums(err, member)
        present = count > 0
        group_loss = total / ops.maximum(count, 1.0)
        logits = ops.where(present, self.step_size * group_loss, -1e30)
        logits = logits - ops.max(logits)
        q = ops.where(present, ops.exp(logits), 0.0)
        q = ops.stop_gradient(q / ops.sum(q))
        return q, err, count

    def call(self, y_true: Any, y_pred: Any) -> Any:
        _, member = self._split(y_true)
        q, err, count = self.group_weights(y_true, y_pred)
        per_group = q / ops.maximum(count, 1.0)
        batch = ops.cast(ops.shape(err)[0], err.dtype)
        return err * self._per_sample(per_group, member) * batch
