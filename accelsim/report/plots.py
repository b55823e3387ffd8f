"""Every plot of a run or sweep folder, regenerated from the folder's files alone.

The folder is checked first: each file the plots read must be a regular file that parses
(``summary.json`` as JSON with both runs, ``config.resolved.yaml`` as a YAML mapping, the CSVs with
their columns). A damaged or hand-edited folder is bad input (:class:`InputError`, exit 2) naming
the file and what is wrong, with what to do: re-run the command that wrote it.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from accelsim.errors import InputError
from accelsim.spec.yamlio import read_bytes

#: Largest file of a report folder read back, bytes.
MAX_REPORT_FILE_BYTES = 512 * 1024 * 1024
_REDO = "re-run the command that wrote the folder"
#: Columns the run plots read.
_OPS_NEEDED = ("run", "layer", "phase", "kind", "total_cycles")
_LAYERS_NEEDED = ("layer", "phase", "policy_cycles", "baseline_cycles")


def plot_folder(folder: Path, level: str = "all") -> list[str]:
    """Draw the plots of ``level`` (``none``, ``summary``, ``all``) of a run folder
    (``summary.json``) or a sweep folder (``results.csv``) and rewrite its ``report.md``; return
    the names of the plots drawn."""
    if not folder.is_dir():
        raise InputError.single(str(folder), "", "not a folder")
    if (folder / "results.csv").exists():
        from accelsim.report.sweep_report import write_sweep_report

        _csv(folder / "results.csv", ("index", "status"))
        return _guarded(folder / "results.csv", lambda: write_sweep_report(folder, level))
    if (folder / "summary.json").exists():
        from accelsim.report.writers import finish_run_folder

        check_run_folder(folder)
        return _guarded(folder / "summary.json", lambda: finish_run_folder(folder, level))
    raise InputError.single(str(folder), "", "neither a run folder (summary.json) nor a sweep folder (results.csv)")


def check_run_folder(folder: Path) -> None:
    """Raise :class:`InputError` unless the files a run folder's plots read are all readable."""
    summary = _json(folder / "summary.json")
    runs = summary.get("runs")
    if not isinstance(runs, dict) or not all(isinstance(runs.get(k), dict) for k in ("policy", "baseline")):
        raise InputError.single(
            str(folder / "summary.json"), "runs", f"must hold both runs (policy and baseline); {_REDO}",
        )
    config = _text(folder / "config.resolved.yaml")
    try:
        data = yaml.safe_load(config)
    except yaml.YAMLError as exc:
        raise InputError.single(
            str(folder / "config.resolved.yaml"), "", f"damaged: not valid YAML ({str(exc).splitlines()[0]}); {_REDO}",
        ) from None
    if not isinstance(data, dict):
        raise InputError.single(str(folder / "config.resolved.yaml"), "", f"damaged: not a YAML mapping; {_REDO}")
    _csv(folder / "ops.csv", _OPS_NEEDED)
    _csv(folder / "layers.csv", _LAYERS_NEEDED)
    if (folder / "training.csv").exists():
        _csv(folder / "training.csv", ("epoch",))


def _text(path: Path) -> str:
    if not path.exists():
        raise InputError.single(str(path), "", f"missing; {_REDO}")
    raw = read_bytes(path, what="report file", max_bytes=MAX_REPORT_FILE_BYTES)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError.single(str(path), "", f"damaged: not UTF-8 text (bad byte at offset {exc.start}); {_REDO}") from None


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_text(path))
    except json.JSONDecodeError as exc:
        raise InputError.single(str(path), f"line {exc.lineno}", f"damaged: not valid JSON ({exc.msg}); {_REDO}") from None
    if not isinstance(data, dict):
        raise InputError.single(str(path), "", f"damaged: not a JSON object; {_REDO}")
    return data


def _csv(path: Path, needed: tuple[str, ...]) -> None:
    text = _text(path)
    try:
        header = next(csv.reader(io.StringIO(text)), [])
    except csv.Error as exc:
        raise InputError.single(str(path), "line 1", f"damaged: not a readable CSV file ({exc}); {_REDO}") from None
    missing = [c for c in needed if c not in header]
    if missing:
        raise InputError.single(
            str(path), "line 1", f"damaged: the header lacks the column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}; {_REDO}",
        )


def _guarded(path: Path, draw) -> list[str]:
    """Draw; a value the files hold that the plots cannot use is the folder's fault, not accelsim's
    (and a ``plots`` folder this call created is removed again: a refused folder is left as it was)."""
    plots = path.parent / "plots"
    fresh = not plots.exists()
    try:
        return draw()
    except BaseException as exc:
        if fresh and plots.is_dir() and not plots.is_symlink():
            shutil.rmtree(plots, ignore_errors=True)
        if isinstance(exc, InputError) or not isinstance(
            exc, (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError, OverflowError, csv.Error),
        ):
            raise
        raise InputError.single(
            str(path.parent), "", f"cannot plot: its files look damaged or edited ({type(exc).__name__}: {exc}); {_REDO}",
        ) from None
