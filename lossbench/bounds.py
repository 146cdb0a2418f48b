"""Bounds of numbers, and the bounds of every loss parameter that a loss's constructor and its
variant's config check both enforce: declared once here, so the two cannot disagree. A
constructor refuses a value with `Bound.check` (or `check_arg`), in Keras's words; a config
check yields it as a `Problem` (`in_range`; `declared_problems` for fields declared `bounded`).

No imports of lossbench or a framework: the loss library and config validation both use it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# (dotted key, what it expects, what it received): one out-of-range value.
Problem = tuple[str, str, Any]

GIB = 2**30


def memory_budget() -> int:
    """What one run may allocate: half of this machine's memory, or of the cgroup memory limit
    when that is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total // 2


def check_arg(name: str, value: Any, ok: bool, expected: str) -> None:
    """Raise a Keras-style ValueError naming the argument when `ok` is false."""
    if not ok:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected {expected}. Received: {name}={value!r}"
        )


@dataclass(frozen=True)
class Bound:
    """A finite number within inclusive (`ge`, `le`) and exclusive (`gt`, `lt`) limits; an
    integer when `integer`. NaN and +/-inf never hold."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    integer: bool = False

    def holds(self, value: Any) -> bool:
        """Whether `value` is a number within the bounds."""
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        if not math.isfinite(value) or (self.integer and not isinstance(value, int)):
            return False
        return (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )

    def check(self, name: str, value: Any) -> None:
        """Raise `check_arg`'s ValueError for argument `name` unless `value` holds."""
        check_arg(name, value, self.holds(value), self.text())

    def text(self) -> str:
        """What the bound expects, for messages: `a finite number >= 0`, `a number in [0, 1)`."""
        kind = "an integer" if self.integer else "a finite number"
        low = (
            f"[{self.ge}" if self.ge is not None else f"({self.gt}" if self.gt is not None else None
        )
        high = (
            f"{self.le}]" if self.le is not None else f"{self.lt})" if self.lt is not None else None
        )
        if low and high:
            return f"{'an integer' if self.integer else 'a number'} in {low}, {high}"
        if low:
            return f"{kind} {'>=' if self.ge is not None else '>'} {low[1:]}"
        if high:
            return f"{kind} {'<=' if self.le is not None else '<'} {high[:-1]}"
        return kind


def bounded(default: Any, bound: Bound, *, each: bool = False) -> Any:
    """A config dataclass field whose value lies within `bound` (with `each`, every element of
    its list); None passes where the field's type allows it. The config check enforces it
    before any run (`declared_problems`, from `lossbench.config.checks`), and the loss's
    constructor with the same `Bound`."""
    return field(default=default, metadata={"bound": bound, "each": each})


def in_range(
    key: str,
    value: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    integer: bool = False,
    optional: bool = False,
    bound: Bound | None = None,
) -> Iterator[Problem]:
    """Yield a problem unless `value` is a finite number within the given bounds.

    NaN and +/-inf never pass (`Bound` compares finite numbers only).

    Args:
        key: the dotted key named in the message.
        value: the value received.
        ge, gt, le, lt: inclusive and exclusive bounds.
        integer: the value must be an integer.
        optional: None is accepted too.
        bound: the bounds instead, as declared here (loss parameters).
    """
    if optional and value is None:
        return
    bound = bound or Bound(ge=ge, gt=gt, le=le, lt=lt, integer=integer)
    if not bound.holds(value):
        yield key, f"null or {bound.text()}" if optional else bound.text(), value


def all_in_range(key: str, values: Any, **bounds: Any) -> Iterator[Problem]:
    """One problem for a list when any element is out of `in_range`'s bounds."""
    for value in values:
        for _, expected, _ in in_range(key, value, **bounds):
            yield key, f"a list of which each is {expected}", list(values)
            return


def declared_problems(section: Any) -> Iterator[Problem]:
    """Each field of a config dataclass outside the bound it is declared with
    (`bounded`), in the fields' order; keys relative to the section."""
    hints = _type_hints(type(section))
    for f in dataclasses.fields(section):
        bound = f.metadata.get("bound")
        if bound is None:
            continue
        value = getattr(section, f.name)
        if not f.metadata["each"]:
            optional = type(None) in typing.get_args(hints[f.name])
            yield from in_range(f.name, value, bound=bound, optional=optional)
        elif value is not None:
            yield from all_in_range(f.name, value, bound=bound)


@functools.cache
def _type_hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


NON_NEGATIVE = Bound(ge=0)
POSITIVE = Bound(gt=0)
UNIT = Bound(ge=0, le=1)
UNIT_OPEN = Bound(ge=0, lt=1)  # [0, 1)

# Loss parameters (the loss's argument name; the variant's key is the same).
GAMMA = NON_NEGATIVE  # focal and class-balanced focusing
ALPHA = UNIT  # focal's positive-class weight
BETA = UNIT_OPEN  # class-balanced: effective number of samples
TAU = NON_NEGATIVE  # logit adjustment
STEP_SIZE = NON_NEGATIVE  # group DRO
THRESHOLD = UNIT
BOOST = UNIT_OPEN
CLIP_EPSILON = Bound(gt=0, lt=0.5)  # probabilities clipped to [epsilon, 1 - epsilon]
TEMPERATURE = POSITIVE
MASK_STRENGTH = NON_NEGATIVE
GRAPH_WEIGHT = NON_NEGATIVE
NORM_FLOOR = POSITIVE  # context_graph's epsilon
TASK_WEIGHT = NON_NEGATIVE  # multitask's box_weight and class_weight
GROUP_SCALE = POSITIVE
SCALE_EPSILON = NON_NEGATIVE  # grouped_dynamic: added to a group's statistic (scale.epsilon)
WEIGHT = NON_NEGATIVE  # per-class, per-group and per-output weights
FACTOR = POSITIVE
WARMUP_EPOCHS = POSITIVE
START_FACTOR = NON_NEGATIVE
STEP_EPOCH = Bound(ge=1, integer=True)
COUNT = Bound(ge=1, integer=True)  # num_groups of the grouped losses, multitask's n_box
STEP_FACTOR = NON_NEGATIVE

# The graph loss indexes its bit-packed adjacency with int32 and the graph data is dense N x N:
# N * N < 2 ** 31 keeps every flat index within int32. Memory bounds N much lower in practice
# (see `lossbench.config.checks`).
MAX_GRAPH_NODES = 46_340
