/*
 * test_gemm_i8.c - the INT8 product's choice of path (kernels/aw_gemm_i8.c)
 * and its exactness on every path, against the int64 reference
 * (kernels_ref.c): random int8 data with whole rows of -128 and of 127 and
 * scattered extremes, shapes that are multiples of nothing, in up to a few
 * thousand, and one shape across the loop's blocks and the fallback's
 * slices of rows.
 *
 * CTest runs it three times (tests.cmake): as is (on a CPU with AVX-512
 * VNNI oneDNN must be chosen), with ONEDNN_MAX_CPU_ISA=AVX2 (oneDNN's
 * saturating kernels: the self-test must reject them, and the product must
 * stay exact), and with OMP_NUM_THREADS=1 (the user's thread count wins).
 */
#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aw_kernels.h"
#include "aw_rng.h"
#include "kernels_ref.h"
#include "testutil.h"

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    assert_non_null(p);
    return p;
}

/* m (rows, cols): uniform over all 256 values; rows 3, 10, 17... all -128,
 * rows 5, 16, 27... all 127; one value in 13 elsewhere set to -128 or 127. */
static void fill_i8(int8_t *m, int rows, int cols, uint64_t seed, const char *key)
{
    aw_rng r;
    aw_rng_seed(&r, seed, key);
    for (int i = 0; i < rows; i++) {
        for (int k = 0; k < cols; k++) {
            int v = (int)aw_rng_below(&r, 256) - 128;
            if (aw_rng_below(&r, 13) == 0) v = aw_rng_below(&r, 2) ? 127 : -128;
            if (i % 7 == 3) v = -128;
            if (i % 11 == 5) v = 127;
            m[(size_t)i * cols + k] = (int8_t)v;
        }
    }
}

enum { P_AUTO, P_FALLBACK, P_LOOP, P_COUNT };
static const char *const p_names[P_COUNT] = {"aw_k_gemm_i8", "aw_k_gemm_i8_fallback",
                                             "aw_k_gemm_i8_loop"};

static void run_path(int p, const int8_t *xq, const int8_t *wq, int32_t *acc, int T, int in,
                     int out)
{
    for (size_t i = 0; i < (size_t)T * out; i++) acc[i] = -777; /* must be overwritten */
    if (p == P_AUTO) aw_k_gemm_i8(xq, wq, acc, T, in, out);
    else if (p == P_FALLBACK) aw_k_gemm_i8_fallback(xq, wq, acc, T, in, out);
    else aw_k_gemm_i8_loop(xq, wq, acc, T, in, out);
}

static void check_rows(const char *what, const int32_t *acc, const int64_t *ref, int t0, int rows,
                       int T, int in, int out)
{
    for (size_t i = 0; i < (size_t)rows * out; i++) {
        if ((int64_t)acc[(size_t)t0 * out + i] != ref[i])
            fail_msg("%s %dx%dx%d at (%d, %zu): got %d, want %lld (path: %s)", what, T, in, out,
                     t0 + (int)(i / (size_t)out), i % (size_t)out, acc[(size_t)t0 * out + i],
                     (long long)ref[i], aw_k_gemm_i8_path());
    }
}

/* ---- the choice ------------------------------------------------------------ */

typedef struct {
    pthread_barrier_t *go;
    const char *path;
    int ok;
} first_use_arg;

static void *first_use(void *p)
{
    first_use_arg *a = p;
    enum { T = 7, IN = 333, OUT = 9 };
    int8_t xq[T * IN], wq[OUT * IN];
    int32_t acc[T * OUT];
    int64_t ref[T * OUT];
    fill_i8(xq, T, IN, 1, "first-x");
    fill_i8(wq, OUT, IN, 1, "first-w");
    aw_gemm_i8_ref(xq, wq, ref, T, IN, OUT);
    pthread_barrier_wait(a->go);
    aw_k_gemm_i8(xq, wq, acc, T, IN, OUT); /* the first use, in 4 threads at once */
    a->path = aw_k_gemm_i8_path();
    a->ok = 1;
    for (int i = 0; i < T * OUT; i++) a->ok &= (int64_t)acc[i] == ref[i];
    return NULL;
}

/* Runs first: four threads race to the one-time self-test. */
static void test_first_use_threads(void **state)
{
    (void)state;
    enum { N = 4 };
    pthread_barrier_t go;
    assert_int_equal(pthread_barrier_init(&go, NULL, N), 0);
    pthread_t th[N];
    first_use_arg a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (first_use_arg){&go, NULL, 0};
        assert_int_equal(pthread_create(&th[i], NULL, first_use, &a[i]), 0);
    }
    for (int i = 0; i < N; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < N; i++) {
        assert_true(a[i].ok);
        assert_ptr_equal(a[i].path, aw_k_gemm_i8_path());
    }
}

static void test_path_choice(void **state)
{
    (void)state;
    const char *path = aw_k_gemm_i8_path();
    int onednn = aw_k_gemm_i8_uses_onednn();
    fprintf(stderr, "int8 product: %s\n", path);
    assert_true(path && *path);
    assert_int_equal(onednn, strncmp(path, "oneDNN", 6) == 0);
    assert_int_equal(onednn, strstr(path, "self-test passed") != NULL);
    const char *isa = getenv("ONEDNN_MAX_CPU_ISA");
    __builtin_cpu_init();
    if (isa && strcasecmp(isa, "AVX2") == 0 && __builtin_cpu_supports("avx2")) {
        /* oneDNN's AVX2 int8 kernels use vpmaddubsw: the self-test must see
         * the saturated sums and say so */
        assert_false(onednn);
        assert_non_null(strstr(path, "failed its self-test"));
        assert_non_null(strstr(path, "instead of"));
    } else if (!(isa && *isa) && __builtin_cpu_supports("avx512vnni")) {
        /* and it must not reject the exact VNNI kernels (a silent 4x loss) */
        assert_true(onednn);
    }
}

/* The product's OpenMP threads (oneDNN's or the fallback's) follow
 * OMP_NUM_THREADS when set, else OpenBLAS's count (the calling thread's
 * setting, made at each call). */
static void test_threads(void **state)
{
    (void)state;
    enum { T = 5, IN = 64, OUT = 6 };
    int8_t xq[T * IN], wq[OUT * IN];
    int32_t acc[T * OUT];
    fill_i8(xq, T, IN, 2, "thr-x");
    fill_i8(wq, OUT, IN, 2, "thr-w");
    const char *env = getenv("OMP_NUM_THREADS");
    int before = omp_get_max_threads(), blas = openblas_get_num_threads();
    for (int n = 1; n <= 3; n++) {
        openblas_set_num_threads(n);
        aw_k_gemm_i8(xq, wq, acc, T, IN, OUT);
        if (env && *env) assert_int_equal(omp_get_max_threads(), before);
        else assert_int_equal(omp_get_max_threads(), n);
    }
    openblas_set_num_threads(blas);
}

/* ---- exactness ------------------------------------------------------------- */

static void test_odd_shapes(void **state)
{
    (void)state;
    /* T, in, out: matrix-vector both ways, tails of every block size, in
     * across the loop's 256-blocks and oneDNN's K blocks, up to a few
     * thousand */
    static const int shapes[][3] = {{1, 1, 1},     {1, 3001, 37},  {53, 2999, 1},
                                    {3, 5, 7},     {13, 127, 11},  {67, 1030, 45},
                                    {129, 2053, 97}, {31, 4099, 23}, {250, 769, 131}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int T = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        int8_t *xq = xcalloc((size_t)T * in, 1), *wq = xcalloc((size_t)out * in, 1);
        int32_t *acc = xcalloc((size_t)T * out, sizeof(int32_t));
        int64_t *ref = xcalloc((size_t)T * out, sizeof(int64_t));
        fill_i8(xq, T, in, 10 + s, "odd-x");
        fill_i8(wq, out, in, 10 + s, "odd-w");
        aw_gemm_i8_ref(xq, wq, ref, T, in, out);
        for (int p = 0; p < P_COUNT; p++) {
            run_path(p, xq, wq, acc, T, in, out);
            check_rows(p_names[p], acc, ref, 0, T, T, in, out);
        }
        free(xq), free(wq), free(acc), free(ref);
    }
}

/* Across the loop's blocks (256 of in, 64 of out, 4 rows) and, with 3
 * threads, the fallback's slices of rows (172, 172, 171): the three paths in
 * full against each other, and rows at the edges against the reference (all
 * rows would take long in the sanitizer build). */
static void test_blocks(void **state)
{
    (void)state;
    enum { T = 515, IN = 773, OUT = 197 };
    int8_t *xq = xcalloc((size_t)T * IN, 1), *wq = xcalloc((size_t)OUT * IN, 1);
    int32_t *acc[P_COUNT];
    int64_t *ref = xcalloc(OUT, sizeof(int64_t));
    fill_i8(xq, T, IN, 30, "blk-x");
    fill_i8(wq, OUT, IN, 30, "blk-w");
    int blas = openblas_get_num_threads();
    openblas_set_num_threads(3);
    for (int p = 0; p < P_COUNT; p++) {
        acc[p] = xcalloc((size_t)T * OUT, sizeof(int32_t));
        run_path(p, xq, wq, acc[p], T, IN, OUT);
    }
    openblas_set_num_threads(blas);
    static const int rows[] = {0, 3, 5, 170, 171, 172, 343, 344, 345, 511, 512, 513, 514};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        aw_gemm_i8_ref(xq + (size_t)rows[r] * IN, wq, ref, 1, IN, OUT);
        for (int p = 0; p < P_COUNT; p++)
            check_rows(p_names[p], acc[p], ref, rows[r], 1, T, IN, OUT);
    }
    for (int p = 1; p < P_COUNT; p++)
        if (memcmp(acc[0], acc[p], (size_t)T * OUT * sizeof(int32_t)) != 0)
            fail_msg("aw_k_gemm_i8 (%s) and %s differ", aw_k_gemm_i8_path(), p_names[p]);
    for (int p = 0; p < P_COUNT; p++) free(acc[p]);
    free(xq), free(wq), free(ref);
}

static void test_empty(void **state)
{
    (void)state;
    int8_t xq[6] = {1, 2, 3, 4, 5, 6}, wq[6] = {1, 1, 1, 1, 1, 1};
    int32_t acc[6] = {9, 9, 9, 9, 9, 9};
    /* in = 0: a product of nothing is 0 on every path */
    for (int p = 0; p < P_COUNT; p++) {
        run_path(p, xq, wq, acc, 2, 0, 3);
        for (int i = 0; i < 6; i++) assert_int_equal(acc[i], 0);
    }
    /* T = 0 or out = 0: nothing written */
    acc[0] = 9;
    aw_k_gemm_i8(xq, wq, acc, 0, 3, 2);
    aw_k_gemm_i8(xq, wq, acc, 2, 3, 0);
    aw_k_gemm_i8_fallback(xq, wq, acc, 0, 3, 2);
    aw_k_gemm_i8_loop(xq, wq, acc, 2, 3, 0);
    assert_int_equal(acc[0], 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_use_threads), /* first: the one-time init */
        cmocka_unit_test(test_path_choice),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_odd_shapes),
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
