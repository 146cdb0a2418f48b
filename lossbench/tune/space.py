"""The search space: hydra-optuna-sweeper's grammar as Optuna distributions, and a user's
`custom_search_space` function for what the grammar cannot say (parameters that depend on each
other)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from lossbench.errors import ConfigError
from lossbench.tune.options import KEY

GRAMMAR = "interval(a, b), int(interval(a, b)), tag(log, interval(a, b)), choice(...) or range(...)"


def search_space(
    arguments: Sequence[str], params: dict[str, str] | None, parse: Callable[[list[str]], Any]
) -> tuple[list[str], dict[str, Any]]:
    """(the fixed overrides, {key: Optuna distribution}) of a command and `hydra.sweeper.params`.

    Raises:
        ConfigError: a sweep that is not in the grammar, naming its key.
    """
    import optuna.distributions as od
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    texts = [f"{k}={v}" for k, v in (params or {}).items()]
    fixed, space = [], {}
    for override in parse([*texts, *arguments]):
        key = override.get_key_element()
        if not override.is_sweep_override():
            fixed.append(override.input_line)
            continue
        sweep, where = override.value(), f"{KEY}.params.{key}"
        if isinstance(sweep, IntervalSweep):
            low, high, log = sweep.start, sweep.end, "log" in sweep.tags
            if not low < high or (log and low <= 0):
                expected = "interval(a, b) with a < b (a > 0 for log)"
                raise ConfigError(where, expected, override.input_line)
            ints = isinstance(low, int) and isinstance(high, int)
            space[key] = (
                od.IntDistribution(low, high, log=log)
                if ints
                else od.FloatDistribution(float(low), float(high), log=log)
            )
        elif isinstance(sweep, ChoiceSweep):
            space[key] = od.CategoricalDistribution(list(sweep.list))
        elif isinstance(sweep, RangeSweep):
            values = list(_range(sweep.start, sweep.stop, sweep.step))
            if not values:
                raise ConfigError(where, "a range with at least one value", override.input_line)
            space[key] = od.CategoricalDistribution(values)
        else:
            raise ConfigError(where, GRAMMAR, override.input_line)
    return fixed, space


def _range(start: float, stop: float, step: float) -> Sequence[float]:
    if all(isinstance(v, int) for v in (start, stop, step)):
        return range(int(start), int(stop), int(step))
    n = max(math.ceil((stop - start) / step), 0) if step else 0
    return [round(start + i * step, 12) for i in range(n)]


def grid(space: dict[str, Any]) -> dict[str, list[Any]]:
    """Every value the grid sampler tries, per parameter: a choice's or range's values, an
    integer interval's integers.

    Raises:
        ConfigError: a float interval (a grid needs values to list), naming its key.
    """
    values = {}
    for key, distribution in space.items():
        if hasattr(distribution, "choices"):
            values[key] = list(distribution.choices)
        elif type(distribution).__name__ == "IntDistribution" and not distribution.log:
            values[key] = list(range(distribution.low, distribution.high + 1, distribution.step))
        else:
            expected = "choice(...), range(...) or int(interval(a, b)) with the grid sampler"
            raise ConfigError(f"{KEY}.params.{key}", expected, "a float interval")
    return values


def grid_size(space: dict[str, Any]) -> int:
    """The number of points of the grid over `space`."""
    return math.prod(len(v) for v in grid(space).values())


def corners(space: dict[str, Any]) -> list[dict[str, Any]]:
    """Parameter values that every trial's config must accept: each parameter's extremes (and
    every choice), the others at their first value."""
    first = {k: _values(d)[0] for k, d in space.items()}
    return [{**first, key: value} for key, d in space.items() for value in _values(d)]


def _values(distribution: Any) -> list[Any]:
    if hasattr(distribution, "choices"):
        return list(distribution.choices)
    return [distribution.low, distribution.high]


def overrides_of(params: dict[str, Any]) -> list[str]:
    """Hydra overrides setting `params` (values as Hydra reads them back)."""
    return [f"{k}={_text(v)}" for k, v in params.items()]


def _text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def custom_space(target: str | None) -> Callable[[Any, Any], None] | None:
    """The function `custom_search_space` names, `fn(config, trial)`, which suggests more
    parameters on the trial (hydra-optuna-sweeper's `package.module.function`, or lossbench's
    `package.module:function` and `path/to/file.py:function`).

    Raises:
        ConfigError: naming `hydra.sweeper.custom_search_space`.
    """
    from lossbench.user_code import load_target

    if not target:
        return None
    text = str(target)
    if ":" not in text and "." in text:  # hydra-optuna-sweeper's dotted path
        module, _, name = text.rpartition(".")
        text = f"{module}:{name}"
    fn = load_target(text, f"{KEY}.custom_search_space", kind="any")
    if not callable(fn):
        raise ConfigError(
            f"{KEY}.custom_search_space",
            "a function fn(config, trial)",
            f"{target} ({type(fn).__name__})",
        )
    return fn
