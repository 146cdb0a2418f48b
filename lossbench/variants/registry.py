"""The loss-variant registry: one declaration per variant, the same door for built-in and user
variants.

A variant is a `LossConfig` subclass (its typed parameters, the Hydra schema; a parameter's
range declared on its field with `lossbench.bounds.bounded`) that also says how its loss is
built (`build`) and, where a rule ties parameters to each other or to the data, checks it
(`check`), registered under its name:

    @register_variant("focal", task=Task.binary, description="Focal loss ...")
    @dataclass
    class FocalConfig(LossConfig):
        gamma: float = bounded(2.0, Bound(ge=0))

        def build(self, ctx):
            from lossbench.losses import FocalLoss  # the framework loads only here
            return FocalLoss(gamma=self.gamma)

Validation and `--help` read the registry without importing a framework. The built-in variants
live in the modules of `lossbench.variants`, each found and imported by `variants()`.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from lossbench.config.schema import LossConfig, Task

if TYPE_CHECKING:
    from lossbench.data.dataset import Dataset

_REGISTRY: dict[str, type[LossConfig]] = {}
_BUILTINS_LOADED = False

S = TypeVar("S", bound=type[LossConfig])


def register_variant(name: str, *, description: str, task: Task | None = None) -> Callable[[S], S]:
    """Class decorator: register a `LossConfig` dataclass as the variant `name`.

    Args:
        name: the option users choose with `loss=<name>` (the schema is that option).
        description: one line for `lossbench --help` and summary.json.
        task: the task the variant trains on; None when its `task()` decides from the config.

    Raises:
        TypeError: the class is not a `LossConfig` dataclass.
        ValueError: another class is registered under `name`.
    """

    def decorate(schema: S) -> S:
        if not (
            isinstance(schema, type)
            and issubclass(schema, LossConfig)
            and dataclasses.is_dataclass(schema)
        ):
            raise TypeError(f"register_variant({name!r}) needs a LossConfig dataclass")
        if _REGISTRY.get(name, schema) is not schema:
            raise ValueError(f"a loss variant named {name!r} is already registered")
        schema.variant, schema.description, schema.default_task = name, description, task
        _REGISTRY[name] = schema
        return schema

    return decorate


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    package = importlib.import_module("lossbench.variants")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def variants() -> dict[str, type[LossConfig]]:
    """Every registered variant, name -> schema, sorted by name."""
    _load_builtins()
    return dict(sorted(_REGISTRY.items()))


def get_variant(name: str) -> type[LossConfig] | None:
    """The schema registered as `name`, or None."""
    return variants().get(name)


def variant_name(loss: Any) -> str | None:
    """The registered name of a typed loss config (its class decides), or None."""
    name = getattr(type(loss), "variant", None)
    return name if name and get_variant(name) is type(loss) else None


@dataclass(frozen=True)
class BuildContext:
    """What a variant's builder may take from the experiment besides its own config."""

    data: Dataset
    epsilon: float  # scale.epsilon
    n_outputs: int
    n_classes: int
    grid: tuple[int, int]
    prefix: str = "loss"  # where the config sits (a scaled loss's base: loss.base_params)

    def key(self, name: str) -> str:
        """The full dotted key of parameter `name` (for error messages)."""
        return f"{self.prefix}.{name}"

    def nested(self, name: str) -> BuildContext:
        """The context of a config nested under parameter `name`."""
        return dataclasses.replace(self, prefix=self.key(name))
