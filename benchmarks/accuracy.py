"""Test accuracy of every precision preset on the digits workloads, mean ± std over seeds.

    python benchmarks/accuracy.py                 # 3 seeds, both workloads, all presets
    python benchmarks/accuracy.py --seeds 0 1 2 --workloads cnn-digits

Each preset replaces the workload's ``precision`` preset and keeps the workload's overrides (the
shipped mlp-digits runs its first layer in INT4: with both of its layers in FP16, as the paper's
first/last-layer rule would have it, there would be nothing left in 4 bits). ``data.seed`` sets the
split, the initialisation and the shuffling. Prints a Markdown table (the README's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from accelsim import api  # noqa: E402
from accelsim.nn.train import train  # noqa: E402
from accelsim.numerics.policy import PRESET_NAMES, resolve_policy  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("fp32", "fp16", "hfp8", "int4", "int4-no-tpr", "int4-no-gradscale", "int4-linear-grad")


def policy_for(workload_precision, preset: str):
    if isinstance(workload_precision, dict):
        return resolve_policy({**workload_precision, "preset": preset})
    return resolve_policy(preset)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workloads", nargs="+", default=["mlp-digits", "cnn-digits"])
    parser.add_argument("--presets", nargs="+", default=list(ORDER), choices=PRESET_NAMES)
    args = parser.parse_args()
    table: dict[tuple[str, str], list[float]] = {}
    for name in args.workloads:
        for seed in args.seeds:
            setup = api.prepare(ROOT / "workloads" / f"{name}.yaml", ROOT / "hwconfigs" / "int4-32x32.yaml",
                                sets=[f"data.seed={seed}"])
            data = api.load_data(setup.workload, setup.network, setup.workload_file)
            for preset in args.presets:
                start = time.perf_counter()
                result = train(setup.network, data, policy_for(setup.workload.precision, preset),
                               setup.workload.training, seed)
                table.setdefault((name, preset), []).append(result.accuracy)
                print(f"{name} seed {seed} {preset}: {result.accuracy:.4f} ({time.perf_counter() - start:.1f} s)",
                      file=sys.stderr, flush=True)
    print(f"| preset | {' | '.join(args.workloads)} |")
    print(f"|---|{'---:|' * len(args.workloads)}")
    for preset in args.presets:
        cells = []
        for name in args.workloads:
            accs = [a * 100 for a in table[(name, preset)]]
            spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
            cells.append(f"{statistics.mean(accs):.2f} ± {spread:.2f}")
        print(f"| {preset} | {' | '.join(cells)} |")
    print(f"\ntest accuracy, %, mean ± std over seeds {args.seeds}")


if __name__ == "__main__":
    main()
