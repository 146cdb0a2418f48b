"""The checks of a loss's values on batches: per-sample values, any batch size, Keras's sample
weights, finite values at valid extremes, sample order, samples independent of their batch, and
compiled against eager (see `suite.Checker`)."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from lossbench.check import inputs
from lossbench.check.blame import describe
from lossbench.check.catalog import Status, check
from lossbench.check.keras_tools import (
    has_call,
    keras_loss,
    np_array,
    reduce_weighted,
    tensor,
    value_and_grad,
)
from lossbench.check.subject import Finding


class ValueChecks:
    """Checks of the loss's values and gradients on batches (see `suite.Checker`)."""

    # Provided by `suite.Checker`: the subject, the loss (as built, as Keras holds it and as
    # adapted), the standard batch, `y_true(batch)` / `values(batch)` / `total(...)` of the
    # adapted loss, and whether `per-sample` passed.
    s: Any
    loss: Any
    keras_loss: Any
    adapted: Any
    batch: Any
    y_true: Any
    values: Any
    total: Any
    per_sample_ok: bool

    @check(
        "per-sample",
        "per-sample values",
        catches="`call` returning a scalar (it breaks `sample_weight`)",
        runs="`call` on a batch of 64",
    )
    def per_sample(self) -> Finding:
        if not has_call(self.loss):
            shape = np_array(
                self.total(tensor(self.y_true(self.batch)), tensor(self.batch.pred))
            ).shape
            return Finding(
                Status.skipped,
                f"the class overrides __call__ and has no call: Keras's trainer calls "
                f"__call__, which returns shape {shape} for a batch of {len(self.batch)}; "
                "sample_weight is then the loss's own business (see sample-weight)",
            )
        shape = self.values(self.batch).shape
        if len(shape) >= 1 and shape[0] == len(self.batch):
            self.per_sample_ok = True
            size = len(self.batch)
            return Finding(Status.passed, f"call returns shape {shape} for a batch of {size}")
        return Finding(
            Status.failed,
            f"call returns shape {shape} for a batch of {len(self.batch)}; expected "
            f"({len(self.batch)},)",
            "return one value per sample (reduce the last axes only): Keras applies "
            "sample_weight and the batch mean to what call returns",
        )

    @check(
        "batch-shapes",
        "any batch size",
        catches=(
            "tensors sized to one batch (batches of 1, 7, 13, 24 and 64, eagerly and through the "
            "program Keras traces with an unknown batch size, which `fit` runs on every batch)"
        ),
        runs=(
            "`call` eagerly, then one program traced with a batch size of None (TensorFlow) or "
            "jitted per size (JAX), on each batch size"
        ),
    )
    def batch_shapes(self) -> Finding:
        # The last two: a partial last batch of 600 samples, and lossbench's default batch.
        sizes = (1, 7, 13, 600 % inputs.BATCH, inputs.BATCH)
        wrong: list[str] = []
        self._where = ""
        for size in sizes:
            batch = inputs.standard(self.s.task, size=size, seed=1, n_nodes=self.s.n_nodes)
            try:
                shape = self.values(batch).shape
            except Exception as error:
                message, self._where = describe(error)
                wrong.append(f"batch {size}: {message}")
                continue
            if self.per_sample_ok and (len(shape) < 1 or shape[0] != size):
                wrong.append(f"batch {size}: shape {shape}")
        if not wrong:  # eagerly every size runs: now as the traced program runs them
            wrong += self._traced_batch_problems(sizes)
        if wrong:
            return Finding(
                Status.failed,
                "; ".join(wrong),
                "size nothing by one batch: per-sample weights and ids travel as columns of "
                "y_true, and ops.shape(x)[0] (not x.shape[0], None while Keras traces) gives the "
                "batch size",
                where=self._where,
            )
        shown = ", ".join(map(str, sizes))
        return Finding(
            Status.passed,
            f"runs on batches of {shown}, eagerly and traced as fit runs "
            "them (TensorFlow: one program for any batch size)",
        )

    def _traced_batch_problems(self, sizes: tuple[int, ...]) -> list[str]:
        """Run the loss on batches of every size as Keras's compiled train step does: on
        TensorFlow one program traced with a batch dimension of None (a tensor sized by
        `x.shape[0]` is sized then, by None), on JAX a program per size. What fails."""
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            yt, pred = self.y_true(self.batch), self.batch.pred
            specs = [tf.TensorSpec((None, *a.shape[1:]), tf.float32) for a in (yt, pred)]
            traced = tf.function(lambda y, p: self.adapted.call(y, p), input_signature=specs)
            how = "the program traced with an unknown batch size"
            try:
                program = traced.get_concrete_function()
            except Exception as error:
                message, self._where = describe(error)
                return [f"tracing {how}: {message}"]
            graph = program.graph
        else:
            import jax

            program, how, graph = jax.jit(lambda y, p: self.adapted.call(y, p)), "jax.jit", None
        wrong = []
        for size in sizes:
            batch = inputs.standard(self.s.task, size=size, seed=1, n_nodes=self.s.n_nodes)
            try:
                shape = np_array(program(tensor(self.y_true(batch)), tensor(batch.pred))).shape
            except Exception as error:
                message, self._where = describe(error, graph)
                return [f"batch {size} through {how}: {message}"]
            if self.per_sample_ok and (len(shape) < 1 or shape[0] != size):
                wrong.append(f"batch {size} through {how}: shape {shape}")
        return wrong

    @check(
        "sample-weight",
        "Keras's sample weights",
        catches=(
            "scalar, per-sample and zero weights not behaving as Keras documents, through "
            "`__call__` as Keras's trainer calls the loss (an override that drops them too)"
        ),
        runs=(
            "`__call__` with no, scalar, per-sample and zero weights against Keras's reductions "
            "of `call`'s values in float64 (with no `call`: weights that zero half the batch must "
            "change it)"
        ),
    )
    def sample_weight(self) -> Finding:
        if not has_call(self.loss):
            return self._weights_reach_call()
        if not self.per_sample_ok:
            return Finding(Status.skipped, "needs per-sample values (see per-sample)")
        loss = keras_loss(self.loss)
        reduction = getattr(loss, "reduction", "sum_over_batch_size")
        if reduction not in ("sum", "sum_over_batch_size", "mean", "mean_with_sample_weight"):
            return Finding(Status.skipped, f"reduction {reduction!r} has no reference")
        yt, pred = tensor(self.y_true(self.batch)), tensor(self.batch.pred)
        v = self.values(self.batch).astype("float64")
        if v.ndim > 1 and v.shape[-1] != 1:
            return Finding(
                Status.failed,
                f"call returns {v.shape} values (one per element) for a batch of "
                f"{len(v)}: Keras 3 broadcasts (B,) sample weights only onto a last axis of size "
                "1, so fit(..., sample_weight=w) raises 'Incompatible shapes'",
                "reduce the last axis in call (ops.mean(..., axis=-1)) so it returns one value "
                "per sample, or weight elements yourself inside call",
            )
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
                Status.failed,
                "; ".join(wrong),
                "leave weighting and reduction to Keras: call returns unweighted per-sample "
                "values and __call__ (not overridden) applies sample_weight",
            )
        return Finding(Status.passed, f"scalar, per-sample and zero weights ({reduction})")

    def _weights_reach_call(self) -> Finding:
        """A loss with only its own `__call__`: weights that zero half the samples must change
        the batch's loss as Keras's trainer computes it (they cannot be checked against
        per-sample values there are none of)."""
        yt, pred = tensor(self.y_true(self.batch)), tensor(self.batch.pred)
        half = np.zeros(len(self.batch), "float32")
        half[: len(half) // 2] = 1.0
        plain = float(np_array(self.keras_loss(yt, pred)))
        weighted = float(np_array(self.keras_loss(yt, pred, sample_weight=tensor(half))))
        if math.isclose(plain, weighted, rel_tol=1e-6, abs_tol=1e-9):
            return Finding(
                Status.failed,
                f"__call__ ignores sample_weight: {plain:.6f} with and without weights "
                "that zero half of the samples",
                "apply sample_weight in __call__ (or implement call and leave __call__ to Keras)",
            )
        return Finding(
            Status.passed,
            f"__call__ applies sample_weight ({plain:.6g} -> {weighted:.6g} "
            "with half of the samples weighted 0)",
        )

    @check(
        "finite-gradients",
        "finite at valid extremes",
        catches=(
            "NaN/inf values or gradients on valid extremes: exact 0/1 probabilities, perfect and "
            "fully wrong saturated predictions, large logits, all-zero targets (also within one "
            "group), an absent group, one-class and one-group batches; a gradient that is None "
            "(the loss does not depend on the predictions there)"
        ),
        runs="the value and its gradient (`GradientTape` / `jax.grad`) on each extreme batch",
    )
    def finite_gradients(self) -> Finding:
        wrong, unused = [], []
        extremes = inputs.extremes(self.s.task, self.s.n_nodes, size=len(self.batch))
        for name, batch in extremes.items():
            yt = tensor(self.y_true(batch))
            try:
                value, grad = value_and_grad(lambda p, yt=yt: self.total(yt, p), batch.pred)
            except Exception as error:
                wrong.append(f"{name}: {describe(error)[0]}")
                continue
            if not math.isfinite(value):
                wrong.append(f"{name}: value {value}")
            elif grad is None:
                unused.append(name)
            elif not np.isfinite(grad).all():
                bad = int((~np.isfinite(grad)).sum())
                wrong.append(f"{name}: {bad} non-finite gradient entries")
        if wrong:
            return Finding(
                Status.failed,
                "; ".join(wrong),
                "guard unsafe inputs before the op, not after (where(ok, f(where(ok, x, safe)), "
                "0)); clip probabilities; floor divisions by group statistics",
            )
        if unused:
            every = "every batch" if len(unused) == len(extremes) else ", ".join(unused)
            return Finding(
                Status.failed,
                f"the gradient is None on {every}: the loss does not depend on y_pred "
                "there, and Keras's train step then has no gradient to apply",
                "compute the loss from y_pred (a constant branch for some batches disconnects "
                "it: use ops.where over values computed from y_pred)",
            )
        return Finding(Status.passed, "finite on every extreme batch")

    @check(
        "order-invariance",
        "sample order",
        catches="shuffling samples with their targets changing their values (ids assumed sorted)",
        runs="`call` on a batch and on the same samples shuffled",
    )
    def order_invariance(self) -> Finding:
        if not self.per_sample_ok:
            return Finding(Status.skipped, "needs per-sample values (see per-sample)")
        hint = (
            "do not assume sorted or contiguous ids: segment_sum with num_segments, then divide "
            "by per-group counts"
        )
        perm = np.random.default_rng(5).permutation(len(self.batch))
        before = self.values(self.batch)[perm]
        try:
            after = self.values(self.batch.take(perm))
        except Exception as error:
            message, where = describe(error)
            return Finding(Status.failed, f"shuffled samples raise {message}", hint, where=where)
        if not np.allclose(before, after, rtol=1e-4, atol=1e-6):
            worst = float(np.max(np.abs(before - after)))
            found = f"shuffling samples with their targets changes their values (by {worst:.3g})"
            return Finding(Status.failed, found, hint)
        return Finding(Status.passed, "shuffled samples keep their values")

    @check(
        "batch-independence",
        "samples independent of the batch",
        catches=(
            "a sample's value depending on the other samples of its batch (a batch-wide mean or "
            "Dice term), unless the loss declares `batch_coupling` (`group` or `batch`)"
        ),
        runs="`call` on a batch, with its other samples replaced, and on a quarter of it alone",
    )
    def batch_independence(self) -> Finding:
        if not self.per_sample_ok:
            return Finding(Status.skipped, "needs per-sample values (see per-sample)")
        coupling = getattr(self.adapted, "batch_coupling", "none")
        if coupling == "batch":
            return Finding(
                Status.skipped, "the loss declares batch_coupling='batch' (samples coupled)"
            )
        if coupling not in ("none", "group"):
            found = f"batch_coupling={coupling!r}; expected none, group or batch"
            return Finding(
                Status.failed, found, "declare batch_coupling as 'none', 'group' or 'batch'"
            )
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
        changed = inputs.replace_rows(
            batch, ~keep, inputs.standard(self.s.task, len(batch), seed=7)
        )
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
                message, where = describe(error)
                return Finding(Status.failed, f"{what} raises {message}", hint, where=where)
            after = after[rows] if rows is not None else after
            if after.shape != before[keep].shape:  # sized to one batch: `batch-shapes` says so
                continue
            if not np.allclose(before[keep], after, rtol=1e-4, atol=1e-6):
                worst = float(np.max(np.abs(before[keep] - after)))
                return Finding(
                    Status.failed,
                    f"{what} changes the values of the {kept} samples kept (by up to "
                    f"{worst:.3g}): a sample's value depends on the rest of its batch",
                    hint,
                )
        declared = " within its group (batch_coupling='group')" if coupling == "group" else ""
        return Finding(Status.passed, f"each sample's value is its own{declared}")

    @check(
        "compiled",
        "compiled equals eager",
        catches="`tf.function(jit_compile=True)` / `jax.jit` disagreeing with eager",
        runs="`call` eagerly and under `tf.function(jit_compile=True)` / `jax.jit`",
    )
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
                Status.failed,
                f"{name} gives {compiled.ravel()[:3]}..., eager {eager.ravel()[:3]}...",
                "no Python-side decisions on tensor values, no NumPy conversions inside call",
            )
        return Finding(Status.passed, "the compiled call (XLA) equals eager")
