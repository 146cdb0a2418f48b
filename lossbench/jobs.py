"""What one Hydra job of lossbench does.

`run_job` is the task function's body: check the config, hold the run folder, write the job's
record, train, and leave a folder that says what happened; `lane_units` and `run_lanes` train a
JAX job's seeds as lanes of one program. Used by the CLI and by lossbench's Hydra sweeper and
launcher, which stay thin. Before a sweep's jobs, `lossbench.sweep.plan` checks them all; after
them, `lossbench.sweep.report.report_sweep` reports the sweep.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from lossbench.config.checks import validate
from lossbench.config.plugins import MAX_LANES
from lossbench.config.schema import Config
from lossbench.errors import ConfigError, one_line
from lossbench.store.claims import claimed
from lossbench.store.run_folder import RunFolder, Status, Summary
from lossbench.sweep.plan import seed_free
from lossbench.tracking import published

if TYPE_CHECKING:
    from lossbench.run.experiment import RunnerCache
    from lossbench.signals import Interrupted


@dataclass
class Shared:
    """What the jobs of one process share: the runners they built (later jobs of the same
    structure reuse them) and the configs their sweep checked before any job started, by the
    job's overrides, so that each job is validated once."""

    checked: dict[tuple[str, ...], Config] = field(default_factory=dict)
    _runners: RunnerCache | None = None

    @property
    def runners(self) -> RunnerCache:
        """The runners the process's jobs built (made at the first job that trains)."""
        if self._runners is None:
            from lossbench.run.experiment import RunnerCache

            self._runners = RunnerCache()
        return self._runners

    def remember(self, jobs: Sequence[Sequence[str]], configs: Sequence[Config]) -> None:
        """Keep a sweep's checked configs for its jobs."""
        self.checked.update(zip(map(tuple, jobs), configs, strict=True))

    def config_of(self, cfg: DictConfig, overrides: Sequence[str]) -> Config:
        """The checked config of the job with these overrides; validated now when its sweep
        did not check it."""
        checked = self.checked.get(tuple(overrides))
        return checked if checked is not None else validate(cfg)


def run_job(cfg: DictConfig, shared: Shared | None = None) -> float:
    """Run the job Hydra has set up in `hydra.runtime.output_dir`.

    A single run is checked and its folder claimed here (an invalid one leaves no folder); a
    sweep's jobs were checked, and its folder claimed, by lossbench's sweeper. `shared`: what the
    process's jobs share (`Shared`).

    Returns:
        The final loss (NaN when the job failed or no step finished).
    """
    shared = Shared() if shared is None else shared
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        try:
            typed = shared.config_of(cfg, HydraConfig.get().overrides.task)
            started = start_job(cfg, out_dir, typed)
        except Exception as error:  # its record could not be written (a full disk)
            return job_failed(error, cfg, out_dir, multirun=True)
        if isinstance(started, Kept):
            return started.final_loss
        return _train(started, cfg, out_dir, True, shared.runners)
    with contextlib.ExitStack() as held:
        try:
            typed = validate(cfg)
            held.enter_context(claimed(out_dir, "hydra.run.dir"))
        except Exception as error:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # made by Hydra for this run and still empty: nothing to keep
            _refuse(error, cfg)
        try:
            write_job_record(out_dir, cfg)
        except Exception as error:  # a full disk: what was written is removed
            remove_job_record(out_dir)
            _refuse(error, cfg)
        with published(out_dir, typed, study(HydraConfig.get().runtime.choices)):
            return _train(typed, cfg, out_dir, False, shared.runners)


def study(choices: Any) -> str | None:
    """The study or search preset a run or sweep came from (`+experiment=`, `hparams_search=`)."""
    return choices.get("experiment") or choices.get("hparams_search")


def _refuse(error: Exception, cfg: DictConfig) -> NoReturn:
    """End a single run that failed: one line and exit 2; `debug=true` re-raises (the CLI shows
    the traceback, with the same exit status)."""
    if OmegaConf.select(cfg, "debug", default=False) is True:
        raise error
    print(f"lossbench: error: {one_line(error)}", file=sys.stderr)
    sys.exit(Status.error.exit_code())


def _train(
    typed: Config, cfg: DictConfig, out_dir: Path, multirun: bool, runners: RunnerCache
) -> float:
    from lossbench.console import progress_bar
    from lossbench.run.training import run_experiment
    from lossbench.signals import Interrupted

    try:
        check = _pruning_check(typed) if multirun else None
        if check is not None and check(None):  # its trial was pruned: nothing to build
            return job_finished(_pruned(typed, out_dir), out_dir, multirun)
        with progress_bar(f"{typed.loss.name} seed {typed.seed}", typed.trainer.progress) as bar:
            summary = run_experiment(
                typed, out_dir, bar, last=not multirun, epoch_check=check, runners=runners
            )
    except Interrupted as stop:
        report_interrupted(stop)
        raise
    except Exception as error:
        return job_failed(error, cfg, out_dir, multirun)
    return job_finished(summary, out_dir, multirun)


def _pruned(typed: Config, out_dir: Path) -> Summary:
    """The summary of a job whose trial a pruner stopped before the job began."""
    summary = Summary(
        status=Status.pruned,
        loss=typed.loss.name,
        seed=typed.seed,
        stopped={"step": 0, "epoch": -1, "pruned": True},
    )
    RunFolder(out_dir).write(summary)
    return summary


def _pruning_check(typed: Config) -> Any:
    """The pruning check of a job of an Optuna search with a pruner (None for any other)."""
    from lossbench.tune.pruning import job_check

    return job_check(HydraConfig.get(), typed.trainer.epochs)


@dataclass(frozen=True)
class Kept:
    """A resumed sweep's job whose finished result stays in its folder: it does not run."""

    final_loss: float


def start_job(cfg: DictConfig, out_dir: Path, typed: Config) -> Config | Kept:
    """A sweep's job with its checked config `typed`: that config, or, when a resumed sweep
    already holds this job's finished result in `out_dir`, that result (the folder is left as
    it is). Writes the job's record (.hydra/) for a job that will run."""
    if typed.resume:
        from lossbench.store.resume import reuse

        hydra = HydraConfig.get()
        found = reuse(out_dir, Path(hydra.sweep.dir), list(hydra.overrides.task), cfg)
        if found.kept:
            final = RunFolder(out_dir).read().get("final_loss")
            return Kept(float("nan") if final is None else float(final))
        if found.why:
            print(f"lossbench: {out_dir.name}: {found.why}: running it again", file=sys.stderr)
    write_job_record(out_dir, cfg)
    return typed


def report_interrupted(stop: Interrupted) -> None:
    """Say where an interrupted run's tables are, once (the CLI does not repeat it); a run
    stopped before it trained has none, and the CLI says only that it was interrupted."""
    for out_dir in stop.written:
        print(
            f"lossbench: {stop}: tables written through the last completed step in {out_dir}",
            file=sys.stderr,
        )
    stop.reported = bool(stop.written)


def job_failed(error: Exception, cfg: DictConfig, out_dir: Path, multirun: bool) -> float:
    """Make the folder say what went wrong; a sweep goes on (NaN), a single run exits 2 with one
    line, and `debug=true` re-raises; an error that a signal caused is that signal's."""
    from lossbench.signals import reraise_if_interrupted

    reraise_if_interrupted(error)

    def select(key: str) -> Any:
        return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)

    folder = RunFolder(out_dir)
    if isinstance(error, OSError):  # its files could not all be written (a full disk): the
        folder.discard()  # partial tables go, and the room they free holds the summary
    with contextlib.suppress(OSError):
        folder.fail(error, select("loss.name"), select("seed"))
    if multirun and not cfg.debug:  # the sweep names the failed jobs from their folders at the end
        print(f"lossbench: {out_dir.name}: error: {one_line(error)}", file=sys.stderr)
        return float("nan")
    _refuse(error, cfg)


def job_finished(summary: Summary, out_dir: Path, multirun: bool) -> float:
    """Print a trained job's summary (a sweep's job: one line); a single run that diverged
    exits 3. Returns the final loss (NaN when no step finished)."""
    from lossbench.console import job_line, print_or_drop, print_summary

    if multirun:
        print_or_drop(job_line, summary, out_dir)
    else:  # signals are ignored from here on: the exit status follows the folder
        print_or_drop(print_summary, summary, out_dir)
    if summary.status is Status.diverged:
        print(f"lossbench: {summary.message}", file=sys.stderr)
    if not multirun and summary.status is not Status.ok:
        sys.exit(summary.status.exit_code())
    return float("nan") if summary.final_loss is None else float(summary.final_loss)


def write_job_record(job: Path, cfg: DictConfig) -> None:
    """The job's config, Hydra config and overrides in .hydra/, as Hydra would write them.

    lossbench's config turns Hydra's own writing off (`hydra.output_subdir: null`) so that
    nothing is written before the job is checked and its folder held, and so that a resumed
    sweep's finished jobs keep their files.
    """
    from lossbench.store.files import atomic_write_text
    from lossbench.store.resume import write_inputs

    record = job / ".hydra"
    record.mkdir(parents=True, exist_ok=True)
    hydra = HydraConfig.get()
    atomic_write_text(record / "config.yaml", OmegaConf.to_yaml(cfg))
    atomic_write_text(record / "hydra.yaml", OmegaConf.to_yaml({"hydra": hydra}))
    atomic_write_text(record / "overrides.yaml", yaml.safe_dump(list(hydra.overrides.task)))
    write_inputs(job, cfg)


def remove_job_record(job: Path) -> None:
    """Remove what `write_job_record` wrote in `job` (and the folder, when that empties it)."""
    from lossbench.store.resume import INPUTS

    record = job / ".hydra"
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml", INPUTS):
        (record / name).unlink(missing_ok=True)
    for folder in (record, job):
        with contextlib.suppress(OSError):
            folder.rmdir()


# ---- seeds as lanes of one JAX program (`hydra/launcher=lossbench hydra.launcher.vectorize=V`)

LANES_KEY = "hydra.launcher.vectorize"


def checked_lanes(vectorize: Any) -> int:
    """`hydra.launcher.vectorize`, an integer in [1, MAX_LANES].

    Raises:
        ConfigError: naming the key.
    """
    if (
        isinstance(vectorize, bool)
        or not isinstance(vectorize, int)
        or not 1 <= vectorize <= MAX_LANES
    ):
        raise ConfigError(LANES_KEY, f"an integer in [1, {MAX_LANES}]", vectorize)
    return vectorize


def lane_units(
    overrides: Sequence[Sequence[str]],
    configs: Sequence[DictConfig],
    vectorize: int,
    shared: Shared | None = None,
) -> list[list[int]]:
    """The sweep's jobs in units, in order of each unit's first job: JAX jobs that differ only in
    their seed, up to `vectorize` a unit; every other job alone (`shared`: the configs the sweep
    checked).

    Raises:
        ConfigError: no JAX job (the option would be ignored), or a unit whose seeds would not
            fit one process's memory budget.
    """
    from lossbench.config.memory import footprint, lanes_that_fit

    if not any(c.backend == "jax" for c in configs):
        raise ConfigError(LANES_KEY, "1 for a sweep without backend=jax jobs", vectorize)
    units: list[list[int]] = []
    open_units: dict[tuple[str, ...], list[int]] = {}
    for job, config in enumerate(configs):
        key = seed_free(overrides[job])
        unit = open_units.get(key) if config.backend == "jax" else None
        if unit is None or len(unit) >= vectorize:
            unit = open_units[key] = []
            units.append(unit)
        unit.append(job)
    for unit in units:
        first = configs[unit[0]].copy()
        with open_dict(first):
            del first["hydra"]
        typed = shared.config_of(first, overrides[unit[0]]) if shared else validate(first)
        fit = lanes_that_fit(footprint(typed, typed.loss.training_task()))
        if len(unit) > fit:
            raise ConfigError(
                LANES_KEY, f"an integer <= {fit} (seeds share one process's memory)", vectorize
            )
    return units


def run_lanes(
    configs: list[DictConfig], run: Callable[[Any, DictConfig], Any], shared: Shared | None = None
) -> list[Any]:
    """Jobs that differ only in their seed: each set up by `run(task, config)` (Hydra's
    `run_job`: folder, record, a resumed job's finished result kept), then those that train do
    so as lanes of one program (with what the process's jobs share); each job's outcome goes
    into its `JobReturn`."""
    from hydra.core.utils import JobStatus

    from lossbench.run.training import run_experiments
    from lossbench.signals import Interrupted

    shared = Shared() if shared is None else shared
    training: list[tuple[int, DictConfig, Path, Config]] = []  # the jobs that train
    rets: list[Any] = []

    def start(cfg: DictConfig) -> float:
        out_dir = Path(HydraConfig.get().runtime.output_dir)
        try:
            typed = shared.config_of(cfg, HydraConfig.get().overrides.task)
            started = start_job(cfg, out_dir, typed)
        except Exception as error:
            return job_failed(error, cfg, out_dir, multirun=True)
        if isinstance(started, Kept):
            return started.final_loss
        training.append((len(rets), cfg, out_dir, started))
        return float("nan")  # until it has trained

    for config in configs:
        rets.append(run(start, config))
    out_dirs = [out_dir for _, _, out_dir, _ in training]
    try:
        outcomes = run_experiments(
            [t for *_, t in training], out_dirs, vectorize=True, runners=shared.runners
        )
    except Interrupted as stop:
        report_interrupted(stop)
        raise
    for (index, cfg, out_dir, _), outcome in zip(training, outcomes, strict=True):
        ret = rets[index]
        try:
            if isinstance(outcome, Exception):
                ret.return_value = job_failed(outcome, cfg, out_dir, multirun=True)
            else:
                ret.return_value = job_finished(outcome, out_dir, multirun=True)
        except Exception as error:  # debug=true re-raises: the job fails as in Hydra's run_job
            ret.return_value, ret.status = error, JobStatus.FAILED
    return rets
