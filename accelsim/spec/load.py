"""Loading and validating spec files, with errors a user can act on.

Every problem is reported at once, each as ``file: field.path: what is wrong, got VALUE``.
Unknown keys name the nearest known key ("did you mean") and the allowed ones.
"""

from __future__ import annotations

import copy
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from accelsim.errors import InputError, Problem
from accelsim.numerics.policy import PrecisionPolicy, resolve_policy
from accelsim.spec.models import (
    SPEC_KINDS,
    HardwareSpec,
    StrictModel,
    SweepSpec,
    WorkloadSpec,
    suggest,
)
from accelsim.spec.yamlio import NON_DECIMAL_NUMBER, load_yaml_file, parse_scalar

# ------------------------------------------------------------------------------------------------
# kinds


def detect_kind(data: dict[str, Any], file: str) -> str:
    """Tell a hardware, workload or sweep spec apart by its top-level keys."""
    if "array" in data:
        return "hardware"
    if "model" in data:
        return "workload"
    if "grid" in data or "zip" in data:
        return "sweep"
    raise InputError.single(
        file, "",
        "cannot tell what this file is: a hardware spec has 'array', a workload 'model', a sweep 'grid' or 'zip'",
    )


def validate_data(kind: str, data: dict[str, Any], file: str) -> StrictModel:
    """Validate plain data as a spec of ``kind``; raise :class:`InputError` with every problem."""
    cls = SPEC_KINDS[kind]
    problems: list[Problem] = []
    spec = None
    try:
        spec = cls.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from_validation(exc, data, file, cls))
    if kind == "workload" and isinstance(data, dict):
        for role in ("precision", "baseline"):
            value = data.get(role)
            if isinstance(value, dict) and isinstance(value.get("preset"), str):
                problems.extend(_policy_problems(value, file, role))
    if problems:
        raise InputError(problems)
    return spec


def resolved_policy(value: str | dict, file: str, field: str) -> PrecisionPolicy:
    """A validated workload's ``precision``/``baseline`` value as a full policy."""
    try:
        return resolve_policy(value)
    except (KeyError, ValidationError) as exc:  # validate_data has already vetted it
        raise InputError.single(file, field, f"invalid precision policy: {exc}") from None


def _policy_problems(value: dict, file: str, role: str) -> list[Problem]:
    merged = {k: v for k, v in value.items() if k != "preset"}
    try:
        resolve_policy(value)
    except KeyError:
        return []  # unknown preset: reported by the model validator
    except ValidationError as exc:
        return problems_from_validation(exc, merged, file, PrecisionPolicy, prefix=(role,))
    # The policy model coerces (``tpr: 1`` would become true): the overrides are held to the
    # spec files' strict types here, on the preset's fields merged with them.
    base = resolve_policy(value["preset"]).model_dump()
    try:
        PrecisionPolicy.model_validate({**base, **merged}, strict=True)
    except ValidationError as exc:
        return problems_from_validation(exc, merged, file, PrecisionPolicy, prefix=(role,))
    return []


# ------------------------------------------------------------------------------------------------
# files


def load_spec_file(path: Path, sets: list[str] | None = None, kind: str | None = None) -> StrictModel:
    """Load, override (``--set``) and validate one spec file."""
    data = load_yaml_file(path)
    file = str(path)
    if kind is None:
        kind = detect_kind(data, file)
    if sets:
        data = apply_sets(data, sets, file)
    return validate_data(kind, data, file)


def load_hardware(path: Path, sets: list[str] | None = None) -> HardwareSpec:
    return load_spec_file(path, sets, kind="hardware")  # type: ignore[return-value]


def load_workload(path: Path, sets: list[str] | None = None) -> WorkloadSpec:
    return load_spec_file(path, sets, kind="workload")  # type: ignore[return-value]


def load_sweep(path: Path, sets: list[str] | None = None) -> SweepSpec:
    return load_spec_file(path, sets, kind="sweep")  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------------
# --set path=value


def parse_set(item: str) -> tuple[list[str], Any]:
    """Split ``a.b.0.c=VALUE`` into its path and its YAML-parsed value."""
    if "=" not in item:
        raise InputError.single("--set", item, "expected PATH=VALUE, e.g. array.rows=64")
    path, _, raw = item.partition("=")
    keys = [k for k in path.strip().split(".")]
    if not path.strip() or any(not k for k in keys):
        raise InputError.single("--set", item, "expected PATH=VALUE with a dotted path, e.g. array.rows=64")
    try:
        value = parse_scalar(raw)
    except InputError as exc:
        message = exc.problems[0].message
        if "out of range" not in message:
            message = f"value {raw!r} is not a valid YAML value"
        raise InputError.single("--set", path.strip(), message) from None
    return keys, value


def apply_sets(data: dict[str, Any], sets: list[str], file: str) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``PATH=VALUE`` applied; intermediate mappings are created."""
    data = copy.deepcopy(data)
    for item in sets:
        keys, value = parse_set(item)
        set_path(data, keys, value, file, item)
    return data


def set_path(data: Any, keys: list[str], value: Any, file: str, label: str) -> None:
    node = data
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise InputError.single(
                    file, ".".join(keys[: i + 1]),
                    f"--set {label}: {key!r} is not an index of a {len(node)}-item list",
                )
            if last:
                node[int(key)] = value
            else:
                node = node[int(key)]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                if node.get(key) is None:
                    node[key] = {}
                node = node[key]
        else:
            raise InputError.single(
                file, ".".join(keys[:i]), f"--set {label}: cannot set a field inside a {type(node).__name__}"
            )


# ------------------------------------------------------------------------------------------------
# error messages


def problems_from_validation(
    exc: ValidationError,
    data: Any,
    file: str,
    root: type[BaseModel],
    prefix: tuple = (),
) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        path = _data_path(data, err["loc"])
        field = ".".join(str(p) for p in (*prefix, *path))
        message = _message(err, data, path, root)
        if (field, message) not in seen:
            seen.add((field, message))
            problems.append(Problem(file, field, message))
    return problems


def _data_path(data: Any, loc: tuple) -> list:
    """The error location as a path through the user's data (union tags dropped)."""
    path: list = []
    node = data
    for elem in loc:
        if isinstance(node, dict) and elem in node:
            path.append(elem)
            node = node[elem]
        elif isinstance(node, list) and isinstance(elem, int) and 0 <= elem < len(node):
            path.append(elem)
            node = node[elem]
        elif isinstance(elem, str) and _is_member_tag(elem):
            continue
        else:
            path.append(elem)
            node = None
    return path


_PLAIN_TAGS = frozenset({"str", "int", "float", "bool", "none", "[key]", "constrained-int", "constrained-float"})


def _is_member_tag(elem: str) -> bool:
    """Pydantic's names for union members and dict keys inside an error location."""
    return (
        elem[:1].isupper()
        or elem[:1] == "_"
        or elem in _PLAIN_TAGS
        or elem.startswith(("function-", "list[", "dict[", "tuple[", "literal["))
    )


def _message(err: dict, data: Any, path: list, root: type[BaseModel]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else "?"
        allowed = _allowed_keys(root, data, path[:-1])
        hint = suggest(key, allowed) if allowed else ""
        tail = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown key {key!r}{hint}{tail}"
    if kind == "missing":
        return "required field is missing"
    if kind in ("too_long", "too_short"):
        ctx = err.get("ctx") or {}
        value = err.get("input")
        have = len(value) if hasattr(value, "__len__") else "?"
        if kind == "too_long":
            return f"must have at most {ctx.get('max_length')} items; got {have}"
        least = ctx.get("min_length")
        return f"must have at least {least} item{'s' if least != 1 else ''}; got {have}"
    msg = err["msg"]
    for head in ("Value error, ", "Assertion failed, "):
        if msg.startswith(head):
            msg = msg[len(head):]
    if msg.startswith("Input should be "):
        msg = "must be " + msg[len("Input should be "):]
    elif msg.startswith("String should match pattern "):
        msg = "must be a plain name (letters, digits, '.', '_', '+', '-'; at most 100 characters)"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        msg = "must be a mapping (key: value)"
    value = err.get("input")
    if "input" in err and not isinstance(value, dict) and not (isinstance(value, str) and repr(value) in msg):
        msg = f"{msg}; got {_short(err['input'])}"
    if kind in ("int_type", "float_type", "int_parsing", "float_parsing") and isinstance(value, str):
        msg += _number_hint(value, integer=kind.startswith("int"))
    return msg


def _number_hint(text: str, integer: bool) -> str:
    """Why a string that looks like a number is not one."""
    bare = text.strip()
    if NON_DECIMAL_NUMBER.match(bare):
        return " (integers are written in decimal: no leading zeros, 0x/0o/0b prefixes, ':' or '_')"
    try:
        float(bare)
    except ValueError:
        return ""
    return f" (a number in quotes is a string; write {bare} without quotes)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(root: type[BaseModel], data: Any, path: list) -> list[str]:
    """Field names of the model that validates ``data`` at ``path`` (best effort through unions)."""
    annotation: Any = root
    node = data
    for elem in path:
        cls = _pick_model(annotation, node)
        if cls is not None:
            field = cls.model_fields.get(str(elem))
            if field is None:
                return []
            annotation = field.annotation
        else:
            annotation = _item_type(annotation, elem)
            if annotation is None:
                return []
        node = node[elem] if isinstance(node, (dict, list)) and _has(node, elem) else None
    cls = _pick_model(annotation, node)
    return list(cls.model_fields) if cls is not None else []


def _has(node: Any, elem: Any) -> bool:
    if isinstance(node, dict):
        return elem in node
    return isinstance(elem, int) and 0 <= elem < len(node)


def union_members(annotation: Any) -> list[Any]:
    """The types an annotation admits (through ``Annotated``, ``Optional`` and unions)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return union_members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(union_members(arg))
        return out
    return [annotation]


def _pick_model(annotation: Any, node: Any) -> type[BaseModel] | None:
    models = [m for m in union_members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    if not models:
        return None
    if len(models) == 1 or not isinstance(node, dict):
        return models[0]
    kind = node.get("type")
    for m in models:
        t = m.model_fields.get("type")
        if t is not None and kind in typing.get_args(t.annotation):
            return m
    def own(m: type[BaseModel]) -> set[str]:  # the keys that name this member (model: {onnx: ...})
        return set(m.model_fields).difference(*(o.model_fields for o in models if o is not m))

    return max(models, key=lambda m: (len(own(m) & set(node)), len(set(m.model_fields) & set(node))))


def _item_type(annotation: Any, elem: Any) -> Any:
    for member in union_members(annotation):
        origin = typing.get_origin(member)
        args = typing.get_args(member)
        if origin is list and isinstance(elem, int):
            return args[0]
        if origin is dict and args:
            return args[1]
        if origin is tuple and isinstance(elem, int) and args:
            return args[min(elem, len(args) - 1)]
    return None
