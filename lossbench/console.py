"""What a person sees in the terminal: a progress bar while training, then a summary table."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from lossbench.store.run_folder import Summary
from rich.table import Table

console = Console()


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int, float], None]]:
    """Yield an `on_progress(done, total, loss)` callback drawing a bar (only on a terminal)."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps  loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=True,
    )
    task_id = progress.add_task(label, total=None, loss="-")

    def update(done: int, total: int, loss: float) -> None:
        progress.update(task_id, completed=done, total=total, loss=f"{loss:.4g}")

    with progress:
        yield update


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_summary(summary: Summary, out_dir: Path) -> None:
    """Print the run's summary table and where its files are: the selected epoch's metrics on
    the validation split, and on the test split beside them when the data holds one out."""
    table = Table(title="lossbench summary", title_justify="left", min_width=40)
    test = summary.test_metrics or {}
    table.add_column("key")
    table.add_column("validation" if test else "value", justify="right")
    if test:
        table.add_column("test", justify="right")
    for key in (
        "loss",
        "task",
        "status",
        "steps",
        "steps_per_second",
        "wall_seconds",
        "device",
        "backend",
    ):
        table.add_row(key, _fmt(getattr(summary, key)), *([""] if test else []))
    for key, value in summary.metrics.items():
        if not key.startswith("mse_group_"):
            table.add_row(key, _fmt(value), *([_fmt(test.get(key, ""))] if test else []))
    console.print(table)
    console.print(f"outputs: {out_dir}")


def job_line(summary: Summary, out_dir: Path) -> None:
    """One line for a sweep's finished job: its folder, status, and final metrics."""
    metrics = {k: v for k, v in summary.metrics.items() if not k.startswith("mse_group_")}
    shown = " ".join(f"{k}={_fmt(v)}" for k, v in list(metrics.items())[:4])
    console.print(f"{out_dir.name}: {summary.status} {shown}", highlight=False, soft_wrap=True)


def headline_metrics(columns: list[str]) -> list[str]:
    """The comparison columns worth a terminal: final loss, validation loss, then the first
    five metrics and the worst group's (per-group breakdowns stay in the CSV)."""
    means = [c.removesuffix("_mean") for c in columns if c.endswith("_mean")]
    skip = ("steps_per_second", "train_seconds", "train_loss")
    # Per-group and per-component breakdowns, and the gradient's shares (their own table).
    per_part = re.compile(r"_group_\d+$|^val_loss_|^share_")
    keep = [m for m in means if m not in skip and not per_part.search(m)]
    first = [m for m in ("final_loss", "val_loss") if m in keep]
    worst = [m for m in keep if m.startswith("worst_group_")]  # the question groups ask
    return first + [m for m in keep if m not in first + worst][:5] + worst


def print_comparison(comparison: Any, keys: list[str], title: str) -> None:
    """Print the per-variant comparison, one row per (variant, metric): mean and 95% t
    interval across seeds (long format, so it fits an 80-column terminal)."""
    metrics = headline_metrics(list(comparison.columns))
    labels = [
        "\n".join([str(row[keys[0]])] + [f"{k}={row[k]}" for k in keys[1:]])
        for _, row in comparison.iterrows()
    ]
    rows = []
    for label, (_, row) in zip(labels, comparison.iterrows(), strict=True):
        for i, m in enumerate(metrics):
            mean, low, high = row[f"{m}_mean"], row.get(f"{m}_ci_low"), row.get(f"{m}_ci_high")
            ci = "-" if low is None or low != low else f"[{low:.3g}, {high:.3g}]"
            n = f"{row['ok']}/{row['jobs']}" if i == 0 else ""
            rows.append([label if i == 0 else "", m, "-" if mean != mean else f"{mean:.4g}", ci, n])
        rows.append(None)  # a line between variants
    headers = ["variant", "metric", "mean", "95% CI", "n"]
    # The numbers and metric names never wrap; the variant's name takes the width that is left
    # (each column has a space either side and a border before it, plus the last border) and
    # wraps between settings, folding a setting only when it is wider than that.
    fixed = [max([len(h)] + [len(r[c]) for r in rows if r]) for c, h in enumerate(headers) if c]
    room = console.width - sum(fixed) - 3 * len(headers) - 1
    widest = max((len(w) for label in labels for w in label.split()), default=7)
    table = Table(title=title, title_justify="left")
    table.add_column(
        "variant", min_width=max(7, min(widest, room)), max_width=max(7, room), overflow="fold"
    )
    table.add_column("metric", no_wrap=True)
    for name in headers[2:]:
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        if row is None:
            table.add_section()
        else:
            table.add_row(*row)
    console.print(table)


def print_sweep(comparison: Any, keys: list[str], sentences: list[str], title: str) -> None:
    """The comparison table, then one line per verdict sentence."""
    print_comparison(comparison, keys, title)
    for sentence in sentences:
        console.print(sentence, markup=False, highlight=False, soft_wrap=True)


def print_or_drop(fn: Any, *args: Any) -> None:
    """Print to stdout, or nothing once its reader has gone (`lossbench ... | head`): the run's
    outcome and exit status do not depend on who reads the console."""
    try:
        fn(*args)
        sys.stdout.flush()
    except (BrokenPipeError, SystemExit):  # rich exits 1 on a closed pipe
        # Python would report the closed pipe again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
