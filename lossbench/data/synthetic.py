"""Synthetic data, deterministic by seed, one generator per task.

Every sample has features, a group id and the task's targets:
- groups: sizes skewed as 1 / (rank + 1) ** group_skew; group g's regression targets are scaled by
  a factor spaced geometrically in [group_scale_min, group_scale_max], so a plain squared error is
  dominated by the large-scale groups. The group's one-hot is appended to the features.
- binary: a label with the configured positive rate, from a noisy nonlinear score of the features.
- grouped: `n_outputs` regression targets, group scale times a smooth function of the features.
- multiclass: `n_classes` imbalanced classes (prior of class k proportional to imbalance ** k),
  labels one-hot.
- grid: a (rows, cols) map of probabilities per sample, smooth in space.
- graph: `n_nodes` nodes in communities (the groups), a stochastic-block adjacency, and node
  embeddings clustered by community.
- multitask: 4 box coordinates and a one-hot class per sample, concatenated.
- spurious (binary, `data.spurious`): an attribute equal to the label in that fraction of the
  samples, given to the model as one easy feature, while the label's own signal is the noisy
  score above; the groups are the four (label, attribute) pairs, so the samples whose attribute
  disagrees with their label are the minority groups (as in Waterbirds).
`data.nan_rate` replaces that fraction of the training targets' entries by NaN (and a tenth of
those by +Inf). Only NumPy is used, so the same seed gives the same arrays on every backend.
"""

from __future__ import annotations

import numpy as np

from lossbench.config.schema import SyntheticData, Task
from lossbench.data.dataset import Dataset, Split, spoil_targets


def group_scales(cfg: SyntheticData) -> np.ndarray:
    """The per-group target scales, geometric in [group_scale_min, group_scale_max]."""
    return np.geomspace(cfg.group_scale_min, cfg.group_scale_max, cfg.n_groups)


def class_priors(cfg: SyntheticData) -> np.ndarray:
    """Class k's prior, proportional to class_imbalance ** k."""
    p = cfg.class_imbalance ** np.arange(cfg.n_classes)
    return p / p.sum()


N_BOX = 4  # box coordinates of the multitask task


def _binary(rng: np.random.Generator, x: np.ndarray, cfg: SyntheticData) -> np.ndarray:
    n, f = x.shape
    w = rng.standard_normal(f) / np.sqrt(f)
    score = x @ w + 0.5 * np.tanh(x[:, 0] * x[:, min(1, f - 1)])
    score = score + cfg.noise * rng.standard_normal(n)
    # The label is the top `positive_rate` of the score: the rate is exact, the signal real.
    return (score > np.quantile(score, 1.0 - cfg.positive_rate)).astype("float32")[:, None]


def _smooth(rng: np.random.Generator, x: np.ndarray, width: int) -> np.ndarray:
    """A smooth nonlinear function of the features with `width` outputs of unit-ish scale."""
    f = x.shape[1]
    w = rng.standard_normal((f, width)) / np.sqrt(f)
    v = rng.standard_normal((f, width)) / np.sqrt(f)
    return x @ w + 0.5 * np.sin(2.0 * (x @ v))


def _classes(rng: np.random.Generator, x: np.ndarray, cfg: SyntheticData) -> np.ndarray:
    """Imbalanced class labels (one-hot) from noisy logits whose biases set the priors."""
    logits = 2.0 * _smooth(rng, x, cfg.n_classes) + np.log(class_priors(cfg))
    logits = logits + rng.gumbel(size=logits.shape)  # sampling from softmax(logits)
    return np.eye(cfg.n_classes, dtype="float32")[logits.argmax(axis=1)]


def _grid(rng: np.random.Generator, x: np.ndarray, cfg: SyntheticData) -> np.ndarray:
    """Per-sample probability maps: a few smooth spatial bases mixed by the features."""
    rows, cols = cfg.grid
    r, c = np.meshgrid(np.linspace(-1, 1, rows), np.linspace(-1, 1, cols), indexing="ij")
    bases = np.stack([np.ones_like(r), r, c, r * c, r**2 - c**2, np.cos(np.pi * r)], axis=-1)
    coef = _smooth(rng, x, bases.shape[-1])
    logits = np.einsum("nk,ijk->nij", coef, bases)
    return (1.0 / (1.0 + np.exp(-logits))).astype("float32")


def _graph(
    rng: np.random.Generator, groups: np.ndarray, cfg: SyntheticData
) -> tuple[np.ndarray, np.ndarray]:
    """A stochastic-block adjacency over communities (= groups) and clustered embeddings."""
    n = len(groups)
    same = groups[:, None] == groups[None, :]
    prob = np.where(same, cfg.graph_p_in, cfg.graph_p_out)
    upper = np.triu(rng.random((n, n)) < prob, k=1)
    adjacency = (upper | upper.T).astype("float32")
    centers = rng.standard_normal((cfg.n_groups, cfg.embedding_dim))
    y = centers[groups] + 0.5 * rng.standard_normal((n, cfg.embedding_dim))
    return adjacency, y.astype("float32")


def make_synthetic(task: Task, cfg: SyntheticData, seed: int) -> Dataset:
    """Make the arrays for `task` from `cfg`, deterministically from `seed`.

    Args:
        task: which targets to make.
        cfg: sizes, rates and group settings.
        seed: the only source of randomness.

    Returns:
        A `Dataset` with float32 features and targets and int32 group ids.
    """
    rng = np.random.default_rng(seed)
    n = cfg.n_nodes if task is Task.graph else cfg.n_samples
    f, g = cfg.n_features, cfg.n_groups
    x = rng.standard_normal((n, f))
    size_weights = 1.0 / np.arange(1, g + 1) ** cfg.group_skew
    groups = rng.choice(g, size=n, p=size_weights / size_weights.sum()).astype("int32")
    scales = group_scales(cfg)
    adjacency = None

    columns = {}
    if task is Task.binary:
        y = _binary(rng, x, cfg)
        if cfg.spurious is not None:
            groups, attribute = _spurious_groups(rng, y[:, 0], cfg.spurious)
            scales = np.ones(len(SPURIOUS_GROUPS))
            x = np.concatenate([x, attribute[:, None]], axis=1)
            columns["groups"] = dict(enumerate(SPURIOUS_GROUPS))
    elif task is Task.grouped:
        base = _smooth(rng, x, cfg.n_outputs)
        base = base + cfg.noise * rng.standard_normal(base.shape)
        y = (scales[groups][:, None] * base).astype("float32")
    elif task is Task.multiclass:
        y = _classes(rng, x, cfg)
    elif task is Task.grid:
        y = _grid(rng, x, cfg)
    elif task is Task.graph:
        adjacency, y = _graph(rng, groups, cfg)
    else:  # multitask: box coordinates in [0, 1] and a class
        box = 1.0 / (1.0 + np.exp(-_smooth(rng, x, N_BOX)))
        y = np.concatenate([box.astype("float32"), _classes(rng, x, cfg)], axis=1)

    # The group one-hot is a feature, except where the groups encode the label.
    group_features = [] if columns else [np.eye(g)[groups]]
    features = np.concatenate([x, *group_features], axis=1).astype("float32")
    train, val, test = _splits(rng, features, y, groups, cfg)
    minority = 1 if cfg.positive_rate <= 0.5 else 0
    return Dataset(task, train, val, scales, test, adjacency, columns=columns, minority=minority)


def _splits(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, groups: np.ndarray, cfg: SyntheticData
) -> tuple[Split, Split, Split | None]:
    """Training, validation and (with `data.test_fraction`) test splits by a seeded shuffle;
    `data.nan_rate` spoils training targets only."""
    n = len(x)
    n_val, n_test = int(np.ceil(n * cfg.val_fraction)), int(np.ceil(n * cfg.test_fraction))
    order = rng.permutation(n)
    val, test, train = order[:n_val], order[n_val : n_val + n_test], order[n_val + n_test :]
    y_train = spoil_targets(rng, y[train], cfg.nan_rate) if cfg.nan_rate > 0 else y[train]

    def split(rows: np.ndarray, y_rows: np.ndarray) -> Split:
        return Split(x[rows], y_rows, groups[rows], rows.astype("int32"))

    return split(train, y_train), split(val, y[val]), split(test, y[test]) if n_test else None


# The spurious option's groups, by id: (label, attribute) pairs.
SPURIOUS_GROUPS = ("y=0,a=0", "y=0,a=1", "y=1,a=0", "y=1,a=1")


def _spurious_groups(
    rng: np.random.Generator, labels: np.ndarray, agreement: float
) -> tuple[np.ndarray, np.ndarray]:
    """Group ids 2 * label + attribute, and the attribute as a feature (+-1 with a little
    noise), where the attribute equals the label with probability `agreement`."""
    attribute = np.where(rng.random(len(labels)) < agreement, labels, 1 - labels)
    groups = (2 * labels + attribute).astype("int32")
    feature = 2.0 * attribute - 1.0 + 0.1 * rng.standard_normal(len(labels))
    return groups, feature
