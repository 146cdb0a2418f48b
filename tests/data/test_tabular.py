"""Real data: tables (CSV, Parquet, .npz) and scikit-learn's bundled datasets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from lossbench.config.compose import compose
from lossbench.config.schema import Task
from lossbench.data.load import make_dataset
from lossbench.data.tabular import infer_task
from lossbench.errors import ConfigError
from tests.conftest import TINY_TRAINING
from tests.test_cli import lossbench


def _table(n=300, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "a": rng.normal(size=n), "b": rng.normal(size=n) * 5 + 3,
        "city": rng.choice(["paris", "lyon", "nice"], size=n),
        "label": (rng.random(n) < 0.3).astype(int),
        "price": rng.normal(size=n) * 10,
        "kind": rng.integers(0, 4, size=n),
    })  # fmt: skip
    return frame


def _data(overrides):
    cfg = compose(overrides)
    return cfg, make_dataset(cfg.loss.training_task(), cfg.data, cfg.seed)


def test_breast_cancer_is_binary_standardised_on_train_and_split_stratified():
    _, data = _data(["data=sklearn", "data.name=breast_cancer"])
    bunch = load_breast_cancer()
    assert data.task is Task.binary and data.train.x.shape[1] == bunch.data.shape[1]
    assert len(data.train) + len(data.val) == len(bunch.target)
    np.testing.assert_allclose(data.train.x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(data.train.x.std(axis=0), 1, atol=1e-4)
    rate = bunch.target.mean()
    assert data.train.y.mean() == pytest.approx(rate, abs=0.01)
    assert data.val.y.mean() == pytest.approx(rate, abs=0.02)
    _, again = _data(["data=sklearn", "data.name=breast_cancer"])
    np.testing.assert_array_equal(data.val.ids, again.val.ids)  # deterministic by seed
    _, other = _data(["data=sklearn", "data.name=breast_cancer", "seed=1"])
    assert not np.array_equal(data.val.ids, other.val.ids)


def test_a_feature_can_be_the_group_and_linnerud_is_vector_regression():
    _, data = _data(["data=sklearn", "data.name=diabetes", "data.group=sex", "loss=mse"])
    assert data.task is Task.grouped and data.n_groups == 2
    assert data.train.x.shape[1] == 9  # sex is the group, not a feature
    _, data = _data(["data=sklearn", "data.name=linnerud", "loss=mse"])
    assert data.task is Task.grouped and data.train.y.shape[1] == 3


def test_nan_rate_spoils_a_tables_training_targets_only():
    clean_overrides = ["data=sklearn", "data.name=diabetes", "loss=mse"]
    _, clean = _data(clean_overrides)
    _, data = _data([*clean_overrides, "data.nan_rate=0.2"])
    spoiled = ~np.isfinite(data.train.y)
    assert 0.1 < spoiled.mean() < 0.3
    assert np.isnan(data.train.y).any() and np.isinf(data.train.y).any()
    np.testing.assert_array_equal(data.train.y[~spoiled], clean.train.y[~spoiled])
    np.testing.assert_array_equal(data.train.x, clean.train.x)
    np.testing.assert_array_equal(data.val.y, clean.val.y)  # validation stays clean
    _, preset = _data(["data=sklearn", "data.name=diabetes", "loss=robust_weights"])
    assert not np.isfinite(preset.train.y).all()  # the preset's 5% reach a table too


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_tables_of_every_format_give_the_same_dataset(tmp_path, suffix):
    frame = _table().drop(columns=["city"])
    path = tmp_path / f"t{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        np.savez(path, **{c: frame[c].to_numpy() for c in frame.columns})
    _, data = _data(["data=table", f"data.path={path}", "data.target=label",
                     "data.features=[a,b]"])  # fmt: skip
    assert data.task is Task.binary and data.train.x.shape[1] == 2
    x = frame[["a", "b"]].to_numpy()
    train = x[data.train.ids]
    expected = (x[data.val.ids] - train.mean(axis=0)) / train.std(axis=0)
    np.testing.assert_allclose(data.val.x, expected, rtol=1e-5, atol=1e-6)


def test_groups_from_strings_a_split_column_and_default_features(tmp_path):
    frame = _table()
    frame["part"] = np.where(np.arange(len(frame)) % 4 == 0, "val", "train")
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    _, data = _data(["data=table", f"data.path={path}", "data.target=price",
                     "data.group=city", "data.split=part", "loss=mse"])  # fmt: skip
    assert data.task is Task.grouped and data.n_groups == 3
    assert data.train.x.shape[1] == 4  # a, b, label, kind: numeric, not target/group/split
    np.testing.assert_array_equal(data.val.ids, np.arange(0, len(frame), 4))
    cities = sorted(set(frame["city"]))
    np.testing.assert_array_equal(
        data.val.groups, [cities.index(c) for c in frame["city"][data.val.ids]]
    )


@pytest.mark.parametrize(
    ("values", "task"),
    [([0, 1, 1, 0], Task.binary), ([0, 3, 2, 1, 4], Task.multiclass),
     ([0.5, 1.2, 3.3], Task.grouped), (["a", "b", "c"], Task.multiclass),
     (["a", "b"], Task.binary)],
)  # fmt: skip
def test_the_task_is_inferred_from_the_target(values, task):
    assert infer_task(pd.DataFrame({"y": values})) is task
    assert infer_task(pd.DataFrame({"y": [1.0, 2.0], "z": [0.0, 1.0]})) is Task.grouped


@pytest.mark.parametrize(
    ("overrides", "key", "detail"),
    [
        (["data.path=missing.csv", "data.target=label"], "data.path", "no such file"),
        (["data.target=nope"], "data.target", "a, b, city, label"),
        (["data.target=label", "data.features=[a,city]"], "data.features", "city"),
        (["data.target=label", "data.group=zone"], "data.group", "price"),
    ],
)
def test_bad_tables_are_refused_naming_the_key(tmp_path, monkeypatch, overrides, key, detail):
    monkeypatch.chdir(tmp_path)
    _table().to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ConfigError) as info:
        _data(["data=table", "data.path=t.csv", *overrides])
    assert info.value.key == key and detail in str(info.value)


def test_non_finite_values_are_counted_or_dropped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = _table()
    frame.loc[[3, 7, 9], "b"] = np.nan
    frame.loc[11, "a"] = np.inf
    frame.to_csv(tmp_path / "t.csv", index=False)
    base = ["data=table", "data.path=t.csv", "data.target=label", "data.features=[a,b]"]
    with pytest.raises(ConfigError) as info:
        _data(base)
    assert info.value.key == "data.features"  # the key that chose the column
    assert "b (3 rows missing; 4 of" in str(info.value) and "data.nan_policy=drop" in str(
        info.value
    )
    _, data = _data([*base, "data.nan_policy=drop"])
    assert len(data.train) + len(data.val) == len(frame) - 4


def test_a_class_too_small_to_split_and_an_unknown_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = _table()
    frame["kind"] = 0
    frame.loc[0, "kind"] = 1  # one row of class 1
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ConfigError) as info:
        _data(["data=table", "data.path=t.csv", "data.target=kind", "loss=temperature"])
    assert info.value.key == "data.target" and "class '1' with 1 row" in str(info.value)
    with pytest.raises(ConfigError) as info:
        compose(["data=sklearn", "data.name=mnist"])
    assert info.value.key == "data.name" and "breast_cancer" in str(info.value)


def test_positives_subsampled_to_a_fraction():
    _, data = _data(["data=sklearn", "data.name=breast_cancer", "data.positive_fraction=0.1"])
    y = np.concatenate([data.train.y, data.val.y])
    assert y.mean() == pytest.approx(0.1, abs=0.005)
    assert (y == 0).sum() == (load_breast_cancer().target == 0).sum()


@pytest.mark.slow
def test_a_table_trains_end_to_end_and_a_task_mismatch_is_one_line(tmp_path):
    _table(n=400).to_csv(tmp_path / "t.csv", index=False)
    run = tmp_path / "run"
    proc = lossbench("data=table", "data.path=t.csv", "data.target=label", "loss=focal",
                     *TINY_TRAINING, f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["task"] == "binary"
    assert {"roc_auc", "minority_recall"} <= set(summary["metrics"])
    bad = lossbench("data=sklearn", "data.name=breast_cancer", "loss=grouped",
                    f"hydra.run.dir={tmp_path / 'bad'}", cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2
    (line,) = bad.stderr.strip().splitlines()
    assert line.startswith("lossbench: error: invalid value for `loss`")
    assert "binary" in line and "grouped" in line


@pytest.mark.parametrize("labels", [["no", "yes"], [-1, 1], [1, 2]])
def test_a_two_valued_target_is_binary_with_the_larger_value_as_1(tmp_path, monkeypatch, labels):
    monkeypatch.chdir(tmp_path)
    frame = _table()
    frame["answer"] = np.where(frame["label"] == 1, labels[1], labels[0])
    frame.to_csv(tmp_path / "t.csv", index=False)
    _, data = _data(["data=table", "data.path=t.csv", "data.target=answer",
                     "data.features=[a,b]"])  # fmt: skip
    assert data.task is Task.binary
    y = np.concatenate([data.train.y, data.val.y])[:, 0]
    ids = np.concatenate([data.train.ids, data.val.ids])
    np.testing.assert_array_equal(y, frame["label"].to_numpy()[ids])


def _refused(tmp_path, monkeypatch, frame, overrides, name="t.csv"):
    monkeypatch.chdir(tmp_path)
    if frame is not None:
        frame.to_csv(tmp_path / name, index=False)
    with pytest.raises(ConfigError) as info:
        _data(["data=table", f"data.path={name}", *overrides])
    return info.value


def test_repeated_column_names_are_refused(tmp_path, monkeypatch):
    (tmp_path / "t.csv").write_text("a,b,a,label\n1,2,3,0\n4,5,6,1\n")
    error = _refused(tmp_path, monkeypatch, None, ["data.target=label"])
    assert error.key == "data.path" and "column 'a' appears 2 times" in str(error)


@pytest.mark.parametrize(
    ("column", "value", "key"),
    [("label", None, "data.target"), ("city", None, "data.group"), ("a", np.inf, "data.features")],
)
def test_a_missing_label_group_or_feature_names_its_key_or_is_dropped(
    tmp_path, monkeypatch, column, value, key
):
    frame = _table()
    frame["label"] = np.where(frame["label"] == 1, "yes", "no").astype(object)
    frame.loc[[4, 8], column] = value
    overrides = ["data.target=label", "data.group=city", "data.features=[a,b]"]
    error = _refused(tmp_path, monkeypatch, frame, overrides)
    assert error.key == key and f"{column} (2 rows missing" in str(error)
    _, data = _data(["data=table", "data.path=t.csv", *overrides, "data.nan_policy=drop"])
    assert len(data.train) + len(data.val) == len(frame) - 2
    assert set(np.unique(data.train.y)) == {0.0, 1.0} and data.train.groups.min() >= 0


@pytest.mark.parametrize(
    ("target", "values", "says"),
    [("label", 0, "every row is 0"), ("city", "paris", "every row is 'paris'"),
     ("price", 2.5, "a target that varies")],
)  # fmt: skip
def test_a_constant_target_is_refused(tmp_path, monkeypatch, target, values, says):
    frame = _table()
    frame[target] = values
    error = _refused(tmp_path, monkeypatch, frame, [f"data.target={target}"])
    assert error.key == "data.target" and says in str(error)


def test_a_split_without_a_class_is_refused(tmp_path, monkeypatch):
    frame = _table()
    frame["part"] = np.where(np.arange(len(frame)) % 5 == 0, "val", "train")
    frame.loc[frame["part"] == "val", "kind"] = 0  # classes 1-3 only in training rows
    error = _refused(tmp_path, monkeypatch, frame, ["data.target=kind", "data.split=part",
                                                    "loss=temperature"])  # fmt: skip
    assert error.key == "data.split" and "class '1' has no validation rows" in str(error)


def test_the_target_among_the_features_is_refused(tmp_path, monkeypatch):
    error = _refused(tmp_path, monkeypatch, _table(), ["data.target=label",
                                                       "data.features=[a,label]"])  # fmt: skip
    assert error.key == "data.features" and "other than the target" in str(error)


@pytest.mark.parametrize("column", ["price", "b"])
def test_numbers_written_with_thousands_separators_are_named(tmp_path, monkeypatch, column):
    frame = _table()
    frame[column] = [f"{1000 * (i + 1):,}" for i in range(len(frame))]
    target = "price" if column == "price" else "label"
    error = _refused(tmp_path, monkeypatch, frame, [f"data.target={target}"])
    key = "data.target" if column == "price" else "data.features"
    assert error.key == key and "'1,000'" in str(error) and "thousands" in str(error)


def test_regression_targets_train_standardised_and_metrics_keep_the_datas_units():
    from lossbench.run.metrics import task_metrics

    _, data = _data(["data=sklearn", "data.name=diabetes", "data.group=sex", "loss=group_dro"])
    np.testing.assert_allclose(data.train.y.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(data.train.y.std(axis=0), 1, atol=1e-4)
    original = data.in_data_units(data.val.y.astype("float64"))
    mean = data.target_mean
    metrics = task_metrics(data, data.val, np.zeros_like(data.val.y))  # predicts 0 = the mean
    expected = np.mean((original - mean) ** 2)  # NumPy float64, in the data's units
    assert metrics["mse"] == pytest.approx(expected, rel=1e-4)
    assert 3000 < metrics["mse"] < 8000  # diabetes's variance: about 5.9e3
    assert data.columns["groups"] == {0: "1", 1: "2"} or len(data.columns["groups"]) == 2
    assert "sex" not in data.columns["features"] and data.columns["target"] == ["target"]


def test_a_file_too_large_for_the_memory_budget_is_refused_from_its_header(tmp_path, monkeypatch):
    import io
    import zipfile

    from lossbench.data import table_file

    monkeypatch.setattr(table_file, "memory_budget", lambda: 64 << 20)
    with (tmp_path / "big.csv").open("wb") as f:  # sparse: costs no disk
        f.write(b"a,b,label\n")
        f.truncate(200 << 20)
    error = _refused(tmp_path, monkeypatch, None, ["data.target=label"], name="big.csv")
    assert error.key == "data.path" and "memory budget" in str(error)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (3_000_000_000,)}
    )
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as archive:  # declares 24 GB, holds bytes
        archive.writestr("x.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + b"\0" * 64)
        archive.writestr("label.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:])
    error = _refused(tmp_path, monkeypatch, None, ["data.target=label"], name="big.npz")
    assert error.key == "data.path" and "6e+09 cells in 522 bytes" in str(error)


@pytest.mark.slow
@pytest.mark.long
def test_a_table_runs_record_their_columns_and_huge_epochs_are_refused(tmp_path):
    _table(n=400).to_csv(tmp_path / "t.csv", index=False)
    run = tmp_path / "run"
    proc = lossbench("data=table", "data.path=t.csv", "data.target=price", "data.group=city",
                     "loss=mse", *TINY_TRAINING, f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["groups"] == {"0": "lyon", "1": "nice", "2": "paris"}
    assert summary["data"]["features"] == ["a", "b", "label", "kind"]
    assert "mse_group_2" in summary["metrics"]
    huge = lossbench("data=table", "data.path=t.csv", "data.target=label", "loss=bce",
                     "trainer.epochs=1000000000", f"hydra.run.dir={tmp_path / 'huge'}",
                     cwd=tmp_path)  # fmt: skip
    assert huge.returncode == 2 and "Traceback" not in huge.stderr
    assert "`trainer.epochs`" in huge.stderr and "memory budget" in huge.stderr
