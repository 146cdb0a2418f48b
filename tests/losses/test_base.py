"""lossbench.losses.base: what every loss shares, on every case of tests/loss_cases.py:
finite differences, Keras's sample_weight and reductions, shuffling, config round trips,
argument checks, and the same values on JAX."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from lossbench import losses as L
from lossbench.losses import (
    BinaryCrossentropy,
    GroupedDynamicLoss,
    GroupedScaleLoss,
    MeanSquaredError,
)
from tests.loss_cases import value_and_grad
from tests.losses.references import (
    CASES,
    ROOT,
    f64,
    numeric_grad,
    random_case,
    ref_grouped,
    values,
)


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
def test_invalid_arguments_of_the_core_losses_fail_when_built(make, message):
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
        weight = values(loss64, y64, p) / _dro_sample_losses(loss64, y64, p)

        def total(arr):
            return float(np.sum(weight * _dro_sample_losses(loss64, y64, arr)))

    _, grad = value_and_grad(loss64, y64, p)
    numeric = numeric_grad(total, p_safe)
    np.testing.assert_allclose(np.where(valid, grad, 0), np.where(valid, numeric, 0), rtol=1e-5,
                               atol=1e-7)  # fmt: skip


def _dro_sample_losses(loss, y64, arr):
    """Group DRO's per-sample losses in float64 NumPy: squared error, binary or categorical
    cross-entropy."""
    target = y64[:, :-1] if loss.membership == "index" else y64[:, : -loss.num_groups]
    if loss.sample_loss == "bce":
        q = np.clip(arr, 1e-7, 1 - 1e-7)
        return -np.mean(target * np.log(q) + (1 - target) * np.log(1 - q), axis=1)
    if loss.sample_loss == "ce":
        z = arr - arr.max(axis=1, keepdims=True)
        return -np.sum(target * (z - np.log(np.exp(z).sum(axis=1, keepdims=True))), axis=1)
    return np.mean((target - arr) ** 2, axis=1)


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
