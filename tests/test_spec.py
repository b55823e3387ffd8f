"""Spec files: shipped examples validate, specs round-trip, and every class of bad input gets exit
code 2 with one line naming the file and the field (messages pinned)."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelsim.numerics.formats import MODE_OPERANDS, OPERAND_FORMATS
from accelsim.numerics.policy import PRESETS, PrecisionPolicy

from accelsim import api
from accelsim.errors import InputError
from accelsim.spec import load as spec_load
from accelsim.spec.models import HardwareSpec, SweepSpec, WorkloadSpec

from conftest import HW_TEXT, HWCONFIGS, WORKLOAD_TEXT, WORKLOADS, write

SHIPPED = sorted(WORKLOADS.glob("*.yaml")) + sorted(HWCONFIGS.glob("*.yaml"))


def test_shipped_files_validate(cli):
    """`accelsim validate workloads/*.yaml hwconfigs/*.yaml` passes and names each kind."""
    code, out, err = cli("validate", *SHIPPED)
    assert code == 0, err
    assert err == ""
    assert out.count("ok  ") == len(SHIPPED) >= 9
    assert "(workload)" in out and "(hardware)" in out


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_round_trip(path: Path):
    """Dumping a validated spec and validating the dump gives the same spec."""
    spec = spec_load.load_spec_file(path)
    kind = {HardwareSpec: "hardware", WorkloadSpec: "workload", SweepSpec: "sweep"}[type(spec)]
    again = spec_load.validate_data(kind, spec.model_dump(mode="json"), "dump")
    assert again == spec


def _problems(tmp_path: Path, kind: str, text: str) -> list[str]:
    path = write(tmp_path / f"{kind}.yaml", text)
    with pytest.raises(InputError) as info:
        spec_load.load_spec_file(path)
    return [str(p).replace(str(path), f"{kind}.yaml") for p in info.value.problems]


def test_all_errors_at_once_with_suggestions(tmp_path: Path):
    """Every problem in a file is reported in one go, unknown keys with the nearest known key."""
    text = (
        HW_TEXT.replace("rows: 8", "rowz: 8").replace("dataflow: os", "dataflow: xs")
        .replace("clock_ghz: 1.0", "clock_ghz: 0").replace("bandwidth_gbps: 128", "bandwidth_gbps: -5")
    )
    assert _problems(tmp_path, "hw", text) == [
        "hw.yaml: clock_ghz: must be greater than 0; got 0",
        "hw.yaml: array.rows: required field is missing",
        "hw.yaml: array.dataflow: must be 'os', 'ws' or 'is'; got 'xs'",
        "hw.yaml: array.rowz: unknown key 'rowz'; did you mean 'rows'? (allowed: rows, cols, dataflow, modes, fold_overlap, pe_area, simd)",
        "hw.yaml: dram.bandwidth_gbps: must be greater than 0; got -5",
    ]


def test_layer_errors_name_the_layer_field(tmp_path: Path):
    text = WORKLOAD_TEXT.replace("{type: relu}", "{type: relux}", 1).replace(
        "{type: linear, out: 10}", "{type: linear, out: 0, bias: true}"
    )
    assert _problems(tmp_path, "wl", text) == [
        "wl.yaml: model.layers.1.type: unknown layer type 'relux'; did you mean 'relu'? (allowed: linear, "
        "conv2d, maxpool, avgpool, relu, relu6, gelu, batchnorm, layernorm, flatten, softmax, add, concat, "
        "embedding, attention, select, gemm)",
        "wl.yaml: model.layers.5.out: must be greater than or equal to 1; got 0",
        "wl.yaml: model.layers.5.bias: unknown key 'bias' (allowed: name, inputs, type, out)",
    ]


def test_precision_override_fields_are_validated(tmp_path: Path):
    text = WORKLOAD_TEXT.replace(
        "precision: int4", "precision: {preset: int4, tpr: maybe, fwd_weight: int9, gradscal: {}}"
    )
    assert _problems(tmp_path, "wl", text) == [
        "wl.yaml: precision.fwd_weight: unknown format 'int9'; allowed: " + ", ".join(OPERAND_FORMATS),
        "wl.yaml: precision.tpr: must be a valid boolean, unable to interpret input; got 'maybe'",
        "wl.yaml: precision.gradscal: unknown key 'gradscal'; did you mean 'gradscale'? (allowed: "
        + ", ".join(PrecisionPolicy.model_fields) + ")",
    ]
    assert list(PrecisionPolicy.model_fields)[:5] == ["name", "input_data", "fwd_weight", "fwd_activation", "grad_bwd_data"]


def test_precision_override_applies(tmp_path: Path):
    path = write(tmp_path / "wl.yaml", WORKLOAD_TEXT.replace("precision: int4", "precision: {preset: int4, tpr: false}"))
    spec = spec_load.load_workload(path)
    policy = spec_load.resolved_policy(spec.precision, str(path), "precision")
    assert policy.tpr is False and policy.fwd_weight == "int4" and policy.name == "int4[tpr=false]"


def test_mode_names_are_checked(tmp_path: Path):
    text = HW_TEXT.replace("fp16xfp16: 1}", "fp16xfp16: 1, int4xint5: 2}")
    assert _problems(tmp_path, "hw", text) == [
        "hw.yaml: array.modes.int4xint5: mode 'int4xint5' is not '<operand>x<operand>' with operands from: "
        + ", ".join(MODE_OPERANDS),
    ]
    text = HW_TEXT.replace("fp16xfp16: 1}", "fp16xfp16: 1, int4xuint4: 2}")
    assert _problems(tmp_path, "hw", text) == [
        "hw.yaml: array.modes: modes 'int4xint4' and 'int4xuint4' name the same multiplier datapaths",
    ]


def test_duplicate_keys_rejected(tmp_path: Path):
    assert _problems(tmp_path, "hw", HW_TEXT + "clock_ghz: 2.0\n") == [
        "hw.yaml: line 9: key 'clock_ghz' appears twice in one mapping (first at line 3)"
    ]


def test_version_required(tmp_path: Path):
    assert _problems(tmp_path, "hw", HW_TEXT.replace("version: 1", "version: 2")) == [
        "hw.yaml: version: must be 1; got 2"
    ]


# --- bad input through the CLI: exit 2, one line per problem, no traceback, nothing written -----

BOMB = "version: 1\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    hw = (HWCONFIGS / "fp16-32x32.yaml").read_text()
    wl = (WORKLOADS / "resnet18.yaml").read_text()
    (tmp / "dir.yaml").mkdir()
    (tmp / "garbage.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    cases = {
        "missing": (tmp / "nothere.yaml", "nothere.yaml: YAML file not found"),
        "directory": (tmp / "dir.yaml", "dir.yaml: is a directory, expected a YAML file"),
        "not-yaml": (
            write(tmp / "notyaml.yaml", "version: 1\nname: [unclosed\n"),
            "notyaml.yaml: line 3, column 1: not valid YAML: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence)",
        ),
        "binary": (tmp / "garbage.yaml", "garbage.yaml: not a text file (it contains NUL bytes); expected a YAML file"),
        "not-utf8": (tmp / "latin1.yaml", "latin1.yaml: not UTF-8 text (bad byte at offset 9); expected a YAML file"),
        "alias-bomb": (
            write(tmp / "bomb.yaml", BOMB),
            "bomb.yaml: line 7: YAML aliases expand to more than 200000 nodes (an alias bomb?); refusing to load",
        ),
        "not-a-mapping": (write(tmp / "list.yaml", "- 1\n- 2\n"), "list.yaml: expected a YAML mapping at the top level, got a list"),
        "empty": (write(tmp / "empty.yaml", "# nothing\n"), "empty.yaml: file is empty; expected a YAML mapping starting with 'version: 1'"),
        "wrong-type": (
            write(tmp / "types.yaml", hw.replace("rows: 32", "rows: many")),
            "types.yaml: array.rows: must be a valid integer; got 'many'",
        ),
        "zero-size": (
            write(tmp / "zero.yaml", hw.replace("ifmap_kib: 256", "ifmap_kib: 0")),
            "zero.yaml: sram.ifmap_kib: must be greater than 0; got 0",
        ),
        "negative": (
            write(tmp / "neg.yaml", hw.replace("clock_ghz: 1.0", "clock_ghz: -1")),
            "neg.yaml: clock_ghz: must be greater than 0; got -1",
        ),
        "absurd": (
            write(tmp / "absurd.yaml", hw.replace("rows: 32", "rows: 70000")),
            "absurd.yaml: array.rows: must be less than or equal to 65536; got 70000",
        ),
        "unknown-preset": (
            write(tmp / "preset.yaml", wl.replace("precision: int4", "precision: int3")),
            "preset.yaml: precision: unknown precision preset 'int3'; did you mean 'int4'? (allowed: "
            + ", ".join(PRESETS) + ")",
        ),
        "unknown-zoo": (
            write(tmp / "zoo.yaml", wl.replace("zoo: resnet18", "zoo: resnet19")),
            "zoo.yaml: model.zoo: unknown zoo model 'resnet19' (did you mean 'resnet18'?); known models: "
            "bert_base, cnn, mlp, mobilenet_small, mobilenet_v2, resnet, resnet18, resnet50, transformer, vgg16",
        ),
    }
    return cases


@pytest.fixture
def bad_files(tmp_path):
    return _bad_files(tmp_path)


@pytest.mark.parametrize(
    "case",
    ["missing", "directory", "not-yaml", "binary", "not-utf8", "alias-bomb", "not-a-mapping", "empty",
     "wrong-type", "zero-size", "negative", "absurd", "unknown-preset", "unknown-zoo"],
)
def test_bad_input_exit_2_one_line(case, bad_files, cli, tmp_path):
    path, message = bad_files[case]
    code, out, err = cli("validate", path)
    assert code == 2
    assert out == ""
    assert err.replace(str(tmp_path) + "/", "") == f"accelsim: error: {message}\n"
    assert "Traceback" not in err


@pytest.mark.parametrize("case", ["missing", "alias-bomb", "wrong-type", "absurd", "unknown-preset", "unknown-zoo"])
def test_run_rejects_bad_input_and_writes_nothing(case, bad_files, cli, tmp_path):
    path, message = bad_files[case]
    hw = HWCONFIGS / "int4-32x32.yaml"
    args = (path, hw) if "preset" in case or "zoo" in case else (WORKLOADS / "resnet18.yaml", path)
    out_dir = tmp_path / "reports" / "x"
    code, out, err = cli("run", *args, "--out", out_dir)
    assert code == 2
    assert err.replace(str(tmp_path) + "/", "") == f"accelsim: error: {message}\n"
    assert not (tmp_path / "reports").exists()


def test_unsupported_mode_names_op_and_modes(cli, tmp_path):
    """Ops whose operand formats the machine has no mode for: exit 2, one line per missing operand
    pair, naming the first op that needs it and the modes the machine has."""
    code, out, err = cli(
        "run", WORKLOADS / "resnet18.yaml", HWCONFIGS / "fp16-32x32.yaml", "--set", "precision=hfp8",
        "--out", tmp_path / "r",
    )
    assert code == 2
    assert err == (
        f"accelsim: error: {HWCONFIGS / 'fp16-32x32.yaml'}: array.modes: op 4 (layer1.0.conv1 fwd gemm): "
        "hardware 'fp16-32x32' has no mode for fp8e4m3 x fp8e4m3 (its modes: fp16xfp16)\n"
        f"accelsim: error: {HWCONFIGS / 'fp16-32x32.yaml'}: array.modes: op 74 (layer4.1.conv2 bwd_weight gemm): "
        "hardware 'fp16-32x32' has no mode for fp8e4m3 x fp8e5m2 (its modes: fp16xfp16)\n"
    )
    assert not (tmp_path / "r").exists()


def test_shape_errors_name_the_layer(tmp_path):
    path = write(tmp_path / "wl.yaml", WORKLOAD_TEXT.replace("    - {type: flatten}\n", ""))
    with pytest.raises(InputError) as info:
        api.prepare(path, write(tmp_path / "hw.yaml", HW_TEXT))
    assert str(info.value) == (
        f"{path}: model.layers.4: linear layer 'linear0': linear expects a flat input (features) or "
        "(tokens, features), got shape [8, 6, 6]; add a flatten layer before it"
    )


# --- --set --------------------------------------------------------------------------------------


def test_set_routes_and_validates(tmp_path):
    wl = write(tmp_path / "wl.yaml", WORKLOAD_TEXT)
    hw = write(tmp_path / "hw.yaml", HW_TEXT)
    setup = api.prepare(wl, hw, sets=["array.rows=16", "training.steps=7", "workload.name=renamed", "hw.array.dataflow=ws"])
    assert setup.hardware.array.rows == 16 and setup.hardware.array.dataflow == "ws"
    assert setup.workload.training.steps == 7 and setup.workload.name == "renamed"
    with pytest.raises(InputError, match=r"array.rows: must be less than or equal to 65536; got 100000"):
        api.prepare(wl, hw, sets=["array.rows=100000"])
    with pytest.raises(InputError, match=r"'name' is a field of both the workload and the hardware; write workload.name=x or hw.name=x"):
        api.prepare(wl, hw, sets=["name=x"])
    with pytest.raises(InputError, match=r"unknown field 'aray'; did you mean 'array'\?"):
        api.prepare(wl, hw, sets=["aray.rows=4"])
    with pytest.raises(InputError, match=r"--set: rows: expected PATH=VALUE"):
        api.prepare(wl, hw, sets=["rows"])


def test_set_list_index(tmp_path):
    wl = write(tmp_path / "wl.yaml", WORKLOAD_TEXT)
    spec = api.load_workload(wl, ["model.layers.0.out=6"])
    assert spec.model.layers[0].out == 6
    with pytest.raises(InputError, match=r"model.layers.9: --set model.layers.9.out=6: '9' is not an index of a 6-item list"):
        api.load_workload(wl, ["model.layers.9.out=6"])


def test_workload_model_forms(tmp_path):
    """A model is a layer list, a zoo entry or a topology CSV."""
    zoo = WorkloadSpec.model_validate({"version": 1, "name": "z", "model": {"zoo": "resnet18"}})
    assert type(zoo.model).__name__ == "ZooModel"
    topo = WorkloadSpec.model_validate({"version": 1, "name": "t", "model": {"topology": "a.csv"}})
    assert type(topo.model).__name__ == "TopologyModel"
