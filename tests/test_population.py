"""A population as a leading axis of the same ops (DESIGN.md section 2; gee_ref.nn.population): the
ops with stacked parameters match finite differences in float64, each individual's slice equals
the single-network op, a stacked network equals its networks, and evaluate_population equals
evaluate_individual one by one (float64: 1e-10 relative; float32: close)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gee_ref import autograd, backend
from gee_ref.autograd import apply, functional, gradcheck
from gee_ref.cmaes import CMAES
from gee_ref.data.datasets import default_digits_path, load_dataset
from gee_ref.evolution import evaluation as individual
from gee_ref.evolution.evaluation import evaluate_population
from gee_ref.evolution.genome import starting_genome
from gee_ref.models import build_from_config, build_model
from gee_ref.nn.population import stack_population
from gee_ref.ops import (avg_pool2d, batch_norm, conv2d, cross_entropy, genetic_conv2d, genetic_linear, linear,
                         max_pool2d)

# the population forms of the ops are the ops themselves (a leading axis P on the parameters)
population_conv2d, population_linear, population_batch_norm = genetic_conv2d, genetic_linear, batch_norm
population_cross_entropy = cross_entropy

TOLERANCE_FD = 1e-6
PATHS = ("materialised", "factored")


def _encodings(rng, size, c_out, fan_in, genes):
    return [rng.standard_normal((size, c_out, genes)), rng.standard_normal((size, genes, genes)) / np.sqrt(genes),
            rng.standard_normal((size, fan_in, genes)) / np.sqrt(genes)]


@st.composite
def conv_cases(draw):
    size, batch, c_in = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel, stride, padding = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
    side = draw(st.integers(kernel, kernel + 2))
    return (size, batch, c_in, side, draw(st.integers(1, 3)), kernel, stride, padding, draw(st.integers(1, 3)),
            draw(st.booleans()), draw(st.sampled_from(PATHS)), draw(st.integers(0, 2**16)))


def conv_arrays(case):
    size, batch, c_in, side, c_out, kernel, _, _, genes, shared, _, seed = case
    rng = np.random.default_rng(seed)
    x_shape = (batch, c_in, side, side) if shared else (batch, size, c_in, side, side)
    return [rng.standard_normal(x_shape)] + _encodings(rng, size, c_out, c_in * kernel * kernel, genes)


def conv_params(case):
    _, _, _, _, _, kernel, stride, padding, _, _, path, _ = case
    return {"kernel_size": kernel, "stride": stride, "padding": padding, "path": path}


@st.composite
def linear_cases(draw):
    return (draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 4)),
            draw(st.integers(1, 3)), draw(st.sampled_from(PATHS)), draw(st.integers(0, 2**16)))


def linear_arrays(case):
    size, batch, fan_in, c_out, genes, _, seed = case
    rng = np.random.default_rng(seed)
    return ([rng.standard_normal((batch, size, fan_in))] + _encodings(rng, size, c_out, fan_in, genes)
            + [rng.standard_normal((size, c_out))])


@st.composite
def norm_cases(draw):
    spatial = draw(st.booleans())
    shape = (draw(st.integers(2, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if spatial:
        shape += (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    return shape, draw(st.booleans()), draw(st.integers(0, 2**16))


def norm_arrays(case):
    shape, _, seed = case
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape), 1.0 + 0.5 * rng.standard_normal(shape[1:3]), rng.standard_normal(shape[1:3])]


def norm_params(case):
    shape, training, seed = case
    rng = np.random.default_rng(seed + 1)
    return {"running_mean": rng.standard_normal(shape[1:3]), "running_var": 0.5 + rng.random(shape[1:3]),
            "training": training}


# ---------------------------------------------------------------- finite differences (float64)

@given(case=conv_cases())
def test_population_conv2d_gradients_match_finite_differences(case):
    errors = gradcheck.check_gradients(lambda *t: apply(population_conv2d, *t, **conv_params(case)), conv_arrays(case))
    assert max(errors.values()) <= TOLERANCE_FD, errors


@given(case=linear_cases())
def test_population_linear_gradients_match_finite_differences(case):
    path = case[5]
    errors = gradcheck.check_gradients(lambda *t: apply(population_linear, *t, path=path), linear_arrays(case))
    assert max(errors.values()) <= TOLERANCE_FD, errors


@given(case=norm_cases())
def test_population_batch_norm_gradients_match_finite_differences(case):
    params = norm_params(case)

    def fn(*tensors):  # fresh running statistics each call: FD evaluates many times
        fresh = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in params.items()}
        return apply(population_batch_norm, *tensors, **fresh)

    errors = gradcheck.check_gradients(fn, norm_arrays(case))
    assert max(errors.values()) <= TOLERANCE_FD, errors


@given(n=st.integers(1, 4), size=st.integers(1, 3), k=st.integers(2, 5), seed=st.integers(0, 2**16))
def test_population_cross_entropy_gradients_match_finite_differences(n, size, k, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=n)
    errors = gradcheck.check_gradients(lambda z: apply(population_cross_entropy, z, labels=labels),
                                       [3.0 * rng.standard_normal((n, size, k))])
    assert max(errors.values()) <= TOLERANCE_FD, errors


# ---------------------------------------------------------------- each slice is one individual

def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(case=conv_cases())
def test_population_conv2d_slice_is_that_individuals_genetic_conv2d(case):
    x, x_out, g, x_in = conv_arrays(case)
    params, shared = conv_params(case), case[9]
    y, cache = population_conv2d.forward(x, x_out, g, x_in, **params)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    dx, dx_out, dg, dx_in = population_conv2d.backward(dy, cache)
    dx_total = 0.0
    for p in range(x_out.shape[0]):
        xp_ = x if shared else x[:, p]
        y1, cache1 = genetic_conv2d.forward(xp_, x_out[p], g[p], x_in[p], **params)
        _close(y[:, p], y1)
        grads = genetic_conv2d.backward(dy[:, p], cache1)
        for mine, theirs in zip((dx_out[p], dg[p], dx_in[p]), grads[1:]):
            _close(mine, theirs)
        if shared:
            dx_total = dx_total + grads[0]
        else:
            _close(dx[:, p], grads[0])
    if shared:  # a shared input collects every individual's gradient
        _close(dx, dx_total)


@settings(max_examples=20, deadline=None)
@given(case=linear_cases())
def test_population_linear_slice_is_that_individuals_genetic_linear(case):
    x, x_out, g, x_in, b = linear_arrays(case)
    y, cache = population_linear.forward(x, x_out, g, x_in, b, path=case[5])
    dy = np.random.default_rng(1).standard_normal(y.shape)
    grads = population_linear.backward(dy, cache)
    for p in range(x_out.shape[0]):
        y1, cache1 = genetic_linear.forward(x[:, p], x_out[p], g[p], x_in[p], b[p], path=case[5])
        _close(y[:, p], y1)
        mine = (grads[0][:, p],) + tuple(a[p] for a in grads[1:])
        for ours, theirs in zip(mine, genetic_linear.backward(dy[:, p], cache1)):
            _close(ours, theirs)


@settings(max_examples=20, deadline=None)
@given(case=norm_cases())
def test_population_batch_norm_slice_is_that_individuals_batch_norm(case):
    x, gamma, beta = norm_arrays(case)
    params = norm_params(case)
    before = {k: params[k].copy() for k in ("running_mean", "running_var")}
    y, cache = population_batch_norm.forward(x, gamma, beta, **params)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    grads = population_batch_norm.backward(dy, cache)
    for p in range(x.shape[1]):
        stats = {k: v[p].copy() for k, v in before.items()}
        y1, cache1 = batch_norm.forward(x[:, p], gamma[p], beta[p], training=params["training"], **stats)
        _close(y[:, p], y1)
        for k in stats:  # running statistics per (individual, channel)
            _close(params[k][p], stats[k])
        for mine, theirs in zip((grads[0][:, p], grads[1][p], grads[2][p]), batch_norm.backward(dy[:, p], cache1)):
            _close(mine, theirs)


def test_population_cross_entropy_is_each_individuals_own():
    rng = np.random.default_rng(3)
    logits, labels = rng.standard_normal((5, 3, 4)), rng.integers(0, 4, size=5)
    losses, _ = population_cross_entropy.forward(logits, labels)
    for p in range(3):
        assert losses[p] == pytest.approx(cross_entropy.forward(logits[:, p], labels)[0], rel=1e-12)


def test_population_ops_refuse_mismatched_shapes():
    rng = np.random.default_rng(0)
    x_out, g, x_in = _encodings(rng, 2, 3, 4, 2)
    with pytest.raises(ValueError, match="x_in"):
        population_linear.forward(rng.standard_normal((2, 2, 5)), x_out, g, x_in)
    with pytest.raises(ValueError, match="genetic layer needs"):
        population_linear.forward(rng.standard_normal((2, 2, 4)), x_out, g[0], x_in)
    with pytest.raises(ValueError, match="expects"):
        population_batch_norm.forward(rng.standard_normal((2, 3)), np.ones((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="labels"):
        population_cross_entropy.forward(rng.standard_normal((2, 2, 3)), np.array([0, 3]))


@settings(max_examples=20, deadline=None)
@given(case=conv_cases())
def test_a_dense_conv2d_population_is_each_individuals_conv2d(case):
    """The dense twins stack too: w [P, C_out, C_in, kh, kw] (DESIGN.md section 2)."""
    size, batch, c_in, side, c_out, kernel, stride, padding, _, shared, _, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, c_in, side, side) if shared else (batch, size, c_in, side, side))
    w = rng.standard_normal((size, c_out, c_in, kernel, kernel))
    y, cache = conv2d.forward(x, w, stride=stride, padding=padding)
    dy = rng.standard_normal(y.shape)
    dx, dw = conv2d.backward(dy, cache)
    dx_total = 0.0
    for p in range(size):
        y1, cache1 = conv2d.forward(x if shared else x[:, p], w[p], stride=stride, padding=padding)
        _close(y[:, p], y1)
        dx1, dw1 = conv2d.backward(dy[:, p], cache1)
        _close(dw[p], dw1)
        if shared:
            dx_total = dx_total + dx1
        else:
            _close(dx[:, p], dx1)
    if shared:
        _close(dx, dx_total)
    errors = gradcheck.check_gradients(lambda *t: apply(conv2d, *t, stride=stride, padding=padding), [x, w])
    assert max(errors.values()) <= TOLERANCE_FD, errors


@settings(max_examples=20, deadline=None)
@given(case=linear_cases())
def test_a_dense_linear_population_is_each_individuals_linear(case):
    size, batch, fan_in, c_out, _, _, seed = case
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((batch, size, fan_in)), rng.standard_normal((size, c_out, fan_in)), \
        rng.standard_normal((size, c_out))
    y, cache = linear.forward(x, w, b)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = linear.backward(dy, cache)
    for p in range(size):
        y1, cache1 = linear.forward(x[:, p], w[p], b[p])
        _close(y[:, p], y1)
        for mine, theirs in zip((dx[:, p], dw[p], db[p]), linear.backward(dy[:, p], cache1)):
            _close(mine, theirs)
    errors = gradcheck.check_gradients(lambda *t: apply(linear, *t), [x, w, b])
    assert max(errors.values()) <= TOLERANCE_FD, errors


@pytest.mark.parametrize("op", [avg_pool2d, max_pool2d])
def test_pools_slide_over_a_population_per_individual(op):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 4, 6, 6))  # [N, P, C, H, W]
    y, cache = op.forward(x, 2)
    dy = rng.standard_normal(y.shape)
    (dx,) = op.backward(dy, cache)
    for p in range(2):
        y1, cache1 = op.forward(x[:, p], 2)
        _close(y[:, p], y1)
        _close(dx[:, p], op.backward(dy[:, p], cache1)[0])


# ---------------------------------------------------------------- whole evaluations

def _tasks(generation=1, popsize=3, steps=3, genes=8, vectors=None, device="cpu"):
    path = default_digits_path()
    images, _, classes = load_dataset(path, "train")
    template = build_from_config({"arch": "digits", "genetic": True, "genes": genes, "num_classes": len(classes),
                      "image_shape": list(images.shape[1:]), "time_steps": 4, "seed": 0, "device": "cpu"})
    start = starting_genome(template)
    s = individual.EvaluationSettings(genome_template=start, data_path=str(path), seed=5, val_fraction=0.1,
                                      eval_steps=steps, eval_epochs=None, batch_size=16, lr=0.1, device=device)
    if vectors is None:
        vectors = backend.to_host(CMAES(start.vector, 0.2, popsize=popsize, seed=2).ask())
    return [individual.IndividualTask(s, np.array(v, dtype=np.float64), generation, i) for i, v in enumerate(vectors)]


def _float64_phenotypes(monkeypatch):
    """Make gee_ref.evolution.evaluation build its phenotypes in float64 (the same float32 draws, cast)."""
    original = individual.build_phenotype

    def build64(*args, **kwargs):
        model = original(*args, **kwargs)
        for p in model.parameters():
            p.data = p.data.astype(np.float64)
        for m in model.modules():
            for name in list(m._buffers):
                m._buffers[name] = m._buffers[name].astype(np.float64)
        return model

    monkeypatch.setattr(individual, "build_phenotype", build64)


KEYS = ("loss", "r_t", "r_s", "train_loss", "accuracy")  # the terms of eq. 16; F is scored per generation


def _assert_records_equal(batched, one_by_one, rtol):
    assert len(batched) == len(one_by_one)
    for mine, theirs in zip(batched, one_by_one):
        for key in ("index", "train_steps", "nonfinite"):
            assert mine[key] == theirs[key], (key, mine, theirs)
        for key in KEYS:
            if math.isnan(theirs[key]):
                assert math.isnan(mine[key]), (key, mine, theirs)
            else:
                assert mine[key] == pytest.approx(theirs[key], rel=rtol, abs=0), (key, mine, theirs)


def test_evaluate_population_equals_one_by_one_in_float64(monkeypatch):
    _float64_phenotypes(monkeypatch)
    tasks = _tasks()
    one_by_one = [individual.evaluate_individual(t) for t in tasks]
    batched = evaluate_population(tasks, dtype=np.float64)
    _assert_records_equal(batched, one_by_one, rtol=1e-10)
    assert len({r["loss"] for r in batched}) == len(batched)  # the individuals differ


def test_evaluate_population_is_close_to_one_by_one_in_float32():
    tasks = _tasks(steps=2)
    _assert_records_equal(evaluate_population(tasks), [individual.evaluate_individual(t) for t in tasks], rtol=1e-4)


def test_a_diverging_individual_stops_alone():
    """Huge sigmas (eq. 9) make one individual's loss non-finite; the others are untouched."""
    good = _tasks(popsize=3, steps=2)
    vectors = [t.vector.copy() for t in good]
    layers = good[0].settings.genome_template.num_layers
    vectors[1][:layers] = 60.0  # log sigma: encodings near 1e26, a float32 overflow
    vectors[2][:layers] = 1e4  # exp overflows: the genome itself is refused (GenomeError)
    tasks = _tasks(popsize=3, steps=2, vectors=vectors)
    batched = evaluate_population(tasks)
    _assert_records_equal(batched, [individual.evaluate_individual(t) for t in tasks], rtol=1e-4)
    assert [r["nonfinite"] for r in batched] == [False, True, True]


def test_evaluate_population_refuses_mixed_generations():
    tasks = _tasks(popsize=2)
    mixed = [tasks[0], individual.IndividualTask(tasks[1].settings, tasks[1].vector, 7, 1)]
    with pytest.raises(ValueError, match="one generation"):
        evaluate_population(mixed)
    assert evaluate_population([]) == []


def test_stack_population_refuses_networks_of_different_architectures():
    small = build_model("digits", genes=4, num_classes=10, in_channels=1, image_size=8, time_steps=2)
    other = build_model("digits", genes=5, num_classes=10, in_channels=1, image_size=8, time_steps=2)
    with pytest.raises(ValueError, match="same architecture"):
        stack_population([small, other])
    with pytest.raises(ValueError, match="already"):
        stack_population([stack_population([small, small])])
    with pytest.raises(ValueError, match="at least one"):
        stack_population([])


@pytest.mark.parametrize("arch, genetic", [("digits", True), ("digits", False), ("cifarnet", True)])
def test_a_stacked_network_is_its_networks(arch, genetic):
    """Forward and backward of a stacked population equal those of its networks one by one
    (float64): genetic and dense layers, pools, batch norm, LIF, flatten; G shared per individual."""
    size = 16 if arch == "cifarnet" else 8
    models = [build_model(arch, genetic=genetic, genes=3, num_classes=4, in_channels=1, image_size=size,
                          time_steps=2, seed=s, dtype=np.float64) for s in (1, 2)]
    x = np.random.default_rng(0).standard_normal((3, 1, size, size))
    labels = np.array([0, 3, 1])
    stacked = stack_population(models)
    assert stacked.population_size == 2
    losses = functional.cross_entropy(stacked(x), labels)
    functional.sum(losses).backward()
    for p, model in enumerate(models):
        loss = functional.cross_entropy(model(x), labels)
        loss.backward()
        assert losses.data[p] == pytest.approx(float(loss.data), rel=1e-12)
        for (name, mine), theirs in zip(stacked.named_parameters(), model.parameters()):
            _close(mine.grad[p], theirs.grad)
        for (name, mine), theirs in zip(stacked.named_buffers(), model.buffers()):
            _close(mine[p], theirs)  # the running statistics of batch norm, per individual


def test_training_is_per_individual_under_autograd():
    """Summing the individuals' losses gives each one exactly the gradient of its own loss."""
    rng = np.random.default_rng(4)
    x_out, g, x_in = (autograd.Tensor(a, requires_grad=True) for a in _encodings(rng, 2, 3, 4, 2))
    x, labels = rng.standard_normal((5, 2, 4)), rng.integers(0, 3, size=5)
    losses = apply(population_cross_entropy, apply(population_linear, x, x_out, g, x_in), labels=labels)
    functional.sum(losses).backward()
    for p in range(2):
        single = [autograd.Tensor(a.data[p].copy(), requires_grad=True) for a in (x_out, g, x_in)]
        functional.cross_entropy(functional.genetic_linear(autograd.Tensor(x[:, p]), *single), labels).backward()
        for stacked, one in zip((x_out, g, x_in), single):
            _close(stacked.grad[p], one.grad)


# ---------------------------------------------------------------- the batched executor

def test_batched_executor_hands_the_generation_to_evaluate_population():
    from gee_ref.evolution.executors import make_executor

    tasks = _tasks(steps=1)
    arrived = []
    with make_executor("batched") as executor:
        results = executor.map(individual.evaluate_individual, tasks, on_result=lambda i, r: arrived.append(i))
        assert executor.map(abs, [-1, 2]) == [1, 2]  # any other function runs serially
    assert sorted(arrived) == [0, 1, 2]
    _assert_records_equal(results, evaluate_population(tasks), rtol=1e-12)


def test_evolve_cli_runs_with_the_batched_executor(tmp_path):
    from gee_ref import evolve
    from gee_ref.cli.errors import run_main
    from gee_ref.evolution.search import read_log

    tiny = ["--genes", "4", "--popsize", "4", "--eval-steps", "2", "--batch-size", "64", "--val-fraction", "0.05",
            "--final-epochs", "1", "--final-steps-per-epoch", "1", "--no-progress", "--generations", "1"]
    logs = {}
    for kind in ("serial", "batched"):
        with pytest.raises(SystemExit) as stopped:
            run_main(evolve.main, tiny + ["--executor", kind, "--out", str(tmp_path / kind)])
        assert stopped.value.code == 0
        logs[kind] = read_log(tmp_path / kind / "log.jsonl")
    assert len(logs["batched"]) == len(logs["serial"]) == 1
    batched, serial = logs["batched"][0], logs["serial"][0]
    mine = [r["fitness"] for r in batched["individuals"]]
    assert np.allclose(mine, [r["fitness"] for r in serial["individuals"]], rtol=1e-4, atol=0)
    assert len(mine) == 4


@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")
def test_gpu_evaluations_equal_cpu_evaluations_in_float64(monkeypatch):
    """A whole evaluation on CuPy (phenotype, loader, training loop, R_T, R_S), one by one and
    batched, equals the CPU's: the encodings are drawn on the host, so the networks are the same."""
    _float64_phenotypes(monkeypatch)
    cpu = [individual.evaluate_individual(t) for t in _tasks()]
    gpu_tasks = _tasks(device="gpu")
    _assert_records_equal([individual.evaluate_individual(t) for t in gpu_tasks], cpu, rtol=1e-8)
    _assert_records_equal(evaluate_population(gpu_tasks, dtype=np.float64), cpu, rtol=1e-8)
