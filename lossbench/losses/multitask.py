"""Two tasks, two heads: box regression and classification in one loss."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from lossbench import bounds
from lossbench.bounds import check_arg
from lossbench.losses.base import LossbenchLoss

MODES = ("loss_weighting", "prediction_scaling")


@keras.saving.register_keras_serializable(package="lossbench")
class MultiTaskLoss(LossbenchLoss):
    """Box MSE plus classification cross-entropy (from logits).

    `y_true` is ``[box (n_box), one-hot class (n_classes)]`` and `y_pred` is the two heads
    concatenated, ``[box (n_box), class logits (n_classes)]``.

    - ``mode="loss_weighting"``: ``box_weight * MSE(box) + class_weight * CE(class)``, which is what
      balancing tasks means.
    - ``mode="prediction_scaling"`` (the seed's approach, kept for comparison): the weights scale
      the *predictions* instead, ``MSE(box, box_weight * p_box) + CE(class, class_weight * z)``.
      The model then learns to predict ``box / box_weight``, and scaling logits acts as an inverse
      temperature; neither rebalances the tasks' losses.

    The per-sample task losses are its components (``box`` and ``class``, unweighted).

    Args:
        n_box: box coordinates.
        n_classes: classes.
        box_weight, class_weight: >= 0.
        mode: ``"loss_weighting"`` or ``"prediction_scaling"``.
    """

    config_args = ("n_box", "n_classes", "box_weight", "class_weight", "mode")
    component_names = ("box", "class")

    def __init__(
        self,
        n_box: int,
        n_classes: int,
        box_weight: float = 1.0,
        class_weight: float = 1.0,
        mode: str = "loss_weighting",
        name: str = "multitask",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        bounds.COUNT.check("n_box", n_box)
        check_arg("n_classes", n_classes, isinstance(n_classes, int) and n_classes >= 2, ">= 2")
        bounds.TASK_WEIGHT.check("box_weight", box_weight)
        bounds.TASK_WEIGHT.check("class_weight", class_weight)
        check_arg("mode", mode, mode in MODES, f"one of {', '.join(MODES)}")
        self.n_box, self.n_classes, self.mode = n_box, n_classes, mode
        self.box_weight, self.class_weight = float(box_weight), float(class_weight)

    def _scaled(self, y_pred: Any) -> tuple[Any, Any]:
        box, logits = y_pred[:, : self.n_box], y_pred[:, self.n_box :]
        if self.mode == "prediction_scaling":
            return box * self.box_weight, logits * self.class_weight
        return box, logits

    def call_with_components(self, y_true: Any, y_pred: Any) -> tuple[Any, list[Any]]:
        box, logits = self._scaled(y_pred)
        box_loss = ops.mean(ops.square(y_true[:, : self.n_box] - box), axis=-1)
        class_loss = keras.losses.categorical_crossentropy(
            y_true[:, self.n_box :], logits, from_logits=True
        )
        if self.mode == "prediction_scaling":
            return box_loss + class_loss, [box_loss, class_loss]
        return self.box_weight * box_loss + self.class_weight * class_loss, [box_loss, class_loss]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return self.call_with_components(y_true, y_pred)[0]

    def effective_prediction(self, y_pred: np.ndarray, extra: np.ndarray) -> np.ndarray:
        if self.mode == "loss_weighting":
            return y_pred
        scale = np.r_[
            np.full(self.n_box, self.box_weight), np.full(self.n_classes, self.class_weight)
        ]
        return y_pred * scale.astype(y_pred.dtype)
