"""Energy and area: the shipped technology tables, pricing = counts × table (linear, per component,
per op), the anchor ratios, and every class of bad table input (messages pinned)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
import yaml

from accelsim import api
from accelsim import energy as E
from accelsim.errors import InputError
from accelsim.hw import tech
from accelsim.hw.machine import Machine
from accelsim.sim.result import ActionCounts
from accelsim.spec import load as spec_load

from conftest import HW_TEXT, HWCONFIGS, ROOT, WORKLOADS, write

TECH = ROOT / "accelsim" / "hw" / "tables"  # package data: found by name from any install
INT4_HW = HWCONFIGS / "int4-32x32.yaml"

#: Which component each kind of entry prices (area entries change the area, hence leakage).
COMPONENT_OF = {
    "mac": "mac", "accumulate": "mac", "sram.read_bit": "sram", "sram.write_bit": "sram",
    "dram.read_bit": "dram", "dram.write_bit": "dram", "rescale.element": "rescale", "vector": "vector",
    "leakage.power_density": "leakage", "scale_multiply": "mac", "tensor_scale_multiply": "mac",
    "block_scale": "rescale", "random_bit": "rescale", "butterfly": "vector",
}


def component_of(key: str) -> str:
    kind, _ = tech.classify_key(key)
    return COMPONENT_OF.get(kind, "area")


@pytest.fixture(scope="module")
def resnet():
    """resnet18 on int4-32x32 (policy int4) and fp16-32x32 (baseline fp16), closed-form timing."""
    return api.run(WORKLOADS / "resnet18.yaml", INT4_HW, write=False)


@pytest.fixture(scope="module")
def t45():
    return tech.load_table_file(TECH / "45nm.yaml")


def machine_keys(table, machine) -> set[str]:
    """The table's keys that price what ``machine`` can do."""
    keys = {table.key_for(kind, arg) for _, (kind, arg) in tech.required_entries(machine)}
    return {k for k in keys if k} | {k for k in table.spec.entries if k.startswith("sram.")}


def machine_from(tmp_path: Path, text: str, name: str = "hw.yaml") -> Machine:
    path = write(tmp_path / name, text)
    return Machine(spec_load.load_hardware(path), str(path))


def table_text(**changes) -> str:
    """The 45 nm table's YAML with entries replaced (value None: removed)."""
    data = yaml.safe_load((TECH / "45nm.yaml").read_text(encoding="utf-8"))
    for key, body in changes.items():
        if body is None:
            data["entries"].pop(key)
        else:
            data["entries"][key] = body
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def problems_of(path: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        tech.load_table_file(path)
    return [str(p) for p in info.value.problems]


# ------------------------------------------------------------------------------------------------
# shipped tables


@pytest.mark.parametrize("name", ["45nm", "7nm"])
def test_shipped_tables_load_with_unit_and_source(name):
    table = E.load_table(name, INT4_HW)
    assert table.name == name
    assert Path(table.file) == TECH / f"{name}.yaml"
    for key, entry in table.spec.entries.items():
        kind, _ = tech.classify_key(key)
        assert entry.unit in tech.UNITS[kind][1], key
        assert entry.source.strip(), key
    if name == "7nm":
        assert table.spec.scaling is not None and table.spec.scaling.from_table == "45nm"
        assert all(e.derivation for e in table.spec.entries.values())


def test_shipped_tables_cover_shipped_machines(resnet):
    for hw in sorted(HWCONFIGS.glob("*.yaml")):
        machine = Machine(spec_load.load_hardware(hw), str(hw))
        E.check_table_covers(E.machine_table(machine), machine)
    for run in (resnet.policy, resnet.baseline):
        E.check_table_covers(E.machine_table(run.machine), run.machine, run.step.counts)


def test_7nm_is_45nm_times_its_stated_factors(t45):
    t7 = tech.load_table_file(TECH / "7nm.yaml")
    scaling = t7.spec.scaling
    assert set(t7.spec.entries) == set(t45.spec.entries)
    for key, entry in t7.spec.entries.items():
        if key.startswith(("dram.", "leakage.")):
            continue  # own sources, stated in the entries
        factor = scaling.area_factor if key.startswith("area.") else scaling.energy_factor
        assert entry.value == pytest.approx(t45.spec.entries[key].value * factor, rel=1e-3), key


# ------------------------------------------------------------------------------------------------
# lookup


def test_technology_lookup_order(tmp_path):
    """A name is looked up next to the hardware file first (``tech/<name>.yaml``), then shipped; a
    ``.yaml`` value is a path relative to the hardware file."""
    hw = write(tmp_path / "hw.yaml", HW_TEXT)
    assert Path(E.load_table("45nm", hw).file) == TECH / "45nm.yaml"
    local = write(tmp_path / "tech" / "45nm.yaml", table_text().replace("name: 45nm", "name: my45"))
    assert E.load_table("45nm", hw).name == "my45"
    assert Path(E.load_table("tech/45nm.yaml", hw).file) == local
    assert E.load_table(str(TECH / "7nm.yaml"), hw).name == "7nm"


def test_modes_match_entries_by_datapath(tmp_path, t45):
    """``fp8e4m3xfp8e4m3`` is priced by ``mac.fp8xfp8``, ``uint4xint4`` by ``mac.int4xint4``."""
    text = HW_TEXT.replace("{int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}", "{uint4xint4: 1, fp8e4m3xfp8e4m3: 1}")
    machine = machine_from(tmp_path, text)
    E.check_table_covers(t45, machine)
    counts = ActionCounts(macs=Counter({"uint4xint4": 10, "fp8e4m3xfp8e4m3": 100}))
    assert E.energy_breakdown_pj(counts, machine, t45)["mac"] == pytest.approx(10 * 0.05 + 100 * 0.3)
    assert E.area_mm2(machine, t45)["pe_array"] == pytest.approx(64 * (137 + 1833) / 1e6)


def test_sram_price_follows_capacity(t45):
    """At the anchors the anchor; between them affine in √capacity; below the smallest its value."""
    price = lambda kib: E.sram_bit_pj(t45, "sram.read_bit", kib)  # noqa: E731
    assert price(8) == pytest.approx(0.15625) and price(1024) == pytest.approx(1.5625)
    assert price(1) == price(8)
    assert price(16) == pytest.approx(0.15625 + (4 - math.sqrt(8)) / (math.sqrt(32) - math.sqrt(8)) * 0.15625)
    assert price(32) < price(256) < price(1024) < price(4096)


# ------------------------------------------------------------------------------------------------
# pricing


def test_breakdown_has_exactly_the_components(resnet, t45):
    run = resnet.policy
    parts = E.energy_breakdown_pj(run.step.counts, run.machine, t45)
    assert tuple(parts) == E.COMPONENTS == ("mac", "sram", "dram", "rescale", "vector", "leakage")
    assert all(v > 0 for v in parts.values())
    summary = E.energy_summary(run.step.counts.scaled(run.steps), run.machine, t45)
    assert set(summary) == {"energy_pj", "energy_breakdown_pj", "area_mm2"}
    assert summary["energy_pj"] == pytest.approx(sum(summary["energy_breakdown_pj"].values()), rel=1e-15)
    area = E.area_mm2(run.machine, t45)
    assert tuple(area) == ("pe_array", "sram", "rescale", "vector", "total")
    assert summary["area_mm2"] == area["total"] == pytest.approx(sum(v for k, v in area.items() if k != "total"))


@pytest.mark.parametrize("key", sorted(yaml.safe_load((TECH / "45nm.yaml").read_text(encoding="utf-8"))["entries"]))
def test_linearity_one_entry(resnet, t45, key):
    """Doubling one entry changes its own component by exactly what the entry contributes
    (E(2v) − E(v) = E(v) − E(0)) and leaves every other component bit-for-bit unchanged. Area
    entries change the area (that part of it only) and, through it, leakage only."""
    run = resnet.policy
    machine, counts = run.machine, run.step.counts
    value = t45.spec.entries[key].value
    base = E.energy_breakdown_pj(counts, machine, t45)
    doubled = E.energy_breakdown_pj(counts, machine, t45.with_value(key, 2 * value))
    zeroed = E.energy_breakdown_pj(counts, machine, t45.with_value(key, 0.0))
    own = component_of(key)
    touched = "leakage" if own == "area" else own
    for comp in E.COMPONENTS:
        if comp != touched:
            assert doubled[comp] == base[comp], (key, comp)
    assert doubled[touched] - base[touched] == pytest.approx(base[touched] - zeroed[touched], rel=1e-9, abs=1e-6)
    if own == "area":
        a0, a2 = E.area_mm2(machine, t45), E.area_mm2(machine, t45.with_value(key, 2 * value))
        az = E.area_mm2(machine, t45.with_value(key, 0.0))
        changed = [k for k in a0 if k != "total" and a2[k] != a0[k]]
        if key not in machine_keys(t45, machine):
            assert changed == [] and doubled == base  # an entry this machine does not use
            return
        assert changed == [{"area.sram_kib": "sram", "area.rescale_lane": "rescale",
                            "area.vector_lane": "vector"}.get(key, "pe_array")]
        assert a2[changed[0]] - a0[changed[0]] == pytest.approx(a0[changed[0]] - az[changed[0]], rel=1e-12)


@pytest.mark.parametrize("component", E.COMPONENTS)
def test_linearity_component_doubles(resnet, t45, component):
    """Doubling every entry of a component doubles exactly that component and nothing else (for
    ``dram``, ``rescale`` and ``leakage`` that is a single entry each in this run)."""
    run = resnet.policy
    keys = [k for k in t45.spec.entries if component_of(k) == component]
    table = t45
    for key in keys:
        table = table.with_value(key, 2 * table.spec.entries[key].value)
    base = E.energy_breakdown_pj(run.step.counts, run.machine, t45)
    doubled = E.energy_breakdown_pj(run.step.counts, run.machine, table)
    for comp in E.COMPONENTS:
        expect = 2 * base[comp] if comp == component else base[comp]
        assert doubled[comp] == pytest.approx(expect, rel=1e-12), comp


@pytest.mark.parametrize("label", ["policy", "baseline"])
def test_per_op_energies_add_up_to_the_step(resnet, t45, label):
    """Σ ops energy_pj = the step's total. Each op energy and the total are fsum'd sums of ≤ ~20
    products, each rounded once (relative error ≤ 2⁻⁵³), and the ~200 op energies are fsum'd: the
    two sides agree to a few ulps, far inside rel 1e-12."""
    run = getattr(resnet, label)
    total = math.fsum(E.energy_breakdown_pj(run.step.counts, run.machine, t45).values())
    shared = E.ops_energy_pj(run.step, run.machine, t45)  # step leakage shared by cycles
    assert len(shared) == len(run.step.ops)
    assert math.fsum(shared) == pytest.approx(total, rel=1e-12)
    if sum(r.counts.cycles for r in run.step.ops) == run.step.counts.cycles:  # ops do not overlap
        per_op = [E.op_energy_pj(r, run.machine, t45) for r in run.step.ops]
        assert math.fsum(per_op) == pytest.approx(total, rel=1e-12)
        assert shared == pytest.approx(per_op, rel=1e-12)


def test_int4_mac_vs_fp16_fma_energy_is_about_15x(tmp_path, t45):
    """The anchors: FP16 FMA (mult + FP16 add) ≈ 1.5 pJ, INT4 MAC with a 16-bit integer accumulator
    ≈ 0.1 pJ: about 15× at 45 nm."""
    machine = machine_from(tmp_path, HW_TEXT)
    n = 1_000_000
    int4 = ActionCounts(macs=Counter({"int4xint4": n}), accumulations=Counter({"int16": n}))
    fp16 = ActionCounts(macs=Counter({"fp16xfp16": n}), accumulations=Counter({"fp16": n}))
    e_int4 = E.energy_breakdown_pj(int4, machine, t45)["mac"]
    e_fp16 = E.energy_breakdown_pj(fp16, machine, t45)["mac"]
    assert e_int4 / n == pytest.approx(0.1) and e_fp16 / n == pytest.approx(1.5)
    assert e_fp16 / e_int4 == pytest.approx(15, rel=0.1)


def test_fp16_pe_vs_int4_pe_area_is_about_20x(tmp_path, t45):
    fp16 = machine_from(tmp_path, HW_TEXT.replace("{int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}", "{fp16xfp16: 1}"), "a.yaml")
    int4 = machine_from(tmp_path, HW_TEXT.replace("{int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}", "{int4xint4: 1}"), "b.yaml")
    ratio = E.area_mm2(fp16, t45)["pe_array"] / E.area_mm2(int4, t45)["pe_array"]
    assert 18 < ratio < 24


def test_4bit_machine_uses_less_mac_and_sram_energy(resnet, t45):
    p, b = resnet.policy, resnet.baseline
    ep = E.energy_breakdown_pj(p.step.counts, p.machine, t45)
    eb = E.energy_breakdown_pj(b.step.counts, b.machine, t45)
    assert ep["mac"] < eb["mac"] and ep["sram"] < eb["sram"]
    assert ep["rescale"] > 0 == eb["rescale"]


# ------------------------------------------------------------------------------------------------
# bad input


def test_missing_entry_names_entry_and_table(tmp_path):
    path = write(tmp_path / "t.yaml", table_text(**{"mac.fp8xfp8": None, "area.pe_shared.fp8xfp8": None}))
    table = tech.load_table_file(path)  # a table may be partial; the machine decides what it needs
    machine = Machine(spec_load.load_hardware(INT4_HW), str(INT4_HW))  # shared PEs
    with pytest.raises(InputError) as info:
        E.check_table_covers(table, machine)
    assert [str(p) for p in info.value.problems] == [
        f"{path}: entries: table '45nm' has no entries mac.fp8xfp8, area.pe_shared.fp8xfp8, "
        f"needed by hardware 'int4-32x32' ({INT4_HW})"
    ]
    with pytest.raises(InputError, match=r"t\.yaml: entries: no entry 'area\.pe_shared\.fp8xfp8' in table '45nm'$"):
        E.area_mm2(machine, table)
    counts = ActionCounts(macs=Counter({"fp8xfp8": 1}))
    with pytest.raises(InputError, match=r"t\.yaml: entries: no entry 'mac\.fp8xfp8' in table '45nm'$"):
        E.energy_breakdown_pj(counts, machine, table)


def test_missing_format_found_in_counts(tmp_path):
    machine = machine_from(tmp_path, HW_TEXT)
    path = write(tmp_path / "t.yaml", table_text(**{"accumulate.int32": None}))
    table = tech.load_table_file(path)
    E.check_table_covers(table, machine)  # int32 is no format a policy can name today
    counts = ActionCounts(accumulations=Counter({"int32": 5}))
    with pytest.raises(InputError, match=r"has no entry accumulate\.int32, needed by hardware 'hw-test'"):
        E.check_table_covers(table, machine, counts)


def test_negative_energy(tmp_path):
    path = write(tmp_path / "t.yaml", table_text(**{"mac.int4xint4": {"value": -0.05, "unit": "pJ", "source": "x"}}))
    assert problems_of(path) == [
        f"{path}: entries.mac.int4xint4.value: must be greater than or equal to 0; got -0.05"
    ]


def test_non_numeric_energy(tmp_path):
    body = {"value": "cheap", "unit": "pJ", "source": "x"}
    path = write(tmp_path / "t.yaml", table_text(**{"dram.read_bit": {**body, "unit": "pJ/bit"}}))
    assert problems_of(path) == [f"{path}: entries.dram.read_bit.value: must be a valid number; got 'cheap'"]
    path = write(tmp_path / "t2.yaml", table_text(**{"dram.read_bit": {**body, "value": True, "unit": "pJ/bit"}}))
    assert problems_of(path) == [f"{path}: entries.dram.read_bit.value: must be a valid number; got True"]
    path = write(tmp_path / "t4.yaml", table_text().replace("value: 20.0", "value: .nan", 1))
    assert problems_of(path) == [f"{path}: entries.dram.read_bit.value: must be a finite number; got nan"]
    path = write(tmp_path / "t3.yaml", table_text().replace("value: 20.0", "value: .inf", 1))
    assert problems_of(path) == [f"{path}: entries.dram.read_bit.value: must be a finite number; got inf"]


def test_blank_source(tmp_path):
    path = write(tmp_path / "t.yaml", table_text(**{"dram.read_bit": {"value": 20, "unit": "pJ/bit", "source": "  "}}))
    assert problems_of(path) == [f"{path}: entries.dram.read_bit.source: must not be blank; got '  '"]


def test_unknown_technology_name(tmp_path):
    hw = write(tmp_path / "hw.yaml", HW_TEXT)
    with pytest.raises(InputError) as info:
        E.load_table("5nm", hw)
    assert [str(p) for p in info.value.problems] == [
        f"{hw}: technology: unknown technology '5nm'; did you mean '45nm'? "
        "(known: 7nm, 45nm; or a path to a table file ending in .yaml)"
    ]


def test_missing_table_path(tmp_path):
    hw = write(tmp_path / "hw.yaml", HW_TEXT)
    with pytest.raises(InputError) as info:
        E.load_table("mine.yaml", hw)
    assert [str(p) for p in info.value.problems] == [
        f"{hw}: technology: technology table 'mine.yaml' not found (looked for {tmp_path / 'mine.yaml'})"
    ]


def test_unknown_keys_with_did_you_mean(tmp_path):
    text = table_text(**{"mac.int4xin4": {"value": 0.05, "unit": "pJ", "souce": "x"}}).replace("entries:", "entires: {}\nentries:", 1)
    path = write(tmp_path / "t.yaml", text)
    problems = problems_of(path)
    assert f"{path}: entires: unknown key 'entires'; did you mean 'entries'? (allowed: version, name, node_nm, description, scaling, entries)" in problems
    assert f"{path}: entries.mac.int4xin4.souce: unknown key 'souce'; did you mean 'source'? (allowed: value, unit, source, derivation)" in problems
    assert any(p.startswith(f"{path}: entries.mac.int4xin4: unknown entry 'mac.int4xin4'; did you mean 'mac.int4xint4'? (entries are mac.<mode>, ") for p in problems)
    assert len(problems) == 4  # plus: source is missing — all reported at once


def test_wrong_unit_duplicate_datapath_and_falling_sram(tmp_path):
    path = write(tmp_path / "t.yaml", table_text(**{
        "mac.int4xint4": {"value": 0.05, "unit": "nJ", "source": "x"},
        "mac.fp8e4m3xfp8e5m2": {"value": 0.3, "unit": "pJ", "source": "x"},
        "sram.read_bit.1024KiB": {"value": 0.2, "unit": "pJ/bit", "source": "x"},
    }))
    assert problems_of(path) == [
        f"{path}: entries.mac.int4xint4.unit: unit of 'mac.int4xint4' must be 'pJ'; got 'nJ'",
        f"{path}: entries.mac.fp8e4m3xfp8e5m2: prices the same action as entry 'mac.fp8xfp8' "
        "(mode names are matched by datapath: int4 = uint4, fp8 = fp8e4m3 = fp8e5m2)",
        f"{path}: entries.sram.read_bit.1024KiB.value: SRAM energy per bit must not fall as the buffer "
        "grows: sram.read_bit.1024KiB = 0.2 < sram.read_bit.32KiB = 0.3125",
    ]


def test_table_file_problems_name_the_table(tmp_path):
    hw = write(tmp_path / "hw.yaml", HW_TEXT.replace("clock_ghz: 1.0", "clock_ghz: 1.0\ntechnology: bad.yaml"))
    write(tmp_path / "bad.yaml", "version: 2\nname: bad\n")
    with pytest.raises(InputError) as info:
        E.load_table("bad.yaml", hw)
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'bad.yaml'}: version: must be 1; got 2",
        f"{tmp_path / 'bad.yaml'}: node_nm: required field is missing",
        f"{tmp_path / 'bad.yaml'}: description: required field is missing",
        f"{tmp_path / 'bad.yaml'}: entries: required field is missing",
    ]


def test_cli_rejects_unknown_technology_and_writes_nothing(tmp_path, cli):
    """An unknown technology name: exit 2, one line naming the file and field, no report."""
    from conftest import HWCONFIGS, WORKLOADS

    hw = tmp_path / "hw.yaml"
    hw.write_text((HWCONFIGS / "fp16-32x32.yaml").read_text().replace("technology: 45nm", "technology: 3nm"))
    code, out, err = cli("run", WORKLOADS / "resnet18.yaml", hw, "--out", tmp_path / "r")
    assert code == 2
    assert err.startswith(f"accelsim: error: {hw}: technology: ") and "3nm" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_validate_checks_technology_tables(tmp_path, cli):
    code, out, err = cli("validate", *sorted(TECH.glob("*.yaml")))
    assert code == 0 and out.count("(technology table)") == 2
    bad = tmp_path / "t.yaml"
    bad.write_text((TECH / "45nm.yaml").read_text().replace("value: 1.1", "value: lots", 1))
    code, out, err = cli("validate", bad)
    assert code == 2 and "must be" in err and str(bad) in err


# ------------------------------------------------------------------------------------------------
# PE area models: one datapath per mode, or a shared multi-precision PE


def test_shared_pe_is_its_widest_datapath_plus_increments(t45):
    """int4-32x32 (shared): an FP16 FMA lane (3000 µm²) + 2 HFP8 lanes x 255 + 4 INT4 lanes x 70.2 +
    4 log4 lanes x 94.28 = 4167.92 µm² per PE; one datapath per mode would be 4·137 + 4·184 +
    2·1833 + 3000 = 7950. With 640 KiB of SRAM (3.0208 mm²), 32 rescale and 32 vector lanes
    (0.096 + 0.3803 mm²): 7.765 mm² against 11.638 (its FP16 twin: 6.569)."""
    machine = Machine(spec_load.load_hardware(INT4_HW), str(INT4_HW))
    assert machine.spec.array.pe_area == "shared" and machine.widest_mode == "fp16xfp16"
    shared = E.pe_area_um2(machine, t45)
    assert shared["per_mode_um2"] == pytest.approx(
        {"int4xint4": 4 * 70.2, "fp4r4xint4": 4 * 94.28, "fp8xfp8": 2 * 255, "fp16xfp16": 3000})
    assert shared["total_um2"] == pytest.approx(4167.92)
    assert E.pe_area_um2(machine, t45, "separate")["total_um2"] == pytest.approx(7950)
    rest = 640 * 4720 + 32 * 3000 + 32 * 11884
    assert E.area_mm2(machine, t45)["total"] == pytest.approx((1024 * 4167.92 + rest) / 1e6)
    assert E.area_mm2(machine, t45)["total"] == pytest.approx(7.765, abs=5e-4)
    fp16 = Machine(spec_load.load_hardware(HWCONFIGS / "fp16-32x32.yaml"), "fp16-32x32.yaml")
    assert E.area_mm2(fp16, t45)["total"] == pytest.approx((1024 * 3000 + rest) / 1e6)


def test_shared_int4_increment_is_ibm_16_percent(tmp_path, t45):
    """The derivation of area.pe_shared.int4xint4: on a PE shaped like IBM's engine (FP16 : HFP8 :
    INT4 = 1 : 2 : 8) the INT4 lanes add exactly 16 % to the FP16/HFP8 datapath."""
    machine = machine_from(tmp_path, HW_TEXT.replace(
        "dataflow: os, modes: {int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}",
        "dataflow: os, pe_area: shared, modes: {fp16xfp16: 1, fp8xfp8: 2, int4xint4: 8}"))
    per = E.pe_area_um2(machine, t45)["per_mode_um2"]
    assert per["int4xint4"] / (per["fp16xfp16"] + per["fp8xfp8"]) == pytest.approx(0.16, rel=1e-12)


def test_widest_mode_and_single_mode_machines(tmp_path, t45):
    """The widest datapath: the widest operand, then the wider other operand, then the first listed;
    with one mode both models price the same lane."""
    from accelsim.hw.machine import widest_mode

    assert widest_mode(("int4xint4", "fp32xfp32", "fp16xfp16")) == "fp32xfp32"
    assert widest_mode(("fp16xint4", "fp16xfp16")) == "fp16xfp16"
    assert widest_mode(("fp4r4xint4", "int4xint4")) == "fp4r4xint4"
    assert widest_mode(("fp8xfp8", "fp8e4m3xint4")) == "fp8xfp8"
    fp32 = machine_from(tmp_path, HW_TEXT.replace(
        "dataflow: os, modes: {int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}",
        "dataflow: os, pe_area: shared, modes: {fp16xfp16: 2, fp32xfp32: 1}"), "fp32.yaml")
    assert E.pe_area_um2(fp32, t45)["total_um2"] == pytest.approx(11884 + 2 * 1010.3)
    for model in ("separate", "shared"):
        one = machine_from(tmp_path, HW_TEXT.replace(
            "dataflow: os, modes: {int4xint4: 4, fp4r4xint4: 4, fp16xfp16: 1}",
            f"dataflow: os, pe_area: {model}, modes: {{int4xint4: 4}}"), f"{model}.yaml")
        assert E.pe_area_um2(one, t45) == {
            "model": model, "widest_mode": "int4xint4" if model == "shared" else None,
            "per_mode_um2": {"int4xint4": 4 * 137}, "total_um2": 4 * 137}


def test_shared_pe_needs_its_increments(tmp_path):
    """A shared PE needs area.pe_shared.<mode> for every mode but its widest; a separate one does
    not."""
    table = write(tmp_path / "t.yaml", table_text(**{"area.pe_shared.int4xint4": None}))
    text = HW_TEXT.replace("technology", "#").replace(
        "dataflow: os,", "dataflow: os, pe_area: shared,") + "technology: t.yaml\n"
    machine = machine_from(tmp_path, text)
    with pytest.raises(InputError) as info:
        E.check_table_covers(tech.load_table_file(table), machine)
    assert str(info.value.problems[0]) == (
        f"{table}: entries: table '45nm' has no entry area.pe_shared.int4xint4, needed by hardware "
        f"'hw-test' ({machine.file})"
    )
    separate = machine_from(tmp_path, HW_TEXT, "sep.yaml")
    E.check_table_covers(tech.load_table_file(table), separate)


def test_average_power(tmp_path, t45):
    """Energy over time: 10^6 INT4 MACs with int16 accumulation (0.1 pJ each) in 1000 cycles at
    1 GHz on the 8x8 test machine (separate PEs: 64·(4·137 + 4·184 + 3000) µm², 160 KiB of SRAM, 8 + 8
    lanes; 10 mW/mm² of leakage): 0.1 µJ / 1 µs = 100 mW + leakage."""
    machine = machine_from(tmp_path, HW_TEXT)
    counts = ActionCounts(macs=Counter({"int4xint4": 10**6}), accumulations=Counter({"int16": 10**6}), cycles=1000)
    area = (64 * (4 * 137 + 4 * 184 + 3000) + 160 * 4720 + 8 * 3000 + 8 * 11884) / 1e6
    assert E.area_mm2(machine, t45)["total"] == pytest.approx(area)
    assert E.average_power_mw(counts, machine, t45) == pytest.approx(100 + 10 * area, rel=1e-12)
    with pytest.raises(ValueError, match="at least one cycle"):
        E.average_power_mw(ActionCounts(), machine, t45)
