"""Real data: a user's table (CSV, Parquet, .npz) or one of scikit-learn's bundled datasets.

The table becomes the same `Dataset` the synthetic generator makes: float32 features
standardised with the training split's statistics, the task's targets, group ids (from
`data.group`, else one group) and a deterministic train/validation split (stratified for
classification, or taken from `data.split`). Every problem with the file or its columns is a
`ConfigError` naming the key, raised before any framework is imported.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from lossbench.config.schema import RealData, Task
from lossbench.data.dataset import Dataset, Split
from lossbench.data.splits import split_rows
from lossbench.data.table_file import read_frame
from lossbench.errors import ConfigError, brief

# An integer target with at most this many distinct values is a multiclass label.
MAX_CLASSES = 20


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _column(frame: pd.DataFrame, name: str, key: str) -> pd.Series:
    if name not in frame.columns:
        available = ", ".join(map(str, frame.columns[:30]))
        more = ", ..." if len(frame.columns) > 30 else ""
        raise ConfigError(key, f"a column of the table ({available}{more})", name)
    return frame[name]


def infer_task(y: pd.DataFrame) -> Task:
    """binary for one column of two values (0/1, yes/no, -1/1, ...), multiclass for one column of
    few integers or strings, else regression (lossbench's grouped task; several columns: vector
    regression)."""
    if y.shape[1] > 1:
        return Task.grouped
    values = y.iloc[:, 0]
    if values.nunique(dropna=True) == 2:
        return Task.binary
    if not pd.api.types.is_numeric_dtype(values):
        return Task.multiclass
    numbers = values.to_numpy(dtype="float64")
    unique = np.unique(numbers[np.isfinite(numbers)])
    if set(unique) <= {0.0, 1.0}:
        return Task.binary
    if np.all(unique == np.round(unique)) and len(unique) <= MAX_CLASSES:
        return Task.multiclass
    return Task.grouped


# Text that reads as a number once thousands separators are removed ("1,234", "12 500", "3_000"),
# or a plain number; a column of these with at least one separator is numbers written as text.
_NUMBER_AS_TEXT = re.compile(r"^[+-]?\d{1,3}([,_ ]\d{3})+(\.\d+)?$|^[+-]?\d+(\.\d+)?$")


def _numbers_as_text(values: pd.Series) -> str | None:
    """An example value when a text column holds only numbers, some with thousands separators."""
    if pd.api.types.is_numeric_dtype(values):
        return None
    text = values.dropna().astype(str).str.strip()
    if text.empty or not text.str.fullmatch(_NUMBER_AS_TEXT).all():
        return None
    with_separators = text[text.str.contains(r"[,_ ]")]
    return str(with_separators.iloc[0]) if len(with_separators) else None


def _number_text_problem(name: str, example: str, key: str) -> ConfigError:
    return ConfigError(
        key, "numbers written without thousands separators (or a column of labels)",
        f"{name} (text such as {example!r}: write it as a number, e.g. in pandas with "
        "read_csv(thousands=','))",
    )  # fmt: skip


def _missing(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Rows whose value is missing: NaN or infinite numbers, or empty labels."""
    values = frame[name]
    if pd.api.types.is_numeric_dtype(values):
        return ~np.isfinite(values.to_numpy(dtype="float64"))
    return values.isna().to_numpy()


def _drop_missing(frame: pd.DataFrame, columns: dict[str, str], policy: str) -> pd.DataFrame:
    """Drop (`drop`) or refuse (`refuse`) rows with a missing value in `columns` (name -> the key
    that chose the column); a refusal names that key and the column."""
    bad = {name: _missing(frame, name) for name in columns}
    rows = np.any(list(bad.values()), axis=0) if bad else np.zeros(len(frame), bool)
    if not rows.any():
        return frame
    if policy == "drop":
        return frame[~rows].reset_index(drop=True)
    name = max(bad, key=lambda n: int(bad[n].sum()))
    raise ConfigError(
        columns[name], "values in every row (NaN, inf and empty cells: data.nan_policy=drop "
        "drops those rows)", f"{name} ({int(bad[name].sum())} rows missing; {int(rows.sum())} of "
        f"{len(frame)} rows have a missing value)",
    )  # fmt: skip


def _choose_features(
    frame: pd.DataFrame, cfg: RealData, targets: list[str], excluded: set[str]
) -> list[str]:
    """The feature columns: `data.features`, or every numeric column not excluded."""
    if cfg.features:
        features = _as_list(cfg.features)
        for name in features:
            _column(frame, name, "data.features")
            if name in targets:
                raise ConfigError("data.features", "columns other than the target (data.target)",
                                  name)  # fmt: skip
    else:
        features = []
        for column in frame.columns:
            name = str(column)
            if name in excluded:
                continue
            example = _numbers_as_text(frame[column])
            if example is not None:
                raise _number_text_problem(name, example, "data.features")
            if pd.api.types.is_numeric_dtype(frame[column]):
                features.append(name)
    if not features:
        raise ConfigError("data.features", "at least one numeric feature column", "none left")
    for name in features:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            example = _numbers_as_text(frame[name])
            if example is not None:
                raise _number_text_problem(name, example, "data.features")
            raise ConfigError("data.features", "numeric columns", f"{name} ({frame[name].dtype})")
    return features


def make_real_dataset(cfg: RealData, seed: int) -> Dataset:
    """The Dataset of a table or bundled dataset (see the module docstring).

    Raises:
        ConfigError: naming the key for every problem with the file or its columns (one this
            module does not foresee names the file, never a raw Python error).
    """
    try:
        return _dataset(cfg, seed)
    except ConfigError:
        raise
    except Exception as error:  # a case no check above names: still one line, about the table
        key, where = ("data.path", cfg.path) if cfg.path else ("data.name", cfg.name)
        raise ConfigError(
            key, "a table lossbench can read", f"{where} ({type(error).__name__}: {brief(error)})"
        ) from error


def _dataset(cfg: RealData, seed: int) -> Dataset:
    frame, default_targets = read_frame(cfg)
    shapes = dict(frame.attrs.get("shapes", {}))  # an .npz's N-D arrays
    targets = _as_list(cfg.target) or default_targets
    if not targets:
        raise ConfigError("data.target", "the target column(s) to predict", None)
    for name in targets:
        _column(frame, name, "data.target")
        example = _numbers_as_text(frame[name])
        if example is not None:
            raise _number_text_problem(name, example, "data.target")
    group_column = str(cfg.group) if cfg.group else None
    if group_column:
        _column(frame, group_column, "data.group")
    split_column = str(cfg.split) if cfg.split else None
    if split_column:
        _column(frame, split_column, "data.split")
    excluded = {*targets, *(c for c in (group_column, split_column) if c)}
    features = _choose_features(frame, cfg, targets, excluded)
    task = Task(cfg.task.value) if cfg.task is not None else infer_task(frame[targets])
    if task is Task.grouped:
        for name in targets:
            if not pd.api.types.is_numeric_dtype(frame[name]):
                raise ConfigError("data.target", "numeric columns for regression (data.task="
                                  "grouped)", f"{name} ({frame[name].dtype})")  # fmt: skip
    keys = {name: "data.features" for name in features}
    keys.update({name: "data.target" for name in targets})
    keys.update({name: key for name, key in ((group_column, "data.group"),
                                             (split_column, "data.split")) if name})  # fmt: skip
    rows = len(frame)
    frame = _drop_missing(frame, keys, cfg.nan_policy.value)
    _check_varies(frame, targets, task)
    data = _build(frame, features, targets, group_column, split_column, task, cfg, seed)
    data.columns["rows_dropped"] = rows - len(frame)
    shape = _input_shape(cfg, features, shapes)
    if shape is not None:
        data.columns["input_shape"] = list(shape)
    return dataclasses.replace(data, input_shape=shape)


def _input_shape(
    cfg: RealData, features: list[str], shapes: dict[str, tuple[int, ...]]
) -> tuple[int, ...] | None:
    """The shape of one sample: `data.input_shape`, else that of the .npz array whose columns
    the features are; None for flat rows."""
    if cfg.input_shape:
        shape = tuple(int(n) for n in cfg.input_shape)
        if math.prod(shape) != len(features):
            raise ConfigError(
                "data.input_shape",
                f"a shape whose product is the number of feature columns ({len(features)})",
                f"{list(shape)} (product {math.prod(shape)})",
            )
        return shape
    for key, shape in shapes.items():
        if features == [f"{key}_{j}" for j in range(math.prod(shape))]:
            return shape
    return None


def _check_varies(frame: pd.DataFrame, targets: list[str], task: Task) -> None:
    """Refuse a target with a single value: nothing to learn or to score."""
    for name in targets:
        values = frame[name].dropna().unique()
        if len(values) < 2:
            what = "a target with at least two classes" if task is not Task.grouped else (
                "a target that varies"
            )  # fmt: skip
            shown = repr(values[0].item() if hasattr(values[0], "item") else values[0])
            raise ConfigError("data.target", what, f"{name} (every row is {shown})")


def _targets(frame: pd.DataFrame, targets: list[str], task: Task) -> tuple[np.ndarray, list[str]]:
    """The task's target array and, for classification, the class names by index."""
    if task is Task.multiclass:
        if len(targets) != 1:
            raise ConfigError("data.target", "one label column for the multiclass task", targets)
        labels, classes = pd.factorize(frame[targets[0]], sort=True)
        return np.eye(len(classes), dtype="float32")[labels], [str(c) for c in classes]
    if task is Task.binary:
        values = frame[targets[0]] if len(targets) == 1 else None
        if values is None or values.nunique(dropna=True) > 2:
            raise ConfigError("data.task", "binary only for one column of two values", targets)
        # Two values become 0 and 1 in sorted order (no/yes, -1/1, 0/1 stay as they read).
        labels, classes = pd.factorize(values, sort=True)
        return labels.astype("float32")[:, None], [str(c) for c in classes]
    y = frame[targets].to_numpy(dtype="float64")
    return y.astype("float32"), []


def _subsample_positives(
    frame: pd.DataFrame, y: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """Rows to keep: every negative and a random subset of positives making up `fraction`."""
    positives, negatives = np.flatnonzero(y[:, 0] == 1), np.flatnonzero(y[:, 0] == 0)
    wanted = round(fraction * len(negatives) / (1 - fraction))
    if not 1 <= wanted <= len(positives):
        raise ConfigError(
            "data.positive_fraction",
            f"a fraction these {len(positives)} positives and {len(negatives)} negatives allow",
            f"{fraction} ({wanted} positives)",
        )
    keep = np.random.default_rng([seed, 4]).choice(positives, size=wanted, replace=False)
    return np.sort(np.concatenate([negatives, keep]))


def _standardised(
    y: np.ndarray, groups: np.ndarray, train: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Regression targets standardised with the training rows' mean and standard deviation (any
    units train alike; metrics are reported in the data's units), their mean and standard
    deviation, and each group's RMS target on that scale."""
    y64 = y.astype("float64")
    mean, std = y64[train].mean(axis=0), y64[train].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    z = (y64 - mean) / std
    power = np.bincount(groups[train], weights=np.mean(z[train] ** 2, axis=1), minlength=n_groups)
    counts = np.maximum(np.bincount(groups[train], minlength=n_groups), 1)
    scales = np.sqrt(power / counts)
    return z.astype("float32"), mean, std, np.where(scales > 0, scales, 1.0)


def _build(
    frame: pd.DataFrame, features: list[str], targets: list[str], group_column: str | None,
    split_column: str | None, task: Task, cfg: RealData, seed: int,
) -> Dataset:  # fmt: skip
    y, classes = _targets(frame, targets, task)
    if cfg.positive_fraction is not None:
        if task is not Task.binary:
            raise ConfigError("data.positive_fraction", "null unless the task is binary",
                              cfg.positive_fraction)  # fmt: skip
        rows = _subsample_positives(frame, y, cfg.positive_fraction, seed)
        frame, y = frame.iloc[rows].reset_index(drop=True), y[rows]
    x = frame[features].to_numpy(dtype="float64")
    if group_column:
        groups, names = pd.factorize(frame[group_column], sort=True)
        group_names = [str(v) for v in names]
    else:
        groups, group_names = np.zeros(len(frame), dtype="int64"), ["all"]
    n_groups = len(group_names)
    labels = y.argmax(axis=1) if task is Task.multiclass else (
        y[:, 0].astype(int) if task is Task.binary else None
    )  # fmt: skip
    train, val, test = split_rows(frame, labels, split_column, cfg, seed, classes)
    if len(train) == 0 or len(val) == 0:
        raise ConfigError("data.split", "rows in both the training and validation split",
                          f"{len(train)} training and {len(val)} validation rows")  # fmt: skip
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    x = ((x - mean) / np.where(std > 0, std, 1.0)).astype("float32")
    target_mean = target_std = None
    scales = np.ones(n_groups)
    if task is Task.grouped:
        y, target_mean, target_std, scales = _standardised(y, groups, train, n_groups)
    columns: dict[str, Any] = {
        "source": cfg.source.value, "features": features, "target": targets,
        "task": task.value, "group_column": group_column,
        "groups": dict(enumerate(group_names)), "classes": dict(enumerate(classes)),
        "rows": {"train": len(train), "val": len(val)} | ({"test": len(test)} if len(test) else {}),
    }  # fmt: skip
    if target_mean is not None and target_std is not None:
        columns["target_standardised"] = {"mean": target_mean.tolist(), "std": target_std.tolist()}
    ids = np.arange(len(frame), dtype="int32")
    g = groups.astype("int32")
    return Dataset(
        task=task,
        train=Split(x[train], y[train], g[train], ids[train]),
        val=Split(x[val], y[val], g[val], ids[val]),
        test=Split(x[test], y[test], g[test], ids[test]) if len(test) else None,
        group_scales=scales,
        target_mean=target_mean,
        target_std=target_std,
        columns=columns,
        minority=int(task is not Task.binary or float(np.mean(y[train])) <= 0.5),
    )
