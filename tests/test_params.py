"""Parameter counts (paper eq. 2, Tables 1-2): built models against closed forms, and the CLI."""
import os
import subprocess
import sys

import pytest

from gee_ref.models import ARCHITECTURES, build_model
from gee_ref.nn import BatchNorm, GeneticConv2d, GeneticLinear
from gee_ref.measure.parameters import count_parameters, module_counts
from gee_ref.params import main, parameter_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = {"cifarnet": 16, "vgg16": 32, "resnet34": 64}  # image sizes that keep building quick


def eq2_count(model, genes):
    """Eq. 2 from each layer's geometry: g*(C_out + C_in*kh*kw) genetic, C_out*C_in*kh*kw dense."""
    total = genes * genes if model.genes is not None else 0
    for m in model.weight_layers():
        if isinstance(m, (GeneticConv2d, GeneticLinear)):
            total += genes * (m.out_features + (m.fan_in if m.owns_x_in else 0))
        else:
            total += m.out_features * m.fan_in
        total += m.out_features if getattr(m, "b", None) is not None else 0
    return total + sum(2 * m.num_features for m in model.modules() if isinstance(m, BatchNorm))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("scope", ["all", "convs", "all_but_classifier", "hidden"])
def test_every_architecture_counts_eq2(arch, scope):
    size = SMALL.get(arch)
    model = build_model(arch, genes=7, scope=scope, image_size=size, time_steps=1)
    assert count_parameters(model) == eq2_count(model, 7)
    rows = module_counts(model)
    assert sum(count for _, _, count in rows) == count_parameters(model)


def resnet19_layout(classes):
    """(C_out, C_in, k, genetic under scope "convs") for ResNet-19 (tdBN), written out by hand."""
    layers = [(128, 3, 3, True)]
    c_in = 128
    for c_out, blocks in ((128, 3), (256, 3), (512, 2)):
        for b in range(blocks):
            layers += [(c_out, c_in, 3, True), (c_out, c_out, 3, True)]
            if c_in != c_out:
                layers.append((c_out, c_in, 1, False))
            c_in = c_out
    return layers, [(256, 512, False), (classes, 256, True)]  # (out, in, bias): BN follows the hidden FC


@pytest.mark.parametrize("classes", [10, 100])
def test_resnet19_counts_against_hand_written_layout(classes):
    convs, fcs = resnet19_layout(classes)
    bn = sum(2 * c_out for c_out, *_ in convs) + 2 * 256  # and the BN of the hidden FC
    fc = sum(o * i + (o if bias else 0) for o, i, bias in fcs)
    dense = sum(o * i * k * k for o, i, k, _ in convs) + bn + fc
    g = 100
    genetic = g * g + bn + fc + sum(g * (o + i * k * k) if gen else o * i * k * k for o, i, k, gen in convs)
    assert count_parameters(build_model("resnet19", genetic=False, num_classes=classes)) == dense
    assert count_parameters(build_model("resnet19", genes=g, num_classes=classes)) == genetic
    assert (dense, genetic) == {10: (12_698_250, 4_340_390), 100: (12_721_380, 4_363_520)}[classes]


def vgg8_layout(width, channels, side, classes):
    """(C_out, fan_in, bias) of vgg8's weight layers, written out by hand; and its BN widths."""
    w = width
    convs = [(w, channels), (w, w), (2 * w, w), (2 * w, 2 * w), (4 * w, 2 * w), (4 * w, 4 * w)]
    layers = [(o, 9 * i, False) for o, i in convs]
    layers += [(8 * w, 4 * w * (side // 8) ** 2, False), (classes, 8 * w, True)]
    return layers, [o for o, _ in convs] + [8 * w]


def resnet14_layout(width, channels, classes):
    """(C_out, fan_in, bias, genetic under scope "convs") of resnet14's weight layers, by hand; BN widths."""
    w = width
    layers = [(w, 9 * channels, False, True)]
    norms = [w]
    c_in = w
    for c_out in (w, 2 * w, 4 * w):
        for _ in range(2):
            layers += [(c_out, 9 * c_in, False, True), (c_out, 9 * c_out, False, True)]
            norms += [c_out, c_out]
            if c_in != c_out:
                layers.append((c_out, c_in, False, False))
                norms.append(c_out)
            c_in = c_out
    return layers + [(classes, 4 * w, True, False)], norms


@pytest.mark.parametrize("width,channels,side,classes,genes", [(1, 1, 8, 3, 2), (3, 3, 16, 10, 4),
                                                               (16, 3, 32, 10, 16), (5, 1, 24, 7, 8)])
def test_small_nets_count_against_hand_written_layouts(width, channels, side, classes, genes):
    common = dict(width=width, in_channels=channels, image_size=side, num_classes=classes, time_steps=1)
    layers, norms = vgg8_layout(width, channels, side, classes)  # scope "all": every layer genetic
    bias, bn = sum(o for o, _, b in layers if b), sum(2 * c for c in norms)
    assert count_parameters(build_model("vgg8", genetic=False, **common)) == \
           sum(o * i for o, i, _ in layers) + bias + bn
    assert count_parameters(build_model("vgg8", genes=genes, **common)) == \
           genes * genes + sum(genes * (o + i) for o, i, _ in layers) + bias + bn
    layers, norms = resnet14_layout(width, channels, classes)
    bias, bn = sum(o for o, _, b, _ in layers if b), sum(2 * c for c in norms)
    assert count_parameters(build_model("resnet14", genetic=False, **common)) == \
           sum(o * i for o, i, _, _ in layers) + bias + bn
    assert count_parameters(build_model("resnet14", genes=genes, **common)) == \
           genes * genes + sum(genes * (o + i) if gen else o * i for o, i, _, gen in layers) + bias + bn


def test_width_scales_the_counts_as_the_layout_says():
    """Doubling w: the inner layers (3x3 convs after the stem, the hidden FC) hold 4x the dense
    weights (both of their sides scale with w) and 2x the genetic encodings (g (C_out + fan_in)
    is linear in w)."""
    def weights(model):
        return sum(int(p.size) for m in model.weight_layers() for name, p in m._parameters.items()
                   if p is not None and name != "b" and m.role in ("conv", "hidden_fc"))

    for arch in ("vgg8", "resnet14"):
        dense = [weights(build_model(arch, genetic=False, width=w, time_steps=1)) for w in (4, 8)]
        genetic = [weights(build_model(arch, genes=5, width=w, time_steps=1)) for w in (4, 8)]
        assert dense[1] == 4 * dense[0] and genetic[1] == 2 * genetic[0], arch


def test_dense_counts_of_the_paper_architectures():
    # ResNet-34 for ImageNet: torchvision's resnet34 has 21,797,672 parameters (paper: 21.79M)
    assert count_parameters(build_model("resnet34", genetic=False)) == 21_797_672
    vgg_convs = [(64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256),
                 (512, 256)] + [(512, 512)] * 5
    vgg = sum(9 * o * i + 2 * o for o, i in vgg_convs) + 512 * 4096 + 4096 + 4096 * 4096 + 4096 + 40970
    assert count_parameters(build_model("vgg16", genetic=False)) == vgg  # 33.6M, paper ref [37]
    net_convs = [(128, 3), (256, 128), (512, 256), (1024, 512), (512, 1024)]
    cifarnet = sum(9 * o * i + 2 * o for o, i in net_convs) + 512 * 4 * 4 * 1024 + 1024 + 512 * 1025 + 5130
    assert count_parameters(build_model("cifarnet", genetic=False, image_size=16)) == cifarnet
    digits = 9 * 32 + 64 + 288 * 64 + 128 + 128 * 1024 + 256 + 1290  # the FC before BN has no bias
    assert count_parameters(build_model("digits", genetic=False)) == digits


def test_table_rows_add_up_and_name_g_once():
    dense = build_model("digits", genetic=False)
    genetic = build_model("digits", genes=16, share_encodings=True)
    table = parameter_table(dense, genetic)
    assert sum(r[4] for r in table["rows"]) == table["dense"] == count_parameters(dense)
    assert sum(r[5] for r in table["rows"]) == table["genetic"] == count_parameters(genetic)
    assert [r for r in table["rows"] if r[1] == "gene matrix G"] == [("genes", "gene matrix G", "16x16", 0, 0, 256)]
    classifier = table["rows"][-1]
    assert classifier[1] == "genetic fc (x_in chained)"  # FC 128 -> 10 reuses FC 1024 -> 128's X_out
    assert classifier[5] == 16 * 10 + 10 and classifier[4] == 1280 + 10


def test_cli_without_arch_lists_every_architecture(capsys):
    main([])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["architecture", "input"] and len(lines) == 2 + len(ARCHITECTURES)
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert sorted(rows) == sorted(ARCHITECTURES)
    for arch in ("vgg8", "resnet14", "resnet19"):
        dense = count_parameters(build_model(arch, genetic=False))
        genetic = count_parameters(build_model(arch))
        assert rows[arch][5:7] == [f"{dense:,}", f"{genetic:,}"], arch
    assert rows["vgg8"][2] == "16" and rows["digits"][2] == "-"


def test_cli_width_changes_the_table(capsys):
    main(["--arch", "resnet14", "--width", "8", "--genes", "4"])
    out = capsys.readouterr().out
    assert "width 8" in out
    assert f"{count_parameters(build_model('resnet14', genes=4, width=8)):,}" in out


def test_cli_prints_table_and_totals(capsys):
    main(["--arch", "resnet19", "--genes", "100", "--classes", "100"])
    out = capsys.readouterr().out
    assert "total" in out and "12,721,380" in out and "4,363,520" in out
    assert out.count("gene matrix G") == 1 and "34.30%" in out


@pytest.mark.parametrize("args,message", [
    (["--arch", "alexnet"], "invalid choice"),
    (["--arch", "digits", "--genes", "0"], "genes must be a positive int"),
    (["--arch", "digits", "--genes", "many"], "invalid int value"),
    (["--arch", "digits", "--width", "8"], "digits has no width option"),
    (["--arch", "vgg8", "--width", "0"], "width must be a positive int"),
    (["--arch", "vgg8", "--image-size", "20"], "divisible by 8"),
    (["--genes", "8"], "need --arch"),
])
def test_cli_bad_arguments_give_one_line_and_exit_2(args, message):
    result = subprocess.run([sys.executable, "-m", "gee_ref.params", *args], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error:")
