"""Shared references for the loss tests: NumPy float64 computations, finite differences,
the loss cases, and a per-sample evaluation helper."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tests.loss_cases import make_cases

SHAPES = [(1, 1), (7, 3), (64, 4)]


def ref_grouped(y, p, groups, scales):
    s = np.asarray(scales, "float64")[groups][:, None]
    return np.mean((y - s * p) ** 2, axis=1)


def ref_grouped_dynamic(y, p, groups, n_groups, eps, statistic):
    per = np.mean(y**2, axis=1) if statistic == "rms" else np.mean(np.abs(y), axis=1)
    stat = np.zeros(n_groups)
    for g in range(n_groups):
        members = per[groups == g]
        if members.size:
            m = members.mean()
            stat[g] = np.sqrt(m) if statistic == "rms" else m
    denom = stat + eps
    scale = np.where(denom > 0, 1.0 / np.where(denom > 0, denom, 1.0), 1.0)
    return np.mean(((y - p) * scale[groups][:, None]) ** 2, axis=1)


def per_sample(loss, y_true, y_pred):
    return keras.ops.convert_to_numpy(loss.call(tf.constant(y_true), tf.constant(y_pred)))


def random_case(rng, shape, n_groups):
    b, o = shape
    y = rng.normal(size=(b, o)) * rng.uniform(0.1, 5.0)
    p = rng.normal(size=(b, o))
    # Unsorted ids that leave the last group (and often others) empty.
    groups = rng.integers(0, max(n_groups - 1, 1), size=b)
    return y.astype("float32"), p.astype("float32"), groups


ROOT = Path(__file__).resolve().parents[2]


CASES = make_cases()


def values(loss, y_true, y_pred):
    return keras.ops.convert_to_numpy(loss.call(tf.constant(y_true), tf.constant(y_pred)))


def f64(x):
    return np.asarray(x, dtype="float64")


def numeric_grad(fn, p, h=1e-6):
    grad = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        up, down = p.copy(), p.copy()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (fn(up) - fn(down)) / (2 * h)
    return grad


def ref_context_mask(y, p, mask):
    return np.mean((f64(y) - f64(p)) ** 2 * mask, axis=(1, 2))


def ref_context_graph(y, p, nodes, adjacency, weight, eps=1e-8):
    """A deliberately plain loop over node pairs: independent of the vectorized version."""
    y, p = f64(y), f64(p)
    out = np.mean((y - p) ** 2, axis=1)
    for i in range(len(p)):
        neighbours = [j for j in range(len(p)) if adjacency[nodes[i], nodes[j]] and i != j]
        total = 0.0
        for j in neighbours:
            ni = max(np.linalg.norm(p[i]), eps)
            nj = max(np.linalg.norm(p[j]), eps)
            total += 1.0 - p[i] @ p[j] / (ni * nj)
        out[i] += weight * total / max(len(neighbours), 1)
    return out


def ref_bce(y, p, eps=1e-7):
    p = np.clip(f64(p), eps, 1 - eps)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p), axis=1)


def ref_threshold(y, p, threshold, boost, eps=1e-7):
    p = np.clip(f64(p), eps, 1 - eps)
    q = np.where(p < threshold, p + boost * (1 - p), p)
    return ref_bce(y, q, eps)


def ref_temperature(y, z, t):
    z = f64(z) / t
    log_softmax = z - z.max(1, keepdims=True)
    log_softmax = log_softmax - np.log(np.exp(log_softmax).sum(1, keepdims=True))
    return -np.sum(y * log_softmax, axis=1)


def ref_robust(y, p, w):
    y, p, w = f64(y), f64(p), f64(w)
    valid = np.isfinite(y) & np.isfinite(p)
    err = np.where(valid, w * (np.where(valid, y, 0) - np.where(valid, p, 0)) ** 2, 0.0)
    return len(y) * err.sum(1) / w[valid].sum()
