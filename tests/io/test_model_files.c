/* test_model_files.c - model folders (one file, or an index and shards):
 * reading, the index writer, every way an index can be wrong; and the
 * file-system helpers (atomic files, ENOSPC, path containment). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aw_fs.h"
#include "aw_model_files.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers -- */

static char *join(const char *dir, const char *name)
{
    char *p = aw_path_join(dir, name);
    assert_non_null(p);
    return p;
}

/* A shard holding F32 [2] tensors; tensor i holds {base + i, -(base + i)}. */
static void write_shard(const char *dir, const char *file, const char *const *names, size_t n,
                        float base)
{
    float vals[16][2];
    aw_st_entry e[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        vals[i][0] = base + (float)i;
        vals[i][1] = -(base + (float)i);
        e[i] = (aw_st_entry){names[i], AW_DT_F32, 1, {2}, vals[i]};
    }
    char *path = join(dir, file);
    aw_assert_status(aw_st_write_file(path, e, n, NULL, 0), AW_OK, NULL);
    free(path);
}

static void write_text(const char *dir, const char *file, const char *text)
{
    char *path = join(dir, file);
    aw_test_write_bytes(path, text, strlen(text));
    free(path);
}

/* The two-shard folder most tests start from:
 *   shard 1: "decoder.a", "decoder.b", "embed"      (values 10, 11, 12)
 *   shard 2: "decoder.c", "lm_head"                 (values 20, 21) */
#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"
static const char *const s1_names[] = {"decoder.a", "decoder.b", "embed"};
static const char *const s2_names[] = {"decoder.c", "lm_head"};

static void write_two_shards(const char *dir)
{
    write_shard(dir, SHARD1, s1_names, 3, 10.0f);
    write_shard(dir, SHARD2, s2_names, 2, 20.0f);
}

static void write_good_index(const char *dir)
{
    const char *const t[] = {"lm_head", "decoder.a", "decoder.c", "embed", "decoder.b"};
    const char *const s[] = {SHARD2, SHARD1, SHARD2, SHARD1, SHARD1};
    aw_assert_status(aw_mf_write_index(dir, t, s, 5, 5 * 8), AW_OK, NULL);
}

typedef struct {
    char *dir;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    fx->dir = aw_test_tmpdir();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    aw_test_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* Open is expected to fail: check status, both needles, and *out. */
static void expect_open_fails(const char *dir, aw_status want, const char *needle1,
                              const char *needle2, int line)
{
    aw_model_files *mf = (aw_model_files *)1;
    aw_err_clear();
    aw_status st = aw_mf_open(dir, &mf);
    aw_test_check_status(st, want, needle1, __FILE__, line);
    aw_test_check_status(st, want, needle2, __FILE__, line);
    assert_null(mf);
}
#define EXPECT_OPEN_FAILS(dir, want, n1, n2) expect_open_fails((dir), (want), (n1), (n2), __LINE__)

/* ------------------------------------------------------- model folders -- */

static void test_single_file(void **state)
{
    fixture *fx = *state;
    const char *const names[] = {"z.last", "a.first", "m.middle"};
    write_shard(fx->dir, AW_SINGLE_NAME, names, 3, 1.0f);

    aw_model_files *mf;
    aw_assert_status(aw_mf_open(fx->dir, &mf), AW_OK, NULL);
    assert_string_equal(aw_mf_dir(mf), fx->dir);
    assert_int_equal(aw_mf_shard_count(mf), 1);
    assert_int_equal(aw_mf_count(mf), 3);
    assert_int_equal(aw_mf_total_bytes(mf), 3 * 8);
    const aw_st_file *f;
    assert_string_equal(aw_mf_at(mf, 0, &f)->name, "a.first");
    assert_string_equal(aw_mf_at(mf, 1, NULL)->name, "m.middle");
    assert_string_equal(aw_mf_at(mf, 2, NULL)->name, "z.last");
    assert_null(aw_mf_at(mf, 3, &f));
    assert_null(f);

    const aw_st_tensor *t;
    aw_assert_status(aw_mf_find(mf, "z.last", &f, &t), AW_OK, NULL);
    float v[2];
    aw_assert_status(aw_st_read_f32(f, t, v, 2), AW_OK, NULL);
    assert_true(v[0] == 1.0f && v[1] == -1.0f); /* index 0 of what was written */
    aw_mf_close(mf);
    aw_mf_close(NULL);
}

/* index + 2 shards: every tensor found in the right shard with its values */
static void test_sharded(void **state)
{
    fixture *fx = *state;
    write_two_shards(fx->dir);
    write_good_index(fx->dir);

    aw_model_files *mf;
    aw_assert_status(aw_mf_open(fx->dir, &mf), AW_OK, NULL);
    assert_int_equal(aw_mf_shard_count(mf), 2);
    assert_int_equal(aw_mf_count(mf), 5);
    assert_int_equal(aw_mf_total_bytes(mf), 5 * 8);

    static const struct {
        const char *name, *shard;
        float value;
    } want[] = {{"decoder.a", SHARD1, 10}, {"decoder.b", SHARD1, 11}, {"decoder.c", SHARD2, 20},
                {"embed", SHARD1, 12},     {"lm_head", SHARD2, 21}};
    for (size_t i = 0; i < 5; i++) {
        const aw_st_file *f, *fa;
        const aw_st_tensor *t;
        aw_assert_status(aw_mf_find(mf, want[i].name, &f, &t), AW_OK, NULL);
        assert_string_equal(t->name, want[i].name);
        const char *label = aw_st_label(f);
        assert_non_null(strstr(label, want[i].shard));
        float v[2];
        aw_assert_status(aw_st_read_f32(f, t, v, 2), AW_OK, NULL);
        assert_true(v[0] == want[i].value && v[1] == -want[i].value);
        /* aw_mf_at walks the same names in order, with the same shard */
        assert_ptr_equal(aw_mf_at(mf, i, &fa), t);
        assert_ptr_equal(fa, f);
    }
    aw_mf_close(mf);
}

/* The index file as transformers writes it (json.dumps(indent=2,
 * sort_keys=True) + "\n"), byte for byte. */
static void test_write_index_format(void **state)
{
    fixture *fx = *state;
    const char *const t[] = {"b", "a"};
    const char *const s[] = {"s2", "s1"};
    aw_assert_status(aw_mf_write_index(fx->dir, t, s, 2, 48), AW_OK, NULL);
    char *path = join(fx->dir, AW_INDEX_NAME);
    size_t n;
    uint8_t *got = aw_test_read_bytes(path, &n);
    static const char want[] = "{\n  \"metadata\": {\n    \"total_size\": 48\n  },\n"
                               "  \"weight_map\": {\n    \"a\": \"s1\",\n    \"b\": \"s2\"\n  }\n}\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(got, want, n);
    free(got);

    /* no temporary left behind */
    char tmp[64];
    snprintf(tmp, sizeof tmp, ".tmp.%ld", (long)getpid());
    char *tmp_path = malloc(strlen(path) + sizeof tmp);
    sprintf(tmp_path, "%s%s", path, tmp);
    assert_int_equal(access(tmp_path, F_OK), -1);
    free(tmp_path);
    free(path);

    const char *const dup_t[] = {"a", "a"};
    aw_assert_status(aw_mf_write_index(fx->dir, dup_t, s, 2, 0), AW_ERR_ARG, "'a' given twice");
    const char *const out_s[] = {"../x.safetensors"};
    aw_assert_status(aw_mf_write_index(fx->dir, t, out_s, 1, 0), AW_ERR_ARG, "../x.safetensors");
}

static void test_index_shard_parent_path(void **state)
{
    fixture *fx = *state;
    write_two_shards(fx->dir);
    write_text(fx->dir, AW_INDEX_NAME,
               "{\"weight_map\": {\"decoder.a\": \"" SHARD1 "\", \"x\": \"../x.safetensors\"}}");
    EXPECT_OPEN_FAILS(fx->dir, AW_ERR_INDEX_PATH, AW_INDEX_NAME, "'../x.safetensors'");
}

static void test_index_shard_absolute_path(void **state)
{
    fixture *fx = *state;
    write_two_shards(fx->dir);
    write_text(fx->dir, AW_INDEX_NAME, "{\"weight_map\": {\"x\": \"/tmp/x.safetensors\"}}");
    EXPECT_OPEN_FAILS(fx->dir, AW_ERR_INDEX_PATH, AW_INDEX_NAME, "'/tmp/x.safetensors'");
}

static void test_missing_shard(void **state)
{
    fixture *fx = *state;
    write_shard(fx->dir, SHARD1, s1_names, 3, 10.0f); /* shard 2 never written */
    write_good_index(fx->dir);
    char *shard2 = join(fx->dir, SHARD2);
    EXPECT_OPEN_FAILS(fx->dir, AW_ERR_MISSING_SHARD, shard2, "missing");
    free(shard2);
}

static void test_no_weights(void **state)
{
    fixture *fx = *state;
    EXPECT_OPEN_FAILS(fx->dir, AW_ERR_MISSING_SHARD, fx->dir, AW_INDEX_NAME);
    EXPECT_OPEN_FAILS(fx->dir, AW_ERR_MISSING_SHARD, AW_SINGLE_NAME, "neither");
    char *nowhere = join(fx->dir, "no/such/folder");
    EXPECT_OPEN_FAILS(nowhere, AW_ERR_MISSING_SHARD, nowhere, AW_SINGLE_NAME);
    free(nowhere);
}

/* A folder holding only the named files (contents never read). */
static void touch_files(const char *dir, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) write_text(dir, names[i], "not safetensors: never opened");
}

/* Open fails with want; the message names every needle and is one line. */
static void expect_no_weights(const char *dir, aw_status want, const char *const *needles,
                              size_t n, int line)
{
    for (size_t i = 0; i < n; i++) expect_open_fails(dir, want, needles[i], dir, line);
    assert_null(strchr(aw_err_message(), '\n'));
}
#define EXPECT_NO_WEIGHTS(dir, want, ...)                                               \
    do {                                                                                \
        const char *const nd_[] = {__VA_ARGS__};                                        \
        expect_no_weights((dir), (want), nd_, sizeof nd_ / sizeof nd_[0], __LINE__);    \
    } while (0)

static void test_no_weights_hf_pickle(void **state)
{
    fixture *fx = *state;
    const char *const files[] = {"pytorch_model.bin", "config.json", "training_args.bin"};
    touch_files(fx->dir, files, 3);
    EXPECT_NO_WEIGHTS(fx->dir, AW_ERR_UNSUPPORTED, "found pytorch_model.bin;", "never loads",
                      AW_SINGLE_NAME, "AutoModelForCausalLM", "AutoTokenizer",
                      "safe_serialization=True", "-safetensors");
    /* training_args.bin is a pickle of arguments, not weights */
    assert_null(strstr(aw_err_message(), "training_args"));
}

static void test_no_weights_hf_pickle_sharded(void **state)
{
    fixture *fx = *state;
    const char *const files[] = {"pytorch_model-00002-of-00002.bin",
                                 "pytorch_model-00001-of-00002.bin",
                                 "pytorch_model.bin.index.json"};
    touch_files(fx->dir, files, 3);
    EXPECT_NO_WEIGHTS(fx->dir, AW_ERR_UNSUPPORTED,
                      "found pytorch_model-00001-of-00002.bin (+1 more), pytorch_model.bin.index.json;",
                      "from_pretrained(d, torch_dtype='auto')");
}

static void test_no_weights_hf_dir_slash(void **state)
{
    fixture *fx = *state;
    touch_files(fx->dir, (const char *const[]){"pytorch_model.bin"}, 1);
    char *slashed = NULL, *want = NULL;
    assert_true(asprintf(&slashed, "%s//", fx->dir) > 0);
    assert_true(asprintf(&want, "d='%s'; o=d+'-safetensors'", fx->dir) > 0);
    EXPECT_NO_WEIGHTS(slashed, AW_ERR_UNSUPPORTED, want);
    free(slashed);
    free(want);
}

static void test_no_weights_metaseq(void **state)
{
    fixture *fx = *state;
    const char *const files[] = {"reshard-model_part-1.pt", "reshard-model_part-0.pt", "dict.txt",
                                 "gpt2-vocab.json"};
    touch_files(fx->dir, files, 4);
    EXPECT_NO_WEIGHTS(fx->dir, AW_ERR_UNSUPPORTED, "found reshard-model_part-0.pt (+1 more); metaseq",
                      "never loads", "metaseq.scripts.convert_to_singleton",
                      "convert_opt_original_pytorch_checkpoint_to_pytorch.py --fairseq_path",
                      "/restored.pt --pytorch_dump_folder_path OUT");
}

static void test_no_weights_other_pickle(void **state)
{
    fixture *fx = *state;
    const char *const files[] = {"restored.pt", "notes.txt"};
    touch_files(fx->dir, files, 2);
    char *want = NULL;
    assert_true(asprintf(&want, "--fairseq_path %s/restored.pt", fx->dir) > 0);
    EXPECT_NO_WEIGHTS(fx->dir, AW_ERR_UNSUPPORTED, "found restored.pt;", "never loads", want,
                      "save_pretrained(..., safe_serialization=True)");
    free(want);
    /* .pth and .ckpt count as the same kind */
    char *p = join(fx->dir, "restored.pt");
    assert_int_equal(unlink(p), 0);
    free(p);
    touch_files(fx->dir, (const char *const[]){"model.ckpt", "weights.pth"}, 2);
    EXPECT_NO_WEIGHTS(fx->dir, AW_ERR_UNSUPPORTED, "found model.ckpt (+1 more);", "/model.ckpt");
}

static void test_no_weights_tf_flax(void **state)
{
    fixture *fx = *state;
    touch_files(fx->dir, (const char *const[]){"flax_model.msgpack"}, 1);
    EXPECT_NO_WEIGHTS(fx->dir, AW_ERR_UNSUPPORTED, "found flax_model.msgpack; aweq-dist does not read Flax weights",
                      "transformers 4.x", "from_pretrained(d, from_flax=True)");
    touch_files(fx->dir, (const char *const[]){"tf_model.h5"}, 1);
    EXPECT_NO_WEIGHTS(fx->dir, AW_ERR_UNSUPPORTED,
                      "found tf_model.h5, flax_model.msgpack; aweq-dist does not read TensorFlow",
                      "from_pretrained(d, from_tf=True)");
    /* a Hub folder with all three: the PyTorch pickle is the one to convert */
    touch_files(fx->dir, (const char *const[]){"pytorch_model.bin"}, 1);
    EXPECT_NO_WEIGHTS(fx->dir, AW_ERR_UNSUPPORTED,
                      "found pytorch_model.bin, tf_model.h5, flax_model.msgpack; the PyTorch weights are pickles",
                      "torch_dtype='auto'");
    assert_null(strstr(aw_err_message(), "from_tf"));
}

static void test_missing_tensor(void **state)
{
    fixture *fx = *state;
    write_two_shards(fx->dir);
    write_good_index(fx->dir);
    aw_model_files *mf;
    aw_assert_status(aw_mf_open(fx->dir, &mf), AW_OK, NULL);
    const aw_st_file *f = (const aw_st_file *)1;
    const aw_st_tensor *t = (const aw_st_tensor *)1;
    aw_assert_status(aw_mf_find(mf, "decoder.layers.9.fc1.weight", &f, &t), AW_ERR_MISSING_TENSOR,
                     fx->dir);
    aw_assert_status(aw_mf_find(mf, "decoder.layers.9.fc1.weight", &f, &t), AW_ERR_MISSING_TENSOR,
                     "'decoder.layers.9.fc1.weight'");
    assert_null(f);
    assert_null(t);
    aw_mf_close(mf);
}

/* the index names a tensor its shard does not hold */
static void test_index_tensor_not_in_shard(void **state)
{
    fixture *fx = *state;
    write_two_shards(fx->dir);
    const char *const t[] = {"decoder.a", "decoder.b", "embed", "decoder.c", "lm_head", "ghost"};
    const char *const s[] = {SHARD1, SHARD1, SHARD1, SHARD2, SHARD2, SHARD2};
    aw_assert_status(aw_mf_write_index(fx->dir, t, s, 6, 0), AW_OK, NULL);
    EXPECT_OPEN_FAILS(fx->dir, AW_ERR_INDEX, "tensor 'ghost'", SHARD2);
}

/* a shard holds a tensor the index does not list */
static void test_shard_tensor_not_in_index(void **state)
{
    fixture *fx = *state;
    write_two_shards(fx->dir);
    const char *const t[] = {"decoder.a", "decoder.b", "embed", "decoder.c"};
    const char *const s[] = {SHARD1, SHARD1, SHARD1, SHARD2};
    aw_assert_status(aw_mf_write_index(fx->dir, t, s, 4, 0), AW_OK, NULL);
    EXPECT_OPEN_FAILS(fx->dir, AW_ERR_INDEX, "tensor 'lm_head'", SHARD2);
}

static void test_tensor_in_two_shards(void **state)
{
    fixture *fx = *state;
    write_shard(fx->dir, SHARD1, s1_names, 3, 10.0f);
    const char *const dup[] = {"decoder.c", "embed"};
    write_shard(fx->dir, SHARD2, dup, 2, 20.0f);
    const char *const t[] = {"decoder.a", "decoder.b", "embed", "decoder.c"};
    const char *const s[] = {SHARD1, SHARD1, SHARD1, SHARD2};
    aw_assert_status(aw_mf_write_index(fx->dir, t, s, 4, 0), AW_OK, NULL);
    EXPECT_OPEN_FAILS(fx->dir, AW_ERR_ST_DUPLICATE, "tensor 'embed'", SHARD2);
}

static void test_index_malformed(void **state)
{
    fixture *fx = *state;
    write_two_shards(fx->dir);
    static const struct {
        const char *text, *needle;
    } cases[] = {
        {"{\"weight_map\": {\"a\": ", "not valid JSON"},
        {"[]", "not a JSON object"},
        {"{\"metadata\": {}}", "no \"weight_map\""},
        {"{\"weight_map\": []}", "no \"weight_map\""},
        {"{\"weight_map\": {}}", "empty"},
        {"{\"weight_map\": {\"embed\": 3}}", "tensor 'embed'"},
        {"{\"weight_map\": {\"embed\": \"" SHARD1 "\", \"embed\": \"" SHARD1 "\"}}", "duplicate"},
        {"{\"weight_map\": {\"embed\": \"\"}}", "tensor 'embed'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(fx->dir, AW_INDEX_NAME, cases[i].text);
        aw_status want = strstr(cases[i].text, "\"\"}") ? AW_ERR_INDEX_PATH : AW_ERR_INDEX;
        EXPECT_OPEN_FAILS(fx->dir, want, AW_INDEX_NAME, cases[i].needle);
    }
}

/* a shard with a broken header: its own status, naming the shard */
static void test_bad_shard_header(void **state)
{
    fixture *fx = *state;
    char *src = aw_test_source_path("tests/fixtures/st-reject/offsets_overlap.safetensors");
    size_t n;
    uint8_t *bytes = aw_test_read_bytes(src, &n);
    char *single = join(fx->dir, AW_SINGLE_NAME);
    aw_test_write_bytes(single, bytes, n);
    EXPECT_OPEN_FAILS(fx->dir, AW_ERR_ST_OVERLAP, single, "tensor 'b'");
    free(single);
    free(bytes);
    free(src);
}

/* ------------------------------------------------------------- aw_fs.c -- */

static void test_path_is_contained(void **state)
{
    (void)state;
    static const char *ok[] = {"model.safetensors", "sub/model.safetensors", "./x", "a..b",
                               "..hidden", "a/...", "x.."};
    static const char *bad[] = {"", "/abs/x", "../x.safetensors", "a/../../x", "a/..", "..",
                                "a\\b", "sub/../x"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!aw_path_is_contained(ok[i])) fail_msg("'%s' should be contained", ok[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (aw_path_is_contained(bad[i])) fail_msg("'%s' should not be contained", bad[i]);
    assert_false(aw_path_is_contained(NULL));

    char *p = aw_path_join("dir", "x");
    assert_string_equal(p, "dir/x");
    free(p);
    p = aw_path_join("dir/", "x");
    assert_string_equal(p, "dir/x");
    free(p);
}

static void test_atomic_files(void **state)
{
    fixture *fx = *state;
    char *sub = join(fx->dir, "a/b/c");
    aw_assert_status(aw_mkdir_p(sub), AW_OK, NULL);
    aw_assert_status(aw_mkdir_p(sub), AW_OK, NULL); /* exists: fine */
    char *path = join(sub, "f.txt");
    aw_assert_status(aw_write_file_atomic(path, "hello", 5), AW_OK, NULL);
    aw_assert_status(aw_write_file_atomic(path, "bye", 3), AW_OK, NULL); /* replaces */
    char *text;
    size_t n;
    aw_assert_status(aw_read_file(path, 16, &text, &n), AW_OK, NULL);
    assert_int_equal(n, 3);
    assert_string_equal(text, "bye");
    free(text);
    aw_assert_status(aw_read_file(path, 2, &text, &n), AW_ERR_IO, "too large");
    assert_null(text);
    aw_assert_status(aw_mkdir_p(path), AW_ERR_IO, "not a folder");

    /* abort: nothing under either name */
    char *other = join(sub, "g.txt");
    aw_atomic_file af;
    aw_assert_status(aw_atomic_open(other, &af), AW_OK, NULL);
    char *tmp = strdup(af.tmp_path);
    aw_assert_status(aw_atomic_write(&af, "x", 1), AW_OK, NULL);
    assert_int_equal(access(tmp, F_OK), 0);
    aw_atomic_abort(&af);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(access(other, F_OK), -1);
    aw_atomic_abort(&af); /* twice, and on a zeroed one: no effect */
    aw_atomic_file zero = {0};
    aw_atomic_abort(&zero);
    free(tmp);

    /* a folder that does not exist: AW_ERR_IO naming the path */
    char *nowhere = join(fx->dir, "missing/x.bin");
    aw_assert_status(aw_write_file_atomic(nowhere, "x", 1), AW_ERR_IO, nowhere);
    aw_assert_status(aw_write_file_atomic(nowhere, "x", 1), AW_ERR_IO,
                     "No such file or directory");
    aw_assert_status(aw_read_file(nowhere, 16, &text, &n), AW_ERR_IO, nowhere);

    free(nowhere);
    free(other);
    free(path);
    free(sub);
}

/* A full disk is reported as such, naming the file: write through the
 * atomic writer into /dev/full. */
static void test_atomic_write_enospc(void **state)
{
    fixture *fx = *state;
    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    if (fd < 0) skip();
    aw_atomic_file af = {.fd = fd, .tmp_path = join(fx->dir, "full.tmp"),
                         .final_path = join(fx->dir, "full.bin"), .written = 0};
    char *final_path = strdup(af.final_path);
    aw_assert_status(aw_atomic_write(&af, "data", 4), AW_ERR_IO, final_path);
    aw_assert_status(aw_atomic_write(&af, "data", 4), AW_ERR_IO, "No space left on device");
    aw_atomic_abort(&af);
    assert_int_equal(access(final_path, F_OK), -1);
    free(final_path);
}

static void test_pread_short(void **state)
{
    fixture *fx = *state;
    write_text(fx->dir, "short.bin", "abc");
    char *path = join(fx->dir, "short.bin");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    char buf[8];
    aw_assert_status(aw_pread_full(fd, buf, 3, 0, path), AW_OK, NULL);
    assert_memory_equal(buf, "abc", 3);
    aw_assert_status(aw_pread_full(fd, buf, 8, 0, path), AW_ERR_IO, path);
    aw_assert_status(aw_pread_full(fd, buf, 8, 0, path), AW_ERR_IO, "short read");
    aw_assert_status(aw_pread_full(fd, buf, 1, UINT64_MAX, path), AW_ERR_IO, "out of range");
    close(fd);
    free(path);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_single_file),
        T(test_sharded),
        T(test_write_index_format),
        T(test_index_shard_parent_path),
        T(test_index_shard_absolute_path),
        T(test_missing_shard),
        T(test_no_weights),
        T(test_no_weights_hf_pickle),
        T(test_no_weights_hf_pickle_sharded),
        T(test_no_weights_hf_dir_slash),
        T(test_no_weights_metaseq),
        T(test_no_weights_other_pickle),
        T(test_no_weights_tf_flax),
        T(test_missing_tensor),
        T(test_index_tensor_not_in_shard),
        T(test_shard_tensor_not_in_index),
        T(test_tensor_in_two_shards),
        T(test_index_malformed),
        T(test_bad_shard_header),
        cmocka_unit_test(test_path_is_contained),
        T(test_atomic_files),
        T(test_atomic_write_enospc),
        T(test_pread_short),
    };
#undef T
    return cmocka_run_group_tests_name("model_files", tests, NULL, NULL);
}
