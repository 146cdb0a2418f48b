"""A user's loss inside the trainer (lossbench.losses.user.UserLoss): what its code raises or
returns wrong is one ConfigError naming `loss.target`, traced or eager."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from lossbench.errors import ConfigError
from lossbench.losses.user import UserLoss

Y = np.array([[1.0], [0.0], [1.0], [0.0]], "float32")
P = np.array([[0.9], [0.2], [0.6], [0.1]], "float32")


def _raises(y_true, y_pred):
    raise ValueError("my loss is broken")


@pytest.mark.parametrize(
    ("fn", "says"),
    [(lambda y, p: None, "(returned None)"), (lambda y, p: "loss", "(returned a str)"),
     (lambda y, p: ops.ones((3,)), "returned shape (3,) for a batch of 4"),
     (_raises, "(ValueError: my loss is broken)")],
)  # fmt: skip
@pytest.mark.parametrize("traced", [False, True])
def test_what_the_users_code_gets_wrong_names_the_target(fn, says, traced):
    loss = UserLoss(fn, target="mine.py:f", key="loss.target")
    call = tf.function(lambda y, p: loss(y, p)) if traced else loss
    with pytest.raises(ConfigError) as caught:  # not autograph's StagingError
        call(Y, P)
    assert caught.value.key == "loss.target" and says in str(caught.value)
    assert "mine.py:f" in str(caught.value) and "\n" not in str(caught.value)


def test_values_of_the_right_kind_are_reduced_as_keras_would():
    def squared(y_true, y_pred):
        return ops.mean(ops.square(y_true - y_pred), axis=-1)

    loss = UserLoss(squared, target="mine.py:f", key="loss.target")
    expected = np.mean((Y - P) ** 2)
    assert float(loss(Y, P)) == pytest.approx(expected, rel=1e-6)
    weights = np.array([1.0, 0.0, 2.0, 1.0], "float32")
    weighted = np.sum(weights * ((Y - P) ** 2)[:, 0]) / 4
    assert float(loss(Y, P, sample_weight=weights)) == pytest.approx(weighted, rel=1e-6)


def test_without_a_key_the_users_own_error_comes_through_for_the_checker():
    with pytest.raises(ValueError, match="my loss is broken"):
        UserLoss(_raises, target="mine.py:f")(Y, P)
