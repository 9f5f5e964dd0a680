/*
 * bench_kernels.c - throughput of the CPU kernels, each against a baseline
 * measured in the same run: the memory-bound kernels against memcpy of the
 * same input bytes, aw_k_linear against a bare cblas_sgemm of the same
 * shape. Calls the production functions only. Best of several repetitions
 * (CLOCK_MONOTONIC). Not a test: it prints a table and exits 0 unless an
 * allocation fails.
 *
 * The int8 product is timed against cblas_sgemm of the same shape, on the
 * path aw_k_gemm_i8 chose and on its fallback, with 1 thread and with all:
 * min and median of gemm_reps interleaved repetitions (2-thread timings on a
 * shared machine are bimodal: the median is the figure to quote). Run it
 * with ONEDNN_MAX_CPU_ISA=AVX2 to see the choice fall back.
 *
 * The grouped product of dynamic activations (aw_k_gemm_groups, aw_actq.h)
 * on T = 4096, in -> out 768 -> 768 and 3072 -> 768, groups of 128 both (and
 * per-token activations), against cblas_sgemm of the same shape and the
 * ungrouped aw_k_gemm_i8; aw_k_act_quant against memcpy of its input.
 *
 *   bench_kernels [reps] [gemm_reps]    (defaults 5 and 7)
 *   bench_kernels groups [reps]         (the grouped product only)
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aw_actq.h"
#include "aw_clock.h"
#include "aw_kernels.h"
#include "aw_rng.h"

/* Keeps results alive so the compiler cannot drop a timed call's effect. */
static volatile double g_sink;

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "bench_kernels: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    memset(p, 0, n); /* fault the pages in before timing */
    return p;
}

/* Activation-like data: normal values, every 97th channel 60x larger. */
static void fill_act(float *x, int T, int d, uint64_t seed)
{
    aw_rng r;
    aw_rng_seed(&r, seed, "bench");
    for (int t = 0; t < T; t++)
        for (int j = 0; j < d; j++)
            x[(size_t)t * d + j] = (float)aw_rng_normal(&r) * (j % 97 == 5 ? 60.0f : 1.0f);
}

enum { K_STATS, K_ABSMAX, K_QUANT, K_DEQUANT, K_MEMCPY };

/* One timed call of kernel k on n = T*d values. */
static void run_mem(int k, const float *x, int T, int d, float *absmax, double *sum, int8_t *q,
                    float *xo)
{
    size_t n = (size_t)T * d;
    switch (k) {
    case K_STATS: g_sink += (double)aw_k_stats_accum(x, T, d, absmax, sum); break;
    case K_ABSMAX: g_sink += aw_k_absmax(x, n); break;
    case K_QUANT:
        aw_k_quantize_i8(x, n, 0.05f, q);
        g_sink += q[n / 2];
        break;
    case K_DEQUANT:
        aw_k_dequantize_i8(q, n, 0.05f, xo);
        g_sink += xo[n / 2];
        break;
    }
}

static double best_time(int reps, void (*fn)(void *), void *arg)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = aw_now();
        fn(arg);
        double dt = aw_now() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

typedef struct {
    int k;
    const float *x;
    const void *src; /* memcpy source: the kernel's input */
    int T, d;
    float *absmax;
    double *sum;
    int8_t *q;
    float *xo;
    void *dst;
    size_t bytes;
} mem_arg;

static void mem_call(void *p)
{
    mem_arg *a = p;
    if (a->k == K_MEMCPY) {
        memcpy(a->dst, a->src, a->bytes);
        g_sink += ((const unsigned char *)a->dst)[a->bytes / 3];
        return;
    }
    run_mem(a->k, a->x, a->T, a->d, a->absmax, a->sum, a->q, a->xo);
}

static void bench_memory(int T, int d, int reps, double *ratio_out)
{
    size_t n = (size_t)T * d;
    float *x = xmalloc(n * sizeof(float));
    float *xo = xmalloc(n * sizeof(float));
    void *dst = xmalloc(n * sizeof(float));
    int8_t *q = xmalloc(n);
    float *absmax = xmalloc((size_t)d * sizeof(float));
    double *sum = xmalloc((size_t)d * sizeof(double));
    fill_act(x, T, d, 1);
    aw_k_quantize_i8(x, n, 0.05f, q);

    static const char *names[] = {"stats_accum", "absmax", "quantize_i8", "dequantize_i8"};
    for (int k = K_STATS; k <= K_DEQUANT; k++) {
        /* input of the kernel: floats, or int8 codes for dequantize */
        size_t in_bytes = k == K_DEQUANT ? n : n * sizeof(float);
        size_t out_bytes = k == K_QUANT ? n : k == K_DEQUANT ? n * sizeof(float) : 0;
        mem_arg a = {k,   x,       k == K_DEQUANT ? (const void *)q : (const void *)x,
                     T,   d,       absmax,
                     sum, q,       xo,
                     dst, in_bytes};
        double tk = best_time(reps, mem_call, &a);
        mem_arg m = a;
        m.k = K_MEMCPY;
        double tm = best_time(reps, mem_call, &m);
        double gk = (double)in_bytes / tk * 1e-9, gm = (double)in_bytes / tm * 1e-9;
        double gio = (double)(in_bytes + out_bytes) / tk * 1e-9;
        printf("%-14s %5d x %-5d %9.3f %10.2f %12.2f %12.2f %8.2f\n", names[k], T, d, tk * 1e3, gk,
               gio, gm, gk / gm);
        ratio_out[k] = gk / gm;
    }
    free(x), free(xo), free(dst), free(q), free(absmax), free(sum);
}

typedef struct {
    const float *x, *w, *b;
    float *y;
    const int8_t *xq, *wq;
    int32_t *acc;
    /* 0 aw_k_linear, 1 cblas_sgemm, 2 aw_k_gemm_i8, 3 aw_k_gemm_i8_fallback */
    int T, in, out, mode;
} lin_arg;

static void lin_call(void *p)
{
    lin_arg *a = p;
    switch (a->mode) {
    case 0: aw_k_linear(a->x, a->w, a->b, a->y, a->T, a->in, a->out); break;
    case 1:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a->T, a->out, a->in, 1.0f, a->x, a->in,
                    a->w, a->in, 0.0f, a->y, a->out);
        break;
    case 2: aw_k_gemm_i8(a->xq, a->wq, a->acc, a->T, a->in, a->out); break;
    default: aw_k_gemm_i8_fallback(a->xq, a->wq, a->acc, a->T, a->in, a->out); break;
    }
    g_sink += a->mode >= 2 ? (double)a->acc[7] : (double)a->y[7];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* min and median of n times (sorts t) */
static void min_median(double *t, int n, double *mn, double *med)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    *mn = t[0];
    *med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static double time_once(void (*fn)(void *), void *arg)
{
    double t0 = aw_now();
    fn(arg);
    return aw_now() - t0;
}

/* The int8 product on OPT-125m shapes: the path aw_k_gemm_i8 chose (oneDNN
 * where it passed its self-test), its fallback called directly (the int16
 * loop on slices of rows), and cblas_sgemm of the same shape in fp32, with 1 thread and with all
 * (OpenBLAS's count at start; oneDNN follows it). Repetitions interleave the
 * three, so a slow phase of the machine hits all of them; min and median.
 * ratio[h][s] = median GOP/s / median sgemm GFLOP/s. */
static void bench_gemm_i8(int T, int reps, int nthr[2], double ratio[2][3], double fb_ratio[2][3])
{
    static const int shapes[3][2] = {{768, 768}, {768, 3072}, {3072, 768}};
    int all = openblas_get_num_threads();
    nthr[0] = 1, nthr[1] = all;
    printf("\n# int8 product (exact int32), OPT-125m shapes, T = %d, %d repetitions "
           "(min / median)\n"
           "# chosen path: %s\n"
           "# ratio = GOP/s / fp32 cblas_sgemm GFLOP/s of the same shape, medians\n",
           T, reps, aw_k_gemm_i8_path());
    if (getenv("OMP_NUM_THREADS"))
        printf("# OMP_NUM_THREADS=%s: the int8 product's threads are that, not the column thr\n",
               getenv("OMP_NUM_THREADS"));
    printf("%-14s %-4s %-14s %17s %19s %19s %7s %6s\n", "kernel", "thr", "in -> out",
           "ms (min/med)", "GOP/s (min/med)", "sgemm GF/s", "ratio", "same");
    double *tt = malloc(sizeof(double) * 3 * (size_t)reps);
    if (!tt) exit(1);
    for (int h = 0; h < 2; h++) {
        openblas_set_num_threads(nthr[h]);
        for (int s = 0; s < 3; s++) {
            int in = shapes[s][0], out = shapes[s][1];
            float *x = xmalloc((size_t)T * in * sizeof(float));
            float *w = xmalloc((size_t)out * in * sizeof(float));
            float *y = xmalloc((size_t)T * out * sizeof(float));
            int8_t *xq = xmalloc((size_t)T * in), *wq = xmalloc((size_t)out * in);
            int32_t *a0 = xmalloc((size_t)T * out * sizeof(int32_t));
            int32_t *a1 = xmalloc((size_t)T * out * sizeof(int32_t));
            fill_act(x, T, in, 2);
            fill_act(w, out, in, 3);
            aw_rng r;
            aw_rng_seed(&r, 5, "bench-i8");
            for (size_t i = 0; i < (size_t)T * in; i++)
                xq[i] = (int8_t)((int)aw_rng_below(&r, 255) - 127);
            for (size_t i = 0; i < (size_t)out * in; i++)
                wq[i] = (int8_t)((int)aw_rng_below(&r, 255) - 127);
            lin_arg ab = {x, w, NULL, y, NULL, NULL, NULL, T, in, out, 1};
            lin_arg ai = {NULL, NULL, NULL, NULL, xq, wq, a0, T, in, out, 2};
            lin_arg af = {NULL, NULL, NULL, NULL, xq, wq, a1, T, in, out, 3};
            lin_call(&ab), lin_call(&ai), lin_call(&af); /* warm up threads, JIT */
            int same = memcmp(a0, a1, (size_t)T * out * sizeof(int32_t)) == 0;
            for (int k = 0; k < reps; k++) {
                tt[k] = time_once(lin_call, &ab);
                tt[reps + k] = time_once(lin_call, &ai);
                tt[2 * reps + k] = time_once(lin_call, &af);
            }
            double bmin, bmed, imin, imed, fmin, fmed, op = 2.0 * T * in * out * 1e-9;
            min_median(tt, reps, &bmin, &bmed);
            min_median(tt + reps, reps, &imin, &imed);
            min_median(tt + 2 * reps, reps, &fmin, &fmed);
            ratio[h][s] = bmed / imed;
            fb_ratio[h][s] = bmed / fmed;
            const char *names[2] = {
                aw_k_gemm_i8_uses_onednn() ? "gemm_i8 oneDNN" : "gemm_i8 chosen", "gemm_i8 loop"};
            double mins[2] = {imin, fmin}, meds[2] = {imed, fmed};
            for (int p = 0; p < 2; p++)
                printf("%-14s %-4d %5d -> %-6d %8.2f /%8.2f %9.1f /%9.1f %9.1f /%9.1f %7.2f %6s\n",
                       names[p], nthr[h], in, out, mins[p] * 1e3, meds[p] * 1e3, op / mins[p],
                       op / meds[p], op / bmin, op / bmed, bmed / meds[p], same ? "yes" : "NO");
            free(x), free(w), free(y), free(xq), free(wq), free(a0), free(a1);
        }
    }
    openblas_set_num_threads(all);
    free(tt);
}

/* The grouped product: ms and GOP/s (2 T in out) of aw_k_gemm_groups (A, W)
 * and of aw_k_act_quant, against cblas_sgemm and aw_k_gemm_i8 of the same
 * shape and memcpy of the activations; medians of reps interleaved runs. */
typedef struct {
    const float *x, *w, *xs, *ws;
    float *y;
    const int8_t *xq, *wq;
    int8_t *q;
    float *st;
    int32_t *acc;
    void *scr;
    float *dst;
    int T, in, out, A, W, mode; /* 0 sgemm, 1 gemm_i8, 2 gemm_groups, 3 act_quant, 4 memcpy */
} grp_arg;

static void grp_call(void *p)
{
    grp_arg *a = p;
    switch (a->mode) {
    case 0:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a->T, a->out, a->in, 1.0f, a->x, a->in, a->w, a->in,
                    0.0f, a->y, a->out);
        break;
    case 1: aw_k_gemm_i8(a->xq, a->wq, a->acc, a->T, a->in, a->out); break;
    case 2:
        if (aw_k_gemm_groups(a->xq, a->xs, a->A, a->wq, a->ws, a->W, NULL, a->y, a->T, a->in, a->out, a->scr) != AW_OK)
            exit(1);
        break;
    case 3: aw_k_act_quant(a->x, a->T, a->in, 4, a->A, NULL, a->q, a->st); break;
    default: memcpy(a->dst, a->x, (size_t)a->T * a->in * sizeof(float)); break;
    }
    g_sink += a->y[7];
}

static void bench_gemm_groups(int T, int reps)
{
    static const int shapes[2][2] = {{768, 768}, {3072, 768}};
    static const int gr[2][2] = {{128, 128}, {0, 128}};
    printf("\n# grouped product of dynamic activations (exact), T = %d, %d threads, medians of %d\n"
           "# int8 path: %s\n",
           T, openblas_get_num_threads(), reps, aw_k_gemm_i8_path());
    printf("%-12s %-14s %9s %9s %9s %9s %9s %11s %11s\n", "in -> out", "A / W", "groups ms", "GOP/s",
           "sgemm ms", "GFLOP/s", "i8 ms", "grp/sgemm", "actq GB/s");
    double *tt = malloc(sizeof(double) * 5 * (size_t)reps);
    if (!tt) exit(1);
    for (int s = 0; s < 2; s++)
        for (int g = 0; g < 2; g++) {
            int in = shapes[s][0], out = shapes[s][1], A = gr[g][0], W = gr[g][1];
            int nga = aw_act_groups(in, A), ngw = aw_act_groups(in, W);
            float *x = xmalloc((size_t)T * in * sizeof(float)), *w = xmalloc((size_t)out * in * sizeof(float));
            float *y = xmalloc((size_t)T * out * sizeof(float)), *dst = xmalloc((size_t)T * in * sizeof(float));
            float *xs = xmalloc((size_t)T * nga * sizeof(float)), *ws = xmalloc((size_t)out * ngw * sizeof(float));
            int8_t *xq = xmalloc((size_t)T * in), *wq = xmalloc((size_t)out * in), *q = xmalloc((size_t)T * in);
            int32_t *acc = xmalloc((size_t)T * out * sizeof(int32_t));
            void *scr = xmalloc(aw_k_gemm_groups_scratch(T, in, out, A, W));
            fill_act(x, T, in, 2);
            fill_act(w, out, in, 3);
            aw_k_act_quant(x, T, in, 4, A, NULL, xq, xs);
            aw_rng r;
            aw_rng_seed(&r, 9, "bench-groups");
            for (size_t i = 0; i < (size_t)out * in; i++) wq[i] = (int8_t)((int)aw_rng_below(&r, 16) - 8);
            for (size_t i = 0; i < (size_t)out * ngw; i++) ws[i] = (float)(0.01 + 0.01 * aw_rng_uniform(&r));
            grp_arg a[5];
            for (int m = 0; m < 5; m++)
                a[m] = (grp_arg){x, w, xs, ws, y, xq, wq, q, xs, acc, scr, dst, T, in, out, A, W, m};
            float *st = xmalloc((size_t)T * nga * sizeof(float));
            a[3].st = st;
            for (int m = 0; m < 5; m++) grp_call(&a[m]); /* warm up */
            for (int k = 0; k < reps; k++)
                for (int m = 0; m < 5; m++) tt[m * reps + k] = time_once(grp_call, &a[m]);
            double mn, med[5], op = 2.0 * T * in * out * 1e-9, gb = (double)T * in * sizeof(float) * 1e-9;
            for (int m = 0; m < 5; m++) min_median(tt + m * reps, reps, &mn, &med[m]);
            char lab[32];
            snprintf(lab, sizeof lab, "%d / %d", A, W);
            printf("%5d -> %-4d %-14s %9.2f %9.1f %9.2f %9.1f %9.2f %11.2f %6.1f (memcpy %.1f)\n", in, out, lab,
                   med[2] * 1e3, op / med[2], med[0] * 1e3, op / med[0], med[1] * 1e3, med[0] / med[2],
                   gb / med[3], gb / med[4]);
            free(x), free(w), free(y), free(dst), free(xs), free(ws), free(xq), free(wq), free(q), free(acc);
            free(scr), free(st);
        }
    free(tt);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "groups") == 0) {
        int r = argc > 2 ? atoi(argv[2]) : 7;
        bench_gemm_groups(4096, r < 1 ? 1 : r);
        return 0;
    }
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1) reps = 1;
    printf("# memory-bound kernels: GB/s of input bytes (and input+output bytes), best of %d;\n"
           "# ratio = kernel input GB/s / memcpy GB/s of the same input bytes\n",
           reps);
    printf("%-14s %-13s %9s %10s %12s %12s %8s\n", "kernel", "T x d", "ms", "in GB/s",
           "in+out GB/s", "memcpy GB/s", "ratio");
    double r768[4], r3072[4];
    bench_memory(8192, 768, reps, r768);
    bench_memory(8192, 3072, reps, r3072);

    printf("\n# matrix products, OPT-125m shapes, T = 8192, best of 3\n");
    printf("%-14s %-16s %9s %12s %14s %8s\n", "kernel", "in -> out", "ms", "GFLOP/s",
           "sgemm GFLOP/s", "ratio");
    static const int shapes[3][2] = {{768, 768}, {768, 3072}, {3072, 768}};
    const int T = 8192;
    double lin_ratio[3];
    for (int s = 0; s < 3; s++) {
        int in = shapes[s][0], out = shapes[s][1];
        float *x = xmalloc((size_t)T * in * sizeof(float));
        float *w = xmalloc((size_t)out * in * sizeof(float));
        float *b = xmalloc((size_t)out * sizeof(float));
        float *y = xmalloc((size_t)T * out * sizeof(float));
        fill_act(x, T, in, 2);
        fill_act(w, out, in, 3);
        fill_act(b, 1, out, 4);
        double flop = 2.0 * T * in * out;
        lin_arg a = {x, w, b, y, NULL, NULL, NULL, T, in, out, 0};
        lin_call(&a); /* warm up OpenBLAS threads */
        double tl = best_time(3, lin_call, &a);
        a.mode = 1;
        double tb = best_time(3, lin_call, &a);
        lin_ratio[s] = tb / tl;
        printf("%-14s %5d -> %-7d %9.2f %12.1f %14.1f %8.2f\n", "linear", in, out, tl * 1e3,
               flop / tl * 1e-9, flop / tb * 1e-9, lin_ratio[s]);
        free(x), free(w), free(b), free(y);
    }
    int gemm_reps = argc > 2 ? atoi(argv[2]) : 7;
    if (gemm_reps < 1) gemm_reps = 1;
    double i8_ratio[2][3], fb_ratio[2][3];
    int nthr[2];
    bench_gemm_i8(T, gemm_reps, nthr, i8_ratio, fb_ratio);
    bench_gemm_groups(4096, gemm_reps);

    printf("\n# causal attention, informational: 1 sequence, L = 2048, 12 heads, d = 768,\n"
           "# 4 heads per chunk; GFLOP/s counts the causal half of q k^T and p v, best of 2\n");
    {
        int L = 2048, H = 12, d = 768, hpc = 4;
        size_t n = (size_t)L * d;
        float *q = xmalloc(n * sizeof(float)), *k = xmalloc(n * sizeof(float));
        float *v = xmalloc(n * sizeof(float)), *o = xmalloc(n * sizeof(float));
        float *ws = xmalloc(aw_k_attention_workspace(L, hpc) * sizeof(float));
        fill_act(q, L, d, 6);
        fill_act(k, L, d, 7);
        fill_act(v, L, d, 8);
        double best = 1e30;
        for (int r = 0; r < 2; r++) {
            double t0 = aw_now();
            aw_k_attention(q, k, v, o, 1, L, H, H, d, 0.125f, hpc, ws);
            double dt = aw_now() - t0;
            best = dt < best ? dt : best;
        }
        g_sink += o[7];
        printf("%-14s %-16s %9.2f %12.1f\n", "attention", "L=2048 h=12", best * 1e3,
               2.0 * L * L * d / best * 1e-9);
        free(q), free(k), free(v), free(o), free(ws);
    }

    printf("\n# summary: ratio to memcpy (target >= 0.70 for stats_accum and quantize_i8)\n");
    printf("stats_accum   d=768 %.2f  d=3072 %.2f\n", r768[K_STATS], r3072[K_STATS]);
    printf("absmax        d=768 %.2f  d=3072 %.2f\n", r768[K_ABSMAX], r3072[K_ABSMAX]);
    printf("quantize_i8   d=768 %.2f  d=3072 %.2f\n", r768[K_QUANT], r3072[K_QUANT]);
    printf("dequantize_i8 d=768 %.2f  d=3072 %.2f  (input is int8: 1/4 of the bytes it writes)\n",
           r768[K_DEQUANT], r3072[K_DEQUANT]);
    printf("linear / sgemm: %.2f %.2f %.2f\n", lin_ratio[0], lin_ratio[1], lin_ratio[2]);
    printf("int8 product: %s\n", aw_k_gemm_i8_path());
    for (int h = 0; h < 2; h++) {
        printf("gemm_i8 GOP/s / sgemm GFLOP/s, medians, %d thread%s: chosen %.2f %.2f %.2f, "
               "fallback (loop) %.2f %.2f %.2f\n",
               nthr[h], nthr[h] > 1 ? "s" : "", i8_ratio[h][0], i8_ratio[h][1], i8_ratio[h][2],
               fb_ratio[h][0], fb_ratio[h][1], fb_ratio[h][2]);
    }
    return 0;
}
