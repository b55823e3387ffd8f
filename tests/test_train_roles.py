"""Every role of every precision preset is applied where the policy says: one training step is
instrumented, and every GEMM operand, every GEMM result and every tensor passed between layers is
checked to be representable in the format of its role."""

from __future__ import annotations

import numpy as np
import pytest

import accelsim.nn.train as train_mod
from accelsim.nn.datasets import Dataset
from accelsim.numerics.formats import FORMATS
from accelsim.numerics.gemm import GridOperand, Scaled, Sliced, chunked_fp16_matmul
from accelsim.numerics.policy import PRESET_NAMES, accumulator_for, layer_formats, resolve_policy
from accelsim.numerics.quant import quantize_float
from accelsim.spec.models import TrainingSpec
from accelsim.trace import GemmOp
from accelsim.workload.zoo import cnn


def _blobs(n=32, classes=4, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    protos = rng.random((classes, 64), dtype=np.float32)
    y = np.arange(n) % classes
    x = np.clip(protos[y] + rng.normal(0, 0.1, (n, 64)), 0, 1).astype(np.float32).reshape(n, 1, 8, 8)
    return Dataset("blobs", x, y, x[:8], y[:8], classes)


def in_format(x, fmt: str) -> bool:
    """Is ``x`` (a GridOperand, float values, their slices or block-scaled values) representable in
    ``fmt``? A block-scaled value is an element times a block scale: it has no more significant
    bits than the two together (a value that was not quantized has up to 24)."""
    if isinstance(x, Scaled):
        f = FORMATS[fmt]
        if f.kind != "block":
            return False
        elem = {"fp4e2m1": 2, "fp6e2m3": 4, "fp6e3m2": 3, "fp8e4m3": 4, "fp8e5m2": 3, "int4": 3, "int8": 7}[f.element]
        scale = {"e8m0": 1, "fp8e4m3": 4, "fp16": 11}[f.scale_format if fmt != "int4b" else "e8m0"]
        v = np.abs(x.values.astype(np.float64)).ravel()
        v = v[v > 0]
        mant, _ = np.frexp(v)
        return bool(np.all(mant * 2.0 ** (elem + scale) == np.trunc(mant * 2.0 ** (elem + scale))))
    if isinstance(x, Sliced):
        x = x.values()
    if isinstance(x, GridOperand):
        c = np.asarray(x.codes, dtype=np.float64)
        if not (np.array_equal(c, np.trunc(c)) and x.scale > 0):
            return False
        if fmt == "int4":
            return bool(c.min() >= -8 and c.max() <= 7)
        if fmt == "uint4":
            return bool(c.min() >= 0 and c.max() <= 15)
        if fmt == "fp4r4":
            mags = set(np.unique(np.abs(c)).tolist())
            return mags <= {0.0, *(4.0**j for j in range(7))}
        return False
    x = np.asarray(x)
    if fmt == "fp32":
        return x.dtype == np.float32
    return np.array_equal(quantize_float(x, fmt).values, x, equal_nan=True)


class Probe:
    """Records every GEMM and every layer's output and input gradient during the first step."""

    def __init__(self, monkeypatch):
        self.gemms: list[tuple] = []
        self.tensors: list[tuple[str, str, np.ndarray]] = []
        self.model = None
        real_gemm, real_build = train_mod.gemm, train_mod.build_model

        def gemm(a, b, **kw):
            y = real_gemm(a, b, **kw)
            bias = kw.get("bias")
            # copies: the optimizer updates the bias in place later
            self.gemms.append((a, b, {**kw, "bias": None if bias is None else bias.copy()}, y.copy()))
            return y

        def build_model(net, rng, **kw):
            model = real_build(net, rng, **kw)
            self.model = model
            for layer in model.layers:
                fwd, bwd = layer.forward, layer.backward

                def forward(x, training, _f=fwd, _l=layer):
                    y = _f(x, training)
                    if training:
                        self.tensors.append((_l.name, "fwd", y))
                    return y

                def backward(dy, _b=bwd, _l=layer):
                    self.tensors.append((_l.name, "grad in", dy))
                    return _b(dy)

                layer.forward, layer.backward = forward, backward
            return model

        monkeypatch.setattr(train_mod, "gemm", gemm)
        monkeypatch.setattr(train_mod, "build_model", build_model)


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_every_role_of_every_preset_is_applied(preset, monkeypatch):
    net = cnn((1, 8, 8), classes=4, batch_size=32)   # one step per epoch
    # first/last overrides off, so every role of the preset itself is exercised on some layer;
    # the input enters the first layer in the preset's input_data format
    policy = resolve_policy({"preset": preset, "first_layer": None, "last_layer": None, "attention": None})
    probe = Probe(monkeypatch)
    result = train_mod.train(net, _blobs(), policy, TrainingSpec(epochs=1), seed=0)
    assert result.steps == 1 and result.diverged is None
    ops = [op for op in result.recorded_ops if isinstance(op, GemmOp)]
    calls = probe.gemms[: len(ops)]
    assert len(calls) == len(ops) == 8   # conv0 fwd/bwd_weight, conv1 and linear all three
    names = [layer.name for layer in net.gemm_layers()]
    for op, (a, b, kw, y) in zip(ops, calls):
        # conv1 and the classifier read ReLU outputs (through max pooling): unsigned activations
        fmts = layer_formats(policy, is_first=op.layer == names[0], is_last=op.layer == names[-1])
        expected = {
            "fwd": (fmts.activation, fmts.weight),
            "bwd_weight": (fmts.bwd_activation, fmts.grad_bwd_weight),
            "bwd_data": (fmts.grad_bwd_data, fmts.bwd_weight),
        }[op.phase]
        assert (op.a_format, op.b_format) == expected, op
        assert in_format(a, op.a_format), (op.layer, op.phase, "A", op.a_format)
        assert in_format(b, op.b_format), (op.layer, op.phase, "B", op.b_format)
        assert kw["acc_format"] == op.acc_format == accumulator_for(policy, op.a_format, op.b_format)
        out = policy.master_weight if op.phase == "bwd_weight" else policy.output
        assert op.out_format == out
        if op.phase == "bwd_data" and op.layer.startswith("conv"):
            # folded back onto the input (col2im) first; the fold is stored in the output
            # format: checked with the layer's input gradient below
            assert kw["out_format"] == "fp32"
        else:
            assert kw["out_format"] == out
            assert in_format(y, out), (op.layer, op.phase, "result", out)
    # every tensor passed between layers, forward and backward, is stored in the output format
    assert probe.tensors
    for layer, what, t in probe.tensors:
        assert in_format(t, policy.output), (layer, what, policy.output)
    # master weights (and PACT's clip) are fp32 and were updated
    for name, param, value, _ in probe.model.parameters():
        assert value.dtype == np.float32


def test_fp16_chunked_accumulation_keeps_working(monkeypatch):
    """``accumulation: fp16-chunked``: every float-accumulated GEMM of a step is the FP16 chunk sum
    of its operands (chunk 16 here), and the training runs."""
    policy = resolve_policy({"preset": "fp16", "accumulation": "fp16-chunked", "accumulation_chunk": 16})
    probe = Probe(monkeypatch)
    result = train_mod.train(cnn((1, 8, 8), classes=4, batch_size=32), _blobs(), policy, TrainingSpec(epochs=2), seed=0)
    assert result.diverged is None and result.accuracy is not None
    a, b, kw, y = probe.gemms[1]
    assert kw["accumulation"] == "fp16-chunked" and kw["chunk"] == 16
    ref = chunked_fp16_matmul(a, b, 16)
    if kw.get("bias") is not None:
        ref = ref + kw["bias"]
    np.testing.assert_array_equal(y, quantize_float(ref, "fp16").values)


@pytest.mark.parametrize("preset, hadamard", [("nvfp4", "bwd_weight"), ("nvfp4", "none"), ("mxfp4", "all")])
def test_block_gradient_fidelity_is_measured_in_the_gradients_basis(preset, hadamard):
    """The cosine of a 4-bit gradient operand with the unquantized gradient is taken after the same
    Hadamard transform on both (in the original basis the rotated operand looks like noise): FP4
    with block scales keeps it near, not at, 1; a BF16 gradient stays at 1 to 5 digits."""
    policy = resolve_policy({"preset": preset, "hadamard": hadamard, "first_layer": "bf16", "last_layer": "bf16"})
    result = train_mod.train(cnn((1, 8, 8), classes=4, batch_size=32), _blobs(), policy, TrainingSpec(epochs=2), seed=0)
    middle = result.grad_fidelity["conv2"]
    assert 0.97 < middle["bwd_weight"] < 0.999 and 0.97 < middle["bwd_data"] < 0.999
    assert result.grad_fidelity["fc"]["bwd_weight"] == pytest.approx(1.0, abs=1e-5)
