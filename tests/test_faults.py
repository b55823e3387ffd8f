"""Faults: a sweep killed with SIGKILL or SIGTERM takes its workers with it and releases its output
pipe; a worker that dies costs one retry, then its point is recorded as failed, and the sweep goes
on (local processes and Dask); a damaged results.sqlite is set aside and what can be read of it
kept; a report folder being replaced is never missing for a reader; stale staging is cleaned;
``trace -o`` never replaces a symlink or a special file; modes follow the umask."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from accelsim import api, sweep
from accelsim.report import files

from conftest import HW_TEXT, WORKLOAD_TEXT, write
from faultpoints import flaky_point

GRID = "array.rows=" + ",".join(str(r) for r in range(2, 42))  # 40 points of a few tenths of a second


@pytest.fixture
def base(tmp_path):
    return write(tmp_path / "wl.yaml", WORKLOAD_TEXT), write(tmp_path / "hw.yaml", HW_TEXT)


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _points_stored(store: Path) -> int:
    try:
        with sqlite3.connect(store) as db:
            return db.execute("SELECT count(*) FROM points").fetchone()[0]
    except sqlite3.Error:
        return 0


def _start_sweep(
    tmp_path: Path, wl: Path, hw: Path, wait_points: int = 2, grid: str = GRID,
) -> tuple[subprocess.Popen, list[int]]:
    """Start ``accelsim sweep`` on 2 workers with its output on pipes; return it once it has
    finished ``wait_points`` points, with the processes it started."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "accelsim.cli", "sweep", str(wl), str(hw), "--grid", grid,
         "--out", str(tmp_path / "s"), "--jobs", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )
    deadline = time.monotonic() + 120
    while _points_stored(tmp_path / "s" / "results.sqlite") < wait_points:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc, _children(proc.pid)


def _read_to_eof(stream, timeout: float) -> tuple[bytes, float]:
    """Read a pipe until every writer has closed it; the time that took."""
    box: dict[str, bytes] = {}
    start = time.monotonic()
    reader = threading.Thread(target=lambda: box.setdefault("data", stream.read()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert not reader.is_alive(), "something still holds the sweep's output pipe open"
    return box["data"], time.monotonic() - start


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_sweep_takes_its_workers_and_releases_its_pipes(sig, tmp_path, base):
    """`accelsim sweep … | tee` ends: after the sweep's process is killed, its workers (and
    multiprocessing's resource tracker) are gone within seconds and nothing holds stdout or stderr."""
    proc, started = _start_sweep(tmp_path, *base)
    assert len(started) >= 2  # the workers (and the resource tracker)
    os.kill(proc.pid, sig)
    out, out_s = _read_to_eof(proc.stdout, timeout=10)
    err, _ = _read_to_eof(proc.stderr, timeout=10)
    proc.wait(10)
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in started if _alive(p)] == []
    if sig == signal.SIGTERM:
        assert proc.returncode == 143
        assert err.decode().strip().endswith("accelsim: terminated")
    else:
        assert proc.returncode == -signal.SIGKILL
    # finished points are kept, no staging is left beside the sweep folder, and a re-run resumes
    done = _points_stored(tmp_path / "s" / "results.sqlite")
    assert 2 <= done < 40
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_sigkill_of_one_worker_costs_a_retry_not_the_sweep(tmp_path, base):
    """A pool worker killed in the middle of a point: the point runs again on a fresh worker, the
    sweep finishes every point, exit 0 (it used to abort with BrokenProcessPool)."""
    proc, started = _start_sweep(tmp_path, *base, grid="array.rows=" + ",".join(str(r) for r in range(2, 10)))
    workers = [p for p in started if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()]
    os.kill(workers[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    assert "8 points: 8 run, 0 already done, 0 failed" in out.decode()
    with sqlite3.connect(tmp_path / "s" / "results.sqlite") as db:
        assert db.execute("SELECT count(*), count(DISTINCT idx) FROM points WHERE status = 'ok'").fetchone() == (8, 8)


def _tasks(n: int, cache: Path) -> list[dict]:
    return [{"key": f"k{i}", "index": i, "params": [], "cache_dir": str(cache)} for i in range(n)]


def test_dead_local_worker_point_retried_once_then_failed(tmp_path):
    """The pool's bookkeeping, with workers that die on purpose: the point whose worker dies once
    succeeds on its retry; the one whose worker dies twice is recorded failed with how it died;
    every other point finishes."""
    results = list(sweep._run_local([_tasks(6, tmp_path)], 2, None, fn=flaky_point))
    by_index = {r["index"]: r for r in results}
    assert sorted(by_index) == [0, 1, 2, 3, 4, 5] and len(results) == 6
    assert by_index[1]["status"] == "failed"
    assert by_index[1]["error"] == (
        "the worker process running this point died twice (exit code 3); it was not retried again"
    )
    assert all(by_index[i]["status"] == "ok" for i in (0, 2, 3, 4, 5))
    assert (tmp_path / "died-2").read_text() == "once"


def test_dead_dask_worker_point_recorded_failed_and_sweep_goes_on(tmp_path):
    """On Dask, a point that kills its worker every time ends as KilledWorker after the
    scheduler's retries: recorded as failed, and the other points finish."""
    import dask
    from distributed import LocalCluster

    # one task at a time per worker, so that only the point that kills its worker is blamed for it
    config = {"distributed.scheduler.allowed-failures": 1, "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(config):
        with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
            results = list(sweep._run_dask([_tasks(4, tmp_path)], None, cluster.scheduler_address, fn=flaky_point))
    by_index = {r["index"]: r for r in results}
    assert sorted(by_index) == [0, 1, 2, 3]
    assert by_index[1]["status"] == "failed" and "the Dask workers running this point died" in by_index[1]["error"]
    assert all(by_index[i]["status"] == "ok" for i in (0, 2, 3))


def test_damaged_store_set_aside_and_salvaged(tmp_path, base, cli):
    """A results.sqlite that is not a database is moved aside and the sweep runs again; one with a
    damaged page keeps the points SQLite can still read."""
    wl, hw = base
    out = tmp_path / "s"
    grid = ["--grid", "array.rows=" + ",".join(str(r) for r in range(2, 10))]
    assert cli("sweep", wl, hw, *grid, "--out", out, "--jobs", "1")[0] == 0
    store = out / "results.sqlite"
    size = store.stat().st_size
    with open(store, "r+b") as fh:  # overwrite the file's last page (the newest rows)
        fh.seek(size - 4096)
        fh.write(b"\xff" * 4096)
    code, stdout, err = cli("sweep", wl, hw, *grid, "--out", out, "--jobs", "1")
    assert code == 0, err
    assert len(err.strip().splitlines()) == 1, err
    note = err.strip()
    match = re.fullmatch(
        rf"accelsim: note: {re.escape(str(store))} was damaged \((.+)\); it was moved to (results\.sqlite\.damaged-[0-9-]+) "
        r"and (\d+) finished points? recovered from it; the others run again", note,
    )
    assert match, note
    recovered = int(match[3])
    assert 0 < recovered < 8
    assert f"8 points: {8 - recovered} run, {recovered} already done, 0 failed" in stdout
    aside = [p.name for p in out.iterdir() if p.name.startswith("results.sqlite.damaged-")]
    assert match[2] in aside and all(name.startswith(match[2]) for name in aside)  # with its -wal, -shm
    store.write_bytes(b"not a database at all" * 50)
    for companion in ("results.sqlite-wal", "results.sqlite-shm"):
        (out / companion).unlink(missing_ok=True)
    code, stdout, err = cli("sweep", wl, hw, *grid, "--out", out, "--jobs", "1")
    assert code == 0, err
    assert "(file is not a database)" in err and "0 finished points recovered" in err
    assert "8 points: 8 run, 0 already done, 0 failed" in stdout
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT count(*) FROM points WHERE status = 'ok'").fetchone()[0] == 8


def test_sweep_folder_replaced_whole(tmp_path, base, cli):
    """A re-run with other axes leaves no plot of the old axes; a file the user put in the folder
    stops the sweep (and stays)."""
    wl, hw = base
    out = tmp_path / "s"
    assert cli("sweep", wl, hw, "--grid", "array.rows=4,8", "--grid", "array.cols=4,8", "--out", out, "--jobs", "1")[0] == 0
    assert (out / "plots" / "heatmap_speedup.png").is_file()
    assert cli("sweep", wl, hw, "--grid", "array.rows=4,8,16", "--out", out, "--jobs", "1")[0] == 0
    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert plots and all(not name.startswith("heatmap_") for name in plots) and "line_speedup.png" in plots
    assert sorted(p.name for p in out.iterdir()) == [".accelsim-report", "plots", "report.md", "results.csv", "results.sqlite"]
    (out / "notes.md").write_text("mine")
    code, _, err = cli("sweep", wl, hw, "--grid", "array.rows=4,8,16", "--out", out, "--jobs", "1")
    assert code == 2 and "holds notes.md, which accelsim did not write" in err
    assert (out / "notes.md").read_text() == "mine"


def _report(folder: Path, version: int) -> None:
    (folder / "summary.json").write_text(json.dumps({"version": version, "pad": "x" * 20000}))
    (folder / "plots").mkdir()
    (folder / "plots" / f"plot{version % 3}.png").write_bytes(b"png")


def test_report_never_missing_for_a_reader_while_replaced(tmp_path):
    """A reader polling reports/<name>/summary.json by path while the report is replaced 200 times
    finds a complete summary every time (the folders are exchanged in one step)."""
    dest = tmp_path / "reports" / "r"
    dest.parent.mkdir()
    staging = files.staging_folder(dest)
    _report(staging, 0)
    files.publish_folder(staging, dest)
    stop = threading.Event()
    seen = {"reads": 0, "missing": 0, "torn": 0, "versions": set()}

    def reader() -> None:
        while not stop.is_set():
            try:
                text = (dest / "summary.json").read_text()
            except FileNotFoundError:
                seen["missing"] += 1
                continue
            try:
                seen["versions"].add(json.loads(text)["version"])
            except ValueError:
                seen["torn"] += 1
            seen["reads"] += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for version in range(1, 201):
            staging = files.staging_folder(dest)
            _report(staging, version)
            files.publish_folder(staging, dest)
    finally:
        stop.set()
        thread.join()
    assert (seen["missing"], seen["torn"]) == (0, 0)
    assert seen["reads"] > 200 and len(seen["versions"]) > 10
    assert json.loads((dest / "summary.json").read_text())["version"] == 200
    assert sorted(p.name for p in (dest / "plots").iterdir()) == ["plot2.png"]  # no stale plot of version 199
    assert [p.name for p in dest.parent.iterdir()] == ["r"]  # nothing left beside it


def test_stale_staging_of_dead_runs_is_cleaned(tmp_path):
    """Staging folders whose process is gone are removed by the next write beside them; a live
    one, and a folder accelsim did not make, are left alone."""
    dest = tmp_path / "r"
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(done.stdout)
    host = files._host()
    dead = tmp_path / f".r.tmp-{host}-{dead_pid}-0a1b2c3d"
    live = tmp_path / f".r.tmp-{host}-{os.getpid()}-0a1b2c3e"
    foreign = tmp_path / f".r.tmp-{host}-{dead_pid}-0a1b2c3f"
    for folder in (dead, live, foreign):
        folder.mkdir()
        (folder / "summary.json").write_text("{}")
    (dead / files.STAGING_MARKER).write_text("x")
    (live / files.STAGING_MARKER).write_text("x")
    legacy = tmp_path / ".r.tmp-abcd_123"  # an earlier version's mkdtemp folder, a day old
    legacy.mkdir()
    (legacy / "ops.csv").write_text("")
    old = time.time() - 2 * 86400
    os.utime(legacy, (old, old))
    staging = files.staging_folder(dest)
    assert not dead.exists() and not legacy.exists()
    assert live.exists() and foreign.exists() and staging.exists()


def test_trace_output_never_replaces_links_or_special_files(tmp_path, cli):
    """-o through a symlink replaces the target (the link stays a link, the target keeps its mode);
    /dev/null and a FIFO are written as streams and stay what they are."""
    wl = write(tmp_path / "wl.yaml", WORKLOAD_TEXT)
    target = write(tmp_path / "t.jsonl", "old\n")
    target.chmod(0o640)
    link = tmp_path / "link.jsonl"
    link.symlink_to(target.name)
    code, _, err = cli("trace", wl, "-o", link)
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == "t.jsonl"
    assert target.read_text().startswith('{"trace":1,') and stat.S_IMODE(target.stat().st_mode) == 0o640
    null_before = os.stat("/dev/null")
    assert cli("trace", wl, "-o", "/dev/null")[0] == 0
    null_after = os.stat("/dev/null")
    assert stat.S_ISCHR(null_after.st_mode) and null_after.st_ino == null_before.st_ino
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    box: dict[str, str] = {}
    reader = threading.Thread(target=lambda: box.setdefault("text", fifo.read_text()))
    reader.start()
    assert cli("trace", wl, "-o", fifo)[0] == 0
    reader.join(10)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert box["text"] == target.read_text()


def test_report_modes_follow_the_umask(tmp_path):
    """Report folders and files get 0777/0666 less the umask (not mkdtemp's 0700, mkstemp's 0600):
    the staging folder, atomic writes, the marker, and the folder once published."""
    from accelsim.atomic import atomic_write_text

    previous = os.umask(0o027)
    try:
        dest = tmp_path / "r"
        staging = files.staging_folder(dest)
        atomic_write_text(staging / "summary.json", "{}\n")
        (staging / "plots").mkdir()
        files.publish_folder(staging, dest)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o750
    assert stat.S_IMODE((dest / "summary.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((dest / files.REPORT_MARKER).stat().st_mode) == 0o640
    assert stat.S_IMODE((dest / "plots").stat().st_mode) == 0o750


def test_set_run_gets_its_own_folder(tmp_path, base):
    """A run with --set and no --out goes to a folder named after what was set, so it never
    replaces the unmodified run's report."""
    wl, hw = base
    plain = api.prepare(wl, hw)
    changed = api.prepare(wl, hw, sets=["array.rows=16", "training.steps=2"])
    assert api.default_out_dir(plain, tmp_path) == tmp_path / "wl-test-hw-test"
    assert api.default_out_dir(changed, tmp_path) == tmp_path / "wl-test-hw-test+array.rows-16+training.steps-2"
    long = api.prepare(wl, hw, sets=[f"model.layers.0.out={n}" for n in (4, 5, 6, 7, 8, 9, 10, 11)])
    name = api.default_out_dir(long, tmp_path).name
    assert len(name) <= 120 and name.startswith("wl-test-hw-test+model.layers.0.out-4+")


def test_unreachable_scheduler_is_an_environment_error(tmp_path, base, cli):
    """A scheduler address that nothing answers: exit 1 (the environment), one line."""
    wl, hw = base
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = cli("sweep", wl, hw, "--grid", "array.rows=4,8", "--out", tmp_path / "s",
                         "--scheduler", f"tcp://127.0.0.1:{port}")
    assert code == 1
    assert err.startswith(f"accelsim: error: --scheduler: cannot reach the Dask scheduler tcp://127.0.0.1:{port}")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("case", ["fifo", "topology-100000", "grid-160000", "epochs-100000", "bert-layers-1e8"])
def test_former_hangs_end_at_once(case, tmp_path, base, cli):
    """The inputs that used to hang end with one line (generous bound: the machine is shared)."""
    wl, hw = base
    if case == "fifo":
        os.mkfifo(tmp_path / "w.yaml")
        args = ["run", tmp_path / "w.yaml", hw]
    elif case == "topology-100000":
        write(tmp_path / "t.csv", "Layer, M, N, K\n" + "".join(f"l{i}, 8, 8, 8\n" for i in range(100_000)))
        args = ["run", tmp_path / "t.csv", hw]
    elif case == "grid-160000":
        values = ",".join(str(v) for v in range(1, 401))
        args = ["sweep", wl, hw, "--grid", f"array.rows={values}", "--grid", f"array.cols={values}"]
    elif case == "epochs-100000":
        write(tmp_path / "d.yaml", WORKLOAD_TEXT.replace("data: {batch_size: 16}", "data: {dataset: digits, batch_size: 16}")
              .replace("input: [1, 8, 8]", "input: [1, 8, 8]").replace("training: {steps: 3}", "training: {epochs: 100000}"))
        args = ["run", tmp_path / "d.yaml", hw]
    else:
        write(tmp_path / "b.yaml", "version: 1\nname: b\nmodel: {zoo: bert_base, params: {layers: 100000000}}\n")
        args = ["validate", tmp_path / "b.yaml"]
    start = time.perf_counter()
    code, _, err = cli(*args, *(["--out", tmp_path / "o"] if args[0] in ("run", "sweep") else []))
    elapsed = time.perf_counter() - start
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert elapsed < 5.0, f"{case} took {elapsed:.2f} s"
    assert not (tmp_path / "o").exists()
