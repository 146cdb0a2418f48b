"""Runs whose tables are pinned: `python -m tests.pinned_runs BACKEND FOLDER` writes them.

tests/pinned/<backend>/<run>/ holds the reference tables (written with
`XLA_FLAGS=--xla_cpu_max_isa=AVX2`, what an AVX2-only x86-64 machine computes);
tests/test_pinned_tables.py compares a fresh run's tables with them at a stated tolerance, and two
runs on one machine byte for byte. To renew the references after a change that is meant to alter
the tables: `XLA_FLAGS=--xla_cpu_max_isa=AVX2 python -m tests.pinned_runs BACKEND
tests/pinned/BACKEND` (and say why in the commit).
"""

from __future__ import annotations

import re
import sys
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


def folder_name(run: str) -> str:
    """A run's overrides as a folder name: `loss=scaled loss.base=grouped` ->
    `loss-scaled_loss.base-grouped`."""
    return re.sub(r"[^A-Za-z0-9_.-]", "", run.replace("=", "-").replace(" ", "_"))


def write_tables(backend: str, root: Path, repeats: int = 1) -> None:
    """Train each pinned run of `backend` in this process, `repeats` times; the k-th time's
    tables go to root/<run>/ (k = 0) or root/<run>/repeat<k>/."""
    from lossbench.config.compose import compose
    from lossbench.run.training import run_experiment

    for run in RUNS[backend]:
        for k in range(repeats):
            folder = root / folder_name(run) / (f"repeat{k}" if k else "")
            folder.mkdir(parents=True, exist_ok=True)
            run_experiment(compose([*run.split(), *TINY, f"backend={backend}"]), folder)
            (folder / "summary.json").unlink()  # times and versions: not part of the pin


if __name__ == "__main__":
    write_tables(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]) if sys.argv[3:] else 1)
