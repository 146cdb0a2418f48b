"""Output folders: one run or one sweep per folder, held by one process at a time.

A folder is held with an advisory lock on the folder itself (no lock file is left behind, even
by a killed process). Table writes go through hidden temporary files (`files.atomic_write_text`);
a killed process can leave those, and `remove_leftovers` clears them once no process holds the
folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from lossbench.errors import ConfigError, LossbenchError

# Files that make a folder another run's: a run's summary or tables.
RUN_FILES = ("summary.json", "steps.csv", "epochs.csv", "grad_norms.csv", "grad_groups.csv")


def _try_lock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def in_use(folder: Path) -> bool:
    """Whether a live lossbench process holds `folder`."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        return not _try_lock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)  # closing releases the test's own shared lock


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.glob(".*.tmp") if p.is_file()]


def remove_leftovers(folder: Path) -> list[Path]:
    """Remove what a killed process left in `folder` when no process holds it: the hidden
    temporary files of interrupted table writes. Returns them."""
    if in_use(folder):
        return []
    found = _temporaries(folder)
    for path in found:
        path.unlink(missing_ok=True)
    return found


def foreign_results(folder: Path, sweep: bool) -> str | None:
    """What in `folder` belongs to another run: one of its run files or, for a sweep, a job
    folder with a summary; None when there is none."""
    taken = [name for name in RUN_FILES if (folder / name).exists()]
    if sweep and folder.is_dir():
        found = next(folder.rglob("summary.json"), None)
        taken += [str(found.parent.relative_to(folder))] if found else []
    return taken[0] if taken else None


@contextlib.contextmanager
def claimed(folder: Path, key: str, sweep: bool = False, resume: bool = False) -> Iterator[Path]:
    """Hold `folder` for one run (or one sweep, `sweep`) while the block runs.

    Args:
        folder: created when missing.
        key: the config key that chose it (`hydra.run.dir` or `hydra.sweep.dir`), for messages.
        sweep: a sweep's folder: job folders with results under it are another sweep's.
        resume: a resumed sweep: the jobs already there are this sweep's own.

    Raises:
        ConfigError: the folder holds another run's or sweep's results, or cannot be written.
        LossbenchError: another process holds it.
    """
    taken = None if resume else foreign_results(folder, sweep)
    if taken is not None:
        raise ConfigError(
            key,
            "a new or empty folder (a folder holds one run or one sweep; results already there "
            "are kept)",
            f"{folder} (holds {taken})",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        raise ConfigError(
            key, "a folder lossbench can write", f"{folder} ({error.strerror})"
        ) from None
    try:
        if not _try_lock(fd, fcntl.LOCK_EX):
            raise LossbenchError(
                f"invalid value for `{key}`: expected a folder no other process is using, "
                f"received {str(folder)!r} (another lossbench process is writing there)"
            )
        for stale in _temporaries(folder):  # left by a process killed in this folder before
            stale.unlink(missing_ok=True)
        yield folder
    finally:
        os.close(fd)
