"""The registry: one declaration per variant, the door user variants use too."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lossbench.config.compose import compose_raw
from lossbench.config.schema import LossConfig, Task
from lossbench.variants.registry import get_variant, register_variant, variant_name, variants
from tests.loss_cases import make_cases

ROOT = Path(__file__).resolve().parents[2]


def test_every_variant_is_an_option_with_its_schemas_defaults_a_task_and_a_test_case():
    """`loss=<name>` composes to the schema's own defaults (declared there alone; a YAML in
    conf/loss only adds settings of other groups)."""
    cases = set(make_cases())
    assert {p.stem for p in (ROOT / "conf" / "loss").glob("*.yaml")} <= set(variants())
    for name, schema in variants().items():
        assert schema.variant == name and schema.description
        cfg = schema(name=name)
        assert isinstance(cfg.training_task(), Task)
        assert name in cases, f"add a row for {name} to tests/loss_cases.py"
        assert OmegaConf.to_object(compose_raw([f"loss={name}"]).loss) == cfg, name


def test_a_variant_registers_once_and_is_found_by_its_class():
    @register_variant("test_only_variant", task=Task.binary, description="for this test")
    @dataclass
    class Mine(LossConfig):
        weight: float = 1.0

    assert get_variant("test_only_variant") is Mine
    assert variant_name(Mine(name="test_only_variant")) == "test_only_variant"
    with pytest.raises(ValueError, match="already registered"):

        @register_variant("test_only_variant", description="again")
        @dataclass
        class Other(LossConfig):
            pass

    with pytest.raises(TypeError):
        register_variant("not_a_schema", description="x")(dict)


def test_the_loss_library_imports_no_config_data_hydra_or_omegaconf():
    code = (
        "import sys, lossbench.losses\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('hydra', 'omegaconf')"
        " or m.startswith(('lossbench.config', 'lossbench.data', 'lossbench.variants'))]\n"
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-1000:]


def test_validation_needs_no_framework():
    code = (
        "import sys\n"
        "from lossbench.config.compose import compose\n"
        "for name in ['bce', 'context_graph', 'scaled', 'robust_weights']:\n"
        "    compose([f'loss={name}'])\n"
        "assert not {'keras', 'tensorflow', 'jax'} & set(sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-1000:]
