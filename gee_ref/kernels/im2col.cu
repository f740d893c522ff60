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

// index_t (int or long long) comes from index_type.cuh, which compiler.source_text puts first.

// im2col: one thread per entry of cols (row-major, contiguous). The input is read through
// its element strides (x_strides[0..3] for its axes [C, N, H, W]), so a transposed view
// of an [N, C, H, W] array, or any other strided view, needs no copy.
extern "C" __global__ void im2col(const real* x, real* cols,
                                  index_t channels, index_t batch, index_t height, index_t width,
                                  index_t stride_c, index_t stride_n, index_t stride_h, index_t stride_w,
                                  index_t kh, index_t kw, index_t sh, index_t sw,
                                  index_t ph, index_t pw, index_t out_h, index_t out_w)
{
    index_t positions = batch * out_h * out_w;        // columns of cols: (n, p, q)
    index_t total = channels * kh * kw * positions;
    index_t step = (index_t)blockDim.x * (index_t)gridDim.x;
    for (index_t k = (index_t)blockIdx.x * (index_t)blockDim.x + (index_t)threadIdx.x; k < total; k += step) {
        index_t row = k / positions, column = k % positions;
        index_t j = row % kw, i = (row / kw) % kh, c = row / (kw * kh);
        index_t q = column % out_w, p = (column / out_w) % out_h, n = column / (out_w * out_h);
        index_t y = sh * p + i - ph;                  // row of x (unpadded) read by offset i
        index_t z = sw * q + j - pw;                  // column of x (unpadded) read by offset j
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
                                  index_t channels, index_t batch, index_t height, index_t width,
                                  index_t cols_stride_row, index_t cols_stride_column,
                                  index_t kh, index_t kw, index_t sh, index_t sw,
                                  index_t ph, index_t pw, index_t out_h, index_t out_w)
{
    index_t total = batch * channels * height * width;
    index_t step = (index_t)blockDim.x * (index_t)gridDim.x;
    for (index_t k = (index_t)blockIdx.x * (index_t)blockDim.x + (index_t)threadIdx.x; k < total; k += step) {
        index_t z = k % width + pw, y = (k / width) % height + ph;   // padded position
        index_t c = (k / (width * height)) % channels, n = k / (width * height * channels);
        real sum = (real)0.0;
        for (index_t i = 0; i < kh; ++i) {
            index_t y_from_top = y - i;                // = s_h p for the p that offset i serves
            if (y_from_top < 0 || y_from_top % sh != 0 || y_from_top / sh >= out_h)
                continue;
            index_t p = y_from_top / sh;
            for (index_t j = 0; j < kw; ++j) {
                index_t z_from_left = z - j;
                if (z_from_left < 0 || z_from_left % sw != 0 || z_from_left / sw >= out_w)
                    continue;
                index_t q = z_from_left / sw;
                index_t row = (c * kh + i) * kw + j, column = (n * out_h + p) * out_w + q;
                sum += cols[row * cols_stride_row + column * cols_stride_column];
            }
        }
        x[k] = sum;
    }
}
