"""Sweep throughput: a 1,000-point sweep of the resnet18 training step, with 1 and 2 workers.

    python benchmarks/bench_sweep.py            # 1,000 points with 2 workers, and 100 with 1 and 2
    python benchmarks/bench_sweep.py --points 200

Prints points per second for each worker count, measured side by side in one run, and the wall
time of the full sweep (target: 1,000 points in under 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

from accelsim import sweep

ROOT = Path(__file__).resolve().parent.parent


def plan_of(n_points: int) -> sweep.SweepPlan:
    rows = [4, 8, 12, 16, 24, 32, 48, 64, 96, 128]
    cols = [4, 8, 12, 16, 24, 32, 48, 64, 96, 128]
    srams = [32, 48, 64, 96, 128, 192, 256, 384, 512, 1024]
    combos = list(itertools.islice(itertools.product(rows, cols, srams), n_points))
    return sweep.SweepPlan(
        name=f"bench-{n_points}",
        workload=ROOT / "workloads" / "resnet18.yaml",
        hardware=ROOT / "hwconfigs" / "int4-32x32.yaml",
        baseline_hw=None,
        grid=(),
        zip=(
            ("array.rows", tuple(c[0] for c in combos)),
            ("array.cols", tuple(c[1] for c in combos)),
            ("sram.ifmap_kib", tuple(c[2] for c in combos)),
        ),
        fixed=(("hw.baseline", None),),
    )


def timed(plan: sweep.SweepPlan, jobs: int) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        outcome = sweep.run_sweep(plan, Path(tmp) / "s", jobs=jobs)
        return time.perf_counter() - start, outcome.ok, outcome.failed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--rate-points", type=int, default=100, help="points for the 1-vs-2 worker rate")
    args = parser.parse_args()
    small = plan_of(args.rate_points)
    for jobs in (1, 2):
        wall, ok, failed = timed(small, jobs)
        print(f"{args.rate_points} points, {jobs} worker(s): {wall:.1f} s, {ok / wall:.2f} points/s ({failed} failed)")
    wall, ok, failed = timed(plan_of(args.points), 2)
    print(f"{args.points} points, 2 workers: {wall:.1f} s ({wall / 60:.2f} min), {ok / wall:.2f} points/s, {failed} failed")


if __name__ == "__main__":
    main()
