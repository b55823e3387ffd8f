"""Benchmark of the event engine (not a test): run ``python benchmarks/bench_sim.py``.

1. One ResNet-50 training step at batch 256 on the 32x32 output-stationary int4 machine (and its
   fp16 baseline): wall time (target < 2 s) and peak memory (target < 500 MB).
2. Side by side with SCALE-Sim 3.0.0 on three layers of the same network (batch 1, fp16 so one
   MAC per PE per cycle as in SCALE-Sim; same 32x32 array, os): the replay must give identical
   compute cycles (SCALE-Sim reports the last cycle's index: + 1) at least 100x faster; and the
   whole ``accelsim run`` command on a topology CSV of those layers (start-up, reports and default
   plots written) against the same SCALE-Sim runs, target 100x.

SCALE-Sim runs in-process when ``scalesim`` is importable; otherwise pass
``--scalesim-python /path/to/python`` of an environment that has it (``pip install scalesim==3.0.0
'numpy<2.4'``), or the comparison is skipped. Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("layer1.0.conv1", "layer3.1.conv1", "fc")  # forward GEMMs, 25 k to 68 k cycles on 32x32
sys.path.insert(0, str(ROOT / "tests"))
from scalesim_live import run_scalesim  # noqa: E402  (the tests' SCALE-Sim runner)


def scalesim_layer(m: int, n: int, k: int, rows: int, cols: int, dataflow: str) -> tuple[int, float]:
    """SCALE-Sim's reported compute cycles of one GEMM layer and its wall time (no trace files)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        (cycles,) = run_scalesim(Path(tmp), rows, cols, dataflow, f"Layer, M, N, K,\ng, {m}, {n}, {k},\n",
                                 gemm=True, sram_kb=(256, 256, 128))
        return cycles, time.perf_counter() - t0


def resnet50_step(batch: int):
    from accelsim import api

    setup = api.prepare(ROOT / "workloads/resnet50.yaml", ROOT / "hwconfigs/int4-32x32.yaml", sets=[f"data.batch_size={batch}"])
    plan = api.StepPlan(((batch, 1),))
    policy = api.build_traces(setup.network, "training", plan, setup.policy)[0]
    baseline = api.build_traces(setup.network, "training", plan, setup.baseline_policy)[0]
    return setup, policy, baseline


def bench_resnet50() -> bool:
    from accelsim.sim.engine import simulate_step

    setup, policy, baseline = resnet50_step(256)
    ok = True
    for label, trace, machine in (("policy", policy, setup.machine), ("baseline", baseline, setup.baseline_machine)):
        simulate_step(trace, machine)  # warm up imports and caches of the interpreter
        walls = []
        for _ in range(3):
            t0 = time.perf_counter()
            step = simulate_step(trace, machine)
            walls.append(time.perf_counter() - t0)
        tracemalloc.start()
        simulate_step(trace, machine)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        wall = min(walls)
        stall = step.stall_cycles / sum(r.total_cycles for r in step.ops)
        print(f"ResNet-50 b256 {label:8s} {trace.precision} on {machine.name}: {len(trace.ops)} ops, "
              f"{step.cycles:,} cycles ({100 * stall:.1f} % of op time stalled); "
              f"wall {wall:.2f} s (best of 3), peak traced memory {peak / 2**20:.0f} MB")
        ok &= wall < 2.0 and peak < 500 * 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"process peak RSS {rss:.0f} MB (interpreter, numpy, matplotlib and both traces included)")
    return ok


def bench_vs_scalesim(scalesim_python: str | None) -> bool:
    from accelsim.sim.engine import simulate_step
    from accelsim.trace import Trace
    from dataclasses import replace

    setup, _, baseline = resnet50_step(1)
    machine = setup.baseline_machine  # fp16: one MAC per PE per cycle, like SCALE-Sim
    ops = {op.layer: op for op in baseline.ops if op.kind == "gemm" and op.phase == "fwd" and op.layer in LAYERS}
    try:
        import scalesim  # noqa: F401
        run = lambda *a: scalesim_layer(*a)  # noqa: E731
    except ImportError:
        if not scalesim_python:
            print("SCALE-Sim not importable and no --scalesim-python given: side-by-side skipped")
            return True

        def run(*a):
            out = subprocess.run([scalesim_python, __file__, "--scalesim-worker", *map(str, a)],
                                 check=True, capture_output=True, text=True).stdout
            return tuple(json.loads(out.strip().splitlines()[-1]))

    ok = True
    total_ss = total_ours = 0.0
    print(f"{'layer':16s} {'M':>6s} {'N':>5s} {'K':>5s} {'SCALE-Sim':>10s} {'ours':>10s} {'SS s':>7s} {'ours s':>8s} {'ratio':>8s}")
    for name in LAYERS:
        op = replace(ops[name], deps=())
        ss_cycles, ss_wall = run(op.m, op.n, op.k, machine.rows, machine.cols, machine.dataflow)
        trace = Trace("layer", (op,))
        simulate_step(trace, machine)
        t0 = time.perf_counter()
        reps = 20
        for _ in range(reps):
            r = simulate_step(trace, machine).ops[0]
        ours_wall = (time.perf_counter() - t0) / reps
        same = r.compute_cycles == ss_cycles + 1
        ok &= same and ss_wall / ours_wall >= 100
        total_ss += ss_wall
        total_ours += ours_wall
        print(f"{name:16s} {op.m:6d} {op.n:5d} {op.k:5d} {ss_cycles + 1:10d} {r.compute_cycles:10d} {ss_wall:7.2f} "
              f"{ours_wall:8.4f} {ss_wall / ours_wall:7.0f}x{'' if same else '  CYCLES DIFFER'}")
    print(f"three layers: SCALE-Sim {total_ss:.1f} s, event engine {total_ours * 1000:.1f} ms: "
          f"{total_ss / total_ours:.0f}x faster, identical compute cycles")
    # the whole command a user runs on the same three layers: start-up, both machines, every
    # report file and the default plots, in a fresh process (best of three)
    with tempfile.TemporaryDirectory() as tmp:
        topology = Path(tmp) / "three.csv"
        topology.write_text("Layer, M, N, K,\n" + "".join(
            f"{name}, {ops[name].m}, {ops[name].n}, {ops[name].k},\n" for name in LAYERS))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        walls = []
        for i in range(3):
            t0 = time.perf_counter()
            subprocess.run([str(Path(sys.executable).with_name("accelsim")), "run", str(topology), "hwconfigs/int4-32x32.yaml",
                            "--out", str(Path(tmp) / f"out{i}")], check=True, capture_output=True, env=env)
            walls.append(time.perf_counter() - t0)
    cli_wall = min(walls)
    cli_ok = total_ss / cli_wall >= 100
    print(f"whole CLI on the same layers (accelsim run three.csv, reports and default plots written): "
          f"{cli_wall:.2f} s wall, {total_ss / cli_wall:.0f}x faster than SCALE-Sim in process"
          f"{'' if cli_ok else ' (target 100x missed)'}")
    return ok and cli_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scalesim-python", help="python of an environment with scalesim installed")
    parser.add_argument("--scalesim-worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scalesim_worker:
        m, n, k, rows, cols = map(int, args.scalesim_worker[:5])
        print(json.dumps(scalesim_layer(m, n, k, rows, cols, args.scalesim_worker[5])))
        return 0
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    ok = bench_resnet50()
    ok &= bench_vs_scalesim(args.scalesim_python)
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
