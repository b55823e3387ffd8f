"""Build the resolved :class:`Network` of a workload spec (layer list, zoo entry or topology)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from accelsim.errors import InputError
from accelsim.spec.models import (
    Conv2dLayerSpec,
    GemmLayerSpec,
    LayerListModel,
    LinearLayerSpec,
    PlainLayerSpec,
    PoolLayerSpec,
    TopologyModel,
    WorkloadSpec,
    ZooModel,
)
from accelsim.workload.graph import (
    GraphError,
    Layer,
    Network,
    conv2d_layer,
    elementwise_layer,
    flatten_layer,
    linear_layer,
    pool_layer,
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
    assert isinstance(model, TopologyModel)
    return read_topology(resolve_path(base_dir, model.topology), batch_size=batch)


def resolve_path(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


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
    shape = tuple(model.input)
    counters: Counter[str] = Counter()
    names: set[str] = set()
    layers: list[Layer] = []
    for i, spec in enumerate(model.layers):
        label = spec.name or f"{spec.type}{counters[spec.type]}"
        counters[spec.type] += 1
        where = f"model.layers.{i}"
        if label in names:
            raise InputError.single(file, f"{where}.name", f"layer name {label!r} is used twice")
        names.add(label)
        try:
            layer = _layer(label, spec, shape)
        except GraphError as exc:
            raise InputError.single(file, where, f"{spec.type} layer {label!r}: {exc.message}") from None
        layers.append(layer)
        shape = layer.out_shape
    classes = shape[-1] if len(shape) == 1 else None
    return Network(name=name, input_shape=tuple(model.input), layers=tuple(layers), batch_size=batch, classes=classes)


def _layer(label: str, spec, shape: tuple[int, ...]) -> Layer:
    if isinstance(spec, LinearLayerSpec):
        return linear_layer(label, shape, spec.out)
    if isinstance(spec, Conv2dLayerSpec):
        return conv2d_layer(label, shape, spec.out, spec.kernel, spec.stride, spec.padding, spec.groups)
    if isinstance(spec, PoolLayerSpec):
        return pool_layer(label, spec.type, shape, spec.kernel, spec.stride, spec.padding)
    if isinstance(spec, GemmLayerSpec):
        return Layer(label, "gemm", (spec.m, spec.k), (spec.m, spec.n), m=spec.m, n=spec.n, k=spec.k)
    assert isinstance(spec, PlainLayerSpec)
    if spec.type == "flatten":
        return flatten_layer(label, shape)
    if spec.type == "batchnorm" and len(shape) != 3 and len(shape) != 1:
        raise GraphError(label, f"batchnorm expects (channels, height, width) or (features,), got {list(shape)}")
    return elementwise_layer(label, spec.type, shape)
