"""`hydra/launcher=lossbench`: Hydra's basic launcher, plus seeds trained as lanes of one program.

With `hydra.launcher.vectorize=V` > 1, JAX jobs whose overrides differ only in the seed run in
units of up to V (`lossbench.jobs.lane_units`, `run_lanes`); every other job runs as the basic
launcher runs it.
"""

from collections.abc import Sequence
from typing import Any

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.utils import JobReturn, run_job, setup_globals
from omegaconf import DictConfig, open_dict

from lossbench import jobs


class LanesLauncher(BasicLauncher):
    """The basic launcher; `vectorize` > 1 trains a JAX job's seeds together."""

    def __init__(self, vectorize: int = 1) -> None:
        super().__init__()
        self.vectorize = jobs.checked_lanes(vectorize)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        if self.vectorize == 1:
            return super().launch(job_overrides, initial_job_idx)
        setup_globals()
        configs = [self._compose(o, initial_job_idx + i) for i, o in enumerate(job_overrides)]
        returns: list[Any] = [None] * len(configs)
        shared = getattr(self.task_function, "shared", None)  # see lossbench.cli.Task
        for unit in jobs.lane_units(job_overrides, configs, self.vectorize, shared):
            if len(unit) == 1:
                returns[unit[0]] = self._run(self.task_function, configs[unit[0]])
                continue
            rets = jobs.run_lanes([configs[j] for j in unit], self._run, shared)
            for job, ret in zip(unit, rets, strict=True):
                returns[job] = ret
        return returns

    def _compose(self, overrides: Sequence[str], idx: int) -> DictConfig:
        assert self.hydra_context is not None and self.config is not None
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id = config.hydra.job.num = idx
        return config

    def _run(self, task: Any, config: DictConfig) -> JobReturn:
        """One job as Hydra's basic launcher runs it: folder, logging, `task` called."""
        assert self.hydra_context is not None
        return run_job(
            hydra_context=self.hydra_context,
            task_function=task,
            config=config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
