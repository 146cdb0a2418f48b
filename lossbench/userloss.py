"""Users' own losses: `path/to/file.py:Name` or `package.module:Name`, loaded, checked to be a
loss, built with their parameters and adapted to lossbench's trainer.

A user's loss is a `keras.losses.Loss` subclass (its constructor's keyword arguments are the
parameters) or a function `fn(y_true, y_pred, **params)` returning per-sample values. Importing
the target runs the user's file, exactly as running it would; `target_problems` checks only the
spelling and that the file or module exists, without importing anything.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lossbench.errors import ConfigError

# What a loss may ask to receive as extra columns of y_true (last, in this order).
EXTRAS = ("group",)
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Problem = tuple[str, str, Any]
EXPECTED = "path/to/file.py:Name or package.module:Name"


def split_target(target: str) -> tuple[str, str]:
    """(file path or module, attribute name) of a target; raises ValueError when malformed."""
    location, sep, name = target.rpartition(":")
    if not sep or not location or not _NAME.fullmatch(name):
        raise ValueError(target)
    if not location.endswith(".py") and not _MODULE.fullmatch(location):
        raise ValueError(target)
    return location, name


def target_problems(key: str, target: str, base: Path | None = None) -> Iterator[Problem]:
    """Spelling and existence of a target, without importing it."""
    try:
        location, _ = split_target(target)
    except ValueError:
        yield key, EXPECTED, target
        return
    if location.endswith(".py"):
        path = (base or Path.cwd()) / Path(location).expanduser()
        if not path.is_file():
            yield key, "an existing Python file", f"{target} ({path} does not exist)"
    else:
        try:
            found = importlib.util.find_spec(location)
        except (ImportError, ValueError):
            found = None
        if found is None:
            yield key, "an importable module", f"{target} (no module {location!r})"


def load_target(target: str, key: str, base: Path | None = None) -> Any:
    """Import the target's file or module and return the named object.

    Raises:
        ConfigError: naming `key`: malformed, missing, failing to import, or no such name.
    """
    for problem in target_problems(key, target, base):
        raise ConfigError(*problem)
    location, name = split_target(target)
    try:
        if location.endswith(".py"):
            path = ((base or Path.cwd()) / Path(location).expanduser()).resolve()
            digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
            module_name = f"lossbench_user_{path.stem}_{digest}"
            module = sys.modules.get(module_name)
            if module is None:
                spec = importlib.util.spec_from_file_location(module_name, path)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[module_name]
                    raise
        else:
            module = importlib.import_module(location)
    except Exception as error:
        detail = " ".join(str(error).split()) or "no message"
        raise ConfigError(
            key, "a file that imports", f"{target} ({type(error).__name__}: {detail})"
        ) from error
    if not hasattr(module, name):
        public = sorted(n for n in vars(module) if not n.startswith("_"))
        raise ConfigError(
            key, f"a name defined in {location} ({', '.join(public) or 'none'})", target
        )
    obj = getattr(module, name)
    if not is_loss(obj):
        raise ConfigError(
            key, "a keras.losses.Loss subclass or a function fn(y_true, y_pred)",
            f"{target} ({type(obj).__name__})",
        )  # fmt: skip
    return obj


def is_loss(obj: Any) -> bool:
    """A `keras.losses.Loss` subclass, or a function of at least (y_true, y_pred)."""
    import keras

    if inspect.isclass(obj):
        return issubclass(obj, keras.losses.Loss)
    if not callable(obj):
        return False
    try:
        positional = [
            p
            for p in inspect.signature(obj).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return False
    return len(positional) == 2


def parameters(obj: Any) -> dict[str, Any]:
    """The loss's parameters and their defaults (`inspect.Parameter.empty`: none)."""
    fn = obj.__init__ if inspect.isclass(obj) else obj
    skip = {"self", "name", "reduction", "dtype"}
    params = list(inspect.signature(fn).parameters.values())
    if not inspect.isclass(obj):
        params = params[2:]  # y_true, y_pred
    return {
        p.name: p.default
        for p in params
        if p.name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def extras_of(obj: Any) -> tuple[str, ...]:
    """The extra y_true columns a loss declares (`extras = ("group",)`)."""
    extras = tuple(getattr(obj, "extras", ()) or ())
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise ConfigError("extras", f"a tuple of {', '.join(EXTRAS)}", extras)
    return extras


def instantiate(obj: Any, params: dict[str, Any], key: str) -> Any:
    """The loss object: the class built with `params`, or the function with them bound.

    Raises:
        ConfigError: naming `key.<param>` for a parameter the loss does not take, or `key` when
            building it fails.
    """
    import functools

    known = parameters(obj)
    # A class's **kwargs go to keras.losses.Loss (name, reduction, dtype): not parameters.
    takes_any = not inspect.isclass(obj) and any(
        p.kind is p.VAR_KEYWORD for p in inspect.signature(obj).parameters.values()
    )
    label = getattr(obj, "__name__", str(obj))
    for name in params:
        if name not in known and not takes_any:
            expected = f"a parameter of {label} ({', '.join(known) or 'none'})"
            raise ConfigError(f"{key}.{name}", expected, params[name])
    try:
        return obj(**params) if inspect.isclass(obj) else functools.partial(obj, **params)
    except Exception as error:
        received = f"{type(error).__name__}: {error}"
        raise ConfigError(key, "parameters the loss accepts", received) from None
