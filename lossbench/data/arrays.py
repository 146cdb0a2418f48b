"""Array files named in a config (`.npy`): header checked before any data is read.

`check_npy` reads only the header (shape, dtype, size against the file's length), so validation
refuses a wrong file before a framework loads or memory is allocated; `load_npy` then reads the
data and checks its values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lossbench.errors import ConfigError

_NUMERIC_KINDS = "biuf"


def check_npy(path: str, key: str, shape: tuple[int, ...]) -> Path:
    """Check that `path` is a readable `.npy` file holding a numeric array of `shape`.

    Only the header is read, so an empty, truncated or mislabelled file (an `.npz` renamed
    `.npy`, say) and a header declaring a huge array are refused before any allocation.

    Returns:
        The file's path.

    Raises:
        ConfigError: naming `key` and what is wrong with the file.
    """
    file = Path(path).expanduser()
    if file.suffix != ".npy":
        raise ConfigError(key, "the path of an .npy file", path)
    if not file.is_file():
        raise ConfigError(key, "an existing .npy file", f"{path} (no such file)")
    try:
        with file.open("rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                found, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                found, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
            offset = f.tell()
    except OSError as error:
        raise ConfigError(key, "a readable .npy file", f"{path} ({error.strerror})") from None
    except ValueError as error:  # no .npy magic (empty, zip, text) or a malformed header
        reason = str(error).splitlines()[0] if str(error) else "not an .npy file"
        raise ConfigError(key, "an .npy file (numpy.save)", f"{path} ({reason})") from None
    if dtype.hasobject or dtype.kind not in _NUMERIC_KINDS:
        raise ConfigError(key, "a numeric array (pickles are refused)", f"dtype {dtype}")
    if tuple(found) != tuple(shape):
        raise ConfigError(key, f"an array of shape {tuple(shape)}", f"shape {tuple(found)}")
    size = int(np.prod(found, dtype="int64")) * dtype.itemsize
    if file.stat().st_size - offset < size:
        raise ConfigError(key, f"{size} bytes of data after the header", f"{path} (truncated file)")
    return file


def load_npy(path: str, key: str, shape: tuple[int, ...]) -> np.ndarray:
    """Read a checked `.npy` file (no pickles) whose values must be finite and >= 0.

    Raises:
        ConfigError: naming `key` when the file or its values are not what it expects.
    """
    file = check_npy(path, key, shape)
    try:
        array = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ConfigError(key, "a readable .npy file", f"{path} ({error})") from None
    if not np.isfinite(array).all() or (array < 0).any():
        raise ConfigError(key, "finite values >= 0", "negative or non-finite values")
    return array
