"""Precision policies: which number format each tensor role uses, as named presets.

A policy names a format for every role a tensor plays in one training step:

========================= ==============================================================
role                      meaning
========================= ==============================================================
``input_data``            the network input as it enters the first layer
``fwd_weight``            weights as the forward GEMM reads them (rescaled every step)
``fwd_activation``        activations as the forward GEMM reads them (rescaled every step)
``grad_bwd_data``         the incoming gradient as the activation-gradient GEMM reads it
``grad_bwd_weight``       the incoming gradient as the weight-gradient GEMM reads it
``bwd_weight_activation`` the activation as the weight-gradient GEMM reads it (default: as forward)
``bwd_data_weight``       the weights as the activation-gradient GEMM reads them (default: as forward)
``output``                GEMM results as stored (vector ops run in this format)
``accumulator``           partial sums inside the array
``master_weight``         the copy of the weights the optimizer updates
========================= ==============================================================

plus layer overrides (``first_layer``, ``last_layer``, ``pointwise_conv``, ``attention`` for the
activation × activation products: the name of a higher-precision preset whose formats that layer
uses instead) and the recipe's options
(rescaling methods, Two-Phase Rounding, GradScale, rounding, accumulation emulation).

Presets: ``fp32``, ``fp16`` (the paper's 16-bit baseline), ``hfp8``, ``int4`` (the paper's recipe)
and its ablations ``int4-no-tpr``, ``int4-no-gradscale``, ``int4-linear-grad``; the block-scaled
recipes ``bf16`` (today's 16-bit baseline), ``mxfp8``, ``mxfp4``, ``mxfp4-bwd``, ``nvfp4`` and its
ablations ``nvfp4-no-rht``, ``nvfp4-no-sr``, ``nvfp4-1d-weights``, and ``int4b`` (sources in the
README). A workload's
``precision:`` is a preset name or a mapping ``{preset: NAME, field: value, ...}`` that overrides
fields one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from accelsim.numerics.formats import FORMATS, OPERAND_FORMATS

#: Presets that may stand in for a layer override (the higher-precision ones).
OVERRIDE_PRESETS = ("fp32", "fp16", "bf16", "hfp8", "mxfp8")


class GradScaleOptions(BaseModel):
    """Per-layer power-of-two gradient scaling kept across steps (the paper's GradScale)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="keep a per-layer gradient scale across steps")
    step_log2: int = Field(
        2, ge=1, le=8,
        description="how far one adjustment moves the scale, in powers of two (2 = one radix-4 bin)",
    )
    underflow_bins: int = Field(
        1, ge=1, le=6,
        description="lower the scale when max|g| stays this many bins below the top bin",
    )


class PrecisionPolicy(BaseModel):
    """A named set of per-role number formats and the options of the 4-bit recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="preset this policy started from (plus overrides)")
    input_data: str = Field(description="format of the network input")
    fwd_weight: str = Field(description="format of weights read by the forward GEMM")
    fwd_activation: str = Field(description="format of activations read by the forward GEMM")
    grad_bwd_data: str = Field(description="format of the gradient read by the activation-gradient GEMM")
    grad_bwd_weight: str = Field(description="format of the gradient read by the weight-gradient GEMM")
    bwd_weight_activation: str | None = Field(
        None, description="format of the activation read by the weight-gradient GEMM (null: fwd_activation)",
    )
    bwd_data_weight: str | None = Field(
        None, description="format of the weights read by the activation-gradient GEMM (null: fwd_weight)",
    )
    output: str = Field("fp16", description="format GEMM outputs are stored in")
    accumulator: str = Field("fp32", description="format of partial sums in the array")
    int_accumulator: Literal["int16", "int32"] = Field(
        "int32",
        description="partial sums of GEMMs whose two operands are 4-bit integer-grid formats "
        "(int4, uint4, fp4r4): their products are exact integers, summed in a wide integer register",
    )
    master_weight: str = Field("fp32", description="format of the master weights and the update")
    first_layer: str | None = Field(None, description="preset whose formats the first GEMM layer uses")
    last_layer: str | None = Field(None, description="preset whose formats the last GEMM layer uses")
    pointwise_conv: str | None = Field(None, description="preset whose formats 1x1 convolutions use")
    attention: str | None = Field(
        None,
        description="preset whose formats the activation x activation products of attention (Q·Kᵀ, P·V) "
        "use; null: the policy's own (both operands in the activation format, gradients in the "
        "gradient format)",
    )
    weight_rescale: Literal["sawb", "max"] = Field("sawb", description="per-step weight scaling")
    activation_rescale: Literal["pact", "max"] = Field("pact", description="per-step activation scaling")
    pact_alpha_init: float = Field(
        10.0, gt=0, le=1e6,
        description="initial PACT clip value α (PACT, Choi et al. 2018, arXiv 1805.06085: 10)",
    )
    pact_alpha_decay: float = Field(
        0.0002, ge=0, le=1,
        description="L2 regularisation of α (PACT: λα = 0.0002, the weight decay of its CIFAR-10 runs)",
    )
    tpr: bool = Field(False, description="Two-Phase Rounding of 4-bit gradients (two copies)")
    tpr_weight_phase: Literal[0, 1] = Field(
        0, description="which TPR phase feeds the weight-gradient GEMM (the other feeds bwd_data)"
    )
    gradscale: GradScaleOptions = Field(
        default_factory=lambda: GradScaleOptions(enabled=False),
        description="per-layer gradient scaling",
    )
    grad_rounding: Literal["nearest", "stochastic"] = Field("nearest", description="gradient rounding")
    underflow: Literal["flush", "stochastic"] = Field(
        "flush", description="fp4r4 values below half the smallest bin: flush to zero or stochastic"
    )
    accumulation: Literal["fp32", "fp16-chunked"] = Field(
        "fp32", description="accumulation emulated in the numerics"
    )
    accumulation_chunk: int = Field(64, ge=1, le=1 << 20, description="chunk length for fp16-chunked")
    block_rule: Literal["floor", "ceil"] | None = Field(
        None,
        description="block-scale rule of block-scaled formats: floor (the OCP reference; an element can "
        "saturate) or ceil (round the scale up); null: floor for E8M0 scales, ceil for NVFP4's E4M3",
    )
    weight_blocks: Literal["1d", "2d"] = Field(
        "1d",
        description="weights of block-scaled formats in 1-D blocks along each GEMM's reduction axis "
        "(requantized for the transposed activation-gradient GEMM) or 2-D square blocks (16x16 for "
        "NVFP4, 32x32 for MX: W and its transpose quantize alike, once)",
    )
    hadamard: Literal["none", "bwd_weight", "backward", "all"] = Field(
        "none",
        description="random Hadamard transform of both operands along the reduction axis, before "
        "block quantization: of the weight-gradient GEMM, of both backward GEMMs, or of all three",
    )
    hadamard_size: int = Field(16, ge=2, le=256, description="Hadamard transform size (a power of two)")
    int4b_block: int = Field(32, ge=2, le=4096, description="int4b: elements per block")
    int4b_scale: Literal["e8m0", "fp8e4m3", "fp16"] = Field("e8m0", description="int4b: block-scale format")

    @field_validator(
        "input_data", "fwd_weight", "fwd_activation", "grad_bwd_data", "grad_bwd_weight",
        "output", "accumulator", "master_weight", "bwd_weight_activation", "bwd_data_weight",
    )
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value not in OPERAND_FORMATS:
            raise ValueError(f"unknown format {value!r}; allowed: {', '.join(OPERAND_FORMATS)}")
        return value

    @field_validator("hadamard_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"must be a power of two; got {value}")
        return value

    @field_validator("first_layer", "last_layer", "pointwise_conv", "attention")
    @classmethod
    def _known_override(cls, value: str | None) -> str | None:
        if value is not None and value not in OVERRIDE_PRESETS:
            raise ValueError(
                f"unknown override {value!r}; allowed: {', '.join(OVERRIDE_PRESETS)} or null"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "PrecisionPolicy":
        for role in ("output", "accumulator", "master_weight"):
            fmt = FORMATS[getattr(self, role)]
            if fmt.bits < 16 or fmt.kind != "float":
                raise ValueError(f"{role} must be a float format of at least 16 bits, got {getattr(self, role)!r}")
        if self.tpr and self.grad_bwd_data != "fp4r4":
            raise ValueError("tpr (Two-Phase Rounding) needs grad_bwd_data: fp4r4")
        operands = [self.input_data, self.fwd_weight, self.fwd_activation, self.grad_bwd_data, self.grad_bwd_weight,
                    self.bwd_weight_activation or self.fwd_activation, self.bwd_data_weight or self.fwd_weight]
        block = [f for f in operands if FORMATS[f].kind == "block"]
        per_tensor = [f for f in operands if FORMATS[f].bits == 4 and FORMATS[f].kind in ("int", "uint", "log")]
        if block and per_tensor:
            raise ValueError(
                f"a policy mixes block-scaled formats ({', '.join(sorted(set(block)))}) with per-tensor 4-bit "
                f"ones ({', '.join(sorted(set(per_tensor)))}); use one kind"
            )
        return self


def _preset(name: str, **fields) -> PrecisionPolicy:
    return PrecisionPolicy(name=name, **fields)


_FLOAT16 = dict(
    input_data="fp16", fwd_weight="fp16", fwd_activation="fp16", grad_bwd_data="fp16",
    grad_bwd_weight="fp16",
)
_INT4 = dict(
    input_data="int4", fwd_weight="int4", fwd_activation="uint4", grad_bwd_data="fp4r4",
    grad_bwd_weight="fp4r4", first_layer="fp16", last_layer="fp16", tpr=True,
    gradscale=GradScaleOptions(enabled=True),
)

_BF16 = dict(
    input_data="bf16", fwd_weight="bf16", fwd_activation="bf16", grad_bwd_data="bf16", grad_bwd_weight="bf16",
)


def _block(fwd: str, grad: str, **extra) -> dict:
    """A block-scaled recipe: the network input and the forward operands in ``fwd``, gradients in
    ``grad``, the backward GEMMs' activation and weight operands in ``fwd`` (requantized along their
    reduction axis); stored tensors in BF16, the update in FP32."""
    return {**_BF16, "input_data": fwd, "fwd_weight": fwd, "fwd_activation": fwd, "grad_bwd_data": grad,
            "grad_bwd_weight": grad, "bwd_weight_activation": fwd, "bwd_data_weight": fwd, "output": "bf16", **extra}


_NVFP4 = _block(
    "nvfp4", "nvfp4", weight_blocks="2d", grad_rounding="stochastic", hadamard="bwd_weight",
    first_layer="bf16", last_layer="bf16", attention="bf16",
)

PRESETS: dict[str, PrecisionPolicy] = {
    p.name: p
    for p in (
        _preset(
            "fp32", input_data="fp32", fwd_weight="fp32", fwd_activation="fp32",
            grad_bwd_data="fp32", grad_bwd_weight="fp32", output="fp32",
        ),
        _preset("fp16", **_FLOAT16),
        _preset("bf16", **_BF16, output="bf16"),
        _preset(
            "hfp8", input_data="fp16", fwd_weight="fp8e4m3", fwd_activation="fp8e4m3",
            grad_bwd_data="fp8e5m2", grad_bwd_weight="fp8e5m2", first_layer="fp16", last_layer="fp16",
        ),
        _preset("int4", **_INT4),
        _preset("int4-no-tpr", **{**_INT4, "tpr": False}),
        _preset("int4-no-gradscale", **{**_INT4, "gradscale": GradScaleOptions(enabled=False)}),
        _preset(
            "int4-linear-grad",
            **{**_INT4, "grad_bwd_data": "int4", "grad_bwd_weight": "int4", "tpr": False,
               "gradscale": GradScaleOptions(enabled=False)},
        ),
        # block-scaled recipes (sources in the README)
        _preset("mxfp8", **_block("mxfp8e4m3", "mxfp8e5m2")),
        _preset("mxfp4", **_block("mxfp4", "mxfp4", hadamard="all", grad_rounding="stochastic")),
        _preset("mxfp4-bwd", **{**_block("mxfp4", "mxfp4", hadamard="backward", grad_rounding="stochastic"),
                                "fwd_weight": "bf16", "fwd_activation": "bf16", "input_data": "bf16"}),
        _preset("nvfp4", **_NVFP4),
        _preset("nvfp4-no-rht", **{**_NVFP4, "hadamard": "none"}),
        _preset("nvfp4-no-sr", **{**_NVFP4, "grad_rounding": "nearest"}),
        _preset("nvfp4-1d-weights", **{**_NVFP4, "weight_blocks": "1d"}),
        _preset("int4b", **_block("int4b", "int4b", first_layer="bf16", last_layer="bf16", hadamard="bwd_weight",
                                  grad_rounding="stochastic")),
    )
}
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)


def resolve_policy(value: str | dict) -> PrecisionPolicy:
    """Turn a ``precision:`` value (preset name or override mapping) into a full policy.

    Raises ``KeyError`` for an unknown preset and ``pydantic.ValidationError`` for bad fields.
    """
    if isinstance(value, PrecisionPolicy):
        return value
    if isinstance(value, str):
        return PRESETS[value]
    fields = dict(value)
    base = PRESETS[fields.pop("preset")]
    merged = base.model_dump()
    merged.update(fields)
    if fields and "name" not in fields:
        merged["name"] = base.name + "[" + ", ".join(f"{k}={_short(v)}" for k, v in fields.items()) + "]"
    return PrecisionPolicy.model_validate(merged)


def _short(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class LayerFormats:
    """The formats one GEMM layer uses in each role, after overrides."""

    weight: str
    activation: str
    grad_bwd_data: str
    grad_bwd_weight: str
    output: str
    tpr: bool
    override: str | None = None
    #: the activation as the weight-gradient GEMM reads it, the weights as the activation-gradient
    #: GEMM reads them (block-scaled recipes requantize them along that GEMM's reduction axis)
    bwd_activation: str = ""
    bwd_weight: str = ""


#: Operand formats on an integer grid (a scale times an integer, or a power of two): their
#: products can be summed exactly in an integer accumulator.
INT_GRID_FORMATS = frozenset({"int4", "uint4", "fp4r4"})


def accumulator_for(policy: PrecisionPolicy, a_format: str, b_format: str) -> str:
    """The accumulator a GEMM of these operand formats uses: the policy's integer accumulator when
    both are integer-grid 4-bit formats (the INT4 engines), else its float accumulator."""
    if a_format in INT_GRID_FORMATS and b_format in INT_GRID_FORMATS:
        return policy.int_accumulator
    return policy.accumulator


def layer_formats(
    policy: PrecisionPolicy,
    *,
    is_first: bool,
    is_last: bool,
    is_pointwise: bool = False,
    is_attention: bool = False,
    input_signed: bool = False,
    reads_input: bool | None = None,
) -> LayerFormats:
    """Formats for one GEMM layer.

    Overrides apply in the order first/last layer, then 1×1 convolution, then attention products
    (``is_attention``: an activation × activation product). ``input_signed`` says that
    the layer's input can be negative (not behind a ReLU), in which case an unsigned activation
    format is replaced by its signed counterpart (``uint4`` → ``int4``); a layer that reads the
    network input (``reads_input``; default: the first layer) reads it in ``input_data``.
    """
    override = None
    if is_first and policy.first_layer:
        override = policy.first_layer
    elif is_last and policy.last_layer:
        override = policy.last_layer
    elif is_pointwise and policy.pointwise_conv:
        override = policy.pointwise_conv
    elif is_attention and policy.attention:
        override = policy.attention
    src = PRESETS[override] if override else policy
    activation = src.input_data if (is_first if reads_input is None else reads_input) else src.fwd_activation
    if input_signed and activation == "uint4":
        activation = "int4"
    bwd_activation = src.bwd_weight_activation or activation
    if input_signed and bwd_activation == "uint4":
        bwd_activation = "int4"
    return LayerFormats(
        weight=src.fwd_weight,
        activation=activation,
        grad_bwd_data=src.grad_bwd_data,
        grad_bwd_weight=src.grad_bwd_weight,
        output=policy.output,
        tpr=src.tpr,
        override=override,
        bwd_activation=bwd_activation,
        bwd_weight=src.bwd_data_weight or src.fwd_weight,
    )
