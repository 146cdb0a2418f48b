"""A table's rows split into training, validation and test: by seed (stratified by class for
classification) or from a `data.split` column. Every problem is a `ConfigError` naming the key."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lossbench.config.schema import RealData
from lossbench.errors import ConfigError

VALIDATION_VALUES = {"val", "valid", "validation", "1", "true"}
TEST_VALUES = {"test"}
TRAIN_VALUES = {"train", "training", "0", "false"}


def split_rows(
    frame: pd.DataFrame,
    labels: np.ndarray | None,
    split_column: str | None,
    cfg: RealData,
    seed: int,
    classes: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training, validation and test rows: from `data.split`, else by seed (stratified by class
    for classification; `data.test_fraction` of the rows held out as the test split)."""
    if split_column:
        return _column_split(frame, labels, split_column, cfg, classes)
    rng = np.random.default_rng([seed, 3])
    if labels is None:
        n = len(frame)
        order = rng.permutation(n)
        n_val = int(np.ceil(n * cfg.val_fraction))
        n_test = int(np.ceil(n * cfg.test_fraction))
        parts = order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]
        return tuple(np.sort(p) for p in parts)  # type: ignore[return-value]
    train, val, test = [], [], []
    for label in np.unique(labels):  # stratified: each class split in the same proportion
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_val = round(len(rows) * cfg.val_fraction)
        n_test = round(len(rows) * cfg.test_fraction)
        if len(rows) < 2:
            raise ConfigError(
                "data.target",
                "classes of at least 2 rows (one for each split)",
                f"class {classes[label]!r} with {len(rows)} row",
            )
        if n_val < 1 or n_val >= len(rows):
            raise ConfigError(
                "data.val_fraction",
                "a split that leaves every class rows on both sides",
                f"{cfg.val_fraction} (class {classes[label]!r} has {len(rows)} rows)",
            )
        if cfg.test_fraction and (n_test < 1 or n_val + n_test >= len(rows)):
            raise ConfigError(
                "data.test_fraction",
                "a fraction that leaves every class rows in the "
                "training, validation and test splits",
                f"{cfg.test_fraction} (class {classes[label]!r} has {len(rows)} rows)",
            )
        val.append(rows[:n_val])
        test.append(rows[n_val : n_val + n_test])
        train.append(rows[n_val + n_test :])
    return tuple(np.sort(np.concatenate(p)) for p in (train, val, test))  # type: ignore[return-value]


def _column_split(
    frame: pd.DataFrame,
    labels: np.ndarray | None,
    split_column: str,
    cfg: RealData,
    classes: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows `data.split` marks: train, val, and test (`test` rows are the validation split
    when the column has no `val` rows, as a train/test column always meant)."""
    if cfg.test_fraction:
        raise ConfigError(
            "data.test_fraction",
            "0 when data.split marks the rows (mark the test rows `test` in that column)",
            cfg.test_fraction,
        )
    text = frame[split_column].astype(str).str.strip().str.lower()
    unknown = sorted(set(text) - VALIDATION_VALUES - TRAIN_VALUES - TEST_VALUES)
    if unknown:
        raise ConfigError("data.split", "a column of train/val/test (or 0/1) values", unknown[0])
    is_val, is_test = text.isin(VALIDATION_VALUES).to_numpy(), text.isin(TEST_VALUES).to_numpy()
    if not is_val.any():
        is_val, is_test = is_test, np.zeros_like(is_test)
    parts = np.flatnonzero(~(is_val | is_test)), np.flatnonzero(is_val), np.flatnonzero(is_test)
    names = ("training", "validation", "test")
    for k, rows in enumerate(parts):
        if labels is None or not len(rows):
            continue
        absent = sorted(set(labels) - set(labels[rows]))
        if absent:
            raise ConfigError(
                "data.split",
                "training, validation and test rows that each hold every class",
                f"{split_column} (class {classes[absent[0]]!r} has no {names[k]} rows)",
            )
    return parts
