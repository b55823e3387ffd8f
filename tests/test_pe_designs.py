"""PE designs: the SIMD axis of a mode (reduction, output columns, output rows) and fold overlap in
output-stationary arrays (double-buffered accumulators), by hand and through the event replay; the
defaults stay SCALE-Sim's count (tests/test_fold.py, tests/test_sim_scalesim.py)."""

from __future__ import annotations

import random

import pytest

from accelsim.errors import InputError
from accelsim.hw.machine import Machine
from accelsim.sim.closed_form import time_step
from accelsim.sim.engine import simulate_step
from accelsim.sim.fold import gemm_cycles, overlap_saving, plan_gemm, sram_accesses
from accelsim.sim.tiling import Capacity, GemmShape, tile_gemm
from accelsim.spec import load as spec_load
from accelsim.trace import Trace

from conftest import HW_TEXT, write
from test_sim_engine import BITS, gemm, machine, timeline

AXES = ("reduction", "output_cols", "output_rows")


@pytest.mark.parametrize(
    "dataflow, simd, folds, per_fold",
    [
        # GEMM 10x6x7 (M x N x K) on a 4x4 array at 4 MACs per PE per cycle
        # os: along K, T = ceil(7/4) = 2: 3 x 2 folds of 2 + 4 + 4 - 2 = 8
        ("os", "reduction", 6, 8),
        # os along N: Sc = ceil(6/4) = 2 -> one column fold; 3 row folds of 7 + 6 = 13
        ("os", "output_cols", 3, 13),
        # os along M: Sr = ceil(10/4) = 3 -> one row fold; 2 column folds of 13
        ("os", "output_rows", 2, 13),
        # ws along K: Sr = 2 -> 1 row fold, Sc = 6 -> 2; T = M = 10: 8 + 4 + 10 - 2 = 20
        ("ws", "reduction", 2, 20),
        # ws along N: Sc = 2 -> 1; Sr = K = 7 -> 2; T = 10: 20 per fold
        ("ws", "output_cols", 2, 20),
        # ws along M: the streamed dimension shortens, T = 3; Sr = 7 -> 2, Sc = 6 -> 2: 8 + 4 + 3 - 2 = 13
        ("ws", "output_rows", 4, 13),
        # is along K: Sr = 2 -> 1, Sc = M = 10 -> 3, T = N = 6: 8 + 4 + 6 - 2 = 16
        ("is", "reduction", 3, 16),
        # is along N: the streamed dimension shortens, T = 2; Sr = 7 -> 2, Sc = 10 -> 3: 12 per fold
        ("is", "output_cols", 6, 12),
        # is along M: Sc = 3 -> 1; Sr = 7 -> 2; T = 6: 16 per fold
        ("is", "output_rows", 2, 16),
    ],
)
def test_simd_axis_by_hand(dataflow, simd, folds, per_fold):
    plan = plan_gemm(10, 6, 7, 4, 4, dataflow, 4, simd)
    assert (plan.folds, plan.cycles_per_fold, plan.cycles) == (folds, per_fold, folds * per_fold)
    assert plan.simd == simd and plan.macs_per_pe == 4


def test_k576_on_a_32x32_os_array_at_8_macs_per_pe():
    """The issue's example: K = 576 (a 3x3 conv over 64 channels), M = N = 256, on rapid-like's
    32x32 os array. FP16: 64 folds of 576 + 62 = 638 cycles. INT4 at 8 MACs along the reduction:
    64 folds of 72 + 62 = 134, 4.76x (fill and drain 46 % of its cycles); along the output columns:
    8 folds of 638, the full 8x. With fold overlap on both machines (folds 576 or 72 cycles apart):
    63·576 + 638 = 36,926 and 63·72 + 134 = 4,670, 7.91x."""
    fp16 = plan_gemm(256, 256, 576, 32, 32, "os", 1)
    red = plan_gemm(256, 256, 576, 32, 32, "os", 8, "reduction")
    cols = plan_gemm(256, 256, 576, 32, 32, "os", 8, "output_cols")
    assert (fp16.cycles, red.cycles, cols.cycles) == (64 * 638, 64 * 134, 8 * 638)
    assert fp16.cycles / red.cycles == pytest.approx(4.761, abs=1e-3)
    assert red.folds * red.fill_drain_cycles / red.cycles == pytest.approx(0.463, abs=1e-3)
    assert fp16.cycles / cols.cycles == 8
    assert (gemm_cycles(fp16, 1, True), gemm_cycles(red, 1, True)) == (36_926, 4_670)
    assert gemm_cycles(fp16, 1, True) / gemm_cycles(red, 1, True) == pytest.approx(7.907, abs=1e-3)
    # through the event replay on a machine with those modes (roomy buffers and DRAM)
    modes = {"fp16xfp16": 1, "int4xint4": 8}
    for simd, overlap, expected in (("reduction", False, 8576), ("output_cols", False, 5104), ("reduction", True, 4670)):
        m = Machine(_spec(32, 32, "os", modes, overlap, {"int4xint4": simd}), "k576.yaml")
        r = simulate_step(Trace("t", (gemm(256, 256, 576, "int4", "int4", out="fp16", acc="int32"),)), m).ops[0]
        assert r.compute_cycles == expected


@pytest.mark.parametrize(
    "m, n, k, rows, cols, dataflow, saving, cycles",
    [
        # os, T = 7 >= R = 4: folds 7 cycles apart, saving 4 + 4 - 2 = 6; 6 folds: 5·7 + 13 = 48
        (10, 6, 7, 4, 4, "os", 6, 48),
        # os, T = 2 < R = 4: the next fold waits for the R = 4 outputs of a column to leave the
        # shadow accumulators, so folds are max(T, R) = 4 apart: saving min(2, 4) + 4 - 2 = 4;
        # 2 folds of 2 + 6 = 8: 4 + 8 = 12
        (8, 4, 2, 4, 4, "os", 4, 12),
        # os on one column: saving min(T, R) + C - 2 = 3 + 1 - 2 = 2; 3 folds of 3 + 3 + 1 - 2 = 5
        (9, 1, 3, 3, 1, "os", 2, 15 - 2 * 2),
        # ws: the next fold's R = 4 cycles of preload hide under the drain; 4 folds of 20
        (10, 6, 7, 4, 4, "ws", 4, 80 - 3 * 4),
        # is on one column: min(R, R + C - 2) = R - 1 = 3; Sr = 7 -> 2, Sc = 10 -> 10 folds of
        # 8 + 1 + 6 - 2 = 13
        (10, 6, 7, 4, 1, "is", 3, 20 * 13 - 19 * 3),
    ],
)
def test_fold_overlap_by_hand(m, n, k, rows, cols, dataflow, saving, cycles):
    plan = plan_gemm(m, n, k, rows, cols, dataflow)
    assert overlap_saving(plan) == saving
    assert gemm_cycles(plan, 1, True) == cycles
    assert gemm_cycles(plan, 1, False) == plan.cycles
    # repetitions keep overlapping: count·folds folds, each but the first saving the same
    assert gemm_cycles(plan, 3, True) == 3 * plan.cycles - (3 * plan.folds - 1) * saving
    if dataflow == "os":  # the closed form of the docstring
        assert cycles == (plan.folds - 1) * max(plan.streamed, rows) + plan.cycles_per_fold


def test_os_fold_overlap_whole_timeline():
    """The 12x4x16 GEMM of test_double_buffering_hides_loads_when_dram_keeps_up with fold overlap:
    3 folds of 16 + 6 = 22 cycles now run 16 cycles apart; each fold's compute event is its 16
    streamed cycles and the last one pays the drain (16 + 6): 54 cycles instead of 66. Write 0 and
    load 2 share the bus from cycle 32 (256 bits each by 36, then load 2 alone to 42)."""
    m = machine(ifmap=2048 * BITS, filt=2048 * BITS, ofmap=512 * BITS, overlap=True)
    log: list = []
    step = simulate_step(Trace("t", (gemm(12, 4, 16),)), m, log=log)
    assert timeline(log) == [
        (0, "load", 0, 0, 16),
        (0, "compute", 0, 16, 32),
        (0, "load", 1, 16, 24),
        (0, "compute", 1, 32, 48),
        (0, "load", 2, 32, 42),
        (0, "write", 0, 32, 36),
        (0, "compute", 2, 48, 70),
        (0, "write", 1, 48, 50),
        (0, "write", 2, 70, 72),
    ]
    r = step.ops[0]
    assert (r.compute_cycles, r.fill_drain_cycles, r.total_cycles) == (54, 6, 72)
    assert time_step(Trace("t", (gemm(12, 4, 16),)), m).ops[0].compute_cycles == 54


def test_simd_axis_whole_timeline_and_traffic():
    """int4 GEMM 8x16x8 on a 4x4 os array at 4 MACs per PE per cycle. Along the reduction: 2 x 4
    folds of 2 + 6 = 8 cycles (64). Along the output columns: 2 x 1 folds of 8 + 6 = 14 (28); each
    PE holds 4 accumulators, so an output tile is 4 x 16. Same bits cross DRAM either way (every
    operand fits once); the ifmap re-reads fall with the column folds (8·8·4 vs 8·8·1 elements)."""
    modes = {"int4xint4": 4}
    results = {}
    for simd in ("reduction", "output_cols"):
        m = Machine(_spec(4, 4, "os", modes, False, {"int4xint4": simd}, kib=1.0), "toy.yaml")
        log: list = []
        op = gemm(8, 16, 8, "int4", "int4", out="fp16", acc="int32")
        step = simulate_step(Trace("t", (op,)), m, log=log)
        results[simd] = (step, [e for e in timeline(log) if e[1] == "compute"])
    red, cols = results["reduction"], results["output_cols"]
    assert red[0].ops[0].compute_cycles == 64 and cols[0].ops[0].compute_cycles == 28
    assert sum(e[4] - e[3] for e in cols[1]) == 28
    assert red[0].ops[0].dram_read_bits == cols[0].ops[0].dram_read_bits == (8 * 8 + 8 * 16) * 4
    assert red[0].ops[0].dram_write_bits == cols[0].ops[0].dram_write_bits == 8 * 16 * 16
    assert red[0].counts.sram_read_bits["ifmap"] == 8 * 8 * 4 * 4
    assert cols[0].counts.sram_read_bits["ifmap"] == 8 * 8 * 1 * 4
    assert red[0].counts.sram_read_bits["filter"] == cols[0].counts.sram_read_bits["filter"] == 8 * 16 * 2 * 4


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("simd", AXES)
def test_tiles_fit_and_sum_to_the_fold_formula(dataflow, simd):
    """For random GEMMs under every SIMD axis and with or without fold overlap, the tiler's slices
    fit half of each buffer, its compute sums to gemm_cycles, the array's SRAM reads are the
    fold counts of sram_accesses, and an operand that fits is fetched once."""
    rng = random.Random(f"{dataflow}-{simd}")
    checked = 0
    for _ in range(60):
        m, n, k = (rng.randint(1, 60) for _ in range(3))
        rows, cols, rate, count = rng.randint(1, 6), rng.randint(1, 6), rng.choice([1, 2, 4, 8]), rng.randint(1, 3)
        overlap = rng.random() < 0.5
        plan = plan_gemm(m, n, k, rows, cols, dataflow, rate, simd)
        shape = GemmShape(m, n, k, count, plan, rate, 4.0, 4.0, 16.0, 32.0, overlap)
        cap = Capacity(*(rng.choice([256.0, 1024.0, 1e9]) for _ in range(3)))
        try:
            tiling = tile_gemm(shape, cap)
        except ValueError:
            continue  # one fold does not fit: the engine reports it
        for name, buffer in (("A", "ifmap"), ("B", "filter"), ("Z", "ofmap")):
            assert tiling.slice_bits(name) <= cap.half(buffer)
        assert round(tiling.totals()["compute_cycles"]) == gemm_cycles(plan, count, overlap)
        if cap == Capacity(1e9, 1e9, 1e9):
            assert tiling.dram_bits() == pytest.approx(count * (m * k * 4 + k * n * 4 + m * n * 16))
        acc = sram_accesses(m, n, k, plan)
        assert acc.ifmap_reads >= m * k and acc.filter_reads >= k * n
        checked += 1
    assert checked >= 30


def test_simd_spec_validation(tmp_path):
    """array.simd names modes of the array and one of three axes; unknown ones are reported with
    what is allowed; the plain form (no simd) means the reduction."""
    path = write(tmp_path / "hw.yaml", HW_TEXT.replace(
        "modes: {int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}}",
        "modes: {int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}, simd: {int4xint4: output_cols}}"))
    m = Machine(spec_load.load_hardware(path), str(path))
    assert m.mode_for("int4", "int4").simd == "output_cols" and m.mode_for("fp4r4", "int4").simd == "reduction"
    bad = write(tmp_path / "bad.yaml", HW_TEXT.replace(
        "modes: {int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}}",
        "modes: {int4xint4: 4, fp16xfp16: 1}, simd: {fp8xfp8: output_cols, int4xint4: diagonal}}"))
    with pytest.raises(InputError) as info:
        spec_load.load_hardware(bad)
    assert [str(p) for p in info.value.problems] == [
        f"{bad}: array.simd.int4xint4: must be 'reduction', 'output_cols' or 'output_rows'; got 'diagonal'",
    ]
    bad = write(tmp_path / "bad2.yaml", HW_TEXT.replace(
        "modes: {int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}}",
        "modes: {int4xint4: 4, fp16xfp16: 1}, simd: {fp8xfp8: output_cols}}"))
    with pytest.raises(InputError) as info:
        spec_load.load_hardware(bad)
    assert [str(p) for p in info.value.problems] == [
        f"{bad}: array.simd: names 'fp8xfp8', not a mode of this array (its modes: int4xint4, fp16xfp16)",
    ]


def _spec(rows, cols, dataflow, modes, overlap, simd, kib=1024.0):
    from accelsim.spec.models import HardwareSpec

    return HardwareSpec.model_validate({
        "version": 1, "name": "pe", "clock_ghz": 1.0,
        "array": {"rows": rows, "cols": cols, "dataflow": dataflow, "modes": modes, "fold_overlap": overlap,
                  "simd": simd},
        "rescale": {"lanes": 4}, "vector": {"lanes": 4},
        "sram": {"ifmap_kib": kib, "filter_kib": kib, "ofmap_kib": kib},
        "dram": {"bandwidth_gbps": 1e6},
    })
