"""A user's own model (model=custom): N-D inputs, layers' state, seeded weights, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossbench.config.schema import Task
from lossbench.data.load import make_dataset
from lossbench.errors import ConfigError
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "my_models.py"
DIGITS = ["data=sklearn", "data.name=digits", "data.input_shape=[8,8,1]"]
CNN = ["model=custom", f"model.target={EXAMPLE}:small_cnn"]
LOSSBENCH = [sys.executable, "-c", "from lossbench.cli import main; main()"]

MODELS = """
import keras
import numpy as np

seen = []

def flat(input_shape):
    return keras.layers.Dense(4, name="only")

def records(input_shape):
    seen.append(tuple(input_shape))
    return keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(4, name="d")])

def raises(input_shape):
    raise RuntimeError("no GPU here")

def not_a_model(input_shape):
    return "a string"

def wrong_width(input_shape):
    return keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(3)])

def nan_weights(input_shape):
    return keras.layers.Dense(4, kernel_initializer=keras.initializers.Constant(float("nan")))

def huge(input_shape, units=4096):
    return keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(units),
                             keras.layers.Dense(units)])
"""


@pytest.fixture
def models(tmp_path: Path) -> Path:
    path = tmp_path / "models.py"
    path.write_text(MODELS)
    return path


def test_digits_as_images_keep_their_shape():
    data = make_dataset(Task.multiclass, compose_config(["loss=temperature", *DIGITS]).data, 0)
    assert data.input_shape == (8, 8, 1) and data.train.x.shape[1] == 64
    assert data.columns["input_shape"] == [8, 8, 1]


def test_an_npz_image_array_keeps_its_shape(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "img.npz", x=rng.random((60, 4, 5, 2)), y=np.tile([0, 1], 30))
    cfg = compose_config(["loss=bce", "data=table", f"data.path={tmp_path / 'img.npz'}",
                          "data.target=y"])  # fmt: skip
    data = make_dataset(Task.binary, cfg.data, 0)
    assert data.input_shape == (4, 5, 2) and data.train.x.shape[1] == 40


@pytest.mark.parametrize(
    ("target", "extra", "key", "says"),
    [
        ("missing.py:cnn", [], "model.target", "does not exist"),
        ("{models}:nope", [], "model.target", "a name defined in"),
        ("{models}:raises", [], "model.target", "RuntimeError: no GPU here"),
        ("{models}:not_a_model", [], "model.target", "returned str"),
        ("{models}:wrong_width", ["model.head=false"], "model.target", "(batch, 3)"),
        ("{models}:nan_weights", [], "model.target", "NaN or infinite values"),
        ("{models}:records", ["data.input_shape=[8,9,1]"], "data.input_shape", "product 72"),
    ],
)  # fmt: skip
def test_bad_models_are_refused_by_key(models, target, extra, key, says):
    from lossbench.run.experiment import build_experiment

    target = target.format(models=models)
    with pytest.raises(ConfigError) as error:
        build_experiment(compose_config(["loss=temperature", *DIGITS, "model=custom",
                                         f"model.target={target}", *extra]))  # fmt: skip
    assert error.value.key == key
    assert says in str(error.value)


def test_an_mlp_key_beside_a_users_model_is_refused_as_hydra_composes(models):
    from hydra.errors import ConfigCompositionException

    from lossbench.errors import one_line

    with pytest.raises(ConfigCompositionException) as caught:
        compose_config(["loss=temperature", *DIGITS, "model=custom",
                        f"model.target={models}:records", "model.hidden=[8]"])  # fmt: skip
    line = one_line(caught.value)
    assert line.startswith("invalid value for `model.hidden`") and "model=mlp" in line, line


def test_a_model_beyond_the_memory_budget_is_refused_before_training(models, monkeypatch):
    import lossbench.run.experiment as experiment
    from lossbench.run.experiment import build_experiment

    monkeypatch.setattr(experiment, "memory_budget", lambda: 200 * 2**20)
    with pytest.raises(ConfigError, match="parameters") as error:
        build_experiment(compose_config(["loss=temperature", *DIGITS, "model=custom",
                                         f"model.target={models}:huge"]))  # fmt: skip
    assert error.value.key == "model.target"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_model_too_big_to_allocate_is_refused_from_its_shapes(models, tmp_path, backend):
    """A trillion parameters: refused by the budget before one weight is allocated (allocating
    them first aborted JAX with an XLA fatal error and left summary.json saying running)."""
    run = tmp_path / "run"
    proc = subprocess.run(
        [*LOSSBENCH, "loss=temperature", *DIGITS, "model=custom", f"model.target={models}:huge",
         "+model.params.units=1000000", f"backend={backend}", f"hydra.run.dir={run}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, "KERAS_BACKEND": backend},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("lossbench: error: invalid value for `model.target`: expected a model "
                           "that fits this machine's memory budget")  # fmt: skip
    units = 10**6  # 8x8 pixels -> units -> units -> the 10 classes' logits
    n_params = (64 + 1) * units + (units + 1) * units + (units + 1) * 10
    assert f"{n_params:,} parameters" in line, line
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "error" and summary["message"] == line.removeprefix(
        "lossbench: error: "
    )


def test_a_bad_model_is_one_line_and_exit_2(models, tmp_path):
    proc = subprocess.run(
        [*LOSSBENCH, "loss=temperature", *DIGITS, "model=custom",
         f"model.target={models}:not_a_model", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "`model.target`" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "epochs.csv").exists()


def test_the_backbone_receives_the_input_shape_and_gets_the_tasks_head(models):
    from lossbench.run.experiment import build_experiment

    exp = build_experiment(compose_config(["loss=temperature", *DIGITS, "model=custom",
                                           f"model.target={models}:records"]))  # fmt: skip
    assert tuple(exp.model.get_layer("input_shape").output.shape[1:]) == (8, 8, 1)
    assert tuple(exp.model.output.shape[1:]) == (10,)
    assert exp.layer_names[-1] == "head"


@pytest.mark.long  # the MLP's runner reuse: tests/trainer/test_loop.py on every `make test`
def test_the_same_seed_writes_the_same_tables_fresh_or_reused(tmp_path):
    from lossbench.run.experiment import RunnerCache
    from lossbench.run.training import run_experiment

    runners = RunnerCache()

    def run(seed: int, folder: str) -> Path:
        cfg = compose_config(["loss=temperature", *DIGITS, *CNN, f"seed={seed}",
                              "trainer.epochs=1", "trainer.progress=false"])  # fmt: skip
        (tmp_path / folder).mkdir()
        run_experiment(cfg, tmp_path / folder, runners=runners)
        return tmp_path / folder

    fresh = run(1, "fresh")
    run(0, "other")  # reuses the compiled runner
    reused = run(1, "reused")  # reuses it again, reseeded
    for table in ("steps.csv", "grad_norms.csv", "epochs.csv"):
        assert (fresh / table).read_bytes() == (reused / table).read_bytes(), table
    assert (fresh / "steps.csv").read_bytes() != (tmp_path / "other" / "steps.csv").read_bytes()
    layers = list(dict.fromkeys(pd.read_csv(fresh / "grad_norms.csv")["layer"]))
    assert layers == ["conv_1", "bn_1", "conv_2", "bn_2", "head"]


PROBE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from lossbench.config.compose import compose
    from lossbench.run.experiment import build_experiment
    from lossbench.run.evaluation import Evaluation
    from lossbench.trainer import train

    exp = build_experiment(compose(sys.argv[1:]))
    import keras  # after the backend is chosen
    def moving(model):
        return {v.path: keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables
                if "moving" in v.path}
    before = moving(exp.model)
    evaluation = Evaluation(exp)
    result = train(exp.runner, len(exp.data.train), exp.layer_names, exp.cfg.trainer,
                   exp.cfg.seed, evaluation)
    exp.runner.sync()
    after = moving(exp.model)
    changed = [k for k in before if not np.allclose(before[k], after[k])]
    x = exp.data.val.x[:64]
    same = bool(np.array_equal(exp.runner.predict(x), exp.runner.predict(x)))
    print(json.dumps({"changed": changed, "n": len(before), "same": same,
                      "accuracy": result.epochs[-1]["accuracy"]}))
    """
)


@pytest.mark.long
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_cnn_with_batchnorm_and_dropout_trains_on_digits(backend, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "loss=temperature", *DIGITS, *CNN, f"backend={backend}",
         "trainer.epochs=4", "trainer.batch_size=32", "trainer.learning_rate=0.01"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["n"] == 4 and len(out["changed"]) == 4  # both layers' mean and variance moved
    assert out["same"]  # evaluation: dropout off, moving statistics used (deterministic)
    assert out["accuracy"] > 0.6  # chance is 0.1


UNROLL_PROBE = textwrap.dedent(
    """
    import json, sys
    from lossbench.config.compose import compose
    from lossbench.run.experiment import build_experiment
    from lossbench.run.evaluation import Evaluation
    from lossbench.trainer import train

    losses = {}
    for unroll in (0, 3):
        exp = build_experiment(compose([*sys.argv[1:], f"trainer.unroll={unroll}"]))
        result = train(exp.runner, len(exp.data.train), exp.layer_names, exp.cfg.trainer,
                       exp.cfg.seed, Evaluation(exp))
        losses[unroll] = result.records.loss.tolist()
    print(json.dumps(losses))
    """
)


@pytest.mark.long
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_unrolled_steps_train_as_the_loop_does(backend, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", UNROLL_PROBE, "loss=temperature", *DIGITS, *CNN,
         f"backend={backend}", "trainer.epochs=1", "trainer.batch_size=128"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    losses = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(losses["0"]) == len(losses["3"]) == 12  # 11 full batches and a partial one
    np.testing.assert_allclose(losses["3"], losses["0"], rtol=2e-4)
