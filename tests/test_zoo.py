"""Model zoo: architectures, MAC and weight counts against published numbers, graph invariants."""

from __future__ import annotations

import math

import pytest

from accelsim.workload import zoo
from accelsim.workload.graph import LAYER_TYPES, GraphError, Network

CONV_NETS = ("resnet18", "resnet50", "mobilenet_v2", "vgg16")


@pytest.fixture(scope="module")
def nets() -> dict[str, Network]:
    """Every zoo model at its defaults, batch 1 (built once: the whole file stays well under 5 s)."""
    return {name: zoo.build_zoo_model(name, batch_size=1) for name in zoo.ZOO}


def _by_name(net: Network) -> dict:
    return {layer.name: layer for layer in net.layers}


def _count(net: Network, kind: str) -> int:
    return sum(1 for layer in net.layers if layer.type == kind)


# --- forward MACs per sample ---------------------------------------------------------------------
#
# Published values (torchvision model cards call forward multiply-accumulates "GFLOPS"; they count
# convolutions and linear layers only, as Network.forward_macs does):
#   resnet18 1.81 G, resnet50 4.09 G, vgg16 15.47 G, mobilenet_v2 0.30 G (Sandler et al.: 300M
#   multiply-adds). The exact numbers are recomputed by hand below, independently of graph.py.


def _resnet18_macs_by_hand() -> int:
    conv1 = 112 * 112 * 64 * (3 * 7 * 7)  # 118,013,952
    layer1 = 4 * 56 * 56 * 64 * (64 * 9)  # 4 × 115,605,504
    total = conv1 + layer1
    for size, planes in ((28, 128), (14, 256), (7, 512)):
        first = size * size * planes * (planes // 2 * 9)  # stride-2 conv from planes/2 channels
        rest = 3 * size * size * planes * (planes * 9)
        downsample = size * size * planes * (planes // 2)  # 1×1 stride 2
        total += first + rest + downsample  # 411,041,792 per stage
    return total + 512 * 1000  # fc


def _resnet50_macs_by_hand() -> int:
    total = 112 * 112 * 64 * (3 * 7 * 7)  # conv1
    in_ch, size = 64, 56  # after the maxpool
    for stage, (planes, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3))):
        out_size = size if stage == 0 else size // 2
        for b in range(blocks):
            s_in = size if b == 0 else out_size
            total += s_in * s_in * planes * in_ch  # conv1 1×1 (stride 1, before the 3×3)
            total += out_size * out_size * planes * planes * 9  # conv2 3×3 (v1.5: carries the stride)
            total += out_size * out_size * planes * 4 * planes  # conv3 1×1
            if b == 0:
                total += out_size * out_size * planes * 4 * in_ch  # downsample 1×1
            in_ch = planes * 4
        size = out_size
    return total + 2048 * 1000


def _vgg16_macs_by_hand() -> int:
    total, c_in, size = 0, 3, 224
    for stage in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
        for c_out in stage:
            total += size * size * c_out * c_in * 9
            c_in = c_out
        size //= 2
    return total + 25088 * 4096 + 4096 * 4096 + 4096 * 1000  # conv 15,346,630,656 + fc 123,633,664


def _mobilenet_v2_macs_by_hand() -> int:
    total = 112 * 112 * 32 * 3 * 9  # features.0
    c_in, size = 32, 112
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = c_in * t
            out_size = size // stride
            if t != 1:
                total += size * size * hidden * c_in  # expand 1×1
            total += out_size * out_size * hidden * 9  # depthwise 3×3: one 9-tap filter per channel
            total += out_size * out_size * c * hidden  # project 1×1
            c_in, size = c, out_size
    return total + 7 * 7 * 1280 * 320 + 1280 * 1000  # features.18 and the classifier


# BERT-base at s = 128 tokens, h = 768, i = 3072, 12 layers, 12 heads (embeddings excluded):
#   Q, K, V, output projection  4·s·h²   = 4 · 128 · 589,824        = 301,989,888
#   FFN up + down               2·s·h·i  = 2 · 128 · 768 · 3,072    = 603,979,776
#   Q·Kᵀ and P·V                2·s²·h   = 2 · 16,384 · 768         =  25,165,824
#   per encoder layer                                               = 931,135,488
#   12 layers                                                       = 11,173,625,856
#   head: pooler h² on [CLS] (589,824) + classifier h·2 (1,536)     =       591,360
#   total                                                           = 11,174,217,216 ≈ 11.2 GMAC
BERT_BASE_MACS = 12 * (4 * 128 * 768**2 + 2 * 128 * 768 * 3072 + 2 * 128**2 * 768) + 768**2 + 768 * 2


@pytest.mark.parametrize(
    ("name", "exact", "published"),
    [
        ("resnet18", 1_814_073_344, 1.81e9),
        ("resnet50", 4_089_184_256, 4.09e9),
        ("vgg16", 15_470_264_320, 15.47e9),
        ("mobilenet_v2", 300_774_272, 0.300e9),
        ("bert_base", 11_174_217_216, 11.2e9),
    ],
)
def test_forward_macs_match_published(nets, name, exact, published):
    macs = nets[name].forward_macs()
    assert macs == exact
    # rel 1%: one missing 3×3 conv of ResNet-50's last stage (~58M MACs) is 1.4% of the total
    assert macs == pytest.approx(published, rel=0.01)


def test_hand_computed_macs_agree(nets):
    assert _resnet18_macs_by_hand() == 1_814_073_344 == nets["resnet18"].forward_macs()
    assert _resnet50_macs_by_hand() == 4_089_184_256 == nets["resnet50"].forward_macs()
    assert _vgg16_macs_by_hand() == 15_470_264_320 == nets["vgg16"].forward_macs()
    assert _mobilenet_v2_macs_by_hand() == 300_774_272 == nets["mobilenet_v2"].forward_macs()
    assert BERT_BASE_MACS == 11_174_217_216 == nets["bert_base"].forward_macs()


# --- weight counts -------------------------------------------------------------------------------
#
# Network.weight_count() excludes biases and batchnorm parameters. Adding them back must give the
# published parameter counts exactly (torchvision model cards):
#   resnet18      11,689,512 = 11,678,912 weights + 9,600 BN (γ, β)  + 1,000 fc bias
#   resnet50      25,557,032 = 25,502,912 weights + 53,120 BN (γ, β) + 1,000 fc bias
#   mobilenet_v2   3,504,872 =  3,469,760 weights + 34,112 BN (γ, β) + 1,000 classifier bias
#   vgg16        138,357,544 = 138,344,128 weights + 4,224 conv biases + 9,192 linear biases
# (torchvision ResNet/MobileNetV2 convs have bias=False; VGG convs have biases and no BN.)


@pytest.mark.parametrize(
    ("name", "weights", "params"),
    [
        ("resnet18", 11_678_912, 11_689_512),
        ("resnet50", 25_502_912, 25_557_032),
        ("mobilenet_v2", 3_469_760, 3_504_872),
        ("vgg16", 138_344_128, 138_357_544),
    ],
)
def test_weight_counts_match_torchvision_parameters(nets, name, weights, params):
    net = nets[name]
    assert net.weight_count() == weights
    bn = sum(2 * layer.in_shape[0] for layer in net.layers if layer.type == "batchnorm")
    biases = sum(layer.out_shape[-1] for layer in net.layers if layer.type == "linear")
    if name == "vgg16":
        biases += sum(layer.out_shape[0] for layer in net.layers if layer.type == "conv2d")
    assert weights + bn + biases == params


def test_bert_weight_count():
    # per encoder layer: Q, K, V, output 4·h² + FFN 2·h·i = 2,359,296 + 4,718,592 = 7,077,888
    # 12 layers 84,934,656 + pooler h² 589,824 + classifier h·2 1,536 = 85,526,016 in GEMM layers,
    # plus the embedding tables: words 30,522·768 = 23,440,896 and 128 positions·768 = 98,304
    net = zoo.bert_base(batch_size=1)
    gemm_weights = sum(layer.weight_elements() for layer in net.layers if layer.is_gemm)
    assert gemm_weights == 85_526_016
    assert net.weight_count() == 85_526_016 + 23_440_896 + 98_304
    # Hugging Face BertModel (bert-base-uncased, incl. pooler) has 109,482,240 parameters:
    # our weights minus the classifier, plus biases, LayerNorm (γ, β), the 384 positions beyond 128
    # and the two token-type vectors.
    biases = sum(layer.out_shape[-1] for layer in net.layers if layer.type == "linear" and layer.name != "classifier")
    ln = sum(2 * layer.in_shape[-1] for layer in net.layers if layer.type == "layernorm")
    assert net.weight_count() - 768 * 2 + biases + ln + (512 - 128 + 2) * 768 == 109_482_240


# --- graph invariants ----------------------------------------------------------------------------


def _check_graph(net: Network) -> None:
    names = [layer.name for layer in net.layers]
    assert len(names) == len(set(names)), "layer names must be unique"
    out: dict[str, tuple[int, ...]] = {}
    out["input"] = net.input_shape
    previous: str | None = None
    for layer in net.layers:
        assert layer.type in LAYER_TYPES
        assert all(name in out for name in layer.inputs), f"{layer.name} reads a later or unknown layer"
        producers = list(layer.inputs) or ([previous] if previous is not None else [])
        first = out[producers[0]] if producers else net.input_shape
        assert first == layer.in_shape, f"{layer.name}: in {layer.in_shape} != producer out {first}"
        if layer.type == "select":  # one token of a (tokens, features) output
            assert layer.out_shape == first[1:], layer.name
        if layer.type == "add":
            assert len(layer.inputs) == 2
            assert out[layer.inputs[0]] == out[layer.inputs[1]] == layer.out_shape, layer.name
        elif layer.type == "matmul":
            assert len(layer.inputs) == 2
            m, n, k, count = layer.gemm_dims(1)
            assert math.prod(layer.out_shape) == m * n * count, layer.name
        else:
            assert len(producers) <= 1, layer.name
        out[layer.name] = layer.out_shape
        previous = layer.name
    if net.classes is not None:
        assert net.layers[-1].type == "linear"
        assert net.layers[-1].out_shape[-1] == net.classes   # per sample, or per token


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_graph_is_topological_and_shapes_chain(nets, name):
    net = nets[name]
    _check_graph(net)
    assert net.name == name
    assert net.meta["zoo"] == name
    assert net.classes == zoo.ZOO[name].default_classes


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("resnet18", {"input_shape": (3, 32, 32), "classes": 10}),
        ("resnet50", {"input_shape": (3, 160, 128), "classes": 100}),
        ("mobilenet_v2", {"input_shape": (3, 96, 96), "classes": 5}),
        ("vgg16", {"input_shape": (3, 448, 448), "classes": 10}),
        ("vgg16", {"input_shape": (3, 32, 32), "classes": 10}),
        ("bert_base", {"input_shape": (64,), "hidden": 256, "layers": 2, "heads": 4, "intermediate": 1024}),
        ("cnn", {"input_shape": (3, 16, 12), "channels": (8, 8, 8)}),
        ("mlp", {"input_shape": (1, 8, 8), "hidden": (32, 16)}),
    ],
)
def test_graph_invariants_hold_for_other_inputs(name, kwargs):
    _check_graph(zoo.build_zoo_model(name, batch_size=2, **kwargs))


@pytest.mark.parametrize("name", [*CONV_NETS, "bert_base", "cnn", "mlp"])
def test_macs_scale_linearly_with_batch(nets, name):
    assert zoo.build_zoo_model(name, batch_size=4).forward_macs() == 4 * nets[name].forward_macs()
    assert zoo.build_zoo_model(name, batch_size=4).weight_count() == nets[name].weight_count()


# --- architecture details ------------------------------------------------------------------------


def test_resnet_structure(nets):
    r18, r50 = nets["resnet18"], nets["resnet50"]
    assert (_count(r18, "conv2d"), _count(r18, "add"), _count(r18, "batchnorm")) == (20, 8, 20)
    assert (_count(r50, "conv2d"), _count(r50, "add"), _count(r50, "batchnorm")) == (53, 16, 53)
    assert [layer.name for layer in r50.layers[:4]] == ["conv1", "bn1", "relu", "maxpool"]
    assert [(layer.name, layer.type) for layer in r50.layers[-4:]] == [
        ("layer4.2.relu3", "relu"), ("avgpool", "avgpool"), ("flatten", "flatten"), ("fc", "linear")]
    layers = _by_name(r50)
    assert layers["maxpool"].out_shape == (64, 56, 56)
    assert layers["avgpool"].kernel == (7, 7) and layers["avgpool"].out_shape == (2048, 1, 1)
    # v1.5: the stride of a downsampling bottleneck is on the 3×3 conv, not the first 1×1
    assert layers["layer2.0.conv1"].stride == (1, 1) and layers["layer2.0.conv1"].out_shape == (128, 56, 56)
    assert layers["layer2.0.conv2"].stride == (2, 2) and layers["layer2.0.conv2"].out_shape == (128, 28, 28)
    # the shortcut reads the block input; the add joins the main branch and the shortcut BN
    assert layers["layer2.0.downsample.0"].inputs == ("layer1.2.relu3",)
    assert layers["layer2.0.downsample.0"].is_pointwise_conv
    assert layers["layer2.0.add"].inputs == ("layer2.0.bn3", "layer2.0.downsample.1")
    assert layers["layer2.1.add"].inputs == ("layer2.1.bn3", "layer2.0.relu3")
    assert layers["layer1.0.downsample.0"].stride == (1, 1)  # 64 → 256 channels at stride 1
    r18_layers = _by_name(r18)
    assert "layer1.0.downsample.0" not in r18_layers  # BasicBlock 64 → 64: identity shortcut
    assert r18_layers["layer1.0.add"].inputs == ("layer1.0.bn2", "maxpool")
    assert r18_layers["layer3.0.conv1"].stride == (2, 2)
    assert r18_layers["fc"].in_shape == (512,)


def test_mobilenet_v2_structure(nets):
    net = nets["mobilenet_v2"]
    layers = _by_name(net)
    convs = [layer for layer in net.layers if layer.type == "conv2d"]
    depthwise = [layer for layer in convs if layer.groups > 1]
    assert len(convs) == 52 and len(depthwise) == 17
    assert all(layer.groups == layer.in_shape[0] == layer.out_shape[0] for layer in depthwise)
    assert _count(net, "add") == 10 and _count(net, "relu6") == 35 and _count(net, "relu") == 0
    assert layers["features.1.conv.0.0"].groups == 32  # t = 1: no expansion conv
    assert layers["features.2.conv.1.0"].stride == (2, 2) and layers["features.2.conv.1.0"].out_shape == (96, 56, 56)
    assert layers["features.3.add"].inputs == ("features.3.conv.3", "features.2.conv.3")
    assert layers["features.18.0"].out_shape == (1280, 7, 7)
    assert layers["avgpool"].kernel == (7, 7)
    assert layers["classifier.1"].in_shape == (1280,)
    # a depthwise conv lowers to `groups` GEMMs with one output channel and a 3×3 reduction each
    assert layers["features.2.conv.1.0"].gemm_dims(1) == (56 * 56, 1, 9, 96)
    assert layers["features.3.conv.0.0"].out_shape == (144, 56, 56)  # expansion 6 × 24


def test_vgg16_structure(nets):
    net = nets["vgg16"]
    counts = tuple(_count(net, kind) for kind in ("conv2d", "maxpool", "linear", "avgpool", "relu"))
    assert counts == (13, 5, 3, 0, 15)
    layers = _by_name(net)
    assert layers["features.30"].type == "maxpool" and layers["features.30"].out_shape == (512, 7, 7)
    assert [layers[f"classifier.{i}"].out_shape for i in (0, 3, 6)] == [(4096,), (4096,), (1000,)]
    assert layers["classifier.0"].in_shape == (25088,)
    # adaptive 7×7 pooling: an exact avgpool when the map is a multiple of 7 …
    big = _by_name(zoo.vgg16(input_shape=(3, 448, 448), classes=10, batch_size=1))
    assert big["avgpool"].kernel == (2, 2) and big["avgpool"].out_shape == (512, 7, 7)
    assert big["classifier.0"].in_shape == (25088,)
    # … otherwise the classifier reads the flattened map (deviation from torchvision)
    small = _by_name(zoo.vgg16(input_shape=(3, 32, 32), classes=10, batch_size=1))
    assert "avgpool" not in small and small["classifier.0"].in_shape == (512,)


def test_bert_structure(nets):
    net = nets["bert_base"]
    layers = _by_name(net)
    p = "encoder.layer.0"
    assert [layer.name for layer in net.layers[:2]] == ["embeddings", "embeddings.LayerNorm"]
    assert net.input_shape == (128,) and net.layers[0].out_shape == (128, 768) and net.layers[0].positions
    for proj in ("query", "key", "value"):
        assert layers[f"{p}.attention.self.{proj}"].inputs in ((), ("embeddings.LayerNorm",))
    assert layers[f"{p}.attention.self.key"].inputs == ("embeddings.LayerNorm",)
    assert layers[f"{p}.attention.self.value"].inputs == ("embeddings.LayerNorm",)
    assert layers["encoder.layer.1.attention.self.value"].inputs == ("encoder.layer.0.output.LayerNorm",)
    scores = layers[f"{p}.attention.self.scores"]
    assert scores.type == "matmul" and scores.inputs == (f"{p}.attention.self.query", f"{p}.attention.self.key")
    assert scores.transpose_b and layers[f"{p}.attention.self.softmax"].scale == 64 ** -0.5
    assert scores.out_shape == (12, 128, 128) and (scores.m, scores.n, scores.k, scores.count) == (128, 128, 64, 12)
    assert scores.gemm_dims(8) == (128, 128, 64, 96)
    context = layers[f"{p}.attention.self.context"]
    assert context.inputs == (f"{p}.attention.self.softmax", f"{p}.attention.self.value")
    assert context.out_shape == (128, 768) and (context.m, context.n, context.k, context.count) == (128, 64, 128, 12)
    assert layers[f"{p}.attention.output.add"].inputs == (f"{p}.attention.output.dense", "embeddings.LayerNorm")
    assert layers[f"{p}.output.add"].inputs == (f"{p}.output.dense", f"{p}.attention.output.LayerNorm")
    assert layers[f"{p}.intermediate.dense"].out_shape == (128, 3072)
    assert (_count(net, "linear"), _count(net, "matmul"), _count(net, "layernorm")) == (6 * 12 + 2, 24, 25)
    assert (_count(net, "softmax"), _count(net, "gelu"), _count(net, "add")) == (12, 13, 24)
    assert layers["pooler.select"].type == "select" and layers["pooler.select"].index == 0
    assert layers["pooler.dense"].in_shape == (768,)
    assert layers["pooler.activation"].type == "gelu"  # tanh stand-in
    assert layers["classifier"].out_shape == (2,)
    assert zoo.bert_base().batch_size == 8


# --- digits networks: exact shapes and MACs ------------------------------------------------------


def test_mlp_digits_exact():
    net = zoo.mlp(batch_size=1)
    assert [(layer.name, layer.type, layer.in_shape, layer.out_shape) for layer in net.layers] == [
        ("fc1", "linear", (64,), (128,)),
        ("relu1", "relu", (128,), (128,)),
        ("fc2", "linear", (128,), (10,)),
    ]
    assert net.forward_macs() == 64 * 128 + 128 * 10 == 9_472
    assert net.weight_count() == 9_472
    assert zoo.mlp().batch_size == 64 and zoo.mlp().forward_macs() == 64 * 9_472
    flat = zoo.mlp(input_shape=(1, 8, 8), hidden=(), batch_size=1)
    assert [(layer.type, layer.out_shape) for layer in flat.layers] == [("flatten", (64,)), ("linear", (10,))]


def test_cnn_digits_exact():
    net = zoo.cnn(batch_size=1)
    assert [(layer.name, layer.type, layer.in_shape, layer.out_shape) for layer in net.layers] == [
        ("conv1", "conv2d", (1, 8, 8), (16, 8, 8)),
        ("relu1", "relu", (16, 8, 8), (16, 8, 8)),
        ("pool1", "maxpool", (16, 8, 8), (16, 4, 4)),
        ("conv2", "conv2d", (16, 4, 4), (32, 4, 4)),
        ("relu2", "relu", (32, 4, 4), (32, 4, 4)),
        ("pool2", "maxpool", (32, 4, 4), (32, 2, 2)),
        ("flatten", "flatten", (32, 2, 2), (128,)),
        ("fc", "linear", (128,), (10,)),
    ]
    # conv1 64·16·9 = 9,216; conv2 16·32·(16·9) = 73,728; fc 128·10 = 1,280
    assert net.forward_macs() == 9_216 + 73_728 + 1_280 == 84_224
    assert net.weight_count() == 16 * 9 + 32 * 16 * 9 + 128 * 10 == 6_032
    assert _by_name(net)["conv1"].padding == (1, 1)


def test_cnn_input_too_small_names_the_layer():
    with pytest.raises(GraphError) as exc:
        zoo.cnn(input_shape=(1, 2, 2))
    assert exc.value.where == "pool2"
    assert str(exc.value) == "pool2: maxpool window 2x2 does not fit the 1x1 input"
    with pytest.raises(GraphError) as exc:
        zoo.vgg16(input_shape=(3, 16, 16))
    assert exc.value.where == "features.30"


# --- registry and errors -------------------------------------------------------------------------


def test_registry_entries():
    assert sorted(zoo.ZOO) == ["bert_base", "cnn", "mlp", "mobilenet_small", "mobilenet_v2", "resnet", "resnet18",
                               "resnet50", "transformer", "vgg16"]
    assert zoo.zoo_names() == sorted(zoo.ZOO)
    for name, entry in zoo.ZOO.items():
        assert entry.name == name and entry.description
        with pytest.raises(AttributeError):
            entry.name = "x"  # type: ignore[misc]
    assert zoo.ZOO["mlp"].params == ("hidden",)
    assert zoo.ZOO["cnn"].params == ("channels",)
    assert zoo.ZOO["bert_base"].params == ("seq_len", "hidden", "layers", "heads", "intermediate", "vocab")
    assert zoo.ZOO["resnet50"].params == ()
    assert zoo.ZOO["resnet50"].default_input == (3, 224, 224) and zoo.ZOO["resnet50"].default_classes == 1000


def test_build_zoo_model_defaults_and_overrides():
    net = zoo.build_zoo_model("resnet18", input_shape=[3, 64, 64], classes=10, batch_size=16)
    assert (net.name, net.input_shape, net.classes, net.batch_size) == ("resnet18", (3, 64, 64), 10, 16)
    assert net.layers[-1].out_shape == (10,)
    # case, dashes and underscores are tolerated
    assert zoo.build_zoo_model("ResNet-18", batch_size=1).name == "resnet18"
    assert zoo.build_zoo_model("mobilenet-v2", batch_size=1).name == "mobilenet_v2"
    assert zoo.build_zoo_model("BERT-base", batch_size=1, layers=1).name == "bert_base"
    assert zoo.build_zoo_model("cnn", batch_size=1, channels=[8]).layers[-1].in_shape == (8 * 4 * 4,)
    assert zoo.build_zoo_model("mlp", batch_size=1, hidden=[32]).forward_macs() == 64 * 32 + 32 * 10
    assert zoo.build_zoo_model("mlp", batch_size=1, hidden=32).forward_macs() == 64 * 32 + 32 * 10


def test_bert_input_shape_is_the_sequence_length():
    by_shape = zoo.build_zoo_model("bert_base", input_shape=(64,), batch_size=1)
    by_param = zoo.build_zoo_model("bert_base", seq_len=64, batch_size=1)
    assert by_shape.input_shape == by_param.input_shape == (64,)
    assert by_shape.forward_macs() == by_param.forward_macs()
    assert by_shape.meta["seq_len"] == 64
    assert zoo.build_zoo_model("bert_base", input_shape=(64,), seq_len=64, batch_size=1).input_shape == (64,)
    with pytest.raises(GraphError, match=r"^seq_len: seq_len=32 contradicts input_shape \[64\]$"):
        zoo.build_zoo_model("bert_base", input_shape=(64,), seq_len=32, batch_size=1)
    with pytest.raises(GraphError, match=r"^input_shape: bert_base takes input_shape \(seq_len,\)"):
        zoo.build_zoo_model("bert_base", input_shape=(64, 768), batch_size=1)


def test_unknown_model_name():
    with pytest.raises(KeyError) as exc:
        zoo.build_zoo_model("resnet5", batch_size=1)
    assert exc.value.args[0] == (
        "unknown zoo model 'resnet5' (did you mean 'resnet50'?); known models: "
        "bert_base, cnn, mlp, mobilenet_small, mobilenet_v2, resnet, resnet18, resnet50, transformer, vgg16"
    )
    with pytest.raises(KeyError) as exc:
        zoo.build_zoo_model("gpt-xl-huge", batch_size=1)
    assert exc.value.args[0] == (
        "unknown zoo model 'gpt-xl-huge'; known models: "
        "bert_base, cnn, mlp, mobilenet_small, mobilenet_v2, resnet, resnet18, resnet50, transformer, vgg16"
    )


def test_unknown_parameter():
    with pytest.raises(GraphError) as exc:
        zoo.build_zoo_model("resnet50", batch_size=1, depth=101)
    assert exc.value.where == "depth"
    assert str(exc.value) == (
        "depth: unknown parameter depth for zoo model 'resnet50'; "
        "allowed parameters: none (plus input_shape, classes, batch_size)"
    )
    with pytest.raises(GraphError) as exc:
        zoo.build_zoo_model("mlp", batch_size=1, hiden=(64,))
    assert str(exc.value) == (
        "hiden: unknown parameter hiden for zoo model 'mlp'; "
        "allowed parameters: hidden (plus input_shape, classes, batch_size)"
    )


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("resnet18", {"batch_size": 0}, "batch_size: must be a positive integer, got 0"),
        ("resnet18", {"batch_size": 1, "classes": -3}, "classes: must be a positive integer, got -3"),
        ("resnet18", {"batch_size": 1, "input_shape": (224, 224)},
         "input_shape: must be (channels, height, width), got [224, 224]"),
        ("mlp", {"batch_size": 1, "hidden": (128, 0)}, "hidden: must be a list of positive integers, got [128, 0]"),
        ("cnn", {"batch_size": 1, "channels": ()}, "channels: must not be empty"),
        ("cnn", {"batch_size": 1, "channels": "16"}, "channels: must be a list of positive integers, got '16'"),
        ("mlp", {"batch_size": True}, "batch_size: must be a positive integer, got True"),
        ("bert_base", {"batch_size": 1, "heads": 5}, "heads: heads=5 must divide hidden=768"),
        ("bert_base", {"batch_size": 1, "layers": 0}, "layers: must be a positive integer, got 0"),
    ],
)
def test_bad_parameter_values(name, kwargs, message):
    with pytest.raises(GraphError) as exc:
        zoo.build_zoo_model(name, **kwargs)
    assert str(exc.value) == message
