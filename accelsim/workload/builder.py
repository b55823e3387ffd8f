"""Turn a resolved network and a precision policy into the trace of one step.

Training step, in order:

* forward, layer by layer: a ``rescale`` op wherever a 4-bit tensor is produced (weights by SAWB
  or max, activations by PACT or max, 4-bit input data), the forward GEMM, vector ops for
  activations, pooling, normalization and residual adds; then ``softmax_xent`` (loss and its
  gradient);
* backward, layer by layer in reverse: for each GEMM layer the incoming gradient is requantized
  (``copies: 2`` under Two-Phase Rounding), then the weight-gradient GEMM and — except for layers
  that read the network input — the activation-gradient GEMM; backward vector ops; a
  ``grad_add`` where a tensor fed several layers;
* the optimizer update (``sgd_update`` on the fp32 master weights) for every weight layer.

Inference workloads get the forward pass only (no loss). Formats come from the policy via
:func:`accelsim.numerics.policy.layer_formats` (first/last layer and 1×1-convolution overrides).
GEMM shapes: forward ``[m×k]·[k×n]``; ``bwd_data`` is ``dX[m×k] = dY[m×n]·Wᵀ`` (GEMM m, n=k, k=n);
``bwd_weight`` is ``dW[k×n] = Xᵀ·dY`` (GEMM m=k, n, k=m).
"""

from __future__ import annotations

from dataclasses import dataclass

from accelsim.numerics.formats import FORMATS, is_block, needs_rescale
from accelsim.numerics.policy import LayerFormats, PrecisionPolicy, accumulator_for, layer_formats
from accelsim.trace import GemmOp, Op, RescaleOp, Trace, VectorOp
from accelsim.workload.graph import NETWORK_INPUT, Layer, Network

#: Vector layers whose output is never negative (a following 4-bit activation can be unsigned).
NONNEG_LAYERS = frozenset({"relu", "relu6"})
#: Vector layers whose output is never negative if no input is negative.
SIGN_PRESERVING = frozenset({"maxpool", "avgpool", "flatten", "add", "concat", "select"})
VECTOR_OP_NAME = {
    "relu": "relu", "relu6": "relu6", "gelu": "gelu", "maxpool": "maxpool", "avgpool": "avgpool",
    "batchnorm": "bn", "layernorm": "layernorm", "softmax": "softmax", "add": "add", "concat": "concat",
    "select": "select", "embedding": "embedding",
}


@dataclass
class _Tensor:
    """A value flowing between layers: which op produced it, its format, whether it is ≥ 0."""

    producer: int | None
    format: str
    nonneg: bool


class _Builder:
    def __init__(self, net: Network, policy: PrecisionPolicy):
        self.net = net
        self.policy = policy
        self.batch = net.batch_size
        self.ops: list[Op] = []
        self.by_name = {layer.name: layer for layer in net.layers}
        self.inputs = layer_inputs(net)
        self.first_gemms, self.last_gemms = edge_gemms(net, self.inputs)
        self.formats: dict[str, LayerFormats] = {}
        #: per attention product, the formats of its two operands
        self.act_formats: dict[str, tuple[str, str]] = {}
        #: block-scaled weights of each layer as quantized for its forward GEMM
        self.weight_rescale: dict[str, int | None] = {}
        #: op that produced each GEMM layer's (quantized) input: what the backward pass re-reads
        self.stash: dict[str, int | None] = {}
        #: forward op of each vector layer, and of the tensor it read
        self.fwd_op: dict[str, int] = {}
        self.fwd_input: dict[str, int | None] = {}
        #: a 4-bit stash that also carries an activation's backward mask (PACT: 0 < q < max)
        self.mask_stash: dict[str, int] = {}

    def acc(self, a_format: str, b_format: str) -> str:
        return accumulator_for(self.policy, a_format, b_format)

    def emit(self, op: Op) -> int:
        self.ops.append(op)
        return len(self.ops) - 1

    # -- forward -----------------------------------------------------------------------------

    def forward(self) -> dict[str | None, _Tensor]:
        out: dict[str | None, _Tensor] = {None: _Tensor(None, "fp32", False)}
        for layer in self.net.layers:
            srcs = [out[name] for name in self.inputs[layer.name]]
            if layer.is_gemm:
                out[layer.name] = self._forward_gemm(layer, srcs)
            else:
                out[layer.name] = self._forward_vector(layer, srcs)
        return out

    def _formats(self, layer: Layer, srcs: list[_Tensor]) -> LayerFormats:
        fmts = layer_formats(
            self.policy,
            is_first=layer.name in self.first_gemms,
            is_last=layer.name in self.last_gemms,
            is_attention=layer.type == "matmul",
            is_pointwise=layer.is_pointwise_conv,
            input_signed=not all(s.nonneg for s in srcs),
            reads_input=any(s.producer is None for s in srcs),
        )
        self.formats[layer.name] = fmts
        return fmts

    def _operand_format(self, layer: Layer, src: _Tensor) -> str:
        """The activation format of one operand of an attention product, by that operand's sign."""
        return layer_formats(
            self.policy, is_first=layer.name in self.first_gemms, is_last=layer.name in self.last_gemms,
            is_attention=True, input_signed=not src.nonneg, reads_input=src.producer is None,
        ).activation

    def _quantize_input(self, layer: Layer, src: _Tensor, fmt: str, elements: int) -> int | None:
        """Requantize an activation into ``fmt`` if it is a 4-bit format it is not already in."""
        if not needs_rescale(fmt) or src.format == fmt:
            return src.producer
        if src.producer is None:  # the network input: stretched onto the 4-bit grid
            reduction = "none"
            tensor = "input"
        else:  # PACT's learned clip for a weight layer's unsigned input (behind a ReLU), else this step's max
            pact = self.policy.activation_rescale == "pact" and fmt == "uint4" and layer.type != "matmul"
            reduction = "none" if pact else "max"
            tensor = "activation"
        idx = self.emit(RescaleOp(
            layer.name, "fwd", elements, src.format if src.producer is not None else "fp16", fmt,
            reduction, 1, tensor, _deps(src.producer),
        ))
        if src.producer is not None:
            producer = self.ops[src.producer]
            if isinstance(producer, VectorOp) and producer.op in ("relu", "relu6"):
                self.mask_stash.setdefault(producer.layer, idx)
        return idx

    # -- block-scaled GEMMs: each operand quantized along the reduction axis of the GEMM reading it

    def _is_block(self, fmts: LayerFormats) -> bool:
        return any(is_block(f) for f in (fmts.activation, fmts.weight, fmts.grad_bwd_data, fmts.grad_bwd_weight,
                                         fmts.bwd_activation, fmts.bwd_weight))

    def _transforms(self, phase: str, *formats: str) -> bool:
        """Does the policy's random Hadamard transform apply to this GEMM (of block operands)?"""
        h = self.policy.hadamard
        applies = h == "all" or (h == "backward" and phase != "fwd") or (h == "bwd_weight" and phase == "bwd_weight")
        return applies and any(is_block(f) for f in formats)

    def _hadamard(self, layer: Layer, phase: str, elements: int, dep: int | None) -> int | None:
        return self.emit(VectorOp(layer.name, phase, elements, "hadamard", self.policy.output, _deps(dep)))

    def _block_rescale(
        self, layer: Layer, phase: str, elements: int, in_format: str, fmt: str, tensor: str, dep: int | None,
        *, square: bool = False, stochastic: bool = False,
    ) -> int | None:
        """Quantize a tensor into a block-scaled ``fmt`` for one GEMM (nothing for other formats)."""
        if not is_block(fmt):
            return dep
        f = FORMATS[fmt]
        block, scale = (self.policy.int4b_block, self.policy.int4b_scale) if fmt == "int4b" else (f.block, f.scale_format)
        return self.emit(RescaleOp(
            layer.name, phase, elements, in_format, fmt, "tensor_block" if f.tensor_scale else "block", 1, tensor,
            _deps(dep), block=f"{block}x{block}" if square else str(block), scale_format=scale,
            rounding="stochastic" if stochastic else "nearest",
        ))

    def _transformed_and_quantized(self, layer: Layer, phase: str, *operands: tuple) -> tuple[int | None, ...]:
        """The dependencies of a GEMM's operands, each ``(elements, in format, format, tensor, dep,
        square, stochastic)``: the policy's Hadamard transform on every operand if it applies to
        this GEMM, then each block-scaled operand quantized; one operand after the other, so each
        transform is followed by its own quantizer (the two can fuse)."""
        transform = self._transforms(phase, *(op[2] for op in operands))
        deps = []
        for elements, in_format, fmt, tensor, dep, square, stochastic in operands:
            if transform:
                dep = self._hadamard(layer, phase, elements, dep)
            deps.append(self._block_rescale(layer, phase, elements, in_format, fmt, tensor, dep,
                                            square=square, stochastic=stochastic))
        return tuple(deps)

    def _reuses_weights(self, fmts: LayerFormats) -> bool:
        """2-D weight blocks serve the transposed GEMM as they are (no second quantization)."""
        return (self.policy.weight_blocks == "2d" and fmts.bwd_weight == fmts.weight and is_block(fmts.weight)
                and not self._transforms("fwd", fmts.weight) and not self._transforms("bwd_data", fmts.weight))

    def _forward_block(self, layer: Layer, srcs: list[_Tensor], fmts: LayerFormats) -> _Tensor:
        m, n, k, count = layer.gemm_dims(self.batch)
        src = srcs[0]
        in_format = src.format if src.producer is not None else "fp16"
        tensor = "input" if src.producer is None else "activation"
        if layer.type == "matmul":
            b_src = srcs[1] if len(srcs) > 1 else srcs[0]
            a_format, b_format = fmts.activation, fmts.activation
            self.act_formats[layer.name] = (a_format, b_format)
            a_dep, b_dep = self._transformed_and_quantized(
                layer, "fwd", (m * k * count, in_format, a_format, tensor, src.producer, False, False),
                (k * n * count, b_src.format, b_format, "activation", b_src.producer, False, False))
        else:
            a_format, b_format = fmts.activation, fmts.weight
            self.stash[layer.name] = src.producer   # the backward GEMMs requantize from the stored tensor
            a_dep, b_dep = self._transformed_and_quantized(
                layer, "fwd", (_a_elements(layer, self.batch), in_format, a_format, tensor, src.producer, False, False),
                (layer.weight_elements(), self.policy.master_weight, b_format, "weight", None,
                 self.policy.weight_blocks == "2d", False))
            self.weight_rescale[layer.name] = b_dep
        idx = self.emit(GemmOp(
            layer.name, "fwd", m, n, k, a_format, b_format, self.acc(a_format, b_format), fmts.output,
            count, a_elements=_im2col_elements(layer, self.batch), deps=_deps(a_dep, b_dep),
        ))
        return _Tensor(idx, fmts.output, False)

    def _backward_block(
        self, layer: Layer, grad: int, out: dict[str | None, _Tensor], srcs: list[str | None], fmts: LayerFormats,
    ) -> tuple[list[tuple[str | None, int]], int | None]:
        m, n, k, count = layer.gemm_dims(self.batch)
        g_elements = m * n * count
        sr = self.policy.grad_rounding == "stochastic"
        out_fmt = self.policy.output

        def operands(phase: str, a: tuple, b: tuple) -> tuple[int | None, int | None]:
            """(elements, in format, format, tensor, dep, square, stochastic) of both operands:
            each transformed (Hadamard) and then quantized, one operand after the other (so a
            transform and its quantizer can fuse)."""
            return self._transformed_and_quantized(layer, phase, a, b)  # type: ignore[return-value]

        if layer.type == "matmul":
            a_name = srcs[0]
            b_name = srcs[1] if len(srcs) > 1 else srcs[0]
            a_format = b_format = fmts.bwd_activation   # the backward GEMMs' activation operands
            a_src, b_src = out[a_name].producer, out[b_name].producer
            # dA = dY·Bᵀ (reduction over n), then dB = Aᵀ·dY (reduction over m)
            g, bq = operands("bwd_data", (g_elements, out_fmt, fmts.grad_bwd_data, "gradient", grad, False, sr),
                             (k * n * count, out_fmt, b_format, "activation", b_src, False, False))
            da = self.emit(GemmOp(
                layer.name, "bwd_data", m, k, n, fmts.grad_bwd_data, b_format,
                self.acc(fmts.grad_bwd_data, b_format), fmts.output, count, deps=_deps(g, bq),
            ))
            aq, g = operands("bwd_data", (m * k * count, out_fmt, a_format, "activation", a_src, False, False),
                             (g_elements, out_fmt, fmts.grad_bwd_data, "gradient", grad, False, sr))
            db = self.emit(GemmOp(
                layer.name, "bwd_data", k, n, m, a_format, fmts.grad_bwd_data,
                self.acc(a_format, fmts.grad_bwd_data), fmts.output, count, deps=_deps(aq, g),
            ))
            return [(a_name, da), (b_name, db)], None
        unique_x = _im2col_elements(layer, self.batch)
        x_elements = _a_elements(layer, self.batch)
        square = self.policy.weight_blocks == "2d"
        xq, g = operands("bwd_weight", (x_elements, out_fmt, fmts.bwd_activation, "activation", self.stash[layer.name],
                                        False, False),
                         (g_elements, out_fmt, fmts.grad_bwd_weight, "gradient", grad, False, sr))
        wgrad = self.emit(GemmOp(
            layer.name, "bwd_weight", k, n, m, fmts.bwd_activation, fmts.grad_bwd_weight,
            self.acc(fmts.bwd_activation, fmts.grad_bwd_weight), self.policy.master_weight, count,
            a_elements=unique_x, deps=_deps(xq, g),
        ))
        results: list[tuple[str | None, int]] = []
        if not all(name is None for name in srcs):
            if self._reuses_weights(fmts):
                g = self._block_rescale(layer, "bwd_data", g_elements, out_fmt, fmts.grad_bwd_data, "gradient", grad,
                                        stochastic=sr)
                wq = self.weight_rescale[layer.name]
            else:
                g, wq = operands("bwd_data", (g_elements, out_fmt, fmts.grad_bwd_data, "gradient", grad, False, sr),
                                 (layer.weight_elements(), self.policy.master_weight, fmts.bwd_weight, "weight", None,
                                  square, False))
            dx = self.emit(GemmOp(
                layer.name, "bwd_data", m, k, n, fmts.grad_bwd_data, fmts.bwd_weight,
                self.acc(fmts.grad_bwd_data, fmts.bwd_weight), fmts.output, count, out_elements=unique_x,
                deps=_deps(g, wq),
            ))
            results.append((srcs[0], dx))
        return results, wgrad

    def _forward_gemm(self, layer: Layer, srcs: list[_Tensor]) -> _Tensor:
        fmts = self._formats(layer, srcs)
        if self._is_block(fmts):
            return self._forward_block(layer, srcs, fmts)
        m, n, k, count = layer.gemm_dims(self.batch)
        deps: list[int] = []
        a_format = fmts.activation
        if layer.type == "matmul":
            # each operand in the activation format of its own sign: softmax probabilities in
            # unsigned 4 bits (twice the resolution of signed), queries, keys and values signed
            b_src = srcs[1] if len(srcs) > 1 else srcs[0]
            a_format, b_format = (self._operand_format(layer, src) for src in (srcs[0], b_src))
            self.act_formats[layer.name] = (a_format, b_format)
            a_dep = self._quantize_input(layer, srcs[0], a_format, m * k * count)
            b_dep = self._quantize_input(layer, b_src, b_format, k * n * count)
            deps += [d for d in (a_dep, b_dep) if d is not None]
        else:
            a_dep = self._quantize_input(layer, srcs[0], fmts.activation, _a_elements(layer, self.batch))
            self.stash[layer.name] = a_dep
            if a_dep is not None:
                deps.append(a_dep)
            if needs_rescale(fmts.weight):
                reduction = "stats" if self.policy.weight_rescale == "sawb" else "max"
                deps.append(self.emit(RescaleOp(
                    layer.name, "fwd", layer.weight_elements(), self.policy.master_weight,
                    fmts.weight, reduction, 1, "weight",
                )))
            b_format = fmts.weight
        idx = self.emit(GemmOp(
            layer.name, "fwd", m, n, k, a_format, b_format, self.acc(a_format, b_format), fmts.output,
            count, a_elements=_im2col_elements(layer, self.batch), deps=tuple(sorted(set(deps))),
        ))
        return _Tensor(idx, fmts.output, False)

    def _forward_vector(self, layer: Layer, srcs: list[_Tensor]) -> _Tensor:
        src = srcs[0]
        if layer.type == "flatten":
            return src
        if layer.type == "embedding":  # a gather of table rows (plus the positional table), stored in 16 bits
            fmt, op = self.policy.output, "embedding_pos" if layer.positions else "embedding"
        else:
            fmt = vector_format(src.format, self.policy.output)
            op = VECTOR_OP_NAME[layer.type]
        deps = tuple(sorted({s.producer for s in srcs if s.producer is not None}))
        idx = self.emit(VectorOp(layer.name, "fwd", layer.out_elements(self.batch), op, fmt, deps))
        self.fwd_op[layer.name] = idx
        self.fwd_input[layer.name] = src.producer
        if layer.type in NONNEG_LAYERS or (layer.type == "softmax"):
            nonneg = True
        elif layer.type in SIGN_PRESERVING:
            nonneg = all(s.nonneg for s in srcs)
        else:
            nonneg = False
        return _Tensor(idx, fmt, nonneg)

    # -- loss and backward ---------------------------------------------------------------------

    def backward(self, out: dict[str | None, _Tensor]) -> None:
        last = self.net.layers[-1]
        loss = self.emit(VectorOp(
            last.name, "fwd", last.out_elements(self.batch), "softmax_xent", self.policy.output,
            _deps(out[last.name].producer),
        ))
        # gradient contributions waiting for each layer's output: list of producer op indices
        pending: dict[str, list[int]] = {last.name: [loss]}
        weight_grads: list[tuple[Layer, int]] = []
        for layer in reversed(self.net.layers):
            contributions = pending.pop(layer.name, [])
            if not contributions:
                continue  # output unused (e.g. a dead branch): no gradient flows
            grad = self._sum_gradients(layer, contributions)
            srcs = [name for name in self.inputs[layer.name]]
            if layer.is_gemm:
                data_grads, wgrad = self._backward_gemm(layer, grad, out, srcs)
                if wgrad is not None:
                    weight_grads.append((layer, wgrad))
            elif layer.type == "embedding":  # the gradient is scattered into the tables
                weight_grads.append((layer, self.emit(VectorOp(
                    layer.name, "bwd_weight", layer.out_elements(self.batch), "embedding_bwd", self.policy.output,
                    (grad,),
                ))))
                data_grads = []
            else:
                data_grads = self._backward_vector(layer, grad, srcs)
            for name, idx in data_grads:
                if name is not None:
                    pending.setdefault(name, []).append(idx)
        for layer, wgrad in weight_grads:
            self.emit(VectorOp(
                layer.name, "update", layer.weight_elements(), "sgd_update",
                self.policy.master_weight, (wgrad,),
            ))

    def _sum_gradients(self, layer: Layer, contributions: list[int]) -> int:
        grad = contributions[0]
        for other in contributions[1:]:
            grad = self.emit(VectorOp(
                layer.name, "bwd_data", layer.out_elements(self.batch), "grad_add", self.policy.output,
                tuple(sorted((grad, other))),
            ))
        return grad

    def _backward_gemm(
        self, layer: Layer, grad: int, out: dict[str | None, _Tensor], srcs: list[str | None]
    ) -> tuple[list[tuple[str | None, int]], int | None]:
        fmts = self.formats[layer.name]
        if self._is_block(fmts):
            return self._backward_block(layer, grad, out, srcs, fmts)
        m, n, k, count = layer.gemm_dims(self.batch)
        grad_elements = m * n * count
        # requantize the incoming gradient: one rescale per distinct 4-bit gradient format
        quantized: dict[str, int] = {}
        for fmt in dict.fromkeys((fmts.grad_bwd_data, fmts.grad_bwd_weight)):
            if needs_rescale(fmt):
                copies = 2 if fmts.tpr and fmt == "fp4r4" else 1
                quantized[fmt] = self.emit(RescaleOp(
                    layer.name, "bwd_data", grad_elements, self.policy.output, fmt, "max", copies,
                    "gradient", (grad,),
                ))
        g_data = quantized.get(fmts.grad_bwd_data, grad)
        g_weight = quantized.get(fmts.grad_bwd_weight, grad)
        results: list[tuple[str | None, int]] = []
        reads_input = all(name is None for name in srcs)
        if layer.type == "matmul":
            a_name = srcs[0]
            b_name = srcs[1] if len(srcs) > 1 else srcs[0]
            a_format, b_format = self.act_formats[layer.name]
            da = self.emit(GemmOp(
                layer.name, "bwd_data", m, k, n, fmts.grad_bwd_data, b_format,
                self.acc(fmts.grad_bwd_data, b_format), fmts.output, count,
                deps=_deps(g_data, out[b_name].producer),
            ))
            db = self.emit(GemmOp(
                layer.name, "bwd_data", k, n, m, a_format, fmts.grad_bwd_data,
                self.acc(a_format, fmts.grad_bwd_data), fmts.output, count,
                deps=_deps(g_data, out[a_name].producer),
            ))
            return [(a_name, da), (b_name, db)], None
        unique_x = _im2col_elements(layer, self.batch)
        wgrad = self.emit(GemmOp(
            layer.name, "bwd_weight", k, n, m, fmts.activation, fmts.grad_bwd_weight,
            self.acc(fmts.activation, fmts.grad_bwd_weight), self.policy.master_weight, count, a_elements=unique_x,
            deps=_deps(g_weight, self.stash[layer.name]),
        ))
        if not reads_input:
            dx = self.emit(GemmOp(
                layer.name, "bwd_data", m, k, n, fmts.grad_bwd_data, fmts.weight,
                self.acc(fmts.grad_bwd_data, fmts.weight), fmts.output, count, out_elements=unique_x,
                deps=_deps(g_data),
            ))
            results.append((srcs[0], dx))
        return results, wgrad

    def _backward_vector(self, layer: Layer, grad: int, srcs: list[str | None]) -> list[tuple[str | None, int]]:
        if layer.type == "flatten":
            return [(srcs[0], grad)]
        if layer.type in ("add", "concat"):  # the same gradient, or a slice of it, to each input
            return [(name, grad) for name in srcs if name is not None]
        if all(name is None for name in srcs) and layer.type not in ("batchnorm", "layernorm"):
            return []  # nothing to compute: no gradient for the network input, no parameters
        saved = self._saved_tensor(layer)
        saved_format = self._format_of(saved) if saved is not None else ""
        idx = self.emit(VectorOp(
            layer.name, "bwd_data", layer.in_elements(self.batch), VECTOR_OP_NAME[layer.type] + "_bwd",
            self.policy.output, _deps(grad, saved),
            aux_format=saved_format if saved_format != self.policy.output else "",
        ))
        return [(srcs[0], idx)] if srcs[0] is not None else []

    def _format_of(self, index: int) -> str:
        """Format of the tensor op ``index`` produced."""
        op = self.ops[index]
        return op.format if isinstance(op, VectorOp) else op.out_format

    def _saved_tensor(self, layer: Layer) -> int | None:
        """The forward tensor a vector layer's backward re-reads: the activation's output (its
        mask; for a PACT-quantized activation the 4-bit stash carries it), the normalization's
        input, the pooling's output (argmax); average pooling needs none."""
        if layer.type in ("relu", "relu6"):
            return self.mask_stash.get(layer.name, self.fwd_op[layer.name])
        if layer.type in ("batchnorm", "layernorm", "gelu"):
            return self.fwd_input[layer.name]
        if layer.type in ("maxpool", "softmax"):
            return self.fwd_op[layer.name]
        return None


def layer_inputs(net: Network) -> dict[str, tuple[str | None, ...]]:
    """The layers each layer reads (``None``: the network input)."""
    inputs: dict[str, tuple[str | None, ...]] = {}
    prev: str | None = None
    for layer in net.layers:
        inputs[layer.name] = (
            tuple(None if name == NETWORK_INPUT else name for name in layer.inputs) if layer.inputs else (prev,)
        )
        prev = layer.name
    return inputs


def edge_gemms(net: Network, inputs: dict[str, tuple[str | None, ...]]) -> tuple[frozenset[str], frozenset[str]]:
    """The GEMM layers the first/last-layer rule keeps in higher precision: the *first* are those
    with no GEMM layer between the network input and them (a CNN's first convolution; a
    transformer's first Q, K and V projections), the *last* those with no GEMM layer between them
    and the network output (the classifier)."""
    after_gemm: dict[str | None, bool] = {None: False}   # a GEMM lies on some path from the input
    first: set[str] = set()
    for layer in net.layers:
        upstream = any(after_gemm[src] for src in inputs[layer.name])
        if layer.is_gemm and not upstream:
            first.add(layer.name)
        after_gemm[layer.name] = upstream or layer.is_gemm
    consumers: dict[str, list[str]] = {}
    for layer in net.layers:
        for src in inputs[layer.name]:
            if src is not None:
                consumers.setdefault(src, []).append(layer.name)
    before_gemm: dict[str, bool] = {}   # a GEMM lies on some path from here to the output
    last: set[str] = set()
    for layer in reversed(net.layers):
        downstream = any(before_gemm[c] for c in consumers.get(layer.name, ()))
        if layer.is_gemm and not downstream:
            last.add(layer.name)
        before_gemm[layer.name] = downstream or layer.is_gemm
    return frozenset(first), frozenset(last)


def vector_format(src_format: str, output: str) -> str:
    """A vector op runs in its input's format when that is 16 bits or wider (the network input in
    fp32, say), else in the policy's output format."""
    return src_format if FORMATS[src_format].bits >= 16 else output


def _a_elements(layer: Layer, batch: int) -> int:
    """Elements of a GEMM layer's input tensor (what a rescale of that input touches: all of it,
    also where a strided convolution reads only some of its pixels)."""
    if layer.type == "conv2d":
        return layer.in_elements(batch)
    m, n, k, count = layer.gemm_dims(batch)
    return m * k * count


def _im2col_elements(layer: Layer, batch: int) -> int:
    """For a convolution, the input elements its im2col matrix actually reads (each once); else 0.

    That is the whole input tensor, or less when a strided window skips pixels (1×1, stride 2).
    """
    if layer.type != "conv2d":
        return 0
    m, n, k, count = layer.gemm_dims(batch)
    return min(layer.in_elements(batch), m * k * count)


def _deps(*indices: int | None) -> tuple[int, ...]:
    return tuple(sorted({i for i in indices if i is not None}))


def build_step(net: Network, policy: PrecisionPolicy, *, phases: str = "training", steps: int = 1) -> Trace:
    """The trace of one training (or inference) step of ``net`` under ``policy``."""
    builder = _Builder(net, policy)
    out = builder.forward()
    if phases == "training":
        builder.backward(out)
    return Trace(
        workload=net.name, ops=tuple(builder.ops), steps=steps, batch_size=net.batch_size,
        phases=phases, precision=policy.name,
    )
