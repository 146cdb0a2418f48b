"""`make bench`'s report: docs/benchmarks.md from the measured results."""

from __future__ import annotations

import argparse
from typing import Any

from anchors import anchor_lines
from cnn import cnn_lines
from measure import MODELS, PAIRED_ROUNDS, train_flops
from search import search_lines
from shares import share_lines
from tracking import tracking_lines
from zoo import zoo_lines


def _f(x: float) -> str:
    return f"{x:,.0f}"


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    m = results["machine"]
    lines = [
        "# lossbench benchmarks",
        "",
        f"Measured {results['date']} with `{results['command']}` on {m['cpu']} "
        f"({m['cores']} cores{', ' + m['isa'] if 'isa' in m else ''}), Python {m['python']}. "
        f"Each figure is the median of "
        f"{args.repeats} timed runs after a warm-up run in the same process. The runs being "
        "compared are timed in interleaved rounds (one of each per round) and each ratio is the "
        "median of the per-round ratios, so a slow spell of the machine hits both sides alike; "
        f"(c), (d), c/d and the variant table rest on {1 + PAIRED_ROUNDS} times as many rounds "
        "(their targets are the tightest and their rounds are cheap). "
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()) + ".",
        "",
        "(a) plain `model.fit`, built-in loss, default settings; (b) `model.fit` with "
        "`steps_per_execution=32`; (c) lossbench's trainer recording per-step loss, global and "
        "per-layer gradient norms; (d) lossbench's trainer with recording off. Binary "
        "cross-entropy, Adam, 65,536 samples x 32 features, 10% positives (the anchors' setup).",
        "",
        "| backend | device | model | batch | (a) fit steps/s | (b) fit spe=32 | (c) lossbench | "
        "(d) no recording | us/step (c) | c/a | c/b | c/d |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for w in results["workers"]:
        for r in w["core"]:
            c = r["lossbench"]
            cells = [r["backend"], w["device"], r["model"], r["batch"], _f(r["fit"])]
            cells += [_f(r["fit_spe32"]), _f(c), _f(r["lossbench_norecord"]), f"{1e6 / c:.0f}"]
            cells += [f"{r['c/a']:.1f}x", f"{r['c/b']:.1f}x", f"{r['c/d']:.2f}"]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += cnn_lines(results)
    lines += _variants(results)
    lines += _roofline(results)
    lines += ["", "Graph loss plus its gradient, 1,024 nodes x 64 dimensions, compiled "
              "(target: under 5 ms):", "", "| backend | ms |", "| --- | ---: |"]  # fmt: skip
    lines += [f"| {w['graph']['backend']} | {w['graph']['ms']:.2f} |" for w in results["workers"]]
    lines += _startup(results)
    lines += _sweep(results)
    lines += search_lines(results)
    lines += share_lines(results)
    lines += tracking_lines(results)
    if results.get("table"):
        mib = results["table"][0]["csv_mib"]
        lines += ["", f"Real data: a CSV of 1,000,000 rows x 50 columns ({mib:.0f} MiB), loaded "
                  "with `data=table` (wall time of the process; peak resident memory):", "",
                  "| command | seconds | peak RSS MiB |", "| --- | ---: | ---: |"]  # fmt: skip
        lines += [
            f"| {r['command']} | {r['seconds']:.2f} | {r['peak_rss_mib']:.0f} |"
            for r in results["table"]
        ]
    if results["anchors"]:
        lines += ["", "The reference scripts (../shared/anchors), run in the same sitting:", "",
                  "| anchor | steps/s |", "| --- | ---: |"]  # fmt: skip
        lines += [f"| `{r['anchor']}` | {_f(r['steps_per_s'])} |" for r in results["anchors"]]
    lines += anchor_lines(results)
    lines += zoo_lines(results)
    return "\n".join(lines) + "\n"


def _variants(results: dict[str, Any]) -> list[str]:
    """Every variant's step against the plain loss of its task."""
    lines: list[str] = []
    lines += [
        "",
        "Every variant's step against lossbench's plain BCE (binary task) or MSE step on the same "
        "task, model (MLP 64-64 with the task's head), data and batch 64, recording on. The "
        "ratio is variant time per step / baseline time per step (target: at most 1.5).",
        "",
        "| backend | loss | task | variant steps/s | baseline steps/s | time ratio |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for w in results["workers"]:
        for r in w["variants"]:
            lines.append(
                f"| {r['backend']} | {r['loss']} | {r['task']} | {_f(r['variant'])} | "
                f"{_f(r['baseline'])} | {r['time_ratio']:.2f} |"
            )
    return lines


def _startup(results: dict[str, Any]) -> list[str]:
    """Start-up and whole runs."""
    lines: list[str] = []
    lines += ["", "Start-up and whole runs (wall time of the process; peak resident memory; for a "
              "run, the part of it its summary counts as compiling, its programs' first calls):",
              "", "| command | seconds | peak RSS MiB | of which compiling s |",
              "| --- | ---: | ---: | ---: |"]  # fmt: skip
    lines += [
        f"| `{r['command']}` | {r['seconds']:.2f} | {r['peak_rss_mib']:.0f} | "
        f"{_compile(r.get('compile_seconds'))} |"
        for r in results["startup"]
    ]
    return lines


def _compile(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.2f}"


def _roofline(results: dict[str, Any]) -> list[str]:
    """Each (c) configuration's achieved GFLOP/s against a large matrix multiply's."""
    lines = [
        "",
        "Roofline: the matrix-multiply work of a training step (3 x 2 x batch x fan-in x fan-out "
        "per layer; element-wise work left out, so a lower bound) times (c)'s steps/s, against a "
        "2048 x 2048 float32 matrix multiply compiled by the same backend in the same sitting "
        "(its best of 10 runs, default threads): the distance to this machine's dense limit.",
        "",
        "| backend | model | batch | GFLOP/step | (c) GFLOP/s | matmul GFLOP/s | fraction |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for w in results["workers"]:
        peak = w["matmul"]["gflops"]
        for r in w["core"]:
            flops = train_flops(MODELS[r["model"]], r["batch"]) / 1e9
            achieved = flops * r["lossbench"]
            lines.append(
                f"| {r['backend']} | {r['model']} | {r['batch']} | {flops:.4f} | "
                f"{achieved:.1f} | {peak:.0f} | {achieved / peak:.0%} |"
            )
    return lines


def _sweep(results: dict[str, Any]) -> list[str]:
    """Sweeps with Hydra's basic launcher and its joblib launcher at 2 workers."""
    rows = results.get("sweeps")
    if not rows:
        return []
    one = next(r["basic_seconds"] for r in rows if "joblib_seconds" not in r)
    lines = [
        "",
        "Sweeps, whole process, with Hydra's basic launcher (jobs one after another in one "
        "process) and its joblib launcher (`hydra/launcher=joblib hydra.launcher.n_jobs=2`), in "
        f"{rows[0]['rounds']} interleaved rounds; the ratio is the median of the per-round "
        "ratios joblib / basic (below 1: joblib is faster).",
        "",
        "| sweep | basic s | joblib s | ratio | every job's tables the same bytes |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        if "joblib_seconds" in r:
            same = "yes" if r["same_tables"] else "NO"
            lines.append(f"| `{r['command']}` | {r['basic_seconds']:.2f} | "
                         f"{r['joblib_seconds']:.2f} | {r['ratio']:.2f} | {same} |")  # fmt: skip
    lines += [
        "",
        f"A one-seed sweep takes {one:.2f} s with the basic launcher: start-up (interpreter, "
        "Hydra, framework import, first compile) that any launcher pays once, and that each "
        "joblib worker pays again in its own process.",
    ]
    return lines
