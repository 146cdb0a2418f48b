"""Real data: a user's table (CSV, Parquet, .npz) or one of scikit-learn's bundled datasets.

The table becomes the same `Dataset` the synthetic generator makes: float32 features
standardised with the training split's statistics, the task's targets, group ids (from
`data.group`, else one group) and a deterministic train/validation split (stratified for
classification, or taken from `data.split`). Every problem with the file or its columns is a
`ConfigError` naming the key, raised before any framework is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench.config.schema import DataConfig, DataSource, Task
from lossbench.dataset import Dataset, Split
from lossbench.errors import ConfigError

# An integer target with at most this many distinct values is a multiclass label.
MAX_CLASSES = 20
VALIDATION_VALUES = {"val", "valid", "validation", "test", "1", "true"}
TRAIN_VALUES = {"train", "training", "0", "false"}


def read_table(cfg: DataConfig) -> tuple[pd.DataFrame, list[str]]:
    """The raw table and its default target columns (sklearn: the dataset's targets)."""
    if cfg.source is DataSource.sklearn:
        return _sklearn_frame(str(cfg.name))
    path = Path(str(cfg.path)).expanduser()
    if not path.is_file():
        raise ConfigError("data.path", "an existing file", f"{cfg.path} (no such file)")
    try:
        if path.suffix == ".csv":
            frame = pd.read_csv(path)
        elif path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = _npz_frame(path)
    except ConfigError:
        raise
    except Exception as error:
        reason = " ".join(str(error).split())[:200]
        expected = f"a readable {path.suffix} file"
        raise ConfigError("data.path", expected, f"{path} ({reason})") from None
    if frame.empty:
        raise ConfigError("data.path", "a table with rows", f"{path} (no rows)")
    return frame, []


def _npz_frame(path: Path) -> pd.DataFrame:
    """Columns from an .npz: each 1-D array is a column, a 2-D array K gives K_0, K_1, ..."""
    columns: dict[str, np.ndarray] = {}
    with np.load(path, allow_pickle=False) as arrays:
        for key in arrays.files:
            array = arrays[key]
            if array.ndim == 1:
                columns[key] = array
            elif array.ndim == 2:
                columns.update({f"{key}_{j}": array[:, j] for j in range(array.shape[1])})
            else:
                shape = f"{key} of shape {array.shape}"
                raise ConfigError("data.path", "1-D or 2-D arrays", shape)
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ConfigError("data.path", "arrays of one length", f"lengths {sorted(lengths)}")
    return pd.DataFrame(columns)


def _sklearn_frame(name: str) -> tuple[pd.DataFrame, list[str]]:
    import sklearn.datasets as datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.copy()
    targets = list(bunch.target.columns) if bunch.target.ndim == 2 else [bunch.target.name]
    return frame, targets


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
    unique = np.unique(values.to_numpy(dtype="float64"))
    if set(unique) <= {0.0, 1.0}:
        return Task.binary
    if np.all(unique == np.round(unique)) and len(unique) <= MAX_CLASSES:
        return Task.multiclass
    return Task.grouped


def _drop_non_finite(frame: pd.DataFrame, columns: list[str], policy: str) -> pd.DataFrame:
    values = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
    bad = ~np.isfinite(values)
    if not bad.any():
        return frame
    if policy == "drop":
        return frame[~bad.any(axis=1)].reset_index(drop=True)
    counts = bad.sum(axis=0)
    worst = int(np.argmax(counts))
    raise ConfigError(
        "data.nan_policy",
        "finite features and targets, or data.nan_policy=drop to drop those rows",
        f"{int(bad.any(axis=1).sum())} rows with NaN or inf ({int(counts[worst])} in column "
        f"{columns[worst]!r})",
    )


def make_real_dataset(cfg: DataConfig, seed: int) -> Dataset:
    """The Dataset of a table or bundled dataset (see the module docstring).

    Raises:
        ConfigError: naming the key for every problem with the file or its columns.
    """
    frame, default_targets = read_table(cfg)
    targets = _as_list(cfg.target) or default_targets
    if not targets:
        raise ConfigError("data.target", "the target column(s) to predict", None)
    for name in targets:
        _column(frame, name, "data.target")
    group_column = str(cfg.group) if cfg.group else None
    if group_column:
        _column(frame, group_column, "data.group")
    split_column = str(cfg.split) if cfg.split else None
    if split_column:
        _column(frame, split_column, "data.split")
    excluded = {*targets, *(c for c in (group_column, split_column) if c)}
    if cfg.features:
        features = _as_list(cfg.features)
        for name in features:
            _column(frame, name, "data.features")
    else:
        features = [
            str(c) for c in frame.columns
            if str(c) not in excluded and pd.api.types.is_numeric_dtype(frame[c])
        ]  # fmt: skip
    if not features:
        raise ConfigError("data.features", "at least one numeric feature column", "none left")
    for name in features:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            raise ConfigError("data.features", "numeric columns", f"{name} ({frame[name].dtype})")
    task = Task(cfg.task.value) if cfg.task is not None else infer_task(frame[targets])
    # Labels may be strings; a numeric target must be finite.
    numeric_targets = [t for t in targets if pd.api.types.is_numeric_dtype(frame[t])]
    frame = _drop_non_finite(frame, features + numeric_targets, cfg.nan_policy.value)
    return _build(frame, features, targets, group_column, split_column, task, cfg, seed)


def _targets(frame: pd.DataFrame, targets: list[str], task: Task) -> tuple[np.ndarray, int]:
    if task is Task.multiclass:
        if len(targets) != 1:
            raise ConfigError("data.target", "one label column for the multiclass task", targets)
        labels, classes = pd.factorize(frame[targets[0]], sort=True)
        return np.eye(len(classes), dtype="float32")[labels], len(classes)
    if task is Task.binary:
        values = frame[targets[0]] if len(targets) == 1 else None
        if values is None or values.nunique(dropna=True) > 2:
            raise ConfigError("data.task", "binary only for one column of two values", targets)
        # Two values become 0 and 1 in sorted order (no/yes, -1/1, 0/1 stay as they read).
        labels, _ = pd.factorize(values, sort=True)
        return labels.astype("float32")[:, None], 2
    y = frame[targets].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
    return y.astype("float32"), 0


def _split(
    frame: pd.DataFrame, labels: np.ndarray | None, split_column: str | None,
    cfg: DataConfig, seed: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    n = len(frame)
    if split_column:
        text = frame[split_column].astype(str).str.strip().str.lower()
        unknown = sorted(set(text) - VALIDATION_VALUES - TRAIN_VALUES)
        if unknown:
            raise ConfigError("data.split", "a column of train/val (or 0/1) values", unknown[0])
        is_val = text.isin(VALIDATION_VALUES).to_numpy()
        return np.flatnonzero(~is_val), np.flatnonzero(is_val)
    rng = np.random.default_rng([seed, 3])
    if labels is None:
        order = rng.permutation(n)
        n_val = int(np.ceil(n * cfg.val_fraction))
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    train, val = [], []
    for label in np.unique(labels):  # stratified: each class split in the same proportion
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_val = round(len(rows) * cfg.val_fraction)
        if len(rows) < 2 or n_val < 1 or n_val >= len(rows):
            raise ConfigError(
                "data.val_fraction", "a split that leaves every class rows on both sides",
                f"{cfg.val_fraction} (class {label} has {len(rows)} rows)",
            )  # fmt: skip
        val.append(rows[:n_val])
        train.append(rows[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


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


def _build(
    frame: pd.DataFrame, features: list[str], targets: list[str], group_column: str | None,
    split_column: str | None, task: Task, cfg: DataConfig, seed: int,
) -> Dataset:  # fmt: skip
    y, _ = _targets(frame, targets, task)
    if cfg.positive_fraction is not None:
        if task is not Task.binary:
            raise ConfigError("data.positive_fraction", "null unless the task is binary",
                              cfg.positive_fraction)  # fmt: skip
        rows = _subsample_positives(frame, y, cfg.positive_fraction, seed)
        frame, y = frame.iloc[rows].reset_index(drop=True), y[rows]
    x = frame[features].to_numpy(dtype="float64")
    if group_column:
        groups, names = pd.factorize(frame[group_column], sort=True)
        n_groups = len(names)
    else:
        groups, n_groups = np.zeros(len(frame), dtype="int64"), 1
    labels = y.argmax(axis=1) if task is Task.multiclass else (
        y[:, 0].astype(int) if task is Task.binary else None
    )  # fmt: skip
    train, val = _split(frame, labels, split_column, cfg, seed)
    if len(train) == 0 or len(val) == 0:
        raise ConfigError("data.split", "rows in both the training and validation split",
                          f"{len(train)} training and {len(val)} validation rows")  # fmt: skip
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    x = ((x - mean) / np.where(std > 0, std, 1.0)).astype("float32")
    if task is Task.grouped:
        mean_square = np.mean(y[train] ** 2, axis=1)
        power = np.bincount(groups[train], weights=mean_square, minlength=n_groups)
        counts = np.maximum(np.bincount(groups[train], minlength=n_groups), 1)
        scales = np.sqrt(power / counts)
        scales = np.where(scales > 0, scales, 1.0)
    else:
        scales = np.ones(n_groups)
    ids = np.arange(len(frame), dtype="int32")
    g = groups.astype("int32")
    return Dataset(
        task=task,
        train=Split(x[train], y[train], g[train], ids[train]),
        val=Split(x[val], y[val], g[val], ids[val]),
        group_scales=scales,
    )
