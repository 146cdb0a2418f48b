"""The checks of `lossbench-check` that build a model or another loss around the subject:
live variables, parameter effect, serialization and the gradient against finite differences.
`ModelChecks` is a part of `suite.Checker`, which provides the subject, batch and values."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from lossbench.check import inputs
from lossbench.check.blame import describe
from lossbench.check.catalog import Status, check
from lossbench.check.keras_tools import (
    features,
    keras_loss,
    loss_variables,
    np_array,
    tensor,
    tiny_model,
    value_and_grad,
)
from lossbench.check.subject import Finding, changed_loss


class ModelChecks:
    """Checks that need a model, a rebuilt loss or finite differences (see `suite.Checker`)."""

    # Provided by `suite.Checker`: the subject, the loss (as built and as adapted), the standard
    # batch, and `y_true(batch)` / `values(batch)` of the adapted loss.
    s: Any
    loss: Any
    adapted: Any
    batch: Any
    y_true: Any
    values: Any
    total: Any

    @check(
        "live-variables",
        "variables that change",
        catches=(
            "a `keras.Variable` of the loss assigned between Keras's compiled train steps having "
            "no effect (frozen under JAX's jit; use lossbench's `scaled` schedule instead)"
        ),
        runs=(
            "two compiled train steps of a one-layer model, assigning each variable of the loss "
            "between them"
        ),
    )
    def live_variables(self) -> Finding:
        variables = loss_variables(self.loss)
        if not variables:
            return Finding(Status.skipped, "the loss holds no keras.Variable")
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
                Status.failed,
                f"assigning a variable between compiled train steps has no effect on "
                f"{keras.backend.backend()}: " + "; ".join(frozen),
                "a variable held only by the loss is frozen into the compiled step (JAX); pass "
                "the changing factor as data (lossbench's `scaled` schedule) instead",
            )
        return Finding(Status.passed, f"{len(variables)} variable(s) seen by train steps")

    @check(
        "parameter-effect",
        "parameters that matter",
        catches=(
            "a numeric parameter that changes neither value nor gradient (floats, and ints given "
            "with `--param`; one named `epsilon` or `eps` is checked when it moves the value by "
            "more than a guard would, relative 1e-3, and named as a guard otherwise)"
        ),
        runs="value and gradient on the standard and extreme batches with each parameter changed",
    )
    def parameter_effect(self) -> Finding:
        acting, guards = self._guards()
        if not self.s.tunable and not acting:
            skipped = f" (guards not checked: {', '.join(guards)})" if guards else ""
            return Finding(Status.skipped, f"no numeric parameter to change{skipped}")
        # The standard batch and the extremes: a guard (a clip, a floor) acts only at the latter.
        extremes = inputs.extremes(self.s.task, self.s.n_nodes, len(self.batch))
        batches = [self.batch, *extremes.values()]

        def fingerprints(loss: Any, adapted: Any) -> list[tuple[float, np.ndarray] | str]:
            out: list[tuple[float, np.ndarray] | str] = []
            for batch in batches:
                yt = tensor(self.y_true(batch, adapted))
                try:
                    value, grad = value_and_grad(
                        lambda p, y=yt: self.total(y, p, loss, adapted), batch.pred
                    )
                except Exception as error:  # a crash is no effect: it is said as a failure
                    out.append(describe(error)[0])
                    continue
                out.append((value, np.zeros_like(batch.pred) if grad is None else grad))
            return out

        base = fingerprints(self.loss, self.adapted)
        if all(isinstance(b, str) for b in base):  # nothing to compare with: another check's
            why = f"the loss does not run on the checks' batches ({base[0]})"
            return Finding(Status.skipped, why)
        dead, crashed = [], []
        for name in [*self.s.tunable, *acting]:
            changed = changed_loss(self.s, name)
            if changed is None:
                continue
            new_value, loss = changed
            after = fingerprints(loss, self.s.adapt(loss))
            pairs = [(b, a) for b, a in zip(base, after, strict=True) if not isinstance(b, str)]
            errors = [a for _, a in pairs if isinstance(a, str)]
            if errors:
                crashed.append(f"{name}={new_value} raises {errors[0]}")
                continue
            if all(b[0] == a[0] and np.array_equal(b[1], a[1]) for b, a in pairs):
                dead.append(f"{name}: {self.s.params[name]} -> {new_value}")
        if crashed:
            return Finding(
                Status.failed,
                "the loss crashes with another parameter value: " + "; ".join(crashed),
                "a parameter's value must not change shapes or types the loss relies on "
                "(build tensors from it with keras.ops, not Python control flow on tensors)",
            )
        if dead:
            return Finding(
                Status.failed,
                "changing a parameter changes neither the value nor the gradient: "
                + "; ".join(dead),
                "check where the parameter enters: scaling probabilities before a cross-entropy "
                "that renormalises them is a no-op (scale logits instead)",
            )
        names = ", ".join([*self.s.tunable, *acting])
        skipped = f"; guards not checked: {', '.join(guards)}" if guards else ""
        return Finding(Status.passed, f"changing {names} changes the loss{skipped}")

    def _guards(self) -> tuple[list[str], list[str]]:
        """The parameters named as guards (`epsilon`) split by what they do: those that move the
        loss at the standard batch by more than a guard would (relative 1e-3) are coefficients
        and are checked; the others are guards and are only named."""
        acting, guards = [], []
        yt, pred = tensor(self.y_true(self.batch)), tensor(self.batch.pred)
        try:
            base = float(np_array(self.total(yt, pred)))
        except Exception:
            return [], list(self.s.guards)
        for name in self.s.guards:
            changed = changed_loss(self.s, name)
            if changed is None:
                guards.append(name)
                continue
            loss = changed[1]
            try:
                value = float(np_array(self.total(yt, pred, loss, self.s.adapt(loss))))
            except Exception:
                value = base
            moved = abs(value - base) > 1e-3 * max(abs(base), 1e-12)
            (acting if moved else guards).append(name)
        return acting, guards

    @check(
        "serialization",
        "save and load",
        catches=(
            "`get_config`/`from_config` losing parameters, or a `.keras` model with the loss not "
            "loading (register the class)"
        ),
        runs="`from_config(get_config())`, and a `.keras` model saved and loaded",
    )
    def serialization(self) -> Finding:
        if not isinstance(self.loss, keras.losses.Loss):
            return Finding(
                Status.skipped, "a function: only Loss subclasses carry their parameters"
            )
        params = dict(self.s.params)
        for name in self.s.tunable:
            changed = changed_loss(self.s, name)
            if changed is not None:
                params[name] = changed[0]
        loss = self.s.make(params)
        yt, pred = tensor(self.y_true(self.batch)), tensor(self.batch.pred)
        try:
            want = np_array(loss(yt, pred))
        except Exception:  # changed values crash it: `parameter-effect` says so; use the given
            loss = self.loss
            want = np_array(loss(yt, pred))
        try:
            again = type(loss).from_config(loss.get_config())
        except Exception as error:
            return Finding(
                Status.failed,
                f"from_config(get_config()) raises {describe(error)[0]}",
                "list every constructor argument in get_config",
            )
        got = np_array(again(yt, pred))
        if not np.allclose(got, want, rtol=1e-6, atol=1e-7):
            return Finding(
                Status.failed,
                f"from_config(get_config()) gives {float(got):.6g} instead of {float(want):.6g}",
                "list every constructor argument in get_config (Keras's lists only name and "
                "reduction)",
            )
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
                    Status.failed,
                    f"a model compiled with the loss does not load again: {describe(error)[0]}",
                    "register the class: @keras.saving.register_keras_serializable()",
                )
        if not np.allclose(got, want, rtol=1e-6, atol=1e-7):
            return Finding(
                Status.failed,
                "the loaded model's loss gives other values",
                "list every constructor argument in get_config",
            )
        return Finding(Status.passed, "config round trip and .keras save/load")

    @check(
        "gradient",
        "autodiff equals finite differences",
        catches="autodiff disagreeing with central finite differences",
        runs="autodiff against central finite differences at 12 entries",
    )
    def gradient(self) -> Finding:
        yt = tensor(self.y_true(self.batch))

        def total(p: Any) -> Any:
            return self.total(yt, p)

        _, auto = value_and_grad(total, self.batch.pred)
        if auto is None:
            return Finding(
                Status.skipped,
                "the gradient is None at the standard batch (the loss does "
                "not depend on y_pred there; see finite-gradients)",
            )
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
                Status.failed,
                f"autodiff and central differences differ by {worst:.2%} of the largest entry",
                "a custom gradient or a stop_gradient changes the math; check it against the "
                "plain formula",
            )
        return Finding(Status.passed, f"autodiff matches central differences ({worst:.1e})")
