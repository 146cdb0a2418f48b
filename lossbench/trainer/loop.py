"""The training loop: epochs of shuffled batches run in compiled chunks, with per-step records.

`train` is backend-neutral: it shuffles (NumPy, seeded), plans each epoch as full batches in
chunks of `steps_per_chunk` plus one partial last batch, hands the index matrices to a backend
runner, and copies what comes back into preallocated columnar buffers. Nothing here imports a
framework.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossbench.config.schema import TrainerConfig
from lossbench.trainer.records import StepRecords, first_non_finite
from lossbench.trainer.runner import Runner


@dataclass
class TrainResult:
    records: StepRecords  # only the steps that ran and were finite
    layer_names: list[str]
    epochs: list[dict[str, Any]]  # only the epochs that ran to their end
    steps: int
    train_seconds: float
    steps_per_second: float
    compile_seconds: float
    status: str = "ok"  # "ok", "diverged" or "interrupted"
    stop: dict[str, Any] | None = None  # where and why training stopped early


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps per epoch, counting a partial last batch."""
    return math.ceil(n_train / batch_size)


def shuffle_rng(seed: int) -> np.random.Generator:
    """The generator that orders the batches of a run seeded with `seed`."""
    return np.random.default_rng([seed, 1])


def plan_epoch(
    rng: np.random.Generator, n_train: int, batch_size: int, chunk: int
) -> list[np.ndarray]:
    """Shuffle and cut one epoch into index matrices: chunks of full batches, then the rest.

    Returns:
        A list of int32 arrays of shape (steps, batch); full-batch chunks have at most `chunk`
        rows, and a partial last batch comes alone as shape (1, n_train % batch_size).
    """
    order = rng.permutation(n_train).astype("int32")
    n_full = n_train // batch_size
    full = order[: n_full * batch_size].reshape(n_full, batch_size)
    plan = [full[s : s + chunk] for s in range(0, n_full, chunk)]
    if n_train % batch_size:
        plan.append(order[n_full * batch_size :][None, :])
    return plan


def train(
    runner: Runner,
    n_train: int,
    layer_names: list[str],
    cfg: TrainerConfig,
    seed: int,
    evaluate: Callable[[Runner], dict[str, float]],
    on_progress: Callable[[int, int, float], None] | None = None,
    schedule: Callable[[float], float] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train for `cfg.epochs` epochs and record every step.

    Args:
        runner: the backend runner holding model, loss, optimizer and device data.
        n_train: training samples.
        layer_names: trainable layers, in the runner's `layer_sq` column order.
        cfg: epochs, batch size, chunk size.
        seed: seeds the shuffling.
        evaluate: called after each epoch; returns validation loss and metrics.
        on_progress: called after each chunk with (steps done, total steps, last loss).
        schedule: the loss multiplier at a fractional epoch (step k of epoch e is at
            e + k / steps_per_epoch); evaluated here and fed to every step.
        should_stop: polled after each chunk; True ends training with status "interrupted".

    Training also ends, with status "diverged", at the first step whose loss or gradient is not
    finite. The check reads the values each chunk brings back anyway, so it adds no transfer;
    with recording off only the loss is checked. Records keep the steps before that one.

    Returns:
        The step records, the per-epoch rows, timings and the status.
    """
    per_epoch = steps_per_epoch(n_train, cfg.batch_size)
    total = per_epoch * cfg.epochs
    records = StepRecords.allocate(total, len(layer_names), len(runner.component_names))
    rng = shuffle_rng(seed)
    # A chunk buffer is padded to one fixed shape so that the tail chunk reuses its shape.
    capacity = min(cfg.steps_per_chunk, max(n_train // cfg.batch_size, 1))
    # XLA on TensorFlow compiles one program per (index shape, step count): at most a full chunk,
    # an epoch's tail and a partial batch. Their first calls count as compilation.
    seen: set[tuple[tuple[int, ...], int]] = set()
    epochs: list[dict[str, Any]] = []
    done, steady_steps, steady_seconds, compile_seconds = 0, 0, 0.0, 0.0
    start = time.perf_counter()
    status, stop = "ok", None
    for epoch in range(cfg.epochs):
        for idx in plan_epoch(rng, n_train, cfg.batch_size, capacity):
            n = len(idx)
            if idx.shape[1] == cfg.batch_size and n < capacity:
                idx = np.concatenate([idx, np.zeros((capacity - n, cfg.batch_size), "int32")])
            multiplier = np.ones(len(idx), dtype="float32")
            if schedule is not None:
                first = done - epoch * per_epoch
                for k in range(n):
                    multiplier[k] = schedule(epoch + (first + k) / per_epoch)
            t0 = time.perf_counter()
            out = runner.run(idx, n, multiplier)
            dt = time.perf_counter() - t0
            if (idx.shape, n) in seen:
                steady_steps, steady_seconds = steady_steps + n, steady_seconds + dt
            else:
                seen.add((idx.shape, n))
                compile_seconds += dt
            bad = first_non_finite(out["loss"], out["layer_sq"])
            kept = n if bad is None else bad
            rows = slice(done, done + kept)
            layer_sq = out["layer_sq"][:kept]
            records.epoch[rows] = epoch
            records.batch_size[rows] = idx.shape[1]
            records.loss[rows] = out["loss"][:kept]
            records.layer_grad_norms[rows] = np.sqrt(layer_sq)
            records.grad_norm[rows] = np.sqrt(layer_sq.sum(axis=1))
            records.multiplier[rows] = multiplier[:kept]
            records.components[rows] = out["components"][:kept]
            done += kept
            if bad is not None:
                stop = _divergence(done, epoch, out, bad, layer_names, cfg.record)
                status = "diverged"
                break
            if on_progress is not None:
                on_progress(done, total, float(out["loss"][-1]))
            if should_stop is not None and should_stop():
                status, stop = "interrupted", {"step": done, "epoch": epoch}
                break
        if status != "ok":
            break
        ep = slice(done - per_epoch, done)
        train_loss = float(
            np.average(records.loss[ep], weights=records.batch_size[ep].astype("float64"))
        )
        row = {"epoch": epoch, "step": done, "train_loss": train_loss}
        # No wall time here: epochs.csv stays byte-identical between identical runs.
        row.update(evaluate(runner))
        epochs.append(row)
    runner.sync()
    if not cfg.record:
        records.grad_norm[:] = np.nan
        records.layer_grad_norms[:] = np.nan
    elapsed = time.perf_counter() - start
    # Steady state excludes each program's first call (its compilation); a run too short to have
    # one falls back to all chunk time, compilation included.
    rate = steady_steps / steady_seconds if steady_seconds > 0 else done / compile_seconds
    return TrainResult(
        records=records.truncated(done),
        layer_names=layer_names,
        epochs=epochs,
        steps=done,
        train_seconds=elapsed,
        steps_per_second=rate,
        compile_seconds=compile_seconds,
        status=status,
        stop=stop,
    )


def _divergence(
    step: int,
    epoch: int,
    out: dict[str, np.ndarray],
    bad: int,
    layer_names: list[str],
    recorded: bool,
) -> dict[str, Any]:
    """Where training diverged: the step (0-based), its loss, and, when gradient norms were
    recorded, the layers whose gradient was not finite (in model order, input side first)."""
    finite = np.isfinite(out["layer_sq"][bad])
    layers = [name for name, ok in zip(layer_names, finite, strict=True) if not ok]
    return {
        "step": step,
        "epoch": epoch,
        "loss": float(out["loss"][bad]),
        "gradients_recorded": recorded,
        "non_finite_layers": layers if recorded else None,
        "first_non_finite_layer": layers[0] if layers else None,
    }
