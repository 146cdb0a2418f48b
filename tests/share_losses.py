"""Users' losses for the gradient-shares tests (`loss.target=tests/share_losses.py:NAME`)."""

import keras
from keras import ops


class IgnoresGroupZero(keras.losses.Loss):
    """Binary cross-entropy of probabilities that gives group 0's samples no loss at all."""

    extras = ("group",)

    def call(self, y_true, y_pred):
        label, group = y_true[:, :1], y_true[:, 1]
        p = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
        bce = -ops.mean(label * ops.log(p) + (1.0 - label) * ops.log(1.0 - p), axis=-1)
        return bce * ops.cast(group != 0, bce.dtype)


def per_batch_mean(y_true, y_pred):
    """A loss with no value per sample: the batch's mean squared error as one number."""
    return ops.mean(ops.square(y_true - y_pred))
