"""The loss variants of issue 3: NumPy float64 references, built-ins where they must coincide,
finite differences, degenerate inputs, the Keras conventions, and the same values on JAX."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from lossbench import losses as L
from lossbench.arrays import load_npy as load_array
from lossbench.errors import ConfigError
from lossbench.losses.context import cosine_pull, mask_pattern, pack_bits
from lossbench.losses.weighted import inverse_frequency
from tests.loss_cases import make_cases, value_and_grad

ROOT = Path(__file__).resolve().parents[1]
CASES = make_cases()


def values(loss, y_true, y_pred):
    return keras.ops.convert_to_numpy(loss.call(tf.constant(y_true), tf.constant(y_pred)))


def f64(x):
    return np.asarray(x, dtype="float64")


def numeric_grad(fn, p, h=1e-6):
    grad = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        up, down = p.copy(), p.copy()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (fn(up) - fn(down)) / (2 * h)
    return grad


# ---- NumPy float64 references --------------------------------------------------------------


def ref_context_mask(y, p, mask):
    return np.mean((f64(y) - f64(p)) ** 2 * mask, axis=(1, 2))


def ref_context_graph(y, p, nodes, adjacency, weight, eps=1e-8):
    """A deliberately plain loop over node pairs: independent of the vectorized version."""
    y, p = f64(y), f64(p)
    out = np.mean((y - p) ** 2, axis=1)
    for i in range(len(p)):
        neighbours = [j for j in range(len(p)) if adjacency[nodes[i], nodes[j]] and i != j]
        total = 0.0
        for j in neighbours:
            ni = max(np.linalg.norm(p[i]), eps)
            nj = max(np.linalg.norm(p[j]), eps)
            total += 1.0 - p[i] @ p[j] / (ni * nj)
        out[i] += weight * total / max(len(neighbours), 1)
    return out


def ref_bce(y, p, eps=1e-7):
    p = np.clip(f64(p), eps, 1 - eps)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p), axis=1)


def ref_threshold(y, p, threshold, boost, eps=1e-7):
    p = np.clip(f64(p), eps, 1 - eps)
    q = np.where(p < threshold, p + boost * (1 - p), p)
    return ref_bce(y, q, eps)


def ref_temperature(y, z, t):
    z = f64(z) / t
    log_softmax = z - z.max(1, keepdims=True)
    log_softmax = log_softmax - np.log(np.exp(log_softmax).sum(1, keepdims=True))
    return -np.sum(y * log_softmax, axis=1)


def ref_robust(y, p, w):
    y, p, w = f64(y), f64(p), f64(w)
    valid = np.isfinite(y) & np.isfinite(p)
    err = np.where(valid, w * (np.where(valid, y, 0) - np.where(valid, p, 0)) ** 2, 0.0)
    return len(y) * err.sum(1) / w[valid].sum()


# ---- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["center", "border", "random", "ones"])
def test_context_mask_matches_numpy(pattern):
    rng = np.random.default_rng(0)
    mask = mask_pattern(pattern, (5, 6), 3.0, seed=1)
    y, p = rng.random((9, 5, 6)), rng.random((9, 5, 6))
    got = values(L.ContextMaskLoss(mask), y.astype("float32"), p.astype("float32"))
    np.testing.assert_allclose(got, ref_context_mask(y, p, mask), rtol=1e-5)


def test_context_mask_of_ones_equals_mse():
    rng = np.random.default_rng(1)
    y, p = rng.random((7, 4, 4)).astype("float32"), rng.random((7, 4, 4)).astype("float32")
    masked = float(L.ContextMaskLoss(np.ones((4, 4)))(y, p))
    np.testing.assert_allclose(masked, float(keras.losses.MeanSquaredError()(y, p)), rtol=1e-6)


def test_mask_patterns_put_weight_where_they_say():
    center, border = mask_pattern("center", (9, 9), 4.0, 0), mask_pattern("border", (9, 9), 4.0, 0)
    assert center[4, 4] == center.max() and center[0, 0] < 1.01
    assert border[0, 4] == 5.0 and border[4, 4] == 1.0
    np.testing.assert_array_equal(mask_pattern("ones", (3, 2), 4.0, 0), np.ones((3, 2)))
    a, b = mask_pattern("random", (3, 3), 1.0, 7), mask_pattern("random", (3, 3), 1.0, 7)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("weight", [0.0, 0.7, 3.0])
@pytest.mark.parametrize(
    ("n_nodes", "batch", "density", "edge_list"),
    [(30, 15, 0.3, False), (200, 150, 0.01, True)],  # a small batch: dense; most of a graph: edges
)
def test_context_graph_matches_a_loop_over_node_pairs(weight, n_nodes, batch, density, edge_list):
    rng = np.random.default_rng(2)
    adjacency = (rng.random((n_nodes, n_nodes)) < density).astype("float32")
    adjacency = np.triu(adjacency, 1) + np.triu(adjacency, 1).T
    nodes = rng.choice(n_nodes, size=batch, replace=False)
    y, p = rng.normal(size=(batch, 4)), rng.normal(size=(batch, 4))
    p[3] = 0.0  # a zero embedding
    loss = L.ContextGraphLoss.from_adjacency(adjacency, graph_weight=weight)
    assert loss.use_edge_list(batch, 4) is edge_list
    y_true = loss.pack_targets(y, nodes)
    got = values(loss, y_true, p.astype("float32"))
    np.testing.assert_allclose(got, ref_context_graph(y, p, nodes, adjacency, weight), rtol=1e-5)
    grad = value_and_grad(loss, y_true, p.astype("float32"))[1]
    assert np.isfinite(grad).all()


def test_context_graph_with_zero_weight_equals_mse_and_zero_norm_embeddings_stay_finite():
    rng = np.random.default_rng(3)
    adjacency = np.ones((6, 6)) - np.eye(6)
    y = rng.normal(size=(6, 3)).astype("float32")
    p = rng.normal(size=(6, 3)).astype("float32")
    p[2] = 0.0  # a zero embedding
    plain = L.ContextGraphLoss.from_adjacency(adjacency, graph_weight=0.0)
    y_true = plain.pack_targets(y, np.arange(6))
    np.testing.assert_allclose(
        float(plain(y_true, p)), float(keras.losses.MeanSquaredError()(y, p)), rtol=1e-6
    )
    loss = L.ContextGraphLoss.from_adjacency(adjacency, graph_weight=1.0)
    p_var = tf.Variable(p)
    with tf.GradientTape() as tape:
        value = loss(y_true, p_var)
    grad = tape.gradient(value, p_var).numpy()
    assert np.isfinite(float(value)) and np.isfinite(grad).all()
    ref = ref_context_graph(y, p, np.arange(6), adjacency, 1.0).mean()
    np.testing.assert_allclose(float(value), ref, rtol=1e-5)


def test_packed_adjacency_reads_back_every_entry():
    """70 nodes: rows end mid-word, and columns 31 and 63 sit on a word's sign bit."""
    rng = np.random.default_rng(5)
    adjacency = (rng.random((70, 70)) < 0.5).astype("float32")
    adjacency = np.triu(adjacency, 1) + np.triu(adjacency, 1).T
    loss = L.ContextGraphLoss.from_adjacency(adjacency)
    assert pack_bits(adjacency).shape == (70 * 3,)
    for ids in (np.arange(70), rng.permutation(70)[:33], np.array([31, 63, 0, 69, 32])):
        got = keras.ops.convert_to_numpy(loss.batch_adjacency(tf.constant(ids, tf.int32)))
        np.testing.assert_array_equal(got, adjacency[np.ix_(ids, ids)])


def test_written_out_graph_gradient_equals_autodiff_of_the_plain_formula():
    """`cosine_pull`'s hand-written gradient against TensorFlow's autodiff of the direct formula,
    in float64, with uneven upstream weights, a zero row and rows held by the norm's floor."""
    rng = np.random.default_rng(6)
    eps = 0.5
    upper = np.triu(rng.random((12, 12)) < 0.4, 1)
    a = tf.constant((upper | upper.T).astype("float64"))
    p0 = rng.normal(size=(12, 5))
    p0[2] = 0.0
    p0[7] *= 0.3 / np.linalg.norm(p0[7])  # below the floor: |p| is held at eps
    upstream = tf.constant(rng.uniform(0.1, 2.0, size=12))

    def direct(p):
        norm = tf.sqrt(tf.maximum(tf.reduce_sum(p * p, -1, keepdims=True), eps**2))
        unit = p / norm
        degree = tf.reduce_sum(a, -1)
        pull = degree - tf.reduce_sum(unit * tf.matmul(a, unit), -1)
        return pull / tf.maximum(degree, 1.0)

    grads = []
    for fn in (direct, lambda p: cosine_pull(p, a, eps)):
        p = tf.Variable(p0)
        with tf.GradientTape() as tape:
            value = fn(p)
            total = tf.reduce_sum(upstream * value)
        grads.append((value.numpy(), tape.gradient(total, p).numpy()))
    np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads[1][1], grads[0][1], rtol=1e-10, atol=1e-12)


def test_context_graph_is_vectorized_for_a_large_graph():
    """1,024 nodes x 64 dims in one batch: one (B, B) product, no per-pair Python work."""
    rng = np.random.default_rng(4)
    adjacency = (rng.random((1024, 1024)) < 0.01).astype("float32")
    loss = L.ContextGraphLoss.from_adjacency(adjacency)
    y_true = tf.constant(loss.pack_targets(rng.normal(size=(1024, 64)), np.arange(1024)))
    p = tf.Variable(rng.normal(size=(1024, 64)).astype("float32"))
    graph = tf.function(lambda: loss(y_true, p)).get_concrete_function().graph
    # A loop over pairs would unroll into ~10^6 ops; the vectorized loss is a few dozen.
    assert len(graph.get_operations()) < 200


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


@pytest.mark.parametrize("mode", ["loss_weighting", "prediction_scaling"])
def test_multitask_matches_numpy(mode):
    _, y_true, y_pred = CASES["multitask"]
    loss = L.MultiTaskLoss(4, 4, box_weight=2.0, class_weight=0.5, mode=mode)
    box_t, cls_t = f64(y_true[:, :4]), y_true[:, 4:]
    box_p, logits = f64(y_pred[:, :4]), y_pred[:, 4:]
    if mode == "loss_weighting":
        ref = 2.0 * np.mean((box_t - box_p) ** 2, 1) + 0.5 * ref_temperature(cls_t, logits, 1.0)
    else:
        ref = np.mean((box_t - 2.0 * box_p) ** 2, 1) + ref_temperature(cls_t, logits, 2.0)
    np.testing.assert_allclose(values(loss, y_true, y_pred), ref, rtol=1e-5)
    box, cls = (keras.ops.convert_to_numpy(c) for c in loss.components(y_true, y_pred))
    assert box.shape == cls.shape == (len(y_true),)


def test_multitask_modes_coincide_only_with_unit_weights():
    _, y_true, y_pred = CASES["multitask"]
    unit = [L.MultiTaskLoss(4, 4, mode=m) for m in ("loss_weighting", "prediction_scaling")]
    np.testing.assert_allclose(float(unit[0](y_true, y_pred)), float(unit[1](y_true, y_pred)))
    weighted = [
        L.MultiTaskLoss(4, 4, box_weight=10.0, mode=m)
        for m in ("loss_weighting", "prediction_scaling")
    ]
    assert not np.isclose(float(weighted[0](y_true, y_pred)), float(weighted[1](y_true, y_pred)))


def test_scaled_is_factor_times_base_and_schedules_change_with_epochs():
    base, y_true, y_pred = CASES["grouped_dynamic"]
    scaled = L.ScaledLoss(base, factor=2.5)
    np.testing.assert_allclose(
        values(scaled, y_true, y_pred), 2.5 * values(base, y_true, y_pred), rtol=1e-6
    )
    warm = L.ScaledLoss(base, schedule="warmup", warmup_epochs=2.0, start_factor=0.2)
    assert [warm.schedule_multiplier(e) for e in (0, 1, 2, 5)] == pytest.approx([0.2, 0.6, 1, 1])
    step = L.ScaledLoss(base, schedule="step", step_epoch=3, step_factor=0.1)
    assert [step.schedule_multiplier(e) for e in (0, 2.99, 3, 9)] == [1, 1, 0.1, 0.1]
    assert L.ScaledLoss(base).schedule_multiplier(7.0) == 1.0


# ---- every variant: gradients, Keras conventions, serialization, JAX ------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name):
    loss, y_true, y_pred = CASES[name]
    config = loss.get_config()
    config["dtype"] = "float64"
    loss64 = type(loss).from_config(config)
    if hasattr(loss64, "base"):
        base_cfg = loss.base.get_config()
        base_cfg["dtype"] = "float64"
        loss64.base = type(loss.base).from_config(base_cfg)
    y64 = f64(y_true)
    if name == "threshold":  # keep away from the jump at the threshold
        y_pred = np.where(np.abs(y_pred - 0.4) < 1e-3, y_pred + 0.01, y_pred)
    p = f64(y_pred)
    valid = np.isfinite(p)
    p_safe = np.where(valid, p, 0.0)

    def total(arr):
        return float(np.sum(values(loss64, y64, np.where(valid, arr, p))))

    if name.startswith("group_dro"):
        # Its group weights are held constant for the gradient (stop_gradient), so the reference
        # is the finite difference with each sample's weight frozen at the point.
        weight = values(loss64, y64, p) / np.mean((y64[:, :3] - p) ** 2, axis=1)

        def total(arr):
            return float(np.sum(weight * np.mean((y64[:, :3] - arr) ** 2, axis=1)))

    _, grad = value_and_grad(loss64, y64, p)
    numeric = numeric_grad(total, p_safe)
    np.testing.assert_allclose(np.where(valid, grad, 0), np.where(valid, numeric, 0), rtol=1e-5,
                               atol=1e-7)  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_keras_sample_weight_and_reductions(name):
    loss, y_true, y_pred = CASES[name]
    per_sample = values(loss, y_true, y_pred)
    w = np.linspace(0.0, 2.0, len(y_true)).astype("float32")
    np.testing.assert_allclose(
        float(loss(y_true, y_pred, sample_weight=w)), np.sum(w * per_sample) / len(w), rtol=1e-5
    )
    assert float(loss(y_true, y_pred, sample_weight=np.zeros_like(w))) == 0.0
    config = loss.get_config()
    none = type(loss).from_config({**config, "reduction": "none"})
    np.testing.assert_allclose(keras.ops.convert_to_numpy(none(y_true, y_pred)), per_sample, 1e-6)
    total = type(loss).from_config({**config, "reduction": "sum"})
    np.testing.assert_allclose(float(total(y_true, y_pred)), per_sample.sum(), rtol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_are_finite_and_invariant_to_shuffling_samples_with_their_extras(name):
    loss, y_true, y_pred = CASES[name]
    perm = np.random.default_rng(10).permutation(len(y_true))
    a = values(loss, y_true, y_pred)
    b = values(loss, y_true[perm], y_pred[perm])
    assert np.isfinite(a).all()
    np.testing.assert_allclose(b, a[perm], rtol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_round_trip_and_model_save_load(name, tmp_path):
    loss, y_true, y_pred = CASES[name]
    clone = type(loss).from_config(loss.get_config())
    np.testing.assert_allclose(values(clone, y_true, y_pred), values(loss, y_true, y_pred))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=loss)
    model.optimizer.build(model.trainable_variables)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras").loss
    assert type(restored) is type(loss)
    np.testing.assert_allclose(values(restored, y_true, y_pred), values(loss, y_true, y_pred))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: L.ContextMaskLoss([[1.0, -1.0]]), "Received: mask="),
        (lambda: L.ContextGraphLoss(3, [[0, 5]]), "Received: edges="),
        (lambda: L.ContextGraphLoss(50_000, []), "num_nodes=50000"),
        (lambda: L.ContextGraphLoss(3, [[0, 1]], graph_weight=-1.0), "graph_weight=-1.0"),
        (lambda: L.ContextGraphLoss(3, [[0, 1]], epsilon=0.0), "epsilon=0.0"),
        (lambda: L.SampleWeightedLoss(L.MeanSquaredError(), [1.0], by="row"), "by='row'"),
        (lambda: L.SampleWeightedLoss(L.MeanSquaredError(), [-1.0]), "weights=-1.0"),
        (lambda: L.OutputWeightedLoss([1.0], scheme="odd"), "scheme='odd'"),
        (lambda: L.OutputWeightedLoss([1.0], scheme="inverse_group_scale"), "group_scales=None"),
        (lambda: L.ThresholdBinaryCrossentropy(threshold=1.5), "threshold=1.5"),
        (lambda: L.ThresholdBinaryCrossentropy(boost=1.0), "boost=1.0"),
        (lambda: L.TemperatureCrossentropy(0.0), "temperature=0.0"),
        (lambda: L.TemperatureCrossentropy(-2.0), "temperature=-2.0"),
        (lambda: L.TemperatureCrossentropy(float("nan")), "temperature=nan"),
        (lambda: L.MultiTaskLoss(4, 3, mode="scale"), "mode='scale'"),
        (lambda: L.ScaledLoss(L.MeanSquaredError(), factor=0.0), "factor=0.0"),
        (lambda: L.ScaledLoss(L.MeanSquaredError(), schedule="cosine"), "schedule='cosine'"),
    ],
)
def test_invalid_arguments_fail_when_built(make, message):
    with pytest.raises(ValueError, match="Invalid value for argument") as info:
        make()
    assert message in str(info.value)


def test_load_array_refuses_missing_pickled_and_misshapen_files(tmp_path):
    good = tmp_path / "mask.npy"
    np.save(good, np.ones((2, 3)))
    np.testing.assert_array_equal(load_array(str(good), "loss.mask", (2, 3)), np.ones((2, 3)))
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases = [
        (str(tmp_path / "missing.npy"), "no such file"),
        (str(pickled), "pickles are refused"),
        (str(good), "an array of shape (3, 3)"),
        (str(tmp_path / "mask.txt"), "the path of an .npy file"),
    ]
    for path, text in cases:
        with pytest.raises(ConfigError) as info:
            load_array(path, "loss.mask", (3, 3) if path == str(good) else (2, 3))
        assert info.value.key == "loss.mask" and text in str(info.value)


def test_jax_backend_gives_the_same_values_and_gradients_as_tensorflow():
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.loss_cases"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    jax_out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert jax_out["backend"] == "jax"
    for name, (loss, y_true, y_pred) in CASES.items():
        tf_values, tf_grad = value_and_grad(loss, y_true, y_pred)
        got = jax_out["cases"][name]
        np.testing.assert_allclose(got["values"], tf_values, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(got["grad"], tf_grad, rtol=1e-5, atol=1e-6, err_msg=name)
