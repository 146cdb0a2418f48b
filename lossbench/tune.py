"""Searching a loss's parameters with Optuna (`hydra/sweeper=optuna`), trial by trial.

Each trial asks Optuna's sampler for parameter values, runs them on `seeds` seeds as ordinary
lossbench jobs (one folder each, through whichever Hydra launcher is chosen), and tells Optuna
the mean over seeds of a validation metric of the jobs' summaries; a trial with a job that did
not finish is FAIL, never a number. The study lives in the sweep folder (`optuna.journal`,
Optuna's journal file, safe for several processes): the same command into the same folder
continues it. After every trial the folder gets `trials.csv` and `best.yaml`.

The search space uses the grammar users of hydra-optuna-sweeper already write: `interval(a, b)`,
`int(interval(a, b))`, `tag(log, interval(a, b))`, `choice(...)` and `range(...)`, from
`hydra.sweeper.params` or from the command line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lossbench.errors import ConfigError
from lossbench.files import atomic_write_text
from lossbench.runfolder import RunFolder, Status

JOURNAL = "optuna.journal"
TRIALS = "trials.csv"
BEST = "best.yaml"
DIRECTIONS = ("maximize", "minimize")
GRAMMAR = "interval(a, b), int(interval(a, b)), tag(log, interval(a, b)), choice(...) or range(...)"
KEY = "hydra.sweeper"


@dataclass
class Options:
    """`hydra.sweeper.*` of `hydra/sweeper=optuna` (see `lossbench.config.plugins`)."""

    objective: str | None = None
    direction: str = "maximize"
    n_trials: int = 20
    seeds: int = 1
    n_jobs: int = 1
    study_name: str | None = None
    storage: str | None = None
    sampler: Any = None
    params: dict[str, str] = field(default_factory=dict)

    def problems(self) -> list[tuple[str, str, Any]]:
        """Out-of-range options, as (key, expected, received)."""
        found = []
        for name in ("n_trials", "seeds", "n_jobs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                found.append((f"{KEY}.{name}", "an integer >= 1", value))
        if self.direction not in DIRECTIONS:
            found.append((f"{KEY}.direction", " or ".join(DIRECTIONS), self.direction))
        if not self.objective:
            found.append((f"{KEY}.objective", "the validation metric to optimise "
                          "(e.g. minority_recall)", self.objective))  # fmt: skip
        return found


def search_space(
    arguments: Sequence[str], params: dict[str, str] | None, parse: Callable[[list[str]], Any]
) -> tuple[list[str], dict[str, Any]]:
    """(the fixed overrides, {key: Optuna distribution}) of a command and `hydra.sweeper.params`.

    Raises:
        ConfigError: a sweep that is not in the grammar, naming its key.
    """
    import optuna.distributions as od
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    texts = [f"{k}={v}" for k, v in (params or {}).items()]
    fixed, space = [], {}
    for override in parse([*texts, *arguments]):
        key = override.get_key_element()
        if not override.is_sweep_override():
            fixed.append(override.input_line)
            continue
        sweep, where = override.value(), f"{KEY}.params.{key}"
        if isinstance(sweep, IntervalSweep):
            low, high, log = sweep.start, sweep.end, "log" in sweep.tags
            if not low < high or (log and low <= 0):
                expected = "interval(a, b) with a < b (a > 0 for log)"
                raise ConfigError(where, expected, override.input_line)
            ints = isinstance(low, int) and isinstance(high, int)
            space[key] = (od.IntDistribution(low, high, log=log) if ints
                          else od.FloatDistribution(float(low), float(high), log=log))  # fmt: skip
        elif isinstance(sweep, ChoiceSweep):
            space[key] = od.CategoricalDistribution(list(sweep.list))
        elif isinstance(sweep, RangeSweep):
            values = list(_range(sweep.start, sweep.stop, sweep.step))
            if not values:
                raise ConfigError(where, "a range with at least one value", override.input_line)
            space[key] = od.CategoricalDistribution(values)
        else:
            raise ConfigError(where, GRAMMAR, override.input_line)
    return fixed, space


def _range(start: float, stop: float, step: float) -> Sequence[float]:
    if all(isinstance(v, int) for v in (start, stop, step)):
        return range(int(start), int(stop), int(step))
    n = max(math.ceil((stop - start) / step), 0) if step else 0
    return [round(start + i * step, 12) for i in range(n)]


def corners(space: dict[str, Any]) -> list[dict[str, Any]]:
    """Parameter values that every trial's config must accept: each parameter's extremes (and
    every choice), the others at their first value."""
    first = {k: _values(d)[0] for k, d in space.items()}
    return [{**first, key: value} for key, d in space.items() for value in _values(d)]


def _values(distribution: Any) -> list[Any]:
    if hasattr(distribution, "choices"):
        return list(distribution.choices)
    return [distribution.low, distribution.high]


def overrides_of(params: dict[str, Any]) -> list[str]:
    """Hydra overrides setting `params` (values as Hydra reads them back)."""
    return [f"{k}={_text(v)}" for k, v in params.items()]


def _text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def check_objective(objective: str, task: Any) -> None:
    """Refuse an objective the task's runs do not report.

    Raises:
        ConfigError: naming `hydra.sweeper.objective` and the task's metrics.
    """
    from lossbench.metrics import metric_names, reported

    names = [*metric_names(task), "val_loss"]
    if not reported(objective, names, exact=False):
        raise ConfigError(f"{KEY}.objective",
                          f"a validation metric of the {task.value} task ({', '.join(names)})",
                          objective)  # fmt: skip


def trial_value(folders: Sequence[Path], objective: str) -> tuple[list[float], str | None]:
    """Each seed's objective from its job folder, and why the trial failed (None: it did not)."""
    values = []
    for folder in folders:
        summary = RunFolder(folder).read()
        status = summary.get("status")
        if status != Status.ok:
            why = summary.get("message") or status
            return values, f"{folder.name}: {status}" + (f" ({why})" if why != status else "")
        value = (summary.get("metrics") or {}).get(objective)
        if not isinstance(value, int | float) or not math.isfinite(value):
            return values, f"{folder.name}: no finite {objective} ({value})"
        values.append(float(value))
    return values, None


SAMPLERS = ("tpe", "random", "grid")


def make_sampler(sampler: Any, space: dict[str, Any], seed: int = 0) -> Any:
    """The Optuna sampler `hydra.sweeper.sampler` names: tpe (the default), random or grid,
    seeded with `seed`; or one Hydra built from a `_target_` node (hydra-optuna-sweeper's form).

    Raises:
        ConfigError: an unknown name, or grid over a parameter that is not a choice or range.
    """
    import optuna

    if isinstance(sampler, optuna.samplers.BaseSampler):
        if seed:
            sampler.reseed_rng()  # a continued study: not the draws its first session made
        return sampler
    name = str(sampler or "tpe").lower()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name != "grid":
        raise ConfigError(f"{KEY}.sampler", f"one of {', '.join(SAMPLERS)}, or a _target_ node",
                          sampler)  # fmt: skip
    for key, distribution in space.items():
        if not hasattr(distribution, "choices"):
            raise ConfigError(f"{KEY}.params.{key}", "choice(...) or range(...) with the grid "
                              "sampler", "an interval")  # fmt: skip
    return optuna.samplers.GridSampler({k: list(d.choices) for k, d in space.items()}, seed=seed)


def open_study(folder: Path, options: Options, space: dict[str, Any]) -> Any:
    """The study in `folder` (created, or loaded to continue it); trials left running by a
    process that stopped are marked FAIL and do not count."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = options.storage or JournalStorage(JournalFileBackend(str(folder / JOURNAL)))
    study = optuna.create_study(
        storage=storage, study_name=options.study_name or "lossbench",
        direction=options.direction, load_if_exists=True,
    )  # fmt: skip
    # Seeded by the trials so far: a fresh study draws the same trials every time, and a
    # continued one does not repeat its first session's draws.
    study.sampler = make_sampler(options.sampler, space, seed=len(study.trials))
    stopped = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if stopped:
        interrupted = [*study.user_attrs.get("interrupted", []), *(t.number for t in stopped)]
        study.set_user_attr("interrupted", interrupted)
        for trial in stopped:
            study.tell(trial.number, state=TrialState.FAIL)
    return study


def finished(study: Any) -> int:
    """Trials that count toward `n_trials`: complete or failed, not interrupted."""
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.FAIL)
    interrupted = set(study.user_attrs.get("interrupted", []))
    return sum(1 for t in study.get_trials(deepcopy=False, states=done)
               if t.number not in interrupted)  # fmt: skip


def write_results(folder: Path, study: Any, options: Options) -> None:
    """trials.csv (one row per trial) and best.yaml (the best trial's parameters, objective
    over seeds and the command that reruns it) in `folder`."""
    import pandas as pd

    from lossbench.stats import mean_ci

    rows = []
    for t in study.get_trials(deepcopy=False):
        values = t.user_attrs.get("values", [])
        row = {"trial": t.number, "state": t.state.name, **t.params}
        row.update({f"{options.objective}_seed{s}": v for s, v in enumerate(values)})
        row["mean"] = t.value if t.value is not None else float("nan")
        row["jobs"] = " ".join(t.user_attrs.get("jobs", []))
        row["message"] = t.user_attrs.get("failure", "") or (
            "interrupted" if t.number in study.user_attrs.get("interrupted", []) else ""
        )
        rows.append(row)
    from lossbench.tables import write_csv

    write_csv(pd.DataFrame(rows), folder / TRIALS)
    complete = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
    if not complete:
        return
    best = study.best_trial
    values = best.user_attrs.get("values", [])
    low, high = mean_ci(values) if len(values) > 1 else (float("nan"), float("nan"))
    fixed = study.user_attrs.get("fixed", [])
    # A search preset (hparams_search=...) makes its command a sweep: run it once instead.
    once = (
        ["hydra.mode=RUN"]
        if any(o.lstrip("+").startswith("hparams_search=") for o in fixed)
        else []
    )
    best_doc = {
        "objective": options.objective, "direction": options.direction,
        # The search chose on validation; a test split, where the data holds one out, is in each
        # rerun job's summary.json (test_metrics) and never moved the choice.
        "split": "validation",
        "trial": best.number, "value": best.value, "ci95": [low, high] if values else None,
        "values_by_seed": values, "params": dict(best.params),
        "overrides": [*fixed, *overrides_of(best.params)],
        "command": "lossbench " + " ".join([*fixed, *once, *overrides_of(best.params)]),
    }  # fmt: skip
    atomic_write_text(folder / BEST, yaml.safe_dump(best_doc, sort_keys=False))


def search(
    options: Options,
    arguments: Sequence[str],
    folder: Path,
    parse: Callable[[list[str]], Any],
    compose: Callable[[list[str]], Any],
    launch: Callable[[list[list[str]], int], Sequence[Any]],
    resume: bool = False,
) -> Any:
    """Run the study in `folder` until `n_trials` trials have finished; return it.

    Args:
        parse: Hydra's override parser over a list of override strings.
        compose: a job's config from its overrides (without Hydra's node).
        launch: the Hydra launcher's `launch(job_overrides, initial_job_idx)`.

    Raises:
        ConfigError: a bad option, parameter, range or objective, before any trial starts.
    """
    from lossbench.folders import claimed
    from lossbench.jobs import check_jobs, override_key

    for problem in options.problems():
        raise ConfigError(*problem)
    fixed, space = search_space(arguments, options.params, parse)
    if not space:
        raise ConfigError(f"{KEY}.params", f"at least one parameter to search: {GRAMMAR}", {})
    fixed = [o for o in fixed if override_key(o) != "seed"]
    checked = check_jobs([[*fixed, *overrides_of(c)] for c in corners(space)], compose)
    check_objective(str(options.objective), checked[0].loss.training_task())
    make_sampler(options.sampler, space)  # a bad sampler is refused before the folder is made
    base_seed = checked[0].seed
    resume = resume or (folder / JOURNAL).exists()
    with claimed(folder, "hydra.sweep.dir", sweep=True, resume=resume):
        study = open_study(folder, options, space)
        study.set_user_attr("fixed", fixed)
        study.set_user_attr("objective", options.objective)
        while (done := finished(study)) < options.n_trials:
            batch = [study.ask(space) for _ in range(min(options.n_jobs, options.n_trials - done))]
            jobs = [[*fixed, *overrides_of(t.params), f"seed={base_seed + s}"]
                    for t in batch for s in range(options.seeds)]  # fmt: skip
            returns = launch(jobs, batch[0].number * options.seeds)
            folders = [Path(str(r.hydra_cfg.hydra.runtime.output_dir)) for r in returns]
            for i, trial in enumerate(batch):
                _tell(study, trial, folders[i * options.seeds : (i + 1) * options.seeds], options)
            write_results(folder, study, options)
    return study


def _tell(study: Any, trial: Any, folders: Sequence[Path], options: Options) -> None:
    """Give Optuna the trial's outcome, and say it on the console."""
    import sys

    from optuna.trial import TrialState

    values, failure = trial_value(folders, str(options.objective))
    trial.set_user_attr("values", values)
    trial.set_user_attr("jobs", [f.name for f in folders])
    params = " ".join(overrides_of(trial.params))
    if failure is not None:
        trial.set_user_attr("failure", failure)
        study.tell(trial, state=TrialState.FAIL)
        print(f"lossbench: trial {trial.number} failed: {failure} [{params}]", file=sys.stderr)
        return
    value = sum(values) / len(values)
    study.tell(trial, value)
    print(f"trial {trial.number}: {options.objective} {value:.4g} (mean of {len(values)} "
          f"seeds) [{params}]")  # fmt: skip


def report(folder: Path, study: Any, options: Options) -> None:
    """Aggregate the trials' jobs into the sweep's tables and print the best trial."""
    from lossbench.sweeps import aggregate

    aggregate(folder)
    if not any(t.value is not None for t in study.get_trials(deepcopy=False)):
        print(f"lossbench: no trial finished; see {folder / TRIALS}")
        return
    best = study.best_trial
    values = best.user_attrs.get("values", [])
    print(
        f"best: trial {best.number}, {options.objective} {best.value:.4g} on validation "
        f"(mean of {len(values)} seeds) with {' '.join(overrides_of(best.params))}"
    )
    print(f"tables: {folder / TRIALS}, {folder / BEST}, {folder / 'summary.csv'}")
