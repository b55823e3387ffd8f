"""Fair comparisons end to end: the baseline follows every hardware change unless one machine is
named, iso-area and iso-power baselines from the CLI and in sweeps, why the speedup is below peak
(summary.json, console, report.md, waterfalls), surprises said out loud, and sweeps over recipes."""

from __future__ import annotations

import csv
import json
import math
import re
import pickle
from pathlib import Path

import pytest

from accelsim import api, sweep
from accelsim.errors import InputError
from accelsim.report import run_plots, sweep_plots, sweep_report
from accelsim.report.writers import dumps_csv

from conftest import HW_TEXT, HWCONFIGS, WORKLOAD_TEXT, WORKLOADS, write

INT4, FP16, RAPID = HWCONFIGS / "int4-32x32.yaml", HWCONFIGS / "fp16-32x32.yaml", HWCONFIGS / "rapid-like.yaml"
R18 = WORKLOADS / "resnet18.yaml"
#: The 16-bit twin of conftest's test machine, for a named baseline.
FP16_TEXT = HW_TEXT.replace("name: hw-test", "name: fp16-test").replace(
    "modes: {int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}", "modes: {fp16xfp16: 1}")


def _shape(spec) -> tuple[int, int]:
    return spec.array.rows, spec.array.cols


def _machines(*sets: str, hardware: Path = INT4, baseline_hw: Path | None = None) -> api.Machines:
    return api.resolve_machines(hardware, api.split_sets(list(sets)), baseline_hw)


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------------------------
# the baseline follows


def test_a_hardware_field_applies_to_both_machines_unless_prefixed_for_one():
    m = _machines("array.rows=64", "hw.sram.ifmap_kib=128")
    assert _shape(m.hardware) == _shape(m.baseline) == (64, 32)
    assert m.hardware.sram.ifmap_kib == m.baseline.sram.ifmap_kib == 128
    assert m.baseline.name == "fp16-32x32" and m.baseline.array.modes == {"fp16xfp16": 1}
    assert m.source == f"{FP16} (the 'baseline:' of {INT4}), with array.rows=64, sram.ifmap_kib=128"
    m = _machines("policy_hw.array.rows=64", "baseline_hw.array.cols=16")
    assert (_shape(m.hardware), _shape(m.baseline)) == ((64, 32), (32, 16))
    # modes the 16-bit machine lacks, the 4-bit machine's name and its baseline: file stay its own
    m = _machines("array.modes.int4xint4=8", "array.modes.fp16xfp16=2", "hw.name=mine", "array.simd.fp4r4xint4=output_cols")
    assert m.hardware.array.modes == {"int4xint4": 8, "fp4r4xint4": 4, "fp8xfp8": 2, "fp16xfp16": 2}
    assert m.baseline.array.modes == {"fp16xfp16": 2} and m.baseline.array.simd == {}
    assert (m.hardware.name, m.baseline.name) == ("mine", "fp16-32x32")
    assert m.baseline_sets == ("array.modes.fp16xfp16=2",)
    # a baseline: path set on the 4-bit machine still chooses the baseline
    m = _machines("hw.baseline=fp16-16x16-membound.yaml", "array.rows=8")
    assert (m.baseline.name, _shape(m.baseline)) == ("fp16-16x16-membound", (8, 16))
    m = _machines("hw.baseline=null", "array.rows=8")  # the same machine in its 16-bit mode
    assert m.baseline == m.hardware and m.baseline_file == str(INT4)
    # a derived baseline follows too, and may be changed on its own
    m = _machines("array.rows=64", "baseline_hw.array.cols=8", hardware=RAPID)
    assert (_shape(m.hardware), _shape(m.baseline)) == ((64, 32), (64, 8))
    assert m.source == "the same machine (rapid-like) in its 16-bit mode, with array.rows=64, array.cols=8"
    m = _machines("array.rows=16", hardware=RAPID, baseline_hw=FP16)  # --baseline-hw follows
    assert (m.baseline.name, _shape(m.baseline)) == ("fp16-32x32", (16, 32))
    with pytest.raises(InputError, match="write workload.name=x or hw.name=x"):
        api.split_sets(["name=x"])


def test_set_rows_compares_machines_of_the_same_shape():
    """`--set array.rows=64` now changes both machines (1.72x); the 4-bit machine alone
    (`policy_hw.`) gives the old figure (2.73x: a 64x32 int4 array against a 32x32 fp16 one)."""
    both = api.run(R18, INT4, sets=["array.rows=64"], write=False).summary
    alone = api.run(R18, INT4, sets=["policy_hw.array.rows=64"], write=False).summary
    assert both["speedup"] == pytest.approx(1.721856, rel=1e-6) and alone["speedup"] == pytest.approx(2.724804, rel=1e-6)
    assert both["runs"]["policy"]["cycles"] == alone["runs"]["policy"]["cycles"]
    assert (both["runs"]["baseline"]["array_rows"], alone["runs"]["baseline"]["array_rows"]) == (64, 32)
    assert both["peak_speedup"] == 4 and alone["peak_speedup"] == 8


# ------------------------------------------------------------------------------------------------
# iso baselines


def test_iso_area_and_iso_power_on_resnet18():
    """Iso area: fp16-32x32 grows to 38x37 (7.715 mm² against the 4-bit machine's 7.765); iso
    power: it shrinks to 23x22 (its average power on the step 4634 mW against 4639). The search's
    simulations are cached: the baseline is not simulated again on the shape it picked."""
    area = api.run(R18, INT4, iso="area", write=False).summary
    d = area["iso_details"]
    assert area["iso"] == "area" and (d["rows"], d["cols"]) == (38, 37)
    assert d["target_area_mm2"] == pytest.approx(area["runs"]["policy"]["area_mm2"], rel=1e-12)
    assert d["area_mm2"] == pytest.approx(area["runs"]["baseline"]["area_mm2"], rel=1e-12)
    assert d["below"]["area_mm2"] <= d["target_area_mm2"] < d["above"]["area_mm2"]
    assert d["original"] == {"rows": 32, "cols": 32, "area_mm2": pytest.approx(6.569088)}
    assert (area["runs"]["baseline"]["array_rows"], area["runs"]["baseline"]["array_cols"]) == (38, 37)
    assert area["speedup"] == pytest.approx(1.7409, abs=1e-4) and area["energy_ratio"] == pytest.approx(2.9571, abs=1e-4)
    assert area["peak_speedup"] == pytest.approx(4096 / 1406)
    cache = api.SimCache()
    power = api.run(R18, INT4, iso="power", write=False, sim_cache=cache).summary
    d = power["iso_details"]
    assert (d["rows"], d["cols"], d["measure"]) == (23, 22, "average_power_mw")
    assert d["target_average_power_mw"] == pytest.approx(power["runs"]["policy"]["average_power_mw"], rel=1e-12)
    assert d["average_power_mw"] == pytest.approx(power["runs"]["baseline"]["average_power_mw"], rel=1e-12)
    assert d["below"]["average_power_mw"] <= d["target_average_power_mw"] < d["above"]["average_power_mw"]
    assert power["speedup"] == pytest.approx(3.5834, abs=1e-4) and power["energy_ratio"] == pytest.approx(3.5800, abs=1e-4)
    assert (cache.misses, cache.hits) == (1 + d["evaluations"], 1)  # the policy, each shape once; then a hit
    # at equal power, energy ratio / speedup is the power ratio, within the bracket of one row or column
    ratio = power["runs"]["baseline"]["average_power_mw"] / power["runs"]["policy"]["average_power_mw"]
    assert power["energy_ratio"] / power["speedup"] == pytest.approx(ratio, rel=1e-9)
    assert abs(ratio - 1) <= (d["above"]["average_power_mw"] - d["below"]["average_power_mw"]) / d["target_average_power_mw"]
    again = api.run(R18, INT4, iso="power", write=False, sim_cache=cache).summary
    assert again == power and cache.misses == 1 + d["evaluations"]  # nothing simulated twice


def test_impossible_iso_is_bad_input(tmp_path, cli):
    """A baseline whose buffers alone exceed the 4-bit machine's area: no array can match it."""
    wl, hw = write(tmp_path / "wl.yaml", WORKLOAD_TEXT), write(tmp_path / "hw.yaml", HW_TEXT)
    code, out, err = cli("run", wl, hw, "--out", tmp_path / "o", "--iso", "area", "--set", "baseline_hw.sram.ifmap_kib=4096")
    assert code == 2 and out == "" and not (tmp_path / "o").exists()
    assert err.startswith("accelsim: error: --iso: area: no hw-test array matches hw-test's area: the target ")
    assert "the rest of the machine already exceeds it" in err and err.count("\n") == 1


def test_run_console_report_and_waterfalls(tmp_path, cli):
    """`accelsim run … --iso area`: the console shows both arrays, areas and powers, one line per
    factor of the breakdown and the energy ratio by component; summary.json, report.md and the
    waterfall plots carry the same figures."""
    out = tmp_path / "r"
    code, stdout, err = cli("run", R18, INT4, "--out", out, "--iso", "area")
    assert code == 0, err
    s = json.loads((out / "summary.json").read_text())
    factors = s["speedup_breakdown"]
    assert s["peak_speedup"] * math.prod(f["factor"] for f in factors.values()) == pytest.approx(s["speedup"], rel=1e-12)
    assert math.prod(v["factor"] for v in s["energy_ratio_breakdown"].values()) == pytest.approx(s["energy_ratio"], rel=1e-12)
    assert set(s) >= {"iso", "iso_details", "peak_speedup", "peak", "speedup_breakdown", "energy_ratio_breakdown"}
    def row(*cells: str) -> bool:   # one table row, whatever the column widths
        return re.search(r"│ " + r" +│ +".join(map(re.escape, cells)) + r" +│", stdout) is not None

    assert row("array", "32x32", "38x37", "iso area")
    assert row("area", "7.77 mm²", "7.72 mm²")
    assert row("average power", "4.64 W", "7.88 W")
    lines = stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("speedup 1.74x = peak 2.91x "))
    assert lines[head].endswith("no effect: GEMM work, dependency waits")
    shown = [k for k, f in factors.items() if f"{f['factor']:.3g}" != "1"]
    assert len(shown) == 6 and all(lines[head + 1 + i].startswith(f"  × {factors[k]['factor']:<6.3g} ")
                                   for i, k in enumerate(shown))
    assert "  × 0.736  fill and drain " in stdout and "policy +30.4 M cycles, baseline +27.2 M" in stdout
    assert lines[head + 1 + len(shown)] == "energy ratio 2.96x = mac 1.35x · sram 1.11x · dram 1.95x · leakage 1.01x"
    assert "baseline machine: " in stdout and "resized from 32x32 to 38x37" in stdout
    report = (out / "report.md").read_text()
    assert "* **Baseline machine** `fp16-32x32`: 38x37 os array at 1.0 GHz, 7.72 mm²;" in report
    assert "| array | 32x32 | 38x37 | iso area |" in report
    table = report.split("### Why the speedup is below peak")[1].split("###")[0]
    assert "| fill and drain | fill and drain of every fold" in table and "| 0.7362 | 59% |" in table
    assert sum(line.startswith("| ") for line in table.splitlines()) == 1 + len(factors)
    assert "](plots/speedup_waterfall.png)" in report and "](plots/energy_waterfall.png)" in report
    # the speedup waterfall: the peak, one floating bar per factor that is not 1, the measured bar
    fig = run_plots.speedup_waterfall_figure(s)
    ax = fig.axes[0]
    bars = [(p.get_y(), p.get_y() + p.get_height()) for p in ax.patches]
    assert len(bars) == 2 + len(shown)
    assert bars[0] == (1.0, pytest.approx(s["peak_speedup"])) and bars[-1] == (1.0, pytest.approx(s["speedup"]))
    level = s["peak_speedup"]
    for (lo, hi), k in zip(bars[1:-1], shown):
        f = factors[k]["factor"]
        assert (min(lo, hi), max(lo, hi)) == (pytest.approx(min(level, level * f)), pytest.approx(max(level, level * f)))
        level *= f
    assert level == pytest.approx(s["speedup"], rel=1e-12)
    assert "38x37, iso area, 7.72 mm²" in fig.texts[-1].get_text()
    assert "left out, factor 1: GEMM work, dependency waits" in [t.get_text() for t in fig.texts]
    energy = run_plots.energy_waterfall_figure(s)
    assert energy.axes[0].patches[-1].get_height() == pytest.approx(s["energy_ratio"] - 1)


def test_every_step_shape_is_in_the_breakdown(tmp_path):
    """A trained run of 5 full batches and a partial one per epoch: both step shapes are timed and
    the breakdown's cycles add up to the whole run's."""
    wl = write(tmp_path / "wl.yaml", """\
version: 1
name: two-shapes
model:
  input: [4]
  layers:
    - {type: linear, out: 8}
    - {type: relu}
    - {type: linear, out: 8}
    - {type: relu}
    - {type: linear, out: 3}
data: {dataset: synthetic, samples: 70, classes: 3, batch_size: 10}
training: {epochs: 2, seeds: [0]}
""")
    hw = write(tmp_path / "hw.yaml", HW_TEXT)
    r = api.run(wl, hw, write=False, cache_dir=None, jobs=1)
    assert [(step.ops[0].op.m, n) for step, n in r.policy.step_runs] == [
        (10, 10), (5, 2)]  # 55 training samples: 5 batches of 10 and one of 5, twice
    s = r.summary
    for label, run in (("policy", r.policy), ("baseline", r.baseline)):
        added = sum(f[f"{label}_cycles"] for k, f in s["speedup_breakdown"].items() if k != "work")
        assert s["speedup_breakdown"]["work"][f"{label}_cycles"] + added == pytest.approx(run.cycles, rel=1e-12)
        assert run.cycles == sum(step.cycles * n for step, n in run.step_runs)
    assert s["peak_speedup"] * math.prod(f["factor"] for f in s["speedup_breakdown"].values()) == pytest.approx(
        s["speedup"], rel=1e-12)


# ------------------------------------------------------------------------------------------------
# surprises


def test_surprises_are_named_with_their_numbers(tmp_path):
    """A one-lane rescale unit beside a 16x16 array makes 4 bits slower (the rescale unit busier than
    the array, DRAM 90 % of the energy); the memory-bound machine spends most of its energy on DRAM; resnet18 on int4-32x32 has no such
    surprise, only the 1x1 downsampling convolutions whose requantization outlasts their GEMM."""
    wl, hw = write(tmp_path / "wl.yaml", WORKLOAD_TEXT), write(tmp_path / "hw.yaml", HW_TEXT)
    s = api.run(wl, hw, sets=["rescale.lanes=1", "array.rows=16", "array.cols=16"], write=False).summary
    busy = s["runs"]["policy"]["busy_cycles_per_step"]
    assert busy["rescale"] > busy["array"] and s["speedup"] < 1
    assert s["notes"] == [
        "int4 is slower than fp16 here: speedup 0.669x; the largest loss: rescale (quantization) (0.445x)",
        "2 of 15 (layer, phase) pairs take at least 5% longer in int4 than in fp16; the costliest: conv2d1 bwd_data at 0.24x "
        "(rescale 14.2 kcycles, array 3.53 kcycles); conv2d1 fwd at 0.37x (rescale 5.04 kcycles, array 1.71 kcycles)",
        f"the rescale unit is busy longer than the array in int4: {busy['rescale'] / 1e3:.3g} kcycles against "
        f"{busy['array'] / 1e3:.3g} kcycles per step",
        "int4 on hw-test: DRAM traffic is 90% of its energy",
    ]
    assert s["speedup_breakdown"]["rescale"]["factor"] == pytest.approx(0.445, abs=5e-4)
    mem = api.run(R18, HWCONFIGS / "int4-16x16-membound.yaml", write=False).summary
    assert "int4 on int4-16x16-membound: DRAM traffic is 87% of its energy, and its ops wait for memory 78% of their " \
           "time" in mem["notes"]
    r18 = api.run(R18, INT4, write=False).summary
    assert r18["notes"] == [
        "3 of 169 (layer, phase) pairs take at least 5% longer in int4 than in fp16; the costliest: layer2.0.downsample.0 "
        "fwd at 0.68x (rescale 336 kcycles, array 245 kcycles); layer2.0.downsample.0 bwd_data at 0.66x (rescale 303 "
        "kcycles, array 148 kcycles); layer4.0.downsample.0 update at 0.9x (vector 66.9 kcycles)"]


# ------------------------------------------------------------------------------------------------
# sweeps


@pytest.fixture
def small(tmp_path):
    wl = write(tmp_path / "wl.yaml", WORKLOAD_TEXT)
    write(tmp_path / "fp16.yaml", FP16_TEXT)
    hw = write(tmp_path / "hw.yaml", HW_TEXT + "baseline: fp16.yaml\n")
    return wl, hw


def test_sweep_over_the_array_compares_the_same_shape_or_the_same_area(tmp_path, small, cli):
    wl, hw = small
    grid = ["--grid", "array.rows=4,8", "--grid", "array.cols=4,8"]
    code, stdout, err = cli("sweep", wl, hw, *grid, "--out", tmp_path / "same", "--jobs", "1")
    assert code == 0, err
    rows = _csv(tmp_path / "same" / "results.csv")
    assert [(r["policy_array"], r["baseline_array"], r["baseline_hardware"]) for r in rows] == [
        (f"{a}x{b}", f"{a}x{b}", "fp16-test") for a in (4, 8) for b in (4, 8)]
    assert all(float(r["peak_speedup"]) == 4 and r["iso"] == "" for r in rows)
    assert "baseline fp16-test with the 4-bit machine's array at every point" in stdout
    assert "baseline fp16-test with the 4-bit machine's array at every point" in (tmp_path / "same" / "report.md").read_text()
    # the same with --iso area, and with iso: area in a sweep file: the same results
    code, stdout, err = cli("sweep", wl, hw, *grid, "--iso", "area", "--out", tmp_path / "iso", "--jobs", "1")
    assert code == 0, err
    iso = _csv(tmp_path / "iso" / "results.csv")
    assert all(r["iso"] == "area" for r in iso)
    for r in iso:  # a bigger fp16 array, whose area is nearest the 4-bit machine's
        pr, pc = map(int, r["policy_array"].split("x"))
        br, bc = map(int, r["baseline_array"].split("x"))
        assert br * bc > pr * pc and abs(float(r["baseline_area_mm2"]) / float(r["policy_area_mm2"]) - 1) < 0.05
        assert float(r["peak_speedup"]) == pytest.approx(4 * pr * pc / (br * bc))
    report = (tmp_path / "iso" / "report.md").read_text()
    assert "resized to the 4-bit machine's area at each point (iso area:" in report
    assert f"| fp16-test {iso[-1]['baseline_array']}, " in report
    sweep_file = write(tmp_path / "s.yaml", f"version: 1\nname: s\nworkload: wl.yaml\nhardware: hw.yaml\niso: area\n"
                                           f"grid: {{array.rows: [4, 8], array.cols: [4, 8]}}\n")
    code, _, err = cli("sweep", sweep_file, "--out", tmp_path / "file", "--jobs", "1")
    assert code == 0, err
    strip = lambda rs: [{k: v for k, v in r.items() if k != "key"} for r in rs]  # noqa: E731
    assert strip(_csv(tmp_path / "file" / "results.csv")) == strip(iso)
    code, _, err = cli("sweep", write(tmp_path / "bad.yaml", sweep_file.read_text().replace("iso: area", "iso: volume")),
                       "--out", tmp_path / "bad")
    assert code == 2 and "iso: " in err and "volume" in err


def test_shipped_sweep_needs_no_workaround():
    """Every point of resnet18-sweep.yaml compares with fp16-32x32 of the point's own array and
    buffers (no `hw.baseline: null`: the baseline follows)."""
    plan = sweep.load_sweep_file(WORKLOADS / "resnet18-sweep.yaml")
    assert plan.fixed == ()
    points = sweep.plan_points(plan)
    assert len(points) == 48
    for p in points[::7]:
        m = api.resolve_machines(plan.hardware, api.split_sets(list(p.sets)))
        assert m.baseline.name == "fp16-32x32" and m.baseline.array.modes == {"fp16xfp16": 1}
        assert (_shape(m.baseline), m.baseline.sram) == (_shape(m.hardware), m.hardware.sram)


def test_sweep_over_recipes_draws_time_and_energy_per_recipe(tmp_path, cli):
    """`--grid precision=int4,hfp8,fp16` on an analytic workload: bars per recipe, the baseline's
    time and energy as a line; each point's baseline simulation after the first is a cache hit."""
    wl = write(tmp_path / "wl.yaml", WORKLOAD_TEXT)
    hw = write(tmp_path / "hw.yaml", HW_TEXT.replace("fp16xfp16: 1}", "fp8xfp8: 2, fp16xfp16: 1}"))
    code, _, err = cli("sweep", wl, hw, "--grid", "precision=int4,hfp8,fp16", "--out", tmp_path / "s", "--jobs", "1")
    assert code == 0, err
    rows = _csv(tmp_path / "s" / "results.csv")
    assert [(r["precision"], r["policy_precision"], r["baseline_precision"]) for r in rows] == [
        ("int4", "int4", "fp16"), ("hfp8", "hfp8", "fp16"), ("fp16", "fp16", "fp16")]
    assert float(rows[2]["speedup"]) == 1.0
    assert (tmp_path / "s" / "plots" / "recipes.png").is_file()
    _, ok, _ = sweep_plots.read_results(tmp_path / "s" / "results.csv")
    fig = sweep_plots.recipes_figure(ok, ["precision"], "sweep s")
    time_ax, energy_ax = fig.axes
    assert [t.get_text() for t in time_ax.get_xticklabels()] == ["int4", "hfp8", "fp16"]
    heights = [p.get_height() for p in time_ax.patches]
    scale = float(rows[0]["policy_time_s"]) / heights[0]
    assert heights == pytest.approx([float(r["policy_time_s"]) / scale for r in rows])
    assert time_ax.get_lines()[0].get_ydata()[0] == pytest.approx(float(rows[0]["baseline_time_s"]) / scale)
    assert "baseline fp16 on hw-test" in time_ax.get_legend().get_texts()[0].get_text()
    # a worker's cache: the baseline of the second and third recipe is simulated once, for the first
    runner = pickle.loads(pickle.dumps(sweep.PointRunner()))
    plan = sweep.inline_plan(wl, hw, ["precision=int4,hfp8"])
    tasks = [sweep._task(plan, p, tmp_path / ".cache") for p in sweep.plan_points(plan)]
    assert [runner(t)["status"] for t in tasks] == ["ok", "ok"]
    assert (runner._cache.misses, runner._cache.hits) == (3, 1)
    assert pickle.loads(pickle.dumps(runner))._cache is None  # never shipped to a worker


def test_recipes_with_accuracy_plot_accuracy_against_time_and_energy(tmp_path):
    from accelsim.sweep import csv_columns

    columns = csv_columns(["precision"])
    rows = []
    for i, (rec, t, e, acc) in enumerate((("int4", 0.028, 1.26e11, 0.975), ("nvfp4", 0.027, 1.2e11, 0.97),
                                          ('{"preset": "int4", "tpr": false}', 0.028, 1.25e11, 0.969))):
        row = dict.fromkeys(columns, "")
        row.update(index=i, precision=rec, status="ok", key=f"k{i}", policy_cycles=1, policy_time_s=t,
                   policy_energy_pj=e, policy_accuracy=acc, policy_accuracy_std=0.003, baseline_time_s=0.0325,
                   baseline_energy_pj=1.55e11, baseline_accuracy=0.976, baseline_precision="bf16",
                   baseline_hardware="fp16-32x32", speedup=0.0325 / t, energy_ratio=1.55e11 / e)
        rows.append(row)
    folder = tmp_path / "sweep-r"
    folder.mkdir()
    (folder / "results.csv").write_text(dumps_csv(columns, rows))
    drawn = sweep_report.write_sweep_report(folder, "summary")
    assert drawn[:2] == ["pareto.png", "recipes.png"]
    _, ok, _ = sweep_plots.read_results(folder / "results.csv")
    fig = sweep_plots.recipes_figure(ok, ["precision"], "sweep r")
    for ax in fig.axes:
        labels = [t.get_text() for t in ax.texts]
        assert labels == ["int4", "nvfp4", "int4 (tpr=False)"]
        assert ax.get_legend().get_texts()[0].get_text() == "baseline bf16 on fp16-32x32"
    assert fig.axes[0].get_ylabel().startswith("test accuracy, %")
    assert "recipes: accuracy against time and energy" in (folder / "report.md").read_text()
