"""The README's Python examples run as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
ANCHOR_MLP = "MLP 32-64-64-1"  # the anchors' model, the one the README quotes


def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:  # later blocks build on earlier ones, as a reader would run them
        exec(compile(block, str(README), "exec"), namespace)
    assert (tmp_path / "model.keras").exists()
    for name in ("model", "classifier"):  # the robust fit on NaN targets stays finite
        losses = namespace[name].history.history["loss"]
        assert losses and all(abs(v) < float("inf") for v in losses), name


def test_readme_speed_figures_are_those_of_docs_benchmarks():
    """The README quotes `make bench`'s last sitting (docs/benchmarks.json), not older figures."""
    bench = json.loads((README.parent / "docs" / "benchmarks.json").read_text())
    text = " ".join(README.read_text().split())
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
    paired = {r["backend"]: r for r in bench["paired"]}
    matmul = next(w["matmul"]["gflops"] for w in bench["workers"] if w["backend"] == "tensorflow")
    # Matrix work of one step of the MLP 32-64-64-1 at batch 64: forward and two backward products.
    step_flops = 3 * 2 * 64 * (32 * 64 + 64 * 64 + 64 * 1)
    gflops = tf["lossbench"] * step_flops / 1e9
    sweep = bench["sweep"]
    expected += [
        f"{paired['tensorflow']['ratio']:.2f}x the hand-written compiled epoch of "
        f"`../shared/anchors/fused_tf.py` ({paired['tensorflow']['lossbench']:,.0f} against "
        f"{paired['tensorflow']['anchor']:,.0f} steps/s",
        f"JAX: {paired['jax']['ratio']:.2f}x `fused_jax.py` ({paired['jax']['lossbench']:,.0f} "
        f"against {paired['jax']['anchor']:,.0f})",
        f"That is {gflops:.0f} GFLOP/s of matrix work, {gflops / matmul:.0%} of what a large "
        f"matrix multiply reaches here ({matmul:.0f} GFLOP/s)",
        f"takes {sweep['basic_seconds']:.2f} s with the basic launcher and "
        f"{sweep['recommended_seconds']:.2f} s with `hydra/launcher=lossbench` "
        f"({sweep['ratio']:.2f}x, the same bytes",
        f"A one-seed sweep already takes {sweep['basic_one_job_seconds']:.2f} s",
    ]
    assert sweep["same_tables"]
    for figure in expected:
        assert figure in text, figure
