"""Atomic report folders: a reader never sees a half-written report."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

#: Marker file that identifies a folder accelsim wrote (and may therefore replace).
REPORT_MARKER = ".accelsim-report"


class ReportFolderError(Exception):
    """The destination exists and is not a folder accelsim may replace."""


def check_replaceable(dest: Path) -> None:
    """Raise :class:`ReportFolderError` unless ``dest`` is absent, empty or an accelsim report."""
    for parent in dest.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ReportFolderError(f"{parent} is a file, so {dest} cannot be created")
            break
    if not dest.exists():
        return
    if not dest.is_dir():
        raise ReportFolderError(f"{dest} exists and is not a folder")
    if any(dest.iterdir()) and not (dest / REPORT_MARKER).exists():
        raise ReportFolderError(
            f"{dest} exists, is not empty and was not written by accelsim; refusing to replace it "
            "(choose another --out)"
        )


def publish_folder(staging: Path, dest: Path) -> None:
    """Move a fully written ``staging`` folder to ``dest``, replacing an earlier report there.

    The old report is moved aside first and deleted only after the new one is in place, so at
    every moment ``dest`` is either the old complete report or the new complete one.
    """
    check_replaceable(dest)
    (staging / REPORT_MARKER).write_text("written by accelsim\n", encoding="utf-8")
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    os.replace(staging, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def staging_folder(dest: Path) -> Path:
    """A fresh temp folder beside ``dest`` (same file system, so the final rename is atomic)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
