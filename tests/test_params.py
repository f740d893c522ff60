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
    return layers, [(256, 512), (classes, 256)]


@pytest.mark.parametrize("classes", [10, 100])
def test_resnet19_counts_against_hand_written_layout(classes):
    convs, fcs = resnet19_layout(classes)
    bn = sum(2 * c_out for c_out, *_ in convs)
    fc = sum(o * i + o for o, i in fcs)
    dense = sum(o * i * k * k for o, i, k, _ in convs) + bn + fc
    g = 100
    genetic = g * g + bn + fc + sum(g * (o + i * k * k) if gen else o * i * k * k for o, i, k, gen in convs)
    assert count_parameters(build_model("resnet19", genetic=False, num_classes=classes)) == dense
    assert count_parameters(build_model("resnet19", genes=g, num_classes=classes)) == genetic
    assert (dense, genetic) == {10: (12_697_994, 4_340_134), 100: (12_721_124, 4_363_264)}[classes]


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


def test_cli_prints_table_and_totals(capsys):
    main(["--arch", "resnet19", "--genes", "100", "--classes", "100"])
    out = capsys.readouterr().out
    assert "total" in out and "12,721,124" in out and "4,363,264" in out
    assert out.count("gene matrix G") == 1 and "34.30%" in out


@pytest.mark.parametrize("args,message", [
    (["--arch", "alexnet"], "invalid choice"),
    (["--arch", "digits", "--genes", "0"], "genes must be a positive int"),
    (["--arch", "digits", "--genes", "many"], "invalid int value"),
])
def test_cli_bad_arguments_give_one_line_and_exit_2(args, message):
    result = subprocess.run([sys.executable, "-m", "gee_ref.params", *args], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error:")
