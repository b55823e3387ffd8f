"""Import of SCALE-Sim topology CSV files, with SCALE-Sim's own layer semantics.

Two forms are accepted, each with or without SCALE-Sim's trailing comma on every row:

* conv: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,
  Num Filter, Strides,`` (an optional ninth column gives a separate column stride);
* GEMM: ``Layer, M, N, K,``.

Semantics are SCALE-Sim's, so that cycle counts can be compared with it: no padding; output size
``ceil((H − Fh + S) / S)``; a layer whose name contains ``DP`` is depthwise (SCALE-Sim expands it
into one single-channel layer per channel, here a grouped convolution with one group per
channel, which lowers to the same GEMMs); every row is an independent layer at batch 1 (a conv
row's GEMM is ``M = Ho·Wo``, ``N = filters``, ``K = Fh·Fw·C``). A header row (any row whose
numeric columns are not numbers, on the first line) is skipped.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from accelsim.errors import InputError, Problem
from accelsim.spec.yamlio import read_text
from accelsim.workload.graph import GraphError, Layer, Network, conv2d_layer

MAX_TOPOLOGY_BYTES = 16 * 1024 * 1024
CONV_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels", "Num Filter", "Strides")
GEMM_COLUMNS = ("Layer", "M", "N", "K")


def read_topology(path: Path, *, batch_size: int = 1) -> Network:
    """Read a SCALE-Sim topology CSV into a network of independent layers.

    ``batch_size`` multiplies the GEMM ``M`` of conv rows (SCALE-Sim itself has no batch: 1 matches
    it); GEMM rows keep their ``M``.
    """
    text = read_text(path, what="topology CSV", max_bytes=MAX_TOPOLOGY_BYTES)
    return parse_topology(text, str(path), name=path.stem, batch_size=batch_size)


def parse_topology(text: str, file: str, *, name: str = "topology", batch_size: int = 1) -> Network:
    rows = [
        (lineno, [cell.strip() for cell in row])
        for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1)
    ]
    rows = [(lineno, _drop_trailing_empty(cells)) for lineno, cells in rows]
    rows = [(lineno, cells) for lineno, cells in rows if any(cells)]
    if not rows:
        raise InputError.single(file, "", "topology CSV has no rows")
    if not _all_ints(rows[0][1][1:]):
        rows = rows[1:]  # header
    if not rows:
        raise InputError.single(file, "", "topology CSV has a header but no layer rows")
    width = len(rows[0][1])
    if width == 4:
        form = "gemm"
    elif width in (8, 9):
        form = "conv"
    else:
        raise InputError.single(
            file, f"line {rows[0][0]}",
            f"expected {len(GEMM_COLUMNS)} columns ({', '.join(GEMM_COLUMNS)}) or {len(CONV_COLUMNS)} "
            f"({', '.join(CONV_COLUMNS)}), got {width}",
        )
    problems: list[Problem] = []
    layers: list[Layer] = []
    seen: set[str] = set()
    for lineno, cells in rows:
        where = f"line {lineno}"
        if len(cells) != width:
            problems.append(Problem(file, where, f"expected {width} columns like the first row, got {len(cells)}"))
            continue
        label = cells[0] or f"layer{len(layers)}"
        if label in seen:
            problems.append(Problem(file, where, f"layer name {label!r} appears twice"))
            continue
        seen.add(label)
        try:
            values = _ints(cells[1:], form)
        except ValueError as exc:
            problems.append(Problem(file, where, str(exc)))
            continue
        try:
            layers.append(_gemm_row(label, values) if form == "gemm" else _conv_row(label, values, batch_size))
        except GraphError as exc:
            problems.append(Problem(file, where, str(exc)))
        if len(problems) >= 20:
            break
    if problems:
        raise InputError(problems)
    return Network(
        name=name, input_shape=layers[0].in_shape, layers=tuple(layers),
        batch_size=batch_size if form == "conv" else 1, meta={"topology": form},
    )


def _gemm_row(label: str, values: list[int]) -> Layer:
    m, n, k = values
    return Layer(label, "gemm", (m, k), (m, n), m=m, n=n, k=k)


def _conv_row(label: str, values: list[int], batch_size: int) -> Layer:
    h, w, fh, fw, channels, filters, stride_h, *rest = values
    stride_w = rest[0] if rest else stride_h
    if fh > h or fw > w:
        raise GraphError(label, f"filter {fh}x{fw} is larger than the {h}x{w} input")
    depthwise = "DP" in label
    groups = channels if depthwise else 1
    out = channels * filters if depthwise else filters
    return conv2d_layer(
        label, (channels, h, w), out, (fh, fw), (stride_h, stride_w), 0, groups, ceil_mode=True,
        inputs=(),
    )


def _ints(cells: list[str], form: str) -> list[int]:
    columns = GEMM_COLUMNS if form == "gemm" else CONV_COLUMNS + ("Stride width",)
    values = []
    for column, cell in zip(columns[1:], cells):
        try:
            value = int(cell)
        except ValueError:
            raise ValueError(f"{column}: expected a positive integer, got {cell!r}") from None
        if not 1 <= value <= 1 << 24:
            raise ValueError(f"{column}: expected a positive integer up to {1 << 24}, got {value}")
        values.append(value)
    return values


def _all_ints(cells: list[str]) -> bool:
    try:
        [int(c) for c in cells]
    except ValueError:
        return False
    return bool(cells)


def _drop_trailing_empty(cells: list[str]) -> list[str]:
    while cells and cells[-1] == "":
        cells = cells[:-1]
    return cells
