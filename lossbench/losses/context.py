"""Losses that use a fixed context tensor: an importance mask over a grid, a graph adjacency."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from lossbench import bounds
from lossbench.bounds import MAX_GRAPH_NODES, check_arg
from lossbench.losses.base import (
    LossbenchLoss,
    safe_norm,
)


@keras.saving.register_keras_serializable(package="lossbench")
class ContextMaskLoss(LossbenchLoss):
    """Squared error weighted element-wise by a fixed mask shaped like one sample's output.

    ``value_i = mean_{r,c} mask[r, c] * (y_irc - p_irc) ** 2``; a mask of ones gives MSE.

    Args:
        mask: nested lists (or an array) of non-negative weights, shaped like the output.
    """

    config_args = ("mask",)

    def __init__(self, mask: Any, name: str = "context_mask", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        array = np.asarray(mask, dtype="float64")
        ok = array.ndim >= 1 and array.size > 0 and np.isfinite(array).all() and (array >= 0).all()
        check_arg("mask", f"array of shape {array.shape}", ok, "finite weights >= 0")
        self.mask = array.tolist()
        self._mask = array.astype("float32")

    def call(self, y_true: Any, y_pred: Any) -> Any:
        mask = ops.convert_to_tensor(self._mask, dtype=y_pred.dtype)
        weighted = ops.square(y_true - y_pred) * mask
        return ops.mean(ops.reshape(weighted, (ops.shape(weighted)[0], -1)), axis=-1)


def mask_pattern(name: str, shape: tuple[int, int], strength: float, seed: int) -> np.ndarray:
    """A named importance mask: ``1 + strength`` where the pattern is on, 1 elsewhere.

    center: a Gaussian bump in the middle; border: the outer ring; random: uniform noise from
    `seed`; ones: all ones.
    """
    rows, cols = shape
    r, c = np.meshgrid(np.linspace(-1, 1, rows), np.linspace(-1, 1, cols), indexing="ij")
    if name == "center":
        on = np.exp(-(r**2 + c**2) / (2 * 0.35**2))
    elif name == "border":
        on = ((np.abs(r) == 1) | (np.abs(c) == 1)).astype("float64")
    elif name == "random":
        on = np.random.default_rng(seed).random(shape)
    elif name == "ones":
        on = np.zeros(shape)
    else:
        raise ValueError(f"Invalid value for argument `name`. Received: name={name!r}")
    return 1.0 + strength * on


@keras.saving.register_keras_serializable(package="lossbench")
class ContextGraphLoss(LossbenchLoss):
    """Embedding regression plus a pull between neighbours of a fixed graph.

    For the nodes of a batch, ``value_i = mean_d (y_id - e_id) ** 2 + graph_weight *
    sum_j Â_ij (1 - cos(e_i, e_j))`` where Â is the adjacency among the batch's nodes divided by
    each node's degree in the batch. Vectorized, with no loop over nodes: for small batches the
    batch's (B, B) block of a bit-packed adjacency and one (B, B) x (B, D) product each way (see
    `cosine_pull`), for batches covering much of a sparse graph one pass over the edge list (see
    `use_edge_list`); both give the same values. Node ids travel as the last column of `y_true`
    (`pack_targets`) and appear at most once per batch; norms have a floor `epsilon`, so zero
    embeddings give finite values and gradients.

    Args:
        num_nodes: size of the graph.
        edges: undirected edges as [i, j] pairs (the adjacency is built from them).
        graph_weight: weight of the neighbour term; 0 gives plain MSE.
        epsilon: floor of an embedding's norm.
    """

    batch_coupling = "batch"  # a node is pulled towards its neighbours in the batch

    config_args = ("num_nodes", "edges", "graph_weight", "epsilon")
    component_names = ("fit", "graph")

    def __init__(
        self,
        num_nodes: int,
        edges: Any,
        graph_weight: float = 1.0,
        epsilon: float = 1e-8,
        name: str = "context_graph",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        check_arg(
            "num_nodes",
            num_nodes,
            isinstance(num_nodes, int) and 1 <= num_nodes <= MAX_GRAPH_NODES,
            f"an integer in [1, {MAX_GRAPH_NODES}]",
        )
        pairs = np.asarray(edges, dtype="int64").reshape(-1, 2)
        in_range = pairs.size == 0 or (pairs.min() >= 0 and pairs.max() < num_nodes)
        check_arg("edges", f"{len(pairs)} pairs", in_range, f"node ids in [0, {num_nodes})")
        bounds.GRAPH_WEIGHT.check("graph_weight", graph_weight)
        bounds.NORM_FLOOR.check("epsilon", epsilon)
        self.num_nodes, self.graph_weight, self.epsilon = num_nodes, float(graph_weight), epsilon
        self.edges = pairs.tolist()
        adjacency = np.zeros((num_nodes, num_nodes), dtype=bool)
        adjacency[pairs[:, 0], pairs[:, 1]] = True
        adjacency[pairs[:, 1], pairs[:, 0]] = True
        np.fill_diagonal(adjacency, False)
        # Each undirected edge once: the cosine of (i, j) and (j, i) is the same number, so the
        # edge-list path gathers and differentiates half as many rows as with both directions.
        self._src, self._dst = (a.astype("int32") for a in np.nonzero(np.triu(adjacency, 1)))
        # The adjacency as bits, one int32 word per 32 columns, made once here as a backend tensor
        # (a NumPy constant would be handed to every compiled call again). At 1,024 nodes that is
        # 128 KB, which stays in cache next to the model for the batch's B * B random lookups.
        words = pack_bits(adjacency)
        self._words_per_row = len(words) // num_nodes  # the row padding is pack_bits' to decide
        self._adjacency_bits = ops.convert_to_tensor(words, dtype="int32")
        self._src_tensor = ops.convert_to_tensor(self._src)
        self._dst_tensor = ops.convert_to_tensor(self._dst)

    @classmethod
    def from_adjacency(cls, adjacency: np.ndarray, **kwargs: Any) -> ContextGraphLoss:
        """Build from a dense (N, N) adjacency (nonzero = edge; made symmetric)."""
        a = np.asarray(adjacency)
        i, j = np.nonzero(np.triu(a + a.T, k=1))
        return cls(num_nodes=len(a), edges=np.stack([i, j], axis=1), **kwargs)

    def pack_targets(self, y: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        if extra is None:
            raise ValueError("ContextGraphLoss needs node ids; received extra=None")
        y = np.asarray(y, dtype="float32").reshape(len(y), -1)
        return np.concatenate([y, np.asarray(extra, "float32").reshape(-1, 1)], axis=1)

    def use_edge_list(self, batch: int | None, dim: int) -> bool:
        """Whether a batch of this size is cheaper through the edge list than densely.

        Dense: gather the batch's B * B adjacency entries and one (B, B) x (B, D) product. Edge
        list: a few passes over every undirected edge (E * D), whatever the batch. A batch size
        unknown when tracing takes the dense path, which needs no static size.
        """
        if batch is None:
            return False
        dense = batch * batch * (1 + dim)
        return 6 * len(self._src) * dim < dense

    def batch_adjacency(self, ids: Any, dtype: Any = "float32") -> Any:
        """The (B, B) adjacency among the nodes `ids`, read bit by bit from the packed table."""
        column = ops.expand_dims(ids, 0)
        # Word (i, j // 32) of the flat table: an int32 index, as N * N / 32 < 2 ** 31 within
        # MAX_GRAPH_NODES (which the dense N x N arrays elsewhere set).
        word_index = ops.expand_dims(ids, 1) * self._words_per_row + ops.right_shift(column, 5)
        words = ops.take(self._adjacency_bits, word_index)
        # An arithmetic shift of a word with bit 31 set fills with ones; `& 1` keeps bit j % 32.
        bit = ops.bitwise_and(ops.right_shift(words, ops.bitwise_and(column, 31)), 1)
        return ops.cast(bit, dtype)

    def _pull_edges(self, y_pred: Any, ids: Any, batch: int) -> Any:
        unit = y_pred / safe_norm(y_pred, axis=-1, floor=self.epsilon)
        # Each node's position in the batch (-1: not in it); an edge counts when both ends are in.
        where = ops.full((self.num_nodes,), -1, dtype="int32")
        where = ops.scatter_update(
            where, ops.expand_dims(ids, -1), ops.arange(batch, dtype="int32")
        )
        src = ops.take(where, self._src_tensor, axis=0)
        dst = ops.take(where, self._dst_tensor, axis=0)
        inside = ops.cast(ops.logical_and(src >= 0, dst >= 0), unit.dtype)
        src, dst = ops.maximum(src, 0), ops.maximum(dst, 0)
        dots = ops.sum(ops.take(unit, src, axis=0) * ops.take(unit, dst, axis=0), axis=-1)
        # An undirected edge pulls on both of its ends.
        ends = ops.concatenate([src, dst])
        pull = ops.segment_sum(ops.tile(inside * (1.0 - dots), [2]), ends, num_segments=batch)
        degree = ops.segment_sum(ops.tile(inside, [2]), ends, num_segments=batch)
        return pull / ops.maximum(degree, 1.0)

    def _parts(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        target, ids = y_true[:, :-1], ops.cast(y_true[:, -1], "int32")
        fit = ops.mean(ops.square(target - y_pred), axis=-1)
        batch, dim = y_pred.shape[0], y_pred.shape[-1]
        if self.use_edge_list(batch, dim):
            return fit, self._pull_edges(y_pred, ids, batch)
        return fit, cosine_pull(y_pred, self.batch_adjacency(ids, y_pred.dtype), self.epsilon)

    def call_with_components(self, y_true: Any, y_pred: Any) -> tuple[Any, list[Any]]:
        fit, graph = self._parts(y_true, y_pred)
        return fit + self.graph_weight * graph, [fit, graph]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return self.call_with_components(y_true, y_pred)[0]


def pack_bits(adjacency: np.ndarray) -> np.ndarray:
    """A dense (N, N) 0/1 adjacency as flat int32 words: bit j % 32 of word (i, j // 32) is
    entry (i, j), each row padded to whole words (see `ContextGraphLoss.batch_adjacency`)."""
    n = len(adjacency)
    padded = np.zeros((n, 32 * -(-n // 32)), dtype=bool)
    padded[:, :n] = adjacency != 0
    # Little-endian bits within bytes and bytes within words: column j lands on bit j % 32.
    return np.packbits(padded, axis=-1, bitorder="little").view("<i4").reshape(-1)


def cosine_pull(y_pred: Any, adjacency: Any, epsilon: float) -> Any:
    """``sum_j a_ij (1 - cos(p_i, p_j)) / max(deg_i, 1)`` for a symmetric (B, B) `adjacency`.

    With unit rows ``u = p / max(|p|, epsilon)`` the sum is ``deg_i - u_i . (A u)_i``: one
    (B, B) x (B, D) product, which also yields the degrees through a column of ones. The
    gradient is written out because A is symmetric: autodiff would multiply by its transpose,
    a slower product on XLA's CPU backend, and would spend more kernels per step.
    """
    floor = epsilon**2

    @ops.custom_gradient
    def pull(p: Any, a: Any) -> Any:
        norm_sq = ops.sum(ops.square(p), axis=-1, keepdims=True)
        norm = ops.sqrt(ops.maximum(norm_sq, floor))
        unit = p / norm
        both = ops.matmul(a, ops.pad(unit, [[0, 0], [0, 1]], constant_values=1.0))
        a_unit, degree = both[:, :-1], both[:, -1]
        inv_degree = 1.0 / ops.maximum(degree, 1.0)
        value = (degree - ops.sum(unit * a_unit, axis=-1)) * inv_degree

        def grad(*args: Any, upstream: Any = None) -> tuple[Any, Any]:
            if upstream is None:  # JAX and TensorFlow pass the upstream gradient alone
                (upstream,) = args
            weight = ops.expand_dims(upstream * inv_degree, -1)
            # d/du of sum_i w_i u_i . (A u)_i is w * (A u) + A (w * u), A being symmetric.
            d_unit = -(weight * a_unit + ops.matmul(a, weight * unit))
            # Through u = p / |p|: drop the radial part, except where the floor holds |p| fixed.
            radial = ops.sum(unit * d_unit, axis=-1, keepdims=True)
            radial = ops.where(norm_sq > floor, radial, 0.0)
            return (d_unit - unit * radial) / norm, ops.zeros_like(a)

        return value, grad

    return pull(y_pred, adjacency)
