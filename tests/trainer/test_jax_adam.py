"""The JAX runner's flat Adam: Keras's Adam bit for bit, and only where it is Keras's plain Adam."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cases() -> dict:
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.trainer.adam_cases"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_flat_adam_steps_are_keras_adam_bit_for_bit_and_refuse_another_layout(cases):
    assert cases["steps"] is True


def test_a_runner_with_the_flat_adam_writes_the_same_rows_weights_and_optimizer_state(cases):
    assert cases["runner"] is True


def test_only_keras_plain_adam_on_free_float32_variables_takes_the_flat_path(cases):
    assert cases["fits"] == {
        "adam": True,
        "adam_lr": True,
        "amsgrad": False,
        "clipnorm": False,
        "weight_decay": False,
        "ema": False,
        "schedule": False,
        "adamw": False,
        "sgd": False,
        "constrained_variable": False,
    }
