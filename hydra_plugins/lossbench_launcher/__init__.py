"""`hydra/launcher=lossbench`: the launcher over `lossbench.pool`'s worker processes.

Hydra only instantiates launcher classes defined under `hydra_plugins`, so the class lives here;
the pool it drives is `lossbench.pool`. lossbench's sweeper, the default, is in `sweeper.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig

from lossbench.pool import LazyConfigs, job_units, take


class PoolLauncher(Launcher):
    """Hydra's launcher interface over a `Pool` (see the module docstring)."""

    def __init__(self, n_jobs: int = 0, threads: int = 0, vectorize: int = 1) -> None:
        self.options = {"n_jobs": n_jobs, "threads": threads, "vectorize": vectorize}
        self.config: DictConfig | None = None
        self.hydra_context: Any = None
        self.task_function: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        from hydra.core.utils import configure_log, setup_globals
        from omegaconf import open_dict

        from lossbench.launch import planned_backend

        setup_globals()
        assert self.config is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)

        def compose(job: int) -> DictConfig:
            config = self.hydra_context.config_loader.load_sweep_config(
                self.config, list(job_overrides[job])
            )
            with open_dict(config):
                config.hydra.job.id = initial_job_idx + job
                config.hydra.job.num = initial_job_idx + job
            return config

        configs = LazyConfigs(compose, len(job_overrides))
        # A job lossbench planned has its backend known; any other is composed to learn it.
        backends = [
            planned_backend(overrides) or str(configs[job].backend)
            for job, overrides in enumerate(job_overrides)
        ]
        units = job_units(job_overrides, backends, self.options)
        pool = take(self.options, str(self.config.backend), len(units))
        try:
            task = f"{self.task_function.__module__}:{self.task_function.__name__}"
            return pool.run(self.hydra_context, task, configs, backends, units)
        finally:
            pool.close()
