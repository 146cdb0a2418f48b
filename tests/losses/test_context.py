"""lossbench.losses.context: importance mask and graph adjacency."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from lossbench import losses as L
from lossbench.losses.context import cosine_pull, mask_pattern, pack_bits
from tests.loss_cases import value_and_grad
from tests.losses.references import ref_context_graph, ref_context_mask, values


@pytest.mark.parametrize("pattern", ["center", "border", "random", "ones"])
def test_context_mask_matches_numpy(pattern):
    rng = np.random.default_rng(0)
    mask = mask_pattern(pattern, (5, 6), 3.0, seed=1)
    y, p = rng.random((9, 5, 6)), rng.random((9, 5, 6))
    got = values(L.ContextMaskLoss(mask), y.astype("float32"), p.astype("float32"))
    np.testing.assert_allclose(got, ref_context_mask(y, p, mask), rtol=1e-5)


def test_context_mask_of_ones_equals_mse():
    rng = np.random.default_rng(1)
    y, p = rng.random((7, 4, 4)).astype("float32"), rng.random((7, 4, 4)).astype("float32")
    masked = float(L.ContextMaskLoss(np.ones((4, 4)))(y, p))
    np.testing.assert_allclose(masked, float(keras.losses.MeanSquaredError()(y, p)), rtol=1e-6)


def test_mask_patterns_put_weight_where_they_say():
    center, border = mask_pattern("center", (9, 9), 4.0, 0), mask_pattern("border", (9, 9), 4.0, 0)
    assert center[4, 4] == center.max() and center[0, 0] < 1.01
    assert border[0, 4] == 5.0 and border[4, 4] == 1.0
    np.testing.assert_array_equal(mask_pattern("ones", (3, 2), 4.0, 0), np.ones((3, 2)))
    a, b = mask_pattern("random", (3, 3), 1.0, 7), mask_pattern("random", (3, 3), 1.0, 7)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("weight", [0.0, 0.7, 3.0])
@pytest.mark.parametrize(
    ("n_nodes", "batch", "density", "edge_list"),
    [(30, 15, 0.3, False), (200, 150, 0.01, True)],  # a small batch: dense; most of a graph: edges
)
def test_context_graph_matches_a_loop_over_node_pairs(weight, n_nodes, batch, density, edge_list):
    rng = np.random.default_rng(2)
    adjacency = (rng.random((n_nodes, n_nodes)) < density).astype("float32")
    adjacency = np.triu(adjacency, 1) + np.triu(adjacency, 1).T
    nodes = rng.choice(n_nodes, size=batch, replace=False)
    y, p = rng.normal(size=(batch, 4)), rng.normal(size=(batch, 4))
    p[3] = 0.0  # a zero embedding
    loss = L.ContextGraphLoss.from_adjacency(adjacency, graph_weight=weight)
    assert loss.use_edge_list(batch, 4) is edge_list
    y_true = loss.pack_targets(y, nodes)
    got = values(loss, y_true, p.astype("float32"))
    np.testing.assert_allclose(got, ref_context_graph(y, p, nodes, adjacency, weight), rtol=1e-5)
    grad = value_and_grad(loss, y_true, p.astype("float32"))[1]
    assert np.isfinite(grad).all()


def test_context_graph_with_zero_weight_equals_mse_and_zero_norm_embeddings_stay_finite():
    rng = np.random.default_rng(3)
    adjacency = np.ones((6, 6)) - np.eye(6)
    y = rng.normal(size=(6, 3)).astype("float32")
    p = rng.normal(size=(6, 3)).astype("float32")
    p[2] = 0.0  # a zero embedding
    plain = L.ContextGraphLoss.from_adjacency(adjacency, graph_weight=0.0)
    y_true = plain.pack_targets(y, np.arange(6))
    np.testing.assert_allclose(
        float(plain(y_true, p)), float(keras.losses.MeanSquaredError()(y, p)), rtol=1e-6
    )
    loss = L.ContextGraphLoss.from_adjacency(adjacency, graph_weight=1.0)
    p_var = tf.Variable(p)
    with tf.GradientTape() as tape:
        value = loss(y_true, p_var)
    grad = tape.gradient(value, p_var).numpy()
    assert np.isfinite(float(value)) and np.isfinite(grad).all()
    ref = ref_context_graph(y, p, np.arange(6), adjacency, 1.0).mean()
    np.testing.assert_allclose(float(value), ref, rtol=1e-5)


def test_packed_adjacency_reads_back_every_entry():
    """70 nodes: rows end mid-word, and columns 31 and 63 sit on a word's sign bit."""
    rng = np.random.default_rng(5)
    adjacency = (rng.random((70, 70)) < 0.5).astype("float32")
    adjacency = np.triu(adjacency, 1) + np.triu(adjacency, 1).T
    loss = L.ContextGraphLoss.from_adjacency(adjacency)
    assert pack_bits(adjacency).shape == (70 * 3,)
    for ids in (np.arange(70), rng.permutation(70)[:33], np.array([31, 63, 0, 69, 32])):
        got = keras.ops.convert_to_numpy(loss.batch_adjacency(tf.constant(ids, tf.int32)))
        np.testing.assert_array_equal(got, adjacency[np.ix_(ids, ids)])


def test_written_out_graph_gradient_equals_autodiff_of_the_plain_formula():
    """`cosine_pull`'s hand-written gradient against TensorFlow's autodiff of the direct formula,
    in float64, with uneven upstream weights, a zero row and rows held by the norm's floor."""
    rng = np.random.default_rng(6)
    eps = 0.5
    upper = np.triu(rng.random((12, 12)) < 0.4, 1)
    a = tf.constant((upper | upper.T).astype("float64"))
    p0 = rng.normal(size=(12, 5))
    p0[2] = 0.0
    p0[7] *= 0.3 / np.linalg.norm(p0[7])  # below the floor: |p| is held at eps
    upstream = tf.constant(rng.uniform(0.1, 2.0, size=12))

    def direct(p):
        norm = tf.sqrt(tf.maximum(tf.reduce_sum(p * p, -1, keepdims=True), eps**2))
        unit = p / norm
        degree = tf.reduce_sum(a, -1)
        pull = degree - tf.reduce_sum(unit * tf.matmul(a, unit), -1)
        return pull / tf.maximum(degree, 1.0)

    grads = []
    for fn in (direct, lambda p: cosine_pull(p, a, eps)):
        p = tf.Variable(p0)
        with tf.GradientTape() as tape:
            value = fn(p)
            total = tf.reduce_sum(upstream * value)
        grads.append((value.numpy(), tape.gradient(total, p).numpy()))
    np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads[1][1], grads[0][1], rtol=1e-10, atol=1e-12)


def test_context_graph_is_vectorized_for_a_large_graph():
    """1,024 nodes x 64 dims in one batch: one (B, B) product, no per-pair Python work."""
    rng = np.random.default_rng(4)
    adjacency = (rng.random((1024, 1024)) < 0.01).astype("float32")
    loss = L.ContextGraphLoss.from_adjacency(adjacency)
    y_true = tf.constant(loss.pack_targets(rng.normal(size=(1024, 64)), np.arange(1024)))
    p = tf.Variable(rng.normal(size=(1024, 64)).astype("float32"))
    graph = tf.function(lambda: loss(y_true, p)).get_concrete_function().graph
    # A loop over pairs would unroll into ~10^6 ops; the vectorized loss is a few dozen.
    assert len(graph.get_operations()) < 200
