"""Example user losses for `lossbench-check`: correct ones, and one broken loss per defect class
(each fails exactly the check named in its docstring)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

register = keras.saving.register_keras_serializable(package="lossbench_check_examples")


def _bce(y_true, y_pred):
    p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
    return -ops.mean(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p), axis=-1)


# ---- correct --------------------------------------------------------------------------------


@register
class GoodFocal(keras.losses.Loss):
    """Correct: per-sample focal loss with its parameter in the config."""

    def __init__(self, gamma=2.0, name="good_focal", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma = gamma

    def call(self, y_true, y_pred):
        p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
        pt = ops.where(y_true > 0.5, p, 1 - p)
        return ops.mean(-((1 - pt) ** self.gamma) * ops.log(pt), axis=-1)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


def good_mse(y_true, y_pred):
    """Correct: a plain function."""
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


@register
class GoodGroupScaled(keras.losses.Loss):
    """Correct: residuals divided by each group's RMS target (ids in any order, empty groups
    and all-zero groups safe)."""

    extras = ("group",)
    batch_coupling = "group"  # a sample's scale is its group's statistic in the batch

    def __init__(self, num_groups=4, epsilon=1e-3, name="good_group_scaled", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_groups, self.epsilon = num_groups, epsilon

    def call(self, y_true, y_pred):
        target, ids = y_true[:, :-1], ops.cast(y_true[:, -1], "int32")
        power = ops.mean(ops.square(target), axis=-1)
        sums = ops.segment_sum(power, ids, num_segments=self.num_groups)
        counts = ops.segment_sum(ops.ones_like(power), ids, num_segments=self.num_groups)
        rms = ops.sqrt(sums / ops.maximum(counts, 1.0) + self.epsilon**2)
        scale = ops.take(rms, ids, axis=0)
        return ops.mean(ops.square((target - y_pred) / scale[:, None]), axis=-1)

    def get_config(self):
        return {**super().get_config(), "num_groups": self.num_groups, "epsilon": self.epsilon}


# ---- broken, one defect each ------------------------------------------------------------------


@register
class BatchDice(keras.losses.Loss):
    """batch-independence: BCE plus a soft Dice over the whole batch, added to every sample
    (right shape, order-invariant, finite, but each value depends on the other samples)."""

    def call(self, y_true, y_pred):
        overlap = ops.sum(y_true * y_pred)
        dice = 1.0 - 2.0 * overlap / (ops.sum(y_true) + ops.sum(y_pred) + 1.0)
        return _bce(y_true, y_pred) + dice


@register
class GroupClaimBatchMean(keras.losses.Loss):
    """batch-independence: declares coupling within groups, but centres every residual on the
    whole batch's mean residual."""

    extras = ("group",)
    batch_coupling = "group"

    def call(self, y_true, y_pred):
        residual = y_true[:, :-1] - y_pred
        centred = residual - ops.mean(residual, axis=0, keepdims=True)
        return ops.mean(ops.square(centred), axis=-1)


@register
class ScalarReturn(keras.losses.Loss):
    """per-sample: returns the batch mean, so sample_weight cannot weigh samples."""

    def call(self, y_true, y_pred):
        return ops.mean(_bce(y_true, y_pred))


@register
class CapturedBatch(keras.losses.Loss):
    """batch-shapes: per-sample weights made for one batch size when the loss is built."""

    def __init__(self, name="captured_batch", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weights_ = ops.ones((64,))

    def call(self, y_true, y_pred):
        return _bce(y_true, y_pred) * self.weights_


@register
class CapturedOtherBatch(keras.losses.Loss):
    """batch-shapes: sized to a batch of 32, so it fails on lossbench's default batch too."""

    def __init__(self, name="captured_other_batch", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weights_ = ops.ones((32,))

    def call(self, y_true, y_pred):
        return _bce(y_true, y_pred) * self.weights_


def elementwise_mse(y_true, y_pred):
    """sample-weight: correct values, but one per element, (B, O): Keras 3 cannot broadcast (B,)
    sample weights onto them."""
    return ops.square(y_true - y_pred)


def static_batch_reshape(y_true, y_pred):
    """batch-shapes: reshapes with the static batch size, which is None while Keras traces its
    train step (every eager batch has a known size, so only the symbolic trace shows it)."""
    residual = ops.reshape(y_true - y_pred, (y_pred.shape[0], -1))
    return ops.mean(ops.square(residual), axis=-1)


@register
class IgnoresSampleWeight(keras.losses.Loss):
    """sample-weight: overrides __call__ and drops the weights."""

    def __call__(self, y_true, y_pred, sample_weight=None):
        return super().__call__(y_true, y_pred)

    def call(self, y_true, y_pred):
        return _bce(y_true, y_pred)


@register
class NanThroughWhere(keras.losses.Loss):
    """finite-gradients: `where` after the log still has a NaN gradient at p = 0 or 1."""

    def call(self, y_true, y_pred):
        log_p, log_q = ops.log(y_pred), ops.log(1 - y_pred)
        log_p = ops.where(ops.isfinite(log_p), log_p, -100.0)
        log_q = ops.where(ops.isfinite(log_q), log_q, -100.0)
        return -ops.mean(y_true * log_p + (1 - y_true) * log_q, axis=-1)


@register
class SortedIds(keras.losses.Loss):
    """order-invariance: looks each row's group statistic up by position, as if the rows were
    sorted by group."""

    extras = ("group",)
    batch_coupling = "group"

    def call(self, y_true, y_pred):
        target, ids = y_true[:, :-1], ops.cast(y_true[:, -1], "int32")
        power = ops.mean(ops.square(target), axis=-1)
        sums = ops.segment_sum(power, ids, num_segments=4)
        counts = ops.segment_sum(ops.ones_like(power), ids, num_segments=4)
        rms = ops.sqrt(sums / ops.maximum(counts, 1.0) + 1e-6)
        scale = ops.take(rms, ops.sort(ids), axis=0)
        return ops.mean(ops.square((target - y_pred) / scale[:, None]), axis=-1)


@register
class EagerOnly(keras.losses.Loss):
    """compiled: a Python-side decision that an eager TensorFlow tensor and a traced one take
    differently."""

    def call(self, y_true, y_pred):
        scale = 2.0 if hasattr(y_pred, "numpy") else 1.0
        return scale * _bce(y_true, y_pred)


@register
class FrozenScale(keras.losses.Loss):
    """live-variables: a scale held in a variable of the loss (frozen under JAX's jit)."""

    def __init__(self, name="frozen_scale", **kwargs):
        super().__init__(name=name, **kwargs)
        self.scale = keras.Variable(1.0, trainable=False, name="loss_scale")

    def call(self, y_true, y_pred):
        return self.scale * _bce(y_true, y_pred)


@register
class ScaledProbabilities(keras.losses.Loss):
    """parameter-effect: scales probabilities, which the cross-entropy renormalises."""

    def __init__(self, temperature=2.0, name="scaled_probabilities", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = temperature

    def call(self, y_true, y_pred):
        prob = ops.softmax(y_pred, axis=-1) / self.temperature
        return keras.losses.categorical_crossentropy(y_true, prob, from_logits=False)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@register
class WidthFromParameter(keras.losses.Loss):
    """parameter-effect: a parameter that sets a shape; any value but its default crashes."""

    def __init__(self, width=1.0, name="width_from_parameter", **kwargs):
        super().__init__(name=name, **kwargs)
        self.width = width

    def call(self, y_true, y_pred):
        p = ops.reshape(ops.clip(y_pred, 1e-7, 1 - 1e-7), (-1, int(self.width)))
        return -ops.mean(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p), axis=-1)

    def get_config(self):
        return {**super().get_config(), "width": self.width}


@register
class ForgetsItsConfig(keras.losses.Loss):
    """serialization: get_config leaves out gamma, so a reloaded loss has the default."""

    def __init__(self, gamma=2.0, name="forgets_its_config", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma = gamma

    def call(self, y_true, y_pred):
        return self.gamma * _bce(y_true, y_pred)


def half_gradient(y_true, y_pred):
    """gradient: half of the value is hidden from autodiff."""
    squared = ops.mean(ops.square(y_true - y_pred), axis=-1)
    return 0.5 * squared + 0.5 * ops.stop_gradient(squared)


def backend_specific(y_true, y_pred):
    """backends: different math on JAX."""
    scale = 1.01 if keras.backend.backend() == "jax" else 1.0
    return scale * ops.mean(ops.square(y_true - y_pred), axis=-1)


# Defects of real losses, one per class of cause; each defect's line ends in `# defect`, where the
# check's finding must point.


@register
class StaticArange(keras.losses.Loss):
    """batch-shapes: an index range sized by the static batch, None in the program Keras traces
    on TensorFlow (an empty range there: it fails on every batch, as in fit)."""

    def call(self, y_true, y_pred):
        values = -ops.mean(y_true * ops.log(ops.clip(y_pred, 1e-7, 1.0)), axis=-1)
        return values + 0.0 * ops.cast(ops.arange(0, y_pred.shape[0]), "float32")  # defect


@register
class ContrastiveCall(keras.losses.Loss):
    """sample-weight: a batch-coupled loss written as its own __call__ (no call), as keras-io's
    SupCon example is; Keras trains it through __call__, which drops sample_weight."""

    def __init__(self, temperature=0.05, name="contrastive_call", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = temperature

    def __call__(self, y_true, y_pred, sample_weight=None):  # defect
        logits = ops.matmul(y_pred, ops.transpose(y_pred)) / self.temperature
        same = ops.cast(ops.equal(y_true, ops.transpose(y_true)), "float32")
        log_prob = logits - ops.logsumexp(logits, axis=-1, keepdims=True)
        return -ops.sum(same * log_prob) / ops.sum(same)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@register
class PredictionsUnused(keras.losses.Loss):
    """finite-gradients: a slip computes the loss from the targets alone, so it does not depend on
    the predictions and TensorFlow's gradient is None (Keras's fit: no gradient to apply)."""

    def call(self, y_true, y_pred):
        error = y_true - 0.5  # defect
        return ops.mean(ops.square(error), axis=-1)


@register
class CenterLoss(keras.losses.Loss):
    """stateless-call: moves its class centers inside call, so every call changes the loss
    (and the values every later check sees)."""

    def __init__(self, name="center_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.centers = keras.Variable(np.zeros((2, 1), "float32"), trainable=False,
                                      name="centers")  # fmt: skip

    def call(self, y_true, y_pred):
        labels = ops.cast(ops.round(y_true[:, 0]), "int32")
        own = ops.take(self.centers, labels, axis=0)
        self.centers.assign(self.centers + 0.5)  # defect
        return _bce(y_true, y_pred) + ops.mean(ops.square(y_pred - own), axis=-1)


def _log_prob(y_pred):
    return np.log(np.clip(np.asarray(y_pred), 1e-7, 1.0))  # defect


@register
class NumpyInHelper(keras.losses.Loss):
    """traceable: a helper turns the predictions into NumPy (as `.numpy()` would on TensorFlow),
    which only an eager tensor can."""

    def call(self, y_true, y_pred):
        return -ops.mean(y_true * ops.convert_to_tensor(_log_prob(y_pred)), axis=-1)


@register
class Poly1(keras.losses.Loss):
    """Correct: Poly-1 (Leng et al. 2022), whose `epsilon` is the coefficient of its own term."""

    def __init__(self, epsilon=1.0, name="poly1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.epsilon = epsilon

    def call(self, y_true, y_pred):
        p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
        p_t = y_true * p + (1 - y_true) * (1 - p)
        return ops.mean(-ops.log(p_t) + self.epsilon * (1 - p_t), axis=-1)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@register
class ClippedBCE(keras.losses.Loss):
    """Correct: binary cross-entropy whose `epsilon` only keeps the log finite (a guard)."""

    def __init__(self, epsilon=1e-7, name="clipped_bce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.epsilon = epsilon

    def call(self, y_true, y_pred):
        p = ops.clip(y_pred, self.epsilon, 1 - self.epsilon)
        return -ops.mean(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p), axis=-1)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
