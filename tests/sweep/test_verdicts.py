"""Which baseline a sweep's verdicts use, how it is named, and what a sweep without verdicts
says (lossbench.sweep.aggregate: resolve_baseline, verdict_frame, why_no_verdicts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lossbench.errors import ConfigError
from lossbench.sweep.aggregate import settings_of
from lossbench.sweep.results import aggregate
from lossbench.sweep.verdicts import resolve_baseline, why_no_verdicts
from tests.conftest import TINY
from tests.test_cli import lossbench

REPORT = [sys.executable, "-c", "from lossbench.sweep.cli import main; main()"]
SETTINGS = {"loss": ["temperature", "bce"], "loss.temperature": ["0.5", "1.0", "2.0"]}


@pytest.mark.parametrize(
    ("text", "setting"),
    [("bce", ("loss", "bce")), ("loss=bce", ("loss", "bce")), ("loss:bce", ("loss", "bce")),
     ("loss.temperature=1", ("loss.temperature", "1.0")),
     ("loss.temperature:1.0", ("loss.temperature", "1.0")),
     ("loss.temperature: 2", ("loss.temperature", "2.0")), ("0.5", ("loss.temperature", "0.5"))],
)  # fmt: skip
def test_every_form_of_a_baseline_names_a_setting_the_sweep_ran(text, setting):
    assert resolve_baseline(SETTINGS, text) == setting


@pytest.mark.parametrize("text", ["focall", "loss.temperature:3", "loss.gamma=1.0", ""])
def test_a_baseline_the_sweep_did_not_run_is_refused_by_name(text):
    with pytest.raises(ConfigError) as caught:
        resolve_baseline(SETTINGS, text, key="--baseline")
    message = str(caught.value)
    assert message.startswith("invalid value for `--baseline`")
    assert "temperature, bce, loss.temperature:0.5" in message and repr(text) in message


def test_a_near_miss_gets_the_closest_name():
    with pytest.raises(ConfigError, match="did you mean `temperature`"):
        resolve_baseline(SETTINGS, "temperatur")


def test_settings_are_the_loss_and_what_varies_except_the_seed():
    rows = [{"loss": "custom", "loss.target": t, "seed": s, "trainer.epochs": "2"}
            for t in ("a.py:f", "b.py:g") for s in "01"]  # fmt: skip
    assert settings_of(rows) == {"loss": ["custom"], "loss.target": ["a.py:f", "b.py:g"]}


def _job(root: Path, k: int, overrides: list[str], status: str, metrics: dict) -> None:
    job = root / f"{k}_job"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    seed = int(next(o for o in overrides if o.startswith("seed=")).partition("=")[2])
    summary = {"status": status, "loss": "custom", "seed": seed, "metrics": metrics}
    (job / "summary.json").write_text(json.dumps(summary))
    (job / "steps.csv").write_text("step,epoch,loss,grad_norm\n0,0,0.5,1.0\n")
    (job / "grad_norms.csv").write_text("step,layer,grad_norm\n0,head,1.0\n")


def _custom_sweep(root: Path, plain_status: str = "ok") -> None:
    # Hydra writes a sweep job's `:` escaped in overrides.yaml.
    for k, (target, seed) in enumerate(
        (t, s) for t in (r"a.py\:plain", r"b.py\:heavy") for s in range(4)
    ):
        recall = (0.70 if "plain" in target else 0.85) + 0.01 * seed
        status = plain_status if "plain" in target else "ok"
        _job(root, k, ["loss=custom", f"loss.target={target}", f"seed={seed}"], status,
             {"minority_recall": recall} if status == "ok" else {})  # fmt: skip


def test_losses_that_differ_only_by_their_target_are_compared(tmp_path):
    _custom_sweep(tmp_path)
    tables = aggregate(tmp_path, "a.py:plain")
    summary, verdicts = tables.summary, tables.verdicts
    assert list(verdicts["variant"]) == ["custom, loss.target=b.py:heavy"]
    assert list(verdicts["baseline"]) == ["loss.target=a.py:plain"]
    assert list(verdicts["verdict"]) == ["better"] and list(verdicts["n"]) == [4]
    assert why_no_verdicts(summary, None).startswith("no verdicts: name the baseline")


def test_a_baseline_that_failed_in_every_seed_is_said_so(tmp_path):
    _custom_sweep(tmp_path, plain_status="error")
    tables = aggregate(tmp_path, "loss.target:a.py:plain")
    summary, verdicts = tables.summary, tables.verdicts
    assert verdicts.empty
    assert "did not finish in any seed (4 jobs" in why_no_verdicts(summary, "a.py:plain")


def test_the_report_refuses_an_unknown_baseline_before_writing(tmp_path):
    _custom_sweep(tmp_path)
    ok = subprocess.run([*REPORT, str(tmp_path), "--quiet", "--baseline", "a.py:plain"],
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    bad = subprocess.run([*REPORT, str(tmp_path), "--baseline", "plainn"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "`--baseline`" in bad.stderr and "'plainn'" in bad.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_the_report_says_why_a_sweep_has_no_verdicts(tmp_path):
    _custom_sweep(tmp_path)
    proc = subprocess.run([*REPORT, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "no verdicts: name the baseline" in proc.stdout
    assert "No verdicts: name the baseline" in (tmp_path / "report.md").read_text()
    assert pd.read_csv(tmp_path / "verdicts.csv").empty


def test_a_sweep_refuses_an_unknown_baseline_before_its_first_job(tmp_path):
    sweep = tmp_path / "sweep"
    proc = lossbench("-m", *TINY, "loss=bce,focal", "report.baseline=focall",
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "`report.baseline`" in proc.stderr and "did you mean `focal`" in proc.stderr
    assert not sweep.exists()


@pytest.mark.parametrize(
    "text",
    ["- !!python/object/apply:os.system ['echo hi']\n", "loss: [unclosed\n", "just a string\n",
     b"\xff\xfe".decode("latin-1")],
)  # fmt: skip
def test_the_report_names_an_unreadable_overrides_file_and_goes_on(tmp_path, text):
    _custom_sweep(tmp_path)
    broken = tmp_path / "0_job" / ".hydra" / "overrides.yaml"
    broken.write_text(text, encoding="latin-1")
    proc = subprocess.run([*REPORT, str(tmp_path), "--quiet", "--baseline", "a.py:plain"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"left out: {broken}: unreadable" in proc.stderr
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert len(summary) == 8 and (tmp_path / "report.md").exists()
    assert str(broken) in (tmp_path / "report.md").read_text()


def test_a_setting_as_baseline_needs_no_quotes_on_the_command_line(tmp_path):
    from lossbench.config.compose import quote_setting_values

    assert quote_setting_values("report.baseline=loss.temperature=1.0") == (
        "report.baseline='loss.temperature=1.0'"
    )
    for kept in ("report.baseline=bce", "report.baseline='loss.gamma=1'", "loss.gamma=1"):
        assert quote_setting_values(kept) == kept
    sweep = tmp_path / "sweep"
    proc = lossbench("-m", "loss=temperature", "loss.temperature=0.5,1.0",
                     "report.baseline=loss.temperature=3", f"hydra.sweep.dir={sweep}",
                     cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2 and "OverrideParseException" not in proc.stderr
    assert "received 'loss.temperature=3'; did you mean `loss.temperature:1.0`?" in proc.stderr


def test_a_gate_names_a_custom_losss_variant_whole(tmp_path):
    """A custom loss's variant label holds colons (`custom, loss.target=b.py:heavy`): --expect
    reads its METRIC and VERDICT from the right."""
    _custom_sweep(tmp_path)

    def gate(*expect: str) -> subprocess.CompletedProcess[str]:
        args = [a for e in expect for a in ("--expect", e)]
        return subprocess.run([*REPORT, str(tmp_path), "--quiet", "--baseline", "a.py:plain",
                               *args], capture_output=True, text=True)  # fmt: skip

    met = gate("custom, loss.target=b.py:heavy:minority_recall:better")
    assert met.returncode == 0, met.stderr
    unmet = gate("custom, loss.target=b.py:heavy:minority_recall:worse")
    assert unmet.returncode == 1 and "is better than `loss.target=a.py:plain`" in unmet.stderr
    bad = gate("custom, loss.target=b.py:heavy:minority_recall")  # no verdict word
    assert bad.returncode == 2 and "--expect takes VARIANT:METRIC:" in bad.stderr
