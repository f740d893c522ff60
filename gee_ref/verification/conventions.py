"""The numerical conventions every golden case states as HDF5 attributes (DESIGN.md section 3, 4).

Another implementation agrees with gee_ref only if it makes the same choices; each case
carries the ones that affect it, so a mismatch can be read off the file rather than guessed.
"""
from __future__ import annotations

LAYOUT = {
    "dtype": "float64",
    "layout": "NCHW images; spiking activations time-major [T, N, ...], stateless layers on the merged [T*N, ...]",
}

CONV = {
    "conv_weight_layout": "w [C_out, C_in, kh, kw]; cross-correlation (no kernel flip), zero padding",
    "im2col_row_order": "rows (c_in, i, j): C_in-major, then kh, then kw (= w.reshape(C_out, -1))",
}

GENETIC = {
    "genetic_weight": "W = X_out @ G @ X_in.T, X_out [C_out, g], G [g, g], X_in [C_in*kh*kw, g] (rows in "
                      "im2col order), W viewed as [C_out, C_in, kh, kw]; Linear: W [out, in]",
}

LINEAR = {"linear_weight_layout": "y = x @ w.T + b, w [out, in], leading axes of x kept"}

POOL = {
    "pool_convention": "PyTorch defaults: stride = kernel when None, zero padding counted in the average "
                       "(count_include_pad), floor output size, max-pool ties go to the first window "
                       "position in row-major order, padding <= kernel/2",
}

LOSS = {
    "cross_entropy": "mean over the batch of -log softmax(logits)[label]; labels int64, not differentiated",
    "mse": "mean over all elements of (a - b)^2",
}

READOUT = {"readout": "logits = mean over t of the last layer's outputs [T, N, K] -> [N, K]"}


def lif(tau=2.0, v_th=1.0, v_reset=0.0, surrogate="sigmoid", alpha=4.0, detach_reset=False, soft=False):
    """LIF attributes: the equations (charge, fire, reset) and every knob."""
    return {
        "lif_equations": "H_t = V_{t-1} + (X_t - (V_{t-1} - v_reset)) / tau; S_t = Heaviside(H_t - v_th) "
                         "(1 at 0) or, soft, p(H_t - v_th); V_t = H_t (1 - S_t) + v_reset S_t; V_0 = v_reset",
        "lif_tau": float(tau), "lif_v_th": float(v_th), "lif_v_reset": float(v_reset),
        "lif_reset": "hard", "lif_decay_input": True,
        "lif_surrogate": surrogate, "lif_alpha": float(alpha),
        "lif_surrogate_formula": SURROGATE_FORMULAS[surrogate],
        "lif_detach_reset": bool(detach_reset), "lif_soft": bool(soft),
        "lif_backward": "BPTT through V; dS/dH = p'(H - v_th); detach_reset drops dV_t/dS_t",
    }


SURROGATE_FORMULAS = {
    "sigmoid": "p = sigmoid(alpha x), p' = alpha p (1 - p)",
    "atan": "p = arctan(pi/2 alpha x)/pi + 1/2, p' = alpha/2 / (1 + (pi/2 alpha x)^2)",
    "rectangular": "p = clip(x/alpha + 1/2, 0, 1), p' = [|x| < alpha/2] / alpha (alpha = width)",
}


def batch_norm(eps=1e-5, momentum=0.1, training=True):
    """BatchNorm attributes."""
    return {
        "bn_eps": float(eps), "bn_momentum": float(momentum), "bn_training": bool(training),
        "bn_statistics": "per channel over (N, H, W) of [N, C, H, W] or over N of [N, C]; N may be T*N",
        "bn_variance": "biased variance normalises; running_var <- (1-m) running_var + m var n/(n-1) "
                       "(unbiased, PyTorch), running_mean <- (1-m) running_mean + m mean",
    }


def network(time_steps, lif_attrs, bn_attrs):
    """Attributes of a whole-network case: every convention it mixes."""
    attrs = {**LAYOUT, **CONV, **GENETIC, **LINEAR, **POOL, **LOSS, **READOUT, **lif_attrs, **bn_attrs}
    attrs["time_steps"] = int(time_steps)
    attrs["input_encoding"] = ("direct: the image is repeated T times; the stem (first conv + BN) runs "
                               "once on [N, ...] and is then repeated, so the stem BN's running_var uses "
                               "n = N*H*W (not T*N*H*W)")
    return attrs
