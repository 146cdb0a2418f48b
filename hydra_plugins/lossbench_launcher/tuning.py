"""`hydra/sweeper=optuna`: search a loss's parameters with Optuna, each trial on several seeds.

The search itself is `lossbench.tune.search.search`; this class hands it Hydra's parser, composer
and launcher. No `from __future__ import annotations` (see `sweeper.py`).
"""

from pathlib import Path
from typing import Any, Optional

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper

from lossbench.tune.options import Options


class OptunaSweeper(Sweeper):
    """Optuna's ask-and-tell over lossbench jobs; the options are `lossbench.tune.options`."""

    def __init__(self, params: Optional[dict] = None, **options: Any) -> None:  # noqa: UP045
        self.options = Options(params=dict(params or {}), **options)
        self.config: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from lossbench.jobs import study
        from lossbench.tracking import published
        from lossbench.tune.search import search

        loader = self.hydra_context.config_loader
        parser = OverridesParser.create(config_loader=loader)
        folder = Path(str(self.config.hydra.sweep.dir))
        if not self.options.objective:  # hparams_search configs name it at the top level
            self.options.objective = self.config.get("optimized_metric")
        with published(folder, self.config, study(self.config.hydra.runtime.choices)):
            return search(
                self.options, arguments, folder, parser.parse_overrides, self._compose,
                self.launcher.launch, resume=bool(self.config.resume),
            )  # fmt: skip

    def _compose(self, overrides: list[str]) -> Any:
        from omegaconf import open_dict

        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config):
            del config["hydra"]
        return config
