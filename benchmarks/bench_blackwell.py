"""The ResNet-50 target on the Blackwell-like tensor core (not a test): run
``python benchmarks/bench_blackwell.py [--json FILE] [--quick]``.

One ResNet-50 training step (batch 32, ``workloads/resnet50.yaml``) in NVFP4 against BF16 on
``hwconfigs/blackwell-like.yaml`` (baseline ``blackwell-like-bf16.yaml``), event model, 7 nm table:

1. the speedup, its 4x peak and the factors that keep it below (``accelsim.breakdown``), with the
   cycles each stage adds on each machine, and the energy ratio by component;
2. what quantization costs (``accelsim.breakdown.quantization_stats``) and where the array's time
   goes, by op kind;
3. the other block recipes (MXFP4, MXFP4 backward-only, int4b, the NVFP4 ablations) on the same
   machines;
4. sensitivity: DRAM bandwidth x4 and x16 (the reuse a GPU's shared-memory tiles and L2 give
   its GEMMs, which one 32x32 array does not show), and the same multi-precision silicon as
   baseline (``--baseline-hw blackwell-like.yaml``).

``--quick`` does 1 and 2 only. Wall times on a shared machine are not reported.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD = ROOT / "workloads" / "resnet50.yaml"
HW = ROOT / "hwconfigs" / "blackwell-like.yaml"


def compare(precision: str, sets: tuple[str, ...] = (), baseline_hw: Path | None = None) -> dict:
    from accelsim import api
    from accelsim import breakdown as B

    r = api.run(WORKLOAD, HW, write=False, baseline_hw=baseline_hw,
                sets=[f"precision={precision}", "workload.baseline=bf16", *sets])
    policy = B.RunSteps(r.policy.machine, [(r.policy.step, r.policy.steps)])
    baseline = B.RunSteps(r.baseline.machine, [(r.baseline.step, r.baseline.steps)])
    out = B.breakdown(policy, baseline, r.setup.table, r.setup.baseline_table)
    out["quantization"] = B.quantization_stats(policy)
    out["policy_step"], out["baseline_step"] = r.policy.step, r.baseline.step
    out["time_s"] = {"policy": policy.time_s, "baseline": baseline.time_s}
    return out


def where_time_goes(step) -> dict[str, dict[str, float]]:
    """Busy cycles (with their memory stalls) of each unit by op kind: GEMMs by mode, vector ops by
    name, rescale ops by tensor."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in step.ops:
        kind = r.mode if r.unit == "array" else getattr(r.op, "op", None) or f"rescale {r.op.tensor}"
        out[r.unit][kind] += r.total_cycles
    return {u: dict(sorted(k.items(), key=lambda kv: -kv[1])) for u, k in out.items()}


def show_breakdown(out: dict) -> None:
    print(f"speedup {out['speedup']:.4f} of a {out['peak_speedup']:.0f}x peak "
          f"({out['peak']['policy_mode']} vs {out['peak']['baseline_mode']}); energy ratio {out['energy_ratio']:.4f}")
    print(f"  {'factor':<22} {'value':>7} {'share of gap':>12} {'policy +cycles':>15} {'bf16 +cycles':>15}")
    for name, f in out["speedup_breakdown"].items():
        share = "" if f["gap_log_share"] is None else f"{f['gap_log_share']:.1%}"
        print(f"  {name:<22} {f['factor']:7.4f} {share:>12} {f['policy_cycles']:15,.0f} {f['baseline_cycles']:15,.0f}")
    print("  energy by component (factor of the ratio, policy pJ, baseline pJ):")
    for name, f in out["energy_ratio_breakdown"].items():
        print(f"    {name:<8} {f['factor']:7.4f} {f['policy_pj']:12.4g} {f['baseline_pj']:12.4g}")
    q = out["quantization"]
    print(f"  quantization: {q['quantization_cycles']:,} cycles of work, {q['quantization_exposed_cycles']:,.0f} "
          f"with the array idle; scale bits {q['scale_bit_overhead']:.2%} of DRAM traffic")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--quick", action="store_true", help="the NVFP4 comparison only")
    args = ap.parse_args(argv)

    record: dict = {}
    main_out = compare("nvfp4")
    print("== ResNet-50, batch 32, NVFP4 vs BF16 on blackwell-like (baseline blackwell-like-bf16) ==")
    show_breakdown(main_out)
    for label in ("policy", "baseline"):
        step = main_out[f"{label}_step"]
        print(f"  {label}: {step.cycles:,} cycles; busy cycles by unit and op kind (stalls included):")
        for unit, kinds in where_time_goes(step).items():
            top = ", ".join(f"{k} {v:,.0f}" for k, v in list(kinds.items())[:5])
            print(f"    {unit:<8} {sum(kinds.values()):15,.0f}  ({top})")
    record["nvfp4"] = {k: v for k, v in main_out.items() if not k.endswith("_step")}
    if not args.quick:
        print("\n== other recipes, same machines ==")
        for precision in ("mxfp4", "mxfp4-bwd", "int4b", "nvfp4-no-rht", "nvfp4-no-sr", "nvfp4-1d-weights"):
            out = compare(precision)
            factors = ", ".join(f"{k} {v['factor']:.3f}" for k, v in out["speedup_breakdown"].items()
                                if not math.isclose(v["factor"], 1.0, abs_tol=5e-4))
            print(f"  {precision:<17} speedup {out['speedup']:.4f}  energy {out['energy_ratio']:.4f}  ({factors})")
            record[precision] = {"speedup": out["speedup"], "energy_ratio": out["energy_ratio"]}
        print("\n== sensitivity (NVFP4) ==")
        gbps = 108
        for scale in (4, 16):
            sets = (f"hw.dram.bandwidth_gbps={gbps * scale}", f"baseline_hw.dram.bandwidth_gbps={gbps * scale}")
            out = compare("nvfp4", sets)
            print(f"  DRAM x{scale:<3} ({gbps * scale} Gbit/s):")
            show_breakdown(out)
            record[f"nvfp4_dram_x{scale}"] = {"speedup": out["speedup"], "energy_ratio": out["energy_ratio"],
                                              "factors": {k: v["factor"] for k, v in out["speedup_breakdown"].items()}}
        out = compare("nvfp4", baseline_hw=HW)
        print(f"  baseline = the same multi-precision tensor core in BF16: speedup {out['speedup']:.4f}, "
              f"energy ratio {out['energy_ratio']:.4f}")
        record["nvfp4_same_silicon"] = {"speedup": out["speedup"], "energy_ratio": out["energy_ratio"]}
    if args.json:
        args.json.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
