"""What `lossbench-check` examines (a `Subject`), what each check finds (a `Finding`), and the
small helpers the checks share."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lossbench.check.catalog import Status
from lossbench.errors import brief


@dataclass
class Finding:
    """What a check found (`Status`: an error is a fault of the check's own code, not of the
    loss); one line with the numbers, a hint for the fix, the line of the user's code it points
    at (`where`, path:line), what the check said before a root cause was named (`detail`), an
    internal error's traceback (`trace`), and the check's id and title once the suite has run
    it."""

    status: Status
    message: str
    hint: str = ""
    where: str = ""
    detail: str = ""
    trace: str = ""
    id: str = ""
    title: str = ""


@dataclass
class Subject:
    """What the checks examine.

    Args:
        task: binary, multiclass, grouped (or a built-in variant's task).
        make: builds the loss users hand Keras from parameter values.
        params: the parameter values to check with.
        adapt: the loss as lossbench's trainer sees it (packs targets; `call` gives per-sample
            values).
        tunable: parameters whose effect is checked (numeric, from `params`).
        guards: numeric parameters named as guards (`epsilon`): checked only when they act as
            more than one (see the parameter-effect check).
        n_nodes: graph task: the graph's size.
    """

    task: str
    make: Callable[[dict[str, Any]], Any]
    params: dict[str, Any]
    adapt: Callable[[Any], Any]
    tunable: list[str] = field(default_factory=list)
    guards: list[str] = field(default_factory=list)
    n_nodes: int = 0


def short(error: BaseException) -> str:
    """An error's first sentence on one line, without the framework's op and device names."""
    text = brief(error)
    text = re.split(r"(?<!vs)\. ", text)[0]  # the first sentence ("[64,3] vs. [64]" is one)
    return text[:200] + ("..." if len(text) > 200 else "")


def changed_loss(subject: Subject, name: str) -> tuple[Any, Any] | None:
    """A new value of parameter `name` that the loss accepts, and the loss built with it."""
    value = subject.params[name]
    candidates = [value * 2, value / 2, value + 1] if value else [1, 0.5]
    for new in candidates:
        new = type(value)(new) if isinstance(value, int) else float(new)
        if new == value:
            continue
        try:
            return new, subject.make({**subject.params, name: new})
        except Exception:
            continue
    return None
