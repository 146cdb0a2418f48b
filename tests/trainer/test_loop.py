"""The fused trainer records exactly what an independent eager GradientTape loop computes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from lossbench.config.schema import MlpModel, Task, TrainerConfig
from lossbench.losses import GroupedDynamicLoss
from lossbench.run.experiment import layer_groups
from lossbench.run.models import build_model
from lossbench.trainer import (
    make_runner,
    plan_epoch,
    shuffle_rng,
    split_records,
    steps_per_epoch,
    train,
)


def _problem(n=203, f=6, groups=3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, f)).astype("float32")
    g = rng.integers(0, groups, size=n)
    y = (np.tanh(x[:, :2]) * np.array([0.5, 1.0, 3.0])[g][:, None]).astype("float32")
    return x, y, g


@pytest.mark.parametrize("chunk", [3, 1000])
def test_per_step_loss_and_grad_norms_match_an_eager_gradient_tape(chunk):
    x, y, g = _problem()
    loss = GroupedDynamicLoss(num_groups=3, epsilon=1e-6)
    y_packed = loss.pack_targets(y, g)
    cfg = TrainerConfig(epochs=2, batch_size=32, steps_per_chunk=chunk, learning_rate=1e-2)
    keras.utils.set_random_seed(0)
    model = build_model(Task.grouped, MlpModel(hidden=[8, 8]), x.shape[1], y.shape[1:])
    initial = [w.copy() for w in model.get_weights()]
    names, slices = layer_groups(model)
    runner, device = make_runner(
        "tensorflow",
        model=model,
        loss=loss,
        optimizer=keras.optimizers.Adam(cfg.learning_rate),
        x=x,
        y=y_packed,
        layer_slices=slices,
        record=True,
        jit_compile=True,
    )
    result = train(runner, len(x), names, cfg, seed=5, evaluate=lambda r: {})
    assert device == "CPU" or device.startswith("GPU")
    per_epoch = steps_per_epoch(len(x), 32)
    assert per_epoch == 7 and result.steps == 14
    assert names == ["hidden_0", "hidden_1", "head"]

    # Independent replay: same weights, same batches, eager tape and a fresh optimizer.
    ref_model = build_model(Task.grouped, MlpModel(hidden=[8, 8]), x.shape[1], y.shape[1:])
    ref_model.set_weights(initial)
    opt = keras.optimizers.Adam(cfg.learning_rate)
    rng = shuffle_rng(5)
    losses, global_norms, layer_norms = [], [], []
    for _ in range(cfg.epochs):
        for idx in plan_epoch(rng, len(x), 32, chunk=10**9):
            for rows in idx:
                with tf.GradientTape() as tape:
                    value = loss(y_packed[rows], ref_model(x[rows], training=True))
                grads = tape.gradient(value, ref_model.trainable_variables)
                opt.apply(grads, ref_model.trainable_variables)
                sq = [float(np.sum(np.square(gr.numpy(), dtype="float64"))) for gr in grads]
                losses.append(float(value))
                global_norms.append(np.sqrt(sum(sq)))
                layer_norms.append([np.sqrt(sq[2 * k] + sq[2 * k + 1]) for k in range(3)])

    rec = result.records
    np.testing.assert_allclose(rec.loss, losses, rtol=2e-5)
    np.testing.assert_allclose(rec.grad_norm, global_norms, rtol=2e-5)
    np.testing.assert_allclose(rec.layer_grad_norms, layer_norms, rtol=2e-5)
    np.testing.assert_array_equal(rec.epoch, np.repeat([0, 1], per_epoch))
    np.testing.assert_array_equal(rec.batch_size[:per_epoch], [32] * 6 + [203 - 6 * 32])
    for trained, replayed in zip(model.get_weights(), ref_model.get_weights(), strict=True):
        np.testing.assert_allclose(trained, replayed, rtol=1e-4, atol=1e-6)


def test_plan_epoch_covers_every_sample_once_with_a_partial_last_batch():
    plan = plan_epoch(np.random.default_rng(0), 103, 10, chunk=4)
    assert [p.shape for p in plan] == [(4, 10), (4, 10), (2, 10), (1, 3)]
    seen = np.concatenate([p.ravel() for p in plan])
    np.testing.assert_array_equal(np.sort(seen), np.arange(103))


@pytest.mark.parametrize("record", [True, False])
def test_split_records_reads_loss_layers_and_components_from_one_row_per_step(record):
    """Runners pack each step as [loss, layer_sq..., components...]; padding rows are dropped."""
    n_layers, n_steps = 3, 4
    loss = np.arange(6, dtype="float32")
    layer_sq = np.arange(18, dtype="float32").reshape(6, 3) + 100
    parts = np.arange(12, dtype="float32").reshape(6, 2) + 200
    packed = np.concatenate([loss[:, None], *([layer_sq] if record else []), parts], axis=1)
    out = split_records(packed, n_steps, n_layers, record)
    np.testing.assert_array_equal(out["loss"], loss[:n_steps])
    np.testing.assert_array_equal(out["components"], parts[:n_steps])
    expected = layer_sq[:n_steps] if record else np.zeros((n_steps, n_layers))
    np.testing.assert_array_equal(out["layer_sq"], expected)


def test_a_scheduled_loss_scale_reaches_every_compiled_step():
    """A step schedule halves the loss from epoch 1: the fused chunk must see each new value."""
    from lossbench.losses import MeanSquaredError, ScaledLoss

    x, y, _ = _problem(n=96)
    loss = ScaledLoss(
        MeanSquaredError(), factor=3.0, schedule="step", step_epoch=1, step_factor=0.5
    )
    cfg = TrainerConfig(epochs=3, batch_size=32, steps_per_chunk=8, learning_rate=1e-2)
    keras.utils.set_random_seed(1)
    model = build_model(Task.grouped, MlpModel(hidden=[8]), x.shape[1], y.shape[1:])
    initial = model.get_weights()
    names, slices = layer_groups(model)
    runner, _ = make_runner(
        "tensorflow", model=model, loss=loss, optimizer=keras.optimizers.SGD(0.05), x=x, y=y,
        layer_slices=slices, record=True, jit_compile=True,
    )  # fmt: skip
    result = train(runner, len(x), names, cfg, 0, lambda r: {}, schedule=loss.schedule_multiplier)
    np.testing.assert_array_equal(result.records.multiplier, [1.0] * 3 + [0.5] * 6)

    ref = build_model(Task.grouped, MlpModel(hidden=[8]), x.shape[1], y.shape[1:])
    ref.set_weights(initial)
    opt, rng, expected = keras.optimizers.SGD(0.05), shuffle_rng(0), []
    for epoch in range(3):
        for idx in plan_epoch(rng, len(x), 32, chunk=8):
            for rows in idx:
                with tf.GradientTape() as tape:
                    value = loss(y[rows], ref(x[rows], training=True)) * (0.5 if epoch else 1.0)
                opt.apply(tape.gradient(value, ref.trainable_variables), ref.trainable_variables)
                expected.append(float(value))
    np.testing.assert_allclose(result.records.loss, expected, rtol=2e-5)


def test_a_reused_runner_trains_exactly_like_a_fresh_one(tiny_config):
    """Jobs with the same structure reuse the compiled runner; only seed-dependent state is
    replaced, so the records match a runner built from scratch."""
    from lossbench.run.experiment import RunnerCache, build_experiment

    def records(exp):
        cfg = exp.cfg
        return train(exp.runner, len(exp.data.train), exp.layer_names, cfg.trainer, cfg.seed,
                     lambda r: {"pred": float(np.sum(r.predict(exp.data.val.x)))})  # fmt: skip

    runners = RunnerCache()
    first = build_experiment(tiny_config("mse", "seed=0"), runners=runners)
    records(first)
    # Another structure in between gets its own runner (and clears Keras's session) ...
    other = build_experiment(tiny_config("mse", "seed=1", "model.hidden=[8]"), runners=runners)
    assert other.runner is not first.runner
    records(other)
    # ... and the first runner, reused for a new seed, still trains exactly like a fresh one.
    reused = build_experiment(tiny_config("mse", "seed=1"), runners=runners)
    assert reused.runner is first.runner
    again = records(reused)
    fresh_exp = build_experiment(tiny_config("mse", "seed=1"), runners=RunnerCache())
    assert fresh_exp.runner is not first.runner
    fresh = records(fresh_exp)
    np.testing.assert_array_equal(again.records.loss, fresh.records.loss)
    np.testing.assert_array_equal(again.records.layer_grad_norms, fresh.records.layer_grad_norms)
    assert again.epochs == fresh.epochs


class _ScalarRunner:
    """A NumPy stand-in for a backend runner: one weight w, loss = w * mean(x[batch]) per step,
    then w -= 0.1 * loss (a NaN in x makes that step's loss NaN)."""

    component_names = ("half",)
    n_units = 0

    def __init__(self, x):
        self.x, self.w = x, 1.0

    def run(self, idx, n_steps, multiplier, unit_steps=None):
        rows = []
        for i in range(n_steps):
            loss = self.w * float(np.mean(self.x[idx[i]])) * multiplier[i]
            self.w -= 0.1 * loss
            rows.append([loss, loss**2, 2 * loss**2, loss / 2])
        return split_records(np.array(rows, dtype="float32").reshape(-1, 4), n_steps, 2, True)

    def predict(self, x):
        return self.w * x

    def sync(self):
        pass


class _ScalarLanes:
    def __init__(self, runners):
        self.runners, self.frozen = runners, []
        self.component_names, self.n_units = _ScalarRunner.component_names, 0

    def run(self, idx, n_steps, multiplier, unit_steps=None):
        return [r.run(i, n_steps, multiplier) for r, i in zip(self.runners, idx, strict=True)]

    def freeze(self, lane):
        self.frozen.append(lane)

    def lane(self, lane):
        return self.runners[lane]

    def sync(self):
        pass


def test_lanes_in_lockstep_record_what_separate_runs_do_and_a_diverging_lane_stops_alone():
    """`train_lanes` (the vectorized seeds' loop) against `train` run once per seed: the same
    records, epochs and status per lane, a lane with a NaN sample stops at that step while the
    others go on, and the loss schedule reaches every lane's steps."""
    from lossbench.trainer.loop import train_lanes

    n = 103
    datasets = [np.random.default_rng(s).normal(size=n).astype("float32") for s in range(3)]
    datasets[1][57] = np.nan  # lane 1 diverges in its first epoch, at the batch holding 57
    cfg = TrainerConfig(epochs=3, batch_size=10, steps_per_chunk=4, learning_rate=1.0)
    seeds = [4, 5, 6]

    def schedule(t):
        return 1.0 + t

    def evaluator(data):
        return lambda r: {"val": float(np.sum(r.predict(data)))}

    names = ["layer_a", "layer_b"]
    lanes = _ScalarLanes([_ScalarRunner(x) for x in datasets])
    together = train_lanes(lanes, n, names, cfg, seeds, [evaluator(x) for x in datasets],
                           schedule=schedule)  # fmt: skip
    for x, seed, got in zip(datasets, seeds, together, strict=True):
        alone = train(_ScalarRunner(x), n, names, cfg, seed, evaluator(x), schedule=schedule)
        assert got.status == alone.status and str(got.stop) == str(alone.stop)  # NaN loss
        assert got.steps == alone.steps and got.epochs == alone.epochs
        for field in ("epoch", "batch_size", "loss", "grad_norm", "layer_grad_norms",
                      "multiplier", "components"):  # fmt: skip
            np.testing.assert_array_equal(getattr(got.records, field),
                                          getattr(alone.records, field), err_msg=field)  # fmt: skip
    assert [r.status for r in together] == ["ok", "diverged", "ok"]
    assert lanes.frozen == [1]
    assert together[1].steps < steps_per_epoch(n, 10) and not together[1].epochs
    assert together[0].steps == 3 * steps_per_epoch(n, 10) and len(together[0].epochs) == 3
    assert together[0].records.multiplier[-1] == np.float32(1.0 + 2 + 10 / 11)


GATHER_PROBE = textwrap.dedent(
    """
    import json, sys
    import lossbench.trainer.base as base
    from lossbench.config.compose import compose
    from lossbench.run.experiment import build_experiment
    from lossbench.trainer import train

    out = {}
    for limit in (base.GATHER_BYTES, 0):
        base.GATHER_BYTES = limit
        exp = build_experiment(compose(sys.argv[1:]))
        cfg = exp.cfg
        rec = train(exp.runner, len(exp.data.train), exp.layer_names, cfg.trainer, cfg.seed,
                    lambda r: {}).records
        out[str(limit)] = [rec.loss.tolist(), rec.layer_grad_norms.tolist()]
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_chunk_gathered_before_its_loop_trains_as_one_gathered_step_by_step(backend, tmp_path):
    """The two ways a chunk reads its batches (all gathered before its loop, or each inside it:
    `gathers_chunk`) train the same: the same losses and gradient norms to float32 round-off."""
    from lossbench.trainer.base import GATHER_BYTES

    args = [f"backend={backend}", "loss=grouped_dynamic", "data.n_samples=700",
            "trainer.epochs=2", "trainer.steps_per_chunk=4", "trainer.progress=false"]  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", GATHER_PROBE, *args], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    before, inside = out[str(GATHER_BYTES)], out["0"]
    assert len(before[0]) == 2 * 9  # 560 training samples: 8 full batches and a partial one
    for ours, theirs in zip(before, inside, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
