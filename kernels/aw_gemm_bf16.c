/*
 * aw_gemm_bf16.c - the reduced-precision fp linear of CPU calibration
 * (--cpu-precision bf16; aw_k_linear_bf16 in aw_kernels.h).
 *
 * The inputs and the weights are rounded to bfloat16 (nearest, ties to
 * even) and multiplied by oneDNN's matmul with fp32 accumulation: the CPU's
 * counterpart of the GPU's fp16 products. With AVX512-BF16 (vdpbf16ps) it
 * runs at about twice OpenBLAS's sgemm rate; oneDNN refuses the product on
 * CPUs without AVX-512, which aw_k_bf16_check reports before a job starts.
 * Primitives are made once per shape (T, in, out) and kept: a calibration
 * has a handful of shapes (each linear's, the last block of samples').
 */
#include "aw_kernels.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>

/* ---- oneDNN ---------------------------------------------------------------------- */

enum { CACHE = 32 };
typedef struct {
    int T, in, out, threads;
    dnnl_primitive_t prim;
} cached;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t g_eng;
static dnnl_stream_t g_stream;
static cached g_cache[CACHE];
static int g_next; /* the slot replaced next when all are taken */

static aw_status dnnl_fail(dnnl_status_t s, const char *what, int T, int in, int out)
{
    const char *why = s == dnnl_unimplemented ? "unimplemented on this CPU (oneDNN needs AVX-512 for bf16)"
                      : s == dnnl_out_of_memory ? "out of memory"
                                                : "failed";
    return AW_FAIL(s == dnnl_out_of_memory ? AW_ERR_NOMEM : AW_ERR_UNSUPPORTED,
                   "bf16 product %dx%dx%d: oneDNN %s: %s (status %d)", T, in, out, what, why, (int)s);
}

/* Row-major (rows, cols) of dt, or its transpose when trans (the weights
 * (out, in) read as (in, out)). */
static dnnl_status_t desc(dnnl_memory_desc_t *md, int rows, int cols, dnnl_data_type_t dt, int trans)
{
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {trans ? 1 : cols, trans ? rows : 1};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
}

/* The primitive of shape (T, in, out) for the calling thread's OpenMP
 * count (oneDNN splits the work when it makes the primitive), made on
 * first use; g_lock held. */
static aw_status primitive(int T, int in, int out, int threads, dnnl_primitive_t *p)
{
    for (int i = 0; i < CACHE; i++)
        if (g_cache[i].prim && g_cache[i].T == T && g_cache[i].in == in && g_cache[i].out == out &&
            g_cache[i].threads == threads) {
            *p = g_cache[i].prim;
            return AW_OK;
        }
    dnnl_status_t s;
    if (!g_eng) {
        if ((s = dnnl_engine_create(&g_eng, dnnl_cpu, 0)) != dnnl_success) return dnnl_fail(s, "engine", T, in, out);
        if ((s = dnnl_stream_create(&g_stream, g_eng, dnnl_stream_default_flags)) != dnnl_success) {
            dnnl_engine_destroy(g_eng);
            g_eng = NULL;
            return dnnl_fail(s, "stream", T, in, out);
        }
    }
    dnnl_memory_desc_t src, wei, dst;
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    if ((s = desc(&src, T, in, dnnl_bf16, 0)) != dnnl_success || (s = desc(&wei, in, out, dnnl_bf16, 1)) != dnnl_success ||
        (s = desc(&dst, T, out, dnnl_f32, 0)) != dnnl_success || (s = dnnl_matmul_desc_init(&md, &src, &wei, NULL, &dst)) != dnnl_success)
        return dnnl_fail(s, "descriptor", T, in, out);
    if ((s = dnnl_primitive_desc_create(&pd, &md, NULL, g_eng, NULL)) != dnnl_success)
        return dnnl_fail(s, "matmul", T, in, out);
    dnnl_primitive_t prim;
    s = dnnl_primitive_create(&prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success) return dnnl_fail(s, "primitive", T, in, out);
    cached *c = &g_cache[g_next];
    g_next = (g_next + 1) % CACHE;
    if (c->prim) dnnl_primitive_destroy(c->prim);
    *c = (cached){T, in, out, threads, prim};
    *p = prim;
    return AW_OK;
}

static aw_status run(const uint16_t *xb, const uint16_t *wb, float *y, int T, int in, int out)
{
    pthread_mutex_lock(&g_lock);
    dnnl_primitive_t p = NULL;
    int threads = aw_k_product_threads(); /* OpenBLAS's count, as the INT8 product */
    aw_status st = primitive(T, in, out, threads, &p);
    dnnl_memory_desc_t src, wei, dst;
    dnnl_memory_t ms = NULL, mw = NULL, md = NULL;
    dnnl_status_t s = dnnl_success;
    if (st == AW_OK) {
        desc(&src, T, in, dnnl_bf16, 0);
        desc(&wei, in, out, dnnl_bf16, 1);
        desc(&dst, T, out, dnnl_f32, 0);
        if ((s = dnnl_memory_create(&ms, &src, g_eng, (void *)xb)) == dnnl_success &&
            (s = dnnl_memory_create(&mw, &wei, g_eng, (void *)wb)) == dnnl_success &&
            (s = dnnl_memory_create(&md, &dst, g_eng, y)) == dnnl_success) {
            dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}};
            if ((s = dnnl_primitive_execute(p, g_stream, 3, args)) == dnnl_success) s = dnnl_stream_wait(g_stream);
        }
        if (s != dnnl_success) st = dnnl_fail(s, "execute", T, in, out);
    }
    if (ms) dnnl_memory_destroy(ms);
    if (mw) dnnl_memory_destroy(mw);
    if (md) dnnl_memory_destroy(md);
    pthread_mutex_unlock(&g_lock);
    return st;
}

aw_status aw_k_linear_bf16(const float *x, const void *w, aw_dtype wdt, const float *b, float *y, int T, int in,
                           int out, uint16_t *xb, uint16_t *wb)
{
    if (T <= 0 || out <= 0) return AW_OK;
    if (in <= 0) {
        aw_k_linear(x, NULL, b, y, T, 0, out); /* the bias rows, or zeros */
        return AW_OK;
    }
    size_t nw = (size_t)in * out;
    const uint16_t *wbf = w;
    if (wdt == AW_DT_F32) aw_k_f32_to_bf16(w, wb, nw), wbf = wb;
    else if (wdt == AW_DT_F16) aw_k_f16_to_bf16(w, wb, nw), wbf = wb;
    else AW_RETURN_IF(wdt != AW_DT_BF16, AW_ERR_DTYPE, "bf16 product: weights of dtype %s", aw_dtype_name(wdt));
    aw_k_f32_to_bf16(x, xb, (size_t)T * in);
    AW_TRY(run(xb, wbf, y, T, in, out));
    if (b)
        for (int t = 0; t < T; t++) {
            float *yr = y + (size_t)t * out;
            for (int j = 0; j < out; j++) yr[j] += b[j];
        }
    return AW_OK;
}

aw_status aw_k_bf16_check(void)
{
    /* a small product with the kernels a calibration uses: refused or
     * wrong here, refused before the job starts */
    enum { T = 4, IN = 32, OUT = 16 };
    float x[T * IN], w[OUT * IN], y[T * OUT];
    uint16_t xb[T * IN], wb[OUT * IN];
    for (int i = 0; i < T * IN; i++) x[i] = (float)(i % 7) - 3.0f;
    for (int i = 0; i < OUT * IN; i++) w[i] = (float)(i % 5) - 2.0f;
    AW_TRY(aw_k_linear_bf16(x, w, AW_DT_F32, NULL, y, T, IN, OUT, xb, wb));
    for (int t = 0; t < T; t++)
        for (int o = 0; o < OUT; o++) {
            float r = 0.0f; /* small integers: exact in bf16 and in any order */
            for (int j = 0; j < IN; j++) r += x[t * IN + j] * w[o * IN + j];
            AW_RETURN_IF(y[t * OUT + o] != r, AW_ERR_UNSUPPORTED,
                         "bf16 product self-test: element (%d, %d) is %g, expected %g", t, o, (double)y[t * OUT + o],
                         (double)r);
        }
    return AW_OK;
}
