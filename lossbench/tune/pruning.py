"""Pruning across seeds (`hydra.sweeper.pruner=median|hyperband`): a trial stops early when the
mean of its seeds' objective at an epoch falls behind Optuna's pruner rule.

Each job of a trial checks after every epoch (`EpochCheck`, built by `job_check` from Hydra's
runtime config): it records its epoch's value on the trial, takes the mean at that epoch over the
seeds that reached it, and asks the pruner about a trial with those means as its intermediate
values, against the other trials' per-epoch means (which the search writes when a trial ends,
`report_curve`). A pruned job keeps its tables through its last epoch and ends with the status
`pruned`; the trial's later seeds see the mark and end at once; the trial is PRUNED.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

from lossbench.tune.options import Options

JOURNAL = "optuna.journal"
STUDY_NAME = "lossbench"
# The Optuna sweepers' classes: lossbench's, and hydra-optuna-sweeper's path that leads to it.
OPTUNA_SWEEPERS = (
    "hydra_plugins.lossbench_launcher.tuning.OptunaSweeper",
    "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
)
PRUNED_MARK = "pruned_at"


def make_pruner(name: str, epochs: int) -> Any:
    """Optuna's pruner: the median rule (after 5 complete trials) or Hyperband over epochs."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    return optuna.pruners.NopPruner()


def storage_of(options: Options, folder: Path) -> Any:
    """The study's storage: `hydra.sweeper.storage`, else the journal in the sweep folder."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return options.storage or JournalStorage(JournalFileBackend(str(folder / JOURNAL)))


def seed_key(seed_index: int) -> str:
    """The trial's user attribute holding one seed's per-epoch objective."""
    return f"epochs_seed{seed_index}"


class EpochCheck:
    """Called with each epoch's row (None before the first): True stops the job as pruned."""

    def __init__(
        self, options: Options, folder: Path, trial: int, seed_index: int, epochs: int
    ) -> None:
        self.options, self.folder = options, folder
        self.trial_number, self.seed_index, self.epochs = trial, seed_index, epochs
        self.values: list[float] = []
        self._study: Any = None
        self._trial_id: int | None = None

    def _open(self) -> tuple[Any, int]:
        import optuna

        if self._study is None:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self._study = optuna.load_study(
                study_name=self.options.study_name or STUDY_NAME,
                storage=storage_of(self.options, self.folder),
                pruner=make_pruner(self.options.pruner, self.epochs),
            )
            storage = self._study._storage
            self._trial_id = storage.get_trial_id_from_study_id_trial_number(
                self._study._study_id, self.trial_number
            )
        return self._study, int(self._trial_id)  # type: ignore[arg-type]

    def __call__(self, row: dict[str, Any] | None) -> bool:
        study, trial_id = self._open()
        storage = study._storage
        trial = storage.get_trial(trial_id)
        if row is None:  # an earlier seed of this trial was pruned: this one need not train
            return PRUNED_MARK in trial.user_attrs
        value = row.get(self.options.objectives[0])
        if not isinstance(value, int | float) or not math.isfinite(value):
            return False  # nothing to judge this epoch by
        self.values.append(float(value))
        storage.set_trial_user_attr(trial_id, seed_key(self.seed_index), self.values)
        seeds = [trial.user_attrs.get(seed_key(s), []) for s in range(self.seed_index)]
        seeds.append(self.values)
        epoch = len(self.values) - 1
        means = {}
        for step in range(epoch + 1):
            reached = [v[step] for v in seeds if len(v) > step]
            means[step] = sum(reached) / len(reached)
        frozen = copy.copy(trial)
        frozen.intermediate_values = means
        if not study.pruner.prune(study, frozen):
            return False
        storage.set_trial_user_attr(
            trial_id, PRUNED_MARK, {"seed": self.seed_index, "epoch": epoch}
        )
        return True


def job_check(hydra: Any, epochs: int) -> EpochCheck | None:
    """The check for a job Hydra runs (its runtime config `hydra`) when it belongs to an Optuna
    search with a pruner; None otherwise. The job's number is trial x seeds + seed index (the
    order the search launches them in)."""
    sweeper = hydra.sweeper
    if str(sweeper.get("_target_")) not in OPTUNA_SWEEPERS:
        return None
    names = {f for f in Options.__dataclass_fields__ if f in sweeper}
    options = Options(**{f: sweeper[f] for f in names if f != "sampler"})
    if options.pruner in (None, "none"):
        return None
    trial, seed_index = divmod(int(hydra.job.num), options.seeds)
    return EpochCheck(options, Path(str(hydra.sweep.dir)), trial, seed_index, epochs)


def report_curve(trial: Any, folders: list[Path], objective: str) -> None:
    """Give the trial its per-epoch means over seeds (from each job's epochs.csv), which the
    pruner compares later trials with."""
    import pandas as pd

    curves = []
    for folder in folders:
        try:
            curves.append(pd.read_csv(folder / "epochs.csv")[objective].tolist())
        except (OSError, KeyError, ValueError, pd.errors.EmptyDataError):
            continue
    for step in range(max((len(c) for c in curves), default=0)):
        reached = [c[step] for c in curves if len(c) > step and math.isfinite(c[step])]
        if reached:
            trial.report(sum(reached) / len(reached), step)
