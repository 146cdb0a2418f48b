"""lossbench.losses.multitask: two heads, weighted task losses."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from lossbench import losses as L
from tests.losses.references import CASES, f64, ref_temperature, values


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


@pytest.mark.parametrize(
    "reduction", ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", None]
)
@pytest.mark.parametrize("weighted", [False, True])
def test_value_and_components_reduce_as_keras_does(reduction, weighted):
    """A loss with parts reduces its values as its own `__call__` does (Keras's reduction), and
    as Keras's MeanSquaredError does for the box part alone, under every reduction."""
    _, y_true, y_pred = CASES["multitask"]
    w = np.linspace(0.0, 2.0, len(y_true)).astype("float32") if weighted else None
    loss = L.MultiTaskLoss(4, 4, box_weight=1.0, class_weight=0.0, reduction=reduction)
    got, parts = loss.value_and_components(y_true, y_pred, sample_weight=w)
    want = loss(y_true, y_pred, sample_weight=w)
    keras_mse = keras.losses.MeanSquaredError(reduction=reduction)(
        y_true[:, :4], y_pred[:, :4], sample_weight=w
    )
    for other in (want, keras_mse):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(other), rtol=1e-6
        )
    assert len(parts) == 2
