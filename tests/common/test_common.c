/* test_common.c - status table, dtype traits, half/bfloat16 conversions and
 * the RNG's determinism. Conversions are checked against the compiler's own
 * _Float16 (an independent implementation) on every half value and on random
 * and edge-case floats. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "aw_dtype.h"
#include "aw_rng.h"
#include "aw_status.h"
#include "testutil.h"

static void test_status_table(void **state)
{
    (void)state;
    for (int i = 0; i < AW_STATUS_COUNT; i++) {
        assert_non_null(aw_strerror((aw_status)i));
        assert_true(strncmp(aw_status_name((aw_status)i), "AW_", 3) == 0);
    }
    assert_string_equal(aw_strerror((aw_status)999), "unknown status");
    aw_status st = AW_FAIL(AW_ERR_IO, "file %s: %d", "x.bin", 7);
    assert_int_equal(st, AW_ERR_IO);
    assert_string_equal(aw_err_message(), "file x.bin: 7");
    assert_non_null(strstr(aw_err_where(), "common/test_common.c:"));
}

static void test_dtype_names(void **state)
{
    (void)state;
    for (int i = 0; i < AW_DT_COUNT; i++) {
        aw_dtype d;
        assert_int_equal(aw_dtype_from_name(aw_dtype_name((aw_dtype)i), &d), AW_OK);
        assert_int_equal(d, i);
    }
    aw_dtype d;
    assert_int_equal(aw_dtype_from_name("F8", &d), AW_ERR_ST_DTYPE);
    assert_int_equal(aw_dtype_size(AW_DT_BF16), 2);
    assert_int_equal(aw_dtype_size(AW_DT_I64), 8);
}

static int same_float(float a, float b)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y;
}

static void test_f16_to_f32_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        _Float16 ref;
        uint16_t hb = (uint16_t)h;
        memcpy(&ref, &hb, 2);
        float want = (float)ref;
        float got = aw_f16_to_f32(hb);
        if (!same_float(got, want)) fail_msg("half 0x%04x: got %a want %a", h, got, want);
    }
}

static void check_f32_to_f16(float f)
{
    _Float16 ref = (_Float16)f;
    uint16_t want;
    memcpy(&want, &ref, 2);
    uint16_t got = aw_f32_to_f16(f);
    if (isnan(f)) {
        assert_true((got & 0x7c00u) == 0x7c00u && (got & 0x3ffu) != 0);
        return;
    }
    if (got != want) fail_msg("float %a: got 0x%04x want 0x%04x", f, got, want);
}

static void test_f32_to_f16(void **state)
{
    (void)state;
    /* every half, the midpoints between neighbours (ties), and just either side */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float a = aw_f16_to_f32((uint16_t)h), b = aw_f16_to_f32((uint16_t)(h + 1));
        float mid = (float)(((double)a + (double)b) / 2);
        check_f32_to_f16(a);
        check_f32_to_f16(-a);
        check_f32_to_f16(mid);
        check_f32_to_f16(-mid);
        check_f32_to_f16(nextafterf(mid, 0));
        check_f32_to_f16(nextafterf(mid, INFINITY));
    }
    const float edge[] = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e9f, -1e9f, INFINITY,
                          -INFINITY, NAN, 1e-8f, 2.98e-8f, 2.99e-8f, 6e-8f, FLT_MIN, FLT_TRUE_MIN};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) check_f32_to_f16(edge[i]);
    aw_rng r;
    aw_rng_seed(&r, 7, "f16");
    for (int i = 0; i < 1000000; i++) {
        uint32_t bits = (uint32_t)aw_rng_next(&r);
        float f;
        memcpy(&f, &bits, 4);
        check_f32_to_f16(f);
    }
}

static void test_bf16(void **state)
{
    (void)state;
    /* bf16 is the top half of a float: the round trip of a bf16 value is exact */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = aw_bf16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        assert_int_equal(aw_f32_to_bf16(f), h);
    }
    /* ties to even: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 */
    assert_int_equal(aw_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    assert_int_equal(aw_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    assert_int_equal(aw_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    assert_true(isnan(aw_bf16_to_f32(aw_f32_to_bf16(NAN))));
    /* against double rounding on random values */
    aw_rng r;
    aw_rng_seed(&r, 9, "bf16");
    for (int i = 0; i < 100000; i++) {
        float f = (float)(aw_rng_normal(&r) * 1000.0);
        float g = aw_bf16_to_f32(aw_f32_to_bf16(f));
        assert_true(fabsf(g - f) <= fabsf(f) * 0x1p-8f);
    }
}

static void test_convert_bulk(void **state)
{
    (void)state;
    float src[5] = {1.5f, -2.25f, 65504.0f, 0.0f, 3.0e-5f};
    uint16_t h[5];
    float back[5];
    assert_int_equal(aw_convert_from_f32(AW_DT_F16, src, h, 5), AW_OK);
    assert_int_equal(aw_convert_to_f32(AW_DT_F16, h, back, 5), AW_OK);
    for (int i = 0; i < 4; i++) assert_true(back[i] == src[i]);
    assert_float_equal(back[4], src[4], 3e-8); /* subnormal half: step 2^-24 */
    int8_t q[2] = {1, 2};
    aw_assert_status(aw_convert_to_f32(AW_DT_I8, q, back, 2), AW_ERR_DTYPE, "I8");
}

static void test_rng_deterministic(void **state)
{
    (void)state;
    aw_rng a, b, c;
    aw_rng_seed(&a, 42, "w");
    aw_rng_seed(&b, 42, "w");
    aw_rng_seed(&c, 42, "v");
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = aw_rng_next(&a);
        assert_true(x == aw_rng_next(&b));
        differ |= x != aw_rng_next(&c);
    }
    assert_true(differ);
    /* normal: mean ~0, variance ~1 over many draws */
    double s = 0, s2 = 0;
    for (int i = 0; i < 200000; i++) {
        double v = aw_rng_normal(&a);
        s += v;
        s2 += v * v;
    }
    assert_true(fabs(s / 200000) < 0.01);
    assert_true(fabs(s2 / 200000 - 1.0) < 0.02);
    for (int i = 0; i < 1000; i++) assert_true(aw_rng_below(&a, 7) < 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_table),      cmocka_unit_test(test_dtype_names),
        cmocka_unit_test(test_f16_to_f32_exhaustive), cmocka_unit_test(test_f32_to_f16),
        cmocka_unit_test(test_bf16),              cmocka_unit_test(test_convert_bulk),
        cmocka_unit_test(test_rng_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
