"""Classification losses: binary cross-entropy, threshold-boosted BCE, softmax temperature."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from lossbench import bounds
from lossbench.losses.base import (
    LossbenchLoss,
    per_sample_mean,
)


@keras.saving.register_keras_serializable(package="lossbench")
class BinaryCrossentropy(LossbenchLoss):
    """Binary cross-entropy on probabilities, per sample; equals Keras's built-in."""

    def __init__(self, name: str = "bce", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return per_sample_mean(keras.losses.binary_crossentropy(y_true, y_pred))


@keras.saving.register_keras_serializable(package="lossbench")
class ThresholdBinaryCrossentropy(LossbenchLoss):
    """Binary cross-entropy on probabilities boosted below a threshold.

    ``q = p + boost * (1 - p)`` where ``p < threshold`` (else ``q = p``), clipped to
    ``[epsilon, 1 - epsilon]`` as Keras clips, then binary cross-entropy on ``q``. With boost 0
    it equals Keras's `BinaryCrossentropy`. The boost is a jump at the threshold: the loss is
    discontinuous there, and below it the gradient is scaled by ``1 - boost``.

    Args:
        threshold: in [0, 1].
        boost: in [0, 1).
        epsilon: clip bound in (0, 0.5).
    """

    config_args = ("threshold", "boost", "epsilon")

    def __init__(
        self,
        threshold: float = 0.4,
        boost: float = 0.2,
        epsilon: float = 1e-7,
        name: str = "threshold",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        bounds.THRESHOLD.check("threshold", threshold)
        bounds.BOOST.check("boost", boost)
        bounds.CLIP_EPSILON.check("epsilon", epsilon)
        self.threshold, self.boost, self.epsilon = float(threshold), float(boost), float(epsilon)

    def boosted(self, y_pred: Any) -> Any:
        """The probabilities the cross-entropy sees."""
        p = ops.clip(y_pred, self.epsilon, 1.0 - self.epsilon)
        q = ops.where(p < self.threshold, p + self.boost * (1.0 - p), p)
        return ops.clip(q, self.epsilon, 1.0 - self.epsilon)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        q = self.boosted(y_pred)
        bce = -(y_true * ops.log(q) + (1.0 - y_true) * ops.log(1.0 - q))
        return per_sample_mean(bce)


@keras.saving.register_keras_serializable(package="lossbench")
class TemperatureCrossentropy(LossbenchLoss):
    """Categorical cross-entropy computed from logits divided by a temperature.

    ``value_i = CE(y_i, softmax(z_i / T))``, evaluated from logits (log-sum-exp), so it is stable
    for small T. T = 1 equals Keras's ``CategoricalCrossentropy(from_logits=True)``. Dividing
    logits is what a temperature means: scaling probabilities before a cross-entropy on
    probabilities would do nothing (Keras renormalises them).

    Args:
        temperature: T > 0.
    """

    config_args = ("temperature",)

    def __init__(self, temperature: float = 1.0, name: str = "temperature", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        bounds.TEMPERATURE.check("temperature", temperature)
        self.temperature = float(temperature)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return keras.losses.categorical_crossentropy(
            y_true, y_pred / self.temperature, from_logits=True
        )

    def effective_prediction(self, y_pred: np.ndarray, extra: np.ndarray) -> np.ndarray:
        return y_pred / self.temperature
