"""Iso-area and iso-power resizing (accelsim.hw.iso): the ladder of shapes, the bracket of the
target between two shapes one row or column apart, the evaluation bound, impossible targets, and
the shipped fp16 baseline resized to the 4-bit machine's area and power."""

from __future__ import annotations

import pytest

from accelsim import energy as E
from accelsim.hw.iso import IsoError, evaluation_bound, iso_resize, ladder_shape
from accelsim.hw.machine import Machine
from accelsim.spec.load import load_hardware
from accelsim.trace import Trace

from conftest import HWCONFIGS
from test_sim_engine import gemm

FP16 = HWCONFIGS / "fp16-32x32.yaml"
INT4 = HWCONFIGS / "int4-32x32.yaml"


def test_ladder_keeps_the_aspect_ratio_one_row_or_column_at_a_time():
    assert [ladder_shape(n, 32, 32) for n in range(62, 69)] == [
        (31, 31), (32, 31), (32, 32), (33, 32), (33, 33), (34, 33), (34, 34)]
    assert [ladder_shape(n, 1, 1) for n in (2, 3, 4)] == [(1, 1), (2, 1), (2, 2)]
    for rows0, cols0 in ((32, 32), (84, 32), (16, 64), (1, 7), (1000, 1), (3, 5)):
        assert ladder_shape(rows0 + cols0, rows0, cols0) == (rows0, cols0)  # through the baseline
        prev = ladder_shape(2, rows0, cols0)
        assert prev == (1, 1)
        for n in range(3, 3 * (rows0 + cols0)):
            r, c = ladder_shape(n, rows0, cols0)
            assert (r - prev[0], c - prev[1]) in ((1, 0), (0, 1)) and r + c == n
            # the nearest split of n to the baseline's share of rows (ties: more rows)
            assert abs(r / n - rows0 / (rows0 + cols0)) <= 0.5 / n + 1e-12 or r in (1, n - 1)
            prev = (r, c)


def test_iso_area_fp16_baseline_to_the_int4_machine():
    """fp16-32x32 costs 3.4971 mm² beside its array plus 3000 µm² per PE; the shared-PE int4-32x32
    is 7.765 mm², room for 1422.7 PEs: the ladder brackets it between 38x37 (1406 PEs, 7.715 mm²)
    and 38x38 (1444, 7.829 mm²); 38x37 is nearer. Priced with one datapath per mode (11.638 mm²)
    the 4-bit machine would buy a 52x52 baseline (2704 PEs; 53x52 has 2756)."""
    spec = load_hardware(FP16)
    int4 = Machine(load_hardware(INT4), str(INT4))
    table = E.machine_table(int4)
    measure = E.area_measure(table, str(FP16))
    target = E.area_mm2(int4, table)["total"]
    resized, d = iso_resize(spec, measure, target)
    assert (resized.array.rows, resized.array.cols) == (38, 37) == (d["rows"], d["cols"])
    rest = (640 * 4720 + 32 * 3000 + 32 * 11884) / 1e6
    assert d["measure"] == pytest.approx(rest + 1406 * 3000 / 1e6) == measure(resized)
    assert d["below"] == {"rows": 38, "cols": 37, "measure": d["measure"]}
    assert d["above"] == {"rows": 38, "cols": 38, "measure": pytest.approx(rest + 1444 * 3000 / 1e6)}
    assert d["baseline"] == {"rows": 32, "cols": 32, "measure": pytest.approx(rest + 1024 * 3000 / 1e6)}
    assert d["relative_error"] == pytest.approx((d["measure"] - target) / target)
    assert d["evaluations"] <= evaluation_bound()
    assert resized.model_dump(exclude={"array"}) == spec.model_dump(exclude={"array"})  # only the array
    assert resized.array.model_dump(exclude={"rows", "cols"}) == spec.array.model_dump(exclude={"rows", "cols"})
    separate = E.area_mm2(Machine(int4.spec.model_copy(update={"array": int4.spec.array.model_copy(
        update={"pe_area": "separate"})}), str(INT4)), table)["total"]
    assert (lambda r: (r.array.rows, r.array.cols))(iso_resize(spec, measure, separate)[0]) == (52, 52)


@pytest.mark.parametrize("target", [1, 999.5, 1000, 1056.5, 5000, 123456.7])
def test_bracket_within_one_row_or_column(target):
    """For any reachable target: measure(below) <= target < measure(above), the two shapes one row
    or one column apart, the pick the nearer of the two; pick below/above return those."""
    spec = load_hardware(FP16)
    measure = lambda s: s.array.rows * s.array.cols  # noqa: E731
    resized, d = iso_resize(spec, measure, target)
    below, above = d["below"], d["above"]
    if above is None:  # a rung meets it exactly
        assert d["measure"] == target == below["measure"]
        return
    assert below["measure"] <= target < above["measure"]
    assert (above["rows"] - below["rows"], above["cols"] - below["cols"]) in ((1, 0), (0, 1))
    nearer = below if target - below["measure"] <= above["measure"] - target else above
    assert (d["rows"], d["cols"]) == (nearer["rows"], nearer["cols"])
    for pick, side in (("below", below), ("above", above)):
        r, dd = iso_resize(spec, measure, target, pick=pick)
        assert (r.array.rows, r.array.cols) == (side["rows"], side["cols"]) and dd == {**d, "pick": pick, "rows": side["rows"], "cols": side["cols"], "measure": side["measure"], "relative_error": (side["measure"] - target) / target}


def test_exact_match_evaluation_bound_and_determinism():
    spec = load_hardware(FP16)
    calls: list[tuple[int, int]] = []

    def measure(s):
        calls.append((s.array.rows, s.array.cols))
        return s.array.rows * s.array.cols

    resized, d = iso_resize(spec, measure, 33 * 32)
    assert (d["rows"], d["cols"], d["above"]) == (33, 32, None)
    assert len(calls) == len(set(calls)) == d["evaluations"]  # every rung measured once
    again = iso_resize(spec, measure, 33 * 32)
    assert again[1] == d and again[0] == resized
    calls.clear()
    _, far = iso_resize(spec, measure, 60000.0 * 60000.0)
    assert far["evaluations"] == len(calls) <= evaluation_bound() == 2 * 17 + 1


def test_impossible_targets():
    """A target below the machine with a 1x1 array, above the largest array, or not a number."""
    spec = load_hardware(FP16)
    measure = lambda s: 3.5 + s.array.rows * s.array.cols * 0.003  # noqa: E731
    with pytest.raises(IsoError, match=r"^the target 2 is below the measure of the machine with a 1x1 array "
                       r"\(3\.503\): the rest of the machine already exceeds it$"):
        iso_resize(spec, measure, 2.0)
    with pytest.raises(IsoError, match=r"^the target 1e\+06 is above the measure of the largest array on the "
                       r"ladder \(64x64: 15\.788\)$"):
        iso_resize(spec, measure, 1e6, max_dim=64)
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive finite"):
            iso_resize(spec, measure, bad)
    with pytest.raises(ValueError, match="unknown pick 'middle'"):
        iso_resize(spec, measure, 5.0, pick="middle")


def test_non_monotone_measure_still_brackets():
    """A measure with a dip: the result is still two adjacent rungs around the target."""
    spec = load_hardware(FP16)
    measure = lambda s: s.array.rows * s.array.cols - (300 if s.array.rows == 40 else 0)  # noqa: E731
    _, d = iso_resize(spec, measure, 1560)
    assert d["below"]["measure"] <= 1560 < d["above"]["measure"]


def test_iso_power_on_a_small_trace():
    """The fp16 baseline resized to the 4-bit machine's average power on one GEMM step: the two
    rungs around it bracket the 4-bit machine's power, and the result is one of them."""
    trace = Trace("t", (gemm(512, 256, 576),), steps=3)
    trace4 = Trace("t", (gemm(512, 256, 576, "int4", "int4", acc="int32"),), steps=3)
    int4 = Machine(load_hardware(INT4), str(INT4))
    table = E.machine_table(int4)
    target = E.power_measure([trace4], table, str(INT4))(int4.spec)
    spec = load_hardware(FP16)
    measure = E.power_measure([trace], table, str(FP16))
    resized, d = iso_resize(spec, measure, target)
    assert d["below"]["measure"] <= target < d["above"]["measure"]
    assert measure(resized) == d["measure"]
    assert (d["rows"], d["cols"]) in ((d["below"]["rows"], d["below"]["cols"]), (d["above"]["rows"], d["above"]["cols"]))
    # FP16 MACs cost 13x an INT4 one here while the step is only 4x longer: the fp16 twin draws
    # more power than the 4-bit machine, so the iso-power baseline is smaller
    assert d["baseline"]["measure"] > target and (d["rows"], d["cols"]) == (24, 23)
