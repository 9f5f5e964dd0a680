/*
 * test_sched.c - the planner's claims:
 *   - partitions are contiguous, cover every layer once, and are optimal
 *     (checked against an exhaustive search on small random instances);
 *   - the ends (embeddings, head) push blocks off the first and last stage
 *     when memory or time is bound by them;
 *   - the fewest stages that fit are chosen; forced stages/replicas are
 *     honoured and validated;
 *   - every refusal is AW_ERR_PLAN with a message whose suggestion is right
 *     (the suggested ranks or memory do make a plan, one less does not);
 *   - the real OPT shapes: OPT-175B on 16 ranks of 80 GB, opt-125m on one
 *     rank; the plans are printed in the test output;
 *   - the cost model: its formulas, Amdahl's scaling with threads, its
 *     refusals; plans timed by measured seconds (stage times and phases
 *     from the formulas of aw_sched.c, layouts balanced by them), and a
 *     printout that says which estimates are measured and which assumed.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_config.h"
#include "aw_plan.h"
#include "aw_sched.h"
#include "testutil.h"

#define GB 1000000000ull

static const aw_plan_rates unit_rates = {.flops_per_s = 1.0, .read_bytes_per_s = 1.0};

/* n uniform blocks of 1 s each (1 FLOP at 1 FLOP/s), 1 byte each, nothing else. */
static aw_plan_costs uniform(int n)
{
    aw_plan_costs c = {.n_layers = n, .block_bytes = 1, .block_flops = 1.0, .sample_blocks = 1};
    return c;
}

static int blocks_of(const aw_plan *p, int s) { return p->first_layer[s + 1] - p->first_layer[s]; }

/* What every plan must satisfy. */
static void check_invariants(const aw_plan *p, const aw_plan_costs *c, int world, uint64_t mem)
{
    assert_int_equal(p->world, world);
    assert_int_equal(p->stages * p->replicas, world);
    assert_true(p->stages >= 1 && p->stages <= c->n_layers);
    assert_int_equal(p->first_layer[0], 0);
    assert_int_equal(p->first_layer[p->stages], c->n_layers);
    for (int s = 0; s < p->stages; s++) {
        assert_true(blocks_of(p, s) >= 1);
        assert_true(p->mem_bytes[s] <= mem);
        assert_true(isfinite(p->seconds[s]) && p->seconds[s] >= 0);
    }
    /* every layer owned exactly once, by the stage whose range holds it */
    for (int l = 0; l < c->n_layers; l++) {
        int s = aw_plan_stage_of_layer(p, l);
        assert_true(s >= 0 && s < p->stages);
        assert_true(p->first_layer[s] <= l && l < p->first_layer[s + 1]);
    }
    assert_int_equal(aw_plan_stage_of_layer(p, -1), -1);
    assert_int_equal(aw_plan_stage_of_layer(p, c->n_layers), -1);
    for (int r = 0; r < world; r++) {
        assert_int_equal(aw_plan_stage_of(p, r) * p->replicas + aw_plan_replica_of(p, r), r);
        assert_true(aw_plan_stage_of(p, r) < p->stages);
    }
    assert_true(isfinite(p->total_seconds) && p->total_seconds > 0);
}

static double max_seconds(const aw_plan *p)
{
    double m = 0;
    for (int s = 0; s < p->stages; s++) m = p->seconds[s] > m ? p->seconds[s] : m;
    return m;
}

static void test_equal_blocks_balanced(void **state)
{
    (void)state;
    aw_plan_costs c = uniform(12);
    aw_plan p;
    aw_assert_status(aw_plan_make(&c, &unit_rates, 4, 1000, 4, 0, &p), AW_OK, NULL);
    check_invariants(&p, &c, 4, 1000);
    for (int s = 0; s < 4; s++) assert_int_equal(blocks_of(&p, s), 3);
    assert_int_equal(p.replicas, 1);
    assert_int_equal(aw_plan_stage_of_layer(&p, 0), 0);
    assert_int_equal(aw_plan_stage_of_layer(&p, 5), 1);
    assert_int_equal(aw_plan_stage_of_layer(&p, 11), 3);
    /* 13 blocks on 4 stages: one stage has 4, the others 3 */
    c = uniform(13);
    aw_assert_status(aw_plan_make(&c, &unit_rates, 4, 1000, 4, 0, &p), AW_OK, NULL);
    check_invariants(&p, &c, 4, 1000);
    assert_true(max_seconds(&p) == 4.0);
}

/* Ends of 3 bytes on the first and last stage, 5 bytes per rank: end
 * ranks hold two blocks, the middle ones four. */
static void test_ends_shift_blocks_when_memory_bound(void **state)
{
    (void)state;
    aw_plan_costs c = uniform(12);
    c.ends_bytes = 3;
    aw_plan p;
    aw_assert_status(aw_plan_make(&c, &unit_rates, 4, 5, 4, 0, &p), AW_OK, NULL);
    check_invariants(&p, &c, 4, 5);
    assert_int_equal(blocks_of(&p, 0), 2);
    assert_int_equal(blocks_of(&p, 1), 4);
    assert_int_equal(blocks_of(&p, 2), 4);
    assert_int_equal(blocks_of(&p, 3), 2);
    /* 4 bytes: 1 + 4 + 4 + 1 < 12 */
    aw_assert_status(aw_plan_make(&c, &unit_rates, 4, 4, 4, 0, &p), AW_ERR_PLAN, "4 stages do not fit");
    /* the same with per-rank buffers; every rank then sits at the budget */
    c.ends_bytes = 2;
    c.rank_fixed_bytes = 10;
    aw_assert_status(aw_plan_make(&c, &unit_rates, 4, 14, 4, 0, &p), AW_OK, NULL);
    check_invariants(&p, &c, 4, 14);
    assert_int_equal(blocks_of(&p, 0), 2);
    assert_int_equal(blocks_of(&p, 1), 4);
    assert_int_equal(blocks_of(&p, 2), 4);
    assert_int_equal(blocks_of(&p, 3), 2);
    assert_true(p.mem_bytes[0] == 14 && p.mem_bytes[1] == 14 && p.mem_bytes[3] == 14);
}

/* The head costs two blocks' time: the last stage takes fewer blocks. */
static void test_head_shifts_blocks_when_time_bound(void **state)
{
    (void)state;
    aw_plan_costs c = uniform(12);
    c.head_flops = 2.0;
    aw_plan p;
    aw_assert_status(aw_plan_make(&c, &unit_rates, 4, 1000, 4, 0, &p), AW_OK, NULL);
    check_invariants(&p, &c, 4, 1000);
    assert_int_equal(blocks_of(&p, 3), 2);
    assert_true(max_seconds(&p) == 4.0); /* the optimum: 3,3,4,2+head or alike */
    /* reads of the embeddings on the first and last stage */
    c = uniform(12);
    c.ends_read_bytes = 2;
    aw_assert_status(aw_plan_make(&c, &unit_rates, 4, 1000, 4, 0, &p), AW_OK, NULL);
    check_invariants(&p, &c, 4, 1000);
    assert_int_equal(blocks_of(&p, 0), 2);
    assert_int_equal(blocks_of(&p, 3), 2);
    assert_int_equal(blocks_of(&p, 1), 4);
}

/* Tiny deterministic generator for the exhaustive comparison. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

/* The estimate of a stage (as the header's model says), for the search. */
static double stage_seconds(const aw_plan_costs *c, int S, int R, int s, int k)
{
    int ends = S == 1 || s == 0 || s == S - 1, head = s == S - 1;
    return (k * c->block_flops + (head ? c->head_flops : 0)) / R +
           (double)k * (double)c->block_read_bytes + (ends ? (double)c->ends_read_bytes : 0);
}
static uint64_t stage_bytes(const aw_plan_costs *c, int S, int s, int k)
{
    int ends = S == 1 || s == 0 || s == S - 1, head = s == S - 1;
    return (uint64_t)k * c->block_bytes + c->rank_fixed_bytes + (ends ? c->ends_bytes : 0) +
           (head ? c->head_ws_bytes : 0);
}

/* Best max stage time over all compositions of n into S parts >= 1 that
 * fit mem; INFINITY if none. */
static double brute(const aw_plan_costs *c, int S, int R, uint64_t mem, int s, int left, double cur)
{
    if (s == S - 1) {
        if (stage_bytes(c, S, s, left) > mem) return INFINITY;
        double t = stage_seconds(c, S, R, s, left);
        return t > cur ? t : cur;
    }
    double best = INFINITY;
    for (int k = 1; k <= left - (S - 1 - s); k++) {
        if (stage_bytes(c, S, s, k) > mem) break;
        double t = stage_seconds(c, S, R, s, k);
        double v = brute(c, S, R, mem, s + 1, left - k, t > cur ? t : cur);
        if (v < best) best = v;
    }
    return best;
}

static void test_partition_is_optimal(void **state)
{
    (void)state;
    int checked = 0, refused = 0;
    for (int trial = 0; trial < 3000; trial++) {
        int n = 1 + (int)rnd(11), S = 1 + (int)rnd(n < 6 ? n : 6), R = 1 + (int)rnd(3);
        aw_plan_costs c = {.n_layers = n,
                           .block_bytes = 1 + rnd(5),
                           .ends_bytes = rnd(8),
                           .head_ws_bytes = rnd(3),
                           .rank_fixed_bytes = rnd(4),
                           .block_read_bytes = rnd(3),
                           .ends_read_bytes = rnd(4),
                           .block_flops = 1 + rnd(6),
                           .head_flops = rnd(10),
                           .sample_blocks = 1 + (int)rnd(4)};
        uint64_t mem = 4 + rnd(40);
        double want = brute(&c, S, R, mem, 0, n, 0);
        aw_plan p;
        aw_status st = aw_plan_make(&c, &unit_rates, S * R, mem, S, R, &p);
        if (isinf(want)) {
            aw_assert_status(st, AW_ERR_PLAN, NULL);
            refused++;
            continue;
        }
        aw_assert_status(st, AW_OK, NULL);
        check_invariants(&p, &c, S * R, mem);
        if (fabs(max_seconds(&p) - want) > 1e-9 * want) {
            fprintf(stderr, "trial %d: n=%d S=%d R=%d mem=%llu: got %g, best %g\n", trial, n, S, R,
                    (unsigned long long)mem, max_seconds(&p), want);
            fail();
        }
        checked++;
    }
    printf("partition optimal on %d random instances (%d correctly refused)\n", checked, refused);
    assert_true(checked > 1000 && refused > 50);
}

static void test_fewest_stages_chosen(void **state)
{
    (void)state;
    aw_plan_costs c = uniform(12);
    c.rank_fixed_bytes = 2;
    aw_plan p;
    /* everything fits one rank: 1 stage x 8 replicas */
    aw_assert_status(aw_plan_make(&c, &unit_rates, 8, 100, 0, 0, &p), AW_OK, NULL);
    check_invariants(&p, &c, 8, 100);
    assert_int_equal(p.stages, 1);
    assert_int_equal(p.replicas, 8);
    /* 8 bytes per rank: 6 blocks each, so 2 stages (3 would not divide 8) */
    aw_assert_status(aw_plan_make(&c, &unit_rates, 8, 8, 0, 0, &p), AW_OK, NULL);
    check_invariants(&p, &c, 8, 8);
    assert_int_equal(p.stages, 2);
    assert_int_equal(p.replicas, 4);
    /* 7 bytes: 5 blocks a rank, 3 stages needed; 8 ranks give 4 x 2 */
    aw_assert_status(aw_plan_make(&c, &unit_rates, 8, 7, 0, 0, &p), AW_OK, NULL);
    check_invariants(&p, &c, 8, 7);
    assert_int_equal(p.stages, 4);
    assert_int_equal(p.replicas, 2);
    /* replicas divide the arithmetic, not the reads */
    aw_plan p1, p2;
    c = uniform(12);
    c.block_read_bytes = 1;
    aw_assert_status(aw_plan_make(&c, &unit_rates, 1, 100, 0, 0, &p1), AW_OK, NULL);
    aw_assert_status(aw_plan_make(&c, &unit_rates, 2, 100, 0, 0, &p2), AW_OK, NULL);
    assert_true(p1.seconds[0] == 24.0 && p2.seconds[0] == 18.0);
    /* deterministic */
    aw_plan a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0xff, sizeof b);
    c.head_flops = 3;
    aw_assert_status(aw_plan_make(&c, &unit_rates, 6, 100, 6, 0, &a), AW_OK, NULL);
    aw_assert_status(aw_plan_make(&c, &unit_rates, 6, 100, 6, 0, &b), AW_OK, NULL);
    assert_memory_equal(a.first_layer, b.first_layer, sizeof a.first_layer[0] * 7);
    assert_true(a.total_seconds == b.total_seconds);
}

static void test_forced_layouts(void **state)
{
    (void)state;
    aw_plan_costs c = uniform(12);
    aw_plan p;
    aw_assert_status(aw_plan_make(&c, &unit_rates, 8, 100, 4, 0, &p), AW_OK, NULL);
    check_invariants(&p, &c, 8, 100);
    assert_int_equal(p.stages, 4);
    assert_int_equal(p.replicas, 2);
    aw_assert_status(aw_plan_make(&c, &unit_rates, 8, 100, 0, 4, &p), AW_OK, NULL);
    check_invariants(&p, &c, 8, 100);
    assert_int_equal(p.stages, 2);
    assert_int_equal(p.replicas, 4);
    aw_assert_status(aw_plan_make(&c, &unit_rates, 8, 100, 8, 1, &p), AW_OK, NULL);
    check_invariants(&p, &c, 8, 100);
    assert_int_equal(p.stages, 8);
    aw_assert_status(aw_plan_make(&c, &unit_rates, 12, 100, 12, 0, &p), AW_OK, NULL);
    check_invariants(&p, &c, 12, 100);
    for (int s = 0; s < 12; s++) assert_int_equal(blocks_of(&p, s), 1);

    aw_assert_status(aw_plan_make(&c, &unit_rates, 6, 100, 4, 0, &p), AW_ERR_PLAN,
                     "world of 6 ranks is not stages x replicas with --stages 4");
    aw_assert_status(aw_plan_make(&c, &unit_rates, 6, 100, 0, 4, &p), AW_ERR_PLAN,
                     "world of 6 ranks is not stages x replicas with --replicas 4");
    aw_assert_status(aw_plan_make(&c, &unit_rates, 6, 100, 4, 2, &p), AW_ERR_PLAN,
                     "world of 6 ranks is not --stages 4 x --replicas 2 (= 8)");
    c = uniform(2);
    aw_assert_status(aw_plan_make(&c, &unit_rates, 4, 100, 4, 0, &p), AW_ERR_PLAN,
                     "4 stages for 2 decoder blocks: at most 2 stages");
    c = uniform(2000);
    aw_assert_status(aw_plan_make(&c, &unit_rates, 2000, 1000000, 2000, 0, &p), AW_ERR_PLAN,
                     "2000 stages: at most 1024 stages");
    /* forced but too few for the memory: the message says what fits */
    c = uniform(12);
    c.rank_fixed_bytes = 2;
    aw_assert_status(aw_plan_make(&c, &unit_rates, 2, 6, 2, 0, &p), AW_ERR_PLAN,
                     "use at least 3 stages");
    /* bad arguments are not plan errors */
    aw_assert_status(aw_plan_make(&c, &unit_rates, 0, 6, 0, 0, &p), AW_ERR_ARG, "world of 0 ranks");
    aw_plan_rates bad = {.flops_per_s = 0, .read_bytes_per_s = 1};
    aw_assert_status(aw_plan_make(&c, &bad, 1, 6, 0, 0, &p), AW_ERR_ARG, "rates");
    bad.flops_per_s = NAN;
    aw_assert_status(aw_plan_make(&c, &bad, 1, 6, 0, 0, &p), AW_ERR_ARG, "rates");
    c.n_layers = 0;
    aw_assert_status(aw_plan_make(&c, &unit_rates, 1, 6, 0, 0, &p), AW_ERR_ARG, "0 decoder blocks");
}

/* Costs in whole GB so that messages can be predicted exactly. */
static void test_refusals_say_what_fits(void **state)
{
    (void)state;
    aw_plan_costs c = {.n_layers = 40, .block_bytes = 21700000000ull, .rank_fixed_bytes = 1 * GB,
                       .ends_bytes = 300000000ull, .block_flops = 1, .sample_blocks = 1};
    aw_plan p;
    /* one block + buffers + ends = 23.0 GB */
    aw_assert_status(aw_plan_make(&c, &unit_rates, 64, 16 * GB, 0, 0, &p), AW_ERR_PLAN,
                     "one decoder block needs 21.7 GB, 23 GB with the per-rank buffers, but --mem-per-rank "
                     "is 16 GB: raise --mem-per-rank to at least 23 GB (block plus per-rank buffers)");
    aw_assert_status(aw_plan_make(&c, &unit_rates, 40, 16 * GB, 40, 0, &p), AW_ERR_PLAN,
                     "one decoder block needs 21.7 GB");
    /* 10 GB blocks, 2 GB buffers, 1 GB ends: at 40 GB a middle rank holds
     * 3 blocks, an end rank 3; 40 blocks need 14 stages */
    c = (aw_plan_costs){.n_layers = 40, .block_bytes = 10 * GB, .rank_fixed_bytes = 2 * GB,
                        .ends_bytes = 1 * GB, .block_flops = 1, .sample_blocks = 1};
    aw_assert_status(aw_plan_make(&c, &unit_rates, 8, 40 * GB, 0, 0, &p), AW_ERR_PLAN,
                     "no layout of 8 ranks fits 40 GB per rank: the model needs at least 14 ranks of 40 GB "
                     "(or 53 GB per rank)");
    /* the suggestions hold: 14 ranks of 40 GB and 8 ranks of 53 GB fit; 13
     * ranks and 52 GB do not */
    aw_assert_status(aw_plan_make(&c, &unit_rates, 14, 40 * GB, 0, 0, &p), AW_OK, NULL);
    check_invariants(&p, &c, 14, 40 * GB);
    aw_assert_status(aw_plan_make(&c, &unit_rates, 13, 40 * GB, 0, 0, &p), AW_ERR_PLAN, "no layout of 13");
    aw_assert_status(aw_plan_make(&c, &unit_rates, 8, 53 * GB, 0, 0, &p), AW_OK, NULL);
    check_invariants(&p, &c, 8, 53 * GB);
    aw_assert_status(aw_plan_make(&c, &unit_rates, 8, 52 * GB, 0, 0, &p), AW_ERR_PLAN, "no layout of 8");
    /* enough ranks, but 41 has no divisor in 14..40: 42 ranks would do, or
     * 41 ranks holding the whole model each */
    aw_assert_status(aw_plan_make(&c, &unit_rates, 41, 40 * GB, 0, 0, &p), AW_ERR_PLAN,
                     "no layout of 41 ranks fits 40 GB per rank: stages must divide the ranks and number 14 "
                     "to 40 at this size: use 42 ranks (14 stages x 3 replicas) (or 403 GB per rank)");
    aw_assert_status(aw_plan_make(&c, &unit_rates, 42, 40 * GB, 0, 0, &p), AW_OK, NULL);
    assert_int_equal(p.stages, 14);
    assert_int_equal(p.replicas, 3);
    /* aw_plan_min_mem is the boundary */
    uint64_t m = 0;
    aw_assert_status(aw_plan_min_mem(&c, 8, &m), AW_OK, NULL);
    assert_true(m == 53 * GB);
    aw_assert_status(aw_plan_make(&c, &unit_rates, 8, m - 1, 8, 0, &p), AW_ERR_PLAN, "their ranks need 53 GB");
    aw_assert_status(aw_plan_min_mem(&c, 41, &m), AW_ERR_ARG, NULL);
}

static void print_plan(const char *name, const aw_model_config *cfg, const aw_plan *p, const aw_plan_costs *k,
                       uint64_t mem)
{
    printf("\n");
    aw_assert_status(aw_plan_print(stdout, name, cfg, p, k, mem), AW_OK, NULL);
    fflush(stdout);
}

static void test_costs_of_opt_shapes(void **state)
{
    (void)state;
    const aw_model_config *c = aw_shape_find("opt-175b");
    assert_non_null(c);
    aw_plan_costs k;
    aw_assert_status(aw_plan_costs_for(c, 2048, 1, 128, 16, &k), AW_OK, NULL);
    uint64_t d = 12288, f = 49152;
    assert_int_equal(k.n_layers, 96);
    assert_true(k.block_read_bytes == (4 * d * d + 2 * d * f + 9 * d + f) * 2);
    assert_true(k.ends_bytes == (50272 * d + 2050 * d + 2 * d) * 4);
    assert_true(k.head_ws_bytes == 128 * (d + 2 * 50272) * 4);
    assert_true(k.block_bytes > k.block_read_bytes * 3 / 2); /* fp16 + int8 + sums */
    assert_true(k.block_bytes < k.block_read_bytes * 3 / 2 + 200000000ull);
    assert_int_equal(k.sample_blocks, 128);
    /* 96 blocks' arithmetic over the calibration tokens is 2 x params x tokens
     * (docs/design.md: 9.2e16 for the model), plus attention and validation */
    double calib_only = 96 * (2.0 * (4 * d * d + 2 * d * f)) * 128 * 2048;
    assert_true(calib_only > 9.0e16 && calib_only < 9.4e16);
    assert_true(96 * k.block_flops > calib_only * 1.375 && 96 * k.block_flops < calib_only * 1.5);
    aw_assert_status(aw_plan_costs_for(c, 4096, 1, 128, 16, &k), AW_ERR_ARG, "2048 positions");
    aw_assert_status(aw_plan_costs_for(c, 2048, 0, 128, 16, &k), AW_ERR_ARG, "batch");
    aw_assert_status(aw_plan_costs_for(c, 2048, 1, 0, 16, &k), AW_ERR_ARG, "calibration");
}

static const aw_plan_rates h100 = {.flops_per_s = 400e12, .read_bytes_per_s = 2e9};

static void test_opt175b_plans(void **state)
{
    (void)state;
    const aw_model_config *c = aw_shape_find("opt-175b");
    aw_plan_costs k;
    aw_assert_status(aw_plan_costs_for(c, 2048, 1, 128, 16, &k), AW_OK, NULL);
    aw_plan *p = malloc(sizeof *p);
    assert_non_null(p);

    /* 16 ranks of 80 GB: the fewest stages that fit (8), the rest replicas */
    aw_assert_status(aw_plan_make(&k, &h100, 16, 80 * GB, 0, 0, p), AW_OK, NULL);
    check_invariants(p, &k, 16, 80 * GB);
    assert_int_equal(p->stages, 8);
    assert_int_equal(p->replicas, 2);
    for (int s = 0; s < 8; s++) assert_int_equal(blocks_of(p, s), 12);
    print_plan("opt-175b", c, p, &k, 80 * GB);

    /* 8 ranks of 80 GB: 12 blocks a rank (66 GB) plus the largest phase's
     * buffers (7.7 GB) and the ends on the first and last stage fit */
    aw_assert_status(aw_plan_make(&k, &h100, 8, 80 * GB, 0, 0, p), AW_OK, NULL);
    check_invariants(p, &k, 8, 80 * GB);
    assert_int_equal(p->stages, 8);
    for (int s = 0; s < 8; s++) assert_int_equal(blocks_of(p, s), 12);
    print_plan("opt-175b", c, p, &k, 80 * GB);

    /* 8 ranks of 70 GB do not; the suggestion is right both ways */
    aw_status st = aw_plan_make(&k, &h100, 8, 70 * GB, 0, 0, p);
    aw_assert_status(st, AW_ERR_PLAN,
                     "no layout of 8 ranks fits 70 GB per rank: the model needs at least 9 ranks");
    printf("\nopt-175b on 8 ranks of 70 GB: %s\n", aw_err_message());
    unsigned need_gb = 0;
    const char *o = strstr(aw_err_message(), "(or ");
    assert_non_null(o);
    assert_int_equal(sscanf(o, "(or %u GB per rank)", &need_gb), 1);
    aw_assert_status(aw_plan_make(&k, &h100, 9, 70 * GB, 0, 0, p), AW_OK, NULL);
    check_invariants(p, &k, 9, 70 * GB);
    aw_assert_status(aw_plan_make(&k, &h100, 8, need_gb * GB, 0, 0, p), AW_OK, NULL);
    check_invariants(p, &k, 8, need_gb * GB);
    assert_int_equal(p->stages, 8);
    print_plan("opt-175b", c, p, &k, need_gb * GB);
    aw_assert_status(aw_plan_make(&k, &h100, 8, (need_gb - 1) * GB, 0, 0, p), AW_ERR_PLAN, NULL);

    /* 8 ranks of 40 GB: refused, saying how many 40 GB ranks would do */
    aw_assert_status(aw_plan_make(&k, &h100, 8, 40 * GB, 0, 0, p), AW_ERR_PLAN,
                     "no layout of 8 ranks fits 40 GB per rank: the model needs at least ");
    printf("\nopt-175b on 8 ranks of 40 GB: %s\n", aw_err_message());
    unsigned n_ranks = 0;
    assert_int_equal(sscanf(strstr(aw_err_message(), "at least "), "at least %u ranks", &n_ranks), 1);
    aw_assert_status(aw_plan_make(&k, &h100, (int)n_ranks, 40 * GB, 0, 0, p), AW_OK, NULL);
    check_invariants(p, &k, (int)n_ranks, 40 * GB);
    aw_assert_status(aw_plan_make(&k, &h100, (int)n_ranks - 1, 40 * GB, (int)n_ranks - 1, 0, p),
                     AW_ERR_PLAN, NULL);

    /* 64 ranks (8 nodes x 8 GPUs): fewest stages that fit, the rest replicas */
    aw_assert_status(aw_plan_make(&k, &h100, 64, 80 * GB, 0, 0, p), AW_OK, NULL);
    check_invariants(p, &k, 64, 80 * GB);
    assert_int_equal(p->stages, 8);
    assert_int_equal(p->replicas, 8);
    print_plan("opt-175b", c, p, &k, 80 * GB);
    free(p);
}

static void test_every_shape_and_opt125m_on_one_rank(void **state)
{
    (void)state;
    aw_plan *p = malloc(sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < aw_shape_count(); i++) {
        const aw_model_config *c = aw_shape_at(i);
        if (aw_config_check_supported(c, c->name) != AW_OK) continue;
        aw_plan_costs k;
        aw_assert_status(aw_plan_costs_for(c, 2048, 1, 128, 16, &k), AW_OK, NULL);
        aw_assert_status(aw_plan_make(&k, &h100, 1, 4000 * GB, 0, 0, p), AW_OK, NULL);
        check_invariants(p, &k, 1, 4000 * GB);
        assert_int_equal(p->stages, 1);
        assert_int_equal(blocks_of(p, 0), c->num_hidden_layers);
    }
    const aw_model_config *c = aw_shape_find("opt-125m");
    aw_plan_costs k;
    aw_assert_status(aw_plan_costs_for(c, 2048, 1, 128, 16, &k), AW_OK, NULL);
    aw_assert_status(aw_plan_make(&k, &h100, 1, 80 * GB, 0, 0, p), AW_OK, NULL);
    check_invariants(p, &k, 1, 80 * GB);
    assert_int_equal(p->stages, 1);
    assert_int_equal(p->replicas, 1);
    assert_int_equal(p->first_layer[1], 12);
    /* one stage holds the ends once */
    assert_true(p->mem_bytes[0] == 12 * k.block_bytes + k.rank_fixed_bytes + k.ends_bytes + k.head_ws_bytes);
    print_plan("opt-125m", c, p, &k, 80 * GB);

    /* the printout names the layers and stages */
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_non_null(m);
    aw_assert_status(aw_plan_print(m, "opt-125m", c, p, &k, 80 * GB), AW_OK, NULL);
    fclose(m);
    assert_non_null(strstr(buf, "12 layers over 1 stage"));
    assert_non_null(strstr(buf, "world: 1 rank = 1 stage x 1 replica"));
    assert_non_null(strstr(buf, "400 TFLOP/s"));
    free(buf);
    free(p);
}

/* A model whose every constant is a round number, to check the formulas. */
static const aw_cost_model round_model = {
    .machine = "test CPU",
    .fit_threads = 2,
    .calib_s_per_flop = 1e-9,
    .calib_s_per_value = 1e-6,
    .quant_s_per_param = 1e-3,
    .quant_s_per_param_root_d = 1e-4,
    .valid_s_per_flop = 2e-9,
    .valid_s_per_value = 3e-6,
    .head_s_per_flop = 4e-9,
    .head_s_per_value = 1e-6,
    .parallel = {[AW_PHASE_CALIBRATE] = 1.0, [AW_PHASE_QUANTIZE] = 0.0, [AW_PHASE_VALIDATE] = 0.5},
};

static void test_cost_model_formulas(void **state)
{
    (void)state;
    aw_block_work w = {.calib_flops = 1e9, .calib_values = 1e6, .params = 1000, .params_root_d = 5000,
                       .valid_flops = 1e9, .valid_values = 1e6, .head_flops = 1e9, .head_values = 1e6};
    aw_block_seconds b;
    /* at the fitted threads: the plain sums */
    aw_assert_status(aw_cost_block_seconds(&round_model, &w, 2, &b), AW_OK, NULL);
    assert_float_equal(b.calibrate, 1.0 + 1.0, 1e-12);
    assert_float_equal(b.quantize, 1.0 + 0.5, 1e-12);
    assert_float_equal(b.validate, 2.0 + 3.0, 1e-12);
    assert_float_equal(b.head, 4.0 + 1.0, 1e-12);
    /* 4 threads: a fully parallel phase halves, a serial one stays, a half
     * parallel one is 0.5 + 0.5 / 2 of itself (Amdahl) */
    aw_assert_status(aw_cost_block_seconds(&round_model, &w, 4, &b), AW_OK, NULL);
    assert_float_equal(b.calibrate, 1.0, 1e-12);
    assert_float_equal(b.quantize, 1.5, 1e-12);
    assert_float_equal(b.validate, 5.0 * 0.75, 1e-12);
    assert_float_equal(b.head, 5.0 * 0.75, 1e-12);
    /* 1 thread: twice the parallel part */
    aw_assert_status(aw_cost_block_seconds(&round_model, &w, 1, &b), AW_OK, NULL);
    assert_float_equal(b.calibrate, 4.0, 1e-12);
    assert_float_equal(b.validate, 5.0 * 1.5, 1e-12);
    /* a method's products in quantization at the calibration's rate and
     * parallel share; a weight-only scheme's fp32 validation products at
     * that rate less the INT8 products' share */
    aw_block_work wm = w;
    wm.quant_flops = 2e9;
    wm.quant_params = 500;
    wm.valid_fp_flops = 1e9;
    aw_assert_status(aw_cost_block_seconds(&round_model, &wm, 2, &b), AW_OK, NULL);
    assert_float_equal(b.quantize, 1.5, 1e-12); /* the W8A8 part, repeated for the report's layers */
    assert_float_equal(b.quant_method, 2.0 + 0.5, 1e-12);
    assert_float_equal(b.validate, 5.0 + 1.0 * (1.0 - 1.0 / AW_COST_INT8_SPEEDUP), 1e-12);
    aw_assert_status(aw_cost_block_seconds(&round_model, &wm, 4, &b), AW_OK, NULL);
    assert_float_equal(b.quant_method, 1.0 + 0.5, 1e-12); /* products parallel, roundings serial here */
    assert_float_equal(b.validate, (5.0 + 1.0 * (1.0 - 1.0 / AW_COST_INT8_SPEEDUP)) * 0.75, 1e-12);
    assert_float_equal(b.shard, 0.0, 0.0);
    wm.shard_bytes = 1e9;
    aw_assert_status(aw_cost_block_seconds(&round_model, &wm, 4, &b), AW_OK, NULL);
    assert_float_equal(b.shard, 1e9 * AW_COST_SHARD_S_PER_BYTE, 1e-12); /* one thread: any count */
    wm.quant_flops = -1;
    aw_assert_status(aw_cost_block_seconds(&round_model, &wm, 2, &b), AW_ERR_ARG, "non-negative");
    /* no work, no time */
    aw_block_work none = {0};
    aw_assert_status(aw_cost_block_seconds(&round_model, &none, 2, &b), AW_OK, NULL);
    assert_true(b.calibrate == 0 && b.quantize == 0 && b.validate == 0 && b.head == 0);
    /* refusals */
    aw_assert_status(aw_cost_block_seconds(&round_model, &w, 0, &b), AW_ERR_ARG, "0 threads");
    aw_block_work neg = w;
    neg.valid_flops = -1;
    aw_assert_status(aw_cost_block_seconds(&round_model, &neg, 2, &b), AW_ERR_ARG, "non-negative");
    neg.valid_flops = NAN;
    aw_assert_status(aw_cost_block_seconds(&round_model, &neg, 2, &b), AW_ERR_ARG, "non-negative");
    aw_assert_status(aw_cost_block_seconds(NULL, &w, 2, &b), AW_ERR_ARG, NULL);
    /* the compiled-in CPU model is a fit: positive rates, shares in [0, 1] */
    assert_non_null(aw_cost_cpu.machine);
    assert_true(aw_cost_cpu.machine[0] != '\0');
    assert_true(aw_cost_cpu.fit_threads >= 1);
    assert_true(aw_cost_cpu.calib_s_per_flop > 0 && aw_cost_cpu.valid_s_per_flop > 0);
    /* the head's cost may fit to FLOPs, to logits or both (non-negative least squares) */
    assert_true(aw_cost_cpu.head_s_per_flop >= 0 && aw_cost_cpu.head_s_per_value >= 0);
    assert_true(aw_cost_cpu.head_s_per_flop + aw_cost_cpu.head_s_per_value > 0);
    assert_true(aw_cost_cpu.quant_s_per_param >= 0);
    for (int ph = AW_PHASE_CALIBRATE; ph < AW_PHASE_COUNT; ph++)
        assert_true(aw_cost_cpu.parallel[ph] >= 0 && aw_cost_cpu.parallel[ph] <= 1);
}

/* The work split by phase adds up to the FLOPs the GPU estimate uses. */
static void test_work_by_phase(void **state)
{
    (void)state;
    const aw_model_config *c = aw_shape_find("opt-125m");
    aw_plan_costs k;
    aw_assert_status(aw_plan_costs_for(c, 128, 8, 64, 16, &k), AW_OK, NULL);
    double d = 768, f = 3072, T = 128;
    double lin = 4 * d * d + 2 * d * f, per_token = 2 * lin + 4 * T * d;
    assert_float_equal(k.work.params, lin, 0);
    assert_float_equal(k.work.params_root_d, lin * sqrt(d), 1e-3);
    assert_float_equal(k.work.calib_flops, per_token * 64 * T, 1);
    assert_float_equal(k.work.valid_flops, per_token * 3 * 16 * T, 1);
    assert_float_equal(k.work.calib_values, 64 * T * (3 * d + f), 0);
    assert_float_equal(k.work.valid_values, 16 * T * (3 * d + f), 0);
    assert_true(fabs(k.work.calib_flops + k.work.valid_flops - k.block_flops) <= 1e-9 * k.block_flops);
    assert_true(k.work.head_flops == k.head_flops);
    assert_float_equal(k.work.head_values, 2 * 16 * T * 50272, 0);
    assert_int_equal(k.timed, 0); /* a run's plan: FLOPs, as before */
    /* the report draws the first, middle and last layer */
    assert_int_equal(k.n_shown, 3);
    assert_int_equal(k.shown[0], 0);
    assert_int_equal(k.shown[1], 6);
    assert_int_equal(k.shown[2], 11);
}

/* Plans timed by measured seconds: stage times, phases, balance. */
static void test_timed_plans(void **state)
{
    (void)state;
    aw_plan p;
    /* 6 blocks, 2 stages x 2 replicas: calibrate 4 s, validate 2 s (split
     * by replicas), quantize 1 s (not split), read 1 B at 1 B/s; head 6 s */
    aw_plan_costs c = uniform(6);
    c.block_read_bytes = 1;
    c.timed = 1;
    c.block_s = (aw_block_seconds){.calibrate = 4, .quantize = 1, .validate = 2, .head = 6};
    c.sample_blocks = 2;
    aw_assert_status(aw_plan_make(&c, &unit_rates, 4, 1000, 2, 2, &p), AW_OK, NULL);
    check_invariants(&p, &c, 4, 1000);
    /* a block costs (4 + 2) / 2 + 1 + 1 = 5 s, the head 3 s: 3 + 3 blocks
     * (15 s, 18 s) beat 4 + 2 (20 s, 13 s) */
    assert_int_equal(blocks_of(&p, 0), 3);
    assert_int_equal(blocks_of(&p, 1), 3);
    assert_float_equal(p.seconds[0], 15.0, 1e-12);
    assert_float_equal(p.seconds[1], 18.0, 1e-12);
    assert_int_equal(p.phase_stage, 1);
    assert_float_equal(p.phase_seconds[AW_PHASE_LOAD], 3.0, 1e-12);
    assert_float_equal(p.phase_seconds[AW_PHASE_CALIBRATE], 3 * 4 / 2.0, 1e-12);
    assert_float_equal(p.phase_seconds[AW_PHASE_QUANTIZE], 3.0, 1e-12);
    assert_float_equal(p.phase_seconds[AW_PHASE_VALIDATE], (3 * 2 + 6) / 2.0, 1e-12);
    /* fill: stage 0's streamed work per block of samples, 3 x 6 / 2 */
    assert_float_equal(p.fill_seconds, 9.0, 1e-12);
    assert_float_equal(p.total_seconds, 18.0 + 9.0, 1e-12);
    /* the report's layers cost a quantize time more on the stage holding them */
    c.n_shown = 3;
    c.shown[0] = 0, c.shown[1] = 3, c.shown[2] = 5;
    aw_assert_status(aw_plan_make(&c, &unit_rates, 4, 1000, 2, 2, &p), AW_OK, NULL);
    assert_int_equal(p.phase_stage, 1);
    assert_float_equal(p.phase_seconds[AW_PHASE_QUANTIZE], 3.0 + 2.0, 1e-12);
    assert_float_equal(p.seconds[1], 20.0, 1e-12);
    assert_float_equal(p.seconds[0], 16.0, 1e-12);
    c.n_shown = 0;
    /* a heavier head moves a block off the last stage */
    c.block_s.head = 20;
    aw_assert_status(aw_plan_make(&c, &unit_rates, 4, 1000, 2, 2, &p), AW_OK, NULL);
    assert_int_equal(blocks_of(&p, 0), 4);
    assert_int_equal(blocks_of(&p, 1), 2);
    /* one stage: no pipeline fill */
    aw_assert_status(aw_plan_make(&c, &unit_rates, 1, 1000, 0, 0, &p), AW_OK, NULL);
    assert_float_equal(p.fill_seconds, 0.0, 0);
    assert_float_equal(p.total_seconds, 6 * (4 + 2 + 1 + 1) + 20, 1e-9);
    /* refused: measured seconds that are not numbers */
    c.block_s.validate = NAN;
    aw_assert_status(aw_plan_make(&c, &unit_rates, 1, 1000, 0, 0, &p), AW_ERR_ARG,
                     "measured seconds");
}

/* The printout names each phase's source: measured on the CPU, assumed on the GPU. */
static void test_printout_says_measured_or_assumed(void **state)
{
    (void)state;
    const aw_model_config *c = aw_shape_find("opt-125m");
    aw_plan *p = malloc(sizeof *p);
    assert_non_null(p);
    aw_plan_costs k;
    aw_assert_status(aw_plan_costs_for(c, 128, 8, 64, 16, &k), AW_OK, NULL);
    /* the GPU: FLOPs at the assumed rate */
    aw_assert_status(aw_plan_make(&k, &h100, 1, 80 * GB, 0, 0, p), AW_OK, NULL);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_non_null(m);
    aw_assert_status(aw_plan_print(m, "opt-125m", c, p, &k, 80 * GB), AW_OK, NULL);
    fclose(m);
    assert_non_null(strstr(buf, "cuda backend"));
    assert_non_null(strstr(buf, "  calibrate "));
    assert_non_null(strstr(buf, "(assumed: 400 TFLOP/s per GPU, not yet measured)"));
    assert_non_null(strstr(buf, "  quantize ")); /* shown, and said to be uncounted */
    assert_non_null(strstr(buf, "the quantization on the GPU not counted"));
    assert_null(strstr(buf, "measured: fitted"));
    /* phases on the GPU: the FLOPs of each at 400 TFLOP/s */
    assert_float_equal(p->phase_seconds[AW_PHASE_CALIBRATE], 12 * k.work.calib_flops / 400e12, 1e-15);
    assert_float_equal(p->phase_seconds[AW_PHASE_VALIDATE], (12 * k.work.valid_flops + k.head_flops) / 400e12,
                       1e-15);
    /* quantization: the shards' compression on the host only, for W8A8 */
    assert_float_equal(p->phase_seconds[AW_PHASE_QUANTIZE], 12 * k.work.shard_bytes * AW_COST_SHARD_S_PER_BYTE,
                       1e-12);
    free(buf);
    /* a method's products at the assumed rate, once per block, and in the
     * stage's time (the phases add up to it) */
    aw_plan_costs kg = k;
    kg.work.quant_flops = 4e12;
    aw_assert_status(aw_plan_make(&kg, &h100, 1, 80 * GB, 0, 0, p), AW_OK, NULL);
    assert_float_equal(p->phase_seconds[AW_PHASE_QUANTIZE],
                       12 * (4e12 / 400e12 + k.work.shard_bytes * AW_COST_SHARD_S_PER_BYTE), 1e-12);
    double sum = 0;
    for (int ph = 0; ph < AW_PHASE_COUNT; ph++) sum += p->phase_seconds[ph];
    assert_float_equal(p->seconds[0], sum, 1e-9);

    /* the CPU: the fitted model at 2 threads */
    k.timed = 1;
    k.threads = 2;
    aw_assert_status(aw_cost_block_seconds(&aw_cost_cpu, &k.work, 2, &k.block_s), AW_OK, NULL);
    aw_assert_status(aw_plan_make(&k, &h100, 1, 80 * GB, 0, 0, p), AW_OK, NULL);
    assert_float_equal(p->phase_seconds[AW_PHASE_CALIBRATE], 12 * k.block_s.calibrate, 1e-9);
    assert_float_equal(p->phase_seconds[AW_PHASE_VALIDATE], 12 * k.block_s.validate + k.block_s.head, 1e-9);
    /* quantize: the W8A8 part again for the report's layers, the shard once per block */
    assert_true(k.block_s.shard > 0);
    assert_float_equal(p->phase_seconds[AW_PHASE_QUANTIZE],
                       (12 + k.n_shown) * k.block_s.quantize + 12 * (k.block_s.quant_method + k.block_s.shard), 1e-9);
    buf = NULL;
    m = open_memstream(&buf, &len);
    assert_non_null(m);
    aw_assert_status(aw_plan_print(m, "opt-125m", c, p, &k, 80 * GB), AW_OK, NULL);
    fclose(m);
    char want[256];
    snprintf(want, sizeof want, "(measured: fitted on %s, %d thread", aw_cost_cpu.machine, aw_cost_cpu.fit_threads);
    assert_non_null(strstr(buf, want));
    assert_non_null(strstr(buf, "cpu backend, 2 threads per rank"));
    assert_non_null(strstr(buf, "work of one decoder block: calibrate"));
    assert_null(strstr(buf, "TFLOP/s"));
    /* each of the three phases carries the label */
    int n = 0;
    for (const char *q = buf; (q = strstr(q, "(measured: fitted on")) != NULL; q++) n++;
    assert_int_equal(n, 3);
    printf("\n%s", buf);
    free(buf);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_blocks_balanced),
        cmocka_unit_test(test_ends_shift_blocks_when_memory_bound),
        cmocka_unit_test(test_head_shifts_blocks_when_time_bound),
        cmocka_unit_test(test_partition_is_optimal),
        cmocka_unit_test(test_fewest_stages_chosen),
        cmocka_unit_test(test_forced_layouts),
        cmocka_unit_test(test_refusals_say_what_fits),
        cmocka_unit_test(test_costs_of_opt_shapes),
        cmocka_unit_test(test_opt175b_plans),
        cmocka_unit_test(test_every_shape_and_opt125m_on_one_rank),
        cmocka_unit_test(test_cost_model_formulas),
        cmocka_unit_test(test_work_by_phase),
        cmocka_unit_test(test_timed_plans),
        cmocka_unit_test(test_printout_says_measured_or_assumed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
