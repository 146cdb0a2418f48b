"""The literature baselines against NumPy float64 references and the Keras built-ins they must
coincide with at their neutral settings."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from lossbench import losses as L
from lossbench.losses import effective_number_weights

RNG = np.random.default_rng(7)
Y = (RNG.random((64, 1)) < 0.2).astype("float32")
P = RNG.uniform(0.01, 0.99, size=(64, 1)).astype("float32")
EPS = 1e-7


def per_sample(loss, y, p):
    return keras.ops.convert_to_numpy(loss.call(tf.constant(y), tf.constant(p)))


def ref_focal(y, p, gamma, alpha):
    y, p = y.astype("float64"), np.clip(p.astype("float64"), EPS, 1 - EPS)
    p_t = y * p + (1 - y) * (1 - p)
    value = -((1 - p_t) ** gamma) * np.log(p_t)
    if alpha is not None:
        value *= y * alpha + (1 - y) * (1 - alpha)
    return value.mean(axis=1)


@pytest.mark.parametrize(("gamma", "alpha"), [(0.0, None), (2.0, 0.25), (0.5, 0.9), (5.0, None)])
def test_focal_matches_numpy(gamma, alpha):
    np.testing.assert_allclose(per_sample(L.FocalLoss(gamma, alpha), Y, P),
                               ref_focal(Y, P, gamma, alpha), rtol=2e-5)  # fmt: skip


@pytest.mark.parametrize(("gamma", "alpha"), [(2.0, 0.25), (1.0, 0.6), (3.0, None)])
def test_focal_equals_keras_binary_focal_crossentropy(gamma, alpha):
    ours = L.FocalLoss(gamma=gamma, alpha=alpha, reduction="none")
    keras_loss = keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=alpha is not None, alpha=alpha or 0.25, gamma=gamma,
        reduction="none",
    )  # fmt: skip
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(Y, P)),
                               keras.ops.convert_to_numpy(keras_loss(Y, P)), rtol=1e-5)  # fmt: skip


def test_focal_with_gamma_zero_and_no_alpha_equals_keras_bce():
    ours = float(L.FocalLoss(gamma=0.0, alpha=None)(Y, P))
    assert ours == pytest.approx(float(keras.losses.BinaryCrossentropy()(Y, P)), rel=1e-6)


def test_focal_down_weights_confident_correct_samples():
    easy = np.array([[1.0]], "float32"), np.array([[0.95]], "float32")
    hard = np.array([[1.0]], "float32"), np.array([[0.3]], "float32")
    focal, bce = L.FocalLoss(gamma=2.0, alpha=None), L.BinaryCrossentropy()
    ratio_easy = per_sample(focal, *easy)[0] / per_sample(bce, *easy)[0]
    ratio_hard = per_sample(focal, *hard)[0] / per_sample(bce, *hard)[0]
    assert ratio_easy == pytest.approx(0.05**2, rel=1e-4)
    assert ratio_hard == pytest.approx(0.7**2, rel=1e-4)


@pytest.mark.parametrize("beta", [0.0, 0.9, 0.999, 0.9999])
def test_effective_number_weights_follow_the_paper(beta):
    counts = np.array([3600, 400])
    w = effective_number_weights(counts, beta)
    raw = np.array([(1 - beta) / (1 - beta**n) for n in counts])
    np.testing.assert_allclose(w, raw / raw.sum() * 2, rtol=1e-12)
    assert w.sum() == pytest.approx(2.0)
    if beta**400 < 1e-6:  # beta**n ~ 0 for both classes: their effective numbers saturate
        np.testing.assert_allclose(w, [1.0, 1.0], rtol=1e-6)
    else:
        assert w[1] > 1.5 * w[0]  # the rare class weighs more
    # beta -> 1 approaches inverse frequency.
    near_one = effective_number_weights(counts, 1 - 1e-9)
    inverse = (1 / counts) / (1 / counts).sum() * 2
    np.testing.assert_allclose(near_one, inverse, rtol=1e-3)


def test_class_balanced_matches_numpy_and_equals_bce_at_beta_zero():
    weights = [0.4, 1.6]
    for gamma in (0.0, 2.0):
        expected = ref_focal(Y, P, gamma, None) * np.where(Y[:, 0] == 1, 1.6, 0.4)
        np.testing.assert_allclose(per_sample(L.ClassBalancedLoss(weights, gamma=gamma), Y, P),
                                   expected, rtol=2e-5)  # fmt: skip
    flat = L.ClassBalancedLoss(effective_number_weights(np.array([50, 14]), 0.0).tolist())
    assert float(flat(Y, P)) == pytest.approx(float(keras.losses.BinaryCrossentropy()(Y, P)),
                                              rel=1e-6)  # fmt: skip


def ref_logit_adjusted(y, p, priors, tau):
    p = np.clip(p.astype("float64"), EPS, 1 - EPS)
    z = np.log(p / (1 - p)) + tau * np.log(priors[1] / priors[0])
    softplus = lambda v: np.logaddexp(0.0, v)  # noqa: E731
    return (y * softplus(-z) + (1 - y) * softplus(z)).mean(axis=1)


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 2.0])
def test_logit_adjusted_matches_numpy(tau):
    priors = [0.85, 0.15]
    np.testing.assert_allclose(per_sample(L.LogitAdjustedLoss(priors, tau), Y, P),
                               ref_logit_adjusted(Y, P, priors, tau), rtol=1e-4)  # fmt: skip


def test_logit_adjusted_at_tau_zero_equals_keras_bce_and_favours_the_rare_class():
    assert float(L.LogitAdjustedLoss([0.9, 0.1], tau=0.0)(Y, P)) == pytest.approx(
        float(keras.losses.BinaryCrossentropy()(Y, P)), rel=1e-5
    )
    positive = np.ones((1, 1), "float32"), np.full((1, 1), 0.5, "float32")
    negative = np.zeros((1, 1), "float32"), np.full((1, 1), 0.5, "float32")
    adjusted, bce = L.LogitAdjustedLoss([0.9, 0.1], tau=1.0), L.BinaryCrossentropy()
    # At p = 0.5 a rare positive costs more than under BCE and a common negative less, so the
    # model is pushed to give the rare class a larger margin.
    assert per_sample(adjusted, *positive)[0] > per_sample(bce, *positive)[0]
    assert per_sample(adjusted, *negative)[0] < per_sample(bce, *negative)[0]


def ref_group_dro(y, p, groups, n_groups, step, err=None):
    if err is None:
        err = ((y.astype("float64") - p) ** 2).mean(axis=1)
    losses = np.array([err[groups == g].mean() if (groups == g).any() else np.nan
                       for g in range(n_groups)])  # fmt: skip
    present = ~np.isnan(losses)
    logits = np.where(present, step * np.nan_to_num(losses), -np.inf)
    q = np.exp(logits - logits.max())
    q /= q.sum()
    return float(np.sum(q[present] * losses[present])), q, losses


@pytest.mark.parametrize("membership", ["index", "onehot"])
@pytest.mark.parametrize("step", [0.0, 0.5, 3.0])
def test_group_dro_batch_loss_is_the_softmax_weighted_group_loss(step, membership):
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 4, size=40)  # group 4 of 5 is absent
    y = (rng.normal(size=(40, 2)) * (1 + groups)[:, None]).astype("float32")
    p = rng.normal(size=(40, 2)).astype("float32")
    loss = L.GroupDROLoss(5, step_size=step, membership=membership)
    expected, _, group_losses = ref_group_dro(y, p, groups, 5, step)
    assert float(loss(loss.pack_targets(y, groups), p)) == pytest.approx(expected, rel=1e-5)
    if step == 0.0:  # every present group weighs the same
        assert expected == pytest.approx(np.nanmean(group_losses))


@pytest.mark.parametrize("sample_loss", ["bce", "ce"])
def test_group_dro_on_classification_weights_each_groups_cross_entropy(sample_loss):
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 4, size=48)
    if sample_loss == "bce":
        y = (rng.random((48, 1)) < 0.3).astype("float32")
        p = rng.uniform(0.01, 0.99, size=(48, 1)).astype("float32")
        p64 = p.astype("float64")
        err = -(y * np.log(p64) + (1 - y) * np.log(1 - p64)).mean(axis=1)
    else:
        y = np.eye(3, dtype="float32")[rng.integers(0, 3, size=48)]
        p = (3 * rng.normal(size=(48, 3))).astype("float32")
        z = p.astype("float64")
        log_softmax = z - np.log(np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1,
                                 keepdims=True)) - z.max(axis=1, keepdims=True)  # fmt: skip
        err = -(y * log_softmax).sum(axis=1)
    loss = L.GroupDROLoss(4, step_size=1.5, sample_loss=sample_loss)
    expected, _, _ = ref_group_dro(y, p, groups, 4, 1.5, err=err)
    assert float(loss(loss.pack_targets(y, groups), p)) == pytest.approx(expected, rel=1e-5)


def test_group_dro_with_a_large_step_is_the_worst_groups_loss():
    rng = np.random.default_rng(2)
    groups = rng.integers(0, 3, size=30)
    y = (rng.normal(size=(30, 1)) * np.array([0.5, 1.0, 4.0])[groups][:, None]).astype("float32")
    p = np.zeros_like(y)
    loss = L.GroupDROLoss(3, step_size=1e4)
    _, _, group_losses = ref_group_dro(y, p, groups, 3, 0.0)
    assert float(loss(loss.pack_targets(y, groups), p)) == pytest.approx(group_losses.max(),
                                                                         rel=1e-5)  # fmt: skip


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: L.FocalLoss(gamma=-1.0), "gamma=-1.0"),
        (lambda: L.FocalLoss(alpha=1.5), "alpha=1.5"),
        (lambda: L.ClassBalancedLoss([1.0]), "class_weights=[1.0]"),
        (lambda: L.ClassBalancedLoss([1.0, 1.0], beta=1.0), "beta=1.0"),
        (lambda: L.LogitAdjustedLoss([1.0, 0.0]), "priors=[1.0, 0.0]"),
        (lambda: L.LogitAdjustedLoss([0.5, 0.5], tau=-1.0), "tau=-1.0"),
        (lambda: L.GroupDROLoss(0), "num_groups=0"),
        (lambda: L.GroupDROLoss(3, step_size=float("inf")), "step_size=inf"),
    ],
)
def test_invalid_arguments_fail_when_built(make, message):
    with pytest.raises(ValueError, match="Invalid value for argument") as info:
        make()
    assert message in str(info.value)


def test_configs_build_the_baselines_from_the_training_data(tiny_config):
    from lossbench.run.experiment import build_experiment

    cb = build_experiment(tiny_config("class_balanced", "loss.beta=0.99"))
    counts = np.bincount(cb.data.train.y.reshape(-1).astype(int), minlength=2)
    np.testing.assert_allclose(cb.loss.class_weights, effective_number_weights(counts, 0.99))
    la = build_experiment(tiny_config("logit_adjusted", "loss.tau=1.5"))
    np.testing.assert_allclose(la.loss.priors, counts / counts.sum())
    assert la.loss.delta == pytest.approx(1.5 * np.log(counts[1] / counts[0]))
    dro = build_experiment(tiny_config("group_dro", "loss.step_size=2"))
    assert dro.loss.num_groups == dro.data.n_groups == 4
    focal = build_experiment(tiny_config("focal", "loss.alpha=null", "loss.gamma=1"))
    assert focal.loss.alpha is None and focal.loss.gamma == 1.0
