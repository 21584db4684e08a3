"""One idiom across the model families: configuration as Spec rows, widths rounded by make_divisible."""

import dataclasses
import importlib

import pytest
import torch
from icdl.models import alexnet, googlenet, layers, mobilenet, registry, vgg
from icdl.models import efficientnet as E
from icdl.models.spec import Spec
from torch import nn

# The configuration each family builds from: module attributes holding a paper's table or its
# named configurations. VGG's Table 1 is the one plain list (see icdl/models/spec.py).
CONFIG_TABLES = {
    "lenet": ["VARIANTS", "WIDTHS"],
    "alexnet": ["PAPER", "TORCHVISION", "CONFIGS"],
    "googlenet": ["INCEPTION_CFG"],
    "resnet": ["CONFIGS"],
    "densenet": ["DENSENET_CFGS"],
    "mobilenet": ["V1_CONFIG", "V2_CONFIG", "V3_LARGE", "V3_SMALL"],
    "efficientnet": ["B0_STAGES", "SCALINGS", "LITE0"],
    "convnext": ["CONFIGS"],
    "vit": ["CONFIGS"],
}
# Strings that may stand in a table instead of a row: GoogLeNet's max pools between stages.
MARKERS = {"googlenet": {"maxpool3", "maxpool4"}}


def family(name):
    return importlib.import_module(f"icdl.models.{name}")


def rows(value):
    """The leaves of a table: Specs and markers, looking through dicts, tuples and lists (but not into a Spec)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from rows(v)
    elif isinstance(value, (tuple, list)) and not isinstance(value, Spec):
        for v in value:
            yield from rows(v)
    else:
        yield value


def test_every_family_is_listed():
    assert set(CONFIG_TABLES) | {"vgg"} == set(registry.FAMILIES)


@pytest.mark.parametrize("name", sorted(CONFIG_TABLES))
def test_configuration_tables_are_frozen_spec_rows(name):
    module = family(name)
    for table in CONFIG_TABLES[name]:
        leaves = list(rows(getattr(module, table)))
        assert leaves, (name, table)
        for row in leaves:
            if isinstance(row, str):
                assert row in MARKERS.get(name, set()), (name, table, row)
                continue
            assert isinstance(row, Spec), f"{name}.{table} holds a {type(row).__name__}, not a Spec row"
            assert type(row).__dataclass_params__.frozen, (name, table, type(row).__name__)
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(row, row.keys()[0], None)


@pytest.mark.parametrize("name", registry.FAMILIES)
def test_no_family_writes_configuration_another_way(name):
    # Any dataclass a family defines is a frozen Spec; no NamedTuple rows (an output tuple is not configuration).
    module = family(name)
    outputs = {"GoogLeNetOutputs"}
    for obj in vars(module).values():
        if not isinstance(obj, type) or obj.__module__ != module.__name__:
            continue
        if dataclasses.is_dataclass(obj):
            assert issubclass(obj, Spec) and obj.__dataclass_params__.frozen, f"{name}.{obj.__name__}"
        if issubclass(obj, tuple) and hasattr(obj, "_fields"):
            assert obj.__name__ in outputs, f"{name}.{obj.__name__} is a NamedTuple configuration"


def test_a_spec_reads_like_a_tuple_and_like_a_mapping():
    row = mobilenet.V2_CONFIG[1]
    t, c, n, s = row
    assert (t, c, n, s) == (6, 24, 2, 2) == tuple(row) and len(row) == 4
    assert row[1:] == (24, 2, 2) and row["c"] == 24 == row.c
    assert dataclasses.replace(row, s=1).s == 1 and row.s == 2
    config = family("densenet").DENSENET_CFGS["densenet121"]
    assert dict(config) == {"growth_rate": 32, "block_config": (6, 12, 24, 16), "num_init_features": 64}
    with pytest.raises(KeyError, match="growth_rate"):
        config["growth"]


# --------------------------------------------------------------------------
# Widths: every family that scales channels rounds them with layers.make_divisible
# --------------------------------------------------------------------------
# Awkward multipliers: products that end in .5, and small ones where the 90% floor of
# make_divisible matters. The old per-family rules give other widths on them (the controls).
AWKWARD = (0.05, 0.0390625, 0.078125, 0.1, 0.3, 0.35, 0.37, 1.3)


def conv_widths(model):
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]


def on_meta(factory, *args, **kwargs):
    with torch.device("meta"):
        return factory(*args, **kwargs)


def test_the_awkward_widths_tell_the_old_rules_apart():
    # Control: a family that still rounded its own way would fail the tests below on these widths.
    def round_half_even(channels, w):  # the rule VGG and GoogLeNet used
        return max(1, round(channels * w))

    def even_round(channels, w):  # the rule AlexNet used
        return max(2, 2 * round(channels * w / 2))

    vgg_channels = [c for c in vgg.CONFIGS["A"] if c != "M"]
    assert any(round_half_even(c, w) != layers.make_divisible(c * w, 1) for c in vgg_channels for w in AWKWARD)
    alex_channels = [s.out_channels for s in alexnet.TORCHVISION]
    assert any(even_round(c, w) != layers.make_divisible(c * w, 2) for c in alex_channels for w in AWKWARD)


@pytest.mark.parametrize("width", AWKWARD)
def test_vgg_alexnet_googlenet_round_with_make_divisible(width):
    got = conv_widths(on_meta(vgg.vgg, "A", width=width))
    assert got == [layers.make_divisible(c * width, 1) for c in vgg.CONFIGS["A"] if c != "M"]

    for config in (alexnet.TORCHVISION, alexnet.PAPER):
        got = conv_widths(on_meta(alexnet.AlexNet, config, width=width))
        assert got == [layers.make_divisible(s.out_channels * width, 2) for s in config]

    net = on_meta(googlenet.googlenet, width=width)
    stem = [net.conv1.conv.out_channels, net.conv2.conv.out_channels, net.conv3.conv.out_channels]
    assert stem == [layers.make_divisible(c * width, 1) for c in googlenet.STEM_CHANNELS]
    for spec in googlenet.INCEPTION_CFG:
        if isinstance(spec, str):
            continue
        module = getattr(net, spec.name)
        built = (module.branch1.conv.out_channels, module.branch2[0].conv.out_channels,
                 module.branch2[1].conv.out_channels, module.branch3[0].conv.out_channels,
                 module.branch3[1].conv.out_channels, module.branch4[1].conv.out_channels)
        assert built == tuple(layers.make_divisible(c * width, 1) for c in spec[1:]), spec.name
    assert net.aux1.conv.conv.out_channels == layers.make_divisible(128 * width, 1)
    assert net.aux1.fc1.out_features == layers.make_divisible(1024 * width, 1)


@pytest.mark.parametrize("width", AWKWARD)
def test_mobile_families_round_to_multiples_of_8_with_make_divisible(width):
    v1 = on_meta(mobilenet.mobilenet_v1, width_mult=width)
    pointwise = [layer.pointwise[0].out_channels for layer in v1.features[1:]]
    assert pointwise == [layers.make_divisible(row.out_channels * width, 8) for row in mobilenet.V1_CONFIG]

    v2 = on_meta(mobilenet.mobilenet_v2, width_mult=width)
    blocks = [b for b in v2.features if isinstance(b, mobilenet.InvertedResidual)]
    expected = [layers.make_divisible(row.c * width, 8) for row in mobilenet.V2_CONFIG for _ in range(row.n)]
    assert [b.out_channels for b in blocks] == expected

    v3 = on_meta(mobilenet.mobilenet_v3_small, width_mult=width)
    blocks = [b for b in v3.features if isinstance(b, mobilenet.InvertedResidualV3)]
    assert [b.out_channels for b in blocks] == [layers.make_divisible(r.out * width, 8) for r in mobilenet.V3_SMALL]

    net = on_meta(E.EfficientNet, width_mult=width)
    assert [stage[0].out_channels for stage in net.features[1:-1]] == [
        layers.make_divisible(s.out_channels * width, 8) for s in E.B0_STAGES]
    assert net.num_features == layers.make_divisible(E.B0_HEAD_CHANNELS * width, 8)


# --------------------------------------------------------------------------
# Initialisation: the shared helpers give what the families' own schemes gave
# --------------------------------------------------------------------------
def test_kaiming_init_with_linear_layers_is_alexnets_he_init():
    torch.manual_seed(0)
    a = alexnet.alexnet(num_classes=10, cifar_stem=True, width=0.125, hidden=32)
    b = alexnet.alexnet(num_classes=10, cifar_stem=True, width=0.125, hidden=32)
    b.load_state_dict(a.state_dict())
    torch.manual_seed(1)
    alexnet.he_init_(a)
    torch.manual_seed(1)
    for m in b.modules():  # He et al. written out: N(0, 2 / fan_in) for every weight layer, zero biases
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    nn.init.normal_(b.classifier[6].weight, std=0.01)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


def test_linear_init_can_keep_the_weights_and_xavier_init_draws_glorot():
    torch.manual_seed(0)
    layer = nn.Linear(30, 20)
    before = layer.weight.detach().clone()
    layers.linear_init_(layer, weights=False)
    assert torch.equal(layer.weight, before) and not layer.bias.any()
    layers.xavier_init_(layer, bias_std=1e-6)
    bound = (6 / (30 + 20)) ** 0.5
    assert layer.weight.abs().max() <= bound and not torch.equal(layer.weight, before)
    assert 0 < layer.bias.abs().max() < 1e-5
