"""The program-form probe: which forms it compares, which it keeps, and that it leaves the
weights, optimizer state and tables as a run pinned to the chosen form would have them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossbench.trainer import programs
from lossbench.trainer.programs import (
    MARGIN,
    ProgramForm,
    candidate_forms,
    choose_form,
    draws_random_numbers,
    runs_only_loop_layers,
)

ROOT = Path(__file__).resolve().parents[2]
LOSSBENCH = [sys.executable, "-c", "from lossbench.cli import main; main()"]

XLA_LOOP, XLA_4, GRAPH = ProgramForm(0, True), ProgramForm(4, True), ProgramForm(0, False)


def test_forms_are_named_as_summary_json_names_them():
    assert [f.name for f in (XLA_LOOP, XLA_4, GRAPH)] == [
        "xla loop", "xla unrolled x4", "graph loop",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("unroll", "jit", "backend", "expected"),
    [
        (None, None, "tensorflow", [XLA_LOOP, XLA_4, GRAPH]),
        (None, None, "jax", [XLA_LOOP, XLA_4]),  # JAX has no graph without XLA
        (0, None, "tensorflow", [XLA_LOOP, GRAPH]),
        (None, True, "tensorflow", [XLA_LOOP, XLA_4]),
        (None, False, "tensorflow", [GRAPH]),
    ],
)
def test_candidates_are_the_unpinned_settings_options_default_first(unroll, jit, backend,
                                                                    expected):  # fmt: skip
    default = ProgramForm(0 if unroll is None else unroll, True if jit is None else jit)
    assert candidate_forms(default, unroll, jit, backend, 4) == expected
    # A model with convolutions on TensorFlow starts from 4 steps per program; one that draws
    # random numbers (dropout) keeps XLA, whose numbers the graph's kernels would not draw.
    if backend == "tensorflow" and unroll is None and jit is None:
        assert candidate_forms(XLA_4, None, None, backend, 4) == [XLA_4, XLA_LOOP, GRAPH]
        assert candidate_forms(XLA_4, None, None, backend, 4, random=True) == [XLA_4, XLA_LOOP]


def test_only_models_of_dense_layers_are_left_unprobed():
    import keras

    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dropout(0.1),
                              keras.layers.BatchNormalization()])  # fmt: skip
    nested = keras.Sequential([keras.Input((4,)), dense, keras.layers.Dense(2)])
    conv = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3),
                             keras.layers.Flatten(), keras.layers.Dense(2)])  # fmt: skip
    gru = keras.Sequential([keras.Input((3, 4)), keras.layers.GRU(2)])
    assert runs_only_loop_layers(dense) and runs_only_loop_layers(nested)
    assert not runs_only_loop_layers(conv) and not runs_only_loop_layers(gru)
    assert draws_random_numbers(dense) and not draws_random_numbers(conv)


class _FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _Runner:
    """A stand-in whose every step takes `seconds[form]` of a fake clock and moves its state."""

    def __init__(self, clock, seconds):
        self.clock, self.seconds = clock, seconds
        self.state, self.form, self.choice, self.calls = 0, None, None, []

    def use(self, form, fresh=False):
        self.form = form

    def run(self, idx, n_steps, multiplier):
        assert idx.shape == (10, 8) and len(multiplier) == 10  # the loop's chunk shape
        self.calls.append((self.form, n_steps))
        self.clock.now += self.seconds[self.form] * n_steps
        self.state += n_steps

    def snapshot(self):
        return self.state

    def restore(self, state):
        self.state = state


@pytest.mark.parametrize(
    ("unrolled", "graph", "expected"),
    [
        (0.01 / (MARGIN + 0.1), 0.01, XLA_4),  # more than MARGIN faster: chosen
        (0.01 / (MARGIN - 0.1), 0.01, XLA_LOOP),  # faster, but within the margin: the default
        (0.01, 0.001, GRAPH),
    ],
)
def test_the_probe_keeps_the_fastest_form_only_past_the_margin(monkeypatch, unrolled, graph,
                                                               expected):  # fmt: skip
    clock = _FakeClock()
    monkeypatch.setattr(programs.time, "perf_counter", clock)
    runner = _Runner(clock, {XLA_LOOP: 0.01, XLA_4: unrolled, GRAPH: graph})
    choice = choose_form(runner, [XLA_LOOP, XLA_4, GRAPH], n_train=100, batch_size=8, capacity=10)
    assert choice.form == expected and runner.form == expected and runner.choice is choice
    assert runner.state == 0  # every form's steps were undone
    assert choice.rates["xla loop"] == pytest.approx(100.0)
    assert choice.rates["graph loop"] == pytest.approx(1 / graph)
    # Each form: one call that compiles, then timed calls of PROBE_STEPS steps.
    assert {n for _, n in runner.calls} == {programs.PROBE_STEPS}
    assert choice.summary()["form"] == expected.name
    assert set(choice.summary()["probed"]) == {"xla loop", "xla unrolled x4", "graph loop"}


CONV = """
import keras
from keras import layers

def tiny(input_shape):
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    return keras.Model(inputs, layers.GlobalAveragePooling2D()(x))
"""


def _run(tmp_path, name, *args):
    folder = tmp_path / name
    proc = subprocess.run(
        [*LOSSBENCH, "model=custom", f"model.target={tmp_path / 'conv.py'}:tiny", "data=sklearn",
         "data.name=digits", "data.input_shape=[8,8,1]", "loss=temperature",
         "trainer.epochs=2", "trainer.progress=false", f"hydra.run.dir={folder}", *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_probed_run_writes_the_tables_of_a_run_pinned_to_its_choice(backend, tmp_path):
    """The probe runs each form for a few steps and puts everything back: the run then trains
    exactly as one pinned to the chosen form from the start, and says what it chose."""
    (tmp_path / "conv.py").write_text(CONV)
    probed = _run(tmp_path, "probed", f"backend={backend}")
    program = json.loads((probed / "summary.json").read_text())["program"]
    names = {"xla loop", "xla unrolled x4"} | ({"graph loop"} if backend == "tensorflow" else set())
    assert set(program["probed"]) == names and program["form"] in names
    assert all(rate > 0 for rate in program["probed"].values())
    form = next(f for f in (XLA_LOOP, XLA_4, GRAPH) if f.name == program["form"])
    pinned = _run(tmp_path, "pinned", f"backend={backend}", f"trainer.unroll={form.unroll}",
                  f"trainer.jit_compile={str(form.jit_compile).lower()}")  # fmt: skip
    assert json.loads((pinned / "summary.json").read_text())["program"] == {"form": form.name}
    for table in ("steps.csv", "grad_norms.csv", "epochs.csv"):
        ours, theirs = pd.read_csv(probed / table), pd.read_csv(pinned / table)
        pd.testing.assert_frame_equal(ours, theirs, check_exact=True)


@pytest.mark.long
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_every_program_form_trains_the_same_tables(backend, tmp_path):
    """Each form a probe may choose trains the same run, to float32 round-off."""
    (tmp_path / "conv.py").write_text(CONV)
    forms = [XLA_LOOP, XLA_4] + ([GRAPH] if backend == "tensorflow" else [])
    tables = []
    for k, form in enumerate(forms):
        folder = _run(tmp_path, f"form{k}", f"backend={backend}", f"trainer.unroll={form.unroll}",
                      f"trainer.jit_compile={str(form.jit_compile).lower()}")  # fmt: skip
        tables.append(pd.read_csv(folder / "steps.csv"))
    for other in tables[1:]:
        for column in ("loss", "grad_norm"):
            np.testing.assert_allclose(other[column], tables[0][column], rtol=2e-4)
