// aw_kc_lowbit.cu - low-bit weight kernels of the CUDA backend: the Gram
// matrix of a layer's inputs, the dequantization of grouped codes, and the
// quantization steps of a block (ranges, group steps and codes, bias
// corrections, the search's objective, GPTQ's sweep) (aw_kc_lowbit.h).
//
// Row-major meets column-major: cuBLAS reads the row-major x (T, in) as the
// column-major matrix x^T (in, T) with leading dimension in, so ssyrk with
// op N gives C = x^T x. A column-major triangle entry (i, j) lives at
// h + i + j*in, which is the row-major (j, i): cuBLAS's UPPER (i <= j) is
// the row-major lower triangle (j >= i) the CPU fills, and the row-major
// upper triangle is never written.
#include <stdint.h>

#include "aw_cuda_check.h"
#include "aw_kc_lowbit.h"

static const unsigned AW_KC_MAX_BLOCKS = 1u << 16;

// ---- Gram matrix ----------------------------------------------------------------

// One thread per column j: abssum[j] += |x_tj| for t = 0 .. T-1 in order, in
// double, into the running value: the CPU's additions, in the CPU's order
// (bit-identical). A warp reads 32 consecutive floats of a row: coalesced.
__global__ void abssum_kernel(const float *__restrict__ x, int T, int in, double *abssum)
{
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < in; j += gridDim.x * blockDim.x) {
        double s = abssum[j];
        const float *p = x + j;
        for (int t = 0; t < T; t++, p += in) s += fabs((double)__ldg(p));
        abssum[j] = s;
    }
}

extern "C" aw_status aw_kc_gram_accum(aw_kc *k, const float *x, int T, int in, float *h, double *abssum)
{
    if (T <= 0 || in <= 0) return AW_OK;
    const float one = 1.0f;
    if (h)
        AW_CUBLAS_TRY(cublasSsyrk(k->blas, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, in, T, &one, x, in, &one, h,
                                  in));
    abssum_kernel<<<aw_kc_blocks((size_t)in, AW_KC_THREADS, AW_KC_MAX_BLOCKS), AW_KC_THREADS, 0,
                    k->stream>>>(x, T, in, abssum);
    AW_CUDA_LAUNCH("abssum_kernel");
    return AW_OK;
}

// ---- dequantization -------------------------------------------------------------------

// One thread per weight: (q - z) * step, one rounding (as the CPU).
__global__ void dequant_groups_kernel(const uint8_t *__restrict__ q, const float *__restrict__ step,
                                      const uint8_t *__restrict__ zero, int in, int gl, int ng,
                                      size_t n, float *__restrict__ w)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / (size_t)in;
        int j = (int)(i - r * (size_t)in);
        size_t p = r * (size_t)ng + (size_t)(j / gl);
        w[i] = __fmul_rn((float)((int)q[i] - (int)zero[p]), step[p]);
    }
}

extern "C" aw_status aw_kc_dequant_groups(aw_kc *k, const uint8_t *q, const float *step, const uint8_t *zero,
                                          int out, int in, int G, float *w)
{
    if (out <= 0 || in <= 0) return AW_OK;
    int gl = G > 0 && G < in ? G : in, ng = (in + gl - 1) / gl;
    size_t n = (size_t)out * in;
    dequant_groups_kernel<<<aw_kc_blocks(n, AW_KC_THREADS, AW_KC_MAX_BLOCKS), AW_KC_THREADS, 0,
                            k->stream>>>(q, step, zero, in, gl, ng, n, w);
    AW_CUDA_LAUNCH("dequant_groups_kernel");
    return AW_OK;
}

// ---- quantization of a block (aw_kc_lowbit.h: "quantization") ---------------------------

#include <cuda_bf16.h>
#include <cuda_fp16.h>

// 1.5 * 2^23: v + MAGIC - MAGIC is rint(v) for |v| <= 2^22 (aw_lowbit.c).
#define AW_KC_ROUND_MAGIC 12582912.0f

__global__ void widen_f16_kernel(const uint16_t *__restrict__ src, float *__restrict__ dst, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __half2float(__ushort_as_half(src[i]));
}

__global__ void widen_bf16_kernel(const uint16_t *__restrict__ src, float *__restrict__ dst, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __uint_as_float((uint32_t)src[i] << 16);
}

extern "C" aw_status aw_kc_widen(aw_kc *k, const void *src, aw_dtype sdt, float *dst, size_t n)
{
    if (n == 0) return AW_OK;
    if (sdt == AW_DT_F32) return aw_kc_copy(k, dst, src, n * sizeof(float));
    unsigned g = aw_kc_blocks(n, AW_KC_THREADS, AW_KC_MAX_BLOCKS);
    if (sdt == AW_DT_F16) {
        widen_f16_kernel<<<g, AW_KC_THREADS, 0, k->stream>>>((const uint16_t *)src, dst, n);
        AW_CUDA_LAUNCH("widen_f16_kernel");
    } else if (sdt == AW_DT_BF16) {
        widen_bf16_kernel<<<g, AW_KC_THREADS, 0, k->stream>>>((const uint16_t *)src, dst, n);
        AW_CUDA_LAUNCH("widen_bf16_kernel");
    } else {
        return AW_FAIL(AW_ERR_DTYPE, "CUDA widen: weights in %s (expected F32, F16 or BF16)", aw_dtype_name(sdt));
    }
    return AW_OK;
}

// One block per row: the max of |x| as int32 bit patterns (aw_k_absmax: a
// NaN anywhere gives NaN), exact.
__global__ void row_absmax_kernel(const float *__restrict__ w, int cols, float *__restrict__ rmax)
{
    __shared__ int sh[AW_KC_THREADS];
    const float *row = w + (size_t)blockIdx.x * cols;
    int m = 0;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        int b = (int)(__float_as_uint(row[j]) & 0x7fffffffu);
        m = b > m ? b : m;
    }
    sh[threadIdx.x] = m;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] = max(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    if (threadIdx.x == 0) rmax[blockIdx.x] = __uint_as_float((uint32_t)sh[0]);
}

extern "C" aw_status aw_kc_row_absmax(aw_kc *k, const float *w, int rows, int cols, float *rmax)
{
    if (rows <= 0) return AW_OK;
    row_absmax_kernel<<<(unsigned)rows, AW_KC_THREADS, 0, k->stream>>>(w, cols, rmax);
    AW_CUDA_LAUNCH("row_absmax_kernel");
    return AW_OK;
}

// One thread per column, rows in order: the CPU's comparisons (NaN passed
// over), bit-identical.
__global__ void col_absmax_kernel(const float *__restrict__ w, int rows, int cols, float *rw)
{
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < cols; j += gridDim.x * blockDim.x) {
        float m = rw[j];
        for (int i = 0; i < rows; i++) {
            float a = fabsf(w[(size_t)i * cols + j]);
            m = a > m ? a : m;
        }
        rw[j] = m;
    }
}

extern "C" aw_status aw_kc_col_absmax(aw_kc *k, const float *w, int rows, int cols, float *rw)
{
    if (rows <= 0 || cols <= 0) return AW_OK;
    col_absmax_kernel<<<aw_kc_blocks((size_t)cols, AW_KC_THREADS, AW_KC_MAX_BLOCKS), AW_KC_THREADS, 0,
                        k->stream>>>(w, rows, cols, rw);
    AW_CUDA_LAUNCH("col_absmax_kernel");
    return AW_OK;
}

// One warp per row: lanes take every 32nd input, partial sums in double,
// a fixed shuffle tree: deterministic, another order than the CPU's.
__global__ void bias_delta_kernel(const float *__restrict__ w, const int8_t *__restrict__ wq, float step,
                                  const float *__restrict__ deq, const double *__restrict__ mean, int rows,
                                  int cols, double *__restrict__ delta)
{
    int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (warp >= rows) return;
    const float *wr = w + (size_t)warp * cols;
    double d = 0.0;
    if (wq) {
        const int8_t *qr = wq + (size_t)warp * cols;
        for (int j = lane; j < cols; j += 32)
            d += __dmul_rn(__dsub_rn(__dmul_rn((double)qr[j], (double)step), (double)wr[j]), mean[j]);
    } else {
        const float *qr = deq + (size_t)warp * cols;
        for (int j = lane; j < cols; j += 32)
            d += __dmul_rn(__dsub_rn((double)qr[j], (double)wr[j]), mean[j]);
    }
    for (int o = 16; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
    if (lane == 0) delta[warp] = d;
}

static aw_status bias_delta_launch(aw_kc *k, const float *w, const int8_t *wq, float step, const float *deq,
                                   const double *mean, int rows, int cols, double *delta)
{
    if (rows <= 0) return AW_OK;
    unsigned g = (unsigned)(((size_t)rows * 32 + AW_KC_THREADS - 1) / AW_KC_THREADS);
    bias_delta_kernel<<<g, AW_KC_THREADS, 0, k->stream>>>(w, wq, step, deq, mean, rows, cols, delta);
    AW_CUDA_LAUNCH("bias_delta_kernel");
    return AW_OK;
}

extern "C" aw_status aw_kc_bias_delta_i8(aw_kc *k, const float *w, const int8_t *wq, float step, const double *mean,
                                         int rows, int cols, double *delta)
{
    return bias_delta_launch(k, w, wq, step, NULL, mean, rows, cols, delta);
}

extern "C" aw_status aw_kc_bias_delta(aw_kc *k, const float *w, const float *deq, const double *mean, int rows,
                                      int cols, double *delta)
{
    return bias_delta_launch(k, w, NULL, 0.0f, deq, mean, rows, cols, delta);
}

// A step rounded to the dtype it is stored in (aw_round_to_dtype in aw_dtype.h).
__device__ float round_to_sdt_d(float s, aw_dtype sdt)
{
    if (sdt == AW_DT_F16) return __half2float(__float2half_rn(s));
    if (sdt == AW_DT_BF16) return __bfloat162float(__float2bfloat16_rn(s));
    return s;
}

// aw_lowbit.c's step_of: the same operations.
__device__ void step_of_d(float lo, float hi, int bits, int sym, aw_dtype sdt, float *step, uint8_t *zero)
{
    int maxq = (1 << bits) - 1;
    double s;
    if (sym) s = __ddiv_rn((double)(-lo > hi ? -lo : hi), maxq / 2.0);
    else s = __ddiv_rn(__dsub_rn((double)hi, (double)lo), (double)maxq);
    float sf = round_to_sdt_d((float)s, sdt);
    if (!(sf > 0.0f) || !(sf <= 3.402823466e38f)) sf = 1.0f;
    *step = sf;
    if (sym) {
        *zero = (uint8_t)(1 << (bits - 1));
    } else {
        float z = __fsub_rn(__fadd_rn(__fdiv_rn(-lo, sf), AW_KC_ROUND_MAGIC), AW_KC_ROUND_MAGIC);
        *zero = (uint8_t)(z < 0.0f ? 0.0f : z > (float)maxq ? (float)maxq : z);
    }
}

// aw_lowbit.c's code_of.
__device__ float code_of_d(float w, float step, float z, float maxq)
{
    float v = __fdiv_rn(w, step);
    v = v == v ? v : 0.0f;
    v = v > -512.0f ? v : -512.0f;
    v = v < 512.0f ? v : 512.0f;
    float t = __fadd_rn(__fsub_rn(__fadd_rn(v, AW_KC_ROUND_MAGIC), AW_KC_ROUND_MAGIC), z);
    t = t > 0.0f ? t : 0.0f;
    return t < maxq ? t : maxq;
}

// One thread per (row, group): extremes in order (NaN skipped), the step.
__global__ void group_params_kernel(const float *__restrict__ w, int out, int in, int gl, int ng, int bits, int sym,
                                    aw_dtype sdt, float *__restrict__ step, uint8_t *__restrict__ zero)
{
    size_t n = (size_t)out * ng;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / (size_t)ng;
        int g = (int)(i - r * (size_t)ng);
        int j1 = g * gl, j2 = j1 + gl < in ? j1 + gl : in;
        const float *row = w + r * (size_t)in;
        float lo = 0.0f, hi = 0.0f;
        for (int j = j1; j < j2; j++) {
            float v = row[j];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        step_of_d(lo, hi, bits, sym, sdt, &step[i], &zero[i]);
    }
}

extern "C" aw_status aw_kc_group_params(aw_kc *k, const float *w, int out, int in, int G, int bits, int sym,
                                        aw_dtype sdt, float *step, uint8_t *zero)
{
    if (out <= 0 || in <= 0) return AW_OK;
    int gl = G > 0 && G < in ? G : in, ng = (in + gl - 1) / gl;
    size_t n = (size_t)out * ng;
    group_params_kernel<<<aw_kc_blocks(n, AW_KC_THREADS, AW_KC_MAX_BLOCKS), AW_KC_THREADS, 0, k->stream>>>(
        w, out, in, gl, ng, bits, sym, sdt, step, zero);
    AW_CUDA_LAUNCH("group_params_kernel");
    return AW_OK;
}

__global__ void group_quantize_kernel(const float *__restrict__ w, int in, int gl, int ng, float maxq, size_t n,
                                      const float *__restrict__ step, const uint8_t *__restrict__ zero,
                                      uint8_t *__restrict__ q)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / (size_t)in;
        int j = (int)(i - r * (size_t)in);
        size_t p = r * (size_t)ng + (size_t)(j / gl);
        q[i] = (uint8_t)code_of_d(w[i], step[p], (float)zero[p], maxq);
    }
}

extern "C" aw_status aw_kc_group_quantize(aw_kc *k, const float *w, int out, int in, int G, int bits,
                                          const float *step, const uint8_t *zero, uint8_t *q)
{
    if (out <= 0 || in <= 0) return AW_OK;
    int gl = G > 0 && G < in ? G : in, ng = (in + gl - 1) / gl;
    size_t n = (size_t)out * in;
    group_quantize_kernel<<<aw_kc_blocks(n, AW_KC_THREADS, AW_KC_MAX_BLOCKS), AW_KC_THREADS, 0, k->stream>>>(
        w, in, gl, ng, (float)((1 << bits) - 1), n, step, zero, q);
    AW_CUDA_LAUNCH("group_quantize_kernel");
    return AW_OK;
}

// ---- the scale search's objective ---------------------------------------------------------

// ws (rows, in) = w * s per column (aw_k_scale_cols' product).
__global__ void scale_copy_kernel(const float *__restrict__ w, const float *__restrict__ s, int in, size_t n,
                                  float *__restrict__ ws)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        ws[i] = __fmul_rn(w[i], s[i % (size_t)in]);
}

// dw = deq / s - w, in double.
__global__ void search_dw_kernel(const float *__restrict__ deq, const float *__restrict__ s,
                                 const float *__restrict__ w, int in, size_t n, double *__restrict__ dw)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dw[i] = __dsub_rn(__ddiv_rn((double)deq[i], (double)s[i % (size_t)in]), (double)w[i]);
}

enum { DOT_BLOCKS = 256 };

// part[b] = sum of a * b over block b's fixed grid-stride share (fixed tree).
__global__ void dot_partial_kernel(const double *__restrict__ a, const double *__restrict__ b, size_t n,
                                   double *__restrict__ part)
{
    __shared__ double sh[AW_KC_THREADS];
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        s += __dmul_rn(a[i], b[i]);
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o >>= 1) {
        if ((int)threadIdx.x < o) sh[threadIdx.x] += sh[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) part[blockIdx.x] = sh[0];
}

// *acc += the partials, in order (one thread).
__global__ void dot_finish_kernel(const double *__restrict__ part, int n_part, double *acc)
{
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    double s = *acc;
    for (int i = 0; i < n_part; i++) s += part[i];
    *acc = s;
}

extern "C" aw_status aw_kc_search_err(aw_kc *k, const float *w, int out, int in, const float *s, const double *G,
                                      int G_len, int bits, int sym, aw_dtype sdt, double *acc)
{
    if (out <= 0 || in <= 0) return AW_OK;
    // rows per chunk as the CPU: two (rows, in) double arrays of ~32 MB
    int R = (int)((size_t)(1u << 22) / (size_t)in);
    R = R < 1 ? 1 : R > out ? out : R;
    int gl = G_len > 0 && G_len < in ? G_len : in, ng = (in + gl - 1) / gl;
    size_t cap = (size_t)R * in, cap_g = (size_t)R * ng;
    // scratch, 8-byte items first: dw, dwg (cap doubles), part (DOT_BLOCKS);
    // ws, deq (cap floats), step (cap_g floats); codes (cap), zero (cap_g)
    size_t bytes = (2 * cap + DOT_BLOCKS) * sizeof(double) + (2 * cap + cap_g) * sizeof(float) + cap + cap_g;
    void *scr;
    AW_TRY(aw_kc_scratch(k, bytes, &scr));
    double *dw = (double *)scr, *dwg = dw + cap, *part = dwg + cap;
    float *ws = (float *)(part + DOT_BLOCKS), *deq = ws + cap, *step = deq + cap;
    uint8_t *codes = (uint8_t *)(step + cap_g), *zero = codes + cap;
    const double one = 1.0, nil = 0.0;
    for (int r0 = 0; r0 < out; r0 += R) {
        int rr = out - r0 < R ? out - r0 : R;
        const float *wr = w + (size_t)r0 * in;
        size_t n = (size_t)rr * in;
        unsigned g = aw_kc_blocks(n, AW_KC_THREADS, AW_KC_MAX_BLOCKS);
        scale_copy_kernel<<<g, AW_KC_THREADS, 0, k->stream>>>(wr, s, in, n, ws);
        AW_CUDA_LAUNCH("scale_copy_kernel");
        AW_TRY(aw_kc_group_params(k, ws, rr, in, G_len, bits, sym, sdt, step, zero));
        AW_TRY(aw_kc_group_quantize(k, ws, rr, in, G_len, bits, step, zero, codes));
        AW_TRY(aw_kc_dequant_groups(k, codes, step, zero, rr, in, G_len, deq));
        search_dw_kernel<<<g, AW_KC_THREADS, 0, k->stream>>>(deq, s, wr, in, n, dw);
        AW_CUDA_LAUNCH("search_dw_kernel");
        // row-major dwg (rr, in) = dw (rr, in) G (in, in): column-major
        // dwg^T (in, rr) = G dw^T, G symmetric (either triangle)
        AW_CUBLAS_TRY(cublasDsymm(k->blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_UPPER, in, rr, &one, G, in, dw, in,
                                  &nil, dwg, in));
        unsigned gd = aw_kc_blocks(n, AW_KC_THREADS, DOT_BLOCKS);
        dot_partial_kernel<<<gd, AW_KC_THREADS, 0, k->stream>>>(dw, dwg, n, part);
        AW_CUDA_LAUNCH("dot_partial_kernel");
        dot_finish_kernel<<<1, 32, 0, k->stream>>>(part, (int)gd, acc);
        AW_CUDA_LAUNCH("dot_finish_kernel");
    }
    return AW_OK;
}

// ---- GPTQ's sweep --------------------------------------------------------------------------

// Dead inputs' columns of w (out, in) zeroed.
__global__ void zero_dead_kernel(float *w, const uint8_t *__restrict__ dead, int in, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        if (dead[i % (size_t)in]) w[i] = 0.0f;
}

// Wt (in, out): row k = column perm[k] of w (out, in).
__global__ void gather_cols_kernel(const float *__restrict__ w, const int *__restrict__ perm, int out, int in,
                                   float *__restrict__ Wt)
{
    size_t n = (size_t)out * in;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t kk = i / (size_t)out;
        int r = (int)(i - kk * (size_t)out);
        Wt[i] = w[(size_t)r * in + perm[kk]];
    }
}

// The way back: w and q (out, in) column perm[k] = row k of Wt and Qt.
__global__ void scatter_cols_kernel(const float *__restrict__ Wt, const uint8_t *__restrict__ Qt,
                                    const int *__restrict__ perm, int out, int in, float *__restrict__ w,
                                    uint8_t *__restrict__ q)
{
    size_t n = (size_t)out * in;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t kk = i / (size_t)out;
        int r = (int)(i - kk * (size_t)out);
        size_t o = (size_t)r * in + perm[kk];
        w[o] = Wt[i];
        q[o] = Qt[i];
    }
}

// Group g's parameters per row from Wt's columns k .. ke-1 (as they are
// now), without act_order.
__global__ void gptq_group_kernel(const float *__restrict__ Wt, int out, int k, int ke, int g, int ng, int bits,
                                  int sym, aw_dtype sdt, float *step, uint8_t *zero)
{
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < out; r += gridDim.x * blockDim.x) {
        float lo = 0.0f, hi = 0.0f;
        for (int c = k; c < ke; c++) {
            float v = Wt[(size_t)c * out + r];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        step_of_d(lo, hi, bits, sym, sdt, &step[(size_t)r * ng + g], &zero[(size_t)r * ng + g]);
    }
}

// Column k of the sweep, one thread per row: its code, the dequantized value,
// the scaled error into Et's row, spread at once over the block's later
// columns k+1 .. i2-1.
__global__ void gptq_column_kernel(float *Wt, uint8_t *Qt, float *Et, const float *__restrict__ Ut, int out,
                                   int in, int k, int i1, int i2, int g, int ng, float maxq,
                                   const float *__restrict__ step, const uint8_t *__restrict__ zero)
{
    float inv_d = __fdiv_rn(1.0f, Ut[(size_t)k * in + k]);
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < out; r += gridDim.x * blockDim.x) {
        float sc = step[(size_t)r * ng + g], zc = (float)zero[(size_t)r * ng + g];
        float wk = Wt[(size_t)k * out + r];
        float t = code_of_d(wk, sc, zc, maxq);
        float dq = __fmul_rn(__fsub_rn(t, zc), sc);
        float e = __fmul_rn(__fsub_rn(wk, dq), inv_d);
        Et[(size_t)(k - i1) * out + r] = e;
        Wt[(size_t)k * out + r] = dq;
        Qt[(size_t)k * out + r] = (uint8_t)t;
        for (int c = k + 1; c < i2; c++) {
            float *p = Wt + (size_t)c * out + r;
            *p = __fsub_rn(*p, __fmul_rn(Ut[(size_t)c * in + k], e));
        }
    }
}

extern "C" aw_status aw_kc_gptq(aw_kc *k, float *w, const aw_gptq_plan *p, int out, const aw_gptq_opts *opt,
                                float *step, uint8_t *zero, uint8_t *q)
{
    const int in = p->in;
    if (out <= 0 || in <= 0) return AW_FAIL(AW_ERR_ARG, "GPTQ: empty weight (%d x %d)", out, in);
    const int bits = opt->bits, sym = opt->sym, act = opt->act_order;
    const int gl = opt->group > 0 && opt->group < in ? opt->group : in, ng = (in + gl - 1) / gl;
    const int B = opt->block < in ? opt->block : in;
    const float maxq = (float)((1 << bits) - 1);
    const size_t n_in = (size_t)in, n_out = (size_t)out, n = n_in * n_out;
    // scratch: Ut (in, in), Wt (in, out), Et (B, out) floats; perm (in)
    // ints; Qt (in, out), dead (in) bytes
    size_t bytes = (n_in * n_in + n + (size_t)B * n_out) * sizeof(float) + n_in * sizeof(int) + n + n_in;
    void *scr;
    AW_TRY(aw_kc_scratch(k, bytes, &scr));
    float *Ut = (float *)scr, *Wt = Ut + n_in * n_in, *Et = Wt + n;
    int *perm = (int *)(Et + (size_t)B * n_out);
    uint8_t *Qt = (uint8_t *)(perm + n_in), *dead = Qt + n;
    // the plan (statistics, from the host)
    AW_TRY(aw_kc_copy(k, Ut, p->ut, n_in * n_in * sizeof(float)));
    AW_TRY(aw_kc_copy(k, perm, p->perm, n_in * sizeof(int)));
    AW_TRY(aw_kc_copy(k, dead, p->dead, n_in));
    unsigned g_n = aw_kc_blocks(n, AW_KC_THREADS, AW_KC_MAX_BLOCKS);
    unsigned g_out = aw_kc_blocks(n_out, AW_KC_THREADS, AW_KC_MAX_BLOCKS);
    zero_dead_kernel<<<g_n, AW_KC_THREADS, 0, k->stream>>>(w, dead, in, n);
    AW_CUDA_LAUNCH("zero_dead_kernel");
    if (act) AW_TRY(aw_kc_group_params(k, w, out, in, opt->group, bits, sym, opt->sdt, step, zero));
    gather_cols_kernel<<<g_n, AW_KC_THREADS, 0, k->stream>>>(w, perm, out, in, Wt);
    AW_CUDA_LAUNCH("gather_cols_kernel");
    // the sweep: blocks as aw_k_gptq_sweep (a group that would start inside
    // a block and run past its end starts the next one); inside a block
    // each column's error reaches the block's later columns at once, the
    // columns after the block by one sgemm when it ends
    const int grouped = !act && opt->group > 0;
    const float minus_one = -1.0f, one = 1.0f;
    int cur_group = -1;
    for (int i1 = 0; i1 < in;) {
        int i2 = i1 + B < in ? i1 + B : in;
        if (grouped) {
            int g1 = (i2 - 1) / gl * gl;
            int g2 = g1 + gl < in ? g1 + gl : in;
            if (g1 > i1 && g2 > i2) i2 = g1;
        }
        for (int kk = i1; kk < i2; kk++) {
            // the group of the column swept (perm is on the host too)
            int g = (act ? p->perm[kk] : kk) / gl;
            if (!act && g != cur_group) {
                int ke = kk + gl < in ? kk + gl : in;
                gptq_group_kernel<<<g_out, AW_KC_THREADS, 0, k->stream>>>(Wt, out, kk, ke, g, ng, bits, sym,
                                                                          opt->sdt, step, zero);
                AW_CUDA_LAUNCH("gptq_group_kernel");
            }
            cur_group = g;
            gptq_column_kernel<<<g_out, AW_KC_THREADS, 0, k->stream>>>(Wt, Qt, Et, Ut, out, in, kk, i1, i2, g, ng,
                                                                       maxq, step, zero);
            AW_CUDA_LAUNCH("gptq_column_kernel");
        }
        // row-major Wt[i2:] (in - i2, out) -= U^T[i2:, i1:i2] Et: column-major
        // (out, in - i2) -= Et (out, i2 - i1) . U^T[i2:, i1:i2]^T
        if (i2 < in)
            AW_CUBLAS_TRY(cublasSgemm(k->blas, CUBLAS_OP_N, CUBLAS_OP_N, out, in - i2, i2 - i1, &minus_one, Et, out,
                                      Ut + (size_t)i2 * in + i1, in, &one, Wt + (size_t)i2 * out, out));
        i1 = i2;
    }
    scatter_cols_kernel<<<g_n, AW_KC_THREADS, 0, k->stream>>>(Wt, Qt, perm, out, in, w, q);
    AW_CUDA_LAUNCH("scatter_cols_kernel");
    // the plan's host memory may go when this returns
    return aw_kc_sync(k);
}

// ---- dynamic activations (aw_actq.h; aw_kc_lowbit.h "dynamic activations") ------------

// One block per (token, group): the group's max |x m| (a float max: any
// order gives the same value) and NaN flag, the step by one IEEE division,
// then each value's code by one IEEE division, clamped, rint (half to even:
// clamping to integer bounds commutes with it). The CPU's operations.
__device__ __forceinline__ float actq_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// mode 0: codes q and steps; mode 1: fake quantization into y (may alias x)
__global__ void actq_kernel(const float *x, int in, int bits, int len, int nga, const float *__restrict__ mask,
                            int8_t *__restrict__ q, float *__restrict__ step, float *y, int mode)
{
    __shared__ float s_max[32];
    __shared__ int s_nan;
    __shared__ float s_step;
    int t = blockIdx.x / nga, g = blockIdx.x - t * nga;
    int j0 = g * len, n = in - j0 < len ? in - j0 : len;
    const float *xg = x + (size_t)t * in + j0;
    const float *mg = mask ? mask + j0 : NULL;
    if (threadIdx.x == 0) s_nan = 0;
    __syncthreads();
    float a = 0.0f;
    int nan = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        float v = mg ? __fmul_rn(xg[j], mg[j]) : xg[j];
        if (v != v) nan = 1;
        a = fmaxf(a, fabsf(v));
    }
    if (nan) s_nan = 1;
    a = actq_warp_max(a);
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    if (lane == 0) s_max[wid] = a;
    __syncthreads();
    if (threadIdx.x == 0) {
        float m = 0.0f;
        for (int w = 0; w < nw; w++) m = fmaxf(m, s_max[w]);
        float half = (float)((1 << bits) - 1) / 2.0f;
        float s = s_nan ? __int_as_float(0x7fc00000) : __fdiv_rn(m, half);
        if (s == 0.0f) s = 1.1920928955078125e-7f; // FLT_EPSILON
        s_step = s;
        if (mode == 0) step[(size_t)t * nga + g] = s;
    }
    __syncthreads();
    float s = s_step;
    int fin = isfinite(s);
    float lo = -(float)(1 << (bits - 1)), hi = (float)((1 << (bits - 1)) - 1);
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        float c = 0.0f;
        if (fin) {
            float v = mg ? __fmul_rn(xg[j], mg[j]) : xg[j];
            float r = __fdiv_rn(v, s);
            r = r < lo ? lo : r;
            r = r > hi ? hi : r;
            c = rintf(r);
        }
        size_t k = (size_t)t * in + j0 + j;
        if (mode == 0)
            q[k] = (int8_t)(int)c;
        else
            y[k] = fin ? __fmul_rn((float)(int)c, s) : __int_as_float(0x7fc00000);
    }
}

static aw_status actq_launch(aw_kc *k, const float *x, int T, int in, int bits, int A, const float *mask, int8_t *q,
                             float *step, float *y, int mode)
{
    if (T <= 0 || in <= 0) return AW_OK;
    AW_RETURN_IF(bits < 2 || bits > 8, AW_ERR_ARG, "activation quantization: %d bits (2..8)", bits);
    int len = A > 0 ? A : in, nga = (in + len - 1) / len;
    size_t blocks = (size_t)T * nga;
    AW_RETURN_IF(blocks > 0x7fffffffu, AW_ERR_ARG, "activation quantization: %zu groups", blocks);
    int thr = len >= 256 ? 256 : (len + 31) / 32 * 32;
    actq_kernel<<<(unsigned)blocks, thr, 0, k->stream>>>(x, in, bits, len, nga, mask, q, step, y, mode);
    AW_CUDA_LAUNCH("actq_kernel");
    return AW_OK;
}

extern "C" aw_status aw_kc_act_quant(aw_kc *k, const float *x, int T, int in, int bits, int A, const float *mask,
                                     int8_t *q, float *step)
{
    return actq_launch(k, x, T, in, bits, A, mask, q, step, NULL, 0);
}

extern "C" aw_status aw_kc_act_fakequant(aw_kc *k, const float *x, float *y, int T, int in, int bits, int A,
                                         const float *mask)
{
    return actq_launch(k, x, T, in, bits, A, mask, NULL, NULL, y, 1);
}

// The grouped product: one block of 256 threads per 64 x 64 tile of y, each
// thread 4 x 4 outputs (rows ty + 16 r, columns tx + 16 c). The inputs of a
// product block go through shared memory in chunks of 32 bytes (zero past
// the block's end; whole words where rows and blocks are 4-byte aligned),
// the int32 sums by dp4a (exact); at each block's end the
// double accumulators += acc * sx * sw (explicit _rn operations: no fma
// contraction), in block order; + bias, rounded once. The CPU's arithmetic.
enum { GG_TILE = 64, GG_CHUNK = 32 };

__global__ void __launch_bounds__(256) gemm_groups_kernel(const int8_t *__restrict__ xq, const float *__restrict__ xs,
                                                           int alen, int nga, const int8_t *__restrict__ wq,
                                                           const float *__restrict__ ws, int wlen, int ngw,
                                                           const float *__restrict__ b, float *__restrict__ y, int T,
                                                           int in, int out, int P, int words)
{
    __shared__ int sx_[GG_TILE][GG_CHUNK / 4 + 1];
    __shared__ int sw_[GG_TILE][GG_CHUNK / 4 + 1];
    int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    int t0 = blockIdx.y * GG_TILE, i0 = blockIdx.x * GG_TILE;
    double yd[4][4];
    int acc[4][4];
#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
        for (int c = 0; c < 4; c++) yd[r][c] = 0.0, acc[r][c] = 0;
    int nb = (in + P - 1) / P;
    for (int kb = 0; kb < nb; kb++) {
        int jb = kb * P, je = jb + P < in ? jb + P : in;
        for (int j = jb; j < je; j += GG_CHUNK) {
            int cl = je - j < GG_CHUNK ? je - j : GG_CHUNK;
            // 64 rows x 8 words per matrix: 512 words, 2 per thread
            for (int w = threadIdx.x; w < GG_TILE * (GG_CHUNK / 4); w += blockDim.x) {
                int row = w >> 3, wd = w & 7;
                if (words) { // 4-byte aligned rows and blocks: whole words (cl a multiple of 4)
                    int vx = 0, vw = 0;
                    if (wd * 4 < cl) {
                        if (t0 + row < T) vx = *(const int *)(xq + (size_t)(t0 + row) * in + j + wd * 4);
                        if (i0 + row < out) vw = *(const int *)(wq + (size_t)(i0 + row) * in + j + wd * 4);
                    }
                    sx_[row][wd] = vx;
                    sw_[row][wd] = vw;
                    continue;
                }
                unsigned bx = 0, bw = 0;
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int jj = wd * 4 + e;
                    unsigned vx = 0, vw = 0;
                    if (jj < cl) {
                        if (t0 + row < T) vx = (uint8_t)xq[(size_t)(t0 + row) * in + j + jj];
                        if (i0 + row < out) vw = (uint8_t)wq[(size_t)(i0 + row) * in + j + jj];
                    }
                    bx |= vx << (8 * e);
                    bw |= vw << (8 * e);
                }
                sx_[row][wd] = (int)bx;
                sw_[row][wd] = (int)bw;
            }
            __syncthreads();
#pragma unroll
            for (int wd = 0; wd < GG_CHUNK / 4; wd++) {
                int xa[4], wa[4];
#pragma unroll
                for (int r = 0; r < 4; r++) xa[r] = sx_[ty + 16 * r][wd];
#pragma unroll
                for (int c = 0; c < 4; c++) wa[c] = sw_[tx + 16 * c][wd];
#pragma unroll
                for (int r = 0; r < 4; r++)
#pragma unroll
                    for (int c = 0; c < 4; c++) acc[r][c] = __dp4a(xa[r], wa[c], acc[r][c]);
            }
            __syncthreads();
        }
        int ga = jb / alen, gw = jb / wlen;
#pragma unroll
        for (int r = 0; r < 4; r++) {
            int t = t0 + ty + 16 * r;
            double sx = t < T ? (double)xs[(size_t)t * nga + ga] : 0.0;
#pragma unroll
            for (int c = 0; c < 4; c++) {
                int i = i0 + tx + 16 * c;
                double sw = i < out ? (double)ws[(size_t)i * ngw + gw] : 0.0;
                yd[r][c] = __dadd_rn(yd[r][c], __dmul_rn(__dmul_rn((double)acc[r][c], sx), sw));
                acc[r][c] = 0;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 4; r++) {
        int t = t0 + ty + 16 * r;
        if (t >= T) continue;
#pragma unroll
        for (int c = 0; c < 4; c++) {
            int i = i0 + tx + 16 * c;
            if (i >= out) continue;
            y[(size_t)t * out + i] = __double2float_rn(__dadd_rn(yd[r][c], b ? (double)b[i] : 0.0));
        }
    }
}

extern "C" size_t aw_kc_gemm_groups_scratch(int T, int in, int out, int A, int W)
{
    (void)T, (void)in, (void)out, (void)A, (void)W;
    return 256; // none used; nonzero so that callers' "scratch present" checks hold
}

extern "C" aw_status aw_kc_gemm_groups(aw_kc *k, const int8_t *xq, const float *xs, int A, const int8_t *wq,
                                       const float *ws, int W, const float *b, float *y, int T, int in, int out,
                                       void *scratch)
{
    (void)scratch;
    AW_RETURN_IF(A > 0 && W > 0 && A % W != 0 && W % A != 0, AW_ERR_ARG,
                 "activation groups of %d and weight groups of %d do not nest", A, W);
    AW_RETURN_IF(T < 0 || in <= 0 || out < 0, AW_ERR_ARG, "gemm_groups: bad shape T %d in %d out %d", T, in, out);
    if (T == 0 || out == 0) return AW_OK;
    int P = A > 0 && W > 0 ? (A < W ? A : W) : A > 0 ? A : W > 0 ? W : in;
    int alen = A > 0 ? A : in, wlen = W > 0 ? W : in;
    int nga = (in + alen - 1) / alen, ngw = (in + wlen - 1) / wlen;
    unsigned gy = (unsigned)((T + GG_TILE - 1) / GG_TILE), gx = (unsigned)((out + GG_TILE - 1) / GG_TILE);
    AW_RETURN_IF(gy > 65535u, AW_ERR_ARG, "gemm_groups: %d tokens (at most %d a call)", T, 65535 * GG_TILE);
    int words = in % 4 == 0 && P % 4 == 0 && ((uintptr_t)xq | (uintptr_t)wq) % 4 == 0;
    gemm_groups_kernel<<<dim3(gx, gy), 256, 0, k->stream>>>(xq, xs, alen, nga, wq, ws, wlen, ngw, b, y, T, in, out,
                                                            P, words);
    AW_CUDA_LAUNCH("gemm_groups_kernel");
    return AW_OK;
}

// ---- kept channels ---------------------------------------------------------------------------

__global__ void gather_cols_kernel(const float *__restrict__ x, int in, const int32_t *__restrict__ idx, int n,
                                   size_t total, float *__restrict__ xk)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t t = i / (size_t)n;
        int c = (int)(i - t * (size_t)n);
        xk[i] = x[t * (size_t)in + idx[c]];
    }
}

extern "C" aw_status aw_kc_gather_cols(aw_kc *k, const float *x, int T, int in, const int32_t *idx, int n, float *xk)
{
    if (T <= 0 || n <= 0) return AW_OK;
    size_t total = (size_t)T * n;
    gather_cols_kernel<<<aw_kc_blocks(total, AW_KC_THREADS, AW_KC_MAX_BLOCKS), AW_KC_THREADS, 0, k->stream>>>(
        x, in, idx, n, total, xk);
    AW_CUDA_LAUNCH("gather_cols_kernel");
    return AW_OK;
}

// y (T, out) += xk (T, n) wk (out, n)^T: cuBLAS sgemm with beta 1 (as the linear)
extern "C" aw_status aw_kc_add_linear(aw_kc *k, const float *xk, const float *wk, float *y, int T, int n, int out)
{
    if (T <= 0 || n <= 0 || out <= 0) return AW_OK;
    const float one = 1.0f;
    AW_CUBLAS_TRY(cublasSgemm(k->blas, CUBLAS_OP_T, CUBLAS_OP_N, out, T, n, &one, wk, n, xk, n, &one, y, out));
    return AW_OK;
}
