"""Each unit's contribution to a step's gradient, from the runner and from a naive reference.

The reference differentiates the batch loss once per unit with the framework's own autodiff,
every other sample's per-sample value held constant (`stop_gradient`): the gradient "through
the unit's samples only", by its definition, with no vector-Jacobian product, no vmap and no
cotangent of our own. Run as `python -m tests.shares_reference BACKEND LOSS...` in a process of
that backend; it prints one JSON line per loss with the largest differences.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from tests.conftest import TINY

SHARE_LOSSES = "tests/share_losses.py"


def overrides(loss: str) -> list[str]:
    """A tiny config's overrides for `loss` (a variant, or `custom:<target>`)."""
    if loss.startswith("custom:"):  # custom:<task>:<target>
        task, target = loss.removeprefix("custom:").split(":", 1)
        return ["loss=custom", f"loss.target={target}", f"loss.task={task}"]
    return [f"loss={loss}"]


def runner_units(exp: Any, idx: np.ndarray) -> dict[str, np.ndarray]:
    """The runner's unit columns for one step on the samples `idx`."""
    out = exp.runner.run(idx[None, :], 1, np.ones(1, "float32"), np.ones(1, "float32"))
    return {
        k: v[0] for k, v in out.items() if k in ("grad_sq", "unit_sq", "unit_dot", "unit_count")
    }


def reference_units(exp: Any, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Each unit's gradient by plain autodiff of the loss with the other samples' values
    constant; squared norms, dots with the full gradient, counts (float64 on the host)."""
    import keras

    x = exp.data.train.x[idx]
    y = exp.loss.pack_targets(exp.data.train.y, exp.extra(exp.data.train))[idx]
    membership = exp.units.membership(exp.data.train)[idx]
    full = _gradient(exp, x, y, None)
    flat = np.concatenate([g.ravel() for g in full])
    sq, dot = [], []
    for k in range(membership.shape[1]):
        unit = np.concatenate([g.ravel() for g in _gradient(exp, x, y, membership[:, k] > 0)])
        sq.append(unit @ unit)
        dot.append(unit @ flat)
    del keras
    return {"grad_sq": flat @ flat, "unit_sq": np.array(sq), "unit_dot": np.array(dot),
            "unit_count": membership.sum(axis=0)}  # fmt: skip


def _gradient(exp: Any, x: np.ndarray, y: np.ndarray, keep: np.ndarray | None) -> list[np.ndarray]:
    """d loss / d weights, through the samples where `keep` (all when None), in float64."""
    import keras

    model, loss = exp.model, exp.loss

    def batch_loss(values: Any, ops: Any, stop: Any) -> Any:
        if keep is None:
            return loss.reduce(values)
        mask = np.reshape(keep, (-1,) + (1,) * (len(values.shape) - 1))
        return loss.reduce(ops.where(mask, values, stop(values)))

    if keras.backend.backend() == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def of(weights: Any) -> Any:
            pred, _ = model.stateless_call(weights, non_trainable, x, training=True)
            return batch_loss(loss.sample_values(y, pred), jax.numpy, jax.lax.stop_gradient)

        grads = jax.grad(of)(trainable)
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            value = batch_loss(loss.sample_values(y, pred), tf, tf.stop_gradient)
        grads = tape.gradient(value, model.trainable_variables)
        grads = [tf.zeros_like(v) if g is None else g for g, v in
                 zip(grads, model.trainable_variables, strict=True)]  # fmt: skip
    return [np.asarray(g, dtype="float64") for g in grads]


def compare(loss: str, *extra: str) -> dict[str, Any]:
    """The runner's unit columns against the reference for one step of `loss` (the first
    batch of the training split), as the largest relative differences."""
    from lossbench.config.compose import compose
    from lossbench.run.experiment import build_experiment

    cfg = compose([*overrides(loss), *TINY, "trainer.record_groups=true", *extra])
    exp = build_experiment(cfg)
    idx = np.arange(cfg.trainer.batch_size, dtype="int32")
    expected = reference_units(exp, idx)  # before the step moves the weights
    reduced, called = _reduce_and_call(exp, idx)
    got = runner_units(exp, idx)
    scale = max(float(expected["grad_sq"]), 1e-30)
    return {
        "loss": loss,
        "units": len(exp.units),
        "by": list(exp.units.by),
        "grad_sq": _relative(got["grad_sq"], expected["grad_sq"], scale),
        # Differences relative to |g|^2 (a unit's norm can be 0 and its share is dot / |g|^2).
        "unit_sq": _relative(got["unit_sq"], expected["unit_sq"], scale),
        "unit_dot": _relative(got["unit_dot"], expected["unit_dot"], scale),
        "count": float(np.max(np.abs(got["unit_count"] - expected["unit_count"]))),
        "share_sums": _share_sums(got, exp.units.by),
        "reduce_vs_call": abs(reduced - called) / max(abs(called), 1e-30),
        "unit_sq_got": np.asarray(got["unit_sq"], "float64").tolist(),
        "unit_dot_got": np.asarray(got["unit_dot"], "float64").tolist(),
        "reference_unit_sq": expected["unit_sq"].tolist(),
        "reference_unit_dot": expected["unit_dot"].tolist(),
        "grad_sq_value": float(expected["grad_sq"]),
    }


def _reduce_and_call(exp: Any, idx: np.ndarray) -> tuple[float, float]:
    """The batch loss as `reduce(sample_values)` and as Keras's `__call__` gives it."""
    import keras

    x = exp.data.train.x[idx]
    y = exp.loss.pack_targets(exp.data.train.y, exp.extra(exp.data.train))[idx]
    pred = exp.model(x, training=True)
    reduced = exp.loss.reduce(exp.loss.sample_values(y, pred))
    called = exp.loss(y, pred)
    return float(keras.ops.convert_to_numpy(reduced)), float(keras.ops.convert_to_numpy(called))


def _relative(got: Any, expected: Any, scale: float) -> float:
    return float(np.max(np.abs(np.asarray(got, "float64") - expected)) / scale)


def _share_sums(got: dict[str, np.ndarray], by: list[str] | tuple[str, ...]) -> list[float]:
    """Each kind's shares summed (1 when the units of that kind partition the batch)."""
    shares = got["unit_dot"].astype("float64") / float(got["grad_sq"])
    return [float(shares[np.asarray(by) == kind].sum()) for kind in dict.fromkeys(by)]


def main(argv: list[str]) -> None:
    backend, *losses = argv
    for loss in losses:
        print(json.dumps(compare(loss, f"backend={backend}")), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
