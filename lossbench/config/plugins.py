"""The options of lossbench's Hydra sweeper and launcher (the classes are in `hydra_plugins`).

Only the schemas live here, so that composing a config never imports the plugins.
"""

from dataclasses import dataclass, field
from typing import Any, Optional

SWEEPER = "hydra_plugins.lossbench_launcher.sweeper.CheckedSweeper"
LAUNCHER = "hydra_plugins.lossbench_launcher.LanesLauncher"
OPTUNA = "hydra_plugins.lossbench_launcher.tuning.OptunaSweeper"
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


@dataclass
class OptunaSweeperConf:
    """`hydra/sweeper=optuna`: search parameters with Optuna (`lossbench.tune`); the keys of
    hydra-optuna-sweeper, plus `objective` and `seeds`."""

    _target_: str = OPTUNA
    objective: Optional[str] = None  # noqa: UP045  a validation metric of the summary
    direction: str = "maximize"  # or minimize
    n_trials: int = 20
    seeds: int = 1  # seeds per trial; the objective is their mean
    n_jobs: int = 1  # trials launched together
    study_name: Optional[str] = None  # noqa: UP045
    storage: Optional[str] = None  # noqa: UP045  null: optuna.journal in the sweep folder
    sampler: Any = "tpe"  # tpe | random | grid, seeded; or a node with a _target_
    params: dict[str, str] = field(default_factory=dict)
