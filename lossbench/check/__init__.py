"""`lossbench-check`: a user's loss checked for the defects hand-written losses have.

Each check is a function declared with its id, title and what it catches by `catalog.check`
beside its body (`roots`, `value_checks`, `model_checks`; the comparison of the backends in
`cli`), and `catalog.checks()` orders them. `inputs` builds the batches, `suite` runs the checks
on one backend, `worker` is one backend's process, `cli` runs the workers and reports."""
