// bench_cuda.cu - GPU timings of the CUDA backend, each against a baseline
// measured in the same run, and the time per OPT-175B decoder block of the
// pipeline's phases. Calls the production kernels (aw_kernels_cuda.h); the
// baselines are bare library calls (cudaMemcpy device to device, cublasSgemm,
// cublasGemmEx). Not a test: prints tables, exits 0, 77 without a device
// ("skipped: no CUDA device (<reason>)"), 1 when a call fails.
//
//   bench_cuda [n_seq] [reps]     n_seq sequences of L = 2048 (default 2,
//                                 T = 4096 tokens), reps timed runs (default 5)
//
// Timing: CUDA events on the context's stream around each run, one warm-up
// run first, the median of reps runs reported (bench/results/README.md). Data are random
// (a hash-based generator on the device): never zeros.
//
// 1. Memory-bound kernels on x (8192, 12288) fp32 (403 MB): GB/s counting
//    the fewest bytes the kernel must move (inputs read once, outputs
//    written once) against a device-to-device copy of the kernel's input
//    bytes counted read + write; ratio = kernel GB/s / copy GB/s (aim 0.8).
// 2. Matrix products at OPT-175B shapes, T tokens: aw_kc_linear vs
//    cublasSgemm, aw_kc_linear_f16w vs cublasGemmEx fp16 (x already fp16),
//    aw_kc_gemm_i8 vs cublasGemmEx int8 -> int32; TFLOP/s (TOP/s for int8)
//    and ratio = ours / bare. Causal attention's TFLOP/s as computed.
// 3. One OPT-175B block (d 12288, ffn 49152, 96 heads, L 2048): calibration
//    forward with statistics (fp32 and fp16 weights), equalization folds,
//    per-tensor INT8 quantization of the 6 weight matrices, validation
//    forward (each linear in fp32 and W8A8 on the same input, error sums,
//    the fp32 output carried on); ms per block, x 96 blocks, and x 96 scaled
//    to 128 calibration sequences.
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// aw_kernels.h (the CPU backend) has no C++ guards: its functions are C
extern "C" {
#include "aw_kernels.h"
}
#include "cuda/aw_cuda.h"
#include "cuda/aw_kernels_cuda.h"

// ---- errors: a bench main may stop the program ----------------------------------------

static void fail_aw(aw_status st, const char *what, int line)
{
    fprintf(stderr, "bench_cuda.cu:%d: %s: %s: %s [%s]\n", line, what, aw_status_name(st),
            aw_err_message(), aw_err_where());
    exit(1);
}
#define AW(expr)                                                                                   \
    do {                                                                                           \
        aw_status st_ = (expr);                                                                    \
        if (st_ != AW_OK) fail_aw(st_, #expr, __LINE__);                                           \
    } while (0)
#define CU(expr)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (expr);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "bench_cuda.cu:%d: %s: %s\n", __LINE__, #expr, cudaGetErrorString(e_)); \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
#define CB(expr)                                                                                   \
    do {                                                                                           \
        cublasStatus_t s_ = (expr);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                         \
            fprintf(stderr, "bench_cuda.cu:%d: %s: %s\n", __LINE__, #expr,                         \
                    cublasGetStatusString(s_));                                                    \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

// ---- data ----------------------------------------------------------------------------------

__device__ __forceinline__ uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// x[i] = base + N(0, sigma^2) (Box-Muller on a hash of (seed, i)); the
// normal part of channel j of rows of cols values is multiplied by mult when
// j % 97 == 5 (outliers).
__global__ void fill_kernel(float *x, size_t n, uint64_t seed, float sigma, int cols, float mult,
                            float base)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        uint64_t h = mix64(seed * 0x9e3779b97f4a7c15ull + i);
        float u1 = ((uint32_t)(h >> 40) + 1u) * (1.0f / 16777217.0f);
        float u2 = (uint32_t)(h & 0xffffffu) * (1.0f / 16777216.0f);
        float v = sigma * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
        if (cols > 0 && (int)(i % (size_t)cols) % 97 == 5) v *= mult;
        x[i] = base + v;
    }
}

__global__ void to_half_kernel(const float *x, size_t n, __half *h)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        h[i] = __float2half_rn(x[i]);
}

static cudaStream_t g_stream;
static aw_kc *g_kc;
static cublasHandle_t g_blas; // the baselines' own handle, same stream

static void fill(float *x, size_t n, uint64_t seed, float sigma, int cols, float mult,
                 float base = 0.0f)
{
    fill_kernel<<<4096, 256, 0, g_stream>>>(x, n, seed, sigma, cols, mult, base);
    CU(cudaGetLastError());
}

static void to_half(const float *x, size_t n, void *h)
{
    to_half_kernel<<<4096, 256, 0, g_stream>>>(x, n, (__half *)h);
    CU(cudaGetLastError());
}

// ---- timing ----------------------------------------------------------------------------------

typedef void (*run_fn)(void *);

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Median milliseconds of reps runs of fn(arg) after one warm-up run.
static double time_ms(run_fn fn, void *arg, int reps)
{
    cudaEvent_t e0, e1;
    CU(cudaEventCreate(&e0));
    CU(cudaEventCreate(&e1));
    fn(arg);
    CU(cudaStreamSynchronize(g_stream));
    double t[64];
    if (reps > 64) reps = 64;
    for (int r = 0; r < reps; r++) {
        CU(cudaEventRecord(e0, g_stream));
        fn(arg);
        CU(cudaEventRecord(e1, g_stream));
        CU(cudaEventSynchronize(e1));
        float ms = 0.0f;
        CU(cudaEventElapsedTime(&ms, e0, e1));
        t[r] = ms;
    }
    AW(aw_kc_sync(g_kc)); // a fault inside a kernel shows here
    CU(cudaEventDestroy(e0));
    CU(cudaEventDestroy(e1));
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    return reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
}

// ---- 1. memory-bound kernels -------------------------------------------------------------------

enum { M_STATS, M_ABSMAX, M_QUANT, M_DEQUANT, M_LAYERNORM, M_RELU, M_ADD, M_ERR, M_COLERR, M_COPY };

typedef struct {
    int kind;
    int T, d;
    float *x, *x2, *xo, *g, *b, *absmax, *amax1;
    double *sum, *err;
    int8_t *q;
    unsigned long long *bad;
    size_t copy_bytes;
} mem_arg;

static void mem_run(void *p)
{
    mem_arg *a = (mem_arg *)p;
    size_t n = (size_t)a->T * a->d;
    switch (a->kind) {
    case M_STATS: AW(aw_kc_stats_accum(g_kc, a->x, a->T, a->d, a->absmax, a->sum, a->bad)); break;
    case M_ABSMAX: AW(aw_kc_absmax(g_kc, a->x, n, a->amax1)); break;
    case M_QUANT: AW(aw_kc_quantize_i8(g_kc, a->x, n, 0.05f, a->q)); break;
    case M_DEQUANT: AW(aw_kc_dequantize_i8(g_kc, a->q, n, 0.05f, a->xo)); break;
    case M_LAYERNORM: AW(aw_kc_layernorm(g_kc, a->x, a->g, a->b, a->xo, a->T, a->d, 1e-5f)); break;
    case M_RELU: AW(aw_kc_relu(g_kc, a->xo, n)); break;
    case M_ADD: AW(aw_kc_add(g_kc, a->xo, a->x2, n)); break;
    case M_ERR: AW(aw_kc_err_sums(g_kc, a->x, a->x2, n, a->err)); break;
    case M_COLERR: AW(aw_kc_col_err_accum(g_kc, a->x, a->x2, a->T, a->d, a->err + 2)); break;
    case M_COPY:
        CU(cudaMemcpyAsync(a->xo, a->x, a->copy_bytes, cudaMemcpyDeviceToDevice, g_stream));
        break;
    }
}

static void bench_memory(int reps)
{
    const int T = 8192, d = 12288;
    size_t n = (size_t)T * d;
    mem_arg a;
    memset(&a, 0, sizeof a);
    a.T = T, a.d = d;
    AW(aw_kc_malloc((void **)&a.x, n * 4, "bench x"));
    AW(aw_kc_malloc((void **)&a.x2, n * 4, "bench x2"));
    AW(aw_kc_malloc((void **)&a.xo, n * 4, "bench out"));
    AW(aw_kc_malloc((void **)&a.q, n, "bench q"));
    AW(aw_kc_malloc((void **)&a.g, (size_t)d * 4, "gamma"));
    AW(aw_kc_malloc((void **)&a.b, (size_t)d * 4, "beta"));
    AW(aw_kc_malloc((void **)&a.absmax, (size_t)d * 4, "absmax"));
    AW(aw_kc_malloc((void **)&a.amax1, 4, "absmax1"));
    AW(aw_kc_malloc((void **)&a.sum, (size_t)d * 8, "sum"));
    AW(aw_kc_malloc((void **)&a.err, (size_t)(d + 2) * 8, "err"));
    AW(aw_kc_malloc((void **)&a.bad, 8, "bad"));
    fill(a.x, n, 1, 1.0f, d, 60.0f);
    fill(a.x2, n, 2, 1.0f, d, 60.0f);
    fill(a.xo, n, 3, 1.0f, d, 1.0f);
    fill(a.g, (size_t)d, 4, 1.0f, 0, 1.0f);
    fill(a.b, (size_t)d, 5, 0.1f, 0, 1.0f);
    AW(aw_kc_memset(g_kc, a.absmax, 0, (size_t)d * 4));
    AW(aw_kc_memset(g_kc, a.sum, 0, (size_t)d * 8));
    AW(aw_kc_memset(g_kc, a.err, 0, (size_t)(d + 2) * 8));
    AW(aw_kc_memset(g_kc, a.bad, 0, 8));
    AW(aw_kc_quantize_i8(g_kc, a.x, n, 0.05f, a.q));
    AW(aw_kc_reserve(g_kc, aw_kc_scratch_bytes_stats(T, d)));
    AW(aw_kc_sync(g_kc));

    static const struct {
        int kind;
        const char *name;
        double in_b, out_b; // bytes per element read / written, at least
    } ks[] = {{M_STATS, "stats_accum", 4, 0},  {M_ABSMAX, "absmax", 4, 0},
              {M_QUANT, "quantize_i8", 4, 1},  {M_DEQUANT, "dequantize_i8", 1, 4},
              {M_LAYERNORM, "layernorm", 4, 4}, {M_RELU, "relu", 4, 4},
              {M_ADD, "add", 8, 4},            {M_ERR, "err_sums", 8, 0},
              {M_COLERR, "col_err_accum", 8, 0}};
    printf("# 1. memory-bound kernels, x (%d, %d) fp32, median of %d\n"
           "#    GB/s = fewest bytes moved / time; copy = D2D copy of the kernel's input bytes,\n"
           "#    read + write counted; ratio = kernel GB/s / copy GB/s (aim >= 0.80)\n",
           T, d, reps);
    printf("%-16s %10s %10s %10s %10s %8s\n", "kernel", "ms", "MB moved", "GB/s", "copy GB/s",
           "ratio");
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        a.kind = ks[i].kind;
        double tk = time_ms(mem_run, &a, reps);
        double moved = (ks[i].in_b + ks[i].out_b) * (double)n;
        mem_arg c = a;
        c.kind = M_COPY;
        c.copy_bytes = (size_t)(ks[i].in_b * (double)n);
        if (c.copy_bytes > n * 4) c.copy_bytes = n * 4; // the out buffer holds 4n bytes
        double tc = time_ms(mem_run, &c, reps);
        double gk = moved / tk * 1e-6, gc = 2.0 * (double)c.copy_bytes / tc * 1e-6;
        printf("%-16s %10.3f %10.1f %10.1f %10.1f %8.2f\n", ks[i].name, tk, moved * 1e-6, gk, gc,
               gk / gc);
    }
    aw_kc_free(a.x), aw_kc_free(a.x2), aw_kc_free(a.xo), aw_kc_free(a.q), aw_kc_free(a.g);
    aw_kc_free(a.b), aw_kc_free(a.absmax), aw_kc_free(a.amax1), aw_kc_free(a.sum);
    aw_kc_free(a.err), aw_kc_free(a.bad);
}

// ---- the OPT-175B block's buffers (one arena, carved) ----------------------------------------------

enum { LIN_Q, LIN_K, LIN_V, LIN_O, LIN_FC1, LIN_FC2, N_LIN };
enum { TAP_QKV, TAP_O, TAP_FC1, TAP_FC2, N_TAP };

typedef struct {
    int d, f, heads, L, n_seq, T, hpc;
    // weights: fp32, fp16 bits, int8 codes; biases; LayerNorms
    float *w[N_LIN];
    uint16_t *wh[N_LIN];
    int8_t *wq[N_LIN];
    float *b[N_LIN];
    float *ln1_g, *ln1_b, *ln2_g, *ln2_b;
    float w_step[N_LIN], x_step[N_LIN];
    int in[N_LIN], out[N_LIN];
    // activations: h, x, q, k, v, a (T, d); f, y, yq (T, f); acc int32, xq,
    // xh (T, f); attention workspace
    float *h, *x, *q, *k, *v, *a, *fb, *y, *yq, *att_ws;
    int32_t *acc;
    int8_t *xq;
    void *xh;
    // statistics per tap, fold scales, error sums
    float *absmax[N_TAP], *tapmax, *s_in, *s_out;
    double *sum[N_TAP], *err, *col_err;
    unsigned long long *bad;
    void *arena;
} block;

// The next 256-byte aligned view of bytes at *off from base (NULL while
// only counting).
static char *carve(char *base, size_t *off, size_t bytes)
{
    char *r = base ? base + *off : NULL;
    *off += (bytes + 255) & ~(size_t)255;
    return r;
}

// Carves the block's views from base (NULL: only counts); returns the bytes.
static size_t block_layout(block *B, char *base)
{
    size_t off = 0, *p = &off;
    size_t d = (size_t)B->d, f = (size_t)B->f, T = (size_t)B->T;
    for (int l = 0; l < N_LIN; l++) {
        size_t nw = (size_t)B->in[l] * B->out[l];
        B->w[l] = (float *)carve(base, p, nw * 4);
        B->wh[l] = (uint16_t *)carve(base, p, nw * 2);
        B->wq[l] = (int8_t *)carve(base, p, nw);
        B->b[l] = (float *)carve(base, p, (size_t)B->out[l] * 4);
    }
    B->ln1_g = (float *)carve(base, p, d * 4), B->ln1_b = (float *)carve(base, p, d * 4);
    B->ln2_g = (float *)carve(base, p, d * 4), B->ln2_b = (float *)carve(base, p, d * 4);
    B->h = (float *)carve(base, p, T * d * 4), B->x = (float *)carve(base, p, T * d * 4);
    B->q = (float *)carve(base, p, T * d * 4), B->k = (float *)carve(base, p, T * d * 4);
    B->v = (float *)carve(base, p, T * d * 4), B->a = (float *)carve(base, p, T * d * 4);
    B->fb = (float *)carve(base, p, T * f * 4), B->y = (float *)carve(base, p, T * f * 4);
    B->yq = (float *)carve(base, p, T * f * 4);
    B->acc = (int32_t *)carve(base, p, T * f * 4);
    B->xq = (int8_t *)carve(base, p, T * f);
    B->xh = carve(base, p, T * f * 2);
    B->att_ws = (float *)carve(base, p, aw_kc_attention_workspace(B->L, B->hpc) * 4);
    for (int t = 0; t < N_TAP; t++) {
        size_t c = t == TAP_FC2 ? f : d;
        B->absmax[t] = (float *)carve(base, p, c * 4);
        B->sum[t] = (double *)carve(base, p, c * 8);
    }
    B->tapmax = (float *)carve(base, p, 4 * N_TAP);
    B->s_in = (float *)carve(base, p, f * 4), B->s_out = (float *)carve(base, p, f * 4);
    B->err = (double *)carve(base, p, 2 * N_LIN * 8);
    B->col_err = (double *)carve(base, p, f * 8);
    B->bad = (unsigned long long *)carve(base, p, 8);
    return off;
}

static void block_create(block *B, int n_seq)
{
    memset(B, 0, sizeof *B);
    B->d = 12288, B->f = 49152, B->heads = 96, B->L = 2048, B->n_seq = n_seq;
    B->T = n_seq * B->L;
    B->hpc = B->heads; // all heads at once: 96 x 2048^2 floats = 1.6 GB
    int d = B->d, f = B->f;
    const int io[N_LIN][2] = {{d, d}, {d, d}, {d, d}, {d, d}, {d, f}, {f, d}};
    for (int l = 0; l < N_LIN; l++) B->in[l] = io[l][0], B->out[l] = io[l][1];
    size_t bytes = block_layout(B, NULL);
    AW(aw_kc_malloc(&B->arena, bytes, "OPT-175B block (weights fp32/fp16/int8, activations)"));
    block_layout(B, (char *)B->arena);
    printf("# block arena: %.2f GB (T = %d tokens, %d heads per attention chunk)\n", bytes * 1e-9,
           B->T, B->hpc);
    for (int l = 0; l < N_LIN; l++) {
        size_t nw = (size_t)B->in[l] * B->out[l];
        fill(B->w[l], nw, 100 + l, 0.02f, B->in[l], 4.0f);
        to_half(B->w[l], nw, B->wh[l]);
        fill(B->b[l], (size_t)B->out[l], 200 + l, 0.01f, 0, 1.0f);
    }
    fill(B->ln1_g, (size_t)d, 300, 1.0f, 0, 1.0f), fill(B->ln1_b, (size_t)d, 301, 0.1f, 0, 1.0f);
    fill(B->ln2_g, (size_t)d, 302, 1.0f, 0, 1.0f), fill(B->ln2_b, (size_t)d, 303, 0.1f, 0, 1.0f);
    // fold scales around 1 (0.5..1.5): repeated timed folds stay finite
    fill(B->s_in, (size_t)f, 304, 0.1f, 0, 1.0f, 1.0f);
    fill(B->s_out, (size_t)f, 305, 0.1f, 0, 1.0f, 1.0f);
    AW(aw_kc_reserve(g_kc, aw_kc_scratch_bytes_f16w(B->T, f) > aw_kc_scratch_bytes_stats(B->T, f)
                               ? aw_kc_scratch_bytes_f16w(B->T, f)
                               : aw_kc_scratch_bytes_stats(B->T, f)));
    AW(aw_kc_sync(g_kc));
}

// ---- 2. matrix products -----------------------------------------------------------------------------

typedef struct {
    block *B;
    int l, mode; // 0 linear, 1 sgemm, 2 linear_f16w, 3 gemmEx f16, 4 gemm_i8, 5 gemmEx i8
    float *x;
} prod_arg;

static cublasStatus_t g_bare_status = CUBLAS_STATUS_SUCCESS;

static void prod_run(void *p)
{
    prod_arg *a = (prod_arg *)p;
    block *B = a->B;
    int l = a->l, in = B->in[l], out = B->out[l], T = B->T;
    const float one = 1.0f, zero = 0.0f;
    const int32_t ione = 1, izero = 0;
    switch (a->mode) {
    case 0: AW(aw_kc_linear(g_kc, a->x, B->w[l], B->b[l], B->y, T, in, out)); break;
    case 1:
        CB(cublasSgemm(g_blas, CUBLAS_OP_T, CUBLAS_OP_N, out, T, in, &one, B->w[l], in, a->x, in,
                       &zero, B->y, out));
        break;
    case 2: AW(aw_kc_linear_f16w(g_kc, a->x, B->wh[l], B->b[l], B->y, T, in, out)); break;
    case 3:
        CB(cublasGemmEx(g_blas, CUBLAS_OP_T, CUBLAS_OP_N, out, T, in, &one, B->wh[l], CUDA_R_16F,
                        in, B->xh, CUDA_R_16F, in, &zero, B->y, CUDA_R_32F, out,
                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        break;
    case 4: AW(aw_kc_gemm_i8(g_kc, B->xq, B->wq[l], B->acc, T, in, out)); break;
    case 5: {
        // not fatal: a cuBLAS without this int8 path prints n/a
        cublasStatus_t s = cublasGemmEx(g_blas, CUBLAS_OP_T, CUBLAS_OP_N, out, T, in, &ione,
                                        B->wq[l], CUDA_R_8I, in, B->xq, CUDA_R_8I, in, &izero,
                                        B->acc, CUDA_R_32I, out, CUBLAS_COMPUTE_32I,
                                        CUBLAS_GEMM_DEFAULT);
        if (s != CUBLAS_STATUS_SUCCESS) g_bare_status = s;
        break;
    }
    }
}

typedef struct {
    block *B;
} att_arg;

static void att_run(void *p)
{
    block *B = ((att_arg *)p)->B;
    AW(aw_kc_attention(g_kc, B->q, B->k, B->v, B->a, B->n_seq, B->L, B->heads, B->heads, B->d,
                       1.0f / sqrtf((float)(B->d / B->heads)), B->hpc, B->att_ws));
}

// FLOPs of aw_kc_attention as computed: per sequence and head, the blocks of
// 256 query rows against keys 0..i1-1, two products.
static double att_flops(const block *B)
{
    double per_head = 0.0, hd = (double)(B->d / B->heads);
    for (int i0 = 0; i0 < B->L; i0 += 256) {
        int i1 = i0 + 256 < B->L ? i0 + 256 : B->L;
        per_head += 2.0 * 2.0 * (double)(i1 - i0) * i1 * hd;
    }
    return per_head * B->heads * B->n_seq;
}

static void bench_products(block *B, int reps)
{
    printf("\n# 2. matrix products, OPT-175B shapes, T = %d, median of %d\n"
           "#    ratio = our TFLOP/s / bare cuBLAS TFLOP/s of the same shape (ours include\n"
           "#    the bias, and for f16w the conversion of x to fp16)\n",
           B->T, reps);
    printf("%-14s %-16s %10s %10s %12s %8s\n", "kernel", "in -> out", "ms", "TFLOP/s",
           "bare TFLOP/s", "ratio");
    // inputs: x (T, f) random; its fp16 and int8 copies for the baselines
    size_t nx = (size_t)B->T * B->f;
    fill(B->fb, nx, 400, 1.0f, B->f, 20.0f);
    to_half(B->fb, nx, B->xh);
    AW(aw_kc_quantize_i8(g_kc, B->fb, nx, 0.2f, B->xq));
    for (int l = 0; l < N_LIN; l++) AW(aw_kc_quantize_i8(g_kc, B->w[l], (size_t)B->in[l] * B->out[l], 0.001f, B->wq[l]));
    static const char *names[] = {"linear", "linear_f16w", "gemm_i8"};
    static const int lins[] = {LIN_Q, LIN_FC1, LIN_FC2};
    for (int m = 0; m < 3; m++) {
        for (int s = 0; s < 3; s++) {
            int l = lins[s];
            prod_arg a = {B, l, 2 * m, B->fb};
            double t = time_ms(prod_run, &a, reps);
            a.mode = 2 * m + 1;
            g_bare_status = CUBLAS_STATUS_SUCCESS;
            double tb = time_ms(prod_run, &a, reps);
            double flop = 2.0 * B->T * (double)B->in[l] * B->out[l];
            if (g_bare_status != CUBLAS_STATUS_SUCCESS) {
                printf("%-14s %6d -> %-6d %10.2f %10.1f %12s %8s  (bare: %s)\n", names[m],
                       B->in[l], B->out[l], t, flop / t * 1e-9, "n/a", "-",
                       cublasGetStatusString(g_bare_status));
                continue;
            }
            printf("%-14s %6d -> %-6d %10.2f %10.1f %12.1f %8.2f\n", names[m], B->in[l], B->out[l],
                   t, flop / t * 1e-9, flop / tb * 1e-9, tb / t);
        }
    }
    fill(B->q, (size_t)B->T * B->d, 401, 1.0f, 0, 1.0f);
    fill(B->k, (size_t)B->T * B->d, 402, 1.0f, 0, 1.0f);
    fill(B->v, (size_t)B->T * B->d, 403, 1.0f, 0, 1.0f);
    att_arg aa = {B};
    double t = time_ms(att_run, &aa, reps);
    printf("%-14s %-16s %10.2f %10.1f %12s %8s\n", "attention", "96 heads L 2048", t,
           att_flops(B) / t * 1e-9, "-", "-");
}

// ---- 3. the block's phases ----------------------------------------------------------------------------

typedef struct {
    block *B;
    int f16w;   // calibration: fp16 weights
    int stats;  // calibration: accumulate statistics
} fwd_arg;

static void lin_fp(block *B, int l, const float *x, float *y, int f16w)
{
    if (f16w) AW(aw_kc_linear_f16w(g_kc, x, B->wh[l], B->b[l], y, B->T, B->in[l], B->out[l]));
    else AW(aw_kc_linear(g_kc, x, B->w[l], B->b[l], y, B->T, B->in[l], B->out[l]));
}

static void tap(block *B, int t, const float *x, int c, int on)
{
    if (on) AW(aw_kc_stats_accum(g_kc, x, B->T, c, B->absmax[t], B->sum[t], B->bad));
}

// The OPT block forward of pipeline/arch/aw_arch_opt.c, on the GPU.
static void calib_run(void *p)
{
    fwd_arg *a = (fwd_arg *)p;
    block *B = a->B;
    int T = B->T, d = B->d, f = B->f;
    size_t Td = (size_t)T * d;
    AW(aw_kc_layernorm(g_kc, B->h, B->ln1_g, B->ln1_b, B->x, T, d, 1e-5f));
    tap(B, TAP_QKV, B->x, d, a->stats);
    lin_fp(B, LIN_Q, B->x, B->q, a->f16w);
    lin_fp(B, LIN_K, B->x, B->k, a->f16w);
    lin_fp(B, LIN_V, B->x, B->v, a->f16w);
    AW(aw_kc_attention(g_kc, B->q, B->k, B->v, B->a, B->n_seq, B->L, B->heads, B->heads, d,
                       1.0f / sqrtf((float)(d / B->heads)), B->hpc, B->att_ws));
    tap(B, TAP_O, B->a, d, a->stats);
    lin_fp(B, LIN_O, B->a, B->y, a->f16w);
    AW(aw_kc_add(g_kc, B->h, B->y, Td));
    AW(aw_kc_layernorm(g_kc, B->h, B->ln2_g, B->ln2_b, B->x, T, d, 1e-5f));
    tap(B, TAP_FC1, B->x, d, a->stats);
    lin_fp(B, LIN_FC1, B->x, B->fb, a->f16w);
    AW(aw_kc_relu(g_kc, B->fb, (size_t)T * f));
    tap(B, TAP_FC2, B->fb, f, a->stats);
    lin_fp(B, LIN_FC2, B->fb, B->y, a->f16w);
    AW(aw_kc_add(g_kc, B->h, B->y, Td));
}

// Equalization folds of the 6 weights: columns times s, v_proj and fc1 rows
// divided by s (the scales are fixed random values: timing only).
static void fold_run(void *p)
{
    block *B = ((fwd_arg *)p)->B;
    for (int l = 0; l < N_LIN; l++) AW(aw_kc_scale_cols(g_kc, B->w[l], B->out[l], B->in[l], B->s_in));
    AW(aw_kc_div_rows(g_kc, B->w[LIN_V], B->b[LIN_V], B->d, B->d, B->s_out));
    AW(aw_kc_div_rows(g_kc, B->w[LIN_FC1], B->b[LIN_FC1], B->f, B->d, B->s_out));
}

// Per-tensor INT8 of the 6 weights: absmax on the device, the step on the
// host (aw_k_int8_step, as the CPU pipeline), codes on the device.
static void quant_run(void *p)
{
    block *B = ((fwd_arg *)p)->B;
    for (int l = 0; l < N_LIN; l++) {
        size_t nw = (size_t)B->in[l] * B->out[l];
        float am = 0.0f;
        AW(aw_kc_absmax(g_kc, B->w[l], nw, B->tapmax));
        AW(aw_kc_copy(g_kc, &am, B->tapmax, 4));
        AW(aw_kc_sync(g_kc));
        B->w_step[l] = aw_k_int8_step(am);
        AW(aw_kc_quantize_i8(g_kc, B->w[l], nw, B->w_step[l], B->wq[l]));
    }
}

// Activation steps from the calibration maxima (after a calibration run).
static void set_x_steps(block *B)
{
    static const int tap_of[N_LIN] = {TAP_QKV, TAP_QKV, TAP_QKV, TAP_O, TAP_FC1, TAP_FC2};
    float m[N_TAP];
    for (int t = 0; t < N_TAP; t++) {
        AW(aw_kc_absmax(g_kc, B->absmax[t], t == TAP_FC2 ? (size_t)B->f : (size_t)B->d,
                        B->tapmax + t));
    }
    AW(aw_kc_copy(g_kc, m, B->tapmax, sizeof m));
    AW(aw_kc_sync(g_kc));
    for (int l = 0; l < N_LIN; l++) B->x_step[l] = aw_k_int8_step(m[tap_of[l]]);
}

// One linear of the validation: fp32 and W8A8 on the same input, the error
// sums of W8A8 against fp32; y keeps the fp32 output.
static void lin_val(block *B, int l, const float *x, float *y)
{
    int T = B->T, in = B->in[l], out = B->out[l];
    size_t n = (size_t)T * out;
    AW(aw_kc_linear(g_kc, x, B->w[l], B->b[l], y, T, in, out));
    AW(aw_kc_quantize_i8(g_kc, x, (size_t)T * in, B->x_step[l], B->xq));
    AW(aw_kc_gemm_i8(g_kc, B->xq, B->wq[l], B->acc, T, in, out));
    AW(aw_kc_dequant_acc(g_kc, B->acc, B->b[l], B->x_step[l], B->w_step[l], B->yq, T, out));
    AW(aw_kc_err_sums(g_kc, y, B->yq, n, B->err + 2 * l));
    AW(aw_kc_col_err_accum(g_kc, y, B->yq, T, out, B->col_err));
}

static void val_run(void *p)
{
    block *B = ((fwd_arg *)p)->B;
    int T = B->T, d = B->d, f = B->f;
    size_t Td = (size_t)T * d;
    AW(aw_kc_layernorm(g_kc, B->h, B->ln1_g, B->ln1_b, B->x, T, d, 1e-5f));
    lin_val(B, LIN_Q, B->x, B->q);
    lin_val(B, LIN_K, B->x, B->k);
    lin_val(B, LIN_V, B->x, B->v);
    AW(aw_kc_attention(g_kc, B->q, B->k, B->v, B->a, B->n_seq, B->L, B->heads, B->heads, d,
                       1.0f / sqrtf((float)(d / B->heads)), B->hpc, B->att_ws));
    lin_val(B, LIN_O, B->a, B->y);
    AW(aw_kc_add(g_kc, B->h, B->y, Td));
    AW(aw_kc_layernorm(g_kc, B->h, B->ln2_g, B->ln2_b, B->x, T, d, 1e-5f));
    lin_val(B, LIN_FC1, B->x, B->fb);
    AW(aw_kc_relu(g_kc, B->fb, (size_t)T * f));
    lin_val(B, LIN_FC2, B->fb, B->y);
    AW(aw_kc_add(g_kc, B->h, B->y, Td));
}

static void bench_block(block *B, int reps)
{
    printf("\n# 3. one OPT-175B block: d %d, ffn %d, %d heads, L %d, %d sequences (T = %d),\n"
           "#    median of %d; x96 = 96 blocks at these samples; x96@128 = scaled to 128\n"
           "#    calibration sequences (the quantization does not scale with samples)\n",
           B->d, B->f, B->heads, B->L, B->n_seq, B->T, reps);
    printf("%-34s %12s %12s %14s\n", "phase", "ms/block", "x96 (s)", "x96@128 (s)");
    // residual stream: a random hidden state, reset before each phase so
    // that repeated runs see the same magnitudes
    size_t Td = (size_t)B->T * B->d;
    for (int t = 0; t < N_TAP; t++) {
        size_t c = t == TAP_FC2 ? (size_t)B->f : (size_t)B->d;
        AW(aw_kc_memset(g_kc, B->absmax[t], 0, c * 4));
        AW(aw_kc_memset(g_kc, B->sum[t], 0, c * 8));
    }
    AW(aw_kc_memset(g_kc, B->bad, 0, 8));
    AW(aw_kc_memset(g_kc, B->col_err, 0, (size_t)B->f * 8));

    static const struct {
        const char *name;
        run_fn fn;
        int f16w, stats, scales;
    } ph[] = {{"calibration fwd + stats, f32 w", calib_run, 0, 1, 1},
              {"calibration fwd + stats, f16 w", calib_run, 1, 1, 1},
              {"equalization folds, 6 weights", fold_run, 0, 0, 0},
              {"quantize 6 weights (INT8/tensor)", quant_run, 0, 0, 0},
              {"validation fwd, fp32 + W8A8", val_run, 0, 0, 1}};
    double total = 0.0, total128 = 0.0;
    for (size_t i = 0; i < sizeof ph / sizeof ph[0]; i++) {
        fill(B->h, Td, 500, 1.0f, B->d, 30.0f);
        if (ph[i].fn == val_run) set_x_steps(B); // after calibration and quantization
        fwd_arg a = {B, ph[i].f16w, ph[i].stats};
        double t = time_ms(ph[i].fn, &a, reps);
        double x96 = 96.0 * t * 1e-3, x128 = ph[i].scales ? x96 * 128.0 / B->n_seq : x96;
        printf("%-34s %12.1f %12.1f %14.1f\n", ph[i].name, t, x96, x128);
        if (i != 1) total += x96, total128 += x128; // the f16 calibration is the alternative
    }
    printf("%-34s %12s %12.1f %14.1f\n", "total (f32 calibration path)", "", total, total128);
    unsigned long long bad = 0;
    AW(aw_kc_copy(g_kc, &bad, B->bad, 8));
    AW(aw_kc_sync(g_kc));
    if (bad) printf("# note: %llu non-finite activations seen (random weights)\n", bad);
}

int main(int argc, char **argv)
{
    int n_seq = argc > 1 ? atoi(argv[1]) : 2;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (n_seq < 1) n_seq = 1;
    if (reps < 1) reps = 1;
    const char *why = "";
    if (aw_cuda_device_count(&why) == 0) {
        printf("skipped: no CUDA device (%s)\n", why);
        return 77;
    }
    char name[128];
    size_t mem = 0;
    AW(aw_cuda_use_device(0, name, sizeof name, &mem));
    printf("# device: %s, %.1f GiB\n", name, (double)mem / (1 << 30));
    CU(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
    AW(aw_kc_create(g_stream, &g_kc));
    CB(cublasCreate(&g_blas));
    CB(cublasSetStream(g_blas, g_stream));

    bench_memory(reps);
    block B;
    block_create(&B, n_seq);
    int preps = reps < 3 ? reps : 3; // the products and the block are long: 3 at most
    bench_products(&B, preps);
    bench_block(&B, preps);

    aw_kc_free(B.arena);
    CB(cublasDestroy(g_blas));
    aw_kc_destroy(g_kc);
    CU(cudaStreamDestroy(g_stream));
    return 0;
}
