"""Sweeps: Dask gives exactly the local executor's results; a sweep killed with SIGKILL and re-run
completes every point once; a failing point is recorded while the rest finish; bad sweep files
exit 2."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accelsim import sweep
from accelsim.errors import InputError

from conftest import HW_TEXT, WORKLOAD_TEXT, write


@pytest.fixture
def base(tmp_path):
    wl = write(tmp_path / "wl.yaml", WORKLOAD_TEXT)
    hw = write(tmp_path / "hw.yaml", HW_TEXT)
    return wl, hw


def _sweep_file(tmp_path: Path, body: str) -> Path:
    return write(tmp_path / "sweep.yaml", "version: 1\nname: s\nworkload: wl.yaml\nhardware: hw.yaml\n" + body)


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_grid_and_zip_points(tmp_path, base):
    path = _sweep_file(tmp_path, "grid: {array.rows: [4, 8], array.cols: [4, 8, 16]}\n"
                                  "zip: {sram.ifmap_kib: [32, 64], sram.filter_kib: [16, 32]}\n")
    plan = sweep.load_sweep_file(path)
    points = sweep.plan_points(plan)
    assert len(points) == 2 * 3 * 2
    assert points[1].params == (("array.rows", 4), ("array.cols", 4), ("sram.ifmap_kib", 64), ("sram.filter_kib", 32))
    assert len({p.key for p in points}) == len(points)


def test_dask_local_cluster_matches_local_processes(tmp_path, base, cli):
    """The same small sweep on a Dask LocalCluster on loopback and on local processes: same CSV."""
    wl, hw = base
    grid = ["--grid", "array.rows=4,8", "--grid", "array.dataflow=os,ws"]
    code, _, err = cli("sweep", wl, hw, *grid, "--out", tmp_path / "local", "--jobs", "2")
    assert code == 0, err
    code, _, err = cli("sweep", wl, hw, *grid, "--out", tmp_path / "dask", "--jobs", "2", "--executor", "dask")
    assert code == 0, err
    local = (tmp_path / "local" / "results.csv").read_bytes()
    assert local == (tmp_path / "dask" / "results.csv").read_bytes()
    # and submitted to an already running scheduler (--scheduler), as on a real cluster
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        code, _, err = cli("sweep", wl, hw, *grid, "--out", tmp_path / "remote", "--scheduler", cluster.scheduler_address)
    assert code == 0, err
    assert local == (tmp_path / "remote" / "results.csv").read_bytes()
    rows = _csv(tmp_path / "local" / "results.csv")
    assert [(r["array.rows"], r["array.dataflow"], r["status"]) for r in rows] == [
        ("4", "os", "ok"), ("4", "ws", "ok"), ("8", "os", "ok"), ("8", "ws", "ok"),
    ]
    # more rows never cost cycles on this compute-bound toy: 8 rows beat 4
    assert int(rows[2]["policy_cycles"]) < int(rows[0]["policy_cycles"])
    assert (tmp_path / "local" / "plots" / "heatmap_speedup.png").is_file()


def test_failing_point_is_recorded_and_the_rest_finish(tmp_path, base, cli):
    """A point whose trace needs a mode the machine lacks (HFP8 here) fails; the others run; exit 3."""
    wl, hw = base
    code, out, err = cli(
        "sweep", wl, hw, "--grid", "array.rows=4,8", "--grid", "precision=int4,hfp8",
        "--out", tmp_path / "s", "--jobs", "1",
    )
    assert code == 3
    rows = _csv(tmp_path / "s" / "results.csv")
    assert [r["status"] for r in rows] == ["ok", "failed", "ok", "failed"]
    assert "has no mode for fp8e4m3 x fp8e4m3" in rows[1]["error"]
    assert "4 points: 2 run, 0 already done, 2 failed" in out


def test_sigkill_then_resume_runs_every_point_once(tmp_path, base):
    """Kill the sweep process with SIGKILL after some points finished; the re-run completes the
    rest, skips the finished ones, and the store holds each point exactly once."""
    wl, hw = base
    args = [sys.executable, "-m", "accelsim.cli", "sweep", str(wl), str(hw),
            "--grid", "array.rows=2,3,4,5,6,7,8,9,10,11,12,13", "--grid", "array.cols=4,8",
            "--out", str(tmp_path / "s"), "--jobs", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = tmp_path / "s" / "results.sqlite"
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline:
        if store.exists():
            try:
                with sqlite3.connect(store) as db:
                    done = db.execute("SELECT count(*) FROM points").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
        if done >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= done < 24, "the sweep should be killed part-way"
    with sqlite3.connect(store) as db:
        before = db.execute("SELECT count(*) FROM points WHERE status = 'ok'").fetchone()[0]
        assert db.execute("SELECT count(*) FROM points WHERE summary IS NULL AND status = 'ok'").fetchone()[0] == 0
    rerun = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"24 points: {24 - before} run, {before} already done, 0 failed" in rerun.stdout
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT count(*), count(DISTINCT key), min(idx), max(idx) FROM points").fetchone() == (24, 24, 0, 23)
    assert len(_csv(tmp_path / "s" / "results.csv")) == 24


@pytest.mark.parametrize(
    "body, message",
    [
        ("grid: {array.rowz: [4, 8]}\n",
         "sweep.yaml: grid.array.rowz: unknown field path 'array.rowz'; did you mean 'array.rows'?"),
        ("zip: {array.rows: [4, 8], array.cols: [4]}\n",
         "sweep.yaml: zip: zipped axes must have the same number of values, got [1, 2]"),
        ("grid: {array.rows: [4, -1]}\n",
         "hw.yaml: array.rows: must be greater than or equal to 1; got -1 (point 1: array.rows=-1)"),
        ("grid: {}\n", "sweep.yaml: a sweep needs at least one axis in 'grid' or 'zip'"),
        ("grid: {array.rows: [4]}\nworkers: 3\n", "sweep.yaml: workers: unknown key 'workers'"),
    ],
)
def test_bad_sweep_files_exit_2(tmp_path, base, cli, body, message):
    path = _sweep_file(tmp_path, body)
    code, out, err = cli("sweep", path, "--out", tmp_path / "out")
    assert code == 2
    assert message in err.replace(str(tmp_path) + "/", "")
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_inline_grid_errors(tmp_path, base):
    wl, hw = base
    with pytest.raises(InputError, match=r"--grid: array.rows: expected PATH=V1,V2"):
        sweep.inline_plan(wl, hw, ["array.rows"])


def test_trained_workload_is_trained_once_per_precision(tmp_path):
    """Sweeping the hardware of a trained workload trains each precision once: the first wave
    fills the cache, every other point reads it."""
    from conftest import HWCONFIGS, WORKLOADS

    plan = sweep.inline_plan(
        WORKLOADS / "mlp-digits.yaml", HWCONFIGS / "int4-32x32.yaml", ["array.rows=8,16,32"],
    )
    plan = sweep.SweepPlan(plan.name, plan.workload, plan.hardware, None, plan.grid, fixed=(("training.epochs", 1),))
    outcome = sweep.run_sweep(plan, tmp_path / "reports" / "s", jobs=2)
    assert (outcome.ok, outcome.failed) == (3, 0)
    assert len(list((tmp_path / "reports" / ".cache" / "training").glob("*.json"))) == 2 * 3  # two precisions, three seeds
    rows = _csv(tmp_path / "reports" / "s" / "results.csv")
    assert len({r["policy_accuracy"] for r in rows}) == 1 and rows[0]["policy_accuracy"] != ""


def test_set_fixes_a_field_at_every_point(tmp_path, base):
    """`accelsim sweep WL HW --grid ... --set PATH=VALUE` sets the field at every point (as a sweep
    file's fixed: does, overriding its value there); a field that is also an axis is refused."""
    wl, hw = base
    plan = sweep.inline_plan(wl, hw, ["array.rows=8,16"], fixed=["array.cols=8", "sram.ifmap_kib=64"])
    assert plan.fixed == (("array.cols", 8), ("sram.ifmap_kib", 64))
    points = sweep.plan_points(plan)
    assert [p.params for p in points] == [(("array.rows", 8),), (("array.rows", 16),)]
    assert all(p.sets[:2] == ("array.cols=8", "sram.ifmap_kib=64") for p in points)
    with pytest.raises(InputError, match=r"--set: array.rows: is an axis of the sweep"):
        sweep.inline_plan(wl, hw, ["array.rows=8,16"], fixed=["array.rows=4"])
    with pytest.raises(InputError, match=r"--set: nonsense: expected PATH=VALUE"):
        sweep.inline_plan(wl, hw, ["array.rows=8,16"], fixed=["nonsense"])
    again = sweep.with_fixed(plan, (("array.cols", 16),))
    assert dict(again.fixed) == {"array.cols": 16, "sram.ifmap_kib": 64}
