"""A sweep's results: its three tables from its job folders (summary.csv, comparison.csv,
verdicts.csv), and what could not go into them; every reporter of a sweep starts from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lossbench.store.run_folder import Status
from lossbench.sweep.aggregate import comparison_frame, read_jobs
from lossbench.sweep.verdicts import verdict_frame

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class SweepTables:
    """A sweep's tables; `problems` names each file that could not be read (and why),
    `left_out` the job folders under it that its plan does not hold (another sweep's)."""

    summary: pd.DataFrame
    comparison: pd.DataFrame
    verdicts: pd.DataFrame
    problems: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)

    def write(self, root: Path) -> None:
        """Write summary.csv, comparison.csv and verdicts.csv into `root`."""
        from lossbench.store.tables import write_csv

        write_csv(self.summary, root / "summary.csv")
        write_csv(self.comparison, root / "comparison.csv")
        write_csv(self.verdicts, root / "verdicts.csv")

    def failed_jobs(self) -> pd.DataFrame:
        """The jobs whose status is not ok."""
        summary = self.summary
        return summary if summary.empty else summary[summary["status"] != Status.ok]


def sweep_tables(root: Path, baseline: str | None = None) -> SweepTables:
    """The tables of the job folders under `root` (nothing written)."""
    summary, problems, left_out = read_jobs(root)
    return SweepTables(
        summary, comparison_frame(summary), verdict_frame(summary, baseline), problems, left_out
    )


def aggregate(root: Path, baseline: str | None = None) -> SweepTables:
    """Write summary.csv, comparison.csv and verdicts.csv into `root`; return the tables."""
    tables = sweep_tables(root, baseline)
    tables.write(root)
    return tables
