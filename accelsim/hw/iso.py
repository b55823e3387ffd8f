"""Iso-area and iso-power machines: resize a machine's array until a measure of it meets a target.

:func:`iso_resize` is a pure building block: the caller supplies ``measure(spec) -> float`` (the
machine's area in mm², or its average power in mW on a workload, e.g.
:func:`accelsim.energy.area_measure` / :func:`accelsim.energy.power_measure`) and the target (the
4-bit machine's figure); nothing else about the machine changes (buffers, units, clock, modes).

The ladder of shapes
--------------------
The array is resized along a ladder of shapes that keeps the baseline's aspect ratio as far as
whole rows and columns allow. Rung ``n`` (``n = rows + cols ≥ 2``) is the shape with ``rows + cols =
n`` whose share of rows is nearest the baseline's ``R0 / (R0 + C0)``::

    rows(n) = clamp(⌊n·R0 / (R0 + C0) + 1/2⌋, 1, n − 1),    cols(n) = n − rows(n)

(computed in integers). Consecutive rungs differ by exactly one row or one column, and rung
``R0 + C0`` is the baseline itself. A 32×32 baseline climbs 32×32, 33×32, 33×33, 34×33, …; an
84×32 one keeps about 2.6 rows per column.

"Within one row or column"
--------------------------
The search ends with two adjacent rungs ``below`` and ``above`` (``above`` is ``below`` plus one
row or one column) that bracket the target: ``measure(below) ≤ target < measure(above)``. The
result is one of the two (``pick``: the ``nearest`` to the target, ties to ``below``; or always
``below`` or ``above``). If a rung meets the target exactly, it is the result. So no machine on the
ladder that is one row or one column closer to the target exists on the other side of it.

The search doubles its step away from the baseline until the target is bracketed, then bisects:
deterministic, at most ``2·⌈log2(2·max_dim)⌉ + 1`` evaluations (each rung measured once), and it
needs no monotone measure (for one that is not, the bracket it returns holds; another may exist).
Impossible targets are :class:`IsoError` naming the bound: a target below the machine's measure at
1×1 (the rest of the machine already exceeds it), or above it at the largest array allowed.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from accelsim.spec.models import MAX_ARRAY_DIM, HardwareSpec

__all__ = ["IsoError", "ladder_shape", "evaluation_bound", "iso_resize"]

PICKS = ("nearest", "below", "above")


class IsoError(ValueError):
    """The target cannot be met by any array on the ladder (or the inputs are unusable)."""


def ladder_shape(n: int, rows0: int, cols0: int) -> tuple[int, int]:
    """Rung ``n`` (``rows + cols = n``) of the ladder through the ``rows0 × cols0`` baseline."""
    if n < 2:
        raise ValueError(f"a rung has at least one row and one column: n = {n}")
    total = rows0 + cols0
    rows = (2 * n * rows0 + total) // (2 * total)
    rows = min(max(rows, 1), n - 1)
    return rows, n - rows


def evaluation_bound(max_dim: int = MAX_ARRAY_DIM) -> int:
    """The most evaluations :func:`iso_resize` makes with arrays of at most ``max_dim`` a side."""
    return 2 * math.ceil(math.log2(2 * max_dim)) + 1


def _top_rung(rows0: int, cols0: int, max_dim: int) -> int:
    """The last rung whose rows and columns are both at most ``max_dim``."""
    lo, hi = 2, 2 * max_dim
    while lo < hi:  # the predicate holds on a prefix of the ladder (both sides only grow)
        mid = (lo + hi + 1) // 2
        r, c = ladder_shape(mid, rows0, cols0)
        if r <= max_dim and c <= max_dim:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _resized(spec: HardwareSpec, rows: int, cols: int) -> HardwareSpec:
    data = spec.model_dump()
    data["array"]["rows"], data["array"]["cols"] = rows, cols
    return HardwareSpec.model_validate(data)


def iso_resize(
    spec: HardwareSpec,
    measure: Callable[[HardwareSpec], float],
    target: float,
    *,
    pick: str = "nearest",
    max_dim: int = MAX_ARRAY_DIM,
    max_evaluations: int | None = None,
) -> tuple[HardwareSpec, dict[str, Any]]:
    """Resize ``spec``'s array along its ladder (module docstring) until ``measure`` brackets
    ``target`` between two adjacent rungs; return the chosen spec and JSON-ready details::

        {"target", "pick", "baseline": {"rows", "cols", "measure"}, "rows", "cols", "measure",
         "relative_error" ((measure − target) / target), "below": {"rows", "cols", "measure"},
         "above": {...} (null when a rung meets the target exactly), "evaluations"}

    Raises :class:`IsoError` when no rung can meet the target, ``ValueError`` for a target that is
    not a positive finite number or an unknown ``pick``.
    """
    if pick not in PICKS:
        raise ValueError(f"unknown pick {pick!r}; allowed: {', '.join(PICKS)}")
    if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
        raise ValueError(f"the target must be a positive finite number; got {target!r}")
    rows0, cols0 = spec.array.rows, spec.array.cols
    top = _top_rung(rows0, cols0, max_dim)
    if max_evaluations is None:
        max_evaluations = evaluation_bound(max_dim)
    values: dict[int, float] = {}

    def f(n: int) -> float:
        if n not in values:
            if len(values) >= max_evaluations:
                raise IsoError(f"no bracket of the target {target:g} after {max_evaluations} evaluations")
            value = float(measure(_resized(spec, *ladder_shape(n, rows0, cols0))))
            if not math.isfinite(value):
                raise IsoError(f"the measure of a {'x'.join(map(str, ladder_shape(n, rows0, cols0)))} array is {value}")
            values[n] = value
        return values[n]

    def shape_of(n: int) -> dict[str, Any]:
        r, c = ladder_shape(n, rows0, cols0)
        return {"rows": r, "cols": c, "measure": values[n]}

    n0 = rows0 + cols0
    lo = hi = None
    if f(n0) <= target:
        lo, step = n0, 1
        while True:
            n = min(n0 + step, top)
            if f(n) > target:
                hi = n
                break
            lo = n
            if n == top:
                r, c = ladder_shape(top, rows0, cols0)
                raise IsoError(
                    f"the target {target:g} is above the measure of the largest array on the ladder "
                    f"({r}x{c}: {values[top]:g})"
                )
            step *= 2
    else:
        hi, step = n0, 1
        while True:
            n = max(n0 - step, 2)
            if f(n) <= target:
                lo = n
                break
            hi = n
            if n == 2:
                raise IsoError(
                    f"the target {target:g} is below the measure of the machine with a 1x1 array "
                    f"({values[2]:g}): the rest of the machine already exceeds it"
                )
            step *= 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if f(mid) <= target:
            lo = mid
        else:
            hi = mid
    exact = values[lo] == target
    if exact or pick == "below":
        chosen = lo
    elif pick == "above":
        chosen = hi
    else:
        chosen = lo if target - values[lo] <= values[hi] - target else hi
    rows, cols = ladder_shape(chosen, rows0, cols0)
    details = {
        "target": float(target), "pick": pick,
        "baseline": {"rows": rows0, "cols": cols0, "measure": values[n0]},
        "rows": rows, "cols": cols, "measure": values[chosen],
        "relative_error": (values[chosen] - target) / target,
        "below": shape_of(lo), "above": None if exact else shape_of(hi),
        "evaluations": len(values),
    }
    return _resized(spec, rows, cols), details
