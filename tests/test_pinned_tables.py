"""A refactor keeps behaviour: the same config and seed write the same tables.

Two checks, because float32 tables do not travel bit for bit between machines: XLA's CPU code
depends on the vector unit (AVX2 or AVX-512), which changes the order of float32 additions.

- On one machine, two runs of the same config write byte-identical tables.
- Against tests/pinned/ (written on an AVX-512 machine with `XLA_FLAGS=--xla_cpu_max_isa=AVX2`,
  which is what an AVX2-only machine computes), every integer and text column is equal and every
  float column agrees within RTOL/ATOL below.

The tolerance: AVX2 against AVX-512 code differs by at most 3.0e-7 relative (7e-7 absolute) in
these runs (2026-12-03, every pinned table: a few float32 ulps, eps = 1.2e-7, after 38 steps).
RTOL = 1e-5 leaves about 30 times that margin, while any change of behaviour (another batch
order, initialisation, formula or step) moves these values by 1e-4 or more.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.pinned_runs import FILES, RUNS, folder_name

PINNED = os.path.join(os.path.dirname(__file__), "pinned")
RTOL, ATOL = 1e-5, 1e-7


def assert_tables_close(got: pd.DataFrame, want: pd.DataFrame, where: str) -> None:
    """Same columns and rows; non-float columns equal; float columns within RTOL/ATOL."""
    assert list(got.columns) == list(want.columns), where
    assert len(got) == len(want), where
    for column in want.columns:
        a, b = got[column].to_numpy(), want[column].to_numpy()
        if want[column].dtype.kind == "f" or got[column].dtype.kind == "f":
            np.testing.assert_allclose(
                a.astype(float), b.astype(float), rtol=RTOL, atol=ATOL, equal_nan=True,
                err_msg=f"{where}: column {column}",
            )  # fmt: skip
        else:
            assert (a == b).all(), f"{where}: column {column}"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_pinned_runs_write_the_pinned_tables(backend, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": backend}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.pinned_runs", backend, str(tmp_path), "2"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    for run in RUNS[backend]:
        folder = tmp_path / folder_name(run)
        for name in FILES:
            first = (folder / name).read_bytes()
            assert first == (folder / "repeat1" / name).read_bytes(), f"{run}: {name} repeated"
            want = pd.read_csv(os.path.join(PINNED, backend, folder_name(run), name))
            assert_tables_close(pd.read_csv(folder / name), want, f"{run}: {name}")


def test_the_tolerance_tells_a_changed_table_from_round_off():
    """The comparison passes float32 round-off and fails a change of one value by 1e-4."""
    want = pd.DataFrame({"step": [0, 1], "layer": ["a", "b"], "loss": [0.6931472, 0.5]})
    close = want.assign(loss=want["loss"] * (1 + 3e-7))
    assert_tables_close(close, want, "round-off")
    for changed in (
        want.assign(loss=[0.6931472, 0.50005]),
        want.assign(step=[0, 2]),
        want.assign(layer=["a", "c"]),
        want[["step", "loss"]],
    ):
        with pytest.raises(AssertionError):
            assert_tables_close(changed, want, "changed")
