/*
 * test_report.c - the report's parts that need no model run:
 *   - progress on a 96-block plan, on a simulated clock (OPT-175B-shaped
 *     unit times): at most floor(T / 10 s) + 1 lines per phase of T
 *     seconds, 10 s or more apart, however many blocks; a line per block
 *     with every_s = 0; the time left exact for steady units and the lag
 *     counted; the JSON-lines log holds every step;
 *   - the report JSON of an OPT-175B shape (96 blocks, d = 12288) stays
 *     small: its size is printed and bounded;
 *   - report.html from reports with and without the equalization section,
 *     and a comparison of two, has no empty plot; the same JSON gives the
 *     same bytes;
 *   - --report-layers checks and the default layers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_fs.h"
#include "aw_html.h"
#include "aw_progress.h"
#include "aw_ranges.h"
#include "aw_run.h"
#include "testutil.h"

/* ---- progress on a simulated clock ------------------------------------------ */

static double fake_clock(void *ctx) { return *(double *)ctx; }

/* A deterministic jitter in [1 - a, 1 + a]. */
static double jitter(unsigned *state, double a)
{
    *state = *state * 1103515245u + 12345u;
    return 1.0 + a * (2.0 * ((*state >> 8) & 0xffff) / 65535.0 - 1.0);
}

typedef struct {
    const char *phase, *unit;
    long units;
    double secs_per_unit, tokens_per_unit;
} sim_phase;

/* Count the lines of each phase in text (lines "aweq-dist: <phase>: ..."). */
static int lines_of(const char *text, const char *phase)
{
    char key[64];
    snprintf(key, sizeof key, "aweq-dist: %s: ", phase);
    int n = 0;
    for (const char *p = text; (p = strstr(p, key)); p += strlen(key)) n++;
    return n;
}

/* Run the phases on the fake clock; out gets the lines; returns the total seconds. */
static double simulate(const sim_phase *ph, int n, double every_s, FILE *out, const char *log, double *phase_secs)
{
    double now = 0;
    unsigned rng = 7;
    aw_progress_opts o;
    aw_progress_defaults(&o);
    o.every_s = every_s;
    o.out = out;
    o.bar = 0;
    o.log_path = log;
    o.clock = fake_clock;
    o.clock_ctx = &now;
    aw_progress *p = NULL;
    assert_int_equal(aw_progress_create(&o, &p), AW_OK);
    for (int i = 0; i < n; i++) {
        double t0 = now;
        aw_progress_begin(p, ph[i].phase, ph[i].units, ph[i].unit, ph[i].tokens_per_unit, 0);
        for (long k = 1; k <= ph[i].units; k++) {
            now += ph[i].secs_per_unit * jitter(&rng, 0.3);
            aw_progress_step(p, k);
        }
        aw_progress_end(p);
        phase_secs[i] = now - t0;
    }
    aw_progress_destroy(p);
    return now;
}

/* OPT-175B on one rank holding all 96 blocks, at the rates aw_run's plan
 * assumes for CPU ranks (50 GFLOP/s, 1 GB/s reads): a block is 3.6 GB in
 * F16 and 2 x 1.81e9 FLOP a token; 128 calibration and 32 held-out
 * sequences of 2048 tokens in blocks of 8. And the same at the GPU rates
 * of `aweq-dist plan` (400 TFLOP/s, 2 GB/s), where phases are short. */
static void test_progress_96_blocks(void **state)
{
    (void)state;
    const double tok = 8 * 2048.0, flop_tok = 2 * 1.81e9 * 96;
    for (int gpu = 0; gpu < 2; gpu++) {
        double fl = gpu ? 400e12 : 50e9, rd = gpu ? 2e9 : 1e9;
        sim_phase ph[5] = {
            {"load", "blocks", 96, 3.6e9 / rd, 0},
            {"calibrate", "blocks of samples", 16, tok * flop_tok / fl, tok},
            {"quantize", "blocks", 96, gpu ? 2.0 : 30.0, 0},
            {"validate", "blocks of samples", 4, 2.5 * tok * flop_tok / fl, tok},
            {"write", "blocks", 96, 1.8e9 / rd, 0},
        };
        char *dir = aw_test_tmpdir(), *log = aw_path_join(dir, "log.jsonl");
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        double secs[5];
        simulate(ph, 5, 10.0, out, log, secs);
        fclose(out);
        for (int i = 0; i < 5; i++) {
            int lines = lines_of(buf, ph[i].phase), cap = (int)floor(secs[i] / 10.0) + 1;
            printf("%s rates: %-9s %3ld %-17s %9.0f s: %3d lines (cap %d)\n", gpu ? "GPU" : "CPU", ph[i].phase,
                   ph[i].units, ph[i].unit, secs[i], lines, cap);
            assert_true(lines >= 1);
            assert_true(lines <= cap);
        }
        /* every step is in the log, printed or not */
        size_t n = 0;
        uint8_t *lb = aw_test_read_bytes(log, &n);
        int steps = 0;
        for (const char *p = (const char *)lb; (p = strstr(p, "\"event\":\"progress\"")); p++) steps++;
        assert_int_equal(steps, 96 + 16 + 96 + 4 + 96);
        free(lb);
        free(buf);
        free(log);
        aw_test_rmtree(dir);
        free(dir);
    }
}

/* Lines are 10 s or more apart within a phase (the closing line aside). */
static void test_progress_spacing(void **state)
{
    (void)state;
    double now = 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    aw_progress_opts o;
    aw_progress_defaults(&o);
    o.out = out;
    o.bar = 0;
    o.clock = fake_clock;
    o.clock_ctx = &now;
    aw_progress *p = NULL;
    assert_int_equal(aw_progress_create(&o, &p), AW_OK);
    aw_progress_begin(p, "calibrate", 1000, "blocks of samples", 100, 0);
    double last = -1e9;
    int printed = 0;
    for (long k = 1; k <= 1000; k++) {
        now += 0.37;
        int before = aw_progress_lines(p);
        aw_progress_step(p, k);
        if (aw_progress_lines(p) > before) {
            assert_true(now - last >= 10.0);
            last = now;
            printed++;
        }
    }
    aw_progress_end(p);
    aw_progress_destroy(p);
    fclose(out);
    /* steps of 0.37 s: a line every 28 steps (10.36 s) */
    assert_int_equal(printed, 35);
    assert_int_equal(lines_of(buf, "calibrate"), printed + 1);
    free(buf);
}

/* every_s = 0: a line per step; the time left is exact for steady units,
 * and counts the lag. */
static void test_progress_every_step_and_eta(void **state)
{
    (void)state;
    double now = 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    aw_progress_opts o;
    aw_progress_defaults(&o);
    o.every_s = 0;
    o.out = out;
    o.bar = 0;
    o.clock = fake_clock;
    o.clock_ctx = &now;
    aw_progress *p = NULL;
    assert_int_equal(aw_progress_create(&o, &p), AW_OK);
    aw_progress_begin(p, "validate", 8, "blocks of samples", 1024, 3);
    for (long k = 1; k <= 8; k++) {
        now += 2.0;
        aw_progress_step(p, k);
        assert_true(fabs(aw_progress_eta(p) - 2.0 * (double)(8 - k + 3)) < 1e-9);
    }
    aw_progress_end(p);
    aw_progress_destroy(p);
    fclose(out);
    assert_int_equal(lines_of(buf, "validate"), 9);
    assert_non_null(strstr(buf, "aweq-dist: validate: 4/8 blocks of samples (50%), 512 tokens/s, 8.0 s elapsed, 14 s left"));
    assert_non_null(strstr(buf, "aweq-dist: validate: 8/8 blocks of samples in 16 s (512 tokens/s)"));
    free(buf);
    /* NULL is a valid, silent reporter */
    aw_progress_begin(NULL, "x", 1, "u", 0, 0);
    aw_progress_step(NULL, 1);
    aw_progress_end(NULL);
    aw_progress_note(NULL, "%s", "nothing");
    aw_progress_event(NULL, "e", json_object());
    char t[32];
    assert_string_equal(aw_progress_fmt_secs(3725, t, sizeof t), "1 h 02 min");
    assert_string_equal(aw_progress_fmt_secs(200, t, sizeof t), "3 min 20 s");
}

static void test_progress_bad_log(void **state)
{
    (void)state;
    aw_progress_opts o;
    aw_progress_defaults(&o);
    o.log_path = "/nonexistent-dir/log.jsonl";
    aw_progress *p = (aw_progress *)1;
    aw_assert_status(aw_progress_create(&o, &p), AW_ERR_IO, "/nonexistent-dir/log.jsonl");
    assert_null(p);
}

/* ---- the report of an OPT-175B shape ----------------------------------------------- */

/* A result as rank 0 holds it after an OPT-175B run, with made-up but
 * realistically spread values (lengths of the printed numbers matter). */
static void fake_result(const aw_model_config *c, aw_run_result *r)
{
    memset(r, 0, sizeof *r);
    r->cfg = *c;
    r->n_layers = c->num_hidden_layers;
    int n_lin = aw_arch_of(c)->n_lin;
    r->layers = calloc((size_t)r->n_layers * n_lin, sizeof *r->layers);
    r->depth = malloc((size_t)r->n_layers * AW_DEPTH_LEN * sizeof(float));
    r->n_shown = aw_range_default_layers(r->n_layers, r->shown);
    size_t per = aw_range_detail_len(c);
    r->detail = malloc((size_t)r->n_shown * per * sizeof(float));
    assert_non_null(r->layers);
    assert_non_null(r->depth);
    assert_non_null(r->detail);
    unsigned rng = 11;
    for (int i = 0; i < r->n_layers * n_lin; i++) {
        aw_layer_metrics *m = &r->layers[i];
        m->rel_err = 0.02 * jitter(&rng, 0.5);
        m->sqnr_db = -20 * log10(m->rel_err);
        m->bias_err = 1e-3 * jitter(&rng, 0.5);
        m->bias_err_nobc = 2e-3 * jitter(&rng, 0.5);
        m->w_step = (float)(1e-3 * jitter(&rng, 0.5));
        m->x_step = (float)(3e-2 * jitter(&rng, 0.5));
    }
    for (int i = 0; i < r->n_layers * AW_DEPTH_LEN; i++) r->depth[i] = (float)(10 * jitter(&rng, 0.9));
    for (size_t i = 0; i < (size_t)r->n_shown * per; i++) r->detail[i] = (float)(3 * jitter(&rng, 0.99));
    /* top channel numbers are channel indices */
    for (int k = 0; k < r->n_shown; k++) {
        float *o = r->detail + (size_t)k * per;
        for (int t = 0; t < AW_TAP_COUNT; t++) {
            int in = aw_range_tap_in(c, (aw_tap_id)t);
            o += 4 * (size_t)aw_range_bins(in);
            for (int j = 0; j < AW_RANGE_TOP; j++, o += AW_TOP_FIELDS) o[0] = (float)(j * 97 % in);
        }
    }
    r->e2e.n_pred = 32 * 2047;
    r->e2e.nll_fp = r->e2e.n_pred * 2.2;
    r->e2e.nll_q = r->e2e.n_pred * 2.21;
    r->e2e.kl = r->e2e.n_pred * 0.01;
    r->e2e.top1_agree = r->e2e.n_pred * 0.95;
    r->calib_seqs = 128;
    r->holdout_seqs = 32;
    r->seq_len = 2048;
}

static void test_report_size_opt175b(void **state)
{
    (void)state;
    const aw_model_config *c = aw_shape_find("opt-175b");
    assert_non_null(c);
    aw_run_result r;
    fake_result(c, &r);
    aw_run_opts o;
    aw_run_defaults(&o);
    o.model_dir = "/models/opt-175b";
    char *json = NULL;
    assert_int_equal(aw_report_json(&o, &r, &json), AW_OK);
    size_t n = strlen(json);
    json_t *rep = json_loads(json, 0, NULL);
    assert_non_null(rep);
    json_t *eq = json_object_get(rep, "equalization");
    size_t n_eq = 0;
    char *eq_text = json_dumps(eq, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    n_eq = strlen(eq_text);
    free(eq_text);
    char *html = NULL;
    assert_int_equal(aw_html_render(&rep, NULL, NULL, 1, &html), AW_OK);
    printf("OPT-175B shape (96 blocks, d = 12288, ffn = 49152): aweq_report.json %.0f KB, of which equalization "
           "%.0f KB (%d layers shown, <= %d bins a fold point); report.html %.0f KB\n",
           n / 1e3, n_eq / 1e3, r.n_shown, AW_RANGE_BINS, strlen(html) / 1e3);
    assert_true(n < 2000000);
    assert_true(strlen(html) < 2000000);
    /* 96 layers in the depth summary, 3 shown at most 512 bins each */
    assert_int_equal(json_array_size(json_object_get(eq, "depth")), 96);
    json_t *tap = json_array_get(json_object_get(json_array_get(json_object_get(eq, "layers"), 0), "taps"), 3);
    assert_int_equal(json_array_size(json_object_get(tap, "x_before")), 512);
    assert_int_equal(json_integer_value(json_object_get(tap, "channels_per_bin")), 96);
    free(html);
    free(json);
    json_decref(rep);
    aw_run_result_free(&r);
}

/* ---- report.html ------------------------------------------------------------------ */

/* Plots in html, and how many of them hold no data mark. */
static void count_plots(const char *html, int *plots, int *empty)
{
    *plots = *empty = 0;
    for (const char *p = html; (p = strstr(p, "<svg class=\"plot")); p++) {
        const char *end = strstr(p, "</svg>");
        assert_non_null(end);
        (*plots)++;
        const char *m = strstr(p, "class=\"mark");
        if (!m || m > end) (*empty)++;
    }
}

static void test_html_render(void **state)
{
    (void)state;
    const aw_model_config *c = aw_shape_find("opt-125m");
    aw_run_result r;
    fake_result(c, &r);
    aw_run_opts o;
    aw_run_defaults(&o);
    o.model_dir = "/models/opt-125m";
    char *json = NULL, *html = NULL, *html2 = NULL;
    assert_int_equal(aw_report_json(&o, &r, &json), AW_OK);
    json_t *rep = json_loads(json, 0, NULL);
    assert_non_null(rep);
    assert_int_equal(aw_html_render(&rep, NULL, NULL, 1, &html), AW_OK);
    assert_int_equal(aw_html_render(&rep, NULL, NULL, 1, &html2), AW_OK);
    assert_string_equal(html, html2);
    int plots, empty;
    count_plots(html, &plots, &empty);
    assert_int_equal(empty, 0);
    /* 3 shown layers x 4 fold points, 2 depth plots, 4 outlier plots */
    assert_int_equal(plots, 12 + 2 + 4);
    assert_non_null(strstr(html, AW_HTML_RUN_BEGIN));
    assert_non_null(strstr(html, "none here"));
    assert_null(strstr(html, "<script"));
    free(html);
    free(html2);
    /* an older report (no equalization section): said so, nothing empty */
    json_object_del(rep, "equalization");
    assert_int_equal(aw_html_render(&rep, NULL, NULL, 1, &html), AW_OK);
    count_plots(html, &plots, &empty);
    assert_int_equal(empty, 0);
    assert_int_equal(plots, 2);
    assert_non_null(strstr(html, "no per-channel ranges"));
    free(html);
    /* a comparison of two, one of them RTN */
    json_t *rtn = json_deep_copy(rep);
    json_object_set_new(rtn, "method", json_string("rtn"));
    json_t *reps[2] = {rep, rtn}, *runs[2] = {NULL, NULL};
    const char *names[2] = {"out/aweq", "out/rtn"};
    assert_int_equal(aw_html_render(reps, runs, names, 2, &html), AW_OK);
    count_plots(html, &plots, &empty);
    assert_int_equal(empty, 0);
    assert_true(plots >= 4);
    assert_non_null(strstr(html, "out/rtn"));
    assert_non_null(strstr(html, ">RTN<"));
    free(html);
    /* not a report */
    json_t *bad = json_array();
    aw_assert_status(aw_html_render(&bad, NULL, NULL, 1, &html), AW_ERR_ARG, "not a JSON object");
    json_decref(bad);
    json_decref(rtn);
    json_decref(rep);
    free(json);
    aw_run_result_free(&r);
}

static void test_report_layers(void **state)
{
    (void)state;
    int l[AW_RANGE_MAX_LAYERS];
    assert_int_equal(aw_range_default_layers(12, l), 3);
    assert_int_equal(l[0], 0);
    assert_int_equal(l[1], 6);
    assert_int_equal(l[2], 11);
    assert_int_equal(aw_range_default_layers(1, l), 1);
    assert_int_equal(aw_range_default_layers(2, l), 2);
    assert_int_equal(l[1], 1);
    int ok[3] = {0, 5, 9}, late[2] = {3, 12}, twice[2] = {4, 4};
    assert_int_equal(aw_range_check_layers(ok, 3, 12), AW_OK);
    aw_assert_status(aw_range_check_layers(late, 2, 12), AW_ERR_ARG, "layer 12 does not exist");
    aw_assert_status(aw_range_check_layers(twice, 2, 12), AW_ERR_ARG, "increasing order");
    /* bins: every channel up to 512, then maxima over bins */
    assert_int_equal(aw_range_bins(384), 384);
    assert_int_equal(aw_range_per_bin(768), 2);
    assert_int_equal(aw_range_bins(768), 384);
    assert_int_equal(aw_range_bins(49152), 512);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_96_blocks),  cmocka_unit_test(test_progress_spacing),
        cmocka_unit_test(test_progress_every_step_and_eta), cmocka_unit_test(test_progress_bad_log),
        cmocka_unit_test(test_report_size_opt175b), cmocka_unit_test(test_html_render),
        cmocka_unit_test(test_report_layers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
