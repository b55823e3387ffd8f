"""Benchmark of the report plots and of the CLI's start-up (not a test): ``python benchmarks/bench_plots.py``.

1. Plots of run folders of 1,000 to 10,000 layers (the schema's maximum): each folder holds the
   files a run writes (``summary.json``, ``config.resolved.yaml``, ``ops.csv``, ``layers.csv``) for
   a network of GEMM layers trained one step (per layer and run: three GEMMs, a rescale, two vector
   ops), written directly, not simulated. For each size: seconds per plot, the whole
   ``accelsim plot DIR`` (``--plots summary`` and ``all``) in process, and the largest PNG in px.
   Plotting must scale linearly: the 10,000-layer folder may take at most 1.5 × 5 times the
   2,000-layer one.
2. Start-up: wall time of ``accelsim validate`` on every shipped workload and hardware file
   (target < 1 s) and of ``accelsim --version``, best of three, and whether matplotlib was
   imported.
3. ``--folder DIR`` times ``accelsim plot`` on a real run folder instead of part 1.

Timings depend on the machine and on what else runs on it: re-run on a quiet machine.
Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1000, 2000, 5000, 10000)


def real_run() -> tuple[dict, dict]:
    """summary.json and config.resolved.yaml of a real run (ResNet-18 on int4-32x32), not written:
    the synthetic folders take their every key and replace the figures."""
    from accelsim import api
    from accelsim.report.writers import resolved_config

    result = api.run(ROOT / "workloads" / "resnet18.yaml", ROOT / "hwconfigs" / "int4-32x32.yaml", write=False)
    return result.summary, resolved_config(result.setup)


def write_folder(folder: Path, n_layers: int, template: tuple[dict, dict]) -> None:
    """A run folder of ``n_layers`` GEMM layers (see the module docstring)."""
    import copy

    import yaml

    from accelsim.report.summary import OPS_COLUMNS
    from accelsim.report.writers import LAYERS_COLUMNS, dumps_csv, dumps_json

    summary, config = copy.deepcopy(template)
    ops, layers = [], []
    ends = {}
    for run, slow in (("policy", 1), ("baseline", 3)):
        t, index = 0, 0
        for i in range(n_layers):
            name = f"stage{i // 100}.block{i % 100}.conv"
            for phase in ("fwd", "bwd_data", "bwd_weight"):
                total = slow * 1000 * (1 + (i * 7 + len(phase)) % 13)
                for kind, unit, cycles in (("gemm", "array", total), ("rescale", "rescale", total // 8),
                                           ("vector", "vector", total // 4)):
                    if kind != "gemm" and phase == "bwd_weight":
                        continue
                    ops.append({
                        "run": run, "index": index, "layer": name, "phase": phase, "kind": kind, "unit": unit,
                        "macs": cycles * 1024 * 4 // slow if kind == "gemm" else 0, "compute_cycles": cycles * 9 // 10,
                        "stall_cycles": cycles // 10, "total_cycles": cycles, "start_cycle": t,
                        "utilization": 0.9 / slow, "dram_read_bits": cycles * 300, "dram_write_bits": cycles * 50,
                        "energy_pj": cycles * 10.0,
                    })
                    index += 1
                    t += cycles if kind == "gemm" else 0
        ends[run] = t
    for i in range(n_layers):
        name = f"stage{i // 100}.block{i % 100}.conv"
        for phase in ("fwd", "bwd_data", "bwd_weight"):
            p = 1000 * (1 + (i * 7 + len(phase)) % 13)
            layers.append({"layer": name, "phase": phase, "policy_cycles": p, "baseline_cycles": 3 * p,
                           "speedup": 3.0, "policy_macs": p * 4096, "policy_dram_bits": p * 350,
                           "baseline_dram_bits": p * 1050, "policy_energy_pj": p * 10.0, "baseline_energy_pj": p * 30.0})
    breakdown = {"mac": 1e9, "sram": 4e8, "dram": 2e9, "rescale": 1e7, "vector": 5e7, "leakage": 1e8}
    for run, k in (("policy", 1), ("baseline", 3)):
        summary["runs"][run].update(
            cycles=ends[run], time_s=ends[run] * 1e-9, cycles_per_step=ends[run], stall_cycles_per_step=ends[run] // 10,
            energy_pj=sum(breakdown.values()) * k, energy_breakdown_pj={c: v * k for c, v in breakdown.items()},
        )
    summary.update(workload=f"net{n_layers}", speedup=3.0, energy_ratio=3.0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(dumps_json(summary))
    (folder / "config.resolved.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / "ops.csv").write_text(dumps_csv(OPS_COLUMNS, ops))
    (folder / "layers.csv").write_text(dumps_csv(LAYERS_COLUMNS, layers))


def time_plots(folder: Path) -> dict[str, float]:
    """Seconds per plot (all levels), drawn from the folder's files, in this process."""
    from accelsim.report import run_plots

    t0 = time.perf_counter()
    files = run_plots.RunFolder(folder)
    files.summary, files.config, files.layers, files.ops  # noqa: B018 - read them now, to time it
    out = {"read the files": time.perf_counter() - t0}
    draws = run_plots._draws(folder, files.summary, files.config, files.ops, files.layers)
    (folder / "plots").mkdir(exist_ok=True)
    for name, draw in draws.items():
        t = time.perf_counter()
        draw(folder / "plots" / name)
        out[name] = time.perf_counter() - t
    return out


def plot_command(folder: Path, level: str) -> float:
    from accelsim.report.plots import plot_folder

    t = time.perf_counter()
    plot_folder(folder, level)
    return time.perf_counter() - t


def largest_png(folder: Path) -> tuple[str, int, int]:
    from PIL import Image

    sizes = [(p.name, *Image.open(p).size) for p in sorted((folder / "plots").glob("*.png"))]
    return max(sizes, key=lambda s: s[1] * s[2])


def startup() -> dict[str, object]:
    files = sorted(str(p) for p in (ROOT / "workloads").glob("*.yaml")) + sorted(str(p) for p in (ROOT / "hwconfigs").glob("*.yaml"))
    exe = [sys.executable, "-c", "import sys; from accelsim.cli import main; code = main(sys.argv[1:]); "
           "print('matplotlib' in sys.modules, file=sys.stderr); sys.exit(code)"]
    result: dict[str, object] = {}
    for label, args in (("validate", ["validate", *files]), ("--version", ["--version"])):
        best, imported = float("inf"), None
        for _ in range(3):
            t = time.perf_counter()
            done = subprocess.run(exe + args, capture_output=True, text=True, cwd=ROOT)
            best = min(best, time.perf_counter() - t)
            imported = done.stderr.strip().splitlines()[-1:] if label == "validate" else imported
        result[label] = round(best, 3)
        if imported is not None:
            result["validate imports matplotlib"] = imported == ["True"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="time the plots of this run folder instead")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="layer counts")
    args = parser.parse_args()
    ok = True
    if args.folder:
        print(json.dumps({k: round(v, 3) for k, v in time_plots(args.folder).items()}, indent=2))
        for level in ("summary", "all"):
            print(f"accelsim plot --plots {level}: {plot_command(args.folder, level):.2f} s")
        return 0
    totals = {}
    template = real_run()
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            folder = Path(tmp) / f"net{n}"
            write_folder(folder, n, template)
            per_plot = time_plots(folder)
            summary_s, all_s = plot_command(folder, "summary"), plot_command(folder, "all")
            totals[n] = all_s
            name, w, h = largest_png(folder)
            print(f"{n:>6} layers: plot --plots summary {summary_s:6.2f} s, all {all_s:6.2f} s; largest {name} {w}x{h} px")
            print("        " + ", ".join(f"{k} {v:.2f} s" for k, v in per_plot.items()))
            ok &= w <= 1300 and h <= 1100
    if 2000 in totals and 10000 in totals:
        ratio = totals[10000] / totals[2000]
        print(f"10,000 / 2,000 layers: {ratio:.2f}x the time (linear: 5x; target <= 7.5x)")
        ok &= ratio <= 7.5
    s = startup()
    print(f"start-up: {json.dumps(s)} (target: validate < 1 s, no matplotlib)")
    ok &= s["validate"] < 1.0 and s["validate imports matplotlib"] is False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
