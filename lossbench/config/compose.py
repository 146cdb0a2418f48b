"""Composing the config: schemas into Hydra's ConfigStore, group options checked as names."""

from __future__ import annotations

import re
from collections.abc import Iterable

from omegaconf import MISSING, DictConfig, OmegaConf

from lossbench.config.checks import validate
from lossbench.config.plugins import (
    SAMPLER_CONFS,
    CheckedSweeperConf,
    LanesLauncherConf,
    OptunaSweeperConf,
)
from lossbench.config.schema import (
    DATA_SCHEMAS,
    MODEL_SCHEMAS,
    Config,
    TrackerConfig,
    TrainerConfig,
)
from lossbench.errors import ConfigError

# The config groups a user chooses from; their options are file names in conf/<group>/.
CONFIG_GROUPS = ("loss", "data", "model", "trainer", "tracker", "experiment", "hparams_search")
_OPTION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def register_configs() -> None:
    """Store the schemas: each loss variant's schema is the `loss` group's option of its name
    (its parameters and defaults are declared there and nowhere else), unless conf/loss has a
    YAML file for it, which extends `schema/loss/<name>`."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    from lossbench.variants.registry import variants

    # Hydra's plugin scan (once per process) stores its own `basic` sweeper: scan first, so that
    # lossbench's checked sweeper is the `basic` option and the default. The primary config does
    # not override hydra/sweeper, which leaves search presets free to choose `optuna`.
    Plugins.instance()
    cs = ConfigStore.instance()
    # `data` and `model` are left missing: their group's option chooses the source's schema.
    schema = OmegaConf.structured(Config)
    schema.data, schema.model = MISSING, MISSING
    cs.store(name="lossbench_schema", node=schema)
    for name, schema in variants().items():
        cs.store(group="schema/loss", name=name, node=schema)
        if not _has_yaml("loss", name):
            cs.store(group="loss", name=name, node=schema(name=name))
    for source, data in DATA_SCHEMAS.items():
        cs.store(group="schema/data", name=source.value, node=data)
    for source, model in MODEL_SCHEMAS.items():
        cs.store(group="schema/model", name=source.value, node=model)
    cs.store(group="schema/trainer", name="default", node=TrainerConfig)
    cs.store(group="schema/tracker", name="default", node=TrackerConfig)
    cs.store(group="hydra/launcher", name="lossbench", node=LanesLauncherConf, provider="lossbench")
    cs.store(group="hydra/sweeper", name="lossbench", node=CheckedSweeperConf, provider="lossbench")
    cs.store(group="hydra/sweeper", name="basic", node=CheckedSweeperConf, provider="lossbench")
    cs.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="lossbench")
    # hydra/sweeper/sampler=NAME, as in hydra-optuna-sweeper
    for name, node in SAMPLER_CONFS.items():
        cs.store(group="hydra/sweeper/sampler", name=name, node=node, provider="lossbench")


def _sweep_values(value: str) -> list[str]:
    """The options of a group override's value: `a`, `a,b` or `choice(a,b)`."""
    inner = re.fullmatch(r"\s*choice\((.*)\)\s*", value)
    return [v.strip() for v in (inner.group(1) if inner else value).split(",")]


# Keys whose value is itself a setting (`report.baseline=loss.temperature=1.0`): Hydra's grammar
# refuses a second unquoted `=`, so the value is quoted for it.
SETTING_VALUED_KEYS = ("report.baseline",)


def quote_setting_values(override: str) -> str:
    """`report.baseline=loss.temperature=1.0` as Hydra parses it: the value quoted."""
    key, _, value = override.partition("=")
    if key.lstrip("+") in SETTING_VALUED_KEYS and "=" in value and value[:1] not in "'\"":
        return f"{key}='{value}'"
    return override


def check_group_options(overrides: Iterable[str]) -> None:
    """Refuse a config-group override whose option is not a plain name (`loss=../x/y`).

    Hydra would load such a path relative to the group's folder, which reaches YAML files
    outside lossbench's conf.

    Raises:
        ConfigError: naming the group.
    """
    for item in overrides:
        key, sep, value = item.partition("=")
        group = key.lstrip("+~")
        if not sep or group not in CONFIG_GROUPS:
            continue
        for option in _sweep_values(value):
            if not _OPTION.fullmatch(option) or ".." in option:
                raise ConfigError(
                    group, f"the name of an option in conf/{group} (not a path)", option
                )


def compose_raw(
    overrides: list[str] | None = None, with_hydra: bool = False, multirun: bool = False
) -> DictConfig:
    """Compose conf/config.yaml with command-line style `overrides`, unvalidated.

    Args:
        overrides: as on the command line.
        with_hydra: keep Hydra's own `hydra` node (folders, help template, sweeper parameters).
        multirun: compose as a sweep's base config, as Hydra does: sweep overrides
            (`seed=0,1`) are left to the jobs (implies `with_hydra`).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    overrides = list(overrides or [])
    check_group_options(overrides)
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="lossbench.conf", version_base="1.3"):
        if not multirun:
            return hydra_compose(
                config_name="config", overrides=overrides, return_hydra_config=with_hydra
            )
        hydra = GlobalHydra.instance().hydra
        assert hydra is not None
        return hydra.compose_config(
            config_name="config",
            overrides=overrides,
            run_mode=RunMode.MULTIRUN,
            with_log_configuration=False,
        )


def compose(overrides: list[str] | None = None) -> Config:
    """Compose conf/config.yaml with command-line style `overrides` and validate it.

    For Python use (tests, benchmarks, notebooks): the same config the CLI would run.
    """
    return validate(compose_raw(overrides))


def _has_yaml(group: str, option: str) -> bool:
    from importlib import resources

    return resources.files("lossbench.conf").joinpath(group, f"{option}.yaml").is_file()
