"""Datasets with no download: the IDX reader, the bundled digits, bad input named."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from crossbar_hil.emulator.network.data import digits, load_dataset, read_idx


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_read_idx_reads_shape_and_values_plain_and_gzip(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a.idx", images)), images)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a.idx.gz", images, compress=True)), images)


def test_read_idx_refuses_a_file_that_is_not_idx(tmp_path: Path) -> None:
    bad = tmp_path / "x.idx"
    bad.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short.idx"
    short.write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="declares"):
        read_idx(short)


def test_an_idx_dataset_is_flattened_and_scaled(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(5, 2, 2))
    lab = rng.integers(0, 10, size=5)
    paths = [write_idx(tmp_path / n, a) for n, a in (("ti", img), ("tl", lab), ("vi", img), ("vl", lab))]
    d = load_dataset("idx:" + ",".join(str(p) for p in paths))
    assert d.x_train.shape == (5, 4) and d.x_train.max() <= 1.0
    np.testing.assert_allclose(d.x_train * 255, img.reshape(5, 4))
    np.testing.assert_array_equal(d.y_test, lab)


def test_bundled_digits_split_is_fixed_and_disjoint() -> None:
    d = digits()
    assert d.x_train.shape == (1348, 64) and d.x_test.shape == (449, 64)
    assert d.n_classes == 10 and d.x_train.min() >= 0.0 and d.x_train.max() <= 1.0
    np.testing.assert_array_equal(digits().y_test, d.y_test)


def test_an_unknown_dataset_names_the_choices() -> None:
    with pytest.raises(ValueError, match="digits, mnist5k or idx"):
        load_dataset("cifar")
