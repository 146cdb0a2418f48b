"""Which program form runs a model's steps: a short timed probe when the model's is not known.

A chunk of steps runs in one of a few forms (`ProgramForm`): one XLA-compiled loop (the MLP's
fastest), XLA programs of a few steps written out one after another, or, on TensorFlow, a graph
loop without XLA. Which is fastest depends on the model: XLA's CPU backend runs some operations
slowly inside a loop (grouped, that is depthwise, convolutions; the gradients of convolutions in
other layouts on TensorFlow), and slowly at all in some cases (a separable convolution's step ran
5x faster on TensorFlow without XLA). A model of dense layers, normalization and dropout only
runs the loop, the form `make bench` measures against the anchors. For any other model, unless
the config pins the form (`trainer.unroll`, `trainer.jit_compile`), `choose_form` times each
candidate for a few steps on the first batches, keeps the fastest when it beats the default by
`MARGIN` (so that a model near a tie keeps one form, and its tables, run after run), and puts the
weights and optimizer state back as they were. The choice and the rates go into summary.json.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Layers whose step the loop form runs at its best: a model of these only is not probed.
LOOP_LAYERS = frozenset(
    {
        "InputLayer",
        "Dense",
        "Dropout",
        "Activation",
        "BatchNormalization",
        "LayerNormalization",
        "Flatten",
        "Reshape",
        "Concatenate",
        "Add",
        "ReLU",
    }
)
# A form replaces the default only when it runs at least this much faster in the probe.
MARGIN = 1.3
PROBE_STEPS = 4  # steps per timed call
PROBE_SECONDS = 0.3  # timed calls of a form go on while this long has not passed
PROBE_CALLS = 20  # and stop after this many


@dataclass(frozen=True)
class ProgramForm:
    """How a chunk's steps run: `unroll` 0 is one loop per chunk, k > 0 programs of k steps
    called in turn; `jit_compile` False is TensorFlow's graph without XLA."""

    unroll: int = 0
    jit_compile: bool = True

    @property
    def name(self) -> str:
        """The form as summary.json names it: "xla loop", "xla unrolled x4", "graph loop"."""
        kind = "xla" if self.jit_compile else "graph"
        return f"{kind} {'loop' if not self.unroll else f'unrolled x{self.unroll}'}"


@dataclass
class ProgramChoice:
    """The form a runner trains with, and the probe's rates (steps/s) when it probed."""

    form: ProgramForm
    rates: dict[str, float] = field(default_factory=dict)
    probe_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """summary.json's `program`: the form, and the probe's steps/s per form."""
        out: dict[str, Any] = {"form": self.form.name}
        if self.rates:
            out["probed"] = {name: round(rate, 1) for name, rate in self.rates.items()}
            out["probe_seconds"] = round(self.probe_seconds, 3)
        return out


def runs_only_loop_layers(model: Any) -> bool:
    """Whether every layer of `model` (and of the models nested in it) is in `LOOP_LAYERS`."""
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        nested = getattr(layer, "layers", None)
        if nested:
            stack.extend(nested)
        elif type(layer).__name__ not in LOOP_LAYERS:
            return False
    return True


def draws_random_numbers(model: Any) -> bool:
    """Whether `model` draws random numbers in training (a layer with a Keras seed generator:
    dropout, noise)."""
    return any("seed_generator" in v.path for v in model.non_trainable_variables)


def candidate_forms(
    default: ProgramForm,
    unroll: int | None,
    jit_compile: bool | None,
    backend: str,
    unrolled: int,
    random: bool = False,
) -> list[ProgramForm]:
    """The forms a probe compares, the default first: each unpinned setting's options (loop or
    `unrolled` steps per program; on TensorFlow, XLA or its graph, whose loop is its only form).

    A `random` model (`draws_random_numbers`) is not offered TensorFlow's graph: its kernels
    draw other numbers than XLA's for the same seed, so dropout would train on other masks, and
    every form must train the same run (to float32 round-off).
    """
    unrolls = [0, unrolled] if unroll is None else [unroll]
    free_jit = jit_compile is None and backend == "tensorflow" and not random
    jits = [True, False] if free_jit else [default.jit_compile]
    forms = [ProgramForm(u, j) for j in jits for u in unrolls if j or u == 0]
    return [default, *(f for f in dict.fromkeys(forms) if f != default)]


def choose_form(
    runner: Any, candidates: list[ProgramForm], n_train: int, batch_size: int, capacity: int
) -> ProgramChoice:
    """Time each candidate on the training data's first batches and leave `runner` using the
    fastest (the first, the default, unless another is `MARGIN` faster), with its weights and
    optimizer state as they were before; the choice is also `runner.choice`."""
    if len(candidates) == 1:
        runner.use(candidates[0])
        return runner.choice
    t0 = time.perf_counter()
    state = runner.snapshot()
    n_full = max(n_train // batch_size, 1)
    steps = min(PROBE_STEPS, n_full)
    rows = np.arange(min(n_train, n_full * batch_size), dtype="int32")
    idx = np.zeros((capacity, min(batch_size, n_train)), dtype="int32")
    idx[:steps] = rows[: steps * idx.shape[1]].reshape(steps, -1)
    multiplier = np.ones(capacity, dtype="float32")
    rates = {}
    for form in candidates:
        runner.use(form)
        runner.run(idx, steps, multiplier)  # compiles, and warms up
        # The fastest call: a slow spell of a busy machine lengthens some calls, not all.
        durations: list[float] = []
        start = time.perf_counter()
        while len(durations) < PROBE_CALLS and time.perf_counter() - start < PROBE_SECONDS:
            t = time.perf_counter()
            runner.run(idx, steps, multiplier)
            durations.append(time.perf_counter() - t)
        rates[form.name] = steps / min(durations)
        runner.restore(state)
    best = max(candidates, key=lambda f: rates[f.name])
    chosen = best if rates[best.name] >= MARGIN * rates[candidates[0].name] else candidates[0]
    runner.use(chosen)
    runner.choice = ProgramChoice(chosen, rates, time.perf_counter() - t0)
    return runner.choice
