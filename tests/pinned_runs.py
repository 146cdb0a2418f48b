"""Runs whose tables are pinned by hash: `python -m tests.pinned_runs BACKEND` prints them.

The hashes in tests/test_pinned_tables.py were taken before the registry refactor (issue 12);
a change that alters any table byte of these runs fails that test.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

TINY = [
    "data.n_samples=600", "data.n_features=8", "data.n_groups=4", "model.hidden=[16,16]",
    "trainer.epochs=2", "trainer.batch_size=32", "trainer.steps_per_chunk=4",
    "trainer.progress=false", "seed=1",
]  # fmt: skip
RUNS = {
    "tensorflow": [
        "loss=bce", "loss=grouped_dynamic", "loss=multitask",
        "loss=scaled loss.schedule=warmup loss.base=grouped",
        "loss=context_graph data.n_nodes=300", "loss=robust_weights",
        "loss=sample_weights loss.by=group loss.base=mse",
    ],
    "jax": [
        "loss=bce", "loss=multitask",
        "loss=scaled loss.schedule=step loss.base=temperature +loss.base_params.temperature=0.5",
    ],
}  # fmt: skip
FILES = ("steps.csv", "grad_norms.csv", "epochs.csv")


def table_hashes(backend: str) -> dict[str, dict[str, str]]:
    """Train each pinned run of `backend` in this process; return its tables' hashes."""
    from lossbench.config import compose
    from lossbench.runs import run_experiment

    out = {}
    for run in RUNS[backend]:
        cfg = compose([*run.split(), *TINY, f"backend={backend}"])
        with tempfile.TemporaryDirectory() as folder:
            run_experiment(cfg, Path(folder))
            out[run] = {
                f: hashlib.sha256((Path(folder) / f).read_bytes()).hexdigest()[:16] for f in FILES
            }
    return out


if __name__ == "__main__":
    print(json.dumps(table_hashes(sys.argv[1])))
