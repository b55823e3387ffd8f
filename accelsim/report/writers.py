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

import yaml

from accelsim.report.files import atomic_write_text, publish_folder, staging_folder
from accelsim.report.markdown import render_report
from accelsim.report.run_plots import plot_run
from accelsim.report.summary import OPS_COLUMNS, op_rows

if TYPE_CHECKING:
    from accelsim.api import RunResult, Setup

LAYERS_COLUMNS = (
    "layer", "phase", "policy_cycles", "baseline_cycles", "speedup", "policy_macs",
    "policy_dram_bits", "baseline_dram_bits",
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
    """Per layer and phase: cycles of both runs (main step) and the speedup."""
    totals: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    order: list[tuple[str, str]] = []
    for label, run in (("policy", result.policy), ("baseline", result.baseline)):
        for r in run.step.ops:
            key = (r.op.layer, r.op.phase)
            if key not in totals:
                order.append(key)
            t = totals[key]
            t[f"{label}_cycles"] += r.total_cycles
            t[f"{label}_macs"] += r.macs
            t[f"{label}_dram_bits"] += r.dram_read_bits + r.dram_write_bits
    rows = []
    for layer, phase in order:
        t = totals[(layer, phase)]
        p, b = t["policy_cycles"], t["baseline_cycles"]
        rows.append({
            "layer": layer, "phase": phase, "policy_cycles": int(p), "baseline_cycles": int(b),
            "speedup": round(b / p, 6) if p else "", "policy_macs": int(t["policy_macs"]),
            "policy_dram_bits": int(t["policy_dram_bits"]), "baseline_dram_bits": int(t["baseline_dram_bits"]),
        })
    return rows


def finish_run_folder(folder: Path) -> list[str]:
    """Draw every plot of a run folder and write its ``report.md``, from the folder's files alone."""
    plots = plot_run(folder)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    config = yaml.safe_load((folder / "config.resolved.yaml").read_text(encoding="utf-8"))
    with open(folder / "layers.csv", newline="", encoding="utf-8") as fh:
        layers = list(csv.DictReader(fh))
    atomic_write_text(folder / "report.md", render_report(summary, config, layers, plots))
    return plots


def write_run_report(out_dir: Path, result: "RunResult") -> list[str]:
    """Write the run folder atomically; return the names of the files written."""
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
    staging = staging_folder(out_dir)
    try:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        plots = finish_run_folder(staging)
        publish_folder(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return list(files) + ["report.md"] + [f"plots/{name}" for name in plots]
