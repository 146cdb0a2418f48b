"""A search's study: one question per folder, and the files that say what it found.

A study records its question when it is made: the objectives and their directions, the search
space, the sampler, the pruner, the seeds per trial and the fixed settings. Reopening it with any
of them changed is refused before anything is written, naming the key and the folder. trials.csv
and best.yaml are always written from the study itself, so the next run of the same command
repairs them after a crash or an interruption.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lossbench.errors import ConfigError
from lossbench.store.files import atomic_write_text
from lossbench.tune.options import KEY, Options
from lossbench.tune.pruning import STUDY_NAME, make_pruner, storage_of
from lossbench.tune.samplers import describe
from lossbench.tune.space import overrides_of

TRIALS = "trials.csv"
BEST = "best.yaml"
QUESTION = "question"
# Settings that change how a search runs or reports, not what it measures.
NOT_THE_QUESTION = ("resume", "debug", "trainer.progress", "hydra.", "tracker")


def question(options: Options, space: dict[str, Any], fixed: list[str]) -> dict[str, Any]:
    """What a study answers, as it records it (JSON-like), by the key that sets each part."""
    from optuna.distributions import distribution_to_json

    from lossbench.sweep.plan import override_key

    kept = sorted(o for o in fixed if not override_key(o).startswith(NOT_THE_QUESTION))
    return {
        "objective": options.objectives,
        "direction": options.directions,
        "params": {k: distribution_to_json(d) for k, d in sorted(space.items())},
        "custom_search_space": options.custom_search_space,
        "sampler": describe(options.sampler),
        "pruner": options.pruner,
        "seeds": options.seeds,
        "fixed": kept,
    }


def open_study(folder: Path, options: Options, asked: dict[str, Any], epochs: int) -> Any:
    """The study in `folder`: made for the question `asked`, or loaded to continue it when it
    was made for the same one; trials left running by a process that stopped are marked FAIL
    and do not count.

    Raises:
        ConfigError: the folder's study answers another question (nothing is written).
    """
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = options.study_name or STUDY_NAME
    storage = storage_of(options, folder)
    pruner = make_pruner(options.pruner, epochs)
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    if name in existing:
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
        _same_question(study, asked, folder)
    else:
        study = optuna.create_study(
            storage=storage, study_name=name, pruner=pruner, directions=options.directions
        )
        study.set_user_attr(QUESTION, asked)
    stopped = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if stopped:
        interrupted = [*study.user_attrs.get("interrupted", []), *(t.number for t in stopped)]
        study.set_user_attr("interrupted", interrupted)
        for trial in stopped:
            study.tell(trial.number, state=TrialState.FAIL)
    return study


def _same_question(study: Any, asked: dict[str, Any], folder: Path) -> None:
    """Refuse to continue a study with another question (a study of an older lossbench
    recorded only its objective and fixed settings: those are compared)."""
    recorded = study.user_attrs.get(QUESTION)
    if recorded is None:
        recorded = {
            "objective": [study.user_attrs.get("objective")],
            "fixed": sorted(study.user_attrs.get("fixed", [])),
        }
        recorded["direction"] = [d.name.lower() for d in study.directions]
    for part, value in recorded.items():
        now = asked.get(part)
        if now == value:
            continue
        key = {"fixed": "the fixed settings", "params": f"{KEY}.params"}.get(part, f"{KEY}.{part}")
        if isinstance(value, dict) and isinstance(now, dict):  # name the entry that changed
            entry = next(k for k in [*value, *now] if value.get(k) != now.get(k))
            key, value, now = f"{key}.{entry}", value.get(entry), now.get(entry)
        raise ConfigError(
            key,
            f"{_shown(value)}: the study in {folder} answers that question (continue it with "
            "the same settings, or start another in a new hydra.sweep.dir)",
            _shown(now),
        )


def _shown(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def finished(study: Any) -> int:
    """Trials that count toward `n_trials`: complete, pruned or failed, not interrupted."""
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    interrupted = set(study.user_attrs.get("interrupted", []))
    return sum(
        1 for t in study.get_trials(deepcopy=False, states=done) if t.number not in interrupted
    )


def complete(study: Any) -> list[Any]:
    """The trials with values."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def write_results(folder: Path, study: Any, options: Options) -> None:
    """trials.csv (one row per trial) and best.yaml in `folder`, from the study: the best trial
    (one objective) or the Pareto front (several), with the command that reruns each."""
    import pandas as pd

    from lossbench.store.tables import write_csv

    objectives = options.objectives
    interrupted = set(study.user_attrs.get("interrupted", []))
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {"trial": t.number, "state": t.state.name, **t.params}
        for k, objective in enumerate(objectives):
            seeds = t.user_attrs.get("values", [])
            row.update(
                {
                    f"{objective}_seed{s}": v[k] if isinstance(v, list) else v
                    for s, v in enumerate(seeds)
                }
            )
            name = "mean" if len(objectives) == 1 else f"{objective}_mean"
            counted = t.state.name == "COMPLETE"  # a pruned trial's value is its last epoch's
            row[name] = t.values[k] if counted and t.values is not None else float("nan")
        row["jobs"] = " ".join(t.user_attrs.get("jobs", []))
        row["message"] = t.user_attrs.get("failure", "") or (
            "interrupted" if t.number in interrupted else ""
        )
        rows.append(row)
    write_csv(pd.DataFrame(rows), folder / TRIALS)
    if not complete(study):
        (folder / BEST).unlink(missing_ok=True)  # nothing finished: no best to pass for one
        return
    fixed = study.user_attrs.get("fixed", [])
    doc: dict[str, Any] = {
        "objective": _shown(objectives),
        "direction": _shown(options.directions),
        "split": "validation",
    }
    if len(objectives) == 1:
        doc.update(_entry(study.best_trial, fixed, objectives))
    else:
        doc["pareto_front"] = [_entry(t, fixed, objectives) for t in study.best_trials]
    atomic_write_text(folder / BEST, yaml.safe_dump(doc, sort_keys=False))


def _entry(trial: Any, fixed: list[str], objectives: list[str]) -> dict[str, Any]:
    """A trial as best.yaml gives it: values, their 95% t intervals over seeds, parameters and
    the command that reruns it (once, when the search came from an hparams_search preset)."""
    from lossbench.sweep.stats import mean_ci

    seeds = trial.user_attrs.get("values", [])
    once = (
        ["hydra.mode=RUN"]
        if any(o.lstrip("+").startswith("hparams_search=") for o in fixed)
        else []
    )
    entry: dict[str, Any] = {"trial": trial.number}
    if len(objectives) == 1:
        per_seed = [v[0] if isinstance(v, list) else v for v in seeds]
        low, high = mean_ci(per_seed) if len(per_seed) > 1 else (float("nan"), float("nan"))
        entry.update({"value": trial.values[0], "ci95": [low, high], "values_by_seed": per_seed})
    else:
        entry["values"] = dict(zip(objectives, trial.values, strict=True))
        entry["values_by_seed"] = seeds
    entry.update(
        {
            "params": dict(trial.params),
            "overrides": [*fixed, *overrides_of(trial.params)],
            "command": "lossbench " + " ".join([*fixed, *once, *overrides_of(trial.params)]),
        }
    )
    return entry
