"""The ask-and-tell loop of a search, and what it says at the end."""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossbench.errors import ConfigError, SweepIncomplete
from lossbench.store.run_folder import RunFolder, Status
from lossbench.tune.options import KEY, Options
from lossbench.tune.pruning import JOURNAL, report_curve
from lossbench.tune.samplers import GRID, make_sampler, sampler_spec
from lossbench.tune.space import (
    GRAMMAR,
    corners,
    custom_space,
    grid,
    grid_size,
    overrides_of,
    search_space,
)
from lossbench.tune.study import (
    BEST,
    TRIALS,
    complete,
    finished,
    open_study,
    question,
    write_results,
)


def check_objectives(options: Options, cfg: Any) -> None:
    """Refuse an objective that the runs of this data and loss do not report: the rule that
    refuses a `trainer.select` metric, on the data the first trial reads.

    Raises:
        ConfigError: naming `hydra.sweeper.objective` and the metrics there are.
    """
    from lossbench.data.load import make_dataset
    from lossbench.run.metrics import reported_metric, selectable

    data = make_dataset(cfg.loss.training_task(), cfg.data, cfg.seed)
    names = selectable(data)
    for objective in options.objectives:
        reported_metric(objective, names, f"{KEY}.objective", "a validation metric")


def trial_values(
    folders: Sequence[Path], objectives: list[str]
) -> tuple[list[list[float]], str | None, bool]:
    """Each seed's objectives from its job folder, why the trial failed (None: it did not), and
    whether a pruner stopped it."""
    values = []
    for folder in folders:
        summary = RunFolder(folder).read()
        status = summary.get("status")
        if status == Status.pruned:
            return values, None, True
        if status != Status.ok:
            why = summary.get("message") or status
            return (
                values,
                f"{folder.name}: {status}" + (f" ({why})" if why != status else ""),
                False,
            )
        row = []
        for objective in objectives:
            value = (summary.get("metrics") or {}).get(objective)
            if not isinstance(value, int | float) or not math.isfinite(value):
                return values, f"{folder.name}: no finite {objective} ({value})", False
            row.append(float(value))
        values.append(row)
    return values, None, False


@dataclass
class Plan:
    """A search, checked before any trial: what every trial fixes, what it searches, the grid
    (grid sampler only), the trials to run, and the first trial's config."""

    fixed: list[str]
    space: dict[str, Any]
    extend: Callable[[Any, Any], None] | None
    points: dict[str, list[Any]] | None
    n_trials: int
    base_seed: int
    epochs: int
    config: Any


def plan(
    options: Options,
    arguments: Sequence[str],
    parse: Callable[[list[str]], Any],
    compose: Callable[[list[str]], Any],
) -> Plan:
    """Check a search's options, space, configs, objectives and sampler; nothing is written.

    Raises:
        ConfigError: naming the key of the first problem.
    """
    from lossbench.sweep.plan import check_jobs, override_key

    for problem in options.problems():
        raise ConfigError(*problem)
    fixed, space = search_space(arguments, options.params, parse)
    extend = custom_space(options.custom_search_space)
    if not space and extend is None:
        raise ConfigError(f"{KEY}.params", f"at least one parameter to search: {GRAMMAR}", {})
    fixed = [o for o in fixed if override_key(o) != "seed"]
    first = [*fixed, *overrides_of(corners(space)[0] if space else {})]
    checked = check_jobs([[*fixed, *overrides_of(c)] for c in corners(space) or [{}]], compose)
    check_objectives(options, checked[0])
    is_grid = sampler_spec(options.sampler)[0] == GRID
    points = grid(space) if is_grid else None
    make_sampler(options.sampler, points, 0)  # a bad sampler is refused before the folder is made
    n_trials = min(options.n_trials, grid_size(space)) if is_grid else options.n_trials
    return Plan(
        fixed,
        space,
        extend,
        points,
        n_trials,
        checked[0].seed,
        checked[0].trainer.epochs,
        compose(first),
    )


def search(
    options: Options,
    arguments: Sequence[str],
    folder: Path,
    parse: Callable[[list[str]], Any],
    compose: Callable[[list[str]], Any],
    launch: Callable[[list[list[str]], int], Sequence[Any]],
    resume: bool = False,
) -> Any:
    """Run the study in `folder` until `n_trials` trials have finished (or the grid is done),
    then aggregate its jobs and say what it found; return it.

    Args:
        parse: Hydra's override parser over a list of override strings.
        compose: a job's config from its overrides (without Hydra's node).
        launch: the Hydra launcher's `launch(job_overrides, initial_job_idx)`.

    Raises:
        ConfigError: a bad option, parameter, range, sampler or objective, or a folder whose
            study answers another question, before any trial starts.
        SweepIncomplete: more trials of a batch failed than `max_failure_rate` allows, or no
            trial finished (the exit status is 1).
    """
    from lossbench.store.claims import claimed

    checked = plan(options, arguments, parse, compose)
    resume = resume or (folder / JOURNAL).exists()
    with claimed(folder, "hydra.sweep.dir", sweep=True, resume=resume):
        study = open_study(
            folder, options, question(options, checked.space, checked.fixed), checked.epochs
        )
        study.sampler = make_sampler(options.sampler, checked.points, len(study.trials))
        study.set_user_attr("fixed", checked.fixed)
        write_results(folder, study, options)  # the files say what the study holds, even now
        stopped = _run_trials(study, checked, options, folder, launch)
        report(folder, study, options)
    if stopped is None and not complete(study):
        stopped = f"no trial finished ({len(study.trials)} trials); see {folder / TRIALS}"
    if stopped is not None:
        raise SweepIncomplete(stopped)
    return study


def _run_trials(
    study: Any,
    checked: Plan,
    options: Options,
    folder: Path,
    launch: Callable[[list[list[str]], int], Sequence[Any]],
) -> str | None:
    """Ask, launch and tell batches of trials until enough have finished; return why the
    search stopped early (None: it did not)."""
    while (done := finished(study)) < checked.n_trials:
        batch = [
            study.ask(checked.space) for _ in range(min(options.n_jobs, checked.n_trials - done))
        ]
        for trial in batch if checked.extend is not None else []:
            checked.extend(checked.config, trial)
        jobs = [
            [*checked.fixed, *overrides_of(t.params), f"seed={checked.base_seed + s}"]
            for t in batch
            for s in range(options.seeds)
        ]
        returns = launch(jobs, batch[0].number * options.seeds)
        folders = [Path(str(r.hydra_cfg.hydra.runtime.output_dir)) for r in returns]
        seeds = options.seeds
        failed = [
            why
            for i, trial in enumerate(batch)
            if (why := _tell(study, trial, folders[i * seeds : (i + 1) * seeds], options))
            is not None
        ]
        write_results(folder, study, options)
        if len(failed) / len(batch) > options.max_failure_rate:
            return (
                f"the search stopped: {len(failed)} of {len(batch)} trials of a batch failed, "
                f"more than {KEY}.max_failure_rate={options.max_failure_rate:g} allows "
                f"({failed[0]}); see {folder / TRIALS}"
            )
        if _grid_done(study):
            break
    return None


def _grid_done(study: Any) -> bool:
    """Whether the grid sampler has tried every point of its grid."""
    from optuna.samplers import GridSampler

    return isinstance(study.sampler, GridSampler) and study.sampler.is_exhausted(study)


def _tell(study: Any, trial: Any, folders: Sequence[Path], options: Options) -> str | None:
    """Give Optuna the trial's outcome and say it on the console; return why it failed."""
    from optuna.trial import TrialState

    values, failure, pruned = trial_values(folders, options.objectives)
    single = len(options.objectives) == 1
    trial.set_user_attr("values", [v[0] for v in values] if single else values)
    trial.set_user_attr("jobs", [f.name for f in folders])
    params = " ".join(overrides_of(trial.params))
    if options.pruner != "none":
        report_curve(trial, list(folders), options.objectives[0])
    if pruned:
        _told(study, trial, state=TrialState.PRUNED)
        print(f"trial {trial.number}: pruned [{params}]")
        return None
    if failure is not None:
        trial.set_user_attr("failure", failure)
        _told(study, trial, state=TrialState.FAIL)
        print(f"lossbench: trial {trial.number} failed: {failure} [{params}]", file=sys.stderr)
        return failure
    means = [sum(v[k] for v in values) / len(values) for k in range(len(options.objectives))]
    _told(study, trial, values=means)
    shown = ", ".join(f"{o} {m:.4g}" for o, m in zip(options.objectives, means, strict=True))
    print(f"trial {trial.number}: {shown} (mean of {len(values)} seeds) [{params}]")
    return None


def _told(study: Any, trial: Any, **outcome: Any) -> None:
    """`study.tell`, where the grid sampler's `study.stop()` (its grid is used up) is no error:
    the loop ends on its own."""
    try:
        study.tell(trial, **outcome)
    except RuntimeError as error:
        if "Study.stop" not in str(error):
            raise


def report(folder: Path, study: Any, options: Options) -> None:
    """Aggregate the trials' jobs into the sweep's tables (the sweep's reporter, its comparison
    left to trials.csv) and print the best trial (or the Pareto front)."""
    from lossbench.sweep.report import ReportError
    from lossbench.sweep.report import report as report_folder

    with contextlib.suppress(ReportError):  # no job wrote a folder: nothing to aggregate
        report_folder(folder, quiet=True)
    if not complete(study):
        print(f"lossbench: no trial finished; see {folder / TRIALS}")
        return
    if len(options.objectives) == 1:
        best = study.best_trial
        params = " ".join(overrides_of(best.params))
        print(
            f"best: trial {best.number}, {options.objectives[0]} {best.value:.4g} on validation "
            f"(mean of {options.seeds} seeds) with {params}"
        )
    else:
        front = study.best_trials
        print(f"Pareto front: {len(front)} trials ({', '.join(options.objectives)}):")
        for t in front:
            shown = ", ".join(f"{v:.4g}" for v in t.values)
            print(f"  trial {t.number}: {shown} with {' '.join(overrides_of(t.params))}")
    print(f"tables: {folder / TRIALS}, {folder / BEST}, {folder / 'summary.csv'}")
