"""Range checks: NaN/inf refused everywhere, seeds, empty splits, memory bounds, identity."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lossbench.bounds import Bound, bounded, declared_problems, in_range, memory_budget
from lossbench.config.compose import compose
from lossbench.config.memory import footprint
from lossbench.config.schema import SyntheticData
from lossbench.errors import ConfigError
from lossbench.variants.registry import variants


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("bounds", [{}, {"ge": 0}, {"gt": 0, "lt": 1}, {"le": 5}])
def test_in_range_refuses_non_finite_values_whatever_the_bounds(value, bounds):
    assert list(in_range("k", value, **bounds))


@pytest.mark.parametrize(
    ("value", "bounds", "ok"),
    [
        (0, {"ge": 0}, True), (0, {"gt": 0}, False), (1, {"lt": 1}, False),
        (0.5, {"gt": 0, "lt": 1}, True), (2, {"integer": True}, True),
        (2.0, {"integer": True}, False), (True, {}, False), ("1", {}, False),
        (None, {"optional": True}, True), (None, {}, False),
    ],
)  # fmt: skip
def test_in_range_bounds_and_types(value, bounds, ok):
    assert (not list(in_range("k", value, **bounds))) is ok


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["data.group_skew=nan"], "data.group_skew"),
        (["data.graph_p_in=-inf"], "data.graph_p_in"),
        (["trainer.learning_rate=inf"], "trainer.learning_rate"),
        (["loss=grouped", "data.n_groups=2", "loss.scales=[1.0,nan]"], "loss.scales[1]"),
        (["loss=scaled", "loss.base=focal", "+loss.base_params.gamma=inf"],
         "loss.base_params.gamma"),
        (["loss=threshold", "loss.boost=nan"], "loss.boost"),
    ],
)  # fmt: skip
def test_every_float_key_refuses_nan_and_inf(overrides, key):
    with pytest.raises(ConfigError) as info:
        compose(overrides)
    assert info.value.key == key


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["seed=-3"], "seed"),
        (["seed=4294967296"], "seed"),
        (["loss=context_mask", "loss.mask_seed=-1"], "loss.mask_seed"),
        (["loss=output_weights", "loss.weight_seed=99999999999"], "loss.weight_seed"),
    ],
)
def test_seeds_must_be_what_the_generators_accept(overrides, key):
    with pytest.raises(ConfigError) as info:
        compose(overrides)
    assert info.value.key == key
    np.random.default_rng(2**32 - 1)  # the largest accepted seed works


def test_an_empty_training_split_is_refused_by_name():
    with pytest.raises(ConfigError) as info:
        compose(["data.n_samples=3", "data.val_fraction=0.9"])
    assert info.value.key == "data.val_fraction" and "training split" in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["trainer.epochs=2000000000"], "trainer.epochs"),
        (["data.n_samples=3000000000"], "data.n_samples"),
        (["data.n_features=900000000"], "data.n_features"),
        (["loss=context_graph", "data.n_nodes=46000"], "data.n_nodes"),
        (["loss=temperature", "data.n_classes=2000000000"], "data.n_classes"),
    ],
)
def test_keys_that_size_memory_are_bounded_by_what_the_run_allocates(overrides, key):
    with pytest.raises(ConfigError) as info:
        compose(overrides)
    assert info.value.key == key
    limit = int(str(info.value).split("an integer <= ")[1].split(" ")[0])
    cfg = compose([o for o in overrides if not o.startswith(key)])
    # The limit is the largest value whose estimated footprint fits the budget.
    section, name = key.split(".")
    setattr(getattr(cfg, section), name, limit)
    assert footprint(cfg, cfg.loss.training_task()) <= memory_budget()
    setattr(getattr(cfg, section), name, limit + 1)
    assert footprint(cfg, cfg.loss.training_task()) > memory_budget()


@pytest.mark.parametrize("name", list(variants()))
def test_loss_name_cannot_contradict_the_chosen_variant(name):
    other = "mse" if name != "mse" else "bce"
    with pytest.raises(ConfigError) as info:
        compose([f"loss={name}", f"loss.name={other}"])
    assert info.value.key == "loss.name" and repr(name) in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["loss=scaled", "loss.base=temperature", "+loss.base_params.name=bce"],
         "loss.base_params.name"),
        (["loss=scaled", "loss.base=scaled"], "loss.base"),
        (["loss=scaled", "loss.base=focal", "+loss.base_params.tau=1"], "loss.base_params.tau"),
        (["loss=scaled", "loss.base=focal", "+loss.base_params.gamma=abc"],
         "loss.base_params.gamma"),
        (["loss=scaled", "loss.base=focal", "+loss.base_params.gamma.x=1"],
         "loss.base_params.gamma"),
        (["loss=scaled", "loss.base=focal", "+loss.base_params.gamma=-1"],
         "loss.base_params.gamma"),
    ],
)  # fmt: skip
def test_a_scaled_base_takes_only_its_own_parameters(overrides, key):
    with pytest.raises(ConfigError) as info:
        compose(overrides)
    assert info.value.key == key


@pytest.mark.parametrize("base", [n for n in variants() if n != "scaled"])
def test_scaled_wraps_every_other_variant_with_its_task(base):
    # custom needs a target: an importable module path
    needs = (["loss.target=tests.check.example_losses:good_mse", "loss.task=grouped"]
             if base == "custom" else [])  # fmt: skip
    cfg = compose(
        ["loss=scaled", f"loss.base={base}", *(f"+loss.base_params.{o[5:]}" for o in needs)]
    )
    assert cfg.loss.training_task() is compose([f"loss={base}", *needs]).loss.training_task()


@pytest.mark.parametrize("option", ["../../tmp/x", "/etc/passwd", "a/b", "bce,../x"])
def test_group_options_are_names_not_paths(option):
    with pytest.raises(ConfigError) as info:
        compose([f"loss={option}"])
    assert info.value.key == "loss" and "not a path" in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "key", "detail"),
    [
        (["loss=context_mask", "data.grid=[20000,20000]"], "data.grid", "cells"),
        (["model.hidden=[100000,100000]"], "model.hidden", "parameters"),
    ],
)
def test_list_keys_that_size_memory_are_named_too(overrides, key, detail):
    with pytest.raises(ConfigError) as info:
        compose(overrides)
    assert info.value.key == key and detail in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "key", "says"),
    [(["loss=bce", "scale.epsilon=0.5"], "scale.epsilon", "only grouped_dynamic reads it"),
     (["loss=scaled", "loss.base=mse", "scale.epsilon=0.5"], "scale.epsilon", "loss=scaled")],
)  # fmt: skip
def test_a_key_the_chosen_loss_does_not_read_is_refused(overrides, key, says):
    with pytest.raises(ConfigError) as caught:
        compose(overrides)
    assert caught.value.key == key and says in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "key", "says"),
    [(["data.path=x.csv"], "data.path", "not in 'SyntheticData'; it is read with data=table"),
     (["data.target=y"], "data.target", "it is read with data=sklearn or data=table"),
     (["data=sklearn", "data.name=iris", "data.path=x.csv"], "data.path", "data=table"),
     (["data=sklearn", "data.name=iris", "data.n_samples=100"], "data.n_samples",
      "data=synthetic"),
     (["data=sklearn", "data.name=iris", "data.grid=[4,4]"], "data.grid", "data=synthetic"),
     (["data=table", "data.name=iris"], "data.name", "data=sklearn"),
     (["model=custom", "model.hidden=[8]"], "model.hidden", "it is read with model=mlp"),
     (["model.head=false"], "model.head", "it is read with model=custom")],
)  # fmt: skip
def test_a_key_of_another_data_or_model_source_fails_as_hydra_composes(overrides, key, says):
    from hydra.errors import ConfigCompositionException

    from lossbench.errors import one_line

    with pytest.raises(ConfigCompositionException) as caught:
        compose(overrides)
    line = one_line(caught.value)
    assert line.startswith(f"invalid value for `{key}`:") and says in line, line


@pytest.mark.parametrize(
    ("overrides", "source"),
    [(["data.source=table"], "synthetic"), (["data=sklearn", "data.source=synthetic"], "sklearn"),
     (["model=custom", "model.target=m.py:f", "model.source=mlp"], "custom")],
)  # fmt: skip
def test_a_source_key_must_name_the_chosen_option(overrides, source):
    with pytest.raises(ConfigError) as caught:
        compose(overrides)
    assert caught.value.key.endswith(".source") and f"expected {source}," in str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [["loss=grouped_dynamic", "scale.epsilon=0.5"],
     ["loss=scaled", "loss.base=grouped_dynamic", "scale.epsilon=0.5"],
     ["loss=bce", "scale.epsilon=1e-6"],  # the default, said again: nothing is ignored
     ["loss=robust_weights", "data=sklearn", "data.name=diabetes"]],  # its preset's nan_rate
)  # fmt: skip
def test_keys_that_are_read_or_left_at_their_default_pass(overrides):
    compose(overrides)


@pytest.mark.parametrize("task", ["grouped", "binary", "multiclass"])
def test_group_dro_trains_on_regression_and_classification(task):
    from lossbench.config.schema import Task

    assert compose(["loss=group_dro", f"loss.task={task}"]).loss.training_task() is Task(task)


def test_group_dro_refuses_a_task_it_has_no_loss_for():
    with pytest.raises(ConfigError) as caught:
        compose(["loss=group_dro", "loss.task=grid"])
    assert caught.value.key == "loss.task" and "grouped, binary, multiclass" in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "key", "received"),
    [
        (["tracker.uri=http://x"], "tracker.uri", "http://x"),  # read by tracker=mlflow only
        (["tracker=tensorboard", "tracker.experiment=a"], "tracker.experiment", "a"),
        (["tracker=mlflow", "tracker.experiment=''"], "tracker.experiment", ""),
    ],
)
def test_a_tracker_key_its_tracker_does_not_read_is_refused_by_name(overrides, key, received):
    with pytest.raises(ConfigError) as info:
        compose(overrides)
    assert info.value.key == key and info.value.received == received


def test_the_tracker_group_composes_each_option():
    assert compose([]).tracker.name == "none"
    cfg = compose(["tracker=mlflow", "tracker.uri=http://127.0.0.1:5000"])
    assert cfg.tracker.name == "mlflow" and cfg.tracker.uri == "http://127.0.0.1:5000"
    assert compose(["tracker=tensorboard"]).tracker.name == "tensorboard"


def test_an_unknown_or_path_tracker_is_refused_naming_the_options():
    from lossbench.config.compose import check_group_options
    from lossbench.errors import one_line

    with pytest.raises(Exception) as unknown:
        compose(["tracker=wandb"])
    assert one_line(unknown.value) == (
        "invalid value for `tracker`: expected one of mlflow, none, tensorboard, received 'wandb'"
    )
    with pytest.raises(ConfigError) as info:
        check_group_options(["tracker=../x"])
    assert info.value.key == "tracker" and "not a path" in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [([], "model.hidden"), (["model=custom", "model.target=examples/my_models.py:small_cnn"],
                            "model.target")],
)  # fmt: skip
def test_a_run_no_size_key_can_fit_names_its_model(overrides, key, monkeypatch):
    import lossbench.config.memory as memory

    cfg = compose(overrides)
    monkeypatch.setattr(memory, "memory_budget", lambda: 1)  # nothing fits, even at size 1
    (found,) = memory.memory_problems(cfg, cfg.loss.training_task())
    assert found[0] == key and "parameters" in found[1]


def _outside(bound: Bound) -> float:
    """A value just outside `bound`: at an exclusive limit, or one past an inclusive one."""
    if bound.gt is not None:
        return bound.gt
    if bound.ge is not None:
        return bound.ge - 1
    return bound.lt if bound.lt is not None else bound.le + 1


def _bounded_fields() -> list[tuple[str, str, Bound, bool]]:
    return [
        (name, f.name, f.metadata["bound"], f.metadata["each"])
        for name, schema in variants().items()
        for f in dataclasses.fields(schema)
        if "bound" in f.metadata
    ]


# A list parameter's length on the default data (its own check names a list of another length).
LIST_LENGTHS = {
    "scales": SyntheticData().n_groups,
    "weights": 2,  # sample_weights by class
    "output_weights": SyntheticData().n_outputs,
}


@pytest.mark.parametrize(("variant", "key", "bound", "each"), _bounded_fields())
def test_every_declared_loss_bound_is_enforced_with_its_words(variant, key, bound, each):
    value = _outside(bound)
    listed = ",".join([str(value)] * LIST_LENGTHS[key]) if each else ""
    override = f"loss.{key}=[{listed}]" if each else f"loss.{key}={value}"
    with pytest.raises(ConfigError) as info:
        compose([f"loss={variant}", override])
    assert info.value.key == f"loss.{key}"
    assert bound.text() in info.value.expected
    compose([f"loss={variant}"])  # the default holds


def test_declared_bounds_are_checked_in_field_order_with_optional_and_list_fields():
    @dataclasses.dataclass
    class Params:
        rate: float = bounded(0.5, Bound(gt=0, lt=1))
        floor: float | None = bounded(None, Bound(ge=0))
        sizes: list[int] | None = bounded(None, Bound(ge=1, integer=True), each=True)
        free: float = 1.0

    assert list(declared_problems(Params())) == []
    assert list(declared_problems(Params(rate=1.0, floor=-1.0, sizes=[2, 0], free=-5.0))) == [
        ("rate", "a number in (0, 1)", 1.0),
        ("floor", "null or a finite number >= 0", -1.0),
        ("sizes", "a list of which each is an integer >= 1", [2, 0]),
    ]
    ((key, expected, received),) = declared_problems(Params(rate=math.nan))
    assert (key, expected, math.isnan(received)) == ("rate", "a number in (0, 1)", True)
