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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from accelsim import budget, energy
from accelsim.errors import InputError
from accelsim.hw.tech import TechTable
from accelsim.hw.machine import Machine
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
SET_PREFIXES = {"workload": "workload", "hw": "hardware", "hardware": "hardware", "baseline_hw": "baseline_hw"}

#: progress(message, done, total): what is running now and, for long work, how far it is.
Progress = Callable[[str, "int | None", "int | None"], None]


# ------------------------------------------------------------------------------------------------
# loading


def split_sets(sets: Sequence[str]) -> dict[str, list[str]]:
    """Route ``--set PATH=VALUE`` items to the workload, the hardware or the baseline hardware.

    ``workload.``, ``hw.`` (or ``hardware.``) and ``baseline_hw.`` prefixes are explicit; without a
    prefix the first key decides (``array.rows`` is hardware, ``training.epochs`` workload).
    """
    routed: dict[str, list[str]] = {"workload": [], "hardware": [], "baseline_hw": []}
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
                f"write workload.{item} or hw.{item}",
            )
        if not in_w and not in_h:
            keys = sorted(_WORKLOAD_KEYS | _HARDWARE_KEYS)
            raise InputError.single(
                "--set", item, f"unknown field {head!r}{suggest(head, keys)} (workload fields: "
                f"{', '.join(sorted(_WORKLOAD_KEYS))}; hardware fields: {', '.join(sorted(_HARDWARE_KEYS))})",
            )
        routed["workload" if in_w else "hardware"].append(item)
    return routed


def load_workload(path: str | Path, sets: Sequence[str] = ()) -> WorkloadSpec:
    """Load a workload YAML, a SCALE-Sim topology CSV as an inference workload, or an ONNX model as
    an analytic training workload (``--set phases=inference`` for the forward pass)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        data = {"version": 1, "name": derived_name(path.stem, "onnx"), "model": {"onnx": str(path.resolve())}}
        if sets:
            data = spec_load.apply_sets(data, list(sets), str(path))
        return _onnx_batch(spec_load.validate_data("workload", data, str(path)), path)  # type: ignore[arg-type]
    if path.suffix.lower() == ".csv":
        data = {
            "version": 1, "name": _safe_name(path.stem), "phases": "inference",
            "model": {"topology": str(path.resolve())},
        }
        if sets:
            data = spec_load.apply_sets(data, list(sets), str(path))
        return spec_load.validate_data("workload", data, str(path))  # type: ignore[return-value]
    return _onnx_batch(spec_load.load_workload(path, list(sets)), path)


def _onnx_batch(spec: WorkloadSpec, path: Path) -> WorkloadSpec:
    """An ONNX workload without ``data.batch_size`` takes the graph's fixed batch (in the spec)."""
    if getattr(spec.model, "onnx", None) is None:
        return spec
    from accelsim.workload.onnx_import import with_graph_batch

    return with_graph_batch(spec, str(path))


def load_hardware(path: str | Path, sets: Sequence[str] = ()) -> HardwareSpec:
    return spec_load.load_hardware(Path(path), list(sets))


def _safe_name(stem: str) -> str:
    return derived_name(stem, "topology")


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
    hardware = load_hardware(hpath, routed["hardware"])
    if baseline_hw is not None:
        bpath = Path(baseline_hw)
        baseline = load_hardware(bpath, routed["baseline_hw"])
        source = f"{bpath} (--baseline-hw)"
        bfile = str(bpath)
    elif hardware.baseline:
        bpath = resolve_path(hpath.parent, hardware.baseline)
        baseline = load_hardware(bpath, routed["baseline_hw"])
        source = f"{bpath} (the 'baseline:' of {hpath})"
        bfile = str(bpath)
    else:
        if routed["baseline_hw"]:
            raise InputError.single("--set", routed["baseline_hw"][0], "baseline_hw.* needs a baseline hardware file")
        baseline, bfile = hardware, str(hpath)
        source = f"the same machine ({hardware.name}) in its 16-bit mode"
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
        baseline_table=baseline_table, sets=tuple(sets),
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
    if routed["hardware"] or routed["baseline_hw"]:
        item = (routed["hardware"] + routed["baseline_hw"])[0]
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
    ``op_energy_pj``: per op of the main step)."""

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

    @property
    def time_s(self) -> float:
        return self.cycles / self.machine.clock_hz


def time_run(
    label: str, setup: Setup, plan: StepPlan, policy: PrecisionPolicy, machine: Machine, table: TechTable,
) -> RunTiming:
    traces = build_traces(setup.network, setup.workload.phases, plan, policy)
    results = [simulate_step(t, machine) for t in traces]
    total = ActionCounts()
    for r, t in zip(results, traces):
        total.add(r.counts.scaled(t.steps))
    energy.check_table_covers(table, machine, total)
    return RunTiming(
        label, policy.name, machine, traces[0], results[0], plan.steps, total.cycles, total,
        energy.energy_summary(total, machine, table),
        tuple(energy.ops_energy_pj(results[0], machine, table)),
    )


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


def default_out_dir(setup: Setup, reports_dir: Path = Path("reports")) -> Path:
    return reports_dir / report_folder_name(setup.workload.name, setup.hardware.name, setup.sets)


def run(
    workload_path: str | Path,
    hardware_path: str | Path,
    *,
    out: str | Path | None = None,
    baseline_hw: str | Path | None = None,
    sets: Sequence[str] = (),
    reports_dir: str | Path = "reports",
    write: bool = True,
    progress: Progress | None = None,
    cache_dir: str | Path | None = "default",
    plots: str = "summary",
    allow_long: bool = False,
    jobs: int | None = None,
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
    """
    def note(message: str, done: int | None = None, total: int | None = None) -> None:
        if progress is not None:
            progress(message, done, total)

    setup = prepare(workload_path, hardware_path, baseline_hw=baseline_hw, sets=sets)
    # -- cost estimate (accelsim.budget): refuse what cannot finish, before anything starts -----
    budget.check_setup(setup, allow_long=allow_long)
    out_dir = Path(out) if out is not None else default_out_dir(setup, Path(reports_dir))
    if write:
        try:
            check_replaceable(out_dir)
        except ReportFolderError as exc:
            raise InputError.single(str(out_dir), "--out", str(exc)) from None
    note("loading the data")
    data = load_data(setup.workload, setup.network, setup.workload_file)
    sizes = (None, None) if data is None else (data.n_train, data.n_test)
    plan = step_plan(setup.workload, setup.network, *sizes)
    note(f"timing {setup.policy.name} on {setup.hardware.name}")
    policy_run = time_run("policy", setup, plan, setup.policy, setup.machine, setup.table)
    note(f"timing {setup.baseline_policy.name} on {setup.baseline_hardware.name}")
    baseline_run = time_run(
        "baseline", setup, plan, setup.baseline_policy, setup.baseline_machine, setup.baseline_table,
    )

    training, cached, notes = None, (), ()
    if data is not None and setup.workload.phases == "training":
        cache = Path(reports_dir) / ".cache" / "training" if cache_dir == "default" else (
            Path(cache_dir) if cache_dir is not None else None)
        training, cached, notes = train_both(setup, data, cache, note, jobs=jobs)
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
