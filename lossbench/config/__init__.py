"""lossbench's config: typed schemas (`schema`), range checks (`checks`, `memory`) and
composition with Hydra (`compose`)."""

from lossbench.config.checks import (
    all_in_range,
    cfg_value,
    in_range,
    n_train_samples,
    one_of,
    validate,
)
from lossbench.config.compose import compose, compose_raw, register_configs
from lossbench.config.schema import (
    Backend,
    Config,
    DataConfig,
    LossConfig,
    ModelConfig,
    Optimizer,
    Problem,
    ScaleConfig,
    Task,
    TrainerConfig,
)

__all__ = [
    "Backend",
    "Config",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "Optimizer",
    "Problem",
    "ScaleConfig",
    "Task",
    "TrainerConfig",
    "all_in_range",
    "cfg_value",
    "compose",
    "compose_raw",
    "in_range",
    "n_train_samples",
    "one_of",
    "register_configs",
    "validate",
]
