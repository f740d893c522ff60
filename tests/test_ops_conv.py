"""conv2d (im2col/col2im) and linear: finite differences, a naive loop, PyTorch, CuPy."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from gee_ref import autograd, backend
from gee_ref.autograd import functional as F
from gee_ref.autograd import gradcheck
from gee_ref.autograd.gradcheck import relative_difference
from gee_ref.ops import conv2d as conv2d_op, linear as linear_op
from gee_ref.ops.im2col import as_pair, channel_major_im2col, col2im, im2col
from op_devices import GPU_TOLERANCES, assert_gpu_matches_cpu

TOLERANCE_FD = 1e-6


@st.composite
def conv_cases(draw, max_size=7):
    """(x shape, w shape, stride, padding, seed): batch 1-3, channels 1-4, kernel 1-5,
    stride 1-2 and padding 0-2 (an int or a pair), H and W up to max_size and >= kernel after padding."""
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = draw(st.one_of(st.integers(1, 2), st.tuples(st.integers(1, 2), st.integers(1, 2))))
    padding = draw(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2))))
    ph, pw = as_pair(padding, "padding")
    h = draw(st.integers(max(1, kh - 2 * ph), max_size))
    w = draw(st.integers(max(1, kw - 2 * pw), max_size))
    return (n, c_in, h, w), (c_out, c_in, kh, kw), stride, padding, draw(st.integers(0, 2**32 - 1))


def conv_arrays(case, dtype=np.float64):
    x_shape, w_shape, _, _, seed = case
    rng = np.random.default_rng(seed)
    return rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)


def naive_conv2d(x, w, stride, padding):
    """The definition, one output pixel at a time."""
    (sh, sw), (ph, pw) = as_pair(stride, "stride"), as_pair(padding, "padding")
    n, _, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    x_pad = np.zeros((n, x.shape[1], h + 2 * ph, wd + 2 * pw))
    x_pad[:, :, ph:ph + h, pw:pw + wd] = x
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    y = np.zeros((n, c_out, ho, wo))
    for b in range(n):
        for o in range(c_out):
            for p in range(ho):
                for q in range(wo):
                    patch = x_pad[b, :, p * sh:p * sh + kh, q * sw:q * sw + kw]
                    y[b, o, p, q] = np.sum(patch * w[o])
    return y


# ---------------------------------------------------------------- conv2d

@given(conv_cases(max_size=6))
def test_conv2d_gradients_match_finite_differences(case):
    _, _, stride, padding, _ = case
    errors = gradcheck.check_gradients(
        lambda x, w: F.conv2d(x, w, stride=stride, padding=padding), list(conv_arrays(case)))
    assert max(errors.values()) <= TOLERANCE_FD, errors


@given(conv_cases())
def test_conv2d_matches_naive_loop(case):
    _, _, stride, padding, _ = case
    x, w = conv_arrays(case)
    y, _ = conv2d_op.forward(x, w, stride=stride, padding=padding)
    assert relative_difference(y, naive_conv2d(x, w, stride, padding)) <= 1e-12


@given(conv_cases())
def test_conv2d_matches_torch_forward_and_backward(case):
    torch = pytest.importorskip("torch")
    _, _, stride, padding, seed = case
    x, w = conv_arrays(case)
    y, cache = conv2d_op.forward(x, w, stride=stride, padding=padding)
    upstream = np.random.default_rng(seed + 1).standard_normal(y.shape)
    dx, dw = conv2d_op.backward(upstream, cache)

    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, stride=stride, padding=padding)
    yt.backward(torch.tensor(upstream))
    assert relative_difference(y, yt.detach().numpy()) <= 1e-12
    assert relative_difference(dx, xt.grad.numpy()) <= 1e-12
    assert relative_difference(dw, wt.grad.numpy()) <= 1e-12


@given(conv_cases())
def test_col2im_is_the_adjoint_of_im2col(case):
    """<im2col(x), c> == <x, col2im(c)> for every x and c: the backward of a linear map."""
    x_shape, w_shape, stride, padding, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    kernel = w_shape[2:]
    cols = im2col(x, kernel, stride, padding)
    c = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * col2im(c, x_shape, kernel, stride, padding))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, np.abs(cols * c).sum())


@st.composite
def stride1_cases(draw, max_size=7):
    """(x shape, w shape, padding, seed) of a stride-1 conv with padding <= kernel - 1 (per axis),
    where conv2d's input gradient takes the flipped-kernel route."""
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    ph, pw = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))
    h = draw(st.integers(max(1, kh - 2 * ph), max_size))
    w = draw(st.integers(max(1, kw - 2 * pw), max_size))
    return (n, c_in, h, w), (c_out, c_in, kh, kw), (ph, pw), draw(st.integers(0, 2**32 - 1))


@given(stride1_cases())
def test_flipped_kernel_input_gradient_equals_col2im(case):
    """Stride 1: correlating dY with the flipped kernel gives col2im(W.T @ dY) to float64 rounding."""
    x_shape, w_shape, padding, seed = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    y, _ = conv2d_op.forward(x, w, padding=padding)
    grad_rows = rng.standard_normal((w_shape[0], y.size // w_shape[0]))
    weight_rows = w.reshape(w_shape[0], -1)
    reference = conv2d_op.input_gradient(grad_rows, weight_rows, x_shape, w_shape[2:], 1, padding, route="col2im")
    flipped = conv2d_op.input_gradient(grad_rows, weight_rows, x_shape, w_shape[2:], 1, padding, route="flipped")
    assert flipped.shape == x_shape
    assert relative_difference(flipped, reference) <= 1e-12


def test_flipped_route_is_refused_where_it_does_not_apply():
    rows, weight = np.zeros((2, 3 * 3 * 3)), np.zeros((2, 27))
    for stride, padding in [(2, 1), (1, 3)]:
        with pytest.raises(ValueError, match="flipped"):
            conv2d_op.input_gradient(rows, weight, (1, 3, 5, 5), (3, 3), stride, padding, route="flipped")


@given(conv_cases())
def test_channel_major_im2col_is_im2col_of_the_transposed_input(case):
    x_shape, w_shape, stride, padding, seed = case
    x = np.random.default_rng(seed).standard_normal(x_shape)
    kernel = w_shape[2:]
    np.testing.assert_array_equal(channel_major_im2col(np.ascontiguousarray(x.transpose(1, 0, 2, 3)), kernel,
                                                       stride, padding), im2col(x, kernel, stride, padding))


def test_conv2d_keeps_its_input_not_its_columns_for_backward():
    """The cache holds x itself and the weight: nothing kh*kw times the size of x."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3))
    _, cache = conv2d_op.forward(x, w, padding=1)
    arrays = [a for a in cache if isinstance(a, np.ndarray)]
    assert any(a is x for a in arrays)
    assert sum(a.nbytes for a in arrays) <= x.nbytes + w.nbytes


def test_im2col_rows_follow_the_weight_flatten_order():
    """One output position: the column is the patch flattened C-major, then kh, then kw."""
    x = np.arange(2 * 3 * 4, dtype=np.float64).reshape(1, 2, 3, 4)
    cols = im2col(x, (3, 4))
    assert cols.shape == (2 * 3 * 4, 1)
    np.testing.assert_array_equal(cols[:, 0], x[0].reshape(-1))


def test_conv2d_accepts_pairs_like_ints():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    y_int, _ = conv2d_op.forward(x, w, stride=2, padding=1)
    y_pair, _ = conv2d_op.forward(x, w, stride=(2, 2), padding=(1, 1))
    np.testing.assert_array_equal(y_int, y_pair)
    y_mixed, _ = conv2d_op.forward(x, w, stride=(1, 2), padding=(2, 0))
    assert relative_difference(y_mixed, naive_conv2d(x, w, (1, 2), (2, 0))) <= 1e-12


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, message", [
    ((1, 3, 5, 5), (4, 2, 3, 3), 1, 0, "input channels"),
    ((1, 3, 2, 2), (4, 3, 3, 3), 1, 0, "larger than the padded input"),
    ((1, 3, 5, 5), (4, 3, 3, 3), 0, 0, "stride >= 1"),
    ((1, 3, 5, 5), (4, 3, 3, 3), 1, -1, "padding >= 0"),
    ((1, 3, 5, 5), (4, 3, 3, 3), (1, 2, 3), 0, "pair of ints"),
    ((1, 3, 5, 5), (4, 3, 3, 3), 1.5, 0, "pair of ints"),
    ((3, 5, 5), (4, 3, 3, 3), 1, 0, r"\[N, C, H, W\]"),
    ((1, 3, 5, 5), (4, 27), 1, 0, r"\[C_out, C_in, kh, kw\]"),
])
def test_conv2d_rejects_bad_input(x_shape, w_shape, stride, padding, message):
    with pytest.raises(ValueError, match=message):
        conv2d_op.forward(np.zeros(x_shape), np.zeros(w_shape), stride=stride, padding=padding)


# ---------------------------------------------------------------- linear

@st.composite
def linear_cases(draw):
    """(x shape with 1-2 leading axes, features in 1-6, out 1-6, with or without bias, seed)."""
    leading = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
    fan_in, fan_out = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    return tuple(leading) + (fan_in,), (fan_out, fan_in), draw(st.booleans()), draw(st.integers(0, 2**32 - 1))


def linear_arrays(case, dtype=np.float64):
    x_shape, w_shape, with_bias, seed = case
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
    if with_bias:
        arrays.append(rng.standard_normal(w_shape[0]))
    return [a.astype(dtype) for a in arrays]


@given(linear_cases())
def test_linear_gradients_match_finite_differences(case):
    errors = gradcheck.check_gradients(F.linear, linear_arrays(case))
    assert max(errors.values()) <= TOLERANCE_FD, errors


@given(linear_cases())
def test_linear_is_x_times_w_transposed_plus_b(case):
    arrays = linear_arrays(case)
    y, _ = linear_op.forward(*arrays)
    expected = np.einsum("...i,oi->...o", arrays[0], arrays[1])
    if len(arrays) == 3:
        expected = expected + arrays[2]
    assert relative_difference(y, expected) <= 1e-12


def test_linear_without_bias_gives_no_bias_gradient():
    rng = np.random.default_rng(0)
    x = autograd.Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    w = autograd.Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    _, cache = linear_op.forward(x.data, w.data)
    assert linear_op.backward(np.ones((2, 4)), cache)[2] is None
    F.linear(x, w).sum().backward()
    np.testing.assert_allclose(w.grad, np.ones((4, 1)) * x.data.sum(axis=0))


@pytest.mark.parametrize("x_shape, w_shape, b_shape, message", [
    ((2, 3), (4, 5), None, "input features"),
    ((2, 3), (4, 3, 1, 1), None, r"\[out, in\]"),  # 3-D is a population's [P, out, in]
    ((2, 3), (4, 3), (3,), "bias must have shape"),
])
def test_linear_rejects_bad_input(x_shape, w_shape, b_shape, message):
    b = None if b_shape is None else np.zeros(b_shape)
    with pytest.raises(ValueError, match=message):
        linear_op.forward(np.zeros(x_shape), np.zeros(w_shape), b)


# ---------------------------------------------------------------- CuPy equals NumPy

@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("dtype, tolerance", GPU_TOLERANCES)
@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), ((1, 2), (2, 0))])
def test_conv2d_on_gpu_equals_numpy(dtype, tolerance, stride, padding):
    x, w = conv_arrays(((3, 4, 9, 8), (5, 4, 3, 3), stride, padding, 11), dtype)
    assert_gpu_matches_cpu(conv2d_op, [x, w], dict(stride=stride, padding=padding), tolerance)


@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("dtype, tolerance", GPU_TOLERANCES)
@pytest.mark.parametrize("with_bias", [False, True])
def test_linear_on_gpu_equals_numpy(dtype, tolerance, with_bias):
    arrays = linear_arrays(((2, 5, 7), (6, 7), with_bias, 5), dtype)
    assert_gpu_matches_cpu(linear_op, arrays, {}, tolerance)
