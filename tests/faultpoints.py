"""Stand-ins for ``accelsim.sweep.run_point`` whose worker processes die on purpose (imported by the
workers of tests/test_faults.py; kept free of heavy imports so workers start fast)."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def flaky_point(task: dict) -> dict:
    """Index 1 kills its worker every time (exit code 3); index 2 kills it (SIGKILL) the first time only."""
    marker = Path(task["cache_dir"]) / f"died-{task['index']}"
    if task["index"] == 1:
        os._exit(3)
    if task["index"] == 2 and not marker.exists():
        marker.write_text("once")
        os.kill(os.getpid(), signal.SIGKILL)
    return {"key": task["key"], "index": task["index"], "params": [], "status": "ok", "error": None, "summary": {}}
