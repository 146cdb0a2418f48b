"""`make bench`: lossbench's trainer side by side with plain Keras, in one sitting.

The orchestrator (no framework imported) starts one worker process per backend; each worker
measures, on the same model, data and batch size:
  (a) plain `model.fit` with the built-in loss and default settings,
  (b) plain `model.fit` with steps_per_execution=32,
  (c) lossbench's trainer with full per-step recording,
  (d) lossbench's trainer with recording off,
and a user's CNN (examples/my_models.py) on digits, lossbench against `model.fit`,
then every loss variant against lossbench's plain BCE/MSE step on the same task, and the graph
loss with its gradient on 1,024 nodes x 64 dimensions. The orchestrator also times start-up and
measures peak memory of whole runs, and runs the reference scripts in ../shared/anchors when they
are there, with the `lossbench` command itself against the hand-fused ones, natively and with
XLA capped to AVX2 (bench/anchors.py). Each figure is the median of `--repeats` measurements.
Results: a table on the console and docs/benchmarks.md (or --out).

Usage: python bench/run.py [--backends tensorflow,jax] [--repeats 5] [--quick] [--out PATH]
                          [--anchors DIR] [--sections cli,zoo,search,shares,tracking]
       python bench/run.py --paired tensorflow,jax [--rounds 5]

`--sections cli` measures only the command against the anchors (natively and capped to AVX2),
`--sections zoo` only the model zoo against `model.fit` (bench/zoo.py), `--sections search`
only the search (with and without pruning, bench/search.py), `--sections
shares` only the cost of gradient shares (bench/shares.py); each goes into the last sitting's
docs/benchmarks.json and .md, with its own date and machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from anchors import ANCHOR_ROUNDS, AVX2, paired_anchor_rows, twin
from measure import ANCHORS, ROOT, anchor_rows, machine, worker
from processes import startup_rows, sweep_rows, table_rows
from report import report
from search import search_rows
from shares import share_rows
from tracking import tracking_rows
from zoo import ROUNDS, zoo_rows


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--anchors", type=Path, default=ANCHORS, help="reference scripts' folder")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--twin", help=argparse.SUPPRESS)
    parser.add_argument(
        "--paired", metavar="BACKENDS",
        help="only the fused anchors against the lossbench command (and its twin) in "
        "alternating fresh processes, under this environment's XLA_FLAGS (e.g. "
        "--xla_cpu_max_isa=AVX2); prints the rows, writes nothing",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=ANCHOR_ROUNDS, help="rounds of --paired")
    parser.add_argument(
        "--sections",
        help="only these sections (cli, zoo, search, shares, tracking), into the last sitting",
    )
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    args.anchors = args.anchors.resolve()  # the measurements run in a temporary folder
    if args.twin:
        print(json.dumps(twin(args.twin)))
        return
    if args.paired:
        _print_paired(args)
        return
    if args.sections:
        _sections(args)
        return
    if args.worker:
        from cnn import cnn_rows  # after `worker` has chosen the backend

        out = worker(args.worker, args.repeats, args.quick)
        out["cnn"] = cnn_rows(args.worker, args.repeats, args.quick)
        print(json.dumps(out))
        return

    import tempfile
    from importlib import metadata

    results: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "command": "make bench" if not args.quick else "python bench/run.py --quick",
        "machine": machine(),
        "versions": {
            p: metadata.version(p)
            for p in ("lossbench", "keras", "tensorflow", "jax")
            if _installed(p)
        },
        "workers": [],
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    backends = args.backends.split(",")
    for backend in backends:
        cmd = [sys.executable, str(Path(__file__)), "--worker", backend, "--repeats",
               str(args.repeats), *(["--quick"] if args.quick else [])]  # fmt: skip
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"bench worker {backend} failed:\n{proc.stderr[-3000:]}")
        results["workers"].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    with tempfile.TemporaryDirectory() as tmp:
        results["startup"] = startup_rows(args.repeats, args.quick, Path(tmp), backends[0])
        results["anchors"] = [] if args.quick else anchor_rows(Path(tmp), args.anchors, backends)
        results["paired"] = (
            [] if args.quick
            else paired_anchor_rows(Path(tmp), args.anchors, backends, caps=("", AVX2))
        )  # fmt: skip
        results["table"] = [] if args.quick else table_rows(Path(tmp))
        results["sweeps"] = sweep_rows(Path(tmp), 1 if args.quick else 2, args.quick)
        results["zoo"] = zoo_rows(Path(tmp), backends, 1 if args.quick else ROUNDS,
                                  ["mlp", "cnn"] if args.quick else None)  # fmt: skip
        results["search"] = search_rows(Path(tmp), args.quick)
        results["shares"] = share_rows(Path(tmp), backends, args.quick)
        results["tracking"] = tracking_rows(Path(tmp), args.quick)
    _write(results, args)


def _write(results: dict[str, Any], args: argparse.Namespace) -> None:
    text = report(results, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    print(text)
    print(f"written: {args.out}")


SECTIONS = {
    "cli": lambda tmp, args: paired_anchor_rows(
        tmp, args.anchors, args.backends.split(","), args.rounds, caps=("", AVX2)
    ),
    "zoo": lambda tmp, args: zoo_rows(tmp, args.backends.split(","), 1 if args.quick else ROUNDS),
    "search": lambda tmp, args: search_rows(tmp, args.quick),
    "tracking": lambda tmp, args: tracking_rows(tmp, args.quick),
    "shares": lambda tmp, args: share_rows(tmp, args.backends.split(","), args.quick),
}


# Where a section's rows live in docs/benchmarks.json, when not under its own name.
KEYS = {"cli": "paired"}


def _sections(args: argparse.Namespace) -> None:
    """`--sections search,shares`: measure those sections alone; the last sitting's other
    sections stay."""
    import tempfile

    names = args.sections.split(",")
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise SystemExit(f"--sections: expected some of {', '.join(SECTIONS)}, received "
                         f"{args.sections!r}")  # fmt: skip
    results = json.loads(args.out.with_suffix(".json").read_text())
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            results[KEYS.get(name, name)] = SECTIONS[name](Path(tmp), args)
        results[f"{name}_sitting"] = {
            "date": datetime.date.today().isoformat(), "machine": machine(),
            "command": f"python bench/run.py --sections {name}",
        }  # fmt: skip
    _write(results, args)


def _print_paired(args: argparse.Namespace) -> None:
    """`--paired`: only the fused anchors against the lossbench command and its twin, printed
    as JSON."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rows = paired_anchor_rows(Path(tmp), args.anchors, args.paired.split(","), args.rounds)
    print(json.dumps(rows, indent=1))


def _installed(pkg: str) -> bool:
    from importlib import metadata

    try:
        metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    main()
