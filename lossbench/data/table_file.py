"""Reading a user's table file (CSV, Parquet, .npz) or a scikit-learn bundled dataset into a frame.

Before a file is read, its size is estimated from what can be known cheaply: a CSV's byte size
and the width and length of its first lines, a Parquet file's metadata, an .npz's array headers
(shapes and dtypes, read without the data). A file that would not fit this machine's memory
budget is refused from that estimate, and so is a table whose column names repeat (pandas would
rename them silently). Every refusal is a `ConfigError` naming `data.path`.
"""

from __future__ import annotations

import csv
import math
import zipfile
from collections import Counter
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from lossbench.bounds import GIB, memory_budget
from lossbench.config.schema import SklearnData, TableData
from lossbench.errors import ConfigError

# Peak bytes per cell of a numeric table while it becomes a dataset: the parsed float64 frame,
# its float64 matrix, the standardised float32 copy with its train/validation splits, and the
# framework's device copy.
BYTES_PER_CELL = 32
# How much of a CSV is read to estimate its rows and columns.
SAMPLE_BYTES = 1 << 20
# Peak bytes per byte of a CSV while pandas parses it, whatever its cells (a file of empty
# fields or NUL bytes has few cells and still costs its size).
BYTES_PER_CSV_BYTE = 2


def read_frame(cfg: TableData | SklearnData) -> tuple[pd.DataFrame, list[str]]:
    """The raw table and its default target columns (sklearn: the dataset's targets).

    Raises:
        ConfigError: naming `data.path`: missing, too large for the memory budget, repeated
            column names, unreadable, or without rows.
    """
    if isinstance(cfg, SklearnData):
        return _sklearn_frame(cfg.name)
    path = Path(str(cfg.path)).expanduser()
    if not path.is_file():
        raise ConfigError("data.path", "an existing file", f"{cfg.path} (no such file)")
    try:
        cells, names = {".csv": _csv_header, ".parquet": _parquet_header}.get(
            path.suffix, _npz_header
        )(path)
    except ConfigError:
        raise
    except Exception as error:
        _unreadable(path, error)
    _check_fits(
        path, cells, path.stat().st_size * BYTES_PER_CSV_BYTE if path.suffix == ".csv" else 0
    )
    repeated = [name for name, n in Counter(names).items() if n > 1]
    if repeated:
        raise ConfigError(
            "data.path",
            "a table whose column names are unique",
            f"{path} (column {repeated[0]!r} appears {names.count(repeated[0])} times)",
        )
    try:
        if path.suffix == ".csv":
            frame = pd.read_csv(path)
        elif path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = _npz_frame(path)
    except ConfigError:
        raise
    except Exception as error:
        _unreadable(path, error)
    if frame.empty:
        raise ConfigError("data.path", "a table with rows", f"{path} (no rows)")
    return frame, []


def _unreadable(path: Path, error: BaseException) -> NoReturn:
    reason = " ".join(str(error).split())[:200] or type(error).__name__
    raise ConfigError("data.path", f"a readable {path.suffix} file", f"{path} ({reason})") from None


def _check_fits(path: Path, cells: float, parse_bytes: float) -> None:
    need, budget = max(cells * BYTES_PER_CELL, parse_bytes), memory_budget()
    if need > budget:
        raise ConfigError(
            "data.path",
            f"a table that fits this machine's memory budget ({budget / GIB:.1f} GiB)",
            f"{path} (about {cells:.3g} cells in {_size(path.stat().st_size)}: about "
            f"{_size(need)} to read)",
        )


def _size(n: float) -> str:
    for unit, scale in (("GiB", GIB), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} bytes"


def _csv_header(path: Path) -> tuple[float, list[str]]:
    """(estimated cells, column names) from the header and the first MiB of the file."""
    size = path.stat().st_size
    with path.open("rb") as f:
        sample = f.read(SAMPLE_BYTES)
    text = sample.decode("utf-8", errors="replace")
    header = next(csv.reader([text.split("\n", 1)[0].rstrip("\r")]), [])
    lines = max(sample.count(b"\n"), 1)
    rows = size / (len(sample) / lines) if sample else 0
    return rows * max(len(header), 1), header


def _parquet_header(path: Path) -> tuple[float, list[str]]:
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path)
    return float(meta.num_rows) * meta.num_columns, list(meta.schema.names)


def _npz_header(path: Path) -> tuple[float, list[str]]:
    """(cells, column names) from each array's .npy header, without reading the arrays."""
    cells, names = 0.0, []
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            with archive.open(member) as f:
                version = np.lib.format.read_magic(f)
                shape, _, _ = (
                    np.lib.format.read_array_header_1_0(f)
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0(f)
                )
            key = member.removesuffix(".npy")
            if len(shape) == 0:
                raise ConfigError(
                    "data.path", "arrays with one row per sample", f"{key} of shape {shape}"
                )
            cells += math.prod(shape)
            width = math.prod(shape[1:])
            names += [key] if len(shape) == 1 else [f"{key}_{j}" for j in range(width)]
    return cells, names


def _npz_frame(path: Path) -> pd.DataFrame:
    """Columns from an .npz: each 1-D array is a column, an N-D array K gives K_0, K_1, ... (its
    samples flattened in C order; `attrs["shapes"]` keeps the shape of one sample of each array
    of more than 2 dimensions)."""
    columns: dict[str, np.ndarray] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    with np.load(path, allow_pickle=False) as arrays:
        for key in arrays.files:
            array = arrays[key]
            if array.ndim == 1:
                columns[key] = array
                continue
            if array.ndim > 2:
                shapes[key] = tuple(int(n) for n in array.shape[1:])
            flat = array.reshape(len(array), -1)
            columns.update({f"{key}_{j}": flat[:, j] for j in range(flat.shape[1])})
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ConfigError("data.path", "arrays of one length", f"lengths {sorted(lengths)}")
    frame = pd.DataFrame(columns)
    frame.attrs["shapes"] = shapes
    return frame


def _sklearn_frame(name: str) -> tuple[pd.DataFrame, list[str]]:
    import sklearn.datasets as datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.copy()
    targets = list(bunch.target.columns) if bunch.target.ndim == 2 else [bunch.target.name]
    return frame, targets
