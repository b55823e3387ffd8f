"""Shared test helpers: repository paths and an in-process CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelsim.cli import main

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ROOT / "workloads"
HWCONFIGS = ROOT / "hwconfigs"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def cli(capsys):
    """Run ``accelsim ARGS`` in-process; return (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


HW_TEXT = """\
version: 1
name: hw-test
clock_ghz: 1.0
array: {rows: 8, cols: 8, dataflow: os, modes: {int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}}
rescale: {lanes: 8, latency_cycles: 2}
vector: {lanes: 8}
sram: {ifmap_kib: 64, filter_kib: 64, ofmap_kib: 32}
dram: {bandwidth_gbps: 128, latency_ns: 50}
"""

WORKLOAD_TEXT = """\
version: 1
name: wl-test
model:
  input: [1, 8, 8]
  layers:
    - {type: conv2d, out: 4, kernel: 3, padding: 1}
    - {type: relu}
    - {type: conv2d, out: 8, kernel: 3}
    - {type: relu}
    - {type: flatten}
    - {type: linear, out: 10}
data: {batch_size: 16}
training: {steps: 3}
precision: int4
baseline: fp16
"""
