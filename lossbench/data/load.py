"""The dataset a config names, from any source, and the checks every dataset passes before it
trains: the one entry the run, the search and the checker call."""

from __future__ import annotations

import numpy as np

from lossbench.config.schema import DataConfig, DataSource, Task
from lossbench.data.dataset import Dataset
from lossbench.errors import ConfigError


def make_dataset(task: Task, cfg: DataConfig, seed: int) -> Dataset:
    """The arrays `cfg` names: synthetic data for `task` (`lossbench.data.synthetic`), or a table
    file or scikit-learn's bundled dataset, which carry their own task (`lossbench.data.tabular`);
    deterministic by `seed`."""
    if cfg.source is DataSource.synthetic:
        from lossbench.data.synthetic import make_synthetic

        return make_synthetic(task, cfg, seed)
    from lossbench.data.tabular import make_real_dataset

    return make_real_dataset(cfg, seed)


def checked_dataset(task: Task, cfg: DataConfig, seed: int) -> Dataset:
    """`make_dataset`, then refused by `check_dataset` when it would train into nothing."""
    data = make_dataset(task, cfg, seed)
    check_dataset(data, cfg)
    return data


def check_dataset(data: Dataset, cfg: DataConfig) -> None:
    """Refuse generated data that would train into a result that means nothing.

    Raises:
        ConfigError: naming the key behind it: targets that overflow float32 (`data.noise`,
            `data.group_scale_max`), or a classification training split with a single class
            (`data.positive_rate`, `data.class_imbalance`).
    """
    y = data.train.y if cfg.nan_rate == 0 else data.val.y
    if not (np.isfinite(data.train.x).all() and np.isfinite(y).all()):
        key = "data.group_scale_max" if data.group_scales.max() > 1e30 else "data.noise"
        value = getattr(cfg, key.split(".")[1])
        raise ConfigError(key, "a value whose targets are finite in float32", value)
    if data.task is Task.binary:
        positives = int(data.train.y.round().sum())
        if not 0 < positives < len(data.train):
            raise ConfigError(
                "data.positive_rate" if cfg.source is DataSource.synthetic else "data.target",
                "a rate that gives the training split both classes",
                f"{cfg.positive_rate} ({positives} positives in {len(data.train)} samples)",
            )
    check_test_split(data, cfg)


def check_test_split(data: Dataset, cfg: DataConfig) -> None:
    """Refuse a test split without rows, or (classification) without every class of the
    training split: its metrics would be undefined or say nothing of the minority."""
    if data.test is None:
        return
    if data.task is Task.binary:
        labels = [np.asarray(s.y).reshape(-1).round() for s in (data.train, data.test)]
    elif data.task in (Task.multiclass, Task.multitask):
        labels = [
            np.asarray(s.y)[:, -cfg.n_classes :].argmax(axis=1)
            if data.task is Task.multitask
            else np.asarray(s.y).argmax(axis=1)
            for s in (data.train, data.test)
        ]
    else:
        labels = None
    missing = sorted(set(labels[0].tolist()) - set(labels[1].tolist())) if labels else []
    if len(data.test) == 0 or missing:
        what = f"no rows of class {missing[0]:g}" if missing else "no rows"
        raise ConfigError(
            "data.test_fraction",
            "a fraction whose test split holds every class",
            f"{cfg.test_fraction} (a test split of {len(data.test)} rows with {what})",
        )
    elif data.task in (Task.multiclass, Task.multitask):
        present = int((data.train.y[:, -cfg.n_classes :].sum(axis=0) > 0).sum())
        if present < 2:
            raise ConfigError(
                "data.class_imbalance",
                "a value that gives the training split at least two classes",
                f"{cfg.class_imbalance} ({present} class present)",
            )
