"""The checks of `lossbench-check`, run on the Keras backend this process has.

Each check catches one class of defect found in hand-written losses, on inputs it builds for the
task (`lossbench.check.inputs`), and returns a `Finding`: pass/fail/skip, a one-line finding with
the numbers, and a hint for the fix; `results` pairs each with its id from the catalog. Checks
that need per-sample values are skipped when `per-sample` fails, so one defect is reported once.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from lossbench.check import inputs
from lossbench.check.catalog import CHECKS, CROSS_BACKEND, IDS
from lossbench.check.inputs import Batch
from lossbench.check.keras_tools import (
    features,
    keras_loss,
    loss_variables,
    np_array,
    reduce_weighted,
    tensor,
    tiny_model,
    value_and_grad,
)
from lossbench.check.subject import Finding, Result, Subject, changed_loss, short

# Each check's function, by its id in `catalog.CHECKS`.
_RUNS: dict[str, Callable[[Checker], Finding]] = {}


def _check(check_id: str) -> Callable[[Callable[[Checker], Finding]], Callable[[Checker], Finding]]:
    """Register a Checker method as the check `check_id` of the catalog."""
    if check_id not in IDS:
        raise ValueError(f"{check_id!r} is not a check of lossbench.check.catalog")

    def register(fn: Callable[[Checker], Finding]) -> Callable[[Checker], Finding]:
        _RUNS[check_id] = fn
        return fn

    return register


class Checker:
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

    @_check("per-sample")
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

    @_check("batch-shapes")
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
        if wrong:
            return Finding(
                "fail", "; ".join(wrong),
                "size nothing by one batch when the loss is built: per-sample weights and ids "
                "travel as columns of y_true (a partial last batch is smaller)",
            )  # fmt: skip
        return Finding("pass", f"runs on batches of {', '.join(map(str, sizes))}")

    @_check("sample-weight")
    def sample_weight(self) -> Finding:
        if not self.per_sample_ok:
            return Finding("skip", "needs per-sample values (see per-sample)")
        loss = keras_loss(self.loss)
        reduction = getattr(loss, "reduction", "sum_over_batch_size")
        if reduction not in ("sum", "sum_over_batch_size", "mean", "mean_with_sample_weight"):
            return Finding("skip", f"reduction {reduction!r} has no reference")
        yt, pred = tensor(self.y_true(self.batch)), tensor(self.batch.pred)
        v = self.values(self.batch).astype("float64")
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

    @_check("finite-gradients")
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

    @_check("order-invariance")
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

    @_check("compiled")
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

    @_check("live-variables")
    def live_variables(self) -> Finding:
        variables = loss_variables(self.loss)
        if not variables:
            return Finding("skip", "the loss holds no keras.Variable")
        loss = keras_loss(self.loss)
        frozen = []
        for variable in variables:
            model = tiny_model(self.s.task, self.batch)
            model.compile(optimizer=keras.optimizers.SGD(0.0), loss=self.adapted)
            x, yt = features(self.batch), self.y_true(self.batch)
            model.train_on_batch(x, yt)
            old = np_array(variable.value)
            variable.assign((old * 3.0 + 1.0).astype(old.dtype))
            model.reset_metrics()
            after = float(np.asarray(model.train_on_batch(x, yt)))
            eager = float(np_array(self.adapted(tensor(yt), tensor(np_array(model(x))))))
            variable.assign(old)
            if not math.isclose(after, eager, rel_tol=1e-3, abs_tol=1e-6):
                frozen.append(f"{variable.path}: train step gives {after:.6g}, eager {eager:.6g}")
        del loss
        if frozen:
            return Finding(
                "fail",
                f"assigning a variable between compiled train steps has no effect on "
                f"{keras.backend.backend()}: " + "; ".join(frozen),
                "a variable held only by the loss is frozen into the compiled step (JAX); pass "
                "the changing factor as data (lossbench's `scaled` schedule) instead",
            )  # fmt: skip
        return Finding("pass", f"{len(variables)} variable(s) seen by train steps")

    @_check("parameter-effect")
    def parameter_effect(self) -> Finding:
        if not self.s.tunable:
            return Finding("skip", "no numeric parameter to change")
        # The standard batch and the extremes: a guard (a clip, a floor) acts only at the latter.
        batches = [
            self.batch,
            *inputs.extremes(self.s.task, self.s.n_nodes, len(self.batch)).values(),
        ]

        def fingerprints(adapted: Any) -> list[tuple[float, np.ndarray]]:
            out = []
            for batch in batches:
                yt = tensor(self.y_true(batch, adapted))
                try:
                    out.append(value_and_grad(
                        lambda p, a=adapted, y=yt: keras.ops.sum(a.call(y, p)), batch.pred
                    ))  # fmt: skip
                except Exception:
                    out.append((math.nan, np.full(batch.pred.shape, np.nan)))
            return out

        base = fingerprints(self.adapted)
        dead = []
        for name in self.s.tunable:
            changed = changed_loss(self.s, name)
            if changed is None:
                continue
            new_value, loss = changed
            after = fingerprints(self.s.adapt(loss))
            same = all(
                v0 == v1 and np.array_equal(g0, g1)
                for (v0, g0), (v1, g1) in zip(base, after, strict=True)
            )
            if same:
                dead.append(f"{name}: {self.s.params[name]} -> {new_value}")
        if dead:
            return Finding(
                "fail",
                "changing a parameter changes neither the value nor the gradient: "
                + "; ".join(dead),
                "check where the parameter enters: scaling probabilities before a cross-entropy "
                "that renormalises them is a no-op (scale logits instead)",
            )  # fmt: skip
        names = ", ".join(self.s.tunable)
        return Finding("pass", f"changing {names} changes the loss")

    @_check("serialization")
    def serialization(self) -> Finding:
        if not isinstance(self.loss, keras.losses.Loss):
            return Finding("skip", "a function: only Loss subclasses carry their parameters")
        params = dict(self.s.params)
        for name in self.s.tunable:
            changed = changed_loss(self.s, name)
            if changed is not None:
                params[name] = changed[0]
        loss = self.s.make(params)
        yt, pred = tensor(self.y_true(self.batch)), tensor(self.batch.pred)
        want = np_array(loss(yt, pred))
        try:
            again = type(loss).from_config(loss.get_config())
        except Exception as error:
            return Finding(
                "fail", f"from_config(get_config()) raises "
                f"{type(error).__name__}: {short(error)}",
                "list every constructor argument in get_config",
            )  # fmt: skip
        got = np_array(again(yt, pred))
        if not np.allclose(got, want, rtol=1e-6, atol=1e-7):
            return Finding(
                "fail",
                f"from_config(get_config()) gives {float(got):.6g} instead of {float(want):.6g}",
                "list every constructor argument in get_config (Keras's lists only name and "
                "reduction)",
            )  # fmt: skip
        model = tiny_model(self.s.task, self.batch)
        model.compile(optimizer="sgd", loss=loss)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            try:
                model.save(path)
                loaded = keras.saving.load_model(path)
                got = np_array(loaded.loss(yt, pred))
            except Exception as error:
                return Finding(
                    "fail",
                    f"a model compiled with the loss does not load again: {type(error).__name__}"
                    f": {short(error)}",
                    "register the class: @keras.saving.register_keras_serializable()",
                )  # fmt: skip
        if not np.allclose(got, want, rtol=1e-6, atol=1e-7):
            return Finding("fail", "the loaded model's loss gives other values",
                          "list every constructor argument in get_config")  # fmt: skip
        return Finding("pass", "config round trip and .keras save/load")

    @_check("gradient")
    def gradient(self) -> Finding:
        yt = tensor(self.y_true(self.batch))

        def total(p: Any) -> Any:
            return keras.ops.sum(self.adapted.call(yt, p))

        _, auto = value_and_grad(total, self.batch.pred)
        rng = np.random.default_rng(7)
        flat = self.batch.pred.reshape(-1)
        picks = rng.choice(flat.size, size=min(12, flat.size), replace=False)
        h = 1e-2 if self.s.task == "multiclass" else 1e-3
        numeric = []
        for k in picks:
            up, down = flat.copy(), flat.copy()
            up[k] += h
            down[k] -= h
            f_up = float(np_array(total(tensor(up.reshape(self.batch.pred.shape)))))
            f_down = float(np_array(total(tensor(down.reshape(self.batch.pred.shape)))))
            numeric.append((f_up - f_down) / (2 * h))
        auto_k = auto.reshape(-1)[picks].astype("float64")
        numeric_k = np.asarray(numeric)
        scale = max(float(np.max(np.abs(auto_k))), 1e-3)
        worst = float(np.max(np.abs(auto_k - numeric_k)) / scale)
        if worst > 5e-2:
            return Finding(
                "fail",
                f"autodiff and central differences differ by {worst:.2%} of the largest entry",
                "a custom gradient or a stop_gradient changes the math; check it against the "
                "plain formula",
            )  # fmt: skip
        return Finding("pass", f"autodiff matches central differences ({worst:.1e})")

    def results(self) -> list[Result]:
        """Every check of `catalog.CHECKS` this process runs, in order; one that raises fails."""
        out = []
        for check in CHECKS:
            if check.id == CROSS_BACKEND:
                continue
            try:
                found = _RUNS[check.id](self)
            except Exception as error:
                found = Finding("fail", f"raises {type(error).__name__}: {short(error)}")
            out.append(Result(check.id, found.status, found.message, found.hint))
        return out

    def fingerprint(self) -> dict[str, list[float]]:
        """Values and gradient at the standard batch, for comparing backends."""
        yt = tensor(self.y_true(self.batch))
        _, grad = value_and_grad(lambda p: keras.ops.sum(self.adapted.call(yt, p)), self.batch.pred)
        return {"values": self.values(self.batch).ravel().tolist(), "grad": grad.ravel().tolist()}
