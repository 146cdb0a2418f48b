"""Shared fixtures: tiny configs composed from the real YAML files, on the TensorFlow backend."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from collections.abc import Callable

import pytest

from lossbench.config.compose import compose
from lossbench.config.schema import Config

# Small enough that an experiment trains in a second or two once compiled.
TINY_TRAINING = [
    "model.hidden=[16,16]",
    "trainer.epochs=2",
    "trainer.batch_size=32",
    "trainer.steps_per_chunk=4",
    "trainer.progress=false",
]
TINY = ["data.n_samples=600", "data.n_features=8", "data.n_groups=4", *TINY_TRAINING]


def compose_config(overrides: list[str]) -> Config:
    """Compose conf/config.yaml with `overrides` (as the CLI would) and validate it."""
    return compose(overrides)


@pytest.fixture
def tiny_config() -> Callable[..., Config]:
    """Build a validated tiny config for a loss: `tiny_config("grouped", "seed=3")`."""

    def make(loss: str, *overrides: str) -> Config:
        return compose_config([f"loss={loss}", *TINY, *overrides])

    return make
