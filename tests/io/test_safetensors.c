/* test_safetensors.c - the safetensors reader and writer: the reference
 * library's files read and rewritten byte for byte, round trips, F32
 * conversion, writer argument checks, and one test per must-reject file of
 * tests/fixtures/st-reject (status and message). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_fs.h"
#include "aw_safetensors.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers -- */

static aw_st_file *open_fixture(const char *rel)
{
    char *path = aw_test_source_path(rel);
    aw_st_file *f = NULL;
    aw_status st = aw_st_open(path, &f);
    if (st != AW_OK) fail_msg("%s: %s", aw_status_name(st), aw_err_message());
    free(path);
    return f;
}

static const aw_st_tensor *must_find(const aw_st_file *f, const char *name)
{
    const aw_st_tensor *t = aw_st_find(f, name);
    if (!t) fail_msg("tensor '%s' not found in %s", name, aw_st_label(f));
    return t;
}

static void assert_shape(const aw_st_tensor *t, aw_dtype dt, int ndim, const int64_t *shape)
{
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->ndim, ndim);
    for (int i = 0; i < ndim; i++) assert_int_equal(t->shape[i], shape[i]);
}

/* ------------------------------------- the reference library's fixture -- */

/* The values make_reference_safetensors.py writes, recomputed. */
typedef struct {
    float f32[12];
    uint16_t f16[5];
    uint16_t bf16[4];
    int8_t i8[6];
    int32_t i32[4];
    int64_t i64[3];
    uint8_t u8[3];
    double f64[3];
    float scalar;
} ref_values;

static void ref_values_init(ref_values *v)
{
    for (int i = 0; i < 12; i++) v->f32[i] = (float)i * 0.5f - 2.0f;
    for (int i = 0; i < 5; i++) v->f16[i] = aw_f32_to_f16((float)i * 0.25f - 0.5f);
    for (int i = 0; i < 4; i++) v->bf16[i] = aw_f32_to_bf16((float)i - 1.5f);
    for (int i = 0; i < 6; i++) v->i8[i] = (int8_t)(i - 3);
    for (int i = 0; i < 4; i++) v->i32[i] = i * 1000 - 1500;
    for (int i = 0; i < 3; i++) v->i64[i] = (int64_t)(i - 1) * ((int64_t)1 << 40) + 7;
    v->u8[0] = 0;
    v->u8[1] = 128;
    v->u8[2] = 255;
    for (int i = 0; i < 3; i++) v->f64[i] = (double)i * 0.1;
    v->scalar = 3.25f;
}

#define REF_N 10

/* The entries our writer needs to reproduce reference.safetensors; given in
 * an order unlike the file's, the writer sorts. */
static void ref_entries(const ref_values *v, aw_st_entry e[REF_N])
{
    static const float none[1] = {0};
    const aw_st_entry all[REF_N] = {
        {"model.scalar", AW_DT_F32, 0, {0}, &v->scalar},
        {"model.u8.vec", AW_DT_U8, 1, {3}, v->u8},
        {"model.f32.matrix", AW_DT_F32, 2, {3, 4}, v->f32},
        {"model.f16.vec", AW_DT_F16, 1, {5}, v->f16},
        {"model.bf16.vec", AW_DT_BF16, 1, {4}, v->bf16},
        {"model.i8.vec", AW_DT_I8, 1, {6}, v->i8},
        {"model.i32.matrix", AW_DT_I32, 2, {2, 2}, v->i32},
        {"model.i64.vec", AW_DT_I64, 1, {3}, v->i64},
        {"model.f64.vec", AW_DT_F64, 1, {3}, v->f64},
        {"model.empty", AW_DT_F32, 2, {0, 3}, none},
    };
    memcpy(e, all, sizeof all);
}

static void check_raw(const aw_st_file *f, const char *name, const void *want, size_t n)
{
    const aw_st_tensor *t = must_find(f, name);
    assert_int_equal(t->end - t->begin, n);
    uint8_t buf[128];
    assert_true(n <= sizeof buf);
    aw_assert_status(aw_st_read(f, t, buf, sizeof buf), AW_OK, NULL);
    assert_memory_equal(buf, want, n);
}

static void test_reference_read(void **state)
{
    (void)state;
    ref_values v;
    ref_values_init(&v);
    aw_st_file *f = open_fixture("tests/fixtures/reference.safetensors");

    assert_int_equal(aw_st_count(f), REF_N);
    assert_int_equal(aw_st_metadata_count(f), 1);
    assert_string_equal(aw_st_metadata(f, "format"), "pt");
    assert_null(aw_st_metadata(f, "missing"));
    const char *k, *val;
    aw_st_metadata_at(f, 0, &k, &val);
    assert_string_equal(k, "format");
    assert_string_equal(val, "pt");
    /* 8-byte prefix + the 720-byte header the library wrote */
    assert_int_equal(aw_st_data_offset(f), 728);

    /* aw_st_at walks names in strcmp order */
    for (size_t i = 1; i < aw_st_count(f); i++)
        assert_true(strcmp(aw_st_at(f, i - 1)->name, aw_st_at(f, i)->name) < 0);
    assert_null(aw_st_at(f, REF_N));
    assert_null(aw_st_find(f, "model.nope"));

    assert_shape(must_find(f, "model.f32.matrix"), AW_DT_F32, 2, (int64_t[]){3, 4});
    assert_shape(must_find(f, "model.f16.vec"), AW_DT_F16, 1, (int64_t[]){5});
    assert_shape(must_find(f, "model.bf16.vec"), AW_DT_BF16, 1, (int64_t[]){4});
    assert_shape(must_find(f, "model.i8.vec"), AW_DT_I8, 1, (int64_t[]){6});
    assert_shape(must_find(f, "model.i32.matrix"), AW_DT_I32, 2, (int64_t[]){2, 2});
    assert_shape(must_find(f, "model.i64.vec"), AW_DT_I64, 1, (int64_t[]){3});
    assert_shape(must_find(f, "model.u8.vec"), AW_DT_U8, 1, (int64_t[]){3});
    assert_shape(must_find(f, "model.f64.vec"), AW_DT_F64, 1, (int64_t[]){3});
    assert_shape(must_find(f, "model.empty"), AW_DT_F32, 2, (int64_t[]){0, 3});
    assert_shape(must_find(f, "model.scalar"), AW_DT_F32, 0, NULL);
    assert_int_equal(aw_st_numel(must_find(f, "model.scalar")), 1);
    assert_int_equal(aw_st_numel(must_find(f, "model.empty")), 0);
    assert_int_equal(aw_st_numel(must_find(f, "model.f32.matrix")), 12);

    check_raw(f, "model.f32.matrix", v.f32, sizeof v.f32);
    check_raw(f, "model.f16.vec", v.f16, sizeof v.f16);
    check_raw(f, "model.bf16.vec", v.bf16, sizeof v.bf16);
    check_raw(f, "model.i8.vec", v.i8, sizeof v.i8);
    check_raw(f, "model.i32.matrix", v.i32, sizeof v.i32);
    check_raw(f, "model.i64.vec", v.i64, sizeof v.i64);
    check_raw(f, "model.u8.vec", v.u8, sizeof v.u8);
    check_raw(f, "model.f64.vec", v.f64, sizeof v.f64);
    check_raw(f, "model.scalar", &v.scalar, sizeof v.scalar);
    aw_assert_status(aw_st_read(f, must_find(f, "model.empty"), NULL, 0), AW_OK, NULL);

    /* every float dtype through aw_st_read_f32: exact for these values */
    float out[12];
    aw_assert_status(aw_st_read_f32(f, must_find(f, "model.f32.matrix"), out, 12), AW_OK, NULL);
    assert_memory_equal(out, v.f32, sizeof v.f32);
    aw_assert_status(aw_st_read_f32(f, must_find(f, "model.f16.vec"), out, 5), AW_OK, NULL);
    for (int i = 0; i < 5; i++) assert_true(out[i] == (float)i * 0.25f - 0.5f);
    aw_assert_status(aw_st_read_f32(f, must_find(f, "model.bf16.vec"), out, 4), AW_OK, NULL);
    for (int i = 0; i < 4; i++) assert_true(out[i] == (float)i - 1.5f);
    aw_assert_status(aw_st_read_f32(f, must_find(f, "model.f64.vec"), out, 3), AW_OK, NULL);
    for (int i = 0; i < 3; i++) assert_true(out[i] == (float)v.f64[i]);
    aw_assert_status(aw_st_read_f32(f, must_find(f, "model.scalar"), out, 1), AW_OK, NULL);
    assert_true(out[0] == 3.25f);
    aw_assert_status(aw_st_read_f32(f, must_find(f, "model.empty"), out, 0), AW_OK, NULL);
    aw_st_close(f);
}

/* Our writer, given the same tensors and metadata, writes the same bytes as
 * the reference library: in memory, as a size, and as a file. */
static void test_reference_write_identical(void **state)
{
    (void)state;
    ref_values v;
    ref_values_init(&v);
    aw_st_entry e[REF_N];
    ref_entries(&v, e);
    const aw_st_meta meta[] = {{"format", "pt"}};

    char *path = aw_test_source_path("tests/fixtures/reference.safetensors");
    size_t want_len;
    uint8_t *want = aw_test_read_bytes(path, &want_len);

    uint8_t *got;
    size_t got_len;
    aw_assert_status(aw_st_serialize(e, REF_N, meta, 1, &got, &got_len), AW_OK, NULL);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    uint64_t size;
    aw_assert_status(aw_st_serialized_size(e, REF_N, meta, 1, &size), AW_OK, NULL);
    assert_int_equal(size, want_len);

    char *dir = aw_test_tmpdir();
    char *out = aw_path_join(dir, "ref.safetensors");
    aw_assert_status(aw_st_write_file(out, e, REF_N, meta, 1), AW_OK, NULL);
    size_t file_len;
    uint8_t *file = aw_test_read_bytes(out, &file_len);
    assert_int_equal(file_len, want_len);
    assert_memory_equal(file, want, want_len);

    free(file);
    free(out);
    aw_test_rmtree(dir);
    free(dir);
    free(got);
    free(want);
    free(path);
}

/* Names that need JSON escaping come back unescaped, and the writer escapes
 * them exactly as serde_json does. */
static void test_escapes_identical(void **state)
{
    (void)state;
    static const char *names[] = {"quote\"d", "back\\slash", "new\nline", "tab\tx",
                                  "ctl\x01\x1f", "del\x7f", "caf\xc3\xa9", "slash/ok"};
    enum { N = sizeof names / sizeof names[0] };
    uint8_t vals[N];
    aw_st_entry e[N];
    aw_st_file *f = open_fixture("tests/fixtures/escapes.safetensors");
    assert_int_equal(aw_st_count(f), N);
    for (int i = 0; i < N; i++) {
        vals[i] = (uint8_t)i;
        e[i] = (aw_st_entry){names[i], AW_DT_U8, 1, {1}, &vals[i]};
        check_raw(f, names[i], &vals[i], 1);
    }
    aw_st_close(f);

    char *path = aw_test_source_path("tests/fixtures/escapes.safetensors");
    size_t want_len, got_len;
    uint8_t *want = aw_test_read_bytes(path, &want_len), *got;
    aw_assert_status(aw_st_serialize(e, N, NULL, 0, &got, &got_len), AW_OK, NULL);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    free(got);
    free(want);
    free(path);
}

static void test_no_tensors_identical(void **state)
{
    (void)state;
    aw_st_file *f = open_fixture("tests/fixtures/no_tensors.safetensors");
    assert_int_equal(aw_st_count(f), 0);
    assert_int_equal(aw_st_metadata_count(f), 0);
    assert_null(aw_st_find(f, "x"));
    aw_st_close(f);
    char *path = aw_test_source_path("tests/fixtures/no_tensors.safetensors");
    size_t want_len, got_len;
    uint8_t *want = aw_test_read_bytes(path, &want_len), *got;
    aw_assert_status(aw_st_serialize(NULL, 0, NULL, 0, &got, &got_len), AW_OK, NULL);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    free(got);
    free(want);
    free(path);
}

/* ------------------------------------------------------------ round trip -- */

/* write -> read gives the same tensors and bytes; rewriting what was read
 * gives the same file again, through the file and the memory readers. */
static void test_round_trip(void **state)
{
    (void)state;
    enum { N = 7 };
    float w[6];
    uint16_t h[6], b[5];
    int8_t q[7];
    int64_t ids[2] = {-1, INT64_MAX};
    uint8_t flag[1] = {1};
    uint32_t u[3] = {0, 1, 0xffffffffu};
    for (int i = 0; i < 6; i++) w[i] = (float)i / 3.0f;
    for (int i = 0; i < 6; i++) h[i] = aw_f32_to_f16((float)i - 2.5f);
    for (int i = 0; i < 5; i++) b[i] = aw_f32_to_bf16((float)i * 1.75f - 3.0f);
    for (int i = 0; i < 7; i++) q[i] = (int8_t)(i * 37 - 128);
    const aw_st_entry e[N] = {
        {"decoder.layers.0.fc1.weight", AW_DT_F32, 2, {2, 3}, w},
        {"decoder.layers.0.fc1.qweight", AW_DT_I8, 1, {7}, q},
        {"decoder.layers.0.fc1.scale", AW_DT_F16, 3, {1, 2, 3}, h},
        {"decoder.embed.bf16", AW_DT_BF16, 1, {5}, b},
        {"ids", AW_DT_I64, 1, {2}, ids},
        {"flag", AW_DT_BOOL, 0, {0}, flag},
        {"u", AW_DT_U32, 1, {3}, u},
    };
    /* unsorted and several keys: the writer sorts them */
    const aw_st_meta meta[] = {{"zeta", "last"}, {"format", "pt"}, {"aweq", "w4 g128"}};

    char *dir = aw_test_tmpdir();
    char *path = aw_path_join(dir, "rt.safetensors");
    aw_assert_status(aw_st_write_file(path, e, N, meta, 3), AW_OK, NULL);
    size_t len1;
    uint8_t *bytes1 = aw_test_read_bytes(path, &len1);
    assert_int_equal((8 + bytes1[0] + 256u * bytes1[1]) % 8, 0); /* header padded to 8 */

    aw_st_file *f;
    aw_assert_status(aw_st_open(path, &f), AW_OK, NULL);
    assert_string_equal(aw_st_label(f), path);
    assert_int_equal(aw_st_count(f), N);
    assert_int_equal(aw_st_metadata_count(f), 3);
    const char *k, *v;
    aw_st_metadata_at(f, 0, &k, &v);
    assert_string_equal(k, "aweq");
    assert_string_equal(v, "w4 g128");
    aw_st_metadata_at(f, 2, &k, &v);
    assert_string_equal(k, "zeta");
    assert_string_equal(aw_st_metadata(f, "format"), "pt");

    /* every tensor back with its dtype, shape and bytes; each aligned to its
     * element size in the file, as the layout promises */
    aw_st_entry back[N];
    uint8_t *data[N];
    for (int i = 0; i < N; i++) {
        const aw_st_tensor *t = must_find(f, e[i].name);
        assert_shape(t, e[i].dtype, e[i].ndim, e[i].shape);
        assert_int_equal((aw_st_data_offset(f) + t->begin) % aw_dtype_size(t->dtype), 0);
        size_t n = (size_t)(t->end - t->begin);
        data[i] = malloc(n);
        aw_assert_status(aw_st_read(f, t, data[i], n), AW_OK, NULL);
        assert_memory_equal(data[i], e[i].data, n);
        back[i] = (aw_st_entry){t->name, t->dtype, t->ndim, {0}, data[i]};
        memcpy(back[i].shape, t->shape, sizeof t->shape);
    }
    aw_st_meta mback[3];
    for (size_t i = 0; i < 3; i++) aw_st_metadata_at(f, i, &mback[i].key, &mback[i].value);

    /* write again what was read: same bytes */
    uint8_t *bytes2;
    size_t len2;
    aw_assert_status(aw_st_serialize(back, N, mback, 3, &bytes2, &len2), AW_OK, NULL);
    assert_int_equal(len2, len1);
    assert_memory_equal(bytes2, bytes1, len1);

    /* the memory reader sees the same file */
    aw_st_file *m;
    aw_assert_status(aw_st_open_mem(bytes2, len2, "in-memory", &m), AW_OK, NULL);
    assert_string_equal(aw_st_label(m), "in-memory");
    assert_int_equal(aw_st_count(m), N);
    for (size_t i = 0; i < N; i++) {
        const aw_st_tensor *a = aw_st_at(f, i), *c = aw_st_at(m, i);
        assert_string_equal(a->name, c->name);
        assert_int_equal(a->begin, c->begin);
        assert_int_equal(a->end, c->end);
    }
    float fw[6];
    aw_assert_status(aw_st_read_f32(m, must_find(m, e[2].name), fw, 6), AW_OK, NULL);
    for (int i = 0; i < 6; i++) assert_true(fw[i] == (float)i - 2.5f);
    aw_st_close(m);

    for (int i = 0; i < N; i++) free(data[i]);
    aw_st_close(f);
    free(bytes2);
    free(bytes1);
    free(path);
    aw_test_rmtree(dir);
    free(dir);
}

/* ------------------------------------------------------ aw_st_read_f32 -- */

static void test_read_f32(void **state)
{
    (void)state;
    /* values that exercise each conversion: subnormals, infinities, rounding */
    enum { N = 8, BIG = 70000 }; /* BIG > the reader's 65536-element chunk */
    static const float vals[N] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.0e-8f, 1.0e30f, -1.0e-3f};
    float f32[N];
    uint16_t f16[N], bf16[N];
    int8_t i8[N];
    memcpy(f32, vals, sizeof f32);
    for (int i = 0; i < N; i++) {
        f16[i] = aw_f32_to_f16(vals[i]);
        bf16[i] = aw_f32_to_bf16(vals[i]);
        i8[i] = (int8_t)i;
    }
    uint16_t *big = malloc(BIG * sizeof *big);
    for (int i = 0; i < BIG; i++) big[i] = aw_f32_to_f16((float)(i % 2048));
    const aw_st_entry e[] = {
        {"w.f32", AW_DT_F32, 1, {N}, f32},   {"w.f16", AW_DT_F16, 1, {N}, f16},
        {"w.bf16", AW_DT_BF16, 1, {N}, bf16}, {"w.i8", AW_DT_I8, 1, {N}, i8},
        {"w.big", AW_DT_F16, 2, {BIG / 10, 10}, big},
    };
    char *dir = aw_test_tmpdir();
    char *path = aw_path_join(dir, "f32.safetensors");
    aw_assert_status(aw_st_write_file(path, e, 5, NULL, 0), AW_OK, NULL);
    aw_st_file *f;
    aw_assert_status(aw_st_open(path, &f), AW_OK, NULL);

    float out[N];
    aw_assert_status(aw_st_read_f32(f, must_find(f, "w.f32"), out, N), AW_OK, NULL);
    assert_memory_equal(out, vals, sizeof out);
    aw_assert_status(aw_st_read_f32(f, must_find(f, "w.f16"), out, N), AW_OK, NULL);
    for (int i = 0; i < N; i++) assert_true(out[i] == aw_f16_to_f32(f16[i]));
    assert_true(out[4] == 65504.0f);          /* largest half */
    assert_true(out[6] > 65504.0f);           /* 1e30 overflows to inf */
    assert_true(out[5] > 0 && out[5] < 1e-7f); /* a half subnormal */
    aw_assert_status(aw_st_read_f32(f, must_find(f, "w.bf16"), out, N), AW_OK, NULL);
    for (int i = 0; i < N; i++) assert_true(out[i] == aw_bf16_to_f32(bf16[i]));
    assert_true(out[2] == 1.0f && out[3] == -2.5f);

    float *bigout = malloc(BIG * sizeof *bigout);
    aw_assert_status(aw_st_read_f32(f, must_find(f, "w.big"), bigout, BIG), AW_OK, NULL);
    for (int i = 0; i < BIG; i++) assert_true(bigout[i] == (float)(i % 2048));

    /* I8 is no float: AW_ERR_DTYPE naming the file and the tensor */
    aw_assert_status(aw_st_read_f32(f, must_find(f, "w.i8"), out, N), AW_ERR_DTYPE,
                     "f32.safetensors");
    aw_assert_status(aw_st_read_f32(f, must_find(f, "w.i8"), out, N), AW_ERR_DTYPE, "'w.i8'");
    /* destinations too small */
    aw_assert_status(aw_st_read_f32(f, must_find(f, "w.f16"), out, N - 1), AW_ERR_ARG, "'w.f16'");
    aw_assert_status(aw_st_read(f, must_find(f, "w.f32"), out, sizeof out - 1), AW_ERR_ARG,
                     "'w.f32'");

    /* a tensor of another file is refused, not read at the wrong offsets */
    aw_st_file *ref = open_fixture("tests/fixtures/reference.safetensors");
    aw_assert_status(aw_st_read(f, must_find(ref, "model.u8.vec"), out, sizeof out), AW_ERR_ARG,
                     "does not belong");
    aw_st_close(ref);

    aw_st_close(f);
    free(bigout);
    free(big);
    free(path);
    aw_test_rmtree(dir);
    free(dir);
}

/* ------------------------------------------------------- writer checks -- */

static void test_writer_rejects_bad_entries(void **state)
{
    (void)state;
    float x[2] = {1, 2};
    uint8_t *out = NULL;
    size_t len = 0;
    aw_st_entry two[2] = {{"a", AW_DT_F32, 1, {1}, x}, {"a", AW_DT_F16, 1, {1}, x}};
    aw_assert_status(aw_st_serialize(two, 2, NULL, 0, &out, &len), AW_ERR_ARG, "'a' given twice");
    assert_null(out);
    aw_st_entry bad = {"", AW_DT_F32, 1, {1}, x};
    aw_assert_status(aw_st_serialize(&bad, 1, NULL, 0, &out, &len), AW_ERR_ARG, "no name");
    bad = (aw_st_entry){"b", AW_DT_F32, AW_ST_MAX_DIMS + 1, {1}, x};
    aw_assert_status(aw_st_serialize(&bad, 1, NULL, 0, &out, &len), AW_ERR_ARG, "ndim");
    bad = (aw_st_entry){"b", AW_DT_F32, 2, {1, -2}, x};
    aw_assert_status(aw_st_serialize(&bad, 1, NULL, 0, &out, &len), AW_ERR_ARG, "negative");
    bad = (aw_st_entry){"__metadata__", AW_DT_F32, 1, {1}, x};
    aw_assert_status(aw_st_serialize(&bad, 1, NULL, 0, &out, &len), AW_ERR_ARG, "reserved");
    bad = (aw_st_entry){"bad\xff", AW_DT_F32, 1, {1}, x};
    aw_assert_status(aw_st_serialize(&bad, 1, NULL, 0, &out, &len), AW_ERR_ARG, "UTF-8");
    bad = (aw_st_entry){"huge", AW_DT_F32, 3, {INT64_MAX, INT64_MAX, 2}, x};
    aw_assert_status(aw_st_serialize(&bad, 1, NULL, 0, &out, &len), AW_ERR_ARG, "overflows");
    bad = (aw_st_entry){"nodata", AW_DT_F32, 1, {2}, NULL};
    aw_assert_status(aw_st_serialize(&bad, 1, NULL, 0, &out, &len), AW_ERR_ARG, "no data");
    aw_st_entry ok = {"ok", AW_DT_F32, 1, {2}, x};
    const aw_st_meta dup[] = {{"k", "1"}, {"k", "2"}};
    aw_assert_status(aw_st_serialize(&ok, 1, dup, 2, &out, &len), AW_ERR_ARG, "'k' given twice");
    assert_null(out);

    /* a file that cannot be created: AW_ERR_IO naming the path, nothing left */
    char *dir = aw_test_tmpdir();
    char *path = aw_path_join(dir, "missing/sub/x.safetensors");
    aw_assert_status(aw_st_write_file(path, &ok, 1, NULL, 0), AW_ERR_IO, path);
    aw_test_rmtree(dir);
    free(path);
    free(dir);
}

/* A zero-length tensor whose dims overflow when multiplied in order holds
 * 0 elements and is valid on both sides. */
static void test_zero_dim_no_overflow(void **state)
{
    (void)state;
    aw_st_entry e = {"z", AW_DT_F32, 3, {INT64_MAX, INT64_MAX, 0}, NULL};
    uint8_t *out;
    size_t len;
    aw_assert_status(aw_st_serialize(&e, 1, NULL, 0, &out, &len), AW_OK, NULL);
    aw_st_file *f;
    aw_assert_status(aw_st_open_mem(out, len, "z", &f), AW_OK, NULL);
    assert_int_equal(aw_st_numel(aw_st_at(f, 0)), 0);
    aw_st_close(f);
    free(out);
}

static void test_open_io_errors(void **state)
{
    (void)state;
    aw_st_file *f = (aw_st_file *)1;
    aw_assert_status(aw_st_open("/nonexistent/aweq/x.safetensors", &f), AW_ERR_IO,
                     "/nonexistent/aweq/x.safetensors: cannot open: No such file or directory");
    assert_null(f);
    char *dir = aw_test_tmpdir();
    aw_assert_status(aw_st_open(dir, &f), AW_ERR_IO, "not a regular file");
    aw_test_rmtree(dir);
    free(dir);
    aw_assert_status(aw_st_open_mem(NULL, 0, "nothing", &f), AW_ERR_ST_TRUNCATED, "nothing");
    assert_null(f);
    aw_st_close(NULL);
}

/* ------------------------------------------------- must-reject fixtures -- */

typedef struct {
    const char *file;   /* in tests/fixtures/st-reject/ */
    aw_status status;
    const char *needle; /* the tensor (or key) the message must name */
} reject_case;

/* Why each code (aw_safetensors.c, check_tiling): a consistent tiling that
 * runs past the end of the file is a truncated file; an offset past the end
 * that also breaks the tiling is an offset out of range; trailing bytes no
 * tensor owns are AW_ERR_ST_OFFSETS. */
static const reject_case reject_cases[] = {
    {"zero_bytes.safetensors", AW_ERR_ST_TRUNCATED, "0 bytes"},
    {"short_prefix.safetensors", AW_ERR_ST_TRUNCATED, "5 bytes"},
    {"truncated_data.safetensors", AW_ERR_ST_TRUNCATED, "tensor 'b'"},
    {"truncated_huge_tensor.safetensors", AW_ERR_ST_TRUNCATED, "tensor 'a'"},
    {"header_len_beyond_file.safetensors", AW_ERR_ST_HEADER_SIZE, "header length 1000"},
    {"header_len_over_cap.safetensors", AW_ERR_ST_HEADER_SIZE, "cap"},
    {"header_len_max.safetensors", AW_ERR_ST_HEADER_SIZE, "18446744073709551615"},
    {"json_empty_header.safetensors", AW_ERR_ST_JSON, "not valid JSON"},
    {"json_malformed.safetensors", AW_ERR_ST_JSON, "not valid JSON"},
    {"json_not_object.safetensors", AW_ERR_ST_JSON, "not a JSON object"},
    {"json_trailing_garbage.safetensors", AW_ERR_ST_JSON, "not valid JSON"},
    {"json_nul_padding.safetensors", AW_ERR_ST_JSON, "not valid JSON"},
    {"json_invalid_utf8.safetensors", AW_ERR_ST_JSON, "not valid JSON"},
    {"json_integer_too_big.safetensors", AW_ERR_ST_JSON, "too big integer"},
    {"duplicate_tensor.safetensors", AW_ERR_ST_DUPLICATE, "\"a\""},
    {"duplicate_key_in_entry.safetensors", AW_ERR_ST_DUPLICATE, "\"dtype\""},
    {"metadata_not_object.safetensors", AW_ERR_ST_JSON, "__metadata__"},
    {"metadata_value_not_string.safetensors", AW_ERR_ST_JSON, "'format'"},
    {"entry_not_object.safetensors", AW_ERR_ST_JSON, "tensor 'a'"},
    {"entry_missing_dtype.safetensors", AW_ERR_ST_JSON, "tensor 'a'"},
    {"entry_extra_key.safetensors", AW_ERR_ST_JSON, "tensor 'a': unexpected key 'extra'"},
    {"dtype_not_string.safetensors", AW_ERR_ST_JSON, "tensor 'a'"},
    {"dtype_unknown.safetensors", AW_ERR_ST_DTYPE, "tensor 'a': unknown dtype 'F31'"},
    {"shape_not_array.safetensors", AW_ERR_ST_JSON, "tensor 'a'"},
    {"shape_negative.safetensors", AW_ERR_ST_SHAPE, "tensor 'a'"},
    {"shape_float.safetensors", AW_ERR_ST_JSON, "tensor 'a'"},
    {"shape_too_many_dims.safetensors", AW_ERR_ST_SHAPE, "tensor 'a'"},
    {"shape_mismatch.safetensors", AW_ERR_ST_SHAPE, "tensor 'a'"},
    {"shape_overflow.safetensors", AW_ERR_ST_SHAPE, "tensor 'a'"},
    {"shape_elem_overflow.safetensors", AW_ERR_ST_SHAPE, "tensor 'a'"},
    {"offsets_not_pair.safetensors", AW_ERR_ST_JSON, "tensor 'a'"},
    {"offsets_float.safetensors", AW_ERR_ST_JSON, "tensor 'a'"},
    {"offsets_negative.safetensors", AW_ERR_ST_OFFSETS, "tensor 'a'"},
    {"offsets_reversed.safetensors", AW_ERR_ST_OFFSETS, "tensor 'a'"},
    {"offsets_out_of_range.safetensors", AW_ERR_ST_OFFSETS,
     "tensor 'b': data_offsets [100, 108] end beyond the data section (24 bytes)"},
    {"offsets_overlap.safetensors", AW_ERR_ST_OVERLAP, "tensor 'b': data_offsets [8, 24] overlap tensor 'a'"},
    {"offsets_gap.safetensors", AW_ERR_ST_OVERLAP, "tensor 'b': data_offsets [20, 28] leave a gap after tensor 'a'"},
    {"offsets_gap_at_start.safetensors", AW_ERR_ST_OVERLAP, "tensor 'a'"},
    {"offsets_empty_inside.safetensors", AW_ERR_ST_OVERLAP, "tensor 'z'"},
    {"trailing_bytes.safetensors", AW_ERR_ST_OFFSETS, "8 trailing bytes"},
    {"no_tensors_trailing_bytes.safetensors", AW_ERR_ST_OFFSETS, "8 trailing bytes"},
};
enum { N_REJECT = sizeof reject_cases / sizeof reject_cases[0] };

/* Each file refused by both readers with its status, a message naming the
 * file (the label) and the tensor. */
static void run_reject_case(void **state)
{
    const reject_case *c = *state;
    char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/st-reject/%s", c->file);
    char *path = aw_test_source_path(rel);

    aw_st_file *f = (aw_st_file *)1;
    aw_err_clear();
    aw_status st = aw_st_open(path, &f);
    aw_test_check_status(st, c->status, path, __FILE__, __LINE__);
    aw_test_check_status(st, c->status, c->needle, __FILE__, __LINE__);
    assert_null(f);

    size_t len;
    uint8_t *bytes = aw_test_read_bytes(path, &len);
    f = (aw_st_file *)1;
    aw_err_clear();
    st = aw_st_open_mem(bytes, len, c->file, &f);
    aw_test_check_status(st, c->status, c->file, __FILE__, __LINE__);
    aw_test_check_status(st, c->status, c->needle, __FILE__, __LINE__);
    assert_null(f);
    free(bytes);
    free(path);
}

/* The folder and the table agree: no untested file, no missing file. */
static void test_reject_folder_matches_table(void **state)
{
    (void)state;
    char *dir = aw_test_source_path("tests/fixtures/st-reject");
    DIR *d = opendir(dir);
    assert_non_null(d);
    int seen[N_REJECT] = {0};
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        int found = 0;
        for (size_t i = 0; i < N_REJECT; i++) {
            if (strcmp(de->d_name, reject_cases[i].file) == 0) {
                seen[i] = found = 1;
            }
        }
        if (!found) fail_msg("%s/%s has no row in reject_cases", dir, de->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < N_REJECT; i++)
        if (!seen[i]) fail_msg("%s/%s is missing (run make_st_reject.py)", dir, reject_cases[i].file);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_reference_read),
        cmocka_unit_test(test_reference_write_identical),
        cmocka_unit_test(test_escapes_identical),
        cmocka_unit_test(test_no_tensors_identical),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_read_f32),
        cmocka_unit_test(test_writer_rejects_bad_entries),
        cmocka_unit_test(test_zero_dim_no_overflow),
        cmocka_unit_test(test_open_io_errors),
        cmocka_unit_test(test_reject_folder_matches_table),
    };
    enum { N_FIXED = sizeof fixed / sizeof fixed[0] };
    /* one named test per must-reject file */
    struct CMUnitTest tests[N_FIXED + N_REJECT];
    memcpy(tests, fixed, sizeof fixed);
    for (size_t i = 0; i < N_REJECT; i++)
        tests[N_FIXED + i] = (struct CMUnitTest){.name = reject_cases[i].file,
                                                 .test_func = run_reject_case,
                                                 .initial_state = (void *)&reject_cases[i]};
    return _cmocka_run_group_tests("safetensors", tests, N_FIXED + N_REJECT, NULL, NULL);
}
