"""SimPy components of the accelerator: DRAM, DMA engines, SRAM buffers and the three units.

Each component is a small class that takes the SimPy environment and its own spec explicitly; none
keeps module-level state, so simulations can run side by side (sweeps run many in parallel).

Time is counted in clock cycles. Compute events last whole cycles; DRAM transfers share the
bandwidth (:class:`Dram`) and may end between cycles; results are rounded down to whole cycles.
"""

from __future__ import annotations

import math
from typing import Callable, Generator

import simpy

from accelsim.hw.machine import Machine
from accelsim.sim.tiling import KIB_BITS, Capacity
from accelsim.spec.models import ArraySpec, DramSpec, RescaleSpec, VectorSpec

#: A timeline record: (op index, activity, tile-event index, start cycle, end cycle); activity is
#: ``load``, ``compute`` or ``write``. Loads and writes start when issued to DRAM and end when
#: their data has landed (last bit plus latency).
LogEntry = tuple[int, str, int, int, int]


class Dram:
    """Off-chip memory: one interface of ``bits_per_cycle`` that every transfer contends for.

    The bus is shared fairly: while ``n`` transfers are in flight each moves ``bits_per_cycle / n``
    bits per cycle (processor sharing), so an op's share of the bandwidth does not depend on how
    its tiles are grouped into events. It is work-conserving: the bus is never idle while a
    transfer waits. A transfer's data lands ``latency_cycles`` after its last bit moved; latency
    is pipelined (it does not hold the bus).
    """

    def __init__(self, env: simpy.Environment, spec: DramSpec, clock_ghz: float):
        self.env = env
        self.bits_per_cycle = spec.bandwidth_gbps / clock_ghz
        self.latency_cycles = math.ceil(spec.latency_ns * clock_ghz - 1e-9)
        self.busy_cycles = 0.0
        self.bits = 0
        self._active: list[list] = []   # [remaining bits, event to trigger when moved]
        self._last = 0.0
        self._generation = 0

    def transfer(self, bits: int) -> simpy.Event:
        """Start moving ``bits``; the returned event triggers when the last bit has crossed."""
        done = self.env.event()
        self.bits += bits
        if bits <= 0:
            done.succeed()
            return done
        self._advance()
        self._active.append([float(bits), done])
        self._schedule()
        return done

    def _advance(self) -> None:
        now = self.env.now
        elapsed = now - self._last
        self._last = now
        if elapsed <= 0 or not self._active:
            return
        self.busy_cycles += elapsed
        share = elapsed * self.bits_per_cycle / len(self._active)
        for item in self._active:
            item[0] -= share

    def _schedule(self) -> None:
        self._generation += 1
        if not self._active:
            return
        generation = self._generation
        low = min(item[0] for item in self._active)
        dt = max(low, 0.0) * len(self._active) / self.bits_per_cycle
        self.env.timeout(dt).callbacks.append(lambda _ev: self._on_timer(generation, low))

    def _on_timer(self, generation: int, low: float) -> None:
        if generation != self._generation:
            return  # superseded by a later arrival or completion
        self._advance()
        # the transfers the timer was set for (the fewest bits left) are done by construction, so
        # float rounding cannot leave a sliver that reschedules forever; so is any transfer within
        # a rounding error of them
        limit = min(item[0] for item in self._active) + max(1e-6, low * 1e-9)
        keep = []
        for item in self._active:
            if item[0] <= limit:
                item[1].succeed()
            else:
                keep.append(item)
        self._active = keep
        self._schedule()


class DmaEngine:
    """One DMA channel of a unit (``load`` into its buffers or ``store`` from them).

    Its transfers run one after another through the shared :class:`Dram`; the engine starts its
    next transfer as soon as the last bit of the current one has crossed, and signals each
    transfer's completion after the DRAM latency.
    """

    def __init__(self, env: simpy.Environment, name: str, dram: Dram):
        self.env = env
        self.name = name
        self.dram = dram
        self.bits = 0

    def transfer(self, bits: int, done: simpy.Event, on_end: Callable[[float, float], None] | None = None) -> Generator:
        """Move ``bits`` through DRAM, then trigger ``done`` after the latency. ``on_end(start,
        landed)`` is told when the transfer started and when its data landed."""
        env, dram = self.env, self.dram
        start = env.now
        yield dram.transfer(bits)
        self.bits += bits
        latency = dram.latency_cycles
        if on_end is not None:
            on_end(start, env.now + latency)
        if latency:
            env.timeout(latency).callbacks.append(lambda _ev: done.succeed())
        else:
            done.succeed()


class SramBuffer:
    """One on-chip buffer, double-buffered: a tile's data fills one half while the previous tile's
    half is in use, so ``slots`` (2) tiles can be resident at once."""

    slots = 2

    def __init__(self, env: simpy.Environment, name: str, kib: float):
        self.env = env
        self.name = name
        self.capacity_bits = kib * KIB_BITS

    @property
    def half_bits(self) -> float:
        return self.capacity_bits / self.slots


class Unit:
    """A compute unit that runs one op at a time; ready ops wait in trace order (a priority queue
    keyed by op index), so the replay is deterministic. Each unit has its own load and store DMA
    engine."""

    name = "unit"

    def __init__(self, env: simpy.Environment, dram: Dram):
        self.env = env
        self.resource = simpy.PriorityResource(env, capacity=1)
        self.load = DmaEngine(env, f"{self.name}.load", dram)
        self.store = DmaEngine(env, f"{self.name}.store", dram)
        self.busy_cycles = 0


class SystolicArray(Unit):
    """The ``rows × cols`` array: dataflow ``os``/``ws``/``is``; each mode (operand-format pair) runs
    at its MACs per PE per cycle along its SIMD dimension (``fp4r4xint4`` is the log4 gradient unit:
    shift and add). ``fold_overlap`` overlaps consecutive folds (ws/is: the next stationary operand
    preloads during the drain; os: double-buffered accumulators). The cycles of its tile events
    come from :mod:`accelsim.sim.fold` through the tiler."""

    name = "array"

    def __init__(self, env: simpy.Environment, spec: ArraySpec, dram: Dram):
        super().__init__(env, dram)
        self.rows = spec.rows
        self.cols = spec.cols
        self.dataflow = spec.dataflow
        self.modes = dict(spec.modes)
        self.fold_overlap = spec.fold_overlap


class RescaleUnit(Unit):
    """Requantizes tensors at ``lanes`` elements per cycle after a ``latency_cycles`` pipeline; a
    ``max``/``stats`` reduction is a pass over the tensor before the requantize pass, which writes
    ``copies`` outputs (two under Two-Phase Rounding)."""

    name = "rescale"

    def __init__(self, env: simpy.Environment, spec: RescaleSpec, dram: Dram):
        super().__init__(env, dram)
        self.lanes = spec.lanes
        self.latency_cycles = spec.latency_cycles


class VectorUnit(Unit):
    """Elementwise and reduction ops at ``lanes`` element-operations per cycle."""

    name = "vector"

    def __init__(self, env: simpy.Environment, spec: VectorSpec, dram: Dram):
        super().__init__(env, dram)
        self.lanes = spec.lanes
        self.latency_cycles = spec.latency_cycles


class Accelerator:
    """All components of one machine in one environment."""

    def __init__(self, env: simpy.Environment, machine: Machine):
        spec = machine.spec
        self.env = env
        self.dram = Dram(env, spec.dram, spec.clock_ghz)
        self.buffers = {
            name: SramBuffer(env, name, getattr(spec.sram, f"{name}_kib")) for name in ("ifmap", "filter", "ofmap")
        }
        self.array = SystolicArray(env, spec.array, self.dram)
        self.rescale = RescaleUnit(env, spec.rescale, self.dram)
        self.vector = VectorUnit(env, spec.vector, self.dram)
        self.units = {u.name: u for u in (self.array, self.rescale, self.vector)}

    @property
    def capacity(self) -> Capacity:
        b = self.buffers
        return Capacity(b["ifmap"].half_bits, b["filter"].half_bits, b["ofmap"].half_bits)
