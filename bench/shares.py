"""`make bench`'s gradient-shares section: what `trainer.record_groups=true` costs a run.

The default MLP on grouped regression (`loss=mse`) with 2, 4 and 8 groups, run by the
`lossbench` command with the shares off, recorded on every step, and on every 4th step
(`trainer.record_groups_every=4`); each figure is the run's steady-state steps/s from its
summary.json, the three settings interleaved, the median of the repeats.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from measure import LOSSBENCH, run_measured

GROUPS = (2, 4, 8)
SETTINGS = {
    "off": ["trainer.record_groups=false"],
    "every step": ["trainer.record_groups=true"],
    "every 4th step": ["trainer.record_groups=true", "trainer.record_groups_every=4"],
}


def share_rows(
    tmp: Path, backends: list[str], quick: bool, repeats: int = 3
) -> list[dict[str, Any]]:
    """One row per (backend, groups, setting): steps/s and its ratio to the shares off."""
    rows = []
    for backend in backends:
        for groups in GROUPS[:1] if quick else GROUPS:
            rates: dict[str, list[float]] = {name: [] for name in SETTINGS}
            for k in range(1 if quick else repeats):
                for i, (name, settings) in enumerate(SETTINGS.items()):
                    folder = tmp / f"shares_{backend}_{groups}_{i}_{k}"
                    args = [*LOSSBENCH, "loss=mse", f"backend={backend}",
                            f"data.n_groups={groups}", "trainer.progress=false", *settings,
                            *(["trainer.epochs=1"] if quick else []),
                            f"hydra.run.dir={folder}"]  # fmt: skip
                    run_measured(args, tmp)
                    summary = json.loads((folder / "summary.json").read_text())
                    rates[name].append(summary["steps_per_second"])
            off = statistics.median(rates["off"])
            for name, values in rates.items():
                rate = statistics.median(values)
                rows.append({"backend": backend, "groups": groups, "setting": name,
                             "steps_per_second": rate, "time_ratio": off / rate})  # fmt: skip
    return rows


def share_lines(results: dict[str, Any]) -> list[str]:
    """The section of docs/benchmarks.md."""
    rows = results.get("shares")
    if not rows:
        return []
    sitting = results.get("shares_sitting")
    when = f" (measured {sitting['date']} with `{sitting['command']}`)" if sitting else ""
    lines = ["", f"Gradient shares{when}: `lossbench loss=mse data.n_groups=G` with "
             "`trainer.record_groups` off, on every step, and on every 4th step; steady-state "
             "steps/s from each run's summary.json (median of 3, interleaved) and the step "
             "time against the shares off:", "",
             "| backend | groups | shares | steps/s | step time |",
             "| --- | ---: | --- | ---: | ---: |"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['backend']} | {r['groups']} | {r['setting']} | "
                     f"{r['steps_per_second']:.0f} | {r['time_ratio']:.2f}x |")  # fmt: skip
    return lines
