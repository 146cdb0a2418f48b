"""How a check of `lossbench-check` is declared: `@check(id, title, catches=..., runs=...)` on
the function that runs it, beside its body, as scikit-learn's `check_*` functions are. `checks()`
gives them in the order they run and are reported: by the module that declares them (`MODULES`),
then as written. The suite, the console table, `--json` and the README read that order
(tests/test_readme.py compares the README's table with it)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """What a check found; `error` is a fault of the check's own code, not of the loss."""

    passed = "pass"
    failed = "fail"
    skipped = "skip"
    error = "error"


@dataclass(frozen=True)
class Check:
    """One check: its stable id (in `--json` and the table), a title, what it catches, what it
    runs, whether later failures are "see" it (`root`: they follow from it), whether it compares
    the backends' processes instead of running in each, and its function."""

    id: str
    title: str
    catches: str
    runs: str
    fn: Callable[..., Any] = field(compare=False, repr=False)
    root: bool = False
    across_backends: bool = False


# The modules that declare checks, in the order their checks run: the root causes first, the
# comparison of the backends' processes last.
MODULES = (
    "lossbench.check.roots",
    "lossbench.check.value_checks",
    "lossbench.check.model_checks",
    "lossbench.check.cli",
)
_DECLARED: dict[str, Check] = {}


def check(
    check_id: str,
    title: str,
    *,
    catches: str,
    runs: str,
    root: bool = False,
    across_backends: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the decorated function as the check `check_id` (a `Checker` method, or the
    CLI's comparison of the backends' results)."""

    def declare(fn: Callable[..., Any]) -> Callable[..., Any]:
        if fn.__module__ not in MODULES:
            raise ValueError(f"check {check_id!r}: {fn.__module__} is not in catalog.MODULES")
        known = _DECLARED.get(check_id)
        if known is not None and known.fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"check {check_id!r} is declared twice")
        _DECLARED[check_id] = Check(check_id, title, catches, runs, fn, root, across_backends)
        fn.declared = _DECLARED[check_id]  # type: ignore[attr-defined]
        return fn

    return declare


def checks() -> tuple[Check, ...]:
    """Every check, in order (importing the modules that declare them imports Keras)."""
    for module in MODULES:
        importlib.import_module(module)
    rank = {module: i for i, module in enumerate(MODULES)}
    return tuple(
        sorted(
            _DECLARED.values(),
            key=lambda c: (rank[c.fn.__module__], c.fn.__code__.co_firstlineno),
        )
    )
