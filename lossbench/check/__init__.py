"""`lossbench-check`: a user's loss checked for the defects hand-written losses have.

`inputs` builds the batches, `suite` runs the checks on one backend, `worker` is one backend's
process, `cli` runs the workers and reports."""

# The checks' stable ids, in the order they run and are reported.
CHECK_IDS = (
    "per-sample", "batch-shapes", "sample-weight", "finite-gradients", "order-invariance",
    "compiled", "live-variables", "parameter-effect", "serialization", "gradient", "backends",
)  # fmt: skip
