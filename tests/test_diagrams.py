"""Tests of icdl.diagrams: every diagram draws, fits a book page, and shows the numbers of the model itself.

The numbers a test expects come from the model's configuration table or from a module built by
the model's own factory (not by the diagram's code path), and the mutation tests change a table
and watch the diagram follow: a diagram is drawn from the code, never typed.
"""

import itertools
import re
import time
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")  # no display in tests

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from icdl import diagrams  # noqa: E402
from icdl.models import (  # noqa: E402
    alexnet, convnext, densenet, efficientnet, googlenet, lenet, mobilenet, resnet, vgg, vit,
)
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402
from matplotlib.text import Text  # noqa: E402

PAGE_WIDTH, PAGE_HEIGHT = 7.5, 8.0  # inches: a book page shows a figure this size at full scale

# Every function at every option the chapters use or a learner would try.
CASES = {
    "lenet modern": lambda: diagrams.lenet_pipeline(),
    "lenet classic": lambda: diagrams.lenet_pipeline("classic"),
    "lenet modern 28px": lambda: diagrams.lenet_pipeline("modern", c1_padding=2),
    "lenet batch norm": lambda: diagrams.lenet_pipeline("modern", batch_norm=True),
    "alexnet": lambda: diagrams.alexnet_two_gpu(),
    **{f"vgg {c}{s}": (lambda c=c, s=s: diagrams.vgg_stage(c, int(s))) for c, s in ("A1", "B2", "D3", "E5")},
    **{f"inception {n}": (lambda n=n: diagrams.inception_module(n)) for n in ("3a", "4e", "5b")},
    "inception 3a torchvision": lambda: diagrams.inception_module("3a", "torchvision"),
    "residual basic": lambda: diagrams.residual_block("basic"),
    "residual basic stride 2": lambda: diagrams.residual_block("basic", 64, 128, stride=2),
    "residual bottleneck": lambda: diagrams.residual_block("bottleneck"),
    "residual bottleneck first": lambda: diagrams.residual_block("bottleneck", 64),
    "residual bottleneck stride 2": lambda: diagrams.residual_block("bottleneck", 256, 128, stride=2),
    "dense": lambda: diagrams.dense_block(),
    "dense 161": lambda: diagrams.dense_block(config="densenet161", n_layers=3),
    "dense k12 no transition": lambda: diagrams.dense_block(12, 4, in_channels=24, transition=False),
    **{f"separable {i}": (lambda i=i: diagrams.depthwise_separable(i)) for i in (1, 2, 13)},
    "mbconv": lambda: diagrams.mbconv(),
    "mbconv first": lambda: diagrams.mbconv(first=True),
    "mbconv1": lambda: diagrams.mbconv(1, 3),
    "mbconv k5": lambda: diagrams.mbconv(6, 5),
    "mbconv k5 first": lambda: diagrams.mbconv(6, 5, first=True),
    "inverted residual": lambda: diagrams.mbconv(se=False),
    "inverted residual first": lambda: diagrams.mbconv(se=False, first=True),
    "inverted residual t1": lambda: diagrams.mbconv(1, se=False),
    "convnext": lambda: diagrams.convnext_block(),
    "convnext B stage 4": lambda: diagrams.convnext_block("convnext_base", 4),
    "transformer": lambda: diagrams.transformer_block(),
    "transformer tiny": lambda: diagrams.transformer_block("vit_tiny"),
}


pytestmark = pytest.mark.usefixtures("no_open_figures")  # conftest.py: no figure left open


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    diagrams.alexnet_two_gpu()  # the first op on torch's meta device pays a one-time set-up (about a second)


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_text().strip()]


def drawn(fig: Figure) -> str:
    """Every text of the figure, one line each (a box's lines stay in order)."""
    return "\n".join(texts(fig))


def layout_faults(fig: Figure) -> list[str]:
    """Texts that stick out of the figure, and pairs of texts that overlap, as the Agg renderer lays them out."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in fig.findobj(Text) if t.get_text().strip()]
    page = fig.bbox
    faults = [f"clipped: {s!r}" for s, b in boxes
              if b.x0 < page.x0 - 1 or b.y0 < page.y0 - 1 or b.x1 > page.x1 + 1 or b.y1 > page.y1 + 1]
    faults += [f"overlap: {s!r} and {t!r}" for (s, a), (t, b) in itertools.combinations(boxes, 2) if a.overlaps(b)]
    return faults


# --------------------------------------------------------------------------
# Every diagram: draws quickly, fits the page, nothing clipped or overlapping
# --------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_draws_fast_and_fits_a_page(case):
    start = time.process_time()  # this process's CPU time: what other jobs on the machine do not change
    fig = CASES[case]()
    seconds = time.process_time() - start
    assert isinstance(fig, Figure)
    assert seconds < 1.0, f"{case} took {seconds:.2f} s"
    width, height = fig.get_size_inches()
    assert width <= PAGE_WIDTH and height <= PAGE_HEIGHT, f"{case} is {width:.2f} x {height:.2f} in"
    assert layout_faults(fig) == []
    assert fig.findobj(FancyArrowPatch), "a diagram has arrows"


def test_layout_check_sees_an_overlap_and_a_clipped_text():
    # the control: the check above can fail
    fig = diagrams.residual_block()
    assert layout_faults(fig) == []
    ax = fig.axes[0]
    label = next(t for t in ax.texts if t.get_text() == "ReLU")
    ax.text(*label.get_position(), "ReLU again", ha="center", va="center")
    ax.text(ax.get_xlim()[1], 0, "past the edge", ha="center")
    faults = layout_faults(fig)
    assert any("overlap" in f and "ReLU again" in f for f in faults)
    assert any("clipped" in f and "past the edge" in f for f in faults)


def test_no_figure_is_left_open_in_pyplot():
    before = plt.get_fignums()
    for case in ("lenet modern", "dense", "transformer"):
        CASES[case]()
    with pytest.raises(ValueError):
        diagrams.vgg_stage("D", 9)  # a refused call leaves nothing open either
    assert plt.get_fignums() == before


# --------------------------------------------------------------------------
# The numbers drawn are the model's
# --------------------------------------------------------------------------
def test_lenet_shapes_and_widths_are_the_models():
    c1, c3, c5, f6 = lenet.WIDTHS
    text = drawn(diagrams.lenet_pipeline())
    for expected in ("1×32×32", f"C1: conv 5×5\n{c1} maps", f"→ {c1}×28×28", "S2: max pool 2×2",
                     f"→ {c1}×14×14", f"\n{c3} maps", f"→ {c3}×10×10", f"→ {c3}×5×5", f"\n{c5} maps",
                     f"→ {c5}×1×1", f"{f6} units", "10 units"):
        assert expected in text
    with torch.no_grad():  # the shape after C1, from the model's own forward pass
        model = lenet.lenet5("modern", c1_padding=2).eval()
        shape = model.features.c1(torch.zeros(1, 1, 28, 28)).shape[1:]
    text = drawn(diagrams.lenet_pipeline("modern", c1_padding=2))
    assert "1×28×28" in text and "padding 2" in text and f"→ {'×'.join(map(str, shape))}" in text


def test_lenet_classic_shows_table_one_connections():
    links = sum(len(inputs) for inputs in lenet.C3_TABLE)
    assert links == 60  # the paper's Table I: 6x3 + 6x4 + 3x4 + 1x6
    text = drawn(diagrams.lenet_pipeline("classic"))
    assert f"({links} of {16 * 6} links)" in text
    assert "subsample 2×2\n(trainable)" in text and "scaled tanh" in text and "RBF" in text


def test_alexnet_split_is_the_papers():
    fig = diagrams.alexnet_two_gpu()
    text = drawn(fig)
    for i, spec in enumerate(alexnet.PAPER, start=1):
        assert f"conv{i}: {spec.kernel_size}×{spec.kernel_size}" in text
        assert f"groups={spec.groups}\n{spec.out_channels // 2} of {spec.out_channels} maps" in text
    # The paper (Section 3.5): conv2, conv4 and conv5 read only their own GPU's maps; conv3 and the
    # fully connected layers read both.
    assert "own GPU's maps: conv2, conv4, conv5." in text
    for size in ("55×55", "27×27", "13×13", "6×6"):
        assert size in text
    assert "9216 → 4096 → 4096 → 1000" in text
    crossing = [a for a in fig.findobj(FancyArrowPatch) if a.get_edgecolor()[:3] == matplotlib.colors.to_rgb(
        diagrams.CROSS)]
    assert len(crossing) == 4  # conv2 -> conv3 both ways, and both GPUs into the fully connected layers


@pytest.mark.parametrize("config, depth", [("A", 11), ("B", 13), ("D", 16), ("E", 19)])
def test_vgg_every_stage_shows_its_column_of_table_one(config, depth):
    column = vgg.CONFIGS[config]
    stages, current = [], []
    for item in column:
        if item == "M":
            stages.append(current)
            current = []
        else:
            current.append(item)
    channels, size = 3, 224
    for s, widths in enumerate(stages, start=1):
        text = drawn(diagrams.vgg_stage(config, s))
        assert f"VGG-{depth} (column {config} of Table 1), stage {s} of {len(stages)}" in text
        assert len(re.findall(rf"conv{s}_\d+:", text)) == len(widths)
        for j, width in enumerate(widths, start=1):
            assert (f"conv{s}_{j}: 3×3 conv, {channels}→{width}, stride 1, padding 1\n"
                    f"ReLU → {width}×{size}×{size}") in text
            channels = width
        size //= 2
        assert f"max pool 2×2, stride 2\n→ {channels}×{size}×{size}" in text
        assert f"{2 * len(widths) + 1}×{2 * len(widths) + 1} window" in text


@pytest.mark.parametrize("row", [r for r in googlenet.INCEPTION_CFG if not isinstance(r, str)], ids=lambda r: r.name)
def test_inception_branches_are_the_config_row(row):
    with torch.device("meta"):
        module = getattr(googlenet.googlenet_paper(aux_logits=False), row.name)
    c_in = module.branch1.conv.in_channels
    text = drawn(diagrams.inception_module(row.name.removeprefix("inception")))
    for expected in (f"1×1 conv\n{c_in}→{row.c1}", f"1×1 conv (reduce)\n{c_in}→{row.c3_reduce}",
                     f"3×3 conv\n{row.c3_reduce}→{row.c3}", f"1×1 conv (reduce)\n{c_in}→{row.c5_reduce}",
                     f"5×5 conv\n{row.c5_reduce}→{row.c5}", f"1×1 conv (pool proj)\n{c_in}→{row.pool_proj}",
                     f"{row.c1} + {row.c3} + {row.c5} + {row.pool_proj} = {row.out_channels}"):
        assert expected in text


def test_inception_3a_is_table_one_of_the_paper():
    text = drawn(diagrams.inception_module("3a"))
    # Szegedy et al. (2015), Table 1, inception (3a): 64, 96, 128, 16, 32, 32 on a 28x28x192 input
    assert "input 192×28×28" in text and "64 + 128 + 32 + 32 = 256" in text
    assert "192→96" in text and "192→16" in text and "16→32" in text
    torchvision = drawn(diagrams.inception_module("3a", "torchvision"))
    assert "3×3 conv\n16→32" in torchvision and "5×5 conv" not in torchvision and "ported weights" in torchvision


def test_residual_blocks_are_resnet50s_and_resnet18s():
    with torch.device("meta"):
        r50, r18 = resnet.resnet50(), resnet.resnet18()
    # ResNet-50, stage 1 (conv2_x), a later block: the paper's Fig. 5 (right), 256-d
    block = r50.layer1[1]
    text = drawn(diagrams.residual_block("bottleneck"))
    for conv in (block.conv1, block.conv2, block.conv3):
        k = conv.kernel_size[0]
        assert f"{k}×{k} conv, {conv.in_channels}→{conv.out_channels}, stride 1" in text
    assert "1×1 conv, 256→64" in text and "3×3 conv, 64→64" in text and "1×1 conv, 64→256" in text
    assert "identity" in text and "projection" not in text
    # its first block: 64 channels in, a projection to 256
    text = drawn(diagrams.residual_block("bottleneck", 64))
    proj = r50.layer1[0].downsample[0]
    assert f"projection: 1×1 conv\n{proj.in_channels}→{proj.out_channels}, stride 1, BN" in text
    # ResNet-50 stage 2's first block: the stride is in the 3x3 conv
    text = drawn(diagrams.residual_block("bottleneck", 256, 128, stride=2))
    assert "3×3 conv, 128→128, stride 2" in text and "256→512, stride 2, BN" in text and "v1.5" in text
    assert r50.layer2[0].conv2.stride == (2, 2)
    # ResNet-18: the paper's Fig. 5 (left), 64-d
    text = drawn(diagrams.residual_block("basic"))
    assert text.count("3×3 conv, 64→64, stride 1") == 2
    assert [c.out_channels for c in (r18.layer1[1].conv1, r18.layer1[1].conv2)] == [64, 64]
    text = drawn(diagrams.residual_block("basic", 64, 128, stride=2))
    assert "3×3 conv, 64→128, stride 2" in text and "128 channels (H/2 × W/2)" in text
    assert r18.layer2[0].downsample[0].in_channels == 64


@pytest.mark.parametrize("config", ["densenet121", "densenet161"])
def test_dense_block_channels_grow_by_k(config):
    cfg = densenet.DENSENET_CFGS[config]
    k, k0, n = cfg.growth_rate, cfg.num_init_features, cfg.block_config[0]
    fig = diagrams.dense_block(config=config)
    text = drawn(fig)
    assert f"k = {k}, k0 = {k0}, {n} layers ({config}'s first block)" in text
    for i in range(1, n + 1):
        assert f"{k0} + {i}·{k} = {k0 + i * k}" in text
        assert f"H{i}: BN-ReLU-1×1 conv {k0 + (i - 1) * k}→{4 * k}\nBN-ReLU-3×3 conv {4 * k}→{k}" in text
    assert texts(fig).count(f"+{k}") == n  # each layer's arrow into the concatenation
    # The transition: what DenseNet itself builds after block 1 (theta = 0.5 halves the channels)
    out = densenet.channels_through(cfg.block_config, k, k0)[1][1]
    assert f"transition: BN-ReLU-1×1 conv {k0 + n * k}→{out} (θ = 0.5)" in text
    with torch.device("meta"):
        model = getattr(densenet, config)()
    assert model.features.transition1.conv.out_channels == out


def test_dense_block_override_says_it_is_not_the_config():
    text = drawn(diagrams.dense_block(12, 3, in_channels=24))
    assert "k = 12, k0 = 24, 3 layers" in text and "densenet121" not in text
    assert "24 + 3·12 = 60" in text


@pytest.mark.parametrize("layer", [1, 2, 6, len(mobilenet.V1_CONFIG)])  # the first, a stride 2, a 512, the last
def test_separable_costs_are_the_weights_of_mobilenet_v1(layer, v1_model):
    block = v1_model.features[layer]
    dw, pw = block.depthwise[0], block.pointwise[0]
    m, n, k = dw.in_channels, pw.out_channels, dw.kernel_size[0]
    standard = k * k * m * n
    assert n == mobilenet.V1_CONFIG[layer - 1].out_channels
    text = drawn(diagrams.depthwise_separable(layer))
    assert f"{m} → {n} channels" in text and f"layer {layer} of 13 (Table 1)" in text
    for count in (dw.weight.numel(), pw.weight.numel(), standard):
        assert f"{count:,} multiply-adds per position" in text
    ratio = float(re.search(r"/ [\d,]+ = ([\d.]+)", text).group(1))
    formula = float(re.search(r"1/\d+ \+ 1/\d²\s*=\s*([\d.]+)", text).group(1))
    assert f"1/{n} + 1/{k}²" in text
    exact = (dw.weight.numel() + pw.weight.numel()) / standard
    assert exact == pytest.approx(1 / n + 1 / k**2) == pytest.approx(mobilenet.separable_cost(m, n, k))
    assert ratio == formula == round(exact, 4)


@pytest.fixture(scope="module")
def v1_model():
    return mobilenet.MobileNetV1()  # real weights, on the CPU (4 M parameters)


def test_mbconv_is_efficientnet_b0s_block():
    with torch.device("meta"):
        b0 = efficientnet.efficientnet_b0()
    row = efficientnet.B0_STAGES[1]  # Table 1, stage 3: MBConv6, k3x3, 16 -> 24, 2 layers
    expand, dw, se, project = b0.features[2][1].block
    text = drawn(diagrams.mbconv())
    assert f"MBConv{row.expand_ratio}, k3×3, block 2 of {row.num_layers}" in text
    assert f"stage 3 of Table 1: {row.in_channels}→{row.out_channels} channels, stride {row.stride}" in text
    assert f"1×1 conv (expand ×6), {expand[0].in_channels}→{expand[0].out_channels}\nBN, SiLU" in text
    assert f"3×3 depthwise conv, {dw[0].out_channels} channels, stride 1\nBN, SiLU" in text
    # the squeeze width is a quarter of the block's input channels (24 // 4 = 6), not of the expanded 144
    assert se.fc1.out_channels == row.out_channels // 4 == 6
    assert f"1×1 {se.fc1.in_channels}→{se.fc1.out_channels}, SiLU,\n1×1 6→144, Sigmoid" in text
    assert f"1×1 conv (project), 144→{project[0].out_channels}\nBN, no activation (linear)" in text
    assert "identity" in text
    first = drawn(diagrams.mbconv(first=True))
    assert "stride 2" in first and "no shortcut" in first and "16 → 24 channels" in first
    assert "1×1 96→4" in first  # 16 // 4
    mb1 = drawn(diagrams.mbconv(1, 3))
    assert "expand" not in mb1 and "1×1 32→8" in mb1 and "32→16" in mb1


def test_inverted_residual_is_mobilenet_v2s_block():
    with torch.device("meta"):
        v2 = mobilenet.mobilenet_v2()
    expand, dw, project, _ = v2.features[3].conv  # Table 2, row t=6, c=24: its second block
    text = drawn(diagrams.mbconv(se=False))
    assert "row 3 of Table 2: t=6, c=24, n=2, s=2" in text and "block 2 of 2" in text
    assert f"1×1 conv (expand ×6), {expand[0].in_channels}→{expand[0].out_channels}\nBN, ReLU6" in text
    assert f"3×3 depthwise conv, {dw[0].out_channels} channels, stride 1\nBN, ReLU6" in text
    assert f"{project.in_channels}→{project.out_channels}\nBN, no activation (linear)" in text
    assert "squeeze" not in text and "identity" in text
    first = drawn(diagrams.mbconv(se=False, first=True))
    assert "stride 2" in first and "16→96" in first and "16 → 24 channels" in first
    t1 = drawn(diagrams.mbconv(1, se=False))
    assert "row 2 of Table 2: t=1, c=16, n=1, s=1" in t1 and "expand" not in t1 and "32→16" in t1


@pytest.mark.parametrize("config", list(convnext.CONFIGS))
def test_convnext_blocks_are_four_times_wide_in_the_middle(config):
    stages = convnext.CONFIGS[config].stages
    for s in (1, len(stages)):
        c = stages[s - 1].channels
        text = drawn(diagrams.convnext_block(config, s))
        assert f"stage {s} of {len(stages)}" in text
        assert f"7×7 depthwise conv, {c} channels, groups={c}" in text and f"LayerNorm ({c})" in text
        assert f"{c}→{4 * c}" in text and f"{4 * c}→{c}" in text and "GELU" in text


def test_convnext_tiny_is_the_model():
    with torch.device("meta"):
        block = convnext.convnext_tiny().features[1][0]
    text = drawn(diagrams.convnext_block())
    assert "ConvNeXt-T block, stage 1 of 4" in text
    fc1, fc2 = block.block[3], block.block[5]
    assert (fc1.in_features, fc1.out_features, fc2.out_features) == (96, 384, 96)
    assert "1×1 conv (Linear), 96→384" in text and "1×1 conv (Linear), 384→96" in text


@pytest.mark.parametrize("config, tokens, heads", [("vit_b_16", 197, 12), ("vit_tiny", 65, 4)])
def test_transformer_block_is_the_vits(config, tokens, heads):
    cfg = vit.CONFIGS[config]
    text = drawn(diagrams.transformer_block(config))
    d = cfg.hidden_dim
    assert f"tokens: {tokens} × {d}" in text and f"{heads} heads × {d // heads} dims" in text
    assert f"Linear {d}→{cfg.mlp_dim}, GELU" in text and f"Linear {cfg.mlp_dim}→{d}" in text
    assert f"{cfg.patch_size}×{cfg.patch_size} patches, {cfg.num_layers} such blocks" in text
    assert text.count(f"LayerNorm ({d})") == 2


# --------------------------------------------------------------------------
# Mutation: change the configuration, the diagram follows
# --------------------------------------------------------------------------
def test_lenet_follows_its_widths(monkeypatch):
    monkeypatch.setattr(lenet, "WIDTHS", replace(lenet.WIDTHS, c1=8, f6=50))
    text = drawn(diagrams.lenet_pipeline())
    assert "\n8 maps" in text and "→ 8×28×28" in text and "50 units" in text and "\n6 maps" not in text


def test_alexnet_follows_its_config(monkeypatch):
    paper = list(alexnet.PAPER)
    paper[2] = replace(paper[2], groups=2, out_channels=320)
    monkeypatch.setitem(alexnet.CONFIGS, "paper", tuple(paper))
    fig = diagrams.alexnet_two_gpu()
    text = drawn(fig)
    assert "conv3: 3×3, groups=2\n160 of 320 maps" in text and "conv2, conv3, conv4, conv5" in text
    crossing = [a for a in fig.findobj(FancyArrowPatch)
                if a.get_edgecolor()[:3] == matplotlib.colors.to_rgb(diagrams.CROSS)]
    assert len(crossing) == 2  # only into the fully connected layers now


def test_vgg_follows_table_one(monkeypatch):
    column = list(vgg.CONFIGS["D"])
    column[column.index(256)] = 200  # conv3_1 narrower
    column.insert(column.index("M", 6), 256)  # and a fourth convolution in stage 3
    monkeypatch.setitem(vgg.CONFIGS, "D", column)
    text = drawn(diagrams.vgg_stage("D", 3))
    assert "VGG-17" in text and "conv3_1: 3×3 conv, 128→200" in text and "conv3_4" in text
    assert "4 stacked 3×3 convolutions see a 9×9 window" in text


def test_inception_follows_table_one(monkeypatch):
    cfg = list(googlenet.INCEPTION_CFG)
    cfg[0] = googlenet.InceptionSpec("inception3a", 10, 20, 30, 40, 50, 60)
    monkeypatch.setattr(googlenet, "INCEPTION_CFG", cfg)
    assert "10 + 30 + 50 + 60 = 150" in drawn(diagrams.inception_module("3a"))
    assert "input 150×28×28" in drawn(diagrams.inception_module("3b"))  # 3b reads what 3a writes


def test_residual_block_follows_the_stage_widths(monkeypatch):
    monkeypatch.setattr(resnet, "STAGE_WIDTHS", (32, 64, 128, 256))
    assert "1×1 conv, 128→32" in drawn(diagrams.residual_block("bottleneck"))
    assert "3×3 conv, 32→32" in drawn(diagrams.residual_block("basic"))


def test_dense_block_follows_the_growth_rate(monkeypatch):
    monkeypatch.setitem(densenet.DENSENET_CFGS, "densenet121",
                        replace(densenet.DENSENET_CFGS["densenet121"], growth_rate=12))
    text = drawn(diagrams.dense_block())
    assert "64 + 1·12 = 76" in text and "64 + 6·12 = 136" in text and "64 + 1·32" not in text
    assert "BN-ReLU-1×1 conv 76→48" in text  # the bottleneck is 4k wide


def test_depthwise_separable_follows_table_one(monkeypatch):
    monkeypatch.setattr(mobilenet, "V1_CONFIG", (mobilenet.SeparableSpec(48, 1), *mobilenet.V1_CONFIG[1:]))
    text = drawn(diagrams.depthwise_separable(1))
    assert "32 → 48 channels" in text and "1/48 + 1/3²" in text and "1,536 multiply-adds" in text


def test_mbconv_follows_the_stage_tables(monkeypatch):
    stages = list(efficientnet.B0_STAGES)
    stages[1] = replace(stages[1], out_channels=32)
    stages[2] = replace(stages[2], in_channels=32)
    monkeypatch.setattr(efficientnet, "B0_STAGES", tuple(stages))
    text = drawn(diagrams.mbconv())
    assert "32→192" in text and "1×1 192→8" in text and "16→32 channels" in text  # SE: 32 // 4
    v2 = list(mobilenet.V2_CONFIG)
    v2[1] = replace(v2[1], c=40, n=3)
    monkeypatch.setattr(mobilenet, "V2_CONFIG", tuple(v2))
    text = drawn(diagrams.mbconv(se=False))
    assert "t=6, c=40, n=3, s=2" in text and "block 2 of 3" in text and "40→240" in text


def test_convnext_and_vit_follow_their_configs(monkeypatch):
    tiny = convnext.CONFIGS["convnext_tiny"]
    monkeypatch.setitem(convnext.CONFIGS, "convnext_tiny",
                        replace(tiny, stages=(replace(tiny.stages[0], channels=64), *tiny.stages[1:])))
    assert "64→256" in drawn(diagrams.convnext_block())
    monkeypatch.setitem(vit.CONFIGS, "vit_b_16", replace(vit.CONFIGS["vit_b_16"], num_heads=8, num_layers=6))
    text = drawn(diagrams.transformer_block())
    assert "8 heads × 96 dims" in text and "6 such blocks" in text


# --------------------------------------------------------------------------
# Invalid arguments: a ValueError that names the valid options
# --------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda: diagrams.lenet_pipeline("ancient"), "'classic', 'modern'"),
    (lambda: diagrams.lenet_pipeline(c1_padding=-1), "between 0 and 13"),
    (lambda: diagrams.alexnet_two_gpu("caffe"), "'paper', 'torchvision'"),
    (lambda: diagrams.alexnet_two_gpu("torchvision"), "one GPU.*'paper'"),
    (lambda: diagrams.vgg_stage("C"), "'A', 'B', 'D', 'E'"),
    (lambda: diagrams.vgg_stage("D", 6), "stages 1 to 5"),
    (lambda: diagrams.vgg_stage("D", 0), "stages 1 to 5"),
    (lambda: diagrams.inception_module("6a"), "3a, 3b, 4a, 4b, 4c, 4d, 4e, 5a, 5b"),
    (lambda: diagrams.inception_module("3a", "keras"), "'paper', 'torchvision'"),
    (lambda: diagrams.residual_block("wide"), "'basic', 'bottleneck'"),
    (lambda: diagrams.residual_block("basic", stride=3), "stride 1 or 2"),
    (lambda: diagrams.dense_block(config="densenet100"), "'densenet121', 'densenet169'"),
    (lambda: diagrams.dense_block(n_layers=0), "n_layers"),
    (lambda: diagrams.depthwise_separable(0), "layers 1 to 13"),
    (lambda: diagrams.depthwise_separable(14), "layers 1 to 13"),
    (lambda: diagrams.mbconv(6, 7), r"EfficientNet-B0.*\(1, 3\), \(6, 3\), \(6, 5\)"),
    (lambda: diagrams.mbconv(6, 5, se=False), r"MobileNetV2.*\(1, 3\), \(6, 3\)"),
    (lambda: diagrams.mbconv(4, 3), r"expand=4, kernel=3"),
    (lambda: diagrams.convnext_block("convnext_huge"), "'convnext_tiny', 'convnext_small'"),
    (lambda: diagrams.convnext_block(stage=0), "stages 1 to 4"),
    (lambda: diagrams.convnext_block(stage=5), "stages 1 to 4"),
    (lambda: diagrams.transformer_block("vit_h_14"), "'vit_b_16', 'vit_b_32', 'vit_tiny'"),
])
def test_invalid_arguments_name_the_valid_ones(call, message):
    with pytest.raises(ValueError, match=message):
        call()
