"""The Optuna sampler `hydra.sweeper.sampler` asks for: hydra-optuna-sweeper's config group
(`hydra/sweeper/sampler=tpe|random|grid|cmaes|nsgaii|qmc|gp`), a node with a `_target_` and
the sampler's arguments (Lightning-Hydra-Template's form), or one of the names. lossbench
builds it itself (the sweeper's node is not instantiated recursively), so that a wrong argument
is refused by its key, and seeds it: a study draws the same trials every time it starts fresh,
and a continued one does not repeat its first session's draws."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

from lossbench.errors import ConfigError
from lossbench.tune.options import KEY

# hydra-optuna-sweeper's option names for `hydra/sweeper/sampler`.
SAMPLERS = {
    "tpe": "optuna.samplers.TPESampler",
    "random": "optuna.samplers.RandomSampler",
    "grid": "optuna.samplers.GridSampler",
    "cmaes": "optuna.samplers.CmaEsSampler",
    "nsgaii": "optuna.samplers.NSGAIISampler",
    "qmc": "optuna.samplers.QMCSampler",
    "gp": "optuna.samplers.GPSampler",
}
GRID = "optuna.samplers.GridSampler"


def sampler_spec(sampler: Any) -> tuple[str, dict[str, Any]]:
    """(the sampler class's import path, its arguments) from a name or a `_target_` node."""
    if sampler is None:
        return SAMPLERS["tpe"], {}
    if isinstance(sampler, str):
        if sampler.lower() not in SAMPLERS:
            raise ConfigError(
                KEY + ".sampler",
                f"one of {', '.join(SAMPLERS)}, or a node with "
                "a _target_ (hydra/sweeper/sampler=NAME)",
                sampler,
            )
        return SAMPLERS[sampler.lower()], {}
    try:
        from omegaconf import OmegaConf

        node = (
            OmegaConf.to_container(sampler, resolve=True)
            if OmegaConf.is_config(sampler)
            else sampler
        )
        node = dict(node)
    except (TypeError, ValueError):
        raise ConfigError(
            KEY + ".sampler", "a sampler's name or a node with a _target_", sampler
        ) from None
    target = node.pop("_target_", None)
    node.pop("_partial_", None)
    if not isinstance(target, str):
        raise ConfigError(
            KEY + ".sampler._target_",
            "an Optuna sampler class such as optuna.samplers.TPESampler",
            target,
        )
    return target, node


def describe(sampler: Any) -> dict[str, Any]:
    """What the study records of its sampler: its class and the arguments given (not null)."""
    target, args = sampler_spec(sampler)
    return {"_target_": target, **{k: v for k, v in args.items() if v is not None}}


def make_sampler(sampler: Any, grid: dict[str, list[Any]] | None, done: int) -> Any:
    """The sampler, its seed (the configured one, 0 if none) moved on by the `done` trials the
    study already has; `grid`: every parameter's values, for the grid sampler.

    Raises:
        ConfigError: not an Optuna sampler, an argument it does not take, a value it refuses.
    """
    import optuna
    from hydra.utils import get_class

    target, args = sampler_spec(sampler)
    seed = args.pop("seed", None)
    args = {k: v for k, v in args.items() if v is not None}  # null: Optuna's default
    try:
        cls = get_class(target)
    except Exception:
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, optuna.samplers.BaseSampler)):
        raise ConfigError(
            KEY + ".sampler._target_",
            "an Optuna sampler class such as optuna.samplers.TPESampler",
            target,
        )
    accepted = [p for p in inspect.signature(cls).parameters if p not in ("self", "kwargs")]
    for name in args:
        if name not in accepted:
            raise ConfigError(
                f"{KEY}.sampler.{name}",
                f"an argument of {cls.__name__} ({', '.join(accepted)})",
                args[name],
            )
    if target == GRID or cls is optuna.samplers.GridSampler:
        args["search_space"] = grid or {}
    if "seed" in accepted:
        args["seed"] = int(seed or 0) + done
    try:
        with warnings.catch_warnings():  # "experimental" samplers (QMC, GP): the user chose one
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return cls(**args)
    except (TypeError, ValueError, ImportError) as error:
        detail = " ".join(str(error).split())
        raise ConfigError(
            KEY + ".sampler",
            f"arguments {cls.__name__} accepts",
            f"{describe(sampler)} ({type(error).__name__}: {detail})",
        ) from None
