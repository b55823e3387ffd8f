"""Training data: scikit-learn's bundled digits, seeded synthetic data, a user's npz, MNIST IDX files.

Every dataset comes back as float32 images or vectors in [0, 1] (``x``) and integer labels
(``y``), already split into train and test sets and reshaped to the model's per-sample input
shape. Splits are deterministic: a stratified split seeded by ``data.seed``. Both splits must hold
at least one sample (a split that would be empty is an error naming ``data``'s fields).

File formats:

* ``npz``: arrays ``x`` and ``y`` (split here by ``test_fraction``), or ``x_train``, ``y_train``,
  ``x_test``, ``y_test``. ``x`` may be any numeric type; values are scaled to [0, 1] by the
  array's range when they exceed it.
* ``mnist-idx``: a folder with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``).
* ``sequence``: generated token tasks (sort, reverse, copy, add), integer ids ``(N, length)`` and
  per-token targets; ``text``: a user's UTF-8 file, character-level next-token prediction.

Reading is bounded: only regular files are opened (a FIFO or a device is refused), an npz's arrays
are checked from the zip directory and their ``.npy`` headers (shape, type, size) before any is
decompressed, an IDX file's size comes from its header and a gzip stream is decompressed only that
far (a gzip bomb stops at the header's size plus one byte), and no dataset grows past
:data:`MAX_DATASET_BYTES` in memory. :func:`dataset_sizes_hint` gives the split sizes without
loading the data (for cost estimates). A new dataset kind adds a loader to :func:`load_dataset`
and, if it can say its size cheaply, a branch to :func:`dataset_sizes_hint`.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from accelsim.errors import InputError
from accelsim.spec.models import DataSpec
from accelsim.spec.yamlio import open_regular

SYNTHETIC_DEFAULT_SAMPLES = 2000
SYNTHETIC_DEFAULT_CLASSES = 10
#: Dataset kinds read from the user's files: ``accelsim validate`` loads them to check them (the
#: others are checked by :func:`precheck` without generating them).
FILE_DATASETS = ("npz", "mnist-idx", "text")
#: Samples in scikit-learn's digits.
DIGITS_SAMPLES = 1797
#: Largest uncompressed array data read from one dataset's files (npz members, IDX data), bytes.
MAX_DATA_BYTES = 1024**3
#: Largest dataset held in memory as float32 (train and test images together), bytes.
MAX_DATASET_BYTES = 2 * 1024**3
#: Largest label value (so ``classes`` stays within what a model's last layer may have).
MAX_LABEL = 1 << 16


@dataclass(frozen=True)
class Dataset:
    """Split data. ``y`` holds class indices per sample ``(N,)`` or per token ``(N, T)`` (-1: a
    token that is not scored); ``metric`` names the accuracy reported: ``accuracy`` (per sample),
    ``token_accuracy`` (sequence tasks, with exact-sequence accuracy too) or ``next_char_accuracy``
    (text, with perplexity)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    metric: str = "accuracy"

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
        ds = _split("digits", x, y, spec, file)
    elif kind == "synthetic":
        ds = _synthetic(spec, input_shape, file)
    elif kind == "npz":
        ds = _npz(_resolve(base_dir, spec.path), spec, file)
    elif kind == "mnist-idx":
        ds = _mnist(_resolve(base_dir, spec.path), file)
    elif kind == "sequence":
        ds = _sequence(spec, input_shape, file)
    elif kind == "text":
        ds = _text(_resolve(base_dir, spec.path), spec, input_shape, file)
    else:
        raise InputError.single(file, "data.dataset", "this workload has no dataset to load")
    return _reshape(ds, input_shape, file)


def dataset_sizes_hint(spec: DataSpec, base_dir: Path, file: str) -> tuple[int, int] | None:
    """(train, test) sample counts of a workload's data, read from sizes and headers only (no
    images are loaded or decompressed); approximate for split datasets; ``None`` when unknown."""
    kind = spec.dataset
    if kind == "digits":
        n = DIGITS_SAMPLES
    elif kind == "synthetic":
        n = spec.samples or SYNTHETIC_DEFAULT_SAMPLES
    elif kind == "npz":
        path = _resolve(base_dir, spec.path)
        try:
            shapes = _npz_shapes(path, file)
        except InputError:
            return None  # loading reports it
        if "x" in shapes:
            n = shapes["x"][0][0] if shapes["x"][0] else 0
        elif "x_train" in shapes and "x_test" in shapes:
            return tuple(shapes[k][0][0] if shapes[k][0] else 0 for k in ("x_train", "x_test"))  # type: ignore[return-value]
        else:
            return None
    elif kind == "mnist-idx":
        folder = _resolve(base_dir, spec.path)
        counts = []
        for key in ("x_train", "x_test"):
            path = _idx_path(folder, IDX_FILES[key])
            if path is None:
                return None
            try:
                dims, _ = _idx_header(path)
            except InputError:
                return None
            counts.append(dims[0] if dims else 0)
        return counts[0], counts[1]
    elif kind == "sequence":
        n = spec.samples or SEQUENCE_DEFAULT_SAMPLES
    elif kind == "text":
        path = _resolve(base_dir, spec.path)
        try:
            size = path.stat().st_size   # bytes: at least the characters; a hint, not a read
        except OSError:
            return None
        length = spec.length or 1
        n = max(size // length, 2)
        if spec.samples is not None:
            n = min(n, spec.samples)
    else:
        return None
    n_test = int(round(spec.test_fraction * n))
    return n - n_test, n_test


def _resolve(base_dir: Path, value: str | None) -> Path:
    path = Path(value or "").expanduser()
    return path if path.is_absolute() else base_dir / path


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1,797 images, pixels 0..16, scaled to 0..1), read from
    the file it ships (``sklearn/datasets/data/digits.csv.gz``: 64 pixels and the label per row)
    without importing scikit-learn, which takes seconds; the same arrays as ``load_digits()``."""
    spec = importlib.util.find_spec("sklearn")      # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise OSError("the digits dataset is read from scikit-learn's bundled data; "
                               "scikit-learn is not installed (pip install scikit-learn)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    return (table[:, :-1] / 16.0).astype(np.float32), table[:, -1].astype(np.int64)


def _empty_test_split(name: str, samples: int, classes: int, spec: DataSpec, file: str) -> InputError:
    field = "data.samples" if name == "synthetic" else "data.test_fraction"
    return InputError.single(
        file, field,
        f"the test split of dataset {name!r} would be empty: {samples:,} samples in {classes:,} classes leave "
        "none to test with (a class needs at least 2 samples to give one to each split); use more samples "
        "or fewer classes",
    )


def _split(name: str, x: np.ndarray, y: np.ndarray, spec: DataSpec, file: str) -> Dataset:
    train, test = stratified_split(y, spec.test_fraction, spec.seed)
    classes = int(y.max()) + 1
    if len(test) == 0:
        raise _empty_test_split(name, len(y), int((np.bincount(y) > 0).sum()), spec, file)
    return Dataset(name, x[train], y[train], x[test], y[test], classes)


def precheck(spec: DataSpec, input_shape: tuple[int, ...], outputs: int | None, file: str) -> None:
    """What can be said of a built-in dataset without generating or loading it: its split is not
    empty, it fits in memory, its samples and classes fit the model (``outputs``: the last layer's
    width when training, else ``None``). Datasets read from files are checked by loading them."""
    features = math.prod(input_shape)
    if spec.dataset == "synthetic":
        n = spec.samples or SYNTHETIC_DEFAULT_SAMPLES
        classes = spec.classes or SYNTHETIC_DEFAULT_CLASSES
        if n * features * 8 > MAX_DATASET_BYTES:
            raise _too_big_synthetic(n, features, file)
        if n <= classes:  # every class has at most one sample: none is left for the test split
            raise _empty_test_split("synthetic", n, min(n, classes), spec, file)
    elif spec.dataset == "sequence":
        n = spec.samples or SEQUENCE_DEFAULT_SAMPLES
        classes = spec.vocab
        if n * features * 16 > MAX_DATASET_BYTES:   # ids and targets, int64
            raise InputError.single(
                file, "data.samples", f"{n:,} sequences of {features:,} tokens need {_gib(n * features * 16)} in "
                f"memory, more than the {_gib(MAX_DATASET_BYTES)} a dataset may take",
            )
        if int(round(spec.test_fraction * n)) < 1 or n < 2:
            raise _empty_test_split("sequence", n, classes, spec, file)
    elif spec.dataset == "digits":
        classes = 10
        if features != 64:
            raise InputError.single(
                file, "model.input",
                f"model input {list(input_shape)} has {features} values per sample but dataset 'digits' has 64 "
                "(shape [8, 8])",
            )
    else:
        return
    if outputs is not None and outputs != classes:
        raise InputError.single(
            file, "model", f"the last layer has {outputs} outputs but dataset {spec.dataset!r} has {classes} classes",
        )


def _too_big_synthetic(n: int, features: int, file: str) -> InputError:
    return InputError.single(
        file, "data.samples",
        f"{n:,} synthetic samples of {features:,} values need {_gib(n * features * 8)} in memory, more than the "
        f"{_gib(MAX_DATASET_BYTES)} a dataset may take; use fewer samples or a smaller model.input",
    )


def _synthetic(spec: DataSpec, input_shape: tuple[int, ...], file: str) -> Dataset:
    """Seeded, learnable data: class prototypes in [0, 1] plus noise, clipped to [0, 1]."""
    n = spec.samples or SYNTHETIC_DEFAULT_SAMPLES
    classes = spec.classes or SYNTHETIC_DEFAULT_CLASSES
    features = math.prod(input_shape)
    if n * features * 8 > MAX_DATASET_BYTES:  # the float64 noise drawn before it becomes float32
        raise _too_big_synthetic(n, features, file)
    rng = np.random.default_rng(spec.seed)
    prototypes = rng.random((classes, features), dtype=np.float32)
    y = np.arange(n) % classes
    rng.shuffle(y)
    noise = rng.normal(0.0, 0.25, size=(n, features)).astype(np.float32)
    x = np.clip(prototypes[y] + noise, 0.0, 1.0).astype(np.float32)
    return _split("synthetic", x, y.astype(np.int64), spec, file)


def _gib(n: int) -> str:
    return f"{n / 1024**3:,.1f} GiB" if n >= 1024**3 / 10 else f"{n / 1024**2:,.1f} MiB"


_NPZ_KEYS = (("x", "y"), ("x_train", "y_train", "x_test", "y_test"))


def _npz_shapes(path: Path, file: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array of an npz, from the zip directory and the ``.npy`` headers
    alone; every size is checked before anything is decompressed."""
    where = str(path)
    fh = _open_data(path, "npz file", file)
    with fh:
        try:
            if not zipfile.is_zipfile(fh):
                raise InputError.single(where, "", "not a readable .npz file: not a zip archive")
            fh.seek(0)
            with zipfile.ZipFile(fh) as archive:
                members = archive.infolist()
                if len(members) > 64:
                    raise InputError.single(where, "", f"an npz of datasets has a few arrays, this one {len(members)}")
                total = sum(m.file_size for m in members)
                if total > MAX_DATA_BYTES:
                    raise InputError.single(
                        where, "", f"its arrays hold {_gib(total)} uncompressed, more than the {_gib(MAX_DATA_BYTES)} limit",
                    )
                shapes = {}
                for m in members:
                    if not m.filename.endswith(".npy"):
                        continue
                    with archive.open(m) as member:
                        version = np.lib.format.read_magic(member)
                        if version == (1, 0):
                            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
                        elif version in ((2, 0), (3, 0)):
                            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
                        else:
                            raise ValueError(f"unsupported .npy version {version}")
                    name = m.filename[:-4]
                    if dtype.hasobject:
                        raise InputError.single(where, name, f"{name} holds Python objects; expected numbers")
                    nbytes = math.prod(shape) * dtype.itemsize
                    if nbytes > m.file_size:
                        raise InputError.single(
                            where, name, f"{name}'s header says {nbytes:,} bytes of data, its member has {m.file_size:,}",
                        )
                    shapes[name] = (tuple(int(d) for d in shape), dtype)
                return shapes
        except InputError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:
            raise InputError.single(where, "", f"not a readable .npz file: {exc}") from None


def _open_data(path: Path, what: str, file: str) -> IO[bytes]:
    if not path.exists() and not path.is_symlink():
        raise InputError.single(file, "data.path", f"{what} {path} not found")
    if path.is_dir():
        raise InputError.single(file, "data.path", f"{path} is a directory, expected an .npz file")
    return open_regular(path, what=what, file=file, field="data.path")


def _npz(path: Path, spec: DataSpec, file: str) -> Dataset:
    where = str(path)
    shapes = _npz_shapes(path, file)
    keys = set(shapes)
    if {"x", "y"} <= keys:
        names: tuple[str, ...] = ("x", "y")
    elif {"x_train", "y_train", "x_test", "y_test"} <= keys:
        names = ("x_train", "y_train", "x_test", "y_test")
    else:
        raise InputError.single(
            where, "", f"expected arrays x, y or x_train, y_train, x_test, y_test; found {sorted(keys)}"
        )
    for name in names:
        shape, dtype = shapes[name]
        if not shape:
            raise InputError.single(where, name, f"{name} is a 0-d array (one number); expected an array of samples")
        allowed = "uif" if name.startswith("x") else "ui"
        if dtype.kind not in allowed:
            what = "numbers" if name.startswith("x") else "integer labels"
            raise InputError.single(where, name, f"{name} must hold {what}, it holds {dtype}")
    floats = sum(math.prod(shapes[n][0]) * 4 for n in names if n.startswith("x"))
    if floats > MAX_DATASET_BYTES:
        raise InputError.single(
            where, "", f"its images take {_gib(floats)} as float32, more than the {_gib(MAX_DATASET_BYTES)} a dataset may take",
        )
    try:
        with _open_data(path, "npz file", file) as fh, np.load(fh, allow_pickle=False) as archive:
            arrays = [archive[n] for n in names]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise InputError.single(where, "", f"not a readable .npz file: {exc}") from None
    if len(names) == 2:
        x, y = _xy(where, arrays[0], arrays[1], "x", "y")
        return _split("npz", x, y, spec, file)
    x_train, y_train = _xy(where, arrays[0], arrays[1], "x_train", "y_train")
    x_test, y_test = _xy(where, arrays[2], arrays[3], "x_test", "y_test", minimum=1)
    scale = max(1.0, float(max(x_train.max(initial=0), x_test.max(initial=0))))
    classes = int(max(y_train.max(), y_test.max())) + 1
    return Dataset("npz", x_train / scale, y_train, x_test / scale, y_test, classes)


def _xy(where: str, x: np.ndarray, y: np.ndarray, xname: str, yname: str,
        minimum: int = 2) -> tuple[np.ndarray, np.ndarray]:
    if x.dtype.kind not in "uif" or y.dtype.kind not in "ui":
        raise InputError.single(where, xname, f"{xname} must be numeric and {yname} integer labels")
    if x.ndim < 1 or y.ndim < 1:
        name = xname if x.ndim < 1 else yname
        raise InputError.single(where, name, f"{name} is a 0-d array (one number); expected an array of samples")
    if len(x) != len(y) or len(y) < minimum:
        raise InputError.single(
            where, yname, f"{xname} has {len(x)} samples and {yname} {len(y)}; need equal counts ≥ {minimum}"
        )
    if y.ndim != 1 or y.min() < 0:
        raise InputError.single(where, yname, f"{yname} must be a 1-D array of labels ≥ 0")
    if y.max() >= MAX_LABEL:
        raise InputError.single(where, yname, f"{yname} has label {int(y.max())}; labels must be below {MAX_LABEL}")
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


def _idx_path(folder: Path, stem: str) -> Path | None:
    candidates = [folder / stem, folder / (stem + ".gz")]
    return next((p for p in candidates if p.exists()), None)


def _mnist(folder: Path, file: str) -> Dataset:
    if not folder.is_dir():
        raise InputError.single(file, "data.path", f"{folder} is not a folder with MNIST IDX files")
    paths = {}
    for key, stem in IDX_FILES.items():
        path = _idx_path(folder, stem)
        if path is None:
            raise InputError.single(str(folder), "", f"missing {stem} (or {stem}.gz)")
        paths[key] = path
    headers = {key: _idx_header(path)[0] for key, path in paths.items()}
    total = sum(math.prod(d) for d in headers.values())
    if total > MAX_DATA_BYTES:
        raise InputError.single(
            str(folder), "", f"its IDX files hold {_gib(total)} of data, more than the {_gib(MAX_DATA_BYTES)} limit",
        )
    floats = 4 * sum(math.prod(headers[k]) for k in ("x_train", "x_test"))
    if floats > MAX_DATASET_BYTES:
        raise InputError.single(
            str(folder), "", f"its images take {_gib(floats)} as float32, more than the {_gib(MAX_DATASET_BYTES)} a dataset may take",
        )
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise InputError.single(
                str(folder), "", f"{split} images {x.shape} and labels {y.shape} do not match"
            )
        if len(y) == 0:
            raise InputError.single(str(folder), "", f"the {split} files hold no images")
    return Dataset(
        "mnist-idx",
        arrays["x_train"].astype(np.float32) / 255.0, arrays["y_train"].astype(np.int64),
        arrays["x_test"].astype(np.float32) / 255.0, arrays["y_test"].astype(np.int64),
        int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1,
    )


def _idx_stream(path: Path) -> IO[bytes]:
    fh = open_regular(path, what="IDX file")
    if path.suffix != ".gz":
        return fh
    return gzip.GzipFile(fileobj=fh, mode="rb")


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(min(1 << 22, n - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


_IDX_ERRORS = (OSError, EOFError, gzip.BadGzipFile, zlib.error)


def _parse_idx_header(where: str, stream: IO[bytes]) -> tuple[tuple[int, ...], int]:
    head = _read_exact(stream, 4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise InputError.single(where, "", "not an IDX file (bad magic number)")
    if head[2] != 0x08:
        raise InputError.single(where, "", f"IDX data type 0x{head[2]:02x} is not unsigned bytes (0x08)")
    ndim = head[3]
    raw = _read_exact(stream, 4 * ndim)
    if ndim < 1 or len(raw) < 4 * ndim:
        raise InputError.single(where, "", "truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 * i: 4 + 4 * i], "big") for i in range(ndim))
    return dims, 4 + 4 * ndim


def _idx_header(path: Path) -> tuple[tuple[int, ...], int]:
    """An IDX file's shape and header length (only the header is read, or decompressed)."""
    where = str(path)
    try:
        with _idx_stream(path) as stream:
            return _parse_idx_header(where, stream)
    except InputError:
        raise
    except _IDX_ERRORS as exc:
        raise InputError.single(where, "", f"cannot read IDX file: {_gz_problem(path, exc)}") from None


def _gz_problem(path: Path, exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"corrupt or truncated gzip data ({text})" if path.suffix == ".gz" and not isinstance(exc, PermissionError) else text


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (MNIST's format), gzip-compressed or not.

    The header's shape bounds the read: no more than that many bytes (plus one, to notice extra
    data) are read or decompressed."""
    where = str(path)
    try:
        with _idx_stream(path) as stream:
            dims, _ = _parse_idx_header(where, stream)
            count = math.prod(dims)
            if count > MAX_DATA_BYTES:
                raise InputError.single(
                    where, "", f"IDX header says {count:,} bytes of data for shape {dims}, more than the "
                    f"{_gib(MAX_DATA_BYTES)} limit",
                )
            data = _read_exact(stream, count)
            extra = len(stream.read(1)) if len(data) == count else 0
    except InputError:
        raise
    except _IDX_ERRORS as exc:
        raise InputError.single(where, "", f"cannot read IDX file: {_gz_problem(path, exc)}") from None
    if len(data) != count or extra:
        have = f"{len(data)}" if not extra else f"more than {count}"
        raise InputError.single(where, "", f"IDX header says {count} bytes of data for shape {dims}, file has {have}")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


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
    return dataclasses.replace(
        ds, x_train=np.ascontiguousarray(ds.x_train.reshape(shape)), x_test=np.ascontiguousarray(ds.x_test.reshape(shape)),
    )


# --- token sequences ------------------------------------------------------------------------------

SEQUENCE_DEFAULT_SAMPLES = 4000
#: Largest text file read, in bytes.
MAX_TEXT_BYTES = 64 * 1024 * 1024


def _random_split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n_test = min(max(int(round(test_fraction * n)), 1), n - 1)
    order = np.random.default_rng([seed, 7]).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _sequence_length(spec: DataSpec, input_shape: tuple[int, ...], file: str) -> int:
    if len(input_shape) != 1:
        raise InputError.single(file, "model.input", f"a token dataset needs a model input [length], got {list(input_shape)}")
    length = spec.length or input_shape[0]
    if length != input_shape[0]:
        raise InputError.single(file, "data.length", f"{length} tokens per sample, but the model input is {list(input_shape)}")
    return length


def sequence_task(task: str, x: np.ndarray, vocab: int) -> np.ndarray:
    """Per-token targets of a generated task for token ids ``x`` ``(N, L)``.

    * ``sort``: the tokens in ascending order; ``reverse``: in reverse order; ``copy``: themselves.
    * ``add``: ``x`` holds two numbers of ``L/2`` base-``vocab`` digits each, least significant
      digit first (so a causal model can carry); the targets of the second half are the digits of
      their sum modulo ``vocab**(L/2)``, least significant first; the first half is not scored (-1).
    """
    if task == "sort":
        return np.sort(x, axis=1)
    if task == "reverse":
        return x[:, ::-1].copy()
    if task == "copy":
        return x.copy()
    half = x.shape[1] // 2
    a, b = x[:, :half], x[:, half:]
    out = np.full_like(x, -1)
    carry = np.zeros(len(x), dtype=x.dtype)
    for i in range(half):
        total = a[:, i] + b[:, i] + carry
        out[:, half + i] = total % vocab
        carry = total // vocab
    return out


def _sequence(spec: DataSpec, input_shape: tuple[int, ...], file: str) -> Dataset:
    """Seeded token sequences and their per-token targets (:func:`sequence_task`)."""
    length = _sequence_length(spec, input_shape, file)
    if spec.task == "add" and length % 2:
        raise InputError.single(file, "data.length", f"task 'add' needs an even length (two numbers), got {length}")
    n = spec.samples or SEQUENCE_DEFAULT_SAMPLES
    rng = np.random.default_rng(spec.seed)
    x = rng.integers(0, spec.vocab, (n, length), dtype=np.int64)
    y = sequence_task(spec.task, x, spec.vocab)
    train, test = _random_split(n, spec.test_fraction, spec.seed)
    return Dataset(f"sequence-{spec.task}", x[train], y[train], x[test], y[test], spec.vocab, "token_accuracy")


def _text(path: Path, spec: DataSpec, input_shape: tuple[int, ...], file: str) -> Dataset:
    """Character-level next-token prediction on a UTF-8 file: the vocabulary is its distinct
    characters (sorted: id = rank); a sample is ``length`` characters and its targets the next
    ``length``. Windows start every ``length`` characters; the first ``1 - test_fraction`` of the
    text gives the training windows, the rest the test windows (no overlap between the two);
    ``samples`` caps their number (seeded choice, in order)."""
    from accelsim.spec.yamlio import read_text

    length = _sequence_length(spec, input_shape, file)
    text = read_text(path, what="text file", max_bytes=MAX_TEXT_BYTES)
    chars = sorted(set(text))
    if len(text) < 4 * (length + 1) or len(chars) < 2:
        raise InputError.single(
            str(path), "", f"text of {len(text)} characters ({len(chars)} distinct) is too short for windows of "
            f"{length}: need at least {4 * (length + 1)} characters and 2 distinct ones",
        )
    index = {c: i for i, c in enumerate(chars)}
    ids = np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
    cut = int(len(ids) * (1 - spec.test_fraction))

    def windows(part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts = np.arange(0, len(part) - length - 1 + 1, length)
        return (np.stack([part[s:s + length] for s in starts]), np.stack([part[s + 1:s + length + 1] for s in starts]))

    x_train, y_train = windows(ids[:cut])
    x_test, y_test = windows(ids[cut:])
    if len(x_test) < 1 or len(x_train) < 1:
        raise InputError.single(str(path), "", f"no full window of {length} characters in the test part; use a longer text or test_fraction")
    if spec.samples is not None:
        rng = np.random.default_rng(spec.seed)
        keep = lambda n: np.sort(rng.permutation(n)[: max(1, min(n, int(round(spec.samples * n / (len(x_train) + len(x_test))))))])  # noqa: E731
        tr, te = keep(len(x_train)), keep(len(x_test))
        x_train, y_train, x_test, y_test = x_train[tr], y_train[tr], x_test[te], y_test[te]
    return Dataset("text", x_train, y_train, x_test, y_test, len(chars), "next_char_accuracy")
