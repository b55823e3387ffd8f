"""The discrete-event replay (accelsim.sim.engine): whole-timeline asserts on toy cases, the tiler's
closed-form sums against a tile-by-tile reference, invariants on shipped workloads, errors."""

from __future__ import annotations

import itertools
import math
import random
import time
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim import api
from accelsim.errors import InputError, UnsupportedOpError
from accelsim.hw.machine import Machine
from accelsim.sim.closed_form import time_step
from accelsim.sim.engine import MAX_TILE_EVENTS, plan_ops, simulate_step, unit_busy_cycles
from accelsim.sim.fold import plan_gemm
from accelsim.sim.tiling import Capacity, GemmShape, GemmTiling, _Mapper, event_boundaries, tile_gemm
from accelsim.spec.models import HardwareSpec
from accelsim.trace import GemmOp, RescaleOp, Trace, VectorOp

from conftest import HWCONFIGS, WORKLOADS


def machine(rows=4, cols=4, dataflow="os", ifmap=1.0, filt=1.0, ofmap=1.0, gbps=128.0, latency_ns=0.0,
            overlap=False, modes=None, lanes=4, rescale_latency=0) -> Machine:
    """A toy machine at 1 GHz (so ``gbps`` is bits per cycle)."""
    return Machine(HardwareSpec.model_validate({
        "version": 1, "name": "toy", "clock_ghz": 1.0,
        "array": {"rows": rows, "cols": cols, "dataflow": dataflow, "fold_overlap": overlap,
                  "modes": modes or {"fp16xfp16": 1, "int4xint4": 1}},
        "rescale": {"lanes": lanes, "latency_cycles": rescale_latency}, "vector": {"lanes": lanes},
        "sram": {"ifmap_kib": ifmap, "filter_kib": filt, "ofmap_kib": ofmap},
        "dram": {"bandwidth_gbps": gbps, "latency_ns": latency_ns},
    }), "toy.yaml")


def gemm(m, n, k, a="fp16", b="fp16", out="fp16", acc="fp32", deps=(), layer="l", phase="fwd", count=1) -> GemmOp:
    return GemmOp(layer, phase, m, n, k, a, b, acc, out, count=count, deps=deps)


def timeline(log):
    return sorted(log, key=lambda e: (e[3], e[0], e[1], e[2]))


BITS = 1 / 8192  # one bit, in KiB


# ------------------------------------------------------------------------------------------------
# whole timelines


def test_double_buffering_hides_loads_when_dram_keeps_up():
    """Tile i+1 loads while tile i computes; only the first load and the last write are exposed.

    GEMM 12x4x16 on a 4x4 os array in fp16: three folds of 16 + 4 + 4 − 2 = 22 cycles. Half of the
    ifmap buffer holds one fold's rows of A (4·16·16 = 1024 bits), so each fold is a tile; B
    (1024 bits) fits once and is loaded with the first tile; each output tile is 256 bits.
    At 128 bits per cycle: load 0 takes 16 cycles, loads 1 and 2 take 8, writes take 2 (4 while
    sharing the bus with load 2).
    """
    m = machine(ifmap=2048 * BITS, filt=2048 * BITS, ofmap=512 * BITS)
    log: list = []
    step = simulate_step(Trace("t", (gemm(12, 4, 16),)), m, log=log)
    assert timeline(log) == [
        (0, "load", 0, 0, 16),
        (0, "compute", 0, 16, 38),
        (0, "load", 1, 16, 24),
        (0, "compute", 1, 38, 60),
        (0, "load", 2, 38, 48),
        (0, "write", 0, 38, 42),
        (0, "compute", 2, 60, 82),
        (0, "write", 1, 60, 62),
        (0, "write", 2, 82, 84),
    ]
    r = step.ops[0]
    assert (r.compute_cycles, r.total_cycles, r.stall_cycles) == (66, 84, 18)
    assert step.cycles == 84 and step.model == "event"


def test_slow_dram_exposes_loads():
    """The same GEMM at 16 bits per cycle: every load takes longer than a fold, so the array waits;
    transfers in flight together split the bandwidth (load 1 and write 0 from cycle 150)."""
    m = machine(ifmap=2048 * BITS, filt=2048 * BITS, ofmap=512 * BITS, gbps=16)
    log: list = []
    step = simulate_step(Trace("t", (gemm(12, 4, 16),)), m, log=log)
    assert timeline(log) == [
        (0, "load", 0, 0, 128),
        (0, "compute", 0, 128, 150),
        (0, "load", 1, 128, 208),     # 352 bits alone, 256 shared with write 0, 416 alone
        (0, "write", 0, 150, 182),
        (0, "compute", 1, 208, 230),
        (0, "load", 2, 208, 288),
        (0, "write", 1, 230, 262),
        (0, "compute", 2, 288, 310),
        (0, "write", 2, 310, 326),
    ]
    r = step.ops[0]
    # DRAM is never idle except during the last tile's compute: bits / bandwidth + 22
    assert (r.compute_cycles, r.stall_cycles, r.total_cycles) == (66, 260, (4096 + 768) // 16 + 22)


def test_latency_delays_each_landing_but_is_pipelined():
    """With 10 ns of DRAM latency (10 cycles) data lands 10 cycles after its last bit; the next
    transfer starts at once (latency does not hold the bus)."""
    m = machine(ifmap=2048 * BITS, filt=2048 * BITS, ofmap=512 * BITS, latency_ns=10)
    log: list = []
    simulate_step(Trace("t", (gemm(12, 4, 16),)), m, log=log)
    assert timeline(log)[:4] == [
        (0, "load", 0, 0, 26),
        (0, "load", 1, 16, 34),
        (0, "compute", 0, 26, 48),
        (0, "compute", 1, 48, 70),
    ]


def test_stalls_equal_closed_form_when_dram_bound():
    """A DRAM-bound GEMM whose output dominates the traffic: the bus never idles, so the event
    model's stall equals closed_form.time_step's (DRAM cycles − compute cycles).

    64x4x4 int4 x int4 -> fp32 on a 4x4 os array, 4 bits per cycle: 16 folds of 4 + 6 = 10 cycles;
    A 1024 bits, B 64 bits (once), output 8192 bits; one output fold per tile (half the ofmap
    buffer is 512 bits). 9280 bits / 4 = 2320 cycles.
    """
    m = machine(ofmap=1024 * BITS, gbps=4)
    trace = Trace("t", (gemm(64, 4, 4, "int4", "int4", "fp32"),))
    event, closed = simulate_step(trace, m), time_step(trace, m)
    assert event.ops[0].dram_read_bits + event.ops[0].dram_write_bits == 9280
    assert (event.ops[0].total_cycles, event.ops[0].stall_cycles) == (2320, 2160)
    assert (event.ops[0].total_cycles, event.ops[0].stall_cycles) == (closed.ops[0].total_cycles, closed.ops[0].stall_cycles)


def test_independent_ops_overlap_on_different_units_and_share_dram():
    """A GEMM and an independent ReLU run at once on the array and the vector unit, splitting the
    bandwidth while both move data; a ReLU depending on both starts when the later one is done.

    The ReLU streams 64 fp16 elements in tiles of 16 (half the ofmap buffer is 256 bits): each
    tile loads and writes 256 bits and computes 16 / 4 lanes = 4 cycles. The GEMM is the one of
    test_double_buffering_hides_loads_when_dram_keeps_up; its first load (2048 bits) takes 32
    cycles instead of 16: it gets half the bus while one ReLU transfer runs, a third while two do
    (cycles 8 to 20), all of it from cycle 28.
    """
    m = machine(ifmap=2048 * BITS, filt=2048 * BITS, ofmap=512 * BITS, lanes=4)
    ops = (
        gemm(12, 4, 16),
        VectorOp("v", "fwd", 64, "relu", "fp16"),
        VectorOp("w", "fwd", 48, "relu", "fp16", deps=(0, 1)),
    )
    log: list = []
    step = simulate_step(Trace("t", ops), m, log=log)
    assert timeline(log) == [
        (0, "load", 0, 0, 32),
        (1, "load", 0, 0, 4),
        (1, "compute", 0, 4, 8),
        (1, "load", 1, 4, 8),
        (1, "compute", 1, 8, 12),
        (1, "load", 2, 8, 14),
        (1, "write", 0, 8, 14),
        (1, "compute", 2, 14, 18),
        (1, "load", 3, 14, 20),
        (1, "write", 1, 14, 20),
        (1, "compute", 3, 20, 24),
        (1, "write", 2, 20, 24),
        (1, "write", 3, 24, 28),
        (0, "compute", 0, 32, 54),
        (0, "load", 1, 32, 40),
        (0, "compute", 1, 54, 76),
        (0, "load", 2, 54, 64),
        (0, "write", 0, 54, 58),
        (0, "compute", 2, 76, 98),
        (0, "write", 1, 76, 78),
        (0, "write", 2, 98, 100),
        (2, "load", 0, 100, 102),
        (2, "compute", 0, 102, 106),
        (2, "load", 1, 102, 104),
        (2, "compute", 1, 106, 110),
        (2, "load", 2, 106, 110),
        (2, "write", 0, 106, 110),
        (2, "compute", 2, 110, 114),
        (2, "write", 1, 110, 112),
        (2, "write", 2, 114, 116),
    ]
    assert [(r.start_cycle, r.total_cycles) for r in step.ops] == [(0, 100), (0, 28), (100, 16)]
    assert step.cycles == 116


def test_unit_queue_serves_ready_ops_in_trace_order():
    """Two ready vector ops queue for the one vector unit: the lower index runs first."""
    m = machine()
    ops = (VectorOp("a", "fwd", 16, "relu", "fp16"), VectorOp("b", "fwd", 16, "relu", "fp16"))
    step = simulate_step(Trace("t", ops), m)
    a, b = step.ops
    assert a.start_cycle == 0 and b.start_cycle == a.start_cycle + a.total_cycles


def test_rescale_reduction_pass_then_requantize_pass():
    """A rescale with a max reduction streams its input twice when it does not fit half of the
    ifmap buffer (the reduction pass, then the requantize pass writing both TPR copies); compute is
    elements x (copies + 1) / lanes plus the latency once."""
    m = machine(ifmap=512 * BITS, ofmap=4096 * BITS, lanes=4, rescale_latency=3)
    op = RescaleOp("l", "bwd_data", 64, "fp16", "fp4r4", "max", copies=2)
    step = simulate_step(Trace("t", (op,)), m)
    r = step.ops[0]
    assert r.compute_cycles == 64 * 3 // 4 + 3
    assert r.dram_read_bits == 2 * 64 * 16           # read twice: 1024 bits > 256 per half
    assert r.dram_write_bits == 2 * 64 * 4
    assert r.counts.rescale_elements == 64 * 3
    # with room for the whole tensor the requantize pass reads it from SRAM
    big = simulate_step(Trace("t", (op,)), machine(ifmap=4096 * BITS, ofmap=4096 * BITS, rescale_latency=3))
    assert big.ops[0].dram_read_bits == 64 * 16


def test_fused_epilogue_keeps_its_tensor_on_chip():
    """Elementwise ops fused onto their producer (accelsim.sim.fusion, the closed form's rule):
    GEMM -> ReLU -> ReLU backward stream on chip; only the ReLU mask (a 4-bit stash, read at its
    own width) and the last output cross DRAM."""
    m = machine()
    ops = (gemm(16, 16, 16), VectorOp("l", "fwd", 256, "relu", "fp16", deps=(0,)),
           VectorOp("l", "bwd_data", 256, "relu_bwd", "fp16", deps=(1,), aux_format="uint4"))
    step = simulate_step(Trace("t", ops), m)
    g, relu, back = step.ops
    assert (g.dram_write_bits, relu.dram_read_bits, relu.dram_write_bits) == (0, 0, 0)
    assert (back.dram_read_bits, back.dram_write_bits) == (256 * 4, 256 * 16)
    closed = time_step(Trace("t", ops), m)
    assert [(r.dram_read_bits, r.dram_write_bits) for r in step.ops] == [(r.dram_read_bits, r.dram_write_bits) for r in closed.ops]


# ------------------------------------------------------------------------------------------------
# tiler: closed-form prefix sums against a tile-by-tile reference


def _reference(t: GemmTiling) -> list[dict[str, float]]:
    """Walk every tile: an operand is fetched when the tile needs a different slice than the one
    in its buffer; an output slice is written when the nest leaves it (partial if revisited later)
    and read back when revisited."""
    levels = t.levels
    names = [d.name for d in levels]
    tiles = list(itertools.product(*[range(d.n) for d in levels]))

    def key(op, dg):
        return tuple(dg[names.index(d)] for d in op.dims)

    def elems(op, dg):
        return math.prod(levels[names.index(d)].element_extent(dg[names.index(d)]) for d in op.dims)

    z = t.operand("Z")
    last = {key(z, dg): i for i, dg in enumerate(tiles)}
    rows, prev, seen = [], {}, set()
    for i, dg in enumerate(tiles):
        r = dict.fromkeys(("a_bits", "b_bits", "z_read_bits", "z_final_bits", "z_partial_bits", "compute_cycles"), 0.0)
        for name, q in (("A", "a_bits"), ("B", "b_bits")):
            op = t.operand(name)
            if prev.get(name) != key(op, dg):
                r[q] += elems(op, dg) * op.bits
            prev[name] = key(op, dg)
        zk = key(z, dg)
        if (i == 0 or key(z, tiles[i - 1]) != zk) and zk in seen:
            r["z_read_bits"] += elems(z, dg) * t.z_partial_bits
        seen.add(zk)
        if i == len(tiles) - 1 or key(z, tiles[i + 1]) != zk:
            if last[zk] > i:
                r["z_partial_bits"] += elems(z, dg) * t.z_partial_bits
            else:
                r["z_final_bits"] += elems(z, dg) * z.bits
        p, q, s = (levels[names.index(d)] for d in "pqs")
        ds = dg[names.index("s")]
        folds = p.unit_extent(dg[names.index("p")]) * q.unit_extent(dg[names.index("q")])
        c = folds * s.unit_extent(ds)
        if ds == 0:
            c += folds * t.preload
        if ds == s.n - 1:
            c += folds * t.drain
        r["compute_cycles"] = c + (t.head_cycles if i == 0 else 0) + (t.tail_cycles if i == len(tiles) - 1 else 0)
        rows.append(r)
    return rows


def _check_prefix(t: GemmTiling) -> None:
    rows = _reference(t)
    acc = dict.fromkeys(rows[0], 0.0)
    for i in range(len(rows) + 1):
        fast = t.prefix(i)
        for k, v in acc.items():
            assert fast[k] == pytest.approx(v, rel=1e-9, abs=1e-9), (i, k, t.order, t.block)
        if i < len(rows):
            for k in acc:
                acc[k] += rows[i][k]


def test_tiling_prefix_sums_match_tile_by_tile_reference():
    """Every quantity of every prefix of tiles, for random GEMMs, tilings, dataflows, SIMD axes, fold
    overlaps and densities, equals the tile-by-tile walk (the fast path is a digit sum over the loop nest)."""
    rng = random.Random(7)
    checked = 0
    while checked < 150:
        m, n, k = (rng.randint(1, 40) for _ in range(3))
        rows, cols, df, rate = rng.choice([1, 2, 3, 4]), rng.choice([1, 2, 3, 4]), rng.choice(["os", "ws", "is"]), rng.choice([1, 2, 4])
        plan = plan_gemm(m, n, k, rows, cols, df, rate, rng.choice(["reduction", "output_cols", "output_rows"]))
        shape = GemmShape(m, n, k, rng.choice([1, 2, 3]), plan, rate, rng.choice([4.0, 2.0, 16.0]), rng.choice([4.0, 16.0]),
                          rng.choice([16.0, 8.0]), 32.0, rng.random() < 0.5)
        mp = _Mapper(shape)
        whole = rng.random() < 0.5
        bp, bq = (rng.randint(1, plan.row_folds), rng.randint(1, plan.col_folds)) if whole else (1, 1)
        bs = plan.streamed if whole else rng.randint(1, plan.streamed)
        t = mp.build(rng.choice([("p", "q"), ("q", "p")]), bp, bq, bs)
        if t.tiles <= 400:
            _check_prefix(t)
            checked += 1


def test_compute_cycles_are_scalesim_count_and_fold_overlap_formula():
    """compute = plan.cycles·count; with fold_overlap each fold but the first saves min(R, R + C − 2)
    cycles of stationary-operand preload (ws/is), or min(T, R) + C − 2 of fill and drain (os, with
    double-buffered accumulators: 6 folds of 7 + 6 cycles run 7 cycles apart, 5·7 + 13 = 48)."""
    op = gemm(10, 6, 7)  # ws on 4x4: 2 x 2 folds of 2·4 + 4 + 10 − 2 = 20 cycles
    for df, off, on in (("ws", 80, 80 - 3 * 4), ("is", 96, 96 - 5 * 4), ("os", 78, 78 - 5 * 6)):
        plain = simulate_step(Trace("t", (op,)), machine(dataflow=df)).ops[0].compute_cycles
        overlapped = simulate_step(Trace("t", (op,)), machine(dataflow=df, overlap=True)).ops[0].compute_cycles
        assert (plain, overlapped) == (off, on)
    two = simulate_step(Trace("t", (replace(op, count=3),)), machine(dataflow="ws", overlap=True)).ops[0]
    assert two.compute_cycles == 12 * 20 - 11 * 4  # repetitions keep overlapping


def test_tiler_counts_refetches_and_prefers_less_traffic():
    """Each operand crosses DRAM once when it fits; otherwise the tiler picks the loop order that
    refetches the cheaper operand, and the refetches are counted."""
    plan = plan_gemm(64, 64, 16, 4, 4, "os", 1)   # 16 x 16 folds, T = 16
    shape = GemmShape(64, 64, 16, 1, plan, 1, 16.0, 16.0, 16.0, 32.0)
    a, b, z = 64 * 16 * 16, 16 * 64 * 16, 64 * 64 * 16
    roomy = tile_gemm(shape, Capacity(1e9, 1e9, 1e9))
    assert roomy.dram_bits() == a + b + z
    assert roomy.tiles == 16  # the same traffic in finer tiles: B stays, one row of folds per tile
    # half of ifmap holds half of A (8 row folds), half of filter a quarter of B (4 column folds):
    # rows outer reads A once and B twice (a + 2b); columns outer would read B once, A 4 times
    tight = tile_gemm(shape, Capacity(a / 2, b / 4, 1e9))
    tot = tight.totals()
    assert tight.order == ("p", "q", "s") and (tot["a_bits"], tot["b_bits"], tot["z_final_bits"]) == (a, 2 * b, z)


def test_event_grouping_ramps_and_bounds():
    """Few tiles: one event each. Many: 1, 1, 2, 4, … up, a bounded middle, … 4, 2, 1, 1 down."""
    assert event_boundaries(5, 48) == [0, 1, 2, 3, 4, 5]
    for tiles in (49, 100, 1000, 10**6, 10**9):
        b = event_boundaries(tiles, 48)
        sizes = [y - x for x, y in zip(b, b[1:])]
        assert b[0] == 0 and b[-1] == tiles and min(sizes) >= 1
        assert sizes[:2] == [1, 1] and sizes[-2:] == [1, 1]
        assert len(sizes) <= 48 + 2 * 32


def test_grouped_events_agree_with_tile_by_tile_replay():
    """Grouping long runs of tiles into events is a coarsening, not an exact merge: it changes
    the makespan of a real step by well under 1 % (a group's loads are one transfer, so the ramps
    overlap a little differently), and a uniform DRAM-bound op alone by about 0.1 %."""
    setup = api.prepare(WORKLOADS / "resnet18.yaml", HWCONFIGS / "int4-16x16-membound.yaml", sets=["data.batch_size=2"])
    trace = api.build_traces(setup.network, "training", api.StepPlan(((2, 1),)), setup.policy)[0]
    grouped = simulate_step(trace, setup.machine)
    every = simulate_step(trace, setup.machine, max_tile_events=None)
    assert grouped.cycles == pytest.approx(every.cycles, rel=0.01)
    for a, b in zip(grouped.ops, every.ops):  # same work and traffic, only timing differs
        assert (a.compute_cycles, a.dram_read_bits, a.dram_write_bits) == (b.compute_cycles, b.dram_read_bits, b.dram_write_bits)
    uniform = Trace("t", (gemm(4096, 4, 64, "int4", "int4", "fp16"),))
    m = machine(ifmap=4 * 64 * 4 * 2 * BITS, ofmap=1024 * BITS, gbps=8)
    assert simulate_step(uniform, m).cycles == pytest.approx(simulate_step(uniform, m, max_tile_events=None).cycles, rel=0.002)


def test_tile_events_is_a_hardware_file_setting(tmp_path):
    """`simulation.tile_events` in the hardware file (or --set) bounds the events per run of
    tiles; null replays tile by tile: the same result as asking the engine for it directly."""
    log_default: list = []
    log_fine: list = []
    setup = api.prepare(WORKLOADS / "resnet18.yaml", HWCONFIGS / "int4-16x16-membound.yaml", sets=["data.batch_size=2"])
    fine = api.prepare(WORKLOADS / "resnet18.yaml", HWCONFIGS / "int4-16x16-membound.yaml",
                       sets=["data.batch_size=2", "simulation.tile_events=null"])
    assert setup.machine.spec.simulation.tile_events == 48 and fine.machine.spec.simulation.tile_events is None
    assert fine.baseline_machine.spec.simulation.tile_events is None          # the baseline follows
    trace = api.build_traces(setup.network, "training", api.StepPlan(((2, 1),)), setup.policy)[0]
    a = simulate_step(trace, setup.machine, log=log_default)
    b = simulate_step(trace, fine.machine, log=log_fine)
    assert b == simulate_step(trace, setup.machine, max_tile_events=None)
    assert len(log_fine) > len(log_default) and a.cycles != b.cycles
    with pytest.raises(InputError, match="simulation.tile_events"):
        api.prepare(WORKLOADS / "resnet18.yaml", HWCONFIGS / "int4-16x16-membound.yaml", sets=["simulation.tile_events=1"])


def test_events_depend_on_tiles_not_macs():
    """A GEMM a million times larger has more tiles but no more events, and replays as fast."""
    m = machine(rows=32, cols=32, ifmap=256, filt=256, ofmap=128, gbps=512)
    cap = Capacity(256 * 4096, 256 * 4096, 128 * 4096)
    small = plan_ops(Trace("t", (gemm(1024, 256, 256),)), m, cap)[0]
    huge = plan_ops(Trace("t", (gemm(1024 * 10**6, 256, 256),)), m, cap)[0]
    assert huge.tiles > 1000 * max(small.tiles, 1)
    assert len(huge.events) <= MAX_TILE_EVENTS + 2 * 32
    t0 = time.perf_counter()
    simulate_step(Trace("t", (gemm(1024 * 10**6, 256, 256),)), m)
    assert time.perf_counter() - t0 < 0.5


# ------------------------------------------------------------------------------------------------
# invariants on shipped workloads and machines


def _step(workload, hw, batch, baseline=False):
    setup = api.prepare(WORKLOADS / workload, HWCONFIGS / hw, sets=[f"data.batch_size={batch}"])
    policy = setup.baseline_policy if baseline else setup.policy
    m = setup.baseline_machine if baseline else setup.machine
    trace = api.build_traces(setup.network, "training", api.StepPlan(((batch, 1),)), policy)[0]
    return trace, m


CASES = [
    ("mlp-digits.yaml", "int4-32x32.yaml", 64, False),
    ("cnn-digits.yaml", "int4-16x16-membound.yaml", 32, False),
    ("cnn-digits.yaml", "int4-16x16-membound.yaml", 32, True),
    ("resnet18.yaml", "int4-32x32.yaml", 2, False),
    ("resnet18.yaml", "int4-32x32.yaml", 2, True),
    ("mobilenet-v2.yaml", "rapid-like.yaml", 2, False),
]


@pytest.mark.parametrize("workload, hw, batch, baseline", CASES)
def test_invariants(workload, hw, batch, baseline):
    """cycles ≥ ideal compute and ≥ DRAM bits / bandwidth; utilization ≤ 1; counts ≥ 0; GEMM
    compute is SCALE-Sim's count; DRAM traffic never below reading and writing each tensor once;
    counts add up; busy units fit in the step."""
    trace, m = _step(workload, hw, batch, baseline)
    step, closed = simulate_step(trace, m), time_step(trace, m)
    assert step.model == "event" and step.cycles == max(r.start_cycle + r.total_cycles for r in step.ops)
    assert step.counts.cycles == step.cycles
    for r, c in zip(step.ops, closed.ops):
        op = r.op
        assert r.total_cycles == r.compute_cycles + r.stall_cycles and r.stall_cycles >= 0
        assert r.total_cycles >= r.ideal_cycles and 0 <= r.utilization <= 1
        assert r.total_cycles >= (r.dram_read_bits + r.dram_write_bits) / m.dram_bits_per_cycle - 1
        assert r.dram_read_bits >= c.dram_read_bits and r.dram_write_bits >= c.dram_write_bits
        if isinstance(op, GemmOp):
            mode = m.mode_for(op.a_format, op.b_format)
            plan = plan_gemm(op.m, op.n, op.k, m.rows, m.cols, m.dataflow, mode.macs_per_pe_per_cycle)
            assert r.compute_cycles == plan.cycles * op.count == c.compute_cycles
            assert r.counts.macs[mode.name] == op.macs
        else:
            assert r.compute_cycles >= c.compute_cycles
    peak = max(m.peak_macs_per_cycle(mode) for mode in m.modes().values())
    assert step.cycles >= trace.macs() / peak
    assert step.cycles >= step.dram_bits / m.dram_bits_per_cycle - 1
    counts = step.counts
    assert counts.dram_read_bits == sum(r.dram_read_bits for r in step.ops)
    assert counts.dram_write_bits == sum(r.dram_write_bits for r in step.ops)
    assert counts.sram_write_bits["ifmap"] + counts.sram_write_bits["filter"] >= counts.dram_read_bits
    for name in ("macs", "accumulations", "sram_read_bits", "sram_write_bits", "vector_elements"):
        assert all(v >= 0 for v in getattr(counts, name).values())
    busy = unit_busy_cycles(step, m)
    assert all(0 <= busy[u] for u in busy)
    assert max(busy["array"], busy["rescale"], busy["vector"]) <= step.cycles
    assert busy["dram"] <= step.cycles + 1


def test_same_trace_same_result():
    trace, m = _step("resnet18.yaml", "int4-16x16-membound.yaml", 2)
    a, b = simulate_step(trace, m), simulate_step(trace, m)
    assert a == b and a.counts.as_dict() == b.counts.as_dict()
    assert [r.counts.as_dict() for r in a.ops] == [r.counts.as_dict() for r in b.ops]


@pytest.mark.parametrize("workload, hw, batch", [("resnet18.yaml", "int4-32x32.yaml", 2), ("cnn-digits.yaml", "int4-16x16-membound.yaml", 16)])
def test_more_bandwidth_never_costs_cycles(workload, hw, batch):
    trace, m = _step(workload, hw, batch)
    prev = None
    for gbps in (4, 16, 32, 64, 256, 1024, 8192):
        data = m.spec.model_dump()
        data["dram"]["bandwidth_gbps"] = gbps
        cycles = simulate_step(trace, Machine(HardwareSpec.model_validate(data), m.file)).cycles
        assert prev is None or cycles <= prev
        prev = cycles


_op = st.one_of(
    st.builds(lambda m, n, k, a, o: ("g", m, n, k, a, o), st.integers(1, 40), st.integers(1, 40), st.integers(1, 40),
              st.sampled_from(["fp16", "int4"]), st.sampled_from(["fp16", "fp32"])),
    st.builds(lambda e, v: ("v", e, v), st.integers(1, 3000), st.sampled_from(["relu", "add", "bn"])),
    st.builds(lambda e, r, c: ("r", e, r, c), st.integers(1, 3000), st.sampled_from(["max", "none"]), st.integers(1, 2)),
)


@settings(max_examples=40, deadline=None)
@given(specs=st.lists(_op, min_size=1, max_size=5), deps_seed=st.integers(0, 1000),
       df=st.sampled_from(["os", "ws", "is"]), ofmap=st.sampled_from([0.25, 1.0]))
def test_more_bandwidth_never_costs_cycles_random_traces(specs, deps_seed, df, ofmap):
    """Random small traces with random dependencies: doubling the bandwidth never adds cycles."""
    rng = random.Random(deps_seed)
    ops = []
    for i, s in enumerate(specs):
        deps = tuple(sorted(rng.sample(range(i), min(i, rng.randint(0, 2)))))
        if s[0] == "g":
            ops.append(gemm(*s[1:4], a=s[4], b=s[4], out=s[5], deps=deps))
        elif s[0] == "v":
            ops.append(VectorOp("l", "fwd", s[1], s[2], "fp16", deps))
        else:
            ops.append(RescaleOp("l", "fwd", s[1], "fp16", "int4", s[2], s[3], deps=deps))
    trace = Trace("t", tuple(ops))
    prev = None
    for gbps in (2, 4, 8, 16, 32, 64, 128, 256):
        cycles = simulate_step(trace, machine(dataflow=df, ofmap=ofmap, gbps=gbps, latency_ns=5)).cycles
        assert prev is None or cycles <= prev
        prev = cycles


# ------------------------------------------------------------------------------------------------
# 4-bit traffic and the memory-bound example


def test_four_bit_tensors_move_a_quarter_of_the_bits():
    """The same GEMM and vector op in int4 and fp16 on the memory-bound machine: operand traffic is
    a quarter (same tiling), so the 4-bit GEMM also waits far less for DRAM."""
    m = Machine(api.load_hardware(HWCONFIGS / "int4-16x16-membound.yaml"), "int4-16x16-membound.yaml")
    fp16 = simulate_step(Trace("t", (gemm(4096, 64, 64, out="fp16"),)), m).ops[0]
    int4 = simulate_step(Trace("t", (gemm(4096, 64, 64, "int4", "int4", out="int4"),)), m).ops[0]
    assert int4.dram_read_bits * 4 == fp16.dram_read_bits
    assert int4.dram_write_bits * 4 == fp16.dram_write_bits
    assert int4.stall_cycles < fp16.stall_cycles and int4.total_cycles * 2 < fp16.total_cycles


def test_activation_stash_is_read_at_its_own_width():
    """The weight-gradient GEMM reads the forward pass's 4-bit activation stash at 4 bits."""
    trace, m = _step("cnn-digits.yaml", "int4-32x32.yaml", 32)
    step = simulate_step(trace, m)
    wgrads = [r for r in step.ops if r.op.phase == "bwd_weight" and r.op.a_format in ("int4", "uint4")]
    assert wgrads
    for r in wgrads:
        tiling = plan_ops(Trace("t", (replace(r.op, deps=()),)), m, Capacity(*(m.sram_bits(b) / 2 for b in ("ifmap", "filter", "ofmap"))))[0].tiling
        assert tiling.operand("A").bits == pytest.approx(4 * r.op.a_tensor_elements / (r.op.m * r.op.k * r.op.count))


def test_memory_bound_example_stalls_in_both_precisions():
    """The shipped int4-16x16-membound machine (and its fp16 baseline) on resnet18: most of every
    op's time is memory stall in both precisions, and 4 bits still win by moving fewer bits."""
    setup = api.prepare(WORKLOADS / "resnet18.yaml", HWCONFIGS / "int4-16x16-membound.yaml", sets=["data.batch_size=4"])
    plan = api.StepPlan(((4, 1),))
    fractions, cycles = [], []
    for policy, m in ((setup.policy, setup.machine), (setup.baseline_policy, setup.baseline_machine)):
        step = simulate_step(api.build_traces(setup.network, "training", plan, policy)[0], m)
        fractions.append(step.stall_cycles / sum(r.total_cycles for r in step.ops))
        cycles.append(step.cycles)
    assert setup.baseline_hardware.name == "fp16-16x16-membound"
    assert min(fractions) > 0.5
    assert cycles[0] * 2 < cycles[1]


# ------------------------------------------------------------------------------------------------
# bad input


def test_op_the_hardware_cannot_run():
    m = machine(modes={"fp16xfp16": 1})
    trace = Trace("t", (gemm(8, 8, 8), gemm(8, 8, 8, "int4", "int4", layer="layer1.conv"), gemm(8, 8, 8, "int4", "int4")))
    with pytest.raises(UnsupportedOpError, match=r"toy.yaml: array.modes: op 1 \(layer1.conv fwd gemm\): hardware 'toy' "
                       r"has no mode for int4 x int4 \(its modes: fp16xfp16\)") as exc:
        simulate_step(trace, m)
    assert len(exc.value.problems) == 1  # one problem per operand pair


def test_sram_too_small_for_one_fold():
    m = machine(rows=32, cols=32, ifmap=0.5)
    op = gemm(256, 64, 576, layer="layer1.conv")
    trace = Trace("t", tuple([VectorOp("x", "fwd", 8, "relu", "fp16")] * 12 + [op]))
    with pytest.raises(InputError) as exc:
        simulate_step(trace, m)
    (problem,) = exc.value.problems
    assert (problem.file, problem.field) == ("toy.yaml", "sram.ifmap_kib")
    assert problem.message == (
        "op 12 (layer1.conv fwd gemm): one 32x32 fold needs 4 KiB of ifmap buffer (operand A slice of "
        "32 streamed cycles, double-buffered), the buffer has 0.5 KiB"
    )


# ------------------------------------------------------------------------------------------------
# plots from ops.csv rows


def test_timeline_and_utilization_plots_from_ops_rows(tmp_path):
    """The run-folder plots draw from ops.csv rows alone (strings, as csv.DictReader gives them)."""
    from accelsim.report.timeline import plots_from_ops

    rows, runs = [], {}
    for label, baseline in (("policy", False), ("baseline", True)):
        trace, m = _step("cnn-digits.yaml", "int4-16x16-membound.yaml", 16, baseline)
        step = simulate_step(trace, m)
        runs[label] = {"precision": trace.precision, "hardware": m.name, "cycles_per_step": step.cycles,
                       "dram_bits_per_cycle": m.dram_bits_per_cycle}
        for r in step.ops:
            rows.append({k: str(v) for k, v in {
                "run": label, "index": r.index, "layer": r.op.layer, "phase": r.op.phase, "kind": r.op.kind,
                "unit": r.unit, "start_cycle": r.start_cycle, "total_cycles": r.total_cycles,
                "compute_cycles": r.compute_cycles, "stall_cycles": r.stall_cycles, "macs": r.macs,
                "utilization": r.utilization, "dram_read_bits": r.dram_read_bits, "dram_write_bits": r.dram_write_bits,
            }.items()})
    summary = {"workload": "cnn-digits", "runs": runs}
    plots = plots_from_ops(rows, summary)
    assert [name for name, _ in plots] == ["timeline.png", "utilization.png"]
    for name, draw in plots:
        assert draw(tmp_path / name) is True
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert all(draw(tmp_path / "empty.png") is False for _, draw in plots_from_ops([], {}))
