"""lossbench.losses.classification: BCE, threshold-boosted BCE, softmax temperature."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from lossbench import losses as L
from lossbench.losses import (
    BinaryCrossentropy,
)
from tests.loss_cases import value_and_grad
from tests.losses.references import (
    CASES,
    SHAPES,
    per_sample,
    ref_temperature,
    ref_threshold,
    values,
)


@pytest.mark.parametrize("shape", SHAPES)
def test_bce_matches_keras_builtin_and_numpy(shape):
    rng = np.random.default_rng(1)
    y = (rng.random(shape) < 0.3).astype("float32")
    p = rng.uniform(0.01, 0.99, size=shape).astype("float32")
    ref = -np.mean(y * np.log(p.astype("float64")) + (1 - y) * np.log(1 - p.astype("float64")), 1)
    np.testing.assert_allclose(per_sample(BinaryCrossentropy(), y, p), ref, rtol=1e-5)
    builtin = keras.losses.BinaryCrossentropy()(y, p)
    np.testing.assert_allclose(float(BinaryCrossentropy()(y, p)), float(builtin), rtol=1e-6)


@pytest.mark.parametrize(("threshold", "boost"), [(0.4, 0.2), (0.7, 0.5), (1.0, 0.9)])
def test_threshold_matches_numpy(threshold, boost):
    loss, y_true, y_pred = CASES["threshold"]
    loss = L.ThresholdBinaryCrossentropy(threshold, boost)
    got = values(loss, y_true, y_pred)
    np.testing.assert_allclose(got, ref_threshold(y_true, y_pred, threshold, boost), rtol=1e-5)


def test_threshold_with_zero_boost_equals_keras_bce():
    rng = np.random.default_rng(9)
    y = (rng.random((50, 1)) < 0.2).astype("float32")
    p = rng.random((50, 1)).astype("float32")
    p[:3] = [[0.0], [1.0], [1e-9]]  # clipping as Keras clips
    got = float(L.ThresholdBinaryCrossentropy(threshold=0.5, boost=0.0)(y, p))
    np.testing.assert_allclose(got, float(keras.losses.BinaryCrossentropy()(y, p)), rtol=1e-6)


@pytest.mark.parametrize("t", [0.25, 1.0, 4.0])
def test_temperature_matches_numpy(t):
    _, y, z = CASES["temperature"]
    np.testing.assert_allclose(
        values(L.TemperatureCrossentropy(t), y, z), ref_temperature(y, z, t), rtol=1e-5
    )


def test_temperature_one_equals_keras_cce_from_logits_and_small_t_stays_finite():
    _, y, z = CASES["temperature"]
    builtin = keras.losses.CategoricalCrossentropy(from_logits=True)(y, z)
    np.testing.assert_allclose(float(L.TemperatureCrossentropy(1.0)(y, z)), float(builtin), 1e-6)
    loss = L.TemperatureCrossentropy(1e-4)
    got, grad = value_and_grad(loss, y, z)
    assert np.isfinite(got).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(got, ref_temperature(y, z, 1e-4), rtol=1e-4)


def test_scaling_probabilities_before_cce_is_a_no_op_but_temperature_is_not():
    """The seed scaled probabilities; Keras renormalises them, so nothing changed."""
    _, y, z = CASES["temperature"]
    prob = keras.ops.convert_to_numpy(keras.ops.softmax(z))
    cce = keras.losses.CategoricalCrossentropy()
    np.testing.assert_allclose(float(cce(y, prob * 3.0)), float(cce(y, prob)), rtol=1e-6)
    assert not np.isclose(
        float(L.TemperatureCrossentropy(3.0)(y, z)), float(L.TemperatureCrossentropy(1.0)(y, z))
    )
