"""Choosing the backend: Keras imports it without the optional packages no run uses."""

from __future__ import annotations

import json
import subprocess
import sys

from lossbench.run.experiment import unused_imports

PROBE = """
import json, sys
{before}
from lossbench.run.experiment import select_backend
select_backend("tensorflow")
import keras
loaded = {{name: name in sys.modules for name in ("jax", "matplotlib")}}
import matplotlib  # still importable afterwards
print(json.dumps({{"backend": keras.backend.backend(), "loaded": loaded,
                  "matplotlib": matplotlib.__name__}}))
"""


def _probe(before: str = "") -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(before=before)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_unused_imports_never_name_the_backend() -> None:
    assert unused_imports("tensorflow") == ["jax", "matplotlib"]
    assert unused_imports("jax") == ["matplotlib"]


def test_keras_imports_without_jax_or_matplotlib_and_both_stay_importable() -> None:
    result = _probe()
    assert result["backend"] == "tensorflow"
    assert result["loaded"] == {"jax": False, "matplotlib": False}
    assert result["matplotlib"] == "matplotlib"


def test_a_package_loaded_before_is_left_alone() -> None:
    result = _probe("import matplotlib.pyplot")
    assert result["loaded"]["matplotlib"] is True
