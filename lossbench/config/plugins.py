"""The options of lossbench's Hydra sweeper and launcher (the classes are in `hydra_plugins`).

Only the schemas live here, so that composing a config never imports the plugins.
"""

from dataclasses import dataclass
from typing import Optional

SWEEPER = "hydra_plugins.lossbench_launcher.sweeper.CheckedSweeper"
LAUNCHER = "hydra_plugins.lossbench_launcher.LanesLauncher"
MAX_LANES = 1024


@dataclass
class CheckedSweeperConf:
    """`hydra/sweeper=lossbench` (the default): Hydra's basic sweeper and its options."""

    _target_: str = SWEEPER
    max_batch_size: Optional[int] = None  # noqa: UP045  (OmegaConf reads `Optional`)
    params: Optional[dict[str, str]] = None  # noqa: UP045


@dataclass
class LanesLauncherConf:
    """`hydra/launcher=lossbench`: Hydra's basic launcher, plus seeds trained together."""

    _target_: str = LAUNCHER
    # JAX jobs that differ only in their seed train together, up to this many in one compiled
    # program (`lossbench.trainer.jax_lanes`); 1: every job on its own.
    vectorize: int = 1
