"""The checks of `lossbench-check`, run on the Keras backend this process has.

Each check catches one class of defect found in hand-written losses, on inputs it builds for the
task (`lossbench.check.inputs`), and returns a `Finding`: pass/fail/skip, a one-line finding with
the numbers, and a hint for the fix; `results` pairs each with its id from the catalog. Checks
that need per-sample values are skipped when `per-sample` fails, so one defect is reported once.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from lossbench.check import inputs
from lossbench.check.catalog import CHECKS, CROSS_BACKEND, RUNS, registers
from lossbench.check.inputs import Batch
from lossbench.check.keras_tools import (
    keras_loss,
    np_array,
    reduce_weighted,
    tensor,
    value_and_grad,
)
from lossbench.check.model_checks import ModelChecks
from lossbench.check.subject import Finding, Result, Subject, short


def _replace_rows(batch: Batch, rows: np.ndarray, other: Batch) -> Batch:
    """`batch` with the targets and predictions of `rows` taken from `other` (ids unchanged)."""

    def mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(rows.reshape(-1, *([1] * (a.ndim - 1))), b, a).astype(a.dtype)

    return Batch(mix(batch.y, other.y), mix(batch.pred, other.pred), batch.extra)


class Checker(ModelChecks):
    """Runs the checks on one subject; `results()` gives them in order."""

    def __init__(self, subject: Subject) -> None:
        self.s = subject
        self.loss = subject.make(dict(subject.params))
        self.adapted = subject.adapt(self.loss)
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

    # --- the checks ---------------------------------------------------------------------------

    @registers("per-sample")
    def per_sample(self) -> Finding:
        shape = self.values(self.batch).shape
        if len(shape) >= 1 and shape[0] == len(self.batch):
            self.per_sample_ok = True
            size = len(self.batch)
            return Finding("pass", f"call returns shape {shape} for a batch of {size}")
        return Finding(
            "fail",
            f"call returns shape {shape} for a batch of {len(self.batch)}; expected "
            f"({len(self.batch)},)",
            "return one value per sample (reduce the last axes only): Keras applies "
            "sample_weight and the batch mean to what call returns",
        )  # fmt: skip

    @registers("batch-shapes")
    def batch_shapes(self) -> Finding:
        # The last two: a partial last batch of 600 samples, and lossbench's default batch.
        sizes = (1, 7, 13, 600 % inputs.BATCH, inputs.BATCH)
        wrong = []
        for size in sizes:
            batch = inputs.standard(self.s.task, size=size, seed=1, n_nodes=self.s.n_nodes)
            try:
                shape = self.values(batch).shape
            except Exception as error:
                wrong.append(f"batch {size}: {type(error).__name__}: {short(error)}")
                continue
            if self.per_sample_ok and (len(shape) < 1 or shape[0] != size):
                wrong.append(f"batch {size}: shape {shape}")
        unknown = self._unknown_batch_problem()
        wrong += [unknown] if unknown else []
        if wrong:
            return Finding(
                "fail", "; ".join(wrong),
                "size nothing by one batch: per-sample weights and ids travel as columns of "
                "y_true, and ops.shape(x)[0] (not x.shape[0], None while Keras traces) gives the "
                "batch size",
            )  # fmt: skip
        traced = (
            "and traces with an unknown batch size on TensorFlow"
            if keras.backend.backend() == "tensorflow"
            else "(the trace with an unknown batch size runs on TensorFlow only)"
        )
        return Finding("pass", f"runs on batches of {', '.join(map(str, sizes))} {traced}")

    def _unknown_batch_problem(self) -> str | None:
        """Trace the loss with a batch dimension of None, as Keras's compiled train step does
        on TensorFlow (a partial last batch is another size): what fails, else None."""
        if keras.backend.backend() != "tensorflow":
            return None
        import tensorflow as tf

        yt, pred = self.y_true(self.batch), self.batch.pred
        specs = [tf.TensorSpec((None, *a.shape[1:]), tf.float32) for a in (yt, pred)]
        traced = tf.function(lambda y, p: self.adapted.call(y, p), input_signature=specs)
        try:
            traced.get_concrete_function()
        except Exception as error:
            return f"unknown batch size (None): {type(error).__name__}: {short(error)}"
        return None

    @registers("sample-weight")
    def sample_weight(self) -> Finding:
        if not self.per_sample_ok:
            return Finding("skip", "needs per-sample values (see per-sample)")
        loss = keras_loss(self.loss)
        reduction = getattr(loss, "reduction", "sum_over_batch_size")
        if reduction not in ("sum", "sum_over_batch_size", "mean", "mean_with_sample_weight"):
            return Finding("skip", f"reduction {reduction!r} has no reference")
        yt, pred = tensor(self.y_true(self.batch)), tensor(self.batch.pred)
        v = self.values(self.batch).astype("float64")
        if v.ndim > 1 and v.shape[-1] != 1:
            return Finding(
                "fail", f"call returns {v.shape} values (one per element) for a batch of "
                f"{len(v)}: Keras 3 broadcasts (B,) sample weights only onto a last axis of size "
                "1, so fit(..., sample_weight=w) raises 'Incompatible shapes'",
                "reduce the last axis in call (ops.mean(..., axis=-1)) so it returns one value "
                "per sample, or weight elements yourself inside call",
            )  # fmt: skip
        w = np.random.default_rng(3).uniform(0.0, 2.0, len(v))
        given = {"scalar weight 2": 2.0, "per-sample weights": w, "zero weights": np.zeros_like(w)}
        wrong = []
        for name, weight in given.items():
            shaped = np.asarray(weight, "float64").reshape(-1, *([1] * (v.ndim - 1)))
            expected = reduce_weighted(v, np.broadcast_to(shaped, v.shape), reduction)
            got = float(
                np_array(loss(yt, pred, sample_weight=tensor(np.asarray(weight, "float32"))))
            )
            if not math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-6):
                wrong.append(f"{name}: {got:.6g}, expected {expected:.6g}")
        if wrong:
            return Finding(
                "fail", "; ".join(wrong),
                "leave weighting and reduction to Keras: call returns unweighted per-sample "
                "values and __call__ (not overridden) applies sample_weight",
            )  # fmt: skip
        return Finding("pass", f"scalar, per-sample and zero weights ({reduction})")

    @registers("finite-gradients")
    def finite_gradients(self) -> Finding:
        wrong = []
        extremes = inputs.extremes(self.s.task, self.s.n_nodes, size=len(self.batch))
        for name, batch in extremes.items():
            yt = tensor(self.y_true(batch))
            try:
                value, grad = value_and_grad(
                    lambda p, yt=yt: keras.ops.mean(self.adapted.call(yt, p)), batch.pred
                )
            except Exception as error:
                wrong.append(f"{name}: {type(error).__name__}: {short(error)}")
                continue
            if not math.isfinite(value):
                wrong.append(f"{name}: value {value}")
            elif not np.isfinite(grad).all():
                bad = int((~np.isfinite(grad)).sum())
                wrong.append(f"{name}: {bad} non-finite gradient entries")
        if wrong:
            return Finding(
                "fail", "; ".join(wrong),
                "guard unsafe inputs before the op, not after (where(ok, f(where(ok, x, safe)), "
                "0)); clip probabilities; floor divisions by group statistics",
            )  # fmt: skip
        return Finding("pass", "finite on every extreme batch")

    @registers("order-invariance")
    def order_invariance(self) -> Finding:
        if not self.per_sample_ok:
            return Finding("skip", "needs per-sample values (see per-sample)")
        hint = (
            "do not assume sorted or contiguous ids: segment_sum with num_segments, then divide "
            "by per-group counts"
        )
        perm = np.random.default_rng(5).permutation(len(self.batch))
        before = self.values(self.batch)[perm]
        try:
            after = self.values(self.batch.take(perm))
        except Exception as error:
            found = f"shuffled samples raise {type(error).__name__}: {short(error)}"
            return Finding("fail", found, hint)
        if not np.allclose(before, after, rtol=1e-4, atol=1e-6):
            worst = float(np.max(np.abs(before - after)))
            found = f"shuffling samples with their targets changes their values (by {worst:.3g})"
            return Finding("fail", found, hint)
        return Finding("pass", "shuffled samples keep their values")

    @registers("batch-independence")
    def batch_independence(self) -> Finding:
        if not self.per_sample_ok:
            return Finding("skip", "needs per-sample values (see per-sample)")
        coupling = getattr(self.adapted, "batch_coupling", "none")
        if coupling == "batch":
            return Finding("skip", "the loss declares batch_coupling='batch' (samples coupled)")
        if coupling not in ("none", "group"):
            found = f"batch_coupling={coupling!r}; expected none, group or batch"
            return Finding("fail", found, "declare batch_coupling as 'none', 'group' or 'batch'")
        hint = (
            "compute each sample's value from its own row: a batch-wide term (a mean over the "
            "batch, a Dice over the batch) makes a sample's loss depend on its batch; if that "
            "is intended, declare batch_coupling = 'batch' (or 'group') on the loss"
        )
        batch = self.batch
        if coupling == "group":  # one group kept, every other group's samples replaced
            keep, others = batch.extra == batch.extra[0], "samples of the other groups"
        else:
            keep, others = np.arange(len(batch)) < len(batch) // 4, "other samples"
        changed = _replace_rows(batch, ~keep, inputs.standard(self.s.task, len(batch), seed=7))
        kept = int(keep.sum())
        trials = [(f"changing the {len(batch) - kept} {others}", changed, keep)]
        if coupling == "none":
            trials.append((f"a batch of its first {kept} samples alone", batch.take(keep), None))
        before = self.values(batch)
        for what, other, rows in trials:
            try:
                after = self.values(other)
            except Exception as error:
                if rows is None:  # another batch size: `batch-shapes` reports it
                    continue
                found = f"{what} raises {type(error).__name__}: {short(error)}"
                return Finding("fail", found, hint)
            after = after[rows] if rows is not None else after
            if after.shape != before[keep].shape:  # sized to one batch: `batch-shapes` says so
                continue
            if not np.allclose(before[keep], after, rtol=1e-4, atol=1e-6):
                worst = float(np.max(np.abs(before[keep] - after)))
                return Finding(
                    "fail", f"{what} changes the values of the {kept} samples kept (by up to "
                    f"{worst:.3g}): a sample's value depends on the rest of its batch", hint,
                )  # fmt: skip
        declared = " within its group (batch_coupling='group')" if coupling == "group" else ""
        return Finding("pass", f"each sample's value is its own{declared}")

    @registers("compiled")
    def compiled(self) -> Finding:
        yt, pred = tensor(self.y_true(self.batch)), tensor(self.batch.pred)
        eager = np_array(self.adapted.call(yt, pred))
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            fn = tf.function(lambda a, b: self.adapted.call(a, b), jit_compile=True)
            name = "tf.function(jit_compile=True)"
        else:
            import jax

            fn, name = jax.jit(lambda a, b: self.adapted.call(a, b)), "jax.jit"
        compiled = np_array(fn(yt, pred))
        if compiled.shape != eager.shape or not np.allclose(compiled, eager, 1e-4, 1e-6):
            return Finding(
                "fail", f"{name} gives {compiled.ravel()[:3]}..., eager "
                f"{eager.ravel()[:3]}...",
                "no Python-side decisions on tensor values, no NumPy conversions inside call",
            )  # fmt: skip
        return Finding("pass", "the compiled call (XLA) equals eager")

    def results(self) -> list[Result]:
        """Every check of `catalog.CHECKS` this process runs, in order; one that raises fails."""
        out = []
        for check in CHECKS:
            if check.id == CROSS_BACKEND:
                continue
            try:
                found = RUNS[check.id](self)
            except Exception as error:
                found = Finding("fail", f"raises {type(error).__name__}: {short(error)}")
            out.append(Result(check.id, found.status, found.message, found.hint))
        return out

    def fingerprint(self) -> dict[str, list[float]]:
        """Values and gradient at the standard batch, for comparing backends."""
        yt = tensor(self.y_true(self.batch))
        _, grad = value_and_grad(lambda p: keras.ops.sum(self.adapted.call(yt, p)), self.batch.pred)
        return {"values": self.values(self.batch).ravel().tolist(), "grad": grad.ravel().tolist()}
