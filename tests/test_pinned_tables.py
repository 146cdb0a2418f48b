"""A refactor keeps behaviour: the same config and seed write byte-identical tables.

The hashes were taken from the code before the registry refactor (issue 12), on this project's
CPU machines; `python -m tests.pinned_runs BACKEND` prints the current ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.pinned_runs import RUNS

PINNED = {
    "tensorflow": {
        "loss=bce": {
            "steps.csv": "c0563889ff5f297b",
            "grad_norms.csv": "7150d8ec2c4e8a50",
            "epochs.csv": "19ecd227b829c8d7",
        },
        "loss=grouped_dynamic": {
            "steps.csv": "4b05b1c6a6f5b1b6",
            "grad_norms.csv": "43433776dc280b5b",
            "epochs.csv": "a16382b05960163b",
        },
        "loss=multitask": {
            "steps.csv": "957b5c22cb57e25d",
            "grad_norms.csv": "35e7a54e7e05a2a8",
            "epochs.csv": "2b62c7c249755dcd",
        },
        "loss=scaled loss.schedule=warmup loss.base=grouped": {
            "steps.csv": "91ee8680f3c12eb4",
            "grad_norms.csv": "84fdb1b01d75a41b",
            "epochs.csv": "cd8117b00254473b",
        },
        "loss=context_graph data.n_nodes=300": {
            "steps.csv": "6d2653a0c455655c",
            "grad_norms.csv": "7f3d04d6b2750730",
            "epochs.csv": "aaadd4c0e73667c9",
        },
        "loss=robust_weights": {
            "steps.csv": "708812b128f8a615",
            "grad_norms.csv": "e8467a653b9e678b",
            "epochs.csv": "747863597794aeb7",
        },
        "loss=sample_weights loss.by=group loss.base=mse": {
            "steps.csv": "efa6e08c71cccd00",
            "grad_norms.csv": "65774f7e77a41a2c",
            "epochs.csv": "cd9e47f0aa831e23",
        },
    },
    "jax": {
        "loss=bce": {
            "steps.csv": "7159811f78bfbc69",
            "grad_norms.csv": "2e16b2f31bf65177",
            "epochs.csv": "e4ed02e3319882f2",
        },
        "loss=multitask": {
            "steps.csv": "4d00d7fe63275609",
            "grad_norms.csv": "d4f0d92f4c30b1f8",
            "epochs.csv": "1b019f37a375ffb1",
        },
        "loss=scaled loss.schedule=step loss.base=temperature +loss.base_params.temperature=0.5": {
            "steps.csv": "c3bc5eeb21833bd8",
            "grad_norms.csv": "6fce68686546c5b7",
            "epochs.csv": "d2e84b042e0e650c",
        },
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_pinned_runs_write_the_same_table_bytes(backend):
    assert set(PINNED[backend]) == set(RUNS[backend])
    env = {**os.environ, "KERAS_BACKEND": backend}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.pinned_runs", backend],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for run, hashes in PINNED[backend].items():
        assert got[run] == hashes, run
