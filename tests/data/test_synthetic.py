"""Synthetic data: determinism, imbalance, skewed groups with group-dependent target scales."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.config.schema import SyntheticData, Task
from lossbench.data.load import make_dataset
from lossbench.data.synthetic import group_scales


@pytest.mark.parametrize("task", list(Task))
def test_same_seed_same_arrays_bit_for_bit(task):
    cfg = SyntheticData(n_samples=2000)
    a, b = make_dataset(task, cfg, seed=3), make_dataset(task, cfg, seed=3)
    for split in ("train", "val"):
        for field in ("x", "y", "groups"):
            left, right = getattr(getattr(a, split), field), getattr(getattr(b, split), field)
            assert left.tobytes() == right.tobytes()
    other = make_dataset(task, cfg, seed=4)
    assert not np.array_equal(a.train.x, other.train.x)


def test_binary_labels_have_the_configured_positive_rate_and_signal():
    cfg = SyntheticData(n_samples=20000, positive_rate=0.1)
    data = make_dataset(Task.binary, cfg, seed=0)
    y = np.concatenate([data.train.y, data.val.y]).ravel()
    assert set(np.unique(y)) == {0.0, 1.0}
    assert abs(y.mean() - 0.1) < 0.002
    # The features carry signal: a least-squares fit separates the classes far above chance.
    x = data.train.x
    w, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], data.train.y.ravel(), rcond=None)
    score = np.c_[data.val.x, np.ones(len(data.val.x))] @ w
    pos, neg = score[data.val.y.ravel() == 1], score[data.val.y.ravel() == 0]
    auc = (pos[:, None] > neg[None, :]).mean()
    assert auc > 0.8


def test_groups_are_skewed_and_targets_scaled_per_group():
    cfg = SyntheticData(n_samples=40000, n_groups=5, group_skew=1.0, noise=0.0)
    data = make_dataset(Task.grouped, cfg, seed=1)
    g = np.concatenate([data.train.groups, data.val.groups])
    counts = np.bincount(g, minlength=5)
    assert np.all(np.diff(counts) < 0), counts  # sizes fall with the group index
    expected = (1 / np.arange(1, 6)) / np.sum(1 / np.arange(1, 6))
    np.testing.assert_allclose(counts / counts.sum(), expected, atol=0.01)
    y = np.concatenate([data.train.y, data.val.y])
    rms = np.array([np.sqrt(np.mean(y[g == k] ** 2)) for k in range(5)])
    scales = group_scales(cfg)
    np.testing.assert_allclose(rms / rms[0], scales / scales[0], rtol=0.1)
    # The group's one-hot is appended to the features.
    np.testing.assert_array_equal(data.train.x[:, -5:].argmax(1), data.train.groups)


def test_split_sizes_and_dtypes():
    cfg = SyntheticData(n_samples=1001, val_fraction=0.2, n_outputs=3)
    data = make_dataset(Task.grouped, cfg, seed=0)
    assert len(data.val) == 201 and len(data.train) == 800
    assert data.train.x.dtype == np.float32 and data.train.y.shape == (800, 3)
    assert data.train.groups.dtype == np.int32
