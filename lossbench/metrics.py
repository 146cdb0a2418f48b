"""Per-epoch task metrics, computed on the host from validation predictions (NumPy, scikit-learn).

Imbalanced binary: accuracy, ROC-AUC, PR-AUC (average precision) and minority recall at 0.5.
Grouped regression: MSE overall, per group, and the worst group's.
"""

from __future__ import annotations

import numpy as np

from lossbench.config import Task


def binary_metrics(y_true: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """Metrics of predicted positive-class probabilities against 0/1 labels."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y_true).reshape(-1).astype(int)
    p = np.asarray(prob, dtype="float64").reshape(-1)
    hit = p >= 0.5
    both = 0 < y.sum() < len(y)  # AUCs need both classes present
    return {
        "accuracy": float(np.mean(hit == (y == 1))),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "minority_recall": float(hit[y == 1].mean()) if y.any() else float("nan"),
    }


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


def task_metrics(
    task: Task, y_true: np.ndarray, pred: np.ndarray, groups: np.ndarray, n_groups: int
) -> dict[str, float]:
    """The metrics that answer `task`'s question."""
    if task is Task.binary:
        return binary_metrics(y_true, pred)
    return grouped_metrics(y_true, pred, groups, n_groups)
