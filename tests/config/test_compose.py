"""Typed configs: wrong keys and types fail at compose time; ranges fail at validation."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigAttributeError, ValidationError

from lossbench.config.schema import Task
from lossbench.errors import ConfigError
from lossbench.variants.regression import GroupedDynamicConfig
from tests.conftest import compose_config


def test_default_config_composes_with_the_documented_keys():
    cfg = compose_config([])
    assert cfg.loss.name == "bce" and cfg.loss.training_task() is Task.binary
    assert cfg.backend.value == "tensorflow" and cfg.seed == 0
    assert cfg.scale.epsilon == 1e-6
    assert cfg.data.n_samples > 0 and cfg.trainer.epochs > 0
    assert cfg.trainer.batch_size > 0 and cfg.trainer.learning_rate > 0


def test_the_readme_command_composes():
    cfg = compose_config(["loss=grouped_dynamic", "scale.epsilon=1e-6"])
    assert isinstance(cfg.loss, GroupedDynamicConfig)
    assert cfg.scale.epsilon == 1e-6


@pytest.mark.parametrize(
    ("override", "cause"),
    [
        ("trainer.epochs=abc", ValidationError),
        ("loss.statistic=max", ValidationError),
        ("loss.bogus=1", ConfigAttributeError),
        ("backend=theano", ValidationError),
    ],
)
def test_wrong_keys_and_types_fail_at_compose_time(override, cause):
    with pytest.raises(ConfigCompositionException) as info:
        compose_config(["loss=grouped_dynamic", override])
    assert isinstance(info.value.__cause__, cause)
    assert override.split("=")[0] in str(info.value.__cause__)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("scale.epsilon=-1e-3", "scale.epsilon"),
        ("trainer.batch_size=0", "trainer.batch_size"),
        ("trainer.batch_size=100000", "trainer.batch_size"),
        ("data.positive_rate=1.0", "data.positive_rate"),
        ("data.positive_rate=0", "data.positive_rate"),
        ("data.n_groups=0", "data.n_groups"),
        ("trainer.learning_rate=0", "trainer.learning_rate"),
        ("trainer.epochs=0", "trainer.epochs"),
        ("model.hidden=[]", "model.hidden"),
        ("model.activation=swishy", "model.activation"),
    ],
)
def test_out_of_range_values_name_key_expectation_and_value(override, key):
    with pytest.raises(ConfigError) as info:
        compose_config(["loss=grouped_dynamic", override])
    assert info.value.key == key
    message = str(info.value)
    assert message.startswith(f"invalid value for `{key}`: expected ")
    assert "received" in message and "\n" not in message


def test_grouped_scales_must_match_the_number_of_groups():
    with pytest.raises(ConfigError, match=r"loss\.scales"):
        compose_config(["loss=grouped", "data.n_groups=3", "loss.scales=[1.0,2.0]"])
    cfg = compose_config(["loss=grouped", "data.n_groups=2", "loss.scales=[1.0,2.0]"])
    assert cfg.loss.scales == [1.0, 2.0]


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["loss=temperature", "loss.temperature=0"], "loss.temperature"),
        (["loss=temperature", "loss.temperature=-1"], "loss.temperature"),
        (["loss=threshold", "loss.threshold=1.5"], "loss.threshold"),
        (["loss=threshold", "loss.boost=1.0"], "loss.boost"),
        (["loss=context_mask", "loss.mask=diamond"], "loss.mask"),
        (["loss=context_graph", "loss.graph_weight=-1"], "loss.graph_weight"),
        (["loss=context_graph", "loss.adjacency=graph.csv"], "loss.adjacency"),
        (["loss=sample_weights", "loss.weights=[1.0]"], "loss.weights"),
        (["loss=sample_weights", "loss.base=mse"], "loss.by"),
        (["loss=sample_weights", "loss.base=temperature"], "loss.base"),
        (["loss=output_weights", "loss.output_weights=[1,2]"], "loss.output_weights"),
        (["loss=scaled", "loss.base=scaled"], "loss.base"),
        (["loss=scaled", "loss.factor=0"], "loss.factor"),
        (["loss=scaled", "loss.base=temperature", "+loss.base_params.temperature=0"],
         "loss.base_params.temperature"),
        (["loss=scaled", "+loss.base_params.bogus=1"], "loss.base_params.bogus"),
        (["data.nan_rate=1.0"], "data.nan_rate"),
        (["data.grid=[8]"], "data.grid"),
        (["data.n_classes=1"], "data.n_classes"),
        (["loss=context_graph", "data.n_nodes=50000"], "data.n_nodes"),
    ],
)  # fmt: skip
def test_out_of_range_variant_parameters(overrides, key):
    with pytest.raises(ConfigError) as info:
        compose_config(overrides)
    assert info.value.key == key


def test_variants_bring_their_own_task_and_data():
    assert compose_config(["loss=temperature"]).loss.training_task() is Task.multiclass
    assert compose_config(["loss=context_graph"]).loss.training_task() is Task.graph
    robust = compose_config(["loss=robust_weights"])
    assert robust.loss.training_task() is Task.grouped and robust.data.nan_rate > 0
    assert compose_config(["loss=robust_weights", "data.nan_rate=0.2"]).data.nan_rate == 0.2
    scaled = compose_config(["loss=scaled", "loss.base=context_mask"])
    assert scaled.loss.training_task() is Task.grid
    weights = compose_config(["loss=sample_weights", "loss.base=mse", "loss.by=group"])
    assert weights.loss.training_task() is Task.grouped


def test_a_backend_without_a_runner_is_refused_by_name_when_composed():
    from lossbench.errors import one_line

    with pytest.raises(Exception) as info:
        compose_config(["backend=torch"])
    assert one_line(info.value).startswith("invalid value for `backend`: ")
    assert "tensorflow" in one_line(info.value) and "jax" in one_line(info.value)
