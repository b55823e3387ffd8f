"""SCALE-Sim topology import: both CSV forms, with and without trailing commas, SCALE-Sim's
output-size rule, depthwise layers, and clear errors."""

from __future__ import annotations

import pytest

from accelsim import api
from accelsim.errors import InputError
from accelsim.workload.topology import parse_topology

from conftest import HWCONFIGS, write

CONV = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
Conv1, 224, 224, 7, 7, 3, 64, 2,
Conv2, 56, 56, 3, 3, 64, 64, 1,
CB1DP, 112, 112, 3, 3, 32, 1, 1,
"""


@pytest.mark.parametrize("text", [CONV, CONV.replace(",\n", "\n")], ids=["trailing-comma", "no-trailing-comma"])
def test_conv_form(text):
    net = parse_topology(text, "t.csv")
    conv1, conv2, dp = net.layers
    # SCALE-Sim's output size: ceil((224 - 7 + 2) / 2) = 110, not floor(217 / 2) + 1 = 109
    assert conv1.out_shape == (64, 110, 110)
    assert conv1.gemm_dims(1) == (110 * 110, 64, 7 * 7 * 3, 1)
    assert conv2.gemm_dims(1) == (54 * 54, 64, 576, 1)
    # depthwise: SCALE-Sim runs one single-channel layer per channel -> 32 GEMMs of M=110*110, N=1, K=9
    assert dp.groups == 32 and dp.gemm_dims(1) == (110 * 110, 1, 9, 32)
    assert net.batch_size == 1


@pytest.mark.parametrize("trailing", [",", ""])
def test_gemm_form(trailing):
    text = f"Layer, M, N, K{trailing}\nfc1, 128, 256, 64{trailing}\nfc2, 7, 3, 5{trailing}\n"
    net = parse_topology(text, "g.csv")
    assert [layer.gemm_dims(8) for layer in net.layers] == [(128, 256, 64, 1), (7, 3, 5, 1)]


def test_separate_column_stride():
    net = parse_topology("a, 10, 12, 3, 3, 4, 8, 1, 2,\n", "s.csv")
    # a first row of numbers is data, not a header; row stride 1 gives ceil((10 - 3 + 1) / 1) = 8
    # rows, column stride 2 gives ceil((12 - 3 + 2) / 2) = 6 columns
    assert net.layers[0].out_shape == (8, 8, 6)


def test_errors_name_line_and_column(tmp_path):
    text = CONV + "Bad, 10, x, 3, 3, 1, 1, 1,\nBig, 4, 4, 5, 5, 1, 1, 1,\nConv1, 8, 8, 3, 3, 1, 1, 1,\n"
    with pytest.raises(InputError) as info:
        parse_topology(text, "t.csv")
    assert [str(p) for p in info.value.problems] == [
        "t.csv: line 5: IFMAP Width: expected a positive integer, got 'x'",
        "t.csv: line 6: Big: filter 5x5 is larger than the 4x4 input",
        "t.csv: line 7: layer name 'Conv1' appears twice",
    ]
    with pytest.raises(InputError, match="expected 4 columns .* or 8 .*, got 3"):
        parse_topology("a, 1, 2,\n", "t.csv")
    with pytest.raises(InputError, match="topology CSV has no rows"):
        parse_topology("\n\n", "t.csv")


def test_run_topology_csv_end_to_end(tmp_path, cli):
    """`accelsim run topology.csv hw.yaml` works, inference by default, and GEMM cycles are
    SCALE-Sim's compute cycles."""
    csv_path = write(tmp_path / "net.csv", "Layer, M, N, K,\nl0, 64, 64, 64,\nl1, 128, 256, 64,\n")
    code, out, err = cli("run", csv_path, HWCONFIGS / "fp16-32x32.yaml", "--out", tmp_path / "r")
    assert code == 0, err
    result = api.run(csv_path, HWCONFIGS / "fp16-32x32.yaml", write=False)
    assert result.summary["phases"] == "inference"
    base = [r for r in result.baseline.step.ops if r.unit == "array"]
    # fp16 on a 32x32 os array: SCALE-Sim reports 503 and 4031 for these two GEMMs (+1 each)
    assert [r.compute_cycles for r in base] == [504, 4032]
