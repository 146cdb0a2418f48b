"""Small Keras helpers of the checks: tensors in and out, value and gradient on either backend,
a loss function as a Loss, the variables a loss holds, and a tiny model to compile it with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from lossbench.check.inputs import Batch


class FunctionLoss(keras.losses.Loss):
    """A loss function as a `Loss` with Keras's default reduction (what `compile` makes)."""

    def __init__(self, fn: Callable[[Any, Any], Any]) -> None:
        super().__init__(name=getattr(fn, "__name__", "loss"))
        self.fn = fn

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return self.fn(y_true, y_pred)


def keras_loss(loss: Any) -> keras.losses.Loss:
    """The object `model.compile(loss=...)` would use."""
    return loss if isinstance(loss, keras.losses.Loss) else FunctionLoss(loss)


def overrides_call(loss: Any) -> bool:
    """A Loss subclass whose `__call__` is its own: Keras's trainer calls that, not `call`."""
    return (
        isinstance(loss, keras.losses.Loss)
        and type(loss).__call__ is not keras.losses.Loss.__call__
    )


def has_call(loss: Any) -> bool:
    """Whether per-sample values exist: a function, or a Loss subclass that implements `call`."""
    return not isinstance(loss, keras.losses.Loss) or type(loss).call is not keras.losses.Loss.call


def np_array(x: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def tensor(x: np.ndarray) -> Any:
    return keras.ops.convert_to_tensor(x)


def value_and_grad(fn: Callable[[Any], Any], pred: np.ndarray) -> tuple[float, np.ndarray | None]:
    """fn(pred) (a scalar) and its gradient with respect to pred, on this backend; the gradient
    is None where TensorFlow finds the value does not depend on pred (JAX gives zeros)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        p = tf.Variable(pred)
        with tf.GradientTape() as tape:
            value = fn(p)
        grad = tape.gradient(value, p)
        return float(np_array(value)), None if grad is None else np_array(grad)
    import jax

    value, grad = jax.value_and_grad(fn)(jax.numpy.asarray(pred))
    return float(value), np.asarray(grad)


def loss_variables(loss: Any) -> list[Any]:
    found, seen = [], set()
    for value in vars(loss).values() if hasattr(loss, "__dict__") else ():
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if isinstance(item, keras.Variable) and id(item) not in seen:
                seen.add(id(item))
                found.append(item)
    return found


def features(batch: Batch) -> np.ndarray:
    return np.random.default_rng(9).normal(size=(len(batch), 5)).astype("float32")


def tiny_model(task: str, batch: Batch) -> keras.Model:
    """A linear model whose output has the batch's prediction shape."""
    shape = batch.pred.shape[1:]
    activation = "sigmoid" if task in ("binary", "grid") else None
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(int(np.prod(shape)), activation=activation),
            keras.layers.Reshape(shape),
        ]
    )
    return model


def reduce_weighted(values: np.ndarray, weights: np.ndarray, reduction: str) -> float:
    """Keras's documented reductions of weighted values, in float64."""
    total = float(np.sum(values * weights))
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight":
        return total / float(np.sum(weights)) if np.sum(weights) else 0.0
    return total / values.size
