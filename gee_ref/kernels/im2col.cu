// im2col and col2im for a 2-D convolution (gee_ref/ops/im2col.py; DESIGN.md section 4,
// eq. 1: the column matrix that the weight matrix W multiplies).
//
//   cols[(c, i, j), (n, p, q)] = x_pad[n, c, s_h p + i, s_w q + j],   cols: [C kh kw, N Ho Wo]
//
// x_pad is x with ph (pw) zero rows (columns) on each side; no padded copy is made here:
// an index that falls in the padding reads as zero. Both kernels are pure gathers (each
// thread writes one output element and nothing else), so no atomics and the result does
// not depend on the order in which threads run.

#ifndef REAL
#error "compile with -DREAL=float or -DREAL=double"
#endif
typedef REAL real;

// im2col: one thread per entry of cols (row-major, contiguous). The input is read through
// its element strides (x_strides[0..3] for its axes [C, N, H, W]), so a transposed view
// of an [N, C, H, W] array, or any other strided view, needs no copy.
extern "C" __global__ void im2col(const real* x, real* cols,
                                  long long channels, long long batch, long long height, long long width,
                                  long long stride_c, long long stride_n, long long stride_h, long long stride_w,
                                  long long kh, long long kw, long long sh, long long sw,
                                  long long ph, long long pw, long long out_h, long long out_w)
{
    long long positions = batch * out_h * out_w;        // columns of cols: (n, p, q)
    long long total = channels * kh * kw * positions;
    long long step = (long long)blockDim.x * gridDim.x;
    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < total; k += step) {
        long long row = k / positions, column = k % positions;
        long long j = row % kw, i = (row / kw) % kh, c = row / (kw * kh);
        long long q = column % out_w, p = (column / out_w) % out_h, n = column / (out_w * out_h);
        long long y = sh * p + i - ph;                  // row of x (unpadded) read by offset i
        long long z = sw * q + j - pw;                  // column of x (unpadded) read by offset j
        bool inside = y >= 0 && y < height && z >= 0 && z < width;
        cols[k] = inside ? x[c * stride_c + n * stride_n + y * stride_h + z * stride_w] : (real)0.0;
    }
}

// col2im, the adjoint: one thread per pixel of the [N, C, H, W] result (contiguous). The
// pixel at padded position (y, z) was read by every kernel offset (i, j) with
//   y = s_h p + i,  z = s_w q + j,  0 <= p < Ho,  0 <= q < Wo,
// so the thread sums those entries cols[(c, i, j), (n, p, q)], offsets in the order
// i, then j (the order in which the plain col2im adds its slices). cols is read through
// its two element strides (rows, columns).
extern "C" __global__ void col2im(const real* cols, real* x,
                                  long long channels, long long batch, long long height, long long width,
                                  long long cols_stride_row, long long cols_stride_column,
                                  long long kh, long long kw, long long sh, long long sw,
                                  long long ph, long long pw, long long out_h, long long out_w)
{
    long long total = batch * channels * height * width;
    long long step = (long long)blockDim.x * gridDim.x;
    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < total; k += step) {
        long long z = k % width + pw, y = (k / width) % height + ph;   // padded position
        long long c = (k / (width * height)) % channels, n = k / (width * height * channels);
        real sum = (real)0.0;
        for (long long i = 0; i < kh; ++i) {
            long long y_from_top = y - i;                // = s_h p for the p that offset i serves
            if (y_from_top < 0 || y_from_top % sh != 0 || y_from_top / sh >= out_h)
                continue;
            long long p = y_from_top / sh;
            for (long long j = 0; j < kw; ++j) {
                long long z_from_left = z - j;
                if (z_from_left < 0 || z_from_left % sw != 0 || z_from_left / sw >= out_w)
                    continue;
                long long q = z_from_left / sw;
                long long row = (c * kh + i) * kw + j, column = (n * out_h + p) * out_w + q;
                sum += cols[row * cols_stride_row + column * cols_stride_column];
            }
        }
        x[k] = sum;
    }
}
