"""gee_ref.models: the registry, forward shapes, genetic structure, the once-only stem."""
import numpy
import pytest

from gee_ref import autograd
from gee_ref.autograd import functional
from gee_ref.autograd import Tensor
from gee_ref.measure.parameters import count_parameters
from gee_ref.nn.genetic import default_sigmas
from gee_ref.models import ARCHITECTURES, build_model
from gee_ref.nn import (BasicBlock, Conv2d, GeneticConv2d, GeneticLinear, Linear, WeightLayer,
                        repeat_time, split_time)

SHAPE_CASES = [  # (arch, image size, time steps, batch): small, to keep the suite fast
    ("digits", 8, 3, 2), ("cifarnet", 32, 2, 1), ("vgg16", 32, 2, 1), ("resnet18", 32, 2, 1),
    ("resnet19", 32, 2, 1), ("resnet34", 64, 1, 1),
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
