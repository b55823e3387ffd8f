"""Writers of the run folder: ``config.resolved.yaml``, ``summary.json``, ``ops.csv``, ``layers.csv``.

The whole folder is staged beside its destination and published with one rename
(:mod:`accelsim.report.files`), so an interrupted run never leaves a report that looks complete.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import yaml

from accelsim.atomic import atomic_write_text
from accelsim.report.files import publish_folder, staging_folder
from accelsim.report.markdown import render_report
from accelsim.report.summary import OPS_COLUMNS, op_rows

if TYPE_CHECKING:
    from accelsim.api import RunResult, Setup
    from accelsim.nn.train import TrainResult

LAYERS_COLUMNS = (
    "layer", "phase", "policy_cycles", "baseline_cycles", "speedup", "policy_macs",
    "policy_dram_bits", "baseline_dram_bits", "policy_energy_pj", "baseline_energy_pj",
    "policy_grad_cosine", "baseline_grad_cosine",
)
TRAINING_METRICS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "status")
TRAINING_COLUMNS = (
    "seed", "epoch",
    *(f"policy_{m}" for m in TRAINING_METRICS), *(f"baseline_{m}" for m in TRAINING_METRICS),
)


def dumps_json(data: Any) -> str:
    """Deterministic JSON: fixed key order (insertion), two-space indent, trailing newline."""
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def dumps_csv(columns: Iterable[str], rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def environment() -> dict[str, Any]:
    """Versions of what computed the results: accelsim, Python, NumPy and the BLAS NumPy loaded
    (its name, version, the kernel it chose for this CPU and its thread count, as threadpoolctl
    reports them). The results do not depend on them; the record says where they were made."""
    import platform

    import numpy
    import threadpoolctl

    import accelsim

    blas = [
        {key: info.get(key) for key in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
        for info in threadpoolctl.threadpool_info() if info.get("user_api") == "blas"
    ]
    return {
        "accelsim": accelsim.__version__, "python": platform.python_version(), "numpy": numpy.__version__,
        "machine": platform.machine(), "blas": blas,
    }


def resolved_config(setup: "Setup") -> dict[str, Any]:
    """Every input with every default filled in: the definitive record of what was simulated, and
    the environment that computed it."""
    return {
        "environment": environment(),
        "workload_file": setup.workload_file,
        "hardware_file": setup.hardware_file,
        "baseline_hardware_file": setup.baseline_hardware_file,
        "baseline_hardware_source": setup.baseline_source,
        "overrides": list(setup.sets),
        "workload": setup.workload.model_dump(mode="json"),
        "hardware": setup.hardware.model_dump(mode="json"),
        "baseline_hardware": setup.baseline_hardware.model_dump(mode="json"),
        "precision": setup.policy.model_dump(mode="json"),
        "baseline_precision": setup.baseline_policy.model_dump(mode="json"),
    }


def layer_rows(result: "RunResult") -> list[dict[str, Any]]:
    """Per layer and phase (main step): cycles, DRAM bits and energy of both runs, the speedup,
    and — for trained workloads — the gradient fidelity: the cosine similarity of the gradient
    that phase's GEMM read (quantized) with the fp32 gradient, averaged over epochs."""
    totals: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    order: list[tuple[str, str]] = []
    for label, run in (("policy", result.policy), ("baseline", result.baseline)):
        for r, energy_pj in zip(run.step.ops, run.op_energy_pj):
            key = (r.op.layer, r.op.phase)
            if key not in totals:
                order.append(key)
            t = totals[key]
            t[f"{label}_cycles"] += r.total_cycles
            t[f"{label}_macs"] += r.macs
            t[f"{label}_dram_bits"] += r.dram_read_bits + r.dram_write_bits
            t[f"{label}_energy_pj"] += energy_pj
    fidelity = {label: mean_fidelity(results) for label, results in (result.training or {}).items()}
    rows = []
    for layer, phase in order:
        t = totals[(layer, phase)]
        p, b = t["policy_cycles"], t["baseline_cycles"]
        rows.append({
            "layer": layer, "phase": phase, "policy_cycles": int(p), "baseline_cycles": int(b),
            "speedup": round(b / p, 6) if p else "", "policy_macs": int(t["policy_macs"]),
            "policy_dram_bits": int(t["policy_dram_bits"]), "baseline_dram_bits": int(t["baseline_dram_bits"]),
            "policy_energy_pj": t["policy_energy_pj"], "baseline_energy_pj": t["baseline_energy_pj"],
            **{
                f"{label}_grad_cosine": _round(fidelity.get(label, {}).get(layer, {}).get(phase))
                for label in ("policy", "baseline")
            },
        })
    return rows


def _round(value: float | None) -> Any:
    return "" if value is None else round(value, 6)


def mean_fidelity(results: "list[TrainResult]") -> dict[str, dict[str, float]]:
    """Gradient fidelity per layer and GEMM, averaged over the seeds (in seed order)."""
    sums: dict[tuple[str, str], list[float]] = {}
    for r in results:
        for layer, phases in r.grad_fidelity.items():
            for phase, value in phases.items():
                sums.setdefault((layer, phase), []).append(value)
    out: dict[str, dict[str, float]] = {}
    for (layer, phase), values in sums.items():
        out.setdefault(layer, {})[phase] = sum(values) / len(values)
    return out


def pact_columns(training: dict[str, "list[TrainResult]"]) -> list[str]:
    """``policy_pact_alpha.<layer>`` (and baseline) columns: the PACT clip value per epoch."""
    cols = []
    for label in ("policy", "baseline"):
        layers = dict.fromkeys(name for r in training[label] for h in r.history for name in h.pact_alpha)
        cols += [f"{label}_pact_alpha.{name}" for name in layers]
    return cols


def _cell(value: float) -> Any:
    return "" if value is None or value != value else round(value, 6)


def training_rows(training: dict[str, "list[TrainResult]"]) -> list[dict[str, Any]]:
    """One row per seed and epoch, both precisions side by side (a run that diverged has its
    status in the epoch where it stopped and no rows after it)."""
    rows = []
    for p_run, b_run in zip(training["policy"], training["baseline"], strict=True):
        for i in range(max(len(p_run.history), len(b_run.history))):
            row: dict[str, Any] = {"seed": p_run.seed, "epoch": i + 1}
            for label, run in (("policy", p_run), ("baseline", b_run)):
                if i >= len(run.history):
                    row[f"{label}_status"] = "stopped"
                    continue
                h = run.history[i]
                row.update({
                    f"{label}_train_loss": _cell(h.train_loss), f"{label}_train_accuracy": _cell(h.train_accuracy),
                    f"{label}_test_loss": _cell(h.test_loss), f"{label}_test_accuracy": _cell(h.test_accuracy),
                    f"{label}_status": h.status,
                    **{f"{label}_pact_alpha.{name}": round(a, 6) for name, a in h.pact_alpha.items()},
                })
            rows.append(row)
    return rows


def input_format(trace) -> str:
    """The format the network input enters the first layer in (``int4`` when it is stretched onto
    −8…7)."""
    for op in trace.ops:
        if op.kind == "rescale" and op.tensor == "input":
            return op.out_format
        if op.kind == "gemm":
            return op.a_format
    return ""


def numerics_npz(result: "RunResult") -> bytes:
    """Gradient samples of both trainings and one input image: what the numerics plots draw."""
    assert result.training is not None and result.data is not None
    image = result.data.x_test[0]
    side = int(round(image.size ** 0.5))
    image = image.reshape(side, side) if side * side == image.size else image.reshape(image.shape[-2:])
    buf = io.BytesIO()
    np.savez(
        buf,
        policy_grad_sample=result.training["policy"][0].grad_sample,
        baseline_grad_sample=result.training["baseline"][0].grad_sample,
        policy_grad_layer=np.array(result.training["policy"][0].grad_layer or ""),
        policy_input_format=np.array(input_format(result.policy.trace)),
        baseline_input_format=np.array(input_format(result.baseline.trace)),
        image=image.astype(np.float32),
    )
    return buf.getvalue()


def finish_run_folder(folder: Path, plots: str = "summary") -> list[str]:
    """Draw the plots of level ``plots`` (``none``, ``summary``, ``all``; see
    :mod:`accelsim.report.run_plots`) and write ``report.md``, from the folder's files alone.
    Return the plots drawn; ``report.md`` shows every plot in the folder (drawn now or earlier).
    Matplotlib is imported only when a plot is drawn."""
    from accelsim.report.run_plots import RunFolder, existing_plots, plot_run

    files = RunFolder(folder)
    drawn = plot_run(folder, plots, files)
    atomic_write_text(
        folder / "report.md", render_report(files.summary, files.config, files.layers, existing_plots(folder)),
    )
    return drawn


def write_run_report(out_dir: Path, result: "RunResult", plots: str = "summary") -> list[str]:
    """Write the run folder atomically, with the plots of level ``plots``; return the names of
    the files written."""
    files = {
        "config.resolved.yaml": yaml.safe_dump(resolved_config(result.setup), sort_keys=False, allow_unicode=True),
        "summary.json": dumps_json(result.summary),
        "ops.csv": dumps_csv(
            OPS_COLUMNS,
            op_rows("policy", result.policy.step.ops, result.policy.op_energy_pj)
            + op_rows("baseline", result.baseline.step.ops, result.baseline.op_energy_pj),
        ),
        "layers.csv": dumps_csv(LAYERS_COLUMNS, layer_rows(result)),
    }
    if result.training:
        files["training.csv"] = dumps_csv(
            (*TRAINING_COLUMNS, *pact_columns(result.training)), training_rows(result.training),
        )
    staging = staging_folder(out_dir)
    try:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        if result.training:
            (staging / "numerics.npz").write_bytes(numerics_npz(result))
        drawn = finish_run_folder(staging, plots)
        publish_folder(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    extra = ["numerics.npz"] if result.training else []
    return list(files) + extra + ["report.md"] + [f"plots/{name}" for name in drawn]
