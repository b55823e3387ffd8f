"""Reading input files safely, and YAML with one meaning per value.

Files: only regular files are read (a FIFO, a device or a socket is refused before it is opened for
long, and the check is repeated on the open descriptor), and reads are bounded by the bytes actually
read, never by ``st_size`` (``/dev/zero`` and ``/proc`` files report 0). Files that are missing, are
directories, are not UTF-8 text, or are implausibly large are rejected with the file named.

YAML: only a safe loader is used (no custom tags, no Python objects), and plain scalars are
resolved as in YAML 1.2's core schema, so a value means one thing: ``true``/``false`` are the only
booleans (``yes``, ``no``, ``on``, ``off`` are strings), integers are decimal (``010``, ``0x10``,
``1:30`` and ``1_000`` are strings, which an integer field then rejects, instead of YAML 1.1's
octal 8, hexadecimal 16, sexagesimal 90 and 1000), floats are written with a dot or an exponent
(``1e-3`` is a float, as in JSON), and dates stay strings. Integers longer than
:data:`MAX_INT_DIGITS` digits are rejected with their field path, before Python parses them.
Before anything is built the node graph is checked: an alias bomb (a small file whose aliases expand
to millions of nodes) and a repeated mapping key are rejected with the file and line, instead of
hanging or silently keeping the last value.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import IO, Any

import yaml

from accelsim.errors import InputError

#: Largest spec file read, in bytes. Specs are a few hundred lines; this is generous.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Largest number of YAML nodes after aliases are expanded.
MAX_EXPANDED_NODES = 200_000
#: Longest integer literal accepted (every integer field is bounded far below 10**30).
MAX_INT_DIGITS = 30

# ------------------------------------------------------------------------------------------------
# regular files, bounded reads


def _kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: Path, *, what: str = "file", file: str | None = None, field: str = "") -> IO[bytes]:
    """Open ``path`` for reading if it is a regular file (symlinks to one are followed).

    Problems are reported against ``file``/``field`` when given (the spec that named the path),
    else against the path itself. Opening never blocks: a FIFO is refused, not waited on.
    """
    name = str(path)
    where, fld = (file, field) if file is not None else (name, "")
    prefix = f"{name}: " if file is not None else ""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError.single(where, fld, f"{prefix}{what} not found") from None
    except NotADirectoryError:
        raise InputError.single(where, fld, f"{prefix}{what} not found (a parent is not a folder)") from None
    except OSError as exc:
        raise InputError.single(where, fld, f"{prefix}cannot read {what}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError.single(where, fld, f"{prefix}is a directory, expected a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise InputError.single(
            where, fld, f"{prefix}is {_kind_of(st.st_mode)}, not a regular file; expected a {what}"
        )
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError.single(where, fld, f"{prefix}cannot read {what}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)  # the file opened is the file checked (no swap in between)
        if not stat.S_ISREG(st.st_mode):
            raise InputError.single(
                where, fld, f"{prefix}is {_kind_of(st.st_mode)}, not a regular file; expected a {what}"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(fh: IO[bytes], max_bytes: int, *, what: str, where: str, field: str = "") -> bytes:
    """Read all of ``fh``, refusing (without reading further) once more than ``max_bytes`` arrive."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = fh.read(min(1 << 20, max_bytes + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise InputError.single(where, field, f"{what} is larger than the {max_bytes:,}-byte limit")


def read_bytes(path: Path, *, what: str = "file", max_bytes: int = MAX_FILE_BYTES,
               file: str | None = None, field: str = "") -> bytes:
    """The bytes of a regular file, at most ``max_bytes`` of them (counted as read)."""
    with open_regular(path, what=what, file=file, field=field) as fh:
        try:
            return read_bounded(
                fh, max_bytes, what=f"{path}: {what}" if file is not None else what,
                where=file if file is not None else str(path), field=field,
            )
        except OSError as exc:
            raise InputError.single(
                file if file is not None else str(path), field, f"cannot read {what}: {exc.strerror or exc}"
            ) from None


def read_text(path: Path, *, what: str = "file", max_bytes: int = MAX_FILE_BYTES) -> str:
    """Read a UTF-8 text file, with a clear :class:`InputError` for every way it can be unusable."""
    name = str(path)
    raw = read_bytes(path, what=what, max_bytes=max_bytes)
    if b"\x00" in raw:
        raise InputError.single(name, "", f"not a text file (it contains NUL bytes); expected a {what}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError.single(
            name, "", f"not UTF-8 text (bad byte at offset {exc.start}); expected a {what}"
        ) from None


# ------------------------------------------------------------------------------------------------
# YAML: the core schema (one meaning per plain scalar)

_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+\.[0-9]*|[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+|\.[0-9]+[eE][-+]?[0-9]+)$")
_SPECIAL_FLOAT = re.compile(r"^([-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$")
#: Written like a number, but not a decimal one: YAML 1.1 octal, hex, binary, sexagesimal, digit groups.
NON_DECIMAL_NUMBER = re.compile(
    r"^[-+]?(0[0-9]+|0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?|[0-9]+(_[0-9]+)+)$"
)


class SpecLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 core-schema resolution of plain scalars."""


SpecLoader.yaml_implicit_resolvers = {}
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(~|null|Null|NULL|)$"), ["~", "n", "N", ""])
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:float", _SPECIAL_FLOAT, list("-+."))
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])


class _IntTooLong(yaml.constructor.ConstructorError):
    def __init__(self, node: yaml.Node, digits: int):
        super().__init__(None, None, f"an integer of {digits} digits is out of range", node.start_mark)
        self.node = node
        self.digits = digits


def _construct_int(loader: SpecLoader, node: yaml.ScalarNode) -> int:
    value = loader.construct_scalar(node)
    digits = len(value.lstrip("+-"))
    if digits > MAX_INT_DIGITS:
        raise _IntTooLong(node, digits)
    if not _INT.match(value):
        raise yaml.constructor.ConstructorError(
            None, None, f"integers are written in decimal, got {value!r}", node.start_mark
        )
    return int(value)


def _construct_bool(loader: SpecLoader, node: yaml.ScalarNode) -> bool:
    value = loader.construct_scalar(node)
    if value.lower() not in ("true", "false"):
        raise yaml.constructor.ConstructorError(
            None, None, f"booleans are written true or false, got {value!r}", node.start_mark
        )
    return value.lower() == "true"


SpecLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
SpecLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)


def load_yaml_file(path: Path) -> dict[str, Any]:
    """Load one YAML spec file into plain Python data (a mapping at the top level)."""
    text = read_text(path, what="YAML file")
    return load_yaml_text(text, str(path))


def load_yaml_text(text: str, name: str) -> dict[str, Any]:
    loader = SpecLoader(text)
    node = None
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError.single(name, "", "file is empty; expected a YAML mapping starting with 'version: 1'")
        _check_nodes(node, name)
        data = loader.construct_document(node)
    except _IntTooLong as exc:
        field = _node_path(node, exc.node) if node is not None else ""
        raise InputError.single(
            name, field or _line(exc.node),
            f"an integer of {exc.digits} digits is out of range (at most {MAX_INT_DIGITS} digits)",
        ) from None
    except yaml.YAMLError as exc:
        raise InputError.single(name, _yaml_where(exc), f"not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise InputError.single(name, "", "YAML nesting is too deep") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise InputError.single(
            name, "", f"expected a YAML mapping at the top level, got {_type_name(data)}"
        )
    return data


def parse_scalar(text: str) -> Any:
    """Parse a CLI value (``--set a.b=VALUE``) as a YAML flow value: ``64``, ``true``, ``[1, 2]``."""
    data = load_yaml_text(f"value: {text}", "<value>") if text.strip() else {"value": ""}
    return data["value"]


def _node_path(root: yaml.Node, target: yaml.Node) -> str:
    """The dotted field path of ``target`` inside ``root`` (``""`` if not found)."""
    stack: list[tuple[yaml.Node, tuple[str, ...]]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node is target:
            return ".".join(path)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                label = key.value if isinstance(key, yaml.ScalarNode) else "?"
                stack.append((value, (*path, str(label))))
                stack.append((key, (*path, str(label))))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, (*path, str(i))) for i, child in enumerate(node.value))
    return ""


def _check_nodes(root: yaml.Node, name: str) -> None:
    """Reject alias bombs and repeated keys, walking each distinct node once."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes and not children_done:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1
            continue
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = list(node.value)
        if not children_done:
            if isinstance(node, yaml.MappingNode):
                _check_duplicate_keys(node, name)
            sizes[key] = -1  # in progress: a cycle back here is a recursive alias
            stack.append((node, True))
            for child in children:
                if sizes.get(id(child)) == -1:
                    raise InputError.single(name, _line(child), "recursive YAML alias")
                stack.append((child, False))
            continue
        total = 1 + sum(sizes[id(c)] for c in children)
        if total > MAX_EXPANDED_NODES:
            raise InputError.single(
                name, _line(node),
                f"YAML aliases expand to more than {MAX_EXPANDED_NODES} nodes (an alias bomb?); refusing to load",
            )
        sizes[key] = total


def _check_duplicate_keys(node: yaml.MappingNode, name: str) -> None:
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            if key_node.value in seen:
                raise InputError.single(
                    name, _line(key_node),
                    f"key {key_node.value!r} appears twice in one mapping (first at line {seen[key_node.value]})",
                )
            seen[key_node.value] = key_node.start_mark.line + 1


def _line(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _yaml_where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    text = problem or str(exc).splitlines()[0]
    if context:
        text = f"{text} ({context})"
    return text


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__
