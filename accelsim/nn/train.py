"""Training under a precision policy: bit-exact 4-bit emulation (or FP16/HFP8/FP32) of every GEMM.

The formats come from the same plan the trace builder makes (:func:`accelsim.workload.builder.
build_step`), so what is trained is what is timed. :class:`QuantHook` executes each weight layer's
three GEMMs on quantized operands:

* **forward** — the layer's input is requantized every step (PACT: ``clip(x, 0, α)`` to ``uint4``
  with a learnable ``α`` behind a ReLU; max scaling for signed inputs; the network input stretched
  onto ``-8..7`` by ``x·15 − 8``), the weights by SAWB (symmetric ``int4``) from the fp32 master
  copy; float formats are rounded (fp16, fp8);
* **backward** — the incoming gradient is quantized to radix-4 FP4 with the layer's GradScale
  (per-layer power-of-two scale kept across steps), twice under Two-Phase Rounding (one copy per
  GEMM, by the policy's ``tpr_weight_phase``); ``int4-linear-grad`` uses max-scaled ``int4``;
  without GradScale the scale is fixed at 1, as in a network without per-layer scaling;
* products of 4-bit integer-grid operands are exact and summed exactly by the integer accumulator;
  an fp32 product of the dequantized values reproduces that sum up to fp32 rounding of the final
  value, which is what is computed. ``accumulation: fp16-chunked`` emulates FP16 chunk accumulation.

The trainer records the ops it executes (GEMMs with their shapes and formats, every requantization,
every vector op) for one step; a test checks they equal the builder's step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from accelsim.nn.datasets import Dataset
from accelsim.nn.layers import SoftmaxCrossEntropy
from accelsim.nn.model import SGD, Sequential, build_model
from accelsim.numerics.formats import FORMATS
from accelsim.numerics.gradscale import GradScale
from accelsim.numerics.policy import PrecisionPolicy
from accelsim.numerics.quant import (
    quantize,
    quantize_float,
    quantize_fp4r4,
    matmul_accumulate,
    two_phase_fp4r4,
)
from accelsim.numerics.rescale import pact_backward, pact_forward, quantize_input, quantize_max, quantize_sawb
from accelsim.atomic import atomic_write_bytes, atomic_write_text
from accelsim.spec.models import TrainingSpec
from accelsim.trace import GemmOp, Op, RescaleOp, Trace, VectorOp, loads_trace, op_to_dict
from accelsim.workload.builder import VECTOR_OP_NAME, build_step
from accelsim.workload.graph import Network

#: Bump when the numerics change, so cached training results are not reused across versions.
NUMERICS_VERSION = 1
EVAL_BATCH = 512
#: Gradient values kept for the histogram plot.
GRAD_SAMPLE = 20000

Progress = Callable[[int, int], None]


# ------------------------------------------------------------------------------------------------
# the plan: formats per GEMM layer, from the builder's trace


@dataclass
class LayerPlan:
    fwd: GemmOp | None = None
    bwd_weight: GemmOp | None = None
    bwd_data: GemmOp | None = None
    input_rescale: RescaleOp | None = None
    weight_rescale: RescaleOp | None = None
    grad_rescales: list[RescaleOp] = field(default_factory=list)


def layer_plans(trace: Trace) -> dict[str, LayerPlan]:
    plans: dict[str, LayerPlan] = {}
    for op in trace.ops:
        if isinstance(op, GemmOp):
            plan = plans.setdefault(op.layer, LayerPlan())
            setattr(plan, op.phase, op)
        elif isinstance(op, RescaleOp):
            plan = plans.setdefault(op.layer, LayerPlan())
            if op.tensor == "weight":
                plan.weight_rescale = op
            elif op.tensor == "gradient":
                plan.grad_rescales.append(op)
            else:
                plan.input_rescale = op
    return plans


# ------------------------------------------------------------------------------------------------
# recording


class OpRecorder:
    """Collects the ops one training step executes (when :attr:`active`)."""

    def __init__(self) -> None:
        self.active = False
        self.ops: list[Op] = []

    def add(self, op: Op) -> None:
        if self.active:
            self.ops.append(op)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64 = a.ravel().astype(np.float64)
    b64 = b.ravel().astype(np.float64)
    na, nb = float(np.dot(a64, a64)), float(np.dot(b64, b64))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float(np.dot(a64, b64) / math.sqrt(na * nb))


def _swap(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


# ------------------------------------------------------------------------------------------------
# the quantizing hook


class QuantHook:
    """Executes GEMMs on operands quantized as the policy's plan says (see the module docs)."""

    def __init__(
        self, policy: PrecisionPolicy, plans: dict[str, LayerPlan], rng: np.random.Generator,
        lr: float, recorder: OpRecorder,
    ):
        self.policy = policy
        self.plans = plans
        self.rng = rng
        self.lr = lr
        self.recorder = recorder
        self.alpha = {name: float(policy.pact_alpha_init) for name in plans}
        gs = policy.gradscale
        self.gradscale = {
            name: GradScale.from_bins(gs.step_log2, gs.underflow_bins) for name in plans
        } if gs.enabled else {}
        self._pact_x: dict[str, np.ndarray] = {}
        self._grad_data: dict[str, np.ndarray] = {}
        #: sums and counts of cosine similarities of quantized vs fp32 gradients, per layer and GEMM
        self.fidelity: dict[tuple[str, str], list[float]] = {}
        self.measure_fidelity = False
        self.grad_probe: str | None = None
        self.grad_sample: np.ndarray | None = None

    # -- forward -------------------------------------------------------------------------------

    def prepare_input(self, layer: str, x: np.ndarray, training: bool) -> np.ndarray:
        plan = self.plans[layer]
        fmt = plan.fwd.a_format
        r = plan.input_rescale
        if r is None:
            return x if fmt == "fp32" else quantize_float(x, fmt).values
        if r.tensor == "input":
            return x  # stretched onto -8..7 (and recorded) before the model: padding must stay 0
        self.recorder.add(replace(r, elements=x.size, deps=()))
        if fmt == "uint4" and self.policy.activation_rescale == "pact":
            if training:
                self._pact_x[layer] = x
            return pact_forward(x, self.alpha[layer]).values
        return quantize_max(x, fmt).values

    def input_grad(self, layer: str, dx: np.ndarray) -> np.ndarray:
        x = self._pact_x.pop(layer, None)
        if x is None:
            return dx
        grad_x, grad_alpha = pact_backward(dx, x, self.alpha[layer])
        self.alpha[layer] = max(self.alpha[layer] - self.lr * grad_alpha, 1e-3)
        return grad_x

    def _weights(self, layer: str, w: np.ndarray) -> np.ndarray:
        plan = self.plans[layer]
        fmt = plan.fwd.b_format
        r = plan.weight_rescale
        if r is None:
            return w if fmt == "fp32" else quantize_float(w, fmt).values
        self.recorder.add(replace(r, elements=w.size, deps=()))
        if self.policy.weight_rescale == "sawb":
            return quantize_sawb(w).values
        return quantize_max(w, fmt).values

    def _matmul(self, a: np.ndarray, b: np.ndarray, acc: str) -> np.ndarray:
        if self.policy.accumulation == "fp16-chunked" and FORMATS[acc].kind == "float":
            return matmul_accumulate(a, b, "fp16", self.policy.accumulation_chunk)
        return np.matmul(a, b)

    def fwd(self, layer: str, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, Any]:
        plan = self.plans[layer]
        wq = self._weights(layer, w)
        op = plan.fwd
        m, k = x.shape[-2:]
        self.recorder.add(replace(op, m=m, n=w.shape[-1], k=k, count=_count(x), a_elements=0, deps=()))
        return self._matmul(x, wq, op.acc_format), (x, wq)

    # -- backward ------------------------------------------------------------------------------

    def _quantize_grad(self, layer: str, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The incoming gradient as the weight-gradient and the data-gradient GEMMs read it."""
        plan = self.plans[layer]
        f_weight = plan.bwd_weight.b_format
        f_data = plan.bwd_data.a_format if plan.bwd_data is not None else f_weight
        for r in plan.grad_rescales:
            self.recorder.add(replace(r, elements=dy.size, deps=()))
        out: dict[str, np.ndarray] = {}
        if "fp4r4" in (f_weight, f_data):
            gs = self.gradscale.get(layer)
            scale = gs.observe(dy) if gs is not None else 1.0
            kw = dict(rounding=self.policy.grad_rounding, underflow=self.policy.underflow, rng=self.rng)
            if self.policy.tpr:
                phases = two_phase_fp4r4(dy, scale, **kw)
                w_phase = self.policy.tpr_weight_phase
                by_role = {"weight": phases[w_phase].values, "data": phases[1 - w_phase].values}
            else:
                q = quantize_fp4r4(dy, scale, phase=0, **kw).values
                by_role = {"weight": q, "data": q}
            if f_weight == "fp4r4":
                out["weight"] = by_role["weight"]
            if f_data == "fp4r4":
                out["data"] = by_role["data"]
        for role, fmt in (("weight", f_weight), ("data", f_data)):
            if role in out:
                continue
            if fmt in ("int4", "uint4"):
                out[role] = quantize(dy, "int4", symmetric=True).values
            elif fmt == "fp32":
                out[role] = dy
            else:
                out[role] = quantize_float(dy, fmt).values
        if self.measure_fidelity:
            for role, phase in (("weight", "bwd_weight"), ("data", "bwd_data")):
                entry = self.fidelity.setdefault((layer, phase), [0.0, 0.0])
                entry[0] += _cosine(out[role], dy)
                entry[1] += 1
        if layer == self.grad_probe:
            flat = dy.ravel()
            self.grad_sample = flat[:: max(1, flat.size // GRAD_SAMPLE)][:GRAD_SAMPLE].astype(np.float32)
        return out["weight"], out["data"]

    def bwd_weight(self, layer: str, stash: Any, dy: np.ndarray) -> np.ndarray:
        x, _ = stash
        g_weight, g_data = self._quantize_grad(layer, dy)
        self._grad_data[layer] = g_data
        op = self.plans[layer].bwd_weight
        m, n = dy.shape[-2:]
        self.recorder.add(replace(op, m=x.shape[-1], n=n, k=m, count=_count(dy), a_elements=0, deps=()))
        return self._matmul(_swap(x), g_weight, op.acc_format)

    def bwd_data(self, layer: str, dy: np.ndarray, w: np.ndarray, stash: Any) -> np.ndarray:
        _, wq = stash
        g_data = self._grad_data.pop(layer)
        op = self.plans[layer].bwd_data
        m, n = dy.shape[-2:]
        self.recorder.add(replace(op, m=m, n=w.shape[-2], k=n, count=_count(dy), out_elements=0, deps=()))
        return self._matmul(g_data, _swap(wq), op.acc_format)


def _count(a: np.ndarray) -> int:
    return a.shape[0] if a.ndim == 3 else 1


# ------------------------------------------------------------------------------------------------
# training


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float


@dataclass
class TrainResult:
    """What a training run produced: accuracy, curves, gradient fidelity and one recorded step."""

    precision: str
    accuracy: float
    history: list[EpochStats]
    grad_fidelity: dict[str, dict[str, float]]
    steps: int
    recorded_ops: list[Op]
    grad_sample: np.ndarray
    grad_layer: str | None


_VECTOR_LAYERS = {"ReLU": "relu", "ReLU6": "relu6", "MaxPool2d": "maxpool", "AvgPool2d": "avgpool", "BatchNorm": "batchnorm"}


def train(
    net: Network, data: Dataset, policy: PrecisionPolicy, training: TrainingSpec, seed: int,
    *, progress: Progress | None = None,
) -> TrainResult:
    """Train ``net`` on ``data`` under ``policy``; deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    model = build_model(net, rng)
    plans = layer_plans(build_step(net, policy))
    recorder = OpRecorder()
    opt_spec = training.optimizer
    hook = QuantHook(policy, plans, np.random.default_rng([seed, 1]), opt_spec.lr, recorder)
    model.hook = hook
    gemm_names = [layer.name for layer in model.gemm_layers()]
    hook.grad_probe = next(
        (n for n in gemm_names if plans[n].bwd_weight.b_format in ("fp4r4", "int4")),
        gemm_names[len(gemm_names) // 2] if gemm_names else None,
    )
    opt = SGD(model, opt_spec.lr, opt_spec.momentum, opt_spec.weight_decay)
    loss_fn = SoftmaxCrossEntropy()
    first = gemm_names[0] if gemm_names else None
    map_input = first is not None and plans[first].input_rescale is not None and plans[first].input_rescale.tensor == "input"
    out_fmt = policy.output
    epochs = training.epochs or 1
    batch = net.batch_size
    n = len(data.y_train)
    steps_per_epoch = -(-n // batch)
    total = epochs * steps_per_epoch
    history: list[EpochStats] = []
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(n)
        loss_sum = 0.0
        correct = 0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            xb, yb = data.x_train[idx], data.y_train[idx]
            recorder.active = step == 0
            hook.measure_fidelity = start == 0
            if map_input:
                recorder.add(replace(plans[first].input_rescale, elements=xb.size, deps=()))
                xb = quantize_input(xb).values
            logits = _forward(model, xb, recorder, out_fmt)
            loss, dlogits = loss_fn(logits, yb)
            recorder.add(VectorOp(model.layers[-1].name, "fwd", logits.size, "softmax_xent", out_fmt))
            _backward(model, dlogits, recorder, out_fmt)
            opt.step()
            for layer in reversed(model.gemm_layers()):
                recorder.add(VectorOp(layer.name, "update", layer.params["weight"].size, "sgd_update", policy.master_weight))
            recorder.active = False
            loss_sum += float(loss) * len(idx)
            correct += int(np.sum(np.argmax(logits, axis=1) == yb))
            step += 1
            if progress is not None:
                progress(step, total)
        test_loss, test_acc = evaluate(model, data.x_test, data.y_test, map_input)
        history.append(EpochStats(epoch + 1, loss_sum / n, correct / n, test_loss, test_acc))
    fidelity: dict[str, dict[str, float]] = {}
    for (layer, phase), (total_cos, count) in hook.fidelity.items():
        fidelity.setdefault(layer, {})[phase] = total_cos / count if count else float("nan")
    return TrainResult(
        precision=policy.name, accuracy=history[-1].test_accuracy, history=history,
        grad_fidelity=fidelity, steps=step, recorded_ops=list(recorder.ops),
        grad_sample=hook.grad_sample if hook.grad_sample is not None else np.zeros(0, np.float32),
        grad_layer=hook.grad_probe,
    )


def _forward(model: Sequential, x: np.ndarray, recorder: OpRecorder, fmt: str) -> np.ndarray:
    x = np.asarray(x, dtype=model.dtype)
    for layer in model.layers:
        x = layer.forward(x, True)
        kind = _VECTOR_LAYERS.get(type(layer).__name__)
        if kind is not None:
            recorder.add(VectorOp(layer.name, "fwd", x.size, VECTOR_OP_NAME[kind], fmt))
    return x


def _backward(model: Sequential, grad: np.ndarray, recorder: OpRecorder, fmt: str) -> None:
    for layer in reversed(model.layers):
        grad = layer.backward(grad)
        if grad is None:
            return
        kind = _VECTOR_LAYERS.get(type(layer).__name__)
        if kind is not None:
            recorder.add(VectorOp(layer.name, "bwd_data", grad.size, VECTOR_OP_NAME[kind] + "_bwd", fmt))


def evaluate(model: Sequential, x: np.ndarray, y: np.ndarray, map_input: bool) -> tuple[float, float]:
    """Mean loss and accuracy of the model in eval mode (same quantized forward, no stash)."""
    loss_fn = SoftmaxCrossEntropy()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y), EVAL_BATCH):
        xb, yb = x[start:start + EVAL_BATCH], y[start:start + EVAL_BATCH]
        if map_input:
            xb = quantize_input(xb).values
        logits = model.forward(xb, training=False)
        loss, _ = loss_fn(logits, yb)
        loss_sum += float(loss) * len(yb)
        correct += int(np.sum(np.argmax(logits, axis=1) == yb))
    return loss_sum / len(y), correct / len(y)


def quantize_image(image: np.ndarray, bits: int) -> np.ndarray:
    """An image in [0, 1] on a ``bits``-bit grid (``2**bits`` shades; 4 bits is the ``x·15 − 8``
    mapping shifted back to [0, 1])."""
    levels = (1 << bits) - 1
    return np.rint(np.clip(image, 0.0, 1.0) * levels) / levels


__all__ = [
    "QuantHook", "OpRecorder", "LayerPlan", "layer_plans", "train", "evaluate", "TrainResult",
    "EpochStats", "quantize_image", "NUMERICS_VERSION",
]


# ------------------------------------------------------------------------------------------------
# cache: re-runs, plots and sweeps over hardware never retrain


def training_key(net: Network, data: Dataset, policy: PrecisionPolicy, training: TrainingSpec, seed: int) -> str:
    """Hash of everything a training result depends on (the data by content)."""

    digest = hashlib.sha256()
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(str(array.shape).encode())
    payload = {
        "numerics_version": NUMERICS_VERSION,
        "network": [dataclasses.asdict(layer) for layer in net.layers],
        "batch_size": net.batch_size,
        "policy": policy.model_dump(mode="json"),
        "training": training.model_dump(mode="json"),
        "seed": seed,
        "data": digest.hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def save_result(result: TrainResult, path_stem: Path) -> None:
    """Write ``<stem>.npz`` then ``<stem>.json`` (the JSON last: its presence marks a complete entry)."""

    buf = io.BytesIO()
    np.savez(buf, grad_sample=result.grad_sample)
    atomic_write_bytes(path_stem.with_suffix(".npz"), buf.getvalue())
    meta = {
        "precision": result.precision, "accuracy": result.accuracy, "steps": result.steps,
        "history": [vars(h) for h in result.history], "grad_fidelity": result.grad_fidelity,
        "grad_layer": result.grad_layer, "recorded_ops": [op_to_dict(op) for op in result.recorded_ops],
    }
    atomic_write_text(path_stem.with_suffix(".json"), json.dumps(meta, indent=1) + "\n")


def load_result(path_stem: Path) -> TrainResult | None:

    meta_path, npz_path = path_stem.with_suffix(".json"), path_stem.with_suffix(".npz")
    if not (meta_path.is_file() and npz_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        with np.load(npz_path, allow_pickle=False) as archive:
            sample = archive["grad_sample"]
        header = json.dumps({"trace": 1, "workload": "cached"})
        ops = loads_trace(header + "\n" + "\n".join(json.dumps(o) for o in meta["recorded_ops"]), str(meta_path)).ops
        return TrainResult(
            precision=meta["precision"], accuracy=meta["accuracy"],
            history=[EpochStats(**h) for h in meta["history"]], grad_fidelity=meta["grad_fidelity"],
            steps=meta["steps"], recorded_ops=list(ops), grad_sample=sample, grad_layer=meta["grad_layer"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged cache entry is retrained, not trusted


def train_cached(
    net: Network, data: Dataset, policy: PrecisionPolicy, training: TrainingSpec, seed: int,
    cache_dir: Path | None, *, progress: Progress | None = None,
) -> tuple[TrainResult, bool]:
    """:func:`train`, or its cached result; returns ``(result, came_from_cache)``."""
    if cache_dir is None:
        return train(net, data, policy, training, seed, progress=progress), False
    stem = cache_dir / training_key(net, data, policy, training, seed)
    cached = load_result(stem)
    if cached is not None:
        return cached, True
    result = train(net, data, policy, training, seed, progress=progress)
    save_result(result, stem)
    return result, False
