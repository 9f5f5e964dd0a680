// aw_kc_gemm.cu - matrix products of the CUDA backend: fp32 linear (cuBLAS
// sgemm), fp16-weight linear (cublasGemmEx, fp32 accumulation), exact INT8
// product (cuBLASLt CUBLAS_COMPUTE_32I, or a tiled dp4a kernel), and causal
// attention, multi-head or grouped-query, by head chunks (strided-batched
// sgemm + masked softmax kernel).
//
// Row-major (rows, cols) with leading dimension ld is, to column-major
// cuBLAS, the transpose (cols, rows) with the same ld. So y (T, out) =
// x (T, in) W^T, W (out, in), is the column-major y^T (out, T) = W x^T:
// gemm(op A = T on W stored (in, out) ld in, op B = N on x stored (in, T)
// ld in, C stored (out, T) ld out) - the "TN" form the INT8 tensor-core
// kernels want.
#include <cuda_fp16.h>
#include <stdint.h>

#include "aw_cuda_check.h"
#include "aw_kernels_cuda.h"

static const unsigned AW_KC_MAX_BLOCKS = 1u << 16;

// y (T, out) rows = b: the bias goes in first, the product adds with beta 1
// (as the CPU's sgemm does).
__global__ void bias_rows_kernel(float *__restrict__ y, const float *__restrict__ b, int T, int out)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= out) return;
    float bj = b[j];
    for (int t = blockIdx.y; t < T; t += gridDim.y) y[(size_t)t * out + j] = bj;
}

static aw_status bias_rows(aw_kc *k, float *y, const float *b, int T, int out)
{
    dim3 g(aw_kc_blocks((size_t)out, AW_KC_THREADS, AW_KC_MAX_BLOCKS),
           T > 65535 ? 65535u : (unsigned)T);
    bias_rows_kernel<<<g, AW_KC_THREADS, 0, k->stream>>>(y, b, T, out);
    AW_CUDA_LAUNCH("bias_rows_kernel");
    return AW_OK;
}

// ---- fp32 linear -----------------------------------------------------------------------

extern "C" aw_status aw_kc_linear(aw_kc *k, const float *x, const float *w, const float *b,
                                  float *y, int T, int in, int out)
{
    if (T <= 0 || out <= 0) return AW_OK;
    if (b) AW_TRY(bias_rows(k, y, b, T, out));
    if (in <= 0) {
        if (!b) AW_TRY(aw_kc_memset(k, y, 0, (size_t)T * out * sizeof(float)));
        return AW_OK;
    }
    const float one = 1.0f, zero = 0.0f;
    AW_CUBLAS_TRY(cublasSgemm(k->blas, CUBLAS_OP_T, CUBLAS_OP_N, out, T, in, &one, w, in, x, in,
                              b ? &one : &zero, y, out));
    return AW_OK;
}

// ---- fp16-weight linear -------------------------------------------------------------------

extern "C" size_t aw_kc_scratch_bytes_f16w(int T, int in)
{
    return T > 0 && in > 0 ? (size_t)T * in * sizeof(__half) : 0;
}

__global__ void f32_to_f16_kernel(const float *__restrict__ x, size_t n, __half *__restrict__ h)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        h[i] = __float2half_rn(x[i]);
}

extern "C" aw_status aw_kc_linear_f16w(aw_kc *k, const float *x, const uint16_t *w_f16,
                                       const float *b, float *y, int T, int in, int out)
{
    if (T <= 0 || out <= 0) return AW_OK;
    if (b) AW_TRY(bias_rows(k, y, b, T, out));
    if (in <= 0) {
        if (!b) AW_TRY(aw_kc_memset(k, y, 0, (size_t)T * out * sizeof(float)));
        return AW_OK;
    }
    void *scr;
    size_t n = (size_t)T * in;
    AW_TRY(aw_kc_scratch(k, aw_kc_scratch_bytes_f16w(T, in), &scr));
    __half *xh = (__half *)scr;
    f32_to_f16_kernel<<<aw_kc_blocks(n, AW_KC_THREADS, AW_KC_MAX_BLOCKS), AW_KC_THREADS, 0,
                        k->stream>>>(x, n, xh);
    AW_CUDA_LAUNCH("f32_to_f16_kernel");
    const float one = 1.0f, zero = 0.0f;
    // fp16 x fp16 products, fp32 accumulation and output (tensor cores)
    AW_CUBLAS_TRY(cublasGemmEx(k->blas, CUBLAS_OP_T, CUBLAS_OP_N, out, T, in, &one, w_f16,
                               CUDA_R_16F, in, xh, CUDA_R_16F, in, b ? &one : &zero, y, CUDA_R_32F,
                               out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return AW_OK;
}

// ---- INT8 product ----------------------------------------------------------------------------

// Tiled fallback: a (GI8_BM, GI8_BN) tile of acc per block of 256 threads,
// the reduction dimension GI8_BK bytes at a time, packed 4 to an int in
// shared memory, so each step is one dp4a (4 int8 products summed into
// int32). Each thread owns 4 x 4 outputs, rows ty + 16 i and columns
// tx + 16 j (conflict-free shared reads, coalesced stores). Integer sums:
// exact in any order.
enum { GI8_BM = 64, GI8_BN = 64, GI8_BK = 32, GI8_KW = GI8_BK / 4 };

__device__ __forceinline__ int load_packed(const int8_t *__restrict__ a, int rows, int in, int r,
                                           int kb)
{
    // bytes a[r, kb..kb+3], zero outside the matrix
    uint32_t w = 0;
    if (r < rows) {
        const int8_t *p = a + (size_t)r * in;
#pragma unroll
        for (int b = 0; b < 4; b++)
            if (kb + b < in) w |= (uint32_t)(uint8_t)p[kb + b] << (8 * b);
    }
    return (int)w;
}

__global__ void __launch_bounds__(256)
    gemm_i8_simt_kernel(const int8_t *__restrict__ xq, const int8_t *__restrict__ wq,
                        int32_t *__restrict__ acc, int T, int in, int out)
{
    __shared__ int xs[GI8_KW][GI8_BM];
    __shared__ int ws[GI8_KW][GI8_BN];
    int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    int t0 = blockIdx.y * GI8_BM, o0 = blockIdx.x * GI8_BN;
    int c[4][4] = {{0}};
    for (int k0 = 0; k0 < in; k0 += GI8_BK) {
        // 64 rows x 8 words per operand: 2 words per thread each
#pragma unroll
        for (int l = 0; l < 2; l++) {
            int e = tid + 256 * l, r = e / GI8_KW, kw = e % GI8_KW;
            xs[kw][r] = load_packed(xq, T, in, t0 + r, k0 + 4 * kw);
            ws[kw][r] = load_packed(wq, out, in, o0 + r, k0 + 4 * kw);
        }
        __syncthreads();
#pragma unroll
        for (int kw = 0; kw < GI8_KW; kw++) {
            int a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = xs[kw][ty + 16 * i], b[i] = ws[kw][tx + 16 * i];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) c[i][j] = __dp4a(a[i], b[j], c[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int t = t0 + ty + 16 * i;
        if (t >= T) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int o = o0 + tx + 16 * j;
            if (o < out) acc[(size_t)t * out + o] = c[i][j];
        }
    }
}

extern "C" aw_status aw_kc_gemm_i8_simt(aw_kc *k, const int8_t *xq, const int8_t *wq, int32_t *acc,
                                        int T, int in, int out)
{
    if (T <= 0 || out <= 0) return AW_OK;
    if (in <= 0) return aw_kc_memset(k, acc, 0, (size_t)T * out * sizeof(int32_t));
    unsigned gy = (unsigned)((T + GI8_BM - 1) / GI8_BM), gx = (unsigned)((out + GI8_BN - 1) / GI8_BN);
    AW_RETURN_IF(gy > 65535u, AW_ERR_ARG, "gemm_i8: T = %d rows is beyond %d", T, 65535 * GI8_BM);
    gemm_i8_simt_kernel<<<dim3(gx, gy), 256, 0, k->stream>>>(xq, wq, acc, T, in, out);
    AW_CUDA_LAUNCH("gemm_i8_simt_kernel");
    return AW_OK;
}

// cuBLASLt INT8 x INT8 -> INT32 in the TN form. Returns the first failing
// cuBLASLt status and names the call in *what; CUBLAS_STATUS_NOT_SUPPORTED
// (also for "no algorithm") tells the caller to fall back.
static cublasStatus_t lt_gemm_i8(aw_kc *k, const int8_t *xq, const int8_t *wq, int32_t *acc, int T,
                                 int in, int out, const char **what)
{
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasStatus_t s;
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const uint64_t ws_bytes = AW_KC_LT_WS;
    cublasLtMatmulHeuristicResult_t res;
    int n_res = 0;
    const int32_t alpha = 1, beta = 0;

#define LT_STEP(call)                                                                              \
    do {                                                                                           \
        s = (call);                                                                                \
        if (s != CUBLAS_STATUS_SUCCESS) {                                                          \
            *what = #call;                                                                         \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)
    LT_STEP(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32I, CUDA_R_32I));
    LT_STEP(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    LT_STEP(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    LT_STEP(cublasLtMatrixLayoutCreate(&la, CUDA_R_8I, (uint64_t)in, (uint64_t)out, in)); // W
    LT_STEP(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8I, (uint64_t)in, (uint64_t)T, in));   // x
    LT_STEP(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32I, (uint64_t)out, (uint64_t)T, out)); // acc
    LT_STEP(cublasLtMatmulPreferenceCreate(&pref));
    LT_STEP(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                 &ws_bytes, sizeof ws_bytes));
    LT_STEP(cublasLtMatmulAlgoGetHeuristic(k->lt, op, la, lb, lc, lc, pref, 1, &res, &n_res));
    if (n_res < 1) {
        s = CUBLAS_STATUS_NOT_SUPPORTED;
        *what = "cublasLtMatmulAlgoGetHeuristic (no algorithm)";
        goto done;
    }
    LT_STEP(cublasLtMatmul(k->lt, op, &alpha, wq, la, xq, lb, &beta, acc, lc, acc, lc, &res.algo,
                           k->lt_ws, ws_bytes, k->stream));
#undef LT_STEP
done:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
    return s;
}

extern "C" aw_status aw_kc_gemm_i8(aw_kc *k, const int8_t *xq, const int8_t *wq, int32_t *acc,
                                   int T, int in, int out)
{
    if (T <= 0 || out <= 0) return AW_OK;
    // the tensor-core kernels want 4-multiple leading dimensions and aligned
    // pointers; anything else takes the simple kernel
    int lt_ok = in > 0 && in % 4 == 0 && out % 4 == 0 && (uintptr_t)xq % 16 == 0 &&
                (uintptr_t)wq % 16 == 0 && (uintptr_t)acc % 16 == 0;
    if (lt_ok) {
        const char *what = "";
        cublasStatus_t s = lt_gemm_i8(k, xq, wq, acc, T, in, out, &what);
        if (s == CUBLAS_STATUS_SUCCESS) return AW_OK;
        if (s != CUBLAS_STATUS_NOT_SUPPORTED)
            return AW_FAIL(AW_ERR_CUDA, "gemm_i8 (%d x %d -> %d): %s: %s (%s)", T, in, out, what,
                           cublasGetStatusString(s), cublasGetStatusName(s));
    }
    return aw_kc_gemm_i8_simt(k, xq, wq, acc, T, in, out);
}

// ---- attention ---------------------------------------------------------------------------------

// Query rows per block: the scores of block [i0, i1) are computed for keys
// 0..i1-1 only, so the work above the diagonal is at most one block wide
// (L = 2048: 9/16 of the full square).
enum { ATT_ROWS = 256, SOFTMAX_WARPS = 4 };

extern "C" size_t aw_kc_attention_workspace(int L, int heads_per_chunk)
{
    if (L <= 0) return 0;
    if (heads_per_chunk < 1) heads_per_chunk = 1;
    return (size_t)heads_per_chunk * L * L;
}

// Rows i0..i1-1 of each head's (L, L) score slot: softmax over keys 0..i
// (max-subtracted, float sums), zeros for keys i+1..i1-1 (they take part in
// the p v product of the block). One warp per row.
__global__ void masked_softmax_kernel(float *S, int L, int i0, int i1)
{
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int i = i0 + blockIdx.x * SOFTMAX_WARPS + warp;
    if (i >= i1) return;
    float *sr = S + (size_t)blockIdx.y * L * L + (size_t)i * L;
    int n = i + 1;
    float mx = -INFINITY;
    for (int j = lane; j < n; j += 32) mx = fmaxf(mx, sr[j]);
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float sum = 0.0f;
    for (int j = lane; j < n; j += 32) {
        float e = expf(sr[j] - mx);
        sr[j] = e;
        sum += e;
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    float inv = 1.0f / sum;
    for (int j = lane; j < n; j += 32) sr[j] *= inv;
    for (int j = n + lane; j < i1; j += 32) sr[j] = 0.0f;
}

// Heads r0..r1-1 of a chunk that one batched product can take: multi-head
// (group 1), the whole chunk, kv heads a stride hd apart as the query heads;
// grouped-query, the chunk's heads that share r0's kv head, kv batch stride
// 0 (cuBLAS reads the same k or v for each).
static inline int att_run_end(int r0, int h_end, int group, long long *kv_stride, int hd)
{
    if (group == 1) {
        *kv_stride = hd;
        return h_end;
    }
    *kv_stride = 0;
    int r1 = (r0 / group + 1) * group;
    return r1 < h_end ? r1 : h_end;
}

extern "C" aw_status aw_kc_attention(aw_kc *k, const float *q, const float *kk, const float *v,
                                     float *out, int n_seq, int L, int n_heads, int n_kv_heads,
                                     int d, float scale, int heads_per_chunk, float *workspace)
{
    AW_RETURN_IF(n_heads <= 0 || d % n_heads != 0 || n_kv_heads <= 0 ||
                     n_heads % n_kv_heads != 0,
                 AW_ERR_ARG,
                 "attention: %d heads, %d kv heads, width %d (heads must divide the width, kv "
                 "heads the heads)",
                 n_heads, n_kv_heads, d);
    if (n_seq <= 0 || L <= 0 || d <= 0) return AW_OK;
    int hd = d / n_heads;
    int group = n_heads / n_kv_heads; // query heads per kv head
    int dkv = n_kv_heads * hd;        // k and v row width: d for multi-head
    int hpc = heads_per_chunk < 1 ? 1 : heads_per_chunk > n_heads ? n_heads : heads_per_chunk;
    AW_RETURN_IF(hpc > 65535, AW_ERR_ARG, "attention: %d heads per chunk is beyond 65535", hpc);
    const float one = 1.0f, zero = 0.0f;
    const long long sLL = (long long)L * L;
    for (int s = 0; s < n_seq; s++) {
        size_t base = (size_t)s * L * d, kvbase = (size_t)s * L * dkv;
        for (int h0 = 0; h0 < n_heads; h0 += hpc) {
            int nh = h0 + hpc < n_heads ? hpc : n_heads - h0;
            for (int i0 = 0; i0 < L; i0 += ATT_ROWS) {
                int i1 = i0 + ATT_ROWS < L ? i0 + ATT_ROWS : L;
                int m = i1 - i0;
                float *Sb = workspace + (size_t)i0 * L;
                // S[i0:i1, 0:i1] (per head) = scale * q[i0:i1] k[0:i1]^T:
                // column-major C (i1, m) ld L = K (i1, hd) Q^T (hd, m)
                long long kvs = 0;
                for (int r0 = h0, r1; r0 < h0 + nh; r0 = r1) {
                    r1 = att_run_end(r0, h0 + nh, group, &kvs, hd);
                    size_t col = (size_t)r0 * hd, kvcol = (size_t)(r0 / group) * hd;
                    AW_CUBLAS_TRY(cublasSgemmStridedBatched(
                        k->blas, CUBLAS_OP_T, CUBLAS_OP_N, i1, m, hd, &scale, kk + kvbase + kvcol,
                        dkv, kvs, q + base + (size_t)i0 * d + col, d, hd, &zero,
                        Sb + (size_t)(r0 - h0) * sLL, L, sLL, r1 - r0));
                }
                dim3 g((unsigned)((m + SOFTMAX_WARPS - 1) / SOFTMAX_WARPS), (unsigned)nh);
                masked_softmax_kernel<<<g, 32 * SOFTMAX_WARPS, 0, k->stream>>>(workspace, L, i0,
                                                                                i1);
                AW_CUDA_LAUNCH("masked_softmax_kernel");
                // out[i0:i1] (per head) = P (m, i1) v[0:i1]:
                // column-major C (hd, m) ld d = V^T (hd, i1) P^T (i1, m)
                for (int r0 = h0, r1; r0 < h0 + nh; r0 = r1) {
                    r1 = att_run_end(r0, h0 + nh, group, &kvs, hd);
                    size_t col = (size_t)r0 * hd, kvcol = (size_t)(r0 / group) * hd;
                    AW_CUBLAS_TRY(cublasSgemmStridedBatched(
                        k->blas, CUBLAS_OP_N, CUBLAS_OP_N, hd, m, i1, &one, v + kvbase + kvcol,
                        dkv, kvs, Sb + (size_t)(r0 - h0) * sLL, L, sLL, &zero,
                        out + base + (size_t)i0 * d + col, d, hd, r1 - r0));
                }
            }
        }
    }
    return AW_OK;
}
