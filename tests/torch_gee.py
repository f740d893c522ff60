"""An independent PyTorch implementation (float64, CPU) of gee_ref's ops and of a genetic ResNet block.

Written from the equations of DESIGN.md (sections 3 and 4), not from gee_ref's code: PyTorch's
own conv2d, batch_norm, pools and cross_entropy do the work, the genetic weight is formed
as W = X_out @ G @ X_in.T and reshaped to [C_out, C_in, kh, kw] (its rows follow PyTorch's
weight flattening order), and the LIF neuron is a loop over t with an autograd.Function whose
backward is the surrogate gradient. Used by tests/test_torch_against_golden.py to check
gee_ref's golden file, and as a worked example of writing a candidate file.

Functions take the same argument names as ``gee_ref.autograd.functional``, so a golden case's
inputs and params can be passed to them as keywords.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DTYPE = torch.float64


def _pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


# ---------------------------------------------------------------- weight layers (eq. 1)

def genetic_weight(x_out, g, x_in):
    """Eq. 1: W = X_out @ G @ X_in.T, [C_out, fan_in]."""
    return x_out @ g @ x_in.T


def conv2d(x, w, stride=1, padding=0):
    return F.conv2d(x, w, stride=_pair(stride), padding=_pair(padding))


def genetic_conv2d(x, x_out, g, x_in, kernel_size, stride=1, padding=0, path=None):
    """A conv2d whose weight is eq. 1's W viewed as [C_out, C_in, kh, kw]; ``path`` is ignored."""
    kh, kw = _pair(kernel_size)
    w = genetic_weight(x_out, g, x_in).reshape(x_out.shape[0], x.shape[1], kh, kw)
    return conv2d(x, w, stride, padding)


def linear(x, w, b=None):
    return F.linear(x, w, b)


def genetic_linear(x, x_out, g, x_in, b=None, path=None):
    return F.linear(x, genetic_weight(x_out, g, x_in), b)


def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """PyTorch's batch norm: running stats updated in place, running var unbiased."""
    return F.batch_norm(x, running_mean, running_var, gamma, beta, training, momentum, eps)


# ---------------------------------------------------------------- LIF (DESIGN.md section 3)

def surrogate_primitive(x, name, alpha):
    if name == "sigmoid":
        return torch.sigmoid(alpha * x)
    if name == "atan":
        return torch.atan(math.pi / 2 * alpha * x) / math.pi + 0.5
    if name == "rectangular":
        return torch.clamp(x / alpha + 0.5, 0.0, 1.0)
    raise ValueError(f"unknown surrogate {name!r}")


def surrogate_derivative(x, name, alpha):
    if name == "sigmoid":
        s = torch.sigmoid(alpha * x)
        return alpha * s * (1.0 - s)
    if name == "atan":
        return (alpha / 2) / (1.0 + (math.pi / 2 * alpha * x) ** 2)
    if name == "rectangular":
        return (x.abs() < alpha / 2).to(x.dtype) / alpha
    raise ValueError(f"unknown surrogate {name!r}")


class HeavisideSpike(torch.autograd.Function):
    """S = [x >= 0] forward; dS/dx = the surrogate's derivative backward."""

    @staticmethod
    def forward(ctx, x, name, alpha):
        ctx.save_for_backward(x)
        ctx.name, ctx.alpha = name, alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * surrogate_derivative(x, ctx.name, ctx.alpha), None, None


def lif(x_seq, tau=2.0, v_th=1.0, v_reset=0.0, surrogate="sigmoid", alpha=4.0, detach_reset=False, soft=False):
    """Spikes [T, N, ...]: H = V + (X - (V - v_reset))/tau, S = spike(H - v_th), V = H(1-S) + v_reset S."""
    v = torch.full_like(x_seq[0], v_reset)
    spikes = []
    for t in range(x_seq.shape[0]):
        h = v + (x_seq[t] - (v - v_reset)) / tau
        if soft:
            s = surrogate_primitive(h - v_th, surrogate, alpha)
        else:
            s = HeavisideSpike.apply(h - v_th, surrogate, alpha)
        s_reset = s.detach() if detach_reset else s
        v = h * (1.0 - s_reset) + v_reset * s_reset
        spikes.append(s)
    return torch.stack(spikes)


# ---------------------------------------------------------------- the rest of the ops

def avg_pool2d(x, kernel_size, stride=None, padding=0):
    return F.avg_pool2d(x, _pair(kernel_size), None if stride is None else _pair(stride), _pair(padding),
                        ceil_mode=False, count_include_pad=True)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    return F.max_pool2d(x, _pair(kernel_size), None if stride is None else _pair(stride), _pair(padding))


def global_avg_pool2d(x):
    return x.mean(dim=(2, 3))


def flatten(x, start_dim=1):
    return torch.flatten(x, start_dim)


def reshape(x, shape):
    return x.reshape(tuple(shape))


def add(a, b):
    return a + b


def mul(a, b):
    return a * b


def sum(x):  # noqa: A001 - the op's name
    return x.sum()


def mean(x):
    return x.mean()


def mean_over_time(x):
    return x.mean(dim=0)


def cross_entropy(logits, labels):
    return F.cross_entropy(logits, labels)


def mse(a, b):
    return F.mse_loss(a, b)


def repeat_time(x, time_steps):
    """Direct encoding: [N, ...] -> [T*N, ...], time-major."""
    return x.unsqueeze(0).expand((time_steps,) + tuple(x.shape)).reshape((time_steps * x.shape[0],) + x.shape[1:])


def best_rank_g(w, g):
    """Eq. 6-7: the best rank-g approximation U_g S_g V_g^T of w (flattened to [C_out, fan_in])."""
    u, s, vh = torch.linalg.svd(w.reshape(w.shape[0], -1), full_matrices=False)
    return (u[:, :g] * s[:g]) @ vh[:g]


# ---------------------------------------------------------------- fitness terms (eq. 13-16)

def temporal_difference(spikes):
    """Eq. 13: mean over layers of mean over (n, i) of 1/(T-1) sum_t |S_{t+1} - S_t|."""
    per_layer = [(s[1:] - s[:-1]).abs().sum(dim=0).mean() / (s.shape[0] - 1) for s in spikes]
    return torch.stack(per_layer).mean()


def spatial_entropy(G):
    """Eq. 14-15: P = |G| / sum|G|, R_S = -sum P log P / log(g^2), 0 log 0 = 0."""
    p = G.abs() / G.abs().sum()
    terms = torch.where(p > 0, p * torch.log(torch.where(p > 0, p, torch.ones_like(p))), torch.zeros_like(p))
    return -terms.sum() / math.log(G.shape[0] ** 2)


def dynamic_fitness(loss, r_t, r_s, generation, alpha, beta):
    """Eq. 16: F = L_cls - (alpha R_T + beta R_S) / (1 + generation)."""
    return loss - (alpha * r_t + beta * r_s) / (1.0 + generation)


# ---------------------------------------------------------------- networks

def _split(x, time_steps):
    return x.reshape((time_steps, x.shape[0] // time_steps) + tuple(x.shape[1:]))


def _merge(x):
    return x.reshape((x.shape[0] * x.shape[1],) + tuple(x.shape[2:]))


def lif_layer(x, time_steps, **settings):
    """A LIF layer on the merged [T*N, ...] view: split time, run, merge back; also the spikes."""
    spikes = lif(_split(x, time_steps), **settings)
    return _merge(spikes), spikes


def genetic_basic_block(x, p, buffers, stride, time_steps, training=True):
    """out = LIF(BN(gconv3x3(LIF(BN(gconv3x3_s(x))))) + shortcut(x)), every conv genetic with one G.

    ``p`` maps gee_ref's parameter names (``genes.G``, ``conv1.x_out``, ``bn1.gamma``, ...) to
    tensors; ``buffers`` the BN running statistics (updated in place). Returns (out, spikes by
    LIF name).
    """
    G = p["genes.G"]

    def bn(h, name):
        return batch_norm(h, p[f"{name}.gamma"], p[f"{name}.beta"], buffers[f"{name}.running_mean"],
                          buffers[f"{name}.running_var"], training)

    h = genetic_conv2d(x, p["conv1.x_out"], G, p["conv1.x_in"], 3, stride=stride, padding=1)
    h, s1 = lif_layer(bn(h, "bn1"), time_steps)
    h = bn(genetic_conv2d(h, p["conv2.x_out"], G, p["conv2.x_in"], 3, stride=1, padding=1), "bn2")
    if "shortcut.0.x_out" in p:
        skip = bn(genetic_conv2d(x, p["shortcut.0.x_out"], G, p["shortcut.0.x_in"], 1, stride=stride), "shortcut.1")
    else:
        skip = x
    out, s2 = lif_layer(h + skip, time_steps)
    return out, {"lif1": s1, "lif2": s2}


def layered_network(x, layers, p, buffers, training=True):
    """A spiking network given as a list of layer records (the golden file's ``layers``).

    Returns (logits, spikes by LIF layer name). Genetic layers read ``genes.G``; a chained
    genetic Linear layer (eq. 3) reads the parameter its record names as ``x_in``.
    """
    spikes, time_steps = {}, None
    for layer in layers:
        kind, name = layer["type"], layer.get("name")
        if kind == "genetic_conv2d":
            x = genetic_conv2d(x, p[f"{name}.x_out"], p["genes.G"], p[f"{name}.x_in"], layer["kernel_size"],
                               layer["stride"], layer["padding"])
        elif kind == "conv2d":
            x = conv2d(x, p[f"{name}.w"], layer["stride"], layer["padding"])
        elif kind == "genetic_linear":
            x_in = p[layer.get("x_in", f"{name}.x_in")]  # eq. 3: possibly the previous layer's X_out
            x = genetic_linear(x, p[f"{name}.x_out"], p["genes.G"], x_in, p.get(f"{name}.b"))
        elif kind == "linear":
            x = linear(x, p[f"{name}.w"], p.get(f"{name}.b"))
        elif kind == "batch_norm":
            x = batch_norm(x, p[f"{name}.gamma"], p[f"{name}.beta"], buffers[f"{name}.running_mean"],
                           buffers[f"{name}.running_var"], training, layer["momentum"], layer["eps"])
        elif kind == "lif":
            settings = {k: layer[k] for k in ("tau", "v_th", "v_reset", "surrogate", "alpha", "detach_reset", "soft")}
            x, spikes[name] = lif_layer(x, time_steps, **settings)
        elif kind == "repeat_time":
            time_steps = layer["time_steps"]
            x = repeat_time(x, time_steps)
        elif kind == "mean_over_time":
            x = mean_over_time(_split(x, time_steps))
        elif kind in ("avg_pool2d", "max_pool2d"):
            x = globals()[kind](x, layer["kernel_size"], layer["stride"], layer["padding"])
        elif kind == "global_avg_pool2d":
            x = global_avg_pool2d(x)
        elif kind == "flatten":
            x = flatten(x, 1)
        else:
            raise ValueError(f"no PyTorch layer for {kind!r}")
    return x, spikes
