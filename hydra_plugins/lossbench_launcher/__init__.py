"""`hydra/launcher=lossbench`: Hydra's basic launcher, with seeds trained as lanes of one program.

With `hydra.launcher.vectorize=V` > 1, JAX jobs whose overrides differ only in the seed run in
units of up to V: Hydra sets up each job (folder, record, a resumed job's finished result kept),
then the unit trains as lanes of one compiled program (`lossbench.runs.run_experiments`) and
each job's folder gets the tables its own run would write. Every other job runs as the basic
launcher runs it. The sweeper (`sweeper.py`) has checked every job before this launcher starts.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.utils import JobReturn, JobStatus, run_job, setup_globals
from omegaconf import DictConfig, open_dict

from lossbench import jobs
from lossbench.config.plugins import MAX_LANES
from lossbench.errors import ConfigError

KEY = "hydra.launcher.vectorize"


class LanesLauncher(BasicLauncher):
    """The basic launcher; `vectorize` > 1 trains a JAX job's seeds together."""

    def __init__(self, vectorize: int = 1) -> None:
        super().__init__()
        if isinstance(vectorize, bool) or not 1 <= vectorize <= MAX_LANES:
            raise ConfigError(KEY, f"an integer in [1, {MAX_LANES}]", vectorize)
        self.vectorize = vectorize

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        if self.vectorize == 1:
            return super().launch(job_overrides, initial_job_idx)
        setup_globals()
        configs = [self._compose(o, initial_job_idx + i) for i, o in enumerate(job_overrides)]
        units = self._units(job_overrides, configs)
        returns: list[Any] = [None] * len(configs)
        for unit in units:
            if len(unit) == 1:
                returns[unit[0]] = self._run(self.task_function, configs[unit[0]])
            else:
                for job, ret in zip(
                    unit, self._run_together([configs[j] for j in unit]), strict=True
                ):
                    returns[job] = ret
        return returns

    def _compose(self, overrides: Sequence[str], idx: int) -> DictConfig:
        assert self.hydra_context is not None and self.config is not None
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id = config.hydra.job.num = idx
        return config

    def _units(
        self, overrides: Sequence[Sequence[str]], configs: list[DictConfig]
    ) -> list[list[int]]:
        """JAX jobs that differ only in their seed, up to `vectorize` a unit; others alone.

        Raises:
            ConfigError: no JAX job (V > 1 would be ignored), or more lanes than fit in memory.
        """
        from lossbench.config.checks import validate
        from lossbench.config.memory import footprint, lanes_that_fit

        if not any(c.backend == "jax" for c in configs):
            raise ConfigError(KEY, "1 for a sweep without backend=jax jobs", self.vectorize)
        units: list[list[int]] = []
        open_units: dict[tuple[str, ...], list[int]] = {}
        for job, config in enumerate(configs):
            key = jobs.seed_free(overrides[job])
            unit = open_units.get(key) if config.backend == "jax" else None
            if unit is None or len(unit) >= self.vectorize:
                unit = open_units[key] = []
                units.append(unit)
            unit.append(job)
        for unit in units:
            typed = validate(_job_config(configs[unit[0]]))
            fit = lanes_that_fit(footprint(typed, typed.loss.training_task()))
            if len(unit) > fit:
                raise ConfigError(KEY, f"an integer <= {fit} (seeds share one process's memory)",
                                  self.vectorize)  # fmt: skip
        return units

    def _run(self, task: Any, config: DictConfig) -> JobReturn:
        assert self.hydra_context is not None
        return run_job(
            hydra_context=self.hydra_context, task_function=task, config=config,
            job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir",
        )  # fmt: skip

    def _run_together(self, configs: list[DictConfig]) -> list[JobReturn]:
        """Set each job up as Hydra does, then train those that run as lanes of one program."""
        from hydra.core.hydra_config import HydraConfig

        from lossbench.runs import run_experiments
        from lossbench.signals import Interrupted

        training: list[tuple[int, DictConfig, Path, Any]] = []  # the jobs that train
        rets: list[JobReturn] = []

        def start(cfg: DictConfig) -> float:
            out_dir = Path(HydraConfig.get().runtime.output_dir)
            try:
                typed = jobs.start_job(cfg, out_dir, multirun=True)
            except Exception as error:
                return jobs.job_failed(error, cfg, out_dir, multirun=True)
            if isinstance(typed, float):  # a resumed job's finished result
                return typed
            training.append((len(rets), cfg, out_dir, typed))
            return float("nan")  # until it has trained

        for config in configs:
            rets.append(self._run(start, config))
        out_dirs = [out_dir for _, _, out_dir, _ in training]
        try:
            outcomes = run_experiments([t for *_, t in training], out_dirs, vectorize=True)
        except Interrupted as stop:
            jobs.report_interrupted(stop, out_dirs)
            raise
        for (index, cfg, out_dir, _), outcome in zip(training, outcomes, strict=True):
            ret = rets[index]
            try:
                if isinstance(outcome, Exception):
                    ret.return_value = jobs.job_failed(outcome, cfg, out_dir, multirun=True)
                else:
                    ret.return_value = jobs.job_finished(outcome, out_dir, multirun=True)
            except Exception as error:  # debug=true re-raises: the job fails as in run_job
                ret.return_value, ret.status = error, JobStatus.FAILED
        return rets


def _job_config(config: DictConfig) -> DictConfig:
    """A job's config without Hydra's node."""
    job = config.copy()
    with open_dict(job):
        del job["hydra"]
    return job
