"""Technology tables: the energy per action and the area per unit that :mod:`accelsim.energy` prices
action counts and machines with.

A table is a YAML file (the shipped ``45nm`` and ``7nm``, package data in ``accelsim/hw/tables/``,
or a user's own) validated like every spec: ``version: 1``, unknown keys rejected with a did-you-mean, every problem reported at once.
Each entry carries its ``value``, its ``unit`` (checked against the one unit its key allows), its
``source`` and, when it is not a published number, its ``derivation``.

Entry keys (``<mode>`` is an array mode such as ``int4xint4``; it is matched to the machine's modes
through :func:`accelsim.numerics.formats.mode_key`, so ``mac.fp8xfp8`` also prices a mode named
``fp8e4m3xfp8e4m3``; ``<scale>`` a block-scale format, :data:`~accelsim.hw.blockmac.SCALE_FORMATS`):

=============================== ========= =========================================================
key                             unit      what it prices
=============================== ========= =========================================================
``mac.<mode>``                  pJ        product stage of one MAC (multiplier, or shifter), per MAC
``accumulate.<format>``         pJ        the accumulator add of one MAC, by accumulator format
``sram.read_bit.<N>KiB``        pJ/bit    SRAM read of one bit from a buffer of N KiB (anchors)
``sram.write_bit.<N>KiB``       pJ/bit    SRAM write of one bit, same
``dram.read_bit``               pJ/bit    one bit read from DRAM
``dram.write_bit``              pJ/bit    one bit written to DRAM
``rescale.element``             pJ        one element pass through the rescale unit
``vector.<format>``             pJ        one vector-lane operation on an element of that format
``scale_multiply.<scale>``      pJ        applying two block scales of that format to one block
                                          partial sum of a block dot product (and converting it for
                                          the accumulator): :mod:`accelsim.hw.blockmac`
``tensor_scale_multiply``       pJ        applying two per-tensor scales to one output (NVFP4)
``block_scale.<scale>``         pJ        computing one block scale of that format from its amax
``random_bit``                  pJ        one random bit for stochastic rounding
``butterfly.<format>``          pJ        one add or subtract of a Hadamard butterfly, in that format
``area.pe.<mode>``              µm²       one MAC lane of that mode (product stage + its accumulator)
``area.pe_shared.<mode>``       µm²       what one MAC lane of that mode adds to a multi-precision PE
                                          built around a wider datapath (``array.pe_area: shared``)
``area.sram_kib``               µm²/KiB   SRAM macro area per KiB of capacity
``area.rescale_lane``           µm²       one lane of the rescale unit
``area.vector_lane``            µm²       one lane of the vector unit
``leakage.power_density``       mW/mm²    static power per unit of area
=============================== ========= =========================================================

A machine with a block-scaled mode (a mode with an MX, NVFP4 or int4b operand) also needs the
block entries its modes can produce (:func:`required_entries`); other machines do not, so tables
written before block formats existed still price them.

This module loads, validates and looks entries up; it computes no energy (that is
:mod:`accelsim.energy`'s job alone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, StrictFloat, ValidationError

from accelsim.errors import InputError, Problem
from accelsim.hw.blockmac import (
    SCALE_FORMATS,
    default_scale_format,
    formats_of,
    has_tensor_scale,
    is_block_dot_product,
    is_block_operand,
    partial_sum_format,
)
from accelsim.numerics.formats import FORMATS, get_format, mode_key, parse_mode
from accelsim.spec.load import problems_from_validation
from accelsim.spec.models import NAME_PATTERN, StrictModel, suggest
from accelsim.spec.yamlio import load_yaml_file

#: Where the shipped tables live: package data beside this module (``accelsim/hw/tables``), so a
#: table name resolves the same in a source checkout, an editable install and a wheel.
SHIPPED_TABLES = Path(__file__).resolve().parent / "tables"
#: Largest value any entry may have (in its own unit): rejects absurd numbers, not real ones.
MAX_VALUE = 1e9

#: Formats a policy may name as accumulator or vector format (at least 16 bits wide), plus the
#: integer accumulators of the INT4 datapaths (``int_accumulator`` of the precision policies).
WIDE_FORMATS: tuple[str, ...] = tuple(n for n, f in FORMATS.items() if f.bits >= 16 and f.kind == "float")
ACCUMULATORS: tuple[str, ...] = (*WIDE_FORMATS, "int16", "int32")
VECTOR_FORMATS: tuple[str, ...] = WIDE_FORMATS

#: Key kind -> (unit, accepted spellings of the unit).
_UM2 = ("µm²", "μm²", "um^2", "um2")
UNITS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mac": ("pJ", ("pJ",)),
    "accumulate": ("pJ", ("pJ",)),
    "sram.read_bit": ("pJ/bit", ("pJ/bit",)),
    "sram.write_bit": ("pJ/bit", ("pJ/bit",)),
    "dram.read_bit": ("pJ/bit", ("pJ/bit",)),
    "dram.write_bit": ("pJ/bit", ("pJ/bit",)),
    "rescale.element": ("pJ", ("pJ",)),
    "vector": ("pJ", ("pJ",)),
    "scale_multiply": ("pJ", ("pJ",)),
    "tensor_scale_multiply": ("pJ", ("pJ",)),
    "block_scale": ("pJ", ("pJ",)),
    "random_bit": ("pJ", ("pJ",)),
    "butterfly": ("pJ", ("pJ",)),
    "area.pe": ("µm²", _UM2),
    "area.pe_shared": ("µm²", _UM2),
    "area.sram_kib": ("µm²/KiB", tuple(f"{u}/KiB" for u in _UM2)),
    "area.rescale_lane": ("µm²", _UM2),
    "area.vector_lane": ("µm²", _UM2),
    "leakage.power_density": ("mW/mm²", ("mW/mm²", "mW/mm^2", "mW/mm2")),
}
_FIXED = (
    "dram.read_bit", "dram.write_bit", "rescale.element", "area.sram_kib", "area.rescale_lane",
    "area.vector_lane", "leakage.power_density",
)
#: Fixed keys needed only by machines with block-scaled modes.
_BLOCK_FIXED = ("tensor_scale_multiply", "random_bit")
#: Key prefixes whose argument is a block-scale format, and those whose argument is a wide format.
_SCALE_KINDS = ("scale_multiply", "block_scale")
_SRAM_KEY = re.compile(r"^(sram\.(?:read|write)_bit)\.(\d+(?:\.\d+)?)KiB$")
KEY_FORMS = (
    "mac.<mode>", "accumulate.<format>", "sram.read_bit.<N>KiB", "sram.write_bit.<N>KiB",
    *_FIXED[:3], "vector.<format>", "scale_multiply.<scale>", "tensor_scale_multiply", "block_scale.<scale>",
    "random_bit", "butterfly.<format>", "area.pe.<mode>", "area.pe_shared.<mode>", *_FIXED[3:],
)
#: Concrete keys offered as "did you mean" candidates.
_EXAMPLE_MODES = ("int4xint4", "fp4r4xint4", "fp8xfp8", "fp16xfp16", "fp32xfp32")
_CANDIDATES = (
    *(f"mac.{m}" for m in _EXAMPLE_MODES), *(f"area.pe.{m}" for m in _EXAMPLE_MODES),
    *(f"area.pe_shared.{m}" for m in _EXAMPLE_MODES),
    *(f"accumulate.{a}" for a in ACCUMULATORS), *(f"vector.{v}" for v in VECTOR_FORMATS),
    *(f"butterfly.{v}" for v in VECTOR_FORMATS), *(f"{k}.{f}" for k in _SCALE_KINDS for f in SCALE_FORMATS),
    "sram.read_bit.8KiB", "sram.write_bit.8KiB", *_FIXED, *_BLOCK_FIXED,
)

Slot = tuple[str, Any]  # (kind, argument): ("mac", frozenset({"int4"})), ("sram.read_bit", 8.0), ...


def classify_key(key: str) -> Slot:
    """The (kind, argument) an entry key prices; ``ValueError`` with a did-you-mean otherwise."""
    if key in _FIXED or key in _BLOCK_FIXED:
        return key, None
    for prefix in ("mac.", "area.pe.", "area.pe_shared."):
        if key.startswith(prefix):
            try:
                a, b = parse_mode(key[len(prefix):])
            except ValueError:
                break
            return prefix[:-1], mode_key(a, b)
    if key.startswith("accumulate.") and key[len("accumulate."):] in ACCUMULATORS:
        return "accumulate", key[len("accumulate."):]
    if key.startswith("vector.") and key[len("vector."):] in VECTOR_FORMATS:
        return "vector", key[len("vector."):]
    if key.startswith("butterfly.") and key[len("butterfly."):] in VECTOR_FORMATS:
        return "butterfly", key[len("butterfly."):]
    for kind in _SCALE_KINDS:
        if key.startswith(kind + ".") and key[len(kind) + 1:] in SCALE_FORMATS:
            return kind, key[len(kind) + 1:]
    match = _SRAM_KEY.match(key)
    if match and float(match.group(2)) > 0:
        return match.group(1), float(match.group(2))
    raise ValueError(
        f"unknown entry {key!r}{suggest(key, _CANDIDATES)} (entries are {', '.join(KEY_FORMS)}; "
        f"<mode> an array mode such as int4xint4, accumulate formats {', '.join(ACCUMULATORS)}, "
        f"vector and butterfly formats {', '.join(VECTOR_FORMATS)}, scale formats {', '.join(SCALE_FORMATS)})"
    )


# ------------------------------------------------------------------------------------------------
# the file's model


class _TableModel(StrictModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


#: A non-negative finite number (an int is accepted; a string, a bool or null is not).
Number = Annotated[StrictFloat, Field(ge=0, le=MAX_VALUE)]
def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


#: Free text that must say something (a source, a derivation, a description).
Text = Annotated[str, Field(max_length=4000), AfterValidator(_not_blank)]


class Entry(_TableModel):
    """One priced action or unit: its number, its unit, where it comes from."""

    value: Number = Field(description="the number, in ``unit``; never negative")
    unit: str = Field(description="the unit, which must be the one the key allows (pJ, pJ/bit, µm², ...)")
    source: Text = Field(description="publication or assumption the value comes from")
    derivation: Text | None = Field(None, description="how a value not published as such was derived")


class Scaling(_TableModel):
    """How a newer node's entries were obtained from an older node's table."""

    from_table: str = Field(pattern=NAME_PATTERN, description="name of the table scaled from (e.g. 45nm)")
    energy_factor: float = Field(gt=0, le=100, description="energy per action, this node / that node")
    area_factor: float = Field(gt=0, le=100, description="area per unit, this node / that node")
    source: Text = Field(description="where the factors come from")


class TechTableSpec(_TableModel):
    """A technology table file (``accelsim/hw/tables/<name>.yaml``, or a user's own)."""

    version: Literal[1] = Field(description="table format version; must be 1")
    name: str = Field(pattern=NAME_PATTERN, description="table name, e.g. 45nm")
    node_nm: float = Field(gt=0, le=1000, description="process node, nm")
    description: Text = Field(description="what the table models, its conventions and cross-checks")
    scaling: Scaling | None = Field(None, description="for a scaled node: the factors and their source")
    entries: dict[str, Entry] = Field(min_length=1, description="entry key -> priced action or unit")


# ------------------------------------------------------------------------------------------------
# the loaded table


@dataclass(frozen=True)
class TechTable:
    """A validated table and the file it came from, with entries indexed by what they price."""

    spec: TechTableSpec
    file: str = ""
    _slots: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for key in self.spec.entries:
            self._slots[classify_key(key)] = key

    @property
    def name(self) -> str:
        return self.spec.name

    def key_for(self, kind: str, arg: Any = None) -> str | None:
        """The table's key for an action (``None`` if the table has no entry for it)."""
        return self._slots.get((kind, arg))

    def value(self, kind: str, arg: Any = None, label: str = "") -> float:
        """An entry's value; a missing one is an :class:`InputError` naming the entry and the table."""
        key = self.key_for(kind, arg)
        if key is None:
            raise InputError.single(
                self.file or self.name, "entries", f"no entry {label or kind!r} in table {self.name!r}"
            )
        return float(self.spec.entries[key].value)

    def anchors(self, kind: str) -> list[tuple[float, float]]:
        """(capacity KiB, value) of the SRAM entries of ``kind``, by capacity."""
        return sorted(
            (arg, float(self.spec.entries[key].value)) for (k, arg), key in self._slots.items() if k == kind
        )

    def with_value(self, key: str, value: float) -> "TechTable":
        """A copy with one entry's value replaced (what-if studies, tests)."""
        if key not in self.spec.entries:
            raise KeyError(f"table {self.name!r} has no entry {key!r}")
        entries = dict(self.spec.entries)
        entries[key] = entries[key].model_copy(update={"value": value})
        return TechTable(self.spec.model_copy(update={"entries": entries}), self.file)


# ------------------------------------------------------------------------------------------------
# loading


def table_dirs(hardware_file: str | Path) -> list[Path]:
    """Folders searched for a table name: the hardware file's ``tech/``, then the shipped tables."""
    return [Path(hardware_file).parent / "tech", SHIPPED_TABLES]


def known_names(hardware_file: str | Path) -> list[str]:
    names: set[str] = set()
    for folder in table_dirs(hardware_file):
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.yaml"))
    return sorted(names, key=lambda n: (len(n), n))


def resolve_technology(technology: str, hardware_file: str | Path) -> Path:
    """The table file a hardware spec's ``technology:`` names.

    A value ending in ``.yaml``/``.yml`` is a path relative to the hardware file's folder; anything
    else is a table name, looked up as ``<hardware folder>/tech/<name>.yaml`` and then among the
    shipped tables.
    """
    hw = str(hardware_file)
    if technology.lower().endswith((".yaml", ".yml")):
        path = Path(technology)
        if not path.is_absolute():
            path = Path(hardware_file).parent / path
        if not path.is_file():
            raise InputError.single(
                hw, "technology", f"technology table {technology!r} not found (looked for {path})"
            )
        return path
    for folder in table_dirs(hardware_file):
        candidate = folder / f"{technology}.yaml"
        if candidate.is_file():
            return candidate
    known = known_names(hardware_file)
    raise InputError.single(
        hw, "technology",
        f"unknown technology {technology!r}{suggest(technology, known)} "
        f"(known: {', '.join(known) or 'none'}; or a path to a table file ending in .yaml)",
    )


def load_table_file(path: str | Path) -> TechTable:
    """Load and validate one table file; every problem is reported at once."""
    path = Path(path)
    file = str(path)
    data = load_yaml_file(path)
    problems: list[Problem] = []
    spec = None
    try:
        spec = TechTableSpec.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from_validation(exc, data, file, TechTableSpec))
    problems.extend(_entry_problems(data.get("entries"), file))
    if problems:
        raise InputError(list(dict.fromkeys(problems)))  # Problem is hashable: drop repeats, keep order
    assert spec is not None
    return TechTable(spec, file)


def load_table(technology: str, hardware_file: str | Path) -> TechTable:
    """The validated table a hardware spec's ``technology:`` names (see :func:`resolve_technology`)."""
    return load_table_file(resolve_technology(technology, hardware_file))


def _entry_problems(entries: Any, file: str) -> list[Problem]:
    """Key, unit, duplicate and SRAM-anchor problems (what the pydantic model cannot see)."""
    if not isinstance(entries, dict):
        return []
    problems: list[Problem] = []
    seen: dict[Slot, str] = {}
    sram: dict[str, list[tuple[float, str, Any]]] = {}
    for key, body in entries.items():
        where = f"entries.{key}"
        try:
            slot = classify_key(str(key))
        except ValueError as exc:
            problems.append(Problem(file, where, str(exc)))
            continue
        if slot in seen:
            problems.append(Problem(
                file, where, f"prices the same action as entry {seen[slot]!r} (mode names are matched by "
                "datapath: int4 = uint4, fp8 = fp8e4m3 = fp8e5m2)",
            ))
        seen.setdefault(slot, str(key))
        kind = slot[0]
        unit, spellings = UNITS[kind]
        if isinstance(body, dict) and isinstance(body.get("unit"), str) and body["unit"] not in spellings:
            problems.append(Problem(
                file, f"{where}.unit", f"unit of {key!r} must be {unit!r}; got {body['unit']!r}",
            ))
        if kind.startswith("sram.") and isinstance(body, dict):
            sram.setdefault(kind, []).append((slot[1], str(key), body.get("value")))
    for kind, anchors in sram.items():
        numeric = sorted((kib, key, v) for kib, key, v in anchors
                         if isinstance(v, (int, float)) and not isinstance(v, bool))
        for (_, k1, v1), (_, k2, v2) in zip(numeric, numeric[1:]):
            if v2 < v1:
                problems.append(Problem(
                    file, f"entries.{k2}.value",
                    f"SRAM energy per bit must not fall as the buffer grows: {k2} = {v2} < {k1} = {v1}",
                ))
    return problems


# ------------------------------------------------------------------------------------------------
# what a machine needs


def _block_needs(modes: Any) -> tuple[list[str], list[str], list[str], bool]:
    """What block-scaled modes can produce: (partial-sum accumulators, scale formats of block dot
    products, scale formats of block quantization, whether a tensor scale is multiplied)."""
    accs: list[str] = []
    multiply: list[str] = []
    quantize: list[str] = []
    tensor = False
    for name in modes:
        a, b = parse_mode(name)
        for side in (a, b):
            if is_block_operand(side):
                quantize += [default_scale_format(f) for f in formats_of(side)]
        if is_block_dot_product(a, b):
            for fa in formats_of(a):
                for fb in formats_of(b):
                    block = min(get_format(fa).block or 1, get_format(fb).block or 1)
                    accs.append(partial_sum_format(fa, fb, block))
                    multiply.append(max((default_scale_format(fa), default_scale_format(fb)),
                                        key=SCALE_FORMATS.index))
                    tensor = tensor or (has_tensor_scale(fa) and has_tensor_scale(fb))
    return list(dict.fromkeys(accs)), list(dict.fromkeys(multiply)), list(dict.fromkeys(quantize)), tensor


def required_entries(machine: Any, counts: Any = None) -> list[tuple[str, Slot]]:
    """The entries pricing everything ``machine`` can count (and, if given, everything in ``counts``).

    Returned as (key to name in a message, slot). A shared PE (``array.pe_area: shared``) needs
    ``area.pe.<mode>`` for its widest mode (:attr:`Machine.widest_mode`) and ``area.pe_shared.<mode>``
    for every other; a separate one ``area.pe.<mode>`` for every mode. SRAM needs at least one anchor for reads and one
    for writes; accumulator and vector formats are every format of 16 bits or more (what a policy may
    name), plus any other format found in ``counts``. A machine with a block-scaled mode also needs
    ``random_bit``, ``butterfly.<format>`` for those formats, ``block_scale.<scale>`` for its block
    formats' scales, and for each block dot product its fixed-point ``accumulate.<int16|int32>``,
    ``scale_multiply.<scale>`` and, for NVFP4, ``tensor_scale_multiply`` (:mod:`accelsim.hw.blockmac`);
    scale formats a run used beyond those (int4b's are a policy option) come from ``counts``.
    """
    need: list[tuple[str, Slot]] = []
    array = machine.spec.array
    shared_base = machine.widest_mode if array.pe_area == "shared" else None
    for name in array.modes:
        a, b = parse_mode(name)
        need.append((f"mac.{name}", ("mac", mode_key(a, b))))
        area = "area.pe" if shared_base in (None, name) else "area.pe_shared"
        need.append((f"{area}.{name}", (area, mode_key(a, b))))
    accs = list(WIDE_FORMATS)
    vecs = list(VECTOR_FORMATS)
    block_accs, multiply, quantize, tensor = _block_needs(array.modes)
    blocky = bool(quantize)
    accs += [f for f in block_accs if f not in accs]
    butterflies = list(VECTOR_FORMATS) if blocky else []
    random_bits = blocky
    if counts is not None:
        for fmt, n in counts.accumulations.items():
            if n and fmt not in accs:
                accs.append(fmt)
        for fmt, n in counts.vector_elements.items():
            if n and fmt not in vecs:
                vecs.append(fmt)
        for name, n in counts.macs.items():
            a, b = parse_mode(name)
            if n and (f"mac.{name}", ("mac", mode_key(a, b))) not in need:
                need.append((f"mac.{name}", ("mac", mode_key(a, b))))
        for have, found in ((multiply, counts.block_partial_sums), (quantize, counts.block_scales),
                            (butterflies, counts.butterflies)):
            have += [f for f, n in found.items() if n and f not in have]
        tensor = tensor or bool(counts.tensor_scale_products)
        random_bits = random_bits or bool(counts.random_bits)
    need += [(f"accumulate.{f}", ("accumulate", f)) for f in accs]
    need += [(f"vector.{f}", ("vector", f)) for f in vecs]
    need += [(f"scale_multiply.{f}", ("scale_multiply", f)) for f in multiply]
    if tensor:
        need.append(("tensor_scale_multiply", ("tensor_scale_multiply", None)))
    need += [(f"block_scale.{f}", ("block_scale", f)) for f in quantize]
    if random_bits:
        need.append(("random_bit", ("random_bit", None)))
    need += [(f"butterfly.{f}", ("butterfly", f)) for f in butterflies]
    need += [(k, (k, None)) for k in _FIXED]
    return need


def missing_entries(table: TechTable, machine: Any, counts: Any = None) -> list[str]:
    missing = [key for key, (kind, arg) in required_entries(machine, counts) if table.key_for(kind, arg) is None]
    for kind in ("sram.read_bit", "sram.write_bit"):
        if not table.anchors(kind):
            missing.append(f"{kind}.<N>KiB")
    return missing


def check_table_covers(table: TechTable, machine: Any, counts: Any = None) -> None:
    """Raise :class:`InputError` (one line, naming every missing entry and the table file) unless
    ``table`` prices every action ``machine`` (and ``counts``, if given) can produce."""
    missing = missing_entries(table, machine, counts)
    if missing:
        hw = f" ({machine.file})" if getattr(machine, "file", "") else ""
        raise InputError.single(
            table.file or table.name, "entries",
            f"table {table.name!r} has no entr{'y' if len(missing) == 1 else 'ies'} "
            f"{', '.join(missing)}, needed by hardware {machine.name!r}{hw}",
        )
