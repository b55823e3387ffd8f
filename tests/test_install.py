"""A regular (non-editable) install runs a user's hardware file from another folder: the technology
tables are package data, found by name (``technology: 45nm``) wherever the hardware file lives.

The test builds and installs the package with pip into a fresh virtual environment. To stay fast
and offline the new environment borrows the test environment's dependencies (a ``.pth`` line naming
its site-packages, which does not activate the editable install living there) and builds without
isolation when it can (else pip fetches setuptools from its index, as any ``pip install .`` does);
accelsim itself comes only from the wheel pip builds from a copy of the sources. Measured: 20 s on
the project's 2-core machines with isolation (the shipped test environment), most of it pip.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

from conftest import ROOT, write

HW = """\
version: 1
name: user-hw
clock_ghz: 1.0
technology: 45nm
array: {rows: 8, cols: 8, dataflow: os, modes: {int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}}
rescale: {lanes: 8, latency_cycles: 2}
vector: {lanes: 8}
sram: {ifmap_kib: 64, filter_kib: 64, ofmap_kib: 32}
dram: {bandwidth_gbps: 128, latency_ns: 50}
"""

WORKLOAD = """\
version: 1
name: one-gemm
phases: inference
model:
  input: [64]
  layers:
    - {type: linear, out: 32}
data: {batch_size: 16}
precision: int4
baseline: fp16
"""


def _isolation() -> list[str]:
    """Build without isolation when this environment can build a wheel itself (setuptools 70.1+
    has bdist_wheel built in; older ones need the wheel package); otherwise pip fetches the build
    requirements from its index, as a user's ``pip install .`` does."""
    try:
        import setuptools
    except ImportError:
        return []
    version = tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())
    try:
        import wheel  # noqa: F401
    except ImportError:
        if version < (70, 1):
            return []
    return ["--no-build-isolation", "--no-index"]


def _run(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_wheel_install_finds_tables_by_name_from_any_folder(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "accelsim", src / "accelsim", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip())
    deps = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if Path(p).is_dir()]
    (purelib / "_test_deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                *_isolation(), str(src)], tmp_path, env)
    assert pip.returncode == 0, pip.stdout + pip.stderr

    user = tmp_path / "elsewhere"
    write(user / "hw.yaml", HW)
    write(user / "one-gemm.yaml", WORKLOAD)
    where = _run([str(python), "-c", "import accelsim.hw.tech as t; print(t.SHIPPED_TABLES)"], user, env)
    tables = Path(where.stdout.strip())
    assert tables.is_relative_to(purelib), where.stdout + where.stderr  # the wheel's copy, not the checkout
    assert sorted(p.name for p in tables.glob("*.yaml")) == ["45nm.yaml", "7nm.yaml"]

    accelsim = str(venv / "bin" / "accelsim")
    check = _run([accelsim, "validate", "hw.yaml"], user, env)
    assert check.returncode == 0 and "ok  hw.yaml (hardware)" in check.stdout, check.stdout + check.stderr
    run = _run([accelsim, "run", "one-gemm.yaml", "hw.yaml", "--out", "report"], user, env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (user / "report" / "summary.json").is_file()
    bad = _run([accelsim, "validate", write(user / "bad.yaml", HW.replace("45nm", "5nm")).name], user, env)
    assert bad.returncode == 2 and "unknown technology '5nm'; did you mean '45nm'? (known: 7nm, 45nm;" in bad.stderr
