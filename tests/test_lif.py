"""LIF op (gee_ref.ops.lif) and its surrogates: finite differences on the soft op, the hard op
against a hand-written BPTT recurrence, hand-derived spike trains, PyTorch and SpikingJelly."""
import math

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from hypothesis.extra import numpy as hnp

from gee_ref import backend
from gee_ref.autograd import gradcheck
from gee_ref.autograd import Tensor, apply
from gee_ref.ops import lif, surrogate

ALPHAS = {"sigmoid": 4.0, "atan": 2.0, "rectangular": 1.0}


# --- an independent scalar reference: one neuron at a time, plain Python floats -------------

def step_and_slope(name, alpha, soft):
    """(spike function, its surrogate slope) written out for one float."""
    if name == "sigmoid":
        prim = lambda x: 1.0 / (1.0 + math.exp(-alpha * x))  # noqa: E731
        slope = lambda x: alpha * prim(x) * (1.0 - prim(x))  # noqa: E731
    elif name == "atan":
        prim = lambda x: math.atan(math.pi / 2 * alpha * x) / math.pi + 0.5  # noqa: E731
        slope = lambda x: (alpha / 2) / (1.0 + (math.pi / 2 * alpha * x) ** 2)  # noqa: E731
    else:
        prim = lambda x: min(max(x / alpha + 0.5, 0.0), 1.0)  # noqa: E731
        slope = lambda x: (1.0 / alpha) if abs(x) < alpha / 2 else 0.0  # noqa: E731
    step = prim if soft else (lambda x: 1.0 if x >= 0 else 0.0)
    return step, slope


def reference_lif(x_seq, upstream, tau, v_th, v_reset, name, alpha, detach_reset, soft):
    """Spikes, membrane H and dL/dX (L = sum(S * upstream)) by explicit BPTT per neuron."""
    step, slope = step_and_slope(name, alpha, soft)
    T = x_seq.shape[0]
    xs, us = x_seq.reshape(T, -1), upstream.reshape(T, -1)
    spikes, hs, grads = np.zeros_like(xs), np.zeros_like(xs), np.zeros_like(xs)
    for i in range(xs.shape[1]):
        v = v_reset
        for t in range(T):
            h = v + (xs[t, i] - (v - v_reset)) / tau
            s = step(h - v_th)
            v = h * (1 - s) + v_reset * s
            hs[t, i], spikes[t, i] = h, s
        dv = 0.0  # dL/dV_t; nothing after the last step
        for t in reversed(range(T)):
            h, s = hs[t, i], spikes[t, i]
            ds = us[t, i] + (0.0 if detach_reset else dv * (v_reset - h))  # V_t = H(1-S) + v_r S
            dh = ds * slope(h - v_th) + dv * (1 - s)
            grads[t, i] = dh / tau                 # dH_t/dX_t = 1/tau
            dv = dh * (1 - 1 / tau)                # dH_t/dV_{t-1} = 1 - 1/tau
    shape = x_seq.shape
    return spikes.reshape(shape), hs.reshape(shape), grads.reshape(shape)


def run_lif(x, upstream, **params):
    """Forward and backward of the op on the tape: (spikes, dL/dx)."""
    t = Tensor(x, requires_grad=True)
    y = apply(lif, t, **params)
    y.backward(upstream)
    return y.data, t.grad


lif_shapes = st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 4))


def lif_inputs(shape):
    # direct input near 2*v_th crosses the threshold within a few steps (tau = 2)
    return hnp.arrays(np.float64, shape, elements=st.floats(-1.0, 4.0, allow_nan=False))


# --- finite differences on the soft op ----------------------------------------------------

def lif_with_frozen_reset(x_seq, frozen_spikes, tau, v_th, v_reset, primitive):
    """Soft LIF whose reset uses given constant spikes: detach_reset's forward semantics, the
    function whose exact gradient (at the point the spikes were frozen) is the detached BPTT."""
    v, out = np.full_like(x_seq[0], v_reset), []
    for t in range(x_seq.shape[0]):
        h = v + (x_seq[t] - (v - v_reset)) / tau
        out.append(primitive(h - v_th))
        v = h * (1 - frozen_spikes[t]) + v_reset * frozen_spikes[t]
    return np.stack(out)


@pytest.mark.parametrize("name", ["sigmoid", "atan", "rectangular"])
@pytest.mark.parametrize("detach_reset", [False, True])
@given(data=st.data(), shape=lif_shapes, tau=st.sampled_from([2.0, 1.5, 4.0]),
       v_reset=st.sampled_from([0.0, -0.5]))
def test_soft_lif_gradient_matches_finite_differences(name, detach_reset, data, shape, tau, v_reset):
    x = data.draw(lif_inputs(shape))
    alpha = ALPHAS[name]
    params = dict(tau=tau, v_th=1.0, v_reset=v_reset, surrogate=name, alpha=alpha,
                  detach_reset=detach_reset, soft=True)
    spikes, h, _ = reference_lif(x, np.zeros_like(x), tau, 1.0, v_reset, name, alpha, detach_reset, True)
    if name == "rectangular":  # keep FD steps off the primitive's two kinks at |H - v_th| = a/2
        assume(np.abs(np.abs(h - 1.0) - alpha / 2).min() > 1e-4)
    op = lambda t: apply(lif, t, **params)  # noqa: E731
    if not detach_reset:
        assert gradcheck.check_gradients(op, [x])[0] <= 1e-6
        return
    # detach_reset: the backward is the exact gradient of the LIF whose reset spikes are constants
    primitive = lambda u: surrogate.SURROGATES[name].primitive(u, alpha)  # noqa: E731
    frozen = lambda t: Tensor(lif_with_frozen_reset(t.data, spikes, tau, 1.0, v_reset, primitive))  # noqa: E731
    upstream = np.random.default_rng(0).standard_normal(x.shape)
    analytic = gradcheck.analytic_gradients(op, [x], upstream)[0]
    numeric = gradcheck.numeric_gradients(frozen, [x], upstream)[0]
    assert gradcheck.relative_error(analytic, numeric) <= 1e-6


@pytest.mark.parametrize("name", ["sigmoid", "atan", "rectangular"])
@given(data=st.data(), shape=lif_shapes, detach_reset=st.booleans(), soft=st.booleans())
def test_lif_matches_scalar_bptt_reference(name, data, shape, detach_reset, soft):
    x = data.draw(lif_inputs(shape))
    upstream = np.random.default_rng(shape[0]).standard_normal(shape)
    params = dict(tau=2.0, v_th=1.0, v_reset=0.0, surrogate=name, alpha=ALPHAS[name],
                  detach_reset=detach_reset, soft=soft)
    spikes, grad = run_lif(x, upstream, **params)
    ref_spikes, _, ref_grad = reference_lif(x, upstream, 2.0, 1.0, 0.0, name, ALPHAS[name], detach_reset, soft)
    np.testing.assert_allclose(spikes, ref_spikes, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)
    if not soft:
        assert set(np.unique(spikes)) <= {0.0, 1.0}


# --- hand-derived cases ---------------------------------------------------------------------

@pytest.mark.parametrize("value, T, expected", [
    # H_1 = 0.75; H_2 = 0.75 + (1.5 - 0.75)/2 = 1.125 fires, V = 0; then it repeats
    (1.5, 5, [0, 1, 0, 1, 0]),
    (2.0, 4, [1, 1, 1, 1]),          # H_t = 1.0 = v_th every step: Heaviside(0) = 1
    (0.9, 6, [0, 0, 0, 0, 0, 0]),    # H_t rises towards 0.9 and never reaches 1
])
def test_hard_lif_constant_input_spike_trains(value, T, expected):
    x = np.full((T, 1, 1), value)
    spikes, _ = lif.forward(x)
    assert spikes.ravel().tolist() == expected


def test_hard_lif_with_other_tau_and_reset():
    # tau = 4, v_reset = -1, x = 3: H = -0.25, 0.3125, 0.734375, 1.05078125 (fires)
    x = np.full((4, 2), 3.0)
    spikes, _ = lif.forward(x, tau=4.0, v_reset=-1.0)
    assert spikes[:, 0].tolist() == [0, 0, 0, 1]


def test_single_step_gradient_by_hand():
    # T = 1: S = H(x/2 - 1), dS/dx = sigmoid'(0) / 2 = (4 * 1/4) / 2 = 0.5 at x = 2
    _, grad = run_lif(np.array([[2.0]]), np.ones((1, 1)))
    assert grad[0, 0] == pytest.approx(0.5, rel=1e-15)


def test_surrogate_registry_and_defaults():
    x = np.linspace(-2, 2, 9)
    for name, entry in surrogate.SURROGATES.items():
        assert entry.default_alpha == ALPHAS[name]
        assert entry.primitive(np.array([-50.0]), entry.default_alpha)[0] == pytest.approx(0.0, abs=1e-2)
        assert entry.primitive(np.array([50.0]), entry.default_alpha)[0] == pytest.approx(1.0, abs=1e-2)
        assert np.all(entry.derivative(x, entry.default_alpha) >= 0)
    # alpha=None picks the surrogate's own default
    x_seq = np.random.default_rng(0).uniform(0, 3, (3, 2, 2))
    a, _ = lif.forward(x_seq, surrogate="atan", alpha=None, soft=True)
    b, _ = lif.forward(x_seq, surrogate="atan", alpha=2.0, soft=True)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [dict(surrogate="relu"), dict(tau=0.0), dict(alpha=-1.0)])
def test_bad_parameters_raise_value_error(bad):
    with pytest.raises(ValueError):
        lif.forward(np.ones((2, 1, 3)), **bad)


def test_input_without_time_axis_raises_value_error():
    with pytest.raises(ValueError):
        lif.forward(np.ones(3))


# --- independent frameworks (skipped when absent) ------------------------------------------

def _torch_lif(torch, x, name, alpha, detach_reset):
    """The same recurrence on PyTorch autograd, with a custom Heaviside whose backward is
    the surrogate slope."""
    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u >= 0).to(u.dtype)

        @staticmethod
        def backward(ctx, g):
            (u,) = ctx.saved_tensors
            if name == "sigmoid":
                s = torch.sigmoid(alpha * u)
                return g * alpha * s * (1 - s)
            if name == "atan":
                return g * (alpha / 2) / (1 + (math.pi / 2 * alpha * u) ** 2)
            return g * (u.abs() < alpha / 2).to(u.dtype) / alpha

    v, out = torch.zeros_like(x[0]), []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) / 2.0
        s = Spike.apply(h - 1.0)
        s_reset = s.detach() if detach_reset else s
        v = h * (1 - s_reset)
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("name", ["sigmoid", "atan", "rectangular"])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_hard_lif_matches_pytorch_autograd(name, detach_reset):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.uniform(-0.5, 4.0, (6, 3, 5))
    upstream = rng.standard_normal(x.shape)
    xt = torch.tensor(x, requires_grad=True)
    st_ = _torch_lif(torch, xt, name, ALPHAS[name], detach_reset)
    st_.backward(torch.tensor(upstream))
    spikes, grad = run_lif(x, upstream, surrogate=name, alpha=ALPHAS[name], detach_reset=detach_reset)
    assert spikes.sum() > 0
    np.testing.assert_array_equal(spikes, st_.detach().numpy())
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["sigmoid", "atan"])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_hard_lif_matches_spikingjelly_lifnode(name, detach_reset):
    """DESIGN.md section 3: our LIF is SpikingJelly's LIFNode(tau=2, decay_input=True,
    v_threshold=1, v_reset=0) with surrogate.Sigmoid(alpha=4) (and ATan(alpha=2))."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import neuron, surrogate as sj_surrogate
    function = sj_surrogate.Sigmoid(alpha=4.0) if name == "sigmoid" else sj_surrogate.ATan(alpha=2.0)
    node = neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
                          surrogate_function=function, detach_reset=detach_reset, step_mode="m")
    rng = np.random.default_rng(11)
    x = rng.uniform(-0.5, 4.0, (5, 2, 3, 4))
    upstream = rng.standard_normal(x.shape)
    xt = torch.tensor(x, requires_grad=True)
    out = node(xt)
    out.backward(torch.tensor(upstream))
    spikes, grad = run_lif(x, upstream, surrogate=name, alpha=ALPHAS[name], detach_reset=detach_reset)
    assert spikes.sum() > 0
    np.testing.assert_array_equal(spikes, out.detach().numpy())
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-10, atol=1e-13)


# --- CuPy equals NumPy ----------------------------------------------------------------------

@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("name", ["sigmoid", "atan", "rectangular"])
@pytest.mark.parametrize("soft", [False, True])
def test_lif_gpu_matches_cpu(dtype, tol, name, soft):
    cupy = backend.xp_for("gpu")
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.5, 4.0, (4, 3, 2, 5)).astype(dtype)
    upstream = rng.standard_normal(x.shape).astype(dtype)
    params = dict(surrogate=name, alpha=ALPHAS[name], soft=soft)
    cpu = run_lif(x, upstream, **params)
    gpu = run_lif(cupy.asarray(x), cupy.asarray(upstream), **params)
    for c, g in zip(cpu, gpu):
        assert g.dtype == dtype
        assert gradcheck.relative_error(g, c) <= tol


# --- blocks over the neurons (CPU) ----------------------------------------------------------

@pytest.mark.parametrize("block", [1, 3, 7, 64])
@pytest.mark.parametrize("layout", ["contiguous", "features first"])
@pytest.mark.parametrize("soft, detach_reset", [(False, False), (True, False), (False, True)])
def test_neuron_blocks_change_no_bit_and_keep_the_layout(monkeypatch, block, layout, soft, detach_reset):
    rng = np.random.default_rng(block)
    x = (rng.standard_normal((3, 5, 4, 2, 3)) * 2).astype(np.float32)
    upstream = rng.standard_normal(x.shape).astype(np.float32)
    if layout == "features first":  # e.g. a Linear layer's transposed product, [T, N, F] with F outermost
        x = np.ascontiguousarray(x.reshape(3, 5, 24).transpose(2, 0, 1)).transpose(1, 2, 0)
        upstream = upstream.reshape(x.shape)
    params = dict(soft=soft, detach_reset=detach_reset, v_reset=-0.25)
    whole_spikes, whole_cache = lif.forward(x, **params)
    (whole_grad,) = lif.backward(upstream, whole_cache)
    monkeypatch.setattr(lif, "BLOCK", block)
    assert len(lif.neuron_blocks(np, x.reshape(x.shape[:2] + (-1,)).shape[1:])) > 1
    spikes, cache = lif.forward(x, **params)
    (grad,) = lif.backward(upstream, cache)
    for blocked, whole in ((spikes, whole_spikes), (cache.h_seq, whole_cache.h_seq), (grad, whole_grad)):
        assert np.array_equal(blocked, whole)
        assert blocked.strides == whole.strides == x.strides  # the next product rounds the same
