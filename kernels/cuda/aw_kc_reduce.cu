// aw_kc_reduce.cu - reductions of the CUDA backend: calibration statistics,
// absmax, validation error sums (aw_kernels_cuda.h).
//
// Determinism: no float atomics. Every reduction has a shape fixed by its
// problem size alone (never by the device's SM count or by scheduling):
// per-tile or per-block partials written to scratch, then summed in index
// order by a second kernel. Maxima are exact in any order; the one integer
// atomic (the non-finite count) is exact too.
#include <float.h>
#include <stdint.h>

#include "aw_cuda_check.h"
#include "aw_kernels_cuda.h"

// ---- calibration statistics ------------------------------------------------------

// Tiles of STATS_ROWS rows x STATS_COLS channels: one thread per channel walks
// the tile's rows (a warp reads 128 contiguous bytes per row: coalesced),
// STATS_UNROLL loads in flight per thread. Partials: (n_tiles, d) floats and
// doubles, 12 bytes per channel per 128 rows, 2.3% of the input's bytes.
enum { STATS_ROWS = 128, STATS_COLS = 128, STATS_UNROLL = 8 };

static inline int stats_tiles(int T) { return (T + STATS_ROWS - 1) / STATS_ROWS; }

extern "C" size_t aw_kc_scratch_bytes_stats(int T, int d)
{
    if (T <= 0 || d <= 0) return 0;
    size_t n = (size_t)stats_tiles(T) * (size_t)d;
    return n * sizeof(double) + n * sizeof(float);
}

// One value into a channel's running max / sum / bad count (CPU semantics:
// non-finite values skipped and counted; max only over finite values).
__device__ __forceinline__ void stats_one(float v, float &m, double &s, unsigned &bad)
{
    float a = fabsf(v);
    bool ok = a <= FLT_MAX; // false for Inf and NaN
    bad += ok ? 0u : 1u;
    s += ok ? (double)v : 0.0;
    m = ok && a > m ? a : m;
}

__global__ void __launch_bounds__(STATS_COLS)
    stats_tile_kernel(const float *__restrict__ x, int T, int d, float *__restrict__ pmax,
                      double *__restrict__ psum, unsigned long long *nonfinite)
{
    int j = blockIdx.y * STATS_COLS + threadIdx.x;
    int tile = blockIdx.x;
    int r0 = tile * STATS_ROWS;
    int r1 = r0 + STATS_ROWS < T ? r0 + STATS_ROWS : T;
    unsigned bad = 0;
    if (j < d) {
        float m = 0.0f;
        double s = 0.0;
        const float *p = x + (size_t)r0 * d + j;
        int r = r0;
        for (; r + STATS_UNROLL <= r1; r += STATS_UNROLL) {
            float v[STATS_UNROLL];
#pragma unroll
            for (int u = 0; u < STATS_UNROLL; u++) v[u] = __ldg(p + (size_t)u * d);
#pragma unroll
            for (int u = 0; u < STATS_UNROLL; u++) stats_one(v[u], m, s, bad); // rows in order
            p += (size_t)STATS_UNROLL * d;
        }
        for (; r < r1; r++, p += d) stats_one(__ldg(p), m, s, bad);
        pmax[(size_t)tile * d + j] = m;
        psum[(size_t)tile * d + j] = s;
    }
    if (nonfinite) {
        // warp sums, one integer atomic per warp that saw any
        for (int o = 16; o > 0; o >>= 1) bad += __shfl_xor_sync(0xffffffffu, bad, o);
        if ((threadIdx.x & 31) == 0 && bad) atomicAdd(nonfinite, (unsigned long long)bad);
    }
}

// One thread per channel: the tiles' partials in tile order into the running
// statistics (max first over the running value, as the CPU does).
__global__ void stats_finish_kernel(const float *__restrict__ pmax, const double *__restrict__ psum,
                                    int n_tiles, int d, float *absmax, double *sum)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    float m = absmax[j];
    double s = 0.0;
    for (int t = 0; t < n_tiles; t++) {
        float a = pmax[(size_t)t * d + j];
        m = a > m ? a : m;
        s += psum[(size_t)t * d + j];
    }
    absmax[j] = m;
    sum[j] += s;
}

extern "C" aw_status aw_kc_stats_accum(aw_kc *k, const float *x, int T, int d, float *absmax,
                                       double *sum, unsigned long long *nonfinite)
{
    if (T <= 0 || d <= 0) return AW_OK;
    int n_tiles = stats_tiles(T);
    unsigned col_blocks = (unsigned)((d + STATS_COLS - 1) / STATS_COLS);
    AW_RETURN_IF(col_blocks > 65535u, AW_ERR_ARG, "stats_accum: d = %d channels is beyond %d", d,
                 65535 * STATS_COLS);
    void *scr;
    AW_TRY(aw_kc_scratch(k, aw_kc_scratch_bytes_stats(T, d), &scr));
    double *psum = (double *)scr; // doubles first: 8-byte aligned
    float *pmax = (float *)(psum + (size_t)n_tiles * d);
    stats_tile_kernel<<<dim3((unsigned)n_tiles, col_blocks), STATS_COLS, 0, k->stream>>>(
        x, T, d, pmax, psum, nonfinite);
    AW_CUDA_LAUNCH("stats_tile_kernel");
    stats_finish_kernel<<<aw_kc_blocks((size_t)d, AW_KC_THREADS, 1u << 20), AW_KC_THREADS, 0,
                          k->stream>>>(pmax, psum, n_tiles, d, absmax, sum);
    AW_CUDA_LAUNCH("stats_finish_kernel");
    return AW_OK;
}

// ---- absmax ------------------------------------------------------------------------

// Max over the bit patterns of |x| as int32, as aw_k_absmax: for
// non-negative floats integer order is numeric order and NaN patterns sort
// above Inf, so a NaN anywhere makes the result NaN. Integer max is exact
// in any order: the result is the CPU's bits.
enum { ABSMAX_BLOCKS = 1024 };

__device__ __forceinline__ int32_t abs_bits(float v) { return (int32_t)(__float_as_uint(v) & 0x7fffffffu); }

__device__ int32_t block_max_i(int32_t v, int32_t *sh)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nw ? sh[lane] : 0;
        for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
    }
    return v; // valid in thread 0
}

__global__ void absmax_partial_kernel(const float *__restrict__ x, size_t n, int vec,
                                      int32_t *__restrict__ part)
{
    __shared__ int32_t sh[32];
    size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    size_t nth = (size_t)gridDim.x * blockDim.x;
    int32_t m = 0;
    size_t done = 0;
    if (vec) {
        size_t n4 = n / 4;
        const float4 *x4 = reinterpret_cast<const float4 *>(x);
#pragma unroll 4
        for (size_t g = tid; g < n4; g += nth) {
            float4 v = x4[g];
            m = max(m, max(max(abs_bits(v.x), abs_bits(v.y)), max(abs_bits(v.z), abs_bits(v.w))));
        }
        done = n4 * 4;
    }
    for (size_t i = done + tid; i < n; i += nth) m = max(m, abs_bits(x[i]));
    m = block_max_i(m, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = m;
}

__global__ void absmax_finish_kernel(const int32_t *__restrict__ part, int n_part, float *out)
{
    __shared__ int32_t sh[32];
    int32_t m = 0;
    for (int i = threadIdx.x; i < n_part; i += blockDim.x) m = max(m, part[i]);
    m = block_max_i(m, sh);
    if (threadIdx.x == 0) *out = __uint_as_float((uint32_t)m);
}

extern "C" aw_status aw_kc_absmax(aw_kc *k, const float *x, size_t n, float *out)
{
    unsigned g = aw_kc_blocks(n / 4 + 1, AW_KC_THREADS * 4, ABSMAX_BLOCKS);
    void *scr;
    AW_TRY(aw_kc_scratch(k, (size_t)g * sizeof(int32_t), &scr));
    int vec = ((uintptr_t)x % 16) == 0;
    absmax_partial_kernel<<<g, AW_KC_THREADS, 0, k->stream>>>(x, n, vec, (int32_t *)scr);
    AW_CUDA_LAUNCH("absmax_partial_kernel");
    absmax_finish_kernel<<<1, AW_KC_THREADS, 0, k->stream>>>((const int32_t *)scr, (int)g, out);
    AW_CUDA_LAUNCH("absmax_finish_kernel");
    return AW_OK;
}

// ---- validation error sums ------------------------------------------------------------

// Two-stage double sums of (y - yr)^2 and yr^2. The grid is a function of n
// alone (ERR_BLOCKS cap), each thread walks a fixed grid-stride sequence,
// blocks reduce in a fixed shape, and the partials are summed by one block
// in a fixed shape: the same bits run after run and on every GPU.
enum { ERR_BLOCKS = 1024 };

__device__ void block_sum2_d(double &a, double &b, double *sh /* 64 */)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) {
        a += __shfl_xor_sync(0xffffffffu, a, o);
        b += __shfl_xor_sync(0xffffffffu, b, o);
    }
    if (lane == 0) sh[warp] = a, sh[32 + warp] = b;
    __syncthreads();
    if (warp == 0) {
        a = lane < nw ? sh[lane] : 0.0;
        b = lane < nw ? sh[32 + lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) {
            a += __shfl_xor_sync(0xffffffffu, a, o);
            b += __shfl_xor_sync(0xffffffffu, b, o);
        }
    } // valid in thread 0
}

__global__ void err_partial_kernel(const float *__restrict__ yr, const float *__restrict__ y,
                                   size_t n, double *__restrict__ part)
{
    __shared__ double sh[64];
    double e = 0.0, r = 0.0;
#pragma unroll 4
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        double a = yr[i], c = __dsub_rn((double)y[i], a);
        e = __dadd_rn(e, __dmul_rn(c, c));
        r = __dadd_rn(r, __dmul_rn(a, a));
    }
    block_sum2_d(e, r, sh);
    if (threadIdx.x == 0) part[2 * blockIdx.x] = e, part[2 * blockIdx.x + 1] = r;
}

__global__ void err_finish_kernel(const double *__restrict__ part, int n_part, double *out)
{
    __shared__ double sh[64];
    double e = 0.0, r = 0.0;
    for (int i = threadIdx.x; i < n_part; i += blockDim.x) e += part[2 * i], r += part[2 * i + 1];
    block_sum2_d(e, r, sh);
    if (threadIdx.x == 0) out[0] = e, out[1] = r;
}

extern "C" aw_status aw_kc_err_sums(aw_kc *k, const float *yr, const float *y, size_t n,
                                    double *out)
{
    unsigned g = aw_kc_blocks(n, AW_KC_THREADS * 8, ERR_BLOCKS);
    void *scr;
    AW_TRY(aw_kc_scratch(k, (size_t)g * 2 * sizeof(double), &scr));
    err_partial_kernel<<<g, AW_KC_THREADS, 0, k->stream>>>(yr, y, n, (double *)scr);
    AW_CUDA_LAUNCH("err_partial_kernel");
    err_finish_kernel<<<1, AW_KC_THREADS, 0, k->stream>>>((const double *)scr, (int)g, out);
    AW_CUDA_LAUNCH("err_finish_kernel");
    return AW_OK;
}

// One thread per column, rows in order: the CPU's additions in the CPU's
// order, so the same bits. Only `out` threads: latency-bound for narrow
// outputs (validation only, a few % of a GEMM's time), so many loads in
// flight per thread and small blocks to spread the columns over the SMs.
enum { COLERR_UNROLL = 16, COLERR_THREADS = 64 };

__global__ void col_err_kernel(const float *__restrict__ yr, const float *__restrict__ y, int T,
                               int out, double *col_err)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= out) return;
    double s = col_err[j];
    int t = 0;
    for (; t + COLERR_UNROLL <= T; t += COLERR_UNROLL) {
        float a[COLERR_UNROLL], c[COLERR_UNROLL];
#pragma unroll
        for (int u = 0; u < COLERR_UNROLL; u++) {
            size_t i = (size_t)(t + u) * out + j;
            a[u] = yr[i], c[u] = y[i];
        }
#pragma unroll
        for (int u = 0; u < COLERR_UNROLL; u++) s += (double)c[u] - (double)a[u];
    }
    for (; t < T; t++) {
        size_t i = (size_t)t * out + j;
        s += (double)y[i] - (double)yr[i];
    }
    col_err[j] = s;
}

extern "C" aw_status aw_kc_col_err_accum(aw_kc *k, const float *yr, const float *y, int T, int out,
                                         double *col_err)
{
    if (T <= 0 || out <= 0) return AW_OK;
    col_err_kernel<<<aw_kc_blocks((size_t)out, COLERR_THREADS, 1u << 20), COLERR_THREADS, 0,
                     k->stream>>>(yr, y, T, out, col_err);
    AW_CUDA_LAUNCH("col_err_kernel");
    return AW_OK;
}
