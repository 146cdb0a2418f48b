"""An example of a user's loss file for `lossbench-check` and `loss=custom` (README, "Check and
train your own loss"). WeightedBCE has a defect on purpose: `where` after the log leaves a NaN
gradient at probabilities of exactly 0 and 1."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="my_losses")
class WeightedBCE(keras.losses.Loss):
    def __init__(self, pos_weight=5.0, name="weighted_bce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pos_weight = pos_weight

    def call(self, y_true, y_pred):
        log_p = ops.where(y_pred > 0, ops.log(y_pred), -100.0)
        log_q = ops.where(y_pred < 1, ops.log(1 - y_pred), -100.0)
        return -ops.mean(self.pos_weight * y_true * log_p + (1 - y_true) * log_q, axis=-1)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight}
