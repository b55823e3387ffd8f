"""Test accuracy of every precision preset and ablation on the digits workloads, mean ± std over
seeds, with the gradient fidelity that shows what Two-Phase Rounding and GradScale buy.

    python benchmarks/accuracy.py                          # 5 seeds, both workloads, every preset
    python benchmarks/accuracy.py --seeds 0 1 2 --workloads cnn-digits --presets int4 fp16

Each preset replaces the workload's ``precision`` preset and keeps the workload's overrides (the
shipped files start PACT's clip at 2). ``data.seed`` (the split) stays the workload's; each seed
sets the initialisation, the shuffling and the stochastic rounding. Accuracy is the final epoch's
test accuracy. Gradient fidelity is the cosine of the gradient each backward GEMM of the 4-bit layer
read (quantized) with the fp32 gradient, averaged over epochs and seeds.

Then the ablations that explain the figures (``--no-ablations`` skips them):

* mlp-digits' input: the first layer in INT4 (the input stretched onto −8…7) against FP16 fed the
  same 16 grey levels, with the share of hidden ReLU units that are dead (never positive on the
  test set) after training;
* cnn-digits' PACT clip: α starting at PACT's default 10 against the shipped 2, with the number of
  UINT4 codes the 4-bit layer's input uses after training;
* what the block-scaled recipes' parts buy (``--block-ablations WORKLOAD ...``): NVFP4 without its
  random Hadamard transform, without stochastic rounding, with 1-D weight blocks; MXFP4 with its
  first and last layers in BF16, without Hadamard, with Hadamard on the backward GEMMs only, with
  nearest-rounded gradients.

Prints Markdown tables (the README's).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from accelsim import api  # noqa: E402
from accelsim.nn.train import quantize_image, train  # noqa: E402
from accelsim.numerics.policy import PRESET_NAMES, resolve_policy  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("fp32", "fp16", "hfp8", "int4", "int4-no-tpr", "int4-no-gradscale", "int4-linear-grad",
         "bf16", "mxfp8", "mxfp4", "mxfp4-bwd", "nvfp4", "nvfp4-no-rht", "nvfp4-no-sr", "nvfp4-1d-weights", "int4b")


def policy_for(workload_precision, preset: str, **extra):
    base = dict(workload_precision) if isinstance(workload_precision, dict) else {}
    return resolve_policy({**base, **extra, "preset": preset})


def mean_std(values: list[float]) -> str:
    values = [v * 100 for v in values]
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {spread:.2f}"


def run(name: str, policy, seeds, *, sets=(), data_map=None):
    setup = api.prepare(ROOT / "workloads" / f"{name}.yaml", ROOT / "hwconfigs" / "int4-32x32.yaml", sets=list(sets))
    data = api.load_data(setup.workload, setup.network, setup.workload_file)
    if data_map is not None:
        data = data_map(data)
    results = []
    for seed in seeds:
        start = time.perf_counter()
        r = train(setup.network, data, policy(setup.workload.precision), setup.workload.training, seed)
        results.append(r)
        print(f"{name} {r.precision} seed {seed}: {r.accuracy} ({time.perf_counter() - start:.1f} s)",
              file=sys.stderr, flush=True)
    return results


def fidelity(results, phase: str) -> str:
    layers = {layer for r in results for layer, ph in r.grad_fidelity.items() if phase in ph}
    four_bit = sorted(layer for layer in layers
                      if all(r.grad_fidelity.get(layer, {}).get(phase, 1.0) < 1.0 for r in results))
    if not four_bit:
        return "—"
    layer = four_bit[0]
    return f"{statistics.mean(r.grad_fidelity[layer][phase] for r in results):.4f}"


BLOCK_ABLATIONS = {
    "nvfp4 (shipped: 16x16 weight blocks, SR gradients, RHT on bwd_weight)": ("nvfp4", {}),
    "nvfp4 without the random Hadamard transform": ("nvfp4-no-rht", {}),
    "nvfp4 without stochastic rounding": ("nvfp4-no-sr", {}),
    "nvfp4 with 1-D (1x16) weight blocks": ("nvfp4-1d-weights", {}),
    "mxfp4 (shipped: every layer, Hadamard on all GEMMs, SR gradients)": ("mxfp4", {}),
    "mxfp4, first and last layers in bf16": ("mxfp4", {"first_layer": "bf16", "last_layer": "bf16"}),
    "mxfp4 without Hadamard": ("mxfp4", {"hadamard": "none"}),
    "mxfp4, Hadamard on the backward GEMMs only": ("mxfp4", {"hadamard": "backward"}),
    "mxfp4 with nearest-rounded gradients": ("mxfp4", {"grad_rounding": "nearest"}),
    "bf16": ("bf16", {}),
}


def block_ablations(name: str, seeds, table) -> None:
    print(f"| {name} | accuracy, % | Δ vs bf16, pt |")
    print("|---|---:|---:|")
    rows = {}
    for label, (preset, extra) in BLOCK_ABLATIONS.items():
        cached = table.get((name, preset)) if not extra else None
        rows[label] = cached or run(name, lambda p, preset=preset, extra=extra: policy_for(p, preset, **extra), seeds)
    base = [r.accuracy for r in rows["bf16"]]
    for label, rs in rows.items():
        acc = [r.accuracy for r in rs]
        if any(a is None for a in acc):
            print(f"| {label} | {sum(a is None for a in acc)} of {len(acc)} diverged | |")
            continue
        delta = [a - b for a, b in zip(acc, base)]
        print(f"| {label} | {mean_std(acc)} | {mean_std(delta)} |")
    print(f"\ntest accuracy, %, mean ± std over seeds {list(seeds)}; Δ paired by seed\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--workloads", nargs="+", default=["cnn-digits", "mlp-digits"])
    parser.add_argument("--presets", nargs="+", default=list(ORDER), choices=PRESET_NAMES)
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument("--block-ablations", nargs="*", default=[], metavar="WORKLOAD",
                        help="workloads to run the block-scaled recipes' ablations on")
    args = parser.parse_args()
    table = {}
    for name in args.workloads:
        for preset in args.presets:
            table[(name, preset)] = run(name, lambda p, preset=preset: policy_for(p, preset), args.seeds)
    print("| preset | " + " | ".join(f"{w} accuracy, % | {w} cos bwd_weight | {w} cos bwd_data" for w in args.workloads) + " |")
    print("|---|" + "---:|---:|---:|" * len(args.workloads))
    for preset in args.presets:
        cells = []
        for name in args.workloads:
            rs = table[(name, preset)]
            done = [r.accuracy for r in rs if r.accuracy is not None]
            cells += [mean_std(done) + ("" if len(done) == len(rs) else f" ({len(rs) - len(done)} diverged)"),
                      fidelity(rs, "bwd_weight"), fidelity(rs, "bwd_data")]
        print(f"| {preset} | {' | '.join(cells)} |")
    print(f"\ntest accuracy, %, mean ± std over seeds {args.seeds}; cos: gradient fidelity of the 4-bit layer\n")
    for name in args.block_ablations:
        block_ablations(name, args.seeds, table)
    if args.no_ablations:
        return
    if "mlp-digits" in args.workloads:
        def sixteen_levels(data):
            return dataclasses.replace(data, x_train=quantize_image(data.x_train, 4).astype("float32"),
                                       x_test=quantize_image(data.x_test, 4).astype("float32"))

        rows = {
            "int4, first layer in fp16 (shipped)": run("mlp-digits", lambda p: policy_for(p, "int4"), args.seeds),
            "int4, first layer in int4: input x·15 − 8 onto −8…7": run(
                "mlp-digits", lambda p: policy_for(p, "int4", first_layer=None), args.seeds),
            "fp16 fed the same 16 grey levels (x rounded to k/15)": run(
                "mlp-digits", lambda p: policy_for(p, "fp16"), args.seeds, data_map=sixteen_levels),
            "fp16": table.get(("mlp-digits", "fp16")) or run("mlp-digits", lambda p: policy_for(p, "fp16"), args.seeds),
        }
        print("| mlp-digits | accuracy, % | dead ReLU units, layer 1 | dead ReLU units, layer 2 |")
        print("|---|---:|---:|---:|")
        for label, rs in rows.items():
            dead = [statistics.mean(r.dead_relu_fraction[k] for r in rs) for k in sorted(rs[0].dead_relu_fraction)]
            print(f"| {label} | {mean_std([r.accuracy for r in rs])} | " + " | ".join(f"{d:.0%}" for d in dead) + " |")
        print()
    if "cnn-digits" in args.workloads:
        rows = {
            "α from 2 (shipped)": table.get(("cnn-digits", "int4")) or run("cnn-digits", lambda p: policy_for(p, "int4"), args.seeds),
            "α from 10 (PACT's default)": run("cnn-digits", lambda p: policy_for(p, "int4", pact_alpha_init=10.0), args.seeds),
        }
        print("| cnn-digits, int4 | accuracy, % | α after training | UINT4 codes used |")
        print("|---|---:|---:|---:|")
        for label, rs in rows.items():
            alpha = statistics.mean(r.history[-1].pact_alpha["conv2d1"] for r in rs)
            codes = statistics.mean(r.pact_codes_used["conv2d1"] for r in rs)
            print(f"| {label} | {mean_std([r.accuracy for r in rs])} | {alpha:.2f} | {codes:.1f} of 16 |")


if __name__ == "__main__":
    main()
