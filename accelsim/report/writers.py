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
TRAINING_COLUMNS = (
    "epoch", "policy_train_loss", "policy_train_accuracy", "policy_test_loss", "policy_test_accuracy",
    "baseline_train_loss", "baseline_train_accuracy", "baseline_test_loss", "baseline_test_accuracy",
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


def resolved_config(setup: "Setup") -> dict[str, Any]:
    """Every input with every default filled in: the definitive record of what was simulated."""
    return {
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
    fidelity = {
        label: tr.grad_fidelity for label, tr in (result.training or {}).items()
    }
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


def training_rows(training: dict[str, "TrainResult"]) -> list[dict[str, Any]]:
    rows = []
    for p, b in zip(training["policy"].history, training["baseline"].history):
        row: dict[str, Any] = {"epoch": p.epoch}
        for label, h in (("policy", p), ("baseline", b)):
            row.update({
                f"{label}_train_loss": round(h.train_loss, 6), f"{label}_train_accuracy": round(h.train_accuracy, 6),
                f"{label}_test_loss": round(h.test_loss, 6), f"{label}_test_accuracy": round(h.test_accuracy, 6),
            })
        rows.append(row)
    return rows


def numerics_npz(result: "RunResult") -> bytes:
    """Gradient samples of both trainings and one input image: what the numerics plots draw."""
    assert result.training is not None and result.data is not None
    image = result.data.x_test[0]
    side = int(round(image.size ** 0.5))
    image = image.reshape(side, side) if side * side == image.size else image.reshape(image.shape[-2:])
    buf = io.BytesIO()
    np.savez(
        buf,
        policy_grad_sample=result.training["policy"].grad_sample,
        baseline_grad_sample=result.training["baseline"].grad_sample,
        policy_grad_layer=np.array(result.training["policy"].grad_layer or ""),
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
        files["training.csv"] = dumps_csv(TRAINING_COLUMNS, training_rows(result.training))
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
