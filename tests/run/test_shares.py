"""Where the gradient goes (`trainer.record_groups`): each unit's contribution against plain
autodiff on both backends, the properties that define it, the tables and the refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lossbench.run.shares import GRAD_GROUPS, GRAD_GROUPS_COLUMNS
from lossbench.variants.registry import variants
from tests.conftest import TINY
from tests.shares_reference import compare, runner_units
from tests.test_cli import ROOT, lossbench

IGNORES_GROUP_ZERO = "custom:binary:tests/share_losses.py:IgnoresGroupZero"
# Every built-in variant has groups (the synthetic data's), and the classification ones classes.
BUILT_IN = [name for name in variants() if name != "custom"]
# Run by `make test`: classes and groups, groups coupled through the batch, a user's loss that
# ignores a group; every other variant (and all of them on JAX) in `make test-long`.
QUICK = ["focal", "group_dro", IGNORES_GROUP_ZERO]
QUICK_JAX = ["group_dro", IGNORES_GROUP_ZERO]
CASES = [
    pytest.param(name, marks=() if name in QUICK else pytest.mark.long)
    for name in [*BUILT_IN, IGNORES_GROUP_ZERO]
]
REPORT = [sys.executable, "-c", "from lossbench.sweep.cli import main; main()"]
TOLERANCE = 1e-5  # relative to the step's |g|^2; float32 sums against float64 references


def assert_matches_reference(row: dict) -> None:
    name = row["loss"]
    assert row["units"] >= 4, name  # TINY's 4 groups, and the classes of classification
    for key in ("grad_sq", "unit_sq", "unit_dot", "reduce_vs_call"):
        assert row[key] < TOLERANCE, (name, key, row[key])
    assert row["count"] == 0, name
    assert row["share_sums"] == pytest.approx([1.0] * len(row["share_sums"]), abs=TOLERANCE)
    if name == IGNORES_GROUP_ZERO:  # a loss that ignores a group gives it no gradient at all
        assert row["by"][0] == "group"
        assert row["unit_sq_got"][0] == 0.0 and row["unit_dot_got"][0] == 0.0
        assert min(row["unit_sq_got"][1:4]) > 0  # the other groups' samples still pull


@pytest.mark.parametrize("loss", CASES)
def test_each_unit_is_its_samples_share_by_plain_autodiff_on_tensorflow(loss):
    assert_matches_reference(compare(loss))


def _on_jax(losses: list[str]) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "tests.shares_reference", "jax", *losses],
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_each_unit_is_its_samples_share_by_plain_autodiff_on_jax():
    rows = _on_jax(QUICK_JAX)
    assert [row["loss"] for row in rows] == QUICK_JAX
    for row in rows:
        assert_matches_reference(row)


@pytest.mark.long
def test_every_variant_on_jax():
    others = [name for name in BUILT_IN if name not in QUICK_JAX]
    rows = _on_jax(others)
    assert [row["loss"] for row in rows] == others
    for row in rows:
        assert_matches_reference(row)


def test_a_duplicated_group_doubles_its_contribution():
    from lossbench.config.compose import compose
    from lossbench.run.experiment import build_experiment

    cfg = compose(["loss=mse", *TINY, "trainer.record_groups=true"])
    batch = cfg.trainer.batch_size
    idx = np.arange(batch, dtype="int32")
    once = runner_units(build_experiment(cfg), idx)
    exp = build_experiment(cfg)  # the same runner, back at the seed's weights
    groups = exp.data.train.groups[idx]
    k = int(np.bincount(groups).argmax())
    twice = runner_units(exp, np.concatenate([idx, idx[groups == k]]))
    # The mean over a batch grown by n_k samples scales every contribution by B / (B + n_k),
    # and group k's samples count twice.
    scale = batch / (batch + int((groups == k).sum()))
    factor = np.full(exp.units.n_groups, scale)
    factor[k] *= 2
    np.testing.assert_allclose(np.sqrt(twice["unit_sq"]), factor * np.sqrt(once["unit_sq"]),
                               rtol=1e-5)  # fmt: skip
    assert twice["unit_count"][k] == 2 * once["unit_count"][k]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One tiny run without shares and the same run with them, every second step."""
    root = tmp_path_factory.mktemp("shares")
    common = ["loss=focal", *TINY, "trainer.steps_per_chunk=5"]
    for name, extra in (("off", []), ("on", ["trainer.record_groups=true",
                                             "trainer.record_groups_every=2"])):  # fmt: skip
        proc = lossbench(*common, *extra, f"hydra.run.dir={root / name}", cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
    return root


def test_recording_shares_changes_no_table_of_the_run(recorded):
    for table in ("steps.csv", "epochs.csv", "grad_norms.csv"):
        assert (recorded / "on" / table).read_bytes() == (recorded / "off" / table).read_bytes()
    assert not (recorded / "off" / GRAD_GROUPS).exists()
    assert "gradient_shares" not in json.loads((recorded / "off" / "summary.json").read_text())


def test_grad_groups_holds_every_recorded_step_and_unit(recorded):
    frame = pd.read_csv(recorded / "on" / GRAD_GROUPS)
    steps = pd.read_csv(recorded / "on" / "steps.csv")
    assert list(frame.columns) == GRAD_GROUPS_COLUMNS
    assert sorted(set(frame["step"])) == list(range(0, len(steps), 2))
    assert list(frame["by"].drop_duplicates()) == ["group", "class"]
    per_step = frame.groupby(["step", "by"])
    np.testing.assert_allclose(per_step["share"].sum(), 1.0, atol=1e-5)
    batch = 32  # TINY's batch size; the epoch's last batch is smaller
    assert set(per_step["samples"].sum()) <= set(range(1, batch + 1))
    assert (frame["grad_norm"] >= 0).all()
    assert len(frame) == frame["step"].nunique() * (4 + 2)


def test_the_summary_holds_each_units_mean_share_early_and_late(recorded):
    summary = json.loads((recorded / "on" / "summary.json").read_text())
    shares = summary["gradient_shares"]
    frame = pd.read_csv(recorded / "on" / GRAD_GROUPS)
    minority = frame[(frame["by"] == "class") & (frame["name"].astype(str) == "1")]["share"]
    assert shares["share_class_1"] == pytest.approx(minority.mean(), rel=1e-6)
    tenth = int(np.ceil(0.1 * len(minority)))
    assert shares["share_class_1_early"] == pytest.approx(minority.iloc[:tenth].mean(), rel=1e-6)
    assert shares["share_class_1_late"] == pytest.approx(minority.iloc[-tenth:].mean(), rel=1e-6)
    assert shares["share_class_0"] + shares["share_class_1"] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("overrides", "key", "received"),
    [
        (["loss=mse", "trainer.record_groups=true", "trainer.record_groups_every=0"],
         "trainer.record_groups_every", "0"),
        (["loss=mse", "trainer.record_groups_every=3"], "trainer.record_groups_every", "3"),
        (["loss=mse", "data.n_groups=1", "trainer.record_groups=true"],
         "trainer.record_groups", "one group, no classes"),
        (["loss=custom", "loss.target=tests/share_losses.py:per_batch_mean", "loss.task=grouped",
          "trainer.record_groups=true"], "trainer.record_groups", "shape ()"),
    ],
)  # fmt: skip
def test_shares_that_cannot_be_recorded_are_refused_by_key(tmp_path, overrides, key, received):
    run = tmp_path / "run"
    proc = lossbench(*TINY, *overrides, f"hydra.run.dir={run}", cwd=ROOT)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"`{key}`" in lines[0] and received in lines[0], proc.stderr
    assert not (run / GRAD_GROUPS).exists()


@pytest.mark.long
def test_a_sweep_over_two_tasks_reports_shares_and_each_tasks_own_verdicts(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "loss=bce,focal,mse,grouped", "seed=0,1", *TINY, "trainer.record_groups=true"]
    proc = lossbench(*args, f"hydra.sweep.dir={sweep}", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    report = subprocess.run([*REPORT, str(sweep), "--quiet"], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    comparison = pd.read_csv(sweep / "comparison.csv").set_index("loss")
    for column in ("share_class_1_mean", "share_class_1_ci_low", "share_group_0_late_mean"):
        assert column in comparison.columns
    summary = pd.read_csv(sweep / "summary.csv")
    focal = summary[summary["loss"] == "focal"]["share_class_1"]
    assert comparison.loc["focal", "share_class_1_mean"] == pytest.approx(focal.mean())
    assert np.isnan(comparison.loc["mse", "share_class_1_mean"])  # regression: no classes
    verdicts = pd.read_csv(sweep / "verdicts.csv")
    assert not verdicts["metric"].str.startswith("share_").any()  # a share is no quality
    pairs = set(zip(verdicts["variant"], verdicts["baseline"], strict=True))
    assert pairs == {("focal", "bce"), ("grouped", "mse")}
    text = (sweep / "report.md").read_text()
    assert "## Where the gradient goes" in text and "(`bce`, `mse`)" in text
    assert (sweep / "gradient_shares.png").stat().st_size > 10_000


@pytest.mark.long
def test_seeds_trained_as_lanes_of_one_program_record_the_shares_of_separate_runs(tmp_path):
    args = ["-m", *TINY, "backend=jax", "loss=group_dro", "seed=0,1",
            "trainer.record_groups=true", "trainer.record_groups_every=3"]  # fmt: skip
    lanes, alone = tmp_path / "lanes", tmp_path / "alone"
    proc = lossbench(*args, "hydra/launcher=lossbench", "hydra.launcher.vectorize=2",
                     f"hydra.sweep.dir={lanes}", cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert lossbench(*args, f"hydra.sweep.dir={alone}", cwd=ROOT).returncode == 0
    for job in ("0_group_dro_seed0", "1_group_dro_seed1"):
        summary = json.loads((lanes / job / "summary.json").read_text())
        assert summary["vectorized_seeds"] == 2
        got, want = pd.read_csv(lanes / job / GRAD_GROUPS), pd.read_csv(alone / job / GRAD_GROUPS)
        assert len(got) == len(want) > 0
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-4, atol=1e-6)
