"""`lossbench-check TARGET --task TASK`: check a user's loss for the defects hand-written losses
have, on every installed backend.

Exit status: 0 when every check passes (or is skipped), 1 when one fails (or one of the checks
itself has an internal error: status `error`, its traceback in `--json`), 2 for bad input (one
line; `--debug` shows the traceback). Each backend runs in its own process (a process can hold
one Keras backend), both at once; the `backends` check compares their values and gradients.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from lossbench.check.catalog import Status, check
from lossbench.user_code import target_problems

TASKS = ("binary", "multiclass", "grouped")
BACKENDS = ("tensorflow", "jax")


class BadInput(Exception):
    """One line for the user, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, as for every other bad input (argparse would print the usage first).
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse_params(items: list[str]) -> dict[str, Any]:
    """`--param gamma=2` pairs as typed values (YAML scalars: 2 is an int, 0.5 a float)."""
    params: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise BadInput(f"--param expects NAME=VALUE, received {item!r}")
        try:
            params[name] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise BadInput(f"--param {name}: cannot read the value {text!r}") from None
        value = params[name]
        if isinstance(value, float) and not math.isfinite(value):
            raise BadInput(f"--param {name}: expected a finite number, received {text!r}")
    return params


def installed_backends() -> list[str]:
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def run_workers(spec: dict[str, Any], backends: list[str], debug: bool) -> dict[str, Any]:
    """Run one worker per backend in parallel; return each backend's output.

    Each worker writes its result to a file of its own, so what the user's loss prints cannot
    corrupt it, and starts with `python -P`, so modules in the working folder (a `random.py`)
    cannot shadow the standard library. Ctrl-C ends every worker (exit 130 from `main`).
    """
    procs: dict[str, tuple[subprocess.Popen[str], Path]] = {}
    with tempfile.TemporaryDirectory(prefix="lossbench-check-") as folder:
        try:
            for backend in backends:
                env = {**os.environ, "KERAS_BACKEND": backend}
                env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
                env.setdefault("JAX_PLATFORMS", "cpu")
                out = Path(folder) / f"{backend}.json"
                cmd = [
                    sys.executable,
                    "-P",
                    "-m",
                    "lossbench.check.worker",
                    json.dumps(spec),
                    str(out),
                ]
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
                )
                procs[backend] = (proc, out)
            return {b: _output(b, proc, out, debug) for b, (proc, out) in procs.items()}
        finally:
            for proc, _ in procs.values():  # interrupted or failed: no worker is left behind
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _output(backend: str, proc: subprocess.Popen[str], out: Path, debug: bool) -> dict[str, Any]:
    """A finished worker's output, or the one line saying why there is none."""
    _, err = proc.communicate()
    try:
        output = json.loads(out.read_text())
    except (OSError, ValueError):
        if debug:
            sys.stderr.write(err)
        tail = " ".join(err.strip().splitlines()[-1:]) or f"exit status {proc.returncode}"
        raise BadInput(f"the {backend} check process failed: {tail}") from None
    if "error" in output:
        raise BadInput(output["error"])
    return output


def merge(outputs: dict[str, Any]) -> list[dict[str, str]]:
    """One row per check across backends: a failure (or a check's internal error) on any
    backend is the row's, naming where; the user's line, details and a traceback come along."""
    rows = []
    first_output = next(iter(outputs.values()))
    for check_id, title in ((r["id"], r["title"]) for r in first_output["results"]):
        per = {b: next(r for r in o["results"] if r["id"] == check_id) for b, o in outputs.items()}
        rows.append({"id": check_id, "title": title, **_merged(per)})
    rows.append(compare_backends(outputs))
    return rows


def _merged(per: dict[str, dict[str, str]]) -> dict[str, str]:
    """One check's row from its result on each backend: a failure (then an internal error) on
    any backend first, naming where when there are several, then all skipped, then passed."""
    for status in (Status.failed, Status.error):
        failed = {b: r for b, r in per.items() if r["status"] == status}
        if failed:
            by_message: dict[str, list[str]] = {}
            for b, r in failed.items():
                by_message.setdefault(r["message"], []).append(b)
            message = "; ".join(
                f"{', '.join(bs)}: {m}" if len(per) > 1 else m for m, bs in by_message.items()
            )
            first = next(iter(failed.values()))
            extra = {k: first.get(k, "") for k in ("hint", "where", "detail", "trace")}
            return {"status": status, "message": message, **extra}
    if all(r["status"] == Status.skipped for r in per.values()):
        return {"status": Status.skipped, "message": next(iter(per.values()))["message"]}
    ran = [b for b, r in per.items() if r["status"] == Status.passed]
    where = f" ({', '.join(ran)})" if len(per) > 1 else ""
    return {"status": Status.passed, "message": per[ran[0]]["message"] + where, "hint": ""}


def _row(status: str, message: str, hint: str = "") -> dict[str, str]:
    declared = compare_backends.declared  # type: ignore[attr-defined]
    return {
        "id": declared.id,
        "title": declared.title,
        "status": status,
        "message": message,
        "hint": hint,
    }


@check(
    "backends",
    "TensorFlow equals JAX",
    catches="TensorFlow and JAX disagreeing",
    runs="values and gradients of the TensorFlow and JAX processes on the same batch",
    across_backends=True,
)
def compare_backends(outputs: dict[str, Any]) -> dict[str, str]:
    """TensorFlow and JAX agree on values and gradients at the standard batch."""
    prints = {b: o.get("fingerprint") for b, o in outputs.items() if o.get("fingerprint")}
    if len(prints) < 2:
        return _row(Status.skipped, f"needs TensorFlow and JAX (checked: {', '.join(outputs)})")
    import numpy as np

    hint = "write the loss with keras.ops only (no tf.* or jnp.* calls)"
    worst = 0.0
    for key in ("values", "grad"):
        a, b = np.asarray(prints["tensorflow"][key]), np.asarray(prints["jax"][key])
        if a.shape != b.shape:
            return _row(
                Status.failed, f"{key}: shape {a.shape} on TensorFlow, {b.shape} on JAX", hint
            )
        scale = max(float(np.max(np.abs(a))), 1e-6) if a.size else 1.0
        worst = max(worst, float(np.max(np.abs(a - b))) / scale if a.size else 0.0)
    if worst > 1e-4:
        return _row(
            Status.failed, f"TensorFlow and JAX differ by {worst:.2e} of the largest value", hint
        )
    return _row(Status.passed, f"TensorFlow and JAX agree (largest difference {worst:.1e})")


def print_table(rows: list[dict[str, str]], target: str, task: str) -> None:
    from rich.console import Console
    from rich.table import Table

    style = {
        Status.passed: "green",
        Status.failed: "bold red",
        Status.skipped: "dim",
        Status.error: "bold magenta",
    }
    table = Table(title=f"lossbench-check {target} --task {task}", show_lines=False)
    for column in ("check", "result", "finding", "hint"):
        table.add_column(column, overflow="fold")
    for row in rows:
        status = f"[{style[row['status']]}]{row['status']}[/]"
        table.add_row(row["id"], status, row["message"], row.get("hint", ""))
    Console().print(table)


def main(argv: list[str] | None = None) -> None:
    """Console entry point of `lossbench-check`."""
    parser = _Parser(
        prog="lossbench-check",
        description="Check your own Keras loss for the defects hand-written losses have.",
    )
    parser.add_argument("target", help="path/to/file.py:Name or package.module:Name")
    parser.add_argument("--task", required=True, choices=TASKS, help="the tensors it receives")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--backend", default="all", choices=[*BACKENDS, "all"])
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    try:
        params = parse_params(args.param)
        if args.json is not None and not args.json.parent.is_dir():
            raise BadInput(f"--json: expected a file in an existing folder, received '{args.json}'")
        for _, expected, received in target_problems("TARGET", args.target):
            raise BadInput(f"invalid TARGET: expected {expected}, received {received!r}")
        backends = installed_backends() if args.backend == "all" else [args.backend]
        if not backends or any(importlib.util.find_spec(b) is None for b in backends):
            raise BadInput(f"--backend {args.backend}: not installed")
        spec = {"target": args.target, "task": args.task, "params": params}
        rows = merge(run_workers(spec, backends, args.debug))
    except KeyboardInterrupt:
        print("lossbench-check: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except BadInput as error:
        if args.debug:
            raise
        print(f"lossbench-check: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print_table(rows, args.target, args.task)
    if args.json:
        checks = [
            {
                "id": r["id"],
                "title": r["title"],
                "status": r["status"],
                "message": r["message"],
                "hint": r.get("hint", ""),
                "where": r.get("where", ""),
                **{k: r[k] for k in ("detail", "trace") if r.get(k)},
            }
            for r in rows
        ]
        report = {"target": args.target, "task": args.task, "backends": backends, "checks": checks}
        try:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        except OSError as error:
            print(
                f"lossbench-check: error: --json: {error.strerror}: '{args.json}'", file=sys.stderr
            )
            raise SystemExit(2) from None
    raise SystemExit(1 if any(r["status"] in (Status.failed, Status.error) for r in rows) else 0)
