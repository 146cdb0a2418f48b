"""`loss=custom`: a user's loss trains like a built-in variant (tables, sweeps), bad targets are
one line naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossbench.config.compose import compose
from lossbench.errors import ConfigError
from tests.conftest import TINY
from tests.test_cli import lossbench

EXAMPLES = Path(__file__).parents[1] / "check" / "example_losses.py"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "mine.py").write_text(EXAMPLES.read_text())
    return tmp_path


@pytest.mark.slow
def test_a_custom_loss_trains_and_writes_the_usual_tables(workdir):
    run = workdir / "run"
    proc = lossbench("loss=custom", "loss.target=mine.py:GoodFocal", "loss.task=binary",
                     "+loss.params.gamma=1.5", *TINY, f"hydra.run.dir={run}",
                     cwd=workdir)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["loss"] == "custom" and summary["task"] == "binary"
    steps = pd.read_csv(run / "steps.csv")
    assert len(steps) == summary["steps"] and np.isfinite(steps["loss"]).all()
    assert {"roc_auc", "minority_recall"} <= set(pd.read_csv(run / "epochs.csv").columns)


@pytest.mark.slow
def test_a_sweep_over_a_custom_parameter_and_group_ids_in_y_true(workdir):
    sweep = workdir / "sweep"
    proc = lossbench("-m", "loss=custom", "loss.target=mine.py:GoodGroupScaled",
                     "loss.task=grouped", "+loss.params.epsilon=0.001,0.1", *TINY,
                     f"hydra.sweep.dir={sweep}", cwd=workdir)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(sweep / "summary.csv")
    assert list(table["loss.params.epsilon"]) == [0.001, 0.1]
    assert (table["status"] == "ok").all()
    comparison = pd.read_csv(sweep / "comparison.csv")
    assert len(comparison) == 2 and "worst_group_mse_mean" in comparison.columns


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ([], "loss.target"),
        (["loss.target=nowhere.py:Loss"], "loss.target"),
        (["loss.target=not a target"], "loss.target"),
        (["loss.target=mine.py:GoodFocal", "loss.task=grid"], "loss.task"),
        (["loss.target=mine.py:GoodFocal"], "loss.task"),  # no default could be right
        (
            ["loss.target=mine.py:GoodFocal", "loss.task=binary", "+loss.params.gamma=nan"],
            "loss.params.gamma",
        ),
    ],
)
def test_bad_custom_configs_fail_validation_naming_the_key(workdir, monkeypatch, overrides, key):
    monkeypatch.chdir(workdir)
    with pytest.raises(ConfigError) as info:
        compose(["loss=custom", *overrides])
    assert info.value.key == key


@pytest.mark.slow
def test_an_unknown_parameter_is_one_line_naming_it(workdir):
    run = workdir / "run"
    proc = lossbench("loss=custom", "loss.target=mine.py:GoodFocal", "+loss.params.beta=1",
                     "loss.task=binary", *TINY, f"hydra.run.dir={run}", cwd=workdir)  # fmt: skip
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("lossbench: error: invalid value for `loss.params.beta`")
    assert "gamma" in line and "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.long
def test_users_code_that_exits_or_raises_ends_its_job_as_an_error_naming_the_target(workdir):
    (workdir / "exits.py").write_text("import sys\nprint('loading', end='')\nsys.exit(0)\n")
    (workdir / "broken.py").write_text(
        "def f(y_true, y_pred):\n    raise ValueError('my loss is broken')\n"
    )
    sweep = workdir / "sweep"
    targets = "loss.target=exits.py:f,broken.py:f,mine.py:GoodFocal"
    proc = lossbench("-m", "loss=custom", targets, "loss.task=binary", *TINY,
                     f"hydra.sweep.dir={sweep}", cwd=workdir)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    table = pd.read_csv(sweep / "summary.csv")
    assert list(table["status"]) == ["error", "error", "ok"]
    assert "sys.exit(0) when imported" in table["message"][0]
    assert "(ValueError: my loss is broken)" in table["message"][1]
    assert all(m.startswith("invalid value for `loss.target`") for m in table["message"][:2])
    run = workdir / "run"
    single = lossbench("loss=custom", "loss.target=broken.py:f", "loss.task=binary", *TINY,
                       f"hydra.run.dir={run}", cwd=workdir)  # fmt: skip
    assert single.returncode == 2
    (line,) = single.stderr.strip().splitlines()
    assert "`loss.target`" in line and "my loss is broken" in line
    assert json.loads((run / "summary.json").read_text())["status"] == "error"


def _package_that_imports_keras(root: Path) -> Path:
    """`kpkg.losses:mse` in `root`, whose package imports Keras when it is imported (and says
    so in a file, to show when that happens)."""
    package = root / "kpkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        f"open({str(root / 'imported')!r}, 'w').close()\nimport keras\n"
    )
    (package / "losses.py").write_text(
        "import keras\ndef mse(y_true, y_pred):\n"
        "    return keras.ops.mean(keras.ops.square(y_true[:, :1] - y_pred), axis=-1)\n"
    )
    return root


def test_a_module_target_is_checked_without_running_its_package(tmp_path, monkeypatch):
    from lossbench.user_code import module_spec, target_problems

    monkeypatch.syspath_prepend(str(_package_that_imports_keras(tmp_path)))
    assert list(target_problems("loss.target", "kpkg.losses:mse")) == []
    assert module_spec("kpkg.losses").origin == str(tmp_path / "kpkg" / "losses.py")
    assert module_spec("kpkg.nothing") is None and module_spec("kpkg.losses.mse") is None
    assert module_spec("json.decoder") is not None and module_spec("no_such_top") is None
    (key, expected, _), = target_problems("loss.target", "kpkg.nothing:mse")  # fmt: skip
    assert key == "loss.target" and expected == "an importable module"
    assert not (tmp_path / "imported").exists()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_a_users_package_that_imports_keras_runs_on_either_backend(tmp_path, backend):
    root = _package_that_imports_keras(tmp_path)
    run = tmp_path / "run"
    proc = lossbench("loss=custom", "loss.target=kpkg.losses:mse", "loss.task=grouped",
                     f"backend={backend}", *TINY, f"hydra.run.dir={run}", cwd=tmp_path,
                     env={"PYTHONPATH": str(root), "KERAS_BACKEND": "torch"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run / "summary.json").read_text())["backend"] == backend
    assert "absl::InitializeLog" not in proc.stderr and "oneDNN" not in proc.stderr
