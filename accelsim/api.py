"""Python entry points: load specs, build traces, time them, compare with the baseline, write reports.

Everything the CLI does is available here, without printing::

    from accelsim import api
    result = api.run("workloads/mlp-digits.yaml", "hwconfigs/int4-32x32.yaml")
    result.summary["speedup"]
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from accelsim import budget, energy
from accelsim.errors import InputError
from accelsim.hw.iso import IsoError, evaluation_bound, iso_resize
from accelsim.hw.tech import TechTable
from accelsim.hw.machine import Machine
from accelsim.numerics.formats import mode_key, parse_mode
from accelsim.numerics.policy import PrecisionPolicy
from accelsim.nn.datasets import FILE_DATASETS, Dataset, load_dataset
from accelsim.nn.model import check_trainable
from accelsim.nn.train import TrainResult, cache_lookup, cache_store, train
from accelsim.report.files import ReportFolderError, check_replaceable, report_folder_name
from accelsim.report.summary import build_summary
from accelsim.report.writers import write_run_report
from accelsim.sim.engine import simulate_step
from accelsim.sim.result import ActionCounts, StepResult
from accelsim.spec import load as spec_load
from accelsim.spec.models import HardwareSpec, LayerListModel, WorkloadSpec, derived_name, suggest
from accelsim.trace import Trace
from accelsim.workload.builder import build_step
from accelsim.workload.graph import GraphError, Network
from accelsim.spec.yamlio import load_yaml_file
from accelsim.workload.model import build_network, resolve_path
from accelsim.workload.topology import read_topology

#: Workload top-level keys and hardware top-level keys, for routing ``--set`` without a prefix.
_WORKLOAD_KEYS = set(WorkloadSpec.model_fields)
_HARDWARE_KEYS = set(HardwareSpec.model_fields)
#: ``--set`` prefixes: ``hw.`` (or ``hardware.``) is a hardware field of both machines, as a bare
#: hardware field is; ``policy_hw.`` the 4-bit machine only; ``baseline_hw.`` the baseline only.
SET_PREFIXES = {
    "workload": "workload", "hw": "hardware", "hardware": "hardware", "policy_hw": "policy_hw",
    "baseline_hw": "baseline_hw",
}
#: Hardware fields that belong to the 4-bit machine alone even without a prefix: its name, and the
#: ``baseline:`` file it names (the baseline machine's own ``baseline:`` means nothing).
POLICY_ONLY_FIELDS = ("name", "baseline")
#: Iso baselines (``--iso``): the baseline array resized to the 4-bit machine's area or power.
ISO_KINDS = ("area", "power")

#: progress(message, done, total): what is running now and, for long work, how far it is.
Progress = Callable[[str, "int | None", "int | None"], None]


# ------------------------------------------------------------------------------------------------
# loading


def split_sets(sets: Sequence[str]) -> dict[str, list[str]]:
    """Route ``--set PATH=VALUE`` items to the workload, the hardware of both machines, the 4-bit
    machine only (``policy_hw``) or the baseline machine only (``baseline_hw``).

    ``workload.``, ``hw.`` (or ``hardware.``), ``policy_hw.`` and ``baseline_hw.`` prefixes are
    explicit; without a prefix the first key decides (``array.rows`` is hardware, ``training.epochs``
    workload). Which hardware items reach which machine is :func:`resolve_machines`'s business.
    """
    routed: dict[str, list[str]] = {"workload": [], "hardware": [], "policy_hw": [], "baseline_hw": []}
    for item in sets:
        path, eq, value = item.partition("=")
        if not eq:
            raise InputError.single("--set", item, "expected PATH=VALUE, e.g. array.rows=64")
        head, _, rest = path.strip().partition(".")
        if head in SET_PREFIXES and rest:
            routed[SET_PREFIXES[head]].append(f"{rest}={value}")
            continue
        in_w, in_h = head in _WORKLOAD_KEYS, head in _HARDWARE_KEYS
        if in_w and in_h:
            raise InputError.single(
                "--set", item, f"{head!r} is a field of both the workload and the hardware; "
                f"write workload.{item} or hw.{item} (policy_hw.{item}: the 4-bit machine only)",
            )
        if not in_w and not in_h:
            keys = sorted(_WORKLOAD_KEYS | _HARDWARE_KEYS)
            raise InputError.single(
                "--set", item, f"unknown field {head!r}{suggest(head, keys)} (workload fields: "
                f"{', '.join(sorted(_WORKLOAD_KEYS))}; hardware fields: {', '.join(sorted(_HARDWARE_KEYS))})",
            )
        routed["workload" if in_w else "hardware"].append(item)
    return routed


def _has_mode(modes: Any, name: str) -> bool:
    """Whether ``modes`` (a hardware file's ``array.modes``) has the mode ``name`` (operand order
    and int4/uint4 sign aside, as :meth:`Machine.mode_for` matches them)."""
    if not isinstance(modes, dict):
        return False
    try:
        key = mode_key(*parse_mode(name))
    except (ValueError, KeyError, TypeError):
        return name in modes
    for other in modes:
        try:
            if mode_key(*parse_mode(str(other))) == key:
                return True
        except (ValueError, KeyError, TypeError):
            continue
    return False


def follows(item: str, baseline_data: dict[str, Any]) -> bool:
    """Whether a hardware ``--set`` item without a machine prefix also applies to a named baseline
    machine (whose file's data is ``baseline_data``): every field does, except the 4-bit machine's
    own (:data:`POLICY_ONLY_FIELDS`) and modes the baseline has not (``array.modes.M``,
    ``array.simd.M`` for a mode ``M`` it lacks; ``array``, ``array.modes`` or ``array.simd`` as a
    whole), which would add 4-bit datapaths to the 16-bit machine."""
    keys = [k for k in item.partition("=")[0].strip().split(".")]
    if keys[0] in POLICY_ONLY_FIELDS:
        return False
    if keys[0] == "array":
        if len(keys) == 1 or (len(keys) == 2 and keys[1] in ("modes", "simd")):
            return False
        if keys[1] in ("modes", "simd"):
            array = baseline_data.get("array") if isinstance(baseline_data, dict) else None
            return _has_mode((array or {}).get("modes"), keys[2])
    return True


@dataclass(frozen=True)
class Machines:
    """Both machines of a comparison, validated, with where the baseline came from and which
    hardware overrides reached each."""

    hardware: HardwareSpec
    baseline: HardwareSpec
    baseline_file: str
    source: str
    policy_sets: tuple[str, ...]
    baseline_sets: tuple[str, ...]


def resolve_machines(
    hardware_path: str | Path,
    routed: dict[str, list[str]],
    baseline_hw: str | Path | None = None,
    read: Callable[[Path], dict[str, Any]] = load_yaml_file,
) -> Machines:
    """The 4-bit machine and its baseline, with the routed hardware overrides applied.

    The 4-bit machine is its file with the hardware and ``policy_hw`` items. The baseline is
    ``baseline_hw`` (``--baseline-hw``), else the file the 4-bit machine's ``baseline:`` names, else
    the same machine in its 16-bit mode; it gets the hardware items that :func:`follows` lets
    through (all of them for the same machine), then the ``baseline_hw`` items. ``read`` loads a
    YAML file (a sweep passes a cached one)."""
    hpath = Path(hardware_path)
    hdata = read(hpath)
    common, own = list(routed.get("hardware", ())), list(routed.get("policy_hw", ()))
    policy_sets = common + own
    hardware = spec_load.validate_data(
        "hardware", spec_load.apply_sets(hdata, policy_sets, str(hpath)), str(hpath))
    assert isinstance(hardware, HardwareSpec)
    if baseline_hw is None and not hardware.baseline:
        baseline_sets = common + list(routed.get("baseline_hw", ()))
        baseline = spec_load.validate_data(
            "hardware", spec_load.apply_sets(hdata, baseline_sets, str(hpath)), str(hpath))
        assert isinstance(baseline, HardwareSpec)
        source = f"the same machine ({baseline.name}) in its 16-bit mode"
        return Machines(hardware, baseline, str(hpath), source + _with(baseline_sets), tuple(policy_sets),
                        tuple(baseline_sets))
    if baseline_hw is not None:
        bpath, how = Path(baseline_hw), "(--baseline-hw)"
    else:
        bpath, how = resolve_path(hpath.parent, hardware.baseline), f"(the 'baseline:' of {hpath})"
    bdata = read(bpath)
    baseline_sets = [item for item in common if follows(item, bdata)] + list(routed.get("baseline_hw", ()))
    baseline = spec_load.validate_data(
        "hardware", spec_load.apply_sets(bdata, baseline_sets, str(bpath)), str(bpath))
    assert isinstance(baseline, HardwareSpec)
    return Machines(hardware, baseline, str(bpath), f"{bpath} {how}{_with(baseline_sets)}", tuple(policy_sets),
                    tuple(baseline_sets))


def _with(sets: Sequence[str]) -> str:
    return f", with {', '.join(sets)}" if sets else ""


def implied_workload(path: Path) -> dict | None:
    """The workload a model file stands for: a SCALE-Sim topology CSV is an inference workload, an
    ONNX model an analytic training workload; None for a workload YAML."""
    kind = {".onnx": "onnx", ".csv": "topology"}.get(path.suffix.lower())
    if kind is None:
        return None
    data = {"version": 1, "name": derived_name(path.stem, kind), "model": {kind: str(path.resolve())}}
    return {**data, "phases": "inference"} if kind == "topology" else data


def load_workload(path: str | Path, sets: Sequence[str] = ()) -> WorkloadSpec:
    """Load a workload YAML, a SCALE-Sim topology CSV as an inference workload, or an ONNX model as
    an analytic training workload (``--set phases=inference`` for the forward pass)."""
    path = Path(path)
    data = implied_workload(path)
    if data is None:
        return _onnx_batch(spec_load.load_workload(path, list(sets)), path)
    if sets:
        data = spec_load.apply_sets(data, list(sets), str(path))
    return _onnx_batch(spec_load.validate_data("workload", data, str(path)), path)  # type: ignore[arg-type]


def _onnx_batch(spec: WorkloadSpec, path: Path) -> WorkloadSpec:
    """An ONNX workload without ``data.batch_size`` takes the graph's fixed batch (in the spec)."""
    if getattr(spec.model, "onnx", None) is None:
        return spec
    from accelsim.workload.onnx_import import with_graph_batch

    return with_graph_batch(spec, str(path))


def load_hardware(path: str | Path, sets: Sequence[str] = ()) -> HardwareSpec:
    return spec_load.load_hardware(Path(path), list(sets))


@dataclass(frozen=True)
class Setup:
    """Everything one comparison needs, loaded and validated."""

    workload: WorkloadSpec
    workload_file: str
    hardware: HardwareSpec
    hardware_file: str
    baseline_hardware: HardwareSpec
    baseline_hardware_file: str
    baseline_source: str
    policy: PrecisionPolicy
    baseline_policy: PrecisionPolicy
    network: Network
    table: TechTable
    baseline_table: TechTable
    sets: tuple[str, ...] = ()
    #: the hardware overrides each machine got (:func:`resolve_machines`)
    policy_sets: tuple[str, ...] = ()
    baseline_sets: tuple[str, ...] = ()
    #: ``None``, ``area`` or ``power``: the baseline array was resized to match the 4-bit machine
    iso: str | None = None
    #: what the resizing found (:func:`apply_iso`), ``None`` without ``iso``
    iso_details: dict[str, Any] | None = None

    @property
    def machine(self) -> Machine:
        return Machine(self.hardware, self.hardware_file)

    @property
    def baseline_machine(self) -> Machine:
        return Machine(self.baseline_hardware, self.baseline_hardware_file)


def prepare(
    workload_path: str | Path,
    hardware_path: str | Path,
    *,
    baseline_hw: str | Path | None = None,
    sets: Sequence[str] = (),
) -> Setup:
    """Load and validate the workload, both machines and both policies; build the network."""
    routed = split_sets(sets)
    wpath, hpath = Path(workload_path), Path(hardware_path)
    workload = load_workload(wpath, routed["workload"])
    machines = resolve_machines(hpath, routed, baseline_hw)
    hardware, baseline = machines.hardware, machines.baseline
    bfile, source = machines.baseline_file, machines.source
    wfile = str(wpath)
    policy = spec_load.resolved_policy(workload.precision, wfile, "precision")
    baseline_policy = spec_load.resolved_policy(workload.baseline, wfile, "baseline")
    network = build_network(workload, wfile, wpath.parent)
    check_trainable_workload(workload, network, wfile)
    table = energy.load_table(hardware.technology, hpath)
    energy.check_table_covers(table, Machine(hardware, str(hpath)))
    baseline_table = energy.load_table(baseline.technology, bfile)
    energy.check_table_covers(baseline_table, Machine(baseline, bfile))
    return Setup(
        workload=workload, workload_file=wfile, hardware=hardware, hardware_file=str(hpath),
        baseline_hardware=baseline, baseline_hardware_file=bfile, baseline_source=source,
        policy=policy, baseline_policy=baseline_policy, network=network, table=table,
        baseline_table=baseline_table, sets=tuple(sets), policy_sets=machines.policy_sets,
        baseline_sets=machines.baseline_sets,
    )


# ------------------------------------------------------------------------------------------------
# steps and traces


@dataclass(frozen=True)
class StepPlan:
    """How many steps a run takes and at which batch sizes (a last partial batch is its own step)."""

    batches: tuple[tuple[int, int], ...]  # (batch size, number of steps)

    @property
    def steps(self) -> int:
        return sum(n for _, n in self.batches)


def step_plan(spec: WorkloadSpec, network: Network, n_train: int | None = None, n_test: int | None = None) -> StepPlan:
    """Steps of the run: epochs over the training set, the test set for inference, else ``steps``."""
    batch = network.batch_size
    if spec.data.dataset is None or n_train is None:
        return StepPlan(((batch, spec.training.steps or 1),))
    if spec.phases == "training":
        samples, epochs = n_train, spec.training.epochs or 1
    else:
        samples, epochs = n_test or 0, 1
    full, rest = divmod(samples, batch)
    batches = [(batch, full * epochs)] if full else []
    if rest:
        batches.append((rest, epochs))
    return StepPlan(tuple(batches))


def build_traces(network: Network, phases: str, plan: StepPlan, policy: PrecisionPolicy) -> list[Trace]:
    """One trace per distinct batch size of the plan, each carrying its step count."""
    traces = []
    for batch, steps in plan.batches:
        net = dataclasses.replace(network, batch_size=batch)
        traces.append(build_step(net, policy, phases=phases, steps=steps))
    return traces


def load_data(spec: WorkloadSpec, network: Network, file: str) -> Dataset | None:
    """The workload's dataset, split and shaped for the network (``None`` for analytic workloads)."""
    if spec.data.dataset is None:
        return None
    data = load_dataset(spec.data, network.input_shape, Path(file).parent, file)
    last = network.layers[-1]
    what = "tokens" if data.metric != "accuracy" else "classes"
    if spec.phases == "training" and last.out_shape[-1] != data.classes:
        raise InputError.single(
            file, "model", f"the last layer {last.name!r} has {last.out_shape[-1]} outputs but dataset "
            f"{data.name!r} has {data.classes} {what}",
        )
    if spec.phases == "training" and data.y_train.ndim == 2 and len(last.out_shape) != 2:
        raise InputError.single(
            file, "model", f"dataset {data.name!r} has a target per token, so the last layer {last.name!r} must give "
            f"one per token, (tokens, {data.classes}); it gives {list(last.out_shape)}",
        )
    tokens = data.x_train.dtype.kind in "iu"
    for layer in network.layers:
        reads_input = not layer.inputs or "input" in layer.inputs
        if layer.type == "embedding" and tokens and layer.vocab < data.classes:
            raise InputError.single(
                file, "model", f"embedding {layer.name!r} has vocab {layer.vocab} but dataset {data.name!r} has "
                f"{data.classes} distinct tokens",
            )
        if tokens and reads_input and layer is network.layers[0] and layer.type != "embedding":
            raise InputError.single(
                file, "model", f"dataset {data.name!r} gives token ids: the first layer must be an embedding, "
                f"not {layer.type} {layer.name!r}",
            )
    return data


def dataset_sizes(spec: WorkloadSpec, network: Network, file: str) -> tuple[int | None, int | None]:
    """Training and test set sizes of a workload with data (``(None, None)`` for analytic ones)."""
    data = load_data(spec, network, file)
    return (None, None) if data is None else (data.n_train, data.n_test)


def trace_workload(path: str | Path, *, sets: Sequence[str] = (), baseline: bool = False) -> Trace:
    """The trace of one full-batch step of a workload (policy or baseline precision), with the
    run's step count."""
    routed = split_sets(sets)
    hardware_items = routed["hardware"] + routed["policy_hw"] + routed["baseline_hw"]
    if hardware_items:
        item = hardware_items[0]
        raise InputError.single("--set", item, "a trace has no hardware; set workload fields only")
    file = str(path)
    spec = load_workload(path, routed["workload"])
    role = "baseline" if baseline else "precision"
    policy = spec_load.resolved_policy(getattr(spec, role), file, role)
    network = build_network(spec, file, Path(path).parent)
    plan = step_plan(spec, network, *dataset_sizes(spec, network, file))
    return build_traces(network, spec.phases, plan, policy)[0]


def check_trainable_workload(spec: WorkloadSpec, network: Network, file: str) -> None:
    """A workload with a dataset and ``phases: training`` must be trainable: exit-2 input error
    naming the layer (its field path) and what can be trained otherwise."""
    if not spec.trained:
        return
    try:
        check_trainable(network)
    except GraphError as exc:
        names = [layer.name for layer in network.layers]
        where = "model"
        if isinstance(spec.model, LayerListModel) and exc.where in names:
            where = f"model.layers.{names.index(exc.where)}"
        raise InputError.single(file, where, f"layer {exc} (this workload has a dataset, so it is trained)") from None


def validate_file(path: Path, *, allow_long: bool = False) -> str:
    """Validate one file of any kind, as deeply as it can be checked alone; return its kind.

    A workload is refused for what ``run`` would refuse before it starts: its data files, its sizes
    and its cost (:mod:`accelsim.budget`; ``allow_long`` accepts long work).

    A sweep file's points are checked by :func:`accelsim.sweep.plan_points` (the sweep layer sits
    above this one)."""
    if path.suffix.lower() == ".csv":
        read_topology(path)
        return "SCALE-Sim topology"
    if path.suffix.lower() == ".onnx":
        spec = load_workload(path)
        network = build_network(spec, str(path), path.parent)
        budget.check_workload(spec, network, str(path), allow_long=allow_long)
        return "ONNX model"
    data = load_yaml_file(path)
    if "entries" in data and "node_nm" in data:
        energy.load_table_file(path)
        return "technology table"
    kind = spec_load.detect_kind(data, str(path))
    spec = spec_load.validate_data(kind, data, str(path))
    if isinstance(spec, WorkloadSpec):
        for role in ("precision", "baseline"):
            spec_load.resolved_policy(getattr(spec, role), str(path), role)
        network = build_network(spec, str(path), path.parent)
        check_trainable_workload(spec, network, str(path))
        # -- what run refuses before it starts (accelsim.budget; the data's own files) ----------
        budget.check_workload(spec, network, str(path), allow_long=allow_long)
        if spec.data.dataset in FILE_DATASETS:
            load_data(spec, network, str(path))
    elif isinstance(spec, HardwareSpec):
        energy.check_table_covers(energy.load_table(spec.technology, path), Machine(spec, str(path)))
        if spec.baseline:
            load_hardware(resolve_path(path.parent, spec.baseline))
    return kind


# ------------------------------------------------------------------------------------------------
# timing and comparison


@dataclass(frozen=True)
class RunTiming:
    """One precision on one machine: the main step's timing, the totals over the run, and their
    energy (``energy``: the ``energy_pj``/``energy_breakdown_pj``/``area_mm2`` fields;
    ``op_energy_pj``: per op of the main step). ``step_runs`` are every distinct step of the run
    with its number of steps (full batches, then a last partial batch), the main step first."""

    label: str
    precision: str
    machine: Machine
    trace: Trace
    step: StepResult
    steps: int
    cycles: int
    counts: ActionCounts
    energy: dict
    op_energy_pj: tuple[float, ...]
    step_runs: tuple[tuple[StepResult, int], ...] = ()
    table: TechTable | None = None

    @property
    def time_s(self) -> float:
        return self.cycles / self.machine.clock_hz

    @property
    def average_power_mw(self) -> float:
        """The run's energy over its time, mW (:func:`accelsim.energy.average_power_mw`)."""
        if not self.cycles:
            return 0.0
        if self.table is None:
            return self.energy["energy_pj"] / self.time_s * 1e-9
        return energy.average_power_mw(self.counts, self.machine, self.table)


class SimCache:
    """Step simulations already made, by trace and machine: an iso-power search measures the
    baseline on several arrays and keeps the one it picks, so the baseline is not simulated again;
    a sweep worker keeps one for all its points (points that share a baseline share its
    simulations). Passed explicitly (no module state); holds at most ``size`` steps, the least
    recently used dropped first. ``hits`` and ``misses`` count lookups."""

    def __init__(self, size: int = 64):
        self.size = size
        self._steps: OrderedDict[tuple[Trace, str], StepResult] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def simulate(self, trace: Trace, machine: Machine) -> StepResult:
        key = (trace, machine.spec.model_dump_json())
        step = self._steps.get(key)
        if step is not None:
            self.hits += 1
            self._steps.move_to_end(key)
            return step
        self.misses += 1
        step = simulate_step(trace, machine)
        self._steps[key] = step
        if len(self._steps) > self.size:
            self._steps.popitem(last=False)
        return step


def time_run(
    label: str, setup: Setup, plan: StepPlan, policy: PrecisionPolicy, machine: Machine, table: TechTable,
    cache: SimCache | None = None,
) -> RunTiming:
    traces = build_traces(setup.network, setup.workload.phases, plan, policy)
    simulate = cache.simulate if cache is not None else simulate_step
    results = [simulate(t, machine) for t in traces]
    total = ActionCounts()
    for r, t in zip(results, traces):
        total.add(r.counts.scaled(t.steps))
    energy.check_table_covers(table, machine, total)
    return RunTiming(
        label, policy.name, machine, traces[0], results[0], plan.steps, total.cycles, total,
        energy.energy_summary(total, machine, table),
        tuple(energy.ops_energy_pj(results[0], machine, table)),
        tuple((r, t.steps) for r, t in zip(results, traces)), table,
    )


# ------------------------------------------------------------------------------------------------
# iso baselines


def _resized_machine_measure(
    setup: Setup, iso: str, plan: StepPlan, cache: SimCache,
) -> tuple[Callable[[HardwareSpec], float], str]:
    """The measure an iso baseline matches, on a candidate baseline spec, and its key name."""
    bfile, table = setup.baseline_hardware_file, setup.baseline_table
    if iso == "area":
        return energy.area_measure(table, bfile), "area_mm2"
    traces = build_traces(setup.network, setup.workload.phases, plan, setup.baseline_policy)

    def power(spec: HardwareSpec) -> float:
        machine = Machine(spec, bfile)
        total = ActionCounts()
        for trace in traces:
            total.add(cache.simulate(trace, machine).counts.scaled(trace.steps))
        return energy.average_power_mw(total, machine, table)

    return power, "average_power_mw"


def apply_iso(setup: Setup, iso: str, plan: StepPlan, policy_run: RunTiming, cache: SimCache) -> Setup:
    """The setup with its baseline array resized (:func:`accelsim.hw.iso.iso_resize`) until the
    baseline's area (``iso="area"``) or its average power on this workload (``"power"``) matches
    the 4-bit machine's, within one row or column; the nearer of the two shapes around the target.

    ``setup.iso_details`` records ``measure`` (``area_mm2`` or ``average_power_mw``), the target
    and the resized baseline's value under ``target_<measure>`` and ``<measure>``, the relative
    error, the chosen ``rows``/``cols``, the ``original`` array and the two shapes around the target
    (``below``, ``above``: each ``rows``, ``cols`` and the measure), and the shapes measured
    (``evaluations``). An impossible target is an :class:`InputError` on ``--iso``."""
    if iso not in ISO_KINDS:
        raise InputError.single("--iso", str(iso), f"expected one of {', '.join(ISO_KINDS)}")
    measure, name = _resized_machine_measure(setup, iso, plan, cache)
    target = policy_run.energy["area_mm2"] if iso == "area" else policy_run.average_power_mw
    try:
        resized, d = iso_resize(setup.baseline_hardware, measure, target)
    except IsoError as exc:
        raise InputError.single(
            "--iso", iso, f"no {setup.baseline_hardware.name} array matches {setup.hardware.name}'s "
            f"{'area' if iso == 'area' else 'average power'}: {exc}",
        ) from None

    def shape(entry: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if entry is None else {"rows": entry["rows"], "cols": entry["cols"], name: entry["measure"]}

    details = {
        "measure": name, f"target_{name}": d["target"], name: d["measure"], "relative_error": d["relative_error"],
        "rows": d["rows"], "cols": d["cols"], "original": shape(d["baseline"]),
        "below": shape(d["below"]), "above": shape(d["above"]), "evaluations": d["evaluations"], "pick": d["pick"],
    }
    what = "area" if iso == "area" else "average power on this workload"
    unit = "mm²" if iso == "area" else "mW"
    source = (f"{setup.baseline_source}; its array resized from {d['baseline']['rows']}x{d['baseline']['cols']} "
              f"to {d['rows']}x{d['cols']} to match the 4-bit machine's {what} "
              f"({d['measure']:.4g} vs {d['target']:.4g} {unit}: iso {iso})")
    return dataclasses.replace(setup, baseline_hardware=resized, baseline_source=source, iso=iso, iso_details=details)


def iso_cost(workload: WorkloadSpec, network: Network, file: str, base: budget.Cost) -> budget.Cost:
    """``base`` plus what an iso-power search adds at most: the baseline replayed on
    :func:`accelsim.hw.iso.evaluation_bound` arrays."""
    one = budget.estimate_simulation(workload, network, file)
    evaluations = evaluation_bound()
    item = budget.CostItem(
        "iso-power search", "--iso", one.seconds / 2 * evaluations,
        f"the baseline replayed on up to {evaluations} array shapes",
    )
    return budget.Cost(base.file, (*base.items, item))


@dataclass
class RunResult:
    """The outcome of :func:`run`: the summary (``summary.json``), both timings, both trainings
    (when the workload is trained: one result per seed for each run), the report folder."""

    summary: dict
    policy: RunTiming
    baseline: RunTiming
    setup: Setup
    training: dict[str, list[TrainResult]] | None = None
    data: Dataset | None = None
    cached: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    out_dir: Path | None = None
    files: list[str] = field(default_factory=list)


def _train_one(args: tuple) -> TrainResult:
    """One training in a worker process (module-level: picklable for ``spawn``)."""
    network, data, policy, training, seed = args
    return train(network, data, policy, training, seed)


def train_both(
    setup: Setup, data: Dataset, cache_dir: Path | None, progress: Progress | None = None,
    jobs: int | None = None,
) -> tuple[dict[str, list[TrainResult]], tuple[str, ...], tuple[str, ...]]:
    """Train the workload in the policy and the baseline precision, once per seed of
    ``training.seeds`` (or take the trainings from the cache).

    Trainings not in the cache run in ``jobs`` worker processes (default: the CPU count; 1 trains
    in this process, with per-step progress). Every training is deterministic, so where it ran
    changes nothing. Returns the results per run label (``policy``, ``baseline``), the labels whose
    every seed came from the cache, and notes for the user (cache entries that failed their
    checksum and were retrained)."""
    seeds = setup.workload.training.seed_list
    training = setup.workload.training
    tasks = [(label, policy, seed) for label, policy in (("policy", setup.policy), ("baseline", setup.baseline_policy))
             for seed in seeds]
    done: dict[tuple[str, int], TrainResult] = {}
    notes: list[str] = []
    todo = []
    for label, policy, seed in tasks:
        result, status = cache_lookup(setup.network, data, policy, training, seed, cache_dir)
        if result is not None:
            done[(label, seed)] = result
            continue
        if status == "damaged":
            notes.append(f"the cached training of {policy.name} (seed {seed}) failed its checksum and was retrained")
        todo.append((label, policy, seed))
    cached = tuple(label for label in ("policy", "baseline")
                   if not any(t[0] == label for t in todo))
    workers = min(len(todo), jobs or os.cpu_count() or 1)
    if workers <= 1:
        for i, (label, policy, seed) in enumerate(todo):
            message = f"training {policy.name}, seed {seed} ({i + 1} of {len(todo)})"
            report = (lambda d, t, m=message: progress(m, d, t)) if progress else None
            done[(label, seed)] = train(setup.network, data, policy, training, seed, progress=report)
            cache_store(done[(label, seed)], setup.network, data, policy, training, seed, cache_dir)
    else:
        ctx = multiprocessing.get_context("spawn")
        if progress:
            progress(f"training {len(todo)} runs in {workers} processes", 0, len(todo))
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(_train_one, (setup.network, data, policy, training, seed)): (label, policy, seed)
                       for label, policy, seed in todo}
            for n, future in enumerate(as_completed(futures), start=1):
                label, policy, seed = futures[future]
                done[(label, seed)] = future.result()
                cache_store(done[(label, seed)], setup.network, data, policy, training, seed, cache_dir)
                if progress:
                    progress(f"training {len(todo)} runs in {workers} processes", n, len(todo))
    results = {label: [done[(label, seed)] for seed in seeds] for label in ("policy", "baseline")}
    return results, cached, tuple(notes)


def default_out_dir(setup: Setup, reports_dir: Path = Path("reports"), iso: str | None = None) -> Path:
    """``reports/<workload>-<hardware>``, plus the overrides and the iso baseline (``+iso-area``)."""
    extra = (f"iso={iso}",) if iso else ()
    return reports_dir / report_folder_name(setup.workload.name, setup.hardware.name, (*setup.sets, *extra))


def run(
    workload_path: str | Path,
    hardware_path: str | Path,
    *,
    out: str | Path | None = None,
    baseline_hw: str | Path | None = None,
    sets: Sequence[str] = (),
    iso: str | None = None,
    reports_dir: str | Path = "reports",
    write: bool = True,
    progress: Progress | None = None,
    cache_dir: str | Path | None = "default",
    plots: str = "summary",
    allow_long: bool = False,
    jobs: int | None = None,
    sim_cache: SimCache | None = None,
) -> RunResult:
    """Simulate the workload in its 4-bit policy and its baseline precision and compare them;
    train it in both precisions when it has a dataset.

    Nothing is written until every input has been validated and every number computed; the report
    folder then appears in one rename. Trainings are cached in ``cache_dir`` (default
    ``<reports_dir>/.cache/training``; ``None`` disables the cache) by a hash of everything they
    depend on, so re-runs and sweeps over hardware never retrain. ``plots`` is the plot level
    (``none``, ``summary``, ``all``; :mod:`accelsim.report.run_plots`). Work estimated to take
    longer than :data:`accelsim.budget.LIMIT_S` is refused before it starts unless ``allow_long``.
    Trainings run in ``jobs`` processes (default: the CPU count; :func:`train_both`).

    ``iso`` (``area`` or ``power``) resizes the baseline's array to the 4-bit machine's area or
    average power first (:func:`apply_iso`). Step simulations go through ``sim_cache`` (a new
    :class:`SimCache` if none is given; a sweep worker passes its own).
    """
    def note(message: str, done: int | None = None, total: int | None = None) -> None:
        if progress is not None:
            progress(message, done, total)

    if iso is not None and iso not in ISO_KINDS:
        raise InputError.single("--iso", str(iso), f"expected one of {', '.join(ISO_KINDS)}")
    setup = prepare(workload_path, hardware_path, baseline_hw=baseline_hw, sets=sets)
    # -- cost estimate (accelsim.budget): refuse what cannot finish, before anything starts -----
    cost = budget.check_setup(setup, allow_long=allow_long)
    if iso == "power":
        budget.check(iso_cost(setup.workload, setup.network, setup.workload_file, cost), allow_long=allow_long)
    out_dir = Path(out) if out is not None else default_out_dir(setup, Path(reports_dir), iso)
    if write:
        try:
            check_replaceable(out_dir)
        except ReportFolderError as exc:
            raise InputError.single(str(out_dir), "--out", str(exc)) from None
    note("loading the data")
    data = load_data(setup.workload, setup.network, setup.workload_file)
    sizes = (None, None) if data is None else (data.n_train, data.n_test)
    plan = step_plan(setup.workload, setup.network, *sizes)
    cache = sim_cache if sim_cache is not None else SimCache()
    note(f"timing {setup.policy.name} on {setup.hardware.name}")
    policy_run = time_run("policy", setup, plan, setup.policy, setup.machine, setup.table, cache)
    if iso is not None:
        note(f"resizing {setup.baseline_hardware.name} to {setup.hardware.name}'s {iso}")
        setup = apply_iso(setup, iso, plan, policy_run, cache)
    note(f"timing {setup.baseline_policy.name} on {setup.baseline_hardware.name}")
    baseline_run = time_run(
        "baseline", setup, plan, setup.baseline_policy, setup.baseline_machine, setup.baseline_table, cache,
    )

    training, cached, notes = None, (), ()
    if data is not None and setup.workload.phases == "training":
        cache_path = Path(reports_dir) / ".cache" / "training" if cache_dir == "default" else (
            Path(cache_dir) if cache_dir is not None else None)
        training, cached, notes = train_both(setup, data, cache_path, note, jobs=jobs)
    summary = build_summary(setup, policy_run, baseline_run, training)
    result = RunResult(
        summary=summary, policy=policy_run, baseline=baseline_run, setup=setup, training=training,
        data=data, cached=cached, notes=notes,
    )
    if write:
        note(f"writing {out_dir}")
        result.files = write_run_report(out_dir, result, plots)
        result.out_dir = out_dir
    return result
