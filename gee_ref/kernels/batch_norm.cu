// Batch normalisation per channel, forward and backward (gee_ref/ops/batch_norm.py, whose plain
// xp code is the reference; DESIGN.md section 3; Ioffe & Szegedy 2015):
//
//   training:  mu = mean(x),  var = mean((x - mu)^2)                        (biased)
//              running_mean <- (1 - m) running_mean + m mu
//              running_var  <- (1 - m) running_var  + m var n / (n - 1)     (unbiased)
//   both:      x_hat = (x - mu) inv_std,  inv_std = 1 / sqrt(var + eps),  y = gamma x_hat + beta
//   backward:  dgamma = sum(dy x_hat),  dbeta = sum(dy),  scale = gamma inv_std  (inv_std without gamma)
//              training: dx = scale dy - x_hat (scale dgamma / n) - scale dbeta / n
//              eval:     dx = scale dy
//   (the training line is (n dx_hat - sum(dx_hat) - x_hat sum(dx_hat x_hat)) inv_std / n with
//   dx_hat = gamma dy, since sum(dx_hat) = gamma dbeta and sum(dx_hat x_hat) = gamma dgamma)
//
// Layout: x (and dy, x_hat, y) is contiguous and seen as [N, C, S], S = H W for an [N, C, H, W]
// input and S = 1 for [N, C]. Channel c holds n = N S values; its value j (0 <= j < n) is the
// element (j / S) C S + c S + j % S.
//
// The per-channel sums take two kernels and no shared memory, atomics or barrier (so that the
// result does not depend on how threads are scheduled, and g++ can run the same source thread
// after thread):
//   stage 1, one thread per (channel c, lane l), 0 <= l < L: the lane walks the values
//            j = l, l + L, l + 2L, ... of its channel; neighbouring lanes read neighbouring
//            values, so a warp's loads coalesce. For an [N, C] input (S = 1) the channels are the
//            neighbours in memory, so there the thread number runs over channels first.
//   stage 2, one thread per channel: combines the channel's L lanes, in lane order.
// Both stages add in double, for float data too: more accurate than the float sums of the plain
// code (which is why fused and plain agree to 1e-5, not bit for bit, in float32).
//
// The variance is centred, as in the plain code, but in one pass. Every value is first shifted
// by its channel's first value K = x[0, c, 0] (v = x - K, the "shifted data" of Chan, Golub and
// LeVeque 1983), so that the means below are of the size of the spread, not of |mu|. Each lane
// keeps Welford's running mean and sum of squared deviations M2 of its v (Welford 1962),
//   k <- k + 1,  d = v - mean,  mean <- mean + d / k,  M2 <- M2 + d (v - mean),
// and stage 2 adds the lanes' M2 and their spread about the channel mean (Chan, Golub and
// LeVeque 1979, the within- plus between-lane sum of squares):
//   mu_v = sum_l n_l mean_l / n,   n var = sum_l (M2_l + n_l (mean_l - mu_v)^2),   mu = K + mu_v.
// sum(x^2)/n - mu^2 would lose digits in proportion to (mu / sigma)^2; here the rounding grows
// at most with |K - mu| / sigma, and K is one of the channel's own values.
//
// The per-element kernels (bn_normalise, bn_backward_dx) do the plain code's operations in its
// order, in `real`; compiled with fused multiply-add off, in eval mode (same mu and inv_std)
// x_hat and y come out bit for bit as the plain code's. Scalars (momentum, eps) arrive as double
// and a scalar-only expression (1 - m, n / (n - 1)) is rounded to `real` once, where it meets
// an array value, as NumPy does with Python scalars.

#ifndef REAL
#error "compile with -DREAL=float or -DREAL=double"
#endif
typedef REAL real;

// index_t (int or long long) comes from index_type.cuh, which compiler.source_text puts first.

// Stage-1 thread number k -> (channel, lane); see the layout notes above.
__device__ void channel_and_lane(index_t k, index_t channels, index_t spatial, index_t lanes,
                                 index_t* channel, index_t* lane)
{
    if (spatial == 1) {
        *channel = k % channels;
        *lane = k / channels;
    } else {
        *channel = k / lanes;
        *lane = k % lanes;
    }
}

// Lane l's walk from value j = n S + s of a channel to value j + L: L / S images on and L % S
// positions on, with a carry, instead of dividing j by S at every step.
__device__ void next_value_of_lane(index_t* n, index_t* s, index_t step_n, index_t step_s,
                                   index_t spatial)
{
    *n += step_n;
    *s += step_s;
    if (*s >= spatial) {
        *s -= spatial;
        *n += 1;
    }
}

// Number of values lane l of a channel of n values visits: those j = l + iL with j < n.
__device__ index_t lane_count(index_t values, index_t lane, index_t lanes)
{
    return (values - lane + lanes - 1) / lanes;
}

// Stage 1 of the forward statistics: each lane's Welford mean and M2 of v = x - K (in double),
// stored at index c L + l of lane_mean and lane_m2; the lane steps from value j to j + L by
// next_value_of_lane.
extern "C" __global__ void bn_lane_moments(const real* x, double* lane_mean, double* lane_m2,
                                           index_t batch, index_t channels, index_t spatial,
                                           index_t lanes)
{
    const index_t values = batch * spatial, step_n = lanes / spatial, step_s = lanes % spatial;
    index_t stride = (index_t)blockDim.x * (index_t)gridDim.x;
    for (index_t k = (index_t)blockIdx.x * (index_t)blockDim.x + (index_t)threadIdx.x; k < channels * lanes; k += stride) {
        index_t c, l;
        channel_and_lane(k, channels, spatial, lanes, &c, &l);
        index_t n = l / spatial, s = l % spatial;
        const double shift = (double)x[c * spatial];  // K, value j = 0 of channel c
        double seen = 0.0, mean = 0.0, m2 = 0.0;
        for (index_t j = l; j < values; j += lanes) {
            double v = (double)x[(n * channels + c) * spatial + s] - shift;
            seen += 1.0;
            double d = v - mean;
            mean += d / seen;
            m2 += d * (v - mean);
            next_value_of_lane(&n, &s, step_n, step_s, spatial);
        }
        lane_mean[c * lanes + l] = mean;
        lane_m2[c * lanes + l] = m2;
    }
}

// Stage 2 of the forward statistics, one thread per channel: mu = K + mu_v and the biased var from
// the lanes (within- plus between-lane sum of squares), then, in `real`,
//   mean = mu,  inv_std = 1 / sqrt(var + eps),
//   running_mean <- (1 - m) running_mean + m mu             (if update_mean)
//   running_var  <- (1 - m) running_var + m var (n / (n - 1))  (if update_var)
extern "C" __global__ void bn_forward_statistics(const real* x, const double* lane_mean, const double* lane_m2,
                                                 real* mean, real* inv_std,
                                                 real* running_mean, real* running_var,
                                                 index_t channels, index_t spatial, index_t values,
                                                 index_t lanes, double momentum, double eps,
                                                 int update_mean, int update_var)
{
    index_t stride = (index_t)blockDim.x * (index_t)gridDim.x;
    for (index_t c = (index_t)blockIdx.x * (index_t)blockDim.x + (index_t)threadIdx.x; c < channels; c += stride) {
        const double* means = lane_mean + c * lanes;
        const double* m2s = lane_m2 + c * lanes;
        double total = 0.0;
        for (index_t l = 0; l < lanes; ++l)
            total += (double)lane_count(values, l, lanes) * means[l];
        double mu_v = total / (double)values;
        double squares = 0.0;
        for (index_t l = 0; l < lanes; ++l) {
            double d = means[l] - mu_v;
            squares += m2s[l] + (double)lane_count(values, l, lanes) * d * d;
        }
        real mean_r = (real)((double)x[c * spatial] + mu_v);
        real var_r = (real)(squares / (double)values);
        real root = sqrt(var_r + (real)eps);  // correctly rounded (g++ in the tests: in double, then rounded)
        mean[c] = mean_r;
        inv_std[c] = (real)1.0 / root;
        if (update_mean)
            running_mean[c] = (real)(1.0 - momentum) * running_mean[c] + (real)momentum * mean_r;
        if (update_var)
            running_var[c] = (real)(1.0 - momentum) * running_var[c]
                             + (real)momentum * var_r * (real)((double)values / (double)(values - 1));
    }
}

// One thread per element k of x: x_hat = (x - mean) inv_std, and y = gamma x_hat + beta with
// whichever of gamma and beta is there (y is not written when neither is: y is x_hat then).
extern "C" __global__ void bn_normalise(const real* x, const real* mean, const real* inv_std,
                                        const real* gamma, const real* beta, real* x_hat, real* y,
                                        index_t total, index_t channels, index_t spatial,
                                        int has_gamma, int has_beta)
{
    index_t stride = (index_t)blockDim.x * (index_t)gridDim.x;
    for (index_t k = (index_t)blockIdx.x * (index_t)blockDim.x + (index_t)threadIdx.x; k < total; k += stride) {
        index_t c = (k / spatial) % channels;
        real normalised = (x[k] - mean[c]) * inv_std[c];
        x_hat[k] = normalised;
        if (has_gamma || has_beta) {
            real out = has_gamma ? normalised * gamma[c] : normalised;
            if (has_beta)
                out = out + beta[c];
            y[k] = out;
        }
    }
}

// Stage 1 of the backward sums: each lane's sum(dy) and sum(dy x_hat), in double, at index
// c L + l (the same walk as bn_lane_moments).
extern "C" __global__ void bn_lane_gradient_sums(const real* dy, const real* x_hat,
                                                 double* lane_sum_dy, double* lane_sum_dy_x_hat,
                                                 index_t batch, index_t channels, index_t spatial,
                                                 index_t lanes)
{
    const index_t values = batch * spatial, step_n = lanes / spatial, step_s = lanes % spatial;
    index_t stride = (index_t)blockDim.x * (index_t)gridDim.x;
    for (index_t k = (index_t)blockIdx.x * (index_t)blockDim.x + (index_t)threadIdx.x; k < channels * lanes; k += stride) {
        index_t c, l;
        channel_and_lane(k, channels, spatial, lanes, &c, &l);
        index_t n = l / spatial, s = l % spatial;
        double sum_dy = 0.0, sum_dy_x_hat = 0.0;
        for (index_t j = l; j < values; j += lanes) {
            index_t at = (n * channels + c) * spatial + s;
            double g = (double)dy[at];
            sum_dy += g;
            sum_dy_x_hat += g * (double)x_hat[at];
            next_value_of_lane(&n, &s, step_n, step_s, spatial);
        }
        lane_sum_dy[c * lanes + l] = sum_dy;
        lane_sum_dy_x_hat[c * lanes + l] = sum_dy_x_hat;
    }
}

// Stage 2 of the backward sums, one thread per channel, lanes added in order: dbeta = sum(dy),
// dgamma = sum(dy x_hat), and the per-channel coefficients of dx in training mode,
//   a = scale dgamma / n,   b = scale dbeta / n,   scale = gamma inv_std (rounded to `real`, as
// the plain code forms it), each formed in double and rounded to `real` once.
extern "C" __global__ void bn_backward_totals(const double* lane_sum_dy, const double* lane_sum_dy_x_hat,
                                              const real* gamma, const real* inv_std,
                                              real* grad_gamma, real* grad_beta, real* a, real* b,
                                              index_t channels, index_t values, index_t lanes,
                                              int has_gamma)
{
    index_t stride = (index_t)blockDim.x * (index_t)gridDim.x;
    for (index_t c = (index_t)blockIdx.x * (index_t)blockDim.x + (index_t)threadIdx.x; c < channels; c += stride) {
        double sum_dy = 0.0, sum_dy_x_hat = 0.0;
        for (index_t l = 0; l < lanes; ++l) {
            sum_dy += lane_sum_dy[c * lanes + l];
            sum_dy_x_hat += lane_sum_dy_x_hat[c * lanes + l];
        }
        double scale = (double)(has_gamma ? gamma[c] * inv_std[c] : inv_std[c]);
        grad_beta[c] = (real)sum_dy;
        grad_gamma[c] = (real)sum_dy_x_hat;
        a[c] = (real)(scale * sum_dy_x_hat / (double)values);
        b[c] = (real)(scale * sum_dy / (double)values);
    }
}

// One thread per element k, scale = gamma inv_std (or inv_std), in the plain code's order:
//   training: dx = (scale dy - x_hat a) - b
//   eval:     dx = scale dy                    (a and b are not read)
extern "C" __global__ void bn_backward_dx(const real* dy, const real* x_hat, const real* inv_std,
                                          const real* gamma, const real* a, const real* b, real* grad_x,
                                          index_t total, index_t channels, index_t spatial,
                                          int has_gamma, int training)
{
    index_t stride = (index_t)blockDim.x * (index_t)gridDim.x;
    for (index_t k = (index_t)blockIdx.x * (index_t)blockDim.x + (index_t)threadIdx.x; k < total; k += stride) {
        index_t c = (k / spatial) % channels;
        real scale = has_gamma ? gamma[c] * inv_std[c] : inv_std[c];
        real dx = dy[k] * scale;
        if (training)
            dx = dx - x_hat[k] * a[c] - b[c];
        grad_x[k] = dx;
    }
}
