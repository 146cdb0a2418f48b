"""`lossbench-check`: a user's loss checked for the defects hand-written losses have.

`catalog` lists the checks (the console table, `--json` and the README read it), `inputs` builds
the batches, `suite` runs the checks on one backend, `worker` is one backend's process, `cli`
runs the workers and reports."""
