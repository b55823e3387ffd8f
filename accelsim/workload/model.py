"""Build the resolved :class:`Network` of a workload spec (layer list, zoo entry, topology or ONNX file)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from accelsim.errors import InputError
from accelsim.spec.models import (
    LAYER_SPEC_TYPES,
    AttentionLayerSpec,
    ConcatLayerSpec,
    Conv2dLayerSpec,
    EmbeddingLayerSpec,
    GemmLayerSpec,
    LayerListModel,
    LinearLayerSpec,
    OnnxModel,
    PlainLayerSpec,
    PoolLayerSpec,
    SelectLayerSpec,
    TopologyModel,
    WorkloadSpec,
    ZooModel,
)
from accelsim.workload.graph import (
    NETWORK_INPUT,
    GraphError,
    Layer,
    Network,
    add_layer,
    attention_layers,
    concat_layer,
    conv2d_layer,
    elementwise_layer,
    embedding_layer,
    flatten_layer,
    linear_layer,
    pool_layer,
    select_layer,
    softmax_layer,
)
from accelsim.workload.topology import read_topology
from accelsim.workload.zoo import build_zoo_model


def build_network(spec: WorkloadSpec, file: str, base_dir: Path) -> Network:
    """The shape-resolved network of ``spec``; shape problems name the layer's field path."""
    model = spec.model
    batch = spec.data.batch_size
    if isinstance(model, LayerListModel):
        return _from_layers(spec.name, model, batch, file)
    if isinstance(model, ZooModel):
        return _from_zoo(model, batch, file)
    if isinstance(model, OnnxModel):
        return _from_onnx(spec, model, file, base_dir)
    assert isinstance(model, TopologyModel)
    return read_topology(resolve_path(base_dir, model.topology), batch_size=batch)


def resolve_path(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _from_onnx(spec: WorkloadSpec, model: OnnxModel, file: str, base_dir: Path) -> Network:
    """The ONNX file's graph; its initializers become the initial parameters of a trained workload.
    Given as the workload itself (``accelsim run net.onnx``), problems name the file as given."""
    from accelsim.workload.onnx_import import import_onnx, named_model  # only ONNX workloads import it

    path, direct = named_model(model.onnx, file, base_dir)
    return import_onnx(
        path, name=spec.name,
        batch_size=spec.data.batch_size if "batch_size" in spec.data.model_fields_set else None,
        with_params=spec.trained, file=None if direct else file, field="" if direct else "model.onnx",
        label=file if direct else str(path),
    )


def _from_zoo(model: ZooModel, batch: int, file: str) -> Network:
    try:
        return build_zoo_model(
            model.zoo,
            input_shape=tuple(model.input) if model.input else None,
            classes=model.classes,
            batch_size=batch,
            **model.params,
        )
    except KeyError as exc:
        raise InputError.single(file, "model.zoo", str(exc.args[0])) from None
    except GraphError as exc:
        raise InputError.single(file, "model", str(exc)) from None
    except TypeError as exc:  # a parameter of the wrong kind reached a builder
        raise InputError.single(file, "model.params", str(exc)) from None


def _from_layers(name: str, model: LayerListModel, batch: int, file: str) -> Network:
    """Resolve a layer list (a graph: ``inputs`` name earlier layers or ``input``) into layers with
    shapes, in execution order. Every problem names the layer's field path, the layers and the
    shapes."""
    shapes: dict[str, tuple[int, ...]] = {NETWORK_INPUT: tuple(model.input)}
    alias: dict[str, str] = {}           # an attention's name -> its output projection
    counters: Counter[str] = Counter()
    layers: list[Layer] = []
    prev = NETWORK_INPUT
    for i, spec in enumerate(model.layers):
        label = spec.name or f"{spec.type}{counters[spec.type]}"
        counters[spec.type] += 1
        where = f"model.layers.{i}"
        if label in shapes or label in alias:
            what = "the network input" if label == NETWORK_INPUT else "used twice"
            raise InputError.single(file, f"{where}.name", f"layer name {label!r} is {what}")
        srcs: list[str] = []
        for src in spec.inputs or [prev]:
            src = alias.get(src, src)
            if src not in shapes:
                known = [n for n in shapes if n != NETWORK_INPUT][-8:]
                raise InputError.single(
                    file, f"{where}.inputs",
                    f"{spec.type} layer {label!r} reads {src!r}, which is not an earlier layer or 'input' "
                    f"(a layer reads only layers above it; the latest are: {', '.join(known) or 'none'})",
                )
            srcs.append(src)
        try:
            new = _layers(label, spec, tuple(srcs), shapes)
        except GraphError as exc:
            raise InputError.single(file, where, f"{spec.type} layer {label!r}: {exc.message}") from None
        for layer in new:
            shapes[layer.name] = layer.out_shape
        layers.extend(new)
        if spec.type == "attention":
            alias[label] = new[-1].name
        prev = new[-1].name
    shape = shapes[prev]
    classes = shape[-1] if len(shape) in (1, 2) else None
    return Network(name=name, input_shape=tuple(model.input), layers=tuple(layers), batch_size=batch, classes=classes)


_SINGLE_INPUT = frozenset(LAYER_SPEC_TYPES) - {"add", "concat"}


def _layers(label: str, spec, srcs: tuple[str, ...], shapes: dict[str, tuple[int, ...]]) -> list[Layer]:
    """The resolved layer(s) of one layer spec (an attention expands into its primitives)."""
    if spec.type in _SINGLE_INPUT and len(srcs) != 1:
        raise GraphError(label, f"reads one input, got {len(srcs)}: {list(srcs)}")
    shape = shapes[srcs[0]]
    inputs = srcs if spec.inputs else ()
    if isinstance(spec, LinearLayerSpec):
        return [linear_layer(label, shape, spec.out, inputs=inputs)]
    if isinstance(spec, Conv2dLayerSpec):
        return [conv2d_layer(label, shape, spec.out, spec.kernel, spec.stride, spec.padding, spec.groups, inputs=inputs)]
    if isinstance(spec, PoolLayerSpec):
        return [pool_layer(label, spec.type, shape, spec.kernel, spec.stride, spec.padding, inputs=inputs)]
    if isinstance(spec, GemmLayerSpec):
        return [Layer(label, "gemm", (spec.m, spec.k), (spec.m, spec.n), m=spec.m, n=spec.n, k=spec.k, inputs=inputs)]
    if isinstance(spec, ConcatLayerSpec):
        return [concat_layer(label, shapes, srcs, spec.axis)]
    if isinstance(spec, EmbeddingLayerSpec):
        return [embedding_layer(label, shape, spec.vocab, spec.out, spec.positions, inputs=inputs)]
    if isinstance(spec, AttentionLayerSpec):
        return attention_layers(label, shape, spec.heads, spec.causal, inputs=srcs)
    if isinstance(spec, SelectLayerSpec):
        return [select_layer(label, shape, spec.index, inputs=inputs)]
    assert isinstance(spec, PlainLayerSpec)
    if spec.type == "add":
        return [add_layer(label, shapes, srcs)]
    if spec.type == "flatten":
        return [flatten_layer(label, shape, inputs=inputs)]
    if spec.type == "batchnorm" and len(shape) != 3 and len(shape) != 1:
        raise GraphError(label, f"batchnorm expects (channels, height, width) or (features,), got {list(shape)}")
    if spec.type == "softmax":
        return [softmax_layer(label, shape, inputs=inputs)]
    return [elementwise_layer(label, spec.type, shape, inputs=inputs)]
