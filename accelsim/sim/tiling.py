"""The tiler: how an op is cut into SRAM tiles, and what each stretch of tiles costs.

GEMM tiles
----------
A GEMM is mapped onto the array as in :mod:`accelsim.sim.fold` (SCALE-Sim's model). Its three
loop dimensions are named by their role in the mapping:

======== ================ ================ ================ =========== ==============================
dataflow ``p`` (rows)     ``q`` (columns)  ``s`` (streamed) reduction   operand dims (A, B, output Z)
======== ================ ================ ================ =========== ==============================
os       M, R per fold    N, C per fold    K, 1 per cycle   s           A(p,s) B(s,q) Z(p,q)
ws       K, R per fold    N, C per fold    M, 1 per cycle   p           A(s,p) B(p,q) Z(s,q)
is       K, R per fold    M, C per fold    N, 1 per cycle   p           A(p,q) B(p,s) Z(q,s)
======== ================ ================ ================ =========== ==============================

The loop dimension that spans the mode's SIMD dimension (:mod:`accelsim.sim.fold`: K for
``reduction``, N for ``output_cols``, M for ``output_rows``) covers ``r`` times as many elements per
fold or per streamed cycle (``r`` = MACs per PE per cycle of the op's mode): with the default, os
streams ``r`` elements of K per cycle and ws/is spread ``R·r`` of K per fold. An SRAM tile is a block of ``bp × bq`` whole
folds with a chunk of ``bs`` streamed cycles. Either the tile streams the whole fold (``bs = T``)
or it is a chunk of one fold (``bp = bq = 1``); the chunks of a fold run back to back, so the
array keeps its stationary operand or its accumulators across them and the fold costs exactly its
closed-form cycles. Tiles run in a loop nest: the op's repetitions (``count``) outermost, then
``p`` and ``q`` in the order chosen, ``s`` innermost.

Each operand slice (A in the ``ifmap`` buffer, B in ``filter``, Z in ``ofmap``) must fit **half**
of its buffer (the other half takes the next tile's data), at its own bit width: A at the op's
unique-element density ``a_elements / (m·k·count)`` (im2col repeats are formed on chip), Z at
``out_format`` (os: finished outputs drain from the PEs) or ``acc_format`` (ws/is: partial sums).

DRAM traffic is counted from the nest, refetches included: a buffer holds one slice, so an
operand is fetched again whenever the next tile needs a different slice of it (an operand that
depends on no loop with more than one iteration is fetched once). An output slice is written when
the nest leaves it; if its reduction is not finished (ws/is with the output revisited across
``p``) the partial sums are written at ``acc_format`` and read back on the next visit.

The tiler tries both ``p``/``q`` orders, whole-fold tiles of the useful block sizes and one-fold
chunks as large as fit, with blocks evened out (``⌈U / ⌈U / b⌉⌉``, no short edge tile); it keeps
the tiling with the least DRAM traffic, and among those the one with the most tiles (finer tiles
hide more of their loads and write-backs). If not even one fold with a chunk of
``min(T, max(R, C))`` streamed cycles fits, :class:`TileFitError` names the buffer and both sizes
(the engine turns it into an :class:`~accelsim.errors.InputError` naming the op and the field).

Consequence of keeping SCALE-Sim's fold schedule (a fold streams its whole reduction before the
next fold starts): where a fold's operand rows cannot stay in the buffer across folds (os with a
huge ``K``, as in weight-gradient GEMMs, ``K = batch·H·W``), they are refetched for every fold
that needs them. Splitting the reduction across folds would cut that traffic but add fill/drain
cycles that SCALE-Sim does not have.

Cost of a stretch of tiles, in closed form
------------------------------------------
Every per-tile quantity (bits loaded, cycles, bits written) is a product of per-loop factors
(a block's extent, "is this the first/last chunk", ...), so its sum over the first ``t`` tiles is
a digit sum over the mixed-radix tile index: :meth:`GemmTiling.prefix` costs ``O(loops)``, never
``O(tiles)`` and never ``O(MACs)``. The engine asks for it only at event-tile boundaries.

Compute cycles of a tile (``F`` folds, ``c`` streamed cycles of each): ``F·c`` plus, per fold,
the preload (``R`` for ws/is, none for os) on its first chunk and the skew ``R + C − 2`` on its
last. With ``array.fold_overlap`` every fold but the op's first saves
:func:`~accelsim.sim.fold.overlap_saving` cycles: ws/is take it off each fold's preload
(``R − saving``) and pay the op's first preload once, on its first tile (``head_cycles``); os takes
it off each fold's drain (``R + C − 2 − saving = max(0, R − T)``) and pays the op's last drain once,
on its last tile (``tail_cycles``). So no tile's compute is negative, and summed over the op it is
:func:`~accelsim.sim.fold.gemm_cycles`: ``count·folds·cycles_per_fold − (count·folds − 1)·saving``,
exactly ``plan.cycles·count`` when the option is off.

Streams (rescale and vector ops)
--------------------------------
A tensor is streamed in tiles of ``E`` elements, ``E`` a multiple of the unit's lanes, as large as
fits half of ``ifmap`` (inputs) and half of ``ofmap`` (outputs). A rescale with a reduction makes
one pass that only reads, then the requantize pass: it reads the tensor again (unless the whole
tensor stayed in the buffer) and writes ``copies`` outputs per element (TPR: 2), spending one
lane-cycle per element per copy. The unit's pipeline latency is paid once per op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from accelsim.sim.fold import SIMD_AXES, FoldPlan, overlap_saving

KIB_BITS = 8 * 1024

#: Quantities of a stretch of GEMM tiles (see :meth:`GemmTiling.prefix`).
QUANTITIES = ("a_bits", "b_bits", "z_read_bits", "z_final_bits", "z_partial_bits", "compute_cycles")

# per dataflow: which GEMM dimension each loop dim spans, the operands' dims, the reduction dim
_ROLES = {
    "os": {"p": "m", "q": "n", "s": "k", "A": ("p", "s"), "B": ("s", "q"), "Z": ("p", "q"), "red": "s"},
    "ws": {"p": "k", "q": "n", "s": "m", "A": ("s", "p"), "B": ("p", "q"), "Z": ("s", "q"), "red": "p"},
    "is": {"p": "k", "q": "m", "s": "n", "A": ("p", "q"), "B": ("p", "s"), "Z": ("q", "s"), "red": "p"},
}


# ------------------------------------------------------------------------------------------------
# loop nests and digit sums


@dataclass(frozen=True)
class Dim:
    """One loop of a tile nest: ``units`` (folds or streamed cycles) cut in blocks of ``block``;
    ``elements`` the operand elements the dimension spans, ``per_unit`` elements per unit."""

    name: str
    units: int
    block: int
    elements: int
    per_unit: int

    @property
    def n(self) -> int:
        return -(-self.units // self.block)

    def unit_extent(self, x: int) -> int:
        return min(self.block, self.units - x * self.block)

    def element_extent(self, x: int) -> int:
        lo = x * self.block * self.per_unit
        return min(lo + self.block * self.per_unit, self.elements) - lo

    def max_elements(self) -> int:
        return self.element_extent(0)


Factor = Callable[[int], float]


def _one(_x: int) -> float:
    return 1.0


class ProductSum:
    """Prefix sums ``Σ_{t<u} Π_l g_l(digit_l(t))`` of a product-form per-tile quantity over the
    mixed-radix tile index with digit counts ``ns`` (outermost first), in ``O(len(ns))`` per query.

    Every factor here is constant on the digits ``1..n−2`` (full blocks), so a level is described
    by three values: first, middle and last digit.
    """

    __slots__ = ("ns", "vals", "level_totals", "suffix", "strides", "size", "total")

    def __init__(self, ns: Sequence[int], gs: Sequence[Factor]):
        self.ns = tuple(ns)
        self.vals = tuple((g(0), g(1) if n > 2 else 0.0, g(n - 1)) for g, n in zip(gs, ns))
        self.level_totals = tuple(_sum3(v, n, n) for v, n in zip(self.vals, self.ns))
        suffix, strides = [1.0], [1]
        for tot, n in zip(reversed(self.level_totals), reversed(self.ns)):
            suffix.append(suffix[-1] * tot)
            strides.append(strides[-1] * n)
        self.total = suffix[-1]
        self.size = strides[-1]
        self.suffix = tuple(reversed(suffix[:-1]))
        self.strides = tuple(reversed(strides[:-1]))

    def __call__(self, u: int) -> float:
        if u >= self.size:
            return self.total
        if u <= 0:
            return 0.0
        result = 0.0
        head = 1.0
        for vals, n, stride, suffix in zip(self.vals, self.ns, self.strides, self.suffix):
            d = (u // stride) % n
            if d:
                result += head * _sum3(vals, n, d) * suffix
                head *= vals[0] if d == 0 else vals[2] if d == n - 1 else vals[1]
            else:
                head *= vals[0]
            if head == 0.0:
                break
        return result


def _sum3(vals: tuple[float, float, float], n: int, d: int) -> float:
    """``Σ_{x<d} g(x)`` for ``g`` = (first, middle, last) values on ``n`` digits."""
    if d <= 0:
        return 0.0
    total = vals[0]
    if n >= 2:
        mid = min(d, n - 1) - 1
        if mid > 0:
            total += vals[1] * mid
        if d >= n:
            total += vals[2]
    return total


def digit_prefix(ns: Sequence[int], gs: Sequence[Factor], u: int) -> float:
    """One-off :class:`ProductSum` query."""
    return ProductSum(ns, gs)(u)


# ------------------------------------------------------------------------------------------------
# GEMM tiling


@dataclass(frozen=True)
class Operand:
    name: str            # "A", "B", "Z"
    buffer: str          # "ifmap", "filter", "ofmap"
    dims: tuple[str, ...]
    bits: float          # bits per element in DRAM (density included)
    footprint_bits: float  # bits per element held in the buffer


@dataclass(frozen=True)
class GemmTiling:
    """One tiling of one GEMM op: the loop nest, the operands and the compute model per tile."""

    plan: FoldPlan
    count: int
    levels: tuple[Dim, ...]          # outermost first; levels[0] is the repetition loop "c"
    operands: tuple[Operand, ...]    # A, B, Z
    reduction: str
    preload: int                     # cycles of a fold's first chunk before streaming
    drain: int                       # cycles after a fold's last chunk
    z_partial_bits: float            # bits per element of a partial-sum spill
    head_cycles: int = 0             # once, on the op's first tile (ws/is fold overlap: first preload)
    tail_cycles: int = 0             # once, on the op's last tile (os fold overlap: last drain)

    @property
    def ns(self) -> tuple[int, ...]:
        return tuple(d.n for d in self.levels)

    @property
    def tiles(self) -> int:
        return math.prod(self.ns)

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.levels[1:])

    def dim(self, name: str) -> Dim:
        return next(d for d in self.levels if d.name == name)

    @property
    def block(self) -> tuple[int, int, int]:
        """``(bp, bq, bs)``: folds per tile on rows and columns, streamed cycles per tile."""
        return self.dim("p").block, self.dim("q").block, self.dim("s").block

    def operand(self, name: str) -> Operand:
        return next(o for o in self.operands if o.name == name)

    def slice_bits(self, name: str) -> float:
        """Buffer bits of the largest slice of an operand (its first block)."""
        op = self.operand(name)
        return math.prod(self.dim(d).max_elements() for d in op.dims) * op.footprint_bits

    # -- closed-form sums over tiles ---------------------------------------------------------------

    def _innermost(self, dims: tuple[str, ...]) -> int:
        """Index of the innermost level with more than one iteration that ``dims`` depend on
        (level 0, the repetitions, when none)."""
        j = 0
        for i, d in enumerate(self.levels):
            if i and d.name in dims and d.n > 1:
                j = i
        return j

    def _extent_factors(self, dims: tuple[str, ...], upto: int) -> list[Factor]:
        return [d.element_extent if d.name in dims else _one for d in self.levels[: upto + 1]]

    def _inner_constant(self, dims: tuple[str, ...], upto: int) -> float:
        """Element extent of the levels inside ``upto`` (all have one iteration)."""
        return math.prod(d.max_elements() for d in self.levels[upto + 1:] if d.name in dims)

    def _compiled(self) -> "_Compiled":
        cached = self.__dict__.get("_cache")
        if cached is None:
            cached = _Compiled(self)
            object.__setattr__(self, "_cache", cached)
        return cached

    def prefix(self, t: int) -> dict[str, float]:
        """Sums of :data:`QUANTITIES` over the first ``t`` tiles (bits are fractional when an
        operand has a density below one; round at the end)."""
        return self._compiled().prefix(max(0, min(t, self.tiles)))

    def totals(self) -> dict[str, float]:
        return self.prefix(self.tiles)

    def dram_bits(self) -> float:
        tot = self.totals()
        return tot["a_bits"] + tot["b_bits"] + tot["z_read_bits"] + tot["z_final_bits"] + tot["z_partial_bits"]


class _Compiled:
    """The :class:`ProductSum` terms of a tiling's quantities, built once."""

    def __init__(self, t: GemmTiling):
        ns = t.ns
        self.reloads = []
        for name in ("A", "B"):
            op = t.operand(name)
            j = t._innermost(op.dims)
            scale = t._inner_constant(op.dims, j) * op.bits
            self.reloads.append((ProductSum(ns[: j + 1], t._extent_factors(op.dims, j)), math.prod(ns[j + 1:]), scale))
        z = t.operand("Z")
        j = t._innermost(z.dims)
        ext = t._extent_factors(z.dims, j)
        red = [i for i, d in enumerate(t.levels[: j + 1]) if d.name == t.reduction and d.n > 1]

        def indicator(which: str) -> list[Factor]:
            gs = list(ext)
            for i in red:
                n, base = t.levels[i].n, gs[i]
                if which == "last":
                    gs[i] = lambda x, base=base, n=n: base(x) if x == n - 1 else 0.0
                else:
                    gs[i] = lambda x, base=base: base(x) if x == 0 else 0.0
            return gs

        zns = ns[: j + 1]
        self.z_stride = math.prod(ns[j + 1:])
        self.z_scale = t._inner_constant(z.dims, j)
        self.z_all = ProductSum(zns, ext)
        self.z_first = ProductSum(zns, indicator("first"))
        self.z_last = ProductSum(zns, indicator("last"))
        self.z_bits, self.z_partial_bits = z.bits, t.z_partial_bits

        names = [d.name for d in t.levels]
        ip, iq, is_ = names.index("p"), names.index("q"), names.index("s")
        s = t.levels[is_]

        def factors(s_factor: Factor) -> list[Factor]:
            gs: list[Factor] = [_one] * len(ns)
            gs[ip] = t.levels[ip].unit_extent
            gs[iq] = t.levels[iq].unit_extent
            gs[is_] = s_factor
            return gs

        self.c_stream = ProductSum(ns, factors(s.unit_extent))
        self.c_first = ProductSum(ns, factors(lambda x: 1.0 if x == 0 else 0.0))
        self.c_last = ProductSum(ns, factors(lambda x, n=s.n: 1.0 if x == n - 1 else 0.0))
        self.pre = t.preload
        self.drain = t.drain
        self.head, self.tail, self.tiles = t.head_cycles, t.tail_cycles, t.tiles

    def prefix(self, t: int) -> dict[str, float]:
        (pa, sa, ka), (pb, sb, kb) = self.reloads
        started = -(-t // self.z_stride)
        ended = t // self.z_stride
        all_started = self.z_all(started)
        all_ended = self.z_all(ended)
        final = self.z_last(ended)
        compute = self.c_stream(t) + self.pre * self.c_first(t) + self.drain * self.c_last(t)
        if t > 0:
            compute += self.head
        if t >= self.tiles:
            compute += self.tail
        return {
            "a_bits": pa(-(-t // sa)) * ka,
            "b_bits": pb(-(-t // sb)) * kb,
            "z_read_bits": (all_started - self.z_first(started)) * self.z_scale * self.z_partial_bits,
            "z_final_bits": final * self.z_scale * self.z_bits,
            "z_partial_bits": (all_ended - final) * self.z_scale * self.z_partial_bits,
            "compute_cycles": compute,
        }


@dataclass(frozen=True)
class GemmShape:
    """What the tiler needs to know about one GEMM op on one machine."""

    m: int
    n: int
    k: int
    count: int
    plan: FoldPlan
    macs_per_pe: int
    a_bits: float        # per element, unique density included
    b_bits: float
    out_bits: float      # per element, output density included
    acc_bits: float      # per partial-sum element (output density included)
    fold_overlap: bool = False
    write_output: bool = True  # false: the finished output streams to a fused consumer on chip


def _min_chunk(plan: FoldPlan) -> int:
    return min(plan.streamed, max(plan.rows, plan.cols))


class TileFitError(ValueError):
    """Not even one fold of an op fits a buffer (``buffer`` names it)."""

    def __init__(self, message: str, buffer: str):
        super().__init__(message)
        self.buffer = buffer


@dataclass(frozen=True)
class Capacity:
    """Bits of half of each double-buffered buffer."""

    ifmap: float
    filter: float
    ofmap: float

    def half(self, buffer: str) -> float:
        return getattr(self, buffer)


class _Mapper:
    """The dimensions and operands of one GEMM shape, for fit checks without building tilings."""

    def __init__(self, shape: GemmShape):
        plan = shape.plan
        self.shape = shape
        roles = _ROLES[plan.dataflow]
        sizes = {"m": shape.m, "n": shape.n, "k": shape.k}
        r = shape.macs_per_pe
        simd = SIMD_AXES[plan.simd]
        self.per_unit = {
            "p": plan.rows * (r if roles["p"] == simd else 1),
            "q": plan.cols * (r if roles["q"] == simd else 1),
            "s": r if roles["s"] == simd else 1,
        }
        self.units = {"p": plan.row_folds, "q": plan.col_folds, "s": plan.streamed}
        self.elements = {d: sizes[roles[d]] for d in ("p", "q", "s")}
        self.os = plan.dataflow == "os"
        self.roles = roles
        self.operands = (
            Operand("A", "ifmap", ("c",) + roles["A"], shape.a_bits, shape.a_bits),
            Operand("B", "filter", ("c",) + roles["B"], shape.b_bits, shape.b_bits),
            Operand(
                "Z", "ofmap", ("c",) + roles["Z"], shape.out_bits if shape.write_output else 0.0,
                shape.out_bits if self.os else shape.acc_bits,
            ),
        )

    def extent(self, d: str, block: int) -> int:
        if d == "c":
            return 1
        return min(block * self.per_unit[d], self.elements[d])

    def slice_bits(self, op: Operand, blocks: dict[str, int]) -> float:
        return math.prod(self.extent(d, blocks.get(d, 1)) for d in op.dims) * op.footprint_bits

    def overflow(self, blocks: dict[str, int], cap: Capacity) -> Operand | None:
        for op in self.operands:
            if self.slice_bits(op, blocks) > cap.half(op.buffer):
                return op
        return None

    def max_block(self, blocks: dict[str, int], d: str, cap: Capacity, lo: int = 1) -> int:
        """Largest block of ``d`` (>= ``lo``) with every slice fitting, the other blocks fixed;
        0 if not even ``lo`` fits."""
        trial = dict(blocks)
        trial[d] = lo
        if self.overflow(trial, cap) is not None:
            return 0
        best = self.units[d]
        for op in self.operands:
            if d not in op.dims:
                continue
            others = math.prod(self.extent(e, blocks.get(e, 1)) for e in op.dims if e != d) * op.footprint_bits
            if others * self.elements[d] <= cap.half(op.buffer):
                continue
            per_block = others * self.per_unit[d]
            best = min(best, int(cap.half(op.buffer) // per_block))
        return max(best, lo)

    def balanced(self, d: str, block: int) -> int:
        """The same number of blocks, made as even as possible (``⌈U / ⌈U / b⌉⌉``): a short edge
        tile after full ones would leave the next full tile's load unhidden."""
        units = self.units[d]
        return -(-units // -(-units // block))

    def build(self, order: tuple[str, str], bp: int, bq: int, bs: int) -> GemmTiling:
        shape, plan = self.shape, self.shape.plan
        blocks = {"p": self.balanced("p", bp), "q": self.balanced("q", bq), "s": self.balanced("s", bs)}
        dims = {d: Dim(d, self.units[d], blocks[d], self.elements[d], self.per_unit[d]) for d in ("p", "q", "s")}
        levels = (Dim("c", shape.count, 1, shape.count, 1),) + tuple(dims[d] for d in order) + (dims["s"],)
        rows, cols = plan.rows, plan.cols
        preload, drain = (0 if self.os else rows), rows + cols - 2
        saving = overlap_saving(plan) if shape.fold_overlap else 0
        head = tail = 0
        if self.os:
            drain, tail = drain - saving, saving
        else:
            preload, head = preload - saving, saving
        return GemmTiling(
            plan=plan, count=shape.count, levels=levels, operands=self.operands, reduction=self.roles["red"],
            preload=preload, drain=drain, z_partial_bits=shape.acc_bits, head_cycles=head, tail_cycles=tail,
        )


def tile_gemm(shape: GemmShape, cap: Capacity) -> GemmTiling:
    """Pick the tiling of ``shape`` with the least DRAM traffic (then fewest tiles) that fits ``cap``.

    Candidates, for both loop orders (outer, inner) of ``p`` and ``q``: whole-fold tiles with the
    outer block as large as fits and the inner block as large as then fits; whole-fold tiles with
    the inner dimension whole (its operand then stays in the buffer) and the outer block as large
    as then fits; each of these with either block cut to one fold; one-fold chunks as long as
    fit. Among the tilings with the least traffic the one with the most tiles wins: smaller tiles
    overlap their loads and write-backs with compute better. Raises :class:`TileFitError` when not
    even one fold with a chunk of ``min(T, max(R, C))`` streamed cycles fits.
    """
    mp = _Mapper(shape)
    plan = shape.plan
    T = plan.streamed
    cands: list[GemmTiling] = []
    for order in (("p", "q"), ("q", "p")):
        outer, inner = order
        full = mp.units[inner]
        for b_out, b_in in (
            # the outer block as large as fits, then the inner one
            (b := mp.max_block({inner: 1, "s": T}, outer, cap), b and mp.max_block({outer: b, "s": T}, inner, cap)),
            # the inner dimension whole (its operand stays in the buffer), the outer as large as fits
            (mp.max_block({inner: full, "s": T}, outer, cap), full),
        ):
            if not b_out or not b_in:
                continue
            # the same traffic in more, smaller tiles overlaps loads and writes with compute better:
            # an operand reloaded every tile anyway, or one that never reloads, does not care
            for bo, bi in ((b_out, b_in), (b_out, 1), (1, b_in), (1, 1)):
                bl = {outer: bo, inner: bi}
                cands.append(mp.build(order, bl["p"], bl["q"], T))
        lo = _min_chunk(plan)
        bs = mp.max_block({"p": 1, "q": 1}, "s", cap, lo)
        if bs:
            cands.append(mp.build(order, 1, 1, bs))
    if not cands:
        blocks = {"p": 1, "q": 1, "s": _min_chunk(plan)}
        op = mp.overflow(blocks, cap)
        assert op is not None
        need = mp.slice_bits(op, blocks) * 2 / KIB_BITS
        have = cap.half(op.buffer) * 2 / KIB_BITS
        what = {"A": "operand A", "B": "operand B", "Z": "output"}[op.name]
        raise TileFitError(
            f"one {plan.rows}x{plan.cols} fold needs {need:.3g} KiB of {op.buffer} buffer ({what} "
            f"slice of {_min_chunk(plan)} streamed cycles, double-buffered), the buffer has {have:.3g} KiB",
            op.buffer,
        )
    return min(cands, key=lambda t: (round(t.dram_bits()), -t.tiles))


# ------------------------------------------------------------------------------------------------
# event grouping


def event_boundaries(tiles: int, max_events: int | None) -> list[int]:
    """Tile indices where event-tiles start, plus ``tiles`` at the end.

    With ``max_events=None`` (or few tiles) every SRAM tile is its own event. Otherwise runs of
    tiles are grouped with sizes ``1, 1, 2, 4, …, G, G, …, G, …, 4, 2, 1, 1``: the pipeline fills
    and drains tile by tile, and in between a group of ``g`` consecutive tiles is one load, one
    compute and one write-back event carrying the sums of its tiles (``G`` a power of two chosen
    so that about ``max_events`` events remain). In steady state the array and DRAM are busy for
    the same sums either way; only the fill/drain ramps can differ, by less than one group.
    """
    if max_events is None or tiles <= max_events:
        return list(range(tiles + 1))
    ramp_budget = max_events // 2
    g = 1
    while tiles / (2 * g) > ramp_budget:
        g *= 2
    head: list[int] = [1, 1]
    while head[-1] * 2 <= g:
        head.append(head[-1] * 2)
    sizes_head = head
    sizes_tail = list(reversed(head))
    used = sum(sizes_head) + sum(sizes_tail)
    while used > tiles and sizes_head:
        # small op: shrink the ramps
        sizes_head.pop()
        if sizes_tail:
            sizes_tail.pop(0)
        used = sum(sizes_head) + sum(sizes_tail)
    middle = tiles - used
    big = g if sizes_head else 1
    sizes = sizes_head + [big] * (middle // big)
    if middle % big:
        sizes.append(middle % big)
    sizes += sizes_tail
    out = [0]
    for s in sizes:
        out.append(out[-1] + s)
    assert out[-1] == tiles
    return out


# ------------------------------------------------------------------------------------------------
# streams (rescale and vector)


@dataclass(frozen=True)
class StreamPass:
    """``tiles`` tiles over ``elements`` elements, ``tile_elements`` per full tile."""

    name: str
    elements: int
    tile_elements: int
    load_bits_per_element: float
    write_bits_per_element: float
    cycles_per_element: int      # lane-cycles per element
    lanes: int

    @property
    def tiles(self) -> int:
        return -(-self.elements // self.tile_elements)

    def prefix(self, t: int) -> tuple[float, float, int]:
        """(bits loaded, bits written, compute cycles) of the first ``t`` tiles."""
        n = self.tiles
        t = max(0, min(t, n))
        full = min(t, n - 1)
        elems = full * self.tile_elements
        cycles = full * -(-self.tile_elements * self.cycles_per_element // self.lanes)
        if t == n:
            last = self.elements - (n - 1) * self.tile_elements
            elems += last
            cycles += -(-last * self.cycles_per_element // self.lanes)
        return elems * self.load_bits_per_element, elems * self.write_bits_per_element, cycles


def stream_tile_elements(
    elements: int, lanes: int, in_bits: float, out_bits: float, cap: Capacity,
) -> int:
    """Largest tile (a multiple of ``lanes`` when that fits) whose inputs fit half of ``ifmap``
    and outputs half of ``ofmap``; 0 if not one element fits."""
    fit = elements
    if in_bits > 0:
        fit = min(fit, int(cap.ifmap // in_bits))
    if out_bits > 0:
        fit = min(fit, int(cap.ofmap // out_bits))
    if fit >= elements:
        return elements
    if fit >= lanes:
        return fit - fit % lanes
    return fit
