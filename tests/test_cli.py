"""`accelsim run` end to end on the shipped examples: exit codes, report files, the summary.json
and ops.csv contract, determinism, and a report folder that is replaced whole or not at all."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import yaml

from accelsim import api

from conftest import HWCONFIGS, WORKLOADS

RUN_KEYS = {
    "precision", "hardware", "steps", "cycles", "time_s", "energy_pj", "energy_breakdown_pj",
    "area_mm2", "utilization", "accuracy",
}
SUMMARY_KEYS = {
    "version", "workload", "hardware", "precision", "baseline_precision", "runs", "speedup",
    "energy_ratio", "accuracy_delta",
}
OPS_CONTRACT = [
    "index", "layer", "phase", "kind", "m", "n", "k", "elements", "a_format", "b_format", "mode",
    "macs", "compute_cycles", "stall_cycles", "total_cycles", "utilization", "dram_read_bits",
    "dram_write_bits", "energy_pj",
]
ANALYTIC = ["resnet18", "resnet50", "mobilenet-v2", "bert-base"]
#: one training step on int4-32x32 vs fp16-32x32 (event model, 45 nm): cycles of both runs,
#: speedup, energy ratio (int4-32x32 priced with shared multi-precision PEs: array.pe_area)
PINNED = {
    "resnet18": (120_042_119, 244_232_896, 2.03456, 3.166901),
    "resnet50": (389_296_540, 659_176_471, 1.69325, 2.06196),
    "mobilenet-v2": (446_300_530, 520_884_270, 1.167116, 1.79751),
    "bert-base": (141_489_578, 384_803_423, 2.719659, 3.357821),
}


@pytest.mark.parametrize("name", ANALYTIC)
def test_run_shipped_workload(name, cli, tmp_path):
    out = tmp_path / name
    code, stdout, err = cli("run", WORKLOADS / f"{name}.yaml", HWCONFIGS / "int4-32x32.yaml", "--out", out)
    assert code == 0, err
    assert "speedup" in stdout and f"report: {out}" in stdout
    assert sorted(p.name for p in out.iterdir()) == [
        ".accelsim-report", "config.resolved.yaml", "layers.csv", "ops.csv", "plots", "report.md", "summary.json",
    ]
    plots = {p.name for p in (out / "plots").iterdir()}
    assert {"roofline.png", "speedup_by_layer.png", "energy_breakdown.png"} <= plots
    report = (out / "report.md").read_text()
    assert all(f"](plots/{name})" in report for name in plots)  # every plot is in the report
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    policy_cycles, baseline_cycles, speedup, energy_ratio = PINNED[name]
    assert (summary["runs"]["policy"]["cycles"], summary["runs"]["baseline"]["cycles"]) == (policy_cycles, baseline_cycles)
    assert summary["speedup"] == pytest.approx(speedup, rel=1e-5)
    assert summary["energy_ratio"] == pytest.approx(energy_ratio, rel=1e-5)
    for label in ("policy", "baseline"):
        run = summary["runs"][label]
        assert RUN_KEYS <= set(run)
        # analytic workloads are timed, not trained: accuracy is null, never invented
        assert run["accuracy"] is None
        assert run["energy_pj"] == pytest.approx(sum(run["energy_breakdown_pj"].values()), rel=1e-12)
        assert set(run["energy_breakdown_pj"]) == {"mac", "sram", "dram", "rescale", "vector", "leakage"}
        assert run["area_mm2"] > 0
        assert 0 < run["utilization"] <= 1
        assert run["cycles"] >= run["ideal_compute_cycles_per_step"] * run["steps"]
    assert summary["speedup"] == pytest.approx(
        summary["runs"]["baseline"]["time_s"] / summary["runs"]["policy"]["time_s"]
    )
    assert summary["accuracy_delta"] is None
    assert summary["energy_ratio"] == pytest.approx(
        summary["runs"]["baseline"]["energy_pj"] / summary["runs"]["policy"]["energy_pj"]
    )
    with open(out / "ops.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert set(OPS_CONTRACT) <= set(reader.fieldnames)
    assert {r["run"] for r in rows} == {"policy", "baseline"}
    for label in ("policy", "baseline"):  # per-op energies add up to the step's energy
        step_pj = sum(float(r["energy_pj"]) for r in rows if r["run"] == label)
        run = summary["runs"][label]
        assert step_pj * run["steps"] == pytest.approx(run["energy_pj"], rel=1e-9)
    for r in rows:
        assert int(r["total_cycles"]) == int(r["compute_cycles"]) + int(r["stall_cycles"])
        assert int(r["stall_cycles"]) >= 0 and 0 <= float(r["utilization"]) <= 1
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["precision"]["fwd_weight"] in ("int4", "fp16")
    assert resolved["hardware"]["array"]["rows"] == 32


def test_pinned_figures_resnet18(tmp_path):
    """Pinned cycles and energy ratio of the shipped resnet18 example (event model, 45 nm)."""
    result = api.run(WORKLOADS / "resnet18.yaml", HWCONFIGS / "int4-32x32.yaml", write=False)
    s = result.summary
    assert s["runs"]["policy"]["macs_per_step"] == 3 * 32 * 1814073344 - 32 * 118013952
    assert s["runs"]["policy"]["cycles"] == 120_042_119
    assert s["runs"]["baseline"]["cycles"] == 244_232_896
    assert s["speedup"] == pytest.approx(2.034560, rel=1e-6)
    assert s["energy_ratio"] == pytest.approx(3.166901, rel=1e-6)


def test_deterministic_summary(tmp_path, cli):
    """Same inputs -> byte-identical summary.json and ops.csv."""
    args = (WORKLOADS / "mobilenet-v2.yaml", HWCONFIGS / "int4-32x32.yaml")
    assert cli("run", *args, "--out", tmp_path / "a")[0] == 0
    assert cli("run", *args, "--out", tmp_path / "b")[0] == 0
    for name in ("summary.json", "ops.csv", "layers.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_rerun_replaces_report_but_never_a_foreign_folder(tmp_path, cli):
    args = (WORKLOADS / "resnet18.yaml", HWCONFIGS / "int4-32x32.yaml")
    out = tmp_path / "r"
    assert cli("run", *args, "--out", out)[0] == 0
    (out / "stale.txt").write_text("old")  # a file accelsim did not write stops the replacement
    code, _, err = cli("run", *args, "--out", out)
    assert code == 2 and "holds stale.txt, which accelsim did not write; refusing to replace it" in err
    assert (out / "stale.txt").read_text() == "old"
    (out / "stale.txt").unlink()
    assert cli("run", *args, "--out", out)[0] == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    code, _, err = cli("run", *args, "--out", mine)
    assert code == 2
    assert "exists, is not empty and was not written by accelsim; refusing to replace it" in err
    assert (mine / "thesis.tex").read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_baseline_hw_option_and_default(tmp_path):
    """The baseline machine: --baseline-hw, else the hardware file's baseline:, else the same machine."""
    wl = WORKLOADS / "resnet18.yaml"
    r = api.run(wl, HWCONFIGS / "int4-32x32.yaml", write=False)
    assert r.summary["baseline_hardware"] == "fp16-32x32"
    r = api.run(wl, HWCONFIGS / "rapid-like.yaml", write=False)
    assert r.summary["baseline_hardware"] == "rapid-like"
    assert "the same machine (rapid-like) in its 16-bit mode" in r.summary["baseline_hardware_source"]
    r = api.run(wl, HWCONFIGS / "rapid-like.yaml", baseline_hw=HWCONFIGS / "fp16-32x32.yaml", write=False)
    assert r.summary["baseline_hardware"] == "fp16-32x32"
    assert r.summary["baseline_hardware_source"].endswith("(--baseline-hw)")


def test_console_script_end_to_end(tmp_path):
    """The installed entry point runs as a user would: exit 0, then exit 2 on a missing file."""
    ok = subprocess.run(
        [sys.executable, "-m", "accelsim.cli", "run", str(WORKLOADS / "bert-base.yaml"),
         str(HWCONFIGS / "rapid-like.yaml"), "--out", str(tmp_path / "b")],
        capture_output=True, text=True, timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "accelsim.cli", "run", str(tmp_path / "nope.yaml"), str(HWCONFIGS / "rapid-like.yaml")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert bad.returncode == 2
    assert bad.stderr == f"accelsim: error: {tmp_path / 'nope.yaml'}: YAML file not found\n"
    assert not (tmp_path / "reports").exists()
