"""lossbench.losses.weighted: per-sample, per-output and NaN/Inf-robust weights."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from lossbench import losses as L
from lossbench.losses.weighted import inverse_frequency
from tests.loss_cases import value_and_grad
from tests.losses.references import CASES, f64, ref_bce, ref_robust, values


def test_sample_weights_match_numpy_and_uniform_weights_equal_unweighted():
    rng = np.random.default_rng(5)
    y = (rng.random((20, 1)) < 0.3).astype("float32")
    p = rng.uniform(0.05, 0.95, size=(20, 1)).astype("float32")
    loss = L.SampleWeightedLoss(L.BinaryCrossentropy(), [0.5, 3.0])
    w = np.where(y[:, 0] == 1, 3.0, 0.5)
    np.testing.assert_allclose(values(loss, y, p), w * ref_bce(y, p), rtol=1e-5)
    uniform = L.SampleWeightedLoss(L.BinaryCrossentropy(), [1.0, 1.0])
    np.testing.assert_allclose(
        float(uniform(y, p)), float(keras.losses.BinaryCrossentropy()(y, p)), rtol=1e-6
    )
    zero = L.SampleWeightedLoss(L.BinaryCrossentropy(), [0.0, 0.0])
    assert float(zero(y, p)) == 0.0


def test_sample_weights_by_group_follow_their_samples_when_shuffled():
    rng = np.random.default_rng(6)
    y, p = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)).astype("float32")
    g = rng.integers(0, 4, size=30)
    loss = L.SampleWeightedLoss(L.MeanSquaredError(), [1.0, 0.2, 5.0, 0.0], by="group")
    ref = np.array([1.0, 0.2, 5.0, 0.0])[g] * np.mean((y - p) ** 2, axis=1)
    np.testing.assert_allclose(values(loss, loss.pack_targets(y, g), p), ref, rtol=1e-5)
    perm = rng.permutation(30)
    shuffled = float(loss(loss.pack_targets(y[perm], g[perm]), p[perm]))
    np.testing.assert_allclose(shuffled, float(loss(loss.pack_targets(y, g), p)), rtol=1e-6)


def test_inverse_frequency_makes_classes_count_equally():
    labels = np.array([0] * 90 + [1] * 10)
    w = inverse_frequency(labels, 2)
    np.testing.assert_allclose(w, [100 / 180, 100 / 20])
    assert np.isclose(np.mean(np.asarray(w)[labels]), 1.0)
    assert inverse_frequency(np.array([0, 0, 2]), 3)[1] == 0.0  # absent class


def test_output_weights_multiply_element_by_element():
    """Square batch (B == O): a (B,) weight broadcast along the outputs would go unnoticed."""
    rng = np.random.default_rng(7)
    y, p = rng.normal(size=(3, 3)), rng.normal(size=(3, 3)).astype("float32")
    loss = L.OutputWeightedLoss([1.0, 2.0, 0.0], scheme="uniform")
    got = values(loss, loss.pack_targets(y), p)
    ref = np.mean(np.array([1.0, 2.0, 0.0])[None, :] * (y - p) ** 2, axis=1)
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    wrong = np.mean(np.array([1.0, 2.0, 0.0])[:, None] * (y - p) ** 2, axis=1)
    assert not np.allclose(got, wrong)


def test_output_weight_schemes():
    scales = [0.5, 2.0]
    loss = L.OutputWeightedLoss([1.0, 3.0], scheme="inverse_group_scale", group_scales=scales)
    w = loss.sample_weights(3, np.array([1, 0, 1]))
    np.testing.assert_allclose(w, [[0.25, 0.75], [4.0, 12.0], [0.25, 0.75]])
    ones = L.OutputWeightedLoss([1.0, 1.0])
    y, p = np.ones((4, 2)), np.zeros((4, 2), "float32")
    np.testing.assert_allclose(float(ones(ones.pack_targets(y), p)), 1.0)
    rnd = L.OutputWeightedLoss([1.0, 1.0], scheme="random", weight_seed=3)
    np.testing.assert_array_equal(rnd.sample_weights(5, None), rnd.sample_weights(5, None))
    assert (rnd.sample_weights(5, None) > 0).all()


def test_robust_weights_exclude_non_finite_entries_from_numerator_and_denominator():
    loss, y_true, y_pred = CASES["robust_weights"]
    got = values(loss, y_true, y_pred)
    w = y_true[:, 3:]
    np.testing.assert_allclose(got, ref_robust(y_true[:, :3], y_pred, w), rtol=1e-5)
    # The batch loss is the weighted mean over the valid entries only.
    y, p = f64(y_true[:, :3]), f64(y_pred)
    valid = np.isfinite(y) & np.isfinite(p)
    expected = np.sum(w[valid] * (y[valid] - p[valid]) ** 2) / np.sum(w[valid])
    np.testing.assert_allclose(float(loss(y_true, y_pred)), expected, rtol=1e-5)


def test_robust_weights_gradients_are_finite_and_zero_where_invalid():
    loss, y_true, y_pred = CASES["robust_weights"]
    _, grad = value_and_grad(loss, y_true, y_pred)
    assert np.isfinite(grad).all()
    invalid = ~(np.isfinite(y_true[:, :3]) & np.isfinite(y_pred))
    assert invalid.sum() == 3 and (grad[invalid] == 0).all()
    # The naive version (tf.where after the arithmetic) propagates NaN: the defect this fixes.
    p = tf.Variable(np.where(np.isfinite(y_pred), y_pred, 0.0).astype("float32"))
    with tf.GradientTape() as tape:
        err = tf.square(tf.constant(y_true[:, :3]) - p)
        naive = tf.reduce_mean(tf.where(tf.math.is_finite(err), err, 0.0))
    assert not np.isfinite(tape.gradient(naive, p).numpy()).all()


def test_robust_weights_all_invalid_batch_gives_zero_and_clean_data_equals_output_weights():
    loss = L.RobustWeightedLoss([1.0, 1.0])
    y = np.full((3, 2), np.nan)
    p = np.zeros((3, 2), "float32")
    assert float(loss(loss.pack_targets(y), p)) == 0.0
    rng = np.random.default_rng(8)
    y, p = rng.normal(size=(6, 2)), rng.normal(size=(6, 2)).astype("float32")
    plain = L.OutputWeightedLoss([1.0, 1.0])
    np.testing.assert_allclose(
        float(loss(loss.pack_targets(y), p)), float(plain(plain.pack_targets(y), p)), rtol=1e-6
    )
