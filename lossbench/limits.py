"""Hard limits shared by the loss library and config validation (no imports: both use it)."""

# The graph loss indexes its bit-packed adjacency with int32 and the graph data is dense N x N:
# N * N < 2 ** 31 keeps every flat index within int32. Memory bounds N much lower in practice
# (see `lossbench.config.checks`).
MAX_GRAPH_NODES = 46_340
