"""Atomic file writes: a reader sees a file either as it was or complete, never half written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from lossbench.signals import PENDING_FILES


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so that the file is either old or complete, never partial."""
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that the file is either old or complete, never partial."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise naming(error, path) from error
    PENDING_FILES.add(tmp)
    try:
        # mkstemp makes the file private (0600); a table gets the mode any new file gets here.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise naming(error, path) from error
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        PENDING_FILES.discard(tmp)


def naming(error: OSError, path: Path) -> OSError:
    """The error naming the file being written (a full disk's write error names none)."""
    return type(error)(error.errno, error.strerror, str(path))
