"""The held-out test split, the selected epoch and the predictions behind a run's numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, brier_score_loss

from lossbench.config.schema import Task
from lossbench.data.load import make_dataset
from lossbench.data.synthetic import SPURIOUS_GROUPS
from lossbench.errors import ConfigError
from lossbench.run.metrics import binary_metrics, multiclass_metrics, selected_metric
from lossbench.run.training import run_experiment
from tests.conftest import compose_config


def _disjoint(data) -> None:
    parts = [set(s.ids.tolist()) for s in (data.train, data.val, data.test)]
    assert all(parts), "every split has rows"
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_synthetic_test_split_is_disjoint_and_leaves_the_other_splits_as_they_were():
    cfg = compose_config(["loss=bce", "data.n_samples=1000", "data.test_fraction=0.25"])
    data = make_dataset(Task.binary, cfg.data, 0)
    _disjoint(data)
    assert len(data.test) == 250 and len(data.val) == 200 and len(data.train) == 550
    plain = make_dataset(Task.binary, compose_config(["loss=bce", "data.n_samples=1000"]).data, 0)
    assert plain.test is None
    np.testing.assert_array_equal(plain.val.ids, data.val.ids)  # validation rows unchanged


def test_table_test_split_is_stratified_and_disjoint():
    cfg = compose_config(["loss=bce", "data=sklearn", "data.name=breast_cancer",
                          "data.test_fraction=0.2"])  # fmt: skip
    data = make_dataset(Task.binary, cfg.data, 0)
    _disjoint(data)
    rates = [float(np.mean(s.y)) for s in (data.train, data.val, data.test)]
    assert max(rates) - min(rates) < 0.02  # each class split in the same proportion
    assert data.columns["rows"]["test"] == len(data.test)


def test_a_split_column_marks_test_rows(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.standard_normal(60), "y": np.tile([0, 1], 30),
                          "part": ["train"] * 40 + ["val"] * 10 + ["test"] * 10})  # fmt: skip
    frame.to_csv(tmp_path / "t.csv", index=False)
    cfg = compose_config(["loss=bce", "data=table", f"data.path={tmp_path / 't.csv'}",
                          "data.target=y", "data.split=part"])  # fmt: skip
    data = make_dataset(Task.binary, cfg.data, 0)
    assert (len(data.train), len(data.val), len(data.test)) == (40, 10, 10)
    assert data.test.ids.min() == 50


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["data.test_fraction=0.85"], "data.test_fraction"),  # nothing left to train on
        (["data.n_samples=100", "data.positive_rate=0.05", "data.test_fraction=0.01"],
         "data.test_fraction"),  # a test split without the minority class
        (["data=sklearn", "data.name=breast_cancer", "data.test_fraction=0.001"],
         "data.test_fraction"),  # a class without test rows
        (["trainer.select=best"], "trainer.select"),
        (["trainer.select=best:worst_group_mse"], "trainer.select"),  # a regression metric
    ],
)  # fmt: skip
def test_bad_split_or_selection_is_refused_by_key(overrides, key):
    from lossbench.run.experiment import _checked_data

    with pytest.raises(ConfigError) as error:
        cfg = compose_config(["loss=bce", *overrides])
        _checked_data(cfg, Task.binary)
    assert error.value.key == key


def test_selection_names_the_closest_metric():
    with pytest.raises(ConfigError, match="did you mean `pr_auc`"):
        selected_metric("best:pr_auk", lambda: ["val_loss", "pr_auc", "accuracy_group_0"])
    assert selected_metric("best:accuracy_group_3", lambda: ["accuracy_group_0"], exact=False)
    assert selected_metric("last", lambda: pytest.fail("`last` needs no metric names")) is None


def test_spurious_groups_pair_label_and_attribute():
    cfg = compose_config(["loss=bce", "data.spurious=0.9", "data.positive_rate=0.5"])
    data = make_dataset(Task.binary, cfg.data, 0)
    y, groups = data.train.y[:, 0], data.train.groups
    attribute = groups % 2
    np.testing.assert_array_equal(groups // 2, y)
    assert abs(np.mean(attribute == y) - 0.9) < 0.02
    # No group one-hot among the features (it would give the label away): the attribute is one.
    assert data.train.x.shape[1] == cfg.data.n_features + 1
    np.testing.assert_array_equal(data.train.x[:, -1] > 0, attribute == 1)
    assert data.columns["groups"] == dict(enumerate(SPURIOUS_GROUPS))


def _run(tmp_path, *overrides):
    cfg = compose_config([*overrides, "trainer.progress=false"])
    summary = run_experiment(cfg, tmp_path).as_json()
    epochs = pd.read_csv(tmp_path / "epochs.csv")
    predictions = pd.read_parquet(tmp_path / "predictions.parquet")
    assert (
        json.loads((tmp_path / "summary.json").read_text())["selected_epoch"]
        == summary["selected_epoch"]
    )
    return summary, epochs, predictions


def test_best_epoch_metrics_are_that_epochs_row_and_predictions_rescore_them(tmp_path):
    summary, epochs, pred = _run(
        tmp_path, "loss=bce", "data.n_samples=1200", "data.n_features=8", "data.n_groups=3",
        "data.test_fraction=0.2", "trainer.epochs=4", "trainer.batch_size=32",
        "trainer.select=best:pr_auc",
    )  # fmt: skip
    best = int(epochs["pr_auc"].idxmax())
    assert summary["selected_epoch"] == best
    row = epochs.iloc[best].drop(["epoch", "step"]).to_dict()
    assert summary["metrics"] == pytest.approx(row, rel=1e-12)
    for split, metrics in (("val", summary["metrics"]), ("test", summary["test_metrics"])):
        rows = pred[pred["split"] == split]
        y, p = rows["y_true"].to_numpy(), rows["y_pred"].to_numpy()
        assert binary_metrics(y, p)["pr_auc"] == pytest.approx(metrics["pr_auc"], rel=1e-12)
        assert balanced_accuracy_score(y, p >= 0.5) == pytest.approx(metrics["balanced_accuracy"])
        assert brier_score_loss(y, p) == pytest.approx(metrics["brier"], rel=1e-6)
        worst = min(accuracy_score(y[rows["group"] == g], p[rows["group"] == g] >= 0.5)
                    for g in range(3))  # fmt: skip
        assert worst == pytest.approx(metrics["worst_group_accuracy"])
    test_ids = set(pred.loc[pred["split"] == "test", "index"])
    assert len(test_ids) == 240 and not test_ids & set(pred.loc[pred["split"] == "val", "index"])


def test_multiclass_predictions_are_class_probabilities_that_rescore(tmp_path):
    summary, epochs, pred = _run(
        tmp_path, "loss=temperature", "data.n_samples=900", "data.n_features=8",
        "trainer.epochs=2", "trainer.batch_size=32",
    )  # fmt: skip
    assert summary["selected_epoch"] == len(epochs) - 1  # last, the default
    assert "test_metrics" not in summary
    prob = pred[[f"y_pred_{k}" for k in range(5)]].to_numpy()
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-9)
    onehot = np.eye(5)[pred["y_true"].to_numpy()]
    rescored = multiclass_metrics(onehot, np.log(prob))
    for name in ("accuracy", "balanced_accuracy", "brier", "ece"):
        assert rescored[name] == pytest.approx(summary["metrics"][name], rel=1e-6, abs=1e-9)


def test_a_sweep_row_shows_test_metrics_and_says_so(tmp_path):
    from lossbench.store.run_folder import RunFolder, Status
    from lossbench.sweep.aggregate import job_row, metrics_split, summary_frame

    RunFolder(tmp_path).write({"status": Status.ok, "loss": "bce", "seed": 0,
                               "metrics": {"val_loss": 0.3, "accuracy": 0.9},
                               "test_metrics": {"accuracy": 0.8}})  # fmt: skip
    row = job_row(tmp_path, tmp_path)
    assert (row["split"], row["accuracy"], row["val_loss"]) == ("test", 0.8, 0.3)
    assert metrics_split(summary_frame(tmp_path)) == "test"
    assert not math.isnan(row["val_loss"])


def test_a_sweep_with_a_metric_the_task_lacks_is_refused_before_any_job(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", "from lossbench.cli import main; main()", "-m", "loss=bce,focal",
         "trainer.select=best:mse", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "`trainer.select`" in lines[0] and "worst_group_accuracy" in lines[0]
    assert not (tmp_path / "sweep").exists()
