"""experiments/README.md is written from README.template.md and each study's committed results/
(experiments/tables.py), and `make studies-check` compares regenerated studies with it: a stated
result cannot drift from the files behind it, nor hold on one machine only."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tables():
    name = "experiments_tables"
    if name not in sys.modules:  # dataclasses look their module up while it is executed
        spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / "tables.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def test_the_readme_is_its_template_filled_from_the_committed_results():
    tables = _tables()
    assert tables.rendered(tables.TEMPLATE.read_text()) == tables.README.read_text(), (
        "run `python experiments/tables.py`"
    )
    assert "{{" not in tables.README.read_text()


def test_every_study_has_its_results_and_both_runs_verdicts():
    tables = _tables()
    studies = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))
    named = [name for name, _ in tables.sections(tables.TEMPLATE.read_text()) if name]
    assert sorted(named) == studies
    for name in studies:
        folder = tables.RESULTS / name
        for file in ("summary.csv", "comparison.csv", "verdicts.csv", "verdicts-avx2.csv"):
            assert (folder / file).exists(), f"{name}/{file}"


def _verdicts(rows: list[tuple[str, str, str, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"variant": v, "baseline": "b", "metric": m, "n": 5, "diff_mean": d, "diff_ci_low": lo,
          "diff_ci_high": hi, "p_improvement": 0.5, "verdict": verdict, "seeds_needed": None}
         for v, m, verdict, d, lo, hi in rows]
    )  # fmt: skip


def test_a_verdict_is_stated_only_when_both_runs_find_it_clear_the_same_way(tmp_path):
    tables = _tables()
    native = _verdicts([("a", "ece", "better", -0.02, -0.03, -0.01),
                        ("a", "accuracy", "worse", -0.02, -0.03, -0.01),
                        ("b", "ece", "better", -0.02, -0.03, -0.01),
                        ("b", "mse_group_3", "worse", 0.1, 0.05, 0.15)])  # fmt: skip
    avx2 = native.copy()
    avx2.loc[1, "verdict"] = "fragile"  # a, accuracy: clear natively only
    folder = tmp_path / "study"
    folder.mkdir()
    native.to_csv(folder / "verdicts.csv", index=False)
    avx2.to_csv(tmp_path / "avx2.csv", index=False)
    for name in ("summary.csv", "comparison.csv"):
        pd.DataFrame({"loss": ["a"]}).to_csv(folder / name, index=False)
    study = tables.Study.read(folder, tmp_path / "avx2.csv")
    assert study.stated == {("a", "ece"): "better", ("b", "ece"): "better",
                            ("b", "mse_group_3"): "worse"}  # fmt: skip
    rows = tables.verdict_table(study).splitlines()[2:]  # per-group breakdowns stay in the CSV
    assert rows == ["| a | ece | better | -0.02 [-0.03, -0.01] |",
                    "| b | ece | better | -0.02 [-0.03, -0.01] |"]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "half"),
    [("0.94", 0.005), ("12", 0.5), ("+0.0031", 0.00005), ("1.5e-05", 0.05e-05), ("-2.4", 0.05)],
)
def test_half_a_unit_of_the_last_digit_shown(text, half):
    assert _tables()._half_unit(text) == pytest.approx(half)


def test_studies_check_names_a_moved_number_and_a_lost_verdict(tmp_path):
    tables = _tables()
    template = tables.TEMPLATE.read_text()
    regenerated = tmp_path / "again"
    for name in ("spurious", "groups"):
        shutil.copytree(tables.RESULTS / name, regenerated / name)
    found = tables.differences(template, regenerated)
    assert not [line for line in found if not line.endswith("not regenerated under "
                                                            f"{regenerated}")]  # fmt: skip
    # spurious: group DRO's worst-group accuracy moves far out of its interval, and its stated
    # ROC-AUC verdict comes out fragile.
    comparison = pd.read_csv(regenerated / "spurious" / "comparison.csv")
    row = comparison["loss"] == "group_dro"
    comparison.loc[row, "worst_group_accuracy_mean"] += 0.2
    comparison.to_csv(regenerated / "spurious" / "comparison.csv", index=False)
    verdicts = pd.read_csv(regenerated / "spurious" / "verdicts.csv")
    verdicts.loc[verdicts["metric"] == "roc_auc", "verdict"] = "fragile"
    verdicts.to_csv(regenerated / "spurious" / "verdicts.csv", index=False)
    found = [line for line in tables.differences(template, regenerated) if "spurious" in line]
    assert any("group_dro worst_group_accuracy mean" in line for line in found), found
    assert "spurious: group_dro on roc_auc: stated worse, now fragile" in found
    assert len(found) == 2, found
