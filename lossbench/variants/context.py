"""Variants with a fixed context tensor: an importance mask over a grid, a graph adjacency."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lossbench import bounds
from lossbench.bounds import bounded
from lossbench.config.schema import DataConfig, LossConfig, Problem, SyntheticData, Task
from lossbench.data.arrays import check_npy, load_npy
from lossbench.errors import ConfigError
from lossbench.variants.registry import BuildContext, register_variant

MASK_PATTERNS = ("center", "border", "random", "ones")


def _npy_problem(key: str, path: str, shape: tuple[int, ...]) -> Iterator[Problem]:
    """The problem with an .npy file's header, as a range problem (nothing is read but it)."""
    try:
        check_npy(path, key, shape)
    except ConfigError as error:
        yield key, error.expected, error.received


@register_variant(
    "context_mask",
    task=Task.grid,
    description=(
        "Squared error weighted element-wise by a fixed importance mask over an output grid."
    ),
)
@dataclass
class ContextMaskConfig(LossConfig):
    # center | border | random | ones, or the path of an .npy file shaped like data.grid.
    mask: str = "center"
    strength: float = bounded(4.0, bounds.MASK_STRENGTH)
    mask_seed: int = 0

    def check(self, data: DataConfig) -> Iterator[Problem]:
        if self.mask.endswith(".npy"):
            if isinstance(data, SyntheticData):  # only generated data have the grid task
                yield from _npy_problem("mask", self.mask, tuple(data.grid))
        elif self.mask not in MASK_PATTERNS:
            expected = f"one of {', '.join(MASK_PATTERNS)} or the path of an .npy file"
            yield "mask", expected, self.mask

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import ContextMaskLoss
        from lossbench.losses.context import mask_pattern

        if self.mask.endswith(".npy"):
            mask = load_npy(self.mask, ctx.key("mask"), ctx.grid)
        else:
            mask = mask_pattern(self.mask, ctx.grid, self.strength, self.mask_seed)
        return ContextMaskLoss(mask=mask)


@register_variant(
    "context_graph",
    task=Task.graph,
    description="Embedding regression plus a pull between graph neighbours by cosine similarity.",
)
@dataclass
class ContextGraphConfig(LossConfig):
    graph_weight: float = bounded(1.0, bounds.GRAPH_WEIGHT)
    # null: the data's own community graph; else the path of an (n_nodes, n_nodes) .npy file.
    adjacency: str | None = None
    epsilon: float = bounded(1e-8, bounds.NORM_FLOOR)

    def check(self, data: DataConfig) -> Iterator[Problem]:
        if self.adjacency is not None:
            if not self.adjacency.endswith(".npy"):
                yield "adjacency", "null or the path of an .npy file", self.adjacency
            elif isinstance(data, SyntheticData):  # only generated data have the graph task
                yield from _npy_problem("adjacency", self.adjacency, (data.n_nodes,) * 2)

    def build(self, ctx: BuildContext) -> Any:
        from lossbench.losses import ContextGraphLoss

        adjacency = ctx.data.adjacency
        if self.adjacency is not None:
            n = len(adjacency)
            adjacency = load_npy(self.adjacency, ctx.key("adjacency"), (n, n))
        return ContextGraphLoss.from_adjacency(
            adjacency, graph_weight=self.graph_weight, epsilon=self.epsilon
        )
