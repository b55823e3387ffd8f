"""Block-scaled formats in the hardware model: the actions of block dot products (a scale multiply
and an accumulate per block partial sum, a tensor-scale multiply per NVFP4 output), of block
quantization (block scales, random bits), of Hadamard transforms, the scale bits in every
transfer, the sourced table entries, and the shipped Blackwell-like machine end to end."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import pytest
import yaml

from accelsim import api
from accelsim import breakdown as B
from accelsim import energy as E
from accelsim.errors import InputError
from accelsim.hw import blockmac, tech
from accelsim.hw.machine import Machine
from accelsim.sim.closed_form import time_step
from accelsim.sim.engine import simulate_step
from accelsim.sim.result import COUNTERS, FIELDS, ActionCounts
from accelsim.spec import load as spec_load
from accelsim.trace import GemmOp, RescaleOp, Trace, VectorOp

from conftest import HWCONFIGS, WORKLOADS, write
from test_energy import TECH, table_text
from test_sim_engine import machine

BLACKWELL = HWCONFIGS / "blackwell-like.yaml"
BLOCK_MODES = {"nvfp4xnvfp4": 4, "mxfp4xmxfp4": 4, "int4bxint4b": 4, "mxfp8xmxfp8": 2, "bf16xbf16": 1,
               "mxfp4xbf16": 1}
#: the 45 nm entries the counts below are priced by
P45 = {key: entry["value"] for key, entry in
       yaml.safe_load((TECH / "45nm.yaml").read_text(encoding="utf-8"))["entries"].items()}


def toy(**kw) -> Machine:
    """A 4x4 array with the block modes; 1 KiB buffers unless told; 1 GHz, 128 bits per cycle."""
    return machine(modes=BLOCK_MODES, **kw)


def big() -> Machine:
    """Buffers that hold every tensor of these tests and a DRAM too fast to matter."""
    return toy(ifmap=1024.0, filt=1024.0, ofmap=1024.0, gbps=1e6)


def both(ops: tuple) -> tuple:
    """The event replay and the closed form of one step of ``ops`` on :func:`big`."""
    trace = Trace("t", ops)
    return simulate_step(trace, big()), time_step(trace, big())


def counts_of(r) -> dict:
    data = r.counts.as_dict()
    data.pop("cycles")
    for key in ("sram_read_bits", "sram_write_bits"):
        data.pop(key)
    return data


# ------------------------------------------------------------------------------------------------
# block dot products


def nvfp4_gemm_ops(m=4, n=3, k=40) -> tuple:
    """A (1x16 blocks) and W (16x16 blocks) quantized to NVFP4, then their product."""
    return (
        RescaleOp("l", "fwd", m * k, "bf16", "nvfp4", "tensor_block", block="16", scale_format="fp8e4m3"),
        RescaleOp("l", "fwd", k * n, "fp32", "nvfp4", "tensor_block", tensor="weight", block="16x16",
                  scale_format="fp8e4m3"),
        GemmOp("l", "fwd", m, n, k, "nvfp4", "nvfp4", "fp32", "bf16", deps=(0, 1)),
    )


def test_nvfp4_dot_product_pays_per_block_and_per_output():
    """GEMM 4x3x40 in NVFP4 (blocks of 16 along K): 480 MACs summed in a 13-bit fixed-point block
    adder, ⌈40/16⌉ = 3 block partial sums per output = 36 scale multiplies and 36 FP32
    accumulates, and 12 tensor-scale multiplies (one per output). The same in both timing models;
    priced at 45 nm by hand."""
    for step in both(nvfp4_gemm_ops()):
        g = step.ops[2].counts
        assert g.macs == Counter({"nvfp4xnvfp4": 480})
        assert g.accumulations == Counter({"int16": 480, "fp32": 36})
        assert g.block_partial_sums == Counter({"fp8e4m3": 36})
        assert g.tensor_scale_products == 12
    mac = E.energy_breakdown_pj(g, big(), E.load_table("45nm", "hw.yaml"))["mac"]
    assert mac == pytest.approx(480 * 0.046 + 480 * 0.05 + 36 * 0.9 + 36 * 0.486 + 12 * 3.7, rel=1e-12)
    assert mac == pytest.approx(140.376, rel=1e-12)


def test_block_length_and_scale_come_from_the_quantizers():
    """MXFP4 (blocks of 32, E8M0): ⌈40/32⌉ = 2 partial sums per output; int4b quantized in blocks
    of 64 with FP16 scales: 1; a hand-written trace without quantizers falls back to the format
    table (NVFP4: 16, E4M3); a product with a plain BF16 operand is no block dot product."""
    mx = (RescaleOp("l", "fwd", 160, "bf16", "mxfp4", "block", block="32", scale_format="e8m0"),
          GemmOp("l", "fwd", 4, 3, 40, "mxfp4", "mxfp4", "fp32", "bf16", deps=(0,)))
    int4b = (RescaleOp("l", "fwd", 160, "bf16", "int4b", "block", block="64", scale_format="fp16"),
             GemmOp("l", "fwd", 4, 3, 40, "int4b", "int4b", "fp32", "bf16", deps=(0,)))
    bare = (GemmOp("l", "fwd", 4, 3, 40, "nvfp4", "nvfp4", "fp32", "bf16"),)
    mixed = (GemmOp("l", "bwd_data", 4, 3, 40, "mxfp4", "bf16", "fp32", "bf16"),)
    for ops, partial, scale, tensor in ((mx, 24, "e8m0", 0), (int4b, 12, "fp16", 0), (bare, 36, "fp8e4m3", 12)):
        for step in both(ops):
            g = step.ops[-1].counts
            assert g.accumulations == Counter({"int16": 480, "fp32": partial})
            assert g.block_partial_sums == Counter({scale: partial}) and g.tensor_scale_products == tensor
    for step in both(mixed):
        g = step.ops[0].counts
        assert g.macs == Counter({"mxfp4xbf16": 480}) and g.accumulations == Counter({"fp32": 480})
        assert not g.block_partial_sums and g.tensor_scale_products == 0


def test_partial_sum_widths():
    """The exact fixed-point width of a block's sum: E2M1 products lie on the grid 0.25 … 36 (144
    steps): 16 of them need 12 bits + sign, 32 need 13 + sign; INT4 (|q| ≤ 8) in 32: 12 + sign. FP8
    products span far more than 32 bits: summed in a 32-bit adder after alignment."""
    assert blockmac.partial_sum_bits("nvfp4", "nvfp4", 16) == 13
    assert blockmac.partial_sum_bits("mxfp4", "mxfp4", 32) == 14
    assert blockmac.partial_sum_bits("int4b", "int4b", 32) == 13
    assert blockmac.partial_sum_format("mxfp4", "mxfp4", 32) == "int16"
    assert blockmac.partial_sum_format("int4b", "int4b", 4096) == "int32"
    assert blockmac.partial_sum_format("mxfp8e4m3", "mxfp8e5m2", 32) == "int32"
    assert blockmac.is_block_dot_product("mxfp8", "mxfp8") and not blockmac.is_block_dot_product("mxfp4", "bf16")


# ------------------------------------------------------------------------------------------------
# quantization


def test_block_scales_and_random_bits():
    """Quantizing 1000 elements into MXFP4 with stochastic rounding: ⌈1000/32⌉ = 32 E8M0 scales and
    8 random bits per element; NVFP4 in 16x16 blocks, nearest: ⌈1000/256⌉ = 4 E4M3 scales, no random
    bits; a per-tensor fp4r4 rescale with two TPR copies has neither."""
    ops = (RescaleOp("g", "bwd_data", 1000, "bf16", "mxfp4", "block", block="32", scale_format="e8m0",
                     rounding="stochastic"),
           RescaleOp("w", "fwd", 1000, "fp32", "nvfp4", "tensor_block", tensor="weight", block="16x16",
                     scale_format="fp8e4m3"),
           RescaleOp("t", "bwd_data", 1000, "fp16", "fp4r4", "max", copies=2))
    for step in both(ops):
        sr, w, tpr = (r.counts for r in step.ops)
        assert (sr.block_scales, sr.random_bits) == (Counter({"e8m0": 32}), 8000)
        assert (w.block_scales, w.random_bits) == (Counter({"fp8e4m3": 4}), 0)
        assert (tpr.block_scales, tpr.random_bits) == (Counter(), 0)
    rescale = E.energy_breakdown_pj(sr, big(), E.load_table("45nm", "hw.yaml"))["rescale"]
    assert rescale == pytest.approx(1000 * 1.5 + 32 * 0.06 + 8000 * 0.0047, rel=1e-12)


def test_rescale_cycles_of_block_reductions():
    """8 lanes, latency 3, 256 elements: a block reduction is one pass (each block's amax and scale
    are computed in the requantizing stream): 256/8 + 3 = 35 cycles; NVFP4's tensor amax first makes
    it two: 2·32 + 3 = 67. Random bits cost energy, not time. Both timing models agree."""
    m = toy(lanes=8, rescale_latency=3, ifmap=1024.0, ofmap=1024.0)
    for reduction, rounding, cycles, passes in (("block", "nearest", 35, 1), ("block", "stochastic", 35, 1),
                                                ("tensor_block", "nearest", 67, 2)):
        op = RescaleOp("l", "fwd", 256, "bf16", "nvfp4", reduction, block="16", scale_format="fp8e4m3",
                       rounding=rounding)
        for step in (simulate_step(Trace("t", (op,)), m), time_step(Trace("t", (op,)), m)):
            assert step.ops[0].compute_cycles == cycles, (reduction, rounding)
            assert step.ops[0].counts.rescale_elements == 256 * passes


def test_hadamard_runs_four_butterfly_stages_on_the_vector_unit():
    """A 16-point Hadamard transform of 64 BF16 elements: 4 stages, one add or subtract per element
    each, 8 lanes: 64·4/8 = 32 cycles; 256 butterflies priced as BF16 adds (not as lane FMAs); its
    input and output cross DRAM at 16 bits."""
    m = toy(lanes=8, ifmap=1024.0, ofmap=1024.0)
    op = VectorOp("l", "bwd_weight", 64, "hadamard", "bf16")
    for step in (simulate_step(Trace("t", (op,)), m), time_step(Trace("t", (op,)), m)):
        r = step.ops[0]
        assert r.compute_cycles == 32 and r.unit == "vector"
        assert r.counts.butterflies == Counter({"bf16": 256}) and not r.counts.vector_elements
        assert (r.dram_read_bits, r.dram_write_bits) == (64 * 16, 64 * 16)
    vector = E.energy_breakdown_pj(r.counts, m, E.load_table("45nm", "hw.yaml"))["vector"]
    assert vector == pytest.approx(256 * 0.29, rel=1e-12)


# ------------------------------------------------------------------------------------------------
# scale bits in transfers


def test_scale_bits_travel_with_their_tensors():
    """NVFP4 costs 4.5 bits per element plus one 32-bit tensor scale per tensor: the GEMM 4x3x40
    reads 160·4.5 + 120·4.5 + 2·32 = 1324 bits (204 of them scales) and writes 12 BF16 outputs;
    quantizing A from BF16 reads 160·16 and writes 160·4.5 + 32 = 752 (112 scales). Event replay and
    closed form agree bit for bit; MXFP4 has no tensor scale (4.25 bits per element)."""
    ops = nvfp4_gemm_ops()
    event, closed = both(ops)
    for step in (event, closed):
        qa, qw, g = step.ops
        assert (g.dram_read_bits, g.dram_write_bits, g.counts.dram_scale_bits) == (1324, 12 * 16, 204)
        assert (qa.dram_read_bits, qa.dram_write_bits, qa.counts.dram_scale_bits) == (160 * 16, 752, 112)
        assert (qw.dram_read_bits, qw.dram_write_bits) == (120 * 32, 120 * 4.5 + 32)
    mx = (RescaleOp("l", "fwd", 256, "bf16", "mxfp4", "block", block="32", scale_format="e8m0"),)
    for step in both(mx):
        assert (step.ops[0].dram_write_bits, step.ops[0].counts.dram_scale_bits) == (256 * 4.25, 64)
    stats = B.quantization_stats(B.RunSteps(big(), [(both(mx)[0], 3)]))
    assert stats["dram_scale_bits"] == 3 * 64
    assert stats["scale_bit_overhead"] == pytest.approx(64 / (256 * 16 + 256 * 4.25), rel=1e-12)


@pytest.mark.parametrize("preset", ["nvfp4", "nvfp4-1d-weights", "mxfp4", "mxfp4-bwd", "mxfp8", "int4b"])
def test_engine_and_closed_form_agree_on_block_traces(preset):
    """A whole cnn-digits training step in each block-scaled recipe, on the Blackwell-like array
    with buffers that hold every tensor (so the replay fetches each operand once, as the closed form
    does): every action count and every op's DRAM bits agree."""
    trace = api.trace_workload(WORKLOADS / "cnn-digits.yaml", sets=[f"precision={preset}"])
    spec = spec_load.load_hardware(BLACKWELL, ["sram.ifmap_kib=65536", "sram.filter_kib=65536",
                                               "sram.ofmap_kib=65536", "dram.bandwidth_gbps=1e7"])
    m = Machine(spec, str(BLACKWELL))
    event, closed = simulate_step(trace, m), time_step(trace, m)
    assert [(r.dram_read_bits, r.dram_write_bits) for r in event.ops] == \
        [(r.dram_read_bits, r.dram_write_bits) for r in closed.ops]
    assert [counts_of(r) for r in event.ops] == [counts_of(r) for r in closed.ops]
    total = event.counts
    assert total.block_partial_sums and total.block_scales
    assert total.dram_scale_bits > 0
    if preset != "mxfp8":
        assert total.random_bits > 0 and total.butterflies  # stochastic gradients, Hadamard transforms


def test_counts_fields_add_and_scale():
    """Every field of ActionCounts is listed once (as a counter or a number), adds and scales."""
    assert tuple(f.name for f in dataclasses.fields(ActionCounts)) == FIELDS
    a = ActionCounts(block_partial_sums=Counter({"e8m0": 3}), random_bits=5, butterflies=Counter({"bf16": 2}),
                     tensor_scale_products=1, block_scales=Counter({"fp8e4m3": 4}), dram_scale_bits=7)
    a.add(a.scaled(2))
    assert a.as_dict() == {**ActionCounts().as_dict(), "block_partial_sums": {"e8m0": 9}, "random_bits": 15,
                           "butterflies": {"bf16": 6}, "tensor_scale_products": 3, "block_scales": {"fp8e4m3": 12},
                           "dram_scale_bits": 21}
    assert set(COUNTERS) < set(FIELDS)


# ------------------------------------------------------------------------------------------------
# breakdown


def test_hadamard_counts_as_quantization_work():
    """A Hadamard transform the array waits for is quantization work: the ``rescale`` stage of the
    breakdown, not ``vector``. 4 lanes: 64·4/4 = 64 cycles, then a GEMM that reads its result."""
    m = toy(ifmap=64.0, filt=64.0, ofmap=64.0, gbps=1e6)
    ops = (VectorOp("l", "bwd_weight", 64, "hadamard", "bf16"),
           GemmOp("l", "bwd_weight", 4, 4, 16, "bf16", "bf16", "fp32", "fp32", deps=(0,)))
    step = simulate_step(Trace("t", ops), m)
    h, g = step.ops
    assert (h.start_cycle, h.total_cycles, g.start_cycle) == (0, 64, 64)
    mode = m.modes()[frozenset({"bf16"})]
    stages = B.step_cycles(step, m, mode)
    assert stages["rescale"] - stages["memory_stalls"] == 64 and stages["vector"] == stages["rescale"]
    stats = B.quantization_stats(B.RunSteps(m, [(step, 2)]))
    assert (stats["quantization_cycles"], stats["quantization_exposed_cycles"]) == (128, 128.0)


# ------------------------------------------------------------------------------------------------
# tables


BLOCK_KEYS = sorted(k for k in P45 if tech.classify_key(k)[0] in
                    ("scale_multiply", "tensor_scale_multiply", "block_scale", "random_bit", "butterfly")
                    or any(x in k for x in ("nvfp4", "mxfp4", "mxfp8", "int4b", "bf16", "fp4e2m1")))


@pytest.fixture(scope="module")
def block_counts():
    """The actions of one step of several block recipes on the Blackwell-like machine, added up, so
    that every block entry of the table but the E2M1 mode (no mode of this machine) prices some of
    them: NVFP4; MXFP8 accumulating in BF16; int4b with FP16 scales, FP16 outputs and Hadamard
    transforms everywhere; MXFP4 with FP32 outputs; the MXFP4-backward recipe on transformer-sort
    with BF16 activations in its weight-gradient GEMMs (BF16 x MXFP4 products)."""
    m = Machine(spec_load.load_hardware(BLACKWELL), str(BLACKWELL))
    total = ActionCounts()
    for workload, precision in (
        ("cnn-digits", "nvfp4"), ("cnn-digits", "{preset: mxfp8, accumulator: bf16}"),
        ("cnn-digits", "{preset: int4b, int4b_scale: fp16, output: fp16, hadamard: all}"),
        ("cnn-digits", "{preset: mxfp4, output: fp32}"), ("transformer-sort", "{preset: mxfp4-bwd, bwd_weight_activation: bf16}"),
    ):
        trace = api.trace_workload(WORKLOADS / f"{workload}.yaml", sets=[f"precision={precision}"])
        total.add(simulate_step(trace, m).counts)
    return m, total


@pytest.mark.parametrize("table", ["45nm", "7nm"])
def test_shipped_tables_price_block_runs(block_counts, table):
    m, counts = block_counts
    t = E.load_table(table, m.file)
    E.check_table_covers(t, m, counts)
    assert all(v > 0 for k, v in E.energy_breakdown_pj(counts, m, t).items())


@pytest.mark.parametrize("key", [k for k in BLOCK_KEYS if not k.startswith("area.")])
def test_block_entry_prices_its_own_component(block_counts, key):
    """Doubling one block entry adds exactly its contribution (> 0: the runs use it) to its own
    component and leaves the others bit for bit unchanged."""
    m, counts = block_counts
    t45 = E.load_table("45nm", m.file)
    base = E.energy_breakdown_pj(counts, m, t45)
    doubled = E.energy_breakdown_pj(counts, m, t45.with_value(key, 2 * P45[key]))
    zeroed = E.energy_breakdown_pj(counts, m, t45.with_value(key, 0.0))
    kind = tech.classify_key(key)[0]
    own = {"scale_multiply": "mac", "tensor_scale_multiply": "mac", "mac": "mac", "accumulate": "mac",
           "block_scale": "rescale", "random_bit": "rescale", "butterfly": "vector", "vector": "vector"}[kind]
    for comp in E.COMPONENTS:
        if comp != own:
            assert doubled[comp] == base[comp], (key, comp)
    if key == "mac.fp4e2m1xfp4e2m1":
        assert doubled == base  # a mode the machine does not have
        return
    assert doubled[own] - base[own] == pytest.approx(base[own] - zeroed[own], rel=1e-9)
    assert base[own] > zeroed[own]


def test_bf16_and_block_mac_ratios_at_45nm():
    """The anchors of the block entries: a BF16 MAC with FP32 accumulation is 0.725 + 0.9 pJ, an
    NVFP4 MAC 0.046 + 0.05 + (0.486 + 0.9)/16 (8.9x less), an MXFP4 MAC 0.046 + 0.05 + (0.126 +
    0.9)/32 (12.7x less), MXFP8 2.5x an MXFP4 one (KU Leuven's MX datapath: 2.4-2.8x)."""
    bf16 = P45["mac.bf16xbf16"] + P45["accumulate.fp32"]
    nv = P45["mac.nvfp4xnvfp4"] + P45["accumulate.int16"] + (P45["scale_multiply.fp8e4m3"] + P45["accumulate.fp32"]) / 16
    mx4 = P45["mac.mxfp4xmxfp4"] + P45["accumulate.int16"] + (P45["scale_multiply.e8m0"] + P45["accumulate.fp32"]) / 32
    mx8 = P45["mac.mxfp8xmxfp8"] + P45["accumulate.int32"] + (P45["scale_multiply.e8m0"] + P45["accumulate.fp32"]) / 32
    assert (bf16, nv, mx4, mx8) == pytest.approx((1.625, 0.182625, 0.1280625, 0.3220625), rel=1e-9)
    assert bf16 / nv == pytest.approx(8.9, rel=0.01) and bf16 / mx4 == pytest.approx(12.7, rel=0.01)
    assert 2.4 <= mx8 / mx4 <= 2.8
    # a BF16 multiplier is about two thirds of an FP16 one (Google: "about half" for the array alone)
    assert P45["mac.bf16xbf16"] / P45["mac.fp16xfp16"] == pytest.approx(0.66, abs=0.01)


def test_tables_without_block_entries_still_price_other_machines(tmp_path):
    """A table written before block formats (no block entries) still covers the INT4 machine; the
    Blackwell-like one is refused with every missing entry named; a scale format only a run uses
    (int4b with FP16 scales) is required once the run's counts show it."""
    # accumulate.bf16 and vector.bf16 price the BF16 baseline any machine may run: not block entries
    old = write(tmp_path / "old.yaml", table_text(**{k: None for k in BLOCK_KEYS
                                                     if k not in ("accumulate.bf16", "vector.bf16")}))
    table = tech.load_table_file(old)
    int4 = Machine(spec_load.load_hardware(HWCONFIGS / "int4-32x32.yaml"), str(HWCONFIGS / "int4-32x32.yaml"))
    E.check_table_covers(table, int4)
    bw = Machine(spec_load.load_hardware(BLACKWELL), str(BLACKWELL))
    with pytest.raises(InputError) as info:
        E.check_table_covers(table, bw)
    message = str(info.value.problems[0])
    needed = ["mac.nvfp4xnvfp4", "area.pe_shared.nvfp4xnvfp4", "area.pe.bf16xbf16", "scale_multiply.fp8e4m3",
              "scale_multiply.e8m0", "tensor_scale_multiply", "block_scale.e8m0", "block_scale.fp8e4m3",
              "random_bit", "butterfly.bf16", "butterfly.fp16", "butterfly.fp32"]
    assert all(k in message for k in needed), message
    assert "scale_multiply.fp16" not in message and "block_scale.fp16" not in message
    partial = write(tmp_path / "partial.yaml", table_text(**{"scale_multiply.fp16": None, "block_scale.fp16": None}))
    table = tech.load_table_file(partial)
    E.check_table_covers(table, bw)
    counts = ActionCounts(block_partial_sums=Counter({"fp16": 1}), block_scales=Counter({"fp16": 1}))
    with pytest.raises(InputError, match=r"has no entries scale_multiply\.fp16, block_scale\.fp16, needed by hardware 'blackwell-like'"):
        E.check_table_covers(table, bw, counts)


def test_block_entry_keys_are_checked():
    assert tech.classify_key("scale_multiply.e8m0") == ("scale_multiply", "e8m0")
    assert tech.classify_key("butterfly.bf16") == ("butterfly", "bf16")
    assert tech.classify_key("mac.mxfp8xmxfp8") == ("mac", frozenset({"mxfp8"}))
    assert tech.classify_key("mac.mxfp8e4m3xmxfp8e5m2") == tech.classify_key("mac.mxfp8xmxfp8")
    with pytest.raises(ValueError, match=r"unknown entry 'scale_multiply\.e5m2'.*scale formats e8m0, fp8e4m3, fp16"):
        tech.classify_key("scale_multiply.e5m2")
    with pytest.raises(ValueError, match=r"unknown entry 'random_bits'; did you mean 'random_bit'\?"):
        tech.classify_key("random_bits")


# ------------------------------------------------------------------------------------------------
# the shipped machine


def test_blackwell_like_peaks_match_b200_datasheet():
    """148 SMs x 4 tensor cores of this array give the B200's dense peaks: 2.25 / 4.5 / 9 PFLOPS
    BF16 / FP8 / FP4, at 4 : 2 : 1; its baseline is the same array with BF16 only."""
    m = Machine(spec_load.load_hardware(BLACKWELL), str(BLACKWELL))
    modes = {mode.name: mode for mode in m.modes().values()}
    pflops = {name: 2 * m.peak_macs_per_cycle(modes[name]) * m.clock_hz * 148 * 4 / 1e15
              for name in ("bf16xbf16", "mxfp8xmxfp8", "nvfp4xnvfp4")}
    assert pflops == pytest.approx({"bf16xbf16": 2.254, "mxfp8xmxfp8": 4.509, "nvfp4xnvfp4": 9.018}, rel=1e-3)
    base = Machine(spec_load.load_hardware(HWCONFIGS / m.spec.baseline), str(HWCONFIGS / m.spec.baseline))
    assert list(base.spec.array.modes) == ["bf16xbf16"]
    assert B.peak_speedup(m, base)["peak_speedup"] == 4.0
    assert m.widest_mode == "bf16xbf16"


@pytest.mark.parametrize("table", ["7nm", "45nm"])
@pytest.mark.parametrize("preset", ["mxfp4", "mxfp4-bwd", "int4b"])
def test_blackwell_like_runs_block_presets(preset, table):
    """One cnn-digits step of each block recipe replays on the Blackwell-like machine and is priced
    with either table."""
    spec = spec_load.load_hardware(BLACKWELL, [f"technology={table}"])
    m = Machine(spec, str(BLACKWELL))
    trace = api.trace_workload(WORKLOADS / "cnn-digits.yaml", sets=[f"precision={preset}"])
    step = simulate_step(trace, m)
    t = E.load_table(table, m.file)
    E.check_table_covers(t, m, step.counts)
    assert step.cycles >= step.macs / (m.rows * m.cols * 4)
    assert math.fsum(E.ops_energy_pj(step, m, t)) == pytest.approx(
        math.fsum(E.energy_breakdown_pj(step.counts, m, t).values()), rel=1e-12)


def test_blackwell_like_trains_cnn_digits_end_to_end(tmp_path):
    """``accelsim run cnn-digits blackwell-like`` in NVFP4 against BF16 (one epoch on a tenth of the
    digits): both trainings, both replays, both tables; the speedup breakdown multiplies out to the
    speedup."""
    sets = ["precision=nvfp4", "workload.baseline=bf16", "training.epochs=1", "training.seeds=1",
            "data.test_fraction=0.9"]
    runs = {}
    for table in ("7nm", "45nm"):
        runs[table] = api.run(WORKLOADS / "cnn-digits.yaml", BLACKWELL, write=False, cache_dir=tmp_path, jobs=1,
                              sets=[*sets, f"hw.technology={table}", f"baseline_hw.technology={table}"])
    r = runs["7nm"]
    s = r.summary
    assert (s["runs"]["policy"]["hardware"], s["runs"]["baseline"]["hardware"]) == ("blackwell-like", "blackwell-like-bf16")
    assert s["runs"]["policy"]["accuracy"] is not None and s["runs"]["baseline"]["accuracy"] is not None
    assert runs["45nm"].summary["speedup"] == s["speedup"]  # the table prices, it does not time
    assert runs["45nm"].summary["energy_ratio"] != s["energy_ratio"]
    out = B.speedup_breakdown(B.RunSteps(r.policy.machine, [(r.policy.step, r.policy.steps)]),
                              B.RunSteps(r.baseline.machine, [(r.baseline.step, r.baseline.steps)]))
    product = out["peak_speedup"] * math.prod(f["factor"] for f in out["speedup_breakdown"].values())
    assert product == pytest.approx(out["speedup"], rel=1e-12)


#: ResNet-50 (batch 32) in NVFP4 against BF16 on blackwell-like.yaml, event model (measured when
#: the machine was shipped; benchmarks/bench_blackwell.py prints it with more context).
RESNET50_NVFP4 = {
    "speedup": 2.42020828, "energy_ratio": 2.44923241,
    "factors": {"work": 1.0, "layers_not_in_4_bits": 0.9436, "mapping": 0.9976, "fill_drain": 0.9499,
                "memory_stalls": 0.9068, "rescale": 0.8446, "vector": 0.8836, "idle": 1.0},
}


def test_resnet50_nvfp4_speedup_on_blackwell_like():
    """The ResNet-50 target: one training step in NVFP4 reports its speedup over BF16 (peak 4x) and
    the factors that keep it below; they multiply out to the speedup."""
    r = api.run(WORKLOADS / "resnet50.yaml", BLACKWELL, write=False, sets=["precision=nvfp4", "workload.baseline=bf16"])
    out = B.breakdown(B.RunSteps(r.policy.machine, [(r.policy.step, r.policy.steps)]),
                      B.RunSteps(r.baseline.machine, [(r.baseline.step, r.baseline.steps)]),
                      r.setup.table, r.setup.baseline_table)
    assert out["peak_speedup"] == 4.0
    assert out["speedup"] == pytest.approx(RESNET50_NVFP4["speedup"], rel=1e-8)
    assert out["energy_ratio"] == pytest.approx(RESNET50_NVFP4["energy_ratio"], rel=1e-8)
    factors = {k: v["factor"] for k, v in out["speedup_breakdown"].items()}
    assert factors == pytest.approx(RESNET50_NVFP4["factors"], abs=5e-5)
    assert 4.0 * math.prod(factors.values()) == pytest.approx(out["speedup"], rel=1e-12)
