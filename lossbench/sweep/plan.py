"""A sweep's plan, checked before any job runs: every job composed and validated (jobs that differ
only in their seed composed once), the selection metric each task reports, and a
`report.baseline` that names a loss or setting the sweep runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from lossbench.config.checks import validate
from lossbench.config.schema import Config
from lossbench.errors import SweepJobError


def override_key(override: str) -> str:
    """The key (or config group) an override sets: `+seed=3` and `seed=3` both set `seed`."""
    return override.lstrip("+~").partition("=")[0]


def seed_free(overrides: Sequence[str]) -> tuple[str, ...]:
    """A job's overrides without its seed: jobs with the same ones differ only in the seed."""
    return tuple(o for o in overrides if override_key(o) != "seed")


def check_jobs(
    jobs: Sequence[Sequence[str]], compose: Callable[[list[str]], DictConfig]
) -> list[Config]:
    """Compose and validate every job of a sweep; jobs that differ only in their seed are
    composed once (about 0.1 s each).

    Raises:
        SweepJobError: the first job that cannot run, naming it.
    """
    composed: dict[tuple[str, ...], DictConfig] = {}
    checked = []
    for job in jobs:
        rest = seed_free(job)
        try:
            if rest not in composed:
                composed[rest] = compose(list(rest))
            cfg = composed[rest].copy()
            for seed in (o.partition("=")[2] for o in job if o not in rest):
                OmegaConf.update(cfg, "seed", yaml.safe_load(seed))
            typed = validate(cfg)
            _check_selection(typed)
            checked.append(typed)
        except Exception as error:  # any way a job's config is wrong
            raise SweepJobError(list(job), error) from error
    return checked


def _check_selection(cfg: Config) -> None:
    """Refuse a `trainer.select` metric the task does not report (the data's groups are not
    known yet: any group's id passes; the run checks it exactly)."""
    from lossbench.run.metrics import metric_names, selected_metric

    task = cfg.loss.training_task()
    selected_metric(cfg.trainer.select, lambda: [*metric_names(task), "val_loss"], exact=False)


def check_baseline(
    jobs: Sequence[Sequence[str]], configs: Sequence[Config], baseline: str | None
) -> None:
    """Refuse, before any job runs, a `report.baseline` that names no loss or setting the
    sweep runs (the verdicts read it the same way: `sweeps.resolve_baseline`).

    Raises:
        ConfigError: naming `report.baseline` and what the sweep offers.
    """
    from lossbench.store.resume import override_pair
    from lossbench.sweep.aggregate import settings_of
    from lossbench.sweep.verdicts import resolve_baseline

    if not baseline:
        return
    rows = []
    for job, config in zip(jobs, configs, strict=True):
        row: dict[str, Any] = {"loss": config.loss.name}
        row.update(pair for pair in map(override_pair, job) if pair is not None)
        rows.append(row)
    resolve_baseline(settings_of(rows), str(baseline))
