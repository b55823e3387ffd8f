"""Reading YAML input safely.

Only ``yaml.SafeLoader`` is used (no custom tags, no Python objects). Before anything is built the
node graph is checked: an alias bomb (a small file whose aliases expand to millions of nodes) and a
repeated mapping key are rejected with the file and line, instead of hanging or silently keeping
the last value. Files that are missing, are directories, are not UTF-8 text, or are implausibly
large are rejected the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from accelsim.errors import InputError

#: Largest spec file read, in bytes. Specs are a few hundred lines; this is generous.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Largest number of YAML nodes after aliases are expanded.
MAX_EXPANDED_NODES = 200_000


def read_text(path: Path, *, what: str = "file", max_bytes: int = MAX_FILE_BYTES) -> str:
    """Read a UTF-8 text file, with a clear :class:`InputError` for every way it can be unusable."""
    name = str(path)
    if not path.exists():
        raise InputError.single(name, "", f"{what} not found")
    if path.is_dir():
        raise InputError.single(name, "", f"is a directory, expected a {what}")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError.single(name, "", f"{what} is {size} bytes, larger than the {max_bytes}-byte limit")
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError.single(name, "", f"cannot read {what}: {exc.strerror or exc}") from None
    if b"\x00" in raw:
        raise InputError.single(name, "", f"not a text file (it contains NUL bytes); expected a {what}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError.single(
            name, "", f"not UTF-8 text (bad byte at offset {exc.start}); expected a {what}"
        ) from None


def load_yaml_file(path: Path) -> dict[str, Any]:
    """Load one YAML spec file into plain Python data (a mapping at the top level)."""
    text = read_text(path, what="YAML file")
    return load_yaml_text(text, str(path))


def load_yaml_text(text: str, name: str) -> dict[str, Any]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError.single(name, "", "file is empty; expected a YAML mapping starting with 'version: 1'")
        _check_nodes(node, name)
        data = loader.construct_document(node)
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
