"""Before Hydra runs anything: resolve the output folder, check every job, claim the folder.

`plan` composes the config the way Hydra will (a single run, or every job of a sweep), validates
each job, and pins the output folder Hydra would choose as an explicit override, so the CLI
knows which folder is this invocation's without listening to Hydra's callbacks. `claim` then
makes the folder this process's own: a folder that holds another run, or another sweep's jobs,
is refused, and a lock keeps a second process out while this one runs.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml
from omegaconf import OmegaConf, open_dict

from lossbench.config.checks import validate
from lossbench.config.compose import compose_raw
from lossbench.config.memory import (
    footprint,
    lanes_that_fit,
    workers_problem,
    workers_that_fit,
)
from lossbench.config.schema import DataSource
from lossbench.errors import ConfigError, LossbenchError, SweepJobError
from lossbench.pool import TARGET as POOL_TARGET
from lossbench.pool import job_units, override_key, pool_size, seed_free

LOCK_NAME = ".lossbench.lock"
# The jobs of the sweep `plan` last composed and validated (Hydra's sweeper need not again), each
# with its backend (the pool hands jobs to workers by backend before composing them).
_PLANNED: dict[tuple[str, ...], str] = {}
# Files that make a folder another run's: a run's summary or tables, a sweep's tables.
RUN_FILES = ("summary.json", "steps.csv", "epochs.csv", "grad_norms.csv")


@dataclass
class Plan:
    """What one invocation will run: its folder and, for a sweep, every job's overrides."""

    folder: Path
    key: str  # hydra.run.dir or hydra.sweep.dir
    jobs: list[list[str]] = field(default_factory=list)
    baseline: str | None = None  # report.baseline
    resume: bool = False
    pool: tuple[int, int] | None = None  # workers and threads, for hydra/launcher=lossbench
    backend: str = ""  # the first job's

    @property
    def pinned(self) -> list[str]:
        """The overrides that make Hydra use exactly this folder (and, when resuming, leave the
        job folders' .hydra files to lossbench, which writes them only for jobs that run)."""
        escaped = str(self.folder).replace("\\", "\\\\").replace("'", "\\'")
        pins = [f"{self.key}='{escaped}'"]
        return [*pins, "hydra.output_subdir=null"] if self.resume else pins


def sweep_jobs(overrides: list[str], params: dict[str, str]) -> list[list[str]]:
    """Each job's overrides, as Hydra's basic sweeper expands them (sweeper params first)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    parsed = parser.parse_overrides([*(f"{k}={v}" for k, v in params.items()), *overrides])
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def plan(overrides: list[str], multirun: bool) -> Plan:
    """Compose and validate what will run, and resolve its folder.

    Raises:
        ConfigError, LossbenchError: the first bad job, as one line (a sweep's names the job).
    """
    base = compose_raw(overrides, with_hydra=True, multirun=multirun)
    if not multirun:
        folder = Path(str(base.hydra.run.dir))
        with open_dict(base):
            del base["hydra"]
        validate(base)
        return Plan(folder, "hydra.run.dir")
    params = {str(k): str(v) for k, v in (base.hydra.sweeper.get("params") or {}).items()}
    jobs = sweep_jobs(overrides, params)
    _PLANNED.clear()  # only this sweep's jobs count as checked
    composed: dict[tuple[str, ...], Any] = {}
    backends = []
    largest = 0  # the estimated peak bytes of the largest job (synthetic data)
    for job in jobs:
        # Composing takes about 0.1 s; jobs that differ only in their seed share one.
        rest = seed_free(job)
        seeds = [o.partition("=")[2] for o in job if o not in rest]
        try:
            if rest not in composed:  # compose_raw checks the group options too
                composed[rest] = compose_raw(list(rest))
            cfg = composed[rest].copy()
            for seed in seeds:
                OmegaConf.update(cfg, "seed", yaml.safe_load(seed))
            typed = validate(cfg)
        except Exception as error:  # any way a job's config is wrong
            raise SweepJobError(job, error) from error
        backends.append(typed.backend.value)
        _PLANNED[_without_hydra(job)] = typed.backend.value
        if typed.data.source is DataSource.synthetic:
            largest = max(largest, footprint(typed, typed.loss.training_task()))
    folder = Path(str(base.hydra.sweep.dir))
    launcher = base.hydra.launcher
    pool = None
    if launcher.get("_target_") == POOL_TARGET:
        units = job_units(jobs, backends, launcher)
        together = max(len(unit) for unit in units) if units else 1
        if together > lanes_that_fit(largest):
            raise ConfigError(
                "hydra.launcher.vectorize",
                f"an integer <= {lanes_that_fit(largest)} (seeds trained together share one "
                "process's memory budget)",
                launcher.get("vectorize"),
            )
        pool = _pool_size(launcher, len(units), largest * together)
    backend = str(composed[next(iter(composed))].backend) if composed else ""
    return Plan(
        folder, "hydra.sweep.dir", jobs, base.report.baseline, bool(base.resume), pool, backend
    )


def was_planned(job: Sequence[str]) -> bool:
    """Whether `plan` composed and validated this job's overrides in this process (Hydra's
    sweeper hands a job over without the `hydra.*` overrides it has applied to every job)."""
    return planned_backend(job) is not None


def planned_backend(job: Sequence[str]) -> str | None:
    """The backend of a job `plan` validated in this process; None for any other job."""
    return _PLANNED.get(_without_hydra(job))


def _without_hydra(job: Sequence[str]) -> tuple[str, ...]:
    return tuple(o for o in job if not override_key(o).startswith(("hydra.", "hydra/")))


def _pool_size(launcher: Any, jobs: int, run_bytes: int) -> tuple[int, int]:
    """The worker pool's workers and threads for `jobs` units of jobs of up to `run_bytes`.

    Raises:
        ConfigError: a bad `hydra.launcher.n_jobs` or `threads`, or more workers than the memory
            budget holds (a default count is kept within the budget instead).
    """
    n_jobs, threads = pool_size(launcher, jobs, workers_that_fit(run_bytes))
    problem = workers_problem(n_jobs, run_bytes)
    if problem is not None:
        key, expected, _ = problem
        raise ConfigError(key, expected, launcher.get("n_jobs"))
    return n_jobs, threads


def in_use(folder: Path) -> bool:
    """Whether a live lossbench process holds `folder` (its lock file is locked)."""
    try:
        handle = open(folder / LOCK_NAME)  # noqa: SIM115 (closed below, which releases the test)
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
    return False


def _temporaries(folder: Path) -> list[Path]:
    """The hidden temporary files of table writes (`lossbench.tables.atomic_write_text`)."""
    return [p for p in folder.glob(".*.tmp") if p.is_file()]


def remove_leftovers(folder: Path) -> list[Path]:
    """Remove what a killed process left in `folder` when no process holds it: the hidden
    temporary files of interrupted table writes and a stale lock file. Returns them."""
    if in_use(folder):
        return []
    found = _temporaries(folder)
    found += [folder / LOCK_NAME] if (folder / LOCK_NAME).is_file() else []
    for path in found:
        path.unlink(missing_ok=True)
    return found


def claim(plan: Plan) -> IO[str]:
    """Create the folder and hold its lock for this process's lifetime.

    Returns:
        The open lock file (keep it open: closing it releases the folder).

    Raises:
        LossbenchError: the folder cannot be written, holds another run or sweep, or another
            process holds it.
    """
    folder = plan.folder
    taken = [name for name in RUN_FILES if (folder / name).exists()]
    if plan.key == "hydra.sweep.dir" and folder.is_dir() and not plan.resume:
        found = next(folder.rglob("summary.json"), None)
        taken += [str(found.parent.relative_to(folder))] if found else []
    if taken:
        raise ConfigError(
            plan.key,
            "a new or empty folder (a folder holds one run or one sweep; results already there "
            "are kept)",
            f"{folder} (holds {taken[0]})",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / LOCK_NAME, "w")  # noqa: SIM115 (held open until the process ends)
    except OSError as error:
        raise ConfigError(
            plan.key, "a folder lossbench can write", f"{folder} ({error.strerror})"
        ) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise LossbenchError(
            f"invalid value for `{plan.key}`: expected a folder no other process is using, "
            f"received {str(folder)!r} (another lossbench process is writing there)"
        ) from None
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    for stale in _temporaries(folder):  # left by a process killed in this folder before
        stale.unlink(missing_ok=True)
    return lock
