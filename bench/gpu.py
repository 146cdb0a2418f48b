"""`make bench-gpu`: lossbench with JAX on the machine's accelerator, measured in one sitting.

  variants  every loss variant's default run, one sweep with the basic launcher: status, device,
            steady steps/s, compile seconds and the process's peak device memory;
  anchor    `fused_jax.py` against lossbench's twin of it (the same model, data and batch, timed
            the anchor's way) and against the `lossbench` command on the anchor's network, in
            alternating fresh processes (`anchors.paired_anchor_rows`);
  seeds     sweeps of S seeds trained together (`hydra.launcher.vectorize=S`) for S = 1, 8, 32:
            the command's wall time and the training time, each against S = 1, and the 8 seeds
            one after another for reference;
  repeat    the default run twice: how far two identical runs' tables differ;
  zoo       bench/zoo.py's models through the command against `model.fit` (not with --quick).

Written to docs/benchmarks-gpu.md and .json (or --out). On a machine without an accelerator it
measures the CPU and says so; `--quick` uses tiny runs (a smoke test, as `make test` runs it).

Usage: python bench/gpu.py [--quick] [--rounds 2] [--anchors DIR] [--out PATH]

On a lent GPU machine, which has JAX with CUDA but neither TensorFlow nor this project's other
packages: here, `bash ../shared/tools/gpu-wheels.sh scikit-learn==1.9.1 threadpoolctl joblib
PyYAML` and `mkdir -p .anchors && cp ../shared/anchors/fused_jax.py .anchors/` (both folders
git-ignored, carried along); there, after the install line the script prints,
`python3 bench/gpu.py --anchors .anchors --out $OUT/benchmarks-gpu.md`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from anchors import ANCHOR_SHAPED, paired_anchor_rows
from measure import ANCHORS, LOSSBENCH, ROOT, machine, run_measured
from zoo import zoo_lines, zoo_rows

JAX = ["backend=jax", "trainer.progress=false"]
QUICK = ["data.n_samples=600", "data.n_features=8", "data.n_groups=4", "model.hidden=[16,16]",
         "trainer.epochs=2", "trainer.batch_size=32"]  # fmt: skip
QUICK_VARIANTS = ["bce", "grouped_dynamic"]
TABLES = ("steps.csv", "grad_norms.csv", "epochs.csv")
SEEDS = (1, 8, 32)


def _lossbench(args: list[str], tmp: Path) -> float:
    """Run the lossbench CLI; return its wall seconds."""
    wall, _, _ = run_measured([*LOSSBENCH, *args], tmp)
    return wall


def _summaries(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*/summary.json"))]


def variant_rows(tmp: Path, extra: list[str], names: list[str]) -> list[dict[str, Any]]:
    """Each variant's default run in one sweep (basic launcher): what its summary says."""
    folder = tmp / "variants"
    _lossbench(["-m", *JAX, *extra, f"loss={','.join(names)}", f"hydra.sweep.dir={folder}"], tmp)
    keys = ("loss", "status", "device", "steps_per_second", "compile_seconds", "train_seconds",
            "device_peak_bytes")  # fmt: skip
    return [{k: s.get(k) for k in keys} for s in _summaries(folder)]


def seed_rows(tmp: Path, extra: list[str], seeds: tuple[int, ...], rounds: int) -> dict[str, Any]:
    """S seeds trained together, for each S, in interleaved rounds; the middle S is also run
    one seed after another, the reference vectorizing is measured by."""
    launcher = ["hydra/launcher=lossbench"]
    cases = {f"{s} together": (s, s) for s in seeds}
    if len(seeds) > 2:  # the middle S, one seed after another (too slow to add to a quick run)
        cases[f"{seeds[1]} one by one"] = (seeds[1], 1)
    walls: dict[str, list[float]] = {name: [] for name in cases}
    trains: dict[str, list[float]] = {name: [] for name in cases}
    lanes: dict[str, Any] = {}
    for k in range(rounds):
        for name, (s, together) in cases.items():
            folder = tmp / f"seeds_{name.replace(' ', '_')}_{k}"
            walls[name].append(_lossbench([
                "-m", *JAX, *extra, f"seed=range({s})", *launcher,
                f"hydra.launcher.vectorize={together}", f"hydra.sweep.dir={folder}",
            ], tmp))  # fmt: skip
            done = _summaries(folder)
            if len(done) != s or any(d["status"] != "ok" for d in done):
                raise RuntimeError(f"{name}: not every job finished in {folder}")
            # Seeds trained together share one training time; one by one, their times add up.
            times = [d["train_seconds"] for d in done]
            trains[name].append(max(times) if together > 1 else sum(times))
            lanes[name] = sorted({d.get("vectorized_seeds", 1) for d in done})
    base = f"{seeds[0]} together"
    rows = []
    for name, (s, _) in cases.items():
        rows.append({
            "case": name, "seeds": s, "lanes": lanes[name],
            "wall_seconds": statistics.median(walls[name]),
            "train_seconds": statistics.median(trains[name]),
            "wall_vs_one": statistics.median(
                w / b for w, b in zip(walls[name], walls[base], strict=True)),
            "train_vs_one": statistics.median(
                t / b for t, b in zip(trains[name], trains[base], strict=True)),
        })  # fmt: skip
    return {"rounds": rounds, "rows": rows}


def repeat_row(tmp: Path, extra: list[str]) -> dict[str, Any]:
    """The same run twice: how far its tables differ (`compare_tables`)."""
    folders = [tmp / f"repeat_{k}" for k in range(2)]
    for folder in folders:
        _lossbench([*JAX, *extra, f"hydra.run.dir={folder}"], tmp)
    return compare_tables(*folders)


def compare_tables(first: Path, second: Path) -> dict[str, Any]:
    """Per run table of two run folders: whether the bytes match, how many float cells differ,
    and the largest absolute and relative differences."""
    import numpy as np
    import pandas as pd

    out: dict[str, Any] = {}
    for name in TABLES:
        a, b = pd.read_csv(first / name), pd.read_csv(second / name)
        numeric = [c for c in a.columns if pd.api.types.is_float_dtype(a[c])]
        x, y = a[numeric].to_numpy("float64"), b[numeric].to_numpy("float64")
        diff = np.abs(x - y)
        diff[np.isnan(x) & np.isnan(y)] = 0.0  # a NaN in both is no difference
        out[name] = {
            "same_bytes": (first / name).read_bytes() == (second / name).read_bytes(),
            "cells_differing": int(np.count_nonzero(diff)),  # a NaN in one counts
            "cells": int(diff.size),
            "max_abs": float(np.nanmax(diff)) if diff.size else 0.0,
            "max_rel": float(np.nanmax(diff / np.maximum(np.abs(y), 1e-12))) if diff.size else 0.0,
        }
    return out


def report(results: dict[str, Any]) -> str:
    """The Markdown page."""
    lines = [
        "# lossbench on an accelerator (JAX)",
        "",
        f"Measured {results['date']} with `{results['command']}` on {results['device']} "
        f"({results['machine']['cpu']}, {results['machine']['cores']} cores).",
        "",
        "## Every variant's default run",
        "",
        "| variant | status | steps/s | compile s | peak device MiB |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in results["variants"]:
        peak = r["device_peak_bytes"]
        lines.append(
            f"| {r['loss']} | {r['status']} | {r['steps_per_second']:,.0f} | "
            f"{r['compile_seconds']:.2f} | {'-' if peak is None else f'{peak / 2**20:,.0f}'} |"
        )
    lines += ["", "## Against the hand-fused JAX anchor", ""]
    if results["paired"]:
        for r in results["paired"]:
            lines.append(
                f"`lossbench` {r['lossbench']:,.0f} steps/s against `fused_jax.py` "
                f"{r['anchor']:,.0f}: {r['lossbench_ratio']:.2f}x (the twin "
                f"{r['twin_ratio']:.2f}x; median of {r['rounds']} paired rounds; the command "
                f"on the anchor's network: {' '.join(ANCHOR_SHAPED)})."
            )
    else:
        lines.append("Not measured (no anchor scripts given, or `--quick`).")
    seeds = results["seeds"]
    lines += [
        "", f"## Seeds trained together (median of {seeds['rounds']} rounds)", "",
        "| case | lanes | wall s | x one seed | training s | x one seed |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]  # fmt: skip
    for r in seeds["rows"]:
        lines.append(
            f"| {r['case']} | {','.join(map(str, r['lanes']))} | {r['wall_seconds']:.2f} | "
            f"{r['wall_vs_one']:.2f} | {r['train_seconds']:.2f} | {r['train_vs_one']:.2f} |"
        )
    most = max(seeds["rows"], key=lambda r: r["seeds"])
    lines += [
        "", f"{most['seeds']} seeds together take {most['wall_vs_one']:.2f}x the wall time of one "
        f"seed (goal: at most 1.5x) and {most['train_vs_one']:.2f}x its training time.",
    ]  # fmt: skip
    lines += [
        "", "## Two identical runs", "",
        "| table | same bytes | cells differing | largest difference | largest relative |",
        "| --- | --- | ---: | ---: | ---: |",
    ]  # fmt: skip
    for name, r in results["repeat"].items():
        lines.append(
            f"| {name} | {r['same_bytes']} | {r['cells_differing']} of {r['cells']} | "
            f"{r['max_abs']:.3g} | {r['max_rel']:.3g} |"
        )
    if results.get("zoo"):
        lines += ["", "## The model zoo against `model.fit`", *zoo_lines(results)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny runs: a smoke test")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--anchors", type=Path, default=ANCHORS, help="reference scripts' folder")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks-gpu.md")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    sys.path.insert(0, str(ROOT))
    from lossbench.variants.registry import variants

    names = [n for n in variants() if n != "custom"]  # custom needs the user's own file
    extra = QUICK if args.quick else []
    seeds = (1, 2) if args.quick else SEEDS
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        results: dict[str, Any] = {
            "date": datetime.date.today().isoformat(),
            "command": "python bench/gpu.py" + (" --quick" if args.quick else ""),
            "machine": machine(),
            "variants": variant_rows(tmp, extra, QUICK_VARIANTS if args.quick else names),
            "paired": (
                [] if args.quick or not args.anchors.is_dir()
                else paired_anchor_rows(tmp, args.anchors.resolve(), ["jax"])
            ),
            "seeds": seed_rows(tmp, extra, seeds, 1 if args.quick else args.rounds),
            "zoo": [] if args.quick else zoo_rows(tmp, ["jax"], args.rounds),
            "repeat": repeat_row(tmp, extra),
        }  # fmt: skip
    results["device"] = results["variants"][0]["device"]
    text = report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    print(text)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
