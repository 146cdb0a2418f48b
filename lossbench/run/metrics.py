"""Per-epoch task metrics, computed on the host from validation predictions (NumPy, scikit-learn).

- binary: accuracy, ROC-AUC, PR-AUC (average precision), minority recall at 0.5, balanced
  accuracy, the geometric mean of the two class recalls, the Brier score and the expected
  calibration error of P(y=1) (15 equal-width bins); with groups, accuracy and minority recall
  per group and the worst group's.
- grouped: MSE overall, per group, and the worst group's.
- multiclass: accuracy, macro recall, balanced accuracy, the rarest class's recall, the
  multiclass Brier score and the expected calibration error of the top class (15 bins); with
  groups, accuracy and macro recall per group and the worst group's.
- grid: MSE overall, in the central half of the grid and on its border ring.
- graph: MSE and the mean cosine similarity of predicted embeddings across graph edges.
- multitask: box MSE and the class metrics above.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from lossbench.config.schema import Task
from lossbench.data.dataset import Dataset, Split
from lossbench.data.synthetic import N_BOX
from lossbench.errors import ConfigError, did_you_mean

# Equal-width bins of the expected calibration error (binary: of P(y=1); multiclass: of the top
# class's probability).
ECE_BINS = 15


# Lower is better for losses, squared errors and calibration error; higher for the rest.
_LOWER = re.compile(r"(^|_)(loss|mse|ece|error|brier)(_|$)")


def lower_is_better(metric: str) -> bool:
    """The metric's direction: True for losses, MSEs, ECE and the Brier score."""
    return bool(_LOWER.search(metric))


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


def binary_metrics(y_true: np.ndarray, prob: np.ndarray, minority: int = 1) -> dict[str, float]:
    """Metrics of predicted positive-class probabilities against 0/1 labels; `minority_recall`
    is the recall of the label `minority` (the rarer one in training)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y_true).reshape(-1).astype(int)
    p = np.asarray(prob, dtype="float64").reshape(-1)
    hit = p >= 0.5
    both = 0 < y.sum() < len(y)  # AUCs need both classes present
    recall_pos, recall_neg = _mean(hit[y == 1]), _mean(~hit[y == 0])
    return {
        "accuracy": float(np.mean(hit == (y == 1))),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "minority_recall": recall_pos if minority == 1 else recall_neg,
        "balanced_accuracy": float(np.nanmean([recall_pos, recall_neg])) if len(y) else np.nan,
        "gmean": float(np.sqrt(recall_pos * recall_neg)),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": binary_calibration_error(p, y),
    }


def binary_calibration_error(prob: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of P(y=1): the mean |fraction of positives - mean probability| over equal-width
    probability bins, weighted by their share of samples (`reliability_bins`)."""
    mean_prob, positives, counts = reliability_bins(prob, y, bins)
    share = counts / max(counts.sum(), 1)
    return float(np.sum(share * np.abs(positives - mean_prob)))


def reliability_bins(
    prob: np.ndarray, y: np.ndarray, bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per non-empty equal-width bin of P(y=1): the mean probability, the fraction of
    positives and the number of samples (scikit-learn's calibration_curve bins: a probability
    on an edge belongs to the lower bin)."""
    p = np.asarray(prob, dtype="float64").reshape(-1)
    labels = np.asarray(y, dtype="float64").reshape(-1)
    which = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], p)
    counts = np.bincount(which, minlength=bins)
    kept = counts > 0
    mean_prob = np.bincount(which, weights=p, minlength=bins)[kept] / counts[kept]
    positives = np.bincount(which, weights=labels, minlength=bins)[kept] / counts[kept]
    return mean_prob, positives, counts[kept]


def group_metrics(
    hit: np.ndarray, recall_of: Any, groups: np.ndarray, n_groups: int
) -> dict[str, float]:
    """Accuracy and recall per group (`hit`: correct predictions; `recall_of(rows)`: the
    recall on those rows) and the worst group's; groups without samples are NaN and skipped."""
    out: dict[str, float] = {}
    accuracy, recall = [], []
    for g in range(n_groups):
        rows = groups == g
        accuracy.append(_mean(hit[rows]))
        recall.append(recall_of(rows) if rows.any() else float("nan"))
        out[f"accuracy_group_{g}"], out[f"recall_group_{g}"] = accuracy[-1], recall[-1]
    with np.errstate(all="ignore"):
        out["worst_group_accuracy"] = float(np.nanmin(accuracy)) if n_groups else np.nan
        out["worst_group_recall"] = (
            float(np.nanmin(recall)) if not np.all(np.isnan(recall)) else float("nan")
        )
    return out


def grouped_metrics(
    y_true: np.ndarray, pred: np.ndarray, groups: np.ndarray, n_groups: int
) -> dict[str, float]:
    """MSE overall and per group (NaN for a group with no samples), and the worst group's."""
    err = np.mean((np.asarray(y_true, "float64") - np.asarray(pred, "float64")) ** 2, axis=1)
    sums = np.bincount(groups, weights=err, minlength=n_groups)
    counts = np.bincount(groups, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_group = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    out = {"mse": float(err.mean())}
    out.update({f"mse_group_{g}": float(v) for g, v in enumerate(per_group)})
    out["worst_group_mse"] = float(np.nanmax(per_group))
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype="float64")
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def expected_calibration_error(prob: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the mean |accuracy - confidence| over equal-width confidence bins, weighted by size."""
    confidence = prob.max(axis=1)
    correct = prob.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(total)


def macro_recall(labels: np.ndarray, guess: np.ndarray) -> float:
    """The mean recall over the classes present in `labels` (balanced accuracy)."""
    present = np.unique(labels)
    return float(np.mean([(guess[labels == k] == k).mean() for k in present]))


def multiclass_metrics(y_onehot: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """Accuracy, macro recall (= balanced accuracy), the rarest class's recall, the multiclass
    Brier score and ECE from logits."""
    onehot = np.asarray(y_onehot, dtype="float64")
    labels = onehot.argmax(axis=1)
    prob = softmax(logits)
    guess = prob.argmax(axis=1)
    present = np.unique(labels)
    rarest = present[np.argmin([np.sum(labels == k) for k in present])]
    recall = macro_recall(labels, guess)
    return {
        "accuracy": float((guess == labels).mean()),
        "macro_recall": recall,
        "minority_recall": float((guess[labels == rarest] == rarest).mean()),
        "ece": expected_calibration_error(prob, labels),
        "balanced_accuracy": recall,
        "brier": float(np.mean(np.sum((prob - onehot) ** 2, axis=1))),
    }


def grid_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MSE over the whole grid, its central half (in each direction) and its border ring."""
    err = (np.asarray(y_true, "float64") - np.asarray(pred, "float64")) ** 2
    rows, cols = err.shape[1:]
    center = np.zeros((rows, cols), bool)
    center[rows // 4 : rows - rows // 4, cols // 4 : cols - cols // 4] = True
    border = np.zeros((rows, cols), bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    return {
        "mse": float(err.mean()),
        "mse_center": float(err[:, center].mean()),
        "mse_border": float(err[:, border].mean()),
    }


def graph_metrics(
    y_true: np.ndarray, pred: np.ndarray, node_ids: np.ndarray, adjacency: np.ndarray
) -> dict[str, float]:
    """MSE, and the mean cosine similarity of predictions over edges among these nodes."""
    pred = np.asarray(pred, "float64")
    a = adjacency[np.ix_(node_ids, node_ids)]
    unit = pred / np.maximum(np.linalg.norm(pred, axis=1, keepdims=True), 1e-12)
    i, j = np.nonzero(np.triu(a, k=1))
    cos = float(np.sum(unit[i] * unit[j], axis=1).mean()) if len(i) else float("nan")
    return {"mse": float(np.mean((np.asarray(y_true, "float64") - pred) ** 2)), "edge_cosine": cos}


def task_metrics(data: Dataset, split: Split, pred: np.ndarray) -> dict[str, float]:
    """The metrics that answer the task's question, on `split` (usually validation).

    Args:
        data: the dataset (task, groups, adjacency).
        split: the rows scored.
        pred: the model's effective predictions for those rows.
    """
    task = data.task
    if task is Task.binary:
        out = binary_metrics(split.y, pred, data.minority)
        if data.n_groups > 1:
            y = np.asarray(split.y).reshape(-1) == 1
            hit = (np.asarray(pred).reshape(-1) >= 0.5) == y
            rare = y == bool(data.minority)
            out.update(
                group_metrics(
                    hit, lambda rows: _mean(hit[rows & rare]), split.groups, data.n_groups
                )
            )
        return out
    if task is Task.grouped:
        y, pred = data.in_data_units(split.y), data.in_data_units(np.asarray(pred))
        return grouped_metrics(y, pred, split.groups, data.n_groups)
    if task is Task.multiclass:
        out = multiclass_metrics(split.y, pred)
        if data.n_groups > 1:
            labels, guess = np.asarray(split.y).argmax(axis=1), np.asarray(pred).argmax(axis=1)
            hit = guess == labels
            out.update(
                group_metrics(
                    hit,
                    lambda rows: macro_recall(labels[rows], guess[rows]),
                    split.groups,
                    data.n_groups,
                )
            )
        return out
    if task is Task.grid:
        return grid_metrics(split.y, pred)
    if task is Task.graph:
        return graph_metrics(split.y, pred, split.ids, data.adjacency)
    box_mse = float(np.mean((split.y[:, :N_BOX] - pred[:, :N_BOX]) ** 2))
    return {"box_mse": box_mse, **multiclass_metrics(split.y[:, N_BOX:], pred[:, N_BOX:])}


def metric_names(task: Task) -> list[str]:
    """The names `task_metrics` reports for `task` (per-group columns as `mse_group_0`), read
    from the metric functions themselves on a two-sample example."""
    two = np.array([[0.0, 1.0], [1.0, 0.0]])
    groups = np.array([0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = {
            Task.binary: lambda: binary_metrics(two[:, :1], np.array([[0.2], [0.7]])),
            Task.grouped: lambda: grouped_metrics(two, two, groups, 1),
            Task.multiclass: lambda: multiclass_metrics(two, two),
            Task.grid: lambda: grid_metrics(np.zeros((2, 3, 3)), np.zeros((2, 3, 3))),
            Task.graph: lambda: graph_metrics(two, two, np.array([0, 1]), np.ones((2, 2))),
            Task.multitask: lambda: {"box_mse": 0.0, **multiclass_metrics(two, two)},
        }[task]()
    if task in (Task.binary, Task.multiclass):  # with groups in the data
        names.update(group_metrics(np.ones(2, bool), lambda rows: 1.0, groups, 1))
    return list(names)


def selectable(data: Dataset) -> list[str]:
    """What `trainer.select=best:<metric>` can name on this data: val_loss and the metrics
    `task_metrics` reports for it (per-group ones included)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        names = task_metrics(data, data.val, np.zeros_like(data.val.y))
    return ["val_loss", *names]


_PER_GROUP = re.compile(r"^(.+)_group_\d+$")


def reported(metric: str, names: list[str], exact: bool = True) -> bool:
    """Whether `metric` is among `names`; with `exact=False` (before the data is read) any
    group's id passes where group 0's does (`mse_group_3` as `mse_group_0`)."""
    per_group = _PER_GROUP.match(metric)
    return metric in names or (not exact and bool(per_group) and f"{per_group[1]}_group_0" in names)


def reported_metric(
    metric: str, names: list[str], key: str, expected: str, exact: bool = True
) -> str:
    """`metric`, when a run reporting `names` reports it (see `reported`): the one rule for every
    key that names a metric (`trainer.select`, `hydra.sweeper.objective`).

    Raises:
        ConfigError: naming `key`, the metrics there are and the closest one.
    """
    if reported(metric, names, exact):
        return metric
    hint = did_you_mean(metric, names)
    shown = [n for n in names if not _PER_GROUP.match(n)]
    shown += sorted({f"{m[1]}_group_<id>" for m in map(_PER_GROUP.match, names) if m})
    raise ConfigError(key, f"{expected} this run reports ({', '.join(shown)})", f"{metric}{hint}")


def selected_metric(
    select: str, reported_names: Callable[[], list[str]], exact: bool = True
) -> str | None:
    """The metric `trainer.select` names (None for `last`), refused when the names
    `reported_names()` gives lack it; they are computed only for a metric (scoring them imports
    scikit-learn). With `exact=False` (before the data is read) any group's id passes where
    group 0's does.

    Raises:
        ConfigError: naming `trainer.select`, the metrics there are and the closest one.
    """
    if select == "last":
        return None
    metric = select.partition(":")[2].strip()
    try:
        return reported_metric(
            metric,
            reported_names(),
            "trainer.select",
            "last, or best:<metric> with a metric",
            exact,
        )
    except ConfigError as error:  # the value received is the whole setting
        raise ConfigError(
            error.key, error.expected, f"{select}{str(error.received)[len(metric) :]}"
        ) from None
