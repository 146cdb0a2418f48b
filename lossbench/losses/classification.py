"""Classification losses: the binary cross-entropy baseline."""

from __future__ import annotations

from typing import Any

import keras

from lossbench.losses.base import LossbenchLoss, per_sample_mean


@keras.saving.register_keras_serializable(package="lossbench")
class BinaryCrossentropy(LossbenchLoss):
    """Binary cross-entropy on probabilities, per sample; equals Keras's built-in."""

    def __init__(self, name: str = "bce", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return per_sample_mean(keras.losses.binary_crossentropy(y_true, y_pred))
