"""Users' own losses: `path/to/file.py:Name` or `package.module:Name`, loaded, checked to be a
loss, built with their parameters and adapted to lossbench's trainer.

A user's loss is a `keras.losses.Loss` subclass (its constructor's keyword arguments are the
parameters) or a function `fn(y_true, y_pred, **params)` returning per-sample values. Importing
the target runs the user's file, exactly as running it would; `target_problems` checks only the
spelling and that the file or module exists, without importing anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import re
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lossbench.errors import ConfigError, did_you_mean

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
    elif module_spec(location) is None:
        yield key, "an importable module", f"{target} (no module {location!r})"


def module_spec(name: str) -> Any:
    """The import system's spec of the dotted module `name` (None: not found), found without
    running any of its code or its packages' `__init__` (`importlib.util.find_spec` imports the
    parents: a package that imports Keras would fix Keras's backend before lossbench chose it)."""
    path, spec = None, None
    parts = name.split(".")
    for depth in range(len(parts)):
        if depth and path is None:  # inside a module, not a package: no submodules
            return None
        fullname = ".".join(parts[: depth + 1])
        loaded = sys.modules.get(fullname)
        spec = getattr(loaded, "__spec__", None) if loaded is not None else None
        spec = spec or _find_spec(fullname, path)
        if spec is None:
            return None
        path = spec.submodule_search_locations
    return spec


def _find_spec(fullname: str, path: Any) -> Any:
    """The import system's spec for `fullname` inside the package `path` (None: top level),
    asking each finder as `import` would, without importing anything."""
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(fullname, path)
        except (ImportError, ValueError):
            spec = None
        if spec is not None:
            return spec
    return None


# A user's file that has not finished importing by then is stopped (it trains, downloads or
# waits at import time): long enough for any import, short enough that a hang is not mistaken
# for a slow run.
IMPORT_SECONDS = 20


class ImportTimeout(Exception):
    """A user's module still importing after IMPORT_SECONDS."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise ImportTimeout in the block after `seconds` (main thread only: elsewhere, none)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise ImportTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _import(location: str, base: Path | None) -> Any:
    """Run the user's file or import the module (the caller turns failures into one line)."""
    if not location.endswith(".py"):
        return importlib.import_module(location)
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
    return module


def load_target(target: str, key: str, base: Path | None = None, kind: str = "loss") -> Any:
    """Import the target's file or module and return the named object: every place that runs a
    user's code imports it here.

    Args:
        kind: what the object must be: "loss" (a Loss subclass or fn(y_true, y_pred)), or
            "any" (the caller checks it).

    Raises:
        ConfigError: naming `key`: malformed, missing, failing, exiting or hanging on import,
            or no such name.
    """
    for problem in target_problems(key, target, base):
        raise ConfigError(*problem)
    location, name = split_target(target)
    try:
        with _deadline(IMPORT_SECONDS):
            module = _import(location, base)
    except ImportTimeout:
        raise ConfigError(
            key,
            f"a file that imports within {IMPORT_SECONDS} s",
            f"{target} (still importing after {IMPORT_SECONDS} s: does it train, download or "
            "wait for input when imported? Put that under `if __name__ == '__main__':`)",
        ) from None
    except SystemExit as stop:
        raise ConfigError(
            key,
            "a file that imports without exiting",
            f"{target} (it called sys.exit({stop.code!r}) when imported; put that under "
            "`if __name__ == '__main__':`)",
        ) from None
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
    if kind == "loss" and not is_loss(obj):
        raise ConfigError(
            key,
            "a keras.losses.Loss subclass or a function fn(y_true, y_pred, ...)",
            f"{target} ({type(obj).__name__})",
        )
    return obj


def _signature(obj: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    except (TypeError, ValueError):
        return None


def _takes_targets(sig: inspect.Signature) -> set[str]:
    """The parameter names a function's (y_true, y_pred) fill; raises TypeError when it cannot
    take them as its first two positional arguments."""
    return set(sig.bind_partial(None, None).arguments)


def is_loss(obj: Any) -> bool:
    """A `keras.losses.Loss` subclass, or a function that takes (y_true, y_pred) as its first
    two positional arguments (its other parameters are the loss's parameters)."""
    import keras

    if inspect.isclass(obj):
        return issubclass(obj, keras.losses.Loss)
    sig = _signature(obj) if callable(obj) else None
    if sig is None:
        return False
    try:
        _takes_targets(sig)
    except TypeError:
        return False
    return True


def parameters(obj: Any) -> dict[str, Any]:
    """The loss's parameters and their defaults (`inspect.Parameter.empty`: none), keyword-only
    ones included; not y_true and y_pred, nor Keras's name, reduction and dtype."""
    sig = _signature(obj)
    if sig is None:
        return {}
    skip = {"self", "name", "reduction", "dtype"}
    if not inspect.isclass(obj):
        skip |= _takes_targets(sig)
    return {
        p.name: p.default
        for p in sig.parameters.values()
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
            raise ConfigError(f"{key}.{name}", expected, params[name]).with_hint(
                did_you_mean(name, known, f"{key}.")
            )
    for name, default in known.items():
        if default is inspect.Parameter.empty and name not in params:
            raise ConfigError(
                f"{key}.{name}", f"a value ({label} has no default for `{name}`)", None
            )
    try:
        return obj(**params) if inspect.isclass(obj) else functools.partial(obj, **params)
    except Exception as error:
        received = f"{type(error).__name__}: {error}"
        raise ConfigError(key, "parameters the loss accepts", received) from None
