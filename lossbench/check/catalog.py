"""The checks of `lossbench-check`, in the order they run and are reported: each one's id, title
and the defect it catches. The suite, the console table, `--json` and the README read this list
(tests/test_readme.py compares the README's table with it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """One check: its stable id (in `--json` and the table), a title, and what it catches."""

    id: str
    title: str
    catches: str


CHECKS = (
    Check(
        "per-sample",
        "per-sample values",
        "`call` returning a scalar (it breaks `sample_weight`)",
    ),
    Check(
        "batch-shapes",
        "any batch size",
        "tensors sized to one batch when the loss is built (batches of 1, 7, 13 and a partial"
        " last batch)",
    ),
    Check(
        "sample-weight",
        "Keras's sample weights",
        "scalar, per-sample and zero weights not behaving as Keras documents",
    ),
    Check(
        "finite-gradients",
        "finite at valid extremes",
        "NaN/inf values or gradients on valid extremes: exact 0/1 probabilities, perfect and "
        "fully wrong saturated predictions, large logits, all-zero targets (also within one "
        "group), an absent group, one-class and one-group batches",
    ),
    Check(
        "order-invariance",
        "sample order",
        "shuffling samples with their targets changing their values (ids assumed sorted)",
    ),
    Check(
        "batch-independence",
        "samples independent of the batch",
        "a sample's value depending on the other samples of its batch (a batch-wide mean or Dice "
        "term), unless the loss declares `batch_coupling` (`group` or `batch`)",
    ),
    Check(
        "compiled",
        "compiled equals eager",
        "`tf.function(jit_compile=True)` / `jax.jit` disagreeing with eager",
    ),
    Check(
        "live-variables",
        "variables that change",
        "a `keras.Variable` of the loss assigned between Keras's compiled train steps having "
        "no effect (frozen under JAX's jit; use lossbench's `scaled` schedule instead)",
    ),
    Check(
        "parameter-effect",
        "parameters that matter",
        "a numeric parameter that changes neither value nor gradient (floats, and ints given "
        "with `--param`; `epsilon` guards are not checked)",
    ),
    Check(
        "serialization",
        "save and load",
        "`get_config`/`from_config` losing parameters, or a `.keras` model with the loss not "
        "loading (register the class)",
    ),
    Check(
        "gradient",
        "autodiff equals finite differences",
        "autodiff disagreeing with central finite differences",
    ),
    Check(
        "backends",
        "TensorFlow equals JAX",
        "TensorFlow and JAX disagreeing",
    ),
)
# Checks of one backend's process; `backends` compares the processes' results.
CROSS_BACKEND = "backends"
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
