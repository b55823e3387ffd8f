"""Training under a precision policy: every GEMM as the 4-bit (or FP16/HFP8/FP32) array computes it.

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
* **the products** (:func:`accelsim.numerics.gemm.gemm`): two integer-grid operands (INT4, UINT4,
  radix-4 FP4) are multiplied on their integer codes and summed exactly — the integer accumulator —
  then scaled once; other formats are summed near-exactly and rounded once to the accumulator
  format (or FP16 chunk accumulation with ``accumulation: fp16-chunked``). No result depends on
  the BLAS's summation order, kernel or thread count;
* **every role** of the policy is applied: GEMM results (bias added) and the vector layers'
  results, forward and backward, are stored in the ``output`` format; the weight gradient in the
  master format; master weights, the update and PACT's ``α`` in fp32.

PACT's clip ``α`` is a trained parameter of each layer whose input it quantizes: its gradient is
the upstream gradient summed where ``x >= α``, it is updated by the same SGD (momentum, learning
rate) as the weights with its own L2 regularisation (``pact_alpha_decay``), and it is kept
positive. Its value per epoch is part of the result.

A step whose loss, gradients or parameters become NaN or infinite ends the training of that seed:
it is reported as diverged (epoch and step), never as a crash.

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

from accelsim.atomic import atomic_write_bytes, atomic_write_text
from accelsim.nn.datasets import Dataset
from accelsim.nn.layers import (
    Add,
    BatchNorm,
    Concat,
    Conv2d,
    Embedding,
    Flatten,
    LayerNorm,
    Linear,
    MatMul,
    MaxPool2d,
    ReLU,
    Select,
    SoftmaxCrossEntropy,
)
from accelsim.nn.model import SGD, GraphModel, Node, Param, StepObserver, build_model, initial_params_digest
from accelsim.numerics import elementary
from accelsim.numerics.blocks import block_spec, hadamard, quantize_blocks
from accelsim.numerics.formats import is_block
from accelsim.numerics.gemm import GridOperand, NonFiniteOperand, Scaled, Sliced, gemm, slice_values
from accelsim.numerics.gradscale import GradScale
from accelsim.numerics.policy import PrecisionPolicy
from accelsim.numerics.quant import int_codes, max_abs, quantize_float, quantize_fp4r4, two_phase_fp4r4
from accelsim.numerics.rescale import max_scale, pact_backward, quantize_input, sawb_scale
from accelsim.spec.models import TrainingSpec
from accelsim.trace import GemmOp, Op, RescaleOp, Trace, VectorOp, loads_trace, op_to_dict
from accelsim.workload.builder import VECTOR_OP_NAME, build_step, vector_format
from accelsim.workload.graph import Network

#: Bump when the numerics change, so cached training results are not reused across versions.
NUMERICS_VERSION = 3
EVAL_BATCH = 512
#: Gradient values kept for the histogram plot.
GRAD_SAMPLE = 20000
#: Smallest PACT clip value (α is kept positive).
MIN_PACT_ALPHA = 1e-3
#: Largest |code| of each integer-grid format (radix-4 FP4 codes are ±4**j relative to the
#: grid's smallest level, j = 0..6), for the exact GEMMs' bound.
MAX_CODE = {"int4": 8.0, "uint4": 15.0, "fp4r4": 4096.0}
FP4R4_MAX_CODE = MAX_CODE["fp4r4"]

Progress = Callable[[int, int], None]


class Divergence(ArithmeticError):
    """A training step produced NaN or infinite values (``where`` says which)."""

    def __init__(self, where: str):
        super().__init__(where)
        self.where = where


# ------------------------------------------------------------------------------------------------
# the plan: formats per GEMM layer, from the builder's trace


@dataclass
class LayerPlan:
    """The builder's ops of one GEMM layer: its GEMMs by phase (an attention product has two
    ``bwd_data`` GEMMs, ``dA`` then ``dB``), the rescales of its input operands (in operand order),
    of its weights and of its incoming gradient."""

    fwd: GemmOp | None = None
    bwd_weight: GemmOp | None = None
    bwd_data: list[GemmOp] = field(default_factory=list)
    input_rescales: list[RescaleOp] = field(default_factory=list)
    weight_rescale: RescaleOp | None = None
    grad_rescales: list[RescaleOp] = field(default_factory=list)
    #: the layer's GEMMs in trace order, and the rescale and Hadamard ops that come before each
    #: (block-scaled layers quantize every operand for the GEMM that reads it)
    gemms: list[GemmOp] = field(default_factory=list)
    pre: list[list[Op]] = field(default_factory=list)

    @property
    def input_rescale(self) -> RescaleOp | None:
        return self.input_rescales[0] if self.input_rescales else None

    @property
    def block(self) -> bool:
        """Does any GEMM of the layer read a block-scaled operand?"""
        return any(is_block(op.a_format) or is_block(op.b_format) for op in self.gemms)


def layer_plans(trace: Trace) -> dict[str, LayerPlan]:
    plans: dict[str, LayerPlan] = {}
    pending: dict[str, list[Op]] = {}
    for op in trace.ops:
        if isinstance(op, GemmOp):
            plan = plans.setdefault(op.layer, LayerPlan())
            plan.gemms.append(op)
            plan.pre.append(pending.pop(op.layer, []))
            if op.phase == "bwd_data":
                plan.bwd_data.append(op)
            else:
                setattr(plan, op.phase, op)
            continue
        if isinstance(op, RescaleOp) or (isinstance(op, VectorOp) and op.op == "hadamard"):
            pending.setdefault(op.layer, []).append(op)
        if isinstance(op, RescaleOp):
            plan = plans.setdefault(op.layer, LayerPlan())
            if op.tensor == "weight":
                plan.weight_rescale = op
            elif op.tensor == "gradient":
                plan.grad_rescales.append(op)
            else:
                plan.input_rescales.append(op)
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
    """Cosine similarity in float64 with NumPy's pairwise sums (no BLAS: the same bits anywhere)."""
    a64 = a.ravel().astype(np.float64)
    b64 = b.ravel().astype(np.float64)
    na, nb = float(np.sum(a64 * a64)), float(np.sum(b64 * b64))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float(np.sum(a64 * b64) / math.sqrt(na * nb))


def _finite(x: np.ndarray, where: str) -> np.ndarray:
    if not np.isfinite(x).all():
        raise Divergence(where)
    return x


def _max_scale(x: np.ndarray, fmt: str, where: str) -> float:
    """:func:`max_scale`, with a non-finite tensor reported as divergence."""
    peak = max_abs(x)
    if not math.isfinite(peak):
        raise Divergence(where)
    return max_scale(x, fmt)


# ------------------------------------------------------------------------------------------------
# the quantizing hook


def _grid_fp4r4(q) -> GridOperand:
    """Radix-4 FP4 values as integer codes ``±4**j`` times the grid's smallest level."""
    unit = q.scale * 4.0**-6
    return GridOperand(q.values * np.float32(1.0 / unit), unit, FP4R4_MAX_CODE)


def _values(x) -> np.ndarray:
    return x.values() if isinstance(x, (GridOperand, Sliced)) else x


def _swap(x):
    return x.T if isinstance(x, (GridOperand, Sliced, Scaled)) else np.swapaxes(x, -1, -2)


def _sliced(x):
    """A float operand as its integer slices, computed once for every product that reads it
    (an integer-grid operand, or a tensor holding NaN, stays as it is)."""
    if isinstance(x, (GridOperand, Sliced)):
        return x
    return slice_values(x) or x


class QuantHook:
    """Executes GEMMs on operands quantized as the policy's plan says (see the module docs)."""

    def __init__(
        self, policy: PrecisionPolicy, plans: dict[str, LayerPlan], rng: np.random.Generator,
        recorder: OpRecorder,
    ):
        self.policy = policy
        self.plans = plans
        self.rng = rng
        self.recorder = recorder
        #: PACT clip values (trained parameters) of the layers whose input PACT quantizes
        self.alpha: dict[str, Param] = {
            name: Param(f"{name}.pact_alpha", np.array(policy.pact_alpha_init, dtype=np.float32),
                        weight_decay=policy.pact_alpha_decay)
            for name, plan in plans.items()
            if plan.input_rescale is not None and plan.input_rescale.tensor == "activation"
            and plan.input_rescale.reduction == "none" and plan.fwd.a_format == "uint4"
        }
        gs = policy.gradscale
        self.gradscale = {
            name: GradScale.from_bins(gs.step_log2, gs.underflow_bins) for name in plans
        } if gs.enabled else {}
        self._pact_x: dict[str, np.ndarray] = {}
        self._input_scale: dict[str, tuple[float, str] | None] = {}
        self._input_size: dict[str, int] = {}
        self._grad_data: dict[str, Any] = {}
        #: sums and counts of cosine similarities of quantized vs fp32 gradients, per layer and GEMM
        self.fidelity: dict[tuple[str, str], list[float]] = {}
        self.measure_fidelity = False
        self.grad_probe: str | None = None
        self.grad_sample: np.ndarray | None = None
        #: PACT codes seen per layer while :attr:`count_codes` is on (evaluation)
        self.count_codes = False
        self.codes_seen: dict[str, np.ndarray] = {}
        #: the format each layer's output is stored in during the current forward walk (set by the
        #: walk's observer) and the layers each GEMM layer reads: an operand already in its format
        #: is not rounded again (rounding is idempotent; this only saves the pass)
        self.tensor_formats: dict[str | None, str] = {}
        self.sources: dict[str, tuple[str | None, ...]] = {}

    def parameters(self) -> list[Param]:
        return list(self.alpha.values())

    def _record(self, op: Op) -> None:
        if self.recorder.active:
            self.recorder.add(op)

    def _gemm(self, op: GemmOp, a, b, bias=None) -> np.ndarray:
        return gemm(
            a, b, acc_format=op.acc_format, out_format=op.out_format, accumulation=self.policy.accumulation,
            chunk=self.policy.accumulation_chunk, bias=bias,
        )

    # -- operands ------------------------------------------------------------------------------

    def _operand(self, layer: str, x: np.ndarray, fmt: str, r: RescaleOp | None, training: bool, operand: int = 0):
        """A tensor as a GEMM reads it: a :class:`GridOperand` (integer codes and their scale) for
        the integer-grid formats, rounded values for the float formats."""
        if r is None:
            srcs = self.sources.get(layer)
            stored = self.tensor_formats.get(srcs[operand]) if srcs and len(srcs) > operand else None
            return x if fmt in ("fp32", stored) else quantize_float(x, fmt).values
        if self.recorder.active:
            self._record(replace(r, elements=x.size, deps=()))
        if r.tensor == "input":  # the network input stretched onto -8..7 (x·15 − 8, scale 1)
            return GridOperand(quantize_input(x).values, 1.0, MAX_CODE[fmt])
        if layer in self.alpha:
            if training:
                self._pact_x[layer] = x
            codes, s = int_codes(x, float(self.alpha[layer].value) / 15, "uint4")
            if self.count_codes:
                seen = np.bincount(codes.ravel().astype(np.int64), minlength=16) > 0
                self.codes_seen[layer] = self.codes_seen.get(layer, np.zeros(16, bool)) | seen
        else:
            codes, s = int_codes(x, _max_scale(x, fmt, f"{layer} input"), fmt, symmetric=fmt == "int4")
        return GridOperand(codes, s, MAX_CODE[fmt])

    def prepare_input(self, layer: str, x: np.ndarray, training: bool) -> np.ndarray:
        """A weight layer's input as its GEMM reads it, before im2col: integer codes (their scale
        kept for :meth:`fwd`; zero stays zero, so padding is exact) or rounded values. A
        block-scaled layer quantizes the im2col matrix itself, per GEMM: its input passes as it is."""
        plan = self.plans[layer]
        if plan.block:
            self._input_size[layer] = x.size
            return x
        q = self._operand(layer, x, plan.fwd.a_format, plan.input_rescale, training)
        if isinstance(q, GridOperand):
            self._input_scale[layer] = (q.scale, plan.fwd.a_format)
            return q.codes
        self._input_scale[layer] = None
        return q

    def input_grad(self, layer: str, dx: np.ndarray) -> np.ndarray:
        x = self._pact_x.pop(layer, None)
        if x is None:
            return dx
        alpha = self.alpha[layer]
        grad_x, grad_alpha = pact_backward(dx, x, float(alpha.value))
        alpha.grad[...] = grad_alpha
        return grad_x

    def _input_operand(self, layer: str, x: np.ndarray):
        entry = self._input_scale.pop(layer)
        if entry is None:
            return x
        s, fmt = entry
        return GridOperand(x, s, MAX_CODE[fmt])

    def _weights(self, layer: str, w: np.ndarray):
        plan = self.plans[layer]
        fmt = plan.fwd.b_format
        r = plan.weight_rescale
        if r is None:
            return w if fmt == "fp32" else quantize_float(w, fmt).values
        if self.recorder.active:
            self._record(replace(r, elements=w.size, deps=()))
        if self.policy.weight_rescale == "sawb":
            codes, s = int_codes(w, sawb_scale(w), "int4", symmetric=True)
        else:
            codes, s = int_codes(w, _max_scale(w, fmt, f"{layer} weights"), fmt, symmetric=fmt == "int4")
        return GridOperand(codes, s, MAX_CODE[fmt])

    # -- block-scaled layers: each operand quantized for the GEMM that reads it -----------------

    def _block_quantize(self, x: np.ndarray, r: RescaleOp, axis: int, elements: int) -> Scaled:
        """Quantize ``x`` as the builder's rescale ``r`` says (format, block shape, scale format,
        rounding), with blocks along ``axis`` (square blocks: over the last two axes)."""
        if self.recorder.active:
            self._record(replace(r, elements=elements, deps=()))
        size = int(r.block.split("x")[0])
        spec = block_spec(r.out_format, rule=self.policy.block_rule, block=size, scale=r.scale_format)
        if not np.isfinite(x).all():
            raise Divergence(f"{r.layer} {r.tensor}")
        return quantize_blocks(x, spec, axis=axis, square="x" in r.block, stochastic=r.rounding == "stochastic",
                               rng=self.rng)

    def _block_operands(self, layer: str, index: int, a, b, a_axis: int, b_axis: int,
                        a_elements: int, b_elements: int, b_given=None,
                        grad: tuple[str, int] | None = None) -> tuple[Any, Any]:
        """The operands of the layer's ``index``-th GEMM from their stored (16-bit) tensors ``a`` and
        ``b``: the policy's Hadamard transform along the reduction axis (the same signs for both),
        then each block-scaled operand quantized along it (``b_given``: ``b`` already quantized, the
        2-D weight blocks of the forward GEMM), float operands rounded to their format.
        ``grad = (phase, i)``: operand ``i`` is the gradient whose fidelity is measured, against
        the same tensor transformed but unquantized (the transform is orthogonal, so the cosine is
        the one in the original basis)."""
        plan = self.plans[layer]
        dy = (a, b)[grad[1]] if grad else None
        op, pre = plan.gemms[index], plan.pre[index]
        transform = any(isinstance(p, VectorOp) for p in pre)
        if transform:
            signs = np.where(self.rng.random(self.policy.hadamard_size) < 0.5, -1.0, 1.0)
        ops = iter(pre)   # the builder's order: per operand, its transform, then its quantizer
        out, seen = [], []
        for x, fmt, ax, el, given in ((a, op.a_format, a_axis, a_elements, None), (b, op.b_format, b_axis, b_elements, b_given)):
            if transform:
                p = next(ops)
                if self.recorder.active:
                    self._record(replace(p, elements=el, deps=()))
                x = hadamard(x, signs, axis=ax)
            seen.append(x)
            if given is not None:
                out.append(given)
            elif is_block(fmt):
                out.append(self._block_quantize(x, next(ops), ax, el))
            else:
                out.append(_sliced(np.asarray(x, np.float32) if fmt == "fp32" else quantize_float(x, fmt).values))
        if grad:
            self._block_fidelity(layer, grad[0], out[grad[1]], seen[grad[1]], dy)
        return out[0], out[1]

    def _block_fidelity(self, layer: str, phase: str, g, reference: np.ndarray, dy: np.ndarray) -> None:
        if self.measure_fidelity:
            values = g.values * np.float32(g.scale) if isinstance(g, Scaled) else _values(g)
            entry = self.fidelity.setdefault((layer, phase), [0.0, 0.0])
            entry[0] += _cosine(values, reference)
            entry[1] += 1
        if layer == self.grad_probe:
            flat = dy.ravel()
            self.grad_sample = flat[:: max(1, flat.size // GRAD_SAMPLE)][:GRAD_SAMPLE].astype(np.float32)

    def _fwd_block(self, layer: str, x: np.ndarray, w: np.ndarray, bias) -> tuple[np.ndarray, Any]:
        plan = self.plans[layer]
        elements = self._input_size.pop(layer, x.size)
        a, b = self._block_operands(layer, 0, x, w, -1, -2, elements, w.size)
        op = plan.fwd
        if self.recorder.active:
            m, k = x.shape[-2:]
            self._record(replace(op, m=m, n=w.shape[-1], k=k, count=_count(x), a_elements=0, deps=()))
        return self._gemm(op, a, b, bias), ("block", x, w, b, elements)

    def _bwd_weight_block(self, layer: str, stash: Any, dy: np.ndarray) -> np.ndarray:
        _, x, _, _, elements = stash
        plan = self.plans[layer]
        idx = plan.gemms.index(plan.bwd_weight)
        xt, g = self._block_operands(layer, idx, x, dy, -2, -2, elements, dy.size, grad=("bwd_weight", 1))
        op = plan.bwd_weight
        if self.recorder.active:
            m, n = dy.shape[-2:]
            self._record(replace(op, m=x.shape[-1], n=n, k=m, count=_count(dy), a_elements=0, deps=()))
        return self._gemm(op, _swap(xt), g)

    def _bwd_data_block(self, layer: str, dy: np.ndarray, w: np.ndarray, stash: Any) -> np.ndarray:
        _, _, w_hp, wq, _ = stash
        plan = self.plans[layer]
        op = plan.bwd_data[0]
        idx = plan.gemms.index(op)
        reuse = not any(isinstance(p, RescaleOp) and p.tensor == "weight" for p in plan.pre[idx])
        g, wt = self._block_operands(layer, idx, dy, w_hp, -1, -1, dy.size, w_hp.size, b_given=wq if reuse else None,
                                     grad=("bwd_data", 0))
        if self.recorder.active:
            m, n = dy.shape[-2:]
            self._record(replace(op, m=m, n=w.shape[-2], k=n, count=_count(dy), out_elements=0, deps=()))
        if op.out_elements:
            op = replace(op, out_format="fp32")   # folded back (col2im) first, then stored
        return self._gemm(op, g, _swap(wt))

    # -- weight layers -------------------------------------------------------------------------

    def fwd(self, layer: str, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        plan = self.plans[layer]
        if plan.block:
            return self._fwd_block(layer, x, w, bias)
        a = _sliced(self._input_operand(layer, x))
        wq = _sliced(self._weights(layer, w))
        op = plan.fwd
        if self.recorder.active:
            m, k = x.shape[-2:]
            self._record(replace(op, m=m, n=w.shape[-1], k=k, count=_count(x), a_elements=0, deps=()))
        return self._gemm(op, a, wq, bias), (a, wq)

    def _quantize_grad(self, layer: str, dy: np.ndarray, f_weight: str, f_data: str) -> tuple[Any, Any]:
        """The incoming gradient as the two backward GEMMs read it: the weight-gradient one (for an
        attention product: its ``dB``) and the data-gradient one (``dA``), one Two-Phase Rounding
        phase each."""
        plan = self.plans[layer]
        if self.recorder.active:
            for r in plan.grad_rescales:
                self._record(replace(r, elements=dy.size, deps=()))
        out: dict[str, Any] = {}
        if "fp4r4" in (f_weight, f_data):
            gs = self.gradscale.get(layer)
            scale = gs.observe(dy) if gs is not None else 1.0
            kw = dict(rounding=self.policy.grad_rounding, underflow=self.policy.underflow, rng=self.rng)
            if self.policy.tpr:
                phases = two_phase_fp4r4(dy, scale, **kw)
                w_phase = self.policy.tpr_weight_phase
                by_role = {"weight": phases[w_phase], "data": phases[1 - w_phase]}
            else:
                q = quantize_fp4r4(dy, scale, phase=0, **kw)
                by_role = {"weight": q, "data": q}
            for role, fmt in (("weight", f_weight), ("data", f_data)):
                if fmt == "fp4r4":
                    out[role] = _grid_fp4r4(by_role[role])
        for role, fmt in (("weight", f_weight), ("data", f_data)):
            if role in out:
                continue
            if fmt in ("int4", "uint4"):
                codes, s = int_codes(dy, _max_scale(dy, "int4", f"{layer} gradient"), "int4", symmetric=True)
                out[role] = GridOperand(codes, s, MAX_CODE["int4"])
            elif role == "data" and fmt == f_weight and "weight" in out and not isinstance(out["weight"], GridOperand):
                out[role] = out["weight"]   # the same float tensor: sliced once
            else:   # every gradient between layers is stored in the output format already
                stored = fmt in ("fp32", self.policy.output)
                out[role] = _sliced(dy if stored else quantize_float(dy, fmt).values)
        if self.measure_fidelity:
            for role, phase in (("weight", "bwd_weight"), ("data", "bwd_data")):
                entry = self.fidelity.setdefault((layer, phase), [0.0, 0.0])
                entry[0] += _cosine(_values(out[role]), dy)
                entry[1] += 1
        if layer == self.grad_probe:
            flat = dy.ravel()
            self.grad_sample = flat[:: max(1, flat.size // GRAD_SAMPLE)][:GRAD_SAMPLE].astype(np.float32)
        return out["weight"], out["data"]

    def bwd_weight(self, layer: str, stash: Any, dy: np.ndarray) -> np.ndarray:
        if isinstance(stash[0], str):   # ("block", ...): a block-scaled layer
            return self._bwd_weight_block(layer, stash, dy)
        x, _ = stash
        plan = self.plans[layer]
        f_data = plan.bwd_data[0].a_format if plan.bwd_data else plan.bwd_weight.b_format
        g_weight, g_data = self._quantize_grad(layer, dy, plan.bwd_weight.b_format, f_data)
        self._grad_data[layer] = g_data
        op = plan.bwd_weight
        if self.recorder.active:
            m, n = dy.shape[-2:]
            self._record(replace(op, m=x.shape[-1], n=n, k=m, count=_count(dy), a_elements=0, deps=()))
        return self._gemm(op, _swap(x), g_weight)

    def bwd_data(self, layer: str, dy: np.ndarray, w: np.ndarray, stash: Any) -> np.ndarray:
        if isinstance(stash[0], str):   # ("block", ...): a block-scaled layer
            return self._bwd_data_block(layer, dy, w, stash)
        _, wq = stash
        g_data = self._grad_data.pop(layer)
        op = self.plans[layer].bwd_data[0]
        if self.recorder.active:
            m, n = dy.shape[-2:]
            self._record(replace(op, m=m, n=w.shape[-2], k=n, count=_count(dy), out_elements=0, deps=()))
        if op.out_elements:
            # a convolution's activation gradient is folded back (col2im) before it is stored:
            # the layer sums the accumulator's results and the trainer stores the fold in the
            # output format
            op = replace(op, out_format="fp32")
        return self._gemm(op, g_data, _swap(wq))

    # -- activation x activation products (attention) ------------------------------------------

    def fwd_act(self, layer: str, a: np.ndarray, b: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        plan = self.plans[layer]
        op = plan.fwd
        if plan.block:
            aq, bq = self._block_operands(layer, 0, a, b, -1, -2, a.size, b.size)
            if self.recorder.active:
                self._record(replace(op, m=a.shape[-2], n=b.shape[-1], k=a.shape[-1], count=_count(a), a_elements=0,
                                     deps=()))
            return self._gemm(op, aq, bq), ("block", a, b)
        # both operands are read in the layer's activation format: a 4-bit one has a rescale each
        # (operand order), a float one none
        ra, rb = plan.input_rescales if plan.input_rescales else (None, None)
        aq = _sliced(self._operand(layer, a, op.a_format, ra, training, 0))
        bq = _sliced(self._operand(layer, b, op.b_format, rb, training, 1))
        if self.recorder.active:
            self._record(replace(op, m=a.shape[-2], n=b.shape[-1], k=a.shape[-1], count=_count(a), a_elements=0,
                                 deps=()))
        return self._gemm(op, aq, bq), (aq, bq)

    def bwd_act(self, layer: str, stash: Any, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        plan = self.plans[layer]
        if isinstance(stash[0], str):   # ("block", ...): a block-scaled layer
            _, a, b = stash
            op_a, op_b = plan.bwd_data
            m, n = dy.shape[-2:]
            k = a.shape[-1]
            g, bt = self._block_operands(layer, plan.gemms.index(op_a), dy, b, -1, -1, dy.size, b.size,
                                         grad=("bwd_data", 0))
            if self.recorder.active:
                self._record(replace(op_a, m=m, n=k, k=n, count=_count(dy), deps=()))
            da = self._gemm(op_a, g, _swap(bt))
            at, g = self._block_operands(layer, plan.gemms.index(op_b), a, dy, -2, -2, a.size, dy.size)
            if self.recorder.active:
                self._record(replace(op_b, m=k, n=n, k=m, count=_count(dy), deps=()))
            return da, self._gemm(op_b, _swap(at), g)
        aq, bq = stash
        op_a, op_b = plan.bwd_data
        g_b, g_a = self._quantize_grad(layer, dy, op_b.b_format, op_a.a_format)
        m, n = dy.shape[-2:]
        k = aq.shape[-1]
        if self.recorder.active:
            self._record(replace(op_a, m=m, n=k, k=n, count=_count(dy), deps=()))
        da = self._gemm(op_a, g_a, _swap(bq))
        if self.recorder.active:
            self._record(replace(op_b, m=k, n=n, k=m, count=_count(dy), deps=()))
        db = self._gemm(op_b, _swap(aq), g_b)
        return da, db


def _count(a) -> int:
    return a.shape[0] if len(a.shape) == 3 else 1


# ------------------------------------------------------------------------------------------------
# the step: formats of every tensor, recorded ops


#: Modules whose result is one of their inputs' values (or 0, or 6): a tensor in the output format
#: stays in it, so rounding it again would change nothing.
_KEEPS_FORMAT_FWD = (ReLU, MaxPool2d, Flatten, Select, Concat)
#: Modules whose backward returns GEMM results (stored in the output format) or masks, slices or
#: reshapes the incoming gradient (never sums two values).
_KEEPS_FORMAT_BWD = (ReLU, Flatten, Linear, MatMul, Add, Concat, Select)
_GEMM_MODULES = (Linear, Conv2d, MatMul)
#: Vector modules whose parameters get a gradient even when they read only the network input.
_HAS_PARAMS = (BatchNorm, LayerNorm)


class StepRecorder(StepObserver):
    """Stores every tensor between layers in the format of its role (the policy's ``output``; a
    vector layer reading the raw network input runs in its format) and records the vector ops the
    step executes, as the trace builder lays them out."""

    def __init__(self, policy: PrecisionPolicy, recorder: OpRecorder):
        self.policy = policy
        self.recorder = recorder
        self.formats: dict[str | None, str] = {}
        #: layers whose weights got a gradient this step, in the order the backward pass reached them
        self.updated: list[Node] = []
        #: samples in this step
        self.batch = 1

    def start(self, x: np.ndarray) -> None:
        self.formats = {None: "fp32"}
        self.updated = []
        if isinstance(self.hook, QuantHook):
            self.hook.tensor_formats = self.formats

    hook: Any = None

    def _op(self, node: Node) -> str:
        if isinstance(node.module, Embedding):
            return "embedding_pos" if node.layer.positions else "embedding"
        return VECTOR_OP_NAME[node.layer.type]

    def forward(self, node: Node, y: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
        out = self.policy.output
        module = node.module
        if isinstance(module, _GEMM_MODULES):
            self.formats[node.name] = out
            return y
        src = self.formats[node.inputs[0]]
        if isinstance(module, Flatten):
            self.formats[node.name] = src
            return y
        fmt = out if isinstance(module, Embedding) else vector_format(src, out)
        if fmt != "fp32" and not (isinstance(module, _KEEPS_FORMAT_FWD) and all(
                self.formats[i] == fmt for i in node.inputs)):
            y = quantize_float(y, fmt).values
        self.formats[node.name] = fmt
        if self.recorder.active:
            self.recorder.add(VectorOp(node.name, "fwd", y.size, self._op(node), fmt))
        return y

    def grad_sum(self, node: Node, total: np.ndarray) -> np.ndarray:
        total = _round(total, self.policy.output)
        if self.recorder.active:
            self.recorder.add(VectorOp(node.name, "bwd_data", total.size, "grad_add", self.policy.output))
        return total

    def backward(self, node: Node, grads: list[np.ndarray | None]) -> list[np.ndarray | None]:
        module = node.module
        out = self.policy.output
        if isinstance(module, (Linear, Conv2d, Embedding)):
            self.updated.append(node)
        if isinstance(module, Embedding):
            if self.recorder.active:
                self.recorder.add(VectorOp(node.name, "bwd_weight", node.layer.out_elements(self.batch),
                                           "embedding_bwd", out))
            return grads
        if not isinstance(module, _KEEPS_FORMAT_BWD):
            grads = [None if g is None else _round(g, out) for g in grads]
        if self.recorder.active and not isinstance(module, (*_GEMM_MODULES, Flatten, Add, Concat)):
            reads_input_only = all(i is None for i in node.inputs)
            if not reads_input_only or isinstance(module, _HAS_PARAMS):
                elements = grads[0].size if grads[0] is not None else node.layer.in_elements(self.batch)
                self.recorder.add(VectorOp(node.name, "bwd_data", elements, VECTOR_OP_NAME[node.layer.type] + "_bwd", out))
        return grads


class Evaluator(StepObserver):
    """The evaluation forward: tensors stored in their formats (as in training), nothing recorded;
    collects which ReLU units were ever positive when :attr:`alive` is a dict."""

    def __init__(self, policy: PrecisionPolicy | None):
        self.policy = policy
        self.formats: dict[str | None, str] = {None: "fp32"}
        self.alive: dict[str, np.ndarray] | None = None

    def forward(self, node: Node, y: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
        if self.policy is None:
            return y
        out = self.policy.output
        module = node.module
        if isinstance(module, _GEMM_MODULES):
            self.formats[node.name] = out
        elif isinstance(module, Flatten):
            self.formats[node.name] = self.formats[node.inputs[0]]
        else:
            fmt = out if isinstance(module, Embedding) else vector_format(self.formats[node.inputs[0]], out)
            if fmt != "fp32" and not (isinstance(module, _KEEPS_FORMAT_FWD) and all(
                    self.formats[i] == fmt for i in node.inputs)):
                y = quantize_float(y, fmt).values
            self.formats[node.name] = fmt
        if self.alive is not None and isinstance(module, ReLU):
            seen = np.any(y > 0, axis=0)
            self.alive[node.name] = self.alive[node.name] | seen if node.name in self.alive else seen
        return y


# ------------------------------------------------------------------------------------------------
# training


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    #: PACT clip value of each layer at the end of the epoch
    pact_alpha: dict[str, float] = field(default_factory=dict)
    #: "ok", or "diverged at step N" (the training stopped in this epoch)
    status: str = "ok"
    #: further test metrics of the task: ``sequence_accuracy`` (sequence tasks), ``perplexity`` (text)
    test_metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    """What a training run produced: accuracy, curves, gradient fidelity and one recorded step.

    ``accuracy`` is the final epoch's test accuracy (per token for sequence and text data), ``None``
    if the run diverged (``diverged`` then says ``{"epoch", "step"}``). ``pact_codes_used``: per
    PACT layer, how many of the 16 UINT4 codes its input used on the test set after training.
    """

    precision: str
    seed: int
    accuracy: float | None
    history: list[EpochStats]
    grad_fidelity: dict[str, dict[str, float]]
    steps: int
    recorded_ops: list[Op]
    grad_sample: np.ndarray
    grad_layer: str | None
    diverged: dict[str, int] | None = None
    pact_codes_used: dict[str, int] = field(default_factory=dict)
    #: per ReLU layer, the share of its output units never positive on the test set after training
    dead_relu_fraction: dict[str, float] = field(default_factory=dict)
    #: the accuracy metric: ``accuracy`` (classes), ``token_accuracy`` or ``next_char_accuracy``
    metric: str = "accuracy"


def _correct(logits: np.ndarray, labels: np.ndarray) -> tuple[int, int, int, int]:
    """(correct labels, counted labels, correct sequences, sequences); label -1 does not count."""
    pred = np.argmax(logits, axis=-1)
    valid = labels != SoftmaxCrossEntropy.IGNORE
    hits = (pred == labels) & valid
    if labels.ndim == 1:
        return int(hits.sum()), int(valid.sum()), int(hits.sum()), int(valid.sum())
    seq_ok = np.all(hits | ~valid, axis=1)
    return int(hits.sum()), int(valid.sum()), int(seq_ok.sum()), len(labels)


def train(
    net: Network, data: Dataset, policy: PrecisionPolicy, training: TrainingSpec, seed: int,
    *, progress: Progress | None = None,
) -> TrainResult:
    """Train ``net`` on ``data`` under ``policy``; deterministic for a given seed (the same bits
    on any machine). ``seed`` sets the initialisation, the shuffling and the stochastic rounding."""
    rng = np.random.default_rng(seed)
    model = build_model(net, rng)
    plans = layer_plans(build_step(net, policy))
    recorder = OpRecorder()
    opt_spec = training.optimizer
    hook = QuantHook(policy, plans, np.random.default_rng([seed, 1]), recorder)
    model.hook = hook
    gemm_names = [n.name for n in model.nodes if isinstance(n.module, (Linear, Conv2d))]
    hook.grad_probe = next(
        (n for n in gemm_names if plans[n].bwd_weight.b_format in ("fp4r4", "int4")),
        gemm_names[len(gemm_names) // 2] if gemm_names else None,
    )
    opt = SGD(model, opt_spec.lr, opt_spec.momentum, opt_spec.weight_decay, extra=hook.parameters())
    loss_fn = SoftmaxCrossEntropy()
    step_rec = StepRecorder(policy, recorder)
    step_rec.hook = hook
    hook.sources = {n.name: n.inputs for n in model.nodes}
    out_fmt = policy.output
    epochs = training.epochs or 1
    batch = net.batch_size
    n = len(data.y_train)
    steps_per_epoch = -(-n // batch)
    total = epochs * steps_per_epoch
    history: list[EpochStats] = []
    diverged: dict[str, int] | None = None
    alive: dict[str, np.ndarray] = {}
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(n)
        loss_sum = 0.0
        counts = [0, 0]
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            xb, yb = data.x_train[idx], data.y_train[idx]
            recorder.active = step == 0
            hook.measure_fidelity = start == 0
            step_rec.start(xb)
            step_rec.batch = len(idx)
            try:
                logits = model.forward(xb, True, step_rec)
                loss, dlogits = loss_fn(logits, yb)
                if not math.isfinite(loss):
                    raise Divergence("loss")
                if recorder.active:
                    recorder.add(VectorOp(model.nodes[-1].name, "fwd", logits.size, "softmax_xent", out_fmt))
                model.backward(_round(dlogits, out_fmt), step_rec)
                opt.step()
                for param in opt.params:
                    _finite(param.value, param.name)
                for p in hook.parameters():
                    np.maximum(p.value, np.float32(MIN_PACT_ALPHA), out=p.value)
            except (Divergence, NonFiniteOperand):
                diverged = {"epoch": epoch + 1, "step": step + 1}
                break
            if recorder.active:
                for node in step_rec.updated:
                    recorder.add(VectorOp(node.name, "update", node.layer.weight_elements(), "sgd_update",
                                          policy.master_weight))
            recorder.active = False
            valid = int(np.sum(yb != SoftmaxCrossEntropy.IGNORE))
            loss_sum += float(loss) * valid
            hit, cnt, _, _ = _correct(logits, yb)
            counts[0] += hit
            counts[1] += cnt
            step += 1
            if progress is not None:
                progress(step, total)
        alphas = {name: float(p.value) for name, p in hook.alpha.items()}
        if diverged is not None:
            nan = float("nan")
            history.append(EpochStats(epoch + 1, nan, nan, nan, nan, alphas, f"diverged at step {diverged['step']}"))
            break
        last = epoch == epochs - 1
        hook.count_codes = last
        test_loss, test_acc, extra = evaluate(model, data, policy, alive if last else None)
        hook.count_codes = False
        history.append(EpochStats(epoch + 1, loss_sum / max(counts[1], 1), counts[0] / max(counts[1], 1),
                                  test_loss, test_acc, alphas, test_metrics=extra))
    fidelity: dict[str, dict[str, float]] = {}
    for (layer, phase), (total_cos, count) in hook.fidelity.items():
        fidelity.setdefault(layer, {})[phase] = total_cos / count if count else float("nan")
    return TrainResult(
        precision=policy.name, seed=seed, accuracy=None if diverged else history[-1].test_accuracy,
        history=history, grad_fidelity=fidelity, steps=step, recorded_ops=list(recorder.ops),
        grad_sample=hook.grad_sample if hook.grad_sample is not None else np.zeros(0, np.float32),
        grad_layer=hook.grad_probe, diverged=diverged,
        pact_codes_used={name: int(seen.sum()) for name, seen in hook.codes_seen.items()},
        dead_relu_fraction={name: float(1.0 - np.mean(a)) for name, a in alive.items()},
        metric=data.metric,
    )


def _round(x: np.ndarray, fmt: str) -> np.ndarray:
    """A tensor stored in the policy's ``output`` format."""
    return x if fmt == "fp32" else quantize_float(x, fmt).values


def evaluate(
    model: GraphModel, data: Dataset, policy: PrecisionPolicy | None, alive: dict[str, np.ndarray] | None = None,
) -> tuple[float, float, dict[str, float]]:
    """Mean loss, accuracy and the task's further metrics on the test set, in eval mode (the same
    quantized forward as training, no stash). ``alive``, if given, collects per ReLU layer which
    output units were positive for some sample."""
    loss_fn = SoftmaxCrossEntropy()
    loss_sum, hits, count, seq_hits, seqs = 0.0, 0, 0, 0, 0
    x, y = data.x_test, data.y_test
    for start in range(0, len(y), EVAL_BATCH):
        xb, yb = x[start:start + EVAL_BATCH], y[start:start + EVAL_BATCH]
        ev = Evaluator(policy)
        ev.alive = alive
        if isinstance(model.hook, QuantHook):
            model.hook.tensor_formats = ev.formats
        logits = model.forward(xb, False, ev)
        loss, _ = loss_fn(logits, yb)
        h, c, sh, sn = _correct(logits, yb)
        loss_sum += float(loss) * c
        hits, count, seq_hits, seqs = hits + h, count + c, seq_hits + sh, seqs + sn
    mean_loss = loss_sum / max(count, 1)
    extra: dict[str, float] = {}
    if data.metric == "token_accuracy":
        extra["sequence_accuracy"] = seq_hits / max(seqs, 1)
    elif data.metric == "next_char_accuracy":
        extra["perplexity"] = float(elementary.exp(np.float64(mean_loss)))
    return mean_loss, hits / max(count, 1), extra


def quantize_image(image: np.ndarray, bits: int) -> np.ndarray:
    """An image in [0, 1] on a ``bits``-bit grid (``2**bits`` shades; 4 bits is the ``x·15 − 8``
    mapping shifted back to [0, 1])."""
    levels = (1 << bits) - 1
    return np.rint(np.clip(image, 0.0, 1.0) * levels) / levels


__all__ = [
    "QuantHook", "OpRecorder", "LayerPlan", "layer_plans", "train", "evaluate", "TrainResult",
    "EpochStats", "Divergence", "quantize_image", "NUMERICS_VERSION", "training_key", "train_cached",
]


# ------------------------------------------------------------------------------------------------
# cache: re-runs, plots and sweeps over hardware never retrain


def training_key(net: Network, data: Dataset, policy: PrecisionPolicy, training: TrainingSpec, seed: int) -> str:
    """Hash of everything a training result depends on: the numerics version, the network, the
    batch size, the data (by content), the policy, the training settings and the seed. (The
    results do not depend on the machine, the BLAS or its thread count.)"""

    digest = hashlib.sha256()
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(str((array.dtype.str, array.shape)).encode())
    payload = {
        "numerics_version": NUMERICS_VERSION,
        "network": [dataclasses.asdict(layer) for layer in net.layers],
        "input_shape": list(net.input_shape),
        "batch_size": net.batch_size,
        "policy": policy.model_dump(mode="json"),
        "training": training.model_dump(mode="json", exclude={"seeds"}),
        "seed": seed,
        "data": digest.hexdigest(),
        **({"initial_params": initial_params_digest(net)} if net.meta.get("initial_params") else {}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _meta(result: TrainResult) -> dict[str, Any]:
    return {
        "precision": result.precision, "seed": result.seed, "accuracy": result.accuracy, "steps": result.steps,
        "history": [dataclasses.asdict(h) for h in result.history], "grad_fidelity": result.grad_fidelity,
        "grad_layer": result.grad_layer, "diverged": result.diverged, "pact_codes_used": result.pact_codes_used,
        "dead_relu_fraction": result.dead_relu_fraction,
        "recorded_ops": [op_to_dict(op) for op in result.recorded_ops],
    }


def _checksum(meta_text: str, npz: bytes) -> str:
    return hashlib.sha256(meta_text.encode() + b"\0" + npz).hexdigest()


def save_result(result: TrainResult, path_stem: Path) -> None:
    """Write ``<stem>.npz`` then ``<stem>.json`` (the JSON last: its presence marks a complete
    entry); the JSON carries a checksum of both."""
    buf = io.BytesIO()
    np.savez(buf, grad_sample=result.grad_sample)
    npz = buf.getvalue()
    meta_text = json.dumps(_meta(result), indent=1, sort_keys=True)
    atomic_write_bytes(path_stem.with_suffix(".npz"), npz)
    entry = {"checksum": _checksum(meta_text, npz), "result": meta_text}
    atomic_write_text(path_stem.with_suffix(".json"), json.dumps(entry) + "\n")


class DamagedCacheEntry(Exception):
    """A cache entry that exists but does not verify (edited, truncated, unreadable)."""


def load_result(path_stem: Path) -> TrainResult | None:
    """The cached result, ``None`` if there is none; :class:`DamagedCacheEntry` if the entry does
    not match its checksum or cannot be read."""
    meta_path, npz_path = path_stem.with_suffix(".json"), path_stem.with_suffix(".npz")
    if not meta_path.is_file():
        return None
    try:
        entry = json.loads(meta_path.read_text(encoding="utf-8"))
        npz = npz_path.read_bytes()
        meta_text = entry["result"]
        if not isinstance(meta_text, str) or entry.get("checksum") != _checksum(meta_text, npz):
            raise DamagedCacheEntry(str(meta_path))
        meta = json.loads(meta_text)
        with np.load(io.BytesIO(npz), allow_pickle=False) as archive:
            sample = archive["grad_sample"]
        header = json.dumps({"trace": 1, "workload": "cached"})
        ops = loads_trace(header + "\n" + "\n".join(json.dumps(o) for o in meta["recorded_ops"]), str(meta_path)).ops
        return TrainResult(
            precision=meta["precision"], seed=meta["seed"], accuracy=meta["accuracy"],
            history=[EpochStats(**h) for h in meta["history"]], grad_fidelity=meta["grad_fidelity"],
            steps=meta["steps"], recorded_ops=list(ops), grad_sample=sample, grad_layer=meta["grad_layer"],
            diverged=meta["diverged"], pact_codes_used=meta["pact_codes_used"],
            dead_relu_fraction=meta["dead_relu_fraction"],
        )
    except DamagedCacheEntry:
        raise
    except Exception as exc:  # anything unreadable is damage, never trusted
        raise DamagedCacheEntry(str(meta_path)) from exc


def cache_lookup(
    net: Network, data: Dataset, policy: PrecisionPolicy, training: TrainingSpec, seed: int, cache_dir: Path | None,
) -> tuple[TrainResult | None, str]:
    """The cached result of a training, if any: ``(result, "cached")``, ``(None, "trained")`` (not
    cached: to be trained) or ``(None, "damaged")`` (an entry failed its checksum: to be retrained)."""
    if cache_dir is None:
        return None, "trained"
    try:
        cached = load_result(cache_dir / training_key(net, data, policy, training, seed))
    except DamagedCacheEntry:
        return None, "damaged"
    return (cached, "cached") if cached is not None else (None, "trained")


def cache_store(result: TrainResult, net: Network, data: Dataset, policy: PrecisionPolicy, training: TrainingSpec,
                seed: int, cache_dir: Path | None) -> None:
    if cache_dir is not None:
        save_result(result, cache_dir / training_key(net, data, policy, training, seed))


def train_cached(
    net: Network, data: Dataset, policy: PrecisionPolicy, training: TrainingSpec, seed: int,
    cache_dir: Path | None, *, progress: Progress | None = None,
) -> tuple[TrainResult, str]:
    """:func:`train`, or its cached result; returns ``(result, status)`` with status ``"trained"``,
    ``"cached"`` or ``"damaged"`` (a cache entry failed its checksum and was retrained)."""
    cached, status = cache_lookup(net, data, policy, training, seed, cache_dir)
    if cached is not None:
        return cached, status
    result = train(net, data, policy, training, seed, progress=progress)
    cache_store(result, net, data, policy, training, seed, cache_dir)
    return result, status
