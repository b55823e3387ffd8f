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

SIMD axis of a mode
-------------------
A mode with ``r`` MACs per PE per cycle does ``r`` MACs along one GEMM dimension (``simd``), which
is divided by ``r`` before the table is applied:

=============== ========= ===================================================================
``simd``        dimension what each PE does per cycle
=============== ========= ===================================================================
``reduction``   K → ⌈K/r⌉ ``r`` products of one output summed (a dot product of ``r``): the default,
                          SCALE-Sim-comparable; os streams fewer cycles, ws/is spread K on fewer rows
``output_cols`` N → ⌈N/r⌉ ``r`` outputs of ``r`` adjacent columns (``r`` accumulators in os, ``r``
                          stationary weights in ws; in is the streamed dimension shortens)
``output_rows`` M → ⌈M/r⌉ ``r`` outputs of ``r`` adjacent rows (``r`` accumulators in os, the
                          streamed dimension of ws shortens; in is ``r`` stationary inputs)
=============== ========= ===================================================================

So the fill and drain of a fold (``R + C − 2`` in os) is paid once per ``r`` MACs of the shortened
dimension only where that dimension is streamed: ``K = 576`` on a 32×32 os array at ``r = 8`` is
``72 + 62 = 134`` cycles per fold along the reduction (4.76× fewer than FP16's 638, not 8×), but
``576 + 62`` per fold on 8× fewer folds along the output columns (8× when N fills them).

Fold overlap (``array.fold_overlap``)
-------------------------------------
Each fold but the op's first saves ``saving`` cycles (:func:`overlap_saving`), so an op of
``F = folds · count`` folds takes ``F · cycles per fold − (F − 1) · saving`` (:func:`gemm_cycles`):

======== ============================ ===========================================================
dataflow saving per fold              why
======== ============================ ===========================================================
ws, is   min(R, R + C − 2)            the next fold's stationary operand (R cycles) preloads while
                                      the current fold drains
os       min(T, R) + C − 2            double-buffered accumulators: the next fold enters the array
                                      right behind the current one, ``max(T, R)`` cycles after it
                                      (T: its operands have passed the first PE; R: the finished
                                      column of outputs has left the shadow accumulators), so a
                                      fold's drain hides under the next fold's fill
======== ============================ ===========================================================

For os that is ``cycles = (F − 1) · max(T, R) + T + R + C − 2``.
"""

from __future__ import annotations

from dataclasses import dataclass

DATAFLOWS = ("os", "ws", "is")
#: The GEMM dimension a mode's SIMD lanes work along, by ``simd`` value.
SIMD_AXES = {"reduction": "k", "output_cols": "n", "output_rows": "m"}


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
    macs_per_pe: int = 1
    simd: str = "reduction"

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
        """Compute cycles of the whole GEMM, fill and drain included, no memory stalls, folds not
        overlapped (SCALE-Sim's count)."""
        return self.folds * self.cycles_per_fold


def overlap_saving(plan: FoldPlan) -> int:
    """Cycles each fold but an op's first saves when folds overlap (``array.fold_overlap``)."""
    if plan.dataflow == "os":
        return min(plan.streamed, plan.rows) + plan.cols - 2
    return min(plan.rows, plan.rows + plan.cols - 2)


def gemm_cycles(plan: FoldPlan, count: int = 1, fold_overlap: bool = False) -> int:
    """Compute cycles of ``count`` repetitions of the GEMM ``plan`` maps, back to back: SCALE-Sim's
    ``count · plan.cycles``, less :func:`overlap_saving` per fold but the first with
    ``fold_overlap``."""
    folds = plan.folds * count
    saving = overlap_saving(plan) if fold_overlap else 0
    return folds * plan.cycles_per_fold - max(folds - 1, 0) * saving


@dataclass(frozen=True)
class SramAccesses:
    """Operand elements the array reads from and writes to its three buffers for one GEMM.

    SCALE-Sim's counts for the same dataflow (without its ofmap over-count of ``folds·(R+C)``):
    the operand streamed through the array is re-read once per fold of the other spread dimension,
    the stationary one is read once; for ``ws`` and ``is`` partial sums go back to the output
    buffer once per row fold (and are read back for every fold but the first). The counts hold for
    every SIMD axis: a PE's ``r`` lanes share the operand that does not vary along the SIMD dimension,
    so each element is still read once per fold of the other spread dimension, and fewer folds mean
    fewer re-reads. Fold overlap changes when folds run, not what they read.
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


def plan_gemm(
    m: int, n: int, k: int, rows: int, cols: int, dataflow: str, macs_per_pe: int = 1, simd: str = "reduction",
) -> FoldPlan:
    """Map ``[m×k]·[k×n]`` onto a ``rows × cols`` array (SCALE-Sim's compute model), with the PE's
    ``macs_per_pe`` MACs per cycle along the ``simd`` dimension."""
    if min(m, n, k, rows, cols, macs_per_pe) < 1:
        raise ValueError(f"GEMM and array sizes must be positive: m={m} n={n} k={k} rows={rows} cols={cols}")
    if simd not in SIMD_AXES:
        raise ValueError(f"unknown SIMD axis {simd!r}; allowed: {', '.join(SIMD_AXES)}")
    dims = {"m": m, "n": n, "k": k}
    axis = SIMD_AXES[simd]
    dims[axis] = -(-dims[axis] // macs_per_pe)
    m_eff, n_eff, k_eff = dims["m"], dims["n"], dims["k"]
    if dataflow == "os":
        sr, sc, t = m_eff, n_eff, k_eff
    elif dataflow == "ws":
        sr, sc, t = k_eff, n_eff, m_eff
    elif dataflow == "is":
        sr, sc, t = k_eff, m_eff, n_eff
    else:
        raise ValueError(f"unknown dataflow {dataflow!r}; allowed: {', '.join(DATAFLOWS)}")
    return FoldPlan(dataflow, rows, cols, sr, sc, t, -(-sr // rows), -(-sc // cols), macs_per_pe, simd)
