"""The checks of `lossbench-check`, run on the Keras backend this process has.

Each check catches one class of defect found in hand-written losses, on inputs it builds for the
task (`lossbench.check.inputs`), and returns a `Finding`: pass/fail/skip, a one-line finding with
the numbers, a hint for the fix and the line of the user's code it points at; `results` gives
each its id and title from its `@check` declaration. Each cause is named once: checks that need
per-sample values are skipped when `per-sample` fails, and a check that fails after a root cause
(declared with `root=True`: `stateless-call`, `traceable`) says "see" it. An exception of a
check's own code is an `error` of that check (its traceback in `--json`), never the loss's
defect. The loss is examined through the door Keras's trainer uses: `__call__` (and `call` only
as `__call__` reaches it).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np

from lossbench.check import inputs
from lossbench.check.blame import describe, internal, own_message, traceback_text
from lossbench.check.catalog import Check, Status, checks
from lossbench.check.inputs import Batch
from lossbench.check.keras_tools import (
    has_call,
    keras_loss,
    np_array,
    overrides_call,
    tensor,
    value_and_grad,
)
from lossbench.check.model_checks import ModelChecks
from lossbench.check.roots import RootChecks
from lossbench.check.subject import Finding, Subject
from lossbench.check.value_checks import ValueChecks


class Checker(RootChecks, ValueChecks, ModelChecks):
    """Runs the checks on one subject; `results()` gives them in order."""

    def __init__(self, subject: Subject) -> None:
        self.s = subject
        self.loss = subject.make(dict(subject.params))
        self.adapted = subject.adapt(self.loss)
        self.keras_loss = keras_loss(self.loss)  # what `compile(loss=...)` holds and calls
        self.batch = inputs.standard(
            subject.task, size=self._working_size(), n_nodes=subject.n_nodes
        )
        self.per_sample_ok = False

    def _working_size(self) -> int:
        """The standard batch size, or, when the loss fails on it, the first size it runs on:
        a loss sized to one batch when it was built then fails `batch-shapes` alone."""
        for size in (inputs.BATCH, 32, 128, 16, 256, 8):
            batch = inputs.standard(self.s.task, size=size, n_nodes=self.s.n_nodes)
            try:
                self.values(batch)
            except Exception:
                continue
            return size
        return inputs.BATCH

    def y_true(self, batch: Batch, adapted: Any = None) -> np.ndarray:
        return (adapted or self.adapted).pack_targets(batch.y, batch.extra).astype("float32")

    def values(self, batch: Batch, adapted: Any = None) -> np.ndarray:
        adapted = adapted or self.adapted
        return np_array(adapted.call(tensor(self.y_true(batch, adapted)), tensor(batch.pred)))

    def total(self, y_true: Any, y_pred: Any, loss: Any = None, adapted: Any = None) -> Any:
        """A batch's loss as Keras's trainer computes it: through the loss's own `__call__` when
        its class overrides it, else the mean of its per-sample values."""
        loss, adapted = (loss, adapted) if loss is not None else (self.loss, self.adapted)
        if overrides_call(loss) or not has_call(loss):
            return keras_loss(loss)(y_true, y_pred)
        return keras.ops.mean(adapted.call(y_true, y_pred))

    # --- the checks ---------------------------------------------------------------------------

    def results(self) -> list[Finding]:
        """Every check this process runs, in the catalog's order. A check that raises from the
        loss's code fails, naming the user's line; one that raises from its own code is an
        `error`. After a failed root cause, later failures say "see" it."""
        out = []
        root = None
        for declared in checks():
            if declared.across_backends:
                continue
            found = self._run(declared)
            if found.status is Status.failed and root is not None:
                found = Finding(
                    Status.failed,
                    f"see {root}: this check fails with it",
                    where=found.where,
                    detail=found.message,
                )
            elif found.status is Status.failed and declared.root:
                root = declared.id
            out.append(dataclasses.replace(found, id=declared.id, title=declared.title))
        return out

    def _run(self, declared: Check) -> Finding:
        try:
            return declared.fn(self)
        except Exception as error:
            if internal(error):
                return Finding(
                    Status.error,
                    f"internal error of this check, not a defect of the loss: {own_message(error)}",
                    "please report it with the traceback (--json)",
                    trace=traceback_text(error),
                )
            message, where = describe(error)
            return Finding(Status.failed, f"raises {message}", where=where)

    def fingerprint(self) -> dict[str, list[float]]:
        """Values and gradient at the standard batch, for comparing backends."""
        yt = tensor(self.y_true(self.batch))
        _, grad = value_and_grad(lambda p: self.total(yt, p), self.batch.pred)
        grad = np.zeros_like(self.batch.pred) if grad is None else grad
        return {"values": self.values(self.batch).ravel().tolist(), "grad": grad.ravel().tolist()}
