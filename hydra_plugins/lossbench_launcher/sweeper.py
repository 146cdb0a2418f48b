"""`hydra/sweeper=lossbench` (the default): Hydra's basic sweeper, made safe for lossbench.

Before any job starts it composes and validates every job of the sweep (the basic sweeper only
composes them, batch by batch) and holds the sweep folder; after the last job it aggregates the
folder into the sweep's tables and prints the comparison. A sweep with jobs that did not finish
ends with `SweepIncomplete` (exit status 1).

The sweeper wraps a `BasicSweeper` instead of subclassing it: Hydra's plugin scan re-executes its
own plugin modules, and a subclass of the class from before the scan would fail
`BasicSweeper.__init__`'s `super(BasicSweeper, self)`. No `from __future__ import annotations`:
the scan may execute this file before it is in `sys.modules`.
"""

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.plugins.sweeper import Sweeper

from lossbench import jobs
from lossbench.store.claims import claimed
from lossbench.store.resume import write_plan
from lossbench.sweep import plan
from lossbench.tracking import published


class CheckedSweeper(Sweeper):
    """The basic sweeper; every job checked before the first starts, the sweep reported after."""

    def __init__(self, max_batch_size: int | None = None, params: dict | None = None) -> None:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        self.basic = BasicSweeper(max_batch_size=max_batch_size, params=params)
        # Every job is checked up front (`sweep`), so the batches need no second composition.
        self.basic.validate_batch_is_legal = lambda batch: None  # type: ignore[method-assign]
        self.config: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.config, self.task = config, task_function
        self.basic.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from lossbench.sweep.report import report_sweep  # pandas and plots: once a sweep runs

        cfg = self.config
        planned = self._jobs(arguments)
        checked = plan.check_jobs(planned, self._compose)
        plan.check_baseline(planned, checked, cfg.report.baseline)
        if hasattr(self.task, "shared"):  # each job validated once (lossbench.cli.Task)
            self.task.shared.remember(planned, checked)
        folder = Path(str(cfg.hydra.sweep.dir))
        with (
            claimed(folder, "hydra.sweep.dir", sweep=True, resume=bool(cfg.resume)),
            published(folder, cfg, jobs.study(cfg.hydra.runtime.choices)),
        ):
            write_plan(folder, planned)
            try:
                returns = self.basic.sweep(arguments)
            except BaseException:
                # Report what the sweep left; its own error is the one that counts.
                with contextlib.suppress(Exception):
                    report_sweep(folder, cfg.report.baseline)
                raise
            report_sweep(folder, cfg.report.baseline)
        return returns

    def _jobs(self, arguments: list[str]) -> list[Sequence[str]]:
        """Every job's overrides, as the basic sweeper expands them (its params first)."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        params = [f"{k}={v}" for k, v in (self.basic.params or {}).items()]
        parser = OverridesParser.create(config_loader=self.basic.hydra_context.config_loader)
        parsed = parser.parse_overrides([*params, *arguments])
        return [job for batch in type(self.basic).split_arguments(parsed, None) for job in batch]

    def _compose(self, overrides: list[str]) -> Any:
        from omegaconf import open_dict

        loader = self.basic.hydra_context.config_loader
        config = loader.load_sweep_config(self.config, overrides)
        with open_dict(config):
            del config["hydra"]
        return config
