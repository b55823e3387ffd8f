"""Pydantic models of the three spec files: hardware, workload and sweep.

Every model forbids unknown keys; every number has a unit in its name and bounds that reject zero,
negative and absurd values. Field descriptions double as documentation (``accelsim validate``
names them in errors).

Types are strict: a boolean is not a number (``rows: true`` is an error, not 1), a number in quotes
is a string (``rows: "8"`` is an error), a float is not an integer (``rows: 8.0``), floats are
finite, and physical quantities lie in physical ranges (a clock of 1e-300 GHz is rejected with the
range allowed). Names accept letters of any script (``réseau``), digits and ``. _ + -``.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from accelsim.numerics.formats import mode_key, parse_mode
from accelsim.numerics.policy import PRESET_NAMES

#: A name: a letter or digit of any script, then letters, digits, ``.``, ``_``, ``+`` or ``-``
#: (Python's ``re``, so "letter" and "digit" mean what ``str.isalnum`` says).
NAME_PATTERN = r"^[^\W_][\w.+-]{0,99}$"
MAX_DIM = 1 << 24          # largest tensor dimension accepted (16 M)
MAX_ARRAY_DIM = 65536      # largest systolic-array side
MAX_LAYERS = 10000         # most layers a network may have (layer list, zoo entry or topology)


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """``"; did you mean 'x'?"`` when a close match exists, else ``""``."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_choice(value: str, choices: tuple[str, ...] | list[str], what: str) -> str:
    if value not in choices:
        raise ValueError(
            f"unknown {what} {value!r}{suggest(value, choices)} (allowed: {', '.join(choices)})"
        )
    return value


def derived_name(stem: str, fallback: str = "unnamed") -> str:
    """A valid name made from a file name's stem: letters of any script and digits are kept (NFC
    normalized, so a decomposed ``é`` stays one letter), anything else becomes ``-``."""
    text = unicodedata.normalize("NFC", stem)
    cleaned = "".join(c if c.isalnum() or c in "._+-" else "-" for c in text).strip("-._+")
    return cleaned[:100].rstrip("-._+") or fallback


def _no_bool(value: Any) -> Any:
    """``Literal[1]`` would accept ``True`` (``True == 1``): a boolean is not a version number."""
    if isinstance(value, bool):
        raise ValueError("must be 1")
    return value


def physical(low: float, high: float, unit: str) -> AfterValidator:
    """A validator for a quantity whose meaningful values lie in ``[low, high]`` (in ``unit``); the
    field's own bounds (``gt=0`` ...) still give their messages for zero and negative values."""
    def check(value: float) -> float:
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g} {unit}")
        return value

    return AfterValidator(check)


class StrictModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, strict=True, allow_inf_nan=False,
        regex_engine="python-re",
    )


Version = Annotated[Literal[1], BeforeValidator(_no_bool)]


# ------------------------------------------------------------------------------------------------
# hardware


def _mode_name(value: str) -> str:
    parse_mode(value)
    return value


ModeName = Annotated[str, AfterValidator(_mode_name)]


class ArraySpec(StrictModel):
    """The systolic array: shape, dataflow and the operand-format modes each PE supports."""

    rows: int = Field(ge=1, le=MAX_ARRAY_DIM, description="PE rows")
    cols: int = Field(ge=1, le=MAX_ARRAY_DIM, description="PE columns")
    dataflow: Literal["os", "ws", "is"] = Field("os", description="output, weight or input stationary")
    modes: dict[ModeName, int] = Field(
        description="operand-format pair -> MACs per PE per cycle, e.g. {int4xint4: 4, fp16xfp16: 1}",
        min_length=1,
    )
    fold_overlap: bool = Field(
        False,
        description="overlap consecutive folds: ws/is preload the next fold's stationary operand while "
        "the current fold drains; os has double-buffered accumulators, so a fold's drain hides under "
        "the next fold's fill (SCALE-Sim does neither: false matches it)",
    )
    pe_area: Literal["separate", "shared"] = Field(
        "separate",
        description="PE area model: separate = one datapath per mode (sum over modes of MACs per cycle x "
        "area.pe.<mode>); shared = a multi-precision PE, its widest datapath (area.pe.<mode>) plus an "
        "increment per MAC lane of every narrower mode (area.pe_shared.<mode>)",
    )
    simd: dict[ModeName, Literal["reduction", "output_cols", "output_rows"]] = Field(
        default_factory=dict,
        description="per mode, the GEMM dimension its MACs per PE per cycle work along: reduction (K, "
        "the default, SCALE-Sim-comparable), output_cols (N) or output_rows (M); that dimension is "
        "divided by the MACs per PE per cycle before the dataflow maps the GEMM",
    )

    @field_validator("modes")
    @classmethod
    def _modes(cls, modes: dict[str, int]) -> dict[str, int]:
        seen: dict[frozenset, str] = {}
        for name, rate in modes.items():
            a, b = parse_mode(name)
            if not 1 <= rate <= 1024:
                raise ValueError(f"mode {name!r}: MACs per PE per cycle must be 1..1024, got {rate}")
            key = mode_key(a, b)
            if key in seen:
                raise ValueError(f"modes {seen[key]!r} and {name!r} name the same multiplier datapaths")
            seen[key] = name
        return modes

    @field_validator("simd")
    @classmethod
    def _simd(cls, simd: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        modes = info.data.get("modes")
        if modes is None:
            return simd  # the modes failed validation and are reported themselves
        unknown = [name for name in simd if name not in modes]
        if unknown:
            raise ValueError(
                f"names {', '.join(map(repr, unknown))}, not a mode of this array "
                f"(its modes: {', '.join(modes)})"
            )
        return simd


class RescaleSpec(StrictModel):
    """The rescale unit: per-tensor reductions and requantization of 4-bit tensors."""

    lanes: int = Field(ge=1, le=1 << 20, description="elements per cycle")
    latency_cycles: int = Field(0, ge=0, le=1 << 20, description="pipeline latency per op")


class VectorSpec(StrictModel):
    """The vector unit: elementwise and reduction ops in fp16/fp32."""

    lanes: int = Field(ge=1, le=1 << 20, description="elements per cycle")
    latency_cycles: int = Field(0, ge=0, le=1 << 20, description="pipeline latency per op")


#: A buffer size: at least one byte (1/1024 KiB), at most 1 GiB.
Kib = Annotated[float, physical(1 / 1024, 1 << 20, "KiB")]


class SramSpec(StrictModel):
    """On-chip buffers for the two operands and the outputs (each double-buffered)."""

    ifmap_kib: Kib = Field(gt=0, le=1 << 20, description="input-operand buffer, KiB")
    filter_kib: Kib = Field(gt=0, le=1 << 20, description="weight-operand buffer, KiB")
    ofmap_kib: Kib = Field(gt=0, le=1 << 20, description="output buffer, KiB")


class DramSpec(StrictModel):
    """Off-chip memory shared by all transfers."""

    bandwidth_gbps: Annotated[float, physical(1e-3, 1e7, "Gbit/s")] = Field(
        gt=0, le=1e7, description="bandwidth in gigabits per second (traffic is counted in bits)"
    )
    latency_ns: float = Field(0.0, ge=0, le=1e6, description="latency of one transfer, ns")


class SimulationSpec(StrictModel):
    """How finely the event model replays a step: a setting of the simulation, not of the machine,
    kept with the hardware so it is set, swept and recorded like the rest (and both machines of a
    comparison follow it)."""

    tile_events: int | None = Field(
        48, ge=2, le=1_000_000,
        description="events per run of SRAM tiles at most: the pipeline fills and drains tile by tile "
        "and the tiles in between are grouped, with their exact sums (well under 1 % on the makespan); "
        "null replays every tile as its own event (slow on big ops)",
    )


class HardwareSpec(StrictModel):
    """One accelerator (``hw.yaml``)."""

    version: Version = Field(description="spec format version; must be 1")
    name: str = Field(pattern=NAME_PATTERN, description="name used in reports and folder names")
    clock_ghz: Annotated[float, physical(1e-3, 100, "GHz")] = Field(
        gt=0, le=100, description="clock frequency, GHz (1 MHz to 100 GHz)"
    )
    technology: str = Field(
        "45nm", pattern=r"^(\d+nm|.+\.ya?ml)$",
        description="energy/area table: a node name (45nm, 7nm) or a path to a table file",
    )
    array: ArraySpec
    rescale: RescaleSpec
    vector: VectorSpec
    sram: SramSpec
    dram: DramSpec
    baseline: str | None = Field(
        None, description="hardware file of the 16-bit machine to compare with (relative to this file)"
    )
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)


# ------------------------------------------------------------------------------------------------
# workload: model


class _LayerBase(StrictModel):
    name: str | None = Field(None, pattern=NAME_PATTERN, description="layer name (default: type + index)")
    inputs: list[Annotated[str, Field(pattern=NAME_PATTERN)]] | None = Field(
        None, min_length=1, max_length=64,
        description="names of earlier layers (or 'input', the network input) this layer reads; "
        "default: the previous layer",
    )


Dim = Annotated[int, Field(ge=1, le=MAX_DIM)]


def _as_pair(value: Any) -> Any:
    """Accept ``3`` for ``[3, 3]`` (and a YAML list for the tuple)."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, tuple):
        return value
    raise ValueError("must be an integer or a pair [height, width] of integers")


_WinInt = Annotated[int, Field(ge=1, le=4096)]
_PadInt = Annotated[int, Field(ge=0, le=4096)]
#: A window size or stride: ``3`` or ``[3, 3]`` (height, width).
Window = Annotated[tuple[_WinInt, _WinInt], BeforeValidator(_as_pair)]
#: A padding: ``1`` or ``[1, 1]`` (height, width).
Pad = Annotated[tuple[_PadInt, _PadInt], BeforeValidator(_as_pair)]


class LinearLayerSpec(_LayerBase):
    type: Literal["linear"]
    out: Dim


class Conv2dLayerSpec(_LayerBase):
    type: Literal["conv2d"]
    out: Dim
    kernel: Window
    stride: Window = 1
    padding: Pad = 0
    groups: Dim = 1


class PoolLayerSpec(_LayerBase):
    type: Literal["maxpool", "avgpool"]
    kernel: Window
    stride: Window | None = None
    padding: Pad = 0


class PlainLayerSpec(_LayerBase):
    type: Literal["relu", "relu6", "gelu", "batchnorm", "layernorm", "flatten", "softmax", "add"]


class ConcatLayerSpec(_LayerBase):
    type: Literal["concat"]
    axis: int | None = Field(
        None, ge=-3, le=2,
        description="axis of the per-sample shape to join along (default: channels of an image, "
        "features of a vector or sequence)",
    )


class EmbeddingLayerSpec(_LayerBase):
    type: Literal["embedding"]
    vocab: Dim = Field(description="number of token ids")
    out: Dim = Field(description="vector size per token")
    positions: bool = Field(False, description="add a learned positional embedding over the sequence")


class AttentionLayerSpec(_LayerBase):
    type: Literal["attention"]
    heads: Dim = Field(description="attention heads (must divide the features)")
    causal: bool = Field(False, description="each token attends to itself and earlier tokens only")


class SelectLayerSpec(_LayerBase):
    type: Literal["select"]
    index: int = Field(0, ge=0, le=MAX_DIM, description="the token of a (tokens, features) input to keep")


class GemmLayerSpec(_LayerBase):
    type: Literal["gemm"]
    m: Dim
    n: Dim
    k: Dim


LAYER_SPEC_TYPES = {
    "linear": LinearLayerSpec, "conv2d": Conv2dLayerSpec, "maxpool": PoolLayerSpec,
    "avgpool": PoolLayerSpec, "relu": PlainLayerSpec, "relu6": PlainLayerSpec, "gelu": PlainLayerSpec,
    "batchnorm": PlainLayerSpec, "layernorm": PlainLayerSpec, "flatten": PlainLayerSpec,
    "softmax": PlainLayerSpec, "add": PlainLayerSpec, "concat": ConcatLayerSpec,
    "embedding": EmbeddingLayerSpec, "attention": AttentionLayerSpec, "select": SelectLayerSpec,
    "gemm": GemmLayerSpec,
}


def _layer_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type")
        if isinstance(kind, str) and kind in LAYER_SPEC_TYPES:
            return LAYER_SPEC_TYPES[kind].__name__
    return None


class _UnknownLayerType(StrictModel):
    type: str

    @field_validator("type")
    @classmethod
    def _bad(cls, value: str) -> str:
        check_choice(value, tuple(LAYER_SPEC_TYPES), "layer type")
        return value


def _layer_discriminator(value: Any) -> str:
    if isinstance(value, BaseModel):  # serializing
        return type(value).__name__
    return _layer_tag(value) or "_UnknownLayerType"


LayerSpec = Annotated[
    Union[
        Annotated[LinearLayerSpec, Tag("LinearLayerSpec")],
        Annotated[Conv2dLayerSpec, Tag("Conv2dLayerSpec")],
        Annotated[PoolLayerSpec, Tag("PoolLayerSpec")],
        Annotated[PlainLayerSpec, Tag("PlainLayerSpec")],
        Annotated[GemmLayerSpec, Tag("GemmLayerSpec")],
        Annotated[ConcatLayerSpec, Tag("ConcatLayerSpec")],
        Annotated[EmbeddingLayerSpec, Tag("EmbeddingLayerSpec")],
        Annotated[AttentionLayerSpec, Tag("AttentionLayerSpec")],
        Annotated[SelectLayerSpec, Tag("SelectLayerSpec")],
        Annotated[_UnknownLayerType, Tag("_UnknownLayerType")],
    ],
    Discriminator(_layer_discriminator),
]


class LayerListModel(StrictModel):
    """A model written out as a layer list."""

    input: list[Dim] = Field(min_length=1, max_length=3, description="per-sample input shape")
    layers: list[LayerSpec] = Field(min_length=1, max_length=MAX_LAYERS)


class ZooModel(StrictModel):
    """A model taken from the zoo by name (timed, not trained, unless the zoo says otherwise)."""

    zoo: str = Field(description="zoo entry name")
    input: list[Dim] | None = Field(None, min_length=1, max_length=3, description="per-sample input shape")
    classes: Dim | None = Field(None, description="number of output classes")
    params: dict[str, Any] = Field(default_factory=dict, description="extra builder arguments (e.g. seq_len)")


class TopologyModel(StrictModel):
    """A SCALE-Sim topology CSV (conv or GEMM form), with SCALE-Sim's layer semantics."""

    topology: str = Field(description="path to the CSV, relative to the workload file")


class OnnxModel(StrictModel):
    """An ONNX file (e.g. from ``torch.onnx.export``): its graph, after shape inference, becomes the
    network; a trained workload starts from the file's initializers. The batch size is
    ``data.batch_size`` when the workload gives one, else the graph input's fixed batch dimension
    (1 when it is symbolic)."""

    onnx: str = Field(description="path to the .onnx file, relative to the workload file")


def _model_discriminator(value: Any) -> str:
    if isinstance(value, BaseModel):  # serializing
        return type(value).__name__
    if isinstance(value, dict):
        if "zoo" in value:
            return "ZooModel"
        if "topology" in value:
            return "TopologyModel"
        if "onnx" in value:
            return "OnnxModel"
    return "LayerListModel"


ModelSpec = Annotated[
    Union[
        Annotated[LayerListModel, Tag("LayerListModel")],
        Annotated[ZooModel, Tag("ZooModel")],
        Annotated[TopologyModel, Tag("TopologyModel")],
        Annotated[OnnxModel, Tag("OnnxModel")],
    ],
    Discriminator(_model_discriminator),
]


# ------------------------------------------------------------------------------------------------
# workload: data, training, precision

DATASETS = ("digits", "synthetic", "npz", "mnist-idx", "sequence", "text")
SEQUENCE_TASKS = ("sort", "reverse", "copy", "add")


class DataSpec(StrictModel):
    """Training data. Without ``dataset`` the workload is analytic: timed, not trained."""

    dataset: str | None = Field(
        None, description="digits, synthetic, npz, mnist-idx, sequence, text, or omitted (analytic)"
    )
    batch_size: int = Field(1, ge=1, le=1 << 20, description="samples per step")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share of samples held out for test")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the train/test split (and of generated data)")
    path: str | None = Field(None, description="npz file, mnist-idx folder or text file, relative to the workload file")
    samples: int | None = Field(
        None, ge=2, le=1 << 24, description="synthetic, sequence: number of samples; text: windows (default: all)",
    )
    classes: int | None = Field(None, ge=2, le=1 << 16, description="synthetic: number of classes")
    task: str | None = Field(None, description="sequence: sort, reverse, copy or add")
    length: int | None = Field(None, ge=2, le=1 << 16, description="sequence, text: tokens per sample (default: the model input's)")
    vocab: int | None = Field(None, ge=2, le=1 << 16, description="sequence: token ids 0..vocab-1 (digits of the base for add)")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str | None) -> str | None:
        return value if value is None else check_choice(value, DATASETS, "dataset")

    @field_validator("task")
    @classmethod
    def _task(cls, value: str | None) -> str | None:
        return value if value is None else check_choice(value, SEQUENCE_TASKS, "sequence task")

    @model_validator(mode="after")
    def _needs_path(self) -> "DataSpec":
        if self.dataset in ("npz", "mnist-idx", "text") and not self.path:
            raise ValueError(f"dataset {self.dataset!r} needs 'path'")
        if self.dataset == "sequence" and (self.task is None or self.vocab is None):
            raise ValueError("dataset 'sequence' needs 'task' (sort, reverse, copy, add) and 'vocab'")
        if self.dataset not in ("synthetic", "sequence", "text") and self.samples is not None:
            raise ValueError("'samples' applies to datasets synthetic, sequence and text only")
        if self.dataset != "synthetic" and self.classes is not None:
            raise ValueError("'classes' applies to dataset 'synthetic' only")
        if self.dataset != "sequence" and (self.task is not None or self.vocab is not None):
            raise ValueError("'task' and 'vocab' apply to dataset 'sequence' only")
        if self.dataset not in ("sequence", "text") and self.length is not None:
            raise ValueError("'length' applies to datasets sequence and text only")
        return self


class OptimizerSpec(StrictModel):
    type: Literal["sgd"] = "sgd"
    lr: float = Field(0.05, gt=0, le=100, description="learning rate")
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, le=1)


MAX_SEEDS = 100


def _check_seeds(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number of seeds or a list of seeds, not a boolean")
    if isinstance(value, int):
        if not 1 <= value <= MAX_SEEDS:
            raise ValueError(f"a number of seeds must be 1..{MAX_SEEDS}; got {value}")
        return value
    if isinstance(value, list):
        if not 1 <= len(value) <= MAX_SEEDS:
            raise ValueError(f"a list of seeds must have 1..{MAX_SEEDS} entries; got {len(value)}")
        for seed in value:
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1:
                raise ValueError(f"seeds must be integers 0..{2**32 - 1}; got {seed!r}")
        if len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct; got {value}")
        return value
    raise ValueError(f"must be a number of seeds (e.g. 3) or a list of seeds (e.g. [0, 1, 2]); got {value!r}")


class TrainingSpec(StrictModel):
    """How long to train (datasets) or how many steps to time (analytic workloads)."""

    epochs: int | None = Field(None, ge=1, le=100000, description="passes over the training set")
    steps: int | None = Field(None, ge=1, le=1 << 40, description="steps to time (analytic workloads)")
    seeds: Annotated[Union[int, list[int]], BeforeValidator(_check_seeds)] = Field(
        1,
        description="trainings per precision: a count n (seeds 0..n-1) or a list of seeds; each seed "
        "sets the initialisation, the shuffling and the stochastic rounding (data.seed sets the split)",
    )
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    @model_validator(mode="after")
    def _one_of(self) -> "TrainingSpec":
        if self.epochs is not None and self.steps is not None:
            raise ValueError("give 'epochs' (trained workloads) or 'steps' (analytic ones), not both")
        return self


def _check_precision(value: Any) -> Any:
    if isinstance(value, str):
        check_choice(value, PRESET_NAMES, "precision preset")
    elif isinstance(value, dict):
        preset = value.get("preset")
        if preset is None:
            raise ValueError("a precision mapping needs 'preset' (the preset it overrides)")
        if not isinstance(preset, str):
            raise ValueError(f"'preset' must be a preset name, got {preset!r}")
        check_choice(preset, PRESET_NAMES, "precision preset")
    else:
        raise ValueError("must be a preset name or a mapping {preset: NAME, field: value, ...}")
    return value


class WorkloadSpec(StrictModel):
    """One workload (``workload.yaml``)."""

    version: Version = Field(description="spec format version; must be 1")
    name: str = Field(pattern=NAME_PATTERN, description="name used in reports and folder names")
    phases: Literal["training", "inference"] = Field("training", description="what one step runs")
    model: ModelSpec
    data: DataSpec = Field(default_factory=DataSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    precision: Union[str, dict[str, Any]] = Field("int4", description="policy preset or overrides")
    baseline: Union[str, dict[str, Any]] = Field("fp16", description="baseline preset or overrides")

    @field_validator("precision", "baseline", mode="before")
    @classmethod
    def _precision_value(cls, value: Any) -> Any:
        return _check_precision(value)

    @property
    def trained(self) -> bool:
        return self.data.dataset is not None and self.phases == "training"

    @model_validator(mode="after")
    def _coherent(self) -> "WorkloadSpec":
        if self.data.dataset is not None and self.training.steps is not None:
            raise ValueError(
                "training.steps is for analytic workloads; a workload with a dataset trains for 'epochs'"
            )
        return self


# ------------------------------------------------------------------------------------------------
# sweep


def repeated_value(values: list[Any]) -> Any:
    """The first value that appears twice in ``values`` (compared as JSON: ``1`` and ``1.0`` differ
    only if their types do), or ``None``."""
    import json

    seen: set[str] = set()
    for value in values:
        key = json.dumps(value, sort_keys=True, default=repr) + type(value).__name__
        if key in seen:
            return value
        seen.add(key)
    return None


class SweepSpec(StrictModel):
    """A sweep (``sweep.yaml``): a base workload and machine, and the fields to vary."""

    version: Version = Field(description="spec format version; must be 1")
    name: str = Field(pattern=NAME_PATTERN)
    workload: str = Field(description="workload file, relative to the sweep file")
    hardware: str = Field(description="hardware file, relative to the sweep file")
    baseline_hw: str | None = Field(None, description="hardware file of the 16-bit machine (optional)")
    fixed: dict[str, Any] = Field(default_factory=dict, description="field path -> value for every point")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="field path -> values (product)")
    zip: dict[str, list[Any]] = Field(default_factory=dict, description="field path -> values (zipped)")
    iso: Literal["area", "power"] | None = Field(
        None, description="resize every point's baseline array to its 4-bit machine's area or average power",
    )

    @field_validator("grid", "zip")
    @classmethod
    def _axis_values(cls, axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in axes.items():
            if not re.fullmatch(r"[A-Za-z_][\w-]*(\.[\w-]+)*", key):
                raise ValueError(f"axis {key!r} is not a dotted field path such as array.rows")
            if not values:
                raise ValueError(f"axis {key!r} has no values")
        return axes

    @field_validator("grid")
    @classmethod
    def _distinct_values(cls, axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in axes.items():
            repeated = repeated_value(values)
            if repeated is not None:
                raise ValueError(f"axis {key!r} lists the value {repeated!r} twice; each point would run twice")
        return axes

    @field_validator("zip")
    @classmethod
    def _zip_lengths(cls, axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        lengths = {len(v) for v in axes.values()}
        if len(lengths) > 1:
            raise ValueError(f"zipped axes must have the same number of values, got {sorted(lengths)}")
        return axes

    @model_validator(mode="after")
    def _axes(self) -> "SweepSpec":
        if not self.grid and not self.zip:
            raise ValueError("a sweep needs at least one axis in 'grid' or 'zip'")
        if self.zip:
            rows = [tuple(values[i] for values in self.zip.values()) for i in range(len(next(iter(self.zip.values()))))]
            repeated = repeated_value(rows)
            if repeated is not None:
                raise ValueError(f"zip lists the values {list(repeated)!r} twice; each point would run twice")
        both = set(self.grid) & set(self.zip)
        if both:
            raise ValueError(f"axis {sorted(both)[0]!r} is in both 'grid' and 'zip'")
        return self


SPEC_KINDS: dict[str, type[StrictModel]] = {
    "hardware": HardwareSpec,
    "workload": WorkloadSpec,
    "sweep": SweepSpec,
}
