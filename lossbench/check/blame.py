"""Whose code an error came from, and the one line that says so: the last frame in the user's
own files (path:line and the source line) and the error's own message, found in the traceback
or in the frames TensorFlow's AutoGraph writes into its message.

A frame is the user's when its file is none of lossbench's, the frameworks' (anything installed
in site-packages), Python's own or generated code.
"""

from __future__ import annotations

import linecache
import re
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path

from lossbench.errors import brief

_LOSSBENCH = str(Path(__file__).resolve().parents[1])
_SYSTEM = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
# A frame TensorFlow's AutoGraph prints inside its message: `File "x.py", line 9, in helper`.
_MESSAGE_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
# The error AutoGraph or XLA reports after its frames: `AttributeError: ...` on its own line.
_NODE = re.compile(r"\{\{node ([^}]+)\}\}")
_RAISED = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit)): (.+)$")


def is_users(path: str) -> bool:
    """Whether `path` is a file of the user's own code."""
    if not path or path.startswith("<") or "__autograph_generated" in path:
        return False
    resolved = str(Path(path).resolve())
    if resolved.startswith(_LOSSBENCH) or "site-packages" in resolved:
        return False
    return not any(resolved.startswith(p) for p in _SYSTEM if p)


@dataclass(frozen=True)
class Place:
    """A line of the user's code."""

    path: str
    line: int

    @property
    def source(self) -> str:
        return linecache.getline(self.path, self.line).strip()

    def __str__(self) -> str:
        return f"{Path(self.path).name}:{self.line}"


def users_place(error: BaseException) -> Place | None:
    """The last frame of the user's code in the error's traceback (its causes' too), or in the
    frames AutoGraph wrote into its message."""
    found: Place | None = None
    seen: set[int] = set()
    chained: BaseException | None = error
    while chained is not None and id(chained) not in seen:
        seen.add(id(chained))
        for frame in traceback.extract_tb(chained.__traceback__):
            if is_users(frame.filename) and frame.lineno:
                found = Place(frame.filename, frame.lineno)
        for path, line in _MESSAGE_FRAME.findall(str(chained)):
            if is_users(path):
                found = Place(path, int(line))
        chained = chained.__cause__ or chained.__context__
    return found


def place_in_graph(error: BaseException, graph: object) -> Place | None:
    """For an error TensorFlow raised running a traced program: the user's line that created
    the op it names (`{{node mul}}`), from the op's creation traceback in `graph`."""
    for name in reversed(_NODE.findall(str(error))):
        try:
            op = graph.get_operation_by_name(name)  # type: ignore[attr-defined]
        except (KeyError, ValueError):
            continue
        frames = [f for f in op.traceback if is_users(f.filename) and f.lineno]
        if frames:
            return Place(frames[-1].filename, frames[-1].lineno)
    return None


def own_message(error: BaseException) -> str:
    """The error's own message, without the frames a framework put before it."""
    text = str(error)
    raised = [m for m in map(_RAISED.match, text.splitlines()) if m]
    if raised and "File " in text:  # AutoGraph: the frames, then the error itself
        name, message = raised[-1].group(1).rpartition(".")[2], raised[-1].group(2)
    else:
        name, message = type(error).__name__, brief(error)
    message = re.split(r"(?<!vs)\. ", " ".join(message.split()))[0]  # its first sentence
    return f"{name}: {message[:200]}{'...' if len(message) > 200 else ''}"


def describe(error: BaseException, graph: object = None) -> tuple[str, str]:
    """(one line: the error's own message and where in the user's code, "path:line" or ""); a
    TensorFlow `graph` the error came from names the line that created the failing op."""
    place = users_place(error) or (place_in_graph(error, graph) if graph is not None else None)
    if place is None:
        return own_message(error), ""
    source = f": `{place.source}`" if place.source else ""
    return f"{own_message(error)} at {place}{source}", f"{place.path}:{place.line}"


def internal(error: BaseException) -> bool:
    """An error of lossbench's own code (no frame of the user's): a check's fault, not the
    loss's."""
    return users_place(error) is None and _raised_in_lossbench(error)


def _raised_in_lossbench(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if str(Path(f.filename).resolve()).startswith(_LOSSBENCH)]
    if not ours:
        return False
    # The innermost frame of lossbench's own code raised it, or called a library that did with
    # arguments the check made (NumPy on a value the check built).
    return "lossbench/losses" not in ours[-1].filename.replace("\\", "/")


def traceback_text(error: BaseException) -> str:
    """The full traceback, for `--json` (an internal error is for lossbench's developers)."""
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))
