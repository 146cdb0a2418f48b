"""The training loop: epochs of shuffled batches run in compiled chunks, with per-step records.

`train` is backend-neutral: it shuffles (NumPy, seeded), plans each epoch as full batches in
chunks of `steps_per_chunk` plus one partial last batch, hands the index matrices to a backend
runner, and copies what comes back into preallocated columnar buffers. `train_lanes` does the
same for several seeds trained in lockstep by one program (`lossbench.trainer.jax_lanes`). Nothing
here imports a framework.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from lossbench.config.schema import TrainerConfig
from lossbench.store.records import StepRecords, first_non_finite
from lossbench.store.run_folder import Status
from lossbench.trainer.base import Runner


@dataclass
class TrainResult:
    records: StepRecords  # only the steps that ran and were finite
    layer_names: list[str]
    epochs: list[dict[str, Any]]  # only the epochs that ran to their end
    steps: int
    train_seconds: float
    steps_per_second: float
    compile_seconds: float
    status: Status = Status.ok  # ok, diverged or interrupted
    stop: dict[str, Any] | None = None  # where and why training stopped early


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps per epoch, counting a partial last batch."""
    return math.ceil(n_train / batch_size)


def chunk_capacity(n_train: int, cfg: TrainerConfig) -> int:
    """Rows of every chunk's index matrix: full chunks, and the epoch's tail padded to it, so
    that one compiled loop runs them all."""
    return min(cfg.steps_per_chunk, max(n_train // cfg.batch_size, 1))


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


# Called before training (None) and with each epoch's row; True: stop here as pruned.
EpochCheck = Callable[[dict[str, Any] | None], bool]


class Lanes(Protocol):
    """Several runs of one model structure trained in lockstep, one lane per seed.

    `run` takes one index matrix per lane and returns one record dict per lane; `freeze(k)`
    keeps lane k's weights as they are now (it stopped early); `lane(k)` is a `Runner` view of
    lane k for evaluation; `sync` writes the weights back to the Keras variables.
    """

    component_names: tuple[str, ...]
    n_units: int

    def run(
        self, idx: list[np.ndarray], n_steps: int, multiplier: np.ndarray,
        unit_steps: np.ndarray | None = None,
    ) -> list[dict[str, np.ndarray]]: ...  # fmt: skip

    def freeze(self, lane: int) -> None: ...

    def lane(self, lane: int) -> Runner: ...

    def sync(self) -> None: ...


class OneLane:
    """A single runner as `Lanes` of one: the same calls with the same arrays, so a single run's
    records are exactly those of the runner alone."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.component_names, self.n_units = runner.component_names, runner.n_units

    def run(
        self, idx: list[np.ndarray], n_steps: int, multiplier: np.ndarray,
        unit_steps: np.ndarray | None = None,
    ) -> list[dict[str, np.ndarray]]:  # fmt: skip
        return [self.runner.run(idx[0], n_steps, multiplier, unit_steps)]

    def freeze(self, lane: int) -> None:
        """Nothing to keep: a single run ends when its lane stops."""

    def lane(self, lane: int) -> Runner:
        return self.runner

    def sync(self) -> None:
        self.runner.sync()


@dataclass
class _Lane:
    """One seed's progress through training."""

    rng: np.random.Generator
    records: StepRecords
    done: int = 0
    epochs: list[dict[str, Any]] = field(default_factory=list)
    status: Status = Status.ok
    stop: dict[str, Any] | None = None


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
    epoch_check: EpochCheck | None = None,
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
        epoch_check: called before training (with None) and with each epoch's row; True ends
            training there with status "pruned" (a search's pruner).

    Training also ends, with status "diverged", at the first step whose loss or gradient is not
    finite. The check reads the values each chunk brings back anyway, so it adds no transfer;
    with recording off only the loss is checked. Records keep the steps before that one.

    Returns:
        The step records, the per-epoch rows, timings and the status.
    """
    (result,) = train_lanes(
        OneLane(runner), n_train, layer_names, cfg, [seed], [evaluate],
        on_progress, schedule, should_stop, [epoch_check],
    )  # fmt: skip
    return result


def train_lanes(
    lanes: Lanes,
    n_train: int,
    layer_names: list[str],
    cfg: TrainerConfig,
    seeds: Sequence[int],
    evaluators: Sequence[Callable[[Runner], dict[str, float]]],
    on_progress: Callable[[int, int, float], None] | None = None,
    schedule: Callable[[float], float] | None = None,
    should_stop: Callable[[], bool] | None = None,
    epoch_checks: Sequence[EpochCheck | None] | None = None,
) -> list[TrainResult]:
    """`train` for several seeds at once: lane k shuffles with `seeds[k]` and is evaluated by
    `evaluators[k]`, exactly as its own run would be. A lane that diverges stops recording (its
    weights are frozen) while the others go on; an interruption stops them all; `epoch_checks[k]`
    may prune lane k. Progress reports the first lane still training; timings are shared.
    """
    per_epoch = steps_per_epoch(n_train, cfg.batch_size)
    total = per_epoch * cfg.epochs
    width = (total, len(layer_names), len(lanes.component_names), lanes.n_units)
    runs = [_Lane(shuffle_rng(seed), StepRecords.allocate(*width)) for seed in seeds]
    capacity = chunk_capacity(n_train, cfg)
    clock = _Clock()
    checks = list(epoch_checks or [None] * len(runs))
    _check_epoch(runs, lanes, checks, epoch=-1)  # a lane may be pruned before it starts
    for epoch in range(cfg.epochs):
        if all(run.status != Status.ok for run in runs):
            break
        # Every lane draws its epoch's order, as its own run would; stopped lanes are padding.
        plans = [plan_epoch(run.rng, n_train, cfg.batch_size, capacity) for run in runs]
        position = 0  # steps into the epoch, the same in every lane still training
        for c, first_plan in enumerate(plans[0]):
            n = len(first_plan)
            idx = [_padded(plan[c], n, capacity, cfg.batch_size) for plan in plans]
            multiplier = _multipliers(schedule, epoch, position, n, len(idx[0]), per_epoch)
            flags = _unit_steps(lanes.n_units, cfg, epoch * per_epoch + position, len(idx[0]))
            position += n
            outs = clock.time(idx[0].shape, n, lambda: lanes.run(idx, n, multiplier, flags))  # noqa: B023
            for k, (run, out) in enumerate(zip(runs, outs, strict=True)):
                if run.status == Status.ok:
                    _record(run, out, epoch, idx[k].shape[1], multiplier, n, layer_names, cfg)
                    if run.status != Status.ok:
                        lanes.freeze(k)
            active = [k for k, run in enumerate(runs) if run.status == Status.ok]
            if not active:
                break
            if on_progress is not None:
                on_progress(runs[active[0]].done, total, float(outs[active[0]]["loss"][-1]))
            if should_stop is not None and should_stop():
                for run in (runs[k] for k in active):
                    run.status, run.stop = Status.interrupted, {"step": run.done, "epoch": epoch}
                break
        for k, run in enumerate(runs):
            if run.status == Status.ok:
                run.epochs.append(_epoch_row(run, epoch, per_epoch, evaluators[k](lanes.lane(k))))
        _check_epoch(runs, lanes, checks, epoch)
    lanes.sync()
    return [_result(run, layer_names, cfg, clock, max(r.done for r in runs)) for run in runs]


def _check_epoch(
    runs: list[_Lane], lanes: Lanes, checks: list[EpochCheck | None], epoch: int
) -> None:
    """End each training lane whose check says so as pruned after `epoch` (-1: before it
    trained, the check given None); its records stay."""
    for k, (run, check) in enumerate(zip(runs, checks, strict=True)):
        if run.status != Status.ok or check is None:
            continue
        if check(run.epochs[-1] if epoch >= 0 else None):
            run.status, run.stop = Status.pruned, {"step": run.done, "epoch": epoch, "pruned": True}
            lanes.freeze(k)


class _Clock:
    """Chunk time, split into compilation and steady state. XLA on TensorFlow compiles one
    program per (index shape, step count): at most a full chunk, an epoch's tail and a partial
    batch; their first calls count as compilation."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.seen: set[tuple[tuple[int, ...], int]] = set()
        self.steady_steps, self.steady_seconds, self.compile_seconds = 0, 0.0, 0.0

    def time(self, shape: tuple[int, ...], n: int, chunk: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = chunk()
        dt = time.perf_counter() - t0
        if (shape, n) in self.seen:
            self.steady_steps, self.steady_seconds = self.steady_steps + n, self.steady_seconds + dt
        else:
            self.seen.add((shape, n))
            self.compile_seconds += dt
        return out

    def rate(self, done: int) -> float:
        """Steady-state steps per second; a run too short to have a steady state falls back to
        all chunk time, compilation included."""
        if self.steady_seconds > 0:
            return self.steady_steps / self.steady_seconds
        return done / self.compile_seconds if self.compile_seconds > 0 else float("nan")


def _multipliers(
    schedule: Callable[[float], float] | None,
    epoch: int, position: int, n: int, width: int, per_epoch: int,
) -> np.ndarray:  # fmt: skip
    """The loss scale of each of a chunk's steps (1 without a schedule; padding stays 1)."""
    multiplier = np.ones(width, dtype="float32")
    if schedule is not None:
        for k in range(n):
            multiplier[k] = schedule(epoch + (position + k) / per_epoch)
    return multiplier


def _unit_steps(n_units: int, cfg: TrainerConfig, first: int, width: int) -> np.ndarray | None:
    """Which of a chunk's steps (the first is step `first` of training) record their units'
    contributions: every `record_groups_every`-th step from step 0; None without units."""
    if not n_units:
        return None
    steps = first + np.arange(width)
    return (steps % cfg.record_groups_every == 0).astype("float32")


def _result(
    run: _Lane, layer_names: list[str], cfg: TrainerConfig, clock: _Clock, done: int
) -> TrainResult:
    records = run.records.truncated(run.done)
    if not cfg.record:
        records.grad_norm[:] = np.nan
        records.layer_grad_norms[:] = np.nan
    return TrainResult(
        records=records, layer_names=layer_names, epochs=run.epochs, steps=run.done,
        train_seconds=time.perf_counter() - clock.start, steps_per_second=clock.rate(done),
        compile_seconds=clock.compile_seconds, status=run.status, stop=run.stop,
    )  # fmt: skip


def _padded(idx: np.ndarray, n: int, capacity: int, batch_size: int) -> np.ndarray:
    """A chunk of full batches padded to `capacity` rows (one compiled shape for every chunk)."""
    if idx.shape[1] == batch_size and n < capacity:
        return np.concatenate([idx, np.zeros((capacity - n, batch_size), "int32")])
    return idx


def _record(
    run: _Lane,
    out: dict[str, np.ndarray],
    epoch: int,
    batch_size: int,
    multiplier: np.ndarray,
    n: int,
    layer_names: list[str],
    cfg: TrainerConfig,
) -> None:
    """Copy one chunk's values into a lane's records, up to its first non-finite step (which
    ends the lane as diverged)."""
    bad = first_non_finite(out["loss"], out["layer_sq"])
    kept = n if bad is None else bad
    rows = slice(run.done, run.done + kept)
    layer_sq = out["layer_sq"][:kept]
    records = run.records
    records.epoch[rows] = epoch
    records.batch_size[rows] = batch_size
    records.loss[rows] = out["loss"][:kept]
    records.layer_grad_norms[rows] = np.sqrt(layer_sq)
    records.grad_norm[rows] = np.sqrt(layer_sq.sum(axis=1))
    records.multiplier[rows] = multiplier[:kept]
    records.components[rows] = out["components"][:kept]
    if "unit_sq" in out:  # shares in float64: a unit's share is its projection over |g|^2
        grad_sq = out["grad_sq"][:kept, None].astype("float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            records.unit_share[rows] = out["unit_dot"][:kept] / grad_sq
        records.unit_norm[rows] = np.sqrt(out["unit_sq"][:kept])
        records.unit_samples[rows] = out["unit_count"][:kept]
    run.done += kept
    if bad is not None:
        run.status = Status.diverged
        run.stop = _divergence(run.done, epoch, out, bad, layer_names, cfg.record)


def _epoch_row(
    run: _Lane, epoch: int, per_epoch: int, evaluated: dict[str, float]
) -> dict[str, Any]:
    """An epoch's row: the batch-size-weighted mean training loss and the evaluation."""
    ep = slice(run.done - per_epoch, run.done)
    records = run.records
    train_loss = float(
        np.average(records.loss[ep], weights=records.batch_size[ep].astype("float64"))
    )
    row = {"epoch": epoch, "step": run.done, "train_loss": train_loss}
    # No wall time here: epochs.csv stays byte-identical between identical runs.
    row.update(evaluated)
    return row


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
