"""Genetic conv and linear layers (paper eq. 1, 2, 4, 5): both paths, their costs, a shared G."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gee_ref import autograd, backend
from gee_ref.autograd import functional as F
from gee_ref.autograd import gradcheck
from gee_ref.autograd.gradcheck import relative_difference
from gee_ref.ops import (conv2d as conv2d_op, genetic_conv2d as genetic_conv2d_op,
                         genetic_linear as genetic_linear_op, genetic_path)
from op_devices import GPU_TOLERANCES, assert_gpu_matches_cpu, forward_backward

PATHS = ["materialised", "factored"]
TOLERANCE_FD = 1e-6
TOLERANCE_PATHS = 1e-12


@st.composite
def genetic_conv_cases(draw, max_size=5):
    """Batch 1-3, channels 1-4, kernel 1-5, stride 1-2, padding 0-2, g 1-8, H, W <= max_size
    and >= kernel after padding; returns (x shape, C_out, kernel, stride, padding, g, seed)."""
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = draw(st.one_of(st.integers(1, 2), st.tuples(st.integers(1, 2), st.integers(1, 2))))
    padding = draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kernel[0] - 2 * padding), max_size))
    w = draw(st.integers(max(1, kernel[1] - 2 * padding), max_size))
    genes = draw(st.integers(1, 8))
    return (n, c_in, h, w), c_out, kernel, stride, padding, genes, draw(st.integers(0, 2**32 - 1))


def genetic_conv_arrays(case, dtype=np.float64):
    """[x, x_out, G, x_in] for a case; encodings scaled so that W has entries of order one."""
    x_shape, c_out, kernel, _, _, genes, seed = case
    rng = np.random.default_rng(seed)
    fan_in = x_shape[1] * kernel[0] * kernel[1]
    arrays = [rng.standard_normal(x_shape), rng.standard_normal((c_out, genes)),
              rng.standard_normal((genes, genes)) / np.sqrt(genes),
              rng.standard_normal((fan_in, genes)) / np.sqrt(genes)]
    return [a.astype(dtype) for a in arrays]


def conv_params(case, path):
    _, _, kernel, stride, padding, _, _ = case
    return dict(kernel_size=kernel, stride=stride, padding=padding, path=path)


@st.composite
def genetic_linear_cases(draw):
    """x [1-2 leading axes of 1-3, in 1-6], out 1-6, g 1-8, with or without bias."""
    leading = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    fan_in, fan_out, genes = draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 8))
    return leading + (fan_in,), fan_out, genes, draw(st.booleans()), draw(st.integers(0, 2**32 - 1))


def genetic_linear_arrays(case, dtype=np.float64):
    """[x, x_out, G, x_in] plus the bias when the case has one."""
    x_shape, fan_out, genes, with_bias, seed = case
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal((fan_out, genes)),
              rng.standard_normal((genes, genes)) / np.sqrt(genes),
              rng.standard_normal((x_shape[-1], genes)) / np.sqrt(genes)]
    if with_bias:
        arrays.append(rng.standard_normal(fan_out))
    return [a.astype(dtype) for a in arrays]


# ---------------------------------------------------------------- finite differences

@pytest.mark.parametrize("path", PATHS)
@given(case=genetic_conv_cases())
def test_genetic_conv2d_gradients_match_finite_differences(path, case):
    params = conv_params(case, path)
    errors = gradcheck.check_gradients(
        lambda x, x_out, g, x_in: F.genetic_conv2d(x, x_out, g, x_in, **params), genetic_conv_arrays(case))
    assert max(errors.values()) <= TOLERANCE_FD, errors


@pytest.mark.parametrize("path", PATHS)
@given(case=genetic_linear_cases())
def test_genetic_linear_gradients_match_finite_differences(path, case):
    arrays = genetic_linear_arrays(case)
    if len(arrays) == 5:
        fn = lambda x, x_out, g, x_in, b: F.genetic_linear(x, x_out, g, x_in, b, path=path)  # noqa: E731
    else:
        fn = lambda x, x_out, g, x_in: F.genetic_linear(x, x_out, g, x_in, path=path)  # noqa: E731
    errors = gradcheck.check_gradients(fn, arrays)
    assert max(errors.values()) <= TOLERANCE_FD, errors


# ---------------------------------------------------------------- the two paths agree

@given(case=genetic_conv_cases(max_size=7))
def test_genetic_conv2d_paths_agree(case):
    arrays = genetic_conv_arrays(case)
    materialised = forward_backward(genetic_conv2d_op, arrays, conv_params(case, "materialised"))
    factored = forward_backward(genetic_conv2d_op, arrays, conv_params(case, "factored"))
    for a, b in zip(materialised, factored, strict=True):
        assert relative_difference(b, a) <= TOLERANCE_PATHS


@given(case=genetic_linear_cases())
def test_genetic_linear_paths_agree(case):
    arrays = genetic_linear_arrays(case)
    materialised = forward_backward(genetic_linear_op, arrays, dict(path="materialised"))
    factored = forward_backward(genetic_linear_op, arrays, dict(path="factored"))
    for a, b in zip(materialised, factored, strict=True):
        assert relative_difference(b, a) <= TOLERANCE_PATHS


# ---------------------------------------------------------------- eq. 1 and eq. 4-5

@given(case=genetic_conv_cases(max_size=7))
def test_genetic_conv2d_is_conv2d_with_eq1_weight_and_eq45_gradients(case):
    """y = conv2d(x, W) with W = X_out G X_in.T viewed [C_out, C_in, kh, kw]; the encodings'
    gradients are eq. 4-5 applied to conv2d's dW (an independent route to them)."""
    x, x_out, g, x_in = arrays = genetic_conv_arrays(case)
    kernel, stride, padding = case[2], case[3], case[4]
    w = (x_out @ g @ x_in.T).reshape(x_out.shape[0], x.shape[1], *kernel)
    for path in PATHS:
        y, dx, dx_out, dg, dx_in = forward_backward(genetic_conv2d_op, arrays, conv_params(case, path))
        y_dense, dx_dense, dw = forward_backward(conv2d_op, [x, w], dict(stride=stride, padding=padding))
        dw = dw.reshape(w.shape[0], -1)
        assert relative_difference(y, y_dense) <= 1e-12
        assert relative_difference(dx, dx_dense) <= 1e-12
        assert relative_difference(dx_out, dw @ x_in @ g.T) <= 1e-12          # eq. 4-5
        assert relative_difference(dg, x_out.T @ dw @ x_in) <= 1e-12
        assert relative_difference(dx_in, dw.T @ x_out @ g) <= 1e-12


def test_genetic_linear_is_linear_with_eq1_weight():
    x, x_out, g, x_in, b = genetic_linear_arrays(((2, 3, 5), 4, 3, True, 1))
    for path in PATHS:
        y = F.genetic_linear(x, x_out, g, x_in, b, path=path).data
        assert relative_difference(y, F.linear(x, genetic_path.genetic_weight(x_out, g, x_in), b).data) <= 1e-12


# ---------------------------------------------------------------- costs and the path choice

class CountingArray(np.ndarray):
    """An ndarray that tallies the multiply-adds of every 2-D matmul it takes part in."""
    macs = 0

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [np.asarray(a) if isinstance(a, CountingArray) else a for a in inputs]
        if ufunc is np.matmul:
            a, b = plain
            CountingArray.macs += a.shape[0] * a.shape[1] * b.shape[1]
        result = getattr(ufunc, method)(*plain, **kwargs)
        return result.view(CountingArray) if isinstance(result, np.ndarray) else result


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("c_out, fan_in, genes, positions", [(4, 27, 3, 50), (16, 9, 8, 7), (1, 1, 1, 1)])
def test_mac_counts_match_the_products_performed(path, c_out, fan_in, genes, positions):
    rng = np.random.default_rng(0)
    cols, x_out, g, x_in = (rng.standard_normal(s).view(CountingArray) for s in
                            [(fan_in, positions), (c_out, genes), (genes, genes), (fan_in, genes)])
    CountingArray.macs = 0
    y, cache = genetic_path.product_forward(cols, x_out, g, x_in, path)
    assert CountingArray.macs == genetic_path.forward_macs(path, c_out, fan_in, genes, positions)
    CountingArray.macs = 0
    genetic_path.product_backward(rng.standard_normal(y.shape).view(CountingArray), cache, cols)
    assert CountingArray.macs == genetic_path.backward_macs(path, c_out, fan_in, genes, positions)


def test_mac_counts_by_hand_and_auto_picks_the_cheaper():
    # A 3x3 conv, 64 -> 64 channels on 32x32 (M = 1024), g = 8: the thin factored chain wins.
    assert genetic_path.forward_macs("materialised", 64, 576, 8, 1024) == 64 * 8 * 8 + 64 * 8 * 576 + 64 * 576 * 1024
    assert genetic_path.forward_macs("factored", 64, 576, 8, 1024) == 1024 * 8 * (576 + 8 + 64)
    assert genetic_path.choose_path("auto", 64, 576, 8, 1024) == "factored"
    # g = 100: g*(fan_in + g + C_out) = 74000 > C_out*fan_in = 36864 per position, W pays for itself.
    assert genetic_path.choose_path("auto", 64, 576, 100, 1024) == "materialised"
    # ... unless there are few positions (a batch of one through a Linear layer).
    assert genetic_path.choose_path("auto", 64, 576, 100, 1) == "factored"
    assert genetic_path.choose_path("factored", 64, 576, 100, 1024) == "factored"
    assert genetic_path.dense_macs(64, 576, 1024) == 64 * 576 * 1024


@given(st.integers(1, 512), st.integers(1, 4608), st.integers(1, 256), st.integers(1, 70000), st.booleans())
def test_auto_counts_forward_and_backward_when_training(c_out, fan_in, genes, positions, training):
    def cost(path):
        macs = genetic_path.forward_macs(path, c_out, fan_in, genes, positions)
        return macs + (genetic_path.backward_macs(path, c_out, fan_in, genes, positions) if training else 0)
    cheaper = "factored" if cost("factored") < cost("materialised") else "materialised"
    assert genetic_path.choose_path("auto", c_out, fan_in, genes, positions, training=training) == cheaper
    # backward is twice forward on both paths, so training and inference choose alike (documented)
    assert genetic_path.choose_path("auto", c_out, fan_in, genes, positions) == \
        genetic_path.choose_path("auto", c_out, fan_in, genes, positions, training=False)


@pytest.mark.parametrize("path", PATHS)
def test_genetic_conv2d_keeps_its_input_not_its_columns_for_backward(path):
    """Nothing in the cache is as large as the im2col columns (9x the input for a 3x3 kernel)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 8, 10, 10))
    x_out, g, x_in = rng.standard_normal((8, 4)), rng.standard_normal((4, 4)), rng.standard_normal((72, 4))
    _, cache = genetic_conv2d_op.forward(x, x_out, g, x_in, kernel_size=3, padding=1, path=path)
    assert cache.x is x
    assert max(a.nbytes for a in cache.product if isinstance(a, np.ndarray)) < 9 * x.nbytes // 2


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("path", PATHS + ["dense"])
def test_input_that_needs_no_gradient_gets_none_and_the_same_weight_gradients(path, stride):
    """A first convolution's images need no dx: the op skips it (functional passes input_grad=False
    for a Tensor without requires_grad); the weight gradients stay exactly the same."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 9, 9))
    side = (9 + 2 * 1 - 3) // stride + 1  # 3x3 kernel, padding 1
    grad = rng.standard_normal((2, 5, side, side))
    if path == "dense":
        w = rng.standard_normal((5, 3, 3, 3))
        outputs = [conv2d_op.forward(x, w, stride=stride, padding=1, input_grad=flag) for flag in (True, False)]
        grads = [conv2d_op.backward(grad, cache) for _, cache in outputs]
    else:
        x_out, g, x_in = rng.standard_normal((5, 4)), rng.standard_normal((4, 4)), rng.standard_normal((27, 4))
        outputs = [genetic_conv2d_op.forward(x, x_out, g, x_in, 3, stride=stride, padding=1, path=path,
                                             input_grad=flag) for flag in (True, False)]
        grads = [genetic_conv2d_op.backward(grad, cache) for _, cache in outputs]
    assert np.array_equal(outputs[0][0], outputs[1][0])
    assert grads[0][0] is not None and grads[1][0] is None
    for with_dx, without_dx in zip(grads[0][1:], grads[1][1:]):
        assert np.array_equal(with_dx, without_dx)
    images = autograd.Tensor(x)  # through the tape: no gradient asked for the images
    if path == "dense":
        weight = autograd.Tensor(w, requires_grad=True)
        y = F.conv2d(images, weight, stride=stride, padding=1)
    else:
        weight = autograd.Tensor(x_in, requires_grad=True)
        y = F.genetic_conv2d(images, x_out, g, weight, 3, stride=stride, padding=1, path=path)
    assert y.creator.cache.input_grad is False
    y.backward(grad)
    assert images.grad is None and np.array_equal(weight.grad, grads[1][-1] if path != "dense" else grads[1][1])


@pytest.mark.parametrize("genes, expected", [(2, "factored"), (40, "materialised")])
def test_auto_path_runs_the_cheaper_path(genes, expected):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 6, 6))
    x_out, g = rng.standard_normal((8, genes)), rng.standard_normal((genes, genes))
    x_in = rng.standard_normal((8 * 9, genes))
    y_auto, cache = genetic_conv2d_op.forward(x, x_out, g, x_in, kernel_size=3, padding=1)
    kinds = {"factored": genetic_path.Factored, "materialised": genetic_path.Materialised}
    assert isinstance(cache.product, kinds[expected])
    y_chosen, _ = genetic_conv2d_op.forward(x, x_out, g, x_in, kernel_size=3, padding=1, path=expected)
    np.testing.assert_array_equal(y_auto, y_chosen)


@settings(max_examples=20, deadline=None)
@given(c_out=st.integers(1, 12), c_in=st.integers(1, 12), kernel=st.integers(1, 5), genes=st.integers(1, 16))
def test_parameter_count_is_eq2(c_out, c_in, kernel, genes):
    """measure.parameters counts a genetic conv as g*(C_out + C_in*kh*kw) (eq. 2), its twin as C_out*C_in*kh*kw."""
    from gee_ref.measure.parameters import module_counts
    from gee_ref.nn import Conv2d, GeneBank, GeneticConv2d

    layer = GeneticConv2d(c_in, c_out, kernel, GeneBank(genes))
    assert [count for _, _, count in module_counts(layer)] == [genes * (c_out + c_in * kernel * kernel)]
    assert [count for _, _, count in module_counts(Conv2d(c_in, c_out, kernel))] == [c_out * c_in * kernel * kernel]


# ---------------------------------------------------------------- one global G

def test_g_shared_by_two_layers_gets_the_sum_of_both_gradients():
    """Two stacked genetic convolutions share G: G.grad is layer 1's dG plus layer 2's dG."""
    rng = np.random.default_rng(4)
    genes = 3
    x = rng.standard_normal((2, 2, 5, 5))
    x_out1, x_in1 = rng.standard_normal((3, genes)), rng.standard_normal((2 * 9, genes)) / 3
    x_out2, x_in2 = rng.standard_normal((2, genes)), rng.standard_normal((3 * 4, genes)) / 3
    g = rng.standard_normal((genes, genes))
    upstream = rng.standard_normal((2, 2, 4, 4))

    def network(x, g, path1="materialised", path2="factored"):
        h = F.genetic_conv2d(x, x_out1, g, x_in1, kernel_size=3, padding=1, path=path1)
        return F.genetic_conv2d(h, x_out2, g, x_in2, kernel_size=2, path=path2)

    g_tensor = autograd.Tensor(g.copy(), requires_grad=True)
    network(autograd.Tensor(x), g_tensor).backward(upstream)

    h, cache1 = genetic_conv2d_op.forward(x, x_out1, g, x_in1, kernel_size=3, padding=1)
    _, cache2 = genetic_conv2d_op.forward(h, x_out2, g, x_in2, kernel_size=2)
    dh, _, dg2, _ = genetic_conv2d_op.backward(upstream, cache2)
    _, _, dg1, _ = genetic_conv2d_op.backward(dh, cache1)
    assert relative_difference(g_tensor.grad, dg1 + dg2) <= 1e-12
    assert relative_difference(dg1 + dg2, dg1) > 1e-3 and relative_difference(dg1 + dg2, dg2) > 1e-3

    errors = gradcheck.check_gradients(network, [x, g], wrt=[1])
    assert errors[1] <= TOLERANCE_FD


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("shapes, params, message", [
    ([(1, 2, 4, 4), (3, 2), (2, 2), (17, 2)], dict(kernel_size=3), "fan_in"),
    ([(1, 2, 4, 4), (3, 2), (2, 3), (18, 2)], dict(kernel_size=3), r"g \[g, g\]"),
    ([(1, 2, 4, 4), (3, 2), (2, 2), (18, 3)], dict(kernel_size=3), r"x_in \[fan_in, g\]"),
    ([(1, 2, 4, 4), (3, 2), (2, 2), (18, 2)], dict(kernel_size=3, path="fast"), "unknown genetic path"),
    ([(1, 2, 4, 4), (3, 2), (2, 2), (18, 2)], dict(kernel_size=5), "larger than the padded input"),
])
def test_genetic_conv2d_rejects_bad_input(shapes, params, message):
    with pytest.raises(ValueError, match=message):
        genetic_conv2d_op.forward(*[np.zeros(s) for s in shapes], **params)


def test_genetic_linear_rejects_bad_input():
    with pytest.raises(ValueError, match="fan_in"):
        genetic_linear_op.forward(np.zeros((2, 5)), np.zeros((3, 2)), np.zeros((2, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="bias"):
        genetic_linear_op.forward(np.zeros((2, 4)), np.zeros((3, 2)), np.zeros((2, 2)), np.zeros((4, 2)),
                                  np.zeros(4))


# ---------------------------------------------------------------- CuPy equals NumPy

@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("dtype, tolerance", GPU_TOLERANCES)
@pytest.mark.parametrize("path", PATHS)
def test_genetic_conv2d_on_gpu_equals_numpy(dtype, tolerance, path):
    case = ((3, 4, 9, 8), 6, (3, 3), 2, 1, 5, 11)
    assert_gpu_matches_cpu(genetic_conv2d_op, genetic_conv_arrays(case, dtype), conv_params(case, path), tolerance)


@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("dtype, tolerance", GPU_TOLERANCES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("with_bias", [False, True])
def test_genetic_linear_on_gpu_equals_numpy(dtype, tolerance, path, with_bias):
    arrays = genetic_linear_arrays(((2, 5, 7), 6, 4, with_bias, 5), dtype)
    assert_gpu_matches_cpu(genetic_linear_op, arrays, dict(path=path), tolerance)
