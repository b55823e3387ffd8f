"""Emulated training cost: the 4-bit recipe vs plain FP32 NumPy training of the same net, side by side.

    python benchmarks/bench_training.py [--repeats 3] [--workloads cnn-digits mlp-digits]

"Plain FP32" is the same model, data order and optimizer with unquantized float32 products
(``np.matmul``, the BLAS's own summation order), the cheapest training the NumPy layers can do.
The emulated run is accelsim's trainer with the workload's policy: every operand quantized, every
GEMM exact on integer codes (or deterministic near-exact for the float layers), every tensor
rounded to its format. Target: emulated int4 at most 2x plain fp32 for each workload.

Times are CPU seconds of this process (``resource.getrusage``), best of the repeats, alternating
the two runs, one BLAS thread: a loaded machine inflates wall time far more than CPU time.
"""

from __future__ import annotations

import argparse
import os
import resource
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from accelsim import api  # noqa: E402
from accelsim.nn.layers import SoftmaxCrossEntropy  # noqa: E402
from accelsim.nn.model import SGD, build_model  # noqa: E402
from accelsim.nn.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def plain_fp32(network, data, training, seed: int) -> float:
    """Plain float32 NumPy training (no quantization, BLAS products); returns test accuracy."""
    rng = np.random.default_rng(seed)
    model = build_model(network, rng)
    opt = SGD(model, training.optimizer.lr, training.optimizer.momentum, training.optimizer.weight_decay)
    loss_fn = SoftmaxCrossEntropy()
    n, batch = len(data.y_train), network.batch_size
    for _ in range(training.epochs or 1):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            logits = model.forward(data.x_train[idx], True)
            _, dlogits = loss_fn(logits, data.y_train[idx])
            model.backward(dlogits)
            opt.step()
    logits = model.forward(data.x_test, False)
    return float(np.mean(np.argmax(logits, axis=1) == data.y_test))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=["cnn-digits", "mlp-digits"])
    args = parser.parse_args()
    for name in args.workloads:
        setup = api.prepare(ROOT / "workloads" / f"{name}.yaml", ROOT / "hwconfigs" / "int4-32x32.yaml")
        data = api.load_data(setup.workload, setup.network, setup.workload_file)
        training = setup.workload.training
        best = {"fp32": float("inf"), setup.policy.name: float("inf")}
        for _ in range(args.repeats):
            t = cpu_s()
            acc = plain_fp32(setup.network, data, training, 0)
            best["fp32"] = min(best["fp32"], cpu_s() - t)
            print(f"{name} plain fp32: {cpu_s() - t:.2f} s CPU, accuracy {acc:.4f}", flush=True)
            t = cpu_s()
            result = train(setup.network, data, setup.policy, training, 0)
            best[setup.policy.name] = min(best[setup.policy.name], cpu_s() - t)
            print(f"{name} {setup.policy.name}: {cpu_s() - t:.2f} s CPU, accuracy {result.accuracy:.4f}", flush=True)
        emulated = best[setup.policy.name]
        print(f"| {name} | {result.steps} | {best['fp32']:.2f} | {emulated:.2f} | {emulated / best['fp32']:.2f} |")


if __name__ == "__main__":
    main()
