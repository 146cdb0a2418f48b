"""Keras's Adam against `FlatAdam`, run under KERAS_BACKEND=jax.

`python -m tests.trainer.adam_cases` prints JSON: whether each comparison found the two equal
bit for bit, and which optimizers `FlatAdam.fits` takes (tests/trainer/test_jax_adam.py).
"""

from __future__ import annotations

import json

import numpy as np


def _model():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(7, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(3),
        ]
    )


def steps_equal() -> bool:
    """Six jitted steps of random gradients through both: the same variables and state."""
    import jax
    import keras

    from lossbench.trainer.jax_adam import FlatAdam

    model = _model()
    optimizer = keras.optimizers.Adam(learning_rate=0.01, beta_1=0.8, epsilon=1e-5)
    optimizer.build(model.trainable_variables)
    flat = FlatAdam(optimizer, [tuple(v.shape) for v in model.trainable_variables])
    weights = [np.asarray(v.value) for v in model.trainable_variables]
    state = [np.asarray(v.value) for v in optimizer.variables]
    ours = (weights, flat.flatten(state))
    keras_apply = jax.jit(lambda w, s, g: optimizer.stateless_apply(s, g, w)[::-1])
    flat_apply = jax.jit(lambda w, s, g: flat.apply(s, g, w))
    theirs = (weights, state)
    rng = np.random.default_rng(1)
    for _ in range(6):
        grads = [rng.normal(size=w.shape).astype(np.float32) for w in weights]
        theirs = keras_apply(*theirs, grads)[::-1]
        ours = flat_apply(*ours, grads)
    same = all(np.array_equal(a, b) for a, b in zip(theirs[0], ours[0], strict=True))
    try:  # moments grouped by kind (all momenta, then all velocities): not Keras's layout
        flat.flatten([*state[:2], *state[2::2], *state[3::2]])
        return False
    except ValueError:
        pass
    unflat = flat.unflatten(ours[1])
    return same and all(np.array_equal(a, b) for a, b in zip(theirs[1], unflat, strict=True))


def runner_forms_equal() -> bool:
    """A JAX runner with the flat Adam and one with Keras's: the same rows and, after `sync`,
    the same Keras variables (weights and optimizer)."""
    import keras

    from lossbench.losses import BinaryCrossentropy
    from lossbench.trainer import make_runner

    rng = np.random.default_rng(2)
    x = rng.normal(size=(96, 5)).astype(np.float32)
    y = (rng.random((96, 1)) < 0.3).astype(np.float32)
    idx = rng.permutation(96)[:90].reshape(3, 30)
    results = []
    for flat in (True, False):
        model = keras.Sequential(
            [keras.Input((5,)), keras.layers.Dense(4), keras.layers.Dense(1, activation="sigmoid")]
        )
        model.set_weights(
            [np.linspace(-1, 1, w.size).reshape(w.shape) for w in model.get_weights()]
        )
        runner, _ = make_runner(
            "jax",
            model=model,
            loss=BinaryCrossentropy(),
            optimizer=keras.optimizers.Adam(),
            x=x,
            y=y,
            layer_slices=[[0, 1], [2, 3]],
            record=True,
        )
        if not flat:  # Keras's own stateless_apply
            runner.flat_adam = None
            runner.reset(x, y)
            runner.use(runner.form, fresh=True)
        rows = runner.run(idx, 3, np.ones(3, np.float32))
        runner.sync()
        values = [np.asarray(v.value) for v in [*model.variables, *runner.optimizer.variables]]
        results.append((rows, values))
    (rows_a, vals_a), (rows_b, vals_b) = results
    same_rows = all(np.array_equal(rows_a[k], rows_b[k]) for k in rows_a)
    return same_rows and all(np.array_equal(a, b) for a, b in zip(vals_a, vals_b, strict=True))


def fits() -> dict[str, bool]:
    """Which optimizers (and variables) the flat path takes."""
    import keras

    from lossbench.trainer.jax_adam import FlatAdam

    model = _model()
    variables = model.trainable_variables
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9)
    optimizers = {
        "adam": keras.optimizers.Adam(),
        "adam_lr": keras.optimizers.Adam(learning_rate=0.05, beta_2=0.99),
        "amsgrad": keras.optimizers.Adam(amsgrad=True),
        "clipnorm": keras.optimizers.Adam(clipnorm=1.0),
        "weight_decay": keras.optimizers.Adam(weight_decay=0.01),
        "ema": keras.optimizers.Adam(use_ema=True),
        "schedule": keras.optimizers.Adam(learning_rate=schedule),
        "adamw": keras.optimizers.AdamW(),
        "sgd": keras.optimizers.SGD(),
    }
    found = {name: FlatAdam.fits(opt, variables) for name, opt in optimizers.items()}
    constrained = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, kernel_constraint="non_neg")]
    )
    found["constrained_variable"] = FlatAdam.fits(
        keras.optimizers.Adam(), constrained.trainable_variables
    )
    return found


if __name__ == "__main__":
    print(json.dumps({"steps": steps_equal(), "runner": runner_forms_equal(), "fits": fits()}))
