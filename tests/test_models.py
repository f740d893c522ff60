"""gee_ref.models: the registry, forward shapes, genetic structure, the once-only stem, the small
nets vgg8 and resnet14 (both forms, any divisible size, gradients, the width option's travels)."""
import json

import numpy
import pytest

from gee_ref import autograd, train
from gee_ref.autograd import functional
from gee_ref.autograd import Tensor
from gee_ref.data import datasets
from gee_ref.measure.parameters import count_parameters
from gee_ref.nn.genetic import default_sigmas
from gee_ref.models import ARCHITECTURES, build_from_config, build_model
from gee_ref.runs import training_run
from gee_ref.nn import (LIF, BasicBlock, BatchNorm, Conv2d, GeneticConv2d, GeneticLinear, Linear, WeightLayer,
                        repeat_time, split_time)
from gee_ref.storage.checkpoint import load_checkpoint
from test_nn import check_model_gradients

SMALL_NETS = ("vgg8", "resnet14")

SHAPE_CASES = [  # (arch, image size, time steps, batch): small, to keep the suite fast
    ("digits", 8, 3, 2), ("cifarnet", 32, 2, 1), ("vgg16", 32, 2, 1), ("resnet18", 32, 2, 1),
    ("resnet19", 32, 2, 1), ("resnet34", 64, 1, 1), ("vgg8", 16, 2, 2), ("resnet14", 16, 2, 2),
]


@pytest.mark.parametrize("arch,size,steps,batch", SHAPE_CASES)
def test_forward_gives_logits_per_image(arch, size, steps, batch):
    model = build_model(arch, num_classes=7, image_size=size, time_steps=steps)
    channels = ARCHITECTURES[arch].in_channels
    x = numpy.random.default_rng(0).random((batch, channels, size, size)).astype(numpy.float32)
    with autograd.no_grad():
        logits = model(x)
    assert logits.shape == (batch, 7) and logits.dtype == numpy.float32
    assert numpy.isfinite(logits.data).all()


def test_dense_twin_forward_and_layout():
    genetic = build_model("resnet18", time_steps=2)
    dense = build_model("resnet18", genetic=False, time_steps=2)
    assert dense.genes is None and dense.genetic_layers() == []
    assert [n for n, m in dense.named_modules() if isinstance(m, WeightLayer)] == \
           [n for n, m in genetic.named_modules() if isinstance(m, WeightLayer)]
    assert all(isinstance(m, (Conv2d, Linear)) for m in dense.weight_layers())
    with autograd.no_grad():
        assert dense(numpy.ones((1, 3, 32, 32), numpy.float32)).shape == (1, 10)


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown architecture 'alexnet': expected one of cifarnet"):
        build_model("alexnet")
    for bad in (0, -5, 2.0):
        with pytest.raises(ValueError, match="genes"):
            build_model("digits", genes=bad)
    with pytest.raises(ValueError, match="time_steps"):
        build_model("digits", time_steps=0)
    with pytest.raises(ValueError, match="scope"):
        build_model("digits", scope="most")
    with pytest.raises(ValueError, match="image"):
        build_model("vgg16", image_size=16)


def test_genetic_layers_in_forward_order_share_one_gene_bank():
    model = build_model("resnet19", time_steps=1)
    layers = model.genetic_layers()
    # scope "convs": the stem and the 16 3x3 convolutions of 8 blocks; shortcuts and FCs dense
    assert len(layers) == 17 and all(isinstance(m, GeneticConv2d) for m in layers)
    assert all(m.gene_bank is model.genes for m in layers) and model.genes.genes == 100
    assert layers[0].role == "stem" and all(m.role == "conv" for m in layers[1:])
    roles = [m.role for m in model.weight_layers()]
    assert roles.count("shortcut") == 2 and roles[-2:] == ["hidden_fc", "classifier"]
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 8
    every = build_model("resnet19", scope="all", time_steps=1)
    assert len(every.genetic_layers()) == len(every.weight_layers()) == 21


def test_initialise_encodings_uses_given_sigmas():
    model = build_model("digits", time_steps=2, dtype=numpy.float64)
    defaults = default_sigmas(model.genetic_layers(), model.genes.G.data)
    assert [m.sigma for m in model.genetic_layers()] == pytest.approx(defaults)
    sigmas = [0.5, 0.25, 0.125, 0.0625]
    assert model.initialise_encodings(numpy.random.default_rng(0), sigmas) == sigmas
    for layer, s in zip(model.genetic_layers(), sigmas):
        assert numpy.abs(layer.x_out.data).max() <= 2 * s
        assert layer.x_out.data.std() == pytest.approx(0.8796 * s, rel=0.1)  # sqrt(0.7737) s
    with pytest.raises(ValueError, match="4 sigmas"):
        model.initialise_encodings(numpy.random.default_rng(0), [0.1])


def test_share_encodings_chains_the_fully_connected_stack():
    model = build_model("cifarnet", share_encodings=True, scope="all", image_size=8, time_steps=1)
    fcs = [m for m in model.genetic_layers() if isinstance(m, GeneticLinear)]
    assert [m.owns_x_in for m in fcs] == [True, False, False]  # 512*1*1 -> 1024 -> 512 -> 10
    assert fcs[1].x_in is fcs[0].x_out and fcs[2].x_in is fcs[1].x_out
    sigmas = default_sigmas(model.genetic_layers(), model.genes.G.data)
    assert len(sigmas) == len(model.genetic_layers())
    plain = build_model("cifarnet", scope="all", image_size=8, time_steps=1)
    assert count_parameters(plain) - count_parameters(model) == 100 * (1024 + 512)


def test_stem_computed_once_equals_stem_run_every_time_step():
    model = build_model("resnet18", time_steps=3, dtype=numpy.float64)
    x = numpy.random.default_rng(0).random((2, 3, 16, 16))
    logits = model(Tensor(x))
    # reference: repeat the image first, run the stem on all T*N copies (what the network saves)
    h = model.body(model.stem(repeat_time(Tensor(x), 3)))
    reference = functional.mean_over_time(split_time(h, 3))
    numpy.testing.assert_allclose(logits.data, reference.data, rtol=1e-10, atol=1e-12)
    assert numpy.abs(logits.data).max() > 0


# --- the small nets: vgg8 and resnet14 ------------------------------------------------------

@pytest.mark.parametrize("arch", SMALL_NETS)
@pytest.mark.parametrize("genetic", [True, False])
@pytest.mark.parametrize("size,channels", [(8, 1), (16, 3), (24, 1), (32, 3)])
def test_small_nets_run_forward_and_backward_at_any_divisible_size(arch, genetic, size, channels):
    model = build_model(arch, genetic=genetic, genes=4, width=2, num_classes=5, in_channels=channels,
                        image_size=size, time_steps=2)
    x = Tensor(numpy.random.default_rng(0).standard_normal((3, channels, size, size)).astype(numpy.float32),
               requires_grad=True)
    logits = model(x)
    assert logits.shape == (3, 5) and numpy.isfinite(logits.data).all()
    logits.backward(numpy.ones((3, 5), numpy.float32))
    assert x.grad.shape == x.shape and numpy.abs(x.grad).max() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
    assert model.is_genetic == genetic and (model.genes is None) == (not genetic)


def test_vgg8_layout_widths_and_roles():
    model = build_model("vgg8", width=3, in_channels=1, image_size=16, time_steps=1)
    layers = model.weight_layers()
    assert [m.role for m in layers] == ["stem"] + ["conv"] * 5 + ["hidden_fc", "classifier"]
    assert all(isinstance(m, (GeneticConv2d, GeneticLinear)) for m in layers)  # scope "all"
    assert [m.out_features for m in layers] == [3, 3, 6, 6, 12, 12, 24, 10]
    assert layers[6].fan_in == 12 * 2 * 2 and layers[6].b is None  # 16 / 8 = 2; BN follows, no bias
    assert len(model.lif_layers()) == 7
    dense = build_model("vgg8", genetic=False, width=3, in_channels=1, image_size=16, time_steps=1)
    assert all(isinstance(m, (Conv2d, Linear)) for m in dense.weight_layers())


def test_resnet14_layout_widths_and_roles():
    model = build_model("resnet14", width=4, time_steps=1)
    genetic = model.genetic_layers()
    assert len(genetic) == 13 and all(isinstance(m, GeneticConv2d) for m in genetic)  # scope "convs"
    assert [m.out_features for m in genetic] == [4] + [4] * 4 + [8] * 4 + [16] * 4
    assert [m.stride for m in genetic if m.stride != (1, 1)] == [(2, 2), (2, 2)]
    shortcuts = [m for m in model.weight_layers() if m.role == "shortcut"]
    assert [(type(m), m.kernel_size, m.in_channels, m.out_channels) for m in shortcuts] == \
           [(Conv2d, (1, 1), 4, 8), (Conv2d, (1, 1), 8, 16)]
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 6
    classifier = model.weight_layers()[-1]
    assert isinstance(classifier, Linear) and classifier.fan_in == 16


@pytest.mark.parametrize("arch,size,factor", [("vgg8", 12, 8), ("vgg8", 4, 8), ("resnet14", 10, 4),
                                              ("resnet14", 6, 4)])
def test_small_nets_refuse_sizes_their_downsampling_does_not_divide(arch, size, factor):
    with pytest.raises(ValueError, match=f"{arch} needs an image_size divisible by {factor}.*got {size}"):
        build_model(arch, image_size=size)


def test_width_option_is_checked_and_only_where_a_layout_has_one():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="width must be a positive int"):
            build_model("resnet14", width=bad)
    with pytest.raises(ValueError, match="digits has no width option.*vgg8, resnet14"):
        build_model("digits", width=8)
    assert build_model("vgg8").config["width"] == ARCHITECTURES["vgg8"].width == 16
    assert "width" not in build_model("digits").config


@pytest.mark.parametrize("arch", SMALL_NETS)
def test_small_net_gradients_match_finite_differences(arch):
    """Soft LIF, float64, a tiny instance (w = 1, g = 2); every parameter drawn N(0, 1)."""
    size = 8 if arch == "vgg8" else 4
    model = build_model(arch, genes=2, width=1, num_classes=3, in_channels=1, image_size=size, time_steps=2,
                        dtype=numpy.float64, seed=4)
    model.set_soft_lif(True)
    rng = numpy.random.default_rng(5)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    labels = numpy.array([0, 2, 1])
    x = rng.uniform(0.0, 1.0, size=(3, 1, size, size))
    genetic = model.genetic_layers()
    dense = [m for m in model.weight_layers() if not isinstance(m, (GeneticConv2d, GeneticLinear))]
    norms = [m for m in model.modules() if isinstance(m, BatchNorm)]
    params = [model.genes.G, genetic[0].x_in, genetic[len(genetic) // 2].x_out, genetic[-1].x_in,
              norms[-1].gamma, norms[1].beta]
    params += [genetic[-1].b] if arch == "vgg8" else [dense[0].w, dense[-1].w, dense[-1].b]
    check_model_gradients(model, lambda y: functional.cross_entropy(y, labels), x, params)


def test_evolution_phenotype_keeps_the_genome_width():
    from gee_ref.evolution.genome import starting_genome
    from gee_ref.evolution.evaluation import EvaluationSettings, build_phenotype

    template = starting_genome(build_model("resnet14", genes=4, width=3, in_channels=1, image_size=8, time_steps=2))
    assert template.model_config["width"] == 3
    settings = EvaluationSettings(genome_template=template, data_path="unused", seed=0, val_fraction=0.2,
                                  eval_steps=1, eval_epochs=None, batch_size=8, lr=0.1)
    model = build_phenotype(settings, template.vector, seed=1, num_classes=10, image_shape=(8, 8, 1))
    assert model.config["width"] == 3 and [m.out_features for m in model.genetic_layers()][0] == 3


@pytest.mark.parametrize("arch", SMALL_NETS)
def test_genome_file_and_checkpoint_rebuild_the_same_width(arch, tmp_path, capsys):
    """A genome made on a width-2 net trains through ``train --genome``; its checkpoint's config
    rebuilds a width-2 net whose arrays have the checkpoint's shapes."""
    from gee_ref.evolution.genome import load_genome, save_genome, starting_genome

    splits, classes = datasets.digits_splits()
    (x, y), (xt, yt) = splits["train"], splits["test"]
    data = datasets.write_dataset(tmp_path / "tiny.h5", {"train": (x[:32], y[:32]), "test": (xt[:16], yt[:16])},
                                  classes, "test")
    template = build_model(arch, genes=4, width=2, in_channels=1, image_size=8, time_steps=2)
    save_genome(tmp_path / "genome.h5", starting_genome(template))
    assert load_genome(tmp_path / "genome.h5").model_config["width"] == 2
    out = tmp_path / "run"
    train.main(["--data", str(data), "--genome", str(tmp_path / "genome.h5"), "--out", str(out), "--epochs", "1",
                "--batch-size", "16", "--steps-per-epoch", "1", "--no-progress"])
    capsys.readouterr()
    tensors, meta = load_checkpoint(out / training_run.CHECKPOINT_NAME)
    config = json.loads(json.dumps(meta["config"]))
    assert config["width"] == 2
    rebuilt = build_from_config(config)
    assert rebuilt.config["width"] == 2 and count_parameters(rebuilt) == count_parameters(template)
    state = rebuilt.state_dict()
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in tensors["model"].items()}


@pytest.mark.parametrize("arch, side, batch", [(name, 16, 32) for name in SMALL_NETS] + [("resnet19", 32, 4)])
def test_the_last_hidden_lif_fires_at_initialisation(arch, side, batch):
    """Issue 14 item 8: from the dense and the calibrated genetic start, in training mode (batch
    statistics, as the first SGD step sees it), the last LIF before the classifier emits spikes on
    digits upsampled to 16x16 (32x32 for resnet19, whose head was silent before its hidden FC got
    a batch norm), and the logits are not all zero."""
    splits, _ = datasets.digits_splits()
    factor = side // 8
    images = splits["train"][0][:batch].repeat(factor, axis=1).repeat(factor, axis=2)  # nearest upsampling
    x = (images / 255.0).transpose(0, 3, 1, 2)
    x = ((x - x.mean()) / x.std()).astype(numpy.float32)
    for genetic in (True, False):
        model = build_model(arch, genetic=genetic, in_channels=1, image_size=side, time_steps=2).train()
        model.record(True)
        with autograd.no_grad():
            logits = model(x)
        last = model.lif_layers()[-1]
        assert isinstance(last, LIF) and last.last_spikes.mean() > 0.005, (arch, genetic)
        assert numpy.abs(logits.data).max() > 0, (arch, genetic)
