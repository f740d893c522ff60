"""Golden cases for every op of ``gee_ref.autograd.functional``.

Several settings per op: stride and padding for convolutions, both evaluation paths of the
genetic layers (eq. 1, 4-5), BN in training and eval mode, LIF with each surrogate, hard and
soft spikes, detach_reset and non-default neuron constants. Sizes are small: the whole set
is a few hundred kB of float64.

Each builder takes (name, rng) and returns a ``Case``; ``OP_CASES`` lists them by name.
"""
from __future__ import annotations

import numpy

from gee_ref.verification import conventions as conv
from gee_ref.verification import margins
from gee_ref.verification.run import record_call

F = "gee_ref.autograd.functional."
LIF_MARGIN = 1e-3  # |H - v_th - kink| >= this in every hard or rectangular LIF case


def _genes(rng, g):
    """A gene matrix G = I + 0.5 N(0, 1): invertible in practice, and not the identity."""
    return numpy.eye(g) + 0.5 * rng.standard_normal((g, g))


def conv2d_case(stride, padding, kernel=(3, 3), x_shape=(2, 3, 6, 5), c_out=4):
    def build(name, rng):
        x = rng.standard_normal(x_shape)
        w = rng.standard_normal((c_out, x_shape[1]) + tuple(kernel)) * 0.3
        return record_call(name, F + "conv2d", f"conv2d x{list(x_shape)} w{list(w.shape)} stride {stride} "
                           f"padding {padding}", rng, {"x": x, "w": w},
                           params={"stride": stride, "padding": padding},
                           conventions={**conv.LAYOUT, **conv.CONV})
    return build


def genetic_conv2d_case(path, stride, padding, kernel=(3, 3), x_shape=(2, 3, 5, 5), c_out=4, genes=3):
    def build(name, rng):
        x = rng.standard_normal(x_shape)
        fan_in = x_shape[1] * kernel[0] * kernel[1]
        tensors = {"x": x, "x_out": rng.standard_normal((c_out, genes)) * 0.5, "g": _genes(rng, genes),
                   "x_in": rng.standard_normal((fan_in, genes)) * 0.5}
        return record_call(name, F + "genetic_conv2d", f"genetic conv (eq. 1, 4-5), {path} path, g={genes}, "
                           f"kernel {list(kernel)} stride {stride} padding {padding}", rng, tensors,
                           params={"kernel_size": list(kernel), "stride": stride, "padding": padding, "path": path},
                           conventions={**conv.LAYOUT, **conv.CONV, **conv.GENETIC, "genetic_path": path})
    return build


def linear_case(bias, x_shape=(3, 5), out=4):
    def build(name, rng):
        tensors = {"x": rng.standard_normal(x_shape), "w": rng.standard_normal((out, x_shape[-1])) * 0.4}
        params = {}
        if bias:
            tensors["b"] = rng.standard_normal(out)
        else:
            params["b"] = None
        return record_call(name, F + "linear", f"linear x{list(x_shape)} -> {out}, bias {bias}", rng, tensors,
                           params=params, conventions={**conv.LAYOUT, **conv.LINEAR})
    return build


def genetic_linear_case(path, bias, x_shape=(3, 6), out=4, genes=3):
    def build(name, rng):
        tensors = {"x": rng.standard_normal(x_shape), "x_out": rng.standard_normal((out, genes)) * 0.5,
                   "g": _genes(rng, genes), "x_in": rng.standard_normal((x_shape[-1], genes)) * 0.5}
        params = {"path": path}
        if bias:
            tensors["b"] = rng.standard_normal(out)
        else:
            params["b"] = None
        return record_call(name, F + "genetic_linear", f"genetic linear (eq. 1, 4-5), {path} path, g={genes}, "
                           f"x{list(x_shape)} -> {out}, bias {bias}", rng, tensors, params=params,
                           conventions={**conv.LAYOUT, **conv.LINEAR, **conv.GENETIC, "genetic_path": path})
    return build


def batch_norm_case(training, x_shape=(3, 2, 3, 3), affine=True, momentum=0.1, eps=1e-5):
    def build(name, rng):
        channels = x_shape[1]
        x = 1.5 * rng.standard_normal(x_shape) + 0.7
        tensors, params = {"x": x}, {"training": training, "momentum": momentum, "eps": eps}
        if affine:
            tensors["gamma"] = 1.0 + 0.3 * rng.standard_normal(channels)
            tensors["beta"] = 0.3 * rng.standard_normal(channels)
        else:
            params.update(gamma=None, beta=None)
        arrays = {"running_mean": 0.2 * rng.standard_normal(channels),
                  "running_var": 0.5 + rng.random(channels)}
        mode = "train" if training else "eval"
        return record_call(name, F + "batch_norm", f"batch_norm {mode} x{list(x_shape)} affine {affine} "
                           f"momentum {momentum}", rng, tensors, arrays=arrays, params=params,
                           state=("running_mean", "running_var"),
                           conventions={**conv.LAYOUT, **conv.batch_norm(eps, momentum, training)})
    return build


def lif_case(surrogate, alpha, soft=False, detach_reset=False, tau=2.0, v_th=1.0, v_reset=0.0,
             x_shape=(6, 2, 5)):
    def build(name, rng):
        x = 1.2 * rng.standard_normal(x_shape) + 0.9
        x = margins.nudge(x, tau, v_th, v_reset, surrogate, alpha, soft, LIF_MARGIN)
        params = {"tau": tau, "v_th": v_th, "v_reset": v_reset, "surrogate": surrogate, "alpha": alpha,
                  "detach_reset": detach_reset, "soft": soft}
        case = record_call(name, F + "lif", f"LIF {'soft' if soft else 'hard'} spikes, {surrogate} surrogate "
                           f"alpha {alpha}, detach_reset {detach_reset}, tau {tau} v_th {v_th} v_reset {v_reset}",
                           rng, {"x_seq": x}, params=params,
                           conventions={**conv.LAYOUT, **conv.lif(tau, v_th, v_reset, surrogate, alpha,
                                                                  detach_reset, soft)})
        points = margins.kinks(surrogate, alpha, soft)
        if points:  # soft sigmoid and atan spikes are smooth everywhere
            h = margins.membrane(x, tau, v_th, v_reset, surrogate, alpha, soft)
            case.conventions["lif_threshold_margin"] = margins.margin(h, v_th, points)
        return case
    return build


def pool_case(kind, kernel, stride, padding, x_shape=(2, 3, 6, 6)):
    def build(name, rng):
        return record_call(name, F + kind, f"{kind} kernel {kernel} stride {stride} padding {padding}", rng,
                           {"x": rng.standard_normal(x_shape)},
                           params={"kernel_size": kernel, "stride": stride, "padding": padding},
                           conventions={**conv.LAYOUT, **conv.POOL})
    return build


def unary_case(function, description, x_shape, params=None, extra=None):
    def build(name, rng):
        return record_call(name, function, description, rng, {"x": rng.standard_normal(x_shape)},
                           params=params, conventions={**conv.LAYOUT, **(extra or {})})
    return build


def binary_case(function, description, a_shape, b_shape, extra=None):
    def build(name, rng):
        return record_call(name, function, description, rng,
                           {"a": rng.standard_normal(a_shape), "b": rng.standard_normal(b_shape)},
                           conventions={**conv.LAYOUT, **(extra or {})})
    return build


def cross_entropy_case(n=4, classes=5):
    def build(name, rng):
        logits = 2.0 * rng.standard_normal((n, classes))
        labels = rng.integers(0, classes, size=n).astype("int64")
        return record_call(name, F + "cross_entropy", f"cross_entropy logits [{n}, {classes}]", rng,
                           {"logits": logits}, arrays={"labels": labels},
                           conventions={**conv.LAYOUT, **conv.LOSS})
    return build


OP_CASES = {
    "op/conv2d/k3_s1_p0": conv2d_case(1, 0),
    "op/conv2d/k3_s2_p1": conv2d_case(2, 1),
    "op/conv2d/k2x3_s1x2_p1x0": conv2d_case([1, 2], [1, 0], kernel=(2, 3)),
    "op/genetic_conv2d/materialised_k3_s1_p1": genetic_conv2d_case("materialised", 1, 1),
    "op/genetic_conv2d/factored_k3_s1_p1": genetic_conv2d_case("factored", 1, 1),
    "op/genetic_conv2d/materialised_k3_s2_p1": genetic_conv2d_case("materialised", 2, 1),
    "op/genetic_conv2d/factored_k3_s2_p0": genetic_conv2d_case("factored", 2, 0),
    "op/genetic_conv2d/factored_k1_s2_p0": genetic_conv2d_case("factored", 2, 0, kernel=(1, 1)),
    "op/linear/bias": linear_case(True),
    "op/linear/no_bias": linear_case(False),
    "op/linear/time_major_bias": linear_case(True, x_shape=(3, 2, 5)),
    "op/genetic_linear/materialised_bias": genetic_linear_case("materialised", True),
    "op/genetic_linear/factored_bias": genetic_linear_case("factored", True),
    "op/genetic_linear/factored_no_bias_time_major": genetic_linear_case("factored", False, x_shape=(2, 3, 6)),
    "op/batch_norm/train_nchw": batch_norm_case(True),
    "op/batch_norm/eval_nchw": batch_norm_case(False),
    "op/batch_norm/train_nc": batch_norm_case(True, x_shape=(6, 3)),
    "op/batch_norm/train_nchw_no_affine_m0.3": batch_norm_case(True, affine=False, momentum=0.3),
    "op/lif/hard_sigmoid": lif_case("sigmoid", 4.0),
    "op/lif/hard_atan": lif_case("atan", 2.0),
    "op/lif/hard_rectangular": lif_case("rectangular", 1.0),
    "op/lif/hard_sigmoid_detach_reset": lif_case("sigmoid", 4.0, detach_reset=True),
    "op/lif/hard_atan_tau1.5_vth0.8_vreset-0.2": lif_case("atan", 2.0, tau=1.5, v_th=0.8, v_reset=-0.2),
    "op/lif/soft_sigmoid": lif_case("sigmoid", 4.0, soft=True),
    "op/lif/soft_atan": lif_case("atan", 2.0, soft=True),
    "op/lif/soft_rectangular": lif_case("rectangular", 1.0, soft=True),
    "op/lif/soft_sigmoid_detach_reset": lif_case("sigmoid", 4.0, soft=True, detach_reset=True),
    "op/avg_pool2d/k2": pool_case("avg_pool2d", 2, None, 0),
    "op/avg_pool2d/k3_s1_p1": pool_case("avg_pool2d", 3, 1, 1),
    "op/avg_pool2d/k2x3_s1x2_p1x1": pool_case("avg_pool2d", [2, 3], [1, 2], [1, 1]),
    "op/max_pool2d/k2": pool_case("max_pool2d", 2, None, 0),
    "op/max_pool2d/k3_s2_p1": pool_case("max_pool2d", 3, 2, 1),
    "op/global_avg_pool2d/nchw": unary_case(F + "global_avg_pool2d", "global average pool [N, C, H, W] -> [N, C]",
                                            (2, 3, 4, 5)),
    "op/flatten/start1": unary_case(F + "flatten", "flatten from axis 1", (2, 3, 2, 2), {"start_dim": 1}),
    "op/flatten/start2": unary_case(F + "flatten", "flatten from axis 2", (2, 3, 2, 2), {"start_dim": 2}),
    "op/reshape/split_time": unary_case(F + "reshape", "reshape [T*N, C] -> [T, N, C]", (6, 4),
                                        {"shape": [3, 2, 4]}),
    "op/add/same_shape": binary_case(F + "add", "a + b, same shapes", (2, 3, 4), (2, 3, 4)),
    "op/add/broadcast": binary_case(F + "add", "a + b, b broadcast over N, H, W", (2, 3, 2, 2), (3, 1, 1)),
    "op/mul/broadcast": binary_case(F + "mul", "a * b, b broadcast over the leading axis", (3, 4), (1, 4)),
    "op/sum/all": unary_case(F + "sum", "sum of all elements", (3, 4)),
    "op/mean/all": unary_case(F + "mean", "mean of all elements", (3, 4)),
    "op/mean_over_time/readout": unary_case(F + "mean_over_time", "readout: mean over t of [T, N, K]",
                                            (4, 2, 3), extra=conv.READOUT),
    "op/cross_entropy/mean": cross_entropy_case(),
    "op/mse/mean": binary_case(F + "mse", "mean squared error", (3, 4), (3, 4), extra=conv.LOSS),
    "op/repeat_time/direct_encoding": unary_case(
        F + "repeat_time", "direct encoding: [N, C] repeated T=3 times -> [T*N, C] "
        "(backward sums over t)", (2, 3), {"time_steps": 3}),
}
