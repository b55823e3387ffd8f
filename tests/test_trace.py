"""The trace builder: one training step of a small conv net, worked out by hand; inference is the
forward pass only; traces survive a JSON-lines round trip and bad trace files are rejected."""

from __future__ import annotations

import pytest

from accelsim import api
from accelsim.errors import InputError
from accelsim.numerics.formats import OPERAND_FORMATS
from accelsim.numerics.policy import PRESETS, resolve_policy
from accelsim.trace import GemmOp, RescaleOp, VectorOp, dumps_trace, loads_trace
from accelsim.workload.builder import build_step

from conftest import HW_TEXT, WORKLOAD_TEXT, write


def _net(tmp_path, text=WORKLOAD_TEXT):
    setup = api.prepare(write(tmp_path / "wl.yaml", text), write(tmp_path / "hw.yaml", HW_TEXT))
    return setup.network


def _summary(trace):
    rows = []
    for op in trace.ops:
        if isinstance(op, GemmOp):
            rows.append(("gemm", op.layer, op.phase, op.m, op.n, op.k, op.a_format, op.b_format, op.out_format))
        elif isinstance(op, RescaleOp):
            rows.append(("rescale", op.layer, op.phase, op.elements, op.in_format, op.out_format, op.reduction, op.copies))
        else:
            rows.append(("vector", op.layer, op.phase, op.elements, op.op, op.format))
    return rows


def test_training_step_of_a_conv_net_by_hand(tmp_path):
    """input 1x8x8, batch 16: conv 4@3x3 pad 1 -> relu -> conv 8@3x3 -> relu -> flatten -> linear 10.

    int4 policy: first and last layer in fp16, the middle conv in int4 (uint4 activations behind a
    ReLU, SAWB weights, radix-4 FP4 gradients quantized twice for Two-Phase Rounding).
    """
    trace = build_step(_net(tmp_path), PRESETS["int4"])
    assert _summary(trace) == [
        # forward
        ("gemm", "conv2d0", "fwd", 16 * 8 * 8, 4, 9, "fp16", "fp16", "fp16"),
        ("vector", "relu0", "fwd", 16 * 4 * 8 * 8, "relu", "fp16"),
        ("rescale", "conv2d1", "fwd", 16 * 4 * 8 * 8, "fp16", "uint4", "none", 1),  # PACT activations
        ("rescale", "conv2d1", "fwd", 4 * 9 * 8, "fp32", "int4", "stats", 1),  # SAWB weights
        ("gemm", "conv2d1", "fwd", 16 * 6 * 6, 8, 36, "uint4", "int4", "fp16"),
        ("vector", "relu1", "fwd", 16 * 8 * 6 * 6, "relu", "fp16"),
        ("gemm", "linear0", "fwd", 16, 10, 288, "fp16", "fp16", "fp16"),
        ("vector", "linear0", "fwd", 160, "softmax_xent", "fp16"),
        # backward: weight gradient dW[k x n] = X^T dY, data gradient dX[m x k] = dY W^T
        ("gemm", "linear0", "bwd_weight", 288, 10, 16, "fp16", "fp16", "fp32"),
        ("gemm", "linear0", "bwd_data", 16, 288, 10, "fp16", "fp16", "fp16"),
        ("vector", "relu1", "bwd_data", 16 * 288, "relu_bwd", "fp16"),
        ("rescale", "conv2d1", "bwd_data", 16 * 36 * 8, "fp16", "fp4r4", "max", 2),  # TPR: two copies
        ("gemm", "conv2d1", "bwd_weight", 36, 8, 576, "uint4", "fp4r4", "fp32"),
        ("gemm", "conv2d1", "bwd_data", 576, 36, 8, "fp4r4", "int4", "fp16"),
        ("vector", "relu0", "bwd_data", 16 * 256, "relu_bwd", "fp16"),
        ("gemm", "conv2d0", "bwd_weight", 9, 4, 1024, "fp16", "fp16", "fp32"),  # no bwd_data: reads the input
        # optimizer
        ("vector", "linear0", "update", 2880, "sgd_update", "fp32"),
        ("vector", "conv2d1", "update", 288, "sgd_update", "fp32"),
        ("vector", "conv2d0", "update", 36, "sgd_update", "fp32"),
    ]
    # the im2col GEMMs move the real tensors: conv2d1's input is 16x4x8x8, not 576 x 36
    fwd = trace.ops[4]
    assert fwd.a_elements == 16 * 4 * 8 * 8 and fwd.macs == 576 * 8 * 36
    # every dependency points back; the weight-gradient GEMM waits for its quantized gradient
    assert all(d < i for i, op in enumerate(trace.ops) for d in op.deps)
    assert trace.ops[12].deps == (2, 11)  # the stashed uint4 input and the quantized gradient


def test_baseline_step_has_no_rescale(tmp_path):
    trace = build_step(_net(tmp_path), PRESETS["fp16"])
    assert not [op for op in trace.ops if isinstance(op, RescaleOp)]
    assert {(op.a_format, op.b_format) for op in trace.gemms()} == {("fp16", "fp16")}


def test_no_tpr_quantizes_once_and_inference_is_forward_only(tmp_path):
    trace = build_step(_net(tmp_path), PRESETS["int4-no-tpr"])
    grads = [op for op in trace.ops if isinstance(op, RescaleOp) and op.tensor == "gradient"]
    assert [op.copies for op in grads] == [1]
    inference = build_step(_net(tmp_path), PRESETS["int4"], phases="inference")
    assert {op.phase for op in inference.ops} == {"fwd"}
    assert [op.layer for op in inference.gemms()] == ["conv2d0", "conv2d1", "linear0"]
    assert not any(isinstance(op, VectorOp) and op.op == "softmax_xent" for op in inference.ops)


def test_first_layer_in_int4_maps_the_input(tmp_path):
    """Without the first-layer override the network input itself is stretched onto the int4 grid."""
    trace = build_step(_net(tmp_path), resolve_policy({"preset": "int4", "first_layer": None}))
    first, weights, gemm = trace.ops[:3]
    assert isinstance(first, RescaleOp) and first.tensor == "input"
    assert (first.elements, first.in_format, first.out_format) == (16 * 64, "fp16", "int4")
    assert isinstance(weights, RescaleOp) and weights.tensor == "weight"
    assert (gemm.a_format, gemm.b_format, gemm.deps) == ("int4", "int4", (0, 1))


def test_residual_gradients_are_summed():
    """A tensor read by two layers gets its two gradient contributions added (resnet block)."""
    from accelsim.workload.zoo import build_zoo_model

    net = build_zoo_model("resnet18", input_shape=(3, 32, 32), classes=10, batch_size=2)
    trace = build_step(net, PRESETS["fp16"])
    adds = [op for op in trace.ops if isinstance(op, VectorOp) and op.op == "grad_add"]
    assert len(adds) == 8  # the input of each of the 8 basic blocks feeds the block and its shortcut
    fwd_macs = sum(op.macs for op in trace.gemms() if op.phase == "fwd")
    assert fwd_macs == net.forward_macs()
    # backward costs twice the forward, less the missing data gradient of the first conv
    first = net.layers[0].macs(2)
    assert sum(op.macs for op in trace.gemms() if op.phase != "fwd") == 2 * fwd_macs - first


def test_jsonl_round_trip(tmp_path):
    trace = build_step(_net(tmp_path), PRESETS["int4"], steps=5)
    text = dumps_trace(trace)
    assert loads_trace(text, "t.jsonl") == trace
    assert text.splitlines()[0] == (
        '{"trace":1,"workload":"wl-test","steps":5,"batch_size":16,"phases":"training","precision":"int4"}'
    )


def test_trace_cli_writes_jsonl(tmp_path, cli):
    wl = write(tmp_path / "wl.yaml", WORKLOAD_TEXT)
    code, out, err = cli("trace", wl, "-o", tmp_path / "t.jsonl")
    assert code == 0, err
    trace = loads_trace((tmp_path / "t.jsonl").read_text(), "t.jsonl")
    assert trace.steps == 3 and len(trace.ops) == 19
    code, out, err = cli("trace", wl, "--baseline")
    assert code == 0 and loads_trace(out, "-").precision == "fp16"


def test_bad_trace_lines_are_all_reported():
    header = '{"trace":1,"workload":"w","steps":1}\n'
    bad = (
        header
        + '{"kind":"gemm","layer":"a","phase":"fwd","m":0,"n":2,"k":2,"a_format":"int3","b_format":"int4","acc_format":"fp32","out_format":"fp16"}\n'
        + '{"kind":"vector","layer":"b","phase":"sideways","elements":4,"op":"relu","format":"fp16","deps":[5]}\n'
        + "not json\n"
        + '{"kind":"conv"}\n'
    )
    with pytest.raises(InputError) as info:
        loads_trace(bad, "t.jsonl")
    assert [str(p) for p in info.value.problems] == [
        "t.jsonl: line 2.m: must be a positive integer, got 0",
        f"t.jsonl: line 2.a_format: unknown format 'int3' (allowed: {', '.join(OPERAND_FORMATS)})",
        "t.jsonl: line 3.phase: unknown phase 'sideways' (allowed: fwd, bwd_data, bwd_weight, update)",
        "t.jsonl: line 3.deps: dependency 5 is not the index of an earlier op",
        "t.jsonl: line 4: not valid JSON: Expecting value",
        "t.jsonl: line 5.kind: unknown op kind 'conv' (allowed: gemm, rescale, vector)",
    ]


def test_fused_epilogues_keep_tensors_on_chip(tmp_path):
    """conv -> relu -> 4-bit rescale: the ReLU and the rescale ride on the conv's output stream,
    so neither reads DRAM, and only the 4-bit stash is written; the ReLU's backward reads its mask
    from that 4-bit stash."""
    from accelsim.hw.machine import Machine
    from accelsim.sim.closed_form import time_step
    from accelsim.sim.fusion import plan_residency
    from accelsim.spec.load import load_hardware

    trace = build_step(_net(tmp_path), PRESETS["int4"])
    res = plan_residency(trace)
    # ops 0-2: conv2d0 (fp16 out) -> relu0 -> rescale to uint4 for conv2d1
    assert res.input_on_chip[:3] == (False, True, True)
    # the conv's and the ReLU's outputs stay on chip (the ReLU's backward reads the 4-bit stash)
    assert res.output_on_chip[:3] == (True, True, False)
    machine = Machine(load_hardware(write(tmp_path / "hw.yaml", HW_TEXT)), "hw.yaml")
    step = time_step(trace, machine)
    conv, relu, rescale = step.ops[:3]
    assert conv.dram_write_bits == 0
    assert relu.dram_read_bits == 0 and relu.dram_write_bits == 0
    assert rescale.dram_read_bits == 0 and rescale.dram_write_bits == 16 * 4 * 8 * 8 * 4
    relu_bwd = next(op for op in trace.ops if isinstance(op, VectorOp) and op.op == "relu_bwd" and op.layer == "relu0")
    assert relu_bwd.aux_format == "uint4" and 2 in relu_bwd.deps
