"""lossbench.bounds: a loss parameter's bounds are declared once, and the loss's constructor and
its variant's config check agree on every value."""

from __future__ import annotations

import math

import pytest

from lossbench import losses as L
from lossbench.bounds import Bound
from lossbench.config.compose import compose
from lossbench.errors import ConfigError


def test_a_bound_holds_finite_numbers_within_its_limits_only():
    unit_open = Bound(ge=0, lt=1)
    assert unit_open.holds(0) and unit_open.holds(0.999)
    for bad in (1, -0.1, math.nan, math.inf, True, "0.5", None):
        assert not unit_open.holds(bad), bad
    assert Bound(ge=1, integer=True).holds(3) and not Bound(ge=1, integer=True).holds(3.0)
    assert unit_open.text() == "a number in [0, 1)"
    assert Bound(gt=0).text() == "a finite number > 0"
    assert Bound(ge=1, integer=True).text() == "an integer >= 1"


def test_a_bound_refuses_a_value_in_keras_words_naming_the_argument():
    Bound(gt=0).check("tau", 0.5)
    with pytest.raises(ValueError) as info:
        Bound(gt=0).check("tau", -1)
    assert str(info.value) == (
        "Invalid value for argument `tau`. Expected a finite number > 0. Received: tau=-1"
    )


# (variant, key, the loss built with that value, values at and beyond the bounds)
CASES = [
    ("scaled", "step_epoch", lambda v: L.ScaledLoss(L.BinaryCrossentropy(), step_epoch=v),
     [0, 1, 2]),
    ("class_balanced", "beta", lambda v: L.ClassBalancedLoss([0.5, 0.5], beta=v),
     [0.0, 0.999, 1.0, -0.1]),
    ("threshold", "boost", lambda v: L.ThresholdBinaryCrossentropy(boost=v), [0.0, 0.99, 1.0]),
    ("threshold", "epsilon", lambda v: L.ThresholdBinaryCrossentropy(epsilon=v),
     [0.0, 1e-7, 0.49, 0.5]),
    ("temperature", "temperature", lambda v: L.TemperatureCrossentropy(temperature=v),
     [0.0, 1e-3, 2.0]),
    ("focal", "gamma", lambda v: L.FocalLoss(gamma=v), [-1.0, 0.0, 5.0]),
    ("multitask", "box_weight", lambda v: L.MultiTaskLoss(4, 4, box_weight=v), [-1.0, 0.0]),
]  # fmt: skip


@pytest.mark.parametrize(("variant", "key", "build", "values"), CASES)
def test_the_loss_and_its_config_accept_the_same_values(variant, key, build, values):
    for value in values:
        try:
            build(value)
            loss_accepts = True
        except ValueError:
            loss_accepts = False
        try:
            compose([f"loss={variant}", f"loss.{key}={value}"])
            config_accepts = True
        except ConfigError as error:
            assert error.key == f"loss.{key}"
            config_accepts = False
        assert loss_accepts == config_accepts, (variant, key, value)
