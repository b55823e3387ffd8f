"""Emulated training cost: INT4 (the paper's recipe) vs FP32 on cnn-digits, measured side by side.

    python benchmarks/bench_training.py [--repeats 3]

Target: the emulated int4 run costs at most 2x the fp32 run of the same model. Prints each run's
wall time (best of the repeats, alternating fp32 and int4) and the ratio.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from accelsim import api  # noqa: E402
from accelsim.nn.train import train  # noqa: E402
from accelsim.numerics.policy import PRESETS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workload", default="cnn-digits")
    args = parser.parse_args()
    setup = api.prepare(ROOT / "workloads" / f"{args.workload}.yaml", ROOT / "hwconfigs" / "int4-32x32.yaml")
    data = api.load_data(setup.workload, setup.network, setup.workload_file)
    best = {"fp32": float("inf"), "int4": float("inf")}
    for _ in range(args.repeats):
        for name in ("fp32", "int4"):
            start = time.perf_counter()
            result = train(setup.network, data, PRESETS[name] if name == "fp32" else setup.policy,
                           setup.workload.training, 0)
            best[name] = min(best[name], time.perf_counter() - start)
            print(f"{name}: {time.perf_counter() - start:.2f} s, accuracy {result.accuracy:.4f}", flush=True)
    print(f"{args.workload}, {result.steps} steps: fp32 {best['fp32']:.2f} s, int4 {best['int4']:.2f} s, "
          f"ratio int4/fp32 = {best['int4'] / best['fp32']:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
