"""The options of lossbench's Hydra sweeper and launcher (the classes are in `hydra_plugins`).

Only the schemas live here, so that composing a config never imports the plugins.
"""

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

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
    hydra-optuna-sweeper, plus `objective`, `seeds` and `pruner`. The sampler node reaches
    lossbench as it is (`_recursive_: false`), which builds it and refuses a bad argument by key."""

    _target_: str = OPTUNA
    _recursive_: bool = False
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    # A validation metric of the summaries, or a list of them (several objectives).
    objective: Any = None
    # maximize or minimize, or a list; null: each objective's own (minimize losses, MSEs, ECE).
    direction: Any = None
    n_trials: int = 20
    seeds: int = 1  # seeds per trial; each objective is their mean
    n_jobs: int = 1  # trials launched together
    max_failure_rate: float = 0.0  # the share of a batch's trials that may fail; more ends it
    study_name: Optional[str] = None  # noqa: UP045
    storage: Optional[str] = None  # noqa: UP045  null: optuna.journal in the sweep folder
    # hydra/sweeper/sampler=tpe|random|grid|cmaes|nsgaii|qmc|gp (the defaults list fills it)
    sampler: Any = MISSING
    pruner: str = "none"  # median | hyperband | none: trials stopped early across their seeds
    custom_search_space: Optional[str] = None  # noqa: UP045  package.module.function(cfg, trial)
    params: dict[str, str] = field(default_factory=dict)


# hydra-optuna-sweeper's sampler options (`hydra/sweeper/sampler=NAME`), with Optuna's defaults
# for every argument left null; lossbench seeds every sampler (null: 0).
@dataclass
class TPESamplerConf:
    _target_: str = "optuna.samplers.TPESampler"
    seed: Optional[int] = None  # noqa: UP045
    consider_prior: Optional[bool] = None  # noqa: UP045
    prior_weight: Optional[float] = None  # noqa: UP045
    consider_magic_clip: Optional[bool] = None  # noqa: UP045
    consider_endpoints: Optional[bool] = None  # noqa: UP045
    n_startup_trials: Optional[int] = None  # noqa: UP045
    n_ei_candidates: Optional[int] = None  # noqa: UP045
    multivariate: Optional[bool] = None  # noqa: UP045
    warn_independent_sampling: Optional[bool] = None  # noqa: UP045


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: Optional[int] = None  # noqa: UP045


@dataclass
class GridSamplerConf:
    """The grid: every value of each `choice`, `range` or `int(interval)` parameter."""

    _target_: str = "optuna.samplers.GridSampler"
    seed: Optional[int] = None  # noqa: UP045


@dataclass
class CmaEsSamplerConf:
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: Optional[int] = None  # noqa: UP045
    sigma0: Optional[float] = None  # noqa: UP045
    n_startup_trials: Optional[int] = None  # noqa: UP045
    warn_independent_sampling: Optional[bool] = None  # noqa: UP045
    consider_pruned_trials: Optional[bool] = None  # noqa: UP045
    restart_strategy: Optional[str] = None  # noqa: UP045
    inc_popsize: Optional[int] = None  # noqa: UP045
    use_separable_cma: Optional[bool] = None  # noqa: UP045


@dataclass
class NSGAIISamplerConf:
    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: Optional[int] = None  # noqa: UP045
    population_size: Optional[int] = None  # noqa: UP045
    mutation_prob: Optional[float] = None  # noqa: UP045
    crossover_prob: Optional[float] = None  # noqa: UP045
    swapping_prob: Optional[float] = None  # noqa: UP045


@dataclass
class QMCSamplerConf:
    _target_: str = "optuna.samplers.QMCSampler"
    seed: Optional[int] = None  # noqa: UP045
    qmc_type: Optional[str] = None  # noqa: UP045
    scramble: Optional[bool] = None  # noqa: UP045
    warn_asynchronous_seeding: Optional[bool] = None  # noqa: UP045
    warn_independent_sampling: Optional[bool] = None  # noqa: UP045


@dataclass
class GPSamplerConf:
    _target_: str = "optuna.samplers.GPSampler"
    seed: Optional[int] = None  # noqa: UP045
    n_startup_trials: Optional[int] = None  # noqa: UP045
    deterministic_objective: Optional[bool] = None  # noqa: UP045
    warn_independent_sampling: Optional[bool] = None  # noqa: UP045


SAMPLER_CONFS = {
    "tpe": TPESamplerConf,
    "random": RandomSamplerConf,
    "grid": GridSamplerConf,
    "cmaes": CmaEsSamplerConf,
    "nsgaii": NSGAIISamplerConf,
    "qmc": QMCSamplerConf,
    "gp": GPSamplerConf,
}
