/*
 * aw_gemm_i8.c - the INT8 x INT8 -> INT32 product of the CPU backend
 * (aw_k_gemm_i8 in aw_kernels.h) and the choice of its path.
 *
 * oneDNN's dnnl_gemm_s8s8s32 is the fast path (about 4x OpenBLAS's sgemm
 * rate with AVX-512 VNNI). It is not exact everywhere: without VNNI its
 * kernels multiply with vpmaddubsw, which saturates the 16-bit sum of two
 * u8 x s8 products, and the product comes out wrong even on ordinary data.
 * So on first use a self-test compares it with an int64 reference on a few
 * small products (rows of all 127 against rows of all 127, all -128, random
 * rows, and the matrix-vector shapes oneDNN sends to other kernels); oneDNN
 * is used only where every element matches. Otherwise the product is the
 * int16 loop of aw_kernels.c, split by rows over the same OpenMP threads.
 */
#include "aw_kernels.h"

#include <cblas.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- threads ------------------------------------------------------------------- */

static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;
static int g_omp_user; /* OMP_NUM_THREADS was set: libgomp already honours it */

static void read_env(void)
{
    const char *e = getenv("OMP_NUM_THREADS");
    g_omp_user = e && *e;
}

/* The OpenMP threads of the product (oneDNN's, and the fallback's), set on
 * the calling thread and returned. oneDNN (OpenMP runtime in Debian's build)
 * asks omp_get_max_threads() at each call; without OMP_NUM_THREADS that is
 * every core of the node, in every rank. So OpenBLAS's count instead, which
 * the pipeline sets per rank (aw_set_blas_threads). The setting belongs to
 * the calling thread, hence per call (it only stores an int). */
int aw_k_product_threads(void)
{
    pthread_once(&g_env_once, read_env);
    if (!g_omp_user) {
        int n = openblas_get_num_threads();
        omp_set_num_threads(n > 0 ? n : 1);
    }
    return omp_get_max_threads();
}

void aw_k_threads_sleep_when_idle(char **argv)
{
    if (!argv || !argv[0] || getenv("OMP_WAIT_POLICY") || getenv("OPENBLAS_THREAD_TIMEOUT")) return;
    /* under valgrind the program would run again outside it */
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload")) return;
    /* the file the kernel runs, by its own path (executing /proc/self/exe
     * would rename the process "exe" for ps, pgrep and a launcher's kill);
     * only when it is the program argv[0] names: not a loader (ld.so
     * ./aweq-dist) or an emulator, nor a link of another name */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || (size_t)n >= sizeof self - 1) return;
    self[n] = '\0';
    const char *b0 = strrchr(argv[0], '/'), *bs = strrchr(self, '/');
    if (strcmp(b0 ? b0 + 1 : argv[0], bs ? bs + 1 : self) != 0) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 0) || setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0)) return;
    execv(self, argv); /* returns only on failure: go on as we are */
}

/* ---- the fallback: the int16 loop on slices of rows ------------------------------ */

/* Rows per slice at least: each slice widens all of w again (out x in), so
 * a slice must have rows enough to amortise it. */
enum { FB_MIN_ROWS = 64 };

void aw_k_gemm_i8_fallback(const int8_t *xq, const int8_t *wq, int32_t *acc, int T, int in, int out)
{
    if (T <= 0 || out <= 0) return;
    int nthr = aw_k_product_threads();
    int ns = (T + FB_MIN_ROWS - 1) / FB_MIN_ROWS;
    ns = ns < nthr ? ns : nthr;
    if (ns <= 1) {
        aw_k_gemm_i8_loop(xq, wq, acc, T, in, out);
        return;
    }
    /* slices of a multiple of 4 rows (the loop's row block); each element is
     * the same integer sum whichever slice computes it */
    int rows = ((T + ns - 1) / ns + 3) / 4 * 4;
#pragma omp parallel for num_threads(ns) schedule(static, 1)
    for (int s = 0; s < ns; s++) {
        int t0 = s * rows, t1 = t0 + rows < T ? t0 + rows : T;
        if (t0 < t1)
            aw_k_gemm_i8_loop(xq + (size_t)t0 * in, wq, acc + (size_t)t0 * out, t1 - t0, in, out);
    }
}

/* ---- oneDNN -------------------------------------------------------------------- */

/* acc (T, out) = xq (T, in) wq (out, in)^T by oneDNN (row-major C API).
 * T, out, in >= 1. */
static dnnl_status_t gemm_onednn(const int8_t *xq, const int8_t *wq, int32_t *acc, int T, int in,
                                 int out)
{
    static const int32_t co = 0;
    aw_k_product_threads();
    return dnnl_gemm_s8s8s32('N', 'T', 'F', T, out, in, 1.0f, xq, in, 0, wq, in, 0, 0.0f, acc, out,
                             &co);
}

static const char *isa_name(dnnl_cpu_isa_t isa, int *vnni)
{
    *vnni = 0;
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: *vnni = 1; return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: *vnni = 1; return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: *vnni = 1; return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni: *vnni = 1; return "avx2_vnni";
    default: return "unknown";
    }
}

/* Test data: rows cycle through all 127, all -128, random, and 127/-128
 * alternating (phase shifts the alternation), so that every shape multiplies
 * a row of 127s by a row of 127s: a saturating kernel cannot pass. */
static void selftest_fill(int8_t *m, int rows, int cols, int phase, uint64_t *rng)
{
    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < cols; k++) {
            int8_t v;
            switch (r % 4) {
            case 0: v = 127; break;
            case 1: v = -128; break;
            case 2:
                *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
                v = (int8_t)(uint8_t)(*rng >> 56);
                break;
            default: v = (k + phase) % 2 ? 127 : -128; break;
            }
            m[(size_t)r * cols + k] = v;
        }
    }
}

/* One self-test product; 0 if oneDNN matches the int64 reference in every
 * element, else -1 with the reason in why. */
static int selftest_one(int T, int in, int out, char *why, size_t cap)
{
    size_t nx = (size_t)T * in, nw = (size_t)out * in, na = (size_t)T * out;
    int8_t *x = malloc(nx + nw);
    if (!x) {
        snprintf(why, cap, "no memory for the self-test");
        return -1;
    }
    int8_t *w = x + nx;
    int32_t *acc = malloc(na * sizeof(int32_t));
    if (!acc) {
        free(x);
        snprintf(why, cap, "no memory for the self-test");
        return -1;
    }
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)(T * 131 + in * 7 + out);
    selftest_fill(x, T, in, 0, &rng);
    selftest_fill(w, out, in, 1, &rng);
    int rc = 0;
    dnnl_status_t st = gemm_onednn(x, w, acc, T, in, out);
    if (st != dnnl_success) {
        snprintf(why, cap, "dnnl_gemm_s8s8s32 on %dx%dx%d returned status %d", T, in, out, (int)st);
        rc = -1;
    }
    size_t bad = 0, first = 0;
    long long got = 0, want = 0;
    for (int t = 0; rc == 0 && t < T; t++) {
        for (int o = 0; o < out; o++) {
            int64_t s = 0;
            for (int k = 0; k < in; k++)
                s += (int64_t)x[(size_t)t * in + k] * w[(size_t)o * in + k];
            size_t i = (size_t)t * out + o;
            if ((int64_t)acc[i] != s && bad++ == 0) first = i, got = acc[i], want = (long long)s;
        }
    }
    if (bad) {
        snprintf(why, cap,
                 "%zu of %zu values of a %dx%dx%d product wrong, first at (%zu, %zu): %lld "
                 "instead of %lld",
                 bad, na, T, in, out, first / (size_t)out, first % (size_t)out, got, want);
        rc = -1;
    }
    free(acc);
    free(x);
    return rc;
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_use_onednn;
static char g_path[768];

static void gemm_i8_init(void)
{
    const dnnl_version_t *v = dnnl_version();
    int vnni;
    const char *isa = isa_name(dnnl_get_effective_cpu_isa(), &vnni);
    char onednn[96];
    snprintf(onednn, sizeof onednn, "oneDNN %d.%d.%d s8s8s32 gemm on %s %s VNNI", v->major,
             v->minor, v->patch, isa, vnni ? "with" : "without");
    /* shapes: matrix-vector both ways (oneDNN's gemv kernels), and a small
     * product through its blocked kernel, K = 1030 leaving a tail after any
     * power-of-two block */
    static const int shapes[][3] = {{1, 301, 29}, {29, 301, 1}, {67, 1030, 45}};
    char why[256] = "";
    int ok = 1;
    for (size_t s = 0; ok && s < sizeof shapes / sizeof shapes[0]; s++)
        ok = selftest_one(shapes[s][0], shapes[s][1], shapes[s][2], why, sizeof why) == 0;
    g_use_onednn = ok;
    if (ok)
        snprintf(g_path, sizeof g_path, "%s, self-test passed", onednn);
    else
        snprintf(g_path, sizeof g_path, "int16 loop (%s failed its self-test: %s)", onednn, why);
}

const char *aw_k_gemm_i8_path(void)
{
    pthread_once(&g_once, gemm_i8_init);
    return g_path;
}

int aw_k_gemm_i8_uses_onednn(void)
{
    pthread_once(&g_once, gemm_i8_init);
    return g_use_onednn;
}

void aw_k_gemm_i8(const int8_t *xq, const int8_t *wq, int32_t *acc, int T, int in, int out)
{
    if (T <= 0 || out <= 0) return;
    if (in <= 0) {
        memset(acc, 0, (size_t)T * out * sizeof(int32_t));
        return;
    }
    pthread_once(&g_once, gemm_i8_init);
    /* both paths write all of acc: a failed oneDNN call leaves nothing behind */
    if (g_use_onednn && gemm_onednn(xq, wq, acc, T, in, out) == dnnl_success) return;
    aw_k_gemm_i8_fallback(xq, wq, acc, T, in, out);
}
