"""Atomic file writes: a temp file in the same folder, flushed, then renamed over the target, so
a reader sees the old file or the new one, never half of one.

Temp files are created with mode 0666 less the user's umask (what the final file would get from a
plain ``open``), not ``mkstemp``'s 0600, so reports stay readable to whom the umask allows.

:func:`write_output` is for paths a user names (``accelsim trace -o FILE``): it never replaces a
symbolic link or a special file. A symlink is followed and its target replaced atomically (the
link stays a link); a FIFO or a character device (``/dev/null``, a terminal) is written to as a
stream, as ``>`` in a shell would (not atomic: there is nothing to rename); a directory, a block
device or a socket is refused.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same folder and a rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename.

    ``mode`` (permission bits) defaults to 0666 less the umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class OutputError(Exception):
    """A path given for output that accelsim will not write to (a directory, a block device...)."""


def write_output(path: Path, data: bytes) -> str:
    """Write ``data`` to a user-named ``path`` safely (see the module docstring); return how it was
    written: ``"replaced"``, ``"created"`` or ``"streamed"``."""
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise OutputError(f"a parent of {path} is a file, so {path} cannot be created") from None
    if st is not None:
        kind = st.st_mode
        if stat.S_ISDIR(kind):
            raise OutputError(f"{path} is a directory; give a file name")
        if stat.S_ISFIFO(kind) or stat.S_ISCHR(kind):
            fd = os.open(target, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))  # no O_CREAT, no O_TRUNC
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return "streamed"
        if not stat.S_ISREG(kind):
            what = "a block device" if stat.S_ISBLK(kind) else "a socket" if stat.S_ISSOCK(kind) else "not a regular file"
            raise OutputError(f"{path} is {what}; accelsim writes only regular files, pipes and character devices")
        atomic_write_bytes(target, data, mode=stat.S_IMODE(kind))
        return "replaced"
    try:
        atomic_write_bytes(target, data)
    except (NotADirectoryError, FileExistsError):
        raise OutputError(f"a parent of {path} is a file, so {path} cannot be created") from None
    return "created"
