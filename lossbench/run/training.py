"""Training built experiments and writing their tables: one run, or several seeds at once.

`run_experiment` trains one config into its folder. `run_experiments` takes jobs that differ
only in their seed: on JAX, those that build the same runner (same structure and loss
configuration) train as lanes of one compiled program (`lossbench.trainer.jax_lanes`); any
other job trains on its own. Either way each job's folder gets the tables and summary its own
run would write. Nothing here knows Hydra.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lossbench.config.schema import Config, writes_tensorboard
from lossbench.run.evaluation import Evaluation
from lossbench.run.experiment import Experiment, RunnerCache, build_experiment
from lossbench.signals import reraise_if_interrupted
from lossbench.store.run_folder import RunFolder, Status, Summary

Progress = Callable[[int, int, float], None]


def run_experiment(
    cfg: Config,
    out_dir: Path,
    on_progress: Progress | None = None,
    last: bool = False,
    epoch_check: Any = None,
    runners: RunnerCache | None = None,
) -> Summary:
    """Train the configured model and write the run tables into `out_dir`.

    summary.json says "running" from the start, so a folder whose process was killed never looks
    finished. A run that diverges or is interrupted (SIGINT/SIGTERM, see `lossbench.signals`)
    still writes every table through its last good step, with that status in the summary.

    Args:
        cfg: a validated config.
        out_dir: the run folder (exists).
        on_progress: forwarded to the trainer.
        last: the process's last run (see `lossbench.signals.stop_on_signals`).
        epoch_check: a search's pruning check (see `lossbench.trainer.loop.train`).
        runners: the runners earlier jobs of this process built, to reuse (see
            `lossbench.run.experiment.build_experiment`).

    Returns:
        The summary that was written to summary.json.

    Raises:
        Interrupted: after the tables are written, when a signal stopped training.
    """
    (outcome,) = run_experiments(
        [cfg], [out_dir], on_progress, last=last, epoch_checks=[epoch_check], runners=runners
    )
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def run_experiments(
    cfgs: Sequence[Config],
    out_dirs: Sequence[Path],
    on_progress: Progress | None = None,
    vectorize: bool = False,
    last: bool = False,
    epoch_checks: Sequence[Any] | None = None,
    runners: RunnerCache | None = None,
) -> list[Summary | Exception]:
    """Train each config into its folder; with `vectorize`, JAX jobs that share a runner train
    in lockstep as one program (their configs must differ only in the seed).

    Returns:
        Each job's summary, or the exception that ended it (its folder still says "running";
        the caller writes the error).

    Raises:
        Interrupted: after every job's tables are written, when a signal stopped training.
    """
    from lossbench.signals import Interrupted, stop_on_signals

    outcomes: list[Any] = [None] * len(cfgs)  # a summary or an exception, once a job has run
    # Each job's wall time runs from its build to the end of its group's writes.
    started, ended = [0.0] * len(cfgs), [0.0] * len(cfgs)
    with stop_on_signals(last) as stop_requested:
        runners = RunnerCache() if runners is None else runners
        groups = _groups(cfgs, out_dirs, outcomes, vectorize, started, stop_requested, runners)
        try:
            for group in groups:
                checks = [epoch_checks[job] if epoch_checks else None for job, _, _ in group]
                _train_group(group, out_dirs, outcomes, on_progress, stop_requested, checks)
                for job, _, _ in group:
                    ended[job] = time.perf_counter()
                if stop_requested():
                    break
        except Interrupted:
            pass  # a signal while a job was built: the request holds it
        # From here on the outcome is fixed: a later signal cannot make the exit status and
        # summary.json disagree.
        signum = stop_requested.close()
        for job, (summary, out_dir) in enumerate(zip(outcomes, out_dirs, strict=True)):
            if summary is None:  # built (or being built), then a signal kept it from training
                RunFolder(out_dir).forget()
                continue
            if isinstance(summary, Exception):
                continue
            final: dict[str, Any] = {"wall_seconds": ended[job] - started[job]}
            if signum is not None and summary.status == Status.ok:
                # Arrived after the last step, while the tables were written: they are complete.
                final["status"] = Status.interrupted
                final["stopped"] = {"step": summary.steps, "epoch": summary.epochs - 1}
            outcomes[job] = summary = dataclasses.replace(summary, **final)
            RunFolder(out_dir).write(summary)
    if signum is not None:
        written = [d for d, o in zip(out_dirs, outcomes, strict=True) if isinstance(o, Summary)]
        raise Interrupted(signum, written)
    return outcomes


def _train_group(
    group: Group,
    out_dirs: Sequence[Path],
    outcomes: list[Any],
    on_progress: Progress | None,
    stop_requested: Any,
    checks: list[Any],
) -> None:
    """Train one group's jobs and put each job's summary (or the group's error) in `outcomes`."""
    try:
        if len(group) == 1:
            job, exp, _ = group[0]
            summaries = [
                _train_and_write(exp, out_dirs[job], on_progress, stop_requested, checks[0])
            ]
        else:
            summaries = _train_lanes_and_write(group, out_dirs, on_progress, stop_requested, checks)
        for (job, _, _), summary in zip(group, summaries, strict=True):
            outcomes[job] = summary
    except Exception as error:  # the group's jobs failed together
        for job, _, _ in group:
            outcomes[job] = error


# Jobs that train together: each job's index, its experiment, and its lane's starting state
# (weights and optimizer state, training data): a runner shared by several jobs holds only the
# last one's.
Group = list[tuple[int, Experiment, Any]]


def _groups(
    cfgs: Sequence[Config],
    out_dirs: Sequence[Path],
    outcomes: list[Any],
    vectorize: bool,
    started: list[float],
    stop_requested: Any,
    runners: RunnerCache,
) -> Iterator[Group]:
    """Build the jobs, in order, and yield them in groups that train together: jobs on JAX
    whose experiments share one runner when `vectorize`, else one by one. Each folder says
    "running" from just before its job is built, so a killed process never leaves one that
    looks finished; a job that fails to build gets its error in `outcomes`. `started` gets
    each job's build start time. A signal while a job is built (a user's import, the framework,
    the data) raises `Interrupted` at once."""
    pending: dict[int, Group] = {}  # by runner, the lanes built so far
    for job, (cfg, out_dir) in enumerate(zip(cfgs, out_dirs, strict=True)):
        started[job] = time.perf_counter()
        RunFolder(out_dir).start(cfg.loss.name, cfg.seed)
        try:
            with stop_requested.at_once():
                exp = build_experiment(cfg, runners=runners)
        except Exception as error:
            reraise_if_interrupted(error)  # an error the signal caused is the signal's
            outcomes[job] = error
            continue
        if not (vectorize and cfg.backend.value == "jax"):
            yield [(job, exp, None)]
            continue
        lane = (exp.runner.state, exp.runner.x, exp.runner.y, exp.runner.u)
        pending.setdefault(id(exp.runner), []).append((job, exp, lane))
    if len(pending) > 1:
        _say_split(cfgs[0].loss.name, [len(group) for group in pending.values()])
    yield from pending.values()


def _say_split(loss: str, sizes: list[int]) -> None:
    """Tell the user that seeds asked to train together could not (not silently slower)."""
    import sys

    how = "one at a time" if max(sizes) == 1 else f"in {len(sizes)} programs, not one"
    print(
        f"lossbench: {loss}: its seeds train {how}: its configuration or data shapes depend on "
        "the seed (a loss built from the data's statistics)",
        file=sys.stderr,
    )


def _train_lanes_and_write(
    group: Group,
    out_dirs: Sequence[Path],
    on_progress: Progress | None,
    should_stop: Any,
    checks: list[Any],
) -> list[Summary]:
    """Train a group's seeds as lanes of one program; write each job's tables and summary."""
    from lossbench.trainer.jax_lanes import JaxLanes
    from lossbench.trainer.loop import train_lanes

    exps = [exp for _, exp, _ in group]
    first = exps[0]
    cfg = first.cfg
    lanes = JaxLanes(first.runner, [lane for _, _, lane in group], first.runner.jit_compile)
    evaluations = [Evaluation(exp) for exp in exps]
    results = train_lanes(
        lanes,
        len(first.data.train),
        first.layer_names,
        cfg.trainer,
        [exp.cfg.seed for exp in exps],
        evaluations,
        on_progress,
        _schedule(first.loss),
        should_stop,
        checks,
    )
    summaries = []
    for k, ((job, exp, _), result) in enumerate(zip(group, results, strict=True)):
        lanes.lane(k).sync()  # the Keras variables hold this seed's weights while it is written
        summaries.append(_write(exp, result, out_dirs[job], evaluations[k], len(group)))
    return summaries


def _schedule(loss: Any) -> Callable[[float], float] | None:
    return loss.schedule_multiplier if getattr(loss, "scheduled", False) else None


def _train_and_write(
    exp: Experiment,
    out_dir: Path,
    on_progress: Progress | None,
    should_stop: Any,
    epoch_check: Any = None,
) -> Summary:
    from lossbench.losses.user import UserLoss
    from lossbench.trainer import train

    evaluation = Evaluation(exp)
    try:
        result = train(
            exp.runner,
            len(exp.data.train),
            exp.layer_names,
            exp.cfg.trainer,
            exp.cfg.seed,
            evaluation,
            on_progress,
            schedule=_schedule(exp.loss),
            should_stop=should_stop,
            epoch_check=epoch_check,
        )
    except Exception as error:
        if isinstance(exp.loss, UserLoss):  # the user's code is the likely cause: say whose
            raise exp.loss.failed(error) from error
        raise
    return _write(exp, result, out_dir, evaluation)


def _write(
    exp: Experiment, result: Any, out_dir: Path, evaluation: Evaluation, lanes: int | None = None
) -> Summary:
    """Write a trained job's tables, predictions (and TensorBoard events); return its summary
    (`lanes`: how many seeds trained together with it)."""
    import keras

    from lossbench.run.experiment import versions
    from lossbench.store import tables

    cfg, data, loss = exp.cfg, exp.data, exp.loss
    step_columns = {
        f"loss_{name}": result.records.components[:, k]
        for k, name in enumerate(loss.component_names)
    }
    if hasattr(loss, "step_columns"):
        step_columns.update(loss.step_columns(result.records.multiplier))
    records, predictions = result.records, evaluation.predictions()
    grad_groups, shares = _gradient_shares(records, exp.units)
    tables.write_run_tables(
        out_dir, records, result.layer_names, result.epochs, step_columns, grad_groups, predictions
    )
    if writes_tensorboard(cfg):
        from lossbench.store.tensorboard import write_events

        weights = {v.path: keras.ops.convert_to_numpy(v) for v in exp.model.weights}
        write_events(out_dir, result.records, result.layer_names, result.epochs, weights)
    selected = evaluation.selected
    chosen = result.epochs[selected.epoch] if selected is not None else {}
    diverged = result.status == Status.diverged
    return Summary(
        status=result.status,
        loss=cfg.loss.name,
        task=data.task.value,
        description=type(cfg.loss).description,
        seed=cfg.seed,
        steps=result.steps,
        epochs=len(result.epochs),
        final_loss=float(result.records.loss[-1]) if result.steps else None,
        train_seconds=result.train_seconds,
        compile_seconds=result.compile_seconds,
        steps_per_second=result.steps_per_second,
        program=exp.runner.choice.summary(),
        device=exp.device,
        backend=cfg.backend.value,
        versions=versions(),
        select=cfg.trainer.select,
        selected_epoch=selected.epoch if selected is not None else None,
        metrics={k: v for k, v in chosen.items() if k not in ("epoch", "step")},
        test_metrics=selected.test_metrics if selected is not None else None,
        gradient_shares=shares,
        data=data.columns or None,
        # this process's peak so far (a sweep's jobs share it)
        device_peak_bytes=exp.runner.peak_bytes(),
        stopped=result.stop,
        message=divergence_message(result.stop or {}) if diverged else None,
        vectorized_seeds=lanes,
    )


def _gradient_shares(records: Any, units: Any) -> tuple[Any, dict[str, float] | None]:
    """grad_groups.csv's frame and the units' mean shares for the summary (None, None: the run
    recorded no units)."""
    if units is None:
        return None, None
    from lossbench.run import shares

    return shares.recorded_shares(records, units)


def divergence_message(stop: dict[str, Any]) -> str:
    """One line saying where training diverged and which layer's gradient went first."""
    text = f"diverged at step {stop['step']} (epoch {stop['epoch']}): loss {stop['loss']}"
    layers = stop.get("non_finite_layers")
    if layers is None:
        return text + "; gradient norms not recorded (trainer.record=false)"
    if not layers:
        return text + "; every layer's gradient was finite"
    text += f"; non-finite gradient first in layer {layers[0]}"
    return text + (f" (also {', '.join(layers[1:])})" if layers[1:] else "")
