"""`lossbench-check`'s checks: every built-in variant passes; each broken example fails exactly
the check it was written to fail; the correct examples pass (TensorFlow, in this process)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lossbench.check.subject import Subject
from lossbench.check.suite import Checker
from lossbench.check.worker import GUARDS, user_subject
from lossbench.config.schema import SyntheticData
from lossbench.data.load import make_dataset
from lossbench.variants.registry import BuildContext, variants

EXAMPLES = Path(__file__).with_name("example_losses.py")

# example -> (task, the one check it fails; None: none)
CASES = {
    "GoodFocal": ("binary", None),
    "good_mse": ("grouped", None),
    "GoodGroupScaled": ("grouped", None),
    "ScalarReturn": ("binary", "per-sample"),
    "CapturedBatch": ("binary", "batch-shapes"),
    "CapturedOtherBatch": ("binary", "batch-shapes"),
    "static_batch_reshape": ("grouped", "batch-shapes"),
    "IgnoresSampleWeight": ("binary", "sample-weight"),
    "elementwise_mse": ("grouped", "sample-weight"),
    "NanThroughWhere": ("binary", "finite-gradients"),
    "SortedIds": ("grouped", "order-invariance"),
    "BatchDice": ("binary", "batch-independence"),
    "GroupClaimBatchMean": ("grouped", "batch-independence"),
    "EagerOnly": ("binary", "compiled"),
    "ScaledProbabilities": ("multiclass", "parameter-effect"),
    "WidthFromParameter": ("binary", "parameter-effect"),
    "ForgetsItsConfig": ("binary", "serialization"),
    "half_gradient": ("grouped", "gradient"),
    "StaticArange": ("binary", "batch-shapes"),
    "ContrastiveCall": ("binary", "sample-weight"),
    "PredictionsUnused": ("binary", "finite-gradients"),
    "CenterLoss": ("binary", "stateless-call"),
    "NumpyInHelper": ("binary", "traceable"),
    "Poly1": ("binary", None),
    "ClippedBCE": ("binary", None),
}
# The examples whose defect is one line of their own (marked `# defect`): the finding points at it.
POINTED = ("StaticArange", "CenterLoss", "NumpyInHelper")


@pytest.mark.parametrize("name", list(CASES))
def test_each_example_fails_exactly_its_check(name):
    """A root cause is the one failure with its own words: later checks it breaks say "see"."""
    task, broken = CASES[name]
    results = Checker(user_subject(f"{EXAMPLES}:{name}", task, {})).results()
    own = [r.id for r in results if r.status == "fail" and not r.message.startswith("see ")]
    assert own == ([broken] if broken else []), [(r.id, r.message) for r in results]
    assert not [r.id for r in results if r.status == "error"], [(r.id, r.message) for r in results]
    for r in results:
        assert r.message, r.id
        if r.status == "fail" and r.id == broken:
            assert r.hint, r.id
        elif r.status == "fail":
            assert r.message == f"see {broken}: this check fails with it" and r.detail


def _defect_line(name: str) -> int:
    """The line of the example marked `# defect` (the example's own, or its helper's)."""
    lines = EXAMPLES.read_text().splitlines()
    if name == "NumpyInHelper":  # the defect is in the helper it calls
        return next(i + 1 for i, line in enumerate(lines) if "np.asarray(y_pred)" in line)
    start = next(i for i, line in enumerate(lines) if f"class {name}(" in line)
    return next(i + 1 for i in range(start, len(lines)) if lines[i].rstrip().endswith("# defect"))


@pytest.mark.parametrize("name", POINTED)
def test_a_finding_names_the_users_file_and_line(name):
    task, broken = CASES[name]
    results = {r.id: r for r in Checker(user_subject(f"{EXAMPLES}:{name}", task, {})).results()}
    line = _defect_line(name)
    found = results[broken]
    assert found.where == f"{EXAMPLES}:{line}", (found.where, found.message)
    assert f"example_losses.py:{line}" in found.message


# Parameters that act through the trainer's schedule, not the loss value.
SCHEDULE_PARAMS = {"warmup_epochs", "start_factor", "step_factor", "step_epoch"}


def _variant_subject(name: str) -> Subject:
    schema = variants()[name]
    cfg = schema(name=name)
    task = cfg.training_task().value
    data_cfg = SyntheticData(
        n_samples=200, n_features=4, n_groups=4, n_outputs=3, n_classes=4, grid=[4, 5],
        n_nodes=100, embedding_dim=3,
    )  # fmt: skip
    data = make_dataset(cfg.training_task(), data_cfg, 0)
    ctx = BuildContext(data=data, epsilon=1e-6, n_outputs=3, n_classes=4, grid=(4, 5))
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "name"}
    numeric = {
        k: v for k, v in fields.items()
        if isinstance(v, float) and k not in GUARDS and k not in SCHEDULE_PARAMS
    }  # fmt: skip
    return Subject(
        task=task,
        make=lambda p: schema(name=name, **{**fields, **p}).build(ctx),
        params=numeric,
        adapt=lambda loss: loss,
        tunable=list(numeric),
        n_nodes=100,
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in variants() if n != "custom"])
def test_every_built_in_variant_passes(name):
    results = Checker(_variant_subject(name)).results()
    failed = [(r.id, r.message) for r in results if r.status == "fail"]
    assert not failed


def test_element_wise_values_are_explained_in_one_line_without_a_framework_dump():
    results = Checker(user_subject(f"{EXAMPLES}:elementwise_mse", "grouped", {})).results()
    found = next(r for r in results if r.id == "sample-weight")
    assert found.status == "fail" and "(64, 3)" in found.message and "last axis" in found.message
    for r in results:
        assert "{{" not in r.message and "\n" not in r.message, r.id


def test_short_keeps_the_first_sentence_of_a_framework_error():
    from lossbench.check.subject import short

    dump = "{{function_node __wrapped__Mul_device_/job:localhost/replica:0/task:0/device:CPU:0}}"
    error = ValueError(f"{dump} Incompatible shapes: [64,3] vs. [64] [Op:Mul] name: ")
    assert short(error) == "Incompatible shapes: [64,3] vs. [64]"


def test_a_parameter_value_that_crashes_the_loss_is_a_failure_not_an_effect():
    results = Checker(user_subject(f"{EXAMPLES}:WidthFromParameter", "binary", {})).results()
    effect = next(r for r in results if r.id == "parameter-effect")
    assert effect.status == "fail" and "width=2.0 raises" in effect.message, effect.message


def test_a_batch_coupled_loss_fails_and_says_how_much_the_others_moved_it():
    results = Checker(user_subject(f"{EXAMPLES}:BatchDice", "binary", {})).results()
    found = next(r for r in results if r.id == "batch-independence")
    assert found.status == "fail" and "depends on the rest of its batch" in found.message
    assert "batch_coupling" in found.hint


def test_the_readme_example_fails_only_at_the_extremes():
    target = f"{Path(__file__).parents[2] / 'examples' / 'my_losses.py'}:WeightedBCE"
    results = Checker(user_subject(target, "binary", {"pos_weight": 3})).results()
    assert [r.id for r in results if r.status == "fail"] == ["finite-gradients"]


def test_a_checks_own_fault_is_an_error_with_its_traceback_not_the_losss(monkeypatch):
    import lossbench.check.model_checks as model_checks

    monkeypatch.setattr(model_checks, "value_and_grad", lambda fn, pred: (0.0, object()))
    results = {r.id: r for r in Checker(user_subject(f"{EXAMPLES}:GoodFocal", "binary",
                                                     {})).results()}  # fmt: skip
    found = results["gradient"]
    assert found.status == "error" and found.message.startswith(
        "internal error of this check, not a defect of the loss: AttributeError"
    )
    assert "model_checks.py" in found.trace and "Traceback" in found.trace
    assert all(r.status != "fail" for r in results.values())


def test_a_parameter_named_epsilon_is_checked_when_it_is_a_coefficient():
    """Poly-1's epsilon weighs a term of its own: checked. A clip's epsilon: a guard, named."""
    (poly,) = [r for r in Checker(user_subject(f"{EXAMPLES}:Poly1", "binary", {})).results()
               if r.id == "parameter-effect"]  # fmt: skip
    assert poly.status == "pass" and "changing epsilon changes the loss" in poly.message
    (clip,) = [r for r in Checker(user_subject(f"{EXAMPLES}:ClippedBCE", "binary", {})).results()
               if r.id == "parameter-effect"]  # fmt: skip
    assert clip.status == "skip" and "guards not checked: epsilon" in clip.message
