"""The README and docs/: their commands and Python examples run as written, and their figures
are `make bench`'s."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
ANCHOR_MLP = "MLP 32-64-64-1"  # the anchors' model, the one the README quotes


def test_the_python_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "losses.md").read_text(), flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:  # later blocks build on earlier ones, as a reader would run them
        exec(compile(block, str(DOCS / "losses.md"), "exec"), namespace)
    assert (tmp_path / "model.keras").exists()
    # The docs' way to load it in a fresh process: import lossbench.losses, then load_model.
    load = ("import keras, lossbench.losses\nm = keras.models.load_model('model.keras')\n"
            "print(type(m.loss).__name__, m.loss.get_config()['epsilon'])")  # fmt: skip
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    fresh = subprocess.run([sys.executable, "-c", load], cwd=tmp_path, capture_output=True,
                           text=True, env=env)  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.split()[-2:] == ["GroupedDynamicLoss", "1e-06"], fresh.stdout
    for name in ("model", "classifier"):  # the robust fit on NaN targets stays finite
        losses = namespace[name].history.history["loss"]
        assert losses and all(abs(v) < float("inf") for v in losses), name


def test_speed_figures_are_those_of_docs_benchmarks():
    """docs/architecture.md quotes `make bench`'s last sitting (docs/benchmarks.json)."""
    bench = json.loads((DOCS / "benchmarks.json").read_text())
    text = " ".join((DOCS / "architecture.md").read_text().split())
    core = {
        w["backend"]: next(r for r in w["core"] if (r["model"], r["batch"]) == (ANCHOR_MLP, 64))
        for w in bench["workers"]
    }
    tf, jax = core["tensorflow"], core["jax"]
    graph = {w["backend"]: w["graph"]["ms"] for w in bench["workers"]}
    help_seconds = next(r for r in bench["startup"] if r["command"] == "lossbench --help")
    worst = {w["backend"]: max(r["time_ratio"] for r in w["variants"]) for w in bench["workers"]}
    expected = [
        f"{tf['lossbench']:,.0f} steps/s on TensorFlow: {tf['c/a']:.1f}x plain `fit` "
        f"({tf['fit']:,.0f}), {tf['c/b']:.1f}x `fit`",
        f"JAX reaches {jax['lossbench']:,.0f}",
        f"(c/d {tf['c/d']:.2f} and {jax['c/d']:.2f};",
        f"takes {graph['tensorflow']:.1f} ms (TensorFlow) and {graph['jax']:.1f} ms (JAX)",
        f"answers in {help_seconds['seconds']:.2f} s",
        f"within {worst['tensorflow']:.2f}x of the plain BCE/MSE step on TensorFlow and within "
        f"{worst['jax']:.2f}x on JAX",
    ]
    # The command against the anchors, natively (the sitting's own ISA) and capped to AVX2.
    native = {r["backend"]: r for r in bench["paired"] if "capped" not in r["isa"]}
    capped = {r["backend"]: r for r in bench["paired"] if "capped" in r["isa"]}
    matmul = next(w["matmul"]["gflops"] for w in bench["workers"] if w["backend"] == "tensorflow")
    # Matrix work of one step of the MLP 32-64-64-1 at batch 64: forward and two backward products.
    step_flops = 3 * 2 * 64 * (32 * 64 + 64 * 64 + 64 * 1)
    gflops = tf["lossbench"] * step_flops / 1e9
    sweeps = {r["sweep"]: r for r in bench["sweeps"]}
    expected += [
        f"{native['tensorflow']['lossbench_ratio']:.2f}x the hand-written compiled epoch of "
        f"`../shared/anchors/fused_tf.py` ({native['tensorflow']['lossbench']:,.0f} against "
        f"{native['tensorflow']['anchor']:,.0f} steps/s",
        f"JAX: {native['jax']['lossbench_ratio']:.2f}x `fused_jax.py` "
        f"({native['jax']['lossbench']:,.0f} against {native['jax']['anchor']:,.0f}); with XLA "
        f"capped to AVX2, {capped['tensorflow']['lossbench_ratio']:.2f}x and "
        f"{capped['jax']['lossbench_ratio']:.2f}x",
        f"That is {gflops:.0f} GFLOP/s of matrix work, {gflops / matmul:.0%} of what a large "
        f"matrix multiply reaches here ({matmul:.0f} GFLOP/s)",
        f"A one-seed sweep takes {sweeps['default run, 1 seed']['basic_seconds']:.2f} s",
    ]
    for name in ("default run, 8 seeds", "default run, 48 seeds"):
        r = sweeps[name]
        expected.append(f"{r['basic_seconds']:.2f} s with the basic launcher and "
                        f"{r['joblib_seconds']:.2f} s with joblib ({r['ratio']:.2f}x)")  # fmt: skip
    assert all(r["same_tables"] for r in sweeps.values())
    for figure in expected:
        assert figure in text, figure


def test_readme_lists_the_checks_of_the_catalog_in_order():
    """The README's table of lossbench-check's checks is the declared checks, in order."""
    from lossbench.check.catalog import checks

    for page in (README, DOCS / "check.md"):
        text = page.read_text()
        table = text[text.index("| check | runs | catches |") :].split("\n\n", 1)[0]
        rows = re.findall(r"^\| `([a-z-]+)` \| (.+) \| (.+) \|$", table, re.M)
        assert rows == [(check.id, check.runs, check.catches) for check in checks()], page.name


def shown_commands() -> list[tuple[str, str, str]]:
    """Every `lossbench ...` line in a bash block of the README and docs/: (file, folder it runs
    in, the command without its shell comment)."""
    found = []
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
            folder = "."
            for line in block.splitlines():
                line = line.split("  #")[0].strip()
                if line.startswith("cd "):
                    folder = line[3:]
                if line.startswith("lossbench "):
                    found.append((page.name, folder, line))
    return found


@pytest.mark.parametrize(("page", "folder", "command"), shown_commands())
def test_every_command_shown_composes_and_validates_as_written(page, folder, command, monkeypatch):
    """As the shell and Hydra read it: quoting, group options, keys, types and ranges (single
    runs are validated; a sweep's base config is composed as Hydra composes it)."""
    from lossbench.config.checks import validate
    from lossbench.config.compose import compose_raw

    args = shlex.split(command)[1:]
    monkeypatch.chdir(ROOT / folder)
    if any(a.startswith("-") and a != "-m" for a in args):  # --help, --cfg: Hydra's own flags
        return
    overrides = [a for a in args if a != "-m"]
    if "-m" in args:
        compose_raw(overrides, multirun=True)
    else:
        validate(compose_raw(overrides))


def test_the_commands_shown_include_the_readmes_first_run_and_a_sweep():
    commands = [c for _, _, c in shown_commands()]
    assert "lossbench loss=grouped_dynamic scale.epsilon=1e-6" in commands
    assert any(c.startswith("lossbench -m ") for c in commands)


def shown_outputs() -> list[tuple[str, str, str]]:
    """Every `$ lossbench ...` line of a text block in the README and docs/ with the line shown
    after it: (file, command, the line)."""
    found = []
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        for block in re.findall(r"```text\n(.*?)```", page.read_text(), flags=re.S):
            lines = block.splitlines()
            for line, after in itertools.pairwise(lines):
                if line.startswith("$ lossbench ") and not after.startswith("$"):
                    found.append((page.name, line[2:], after))
    return found


@pytest.mark.slow
@pytest.mark.parametrize(("page", "command", "shown"), shown_outputs())
def test_the_output_a_page_shows_is_what_its_command_prints(page, command, shown, tmp_path):
    from tests.test_cli import lossbench

    args = shlex.split(command)[1:]
    proc = lossbench(*args, "trainer.progress=false", f"hydra.run.dir={tmp_path / 'run'}",
                     cwd=tmp_path)  # fmt: skip
    assert shown in proc.stderr.splitlines(), proc.stderr


def _study(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = ROOT / "experiments" / "results" / name
    return pd.read_csv(folder / "comparison.csv"), pd.read_csv(folder / "verdicts.csv")


def test_the_readmes_study_figures_are_the_committed_results():
    """The README quotes two studies: its figures are those of experiments/results/."""
    text = " ".join(README.read_text().split())
    comparison, verdicts = _study("spurious")
    wga = comparison.set_index("loss")["worst_group_accuracy_mean"]
    cost = verdicts[(verdicts["variant"] == "group_dro") & (verdicts["metric"] == "accuracy")]
    assert (f"raises the worst group's test accuracy from {wga['bce']:.2f} to "
            f"{wga['group_dro']:.2f} and costs {-cost['diff_mean'].item():.2f} of average "
            "accuracy") in text  # fmt: skip
    comparison, _ = _study("digits_cnn")
    t1 = comparison[comparison["loss.temperature"] == 1.0].iloc[0]
    assert (f"a test accuracy within about {CNN_TOLERANCE} of {t1['accuracy_mean']:.2f}, the mean "
            f"of the digits_cnn study's {t1['n']} seeds at this temperature") in text  # fmt: skip


CNN_TOLERANCE = 0.03  # a single seed against the study's mean: float32 rounding moves it


@pytest.mark.slow
@pytest.mark.long
def test_the_readmes_cnn_run_lands_near_the_studys_mean(tmp_path):
    from tests.test_cli import lossbench

    (command,) = [c for page, _, c in shown_commands() if page == "README.md" and "small_cnn" in c]
    run = tmp_path / "run"
    proc = lossbench(*shlex.split(command)[1:], f"hydra.run.dir={run}", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    accuracy = json.loads((run / "summary.json").read_text())["test_metrics"]["accuracy"]
    comparison, _ = _study("digits_cnn")
    mean = comparison[comparison["loss.temperature"] == 1.0]["accuracy_mean"].item()
    assert abs(accuracy - mean) <= CNN_TOLERANCE
