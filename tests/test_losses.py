"""Loss values and gradients against NumPy float64 references, Keras built-ins and Keras rules."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from lossbench.losses import (
    BinaryCrossentropy,
    GroupedDynamicLoss,
    GroupedScaleLoss,
    MeanSquaredError,
)

SHAPES = [(1, 1), (7, 3), (64, 4)]


def ref_grouped(y, p, groups, scales):
    s = np.asarray(scales, "float64")[groups][:, None]
    return np.mean((y - s * p) ** 2, axis=1)


def ref_grouped_dynamic(y, p, groups, n_groups, eps, statistic):
    per = np.mean(y**2, axis=1) if statistic == "rms" else np.mean(np.abs(y), axis=1)
    stat = np.zeros(n_groups)
    for g in range(n_groups):
        members = per[groups == g]
        if members.size:
            m = members.mean()
            stat[g] = np.sqrt(m) if statistic == "rms" else m
    denom = stat + eps
    scale = np.where(denom > 0, 1.0 / np.where(denom > 0, denom, 1.0), 1.0)
    return np.mean(((y - p) * scale[groups][:, None]) ** 2, axis=1)


def per_sample(loss, y_true, y_pred):
    return keras.ops.convert_to_numpy(loss.call(tf.constant(y_true), tf.constant(y_pred)))


def random_case(rng, shape, n_groups):
    b, o = shape
    y = rng.normal(size=(b, o)) * rng.uniform(0.1, 5.0)
    p = rng.normal(size=(b, o))
    # Unsorted ids that leave the last group (and often others) empty.
    groups = rng.integers(0, max(n_groups - 1, 1), size=b)
    return y.astype("float32"), p.astype("float32"), groups


@pytest.mark.parametrize("shape", SHAPES)
def test_mse_matches_numpy_and_keras(shape):
    rng = np.random.default_rng(0)
    y, p, _ = random_case(rng, shape, 1)
    loss = MeanSquaredError()
    np.testing.assert_allclose(per_sample(loss, y, p), np.mean((y - p) ** 2, 1), rtol=1e-5)
    builtin = keras.losses.MeanSquaredError()(y, p)
    np.testing.assert_allclose(float(loss(y, p)), float(builtin), rtol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_bce_matches_keras_builtin_and_numpy(shape):
    rng = np.random.default_rng(1)
    y = (rng.random(shape) < 0.3).astype("float32")
    p = rng.uniform(0.01, 0.99, size=shape).astype("float32")
    ref = -np.mean(y * np.log(p.astype("float64")) + (1 - y) * np.log(1 - p.astype("float64")), 1)
    np.testing.assert_allclose(per_sample(BinaryCrossentropy(), y, p), ref, rtol=1e-5)
    builtin = keras.losses.BinaryCrossentropy()(y, p)
    np.testing.assert_allclose(float(BinaryCrossentropy()(y, p)), float(builtin), rtol=1e-6)


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


@pytest.mark.parametrize(
    "make",
    [
        lambda: GroupedScaleLoss([0.5, 2.0, 1.5], dtype="float64"),
        lambda: GroupedScaleLoss([0.5, 2.0, 1.5], membership="onehot", dtype="float64"),
        lambda: GroupedDynamicLoss(3, epsilon=1e-2, dtype="float64"),
        lambda: GroupedDynamicLoss(3, statistic="mean_abs", membership="onehot", dtype="float64"),
        lambda: MeanSquaredError(dtype="float64"),
    ],
)
def test_gradients_match_finite_differences(make):
    rng = np.random.default_rng(5)
    loss = make()
    y = rng.normal(size=(6, 2))
    g = np.array([2, 0, 2, 1, 0, 2])
    y_true = tf.constant(loss.pack_targets(y, g), tf.float64) if loss.name != "mse" else y
    p = rng.normal(size=(6, 2))
    p_var = tf.Variable(p)
    with tf.GradientTape() as tape:
        value = loss(y_true, p_var)
    grad = tape.gradient(value, p_var).numpy()
    h, numeric = 1e-6, np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        up, down = p.copy(), p.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (float(loss(y_true, up)) - float(loss(y_true, down))) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_sample_weight_follows_keras_semantics():
    rng = np.random.default_rng(6)
    y, p, g = random_case(rng, (10, 2), 3)
    w = rng.uniform(0, 2, size=10).astype("float32")
    loss = GroupedScaleLoss([1.0, 2.0, 0.5])
    values = ref_grouped(y, p, g, [1.0, 2.0, 0.5])
    got = float(loss(loss.pack_targets(y, g), p, sample_weight=w))
    np.testing.assert_allclose(got, np.sum(w * values) / len(values), rtol=1e-5)
    assert float(loss(loss.pack_targets(y, g), p, sample_weight=np.zeros(10))) == 0.0


def test_shuffling_samples_with_their_groups_leaves_the_loss_unchanged():
    rng = np.random.default_rng(7)
    y, p, g = random_case(rng, (40, 3), 5)
    perm = rng.permutation(40)
    for loss in (GroupedScaleLoss([0.5, 1, 2, 3, 4]), GroupedDynamicLoss(5)):
        a = float(loss(loss.pack_targets(y, g), p))
        b = float(loss(loss.pack_targets(y[perm], g[perm]), p[perm]))
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: GroupedScaleLoss([1.0, -2.0]),
            "Expected a finite number > 0. Received: scales=-2",
        ),
        (lambda: GroupedScaleLoss([]), "Received: scales=[]"),
        (lambda: GroupedScaleLoss([1.0], membership="bits"), "Received: membership='bits'"),
        (lambda: GroupedDynamicLoss(0), "Received: num_groups=0"),
        (lambda: GroupedDynamicLoss(2, epsilon=-1e-3), "Received: epsilon=-0.001"),
        (lambda: GroupedDynamicLoss(2, statistic="max"), "Received: statistic='max'"),
    ],
)
def test_invalid_arguments_fail_when_built(make, message):
    with pytest.raises(ValueError, match="Invalid value for argument") as info:
        make()
    assert message in str(info.value)


@pytest.mark.parametrize(
    "loss",
    [
        GroupedScaleLoss([0.5, 2.0], membership="onehot"),
        GroupedDynamicLoss(4, epsilon=1e-3, statistic="mean_abs"),
        MeanSquaredError(),
        BinaryCrossentropy(),
    ],
)
def test_config_round_trip_and_saved_model(loss, tmp_path):
    clone = type(loss).from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=loss)
    model.optimizer.build(model.trainable_variables)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored.loss) is type(loss)
    assert restored.loss.get_config() == loss.get_config()


def test_plain_keras_fit_with_shuffling_and_a_partial_last_batch():
    """Groups travel inside y_true, so model.fit's shuffling and partial batch keep them aligned."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(101, 5)).astype("float32")
    g = rng.integers(0, 3, size=101)
    y = (x[:, :2] * np.array([0.5, 1.0, 2.0])[g][:, None]).astype("float32")
    loss = GroupedDynamicLoss(num_groups=3)
    y_packed = loss.pack_targets(y, g)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=loss)
    history = model.fit(x, y_packed, batch_size=16, epochs=2, shuffle=True, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    pred = model.predict(x, verbose=0)
    full_batch = model.evaluate(x, y_packed, batch_size=101, verbose=0)
    np.testing.assert_allclose(full_batch, float(loss(y_packed, pred)), rtol=1e-5)
