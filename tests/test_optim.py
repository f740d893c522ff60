"""SGD, AdamW and CosineSchedule: against hand-rolled references on a quadratic, against
torch.optim when torch is installed, and state_dict round trips that continue bit for bit."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from gee_ref.autograd import Tensor
from gee_ref.optim import SGD, AdamW, CosineSchedule

SHAPES = [(3, 4), (5,), ()]


def quadratic(seed):
    """A diagonal quadratic f = sum_i 0.5 * a_i * (x_i - c_i)^2 over parameters of SHAPES:
    (starting values, curvatures a, centres c)."""
    rng = np.random.default_rng(seed)
    x0 = [rng.normal(size=s) for s in SHAPES]
    a = [rng.uniform(0.5, 2.0, size=s) for s in SHAPES]
    c = [rng.normal(size=s) for s in SHAPES]
    return x0, a, c


def gradients(xs, a, c):
    return [ai * (x - ci) for x, ai, ci in zip(xs, a, c)]


def make_params(x0, dtype=np.float64):
    return [Tensor(np.array(x, dtype=dtype), requires_grad=True) for x in x0]


def skipped(step, i):
    """Parameter 1 has no gradient on every third step (the optimiser must skip it)."""
    return i == 1 and step % 3 == 2


def run(opt, params, a, c, steps, first_step=0, lrs=None):
    for k in range(first_step, first_step + steps):
        if lrs is not None:
            opt.lr = lrs[k]
        opt.zero_grad()
        for i, (p, g) in enumerate(zip(params, gradients([p.data for p in params], a, c))):
            if not skipped(k, i):
                p.grad = g.astype(p.data.dtype)
        opt.step()
    return [p.data.copy() for p in params]


def reference_sgd(x0, a, c, steps, lrs, momentum, nesterov, weight_decay):
    xs = [x.copy() for x in x0]
    bufs = [np.zeros_like(x) for x in x0]
    for k in range(steps):
        gs = gradients(xs, a, c)
        for i in range(len(xs)):
            if skipped(k, i):
                continue
            d = gs[i] + weight_decay * xs[i]
            bufs[i] = momentum * bufs[i] + d
            step = d + momentum * bufs[i] if nesterov else bufs[i]
            xs[i] = xs[i] - lrs[k] * step
    return xs


def reference_adamw(x0, a, c, steps, lrs, b1, b2, eps, wd):
    xs = [x.copy() for x in x0]
    ms = [np.zeros_like(x) for x in x0]
    vs = [np.zeros_like(x) for x in x0]
    ts = [0] * len(xs)
    for k in range(steps):
        gs = gradients(xs, a, c)
        for i in range(len(xs)):
            if skipped(k, i):
                continue
            ts[i] += 1
            xs[i] = xs[i] - lrs[k] * wd * xs[i]
            ms[i] = b1 * ms[i] + (1 - b1) * gs[i]
            vs[i] = b2 * vs[i] + (1 - b2) * gs[i] ** 2
            m_hat = ms[i] / (1 - b1 ** ts[i])
            v_hat = vs[i] / (1 - b2 ** ts[i])
            xs[i] = xs[i] - lrs[k] * m_hat / (np.sqrt(v_hat) + eps)
    return xs


STEPS = 25
LRS = [0.05 * (1 + 0.5 * math.sin(k)) for k in range(2 * STEPS)]  # lr changes every step
SGD_CASES = [(0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 0.0), (0.5, False, 0.1), (0.8, True, 0.05)]


@pytest.mark.parametrize("momentum,nesterov,weight_decay", SGD_CASES)
def test_sgd_matches_hand_rolled_reference(momentum, nesterov, weight_decay):
    x0, a, c = quadratic(1)
    params = make_params(x0)
    got = run(SGD(params, lr=LRS[0], momentum=momentum, nesterov=nesterov, weight_decay=weight_decay),
              params, a, c, STEPS, lrs=LRS)
    want = reference_sgd(x0, a, c, STEPS, LRS, momentum, nesterov, weight_decay)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("betas,eps,weight_decay", [((0.9, 0.999), 1e-8, 0.01), ((0.5, 0.9), 1e-3, 0.0),
                                                     ((0.0, 0.99), 1e-8, 0.2)])
def test_adamw_matches_hand_rolled_reference(betas, eps, weight_decay):
    x0, a, c = quadratic(2)
    params = make_params(x0)
    got = run(AdamW(params, lr=LRS[0], betas=betas, eps=eps, weight_decay=weight_decay),
              params, a, c, STEPS, lrs=LRS)
    want = reference_adamw(x0, a, c, STEPS, LRS, *betas, eps, weight_decay)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_sgd_and_adamw_reach_the_minimum_of_the_quadratic():
    x0, a, c = quadratic(3)
    for opt_class, kwargs in ((SGD, dict(lr=0.3, momentum=0.5)), (SGD, dict(lr=0.3, momentum=0.5, nesterov=True)),
                              (AdamW, dict(lr=0.05, weight_decay=0.0))):
        params = make_params(x0)
        opt = opt_class(params, **kwargs)
        schedule = CosineSchedule(kwargs["lr"], total_steps=400, warmup_steps=10)
        final = run(opt, params, a, c, 400, lrs=[schedule.lr_at(k) for k in range(400)])
        for f, ci in zip(final, c):
            np.testing.assert_allclose(f, ci, atol=1e-3, err_msg=opt_class.__name__)


def test_float32_parameters_stay_float32_in_place():
    x0, a, c = quadratic(4)
    params = make_params(x0, np.float32)
    arrays = [p.data for p in params]
    for opt in (SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01), AdamW(params)):
        run(opt, params, a, c, 3)
    for p, arr in zip(params, arrays):
        assert p.data is arr and p.data.dtype == np.float32


def test_parameter_without_gradient_is_untouched():
    p, q = make_params([np.ones(3), np.ones(2)])
    for opt in (SGD([p, q], lr=0.1, momentum=0.9, weight_decay=0.5), AdamW([p, q], lr=0.1, weight_decay=0.5)):
        p.grad, q.grad = np.ones(3), None
        opt.step()
        assert np.all(q.data == 1.0) and np.all(p.data < 1.0)
        opt.zero_grad()
        assert p.grad is None and q.grad is None
    assert AdamW([p, q]).steps == [0, 0]


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: AdamW(ps, lr=0.05, betas=(0.8, 0.99), weight_decay=0.05),
])
def test_state_dict_round_trip_continues_identically(make):
    x0, a, c = quadratic(5)
    params = make_params(x0, np.float32)
    opt = make(params)
    run(opt, params, a, c, 7)
    state = opt.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    snapshot = [p.data.copy() for p in params]
    uninterrupted = run(opt, params, a, c, 9, first_step=7)

    resumed_params = make_params(snapshot, np.float32)
    resumed = make(resumed_params)
    resumed.lr = 123.0  # load_state_dict restores the hyperparameters too
    resumed.load_state_dict(state)
    continued = run(resumed, resumed_params, a, c, 9, first_step=7)
    for u, r in zip(uninterrupted, continued):
        np.testing.assert_array_equal(u, r)


def test_state_dict_is_a_copy():
    (p,) = make_params([np.ones(2)])
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(2)
    opt.step()
    state = opt.state_dict()
    opt.step()
    np.testing.assert_array_equal(state["momentum_buffer.0"], np.ones(2))


def test_bad_arguments_give_one_clear_error():
    (p,) = make_params([np.ones(2)])
    cases = [lambda: SGD([], lr=0.1), lambda: SGD([p], lr=-1.0), lambda: SGD([p], lr=float("nan")),
             lambda: SGD([p], lr=0.1, nesterov=True), lambda: SGD([p, p], lr=0.1),
             lambda: SGD([np.ones(2)], lr=0.1), lambda: SGD([p], lr="0.1"),
             lambda: AdamW([p], betas=(0.9, 1.0)), lambda: AdamW([p], betas=0.9), lambda: AdamW([p], eps=-1)]
    for case in cases:
        with pytest.raises(ValueError):
            case()
    opt = SGD([p], lr=0.1)
    with pytest.raises(ValueError):
        opt.lr = -0.5


def test_load_state_dict_rejects_foreign_states():
    p, q = make_params([np.ones(2), np.ones(3)])
    sgd, adamw = SGD([p, q], lr=0.1, momentum=0.9), AdamW([p, q])
    p.grad, q.grad = np.ones(2), np.ones(3)
    sgd.step()
    adamw.step()
    with pytest.raises(ValueError, match="missing"):
        sgd.load_state_dict(adamw.state_dict())
    with pytest.raises(ValueError, match="shape"):
        SGD([q, p], lr=0.1).load_state_dict(sgd.state_dict())
    with pytest.raises(ValueError, match="parameters"):
        SGD([p], lr=0.1).load_state_dict(sgd.state_dict())
    with pytest.raises(ValueError, match="unknown"):
        sgd.load_state_dict({**sgd.state_dict(), "velocity.0": np.ones(2)})
    broken = adamw.state_dict()
    del broken["exp_avg.1"]
    with pytest.raises(ValueError, match="moments"):
        adamw.load_state_dict(broken)


# torch.optim as an independent reference (optional).

def run_torch(torch, opt_class, kwargs, x0, a, c, steps, lrs):
    params = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in x0]
    opt = opt_class(params, lr=lrs[0], **kwargs)
    for k in range(steps):
        for group in opt.param_groups:
            group["lr"] = lrs[k]
        opt.zero_grad(set_to_none=True)
        for i, (p, ai, ci) in enumerate(zip(params, a, c)):
            if not skipped(k, i):
                p.grad = torch.tensor(ai) * (p.detach() - torch.tensor(ci))
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize("momentum,nesterov,weight_decay", SGD_CASES)
def test_sgd_matches_torch(momentum, nesterov, weight_decay):
    torch = pytest.importorskip("torch")
    x0, a, c = quadratic(6)
    params = make_params(x0)
    kwargs = dict(momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    got = run(SGD(params, lr=LRS[0], **kwargs), params, a, c, STEPS, lrs=LRS)
    want = run_torch(torch, torch.optim.SGD, kwargs, x0, a, c, STEPS, LRS)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("betas,eps,weight_decay", [((0.9, 0.999), 1e-8, 0.01), ((0.7, 0.95), 1e-4, 0.3)])
def test_adamw_matches_torch(betas, eps, weight_decay):
    torch = pytest.importorskip("torch")
    x0, a, c = quadratic(7)
    params = make_params(x0)
    kwargs = dict(betas=betas, eps=eps, weight_decay=weight_decay)
    got = run(AdamW(params, lr=LRS[0], **kwargs), params, a, c, STEPS, lrs=LRS)
    want = run_torch(torch, torch.optim.AdamW, kwargs, x0, a, c, STEPS, LRS)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


# CosineSchedule

def test_cosine_schedule_hand_computed_values():
    s = CosineSchedule(1.0, total_steps=10)
    assert [s.lr_at(k) for k in (0, 5, 10, 11)] == [1.0, pytest.approx(0.5), 0.0, 0.0]
    assert s.lr_at(2) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.2)))
    w = CosineSchedule(0.4, total_steps=12, warmup_steps=4, min_lr=0.1)
    assert [w.lr_at(k) for k in range(4)] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert w.lr_at(4) == pytest.approx(0.4)
    assert w.lr_at(8) == pytest.approx(0.25)   # halfway through the cosine: (0.4 + 0.1) / 2
    assert w.lr_at(12) == w(50) == 0.1


@given(base=st.floats(1e-6, 10.0), frac=st.floats(0.0, 1.0), total=st.integers(1, 500),
       warm_frac=st.floats(0.0, 1.0))
def test_cosine_schedule_is_bounded_and_monotone(base, frac, total, warm_frac):
    warmup = int(warm_frac * total)
    s = CosineSchedule(base, total, warmup, min_lr=frac * base)
    lrs = [s.lr_at(k) for k in range(total + 2)]
    assert all(0.0 < lr <= base * (1 + 1e-12) for lr in lrs[:warmup])  # warmup ignores min_lr
    assert all(frac * base * (1 - 1e-12) <= lr <= base * (1 + 1e-12) for lr in lrs[warmup:])
    assert all(x <= y for x, y in zip(lrs[:warmup], lrs[1:warmup]))
    assert all(x >= y - 1e-15 for x, y in zip(lrs[warmup:], lrs[warmup + 1:]))
    assert lrs[-1] == s.min_lr


def test_cosine_schedule_bad_arguments():
    for args in ((1.0, 0), (1.0, 10, 11), (-1.0, 10), (1.0, 10, 0, 2.0), (1.0, 10.5), (float("inf"), 10)):
        with pytest.raises(ValueError):
            CosineSchedule(*args)
    with pytest.raises(ValueError):
        CosineSchedule(1.0, 10).lr_at(-1)
