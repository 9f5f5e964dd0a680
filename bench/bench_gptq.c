/*
 * bench_gptq.c - aw_k_gptq (the production kernel) on the linears of one
 * transformer block whose weights and Hessians a driver wrote to a folder
 * (bench/gptq_vs_pytorch.py writes them, and times PyTorch on the same
 * files). Not a test.
 *
 *   bench_gptq DIR [bits group sym act_order]     (defaults 4 128 1 0)
 *
 * DIR/manifest.txt: one line per linear, "name out in hname", in sweep
 * order; DIR/name.f32 the weights (out, in) row-major float32, DIR/hname.f64
 * the Hessian X^T X (in, in) float64 (layers with the same input share it).
 * Little-endian raw arrays, no header.
 *
 * First a "# OpenBLAS <config>, N threads" line; then per linear, one line:
 *   name out in seconds rel_err
 * seconds: wall time of aw_k_gptq alone (CLOCK_MONOTONIC; the weights are
 * copied in before), rel_err = tr(dW H dW^T) / tr(W H W^T). The thread
 * count is OpenBLAS's (OPENBLAS_NUM_THREADS). Exit 1 on a read or
 * allocation failure, 2 when aw_k_gptq fails.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_clock.h"
#include "aw_lowbit.h"

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "bench_gptq: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    memset(p, 0, n); /* fault the pages in before timing */
    return p;
}

static void read_raw(const char *dir, const char *name, const char *ext, void *dst, size_t bytes)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    FILE *f = fopen(path, "rb");
    if (!f || fread(dst, 1, bytes, f) != bytes) {
        fprintf(stderr, "bench_gptq: cannot read %zu bytes from %s\n", bytes, path);
        exit(1);
    }
    fclose(f);
}

/* tr(D H D^T) for D (out, in) float, H (in, in) double: sum of (D H) .* D. */
static double quad_form(const float *d, const double *H, int out, int in)
{
    double *dd = xmalloc((size_t)out * in * sizeof(double)), *dh = xmalloc((size_t)out * in * sizeof(double));
    for (size_t i = 0; i < (size_t)out * in; i++) dd[i] = d[i];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, in, in, 1.0, dd, in, H, in, 0.0, dh, in);
    double s = 0.0;
    for (size_t i = 0; i < (size_t)out * in; i++) s += dh[i] * dd[i];
    free(dd), free(dh);
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_gptq DIR [bits group sym act_order]\n");
        return 1;
    }
    const char *dir = argv[1];
    aw_gptq_opts o = {.bits = argc > 2 ? atoi(argv[2]) : 4,
                      .group = argc > 3 ? atoi(argv[3]) : 128,
                      .sym = argc > 4 ? atoi(argv[4]) : 1,
                      .act_order = argc > 5 ? atoi(argv[5]) : 0,
                      .block = 128,
                      .damp_frac = 0.01,
                      .sdt = AW_DT_F16};
    char path[1024];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *mf = fopen(path, "r");
    if (!mf) {
        fprintf(stderr, "bench_gptq: cannot open %s\n", path);
        return 1;
    }
    printf("# OpenBLAS %s, %d threads\n", openblas_get_config(), openblas_get_num_threads());
    char name[128], hname[128];
    int out, in;
    while (fscanf(mf, "%127s %d %d %127s", name, &out, &in, hname) == 4) {
        size_t nw = (size_t)out * in;
        int ng = o.group > 0 ? (in + o.group - 1) / o.group : 1;
        float *w0 = xmalloc(nw * 4), *w = xmalloc(nw * 4), *step = xmalloc((size_t)out * ng * 4);
        uint8_t *zero = xmalloc((size_t)out * ng), *q = xmalloc(nw);
        double *H = xmalloc((size_t)in * in * sizeof(double));
        read_raw(dir, name, "f32", w0, nw * 4);
        read_raw(dir, hname, "f64", H, (size_t)in * in * sizeof(double));
        memcpy(w, w0, nw * 4);
        double t0 = aw_now();
        aw_status st = aw_k_gptq(w, H, out, in, &o, step, zero, q);
        double dt = aw_now() - t0;
        if (st != AW_OK) {
            fprintf(stderr, "bench_gptq: %s: %s: %s\n", name, aw_status_name(st), aw_err_message());
            return 2;
        }
        for (size_t i = 0; i < nw; i++) w[i] -= w0[i];
        double rel = quad_form(w, H, out, in) / quad_form(w0, H, out, in);
        printf("%s %d %d %.6f %.9g\n", name, out, in, dt, rel);
        fflush(stdout);
        free(w0), free(w), free(step), free(zero), free(q), free(H);
    }
    fclose(mf);
    return 0;
}
