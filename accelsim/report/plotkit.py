"""What every plot shares: figures without a layout engine, SI units that fit the data, titles
that say what was simulated, and a budget of legible labels.

Matplotlib is imported only inside :func:`figure`, so importing a plot module costs nothing until
a plot is drawn. Figures use matplotlib's object API (no pyplot state) and fixed margins in
inches instead of ``constrained_layout`` / ``tight_layout``, which draw the figure several times
to measure it; every figure is saved once at :data:`DPI`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Resolution of every PNG: a 7.5-inch-wide figure is 750 px.
DPI = 100
#: Plot levels of ``--plots``: ``none`` draws nothing, ``summary`` what a person looks at first,
#: ``all`` every plot.
LEVELS = ("none", "summary", "all")
#: Rows of layer names a per-layer plot shows before it aggregates the rest into one row.
MAX_LABELLED_ROWS = 20
#: Characters of a tick label before it is shortened in the middle.
MAX_LABEL_CHARS = 34
RUN_COLORS = {"policy": "tab:blue", "baseline": "tab:orange"}
PHASE_COLORS = {"fwd": "tab:blue", "bwd_data": "tab:orange", "bwd_weight": "tab:green", "update": "tab:purple"}

_PREFIXES = {
    -24: "y", -21: "z", -18: "a", -15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "",
    3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E", 21: "Z", 24: "Y",
}


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"plot level must be one of {', '.join(LEVELS)}; got {level!r}")
    return level


def to_float(value: Any) -> float | None:
    """``value`` as a finite float, or None (empty cell, text, NaN, infinity, overflow)."""
    if value is None or value == "":
        return None
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return x if math.isfinite(x) else None


class Columns:
    """A CSV table by column: ``text(name)`` as a list of strings, ``num(name)`` as a float64
    array (NaN where a cell is empty or not a number). Built from ``csv.DictReader`` rows or read
    from a file; per-column conversion runs in NumPy, so a 100,000-row ``ops.csv`` costs
    milliseconds per column, not a Python call per cell."""

    def __init__(self, data: dict[str, list[str]], length: int):
        self._data = data
        self._length = length
        self._num: dict[str, Any] = {}

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> "Columns":
        names = list(dict.fromkeys(k for r in rows[:1] for k in r))
        data = {n: ["" if r.get(n) is None else str(r.get(n)) for r in rows] for n in names}
        return cls(data, len(rows))

    @classmethod
    def read(cls, path: Path) -> "Columns":
        """Read a CSV file with a header row (a short row's missing cells are empty)."""
        import csv
        from itertools import zip_longest

        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            rows = list(reader)
        cols = list(zip_longest(*rows, fillvalue="")) if rows else []
        cols += [("",) * len(rows)] * (len(header) - len(cols))
        return cls({n: list(c) for n, c in zip(header, cols)}, len(rows))

    def __len__(self) -> int:
        return self._length

    def __contains__(self, name: str) -> bool:
        return name in self._data

    def text(self, name: str) -> list[str]:
        return self._data.get(name) or [""] * self._length

    def num(self, name: str) -> Any:
        """The column as float64 (NaN for empty or non-numeric cells, also for ±inf)."""
        import numpy as np

        if name not in self._num:
            cells = self._data.get(name)
            if cells is None:
                values = np.full(self._length, np.nan)
            else:
                try:
                    values = np.fromiter(map(float, [c if c else "nan" for c in cells]), dtype=np.float64,
                                         count=len(cells))
                except (ValueError, OverflowError):
                    values = np.array([math.nan if (x := to_float(c)) is None else x for c in cells], dtype=np.float64)
                values[~np.isfinite(values)] = np.nan
            self._num[name] = values
        return self._num[name]


def si_scale(values: Iterable[float], unit: str) -> tuple[float, str]:
    """``(divisor, label)`` that puts the largest magnitude of ``values`` between 1 and 1000 in
    an SI-prefixed ``unit``: ``si_scale([2.5e-3, 0.01], "s") == (1e-3, "ms")``. Magnitudes
    beyond the prefixes (yocto to yotta) keep the nearest prefix; no value gives no prefix."""
    mags = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not mags:
        return 1.0, unit
    exp = 3 * math.floor(math.log10(max(mags)) / 3)
    exp = min(max(exp, -24), 24)
    return 10.0 ** exp, f"{_PREFIXES[exp]}{unit}"


def si(value: float | None, unit: str, digits: int = 3) -> str:
    """One value with the SI prefix that fits it: ``si(3.2e-4, "J") == "320 µJ"``."""
    if value is None or not math.isfinite(value):
        return "n/a"
    scale, label = si_scale([value], unit)
    return f"{value / scale:.{digits}g} {label}"


def shorten(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    """``text`` with its start replaced by an ellipsis when longer than ``limit`` characters:
    the end of a layer's path (``…layer.10.intermediate.dense``) is what tells layers apart."""
    if len(text) <= limit:
        return text
    return "…" + text[len(text) - (limit - 1):]


def step_kind(summary: dict[str, Any]) -> str:
    """``training`` or ``inference``: what one step of the run is."""
    return "inference" if summary.get("phases") == "inference" else "training"


def machine_text(summary: dict[str, Any], run: str) -> str:
    """``fp16 on fp16-32x32 (38x37, iso area, 7.72 mm²)``: a run's precision and machine, with its
    array shape and area when the summary has them (and the iso baseline it is)."""
    info = (summary.get("runs") or {}).get(run) or {}
    if not info:
        return ""
    text = f"{info.get('precision', '?')} on {info.get('hardware', '?')}"
    extra = []
    if info.get("array_rows") is not None and info.get("array_cols") is not None:
        extra.append(f"{info['array_rows']}x{info['array_cols']}")
    if run == "baseline" and summary.get("iso"):
        extra.append(f"iso {summary['iso']}")
    area = to_float(info.get("area_mm2"))
    if area is not None:
        extra.append(f"{area:.3g} mm²")
    return text + (f" ({', '.join(extra)})" if extra else "")


def machines(summary: dict[str, Any]) -> str:
    """``int4 on int4-32x32 (32x32, 7.77 mm²) vs fp16 on fp16-32x32 (32x32, 6.57 mm²)``: both runs,
    as far as the summary names them."""
    parts = [machine_text(summary, label) for label in ("policy", "baseline")]
    return " vs ".join(p for p in parts if p)


def run_label(summary: dict[str, Any], run: str) -> str:
    info = (summary.get("runs") or {}).get(run) or {}
    return f"{info.get('precision', run)} on {info.get('hardware', '?')}"


def title(summary: dict[str, Any], what: str, *, per_step: bool = True) -> str:
    """``resnet50, one training step, int4 on int4-32x32 vs fp16 on fp16-32x32: WHAT``; with
    ``per_step=False`` the span is the whole run (its step count) instead of one step."""
    kind = step_kind(summary)
    steps = ((summary.get("runs") or {}).get("policy") or {}).get("steps")
    if per_step or not steps or steps == 1:
        span = f"one {kind} step"
    else:
        span = f"{steps:,} {kind} steps"
    head = ", ".join(p for p in (summary.get("workload"), span, machines(summary)) if p)
    return f"{head}\n{what}"


def figure(width_in: float, height_in: float, *, left: float = 0.9, right: float = 0.25,
           bottom: float = 0.6, top: float = 0.7, wspace: float | None = None,
           hspace: float | None = None) -> "Figure":
    """A figure of fixed size whose axes keep the given margins, in inches (no layout engine)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout=None)
    fig.subplots_adjust(
        left=min(left / width_in, 0.9), right=max(1 - right / width_in, 0.1),
        bottom=min(bottom / height_in, 0.9), top=max(1 - top / height_in, 0.1),
        wspace=wspace, hspace=hspace,
    )
    return fig


def suptitle(fig: "Figure", text: str, top_in: float = 0.08, size: float = 9.5) -> None:
    """A figure title whose first line starts ``top_in`` inches below the top edge. Lines too long
    for the figure's width are wrapped; the figure grows by the lines that adds, so that the title
    never runs into the axes (whose margins were planned for the title's own lines)."""
    import textwrap

    width = fig.get_figwidth()
    chars = max(20, int((width - 0.3) * 72 / (size * 0.55)))
    def wrap(line: str) -> list[str]:
        if len(line) > chars and " vs " in line:  # break between the two runs first
            head, tail = line.split(" vs ", 1)
            return wrap(head) + wrap("vs " + tail)
        return textwrap.wrap(line, chars) or [""]

    lines = [part for line in text.split("\n") for part in wrap(line)]
    extra = (len(lines) - (text.count("\n") + 1)) * size * 1.25 / 72
    if extra > 0:
        height = fig.get_figheight()
        boxes = [(ax, ax.get_position()) for ax in fig.axes]
        fig.set_figheight(height + extra)
        for ax, box in boxes:  # keep every axes where it was, measured from the bottom, in inches
            ax.set_position((box.x0, box.y0 * height / (height + extra), box.width, box.height * height / (height + extra)))
    fig.text(0.5, 1 - top_in / fig.get_figheight(), "\n".join(lines), ha="center", va="top", fontsize=size)


def plain_axis(ax: "Axes", which: str = "both") -> None:
    """No offset or ×10ⁿ text on linear axes: the unit in the label carries the scale."""
    from matplotlib.ticker import ScalarFormatter

    for axis in ((ax.xaxis, ax.yaxis) if which == "both" else (ax.xaxis,) if which == "x" else (ax.yaxis,)):
        if axis.get_scale() == "linear":
            fmt = ScalarFormatter(useOffset=False)
            fmt.set_scientific(False)
            axis.set_major_formatter(fmt)


def hbars(ax: "Axes", ys: Iterable[float], widths: Iterable[float], height: float, color: str, label: str) -> None:
    """Horizontal bars from 0 as one collection (``barh`` makes a patch per bar and updates the
    data limits for each, which costs far more); NaN widths draw nothing. The caller sets the
    limits."""
    from matplotlib.collections import PolyCollection

    verts = [((0.0, y - height / 2), (w, y - height / 2), (w, y + height / 2), (0.0, y + height / 2))
             for y, w in zip(ys, widths) if w is not None and math.isfinite(w)]
    ax.add_collection(PolyCollection(verts, facecolors=color, edgecolors="none", label=label))


def plain_log_axis(ax: "Axes") -> None:
    """Decade ticks of log axes as plain numbers (0.1, 1, 10, 100) up to 10⁵ and down to 10⁻³,
    powers of ten beyond; no minor tick labels."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    def fmt(value: float, _pos: int) -> str:
        if value <= 0:
            return ""
        exp = math.log10(value)
        if abs(exp - round(exp)) > 1e-9:
            return ""
        exp = round(exp)
        return f"{value:g}" if -3 <= exp <= 5 else f"$10^{{{exp}}}$"

    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log":
            axis.set_major_formatter(FuncFormatter(fmt))
            axis.set_minor_formatter(NullFormatter())


def save(fig: "Figure", path: Path) -> bool:
    """Write the PNG once, at :data:`DPI`, without a tight bounding box (which draws twice)."""
    fig.savefig(path, dpi=DPI)
    return True


def drawer(make: "Callable[[], Figure | None]") -> Callable[[Path], bool]:
    """``draw(path)`` for a figure maker: builds the figure, saves it and returns True, or
    returns False when the maker has nothing to draw (None)."""
    def draw(path: Path) -> bool:
        fig = make()
        return False if fig is None else save(fig, path)

    return draw


def label_margin_in(labels: Iterable[str], fontsize: float) -> float:
    """Inches of left margin that fit the longest of ``labels`` at ``fontsize`` points."""
    longest = max((len(s) for s in labels), default=0)
    return 0.25 + longest * fontsize * 0.62 / 72
