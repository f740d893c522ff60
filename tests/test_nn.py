"""gee_ref.nn: module mechanics, genetic layers (eq. 1-3, 9), LIF module, record hooks, gradients."""
import numpy
import pytest

from gee_ref import autograd, backend
from gee_ref.autograd import functional
from gee_ref.autograd import gradcheck
from gee_ref.autograd import Tensor
from gee_ref.measure.parameters import count_parameters, module_counts
from gee_ref.models import build_model
from gee_ref.nn import (LIF, BasicBlock, Conv2d, GeneBank, GeneticConv2d, GeneticLinear,
                        LayerFactory, Linear, Module, Parameter, Sequential, kaiming_sigma,
                        repeat_time, set_soft_lif, set_time_steps, truncation_variance_factor)

requires_gpu = pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")


class TwoLayers(Module):
    """A GeneBank and two genetic Linear layers, optionally chained (eq. 3)."""

    def __init__(self, genes=4, sizes=(5, 6, 3), chained=False, dtype=numpy.float64):
        super().__init__()
        self.genes = GeneBank(genes, dtype=dtype)
        factory = LayerFactory(self.genes, scope="all", share_encodings=chained, rng=backend.rng(1), dtype=dtype)
        self.layers = Sequential(factory.linear("hidden_fc", sizes[0], sizes[1]),
                                 factory.linear("classifier", sizes[1], sizes[2]))

    def forward(self, x):
        return self.layers(x)


def substitute(model, replacements):
    """Make every module of ``model`` read the Tensors in ``replacements`` (id(Parameter) -> Tensor)."""
    undo = []
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if id(p) in replacements:
                undo.append((module, name, p))
                module._parameters[name] = replacements[id(p)]
    return undo


def restore(undo):
    for module, name, p in undo:
        module._parameters[name] = p


def check_model_gradients(model, loss_of_output, x, params, max_error=1e-6):
    """Finite differences vs the tape for the input and the listed Parameters of ``model``."""
    arrays = [x] + [p.data.copy() for p in params]

    def fn(x_t, *tensors):
        undo = substitute(model, {id(p): t for p, t in zip(params, tensors)})
        try:
            return loss_of_output(model(x_t))
        finally:
            restore(undo)

    errors = gradcheck.check_gradients(fn, arrays)
    assert max(errors.values()) <= max_error, errors
    return errors


# --- Module mechanics ---------------------------------------------------------------------

def test_shared_gene_matrix_is_listed_once_and_named_by_the_bank():
    model = TwoLayers()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["genes.G", "layers.0.x_out", "layers.0.x_in", "layers.0.b",
                     "layers.1.x_out", "layers.1.x_in", "layers.1.b"]
    assert sum(p is model.genes.G for p in model.parameters()) == 1
    assert model.layers[0].gene_bank.G is model.layers[1].gene_bank.G
    assert count_parameters(model) == 4 * 4 + 4 * (6 + 5) + 6 + 4 * (3 + 6) + 3


def test_shared_gene_matrix_gradient_is_the_sum_of_both_layers():
    model = TwoLayers()
    x = numpy.random.default_rng(0).standard_normal((7, 5))
    model(Tensor(x)).sum().backward()
    total = model.genes.G.grad.copy()
    # the same loss with the second layer's G detached gives the first layer's share alone
    a = model.layers[0]
    h = functional.genetic_linear(Tensor(x), a.x_out, model.genes.G, a.x_in, a.b)
    b = model.layers[1]
    model.zero_grad()
    functional.genetic_linear(h, b.x_out, Tensor(model.genes.G.data), b.x_in, b.b).sum().backward()
    first = model.genes.G.grad.copy()
    model.zero_grad()
    functional.genetic_linear(h.detach(), b.x_out, model.genes.G, b.x_in, b.b).sum().backward()
    second = model.genes.G.grad.copy()
    numpy.testing.assert_allclose(total, first + second, rtol=1e-12)
    assert numpy.abs(first).max() > 0 and numpy.abs(second).max() > 0


def test_chained_encodings_share_one_parameter_object():
    model = TwoLayers(chained=True)
    a, b = model.layers[0], model.layers[1]
    assert b.x_in is a.x_out and not b.owns_x_in and a.owns_x_in
    names = [n for n, _ in model.named_parameters()]
    assert "layers.1.x_in" not in names and names.count("layers.0.x_out") == 1
    assert count_parameters(model) == 4 * 4 + 4 * (6 + 5) + 6 + 4 * 3 + 3
    assert {name: c for name, _, c in module_counts(model)}["layers.1"] == 4 * 3 + 3  # eq. 2 with X_in chained


def test_chaining_needs_matching_sizes():
    bank = GeneBank(3)
    first = GeneticLinear(4, 5, bank)
    with pytest.raises(ValueError, match="chained"):
        GeneticLinear(6, 2, bank, x_in_source=first)
    factory = LayerFactory(bank, share_encodings=True)
    factory.linear("hidden_fc", 4, 5)
    assert factory.linear("classifier", 6, 2).owns_x_in  # 5 != 6: no chain, own X_in


def test_state_dict_round_trip_copies_parameters_and_buffers():
    a = build_model("digits", seed=0, dtype=numpy.float64, time_steps=2)
    b = build_model("digits", seed=1, dtype=numpy.float64, time_steps=2)
    x = numpy.random.default_rng(0).random((4, 1, 8, 8))
    for _ in range(30):  # training mode: BN running statistics move towards x's
        a(x)
    state = a.state_dict()
    assert "genes.G" in state and "stem.1.running_mean" in state and "stem.1.running_var" in state
    assert all(isinstance(v, numpy.ndarray) for v in state.values())
    state["genes.G"][0, 0] += 100.0  # a copy: the model is untouched
    assert a.genes.G.data[0, 0] != state["genes.G"][0, 0]
    state["genes.G"][0, 0] -= 100.0
    a.eval(), b.eval()
    with autograd.no_grad():
        assert not numpy.allclose(a(x).data, b(x).data)
        b.load_state_dict(state)
        numpy.testing.assert_array_equal(a(x).data, b(x).data)


def test_load_state_dict_refuses_missing_unexpected_and_misshapen():
    model = TwoLayers()
    state = model.state_dict()
    with pytest.raises(ValueError, match="missing"):
        model.load_state_dict({k: v for k, v in state.items() if k != "genes.G"})
    with pytest.raises(ValueError, match="unexpected"):
        model.load_state_dict({**state, "extra": numpy.zeros(1)})
    with pytest.raises(ValueError, match="shape"):
        model.load_state_dict({**state, "genes.G": numpy.zeros((3, 3))})


def test_train_eval_reach_every_module_and_change_batch_norm():
    model = build_model("digits", dtype=numpy.float64, time_steps=2)
    x = numpy.random.default_rng(0).random((4, 1, 8, 8))
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    with autograd.no_grad():
        evaluated = model(x).data
        model.train()
        trained = model(x).data
    assert not numpy.allclose(evaluated, trained)


def test_to_cpu_keeps_numpy_and_unknown_device_is_refused():
    model = TwoLayers()
    assert model.to("cpu") is model
    assert all(type(p.data) is numpy.ndarray for p in model.parameters())
    with pytest.raises(ValueError, match="unknown device"):
        model.to("tpu")


@pytest.mark.skipif(backend.gpu_available(), reason="checks the error without a GPU")
def test_to_gpu_without_gpu_is_a_clear_error():
    with pytest.raises(backend.DeviceUnavailableError):
        TwoLayers().to("gpu")


@requires_gpu
def test_to_gpu_gives_the_same_logits():
    model = build_model("digits", dtype=numpy.float64, time_steps=2).eval()
    x = numpy.random.default_rng(0).random((3, 1, 8, 8))
    with autograd.no_grad():
        cpu = model(x).numpy()
        model.to("gpu")
        assert model.device == "gpu" and all(backend.device_of(b) == "gpu" for b in model.buffers())
        numpy.testing.assert_allclose(model(x).numpy(), cpu, rtol=1e-10, atol=1e-12)


def test_zero_grad_and_missing_super_init():
    model = TwoLayers()
    model(Tensor(numpy.ones((2, 5)))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())

    class Broken(Module):
        def __init__(self):
            self.w = Parameter(numpy.zeros(2))

    with pytest.raises(RuntimeError, match="super"):
        Broken()


def test_sequential_rejects_non_modules():
    with pytest.raises(ValueError, match="Modules"):
        Sequential(LIF(), 3)


# --- initialisation (eq. 9) ---------------------------------------------------------------

def test_truncation_variance_factor_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for bound in (1.0, 2.0, 3.0):
        assert truncation_variance_factor(bound) == pytest.approx(stats.truncnorm(-bound, bound).var(), rel=1e-12)


def test_kaiming_sigma_closed_form():
    c = truncation_variance_factor(2.0)
    G = numpy.eye(10)
    sigma = kaiming_sigma(90, G)
    assert c * c * sigma ** 4 * 10 == pytest.approx(2.0 / 90, rel=1e-12)
    chained = kaiming_sigma(90, 2 * G, sigma_in=0.3)
    assert c * c * chained ** 2 * 0.3 ** 2 * 40 == pytest.approx(2.0 / 90, rel=1e-12)
    with pytest.raises(ValueError):
        kaiming_sigma(0, G)


def test_genetic_weight_has_kaiming_variance_at_start():
    bank = GeneBank(64, dtype=numpy.float64)
    layer = GeneticConv2d(64, 256, 3, bank, rng=backend.rng(3), dtype=numpy.float64)
    bound = 2.0 * layer.sigma
    assert numpy.abs(layer.x_out.data).max() <= bound and numpy.abs(layer.x_in.data).max() <= bound
    assert numpy.array_equal(bank.G.data, numpy.eye(64))
    assert layer.weight().var() == pytest.approx(2.0 / 576, rel=0.08)


def test_chained_layer_weight_has_kaiming_variance():
    bank = GeneBank(48, dtype=numpy.float64)
    first = GeneticLinear(300, 400, bank, rng=backend.rng(4), dtype=numpy.float64)
    second = GeneticLinear(400, 350, bank, x_in_source=first, rng=backend.rng(5), dtype=numpy.float64)
    assert second.sigma != first.sigma
    assert second.weight().var() == pytest.approx(2.0 / 400, rel=0.1)


def test_dense_twins_have_kaiming_normal_weights():
    conv = Conv2d(64, 128, 3, rng=backend.rng(0), dtype=numpy.float64)
    assert conv.w.data.std() == pytest.approx((2.0 / 576) ** 0.5, rel=0.02)
    fc = Linear(500, 300, rng=backend.rng(0), dtype=numpy.float64)
    assert fc.w.data.std() == pytest.approx((2.0 / 500) ** 0.5, rel=0.02) and not fc.b.data.any()


def test_gene_bank_rejects_bad_sizes_and_shapes():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError):
            GeneBank(bad)
    with pytest.raises(ValueError, match="shape"):
        GeneBank(3).assign(numpy.zeros((2, 2)))


# --- time axis and LIF --------------------------------------------------------------------

def test_repeat_time_values_and_gradient():
    x = numpy.random.default_rng(0).standard_normal((2, 3))
    y = repeat_time(Tensor(x), 3).data
    numpy.testing.assert_array_equal(y, numpy.concatenate([x, x, x]))
    errors = gradcheck.check_gradients(lambda t: repeat_time(t, 3), [x])
    assert errors[0] <= 1e-9
    with pytest.raises(ValueError):
        repeat_time(Tensor(x), 0)


def test_lif_module_splits_time_and_records_spikes():
    lif = LIF(time_steps=3)
    x = numpy.random.default_rng(0).uniform(0, 4, size=(3 * 2, 4, 2, 2))
    lif.record(True)
    out = lif(Tensor(x))
    assert out.shape == x.shape
    assert lif.last_spikes.shape == (3, 2, 4, 2, 2)
    assert set(numpy.unique(lif.last_spikes)) <= {0.0, 1.0} and lif.last_spikes.any()
    numpy.testing.assert_array_equal(out.data, lif.last_spikes.reshape(x.shape))
    with pytest.raises(ValueError, match="time steps"):
        lif(Tensor(x[:5]))
    with pytest.raises(ValueError, match="time_steps"):
        LIF()(Tensor(x))


def test_soft_switch_reaches_every_lif():
    model = build_model("digits", time_steps=2)
    model.set_soft_lif(True)
    assert all(m.soft for m in model.lif_layers()) and len(model.lif_layers()) == 3
    set_soft_lif(model, False)
    assert not any(m.soft for m in model.lif_layers())


# --- gradients, float64, soft LIF ---------------------------------------------------------

def test_genetic_basic_block_gradients_match_finite_differences():
    dtype = numpy.float64
    bank = GeneBank(3, dtype=dtype)
    factory = LayerFactory(bank, scope="all", rng=backend.rng(2), dtype=dtype)

    class Holder(Module):
        def __init__(self):
            super().__init__()
            self.genes = bank
            self.block = BasicBlock(factory, 2, 3, stride=2)

        def forward(self, x):
            return self.block(x)

    model = Holder()
    set_time_steps(model, 2)
    set_soft_lif(model, True)
    rng = numpy.random.default_rng(0)
    for p in model.parameters():  # stronger encodings so the soft spikes are far from flat
        p.data[...] = rng.standard_normal(p.shape)
    x = rng.uniform(0.5, 2.0, size=(2 * 2, 2, 4, 4))
    block = model.block
    params = [bank.G, block.conv1.x_out, block.conv2.x_in, block.shortcut[0].x_in, block.bn1.gamma]
    assert isinstance(block.shortcut[0], GeneticConv2d)
    check_model_gradients(model, lambda y: y, x, params)


def test_digits_network_gradients_to_cross_entropy_match_finite_differences():
    model = build_model("digits", genes=3, image_size=4, channels=(2, 3), hidden=4, time_steps=2,
                        dtype=numpy.float64, seed=3)
    model.set_soft_lif(True)
    rng = numpy.random.default_rng(1)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    labels = numpy.array([0, 3, 9])
    x = rng.uniform(0.0, 1.0, size=(3, 1, 4, 4))
    layers = model.genetic_layers()
    params = [model.genes.G, layers[0].x_in, layers[1].x_out, layers[2].x_out, layers[3].x_in,
              layers[3].b, model.stem[1].beta]
    check_model_gradients(model, lambda y: functional.cross_entropy(y, labels), x, params)


# --- record hooks (eq. 17, Table 3) -------------------------------------------------------

def test_record_keeps_rates_spikes_and_macs():
    model = build_model("digits", time_steps=3, dtype=numpy.float64)
    x = numpy.random.default_rng(0).random((5, 1, 8, 8))
    layers = model.weight_layers()
    model(x)
    assert all(layer.last_input_rate is None for layer in layers)
    model.record(True)
    model(x)
    assert layers[0].last_input_rate == pytest.approx(x.mean())
    for layer in layers[1:]:  # inputs are spikes
        assert 0.0 <= layer.last_input_rate <= 1.0
    for lif in model.lif_layers():
        assert lif.last_spikes.shape[:2] == (3, 5)
        assert set(numpy.unique(lif.last_spikes)) <= {0.0, 1.0}
    rates = [lif.last_spikes.mean() for lif in model.lif_layers()]
    assert [layer.last_input_rate for layer in layers[1:]] == pytest.approx(rates)
    # per sample and time step: conv 1->32 3x3 on 8x8, conv 32->64 3x3 s2 -> 4x4, FC 1024->128, FC 128->10
    assert [layer.last_macs_per_sample for layer in layers] == [32 * 9 * 64, 64 * 288 * 16, 1024 * 128, 1280]
    assert layers[1].dense_macs((8, 8)) == 64 * 288 * 16
    assert layers[1].factored_macs((8, 8)) == 16 * 32 * (288 + 32 + 64)
    model.record(False)
    model(x[:2])
    assert model.lif_layers()[0].last_spikes.shape[1] == 5  # not overwritten
