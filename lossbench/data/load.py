"""The dataset a config names, from any source, and the checks every dataset passes before it
trains: the one entry the run, the search and the checker call."""

from __future__ import annotations

import dataclasses

import numpy as np

from lossbench.config.schema import DataConfig, SyntheticData, Task
from lossbench.data.dataset import Dataset, spoil_targets
from lossbench.data.synthetic import N_BOX
from lossbench.errors import ConfigError


def make_dataset(task: Task, cfg: DataConfig, seed: int) -> Dataset:
    """The arrays `cfg` names: synthetic data for `task` (`lossbench.data.synthetic`), or a table
    file or scikit-learn's bundled dataset, which carry their own task (`lossbench.data.tabular`);
    deterministic by `seed`. `data.nan_rate` spoils the training targets of every source (the
    generator in its own random stream)."""
    if isinstance(cfg, SyntheticData):
        from lossbench.data.synthetic import make_synthetic

        return make_synthetic(task, cfg, seed)
    from lossbench.data.tabular import make_real_dataset

    data = make_real_dataset(cfg, seed)
    if cfg.nan_rate == 0:
        return data
    rng = np.random.default_rng([seed, _SPOIL_STREAM])
    train = dataclasses.replace(data.train, y=spoil_targets(rng, data.train.y, cfg.nan_rate))
    return dataclasses.replace(data, train=train)


# The random stream that spoils a table's targets, apart from the one that splits it.
_SPOIL_STREAM = 1


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
    if isinstance(cfg, SyntheticData):  # a table's values are checked as it is read
        y = data.train.y if cfg.nan_rate == 0 else data.val.y
        if not (np.isfinite(data.train.x).all() and np.isfinite(y).all()):
            key = "data.group_scale_max" if data.group_scales.max() > 1e30 else "data.noise"
            value = getattr(cfg, key.split(".")[1])
            raise ConfigError(key, "a value whose targets are finite in float32", value)
    if data.task is Task.binary:
        positives = int(np.nansum(data.train.y.round()))
        if not 0 < positives < len(data.train):
            key, value = (
                ("data.positive_rate", cfg.positive_rate)
                if isinstance(cfg, SyntheticData)
                else ("data.target", getattr(cfg, "target", None))
            )
            raise ConfigError(
                key,
                "a value that gives the training split both classes",
                f"{value} ({positives} positives in {len(data.train)} samples)",
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
        first = N_BOX if data.task is Task.multitask else 0  # the class columns
        labels = [np.asarray(s.y)[:, first:].argmax(axis=1) for s in (data.train, data.test)]
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
    elif isinstance(cfg, SyntheticData) and data.task in (Task.multiclass, Task.multitask):
        present = int((data.train.y[:, -cfg.n_classes :].sum(axis=0) > 0).sum())
        if present < 2:
            raise ConfigError(
                "data.class_imbalance",
                "a value that gives the training split at least two classes",
                f"{cfg.class_imbalance} ({present} class present)",
            )
