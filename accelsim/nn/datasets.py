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
* ``sequence``: generated token tasks (sort, reverse, copy, add), integer ids ``(N, length)`` and
  per-token targets; ``text``: a user's UTF-8 file, character-level next-token prediction.
"""

from __future__ import annotations

import dataclasses
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
        ds = _split("digits", x, y, spec)
    elif kind == "synthetic":
        ds = _synthetic(spec, input_shape)
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
