// aw_kc_elem.cu - element-wise and row kernels of the CUDA backend: relu,
// SwiGLU, residual add, embedding, RoPE, LayerNorm, RMSNorm, equalization
// folds, INT8 quantize / dequantize, dequantization of int32 accumulators
// (aw_kernels_cuda.h).
//
// Rounding: each value is computed with the same IEEE operations, in the
// same order, as the CPU reference in aw_kernels.c. nvcc contracts a*b+c
// into one fma by default and the CPU build does not, so products that feed
// a sum are written with __fmul_rn / __fadd_rn (never contracted), divisions
// with __fdiv_rn: the folds, dequantization and embedding are then
// bit-identical to the CPU, and the INT8 codes come from the shared
// aw_quant_i8 (aw_kernels_inline.h). RoPE and SwiGLU use the shared
// aw_rope_* and aw_swiglu1, whose double pow/cos/sin/exp are the device's
// own (within 2 ulp in double of glibc's, so the same floats but rarely).
#include <stdint.h>

#include "aw_cuda_check.h"
#include "aw_kernels_cuda.h"
#include "aw_kernels_inline.h"

// Grid caps: grid-stride loops cover what a capped grid leaves.
static const unsigned AW_KC_MAX_BLOCKS = 1u << 16;
static const unsigned AW_KC_MAX_ROWS = 65535u; // gridDim.y limit

static inline int aligned(const void *p, size_t a) { return ((uintptr_t)p % a) == 0; }

// 2-D launch for (rows, cols) kernels: x over columns, y over rows (the
// kernels loop rows with stride gridDim.y).
static inline dim3 grid_rc(int rows, int cols)
{
    unsigned gx = aw_kc_blocks((size_t)cols, AW_KC_THREADS, AW_KC_MAX_BLOCKS);
    unsigned gy = rows < 1 ? 1u : (unsigned)rows > AW_KC_MAX_ROWS ? AW_KC_MAX_ROWS : (unsigned)rows;
    return dim3(gx, gy);
}

// ---- relu, add ---------------------------------------------------------------

__global__ void relu_kernel(float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i];
        x[i] = v < 0.0f ? 0.0f : v; // NaN < 0 is false: NaN stays
    }
}

__global__ void add_kernel(float *h, const float *__restrict__ y, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        h[i] = __fadd_rn(h[i], y[i]);
}

// out = silu(gate) * up; out may alias gate or up (each value read, then
// written, by one thread)
__global__ void swiglu_kernel(const float *gate, const float *up, float *out, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = aw_swiglu1(gate[i], up[i]);
}

extern "C" aw_status aw_kc_swiglu(aw_kc *k, const float *gate, const float *up, float *out,
                                  size_t n)
{
    if (n == 0) return AW_OK;
    swiglu_kernel<<<aw_kc_blocks(n, AW_KC_THREADS, AW_KC_MAX_BLOCKS), AW_KC_THREADS, 0,
                    k->stream>>>(gate, up, out, n);
    AW_CUDA_LAUNCH("swiglu_kernel");
    return AW_OK;
}

extern "C" aw_status aw_kc_relu(aw_kc *k, float *x, size_t n)
{
    if (n == 0) return AW_OK;
    relu_kernel<<<aw_kc_blocks(n, AW_KC_THREADS, AW_KC_MAX_BLOCKS), AW_KC_THREADS, 0, k->stream>>>(
        x, n);
    AW_CUDA_LAUNCH("relu_kernel");
    return AW_OK;
}

extern "C" aw_status aw_kc_add(aw_kc *k, float *h, const float *y, size_t n)
{
    if (n == 0) return AW_OK;
    add_kernel<<<aw_kc_blocks(n, AW_KC_THREADS, AW_KC_MAX_BLOCKS), AW_KC_THREADS, 0, k->stream>>>(
        h, y, n);
    AW_CUDA_LAUNCH("add_kernel");
    return AW_OK;
}

// ---- embedding -------------------------------------------------------------------

// h (n_seq*L, d): row r = s*L + p is E[tokens[r]] + P[p + pos_offset]
// (OPT: offset 2), or E[tokens[r]] when P is NULL (LLaMA).
__global__ void embed_kernel(const uint32_t *__restrict__ tokens, int L, const float *__restrict__ E,
                             const float *__restrict__ P, int pos_offset, int d,
                             float *__restrict__ h, int rows)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        float e = E[(size_t)tokens[r] * d + j];
        if (P) {
            int p = r % L;
            e = __fadd_rn(e, P[(size_t)(p + pos_offset) * d + j]);
        }
        h[(size_t)r * d + j] = e;
    }
}

extern "C" aw_status aw_kc_embed(aw_kc *k, const uint32_t *tokens, int n_seq, int L, const float *E,
                                 const float *P, int pos_offset, int d, float *h)
{
    if (n_seq <= 0 || L <= 0 || d <= 0) return AW_OK;
    int rows = n_seq * L;
    embed_kernel<<<grid_rc(rows, d), AW_KC_THREADS, 0, k->stream>>>(tokens, L, E, P, pos_offset, d,
                                                                    h, rows);
    AW_CUDA_LAUNCH("embed_kernel");
    return AW_OK;
}

// ---- RoPE ------------------------------------------------------------------------------

// x (n_seq*L, n_heads*hd) in place. Thread t of the x grid is position
// p = t / half, pair i = t % half; it computes cos and sin once (double, as
// the CPU: aw_rope_*) and rotates pair i of every head of row s*L + p for the
// sequences s of its y block. Consecutive threads touch consecutive columns.
__global__ void rope_kernel(float *x, int n_seq, int L, int n_heads, int hd, float theta)
{
    int half = hd / 2;
    size_t n = (size_t)L * half, d = (size_t)n_heads * hd;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < n;
         t += (size_t)gridDim.x * blockDim.x) {
        int p = (int)(t / (size_t)half), i = (int)(t % (size_t)half);
        float c, sn;
        aw_rope_cos_sin(p, aw_rope_inv_freq(i, hd, theta), &c, &sn);
        for (int s = blockIdx.y; s < n_seq; s += gridDim.y) {
            float *row = x + ((size_t)s * L + p) * d + i;
            for (int h = 0; h < n_heads; h++) {
                float *x1 = row + (size_t)h * hd;
                aw_rope_rotate(x1, x1 + half, c, sn);
            }
        }
    }
}

extern "C" aw_status aw_kc_rope(aw_kc *k, float *x, int n_seq, int L, int n_heads, int head_dim,
                                float theta)
{
    AW_RETURN_IF(head_dim % 2 != 0, AW_ERR_ARG, "rope: head_dim %d is odd", head_dim);
    if (n_seq <= 0 || L <= 0 || n_heads <= 0 || head_dim < 2) return AW_OK;
    dim3 g(aw_kc_blocks((size_t)L * (head_dim / 2), AW_KC_THREADS, AW_KC_MAX_BLOCKS),
           (unsigned)n_seq > AW_KC_MAX_ROWS ? AW_KC_MAX_ROWS : (unsigned)n_seq);
    rope_kernel<<<g, AW_KC_THREADS, 0, k->stream>>>(x, n_seq, L, n_heads, head_dim, theta);
    AW_CUDA_LAUNCH("rope_kernel");
    return AW_OK;
}

// ---- LayerNorm -----------------------------------------------------------------------

// Sum of v over the block (blockDim.x a multiple of 32, at most 1024), the
// same value returned to every thread. Fixed shape (xor shuffles, then warp
// 0 over the warps' sums): the same bits every run. sh: 32 doubles.
__device__ double block_sum_d(double v, double *sh)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads(); // sh may still be read from a previous call
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nw ? sh[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

// One block per row; two passes in double as the CPU (mean, then centred
// squares), then the output. y may alias x: every read of the row happens
// before the barrier inside the second block_sum_d, every write after it.
__global__ void layernorm_kernel(const float *x, const float *__restrict__ gamma,
                                 const float *__restrict__ beta, float *y, int d, float eps)
{
    __shared__ double sh[32];
    const float *xr = x + (size_t)blockIdx.x * d;
    float *yr = y + (size_t)blockIdx.x * d;
    double s = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) s += (double)xr[j];
    double mean = block_sum_d(s, sh) / d;
    double v = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        double c = __dsub_rn((double)xr[j], mean);
        v = __dadd_rn(v, __dmul_rn(c, c));
    }
    double var = block_sum_d(v, sh);
    double rstd = 1.0 / sqrt(var / d + (double)eps);
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float n = __double2float_rn(__dmul_rn(__dsub_rn((double)xr[j], mean), rstd));
        yr[j] = __fadd_rn(__fmul_rn(n, gamma[j]), beta[j]);
    }
}

extern "C" aw_status aw_kc_layernorm(aw_kc *k, const float *x, const float *gamma,
                                     const float *beta, float *y, int T, int d, float eps)
{
    if (T <= 0 || d <= 0) return AW_OK;
    // 256 threads: d = 12288 is 48 values per thread, enough loads in flight
    layernorm_kernel<<<(unsigned)T, AW_KC_THREADS, 0, k->stream>>>(x, gamma, beta, y, d, eps);
    AW_CUDA_LAUNCH("layernorm_kernel");
    return AW_OK;
}

// ---- RMSNorm -------------------------------------------------------------------------

// One block per row: sum of squares in double (exact squares, the sum in
// block_sum_d's fixed tree), rstd in double as the CPU, then
// (float)(x * rstd) * gamma with the CPU's two roundings. y may alias x: every
// read of the first loop happens before the barrier inside block_sum_d, and
// the last loop reads and writes each element in the same thread.
__global__ void rmsnorm_kernel(const float *x, const float *__restrict__ gamma, float *y, int d,
                               float eps)
{
    __shared__ double sh[32];
    const float *xr = x + (size_t)blockIdx.x * d;
    float *yr = y + (size_t)blockIdx.x * d;
    double s = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        double v = (double)xr[j];
        s = __dadd_rn(s, __dmul_rn(v, v));
    }
    double ss = block_sum_d(s, sh);
    double rstd = 1.0 / sqrt(ss / d + (double)eps);
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float n = __double2float_rn(__dmul_rn((double)xr[j], rstd));
        yr[j] = __fmul_rn(n, gamma[j]);
    }
}

extern "C" aw_status aw_kc_rmsnorm(aw_kc *k, const float *x, const float *gamma, float *y, int T,
                                   int d, float eps)
{
    if (T <= 0 || d <= 0) return AW_OK;
    rmsnorm_kernel<<<(unsigned)T, AW_KC_THREADS, 0, k->stream>>>(x, gamma, y, d, eps);
    AW_CUDA_LAUNCH("rmsnorm_kernel");
    return AW_OK;
}

// ---- equalization folds ------------------------------------------------------------

__global__ void scale_cols_kernel(float *w, int rows, int cols, const float *__restrict__ s)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    float sj = s[j];
    for (int i = blockIdx.y; i < rows; i += gridDim.y) {
        float *p = w + (size_t)i * cols + j;
        *p = __fmul_rn(*p, sj);
    }
}

__global__ void div_rows_kernel(float *w, float *b, int rows, int cols,
                                const float *__restrict__ s)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    for (int i = blockIdx.y; i < rows; i += gridDim.y) {
        float si = s[i];
        if (j < cols) {
            float *p = w + (size_t)i * cols + j;
            *p = __fdiv_rn(*p, si); // true division, as the CPU
        }
        if (b && j == 0) b[i] = __fdiv_rn(b[i], si);
    }
}

// y (rows, cols) = x / s per column; y may alias x
__global__ void div_cols_kernel(const float *x, float *y, int rows, int cols,
                                const float *__restrict__ s)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    float sj = s[j];
    for (int i = blockIdx.y; i < rows; i += gridDim.y) {
        size_t at = (size_t)i * cols + j;
        y[at] = __fdiv_rn(x[at], sj); // true division, as the CPU
    }
}

__global__ void div_vec_kernel(float *v, int n, const float *__restrict__ s)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        v[i] = __fdiv_rn(v[i], s[i]);
}

extern "C" aw_status aw_kc_scale_cols(aw_kc *k, float *w, int rows, int cols, const float *s)
{
    if (rows <= 0 || cols <= 0) return AW_OK;
    scale_cols_kernel<<<grid_rc(rows, cols), AW_KC_THREADS, 0, k->stream>>>(w, rows, cols, s);
    AW_CUDA_LAUNCH("scale_cols_kernel");
    return AW_OK;
}

extern "C" aw_status aw_kc_div_rows(aw_kc *k, float *w, float *b, int rows, int cols, const float *s)
{
    if (rows <= 0) return AW_OK;
    // at least one column block, so that b is divided even when cols == 0
    div_rows_kernel<<<grid_rc(rows, cols < 1 ? 1 : cols), AW_KC_THREADS, 0, k->stream>>>(
        w, b, rows, cols, s);
    AW_CUDA_LAUNCH("div_rows_kernel");
    return AW_OK;
}

extern "C" aw_status aw_kc_div_cols(aw_kc *k, const float *x, float *y, int rows, int cols,
                                   const float *s)
{
    if (rows <= 0 || cols <= 0) return AW_OK;
    div_cols_kernel<<<grid_rc(rows, cols), AW_KC_THREADS, 0, k->stream>>>(x, y, rows, cols, s);
    AW_CUDA_LAUNCH("div_cols_kernel");
    return AW_OK;
}

extern "C" aw_status aw_kc_div_vec(aw_kc *k, float *v, int n, const float *s)
{
    if (n <= 0) return AW_OK;
    div_vec_kernel<<<aw_kc_blocks((size_t)n, AW_KC_THREADS, AW_KC_MAX_BLOCKS), AW_KC_THREADS, 0,
                     k->stream>>>(v, n, s);
    AW_CUDA_LAUNCH("div_vec_kernel");
    return AW_OK;
}

// ---- INT8 ------------------------------------------------------------------------

// VEC: x 16-byte and q 4-byte aligned, 4 values per step (one 16-byte load,
// one 4-byte store); the n % 4 tail scalar. Otherwise one value per step.
template <bool VEC>
__global__ void quantize_i8_kernel(const float *__restrict__ x, size_t n, float step,
                                   int8_t *__restrict__ q)
{
    size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t nth = (size_t)gridDim.x * blockDim.x;
    size_t done = 0;
    if (VEC) {
        size_t n4 = n / 4;
        const float4 *x4 = reinterpret_cast<const float4 *>(x);
        char4 *q4 = reinterpret_cast<char4 *>(q);
        for (size_t g = tid; g < n4; g += nth) {
            float4 v = x4[g];
            q4[g] = make_char4(aw_quant_i8(v.x, step), aw_quant_i8(v.y, step),
                               aw_quant_i8(v.z, step), aw_quant_i8(v.w, step));
        }
        done = n4 * 4;
    }
    for (size_t i = done + tid; i < n; i += nth) q[i] = aw_quant_i8(x[i], step);
}

template <bool VEC>
__global__ void dequantize_i8_kernel(const int8_t *__restrict__ q, size_t n, float step,
                                     float *__restrict__ x)
{
    size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t nth = (size_t)gridDim.x * blockDim.x;
    size_t done = 0;
    if (VEC) {
        size_t n4 = n / 4;
        const char4 *q4 = reinterpret_cast<const char4 *>(q);
        float4 *x4 = reinterpret_cast<float4 *>(x);
        for (size_t g = tid; g < n4; g += nth) {
            char4 c = q4[g];
            x4[g] = make_float4(__fmul_rn((float)c.x, step), __fmul_rn((float)c.y, step),
                                __fmul_rn((float)c.z, step), __fmul_rn((float)c.w, step));
        }
        done = n4 * 4;
    }
    for (size_t i = done + tid; i < n; i += nth) x[i] = __fmul_rn((float)q[i], step);
}

extern "C" aw_status aw_kc_quantize_i8(aw_kc *k, const float *x, size_t n, float step, int8_t *q)
{
    if (n == 0) return AW_OK;
    if (aligned(x, 16) && aligned(q, 4)) {
        unsigned g = aw_kc_blocks(n / 4 + 1, AW_KC_THREADS, AW_KC_MAX_BLOCKS);
        quantize_i8_kernel<true><<<g, AW_KC_THREADS, 0, k->stream>>>(x, n, step, q);
    } else {
        unsigned g = aw_kc_blocks(n, AW_KC_THREADS, AW_KC_MAX_BLOCKS);
        quantize_i8_kernel<false><<<g, AW_KC_THREADS, 0, k->stream>>>(x, n, step, q);
    }
    AW_CUDA_LAUNCH("quantize_i8_kernel");
    return AW_OK;
}

extern "C" aw_status aw_kc_dequantize_i8(aw_kc *k, const int8_t *q, size_t n, float step, float *x)
{
    if (n == 0) return AW_OK;
    if (aligned(x, 16) && aligned(q, 4)) {
        unsigned g = aw_kc_blocks(n / 4 + 1, AW_KC_THREADS, AW_KC_MAX_BLOCKS);
        dequantize_i8_kernel<true><<<g, AW_KC_THREADS, 0, k->stream>>>(q, n, step, x);
    } else {
        unsigned g = aw_kc_blocks(n, AW_KC_THREADS, AW_KC_MAX_BLOCKS);
        dequantize_i8_kernel<false><<<g, AW_KC_THREADS, 0, k->stream>>>(q, n, step, x);
    }
    AW_CUDA_LAUNCH("dequantize_i8_kernel");
    return AW_OK;
}

// y (T, out) = (float)acc * sc + b: the CPU's two roundings, never an fma.
__global__ void dequant_acc_kernel(const int32_t *__restrict__ acc, const float *__restrict__ b,
                                   float sc, float *__restrict__ y, int T, int out)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= out) return;
    float bj = b ? b[j] : 0.0f;
    for (int t = blockIdx.y; t < T; t += gridDim.y) {
        size_t i = (size_t)t * out + j;
        float v = __fmul_rn((float)acc[i], sc);
        y[i] = b ? __fadd_rn(v, bj) : v;
    }
}

extern "C" aw_status aw_kc_dequant_acc(aw_kc *k, const int32_t *acc, const float *b, float x_step,
                                       float w_step, float *y, int T, int out)
{
    if (T <= 0 || out <= 0) return AW_OK;
    float sc = x_step * w_step; // on the host, as the CPU: one float product
    dequant_acc_kernel<<<grid_rc(T, out), AW_KC_THREADS, 0, k->stream>>>(acc, b, sc, y, T, out);
    AW_CUDA_LAUNCH("dequant_acc_kernel");
    return AW_OK;
}
