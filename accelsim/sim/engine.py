"""Timing v1: the discrete-event replay of one step of a trace on one machine (SimPy).

Public API::

    simulate_step(trace, machine) -> StepResult      # model="event", cycles = makespan
    unit_busy_cycles(step, machine=None) -> dict      # cycles each unit (and DRAM) was busy

Replay rules
------------
* Every op is a SimPy process. It waits until the ops it reads (``deps``) are done, then queues for
  its unit (array, rescale or vector: a capacity-1 resource; ready ops are served in trace order,
  so the replay is deterministic) and holds it until its last write-back has landed. Ops on
  different units overlap freely; all their transfers share the one DRAM interface
  (:class:`~accelsim.sim.components.Dram`: fair bandwidth sharing, pipelined latency).
* An op is a pipeline of **tile events** (:mod:`accelsim.sim.tiling`): per tile, a load through
  the unit's load DMA engine, a compute (closed-form cycles of the tile's folds or elements), and a
  write-back through its store DMA engine. The buffers are double-buffered: tile ``i``'s load may
  start once tile ``i − 2`` has computed (its half is free), and tile ``i``'s compute once tile
  ``i − 2``'s write-back has landed (its output half is free). So tile ``i + 1`` loads while tile
  ``i`` computes, and loads hide completely when DRAM keeps up. Each unit streams through its own
  pair of buffer halves (units do not compete for SRAM capacity, only for DRAM).
* Tensors that stay on chip between fused ops (:mod:`accelsim.sim.fusion`, the same rule as the
  closed form) do not cross DRAM: the consumer does not load its main input, the producer does not
  write its output. The consumer still starts when its producer is done (its compute is not
  overlapped with the producer's tiles: a simplification).
* Long runs of tiles are **coarsened** into fewer events (:func:`~accelsim.sim.tiling.event_boundaries`,
  at most about ``max_tile_events`` per run): the pipeline fills and drains tile by tile, and in
  between a group of consecutive tiles is one load, one compute and one write-back carrying the
  exact sums of its tiles (closed-form prefix sums). Events per op are bounded by the number of
  tiles and by ``max_tile_events``, never by the MACs. Against the tile-by-tile replay
  (``max_tile_events=None``) this moves a step's makespan by well under 1 % (tests pin it).

Reported per op: ``compute_cycles`` = the unit's closed-form busy time (for a GEMM
:func:`~accelsim.sim.fold.gemm_cycles`: exactly SCALE-Sim's count, ``plan.cycles·count``, unless
``array.fold_overlap``), ``total_cycles`` = its span
from getting the unit to its last write-back (whole cycles, rounded down), ``stall_cycles = total −
compute`` (waiting for DRAM or for a free buffer half), DRAM bits from the tiling (refetches and
partial-sum spills included) and action counts. The step's ``cycles`` and ``counts.cycles`` are the
makespan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Generator

import simpy

from accelsim.errors import InputError, Problem, UnsupportedOpError
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
from accelsim.sim.components import Accelerator, DmaEngine, LogEntry, Unit
from accelsim.sim.fold import plan_gemm, sram_accesses
from accelsim.sim.fusion import plan_residency
from accelsim.sim.result import ActionCounts, OpResult, StepResult
from accelsim.spec.models import SimulationSpec
from accelsim.sim.tiling import (
    Capacity,
    GemmShape,
    GemmTiling,
    StreamPass,
    TileFitError,
    event_boundaries,
    stream_tile_elements,
    tile_gemm,
)
from accelsim.trace import TENSOR_REDUCTIONS, VECTOR_OPS, GemmOp, Op, RescaleOp, Trace, VectorOp, rescale_passes

#: Default bound on the events of one run of tiles (see :func:`event_boundaries`); a machine's
#: ``simulation.tile_events`` sets it per machine.
MAX_TILE_EVENTS = SimulationSpec.model_fields["tile_events"].default
_FROM_MACHINE: Any = object()


@dataclass(frozen=True)
class TileEvent:
    """One event of an op's pipeline: bits loaded, compute cycles, bits written back."""

    load_bits: int
    compute_cycles: int
    write_bits: int


@dataclass
class OpPlan:
    """Everything about one op that does not depend on when it runs."""

    unit: str
    mode: str
    macs: int
    ideal_cycles: int
    fill_drain_cycles: int
    compute_cycles: int
    work: int
    peak_per_cycle: int
    dram_read_bits: int
    dram_write_bits: int
    tiles: int
    events: list[TileEvent]
    counts: ActionCounts
    tiling: Any = None


# ------------------------------------------------------------------------------------------------
# planning


def _label(index: int, op: Op) -> str:
    return f"{index} ({op.layer} {op.phase} {op.kind})"


def _gemm_events(tiling: GemmTiling, max_events: int | None) -> tuple[list[TileEvent], dict[str, float]]:
    bounds = event_boundaries(tiling.tiles, max_events)
    prev = {"load": 0, "compute": 0, "write": 0}
    events: list[TileEvent] = []
    for b in bounds[1:]:
        p = tiling.prefix(b)
        cur = {
            "load": round(p["a_bits"] + p["b_bits"] + p["z_read_bits"]),
            "compute": round(p["compute_cycles"]),
            "write": round(p["z_final_bits"] + p["z_partial_bits"]),
        }
        events.append(TileEvent(cur["load"] - prev["load"], cur["compute"] - prev["compute"], cur["write"] - prev["write"]))
        prev = cur
    return events, tiling.totals()


def _plan_gemm(
    op: GemmOp, index: int, machine: Machine, cap: Capacity, max_events: int | None, output_on_chip: bool,
    cache: dict | None, blocks: BlockGemm | None = None,
) -> OpPlan:
    mode = machine.mode_for(op.a_format, op.b_format, _label(index, op))
    rate = mode.macs_per_pe_per_cycle
    spec = machine.spec.array
    plan = plan_gemm(op.m, op.n, op.k, spec.rows, spec.cols, spec.dataflow, rate, mode.simd)
    dense_a = op.m * op.k * op.count
    dense_z = op.m * op.n * op.count
    out_density = op.elements / dense_z
    shape = GemmShape(
        m=op.m, n=op.n, k=op.k, count=op.count, plan=plan, macs_per_pe=rate,
        a_bits=bits_of(op.a_format) * op.a_tensor_elements / dense_a,
        b_bits=float(bits_of(op.b_format)),
        out_bits=bits_of(op.out_format) * out_density,
        acc_bits=bits_of(op.acc_format) * out_density,
        fold_overlap=spec.fold_overlap, write_output=not output_on_chip,
    )
    key = (shape, cap, max_events)
    hit = cache.get(key) if cache is not None else None
    if hit is None:
        try:
            tiling = tile_gemm(shape, cap)
        except TileFitError as exc:
            raise InputError.single(
                machine.file or machine.name, f"sram.{exc.buffer}_kib", f"op {_label(index, op)}: {exc}",
            ) from None
        hit = (tiling, *_gemm_events(tiling, max_events))
        if cache is not None:
            cache[key] = hit
    tiling, events, tot = hit
    compute = round(tot["compute_cycles"])
    peak = machine.peak_macs_per_cycle(mode)
    folds = plan.folds * op.count
    scale_bits = gemm_tensor_scale_bits(op)  # NVFP4's per-tensor scales, loaded with the first tile
    if scale_bits:
        events = [replace(events[0], load_bits=events[0].load_bits + scale_bits), *events[1:]]
    read_bits = round(tot["a_bits"] + tot["b_bits"] + tot["z_read_bits"]) + scale_bits  # as the events move them
    write_bits = round(tot["z_final_bits"] + tot["z_partial_bits"])

    counts = ActionCounts()
    a_bits, b_bits = bits_of(op.a_format), bits_of(op.b_format)
    acc_bits, out_bits = bits_of(op.acc_format), bits_of(op.out_format)
    acc = sram_accesses(op.m, op.n, op.k, plan)
    partial = acc.ofmap_writes - op.m * op.n
    counts.macs[mode.name] += op.macs
    gemm_block_counts(op, blocks, counts)
    # the array's own accesses (SCALE-Sim's counts for the dataflow)
    counts.sram_read_bits["ifmap"] += acc.ifmap_reads * a_bits * op.count
    counts.sram_read_bits["filter"] += acc.filter_reads * b_bits * op.count
    counts.sram_read_bits["ofmap"] += acc.ofmap_reads * acc_bits * op.count
    counts.sram_write_bits["ofmap"] += (partial * acc_bits + op.m * op.n * out_bits) * op.count
    # DRAM fills and write-backs, from the tiling
    counts.sram_write_bits["ifmap"] += round(tot["a_bits"]) + operand_tensor_scale_bits(op.a_format)
    counts.sram_write_bits["filter"] += round(tot["b_bits"]) + operand_tensor_scale_bits(op.b_format)
    counts.sram_write_bits["ofmap"] += round(tot["z_read_bits"])
    counts.sram_read_bits["ofmap"] += write_bits
    counts.dram_read_bits, counts.dram_write_bits = read_bits, write_bits
    counts.dram_scale_bits = round(
        tot["a_bits"] * scale_share(op.a_format) + tot["b_bits"] * scale_share(op.b_format)
        + (tot["z_final_bits"] + tot["z_read_bits"] + tot["z_partial_bits"]) * scale_share(op.out_format)
    ) + scale_bits
    return OpPlan(
        unit="array", mode=mode.name, macs=op.macs, ideal_cycles=-(-op.macs // peak),
        fill_drain_cycles=compute - folds * plan.streamed, compute_cycles=compute, work=op.macs,
        peak_per_cycle=peak, dram_read_bits=read_bits, dram_write_bits=write_bits,
        tiles=tiling.tiles, events=events, counts=counts, tiling=tiling,
    )


def _stream_events(passes: list[StreamPass], latency: int, latency_pass: int, max_events: int | None) -> tuple[list[TileEvent], int, int, int, int]:
    events: list[TileEvent] = []
    load_total = write_total = compute_total = tiles = 0
    for i, sp in enumerate(passes):
        bounds = event_boundaries(sp.tiles, max_events)
        prev = (0, 0, 0)
        pass_events = []
        for b in bounds[1:]:
            lb, wb, cc = sp.prefix(b)
            cur = (round(lb), round(wb), cc)
            pass_events.append(TileEvent(cur[0] - prev[0], cur[2] - prev[2], cur[1] - prev[1]))
            prev = cur
        if i == latency_pass and latency:
            last = pass_events[-1]
            pass_events[-1] = replace(last, compute_cycles=last.compute_cycles + latency)
        events += pass_events
        load_total += prev[0]
        write_total += prev[1]
        compute_total += prev[2]
        tiles += sp.tiles
    return events, load_total, write_total, compute_total + latency, tiles


def _stream_error(machine: Machine, index: int, op: Op, what: str) -> InputError:
    return InputError.single(
        machine.file or machine.name, "sram.ifmap_kib",
        f"op {_label(index, op)}: one element of {what} does not fit half of the ifmap/ofmap buffers",
    )


def _plan_rescale(
    op: RescaleOp, index: int, machine: Machine, cap: Capacity, max_events: int | None,
    input_on_chip: bool, output_on_chip: bool,
) -> OpPlan:
    spec = machine.spec.rescale
    lanes, latency = spec.lanes, spec.latency_cycles
    in_bits, out_bits = bits_of(op.in_format), bits_of(op.out_format)
    passes: list[StreamPass] = []
    resident = False
    if op.reduction in TENSOR_REDUCTIONS:   # a whole-tensor statistic first (a block's amax is in-stream)
        e = stream_tile_elements(op.elements, lanes, in_bits, 0, cap)
        if e <= 0:
            raise _stream_error(machine, index, op, "its input")
        passes.append(StreamPass("reduce", op.elements, e, 0 if input_on_chip else in_bits, 0, 1, lanes))
        resident = e >= op.elements
    e = stream_tile_elements(op.elements, lanes, in_bits, out_bits * op.copies, cap)
    if e <= 0:
        raise _stream_error(machine, index, op, "its input and outputs")
    load = 0 if resident or input_on_chip else in_bits
    write = 0 if output_on_chip else out_bits * op.copies
    passes.append(StreamPass("requantize", op.elements, e, load, write, op.copies, lanes))
    work = op.elements * rescale_passes(op)
    counts = ActionCounts()
    counts.rescale_elements += work
    rescale_block_counts(op, counts)
    plan = _stream_plan(
        "rescale", passes, lanes, latency, max_events, work, counts,
        sram_in_bits=op.elements * in_bits * len(passes), sram_out_bits=op.elements * out_bits * op.copies,
    )
    counts.dram_scale_bits = round(
        plan.dram_read_bits * scale_share(op.in_format) + plan.dram_write_bits * scale_share(op.out_format)
    )
    scale_bits = 0 if output_on_chip else rescale_tensor_scale_bits(op)
    counts.dram_scale_bits += scale_bits
    if scale_bits:  # NVFP4's tensor scale leaves with the last tile
        plan.events[-1] = replace(plan.events[-1], write_bits=plan.events[-1].write_bits + scale_bits)
        plan.dram_write_bits += scale_bits
        counts.dram_write_bits += scale_bits
        counts.sram_write_bits["ofmap"] += scale_bits
        counts.sram_read_bits["ofmap"] += scale_bits
    return plan


def _stream_plan(
    unit: str, passes: list[StreamPass], lanes: int, latency: int, max_events: int | None, work: int,
    counts: ActionCounts, sram_in_bits: int, sram_out_bits: int,
) -> OpPlan:
    """The plan of a streaming (rescale or vector) op from its passes: tile events, cycles, and
    the traffic counts — DRAM reads land in the ifmap buffer, the unit reads its inputs from there
    (``sram_in_bits``) and writes its outputs to the ofmap buffer (``sram_out_bits``), from which
    the DRAM writes leave."""
    events, read_bits, write_bits, compute, tiles = _stream_events(passes, latency, 0, max_events)
    ideal = -(-work // lanes)
    counts.dram_read_bits, counts.dram_write_bits = read_bits, write_bits
    counts.sram_write_bits["ifmap"] += read_bits
    counts.sram_read_bits["ifmap"] += sram_in_bits
    counts.sram_write_bits["ofmap"] += sram_out_bits
    counts.sram_read_bits["ofmap"] += write_bits
    return OpPlan(
        unit=unit, mode="", macs=0, ideal_cycles=ideal, fill_drain_cycles=compute - ideal,
        compute_cycles=compute, work=work, peak_per_cycle=lanes, dram_read_bits=read_bits,
        dram_write_bits=write_bits, tiles=tiles, events=events, counts=counts,
    )


def _plan_vector(
    op: VectorOp, index: int, machine: Machine, cap: Capacity, max_events: int | None,
    input_on_chip: bool, output_on_chip: bool,
) -> OpPlan:
    spec = machine.spec.vector
    lanes, latency = spec.lanes, spec.latency_cycles
    reads, writes, cyc = VECTOR_OPS[op.op]
    bits = bits_of(op.format)
    aux_bits = bits_of(op.aux_format) if op.aux_format else bits
    in_bits = bits + aux_bits * (reads - 1)
    e = stream_tile_elements(op.elements, lanes, in_bits, bits * writes, cap)
    if e <= 0:
        raise _stream_error(machine, index, op, "its operands")
    load = in_bits - (bits if input_on_chip else 0)
    write = 0 if output_on_chip else bits * writes
    passes = [StreamPass(op.op, op.elements, e, load, write, cyc, lanes)]
    work = op.elements * cyc
    counts = ActionCounts()
    if op.op == "hadamard":  # each lane-cycle is one butterfly add or subtract
        counts.butterflies[op.format] += work
    else:
        counts.vector_elements[op.format] += work
    return _stream_plan(
        "vector", passes, lanes, latency, max_events, work, counts,
        sram_in_bits=op.elements * in_bits, sram_out_bits=op.elements * bits * writes,
    )


def plan_op(
    op: Op, index: int, machine: Machine, cap: Capacity, max_events: int | None = MAX_TILE_EVENTS,
    input_on_chip: bool = False, output_on_chip: bool = False, cache: dict | None = None,
    blocks: BlockGemm | None = None,
) -> OpPlan:
    """Tile one op and cost its tile events (raises :class:`InputError` if the machine cannot run
    it). ``input_on_chip``/``output_on_chip``: the op's main input arrives from, or its output
    streams to, a fused neighbour (:mod:`accelsim.sim.fusion`) and does not cross DRAM. ``blocks``:
    how a GEMM that is a block dot product runs (:func:`~accelsim.sim.blocks.gemm_blocks`)."""
    if isinstance(op, GemmOp):
        return _plan_gemm(op, index, machine, cap, max_events, output_on_chip, cache, blocks)
    if isinstance(op, RescaleOp):
        return _plan_rescale(op, index, machine, cap, max_events, input_on_chip, output_on_chip)
    return _plan_vector(op, index, machine, cap, max_events, input_on_chip, output_on_chip)


def plan_ops(trace: Trace, machine: Machine, cap: Capacity, max_events: int | None = MAX_TILE_EVENTS) -> list[OpPlan]:
    """Plans of every op; all problems are reported at once (up to 20)."""
    plans: list[OpPlan] = []
    problems: list[Problem] = []
    only_modes = True
    cache: dict[tuple, OpPlan] = {}
    tilings: dict = {}  # GEMM shape -> tiling and events (repeated layers share them)
    residency = plan_residency(trace)
    seen_pairs: set[frozenset[str]] = set()
    for index, op in enumerate(trace.ops):
        if isinstance(op, GemmOp):
            pair = frozenset((op.a_format, op.b_format))
            if pair in seen_pairs:
                continue  # one problem per unsupported operand pair is enough
        flags = (residency.input_on_chip[index], residency.output_on_chip[index])
        blocks = gemm_blocks(trace.ops, index) if isinstance(op, GemmOp) else None
        key = (replace(op, deps=(), layer=""), flags, blocks)  # identical ops of different layers share a plan
        try:
            plan = cache.get(key)
            if plan is None:
                plan = cache[key] = plan_op(op, index, machine, cap, max_events, *flags, cache=tilings, blocks=blocks)
            plans.append(plan)
        except InputError as exc:
            problems.extend(exc.problems)
            only_modes = only_modes and isinstance(exc, UnsupportedOpError)
            if isinstance(exc, UnsupportedOpError) and isinstance(op, GemmOp):
                seen_pairs.add(frozenset((op.a_format, op.b_format)))
    if problems:
        raise (UnsupportedOpError if only_modes else InputError)(_first_per_field(problems))
    return plans


def _first_per_field(problems: list[Problem]) -> list[Problem]:
    """One problem per (file, field) — the first op that hits it — with a count of the others,
    except for unsupported modes, where each missing operand pair is its own problem."""
    kept: dict[tuple[str, str], list] = {}
    out: list[Problem] = []
    for p in problems:
        key = (p.file, p.field)
        if p.field == "array.modes" or key not in kept:
            kept.setdefault(key, [p, 0])
            out.append(p)
        else:
            kept[key][1] += 1
    return [
        Problem(p.file, p.field, f"{p.message} (and {kept[(p.file, p.field)][1]} more ops)")
        if p.field != "array.modes" and kept[(p.file, p.field)][1] else p
        for p in out
    ]


# ------------------------------------------------------------------------------------------------
# replay


def _cyc(t: float) -> int:
    """A simulation time as whole cycles (rounded down; ``floor(a + b) >= floor(a) + floor(b)``
    keeps every span at least as long as the whole-cycle work inside it)."""
    return math.floor(t + 1e-6)


def _after(prev: simpy.Event | None, ev: simpy.Event) -> None:
    """Trigger ``ev`` once ``prev`` has been processed (at once if it already has)."""
    if prev is None or prev.processed:
        ev.succeed()
    else:
        prev.callbacks.append(lambda _e: ev.succeed())


def _loader(env: simpy.Environment, dma: DmaEngine, events: list[TileEvent], loaded: list[simpy.Event],
            computed: list[simpy.Event], index: int, log: list[LogEntry] | None) -> Generator:
    slots = 2
    for k, ev in enumerate(events):
        if ev.load_bits <= 0:
            loaded[k].succeed()
            continue
        if k >= slots:
            yield computed[k - slots]
        on_end = None
        if log is not None:
            on_end = lambda s, e, k=k: log.append((index, "load", k, _cyc(s), _cyc(e)))  # noqa: E731
        yield from dma.transfer(ev.load_bits, loaded[k], on_end)


def _writer(env: simpy.Environment, dma: DmaEngine, events: list[TileEvent], computed: list[simpy.Event],
            written: list[simpy.Event], index: int, log: list[LogEntry] | None) -> Generator:
    for k, ev in enumerate(events):
        yield computed[k]
        if ev.write_bits <= 0:
            _after(written[k - 1] if k else None, written[k])
            continue
        on_end = None
        if log is not None:
            on_end = lambda s, e, k=k: log.append((index, "write", k, _cyc(s), _cyc(e)))  # noqa: E731
        yield from dma.transfer(ev.write_bits, written[k], on_end)


def _run_op(env: simpy.Environment, index: int, op: Op, plan: OpPlan, unit: Unit, done: list[simpy.Event],
            spans: list[tuple[int, int]], log: list[LogEntry] | None) -> Generator:
    deps = [done[d] for d in op.deps]
    if deps:
        yield env.all_of(deps)
    with unit.resource.request(priority=index) as req:
        yield req
        start = env.now
        events = plan.events
        n = len(events)
        loaded = [env.event() for _ in range(n)]
        computed = [env.event() for _ in range(n)]
        written = [env.event() for _ in range(n)]
        env.process(_loader(env, unit.load, events, loaded, computed, index, log))
        env.process(_writer(env, unit.store, events, computed, written, index, log))
        for k, ev in enumerate(events):
            yield loaded[k]
            if k >= 2:
                yield written[k - 2]
            if ev.compute_cycles:
                t0 = env.now
                yield env.timeout(ev.compute_cycles)
                if log is not None:
                    log.append((index, "compute", k, _cyc(t0), _cyc(env.now)))
            computed[k].succeed()
        yield written[n - 1]
        end = env.now
    unit.busy_cycles += end - start
    spans[index] = (_cyc(start), _cyc(end))
    done[index].succeed()


def simulate_step(
    trace: Trace,
    machine: Machine,
    *,
    log: list[LogEntry] | None = None,
    max_tile_events: int | None = _FROM_MACHINE,
) -> StepResult:
    """Replay one step of ``trace`` on ``machine``; return per-op timings and action counts.

    ``log``, if given, receives every tile event as ``(op index, "load"|"compute"|"write", event
    index, start cycle, end cycle)`` in the order they start. ``max_tile_events=None`` makes every
    SRAM tile its own event (slow on big ops; for checking the grouping); by default the machine's
    ``simulation.tile_events``.
    """
    if max_tile_events is _FROM_MACHINE:
        max_tile_events = machine.spec.simulation.tile_events
    env = simpy.Environment()
    hw = Accelerator(env, machine)
    plans = plan_ops(trace, machine, hw.capacity, max_tile_events)
    n = len(trace.ops)
    done = [env.event() for _ in range(n)]
    spans: list[tuple[int, int]] = [(0, 0)] * n
    for index, (op, plan) in enumerate(zip(trace.ops, plans)):
        env.process(_run_op(env, index, op, plan, hw.units[plan.unit], done, spans, log))
    env.run()
    results = []
    counts = ActionCounts()
    for index, (op, plan) in enumerate(zip(trace.ops, plans)):
        start, end = spans[index]
        total = end - start
        op_counts = plan.counts.copy()
        op_counts.cycles = total
        counts.add(op_counts)
        results.append(OpResult(
            index=index, op=op, unit=plan.unit, mode=plan.mode, macs=plan.macs,
            ideal_cycles=plan.ideal_cycles, fill_drain_cycles=plan.fill_drain_cycles,
            compute_cycles=plan.compute_cycles, stall_cycles=total - plan.compute_cycles,
            total_cycles=total, utilization=plan.work / (plan.peak_per_cycle * total) if total else 0.0,
            peak_per_cycle=plan.peak_per_cycle, dram_read_bits=plan.dram_read_bits,
            dram_write_bits=plan.dram_write_bits, start_cycle=start, counts=op_counts,
        ))
    makespan = max((r.start_cycle + r.total_cycles for r in results), default=0)
    counts.cycles = makespan
    return StepResult(machine=machine.name, ops=tuple(results), cycles=makespan, model="event", counts=counts)


def unit_busy_cycles(step: StepResult, machine: Machine | None = None) -> dict[str, int]:
    """Cycles each unit was occupied by an op (memory stalls included: a unit runs one op at a
    time, so this is the sum of its ops' ``total_cycles``). With ``machine``, also ``dram``: the
    cycles the interface was moving data, the step's DRAM bits over the bandwidth (exact up to
    rounding: the shared interface never idles while a transfer waits)."""
    busy = {"array": 0, "rescale": 0, "vector": 0}
    for r in step.ops:
        busy[r.unit] = busy.get(r.unit, 0) + r.total_cycles
    if machine is not None:
        bits = sum(r.dram_read_bits + r.dram_write_bits for r in step.ops)
        busy["dram"] = math.ceil(bits / machine.dram_bits_per_cycle)
    return busy
