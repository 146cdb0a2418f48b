"""One random case per loss variant, reusable on any Keras backend.

`python -m tests.loss_cases` (with KERAS_BACKEND set) prints each case's per-sample values and
gradient with respect to y_pred as JSON: the JAX test compares them with TensorFlow's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np

BATCH = 12
OUTPUTS = 3


def make_cases(seed: int = 0) -> dict[str, tuple[Any, np.ndarray, np.ndarray]]:
    """name -> (loss, packed y_true, y_pred), float32, from NumPy only."""
    from lossbench import losses as L
    from lossbench.losses.context import mask_pattern
    from lossbench.losses.user import build_user_loss

    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 3, size=BATCH)  # unsorted; group 3 of 4 is empty
    reg_y = rng.normal(size=(BATCH, OUTPUTS)) * np.array([0.5, 1.0, 3.0])[groups % 3][:, None]
    reg_p = rng.normal(size=(BATCH, OUTPUTS))
    labels = (rng.random((BATCH, 1)) < 0.3).astype("float64")
    probs = rng.uniform(0.02, 0.98, size=(BATCH, 1))
    classes = np.eye(4)[rng.integers(0, 4, size=BATCH)]
    logits = rng.normal(size=(BATCH, 4)) * 2
    grid_y = rng.random((BATCH, 4, 5))
    grid_p = rng.random((BATCH, 4, 5))
    adjacency = (rng.random((20, 20)) < 0.3).astype("float32")
    nodes = rng.choice(20, size=BATCH, replace=False)
    sparse = (rng.random((120, 120)) < 0.02).astype("float32")  # a batch of most of its nodes
    sparse_nodes = rng.choice(120, size=100, replace=False)
    box = rng.random((BATCH, 4))
    robust_y = reg_y.copy()
    robust_y[0, 1], robust_y[3, 0] = np.nan, np.inf
    robust_p = reg_p.copy()
    robust_p[5, 2] = np.nan

    def case(loss: Any, y: np.ndarray, p: np.ndarray, extra: Any = None) -> tuple:
        return loss, loss.pack_targets(y, extra).astype("float32"), p.astype("float32")

    scales = [0.5, 1.0, 3.0, 2.0]
    return {
        "mse": case(L.MeanSquaredError(), reg_y, reg_p),
        "bce": case(L.BinaryCrossentropy(), labels, probs),
        "grouped": case(L.GroupedScaleLoss(scales), reg_y, reg_p, groups),
        "grouped_onehot": case(
            L.GroupedScaleLoss(scales, membership="onehot"), reg_y, reg_p, groups
        ),
        "grouped_dynamic": case(L.GroupedDynamicLoss(4, epsilon=1e-3), reg_y, reg_p, groups),
        "context_mask": case(
            L.ContextMaskLoss(mask_pattern("center", (4, 5), 4.0, 0)), grid_y, grid_p
        ),
        "context_graph": case(
            L.ContextGraphLoss.from_adjacency(adjacency, graph_weight=0.7), reg_y, reg_p, nodes
        ),
        "context_graph_edges": case(
            L.ContextGraphLoss.from_adjacency(sparse, graph_weight=0.7),
            rng.normal(size=(100, 2)),
            rng.normal(size=(100, 2)),
            sparse_nodes,
        ),
        "sample_weights": case(
            L.SampleWeightedLoss(L.BinaryCrossentropy(), [0.6, 2.5]), labels, probs
        ),
        "sample_weights_group": case(
            L.SampleWeightedLoss(L.MeanSquaredError(), [1.0, 0.5, 2.0, 0.0], by="group"),
            reg_y,
            reg_p,
            groups,
        ),
        "output_weights": case(
            L.OutputWeightedLoss(
                [1.0, 0.5, 2.0], scheme="inverse_group_scale", group_scales=scales
            ),
            reg_y,
            reg_p,
            groups,
        ),
        "robust_weights": case(L.RobustWeightedLoss([1.0, 0.5, 2.0]), robust_y, robust_p),
        "threshold": case(L.ThresholdBinaryCrossentropy(0.4, 0.2), labels, probs),
        "temperature": case(L.TemperatureCrossentropy(0.5), classes, logits),
        "multitask": case(
            L.MultiTaskLoss(4, 4, box_weight=2.0, class_weight=0.5),
            np.c_[box, classes],
            np.c_[rng.random((BATCH, 4)), logits],
        ),
        "scaled": case(L.ScaledLoss(L.GroupedDynamicLoss(4), factor=2.5), reg_y, reg_p, groups),
        "focal": case(L.FocalLoss(gamma=2.0, alpha=0.25), labels, probs),
        "class_balanced": case(L.ClassBalancedLoss([0.4, 1.6], gamma=1.0), labels, probs),
        "logit_adjusted": case(L.LogitAdjustedLoss([0.9, 0.1], tau=1.0), labels, probs),
        "group_dro": case(L.GroupDROLoss(4, step_size=2.0), reg_y, reg_p, groups),
        "custom": case(
            build_user_loss("tests.check.example_losses:GoodGroupScaled", {"epsilon": 0.01}),
            reg_y,
            reg_p,
            groups,
        ),
        "group_dro_onehot": case(
            L.GroupDROLoss(4, step_size=2.0, membership="onehot"), reg_y, reg_p, groups
        ),
        "group_dro_bce": case(L.GroupDROLoss(4, 2.0, sample_loss="bce"), labels, probs, groups),
        "group_dro_ce": case(L.GroupDROLoss(4, 2.0, sample_loss="ce"), classes, logits, groups),
    }


def value_and_grad(loss: Any, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[Any, Any]:
    """Per-sample values and the gradient of their sum with respect to y_pred, on this backend."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        p = tf.Variable(y_pred)
        with tf.GradientTape() as tape:
            values = loss.call(tf.constant(y_true), p)
            total = tf.reduce_sum(values)
        return values.numpy(), tape.gradient(total, p).numpy()
    if backend == "jax":
        import jax

        def total(p: Any) -> Any:
            values = loss.call(jax.numpy.asarray(y_true), p)
            return values.sum(), values

        (_, values), grad = jax.value_and_grad(total, has_aux=True)(jax.numpy.asarray(y_pred))
        return np.asarray(values), np.asarray(grad)
    raise RuntimeError(f"no gradient helper for backend {backend}")


def main(emit: Callable[[str], None] = print) -> None:
    out = {}
    for name, (loss, y_true, y_pred) in make_cases().items():
        values, grad = value_and_grad(loss, y_true, y_pred)
        out[name] = {"values": values.tolist(), "grad": grad.tolist()}
    emit(json.dumps({"backend": os.environ.get("KERAS_BACKEND"), "cases": out}))


if __name__ == "__main__":
    main()
