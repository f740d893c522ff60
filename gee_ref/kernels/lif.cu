// Leaky integrate-and-fire neurons over T time steps, hard reset (DESIGN.md section 3,
// gee_ref/ops/lif.py). One thread per neuron m walks its own time axis, so the membrane
// potential V stays in a register: the plain xp code launches about ten elementwise
// kernels per time step, this file launches one kernel for all of them.
//
// Layout: every [T, N, ...] array is contiguous and seen as [T, M] (M = N * ...), so
// neuron m at step t is element t * M + m.
//
// Rounding follows NumPy's rule for Python scalars: tau, v_th, v_reset and alpha arrive
// as double; a scalar-only expression (e.g. 1 - 1/tau) is evaluated in double and
// rounded to `real` once, where it meets an array value. Compiled with fused
// multiply-add off, every operation below is then the same IEEE operation, in the
// same order, as in gee_ref/ops/lif.py (the transcendental tanh and atan aside).

#ifndef REAL
#error "compile with -DREAL=float or -DREAL=double"
#endif
typedef REAL real;

// index_t (int or long long) comes from index_type.cuh, which compiler.source_text puts first.

// Surrogate codes, as numbered in gee_ref/kernels/lif_fused.py.
#define SURROGATE_SIGMOID 0
#define SURROGATE_ATAN 1
#define SURROGATE_RECTANGULAR 2

// p'(x), the surrogate gradient of Heaviside at x = H - v_th (gee_ref/ops/surrogate.py):
//   sigmoid:     p' = alpha s (1 - s), s = sigmoid(alpha x), as alpha u / (1 + u)^2 with
//                u = exp(-alpha |x|) (the same value, no cancellation in 1 - s near s = 1)
//   atan:        z = pi/2 alpha x,                                    p' = (alpha/2) / (1 + z^2)
//   rectangular: width a = alpha,                                     p' = [|x| < a/2] / a
__device__ real surrogate_derivative(real x, int surrogate, double alpha)
{
    if (surrogate == SURROGATE_SIGMOID) {
        real u = exp(-((real)alpha * fabs(x)));
        return (real)alpha * u / (((real)1.0 + u) * ((real)1.0 + u));
    }
    if (surrogate == SURROGATE_ATAN) {
        real z = (real)(0.5 * 3.141592653589793 * alpha) * x;
        return (real)(0.5 * alpha) / ((real)1.0 + z * z);
    }
    real inside = (fabs(x) < (real)(0.5 * alpha)) ? (real)1.0 : (real)0.0;
    return inside / (real)alpha;
}

// Forward, for each neuron, t = 0 .. T-1 with V = v_reset before the first step:
//   charge:  H_t = V_{t-1} + (X_t - (V_{t-1} - v_reset)) / tau
//   fire:    S_t = Heaviside(H_t - v_th)          (1 where H_t - v_th >= 0)
//   reset:   V_t = H_t (1 - S_t) + v_reset S_t
// Writes S (the spikes) and H (kept for the backward pass).
extern "C" __global__ void lif_forward(const real* x, real* spikes, real* h_out,
                                       index_t steps, index_t neurons,
                                       double tau, double v_th, double v_reset)
{
    const real tau_r = (real)tau, v_th_r = (real)v_th, v_reset_r = (real)v_reset;
    index_t stride = (index_t)blockDim.x * (index_t)gridDim.x;
    for (index_t m = (index_t)blockIdx.x * (index_t)blockDim.x + (index_t)threadIdx.x; m < neurons; m += stride) {
        real v = v_reset_r;
        for (index_t t = 0; t < steps; ++t) {
            index_t k = t * neurons + m;
            real h = v + (x[k] - (v - v_reset_r)) / tau_r;
            real s = (h - v_th_r >= (real)0.0) ? (real)1.0 : (real)0.0;
            h_out[k] = h;
            spikes[k] = s;
            v = h * ((real)1.0 - s) + v_reset_r * s;
        }
    }
}

// Backward (BPTT through V), for each neuron, t = T-1 .. 0 with dL/dV_{T-1} = 0 and
// S_t recomputed from H_t:
//   dL/dS_t     = g_t + dL/dV_t (v_reset - H_t)    (reset term dropped if detach_reset)
//   dL/dH_t     = dL/dS_t p'(H_t - v_th) + dL/dV_t (1 - S_t)
//   dL/dX_t     = dL/dH_t / tau
//   dL/dV_{t-1} = dL/dH_t (1 - 1/tau)
extern "C" __global__ void lif_backward(const real* grad, const real* h_in, real* grad_x,
                                        index_t steps, index_t neurons,
                                        double tau, double v_th, double v_reset,
                                        int surrogate, double alpha, int detach_reset)
{
    const real tau_r = (real)tau, v_th_r = (real)v_th, v_reset_r = (real)v_reset;
    const real decay = (real)(1.0 - 1.0 / tau);
    index_t stride = (index_t)blockDim.x * (index_t)gridDim.x;
    for (index_t m = (index_t)blockIdx.x * (index_t)blockDim.x + (index_t)threadIdx.x; m < neurons; m += stride) {
        real grad_v = (real)0.0;
        for (index_t t = steps - 1; t >= 0; --t) {
            index_t k = t * neurons + m;
            real h = h_in[k];
            real x = h - v_th_r;
            real s = (x >= (real)0.0) ? (real)1.0 : (real)0.0;
            real grad_s = grad[k];
            if (!detach_reset)
                grad_s = grad_s + grad_v * (v_reset_r - h);
            real grad_h = grad_s * surrogate_derivative(x, surrogate, alpha) + grad_v * ((real)1.0 - s);
            grad_x[k] = grad_h / tau_r;
            grad_v = grad_h * decay;
        }
    }
}
