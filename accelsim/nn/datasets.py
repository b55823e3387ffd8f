"""Training data: scikit-learn's bundled digits, seeded synthetic data, a user's npz, MNIST IDX files.

Every dataset comes back as float32 images or vectors in [0, 1] (``x``) and integer labels
(``y``), already split into train and test sets and reshaped to the model's per-sample input
shape. Splits are deterministic: a stratified split seeded by ``data.seed``.

File formats:

* ``npz``: arrays ``x`` and ``y`` (split here by ``test_fraction``), or ``x_train``, ``y_train``,
  ``x_test``, ``y_test``. ``x`` may be any numeric type; values are scaled to [0, 1] by the
  array's range when they exceed it.
* ``mnist-idx``: a folder with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``).
"""

from __future__ import annotations

import gzip
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelsim.errors import InputError
from accelsim.spec.models import DataSpec

SYNTHETIC_DEFAULT_SAMPLES = 2000
SYNTHETIC_DEFAULT_CLASSES = 10
MAX_DATA_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        return len(self.y_test)


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split: per class, ``round(test_fraction·n_c)`` samples go to test.

    Returns sorted train and test index arrays.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(test_fraction * len(idx)))
        n_test = min(max(n_test, 1 if len(idx) > 1 else 0), len(idx) - 1) if len(idx) > 1 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_dataset(spec: DataSpec, input_shape: tuple[int, ...], base_dir: Path, file: str) -> Dataset:
    """Load and split the dataset a workload names, shaped for ``input_shape``."""
    kind = spec.dataset
    if kind == "digits":
        x, y = _digits()
        ds = _split("digits", x, y, spec)
    elif kind == "synthetic":
        ds = _synthetic(spec, input_shape)
    elif kind == "npz":
        ds = _npz(_resolve(base_dir, spec.path), spec, file)
    elif kind == "mnist-idx":
        ds = _mnist(_resolve(base_dir, spec.path), file)
    else:
        raise InputError.single(file, "data.dataset", "this workload has no dataset to load")
    return _reshape(ds, input_shape, file)


def _resolve(base_dir: Path, value: str | None) -> Path:
    path = Path(value or "").expanduser()
    return path if path.is_absolute() else base_dir / path


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # only for its bundled data

    bunch = load_digits()
    return (bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def _split(name: str, x: np.ndarray, y: np.ndarray, spec: DataSpec) -> Dataset:
    train, test = stratified_split(y, spec.test_fraction, spec.seed)
    classes = int(y.max()) + 1
    return Dataset(name, x[train], y[train], x[test], y[test], classes)


def _synthetic(spec: DataSpec, input_shape: tuple[int, ...]) -> Dataset:
    """Seeded, learnable data: class prototypes in [0, 1] plus noise, clipped to [0, 1]."""
    n = spec.samples or SYNTHETIC_DEFAULT_SAMPLES
    classes = spec.classes or SYNTHETIC_DEFAULT_CLASSES
    rng = np.random.default_rng(spec.seed)
    features = math.prod(input_shape)
    prototypes = rng.random((classes, features), dtype=np.float32)
    y = np.arange(n) % classes
    rng.shuffle(y)
    noise = rng.normal(0.0, 0.25, size=(n, features)).astype(np.float32)
    x = np.clip(prototypes[y] + noise, 0.0, 1.0).astype(np.float32)
    return _split("synthetic", x, y.astype(np.int64), spec)


def _npz(path: Path, spec: DataSpec, file: str) -> Dataset:
    where = str(path)
    if not path.exists():
        raise InputError.single(file, "data.path", f"npz file {where} not found")
    if path.is_dir():
        raise InputError.single(file, "data.path", f"{where} is a directory, expected an .npz file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            if {"x", "y"} <= keys:
                x, y = archive["x"], archive["y"]
                pre_split = None
            elif {"x_train", "y_train", "x_test", "y_test"} <= keys:
                pre_split = tuple(archive[k] for k in ("x_train", "y_train", "x_test", "y_test"))
                x = y = None
            else:
                raise InputError.single(
                    where, "", f"expected arrays x, y or x_train, y_train, x_test, y_test; found {sorted(keys)}"
                )
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError.single(where, "", f"not a readable .npz file: {exc}") from None
    if pre_split is None:
        x, y = _xy(where, x, y, "x", "y")
        return _split("npz", x, y, spec)
    x_train, y_train = _xy(where, pre_split[0], pre_split[1], "x_train", "y_train")
    x_test, y_test = _xy(where, pre_split[2], pre_split[3], "x_test", "y_test")
    scale = max(1.0, float(max(x_train.max(initial=0), x_test.max(initial=0))))
    classes = int(max(y_train.max(), y_test.max())) + 1
    return Dataset("npz", x_train / scale, y_train, x_test / scale, y_test, classes)


def _xy(where: str, x: np.ndarray, y: np.ndarray, xname: str, yname: str) -> tuple[np.ndarray, np.ndarray]:
    if x.dtype.kind not in "uif" or y.dtype.kind not in "ui":
        raise InputError.single(where, xname, f"{xname} must be numeric and {yname} integer labels")
    if len(x) != len(y) or len(y) < 2:
        raise InputError.single(where, yname, f"{xname} has {len(x)} samples and {yname} {len(y)}; need equal counts ≥ 2")
    if y.ndim != 1 or y.min() < 0:
        raise InputError.single(where, yname, f"{yname} must be a 1-D array of labels ≥ 0")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise InputError.single(where, xname, f"{xname} contains NaN or infinite values")
    if x.min() < 0:
        raise InputError.single(where, xname, f"{xname} must be ≥ 0 (images in [0, 1] or [0, 255])")
    scale = float(x.max())
    if scale > 1.0:
        x = x / scale
    return x, y.astype(np.int64)


IDX_FILES = {
    "x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte",
}


def _mnist(folder: Path, file: str) -> Dataset:
    if not folder.is_dir():
        raise InputError.single(file, "data.path", f"{folder} is not a folder with MNIST IDX files")
    arrays = {}
    for key, stem in IDX_FILES.items():
        candidates = [folder / stem, folder / (stem + ".gz")]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise InputError.single(str(folder), "", f"missing {stem} (or {stem}.gz)")
        arrays[key] = read_idx(path)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise InputError.single(
                str(folder), "", f"{split} images {x.shape} and labels {y.shape} do not match"
            )
    return Dataset(
        "mnist-idx",
        arrays["x_train"].astype(np.float32) / 255.0, arrays["y_train"].astype(np.int64),
        arrays["x_test"].astype(np.float32) / 255.0, arrays["y_test"].astype(np.int64),
        int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1,
    )


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (MNIST's format), gzip-compressed or not."""
    where = str(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError.single(where, "", f"cannot read IDX file: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise InputError.single(where, "", "not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise InputError.single(where, "", f"IDX data type 0x{raw[2]:02x} is not unsigned bytes (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim < 1 or len(raw) < header:
        raise InputError.single(where, "", "truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = math.prod(dims)
    if len(raw) - header != count:
        raise InputError.single(where, "", f"IDX header says {count} bytes of data for shape {dims}, file has {len(raw) - header}")
    if len(raw) > MAX_DATA_BYTES:
        raise InputError.single(where, "", "IDX file too large")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _reshape(ds: Dataset, input_shape: tuple[int, ...], file: str) -> Dataset:
    want = math.prod(input_shape)
    have = math.prod(ds.x_train.shape[1:])
    if want != have:
        raise InputError.single(
            file, "model.input",
            f"model input {list(input_shape)} has {want} values per sample but dataset {ds.name!r} has {have} "
            f"(shape {list(ds.x_train.shape[1:])})",
        )
    shape = (-1, *input_shape)
    return Dataset(
        ds.name, np.ascontiguousarray(ds.x_train.reshape(shape)), ds.y_train,
        np.ascontiguousarray(ds.x_test.reshape(shape)), ds.y_test, ds.classes,
    )
