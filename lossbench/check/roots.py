"""The checks of `lossbench-check` that find root causes: a loss that changes its own state as it
computes, and one that runs only on eager tensors. They run first; a later check that fails
while one of them has failed says "see <root>" instead of what it would misread the cause as.
`RootChecks` is a part of `suite.Checker`, which provides the subject, losses and batch."""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import keras

from lossbench.check.blame import Place, describe, is_users
from lossbench.check.catalog import Status, check
from lossbench.check.keras_tools import loss_variables, np_array, tensor
from lossbench.check.subject import Finding


def _users_place() -> Place | None:
    """The innermost line of the user's code in the current stack."""
    for frame in reversed(traceback.extract_stack()):
        if is_users(frame.filename) and frame.lineno:
            return Place(frame.filename, frame.lineno)
    return None


@contextmanager
def _watched(loss: Any) -> Iterator[list[tuple[str, Place | None]]]:
    """Record every assignment to a Loss object's variables and attributes in the block: what
    was assigned, and the line of the user's code that did it (a function holds no state)."""
    changes: list[tuple[str, Place | None]] = []
    if not isinstance(loss, keras.losses.Loss):
        yield changes
        return
    originals: list[tuple[Any, str]] = []
    for variable in loss_variables(loss):
        for method in ("assign", "assign_add", "assign_sub"):
            bound = getattr(variable, method)

            def spy(
                value: Any,
                *args: Any,
                _bound: Callable[..., Any] = bound,
                _path: str = variable.path,
                **kwargs: Any,
            ) -> Any:
                changes.append((f"variable {_path}", _users_place()))
                return _bound(value, *args, **kwargs)

            originals.append((variable, method))
            object.__setattr__(variable, method, spy)
    cls = type(loss)

    def setattr_spy(self: Any, name: str, value: Any) -> None:
        changes.append((f"attribute {name}", _users_place()))
        super(watched, self).__setattr__(name, value)

    watched = type(cls.__name__, (cls,), {"__setattr__": setattr_spy})
    object.__setattr__(loss, "__class__", watched)
    try:
        yield changes
    finally:
        object.__setattr__(loss, "__class__", cls)
        for variable, method in originals:
            object.__delattr__(variable, method)


class RootChecks:
    """The root-cause checks (see `suite.Checker`)."""

    s: Any
    loss: Any
    keras_loss: Any
    batch: Any
    y_true: Any

    @check(
        "stateless-call",
        "call changes no state",
        catches=(
            "a loss that assigns its own variables or attributes while it computes (running "
            "centers, a step counter): every call changes its values, and the checks after it "
            "would report what that state does as their own defects"
        ),
        runs=(
            "the loss twice on one batch through `__call__`, watching its variables and attributes"
        ),
        root=True,
    )
    def stateless_call(self) -> Finding:
        yt, pred = tensor(self.y_true(self.batch)), tensor(self.batch.pred)
        with _watched(self.loss) as changes:
            first = float(np_array(self.keras_loss(yt, pred)))
            second = float(np_array(self.keras_loss(yt, pred)))
        drift = not (first == second or (math.isnan(first) and math.isnan(second)))
        if not changes and not drift:
            return Finding(Status.passed, "calling the loss twice on a batch changes nothing of it")
        seen = list(dict.fromkeys(changes))
        named = [f"{what} at {place}: `{place.source}`" if place else what for what, place in seen]
        what = f"call assigns {'; '.join(named[:3])}" if seen else "its value drifts"
        place = next((p for _, p in seen if p is not None), None)
        return Finding(
            Status.failed,
            f"{what}: state that changes at every call (the same batch gives "
            f"{first:.6g}, then {second:.6g})",
            "compute the loss from its inputs only: keep running statistics in a layer of the "
            "model (a non-trainable weight the layer updates), or pass a changing factor as "
            "data (lossbench's `scaled` schedule)",
            where=f"{place.path}:{place.line}" if place else "",
        )

    @check(
        "traceable",
        "runs traced",
        catches=(
            "an eager-only operation (`.numpy()`, a Python `if` on a tensor's value) that fails "
            "once Keras traces the train step (`tf.function`, `jax.jit`)"
        ),
        runs=(
            "the loss eagerly, then traced by `tf.function` (TensorFlow) or `jax.jit` (JAX) on "
            "the same batch"
        ),
        root=True,
    )
    def traceable(self) -> Finding:
        yt, pred = self.y_true(self.batch), self.batch.pred
        try:
            np_array(self.keras_loss(tensor(yt), tensor(pred)))
        except Exception:
            return Finding(Status.skipped, "the loss fails on eager tensors too (see per-sample)")
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            traced, name = tf.function(lambda a, b: self.keras_loss(a, b)), "tf.function"
        else:
            import jax

            traced, name = jax.jit(lambda a, b: self.keras_loss(a, b)), "jax.jit"
        try:
            np_array(traced(tensor(yt), tensor(pred)))
        except Exception as error:
            message, where = describe(error)
            return Finding(
                Status.failed,
                f"runs eagerly but not traced by {name}: {message}",
                "no `.numpy()` and no Python `if` on a tensor's value in the loss: compute with "
                "keras.ops throughout and choose with ops.where",
                where=where,
            )
        return Finding(
            Status.passed,
            "runs traced, as Keras's train step runs it (tf.function on "
            "TensorFlow, jax.jit on JAX)",
        )
