"""SCALE-Sim's compute model for one GEMM on a systolic array, in closed form.

For an ``R × C`` array and a GEMM ``[M×K]·[K×N]`` (SCALE-Sim's table, verified against it):

======== ================ ================ ============ ====================
dataflow spread on rows   on columns       streamed T   cycles per fold
======== ================ ================ ============ ====================
os       M                N                K            T + R + C − 2
ws       K                N                M            2R + C + T − 2
is       K                M                N            2R + C + T − 2
======== ================ ================ ============ ====================

``folds = ⌈Sr/R⌉·⌈Sc/C⌉``; edge folds are padded to the full array and folds do not overlap, so
``cycles = folds · cycles per fold``. This is the true count; SCALE-Sim reports the index of the
last cycle, one less.

A mode with ``r`` MACs per PE per cycle works as SIMD along the reduction dimension: ``K``
becomes ``⌈K/r⌉`` before the table is applied.
"""

from __future__ import annotations

from dataclasses import dataclass

DATAFLOWS = ("os", "ws", "is")


@dataclass(frozen=True)
class FoldPlan:
    """How one GEMM maps onto the array: the spread and streamed sizes and the fold counts."""

    dataflow: str
    rows: int
    cols: int
    spread_rows: int
    spread_cols: int
    streamed: int
    row_folds: int
    col_folds: int

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def fill_drain_cycles(self) -> int:
        """Cycles of one fold spent filling and draining the array (everything but streaming)."""
        if self.dataflow == "os":
            return self.rows + self.cols - 2
        return 2 * self.rows + self.cols - 2

    @property
    def cycles_per_fold(self) -> int:
        return self.streamed + self.fill_drain_cycles

    @property
    def cycles(self) -> int:
        """Compute cycles of the whole GEMM, fill and drain included, no memory stalls."""
        return self.folds * self.cycles_per_fold


@dataclass(frozen=True)
class SramAccesses:
    """Operand elements the array reads from and writes to its three buffers for one GEMM.

    SCALE-Sim's counts for the same dataflow (without its ofmap over-count of ``folds·(R+C)``):
    the operand streamed through the array is re-read once per fold of the other spread dimension,
    the stationary one is read once; for ``ws`` and ``is`` partial sums go back to the output
    buffer once per row fold (and are read back for every fold but the first).
    """

    ifmap_reads: int
    filter_reads: int
    ofmap_writes: int
    ofmap_reads: int


def sram_accesses(m: int, n: int, k: int, plan: "FoldPlan") -> SramAccesses:
    """Element accesses of the GEMM ``[m×k]·[k×n]`` mapped as ``plan`` (operand A is the ifmap)."""
    if plan.dataflow == "os":
        return SramAccesses(m * k * plan.col_folds, k * n * plan.row_folds, m * n, 0)
    if plan.dataflow == "ws":
        return SramAccesses(m * k * plan.col_folds, k * n, m * n * plan.row_folds, m * n * (plan.row_folds - 1))
    return SramAccesses(m * k, k * n * plan.col_folds, m * n * plan.row_folds, m * n * (plan.row_folds - 1))


def plan_gemm(m: int, n: int, k: int, rows: int, cols: int, dataflow: str, macs_per_pe: int = 1) -> FoldPlan:
    """Map ``[m×k]·[k×n]`` onto a ``rows × cols`` array (SCALE-Sim's compute model)."""
    if min(m, n, k, rows, cols, macs_per_pe) < 1:
        raise ValueError(f"GEMM and array sizes must be positive: m={m} n={n} k={k} rows={rows} cols={cols}")
    k_eff = -(-k // macs_per_pe)
    if dataflow == "os":
        sr, sc, t = m, n, k_eff
    elif dataflow == "ws":
        sr, sc, t = k_eff, n, m
    elif dataflow == "is":
        sr, sc, t = k_eff, m, n
    else:
        raise ValueError(f"unknown dataflow {dataflow!r}; allowed: {', '.join(DATAFLOWS)}")
    return FoldPlan(dataflow, rows, cols, sr, sc, t, -(-sr // rows), -(-sc // cols))
