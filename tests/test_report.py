"""Reports a person reads at a glance. Every plot of a run and of a sweep keeps its size whatever
the network's size, shares its axes where it compares both runs, says what was simulated, shows
units in the SI prefix that fits the data and has no labels on top of each other; extreme but
valid values draw; ``--plots`` chooses what is drawn; a sweep writes ``report.md`` from
``results.csv`` alone; ``accelsim compare`` puts run and sweep folders side by side; ``validate``
and ``trace`` never import matplotlib."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import pytest
import yaml

from accelsim import api
from accelsim.report import plotkit as pk
from accelsim.report import run_plots, sweep_plots, sweep_report, timeline
from accelsim.report.compare import load_entries
from accelsim.report.writers import dumps_csv

from conftest import HW_TEXT, HWCONFIGS, ROOT, WORKLOAD_TEXT, WORKLOADS, write

SUMMARY_PLOTS = ["timeline.png", "speedup_waterfall.png", "speedup_by_layer.png", "energy_breakdown.png",
                 "energy_waterfall.png", "roofline.png"]


def _draw(fig):
    """Lay the figure out as savefig would, so text extents are the ones in the PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    return fig.canvas.get_renderer()


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _px(fig) -> tuple[int, int]:
    return round(fig.get_figwidth() * pk.DPI), round(fig.get_figheight() * pk.DPI)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real run folder of the small test workload (both machines the test machine), all plots."""
    root = tmp_path_factory.mktemp("run")
    wl, hw = write(root / "wl.yaml", WORKLOAD_TEXT), write(root / "hw.yaml", HW_TEXT)
    api.run(wl, hw, out=root / "rep", plots="all", cache_dir=None)
    return root / "rep"


def _folder(run_dir: Path):
    summary = json.loads((run_dir / "summary.json").read_text())
    config = yaml.safe_load((run_dir / "config.resolved.yaml").read_text())
    return summary, config, run_plots.read_csv(run_dir / "ops.csv"), run_plots.read_csv(run_dir / "layers.csv")


# ------------------------------------------------------------------------------------------------
# units


def test_si_scale_puts_the_largest_value_between_1_and_1000():
    assert pk.si_scale([2.5e-3, 0.01], "s") == (1e-3, "ms")
    assert pk.si_scale([0.8], "J") == (1e-3, "mJ")  # 800,000 µJ is 800 mJ
    assert pk.si_scale([3.2e11], "MAC/s") == (1e9, "GMAC/s")
    assert pk.si_scale([999.0], "J") == (1.0, "J")
    assert pk.si_scale([1000.0], "J") == (1e3, "kJ")
    assert pk.si_scale([1e40], "cycles") == (1e24, "Ycycles")  # beyond the prefixes: the largest
    assert pk.si_scale([0.0, float("nan")], "J") == (1.0, "J")
    assert pk.si(3.2e-4, "J") == "320 µJ"
    assert pk.si(None, "J") == "n/a"


# ------------------------------------------------------------------------------------------------
# run plots


def test_run_writes_the_plots_of_its_level_and_plot_draws_the_rest(run_dir, tmp_path, cli):
    """--plots none draws nothing; `plot --plots summary` the summary set; `plot` (all) adds the rest;
    report.md shows every plot in the folder."""
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == sorted(SUMMARY_PLOTS + ["utilization.png"])
    wl, hw = write(tmp_path / "wl.yaml", WORKLOAD_TEXT), write(tmp_path / "hw.yaml", HW_TEXT)
    out = tmp_path / "r"
    code, _, err = cli("run", wl, hw, "--out", out, "--plots", "none")
    assert code == 0, err
    assert not (out / "plots").exists() and "](plots/" not in (out / "report.md").read_text()
    code, stdout, err = cli("plot", out, "--plots", "summary")
    assert code == 0 and "wrote 6 plots" in stdout, err
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(SUMMARY_PLOTS)
    code, stdout, err = cli("plot", out)
    assert code == 0 and "wrote 7 plots" in stdout, err
    report = (out / "report.md").read_text()
    assert all(f"](plots/{name})" in report for name in SUMMARY_PLOTS + ["utilization.png"])


def test_timeline_shows_both_runs_on_one_time_axis(run_dir):
    """Both panels span the same time range (the slower run's step), so the faster one ends early;
    the title says what one step is."""
    summary, _, ops, _ = _folder(run_dir)
    fig = timeline.timeline_figure(ops, summary)
    top, bottom = fig.axes[0], fig.axes[1]
    assert top.get_xlim() == bottom.get_xlim()
    times_s = [summary["runs"][r]["cycles_per_step"] / (summary["runs"][r]["clock_ghz"] * 1e9) for r in ("policy", "baseline")]
    scale, unit = pk.si_scale([max(times_s)], "s")
    assert bottom.get_xlim()[1] == pytest.approx(max(times_s) / scale * 1.005, rel=1e-3)
    assert unit in bottom.get_xlabel()
    assert "one training step" in fig.texts[-1].get_text()
    inference = dict(summary, phases="inference")
    assert "one inference step" in timeline.timeline_figure(ops, inference).texts[-1].get_text()


def test_roofline_labels_every_roof_once_and_none_overlap():
    """int4-32x32 and its fp16 twin share the fp16 roof: one label naming both machines; the
    labels of roofs at nearby heights are pushed apart."""
    hw, base = (yaml.safe_load((HWCONFIGS / n).read_text()) for n in ("int4-32x32.yaml", "fp16-32x32.yaml"))
    config = {"hardware": hw, "baseline_hardware": base}
    ops = [
        {"run": run, "kind": "gemm", "macs": str(macs), "total_cycles": str(cycles), "dram_read_bits": "8000000",
         "dram_write_bits": "0"}
        for run, macs, cycles in (("policy", 10**9, 10**6), ("baseline", 10**9, 4 * 10**6))
    ]
    summary = {"workload": "w", "runs": {"policy": {"precision": "int4", "hardware": hw["name"]},
                                        "baseline": {"precision": "fp16", "hardware": base["name"]}}}
    fig = run_plots.roofline_figure(ops, config, summary)
    renderer = _draw(fig)
    labels = [t for t in fig.axes[0].texts]
    names = [t.get_text() for t in labels]
    modes = {m for spec in (hw, base) for m in spec["array"]["modes"]}
    assert len(labels) == len({hw["array"]["modes"][m] for m in hw["array"]["modes"]})  # one per distinct roof
    assert sum("fp16xfp16" in n for n in names) == 1
    assert any(n.startswith(f"{hw['name']} & {base['name']}:") and "fp16xfp16" in n for n in names)
    assert all(any(m in n for n in names) for m in modes)
    for a, b in combinations(labels, 2):
        assert not _overlap(a.get_window_extent(renderer), b.get_window_extent(renderer))


def test_energy_in_the_prefix_that_fits_and_legend_beside_the_bars():
    """0.4 J and 0.8 J are drawn in mJ (not 800,000 µJ); the legend sits right of the axes, over no
    bar; a component neither run spends energy on has no legend entry."""
    comps = ("mac", "sram", "dram", "rescale", "vector", "leakage")
    runs = {
        label: {"precision": p, "hardware": "hw", "steps": 1,
                "energy_breakdown_pj": dict(zip(comps, (total * 0.5, total * 0.2, total * 0.3, 0.0, 0.0, 0.0)))}
        for label, p, total in (("policy", "int4", 4e11), ("baseline", "fp16", 8e11))
    }
    fig = run_plots.energy_figure({"workload": "w", "runs": runs, "energy_ratio": 2.0})
    ax = fig.axes[0]
    renderer = _draw(fig)
    assert ax.get_ylabel() == "energy, mJ"
    assert 800 <= ax.get_ylim()[1] < 1000
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["dram", "sram", "mac"]
    assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    assert "baseline / policy = 2x" in fig.texts[-1].get_text()


def _synthetic_run(n_layers: int, *, cycles: int = 1000, ops_per_layer: int = 3):
    """ops.csv / layers.csv rows and a summary of a network of ``n_layers`` GEMM layers trained
    for one step (fwd, bwd_data, bwd_weight each), without simulating: what the plots read."""
    ops, layers = [], []
    start = {"policy": 0, "baseline": 0}
    for run, factor in (("policy", 1), ("baseline", 3)):
        for i in range(n_layers):
            for phase in ("fwd", "bwd_data", "bwd_weight")[:ops_per_layer]:
                total = cycles * factor * (1 + i % 7)
                ops.append({
                    "run": run, "layer": f"block{i // 10}.layer{i % 10}.conv", "phase": phase, "kind": "gemm",
                    "unit": "array", "macs": str(total * 256), "start_cycle": str(start[run]),
                    "total_cycles": str(total), "compute_cycles": str(total * 9 // 10),
                    "utilization": "0.5", "dram_read_bits": str(total * 64), "dram_write_bits": str(total * 8),
                })
                start[run] += total
    for i in range(n_layers):
        for phase in ("fwd", "bwd_data", "bwd_weight")[:ops_per_layer]:
            p, b = cycles * (1 + i % 7), 3 * cycles * (1 + i % 7)
            layers.append({"layer": f"block{i // 10}.layer{i % 10}.conv", "phase": phase, "policy_cycles": str(p),
                           "baseline_cycles": str(b), "speedup": str(b / p), "policy_macs": str(p * 256)})
    runs = {run: {"precision": prec, "hardware": f"{prec}-hw", "steps": 1, "clock_ghz": 1.0, "cycles_per_step": start[run],
                  "dram_bits_per_cycle": 512.0,
                  "energy_breakdown_pj": {"mac": 1e6 * k, "sram": 0.0, "dram": 2e6 * k, "rescale": 0.0, "vector": 0.0,
                                          "leakage": 0.0}}
            for run, prec, k in (("policy", "int4", 1), ("baseline", "fp16", 3))}
    summary = {"workload": f"net{n_layers}", "phases": "training", "runs": runs, "speedup": 3.0, "energy_ratio": 3.0}
    return ops, layers, summary


def test_plots_of_a_2000_layer_network_stay_small_and_name_at_most_the_legible_count():
    """Per-layer plots name the costliest layers and gather the rest into one row; no plot grows
    with the network."""
    ops, layers, summary = _synthetic_run(2000)
    hw = yaml.safe_load((HWCONFIGS / "int4-32x32.yaml").read_text())
    config = {"hardware": hw, "baseline_hardware": hw}
    figures = {
        "speedup": run_plots.speedup_figure(layers, summary),
        "utilization": timeline.utilization_figure(ops, summary),
        "timeline": timeline.timeline_figure(ops, summary),
        "roofline": run_plots.roofline_figure(ops, config, summary),
        "energy": run_plots.energy_figure(summary),
    }
    for name, fig in figures.items():
        width, height = _px(fig)
        assert width <= 1300 and height <= 1100, (name, width, height)
    for name in ("speedup", "utilization"):
        labels = [t.get_text() for t in figures[name].axes[0].get_yticklabels()]
        assert len(labels) == pk.MAX_LABELLED_ROWS + 1
        assert labels[-1] == f"the other {2000 - pk.MAX_LABELLED_ROWS:,} layers"
    assert len(figures["utilization"].axes) == 3  # one panel per phase, both runs in each


def test_timeline_bars_merge_below_a_pixel():
    """Back-to-back ops draw as one bar; spans further apart than ``eps`` stay apart; a span
    inside another (an op overlapping a longer one) adds nothing."""
    import numpy as np

    starts, widths = timeline.merge_spans(np.arange(100_000.0), np.ones(100_000), 0.5)
    assert (starts.tolist(), widths.tolist()) == ([0.0], [100_000.0])
    starts, widths = timeline.merge_spans(np.array([5.0, 0.0, 1.0, 5.2]), np.array([1.0, 3.0, 0.5, 0.3]), 0.5)
    assert (starts.tolist(), widths.tolist()) == ([0.0, 5.0], [3.0, 1.0])


def test_dram_profile_is_the_exact_mean_bus_share_per_bin():
    """Two ops: 0.5 of the bus over [0, 4) and 1.0 over [2, 3); bins of width 2."""
    import numpy as np

    starts, totals, rates = np.array([0.0, 2.0]), np.array([4.0, 1.0]), np.array([0.5, 1.0])
    profile = timeline.dram_profile(starts, totals, rates, np.array([0.0, 2.0, 4.0, 6.0]))
    assert profile.tolist() == pytest.approx([0.5, 1.0, 0.0])


@pytest.mark.parametrize("case", ["huge", "tiny", "single", "zero_energy"])
def test_extreme_but_valid_values_draw(case, tmp_path):
    """Cycle counts of 10^30 and of 1, one op, and components that cost nothing: every plot draws."""
    ops, layers, summary = _synthetic_run(1, cycles={"huge": 10**30, "tiny": 1}.get(case, 1000),
                                          ops_per_layer=1 if case == "single" else 3)
    if case == "zero_energy":
        for run in summary["runs"].values():
            run["energy_breakdown_pj"] = dict.fromkeys(run["energy_breakdown_pj"], 0.0)
    hw = yaml.safe_load((HWCONFIGS / "int4-32x32.yaml").read_text())
    hw["dram"]["bandwidth_gbps"] = 1e-300 if case == "huge" else hw["dram"]["bandwidth_gbps"]
    config = {"hardware": hw, "baseline_hardware": hw}
    draws = dict(timeline.plots_from_ops(ops, summary))
    draws["speedup_by_layer.png"] = pk.drawer(lambda: run_plots.speedup_figure(layers, summary))
    draws["roofline.png"] = pk.drawer(lambda: run_plots.roofline_figure(ops, config, summary))
    draws["energy_breakdown.png"] = pk.drawer(lambda: run_plots.energy_figure(summary))
    drawn = {name for name, draw in draws.items() if draw(tmp_path / name)}
    expected = set(draws) - ({"energy_breakdown.png"} if case == "zero_energy" else set())
    assert drawn == expected
    assert all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name in drawn)


def test_plot_of_a_damaged_folder_is_bad_input(run_dir, tmp_path, cli):
    folder = tmp_path / "damaged"
    folder.mkdir()
    for name in ("summary.json", "config.resolved.yaml", "ops.csv", "layers.csv"):
        (folder / name).write_bytes((run_dir / name).read_bytes())
    (folder / "summary.json").write_text('{"version": 1, "runs": ')
    code, _, err = cli("plot", folder)
    assert code == 2
    assert err.count("\n") == 1 and f"{folder / 'summary.json'}: line 1: damaged: not valid JSON" in err
    (folder / "summary.json").write_bytes((run_dir / "summary.json").read_bytes())
    (folder / "ops.csv").unlink()
    code, _, err = cli("plot", folder)
    assert (code, err) == (2, f"accelsim: error: {folder / 'ops.csv'}: missing; re-run the command that wrote the folder\n")
    (folder / "ops.csv").write_bytes((run_dir / "ops.csv").read_bytes())
    (folder / "config.resolved.yaml").write_text("hardware: {name: x}\n")  # valid YAML, fields gone
    code, _, err = cli("plot", folder)
    assert code == 2 and err.startswith(f"accelsim: error: {folder}") and err.count("\n") == 1
    assert err.count("\n") == 1


# ------------------------------------------------------------------------------------------------
# sweeps

AXES = ("array.rows", "array.cols")


def _results(path: Path, points: list[tuple[tuple, float, float]], *, failed: tuple = ()) -> Path:
    """A results.csv with the sweep store's columns: per point (axis values, policy time s,
    policy energy pJ); the baseline takes twice as long and three times the energy."""
    from accelsim.sweep import csv_columns

    axes = list(AXES[: len(points[0][0])])
    rows = []
    for i, (values, t, e) in enumerate(points):
        row = {c: "" for c in csv_columns(axes)}
        row.update(dict(zip(axes, values)), index=i, status="ok", key=f"k{i}", policy_time_s=t, policy_energy_pj=e,
                   policy_cycles=int(t * 1e9), baseline_time_s=2 * t, baseline_energy_pj=3 * e, speedup=2.0,
                   energy_ratio=3.0, policy_utilization=0.5, baseline_utilization=0.4)
        rows.append(row)
    for j, values in enumerate(failed, len(rows)):
        row = {c: "" for c in csv_columns(axes)}
        row.update(dict(zip(axes, values)), index=j, status="failed", key=f"k{j}", error="one fold does not fit")
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_csv(csv_columns(axes), rows))
    return path.parent


#: (rows, cols) -> (time s, energy pJ): fastest (64, 64) #3, least energy (16, 64) #1, least
#: EDP (32, 32) #2: 0.02 s × 2e11 = 4e9 against 0.01 × 5e11 = 5e9 and 0.04 × 1e11 = 4e9 (a tie
#: that the first in results.csv wins: #1). Front by time: #3, #2, #1; #0 is dominated.
GRID = [((16, 16), 0.05, 3e11), ((16, 64), 0.04, 1e11), ((32, 32), 0.02, 2e11), ((64, 64), 0.01, 5e11)]


def test_sweep_report_from_results_csv_alone(tmp_path):
    folder = _results(tmp_path / "sweep-arr" / "results.csv", GRID, failed=[(64, 16)])
    drawn = sweep_report.write_sweep_report(folder, "summary")
    assert drawn == ["pareto.png", "heatmap_speedup.png", "heatmap_energy_ratio.png", "heatmap_policy_edp.png"]
    report = (folder / "report.md").read_text()
    assert report.startswith("# Sweep `arr`\n\n5 points over 2 axes: 4 ran, 1 failed.")
    assert "| `array.rows` | 16, 32, 64 |" in report and "| `array.cols` | 16, 32, 64 |" in report
    best = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1] for line in report.splitlines()
            if line.startswith("| time") or line.startswith("| energy")}
    assert best == {"time": "3", "energy, energy × delay": "1"}
    assert "| speedup vs baseline, energy ratio vs baseline | 0 |" in report  # all tie: the first
    front = report.split("## Pareto front")[1].split("##")[0]
    assert [line.split(" | ")[0].lstrip("| ") for line in front.splitlines() if line.startswith("| ") and line[2].isdigit()] == ["3", "2", "1"]
    assert "| 4 | 64 | 16 | one fold does not fit |" in report
    assert all(f"](plots/{name})" in report for name in drawn)
    table = sweep_report.best_points_table(folder)  # what `accelsim sweep` prints
    assert table.columns[0]._cells == ["time", "energy\nenergy × delay"]
    assert table.columns[1]._cells == ["#3: rows=64, cols=64", "#1: rows=16, cols=64"]
    # `accelsim plot` redraws from results.csv alone: all levels, same report head
    assert sweep_report.write_sweep_report(folder, "all")[:4] == drawn
    assert (folder / "plots" / "heatmap_policy_time_s.png").is_file()


def test_heatmap_values_carry_their_prefix_and_the_title_clears_the_colour_bar(tmp_path):
    _, rows, _ = sweep_plots.read_results(_results(tmp_path / "s" / "results.csv", GRID) / "results.csv")
    metric = next(m for m in sweep_plots.METRICS if m.column == "policy_edp")
    fig = sweep_plots.heatmap_figure(rows, list(AXES), metric, "sweep s, 4 points")
    renderer = _draw(fig)
    image_ax, bar_ax = fig.axes
    assert bar_ax.get_ylabel() == "mJ·s"  # 4e9 pJ·s = 4 mJ·s
    assert bar_ax.yaxis.get_offset_text().get_text() == ""
    title = fig.texts[-1].get_window_extent(renderer)
    assert not _overlap(title, bar_ax.get_window_extent(renderer))
    assert not _overlap(title, image_ax.get_window_extent(renderer))
    assert "mJ·s" in fig.texts[-1].get_text()


def test_one_axis_plot_starts_at_zero_so_a_small_change_looks_small(tmp_path):
    points = [((r,), 0.1 * (1 + 0.0008 * k), 1e11) for k, r in enumerate((8, 16, 32))]
    _, rows, _ = sweep_plots.read_results(_results(tmp_path / "s" / "results.csv", points) / "results.csv")
    metric = next(m for m in sweep_plots.METRICS if m.column == "policy_time_s")
    fig = sweep_plots.line_figure(rows, "array.rows", metric, "sweep s")
    ax = fig.axes[0]
    assert ax.get_ylim()[0] == 0.0 and ax.get_ylabel() == "ms"
    assert [line.get_label() for line in ax.get_lines()] == ["4-bit policy", "16-bit baseline"]
    assert "varies by 0.16% over array.rows" in fig.texts[-1].get_text()


def test_pareto_labels_never_overlap_however_close_the_points(tmp_path):
    """Twelve front points a hair apart: numbered labels in a column, none on another."""
    points = [((r, c), 0.01 * (1 + 0.001 * k), 1e11 * (1 - 0.001 * k)) for k, (r, c) in
              enumerate((r, c) for r in (8, 16, 32, 64) for c in (8, 16, 32))]
    _, rows, _ = sweep_plots.read_results(_results(tmp_path / "s" / "results.csv", points) / "results.csv")
    assert len(sweep_plots.front_rows(rows)) == 12
    fig = sweep_plots.pareto_figure(rows, list(AXES), "sweep s")
    renderer = _draw(fig)
    from matplotlib.text import Text

    numbers = [t for t in fig.axes[0].texts if t.get_text().isdigit()]
    assert sorted(int(t.get_text()) for t in numbers) == list(range(1, 13))
    boxes = [Text.get_window_extent(t, renderer) for t in numbers]  # the number, not its leader line
    for a, b in combinations(boxes, 2):
        assert not _overlap(a, b)


def test_plots_the_results_no_longer_support_are_removed(tmp_path):
    folder = _results(tmp_path / "s" / "results.csv", GRID)
    sweep_plots.plot_sweep(folder, "summary")
    assert (folder / "plots" / "heatmap_speedup.png").is_file()
    _results(folder / "results.csv", [((r,), 0.01 * r, 1e11) for r in (8, 16)])  # re-run with one axis
    assert sweep_plots.plot_sweep(folder, "summary")[1:] == ["line_speedup.png", "line_energy_ratio.png", "line_policy_edp.png"]
    assert not list((folder / "plots").glob("heatmap_*.png"))


# ------------------------------------------------------------------------------------------------
# compare


def test_compare_puts_runs_and_sweeps_side_by_side(run_dir, tmp_path, cli):
    sweep_dir = _results(tmp_path / "sweep-arr" / "results.csv", GRID)
    md = tmp_path / "cmp.md"
    code, stdout, err = cli("compare", run_dir, sweep_dir, "--md", md)
    assert code == 0, err
    entries = load_entries([run_dir, sweep_dir])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert entries[0].speedup == pytest.approx(summary["speedup"]) and entries[0].folder == "rep"
    assert len(entries) == 1 + 4  # a sweep of at most six points shows them all
    assert [e.time_s for e in entries[1:]] == [t for _, t, _ in GRID]
    assert "rep" in stdout and "sweep-arr #3" in stdout and f"{summary['speedup']:.3g}x" in stdout
    lines = md.read_text().splitlines()
    assert lines[0] == "# Comparison" and sum(line.startswith("| ") for line in lines) == 1 + len(entries)


def test_compare_names_each_folder_that_is_neither(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    code, stdout, err = cli("compare", tmp_path / "empty", tmp_path / "missing")
    assert code == 2 and stdout == ""
    assert err.splitlines() == [
        f"accelsim: error: {tmp_path / 'empty'}: is neither a run folder (summary.json) nor a sweep folder (results.csv)",
        f"accelsim: error: {tmp_path / 'missing'}: does not exist",
    ]


# ------------------------------------------------------------------------------------------------
# start-up


def test_validate_and_trace_never_import_matplotlib(tmp_path):
    """matplotlib costs a large part of a second to import; only a drawn plot may import it."""
    script = (
        "import sys\n"
        "from accelsim.cli import main\n"
        f"assert main(['validate', {str(WORKLOADS / 'resnet50.yaml')!r}, {str(HWCONFIGS / 'int4-32x32.yaml')!r},"
        f" {str(WORKLOADS / 'resnet18-sweep.yaml')!r}]) == 0\n"
        f"assert main(['trace', {str(WORKLOADS / 'resnet18.yaml')!r}, '-o', {str(tmp_path / 't.jsonl')!r}]) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.splitlines()[-1] == "[]"


def test_memory_stall_is_a_share_of_the_ops_time():
    """Units stall in parallel, so their stalls can add up to more than the makespan (a memory-bound
    step once printed 128 %); the share is taken of the ops' summed spans, and stays within 0..1."""
    from accelsim.report.text import stall_share

    result = api.run(WORKLOADS / "resnet18.yaml", HWCONFIGS / "int4-16x16-membound.yaml", write=False,
                     sets=["data.batch_size=2"])
    for label in ("policy", "baseline"):
        run = result.summary["runs"][label]
        step = (result.policy if label == "policy" else result.baseline).step
        assert run["op_cycles_per_step"] == sum(r.total_cycles for r in step.ops) > run["cycles_per_step"]
        assert 0.3 < stall_share(run) < 1.0
        assert stall_share(run) == run["stall_cycles_per_step"] / run["op_cycles_per_step"]
