"""A corpus of malformed and extreme inputs, one per case, across every file kind and flag: hardware,
workload, sweep and technology-table YAML, SCALE-Sim topology CSVs, npz and IDX data, ``--set``,
``--grid``/``--zip``, ``-o``, report folders. Each case asserts the exit code (2: bad input; 1:
environment), exactly one line on stderr naming the file (or flag) and the field, no traceback,
and that nothing was written. Spec files are checked through both ``accelsim validate`` and
``accelsim run``: what run refuses, validate refuses too, with the same line."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from accelsim.hw.tech import SHIPPED_TABLES
from accelsim.workload import onnx_import
from conftest import HW_TEXT, HWCONFIGS, WORKLOAD_TEXT

BIG = "9" * 5000
TECH_45NM = (SHIPPED_TABLES / "45nm.yaml").read_text(encoding="utf-8")

TRAINED = """\
version: 1
name: trained
model:
  input: [4]
  layers:
    - {type: linear, out: 8}
    - {type: relu}
    - {type: linear, out: 3}
data: {dataset: synthetic, samples: 60, classes: 3, batch_size: 8}
training: {epochs: 1}
"""
IMAGES = TRAINED.replace("data: {dataset: synthetic, samples: 60, classes: 3, batch_size: 8}",
                         "data: {dataset: DATASET, path: PATH, batch_size: 8}")


def hw(old: str, new: str) -> str:
    assert old in HW_TEXT, old
    return HW_TEXT.replace(old, new, 1)


def wl(old: str, new: str) -> str:
    assert old in WORKLOAD_TEXT, old
    return WORKLOAD_TEXT.replace(old, new, 1)


def trained(old: str, new: str) -> str:
    assert old in TRAINED, old
    return TRAINED.replace(old, new, 1)


def tech(old: str, new: str) -> str:
    assert old in TECH_45NM, old
    return TECH_45NM.replace(old, new, 1)


@dataclass
class Case:
    """One bad input: the files it needs, the command, the exit code, a part of the one line."""

    id: str
    args: list[str]
    expect: str
    files: dict[str, str | bytes | Callable[[Path], None]] = field(default_factory=dict)
    code: int = 2


def _files(case: Case, tmp: Path) -> None:
    for name, content in case.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# spec files: run through validate and run


SPEC_CASES: list[tuple[str, str, str, str]] = [
    # (id, kind, text, expected part of the line) — kind: hw, wl, trained
    # hardware: types
    ("hw-rows-bool", "hw", hw("rows: 8", "rows: true"), "array.rows: must be a valid integer; got True"),
    ("hw-rows-octal", "hw", hw("rows: 8", "rows: 010"), "array.rows: must be a valid integer; got '010' (integers are written in decimal"),
    ("hw-rows-hex", "hw", hw("rows: 8", "rows: 0x10"), "array.rows: must be a valid integer; got '0x10'"),
    ("hw-rows-sexagesimal", "hw", hw("rows: 8", "rows: 1:30"), "array.rows: must be a valid integer; got '1:30'"),
    ("hw-rows-digit-groups", "hw", hw("rows: 8", "rows: 1_0"), "array.rows: must be a valid integer; got '1_0'"),
    ("hw-rows-quoted", "hw", hw("rows: 8", 'rows: "8"'), "array.rows: must be a valid integer; got '8' (a number in quotes is a string"),
    ("hw-rows-float", "hw", hw("rows: 8", "rows: 8.0"), "array.rows: must be a valid integer; got 8.0"),
    ("hw-rows-exponent", "hw", hw("rows: 8", "rows: 1e3"), "array.rows: must be a valid integer; got 1000.0"),
    ("hw-rows-zero", "hw", hw("rows: 8", "rows: 0"), "array.rows: must be greater than or equal to 1; got 0"),
    ("hw-rows-negative", "hw", hw("rows: 8", "rows: -4"), "array.rows: must be greater than or equal to 1; got -4"),
    ("hw-rows-huge", "hw", hw("rows: 8", "rows: 70000"), "array.rows: must be less than or equal to 65536; got 70000"),
    ("hw-rows-5000-digits", "hw", hw("rows: 8", f"rows: {BIG}"), "array.rows: an integer of 5000 digits is out of range"),
    ("hw-rows-null", "hw", hw("rows: 8", "rows: null"), "array.rows: must be a valid integer; got None"),
    ("hw-rows-list", "hw", hw("rows: 8", "rows: [8]"), "array.rows: must be a valid integer; got [8]"),
    ("hw-rows-inf", "hw", hw("rows: 8", "rows: .inf"), "array.rows: must be a valid integer; got inf"),
    ("hw-cols-string", "hw", hw("cols: 8", "cols: eight"), "array.cols: must be a valid integer; got 'eight'"),
    # the event model's tile granularity and the block-scaled modes
    ("hw-tile-events-1", "hw", HW_TEXT + "simulation: {tile_events: 1}\n", "simulation.tile_events: must be greater than or equal to 2; got 1"),
    ("hw-tile-events-float", "hw", HW_TEXT + "simulation: {tile_events: 4.5}\n", "simulation.tile_events: must be a valid integer; got 4.5"),
    ("hw-simulation-unknown", "hw", HW_TEXT + "simulation: {tiles: 4}\n", "simulation.tiles: unknown key 'tiles'; did you mean 'tile_events'?"),
    ("hw-mode-block-unknown", "hw", hw("fp16xfp16: 1", "fp16xfp16: 1, nvfp4xnvfp5: 4"),
     "array.modes.nvfp4xnvfp5: mode 'nvfp4xnvfp5' is not '<operand>x<operand>'"),
    ("hw-mode-block-zero", "hw", hw("fp16xfp16: 1", "fp16xfp16: 1, nvfp4xnvfp4: 0"),
     "array.modes: mode 'nvfp4xnvfp4': MACs per PE per cycle must be 1..1024, got 0"),
    ("hw-clock-tiny", "hw", hw("clock_ghz: 1.0", "clock_ghz: 1.0e-300"), "clock_ghz: must be between 0.001 and 100 GHz; got 1e-300"),
    ("hw-clock-zero", "hw", hw("clock_ghz: 1.0", "clock_ghz: 0"), "clock_ghz: must be greater than 0; got 0"),
    ("hw-clock-negative", "hw", hw("clock_ghz: 1.0", "clock_ghz: -2.5"), "clock_ghz: must be greater than 0; got -2.5"),
    ("hw-clock-huge", "hw", hw("clock_ghz: 1.0", "clock_ghz: 1000"), "clock_ghz: must be less than or equal to 100; got 1000"),
    ("hw-clock-nan", "hw", hw("clock_ghz: 1.0", "clock_ghz: .nan"), "clock_ghz: must be a finite number; got nan"),
    ("hw-clock-inf", "hw", hw("clock_ghz: 1.0", "clock_ghz: .inf"), "clock_ghz: must be a finite number; got inf"),
    ("hw-clock-quoted", "hw", hw("clock_ghz: 1.0", 'clock_ghz: "1.0"'), "clock_ghz: must be a valid number; got '1.0'"),
    ("hw-clock-bool", "hw", hw("clock_ghz: 1.0", "clock_ghz: true"), "clock_ghz: must be a valid number; got True"),
    ("hw-clock-yes", "hw", hw("clock_ghz: 1.0", "clock_ghz: yes"), "clock_ghz: must be a valid number; got 'yes'"),
    ("hw-bandwidth-tiny", "hw", hw("bandwidth_gbps: 128", "bandwidth_gbps: 1.0e-300"),
     "dram.bandwidth_gbps: must be between 0.001 and 1e+07 Gbit/s; got 1e-300"),
    ("hw-bandwidth-zero", "hw", hw("bandwidth_gbps: 128", "bandwidth_gbps: 0"), "dram.bandwidth_gbps: must be greater than 0; got 0"),
    ("hw-bandwidth-huge", "hw", hw("bandwidth_gbps: 128", "bandwidth_gbps: 1e9"),
     "dram.bandwidth_gbps: must be less than or equal to 10000000; got 1000000000.0"),
    ("hw-bandwidth-inf", "hw", hw("bandwidth_gbps: 128", "bandwidth_gbps: .inf"), "dram.bandwidth_gbps: must be a finite number"),
    ("hw-latency-negative", "hw", hw("latency_ns: 50", "latency_ns: -1"), "dram.latency_ns: must be greater than or equal to 0; got -1"),
    ("hw-latency-huge", "hw", hw("latency_ns: 50", "latency_ns: 1e7"), "dram.latency_ns: must be less than or equal to 1000000"),
    ("hw-sram-tiny", "hw", hw("ifmap_kib: 64", "ifmap_kib: 1.0e-300"), "sram.ifmap_kib: must be between 0.000976562 and 1.04858e+06 KiB; got 1e-300"),
    ("hw-sram-zero", "hw", hw("filter_kib: 64", "filter_kib: 0"), "sram.filter_kib: must be greater than 0; got 0"),
    ("hw-sram-huge", "hw", hw("ofmap_kib: 32", "ofmap_kib: 2e6"), "sram.ofmap_kib: must be less than or equal to 1048576"),
    ("hw-sram-bool", "hw", hw("ofmap_kib: 32", "ofmap_kib: false"), "sram.ofmap_kib: must be a valid number; got False"),
    ("hw-dataflow-unknown", "hw", hw("dataflow: os", "dataflow: xs"), "array.dataflow: must be 'os', 'ws' or 'is'; got 'xs'"),
    ("hw-dataflow-number", "hw", hw("dataflow: os", "dataflow: 1"), "array.dataflow: must be 'os', 'ws' or 'is'; got 1"),
    ("hw-modes-empty", "hw", hw("modes: {int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}", "modes: {}"), "array.modes: must have at least 1 item; got 0"),
    ("hw-mode-bool", "hw", hw("int4xint4: 4", "int4xint4: true"), "array.modes.int4xint4: must be a valid integer; got True"),
    ("hw-mode-zero", "hw", hw("int4xint4: 4", "int4xint4: 0"), "array.modes: mode 'int4xint4': MACs per PE per cycle must be 1..1024, got 0"),
    ("hw-mode-huge", "hw", hw("int4xint4: 4", "int4xint4: 4096"), "MACs per PE per cycle must be 1..1024, got 4096"),
    ("hw-mode-unknown-format", "hw", hw("int4xint4: 4", "int4xint9: 4"), "array.modes.int4xint9: mode 'int4xint9' is not"),
    ("hw-mode-quoted", "hw", hw("int4xint4: 4", 'int4xint4: "4"'), "array.modes.int4xint4: must be a valid integer; got '4'"),
    ("hw-modes-list", "hw", hw("modes: {int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}", "modes: [int4xint4]"), "array.modes: must be a mapping (key: value); got ['int4xint4']"),
    ("hw-overlap-yes", "hw", hw("dataflow: os,", "dataflow: os, fold_overlap: yes,"), "array.fold_overlap: must be a valid boolean; got 'yes'"),
    ("hw-overlap-one", "hw", hw("dataflow: os,", "dataflow: os, fold_overlap: 1,"), "array.fold_overlap: must be a valid boolean; got 1"),
    ("hw-version-2", "hw", hw("version: 1", "version: 2"), "version: must be 1; got 2"),
    ("hw-version-bool", "hw", hw("version: 1", "version: true"), "version: must be 1; got True"),
    ("hw-version-quoted", "hw", hw("version: 1", 'version: "1"'), "version: must be 1; got '1'"),
    ("hw-version-missing", "hw", hw("version: 1\n", ""), "version: required field is missing"),
    ("hw-name-space", "hw", hw("name: hw-test", "name: hw test"), "name: must be a plain name"),
    ("hw-name-underscore-first", "hw", hw("name: hw-test", "name: _hw"), "name: must be a plain name"),
    ("hw-name-too-long", "hw", hw("name: hw-test", "name: " + "a" * 101), "name: must be a plain name"),
    ("hw-name-number", "hw", hw("name: hw-test", "name: 42"), "name: must be a valid string; got 42"),
    ("hw-unknown-key", "hw", hw("vector: {lanes: 8}", "vector: {lanes: 8, lane: 2}"), "vector.lane: unknown key 'lane'"),
    ("hw-lanes-zero", "hw", hw("rescale: {lanes: 8", "rescale: {lanes: 0"), "rescale.lanes: must be greater than or equal to 1; got 0"),
    ("hw-lanes-bool", "hw", hw("vector: {lanes: 8}", "vector: {lanes: true}"), "vector.lanes: must be a valid integer; got True"),
    ("hw-technology-unknown", "hw", HW_TEXT + "technology: 3nm\n", "technology: unknown technology '3nm'"),
    ("hw-technology-missing-file", "hw", HW_TEXT + "technology: nothere.yaml\n", "technology: technology table 'nothere.yaml' not found"),
    ("hw-technology-number", "hw", HW_TEXT + "technology: 45\n", "technology: must be a valid string; got 45"),
    ("hw-baseline-missing", "hw", HW_TEXT + "baseline: nothere.yaml\n", "nothere.yaml: YAML file not found"),
    ("hw-duplicate-key", "hw", HW_TEXT + "clock_ghz: 2.0\n", "line 9: key 'clock_ghz' appears twice in one mapping (first at line 3)"),
    ("hw-python-tag", "hw", HW_TEXT + "x: !!python/object:os.system ls\n", "not valid YAML: could not determine a constructor"),
    ("hw-int-tag-hex", "hw", hw("rows: 8", "rows: !!int 0x8"), "not valid YAML: integers are written in decimal, got '0x8'"),
    ("hw-bool-tag-yes", "hw", hw("fp16xfp16: 1}}", "fp16xfp16: 1}, fold_overlap: !!bool yes}"), "not valid YAML: booleans are written true or false"),
    ("hw-unclosed-flow", "hw", hw("vector: {lanes: 8}", "vector: {lanes: 8"), "line 7, column 5: not valid YAML: expected ',' or '}', but got ':'"),
    ("hw-tab-indent", "hw", HW_TEXT + "extra:\n\t- 1\n", "line 10, column 1: not valid YAML: found character '\\t' that cannot start any token"),
    ("hw-top-list", "hw", "- 1\n- 2\n", "expected a YAML mapping at the top level, got a list"),
    ("hw-top-scalar", "hw", "42\n", "expected a YAML mapping at the top level, got int"),
    ("hw-empty", "hw", "# nothing here\n", "file is empty; expected a YAML mapping starting with 'version: 1'"),
    ("hw-recursive-alias", "hw", "version: 1\na: &a [*a]\n", "line 2: recursive YAML alias"),
    ("hw-alias-bomb", "hw", "version: 1\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)),
     "YAML aliases expand to more than 200000 nodes (an alias bomb?); refusing to load"),
    ("hw-kind-unknown", "hw", "version: 1\nname: x\n", "cannot tell what this file is"),
    # workload: types, bounds, structure
    ("wl-batch-bool", "wl", wl("batch_size: 16", "batch_size: true"), "data.batch_size: must be a valid integer; got True"),
    ("wl-batch-zero", "wl", wl("batch_size: 16", "batch_size: 0"), "data.batch_size: must be greater than or equal to 1; got 0"),
    ("wl-batch-huge", "wl", wl("batch_size: 16", "batch_size: 2000000"), "data.batch_size: must be less than or equal to 1048576"),
    ("wl-batch-quoted", "wl", wl("batch_size: 16", 'batch_size: "16"'), "data.batch_size: must be a valid integer; got '16'"),
    ("wl-batch-octal", "wl", wl("batch_size: 16", "batch_size: 016"), "data.batch_size: must be a valid integer; got '016'"),
    ("wl-steps-zero", "wl", wl("steps: 3", "steps: 0"), "training.steps: must be greater than or equal to 1; got 0"),
    ("wl-steps-5000-digits", "wl", wl("steps: 3", f"steps: {BIG}"), "training.steps: an integer of 5000 digits is out of range"),
    ("wl-steps-and-epochs", "wl", wl("steps: 3", "steps: 3, epochs: 2"), "give 'epochs' (trained workloads) or 'steps' (analytic ones), not both"),
    ("wl-phases-unknown", "wl", wl("name: wl-test", "name: wl-test\nphases: train"), "phases: must be 'training' or 'inference'; got 'train'"),
    ("wl-name-number", "wl", wl("name: wl-test", "name: 7"), "name: must be a valid string; got 7"),
    ("wl-precision-unknown", "wl", wl("precision: int4", "precision: int3"), "precision: unknown precision preset 'int3'"),
    ("wl-precision-no-preset", "wl", wl("precision: int4", "precision: {tpr: true}"), "precision: a precision mapping needs 'preset'"),
    ("wl-precision-tpr-one", "wl", wl("precision: int4", "precision: {preset: int4, tpr: 1}"), "precision.tpr: must be a valid boolean; got 1"),
    ("wl-precision-tpr-maybe", "wl", wl("precision: int4", "precision: {preset: int4, tpr: maybe}"), "precision.tpr: must be a valid boolean"),
    ("wl-precision-chunk-quoted", "wl", wl("precision: int4", 'precision: {preset: int4, accumulation_chunk: "64"}'),
     "precision.accumulation_chunk: must be a valid integer; got '64'"),
    ("wl-precision-bad-format", "wl", wl("precision: int4", "precision: {preset: int4, fwd_weight: int9}"), "precision.fwd_weight: unknown format 'int9'"),
    # block-scaled recipes' fields
    ("wl-precision-hadamard-12", "wl", wl("precision: int4", "precision: {preset: nvfp4, hadamard_size: 12}"),
     "precision.hadamard_size: must be a power of two; got 12"),
    ("wl-precision-hadamard-512", "wl", wl("precision: int4", "precision: {preset: nvfp4, hadamard_size: 512}"),
     "precision.hadamard_size: must be less than or equal to 256; got 512"),
    ("wl-precision-hadamard-where", "wl", wl("precision: int4", "precision: {preset: nvfp4, hadamard: forward}"),
     "precision.hadamard: must be 'none', 'bwd_weight', 'backward' or 'all'; got 'forward'"),
    ("wl-precision-int4b-block-1", "wl", wl("precision: int4", "precision: {preset: int4b, int4b_block: 1}"),
     "precision.int4b_block: must be greater than or equal to 2; got 1"),
    ("wl-precision-int4b-scale", "wl", wl("precision: int4", "precision: {preset: int4b, int4b_scale: e9m0}"),
     "precision.int4b_scale: must be 'e8m0', 'fp8e4m3' or 'fp16'; got 'e9m0'"),
    ("wl-precision-weight-blocks-3d", "wl", wl("precision: int4", "precision: {preset: nvfp4, weight_blocks: 3d}"),
     "precision.weight_blocks: must be '1d' or '2d'; got '3d'"),
    ("wl-precision-block-rule", "wl", wl("precision: int4", "precision: {preset: mxfp4, block_rule: round}"),
     "precision.block_rule: must be 'floor' or 'ceil'"),
    ("wl-precision-block-format", "wl", wl("precision: int4", "precision: {preset: mxfp4, fwd_weight: mxfp5}"),
     "precision.fwd_weight: unknown format 'mxfp5'"),
    ("wl-precision-mixes-kinds", "wl", wl("precision: int4", "precision: {preset: nvfp4, fwd_weight: int4}"),
     "precision: a policy mixes block-scaled formats (nvfp4) with per-tensor 4-bit ones (int4)"),
    ("wl-baseline-number", "wl", wl("baseline: fp16", "baseline: 16"), "baseline: must be a preset name or a mapping {preset: NAME, field: value, ...}; got 16"),
    ("wl-layers-empty", "wl", "version: 1\nname: e\nmodel: {input: [4], layers: []}\n", "model.layers: must have at least 1 item; got 0"),
    ("wl-layers-too-many", "wl", "version: 1\nname: e\nmodel:\n  input: [4]\n  layers: [&r {type: relu}" + ", *r" * 10000 + "]\n",
     "model.layers: must have at most 10000 items; got 10001"),
    ("wl-layer-type-unknown", "wl", wl("{type: relu}", "{type: relux}"), "model.layers.1.type: unknown layer type 'relux'; did you mean 'relu'?"),
    ("wl-linear-out-zero", "wl", wl("{type: linear, out: 10}", "{type: linear, out: 0}"), "model.layers.5.out: must be greater than or equal to 1; got 0"),
    ("wl-linear-out-bool", "wl", wl("{type: linear, out: 10}", "{type: linear, out: true}"), "model.layers.5.out: must be a valid integer; got True"),
    ("wl-linear-out-huge", "wl", wl("{type: linear, out: 10}", "{type: linear, out: 100000000}"), "model.layers.5.out: must be less than or equal to 16777216"),
    ("wl-conv-kernel-three", "wl", wl("kernel: 3, padding: 1}", "kernel: [3, 3, 3], padding: 1}"), "model.layers.0.kernel: must have at most 2 items; got 3"),
    ("wl-conv-kernel-bool", "wl", wl("kernel: 3, padding: 1}", "kernel: true, padding: 1}"), "model.layers.0.kernel: must be an integer or a pair [height, width] of integers; got True"),
    ("wl-conv-kernel-string", "wl", wl("kernel: 3, padding: 1}", 'kernel: "3", padding: 1}'), "model.layers.0.kernel: must be an integer or a pair [height, width] of integers; got '3'"),
    ("wl-conv-padding-negative", "wl", wl("kernel: 3, padding: 1}", "kernel: 3, padding: [0, -1]}"), "model.layers.0.padding.1: must be greater than or equal to 0"),
    ("wl-conv-groups-zero", "wl", wl("kernel: 3, padding: 1}", "kernel: 3, padding: 1, groups: 0}"), "model.layers.0.groups: must be greater than or equal to 1"),
    ("wl-conv-stride-float", "wl", wl("kernel: 3, padding: 1}", "kernel: 3, padding: 1, stride: 1.5}"), "model.layers.0.stride: must be an integer or a pair [height, width] of integers; got 1.5"),
    ("wl-conv-window-too-big", "wl", wl("kernel: 3, padding: 1}", "kernel: 30, padding: 1}"), "model.layers.0: conv2d layer 'conv2d0'"),
    ("wl-no-flatten", "wl", wl("    - {type: flatten}\n", ""), "model.layers.4: linear layer 'linear0': linear expects a flat input"),
    ("wl-input-empty", "wl", wl("input: [1, 8, 8]", "input: []"), "model.input: must have at least 1 item; got 0"),
    ("wl-input-zero", "wl", wl("input: [1, 8, 8]", "input: [1, 0, 8]"), "model.input.1: must be greater than or equal to 1; got 0"),
    ("wl-input-four-axes", "wl", wl("input: [1, 8, 8]", "input: [1, 1, 8, 8]"), "model.input: must have at most 3 items; got 4"),
    ("wl-input-bool", "wl", wl("input: [1, 8, 8]", "input: [true, 8, 8]"), "model.input.0: must be a valid integer; got True"),
    ("wl-layer-name-duplicate", "wl", wl("{type: relu}\n    - {type: conv2d", "{type: relu, name: a}\n    - {type: conv2d, name: a"),
     "model.layers.2.name: layer name 'a' is used twice"),
    ("wl-model-missing", "wl", "version: 1\nname: x\nmodel: null\n", "model: must be a mapping (key: value); got None"),
    ("wl-zoo-unknown", "wl", "version: 1\nname: z\nmodel: {zoo: resnet19}\n", "model.zoo: unknown zoo model 'resnet19'"),
    ("wl-zoo-bert-layers", "wl", "version: 1\nname: z\nmodel: {zoo: bert_base, params: {layers: 100000000}}\n",
     "model: layers: must be at most 588, got 100000000"),
    ("wl-zoo-hidden-1e29", "wl", "version: 1\nname: z\nmodel: {zoo: bert_base, params: {hidden: " + "1" + "0" * 29 + "}}\n",
     "model: hidden: must be at most 65,536, got a 30-digit number"),
    ("wl-zoo-hidden-1e30", "wl", "version: 1\nname: z\nmodel: {zoo: bert_base, params: {hidden: " + "1" + "0" * 30 + "}}\n",
     "model.params.hidden: an integer of 31 digits is out of range (at most 30 digits)"),
    ("wl-zoo-hidden-bool", "wl", "version: 1\nname: z\nmodel: {zoo: bert_base, params: {hidden: true}}\n",
     "model: hidden: must be a positive integer, got True"),
    ("wl-zoo-seq-quoted", "wl", "version: 1\nname: z\nmodel: {zoo: bert_base, params: {seq_len: '128'}}\n",
     "model: seq_len: must be a positive integer, got '128'"),
    ("wl-zoo-param-unknown", "wl", "version: 1\nname: z\nmodel: {zoo: resnet18, params: {depth: 3}}\n",
     "model: depth: unknown parameter depth for zoo model 'resnet18'"),
    ("wl-zoo-mlp-hidden-many", "wl", "version: 1\nname: z\nmodel: {zoo: mlp, params: {hidden: [" + ", ".join(["4"] * 6000) + "]}}\n",
     "model: hidden: 6,000 hidden layers make more than 10,000 layers"),
    ("wl-zoo-classes-zero", "wl", "version: 1\nname: z\nmodel: {zoo: resnet18, classes: 0}\n", "model.classes: must be greater than or equal to 1"),
    ("wl-zoo-heads-divide", "wl", "version: 1\nname: z\nmodel: {zoo: bert_base, params: {heads: 7}}\n", "model: heads: heads=7 must divide hidden=768"),
    ("wl-zoo-huge-step", "wl", "version: 1\nname: z\nmodel: {zoo: vgg16, input: [3, 16384, 16384]}\ndata: {batch_size: 1048576}\n",
     "model: one step has 8.67e+19 MACs, more than the 1e+18 accelsim can count"),
    ("wl-steps-absurd", "wl", "version: 1\nname: z\nmodel: {zoo: vgg16}\ntraining: {steps: 1000000000000}\ndata: {batch_size: 1048576}\n",
     "training.steps: 1,000,000,000,000 steps of 1.62e+16 MACs are 1.62e+28 MACs, more than the 1e+25"),
    ("wl-topology-missing", "wl", "version: 1\nname: t\nmodel: {topology: nothere.csv}\n", "nothere.csv: topology CSV not found"),
    # trained workloads: data and cost
    ("tr-epochs-zero", "trained", trained("epochs: 1", "epochs: 0"), "training.epochs: must be greater than or equal to 1; got 0"),
    ("tr-epochs-bool", "trained", trained("epochs: 1", "epochs: true"), "training.epochs: must be a valid integer; got True"),
    ("tr-epochs-100000", "trained", trained("samples: 60", "samples: 20000").replace("epochs: 1", "epochs: 100000"),
     "training.epochs: this run would take about "),
    ("tr-samples-empty-split", "trained", trained("samples: 60, classes: 3", "samples: 3, classes: 3"),
     "data.samples: the test split of dataset 'synthetic' would be empty: 3 samples in 3 classes"),
    ("tr-samples-memory", "trained", trained("input: [4]", "input: [1, 4096, 4096]").replace(
        "{type: linear, out: 8}", "{type: flatten}\n    - {type: linear, out: 8}").replace("samples: 60", "samples: 100000"),
     "data.samples: 100,000 synthetic samples of 16,777,216 values need"),
    ("tr-samples-one", "trained", trained("samples: 60", "samples: 1"), "data.samples: must be greater than or equal to 2"),
    ("tr-classes-mismatch", "trained", trained("classes: 3", "classes: 5"), "model: the last layer has 3 outputs but dataset 'synthetic' has 5 classes"),
    ("tr-lr-zero", "trained", trained("epochs: 1", "epochs: 1, optimizer: {lr: 0}"), "training.optimizer.lr: must be greater than 0"),
    ("tr-momentum-one", "trained", trained("epochs: 1", "epochs: 1, optimizer: {momentum: 1}"), "training.optimizer.momentum: must be less than 1"),
    ("tr-test-fraction-one", "trained", trained("batch_size: 8", "batch_size: 8, test_fraction: 1"), "data.test_fraction: must be less than 1"),
    ("tr-test-fraction-nan", "trained", trained("batch_size: 8", "batch_size: 8, test_fraction: .nan"), "data.test_fraction: must be a finite number"),
    ("tr-seed-negative", "trained", trained("batch_size: 8", "batch_size: 8, seed: -1"), "data.seed: must be greater than or equal to 0"),
    ("tr-seed-huge", "trained", trained("batch_size: 8", f"batch_size: 8, seed: {2**32}"), "data.seed: must be less than or equal to 4294967295"),
    ("tr-dataset-unknown", "trained", trained("dataset: synthetic", "dataset: imagenet"), "data.dataset: unknown dataset 'imagenet'"),
    ("tr-npz-no-path", "trained", trained("dataset: synthetic, samples: 60, classes: 3,", "dataset: npz,"), "data: dataset 'npz' needs 'path'"),
    ("tr-digits-samples", "trained", trained("dataset: synthetic", "dataset: digits"), "data: 'samples' applies to datasets synthetic, sequence and text only"),
    ("tr-digits-input", "trained", trained("dataset: synthetic, samples: 60, classes: 3,", "dataset: digits,"),
     "model.input: model input [4] has 4 values per sample but dataset 'digits' has 64"),
]


def _spec_files(kind: str, text: str) -> tuple[dict, str, list[str]]:
    """The files of a spec case and the bad file's name; and the other file run needs."""
    if kind == "hw":
        return {"bad.yaml": text, "wl.yaml": WORKLOAD_TEXT}, "bad.yaml", ["wl.yaml", "bad.yaml"]
    return {"bad.yaml": text, "hw.yaml": HW_TEXT}, "bad.yaml", ["bad.yaml", "hw.yaml"]


# --------------------------------------------------------------------------------------------
# data files: npz and IDX (each through validate and run of a workload that names it)


def _npz(path: Path, **arrays) -> None:
    np.savez(path, **arrays)


def _npz_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


X = np.random.default_rng(0).random((30, 2, 2))
Y = np.arange(30) % 3

NPZ_CASES: list[tuple[str, Callable[[Path], None] | bytes, str]] = [
    ("npz-0d-x", lambda p: _npz(p, x=np.array(3.0), y=Y), "x: x is a 0-d array (one number); expected an array of samples"),
    ("npz-0d-y", lambda p: _npz(p, x=X, y=np.array(1)), "y: y is a 0-d array (one number)"),
    ("npz-object-y", lambda p: _npz(p, x=X, y=np.array([object()] * 30)), "y: y holds Python objects; expected numbers"),
    ("npz-string-y", lambda p: _npz(p, x=X, y=np.array(["a"] * 30)), "y: y must hold integer labels, it holds <U1"),
    ("npz-bool-x", lambda p: _npz(p, x=X > 0.5, y=Y), "x: x must hold numbers, it holds bool"),
    ("npz-complex-x", lambda p: _npz(p, x=X + 1j, y=Y), "x: x must hold numbers, it holds complex128"),
    ("npz-nan-x", lambda p: _npz(p, x=np.where(X > 0.5, np.nan, X), y=Y), "x: x contains NaN or infinite values"),
    ("npz-negative-x", lambda p: _npz(p, x=X - 1, y=Y), "x: x must be ≥ 0"),
    ("npz-negative-y", lambda p: _npz(p, x=X, y=Y - 1), "y: y must be a 1-D array of labels ≥ 0"),
    ("npz-2d-y", lambda p: _npz(p, x=X, y=Y.reshape(15, 2)), "y: "),
    ("npz-length-mismatch", lambda p: _npz(p, x=X, y=Y[:20]), "y: x has 30 samples and y 20"),
    ("npz-label-huge", lambda p: _npz(p, x=X, y=Y * 100000), "y: y has label 200000; labels must be below 65536"),
    ("npz-keys", lambda p: _npz(p, a=X), "expected arrays x, y or x_train, y_train, x_test, y_test; found ['a']"),
    ("npz-empty-test", lambda p: _npz(p, x_train=X, y_train=Y, x_test=X[:0], y_test=Y[:0]), "y_test: x_test has 0 samples and y_test 0"),
    ("npz-not-zip", b"this is not a zip archive", "not a readable .npz file: not a zip archive"),
    ("npz-plain-npy", lambda p: np.save(open(p, "wb"), X), "not a readable .npz file: not a zip archive"),
    ("npz-truncated", lambda p: (_npz(p, x=X, y=Y), p.write_bytes(p.read_bytes()[:300])), "not a readable .npz file"),
    ("npz-header-lies", _npz_bytes({"x.npy": _npy_header((10**9,)) + b"\0" * 80, "y.npy": _npy_header((10,))}),
     "x: x's header says 8,000,000,000 bytes of data, its member has"),
    ("npz-bad-magic", _npz_bytes({"x.npy": b"NOTNUMPY" * 10, "y.npy": b"x"}), "not a readable .npz file"),
    ("npz-many-members", _npz_bytes({f"a{i}.npy": b"" for i in range(100)}), "an npz of datasets has a few arrays, this one 100"),
    ("npz-directory", lambda p: p.mkdir(), "is a directory, expected an .npz file"),
    ("npz-fifo", lambda p: os.mkfifo(p), "is a named pipe (FIFO), not a regular file"),
    ("npz-missing", lambda p: None, "npz file"),
]


def _idx(data: np.ndarray, dtype: int = 8) -> bytes:
    header = bytes([0, 0, dtype, data.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in data.shape)
    return header + data.astype(np.uint8).tobytes()


def _mnist(overrides: dict[str, bytes | None]) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        folder.mkdir()
        files = {
            "train-images-idx3-ubyte": _idx(np.zeros((20, 2, 2))), "train-labels-idx1-ubyte": _idx(np.arange(20) % 3),
            "t10k-images-idx3-ubyte": _idx(np.zeros((9, 2, 2))), "t10k-labels-idx1-ubyte": _idx(np.arange(9) % 3),
        }
        files.update(overrides)
        for name, data in files.items():
            if data is not None:
                (folder / name).write_bytes(data)
    return make


def _bomb() -> bytes:
    header = bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in (9, 2, 2))
    packer = __import__("zlib").compressobj(9, wbits=31)
    chunk = b"\0" * (1 << 20)
    return packer.compress(header) + b"".join(packer.compress(chunk) for _ in range(64)) + packer.flush()


IDX_CASES: list[tuple[str, Callable[[Path], None], str]] = [
    ("idx-corrupt-gz", _mnist({"t10k-images-idx3-ubyte": None, "t10k-images-idx3-ubyte.gz": b"\x1f\x8bnot gzip at all"}),
     "t10k-images-idx3-ubyte.gz: cannot read IDX file: corrupt or truncated gzip data"),
    ("idx-truncated-gz", _mnist({"t10k-images-idx3-ubyte": None, "t10k-images-idx3-ubyte.gz": gzip.compress(_idx(np.zeros((9, 2, 2))))[:25]}),
     "cannot read IDX file: corrupt or truncated gzip data"),
    ("idx-gzip-bomb", _mnist({"t10k-images-idx3-ubyte": None, "t10k-images-idx3-ubyte.gz": _bomb()}),
     "IDX header says 36 bytes of data for shape (9, 2, 2), file has more than 36"),
    ("idx-bad-magic", _mnist({"train-labels-idx1-ubyte": b"PK\x03\x04rest"}), "train-labels-idx1-ubyte: not an IDX file (bad magic number)"),
    ("idx-wrong-type", _mnist({"train-labels-idx1-ubyte": _idx(np.arange(20) % 3, dtype=0x0D)}),
     "IDX data type 0x0d is not unsigned bytes (0x08)"),
    ("idx-short-data", _mnist({"train-labels-idx1-ubyte": b"\x00\x00\x08\x01\x00\x00\x00\x05\x01"}),
     "IDX header says 5 bytes of data for shape (5,), file has 1"),
    ("idx-truncated-header", _mnist({"train-labels-idx1-ubyte": b"\x00\x00\x08\x03\x00\x00"}), "truncated IDX header"),
    ("idx-header-huge", _mnist({"train-images-idx3-ubyte": b"\x00\x00\x08\x03" + (60000).to_bytes(4, "big") + (5000).to_bytes(4, "big") * 2}),
     "of data, more than the 1.0 GiB limit"),
    ("idx-missing-file", _mnist({"t10k-labels-idx1-ubyte": None}), "missing t10k-labels-idx1-ubyte (or t10k-labels-idx1-ubyte.gz)"),
    ("idx-count-mismatch", _mnist({"t10k-labels-idx1-ubyte": _idx(np.arange(8) % 3)}), "test images (9, 2, 2) and labels (8,) do not match"),
    ("idx-empty-test", _mnist({"t10k-images-idx3-ubyte": _idx(np.zeros((0, 2, 2))), "t10k-labels-idx1-ubyte": _idx(np.zeros(0))}),
     "the test files hold no images"),
    ("idx-fifo", _mnist({"train-labels-idx1-ubyte": None}), "train-labels-idx1-ubyte: is a named pipe (FIFO), not a regular file"),
    ("idx-not-a-folder", lambda p: p.write_text("x"), "is not a folder with MNIST IDX files"),
]


# --------------------------------------------------------------------------------------------
# technology tables (validated alone, and through a machine that names them)

TECH_CASES: list[tuple[str, str, str]] = [
    ("tech-negative", tech("value: 0.05", "value: -0.05"), "entries.mac.int4xint4.value: must be greater than or equal to 0"),
    ("tech-nan", tech("value: 0.05", "value: .nan"), "entries.mac.int4xint4.value: must be a finite number"),
    ("tech-quoted", tech("value: 0.05", 'value: "0.05"'), "entries.mac.int4xint4.value: must be a valid number; got '0.05'"),
    ("tech-bool", tech("value: 0.05", "value: true"), "entries.mac.int4xint4.value: must be a valid number; got True"),
    ("tech-huge", tech("value: 0.05", "value: 1e12"), "entries.mac.int4xint4.value: must be less than or equal to 1000000000"),
    ("tech-unit", tech("unit: pJ", "unit: nJ"), "entries.mac.int4xint4.unit: unit of 'mac.int4xint4' must be 'pJ'; got 'nJ'"),
    ("tech-unknown-entry", tech("mac.int4xint4:", "mac.int4xint9:"), "entries.mac.int4xint9: unknown entry 'mac.int4xint9'"),
    ("tech-version", tech("version: 1", "version: 2"), "version: must be 1; got 2"),
    ("tech-no-source", tech("    source: Horowitz ISSCC 2014, 8-bit int mult 0.2 pJ\n", ""), "entries.mac.int4xint4.source: required field is missing"),
    ("tech-node-zero", tech("node_nm: 45", "node_nm: 0"), "node_nm: must be greater than 0; got 0"),
]


# --------------------------------------------------------------------------------------------
# topology CSVs (validated alone, and run as an inference workload)

CONV_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"

CSV_CASES: list[tuple[str, str | bytes | Callable[[Path], None], str]] = [
    ("csv-header-typo", CONV_HEADER.replace("IFMAP Width", "IFMAP Widht") + "c1, 8, 8, 3, 3, 1, 1, 1,\n",
     "line 1: header column 'IFMAP Widht' should be 'IFMAP Width'"),
    ("csv-first-row-typo", "c1, 8, 8, 3, 3, 1, l, 1,\nc2, 8, 8, 3, 3, 1, 1, 1,\n", "line 1: Num Filter: expected a positive integer, got 'l'"),
    ("csv-100000-rows", "Layer, M, N, K\n" + "".join(f"l{i}, 8, 8, 8\n" for i in range(100_000)),
     "topology CSV has more than 10,000 layer rows"),
    ("csv-three-columns", "a, 1, 2,\n", "expected 4 columns"),
    ("csv-ragged", "Layer, M, N, K\na, 1, 2, 3\nb, 1, 2\n", "line 3: expected 4 columns like the first row, got 3"),
    ("csv-zero", "Layer, M, N, K\na, 0, 2, 3\n", "line 2: M: expected a positive integer up to 16777216, got 0"),
    ("csv-huge", "Layer, M, N, K\na, 99999999, 2, 3\n", "line 2: M: expected a positive integer up to 16777216, got 99999999"),
    ("csv-5000-digits", f"Layer, M, N, K\na, {BIG}, 2, 3\n", "line 2: M: expected a positive integer up to 16777216, got a 5000-digit number"),
    ("csv-arabic-digits", "Layer, M, N, K\na, ١٢, 2, 3\n", "line 2: M: expected a positive integer, got '١٢'"),
    ("csv-negative", "Layer, M, N, K\na, -4, 2, 3\n", "line 2: M: expected a positive integer, got '-4'"),
    ("csv-float", "Layer, M, N, K\na, 4.0, 2, 3\n", "line 2: M: expected a positive integer, got '4.0'"),
    ("csv-filter-too-big", CONV_HEADER + "c1, 4, 4, 5, 5, 1, 1, 1,\n", "line 2: c1: filter 5x5 is larger than the 4x4 input"),
    ("csv-duplicate-name", "Layer, M, N, K\na, 1, 2, 3\na, 1, 2, 3\n", "line 3: layer name 'a' appears twice"),
    ("csv-empty", "\n\n", "topology CSV has no rows"),
    ("csv-header-only", "Layer, M, N, K\n", "topology CSV has a header but no layer rows"),
    ("csv-nul", b"Layer, M, N, K\n\x00\x01\x02\n", "not a text file (it contains NUL bytes)"),
    ("csv-latin1", "Layer, M, N, K\ncafé, 1, 2, 3\n".encode("latin-1"), "not UTF-8 text"),
    ("csv-fifo", lambda p: os.mkfifo(p), "is a named pipe (FIFO), not a regular file; expected a topology CSV"),
    ("csv-too-large", lambda p: p.write_bytes(b"#" * (16 * 1024 * 1024 + 1)), "topology CSV is larger than the 16,777,216-byte limit"),
]


# --------------------------------------------------------------------------------------------
# ONNX models (validated alone, and run as a workload)


def _onnx(nodes=None, inputs=None, inits=(), outputs=None, opset: int | None = 17, ir_version: int | None = None) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")] if nodes is None else nodes
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])] if inputs is None else inputs
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])] if outputs is None else outputs
    tensors = [t if not isinstance(t, tuple) else numpy_helper.from_array(t[1], t[0]) for t in inits]
    graph = helper.make_graph(nodes, "g", inputs, outputs, tensors)
    model = helper.make_model(graph, opset_imports=[] if opset is None else [helper.make_opsetid("", opset)])
    if ir_version is not None:
        model.ir_version = ir_version
    return model.SerializeToString()


def _tensor(name: str, dims: list[int], raw: bytes) -> object:
    from onnx import TensorProto

    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
    t.raw_data = raw
    return t


def _onnx_cases() -> list[tuple[str, bytes | Callable[[Path], None], str]]:
    from onnx import ModelProto, TensorProto, helper

    vi = helper.make_tensor_value_info
    gemm = [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc")]
    good = _onnx()
    return [
        ("onnx-not-protobuf", b"\xff\xfe not a model at all \x00\x01", "not an ONNX model: the file is not a valid ONNX protobuf"),
        ("onnx-empty", b"", "not an ONNX model: the file is empty"),
        ("onnx-truncated", good[: len(good) // 2], "net.onnx: not "),
        ("onnx-yaml-text", WORKLOAD_TEXT.encode(), "not an ONNX model"),
        ("onnx-no-graph", ModelProto(ir_version=8).SerializeToString(), "not an ONNX model: it has no graph"),
        ("onnx-no-nodes", _onnx(nodes=[]), "graph: the graph has no nodes"),
        ("onnx-no-inputs", _onnx(nodes=[helper.make_node("Relu", ["c"], ["y"], name="r")], inputs=[],
                                 inits=[("c", np.ones((1, 4), np.float32))]), "graph.input: the graph has no inputs"),
        ("onnx-absurd-initializer", _onnx(nodes=gemm, inits=[_tensor("w", [1 << 20, 1 << 20], b"")]),
         "graph.initializer.0 'w': 1,099,511,627,776 elements (dims [1048576, 1048576]); at most 2,147,483,648 are read"),
        ("onnx-initializer-short", _onnx(nodes=gemm, inits=[_tensor("w", [4, 1000], b"\0" * 4)]),
         "graph.initializer.0 'w': dims [4, 1000] need 16,000 bytes of data, the file has 4"),
        ("onnx-shape-inference", _onnx(nodes=gemm, inits=[("w", np.ones((3, 2), np.float32))]),
         "net.onnx: shape inference failed: [ShapeInferenceError]"),
        ("onnx-no-opset", _onnx(opset=None), "net.onnx: not a valid ONNX model"),
        ("onnx-future-ir", _onnx(ir_version=99), "net.onnx: not a valid ONNX model: Your model ir_version 99 is higher"),
        ("onnx-two-inputs", _onnx(inputs=[vi("x", TensorProto.FLOAT, [1, 4]), vi("z", TensorProto.FLOAT, [1, 4])]),
         "graph.input: the graph has 2 inputs ('x', 'z'); accelsim networks have one"),
        ("onnx-integer-input", _onnx(nodes=[helper.make_node("Cast", ["x"], ["y"], name="c", to=TensorProto.FLOAT)],
                                     inputs=[vi("x", TensorProto.INT64, [1, 4])]),
         "graph.input 'x': the input has element type 7; accelsim reads floating-point inputs"),
        ("onnx-symbolic-axis", _onnx(inputs=[vi("x", TensorProto.FLOAT, ["N", "seq"])], outputs=[vi("y", TensorProto.FLOAT, ["N", "seq"])]),
         "graph.input 'x': shape ['N', 'seq'] is not (batch, ...) with fixed sizes"),
        ("onnx-five-axes", _onnx(inputs=[vi("x", TensorProto.FLOAT, [1, 2, 2, 2, 2])], outputs=[vi("y", TensorProto.FLOAT, [1, 2, 2, 2, 2])]),
         "has 4 axes per sample; accelsim networks take (features), (tokens, features) or (channels, height, width)"),
        ("onnx-huge-activation", _onnx(inputs=[vi("x", TensorProto.FLOAT, [1, 1 << 40])], outputs=[vi("y", TensorProto.FLOAT, [1, 1 << 40])]),
         "a tensor of shape [1099511627776] is larger than 2,147,483,648 elements per sample"),
        ("onnx-huge-batch", _onnx(inputs=[vi("x", TensorProto.FLOAT, [1 << 30, 4])], outputs=[vi("y", TensorProto.FLOAT, [1 << 30, 4])]),
         "graph.input: the input's batch dimension 1,073,741,824 does not make a valid data.batch_size (must be less "
         "than or equal to 1048576; got 1073741824); set data.batch_size"),
        ("onnx-unsupported-op", _onnx(nodes=[helper.make_node("HardSigmoid", ["x"], ["y"], name="gate")]),
         "node 0 'gate' (HardSigmoid): accelsim cannot map HardSigmoid (supported: Conv, Gemm"),
        ("onnx-name-not-utf8", _onnx(nodes=[helper.make_node("Relu", ["x"], ["y"], name="zzname")]).replace(b"zzname", b"zz\xffame"),
         "node 0: a name is not UTF-8 text (b'zz\\xffame')"),
        ("onnx-conv-group-zero", _onnx(nodes=[helper.make_node("Conv", ["x", "w"], ["y"], name="c", group=0)],
                                       inputs=[vi("x", TensorProto.FLOAT, [1, 2, 4, 4])], outputs=[vi("y", TensorProto.FLOAT, [1, 2, 2, 2])],
                                       inits=[("w", np.ones((2, 2, 3, 3), np.float32))]),
         "node 0 'c' (Conv): group 0 must be a positive integer"),
        ("onnx-clip-bound-not-scalar", _onnx(nodes=[helper.make_node("Clip", ["x", "lo"], ["y"], name="c")],
                                             inits=[("lo", np.zeros(4, np.float32))]),
         "node 0 'c' (Clip): 'lo' must be a scalar constant; it has shape [4] and type float32"),
        ("onnx-fifo", lambda p: os.mkfifo(p), "is a named pipe (FIFO), not a regular file; expected a serialized ONNX model"),
        ("onnx-directory", lambda p: p.mkdir(), "is a directory, expected a serialized ONNX model"),
        ("onnx-too-large", good, "serialized ONNX model is larger than the 64-byte limit"),
    ]


ONNX_CASES = _onnx_cases()


# --------------------------------------------------------------------------------------------
# flags: --set, --grid/--zip, -o, --out, --scheduler; commands on bad paths

FLAG_CASES: list[Case] = [
    Case("set-bool", ["run", "wl.yaml", "hw.yaml", "--out", "out", "--set", "array.rows=true"], "hw.yaml: array.rows: must be a valid integer; got True"),
    Case("set-octal", ["run", "wl.yaml", "hw.yaml", "--out", "out", "--set", "array.rows=010"], "array.rows: must be a valid integer; got '010'"),
    Case("set-quoted", ["run", "wl.yaml", "hw.yaml", "--out", "out", "--set", "array.rows='8'"], "array.rows: must be a valid integer; got '8' (a number in quotes"),
    Case("set-5000-digits", ["run", "wl.yaml", "hw.yaml", "--out", "out", "--set", f"array.rows={BIG}"],
         "--set: array.rows: an integer of 5000 digits is out of range (at most 30 digits)"),
    Case("set-clock-tiny", ["run", "wl.yaml", "hw.yaml", "--out", "out", "--set", "clock_ghz=1e-300"], "clock_ghz: must be between 0.001 and 100 GHz; got 1e-300"),
    Case("set-batch-bool", ["run", "wl.yaml", "hw.yaml", "--out", "out", "--set", "data.batch_size=true"], "data.batch_size: must be a valid integer; got True"),
    Case("set-no-equals", ["run", "wl.yaml", "hw.yaml", "--out", "out", "--set", "array.rows"], "--set: array.rows: expected PATH=VALUE"),
    Case("set-unknown-field", ["run", "wl.yaml", "hw.yaml", "--out", "out", "--set", "aray.rows=4"], "unknown field 'aray'; did you mean 'array'?"),
    Case("set-ambiguous", ["run", "wl.yaml", "hw.yaml", "--out", "out", "--set", "name=x"], "'name' is a field of both the workload and the hardware"),
    Case("set-bad-index", ["run", "wl.yaml", "hw.yaml", "--out", "out", "--set", "model.layers.9.out=6"], "'9' is not an index of a 6-item list"),
    Case("set-inside-scalar", ["run", "wl.yaml", "hw.yaml", "--out", "out", "--set", "clock_ghz.x=1"], "cannot set a field inside a float"),
    Case("set-bad-yaml", ["run", "wl.yaml", "hw.yaml", "--out", "out", "--set", "array.rows=[8"], "--set: array.rows: value '[8' is not a valid YAML value"),
    Case("set-epochs-long", ["run", "tr.yaml", "hw.yaml", "--out", "out", "--set", "training.epochs=100000"], "training.epochs: this run would take about"),
    Case("set-bert-layers", ["validate", "bert.yaml"], "model: layers: must be at most 588"),
    Case("set-trace-hardware", ["trace", "wl.yaml", "--set", "array.rows=4"], "--set: array.rows=4: a trace has no hardware"),
    Case("grid-duplicate", ["sweep", "wl.yaml", "hw.yaml", "--grid", "array.rows=8,8,16", "--out", "out"], "axis 'array.rows' lists the value 8 twice"),
    Case("grid-160000", ["sweep", "wl.yaml", "hw.yaml", "--grid", "array.rows=" + ",".join(map(str, range(1, 401))),
                         "--grid", "array.cols=" + ",".join(map(str, range(1, 401))), "--out", "out"],
         "--grid: array.rows, array.cols: the sweep has 160,000 points"),
    Case("grid-2e6-even-allowed", ["sweep", "wl.yaml", "hw.yaml", "--grid", "array.rows=" + ",".join(map(str, range(1, 2001))),
                                   "--grid", "array.cols=" + ",".join(map(str, range(1, 1001))), "--out", "out", "--allow-long"],
         "the sweep has 2,000,000 points, more than the 1,000,000 accelsim can plan"),
    Case("grid-no-equals", ["sweep", "wl.yaml", "hw.yaml", "--grid", "array.rows", "--out", "out"], "--grid: array.rows: expected PATH=V1,V2"),
    Case("grid-empty-values", ["sweep", "wl.yaml", "hw.yaml", "--grid", "array.rows=", "--out", "out"], "--grid: array.rows=: expected PATH=V1,V2"),
    Case("grid-unknown-path", ["sweep", "wl.yaml", "hw.yaml", "--grid", "array.rowz=4,8", "--out", "out"], "unknown field path 'array.rowz'; did you mean 'array.rows'?"),
    Case("grid-bad-value", ["sweep", "wl.yaml", "hw.yaml", "--grid", "array.rows=4,-1", "--out", "out"], "array.rows: must be greater than or equal to 1; got -1 (point 1"),
    Case("grid-bool-value", ["sweep", "wl.yaml", "hw.yaml", "--grid", "array.rows=4,true", "--out", "out"], "array.rows: must be a valid integer; got True (point 1"),
    Case("grid-5000-digits", ["sweep", "wl.yaml", "hw.yaml", "--grid", f"array.rows=4,{BIG}", "--out", "out"], "--grid: array.rows: an integer of 5000 digits"),
    Case("zip-lengths", ["sweep", "wl.yaml", "hw.yaml", "--zip", "array.rows=4,8", "--zip", "array.cols=4", "--out", "out"],
         "zipped axes must have the same number of values"),
    Case("zip-duplicate-rows", ["sweep", "wl.yaml", "hw.yaml", "--zip", "array.rows=4,4", "--zip", "array.cols=8,8", "--out", "out"],
         "zip lists the values [4, 8] twice"),
    Case("grid-and-zip-same", ["sweep", "wl.yaml", "hw.yaml", "--grid", "array.rows=4,8", "--zip", "array.rows=4,8", "--out", "out"],
         "axis 'array.rows' is in both 'grid' and 'zip'"),
    Case("grid-same-point", ["sweep", "wl.yaml", "hw.yaml", "--grid", "array.rows=4,8", "--grid", "hw.array.rows=4", "--out", "out"],
         "--grid: point 1 (array.rows=8, hw.array.rows=4) is the same configuration as point 0; each would run twice"),
    Case("grid-with-sweep-file", ["sweep", "sweep.yaml", "--grid", "array.rows=4,8", "--out", "out"], "--grid/--zip go with WORKLOAD HW"),
    Case("sweep-three-inputs", ["sweep", "wl.yaml", "hw.yaml", "hw.yaml", "--out", "out"], "expected SWEEP.yaml, or WORKLOAD HW"),
    Case("scheduler-not-a-url", ["sweep", "wl.yaml", "hw.yaml", "--grid", "array.rows=4,8", "--scheduler", "notaurl", "--out", "out"],
         "--scheduler: notaurl: not a Dask scheduler address; expected PROTOCOL://HOST:PORT"),
    Case("scheduler-no-host", ["sweep", "wl.yaml", "hw.yaml", "--grid", "array.rows=4,8", "--scheduler", "tcp://", "--out", "out"],
         "--scheduler: tcp://: not a Dask scheduler address"),
    Case("out-is-a-file", ["run", "wl.yaml", "hw.yaml", "--out", "hw.yaml"], "hw.yaml exists and is not a folder"),
    Case("out-below-a-file", ["run", "wl.yaml", "hw.yaml", "--out", "hw.yaml/x"], "is a file, so"),
    Case("out-foreign-folder", ["run", "wl.yaml", "hw.yaml", "--out", "mine"], "exists, is not empty and was not written by accelsim; refusing to replace it"),
    Case("out-foreign-file-inside", ["run", "wl.yaml", "hw.yaml", "--out", "ours"],
         "the folder holds notes.txt, which accelsim did not write; refusing to replace it"),
    Case("sweep-out-foreign-folder", ["sweep", "wl.yaml", "hw.yaml", "--grid", "array.rows=4,8", "--out", "mine"],
         "exists, is not empty and was not written by accelsim"),
    Case("trace-out-directory", ["trace", "wl.yaml", "-o", "mine"], "-o: mine is a directory; give a file name"),
    Case("trace-out-below-file", ["trace", "wl.yaml", "-o", "hw.yaml/t.jsonl"], "-o: a parent of hw.yaml/t.jsonl is a file"),
    Case("trace-out-socket", ["trace", "wl.yaml", "-o", "sock"], "-o: sock is a socket; accelsim writes only regular files, pipes and character devices"),
    Case("plot-not-a-folder", ["plot", "hw.yaml"], "hw.yaml: not a folder"),
    Case("plot-empty-folder", ["plot", "empty"], "neither a run folder (summary.json) nor a sweep folder (results.csv)"),
    Case("plot-summary-damaged", ["plot", "run-summary"], "summary.json: line 1: damaged: not valid JSON"),
    Case("plot-summary-not-object", ["plot", "run-list"], "summary.json: damaged: not a JSON object"),
    Case("plot-summary-no-runs", ["plot", "run-noruns"], "summary.json: runs: must hold both runs"),
    Case("plot-config-damaged", ["plot", "run-config"], "config.resolved.yaml: damaged: not valid YAML"),
    Case("plot-ops-columns", ["plot", "run-ops"], "ops.csv: line 1: damaged: the header lacks the columns"),
    Case("plot-summary-binary", ["plot", "run-binary"], "summary.json: damaged: not UTF-8 text"),
    Case("plot-summary-fifo", ["plot", "run-fifo"], "summary.json: is a named pipe (FIFO), not a regular file"),
    Case("plot-summary-edited", ["plot", "run-edited"], "cannot plot: its files look damaged or edited"),
    Case("plot-results-damaged", ["plot", "sweep-bad"], "results.csv: line 1: damaged: the header lacks the columns index, status"),
    Case("validate-fifo", ["validate", "fifo.yaml"], "fifo.yaml: is a named pipe (FIFO), not a regular file; expected a YAML file"),
    Case("validate-directory", ["validate", "mine"], "mine: is a directory, expected a YAML file"),
    Case("validate-dev-zero", ["validate", "/dev/zero"], "/dev/zero: is a character device, not a regular file"),
    Case("validate-too-large", ["validate", "huge.yaml"], "huge.yaml: YAML file is larger than the 4,194,304-byte limit"),
    Case("validate-missing", ["validate", "nothere.yaml"], "nothere.yaml: YAML file not found"),
    Case("run-fifo-workload", ["run", "fifo.yaml", "hw.yaml", "--out", "out"], "fifo.yaml: is a named pipe (FIFO), not a regular file"),
    Case("run-fifo-topology", ["run", "fifo.csv", "hw.yaml", "--out", "out"], "fifo.csv: is a named pipe (FIFO), not a regular file"),
    Case("sweep-file-fifo", ["sweep", "fifo.yaml", "--out", "out"], "fifo.yaml: is a named pipe (FIFO), not a regular file"),
    Case("sweep-file-workload-missing", ["sweep", "sweep-missing.yaml", "--out", "out"], "nothere.yaml: YAML file not found"),
    Case("sweep-file-duplicate", ["sweep", "sweep-dup.yaml", "--out", "out"], "sweep-dup.yaml: grid: axis 'array.rows' lists the value 8 twice"),
    Case("sweep-file-huge", ["sweep", "sweep-huge.yaml", "--out", "out"], "sweep-huge.yaml: grid: the sweep has 160,000 points"),
    Case("sweep-file-empty-axis", ["sweep", "sweep-empty.yaml", "--out", "out"], "sweep-empty.yaml: grid: axis 'array.rows' has no values"),
    Case("sweep-file-bad-axis-name", ["sweep", "sweep-badaxis.yaml", "--out", "out"], "axis 'array rows' is not a dotted field path"),
    Case("sweep-file-unknown-key", ["sweep", "sweep-workers.yaml", "--out", "out"], "sweep-workers.yaml: workers: unknown key 'workers'"),
    Case("sweep-file-validate-huge", ["validate", "sweep-huge.yaml"], "sweep-huge.yaml: grid: the sweep has 160,000 points"),
    Case("sweep-file-validate-long", ["validate", "sweep-long.yaml"], "sweep-long.yaml: grid: the sweep would take about"),
    Case("sweep-file-long-point", ["sweep", "sweep-long-point.yaml", "--out", "out"], "tr.yaml: training.epochs: this run would take about 3.6 h"),
]


def _sock(path: Path) -> None:
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()


def _run_folder(tmp: Path, name: str, broken: dict[str, str | bytes | Callable[[Path], None]]) -> None:
    """A minimal run folder (the files the plots read) with some of them broken."""
    folder = tmp / name
    folder.mkdir()
    good = {
        "summary.json": '{"runs": {"policy": {}, "baseline": {}}}\n',
        "config.resolved.yaml": "workload: {}\n",
        "ops.csv": "run,layer,phase,kind,total_cycles\n",
        "layers.csv": "layer,phase,policy_cycles,baseline_cycles\n",
    }
    for file, content in {**good, **broken}.items():
        path = folder / file
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def _flag_fixtures(tmp: Path, args: list[str]) -> None:
    (tmp / "wl.yaml").write_text(WORKLOAD_TEXT, encoding="utf-8")
    (tmp / "hw.yaml").write_text(HW_TEXT, encoding="utf-8")
    (tmp / "tr.yaml").write_text(TRAINED.replace("samples: 60", "samples: 20000"), encoding="utf-8")
    (tmp / "bert.yaml").write_text("version: 1\nname: b\nmodel: {zoo: bert_base, params: {layers: 100000000}}\n", encoding="utf-8")
    (tmp / "sweep.yaml").write_text("version: 1\nname: s\nworkload: wl.yaml\nhardware: hw.yaml\ngrid: {array.rows: [4, 8]}\n")
    head = "version: 1\nname: s\nworkload: wl.yaml\nhardware: hw.yaml\n"
    (tmp / "sweep-missing.yaml").write_text(head.replace("wl.yaml", "nothere.yaml") + "grid: {array.rows: [4, 8]}\n")
    (tmp / "sweep-dup.yaml").write_text(head + "grid: {array.rows: [8, 16, 8]}\n")
    (tmp / "sweep-huge.yaml").write_text(head + f"grid: {{array.rows: {list(range(1, 401))}, array.cols: {list(range(1, 401))}}}\n")
    (tmp / "sweep-long.yaml").write_text(head.replace("wl.yaml", "tr.yaml") + f"grid: {{data.seed: {list(range(400))}}}\n")
    (tmp / "sweep-long-point.yaml").write_text(head.replace("wl.yaml", "tr.yaml") + "grid: {training.epochs: [2000, 3000]}\n")
    (tmp / "sweep-empty.yaml").write_text(head + "grid: {array.rows: []}\n")
    (tmp / "sweep-badaxis.yaml").write_text(head + "grid: {array rows: [4, 8]}\n")
    (tmp / "sweep-workers.yaml").write_text(head + "grid: {array.rows: [4, 8]}\nworkers: 3\n")
    (tmp / "mine").mkdir()
    (tmp / "mine" / "thesis.tex").write_text("precious")
    (tmp / "ours").mkdir()
    (tmp / "ours" / ".accelsim-report").write_text('{"written_by": "accelsim", "files": ["summary.json"]}\n')
    (tmp / "ours" / "summary.json").write_text("{}\n")
    (tmp / "ours" / "notes.txt").write_text("mine")
    (tmp / "empty").mkdir()
    os.mkfifo(tmp / "fifo.yaml")
    os.mkfifo(tmp / "fifo.csv")
    _sock(tmp / "sock")
    if "huge.yaml" in args:
        (tmp / "huge.yaml").write_bytes(b"# " + b"x" * (4 * 1024 * 1024) + b"\n")
    _run_folder(tmp, "run-summary", {"summary.json": '{"runs": '})
    _run_folder(tmp, "run-list", {"summary.json": "[1, 2]\n"})
    _run_folder(tmp, "run-noruns", {"summary.json": '{"speedup": 2}\n'})
    _run_folder(tmp, "run-config", {"config.resolved.yaml": "a: [\n"})
    _run_folder(tmp, "run-ops", {"ops.csv": "index,layer\n"})
    _run_folder(tmp, "run-binary", {"summary.json": b"\xff\xfe{}"})
    _run_folder(tmp, "run-fifo", {"summary.json": lambda p: os.mkfifo(p)})
    _run_folder(tmp, "run-edited", {})
    (tmp / "sweep-bad").mkdir()
    (tmp / "sweep-bad" / "results.csv").write_text("a,b\n1,2\n")


# --------------------------------------------------------------------------------------------
# the checks


def _tree(root: Path) -> dict[str, tuple]:
    """Every path below ``root`` with its kind, and for files their size and modification time:
    what "nothing written" compares (a folder's own time changes if a file was made and removed)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        kind = stat.S_IFMT(st.st_mode)
        out[str(path.relative_to(root))] = (kind,) if stat.S_ISDIR(st.st_mode) else (kind, st.st_size, st.st_mtime_ns)
    return out


def _one_line(code: int, out: str, err: str, expected_code: int, expect: str) -> None:
    lines = err.splitlines()
    assert code == expected_code, err
    assert len(lines) == 1, err
    assert lines[0].startswith("accelsim: error: "), err
    assert expect in lines[0], lines[0]
    assert "Traceback" not in err and "internal error" not in err
    assert out == ""


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written to a default place would land here and be seen
    return tmp_path


SPEC_IDS = [c[0] for c in SPEC_CASES]
#: Cases whose run reports more than one problem (run reads the file as a hardware spec and lists
#: every missing field): checked through validate only.
VALIDATE_ONLY = {"hw-kind-unknown"}


@pytest.mark.parametrize(
    "case, command",
    [(c, cmd) for c in SPEC_CASES for cmd in ("validate", "run") if not (cmd == "run" and c[0] in VALIDATE_ONLY)],
    ids=[f"{c[0]}-{cmd}" for c in SPEC_CASES for cmd in ("validate", "run") if not (cmd == "run" and c[0] in VALIDATE_ONLY)],
)
def test_spec_file(case, command, inputs, cli):
    name, kind, text, expect = case
    files, bad, run_args = _spec_files(kind, text)
    for file, content in files.items():
        (inputs / file).write_text(content, encoding="utf-8")
    before = _tree(inputs)
    args = ["validate", bad] if command == "validate" else ["run", *run_args, "--out", "out"]
    code, out, err = cli(*args)
    _one_line(code, out, err, 2, expect)
    assert f"{bad}: " in err or "nothere." in err  # the file named, or the missing file it names
    assert _tree(inputs) == before


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", NPZ_CASES, ids=[c[0] for c in NPZ_CASES])
def test_npz_file(case, command, inputs, cli):
    name, make, expect = case
    path = inputs / "d.npz"
    if isinstance(make, bytes):
        path.write_bytes(make)
    else:
        make(path)
    (inputs / "w.yaml").write_text(IMAGES.replace("DATASET", "npz").replace("PATH", "d.npz"), encoding="utf-8")
    (inputs / "hw.yaml").write_text(HW_TEXT, encoding="utf-8")
    before = _tree(inputs)
    args = ["validate", "w.yaml"] if command == "validate" else ["run", "w.yaml", "hw.yaml", "--out", "out"]
    code, out, err = cli(*args)
    _one_line(code, out, err, 2, expect)
    assert _tree(inputs) == before


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", IDX_CASES, ids=[c[0] for c in IDX_CASES])
def test_idx_folder(case, command, inputs, cli):
    name, make, expect = case
    make(inputs / "mnist")
    if name == "idx-fifo":
        os.mkfifo(inputs / "mnist" / "train-labels-idx1-ubyte")
    (inputs / "w.yaml").write_text(
        IMAGES.replace("DATASET", "mnist-idx").replace("PATH", "mnist").replace("input: [4]", "input: [1, 2, 2]")
        .replace("{type: linear, out: 8}", "{type: flatten}\n    - {type: linear, out: 8}"), encoding="utf-8",
    )
    (inputs / "hw.yaml").write_text(HW_TEXT, encoding="utf-8")
    before = _tree(inputs)
    args = ["validate", "w.yaml"] if command == "validate" else ["run", "w.yaml", "hw.yaml", "--out", "out"]
    code, out, err = cli(*args)
    _one_line(code, out, err, 2, expect)
    assert _tree(inputs) == before


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", TECH_CASES, ids=[c[0] for c in TECH_CASES])
def test_technology_table(case, command, inputs, cli):
    name, text, expect = case
    (inputs / "t.yaml").write_text(text, encoding="utf-8")
    (inputs / "hw.yaml").write_text(HW_TEXT + "technology: t.yaml\n", encoding="utf-8")
    (inputs / "wl.yaml").write_text(WORKLOAD_TEXT, encoding="utf-8")
    before = _tree(inputs)
    args = ["validate", "t.yaml"] if command == "validate" else ["run", "wl.yaml", "hw.yaml", "--out", "out"]
    code, out, err = cli(*args)
    _one_line(code, out, err, 2, expect)
    assert "t.yaml: " in err
    assert _tree(inputs) == before


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", CSV_CASES, ids=[c[0] for c in CSV_CASES])
def test_topology_csv(case, command, inputs, cli):
    name, content, expect = case
    path = inputs / "net.csv"
    if callable(content):
        content(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    (inputs / "hw.yaml").write_text(HW_TEXT, encoding="utf-8")
    before = _tree(inputs)
    args = ["validate", "net.csv"] if command == "validate" else ["run", "net.csv", "hw.yaml", "--out", "out"]
    code, out, err = cli(*args)
    _one_line(code, out, err, 2, expect)
    assert "net.csv: " in err
    assert _tree(inputs) == before


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", ONNX_CASES, ids=[c[0] for c in ONNX_CASES])
def test_onnx_model(case, command, inputs, cli, monkeypatch):
    name, content, expect = case
    path = inputs / "net.onnx"
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    if name == "onnx-too-large":
        monkeypatch.setattr(onnx_import, "MAX_ONNX_BYTES", 64)
    (inputs / "hw.yaml").write_text(HW_TEXT, encoding="utf-8")
    before = _tree(inputs)
    args = ["validate", "net.onnx"] if command == "validate" else ["run", "net.onnx", "hw.yaml", "--out", "out"]
    code, out, err = cli(*args)
    _one_line(code, out, err, 2, expect)
    assert "net.onnx: " in err
    assert _tree(inputs) == before


def test_onnx_named_by_a_workload(inputs, cli):
    """A workload naming a missing or unreadable ONNX file: the workload's field, then the file."""
    (inputs / "w.yaml").write_text("version: 1\nname: w\nmodel: {onnx: nothere.onnx}\n", encoding="utf-8")
    code, out, err = cli("validate", "w.yaml")
    _one_line(code, out, err, 2, "w.yaml: model.onnx: nothere.onnx: serialized ONNX model not found")
    (inputs / "bad.onnx").write_bytes(b"\xff\xfe")
    (inputs / "w.yaml").write_text("version: 1\nname: w\nmodel: {onnx: bad.onnx}\n", encoding="utf-8")
    code, out, err = cli("validate", "w.yaml")
    _one_line(code, out, err, 2, "bad.onnx: not an ONNX model: the file is not a valid ONNX protobuf")


@pytest.mark.parametrize("case", FLAG_CASES, ids=[c.id for c in FLAG_CASES])
def test_flag(case, inputs, cli):
    _flag_fixtures(inputs, case.args)
    _files(case, inputs)
    before = _tree(inputs)
    code, out, err = cli(*case.args)
    _one_line(code, out, err, case.code, case.expect)
    assert _tree(inputs) == before


def test_corpus_size():
    """The corpus holds at least 150 distinct bad inputs (spec and data files count once though
    each is checked by validate and by run)."""
    distinct = (len(SPEC_CASES) + len(NPZ_CASES) + len(IDX_CASES) + len(TECH_CASES) + len(CSV_CASES)
                + len(ONNX_CASES) + len(FLAG_CASES))
    assert distinct >= 150 and len(ONNX_CASES) >= 15
    ids = SPEC_IDS + [c[0] for c in NPZ_CASES + IDX_CASES + TECH_CASES + CSV_CASES + ONNX_CASES] + [c.id for c in FLAG_CASES]
    assert len(ids) == len(set(ids))


def test_strict_rules_accept_valid_forms(tmp_path, cli):
    """What strictness must not refuse: a topology named with any letters (réseau.csv), floats in
    exponent form, decimal integers with a sign, true/false, physical values at their bounds."""
    csv_path = tmp_path / "réseau.csv"
    csv_path.write_text("Layer, M, N, K\nl0, 8, 8, 8\n", encoding="utf-8")
    out = tmp_path / "t.jsonl"
    code, _, err = cli("trace", csv_path, "-o", out)
    assert code == 0, err
    assert json.loads(out.read_text().splitlines()[0])["workload"] == "réseau"
    hw_path = tmp_path / "hw.yaml"
    hw_path.write_text(
        HW_TEXT.replace("clock_ghz: 1.0", "clock_ghz: 1e-3").replace("rows: 8", "rows: +8")
        .replace("dataflow: os,", "dataflow: os, fold_overlap: false,").replace("bandwidth_gbps: 128", "bandwidth_gbps: 1.0e+7"),
        encoding="utf-8",
    )
    code, out_text, err = cli("validate", hw_path)
    assert (code, err) == (0, "") and out_text == f"ok  {hw_path} (hardware)\n"
