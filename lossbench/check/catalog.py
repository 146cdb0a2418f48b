"""The checks of `lossbench-check`, in the order they run and are reported: each one's id, title
and the defect it catches. The suite, the console table, `--json` and the README read this list
(tests/test_readme.py compares the README's table with it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
    """One check: its stable id (in `--json` and the table), a title, what it runs and what it
    catches."""

    id: str
    title: str
    catches: str
    runs: str = ""


CHECKS = (
    Check(
        "stateless-call",
        "call changes no state",
        "a loss that assigns its own variables or attributes while it computes (running "
        "centers, a step counter): every call changes its values, and the checks after it "
        "would report what that state does as their own defects",
        runs=(
            "the loss twice on one batch through `__call__`, watching its variables and attributes"
        ),
    ),
    Check(
        "traceable",
        "runs traced",
        "an eager-only operation (`.numpy()`, a Python `if` on a tensor's value) that fails "
        "once Keras traces the train step (`tf.function`, `jax.jit`)",
        runs=(
            "the loss eagerly, then traced by `tf.function` (TensorFlow) or `jax.jit` (JAX) on "
            "the same batch"
        ),
    ),
    Check(
        "per-sample",
        "per-sample values",
        "`call` returning a scalar (it breaks `sample_weight`)",
        runs="`call` on a batch of 64",
    ),
    Check(
        "batch-shapes",
        "any batch size",
        "tensors sized to one batch (batches of 1, 7, 13, 24 and 64, eagerly and through the "
        "program Keras traces with an unknown batch size, which `fit` runs on every batch)",
        runs=(
            "`call` eagerly, then one program traced with a batch size of None (TensorFlow) or "
            "jitted per size (JAX), on each batch size"
        ),
    ),
    Check(
        "sample-weight",
        "Keras's sample weights",
        "scalar, per-sample and zero weights not behaving as Keras documents, through "
        "`__call__` as Keras's trainer calls the loss (an override that drops them too)",
        runs=(
            "`__call__` with no, scalar, per-sample and zero weights against Keras's reductions "
            "of `call`'s values in float64 (with no `call`: weights that zero half the batch must "
            "change it)"
        ),
    ),
    Check(
        "finite-gradients",
        "finite at valid extremes",
        "NaN/inf values or gradients on valid extremes: exact 0/1 probabilities, perfect and "
        "fully wrong saturated predictions, large logits, all-zero targets (also within one "
        "group), an absent group, one-class and one-group batches; a gradient that is None "
        "(the loss does not depend on the predictions there)",
        runs="the value and its gradient (`GradientTape` / `jax.grad`) on each extreme batch",
    ),
    Check(
        "order-invariance",
        "sample order",
        "shuffling samples with their targets changing their values (ids assumed sorted)",
        runs="`call` on a batch and on the same samples shuffled",
    ),
    Check(
        "batch-independence",
        "samples independent of the batch",
        "a sample's value depending on the other samples of its batch (a batch-wide mean or Dice "
        "term), unless the loss declares `batch_coupling` (`group` or `batch`)",
        runs="`call` on a batch, with its other samples replaced, and on a quarter of it alone",
    ),
    Check(
        "compiled",
        "compiled equals eager",
        "`tf.function(jit_compile=True)` / `jax.jit` disagreeing with eager",
        runs="`call` eagerly and under `tf.function(jit_compile=True)` / `jax.jit`",
    ),
    Check(
        "live-variables",
        "variables that change",
        "a `keras.Variable` of the loss assigned between Keras's compiled train steps having "
        "no effect (frozen under JAX's jit; use lossbench's `scaled` schedule instead)",
        runs=(
            "two compiled train steps of a one-layer model, assigning each variable of the loss "
            "between them"
        ),
    ),
    Check(
        "parameter-effect",
        "parameters that matter",
        "a numeric parameter that changes neither value nor gradient (floats, and ints given "
        "with `--param`; one named `epsilon` or `eps` is checked when it moves the value by "
        "more than a guard would, relative 1e-3, and named as a guard otherwise)",
        runs="value and gradient on the standard and extreme batches with each parameter changed",
    ),
    Check(
        "serialization",
        "save and load",
        "`get_config`/`from_config` losing parameters, or a `.keras` model with the loss not "
        "loading (register the class)",
        runs="`from_config(get_config())`, and a `.keras` model saved and loaded",
    ),
    Check(
        "gradient",
        "autodiff equals finite differences",
        "autodiff disagreeing with central finite differences",
        runs="autodiff against central finite differences at 12 entries",
    ),
    Check(
        "backends",
        "TensorFlow equals JAX",
        "TensorFlow and JAX disagreeing",
        runs="values and gradients of the TensorFlow and JAX processes on the same batch",
    ),
)
# Checks of one backend's process; `backends` compares the processes' results.
CROSS_BACKEND = "backends"
# Checks whose failure makes later checks fail too: a later failure says "see <root>" instead
# of a misleading text of its own (its own stays in `detail`).
ROOT_CAUSES = ("stateless-call", "traceable")
IDS = tuple(check.id for check in CHECKS)

# Each check's function, by its id (the suite registers them; `backends` is the CLI's).
RUNS: dict[str, Callable[[Any], Any]] = {}


def registers(check_id: str) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Register a function (a `Checker` method) as the check `check_id` of CHECKS."""
    if check_id not in IDS:
        raise ValueError(f"{check_id!r} is not a check of lossbench.check.catalog")

    def register(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        RUNS[check_id] = fn
        return fn

    return register
