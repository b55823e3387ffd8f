"""Import of SCALE-Sim topology CSV files, with SCALE-Sim's own layer semantics.

Two forms are accepted, each with or without SCALE-Sim's trailing comma on every row:

* conv: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,
  Num Filter, Strides,`` (an optional ninth column gives a separate column stride);
* GEMM: ``Layer, M, N, K,``.

Semantics are SCALE-Sim's, so that cycle counts can be compared with it: no padding; output size
``ceil((H − Fh + S) / S)``; a layer whose name contains ``DP`` is depthwise (SCALE-Sim expands it
into one single-channel layer per channel, here a grouped convolution with one group per
channel, which lowers to the same GEMMs); every row is an independent layer at batch 1 (a conv
row's GEMM is ``M = Ho·Wo``, ``N = filters``, ``K = Fh·Fw·C``). The first row is a header when
it names the columns (compared without case, spaces or punctuation: ``Layer name, IFMAP Height,
...`` or ``Layer, M, N, K``); any other first row is a layer, so a typo in a first layer is reported,
not skipped as a "header". A cell starting with ``#`` starts a comment (SCALE-Sim's files mark
depthwise rows ``#dw``). At most :data:`~accelsim.spec.models.MAX_LAYERS` rows are read.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from accelsim.errors import InputError, Problem
from accelsim.spec.models import MAX_LAYERS, derived_name
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
    return parse_topology(text, str(path), name=derived_name(path.stem, "topology"), batch_size=batch_size)


def _rows(text: str, file: str) -> list[tuple[int, list[str]]]:
    """Non-empty rows (comments and trailing empty cells dropped), refusing more than MAX_LAYERS."""
    rows: list[tuple[int, list[str]]] = []
    try:
        for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            cells = _drop_comment([cell.strip() for cell in row])
            cells = _drop_trailing_empty(cells)
            if any(cells):
                rows.append((lineno, cells))
                if len(rows) > MAX_LAYERS + 1:
                    raise InputError.single(
                        file, "", f"topology CSV has more than {MAX_LAYERS:,} layer rows (the most a network "
                        f"may have); refusing to read past line {lineno}",
                    )
    except csv.Error as exc:
        raise InputError.single(file, "", f"not a readable CSV file: {exc}") from None
    return rows


def _norm(cell: str) -> str:
    return "".join(c for c in cell.lower() if c.isalnum())


_ALIASES = {"layer": {"layer", "layername", "name"}, "strides": {"strides", "stride"},
            "numfilter": {"numfilter", "numfilters"}, "channels": {"channels", "channel"},
            "stridewidth": {"stridewidth", "stridew", "colstride", "columnstride"}}


def _header_form(cells: list[str], file: str, lineno: int) -> bool:
    """Whether the first row is a header, recognised by its column names (an error if it starts
    like a header but names a column wrongly)."""
    if not cells or _norm(cells[0]) not in _ALIASES["layer"]:
        return False
    if len(cells) == len(GEMM_COLUMNS):
        expected: tuple[str, ...] = GEMM_COLUMNS
    elif len(cells) in (len(CONV_COLUMNS), len(CONV_COLUMNS) + 1):
        expected = CONV_COLUMNS + ("Stride width",)
    else:
        return False  # the width check reports it
    for cell, name in zip(cells[1:], expected[1:]):
        want = _norm(name)
        if _norm(cell) not in _ALIASES.get(want, {want}):
            raise InputError.single(
                file, f"line {lineno}",
                f"header column {cell!r} should be {name!r} (a header names the columns: {', '.join(expected[:len(cells)])})",
            )
    return True


def parse_topology(text: str, file: str, *, name: str = "topology", batch_size: int = 1) -> Network:
    rows = _rows(text, file)
    if not rows:
        raise InputError.single(file, "", "topology CSV has no rows")
    if _header_form(rows[0][1], file, rows[0][0]):
        rows = rows[1:]
    elif len(rows) > MAX_LAYERS:
        raise InputError.single(file, "", f"topology CSV has more than {MAX_LAYERS:,} layer rows (the most a network may have)")
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
        if not (cell.isascii() and cell.isdigit()):
            raise ValueError(f"{column}: expected a positive integer, got {cell[:40]!r}")
        value = int(cell) if len(cell) <= 12 else 1 << 40  # no 5,000-digit int() for a cell
        if not 1 <= value <= 1 << 24:
            shown = value if len(cell) <= 12 else f"a {len(cell)}-digit number"
            raise ValueError(f"{column}: expected a positive integer up to {1 << 24}, got {shown}")
        values.append(value)
    return values


def _drop_comment(cells: list[str]) -> list[str]:
    for i, cell in enumerate(cells):
        if cell.startswith("#"):
            return cells[:i]
    return cells


def _drop_trailing_empty(cells: list[str]) -> list[str]:
    while cells and cells[-1] == "":
        cells = cells[:-1]
    return cells
