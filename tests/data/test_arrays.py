"""Array files: the header is checked (shape, dtype, size) before any data is read."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.data.arrays import check_npy, load_npy
from lossbench.data.arrays import load_npy as load_array
from lossbench.errors import ConfigError


def _huge_header(path, shape, payload=64):
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * payload)


def _npz_renamed(path):
    np.savez(path.with_suffix(".npz"), a=np.ones((2, 3)))
    path.with_suffix(".npz").rename(path)


def test_a_good_file_loads(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, np.full((2, 3), 2.0))
    np.testing.assert_array_equal(load_npy(str(path), "loss.mask", (2, 3)), np.full((2, 3), 2.0))


@pytest.mark.parametrize(
    ("make", "detail"),
    [
        (lambda p: p.write_bytes(b""), "numpy.save"),
        (lambda p: _npz_renamed(p), "numpy.save"),
        (lambda p: p.write_text("1 2 3\n"), "numpy.save"),
        (lambda p: _huge_header(p, (10**6, 10**6)), "shape (1000000, 1000000)"),
        (lambda p: _huge_header(p, (2, 3), payload=8), "truncated"),
        (lambda p: np.save(p, np.array([["a", "b", "c"]] * 2)), "numeric"),
        (lambda p: np.save(p, np.ones((3, 2))), "shape (3, 2)"),
    ],
)
def test_bad_files_are_refused_from_their_header(tmp_path, make, detail):
    path = tmp_path / "bad.npy"
    make(path)
    with pytest.raises(ConfigError) as info:
        check_npy(str(path), "loss.mask", (2, 3))
    assert info.value.key == "loss.mask" and detail in str(info.value)


def test_values_are_checked_after_loading(tmp_path):
    path = tmp_path / "neg.npy"
    np.save(path, -np.ones((2, 3)))
    with pytest.raises(ConfigError, match="finite values >= 0"):
        load_npy(str(path), "loss.mask", (2, 3))


def test_load_array_refuses_missing_pickled_and_misshapen_files(tmp_path):
    good = tmp_path / "mask.npy"
    np.save(good, np.ones((2, 3)))
    np.testing.assert_array_equal(load_array(str(good), "loss.mask", (2, 3)), np.ones((2, 3)))
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases = [
        (str(tmp_path / "missing.npy"), "no such file"),
        (str(pickled), "pickles are refused"),
        (str(good), "an array of shape (3, 3)"),
        (str(tmp_path / "mask.txt"), "the path of an .npy file"),
    ]
    for path, text in cases:
        with pytest.raises(ConfigError) as info:
            load_array(path, "loss.mask", (3, 3) if path == str(good) else (2, 3))
        assert info.value.key == "loss.mask" and text in str(info.value)
