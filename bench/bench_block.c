/*
 * bench_block.c - the OPT decoder block forward (production code:
 * aw_block_forward, fp weights in F16 as the pipeline holds them) against a
 * bare OpenBLAS sgemm of the same six linear shapes, measured in one run.
 * GFLOP/s counts the six linears only, so the ratio is the share of the
 * sgemm rate the whole block keeps (LayerNorms, attention, ReLU, weight
 * widening and the residual adds are the overhead). Best of 5 repetitions
 * each; the ratio of process CPU times is printed too: with one thread
 * (OPENBLAS_NUM_THREADS=1) it is the same ratio, but far less disturbed by
 * other work on a shared machine.
 * usage: bench_block [d ffn heads L n_seq]   (default: OPT-125m, 64 x 128)
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "aw_clock.h"
#include "aw_forward.h"
#include "aw_kernels.h"
#include "aw_model.h"
#include "aw_rng.h"

/* Process CPU time in seconds (all threads). */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fill(float *x, size_t n, aw_rng *r, float scale)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)aw_rng_normal(r) * scale;
}

/* One block forward of h0's copy in h (n values): wall and CPU seconds. */
static void timed_forward(const aw_model_config *c, const aw_block *b, float *h, const float *h0, size_t n,
                          int n_seq, int L, aw_fwd_ws *ws, double *wall, double *cpu)
{
    for (size_t i = 0; i < n; i++) h[i] = h0[i];
    double c0 = cpu_now(), t0 = aw_now();
    aw_block_forward(c, b, NULL, h, n_seq, L, ws, NULL, NULL);
    *wall = aw_now() - t0;
    *cpu = cpu_now() - c0;
}

int main(int argc, char **argv)
{
    aw_k_threads_sleep_when_idle(argv); /* the thread pools as aweq-dist runs them */
    aw_model_config c = *aw_shape_find("opt-125m");
    int L = 128, n_seq = 64;
    if (argc == 6) {
        c.hidden_size = atoi(argv[1]);
        c.ffn_dim = atoi(argv[2]);
        c.num_attention_heads = atoi(argv[3]);
        L = atoi(argv[4]);
        n_seq = atoi(argv[5]);
    }
    int d = c.hidden_size, f = c.ffn_dim, T = n_seq * L;
    aw_block fp32, b;
    aw_fwd_ws ws;
    if (aw_block_create(&c, AW_DT_F32, &fp32) || aw_block_create(&c, AW_DT_F16, &b) ||
        aw_fwd_ws_create(&c, n_seq, L, &ws)) {
        fprintf(stderr, "bench_block: %s\n", aw_err_message());
        return 1;
    }
    aw_rng r;
    aw_rng_seed(&r, 1, "bench-block");
    for (int l = 0; l < fp32.n_lin; l++) {
        fill(fp32.lin[l].w, (size_t)fp32.lin[l].in * fp32.lin[l].out, &r, 0.03f);
        fill(fp32.lin[l].b, (size_t)fp32.lin[l].out, &r, 0.02f);
    }
    for (int n = 0; n < AW_NORM_COUNT; n++)
        for (int j = 0; j < d; j++) fp32.norm_g[n][j] = 1, fp32.norm_b[n][j] = 0;
    aw_block_convert(&b, &fp32);
    float *h = malloc((size_t)T * d * sizeof(float)), *h0 = malloc((size_t)T * d * sizeof(float));
    float *y = malloc((size_t)T * f * sizeof(float)), *x = malloc((size_t)T * f * sizeof(float));
    fill(h0, (size_t)T * d, &r, 1.0f);
    fill(x, (size_t)T * f, &r, 1.0f);
    double flops = 0; /* the linears' multiply-adds: 2 T (4 d^2 + 2 d ffn) for OPT */
    for (int l = 0; l < fp32.n_lin; l++) flops += 2.0 * T * fp32.lin[l].in * fp32.lin[l].out;
    double best_blk = 1e30, best_gemm = 1e30, cpu_blk = 1e30, cpu_gemm = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double blk, cblk;
        timed_forward(&c, &b, h, h0, (size_t)T * d, n_seq, L, &ws, &blk, &cblk);
        double t1 = aw_now(), c1 = cpu_now();
        for (int l = 0; l < fp32.n_lin; l++) {
            const aw_linear *ln = &fp32.lin[l];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, ln->out, ln->in, 1.0f, x, ln->in,
                        ln->w, ln->in, 0.0f, y, ln->out);
        }
        double t2 = aw_now(), c2 = cpu_now();
        if (blk < best_blk) best_blk = blk;
        if (t2 - t1 < best_gemm) best_gemm = t2 - t1;
        if (cblk < cpu_blk) cpu_blk = cblk;
        if (c2 - c1 < cpu_gemm) cpu_gemm = c2 - c1;
    }
    printf("block forward d=%d ffn=%d heads=%d, %d x %d tokens: %.1f ms, %.1f GFLOP/s; bare sgemm of the "
           "%d linears: %.1f ms, %.1f GFLOP/s; ratio %.2f (CPU time: %.1f / %.1f ms, ratio %.2f)\n",
           d, f, c.num_attention_heads, n_seq, L, best_blk * 1e3, flops / best_blk / 1e9, fp32.n_lin, best_gemm * 1e3,
           flops / best_gemm / 1e9, best_gemm / best_blk, cpu_blk * 1e3, cpu_gemm * 1e3, cpu_gemm / cpu_blk);
    /* the same forward with bf16 products (--cpu-precision bf16), where
     * oneDNN has them: its time against the same bare sgemm */
    if (aw_fwd_ws_need_bf16(&ws, &c) == AW_OK) {
        double best_bf = 1e30;
        ws.lin_bf16 = 1;
        for (int rep = 0; rep < 5; rep++) {
            double blk, cblk;
            timed_forward(&c, &b, h, h0, (size_t)T * d, n_seq, L, &ws, &blk, &cblk);
            if (blk < best_bf) best_bf = blk;
        }
        ws.lin_bf16 = 0;
        printf("block forward with bf16 products: %.1f ms, %.1f GFLOP/s; bare sgemm / it %.2f\n", best_bf * 1e3,
               flops / best_bf / 1e9, best_gemm / best_bf);
    } else {
        printf("block forward with bf16 products: not run (%s)\n", aw_err_message());
    }
    free(h);
    free(h0);
    free(x);
    free(y);
    aw_fwd_ws_destroy(&ws);
    aw_block_destroy(&b);
    aw_block_destroy(&fp32);
    return 0;
}
