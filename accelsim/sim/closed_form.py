"""Timing v0: every op in closed form, one after another.

.. note:: This model is replaced by the discrete-event replay (``accelsim.sim`` event engine);
   it stays as the reference the event model is checked against.

Per op, ``total_cycles = max(compute_cycles, DRAM cycles)``: compute from SCALE-Sim's fold
formulas (:func:`accelsim.sim.fold.gemm_cycles`, the mode's SIMD axis and the array's fold overlap
included) for GEMMs and lane throughput for the rescale and vector units;
DRAM cycles from the op's bits (each operand read once, the result written once, at its own bit
width, less what stays on chip between fused ops: :mod:`accelsim.sim.fusion`) over the DRAM
bandwidth. Ops do not overlap.
"""

from __future__ import annotations

import math
from dataclasses import replace

from accelsim.hw.machine import Machine
from accelsim.numerics.formats import bits_of
from accelsim.sim.blocks import (
    BlockGemm,
    gemm_block_counts,
    gemm_blocks,
    gemm_tensor_scale_bits,
    operand_tensor_scale_bits,
    rescale_block_counts,
    rescale_tensor_scale_bits,
    scale_share,
)
from accelsim.sim.fold import FoldPlan, gemm_cycles, plan_gemm, sram_accesses
from accelsim.sim.fusion import plan_residency
from accelsim.sim.result import ActionCounts, OpResult, StepResult
from accelsim.trace import rescale_passes
from accelsim.trace import VECTOR_OPS, GemmOp, Op, RescaleOp, Trace, VectorOp


def op_dram_bits(op: Op, input_on_chip: bool = False, output_on_chip: bool = False) -> tuple[int, int]:
    """Bits read and written by ``op``: every operand crosses DRAM once at its own width, except a
    main input that arrives on chip from its producer and an output that stays on chip for a
    fused consumer (:mod:`accelsim.sim.fusion`)."""
    if isinstance(op, GemmOp):
        read = op.a_tensor_elements * bits_of(op.a_format) + op.b_tensor_elements * bits_of(op.b_format)
        read += gemm_tensor_scale_bits(op)
        write = op.elements * bits_of(op.out_format)
    elif isinstance(op, RescaleOp):
        read = op.elements * bits_of(op.in_format)
        write = op.elements * bits_of(op.out_format) * op.copies + rescale_tensor_scale_bits(op)
    else:
        reads, writes, _ = VECTOR_OPS[op.op]
        bits = bits_of(op.format)
        aux_bits = bits_of(op.aux_format) if op.aux_format else bits
        main = 0 if input_on_chip else op.elements * bits  # the main input may arrive on chip
        read = main + op.elements * aux_bits * (reads - 1)
        write = op.elements * bits * writes
        input_on_chip = False
    # whole bits: block formats store fractional bits per element (MXFP4: 4.25)
    return (0 if input_on_chip else round(read)), (0 if output_on_chip else round(write))


def _scale_bits(op: Op, read_bits: int, write_bits: int) -> int:
    """The block and tensor scales among an op's DRAM bits."""
    if isinstance(op, GemmOp):
        tensor = gemm_tensor_scale_bits(op) if read_bits else 0
        a = op.a_tensor_elements * bits_of(op.a_format) * scale_share(op.a_format)
        b = op.b_tensor_elements * bits_of(op.b_format) * scale_share(op.b_format)
        out = write_bits * scale_share(op.out_format)
        return round(a + b + out) + tensor
    if isinstance(op, RescaleOp):
        tensor = rescale_tensor_scale_bits(op) if write_bits else 0
        return round(read_bits * scale_share(op.in_format) + (write_bits - tensor) * scale_share(op.out_format)) + tensor
    return 0


def op_counts(
    op: Op, machine: Machine, mode_name: str, plan: FoldPlan | None, read_bits: int, write_bits: int,
    blocks: BlockGemm | None = None,
) -> ActionCounts:
    """Action counts of one op: its own work, its SRAM accesses and the DRAM traffic of v0.

    DRAM reads land in the buffer of their operand (A and vector/rescale inputs: ``ifmap``;
    B: ``filter``) and DRAM writes leave from ``ofmap``, so each DRAM bit is also an SRAM bit.
    ``blocks``: how a GEMM that is a block dot product runs (:mod:`accelsim.sim.blocks`).
    """
    counts = ActionCounts()
    counts.dram_read_bits, counts.dram_write_bits = read_bits, write_bits
    counts.sram_read_bits["ofmap"] += write_bits
    counts.dram_scale_bits = _scale_bits(op, read_bits, write_bits)
    if isinstance(op, GemmOp):
        assert plan is not None
        a_bits, b_bits = bits_of(op.a_format), bits_of(op.b_format)
        acc_bits, out_bits = bits_of(op.acc_format), bits_of(op.out_format)
        acc = sram_accesses(op.m, op.n, op.k, plan)
        partial = acc.ofmap_writes - op.m * op.n
        counts.macs[mode_name] += op.macs
        gemm_block_counts(op, blocks, counts)
        counts.sram_read_bits["ifmap"] += acc.ifmap_reads * a_bits * op.count
        counts.sram_read_bits["filter"] += acc.filter_reads * b_bits * op.count
        counts.sram_read_bits["ofmap"] += acc.ofmap_reads * acc_bits * op.count
        counts.sram_write_bits["ofmap"] += (partial * acc_bits + op.m * op.n * out_bits) * op.count
        counts.sram_write_bits["ifmap"] += op.a_tensor_elements * a_bits + operand_tensor_scale_bits(op.a_format)
        counts.sram_write_bits["filter"] += op.b_tensor_elements * b_bits + operand_tensor_scale_bits(op.b_format)
    elif isinstance(op, RescaleOp):
        counts.rescale_elements += op.elements * rescale_passes(op)
        rescale_block_counts(op, counts)
        counts.sram_write_bits["ifmap"] += read_bits
        counts.sram_read_bits["ifmap"] += read_bits
        counts.sram_write_bits["ofmap"] += write_bits
    else:
        work = op.elements * VECTOR_OPS[op.op][2]
        if op.op == "hadamard":  # each lane-cycle is one butterfly add or subtract
            counts.butterflies[op.format] += work
        else:
            counts.vector_elements[op.format] += work
        counts.sram_write_bits["ifmap"] += read_bits
        counts.sram_read_bits["ifmap"] += read_bits
        counts.sram_write_bits["ofmap"] += write_bits
    return counts


def time_op(
    op: Op, index: int, machine: Machine, input_on_chip: bool = False, output_on_chip: bool = False,
    blocks: BlockGemm | None = None,
) -> OpResult:
    read_bits, write_bits = op_dram_bits(op, input_on_chip, output_on_chip)
    plan = None
    dram_cycles = math.ceil((read_bits + write_bits) / machine.dram_bits_per_cycle)
    if isinstance(op, GemmOp):
        mode = machine.mode_for(op.a_format, op.b_format, f"{index} ({op.layer} {op.phase} gemm)")
        plan = plan_gemm(
            op.m, op.n, op.k, machine.rows, machine.cols, machine.dataflow, mode.macs_per_pe_per_cycle, mode.simd,
        )
        compute = gemm_cycles(plan, op.count, machine.spec.array.fold_overlap)
        peak = machine.peak_macs_per_cycle(mode)
        ideal = -(-op.macs // peak)
        fill_drain = compute - plan.folds * plan.streamed * op.count
        unit, mode_name, work, capacity = "array", mode.name, op.macs, peak
    elif isinstance(op, RescaleOp):
        lanes = machine.spec.rescale.lanes
        work = op.elements * rescale_passes(op)
        ideal = -(-work // lanes)
        fill_drain = machine.spec.rescale.latency_cycles
        compute = ideal + fill_drain
        unit, mode_name, capacity = "rescale", "", lanes
    else:
        assert isinstance(op, VectorOp)
        lanes = machine.spec.vector.lanes
        work = op.elements * VECTOR_OPS[op.op][2]
        ideal = -(-work // lanes)
        fill_drain = machine.spec.vector.latency_cycles
        compute = ideal + fill_drain
        unit, mode_name, capacity = "vector", "", lanes
    total = max(compute, dram_cycles)
    counts = op_counts(op, machine, mode_name, plan, read_bits, write_bits, blocks)
    counts.cycles = total
    return OpResult(
        index=index, op=op, unit=unit, mode=mode_name,
        macs=op.macs if isinstance(op, GemmOp) else 0,
        ideal_cycles=ideal, fill_drain_cycles=fill_drain, compute_cycles=compute,
        stall_cycles=total - compute, total_cycles=total,
        utilization=work / (capacity * total) if total else 0.0, peak_per_cycle=capacity,
        dram_read_bits=read_bits, dram_write_bits=write_bits, counts=counts,
    )


def time_step(trace: Trace, machine: Machine) -> StepResult:
    """Time one step of ``trace`` on ``machine``, ops in order with no overlap."""
    results = []
    counts = ActionCounts()
    start = 0
    residency = plan_residency(trace)
    for index, op in enumerate(trace.ops):
        blocks = gemm_blocks(trace.ops, index) if isinstance(op, GemmOp) else None
        r = time_op(op, index, machine, residency.input_on_chip[index], residency.output_on_chip[index], blocks)
        results.append(replace(r, start_cycle=start))
        counts.add(r.counts)
        start += r.total_cycles
    return StepResult(machine=machine.name, ops=tuple(results), cycles=start, model="closed-form", counts=counts)
