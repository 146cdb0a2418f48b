"""`hydra/sweeper=lossbench` (the default): Hydra's basic sweeper without its second composition
of every job before launching.

Hydra's basic sweeper composes each job once to check it (`validate_batch_is_legal`) and the
launcher composes it again to run it, about 0.1 s each. lossbench's CLI has already composed and
validated every job of the sweep (`lossbench.launch.plan`, once per set of overrides besides the
seed), so a batch made only of planned jobs is not checked again; any other batch (a sweep that
Hydra's own flags started, without the plan) is checked as the basic sweeper does.

The sweeper wraps a `BasicSweeper` made when it is instantiated instead of subclassing it: Hydra's
plugin scan re-executes its own plugin modules, and a subclass of the class that was there before
the scan would no longer pass `BasicSweeper.__init__`'s `super(BasicSweeper, self)`. No
`from __future__ import annotations` either: the scan may execute this file before it is in
`sys.modules`, where dataclasses cannot resolve string annotations.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from hydra.plugins.sweeper import Sweeper

TARGET = "hydra_plugins.lossbench_launcher.sweeper.PlannedSweeper"


@dataclass
class PlannedSweeperConf:
    """`hydra/sweeper=lossbench`: the basic sweeper's options."""

    _target_: str = TARGET
    max_batch_size: Optional[int] = None  # noqa: UP045  (OmegaConf reads `Optional`)
    params: Optional[dict[str, str]] = None  # noqa: UP045


class PlannedSweeper(Sweeper):
    """The basic sweeper, trusting the jobs `lossbench.launch.plan` has validated."""

    def __init__(
        self,
        max_batch_size: int | None = None,
        params: dict[str, str] | None = None,
    ) -> None:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        self.basic = BasicSweeper(max_batch_size=max_batch_size, params=params)
        self.basic.validate_batch_is_legal = self._validate_batch  # type: ignore[method-assign]

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.basic.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.basic.sweep(arguments)

    def _validate_batch(self, batch: Sequence[Sequence[str]]) -> None:
        from lossbench.launch import was_planned

        if not all(was_planned(job) for job in batch):
            type(self.basic).validate_batch_is_legal(self.basic, batch)
