"""Cost estimates: refuse, before it starts, work that cannot finish in reasonable time or memory.

Every run, sweep and validation estimates what it is about to do from the specs alone — trained
steps × MACs and tensor elements, simulated ops, sweep points — in seconds, with a deliberately
simple and deterministic model (the same inputs always give the same estimate, on any machine; the
rates below were measured once on the project's 2-core machines and err on the slow side). Work
estimated above :data:`LIMIT_S` is refused with a :class:`BudgetError` that names the field that
drives the cost, the estimate and the limit; ``allow_long=True`` (the CLI's ``--allow-long``)
accepts it knowingly, and the CLI then shows its progress.

Some sizes are refused whatever the flag says, because no machine holds them or their figures stop
meaning anything (:data:`MAX_STEP_MACS`, :data:`MAX_SWEEP_POINTS`).

    cost = estimate_run(workload, network, sizes=(n_train, n_test), file="w.yaml")
    check(cost, allow_long=False)          # BudgetError (exit 2) if cost.seconds > LIMIT_S
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accelsim.errors import InputError, Problem

if TYPE_CHECKING:
    from accelsim.spec.models import WorkloadSpec
    from accelsim.workload.graph import Network

#: Work estimated to take longer than this is refused unless accepted (``--allow-long``), seconds.
LIMIT_S = 600.0
#: The CLI flag that accepts long work (named in the refusal).
FLAG = "--allow-long"

# Rates of the emulated training (NumPy, one BLAS thread), per precision: a fixed cost per layer
# and step, GEMM MACs (forward + two backward products), and elementwise passes over activations.
TRAIN_S_PER_LAYER_STEP = 0.5e-3
TRAIN_MACS_PER_S = 2e9
TRAIN_ELEMENT_PASSES = 6
TRAIN_ELEMENTS_PER_S = 1e9
# The event replay: ops per layer of one step and seconds per op (a few dozen tile events each).
SIM_OPS_PER_LAYER = {"training": 5, "inference": 2}
SIM_S_PER_OP = 0.5e-3
#: Fixed cost of one sweep point (loading, validating, tracing, writing its row), seconds.
POINT_OVERHEAD_S = 0.3

#: Largest forward MACs of one step: beyond it cycle counts leave 64-bit integers on any machine.
MAX_STEP_MACS = 10**18
#: Largest forward MACs of a whole timed run (steps × one step's MACs): a year of an exa-MAC/s machine.
MAX_RUN_MACS = 10**25
#: Largest number of points of a sweep, accepted or not: their plan alone would fill memory.
MAX_SWEEP_POINTS = 1_000_000
#: Points a sweep may have without ``--allow-long`` (before its time is even estimated).
SWEEP_POINTS_LIMIT = 10_000
#: Largest memory the emulated training may need for one step's tensors, bytes.
MAX_TRAIN_BYTES = 8 * 1024**3


class BudgetError(InputError):
    """Work refused before it started: too long (unless accepted) or too large (always)."""

    def __init__(self, problems: list[Problem] | Problem, *, acceptable: bool):
        super().__init__(problems)
        self.acceptable = acceptable


@dataclass(frozen=True)
class CostItem:
    """One part of the estimate: what it is, the field that drives it, its seconds, how it was
    reckoned."""

    what: str
    field: str
    seconds: float
    detail: str


@dataclass(frozen=True)
class Cost:
    file: str
    items: tuple[CostItem, ...]

    @property
    def seconds(self) -> float:
        return sum(item.seconds for item in self.items)

    def largest(self) -> CostItem | None:
        return max(self.items, key=lambda item: item.seconds, default=None)


def duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3.4 h``, ``5.1 days``, ``2.0e+03 years``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds < 730 * 86400:
        return f"{seconds / 86400:.1f} days"
    years = seconds / (365 * 86400)
    return f"{years:.3g} years" if years < 1e4 else f"{years:.1e} years"


# ------------------------------------------------------------------------------------------------
# estimates


def estimate_run(
    workload: "WorkloadSpec", network: "Network", sizes: tuple[int, int] | None, file: str,
) -> Cost:
    """What one ``accelsim run`` of ``workload`` costs: the trainings (if trained) and the replays
    of both machines. ``sizes`` are the train and test set sizes (``None``: analytic)."""
    items = [estimate_simulation(workload, network, file)]
    if workload.trained and sizes is not None:
        items.append(estimate_training(workload, network, sizes, file))
    return Cost(file, tuple(items))


def estimate_simulation(workload: "WorkloadSpec", network: "Network", file: str) -> CostItem:
    layers = len(network.layers)
    ops = layers * SIM_OPS_PER_LAYER.get(workload.phases, 5)
    batches = 2 if workload.data.dataset is not None else 1  # a last partial batch is its own trace
    seconds = 2 * batches * ops * SIM_S_PER_OP
    return CostItem(
        "simulation", "model", seconds,
        f"{layers:,} layers, about {ops:,} ops per step, replayed on 2 machines",
    )


def estimate_training(
    workload: "WorkloadSpec", network: "Network", sizes: tuple[int, int], file: str,
) -> CostItem:
    n_train, n_test = sizes
    batch = max(1, network.batch_size)
    epochs = workload.training.epochs or 1
    seeds = _seed_count(workload)
    steps = epochs * math.ceil(n_train / batch)
    eval_steps = epochs * math.ceil(n_test / batch)
    layers = len(network.layers)
    macs_sample = sum(layer.macs(1) for layer in network.layers)
    elements_sample = sum(layer.out_elements(1) for layer in network.layers)
    step_s = (
        TRAIN_S_PER_LAYER_STEP * layers
        + 3 * macs_sample * batch / TRAIN_MACS_PER_S
        + TRAIN_ELEMENT_PASSES * elements_sample * batch / TRAIN_ELEMENTS_PER_S
    )
    seconds = 2 * seeds * (steps + eval_steps / 3) * step_s
    runs = f"2 precisions × {seeds} seeds" if seeds > 1 else "2 precisions"
    return CostItem(
        "training", "training.epochs", seconds,
        f"{epochs:,} epochs × {math.ceil(n_train / batch):,} steps × {runs} at about "
        f"{duration(step_s) if step_s >= 1 else f'{step_s * 1e3:.1f} ms'} a step",
    )


def _seed_count(workload: "WorkloadSpec") -> int:
    seeds = getattr(workload.training, "seeds", None)  # a list of seeds, when the spec has them
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        return max(1, seeds)
    try:
        return max(1, len(seeds))  # type: ignore[arg-type]
    except TypeError:
        return 1


# ------------------------------------------------------------------------------------------------
# checks


def check(cost: Cost, *, allow_long: bool = False, limit_s: float = LIMIT_S) -> None:
    """Refuse ``cost`` when it exceeds ``limit_s`` (unless ``allow_long``), naming its largest part."""
    if allow_long or cost.seconds <= limit_s:
        return
    item = cost.largest()
    assert item is not None
    raise BudgetError(Problem(
        cost.file, item.field,
        f"this run would take about {duration(cost.seconds)} ({item.what}: {item.detail}), more than the "
        f"{duration(limit_s)} accelsim starts without asking; make it smaller, or pass {FLAG} to run it anyway",
    ), acceptable=True)


def check_sizes(workload: "WorkloadSpec", network: "Network", file: str) -> None:
    """Refuse networks whose step cannot be represented or held, whatever ``--allow-long`` says."""
    batch = max(1, network.batch_size)
    macs = sum(layer.macs(batch) for layer in network.layers)
    if macs > MAX_STEP_MACS:
        raise BudgetError(Problem(
            file, "model",
            f"one step has {macs:.3g} MACs, more than the {MAX_STEP_MACS:.0e} accelsim can count (its cycle "
            "figures would overflow); use smaller layers or a smaller data.batch_size",
        ), acceptable=False)
    steps = workload.training.steps or 1
    if not workload.trained and steps * macs > MAX_RUN_MACS:
        raise BudgetError(Problem(
            file, "training.steps",
            f"{steps:,} steps of {macs:.3g} MACs are {steps * macs:.3g} MACs, more than the {MAX_RUN_MACS:.0e} a timed "
            "run may have (a year of an exa-MAC/s machine); time fewer steps",
        ), acceptable=False)
    if workload.trained:
        elements = sum(layer.out_elements(batch) + layer.weight_elements() for layer in network.layers)
        need = elements * 4 * 4  # activations and weights, their quantized copies and gradients, fp32
        if need > MAX_TRAIN_BYTES:
            raise BudgetError(Problem(
                file, "data.batch_size",
                f"training one step needs about {need / 1024**3:,.1f} GiB for its tensors, more than the "
                f"{MAX_TRAIN_BYTES / 1024**3:.0f} GiB accelsim trains in; use a smaller batch or model",
            ), acceptable=False)


def sweep_point_count(lengths: list[int], zip_length: int | None) -> int:
    """Points of a sweep from its axis lengths, without expanding it."""
    return math.prod(lengths) * (zip_length if zip_length else 1)


def check_sweep_points(count: int, where: str, field: str, *, allow_long: bool = False) -> None:
    """Refuse a sweep of too many points before a single one is expanded or validated."""
    if count > MAX_SWEEP_POINTS:
        raise BudgetError(Problem(
            where, field,
            f"the sweep has {count:,} points, more than the {MAX_SWEEP_POINTS:,} accelsim can plan; "
            "sweep fewer values or split the sweep",
        ), acceptable=False)
    if count > SWEEP_POINTS_LIMIT and not allow_long:
        raise BudgetError(Problem(
            where, field,
            f"the sweep has {count:,} points (at {POINT_OVERHEAD_S:g} s or more each, at least "
            f"{duration(count * POINT_OVERHEAD_S)} of work), more than the {SWEEP_POINTS_LIMIT:,} accelsim starts "
            f"without asking; sweep fewer values, or pass {FLAG} to run it anyway",
        ), acceptable=True)


def check_sweep_time(
    count: int, point: Cost, trainings: int, workers: int, where: str, field: str, *,
    allow_long: bool = False, limit_s: float = LIMIT_S,
) -> None:
    """Refuse a sweep whose points (each costing ``point``'s replay, and ``trainings`` distinct
    trainings in all) would take longer than ``limit_s`` on ``workers`` workers."""
    sim = sum(i.seconds for i in point.items if i.what != "training")
    train = sum(i.seconds for i in point.items if i.what == "training")
    seconds = (count * (POINT_OVERHEAD_S + sim) + trainings * train) / max(1, workers)
    if allow_long or seconds <= limit_s:
        return
    parts = f"{count:,} points at about {POINT_OVERHEAD_S + sim:.2g} s each"
    if train:
        parts += f", {trainings:,} trainings at about {duration(train)} each"
    raise BudgetError(Problem(
        where, field,
        f"the sweep would take about {duration(seconds)} on {workers} worker{'s' if workers != 1 else ''} "
        f"({parts}), more than the {duration(limit_s)} accelsim starts without asking; sweep fewer values, "
        f"or pass {FLAG} to run it anyway",
    ), acceptable=True)


def check_workload(
    workload: "WorkloadSpec", network: "Network", file: str, *, allow_long: bool = False,
) -> Cost:
    """The checks of one run of ``workload`` before any data is loaded: sizes and built-in data
    first (always), then the time estimate (unless ``allow_long``). Returns the estimate."""
    from accelsim.nn import datasets

    check_sizes(workload, network, file)
    sizes = None
    if workload.data.dataset is not None:
        outputs = network.layers[-1].out_shape[-1] if workload.phases == "training" else None
        datasets.precheck(workload.data, network.input_shape, outputs, file)
        sizes = datasets.dataset_sizes_hint(workload.data, Path(file).parent, file)
    cost = estimate_run(workload, network, sizes, file)
    check(cost, allow_long=allow_long)
    return cost


def check_setup(setup: Any, *, allow_long: bool = False) -> Cost:
    """:func:`check_workload` for an :class:`accelsim.api.Setup`."""
    return check_workload(setup.workload, setup.network, setup.workload_file, allow_long=allow_long)
