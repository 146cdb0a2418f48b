"""Per-epoch metrics against scikit-learn and hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    mean_squared_error,
    recall_score,
    roc_auc_score,
)

from lossbench.run.metrics import (
    binary_metrics,
    expected_calibration_error,
    graph_metrics,
    grid_metrics,
    grouped_metrics,
    multiclass_metrics,
    reliability_bins,
    softmax,
)

RNG = np.random.default_rng(11)


def test_binary_metrics_equal_scikit_learn():
    y = (RNG.random(200) < 0.15).astype("float32")
    p = np.clip(0.3 * y + RNG.random(200) * 0.7, 0, 1)
    m = binary_metrics(y[:, None], p[:, None])
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.5))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert m["minority_recall"] == pytest.approx(recall_score(y, p >= 0.5))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p >= 0.5))
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))
    specificity = recall_score(y, p >= 0.5, pos_label=0)
    assert m["gmean"] == pytest.approx(np.sqrt(recall_score(y, p >= 0.5) * specificity))


def test_binary_ece_is_scikit_learns_reliability_curve_weighted_by_bin_size():
    y = (RNG.random(500) < 0.3).astype("float64")
    p = np.clip(0.4 * y + 0.6 * RNG.random(500), 0, 1)
    fraction, mean_p = calibration_curve(y, p, n_bins=15, strategy="uniform")
    counts = np.histogram(p, bins=np.linspace(0, 1, 16))[0]
    weights = counts[counts > 0] / len(p)
    expected = float(np.sum(weights * np.abs(fraction - mean_p)))
    assert binary_metrics(y[:, None], p[:, None])["ece"] == pytest.approx(expected, rel=1e-9)
    mean_prob, positives, bin_counts = reliability_bins(p, y)  # the report's diagram
    np.testing.assert_allclose(mean_prob, mean_p, rtol=1e-12)
    np.testing.assert_allclose(positives, fraction, rtol=1e-12)
    assert bin_counts.sum() == len(p)
    calibrated = binary_metrics(np.array([[0.0], [1.0]] * 50), np.full((100, 1), 0.5))
    assert calibrated["ece"] == pytest.approx(0.0) and calibrated["brier"] == pytest.approx(0.25)


def test_binary_metrics_with_one_class_are_nan_not_a_crash():
    m = binary_metrics(np.zeros((5, 1)), np.full((5, 1), 0.2))
    assert m["accuracy"] == 1.0 and np.isnan(m["roc_auc"]) and np.isnan(m["minority_recall"])


def test_grouped_metrics_per_group_and_worst_group():
    y, p = RNG.normal(size=(50, 3)), RNG.normal(size=(50, 3))
    groups = RNG.integers(0, 3, size=50)  # group 3 of 4 is empty
    m = grouped_metrics(y, p, groups, 4)
    assert m["mse"] == pytest.approx(mean_squared_error(y, p))
    for g in range(3):
        members = groups == g
        assert m[f"mse_group_{g}"] == pytest.approx(mean_squared_error(y[members], p[members]))
    assert np.isnan(m["mse_group_3"])
    assert m["worst_group_mse"] == pytest.approx(max(m[f"mse_group_{g}"] for g in range(3)))


def test_multiclass_metrics_equal_scikit_learn():
    labels = RNG.choice(4, size=300, p=[0.5, 0.3, 0.15, 0.05])
    logits = RNG.normal(size=(300, 4)) + 2.0 * np.eye(4)[labels]
    m = multiclass_metrics(np.eye(4)[labels], logits)
    guess = logits.argmax(axis=1)
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, guess))
    assert m["macro_recall"] == pytest.approx(recall_score(labels, guess, average="macro"))
    rarest = np.bincount(labels).argmin()
    assert m["minority_recall"] == pytest.approx(
        recall_score(labels, guess, labels=[rarest], average="macro")
    )
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, guess))
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # float64 reference
    brier = np.mean(np.sum((prob - np.eye(4)[labels]) ** 2, axis=1))
    assert m["brier"] == pytest.approx(brier, rel=1e-9)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_group_metrics_find_the_group_that_is_always_wrong(task):
    from lossbench.config.schema import Task
    from lossbench.data.dataset import Dataset, Split
    from lossbench.run.metrics import task_metrics

    n = 120
    groups = np.arange(n) % 3
    labels = RNG.integers(0, 2, size=n)
    wrong = groups == 2  # group 2: every prediction the other class
    guess = np.where(wrong, 1 - labels, labels)
    if task == "binary":
        y, pred = labels[:, None].astype("float32"), np.where(guess, 0.9, 0.1)[:, None]
    else:
        y, pred = np.eye(2)[labels], 3.0 * np.eye(2)[guess]
    split = Split(np.zeros((n, 1)), y, groups, np.arange(n))
    data = Dataset(Task(task), split, split, np.ones(3))
    m = task_metrics(data, split, pred)
    assert m["accuracy_group_2"] == 0.0 and m["worst_group_accuracy"] == 0.0
    assert m["accuracy_group_0"] == m["accuracy_group_1"] == 1.0
    assert m["recall_group_2"] == m["worst_group_recall"] == 0.0
    rows = groups == 0
    reference = (recall_score(labels[rows], guess[rows]) if task == "binary"
                 else balanced_accuracy_score(labels[rows], guess[rows]))  # fmt: skip
    assert m["recall_group_0"] == pytest.approx(reference)
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, guess))


def test_softmax_rows_sum_to_one_and_survive_large_logits():
    prob = softmax(np.array([[1000.0, 0.0], [0.0, 0.0]]))
    np.testing.assert_allclose(prob, [[1.0, 0.0], [0.5, 0.5]])


def test_expected_calibration_error_by_hand():
    # Two bins of 15 are used: confidences 0.9 (bin 13) and 0.6 (bin 9).
    prob = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 0, 0, 1, 0, 0])
    # Bin of 0.9: 4 samples, accuracy 3/4, confidence 0.9 -> |0.75 - 0.9| = 0.15.
    # Bin of 0.6: 2 samples (the last predicts class 1 with 0.6), accuracy 1/2 -> |0.5 - 0.6|.
    expected = 4 / 6 * 0.15 + 2 / 6 * 0.1
    assert expected_calibration_error(prob, labels) == pytest.approx(expected)
    perfect = np.eye(3)[[0, 1, 2]]
    assert expected_calibration_error(perfect, np.array([0, 1, 2])) == 0.0


def test_grid_metrics_center_and_border():
    y = np.zeros((2, 4, 4))
    p = np.zeros((2, 4, 4))
    p[:, 1:3, 1:3] = 1.0  # error only in the centre
    m = grid_metrics(y, p)
    assert m["mse"] == pytest.approx(4 / 16) and m["mse_center"] == 1.0 and m["mse_border"] == 0


def test_graph_metrics_cosine_over_edges_among_the_nodes():
    adjacency = np.zeros((5, 5))
    adjacency[0, 1] = adjacency[1, 0] = adjacency[1, 4] = adjacency[4, 1] = 1
    pred = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])  # nodes 0, 1, 4
    m = graph_metrics(np.zeros((3, 2)), pred, np.array([0, 1, 4]), adjacency)
    # Edges (0, 1): cosine 0; (1, 4): cosine 1/sqrt(2).
    assert m["edge_cosine"] == pytest.approx((0 + 1 / np.sqrt(2)) / 2)
    assert m["mse"] == pytest.approx(np.mean(pred**2))


def test_minority_recall_is_the_rarer_labels_recall():
    """On data with more positives than negatives (breast_cancer: 63% benign = 1), the
    minority is label 0; synthetic data decide it from `data.positive_rate` (1 on a tie)."""
    from lossbench.config.compose import compose
    from lossbench.data.load import make_dataset
    from lossbench.run.metrics import task_metrics

    cfg = compose(["data=sklearn", "data.name=breast_cancer", "loss=bce"])
    data = make_dataset(cfg.loss.training_task(), cfg.data, 0)
    assert np.mean(data.train.y) > 0.5 and data.minority == 0
    p = np.clip(0.45 * data.val.y + RNG.random(data.val.y.shape) * 0.6, 0, 1)
    got = task_metrics(data, data.val, p)["minority_recall"]
    y, hit = data.val.y.reshape(-1).astype(int), (p.reshape(-1) >= 0.5).astype(int)
    assert got == pytest.approx(recall_score(y, hit, pos_label=0), rel=1e-12)
    assert got != pytest.approx(recall_score(y, hit, pos_label=1))
    for rate, minority in ((0.7, 0), (0.5, 1), (0.1, 1)):
        cfg = compose(["loss=bce", f"data.positive_rate={rate}", "data.n_samples=400"])
        assert make_dataset(cfg.loss.training_task(), cfg.data, 0).minority == minority
