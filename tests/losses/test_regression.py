"""lossbench.losses.regression: MSE, fixed and dynamic group scaling."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from lossbench.losses import (
    GroupedDynamicLoss,
    GroupedScaleLoss,
    MeanSquaredError,
)
from tests.losses.references import (
    SHAPES,
    per_sample,
    random_case,
    ref_grouped,
    ref_grouped_dynamic,
)


@pytest.mark.parametrize("shape", SHAPES)
def test_mse_matches_numpy_and_keras(shape):
    rng = np.random.default_rng(0)
    y, p, _ = random_case(rng, shape, 1)
    loss = MeanSquaredError()
    np.testing.assert_allclose(per_sample(loss, y, p), np.mean((y - p) ** 2, 1), rtol=1e-5)
    builtin = keras.losses.MeanSquaredError()(y, p)
    np.testing.assert_allclose(float(loss(y, p)), float(builtin), rtol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("membership", ["index", "onehot"])
def test_grouped_matches_numpy(shape, membership):
    rng = np.random.default_rng(2)
    scales = [0.5, 1.0, 2.0, 4.0, 3.0]
    y, p, g = random_case(rng, shape, len(scales))
    loss = GroupedScaleLoss(scales, membership=membership)
    got = per_sample(loss, loss.pack_targets(y, g), p)
    np.testing.assert_allclose(got, ref_grouped(y, p, g, scales), rtol=1e-5)


def test_grouped_onehot_equals_index_and_unit_scales_equal_mse():
    rng = np.random.default_rng(3)
    y, p, g = random_case(rng, (50, 3), 6)
    scales = rng.uniform(0.2, 3.0, size=6).tolist()
    by_index = GroupedScaleLoss(scales, membership="index")
    by_onehot = GroupedScaleLoss(scales, membership="onehot")
    a = float(by_index(by_index.pack_targets(y, g), p))
    b = float(by_onehot(by_onehot.pack_targets(y, g), p))
    np.testing.assert_allclose(a, b, rtol=1e-6)
    ones = GroupedScaleLoss([1.0] * 6)
    np.testing.assert_allclose(
        float(ones(ones.pack_targets(y, g), p)),
        float(keras.losses.MeanSquaredError()(y, p)),
        rtol=1e-6,
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("statistic", ["rms", "mean_abs"])
@pytest.mark.parametrize("membership", ["index", "onehot"])
def test_grouped_dynamic_matches_numpy_with_unsorted_ids_and_empty_groups(
    shape, statistic, membership
):
    rng = np.random.default_rng(4)
    y, p, g = random_case(rng, shape, 5)
    loss = GroupedDynamicLoss(5, epsilon=1e-3, statistic=statistic, membership=membership)
    got = per_sample(loss, loss.pack_targets(y, g), p)
    ref = ref_grouped_dynamic(y.astype("float64"), p.astype("float64"), g, 5, 1e-3, statistic)
    np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_grouped_dynamic_all_zero_group_with_zero_epsilon_stays_finite():
    y = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 2.0]], "float32")
    p = np.array([[0.5, 0.1], [0.2, 0.3], [1.5, 1.0]], "float32")
    g = np.array([1, 1, 0])  # group 1 has only zero targets; group 2 is empty
    loss = GroupedDynamicLoss(3, epsilon=0.0)
    y_true = tf.constant(loss.pack_targets(y, g))
    p_var = tf.Variable(p)
    with tf.GradientTape() as tape:
        value = loss(y_true, p_var)
    grad = tape.gradient(value, p_var).numpy()
    assert np.isfinite(float(value)) and np.isfinite(grad).all()
    ref = ref_grouped_dynamic(y.astype("float64"), p.astype("float64"), g, 3, 0.0, "rms")
    np.testing.assert_allclose(per_sample(loss, loss.pack_targets(y, g), p), ref, rtol=1e-6)


def test_grouped_dynamic_has_no_segment_mean_defects():
    """Unsorted ids and absent groups: the seed's segment_mean version crashed or divided by 0."""
    y = np.array([[2.0], [1.0], [4.0], [3.0]], "float32")
    p = np.zeros_like(y)
    g = np.array([3, 0, 3, 0])  # unsorted; groups 1 and 2 absent
    loss = GroupedDynamicLoss(4, epsilon=1e-6)
    value = float(loss(loss.pack_targets(y, g), p))
    ref = ref_grouped_dynamic(y.astype("float64"), p.astype("float64"), g, 4, 1e-6, "rms").mean()
    np.testing.assert_allclose(value, ref, rtol=1e-5)
