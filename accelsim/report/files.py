"""Report folders that are atomic for readers and safe for users.

* **Whole or not at all.** A run folder is written in full into a staging folder beside its
  destination (same file system), then put in place in one step. When the destination already
  holds an earlier report, the two folders are *exchanged* atomically (Linux ``renameat2`` with
  ``RENAME_EXCHANGE``, macOS ``renamex_np`` with ``RENAME_SWAP``): a reader polling
  ``reports/<name>/summary.json`` by path finds the old complete report or the new complete one,
  never nothing. Where the file system cannot exchange (some network file systems), the old folder
  is renamed aside and the new one renamed in: two renames, a gap of microseconds.
* **Never deletes what accelsim did not write.** Every folder accelsim writes carries a marker file
  listing the files it wrote. A folder without the marker, or one holding a file the marker does
  not list (a user's notes beside the plots), is refused, never replaced, and the refusal names
  the file. Files it wrote before and no longer writes (stale plots) go away with the old folder.
* **Stale staging is cleaned.** Staging folders are named after the process that made them
  (``.<name>.tmp-<host>-<pid>-<random>``) and carry a marker; the next write beside them removes
  those whose process is gone.
* **Modes follow the umask.** Folders are created with mode 0777 and files with 0666, less the
  user's umask (as ``mkdir`` and ``touch`` do), so colleagues can read a shared report.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Iterable

#: Marker file that identifies a folder accelsim wrote (and may therefore replace); it lists the
#: files written (``{"written_by": "accelsim", "files": [...]}``).
REPORT_MARKER = ".accelsim-report"
#: Marker of a staging folder (its owner's host and process id).
STAGING_MARKER = ".accelsim-staging"
#: Files of a report written before markers listed their files (accepted when replacing such a one).
_LEGACY_FILES = re.compile(
    r"^(config\.resolved\.yaml|summary\.json|ops\.csv|layers\.csv|training\.csv|report\.md|numerics\.npz"
    r"|results\.csv|results\.sqlite(-wal|-shm|-journal)?|plots|plots/[^/]+\.png)$"
)
#: Staging folders of other hosts (or of old versions) older than this are stale, seconds.
STALE_AFTER_S = 24 * 3600


class ReportFolderError(Exception):
    """The destination exists and is not a folder accelsim may replace."""


# ------------------------------------------------------------------------------------------------
# names


def report_folder_name(workload: str, hardware: str, sets: Iterable[str] = ()) -> str:
    """``<workload>-<hardware>``, plus what ``--set`` changed (``+array.rows-64``), so a run with
    overrides never replaces the report of the run without them. Long override lists are cut and
    given a hash of the whole list."""
    base = f"{workload}-{hardware}"
    sets = list(sets)
    if not sets:
        return base
    parts = ["".join(c if c.isalnum() or c in "._-" else "-" for c in item.replace("=", "-")) for item in sets]
    name = base + "".join(f"+{p.strip('-')}" for p in parts)
    if len(name) > 120:
        digest = hashlib.sha256("\n".join(sets).encode()).hexdigest()[:8]
        name = f"{name[:110]}+{digest}"
    return name


# ------------------------------------------------------------------------------------------------
# what accelsim wrote


def _listing(folder: Path) -> list[str]:
    """Every file and folder below ``folder``, as relative POSIX paths, sorted."""
    out = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for name in dirs + files:
            out.append((rel / name).as_posix())
    return sorted(out)


def written_files(folder: Path) -> set[str] | None:
    """The files the marker of ``folder`` says accelsim wrote (``None``: no marker)."""
    marker = folder / REPORT_MARKER
    try:
        text = marker.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError):
        return set()
    try:
        data = json.loads(text)
        files = data["files"]
        if data.get("written_by") != "accelsim" or not isinstance(files, list):
            raise ValueError
        return {str(f) for f in files}
    except (ValueError, KeyError, TypeError):
        if text.startswith("written by accelsim"):  # an earlier version's marker: known names only
            return {f for f in _listing(folder) if _LEGACY_FILES.match(f)}
        return set()


def write_marker(folder: Path) -> None:
    """List every file now in ``folder`` in its marker (written atomically)."""
    from accelsim.atomic import atomic_write_text

    files = sorted(set(_listing(folder)) - {REPORT_MARKER, STAGING_MARKER})
    atomic_write_text(folder / REPORT_MARKER, json.dumps({"written_by": "accelsim", "files": files}, indent=1) + "\n")


def foreign_files(folder: Path, also_ours: Iterable[str] = (), legacy: bool = False) -> list[str]:
    """Files in ``folder`` that its marker does not list (all of them when it has none, unless
    ``legacy``: then the names earlier versions wrote count as accelsim's)."""
    ours = written_files(folder)
    listing = [f for f in _listing(folder) if f not in (REPORT_MARKER, STAGING_MARKER)]
    if ours is None:
        if not legacy:
            return listing
        ours = {f for f in listing if _LEGACY_FILES.match(f)}
    allowed = ours | set(also_ours)
    return [f for f in listing if f not in allowed]


def check_replaceable(dest: Path, also_ours: Iterable[str] = (), legacy: bool = False) -> None:
    """Raise :class:`ReportFolderError` unless ``dest`` is absent, empty, or a folder accelsim wrote
    holding only files it wrote (``also_ours``: names it owns without listing them, such as a sweep's
    store; ``legacy``: a folder without a marker counts as accelsim's if it holds only what earlier
    versions wrote)."""
    for parent in dest.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ReportFolderError(f"{parent} is a file, so {dest} cannot be created")
            break
    if not dest.exists():
        if dest.is_symlink():
            raise ReportFolderError(f"{dest} is a broken symbolic link; remove it or choose another --out")
        return
    if not dest.is_dir():
        raise ReportFolderError(f"{dest} exists and is not a folder")
    try:
        empty = not any(dest.iterdir())
    except OSError as exc:
        raise ReportFolderError(f"{dest} cannot be read: {exc.strerror or exc}") from None
    if empty:
        return
    if written_files(dest) is None and (not legacy or foreign_files(dest, also_ours, legacy=True)):
        raise ReportFolderError(
            f"{dest} exists, is not empty and was not written by accelsim; refusing to replace it "
            "(choose another --out)"
        )
    foreign = foreign_files(dest, also_ours, legacy=legacy)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ReportFolderError(
            f"the folder holds {shown}, which accelsim did not write; refusing to replace it and lose "
            f"{'it' if len(foreign) == 1 else 'them'} (move {'it' if len(foreign) == 1 else 'them'} out, or choose another --out)"
        )


# ------------------------------------------------------------------------------------------------
# staging


def _host() -> str:
    return "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40] or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_STAGING = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[0-9a-f]+$")
_LEGACY_STAGING = re.compile(r"^\.(?P<name>.+)\.(tmp-[A-Za-z0-9_]{8}|old-\d+)$")


def clean_stale(dest: Path) -> list[Path]:
    """Remove staging folders beside ``dest`` left by processes that are gone; return them.

    Only folders with accelsim's staging marker (or, for earlier versions, holding nothing but
    report files and older than :data:`STALE_AFTER_S`) are removed."""
    removed = []
    try:
        entries = list(dest.parent.iterdir())
    except OSError:
        return removed
    now = time.time()
    for path in entries:
        m = _STAGING.match(path.name)
        legacy = None if m else _LEGACY_STAGING.match(path.name)
        if not (m and m["name"] == dest.name) and not (legacy and legacy["name"] == dest.name):
            continue
        if not path.is_dir() or path.is_symlink():
            continue
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue
        if m:
            if not (path / STAGING_MARKER).exists() and written_files(path) is None:
                continue
            mine = m["host"] == _host()
            if (mine and _alive(int(m["pid"]))) or (not mine and age < STALE_AFTER_S):
                continue
        else:
            if age < STALE_AFTER_S / 24 or not all(_LEGACY_FILES.match(f) or f == REPORT_MARKER for f in _listing(path)):
                continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _unique(dest: Path, kind: str) -> Path:
    return dest.with_name(f".{dest.name}.{kind}-{_host()}-{os.getpid()}-{secrets.token_hex(4)}")


def staging_folder(dest: Path) -> Path:
    """A fresh folder beside ``dest`` (same file system, so the final step is a rename), mode 0777
    less the umask; stale staging folders of ``dest`` are removed first."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(dest)
    while True:
        path = _unique(dest, "tmp")
        try:
            os.mkdir(path, 0o777)
            break
        except FileExistsError:
            continue
    (path / STAGING_MARKER).write_text(f"{_host()} {os.getpid()}\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------
# exchange


def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


_RENAME_EXCHANGE = 2  # linux/fs.h
_RENAME_SWAP = 2      # macOS stdio.h
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276, "arm64": 276, "riscv64": 276}
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swap the two existing paths ``a`` and ``b`` in one atomic step; ``False`` if this system or
    file system cannot (the caller falls back to two renames)."""
    libc = _libc()
    if libc is None:
        return False
    fa, fb = os.fsencode(a), os.fsencode(b)
    if sys.platform.startswith("linux"):
        if hasattr(libc, "renameat2"):
            rc = libc.renameat2(_AT_FDCWD, fa, _AT_FDCWD, fb, ctypes.c_uint(_RENAME_EXCHANGE))
        else:
            number = _SYS_RENAMEAT2.get(os.uname().machine)
            if number is None:
                return False
            rc = libc.syscall(number, _AT_FDCWD, fa, _AT_FDCWD, fb, ctypes.c_uint(_RENAME_EXCHANGE))
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        rc = libc.renamex_np(fa, fb, ctypes.c_uint(_RENAME_SWAP))
    else:
        return False
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_path(new: Path, dest: Path) -> Path | None:
    """Put ``new`` (a file or folder) at ``dest`` so that a reader of ``dest`` never finds it
    missing; return where the old ``dest`` now is (to delete), or ``None`` if there was none."""
    if not dest.exists() and not dest.is_symlink():
        try:
            os.rename(new, dest)
            return None
        except OSError as exc:  # created meanwhile by someone else: exchange with it below
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
                raise
    if new.is_file() and not dest.is_dir():
        os.replace(new, dest)  # a file renamed over a file is atomic everywhere
        return None
    if exchange(new, dest):
        return new
    old = _unique(dest, "old")
    os.rename(dest, old)
    os.rename(new, dest)
    return old


def _remove_ours(old: Path) -> None:
    """Delete a replaced report folder if it holds only what accelsim wrote; keep it (renamed
    visibly beside its successor) if a file of someone else's appeared in it meanwhile."""
    foreign = foreign_files(old)
    if not foreign:
        shutil.rmtree(old, ignore_errors=True)
        return
    match = _STAGING.match(old.name)
    base = match["name"] if match else old.name.lstrip(".")
    keep = old.with_name(f"{base}.kept-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}")
    os.rename(old, keep)


def publish_folder(staging: Path, dest: Path) -> None:
    """Put a fully written ``staging`` folder at ``dest``, replacing an earlier report there.

    The marker lists every file of the new folder; ``dest`` is checked (again) to hold only files
    accelsim wrote; then the two are exchanged (see the module docstring), and the old report is
    deleted."""
    write_marker(staging)
    (staging / STAGING_MARKER).unlink(missing_ok=True)
    check_replaceable(dest)
    old = replace_path(staging, dest)
    if old is not None:
        _remove_ours(old)


def publish_items(staging: Path, dest: Path, keep: Iterable[str] = ()) -> None:
    """Replace what accelsim generates in the folder ``dest`` (a sweep folder, which also holds a
    store that stays in place) with the items of ``staging``, each atomically (:func:`replace_path`);
    items accelsim wrote there before and no longer writes (stale plots) are deleted, ``keep`` and
    files it did not write are left alone. The marker then lists what ``dest`` holds."""
    before = written_files(dest) or set()
    keep = set(keep)
    new = sorted(p.name for p in staging.iterdir() if p.name not in (STAGING_MARKER, REPORT_MARKER))
    for name in new:
        old = replace_path(staging / name, dest / name)
        if old is not None:
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink(missing_ok=True)
    for name in sorted({f.split("/")[0] for f in before} - set(new) - keep):
        path = dest / name
        if path.is_dir() and not path.is_symlink():
            if all(f in before for f in (f"{name}/{rel}" for rel in _listing(path))):
                shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    write_marker(dest)
