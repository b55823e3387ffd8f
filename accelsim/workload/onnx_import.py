"""ONNX models as accelsim networks.

An ONNX file (``torch.onnx.export(model, example_input, "net.onnx")``) is read with a bounded read,
checked with ``onnx.checker``, shape-inferred (``onnx.shape_inference.infer_shapes``, strict) and
mapped node by node onto the layer types of :mod:`accelsim.workload.graph`. The mapping is exact or
refused: an operator, attribute or layout accelsim cannot reproduce is an :class:`InputError`
naming the node (its index in the graph, its name and its op type) and what is supported — never a
layer silently priced at zero.

Supported (default ONNX domain):

* ``Conv`` (2-D; groups, strides, symmetric pads; dilations 1) → ``conv2d``; ``Gemm`` (``transB``,
  ``alpha = beta = 1``) and ``MatMul`` with a constant second operand → ``linear``; ``MatMul`` of two
  activations → an attention product (``matmul``: heads split from ``(tokens, features)`` by
  ``Reshape``/``Transpose``, the second operand optionally transposed);
* ``Relu``, ``Clip`` (0..6 → ``relu6``; ``min 0`` alone → ``relu``), ``Gelu`` and its exported form
  ``x·0.5·(1 + erf(x/√2))`` (fused back into one ``gelu``), ``BatchNormalization``,
  ``LayerNormalization`` (last axis), ``Softmax`` (last axis; a scalar ``Mul``/``Div`` before it
  becomes its scale, as attention's 1/√d), ``Add`` (a residual of two activations; a constant added
  to the output of ``Gemm``/``MatMul``/``Conv`` is that layer's bias), ``Concat``, ``MaxPool``,
  ``AveragePool``, ``GlobalAveragePool``, ``GlobalMaxPool``, ``Flatten``;
* ``Reshape``, ``Transpose``, ``Squeeze``, ``Unsqueeze``, ``Identity``, ``Dropout`` where they only
  relayout (a view of the tensor another layer computes) or do nothing at inference; shape
  arithmetic (``Shape``, ``Gather``, ``Concat`` of shapes, ``Constant``) that feeds them.

Axis 0 of every activation is the batch: per-sample shapes are the rest (accelsim's ``Network``
convention). The batch size is the caller's (``data.batch_size``), else the graph input's fixed
batch dimension, else 1.

Layouts. Reshapes and transposes never become layers: every ONNX value is a :class:`View` of the
tensor an accelsim layer computes — that tensor's axes split into *atoms*, permuted, and grouped into
the ONNX axes. A layer that needs its input laid out as accelsim computes it (``Conv``, ``Gemm``,
``LayerNormalization`` ...) accepts a view that is the tensor itself, a flattening of it (a
``flatten`` layer is added) or, for an attention product's output, its heads merged back into
``(tokens, features)``; anything else is refused, naming the relayout node.

Parameters. With ``with_params`` the file's initializers become ``Network.meta["initial_params"]``
in accelsim's layouts (:func:`accelsim.nn.model.build_model` loads them): Linear ``weight (out,
in)`` and ``bias (out,)``, Conv2d ``weight (out, in/groups, kh, kw)`` and ``bias``, BatchNorm
``weight``, ``bias``, ``running_mean``, ``running_var``, LayerNorm ``weight``, ``bias``; a layer
without a bias in the file starts from a zero bias. Training then uses accelsim's layers: ``gelu``
is the tanh approximation (within 5e-4 of the erf form), batch and layer normalization use
epsilon 1e-5.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.errors import InputError
from accelsim.spec.models import MAX_LAYERS
from accelsim.spec.yamlio import read_bytes
from accelsim.workload.graph import (
    NETWORK_INPUT,
    GraphError,
    Layer,
    Network,
    add_layer,
    concat_layer,
    conv2d_layer,
    elementwise_layer,
    flatten_layer,
    linear_layer,
    pool_layer,
    softmax_layer,
)

#: Largest ONNX file read, bytes (protobuf itself stops at 2 GiB).
MAX_ONNX_BYTES = 1 << 30
#: Most nodes a graph may have (each accelsim layer is one to a dozen ONNX nodes).
MAX_NODES = 100_000
#: Largest number of elements of one initializer or one activation (per sample).
MAX_ELEMENTS = 1 << 31

#: What the importer maps, for messages.
SUPPORTED_OPS = (
    "Conv", "Gemm", "MatMul", "Relu", "Clip", "Gelu", "Erf (x·0.5·(1+erf(x/√2)))", "BatchNormalization",
    "LayerNormalization", "Softmax", "Add", "Mul/Div (a scalar before Softmax)", "Concat", "MaxPool",
    "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Reshape", "Transpose", "Squeeze",
    "Unsqueeze", "Identity", "Dropout", "Constant", "Shape",
)
_RELAYOUT = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten"})
#: Ops that keep their input's layout (a view passes through them to what reads their output).
_ELEMENTWISE = frozenset({"Identity", "Dropout", "Relu", "Clip", "Gelu", "Mul", "Div"})
#: Ops computed on constants while importing (shape arithmetic, weights given in another layout).
_CONST_OPS = frozenset({
    "Identity", "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Cast", "Gather", "Concat", "Sqrt",
    "Add", "Sub", "Mul", "Div", "Neg", "Slice",
})
_FLOAT_TYPES = {1: "float", 10: "float16", 11: "double", 16: "bfloat16"}


# ------------------------------------------------------------------------------------------------
# reading


def read_model(path: Path, *, file: str | None = None, field: str = "", label: str | None = None) -> Any:
    """The parsed, checked model in ``path`` (at most :data:`MAX_ONNX_BYTES`, a regular file).

    Problems with the file itself are reported against ``file``/``field`` when given (the workload
    that names it), else against the path; problems with its content against ``label`` (default:
    the path)."""
    import onnx

    label = label or str(path)
    model = _parse(path, file, field, label)
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, RuntimeError, ValueError) as exc:
        raise InputError.single(label, "", f"not a valid ONNX model: {_first_line(exc)}") from None
    return model


def _parse(path: Path, file: str | None, field: str, label: str) -> Any:
    import onnx
    from google.protobuf.message import DecodeError

    data = read_bytes(path, what="serialized ONNX model", max_bytes=MAX_ONNX_BYTES, file=file, field=field)
    if not data:
        raise InputError.single(label, "", "not an ONNX model: the file is empty")
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InputError.single(
            label, "", f"not an ONNX model: the file is not a valid ONNX protobuf ({_first_line(exc)})"
        ) from None
    _check_structure(model, label)
    return model


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 240 else text[:237] + "..."


def _check_structure(model: Any, label: str) -> None:
    """What must hold before onnx's own checker and shape inference see the model: a graph with
    nodes and inputs, sane counts, initializers whose data match their dims."""
    if not model.HasField("graph"):
        raise InputError.single(label, "", "not an ONNX model: it has no graph (a truncated or foreign file?)")
    graph = model.graph
    _check_text(model, label)
    if len(graph.node) == 0:
        raise InputError.single(label, "graph", "the graph has no nodes")
    if len(graph.node) > MAX_NODES:
        raise InputError.single(label, "graph", f"the graph has {len(graph.node):,} nodes; at most {MAX_NODES:,} are read")
    if len(graph.sparse_initializer):
        raise InputError.single(label, "graph.sparse_initializer", "sparse initializers are not supported")
    for i, t in enumerate(graph.initializer):
        _check_initializer(t, f"graph.initializer.{i} {t.name!r}", label)
    inits = {t.name for t in graph.initializer}
    if not [v for v in graph.input if v.name not in inits]:
        raise InputError.single(label, "graph.input", "the graph has no inputs (accelsim needs one: the network input)")
    if not len(graph.output):
        raise InputError.single(label, "graph.output", "the graph has no outputs")


def _check_text(model: Any, label: str) -> None:
    """Every name is text (protobuf hands invalid UTF-8 in a string field back as bytes)."""
    graph = model.graph
    named = [("graph.input", v.name) for v in graph.input] + [("graph.output", v.name) for v in graph.output]
    named += [("graph.value_info", v.name) for v in graph.value_info]
    named += [(f"graph.initializer.{i}", t.name) for i, t in enumerate(graph.initializer)]
    named += [("opset_import", o.domain) for o in model.opset_import]
    for i, n in enumerate(graph.node):
        named += [(f"node {i}", v) for v in (n.name, n.op_type, n.domain, *n.input, *n.output, *(a.name for a in n.attribute))]
    for where, value in named:
        if not isinstance(value, str):
            raise InputError.single(label, where, f"a name is not UTF-8 text ({value[:40]!r})")


_ITEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}


def _check_initializer(t: Any, where: str, label: str) -> None:
    dims = list(t.dims)
    if any(d < 0 for d in dims):
        raise InputError.single(label, where, f"negative dimension in {dims}")
    count = math.prod(dims)
    if count > MAX_ELEMENTS:
        raise InputError.single(label, where, f"{count:,} elements (dims {dims}); at most {MAX_ELEMENTS:,} are read")
    if t.data_location == 1:  # EXTERNAL: data in another file, read only for training
        return
    if t.data_type not in _ITEM_BYTES:
        raise InputError.single(label, where, f"tensor data type {t.data_type} is not supported")
    if t.HasField("raw_data"):
        have, need, unit = len(t.raw_data), count * _ITEM_BYTES[t.data_type], "bytes"
    else:
        fields = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")
        have = sum(len(getattr(t, name)) for name in fields)
        need, unit = count * (2 if t.data_type in (14, 15) else 1), "values"
    if have != need:
        raise InputError.single(
            label, where, f"dims {dims} need {need:,} {unit} of data, the file has {have:,} (a truncated or damaged file?)"
        )


def graph_batch_size(path: Path, *, file: str | None = None, field: str = "", label: str | None = None) -> int | None:
    """The fixed batch dimension (axis 0) of the model's input, ``None`` if it is symbolic (the
    file is read and parsed, not checked: :func:`import_onnx` does that)."""
    label = label or str(path)
    model = _parse(path, file, field, label)
    (inp,) = _activation_inputs(model.graph, label)
    dims = inp.type.tensor_type.shape.dim
    if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
        return int(dims[0].dim_value)
    return None


def named_model(value: str, file: str, base_dir: Path) -> tuple[Path, bool]:
    """The ONNX file ``model: {onnx: value}`` of workload ``file`` names (relative to ``base_dir``),
    and whether it is the workload itself (``accelsim run net.onnx``: then named as the user gave it)."""
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base_dir / path
    direct = Path(file).suffix.lower() == ".onnx" and path == Path(file).resolve()
    return (Path(file) if direct else path), direct


def with_graph_batch(spec: Any, file: str) -> Any:
    """An ONNX workload (a :class:`~accelsim.spec.models.WorkloadSpec`) without ``data.batch_size``
    takes the graph input's fixed batch, written into the spec so that the resolved configuration
    says what was simulated; a symbolic batch leaves the spec as it is (batch 1)."""
    from accelsim.spec import load as spec_load

    if "batch_size" in spec.data.model_fields_set:
        return spec
    path, direct = named_model(spec.model.onnx, file, Path(file).parent)
    batch = graph_batch_size(path, file=None if direct else file, field="" if direct else "model.onnx")
    if batch is None:
        return spec
    data = spec.model_dump(mode="json", exclude_unset=True)
    data.setdefault("data", {})["batch_size"] = batch
    try:
        return spec_load.validate_data("workload", data, file)
    except InputError as exc:
        raise InputError.single(
            str(path), "graph.input",
            f"the input's batch dimension {batch:,} does not make a valid data.batch_size ({exc.problems[0].message}); "
            "set data.batch_size",
        ) from None


def _activation_inputs(graph: Any, label: str) -> list[Any]:
    inits = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in inits]
    if len(inputs) != 1:
        names = ", ".join(repr(v.name) for v in inputs)
        raise InputError.single(label, "graph.input", f"the graph has {len(inputs)} inputs ({names}); accelsim networks have one")
    return inputs


# ------------------------------------------------------------------------------------------------
# views: how an ONNX value lays out the tensor an accelsim layer computes


@dataclass(frozen=True)
class View:
    """An ONNX value ``(batch, *shape)`` as a relayout of the accelsim tensor ``base``.

    The base's per-sample axes are split into ``atoms`` (sizes > 1, in the base's memory order);
    ``perm`` lists them in the ONNX value's memory order; consecutive atoms of ``perm`` make up the
    value's axes ``shape`` (axes of size 1 hold none). ``scale`` is a pending scalar factor (a
    ``Mul``/``Div`` that a following ``Softmax`` absorbs); ``via`` the last relayout node."""

    base: str
    atoms: tuple[int, ...]
    perm: tuple[int, ...]
    shape: tuple[int, ...]
    scale: float = 1.0
    via: str = ""

    def key(self) -> tuple:
        """Equal keys: the same elements of the same base in the same layout."""
        atoms, perm = _coalesce(self.atoms, self.perm, self._bounds())
        return self.base, atoms, perm, self.shape

    def _bounds(self) -> set[int]:
        out, pos = set(), 0
        for group in self.groups():
            if group:
                out.add(pos)
            pos += len(group)
        return out

    def groups(self) -> list[list[int]]:
        """Per ONNX axis, its atoms (indices into ``atoms``), in memory order."""
        sizes = [self.atoms[a] for a in self.perm]
        out, pos = [], 0
        for d in self.shape:
            group, rest = [], d
            while rest > 1:
                rest //= sizes[pos]
                group.append(self.perm[pos])
                pos += 1
            out.append(group)
        return out

    @property
    def contiguous(self) -> bool:
        """The value is a row-major reshape of the base (no axis moved)."""
        return len(_coalesce(self.atoms, self.perm, None)[1]) <= 1


def identity_view(base: str, shape: tuple[int, ...]) -> View:
    atoms = tuple(d for d in shape if d != 1)
    return View(base, atoms, tuple(range(len(atoms))), tuple(shape))


def split_heads_view(base: str, shape: tuple[int, ...], heads: int) -> View:
    """``(tokens, heads·d)`` seen as ``(heads, tokens, d)``: how the ``matmul`` layer splits heads."""
    tokens, features = shape
    view = reshape_view(identity_view(base, shape), (tokens, heads, features // heads), "")
    assert view is not None
    return transpose_view(view, (1, 0, 2), "")


def _coalesce(atoms: tuple[int, ...], perm: tuple[int, ...], bounds: set[int] | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Merge atoms that follow each other in both orders (and not across ``bounds``, positions in
    ``perm`` where an ONNX axis starts)."""
    runs: list[list[int]] = []
    for pos, a in enumerate(perm):
        if runs and runs[-1][-1] + 1 == a and (bounds is None or pos not in bounds):
            runs[-1].append(a)
        else:
            runs.append([a])
    order = sorted(range(len(runs)), key=lambda r: runs[r][0])
    rank = {r: i for i, r in enumerate(order)}
    new_atoms = tuple(math.prod(atoms[a] for a in runs[r]) for r in order)
    return new_atoms, tuple(rank[r] for r in range(len(runs)))


def reshape_view(view: View, shape: tuple[int, ...], via: str) -> View | None:
    """``view`` reshaped (row-major, per sample) to ``shape``; ``None`` if the reshape cuts an atom
    in a way no permutation of sub-axes expresses."""
    atoms, perm = _coalesce(view.atoms, view.perm, None)
    queue = deque((a, (), atoms[a]) for a in perm)
    pieces: list[tuple[int, tuple[int, ...], int]] = []
    for d in shape:
        rest = d
        while rest > 1:
            if not queue:
                return None
            a, path, size = queue.popleft()
            if rest % size == 0:
                pieces.append((a, path, size))
                rest //= size
            elif size % rest == 0:
                pieces.append((a, path + (0,), rest))
                queue.appendleft((a, path + (1,), size // rest))
                rest = 1
            else:
                return None
    if queue:
        return None
    order = sorted(range(len(pieces)), key=lambda i: (pieces[i][0], pieces[i][1]))
    rank = {i: j for j, i in enumerate(order)}
    return replace(view, atoms=tuple(pieces[i][2] for i in order), perm=tuple(rank[i] for i in range(len(pieces))),
                   shape=tuple(shape), via=via)


def transpose_view(view: View, axes: tuple[int, ...], via: str) -> View:
    """``view`` with its per-sample axes permuted (``axes[i]``: the old axis that becomes axis i)."""
    groups = view.groups()
    perm = tuple(a for i in axes for a in groups[i])
    return replace(view, perm=perm, shape=tuple(view.shape[i] for i in axes), via=via)


# ------------------------------------------------------------------------------------------------
# import


def import_onnx(
    path: Path, *, name: str, batch_size: int | None = None, with_params: bool = False,
    file: str | None = None, field: str = "", label: str | None = None,
) -> Network:
    """The network of the ONNX model in ``path``.

    ``batch_size``: the network's batch (``None``: the graph input's fixed batch, else 1).
    ``with_params``: convert the initializers into ``meta["initial_params"]`` (for training).
    ``file``/``field``: the workload that names the model, for problems reading it; ``label``: how
    messages about the content name the model (default: the path)."""
    import onnx

    label = label or str(path)
    model = read_model(path, file=file, field=field, label=label)
    graph = model.graph
    (inp,) = _activation_inputs(graph, label)
    dims = inp.type.tensor_type.shape.dim
    written = [d.dim_param or d.dim_value for d in dims]
    fixed = dims[0].dim_value if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None
    batch = batch_size or fixed or 1
    if dims and fixed is None:  # a symbolic batch: give shape inference the network's
        dims[0].Clear()
        dims[0].dim_value = batch
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError) as exc:
        raise InputError.single(label, "", f"shape inference failed: {_first_line(exc)}") from None
    return _Importer(inferred, label, name, fixed or batch, batch, with_params, path).run(written)


@dataclass
class _Node:
    """A node of the graph (or one fused from several), with its position in the file."""

    index: int
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"node {self.index} {self.name!r} ({self.op})"


class _Importer:
    def __init__(self, model: Any, label: str, name: str, onnx_batch: int, batch: int, with_params: bool,
                 path: Path):
        from onnx import helper

        self.graph = model.graph
        self.label = label
        self.name = name
        self.onnx_batch = onnx_batch   # axis 0 in the inferred shapes
        self.batch = batch
        self.with_params = with_params
        self.path = path
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.shapes: dict[str, tuple[int, ...] | None] = {}
        for v in (*self.graph.input, *self.graph.value_info, *self.graph.output):
            self.shapes[v.name] = _static_shape(v)
        self.inits = {t.name: t for t in self.graph.initializer}
        for t in self.graph.initializer:
            self.shapes[t.name] = tuple(int(d) for d in t.dims)
        self.consts: dict[str, np.ndarray | None] = {}    # constant values (None: not yet computed)
        self.const_node: dict[str, _Node] = {}            # the node computing a derived constant
        self.values: dict[str, View] = {}                 # activation values
        self.layers: list[Layer] = []
        self.layer_shapes: dict[str, tuple[int, ...]] = {}
        self.params: dict[str, dict[str, np.ndarray]] = {}
        self.bias_of: dict[str, str] = {}                 # value -> weight layer whose bias an Add may fold
        self.readers: dict[str, list[_Node]] = {}
        self.flattened: dict[str, str] = {}               # base -> its flatten layer
        self.names: set[str] = {NETWORK_INPUT}
        self._attr = helper.get_attribute_value

    # -- driver ----------------------------------------------------------------------------------

    def run(self, input_dims: list) -> Network:
        """The network; ``input_dims``: the input's dimensions as the file writes them."""
        graph = self.graph
        (inp,) = _activation_inputs(graph, self.label)
        in_shape = self.shapes.get(inp.name)
        elem = inp.type.tensor_type.elem_type
        if elem not in _FLOAT_TYPES:
            raise InputError.single(
                self.label, f"graph.input {inp.name!r}",
                f"the input has element type {elem}; accelsim reads floating-point inputs (token ids and their Gather are not supported)",
            )
        if in_shape is None or len(in_shape) < 2:
            raise InputError.single(
                self.label, f"graph.input {inp.name!r}",
                f"shape {input_dims} is not (batch, ...) with fixed sizes; export with a fixed example input "
                "(only the batch axis may be symbolic)",
            )
        if len(in_shape) > 4:
            raise InputError.single(
                self.label, f"graph.input {inp.name!r}",
                f"shape {list(in_shape)} has {len(in_shape) - 1} axes per sample; accelsim networks take "
                "(features), (tokens, features) or (channels, height, width)",
            )
        sample = in_shape[1:]
        self._check_elements(sample, f"graph.input {inp.name!r}")
        self.values[inp.name] = identity_view(NETWORK_INPUT, sample)
        self.layer_shapes[NETWORK_INPUT] = sample
        if len(graph.output) != 1:
            names = ", ".join(repr(o.name) for o in graph.output)
            raise InputError.single(self.label, "graph.output", f"the graph has {len(graph.output)} outputs ({names}); accelsim networks have one")
        out_name = graph.output[0].name
        nodes = self._live_nodes(out_name)
        nodes = _fuse_gelu(nodes, self)
        for node in nodes:
            for src in node.inputs:
                if src:
                    self.readers.setdefault(src, []).append(node)
        for node in nodes:
            self._node(node)
        if out_name not in self.values:
            raise InputError.single(self.label, "graph.output", f"the output {out_name!r} is a constant; accelsim times computations")
        view = self.values[out_name]
        if view.scale != 1.0:
            raise InputError.single(self.label, "graph.output", f"the output is scaled by {view.via}; accelsim folds a scalar "
                                    "scale only into a following Softmax")
        if view.base == NETWORK_INPUT and not self.layers:
            raise InputError.single(self.label, "graph", "the graph computes nothing accelsim can time (its output is its input)")
        last = self._plain(view, "the graph output")
        if not self.layers or self.layers[-1].name != last:
            raise InputError.single(
                self.label, "graph.output", f"the output {out_name!r} is not the last layer computed ({last!r}); "
                "accelsim networks end in their output",
            )
        if len(self.layers) > MAX_LAYERS:
            raise InputError.single(self.label, "graph", f"the graph maps to {len(self.layers):,} layers; at most {MAX_LAYERS:,} are allowed")
        shape = self.layers[-1].out_shape
        meta: dict[str, Any] = {"onnx": str(self.path)}
        if self.with_params:
            meta["initial_params"] = self.params
        return Network(
            name=self.name, input_shape=sample, layers=tuple(self.layers), batch_size=self.batch,
            classes=shape[-1] if len(shape) in (1, 2) else None, meta=meta,
        )

    def _live_nodes(self, out_name: str) -> list[_Node]:
        """The nodes the output depends on, in graph order (the checker verified the order)."""
        protos = list(self.graph.node)
        needed = {out_name}
        live = []
        for index in range(len(protos) - 1, -1, -1):
            p = protos[index]
            if any(o in needed for o in p.output if o):
                live.append(index)
                needed.update(i for i in p.input if i)
        nodes = []
        for index in reversed(live):
            p = protos[index]
            name = p.name or f"{p.op_type.lower()}{index}"
            nodes.append(_Node(index, p.op_type, name, list(p.input), list(p.output),
                               {a.name: a for a in p.attribute}))
            if p.domain not in ("", "ai.onnx"):
                raise self._unsupported(nodes[-1], f"operator {p.domain}::{p.op_type} is not in the default ONNX domain")
        return nodes

    def attr(self, node: _Node, key: str, default: Any = None) -> Any:
        a = node.attrs.get(key)
        if a is None:
            return default
        value = self._attr(a)
        return value.decode() if isinstance(value, bytes) else value

    # -- errors ----------------------------------------------------------------------------------

    def error(self, node: _Node, message: str) -> InputError:
        return InputError.single(self.label, node.where, message)

    def _unsupported(self, node: _Node, what: str | None = None) -> InputError:
        what = what or f"accelsim cannot map {node.op}"
        return self.error(node, f"{what} (supported: {', '.join(SUPPORTED_OPS)})")

    def _check_elements(self, shape: tuple[int, ...], where: str) -> None:
        if math.prod(shape) > MAX_ELEMENTS:
            raise InputError.single(self.label, where, f"a tensor of shape {list(shape)} is larger than {MAX_ELEMENTS:,} elements per sample")

    # -- values ----------------------------------------------------------------------------------

    def is_const(self, name: str) -> bool:
        return name in self.inits or name in self.consts

    def onnx_shape(self, node: _Node, name: str) -> tuple[int, ...]:
        shape = self.shapes.get(name)
        if shape is None:
            raise self.error(node, f"shape inference found no fixed shape for {name!r}; export with a fixed example input")
        return shape

    def sample_shape(self, node: _Node, name: str) -> tuple[int, ...]:
        shape = self.onnx_shape(node, name)
        if not shape or shape[0] != self.onnx_batch:
            raise self.error(node, f"{name!r} has shape {list(shape)}, not (batch={self.onnx_batch}, ...): accelsim keeps axis 0 as the batch")
        self._check_elements(shape[1:], node.where)
        return shape[1:]

    def act(self, node: _Node, name: str) -> View:
        if name not in self.values:
            raise self.error(node, f"input {name!r} is neither an activation nor a constant accelsim can read")
        return self.values[name]

    def const(self, node: _Node, name: str) -> np.ndarray:
        """The value of a constant input (an initializer, a Constant or shape arithmetic on them)."""
        if name in self.inits:
            return self._init_array(node, name)
        if name not in self.consts:
            raise self.error(node, f"input {name!r} must be a constant (an initializer)")
        if self.consts[name] is None:
            self._eval_consts(name)
        value = self.consts[name]
        assert value is not None
        return value

    def const_shape(self, node: _Node, name: str) -> tuple[int, ...]:
        if name in self.inits:
            return tuple(int(d) for d in self.inits[name].dims)
        if self.consts.get(name) is not None:
            return tuple(self.consts[name].shape)  # type: ignore[union-attr]
        return self.onnx_shape(node, name)

    def _init_array(self, node: _Node, name: str) -> np.ndarray:
        from onnx import numpy_helper

        tensor = self.inits[name]
        if tensor.data_location == 1:
            raise self.error(
                node, f"initializer {name!r} keeps its data in an external file; accelsim reads models whose weights "
                "are inside the .onnx file (export without external data)",
            )
        try:
            return numpy_helper.to_array(tensor)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise self.error(node, f"initializer {name!r} cannot be read: {_first_line(exc)}") from None

    def _scalar(self, node: _Node, name: str) -> float:
        value = self.const(node, name)
        if value.size != 1 or value.dtype.kind not in "fiu":
            raise self.error(node, f"{name!r} must be a scalar constant; it has shape {list(value.shape)} and type {value.dtype}")
        return float(value.reshape(()))

    def float_param(self, node: _Node, name: str) -> np.ndarray:
        if name in self.inits and self.inits[name].data_type not in _FLOAT_TYPES:
            raise self.error(node, f"initializer {name!r} has data type {self.inits[name].data_type}, not a float (quantized models are not supported)")
        value = self.const(node, name)
        if value.dtype.kind != "f":
            raise self.error(node, f"constant {name!r} has type {value.dtype}, not a float (quantized models are not supported)")
        if not np.all(np.isfinite(value)):
            raise self.error(node, f"constant {name!r} holds values that are not finite")
        return np.asarray(value, dtype=np.float32)

    def _eval_consts(self, name: str) -> None:
        """Compute ``name`` and the constants it is computed from, in graph order (no recursion: a
        chain of constant nodes may be as long as the graph)."""
        needed: dict[int, _Node] = {}
        todo = [name]
        while todo:
            value = todo.pop()
            node = self.const_node.get(value)
            if node is None or self.consts.get(value) is not None or node.index in needed:
                continue
            needed[node.index] = node
            todo.extend(i for i in node.inputs if i)
        for index in sorted(needed):
            self._eval_const(needed[index])

    def _eval_const(self, node: _Node) -> None:
        """Compute a constant node with NumPy (shape arithmetic, weights in another layout)."""
        if node.op not in _CONST_OPS:
            raise self._unsupported(node, f"{node.op} on constants cannot be computed while importing")
        ins = [self.const(node, i) if i else None for i in node.inputs]
        limit = 1 << 26
        if any(x is not None and x.size > limit for x in ins):
            raise self.error(node, f"computing {node.op} on a constant of more than {limit:,} elements")
        try:
            with np.errstate(all="ignore"):
                out = _numpy_op(node, ins, self)
        except (ValueError, IndexError, TypeError, KeyError, ArithmeticError) as exc:
            raise self.error(node, f"cannot compute {node.op} on its constants: {_first_line(exc)}") from None
        self.consts[node.outputs[0]] = np.asarray(out)

    # -- layers ----------------------------------------------------------------------------------

    def layer_name(self, node_name: str) -> str:
        base = node_name.strip("/").replace("/", ".")
        base = "".join(c if c.isalnum() or c in "._+-:" else "_" for c in base)[:100] or "layer"
        name, n = base, 1
        while name in self.names:
            n += 1
            name = f"{base}.{n}"
        self.names.add(name)
        return name

    def srcs(self, bases: tuple[str, ...]) -> tuple[str, ...]:
        """``inputs`` of a new layer reading ``bases``: empty when that is just the previous layer."""
        prev = self.layers[-1].name if self.layers else NETWORK_INPUT
        return () if bases == (prev,) else bases

    def append(self, layer: Layer) -> Layer:
        self.layers.append(layer)
        self.layer_shapes[layer.name] = layer.out_shape
        return layer

    def make(self, node: _Node, build, *args, **kwargs) -> Layer:
        try:
            return self.append(build(*args, **kwargs))
        except GraphError as exc:
            raise self.error(node, exc.message) from None

    def _plain(self, view: View, what: str, node: _Node | None = None) -> str:
        """The accelsim tensor whose layout is exactly the ONNX value's (adding a flatten layer where
        that makes it so)."""
        base = view.base
        shape = self.layer_shapes[base]
        if view.key() == identity_view(base, shape).key():
            return base
        if view.contiguous and len(view.shape) == 1 and len(shape) > 1:
            if base not in self.flattened:
                name = self.layer_name(f"{base}.flatten")
                self.append(flatten_layer(name, shape, inputs=self.srcs((base,))))
                self.flattened[base] = name
            return self.flattened[base]
        where = node.where if node is not None else "graph.output"
        via = f" laid out by {view.via}" if view.via else ""
        raise InputError.single(
            self.label, where,
            f"{what} reads a tensor of shape {list(view.shape)}{via}, a layout accelsim does not compute; "
            "Reshape/Transpose are supported where they only relayout (flatten, attention heads split and merged)",
        )

    def plain_input(self, node: _Node, name: str, ranks: tuple[int, ...] | None = None) -> tuple[str, tuple[int, ...]]:
        view = self.act(node, name)
        self._no_scale(node, view)
        base = self._plain(view, f"{node.op}", node)
        shape = self.layer_shapes[base]
        if ranks is not None and len(shape) not in ranks:
            raise self.error(node, f"input of shape {list(shape)}: {node.op} works on {_ranks(ranks)}")
        return base, shape

    def _no_scale(self, node: _Node, view: View) -> None:
        if view.scale != 1.0:
            raise self._unsupported(
                node, f"{node.op} reads the output of {view.via}, a Mul/Div by a constant (accelsim folds a scalar "
                "scale only into a following Softmax)",
            )

    def set_out(self, node: _Node, layer: Layer, *, bias_target: bool = False) -> None:
        self.values[node.outputs[0]] = identity_view(layer.name, layer.out_shape)
        if bias_target:
            self.bias_of[node.outputs[0]] = layer.name
        self._expect_shape(node, node.outputs[0], layer.out_shape)

    def _expect_shape(self, node: _Node, name: str, shape: tuple[int, ...]) -> None:
        inferred = self.shapes.get(name)
        if inferred is not None and tuple(inferred[1:]) != tuple(shape):
            raise self.error(
                node, f"output {name!r} has shape {list(inferred[1:])} per sample in the file, accelsim computes "
                f"{list(shape)} (an attribute accelsim does not reproduce?)",
            )

    def param(self, layer: str, key: str, value: np.ndarray) -> None:
        if self.with_params:
            self.params.setdefault(layer, {})[key] = np.ascontiguousarray(value, dtype=np.float32)

    # -- nodes -----------------------------------------------------------------------------------

    def _node(self, node: _Node) -> None:
        op = node.op
        if op == "Constant":
            self.consts[node.outputs[0]] = self._constant_value(node)
            return
        if op == "Shape":
            self._shape_node(node)
            return
        data_inputs = [i for i in node.inputs if i]
        if all(self.is_const(i) for i in data_inputs):
            for out in node.outputs:
                if out:
                    self.consts[out] = None
                    self.const_node[out] = node
            return
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            raise self._unsupported(node)
        handler(node)

    def _constant_value(self, node: _Node) -> np.ndarray:
        from onnx import numpy_helper

        for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
            if key in node.attrs:
                value = self.attr(node, key)
                if key == "value":
                    _check_initializer(value, node.where, self.label)
                    if value.data_location == 1:
                        raise self.error(node, "a Constant with external data")
                    return numpy_helper.to_array(value)
                return np.asarray(value, dtype=np.float32 if "float" in key else np.int64)
        raise self._unsupported(node, "a Constant without a numeric value")

    def _shape_node(self, node: _Node) -> None:
        shape = self.onnx_shape(node, node.inputs[0])
        start, end = self.attr(node, "start", 0), self.attr(node, "end", None)
        self.consts[node.outputs[0]] = np.asarray(shape[start:end], dtype=np.int64)

    # weight layers

    def _op_Conv(self, node: _Node) -> None:
        x, shape = self.plain_input(node, node.inputs[0], (3,))
        w_name = node.inputs[1]
        if not self.is_const(w_name):
            raise self.error(node, "the weight (input 1) must be an initializer")
        w_shape = self.const_shape(node, w_name)
        if len(w_shape) != 4:
            raise self.error(node, f"weight of shape {list(w_shape)}: accelsim maps 2-D convolutions only")
        out_c, _, kh, kw = w_shape
        if any(d != 1 for d in self.attr(node, "dilations", [1, 1])):
            raise self.error(node, f"dilations {self.attr(node, 'dilations')} are not supported (only 1)")
        groups = self.attr(node, "group", 1)
        if not isinstance(groups, int) or groups < 1:
            raise self.error(node, f"group {groups} must be a positive integer")
        if tuple(self.attr(node, "kernel_shape", [kh, kw])) != (kh, kw):
            raise self.error(node, f"kernel_shape {self.attr(node, 'kernel_shape')} disagrees with the weight {list(w_shape)}")
        kernel, stride, padding = self._window(node, shape[1:], [kh, kw])
        layer = self.make(node, conv2d_layer, self.layer_name(node.name), shape, out_c, kernel, stride, padding,
                          groups, inputs=self.srcs((x,)))
        has_bias = len(node.inputs) > 2 and bool(node.inputs[2])
        if has_bias:
            self._bias_shape(node, node.inputs[2], out_c)
        if self.with_params:
            self.param(layer.name, "weight", self.float_param(node, w_name))
            bias = self._broadcast_bias(node, node.inputs[2], out_c) if has_bias else np.zeros(out_c)
            self.param(layer.name, "bias", bias)
        self.set_out(node, layer, bias_target=True)

    def _window(self, node: _Node, hw: tuple[int, ...], kernel: list[int]) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """Kernel, strides and symmetric pads of a 2-D window, checked."""
        stride = list(self.attr(node, "strides", [1, 1]))
        for key, values in (("kernel_shape", kernel), ("strides", stride)):
            if len(values) != 2 or not all(1 <= v <= 4096 for v in values):
                raise self.error(node, f"{key} {values}: accelsim takes two sizes of 1..4096 (a 2-D window)")
        if any(d != 1 for d in self.attr(node, "dilations", [1, 1])):
            raise self.error(node, f"dilations {self.attr(node, 'dilations')} are not supported (only 1)")
        padding = self._pads(node, hw, (kernel[0], kernel[1]), (stride[0], stride[1]))
        if not all(0 <= p <= 4096 for p in padding):
            raise self.error(node, f"pads {list(padding)}: accelsim takes paddings of 0..4096")
        return (kernel[0], kernel[1]), (stride[0], stride[1]), padding

    def _pads(self, node: _Node, hw: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, ...]) -> tuple[int, int]:
        auto = self.attr(node, "auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for size, k, s in zip(hw, kernel, stride):
                total = max((-(-size // s) - 1) * s + k - size, 0)
                if total % 2:
                    raise self.error(node, f"auto_pad {auto} pads {total} rows/columns unevenly; accelsim pads symmetrically")
                pads.append(total // 2)
            return pads[0], pads[1]
        if auto == "VALID":
            return 0, 0
        if auto not in ("NOTSET", ""):
            raise self.error(node, f"auto_pad {auto!r} is not supported")
        pads = list(self.attr(node, "pads", [0, 0, 0, 0]))
        if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
            raise self.error(node, f"pads {pads} are not symmetric [top, left, bottom, right]; accelsim pads both sides alike")
        return pads[0], pads[1]

    def _bias_shape(self, node: _Node, name: str, n: int) -> None:
        shape = self.const_shape(node, name)
        if math.prod(shape) != 1 and (math.prod(shape) != n or max(shape) != n):
            raise self.error(node, f"bias {name!r} of shape {list(shape)} does not fit {n} outputs")

    def _op_Gemm(self, node: _Node) -> None:
        if self.attr(node, "transA", 0):
            raise self.error(node, "transA=1 is not supported (the first operand is the activation)")
        alpha, beta = self.attr(node, "alpha", 1.0), self.attr(node, "beta", 1.0)
        has_c = len(node.inputs) > 2 and bool(node.inputs[2])
        if alpha != 1.0 or (has_c and beta != 1.0):
            raise self.error(node, f"alpha={alpha:g}, beta={beta:g} are not supported (only 1)")
        a, b = node.inputs[0], node.inputs[1]
        if not self.is_const(b) or self.is_const(a):
            raise self.error(node, "the second operand must be an initializer (the weight) and the first the activation")
        x, shape = self.plain_input(node, a, (1,))
        trans_b = self.attr(node, "transB", 0)
        b_shape = self.const_shape(node, b)
        if len(b_shape) != 2:
            raise self.error(node, f"weight of shape {list(b_shape)} is not a matrix")
        n = b_shape[0] if trans_b else b_shape[1]
        layer = self.make(node, linear_layer, self.layer_name(node.name), shape, n, inputs=self.srcs((x,)))
        if self.with_params:
            w = self.float_param(node, b)
            self.param(layer.name, "weight", w if trans_b else w.T)
            bias = np.zeros(n, dtype=np.float32)
            if has_c:
                bias = bias + self._broadcast_bias(node, node.inputs[2], n)
            self.param(layer.name, "bias", bias)
        elif has_c:
            self._bias_shape(node, node.inputs[2], n)
        self.set_out(node, layer, bias_target=True)

    def _broadcast_bias(self, node: _Node, name: str, n: int) -> np.ndarray:
        value = self.float_param(node, name)
        if value.size == 1:
            return np.full(n, value.reshape(()), dtype=np.float32)
        if value.size != n or max(value.shape) != n:
            raise self.error(node, f"bias {name!r} of shape {list(value.shape)} does not fit {n} outputs")
        return value.reshape(n)

    def _op_MatMul(self, node: _Node) -> None:
        a, b = node.inputs
        if self.is_const(a):
            raise self.error(node, "a constant first operand is not supported (accelsim's linear layer is x·Wᵀ on the last axis)")
        if self.is_const(b):
            self._matmul_weight(node, a, b)
        else:
            self._matmul_act(node, a, b)

    def _matmul_weight(self, node: _Node, a: str, b: str) -> None:
        b_shape = self.const_shape(node, b)
        if len(b_shape) != 2:
            raise self.error(node, f"a constant operand of shape {list(b_shape)}: accelsim maps a matrix of weights only")
        x, shape = self.plain_input(node, a, (1, 2))
        layer = self.make(node, linear_layer, self.layer_name(node.name), shape, b_shape[1], inputs=self.srcs((x,)))
        if self.with_params:
            self.param(layer.name, "weight", self.float_param(node, b).T)
            self.param(layer.name, "bias", np.zeros(b_shape[1], dtype=np.float32))
        self.set_out(node, layer, bias_target=True)

    def _operand(self, node: _Node, view: View, heads: int) -> tuple[str, bool] | None:
        """``(base, transposed)`` if ``view`` is the heads of an accelsim tensor as the ``matmul``
        layer splits them (``(heads, rows, cols)`` as it is, or ``(tokens, heads·d)`` split into
        heads), possibly with its last two axes swapped."""
        base = view.base
        rank3 = len(view.shape) == 3
        shape = self.layer_shapes[base]
        candidates = []
        if len(shape) == 3 and rank3:
            candidates.append(identity_view(base, shape))
        elif len(shape) == 2 and shape[1] % heads == 0:
            split = split_heads_view(base, shape, heads)
            if not rank3:
                split = reshape_view(split, (shape[0], shape[1] // heads), "")
                assert split is not None
            candidates.append(split)
        last = (0, 2, 1) if rank3 else (1, 0)
        for cand in candidates:
            if cand.key() == view.key():
                return base, False
            if transpose_view(cand, last, "").key() == view.key():
                return base, True
        return None

    def _matmul_act(self, node: _Node, a: str, b: str) -> None:
        va, vb = self.act(node, a), self.act(node, b)
        sa, sb = self.sample_shape(node, a), self.sample_shape(node, b)
        out = self.sample_shape(node, node.outputs[0])
        if len(sa) != len(sb) or len(sa) not in (2, 3) or (len(sa) == 3 and sa[0] != sb[0]):
            raise self.error(
                node, f"a product of activations of shapes {list(sa)} and {list(sb)} per sample: accelsim maps "
                "(heads, rows, k)·(heads, k, cols) or (rows, k)·(k, cols) (attention)",
            )
        heads = sa[0] if len(sa) == 3 else 1
        ra, rb = self._operand(node, va, heads), self._operand(node, vb, heads)
        for which, found, v in (("first", ra, va), ("second", rb, vb)):
            if found is None:
                via = f" (laid out by {v.via})" if v.via else ""
                raise self.error(
                    node, f"the {which} operand {list(v.shape)}{via} is not attention heads accelsim computes: "
                    "(tokens, features) split into heads by Reshape+Transpose, or an earlier product's (heads, rows, cols)",
                )
        assert ra is not None and rb is not None
        if ra[1]:
            raise self.error(node, "a transposed first operand is not supported (accelsim transposes the second)")
        m, k = sa[-2], sa[-1]
        n = sb[-1]
        name = self.layer_name(node.name)
        heads_view = identity_view(name, (heads, m, n))
        # the layer computes (heads, m, n), or (m, heads·n) with the heads merged back when what reads
        # the product reads it so (the context of attention, before its output projection)
        merged = len(out) == 2 or self._read_merged(node.outputs[0], heads_view)
        out_shape = (m, heads * n) if merged else (heads, m, n)
        self.append(Layer(
            name, "matmul", self.layer_shapes[ra[0]], out_shape, m=m, n=n, k=k, count=heads,
            inputs=self.srcs((ra[0], rb[0])), transpose_b=rb[1],
        ))
        view = split_heads_view(name, out_shape, heads) if merged and len(out) == 3 else identity_view(name, out)
        self.values[node.outputs[0]] = replace(view, scale=va.scale * vb.scale)

    def _read_merged(self, value: str, heads_view: View) -> bool:
        """Whether what reads ``value`` (through relayouts and elementwise ops) reads it with its heads
        merged back into ``(rows, heads·cols)``, and nothing reads it as ``(heads, rows, cols)``."""
        heads, m, n = heads_view.shape
        merged = reshape_view(transpose_view(heads_view, (1, 0, 2), ""), (m, heads * n), "")
        assert merged is not None
        reads: set[tuple] = set()
        todo = [(value, heads_view)]
        while todo:
            name, view = todo.pop()
            for reader in self.readers.get(name, []):
                if reader.op in _RELAYOUT:
                    try:
                        todo.append((reader.outputs[0], self._relayout_view(reader, view)))
                    except InputError:
                        continue  # refused when the node itself is imported
                elif reader.op in _ELEMENTWISE:
                    todo.append((reader.outputs[0], view))
                else:
                    reads.add(view.key())
        return merged.key() in reads and heads_view.key() not in reads

    # elementwise

    def _unary(self, node: _Node, kind: str) -> None:
        view = self.act(node, node.inputs[0])
        self._no_scale(node, view)
        shape = self.layer_shapes[view.base]
        layer = self.make(node, elementwise_layer, self.layer_name(node.name), kind, shape, inputs=self.srcs((view.base,)))
        self.values[node.outputs[0]] = replace(view, base=layer.name)

    def _op_Relu(self, node: _Node) -> None:
        self._unary(node, "relu")

    def _op_Gelu(self, node: _Node) -> None:
        approx = self.attr(node, "approximate", "none")
        if approx not in ("none", "tanh"):
            raise self.error(node, f"approximate={approx!r} is not supported")
        self._unary(node, "gelu")

    def _op_Clip(self, node: _Node) -> None:
        if self.opset < 11:
            low, high = self.attr(node, "min", None), self.attr(node, "max", None)
        else:
            low = self._scalar(node, node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
            high = self._scalar(node, node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
        if high is not None and high >= 3.0e38:
            high = None
        if low == 0.0 and high == 6.0:
            self._unary(node, "relu6")
        elif low == 0.0 and high is None:
            self._unary(node, "relu")
        else:
            raise self.error(node, f"Clip to [{low}, {high}] is not supported (only [0, 6] as ReLU6, or [0, ∞) as ReLU)")

    def _alias(self, node: _Node) -> None:
        self.values[node.outputs[0]] = self.act(node, node.inputs[0])

    _op_Identity = _op_Dropout = _alias

    def _op_BatchNormalization(self, node: _Node) -> None:
        x, shape = self.plain_input(node, node.inputs[0], (1, 3))
        for i in range(1, 5):
            if not self.is_const(node.inputs[i]) or self.const_shape(node, node.inputs[i]) != (shape[0],):
                raise self.error(node, f"input {i} ({node.inputs[i]!r}) must be an initializer of shape [{shape[0]}]")
        layer = self.make(node, elementwise_layer, self.layer_name(node.name), "batchnorm", shape, inputs=self.srcs((x,)))
        if self.with_params:
            for i, key in enumerate(("weight", "bias", "running_mean", "running_var"), start=1):
                self.param(layer.name, key, self.float_param(node, node.inputs[i]))
        self.set_out(node, layer)

    def _op_LayerNormalization(self, node: _Node) -> None:
        x, shape = self.plain_input(node, node.inputs[0], (1, 2))
        axis = self.attr(node, "axis", -1)
        rank = len(shape) + 1
        if axis % rank != rank - 1:
            raise self.error(node, f"axis {axis} of a rank-{rank} tensor: accelsim normalizes over the last axis only")
        d = shape[-1]
        extra = [i for i in node.inputs[1:3] if i]
        for i in extra:
            if not self.is_const(i) or math.prod(self.const_shape(node, i)) != d:
                raise self.error(node, f"scale and bias ({i!r}) must be initializers of shape [{d}]")
        layer = self.make(node, elementwise_layer, self.layer_name(node.name), "layernorm", shape, inputs=self.srcs((x,)))
        if self.with_params:
            self.param(layer.name, "weight", self.float_param(node, node.inputs[1]).reshape(d))
            bias = self.float_param(node, node.inputs[2]).reshape(d) if len(node.inputs) > 2 and node.inputs[2] else np.zeros(d)
            self.param(layer.name, "bias", bias)
        self.set_out(node, layer)

    def _op_Softmax(self, node: _Node) -> None:
        view = self.act(node, node.inputs[0])
        rank = len(view.shape) + 1
        axis = self.attr(node, "axis", -1 if self.opset >= 13 else 1)
        if axis % rank != rank - 1:
            raise self.error(node, f"axis {axis} of a rank-{rank} tensor: accelsim's softmax works on the last axis")
        base = self._plain(view, "Softmax", node)
        layer = self.make(node, softmax_layer, self.layer_name(node.name), self.layer_shapes[base], scale=view.scale,
                          inputs=self.srcs((base,)))
        self.set_out(node, layer)

    def _op_Add(self, node: _Node) -> None:
        a, b = node.inputs
        if self.is_const(a) or self.is_const(b):
            act, const = (b, a) if self.is_const(a) else (a, b)
            self._fold_bias(node, act, const)
            return
        x, sx = self.plain_input(node, a)
        y, sy = self.plain_input(node, b)
        if self.sample_shape(node, a) != self.sample_shape(node, b):
            raise self.error(node, f"broadcasting {list(self.sample_shape(node, a))} + {list(self.sample_shape(node, b))} is not supported (a residual adds equal shapes)")
        layer = self.make(node, add_layer, self.layer_name(node.name), {x: sx, y: sy}, (x, y))
        self.set_out(node, layer)

    def _fold_bias(self, node: _Node, act: str, const: str) -> None:
        target = self.bias_of.get(act)
        if target is None or len(self.readers.get(act, [])) != 1:
            raise self.error(
                node, "adding a constant is supported only as the bias of the Gemm/MatMul/Conv right before it "
                "(whose output nothing else reads)",
            )
        layer = next(lyr for lyr in reversed(self.layers) if lyr.name == target)
        n = layer.out_shape[0] if layer.type == "conv2d" else layer.out_shape[-1]
        shape = self.const_shape(node, const)
        per_output = (n, 1, 1) if layer.type == "conv2d" else (n,)
        if math.prod(shape) != 1 and (math.prod(shape) != n or tuple(shape[-len(per_output):]) != per_output):
            raise self.error(node, f"a constant of shape {list(shape)} is not a bias of {target!r} ({n} outputs)")
        if self.with_params:
            self.params[target]["bias"] = self.params[target]["bias"] + self._broadcast_bias(node, const, n)
        self.values[node.outputs[0]] = self.values[act]
        self.bias_of[node.outputs[0]] = target

    def _op_Mul(self, node: _Node) -> None:
        a, b = node.inputs
        if self.is_const(a) or self.is_const(b):
            act, const = (b, a) if self.is_const(a) else (a, b)
            self._scale(node, act, const, divide=False)
            return
        raise self._unsupported(node, "Mul of two activations is not supported")

    def _op_Div(self, node: _Node) -> None:
        a, b = node.inputs
        if not self.is_const(b) or self.is_const(a):
            raise self._unsupported(node, "Div is supported only as an activation divided by a scalar constant before a Softmax")
        self._scale(node, a, b, divide=True)

    def _scale(self, node: _Node, act: str, const: str, *, divide: bool) -> None:
        if math.prod(self.const_shape(node, const)) != 1:
            raise self._unsupported(node, f"{node.op} by a constant of shape {list(self.const_shape(node, const))}: only a scalar before a Softmax is supported")
        c = self._scalar(node, const)
        if not math.isfinite(c) or c == 0.0:
            raise self.error(node, f"{node.op} by {c}")
        view = self.act(node, act)
        self.values[node.outputs[0]] = replace(view, scale=view.scale * (1.0 / c if divide else c), via=node.where)

    def _op_Concat(self, node: _Node) -> None:
        ins = [i for i in node.inputs if i]
        if any(self.is_const(i) for i in ins):
            raise self.error(node, "a Concat of activations and constants is not supported")
        rank = len(self.sample_shape(node, ins[0])) + 1
        axis = self.attr(node, "axis")
        if axis % rank == 0:
            raise self.error(node, "Concat along the batch axis is not supported")
        plain = [self.plain_input(node, i) for i in ins]
        shapes = {name: shape for name, shape in plain}
        names = tuple(name for name, _ in plain)
        layer = self.make(node, concat_layer, self.layer_name(node.name), shapes, names, axis % rank - 1)
        self.set_out(node, layer)

    # windows

    def _pool(self, node: _Node, kind: str) -> None:
        x, shape = self.plain_input(node, node.inputs[0], (3,))
        kernel, stride, padding = self._window(node, shape[1:], list(self.attr(node, "kernel_shape", [])))
        if kind == "avgpool" and any(padding) and not self.attr(node, "count_include_pad", 0):
            raise self.error(node, "count_include_pad=0 with padding is not supported (accelsim's average counts the zero padding)")
        layer = self.make(node, pool_layer, self.layer_name(node.name), kind, shape, kernel, stride, padding,
                          inputs=self.srcs((x,)))
        if self.attr(node, "ceil_mode", 0):
            inferred = self.shapes.get(node.outputs[0])
            if inferred is not None and tuple(inferred[1:]) != layer.out_shape:
                raise self.error(node, "ceil_mode=1 gives an output larger than accelsim's floor-mode windows")
        self.set_out(node, layer)

    def _op_MaxPool(self, node: _Node) -> None:
        if len(node.outputs) > 1 and node.outputs[1] and self.readers.get(node.outputs[1]):
            raise self.error(node, "the Indices output is not supported")
        self._pool(node, "maxpool")

    def _op_AveragePool(self, node: _Node) -> None:
        self._pool(node, "avgpool")

    def _global_pool(self, node: _Node, kind: str) -> None:
        x, shape = self.plain_input(node, node.inputs[0], (3,))
        hw = shape[1:]
        layer = self.make(node, pool_layer, self.layer_name(node.name), kind, shape, hw, hw, inputs=self.srcs((x,)))
        self.set_out(node, layer)

    def _op_GlobalAveragePool(self, node: _Node) -> None:
        self._global_pool(node, "avgpool")

    def _op_GlobalMaxPool(self, node: _Node) -> None:
        self._global_pool(node, "maxpool")

    # relayouts

    def _relayout(self, node: _Node) -> None:
        self.values[node.outputs[0]] = self._relayout_view(node, self.act(node, node.inputs[0]))

    def _relayout_view(self, node: _Node, view: View) -> View:
        """The view a Reshape, Flatten, Squeeze, Unsqueeze or Transpose makes of ``view``."""
        if node.op == "Transpose":
            rank = len(self.onnx_shape(node, node.inputs[0]))
            perm = list(self.attr(node, "perm", list(range(rank - 1, -1, -1))))
            if sorted(perm) != list(range(rank)) or perm[0] != 0:
                raise self.error(node, f"perm {perm} moves the batch axis; accelsim keeps axis 0 as the batch")
            return transpose_view(view, tuple(p - 1 for p in perm[1:]), node.where)
        getattr(self, f"_check_{node.op}")(node)
        out = self._batch_kept(node)
        new = reshape_view(view, out, node.where)
        if new is None:
            raise self.error(node, f"reshaping {list(view.shape)} to {list(out)} mixes axes in a way accelsim cannot follow")
        return new

    def _batch_kept(self, node: _Node) -> tuple[int, ...]:
        before = self.onnx_shape(node, node.inputs[0])
        after = self.onnx_shape(node, node.outputs[0])
        if not after or after[0] != before[0]:
            raise self.error(
                node, f"{list(before)} → {list(after)} changes the batch axis; accelsim keeps axis 0 as the batch "
                "(reshape only the axes after it)",
            )
        return after[1:]

    def _check_Reshape(self, node: _Node) -> None:
        if self.attr(node, "allowzero", 0):
            shape = self.const(node, node.inputs[1])
            if 0 in shape.tolist():
                raise self.error(node, "allowzero=1 with a zero in the shape is not supported")

    def _check_Flatten(self, node: _Node) -> None:
        axis = self.attr(node, "axis", 1)
        rank = len(self.onnx_shape(node, node.inputs[0]))
        if rank < 2 or axis % rank != 1:
            raise self.error(node, f"axis {axis} merges the batch with other axes (only axis 1 is supported)")

    def _squeeze_axes(self, node: _Node) -> list[int] | None:
        if self.opset >= 13 and node.op in ("Squeeze", "Unsqueeze"):
            if len(node.inputs) > 1 and node.inputs[1]:
                return [int(a) for a in self.const(node, node.inputs[1]).reshape(-1)]
            return None
        axes = self.attr(node, "axes", None)
        return None if axes is None else list(axes)

    def _check_Squeeze(self, node: _Node) -> None:
        rank = len(self.onnx_shape(node, node.inputs[0]))
        axes = self._squeeze_axes(node)
        if axes is None and self.onnx_shape(node, node.inputs[0])[0] == 1:
            raise self.error(node, "Squeeze without axes would drop the batch axis of size 1; name the axes")
        if axes is not None and any(a % rank == 0 for a in axes):
            raise self.error(node, "squeezing the batch axis is not supported")

    def _check_Unsqueeze(self, node: _Node) -> None:
        rank = len(self.onnx_shape(node, node.outputs[0]))
        axes = self._squeeze_axes(node) or []
        if any(a % rank == 0 for a in axes):
            raise self.error(node, "inserting an axis before the batch is not supported")

    _op_Reshape = _op_Flatten = _op_Squeeze = _op_Unsqueeze = _op_Transpose = _relayout


def _ranks(ranks: tuple[int, ...]) -> str:
    names = {1: "(features)", 2: "(tokens, features)", 3: "(channels, height, width)"}
    return " or ".join(names[r] for r in ranks) + " per sample"


def _static_shape(value_info: Any) -> tuple[int, ...] | None:
    t = value_info.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in t.tensor_type.shape.dim:
        if not d.HasField("dim_value") or d.dim_value <= 0:
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


def _numpy_op(node: _Node, ins: list[np.ndarray | None], imp: _Importer) -> np.ndarray:
    """The few ops computed on constants (NumPy semantics equal ONNX's for these)."""
    op = node.op
    x = ins[0]
    assert x is not None
    if op == "Identity":
        return x
    if op == "Transpose":
        return np.transpose(x, imp.attr(node, "perm", None))
    if op == "Reshape":
        target = [int(v) for v in ins[1].reshape(-1)]  # type: ignore[union-attr]
        target = [x.shape[i] if v == 0 else v for i, v in enumerate(target)]
        return x.reshape(target)
    if op in ("Squeeze", "Unsqueeze"):
        axes = imp._squeeze_axes(node)
        if op == "Squeeze":
            return np.squeeze(x, axis=None if axes is None else tuple(axes))
        out = x
        for a in sorted(a % (x.ndim + len(axes or [])) for a in axes or []):
            out = np.expand_dims(out, a)
        return out
    if op == "Cast":
        from onnx import helper

        return x.astype(helper.tensor_dtype_to_np_dtype(imp.attr(node, "to")))
    if op == "Gather":
        return np.take(x, ins[1].astype(np.int64), axis=imp.attr(node, "axis", 0))  # type: ignore[union-attr]
    if op == "Concat":
        return np.concatenate([i for i in ins if i is not None], axis=imp.attr(node, "axis"))
    if op == "Slice":
        starts, ends = ins[1], ins[2]
        axes = ins[3] if len(ins) > 3 and ins[3] is not None else np.arange(len(starts))  # type: ignore[arg-type]
        steps = ins[4] if len(ins) > 4 and ins[4] is not None else np.ones(len(starts), dtype=np.int64)  # type: ignore[arg-type]
        index = [slice(None)] * x.ndim
        for s, e, a, st in zip(starts, ends, axes, steps):  # type: ignore[arg-type]
            index[int(a)] = slice(int(s), int(e), int(st))
        return x[tuple(index)]
    if op == "Sqrt":
        return np.sqrt(x)
    if op == "Neg":
        return -x
    y = ins[1]
    assert y is not None
    if op == "Add":
        return x + y
    if op == "Sub":
        return x - y
    if op == "Mul":
        return x * y
    assert op == "Div", op
    return x // y if x.dtype.kind in "iu" and y.dtype.kind in "iu" else x / y


# ------------------------------------------------------------------------------------------------
# the erf form of GELU, fused back


def _fuse_gelu(nodes: list[_Node], imp: _Importer) -> list[_Node]:
    """Replace ``x·0.5·(1 + erf(x/√2))`` (as ``torch.onnx.export`` writes ``nn.GELU()``: Div or Mul
    by a constant, Erf, Add 1, two Muls in any of their orders) by one ``Gelu`` node named after the
    Erf node. Nodes whose outputs something else also reads are left alone."""
    producer = {o: n for n in nodes for o in n.outputs if o}
    readers: dict[str, list[_Node]] = {}
    for n in nodes:
        for i in n.inputs:
            if i:
                readers.setdefault(i, []).append(n)
    outputs = {o.name for o in imp.graph.output}

    def only_reader(value: str) -> _Node | None:
        r = readers.get(value, [])
        return r[0] if len(r) == 1 and value not in outputs else None

    def scalar(name: str) -> float | None:
        if name in imp.inits and math.prod(imp.inits[name].dims) == 1:
            return float(imp._init_array(producer.get(name) or nodes[0], name).reshape(()))
        node = producer.get(name)
        if node is not None and node.op == "Constant":
            value = imp._constant_value(node)
            return float(value.reshape(())) if value.size == 1 else None
        return None

    def other(node: _Node, value: str) -> str | None:
        rest = [i for i in node.inputs if i != value]
        return rest[0] if len(rest) == 1 else (value if node.inputs == [value, value] else None)

    replaced: dict[int, _Node] = {}
    dropped: set[int] = set()
    for erf in nodes:
        if erf.op != "Erf":
            continue
        pre = producer.get(erf.inputs[0])
        if pre is None or pre.op not in ("Div", "Mul") or only_reader(pre.outputs[0]) is not erf:
            continue
        x = pre.inputs[0]
        c = scalar(pre.inputs[1])
        if c is None or pre.op == "Mul" and not math.isclose(c, 1 / math.sqrt(2), rel_tol=1e-4) \
                or pre.op == "Div" and not math.isclose(c, math.sqrt(2), rel_tol=1e-4):
            continue
        add = only_reader(erf.outputs[0])
        if add is None or add.op != "Add" or scalar(other(add, erf.outputs[0]) or "") != 1.0:
            continue
        m1 = only_reader(add.outputs[0])
        if m1 is None or m1.op != "Mul":
            continue
        partner = other(m1, add.outputs[0])
        chain = [pre, erf, add, m1]
        if partner == x:                                    # (x·(1+erf))·0.5
            m2 = only_reader(m1.outputs[0])
            if m2 is None or m2.op != "Mul" or scalar(other(m2, m1.outputs[0]) or "") != 0.5:
                continue
            chain.append(m2)
        elif partner is not None and scalar(partner) == 0.5:  # x·((1+erf)·0.5)
            m2 = only_reader(m1.outputs[0])
            if m2 is None or m2.op != "Mul" or other(m2, m1.outputs[0]) != x:
                continue
            chain.append(m2)
        else:                                               # (x·0.5)·(1+erf)
            half = producer.get(partner or "")
            if half is None or half.op != "Mul" or only_reader(half.outputs[0]) is not m1 \
                    or other(half, x) is None or scalar(other(half, x) or "") != 0.5:
                continue
            chain.insert(0, half)
        last = chain[-1]
        fused = _Node(last.index, "Gelu", erf.name, [x], [last.outputs[0]])
        replaced[id(last)] = fused
        dropped.update(id(n) for n in chain if n is not last)
    return [replaced.get(id(n), n) for n in nodes if id(n) not in dropped]
