/* aw_sched.c - layer-to-stage plans (see aw_sched.h).
 *
 * The model, per rank of stage s holding k_s blocks (R replicas):
 *   memory  = k_s * block_bytes + rank_fixed_bytes
 *             + ends_bytes      on the first and on the last stage (once if
 *                               one stage is both)
 *             + head_ws_bytes   on the last stage
 *   seconds = k_s * (block_flops / R / flops_per_s + block_read_bytes / read_bytes_per_s)
 *             + ends_read_bytes / read_bytes_per_s   first and last stage
 *             + head_flops / R / flops_per_s         last stage
 * Replicas split the blocks of samples, so they divide the arithmetic; each
 * replica reads its stage's weights itself, so reads are not divided.
 * With measured seconds (costs->timed, a fitted cost model):
 *   seconds = k_s * ((calibrate + validate) / R + quantize + block_read_bytes / read_bytes_per_s)
 *             + the same ends reads, + head / R on the last stage
 * (each replica quantizes all of its stage's blocks), and the first
 * replica one quantize time more per layer the report draws.
 *
 * Partition: every stage gets at least one block; blocks are uniform, so a
 * stage's cost only depends on its kind (first, middle, last, or the only
 * one) and its count. The smallest achievable largest cost C* is one of the
 * values k * t_block + extra(kind); "does C fit" (each stage takes as many
 * blocks as C and its memory allow; the sum must reach n_layers) is monotone
 * in C, so a binary search over k per kind finds C* exactly, in the same
 * floating-point expressions the check uses. The surplus blocks are then
 * taken from the costliest stages (ties: the one with more memory, then the
 * lower index), which keeps the result C* and moves blocks off the ends.
 *
 * Total time = slowest stage + pipeline fill. Fill: the first block of
 * samples crosses every stage before the last one is busy; its time in
 * stage s < S - 1 is the stage's arithmetic over the blocks of samples it
 * streams, k_s * block_flops / flops_per_s / sample_blocks (0 for one
 * stage). Validation work is counted into the calibration blocks there: a
 * small overestimate.
 */
#include "aw_sched.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "aw_cost_cpu.h"
#include "aw_status.h"

/* ---- cost models ------------------------------------------------------------ */

const aw_cost_model aw_cost_cpu = {
    .machine = AW_COST_CPU_MACHINE,
    .fit_threads = AW_COST_CPU_THREADS,
    .calib_s_per_flop = AW_COST_CPU_CALIB_S_PER_FLOP,
    .calib_s_per_value = AW_COST_CPU_CALIB_S_PER_VALUE,
    .quant_s_per_param = AW_COST_CPU_QUANT_S_PER_PARAM,
    .quant_s_per_param_root_d = AW_COST_CPU_QUANT_S_PER_PARAM_ROOT_D,
    .valid_s_per_flop = AW_COST_CPU_VALID_S_PER_FLOP,
    .valid_s_per_value = AW_COST_CPU_VALID_S_PER_VALUE,
    .head_s_per_flop = AW_COST_CPU_HEAD_S_PER_FLOP,
    .head_s_per_value = AW_COST_CPU_HEAD_S_PER_VALUE,
    .parallel = {[AW_PHASE_CALIBRATE] = AW_COST_CPU_PARALLEL_CALIBRATE,
                 [AW_PHASE_QUANTIZE] = AW_COST_CPU_PARALLEL_QUANTIZE,
                 [AW_PHASE_VALIDATE] = AW_COST_CPU_PARALLEL_VALIDATE},
};

/* Amdahl's law: the factor on a phase measured at fit threads, run at n. */
static double thread_factor(const aw_cost_model *m, aw_phase ph, int n)
{
    double p = m->parallel[ph];
    p = p < 0 ? 0 : p > 1 ? 1 : p;
    int f = m->fit_threads > 0 ? m->fit_threads : 1;
    return (1.0 - p) + p * (double)f / (double)n;
}

static int work_ok(double v) { return v >= 0 && isfinite(v); }

aw_status aw_cost_block_seconds(const aw_cost_model *m, const aw_block_work *w, int threads, aw_block_seconds *out)
{
    AW_RETURN_IF(!m || !w || !out, AW_ERR_ARG, "aw_cost_block_seconds: NULL argument");
    AW_RETURN_IF(threads < 1, AW_ERR_ARG, "cost model: %d threads: expected at least 1", threads);
    AW_RETURN_IF(!(work_ok(w->calib_flops) && work_ok(w->calib_values) && work_ok(w->params) &&
                   work_ok(w->params_root_d) &&
                   work_ok(w->valid_flops) && work_ok(w->valid_values) && work_ok(w->head_flops) &&
                   work_ok(w->head_values) && work_ok(w->quant_flops) && work_ok(w->quant_params) &&
                   work_ok(w->valid_fp_flops) && work_ok(w->shard_bytes)),
                 AW_ERR_ARG, "cost model: work must be non-negative and finite");
    double fc = thread_factor(m, AW_PHASE_CALIBRATE, threads);
    double fq = thread_factor(m, AW_PHASE_QUANTIZE, threads);
    double fv = thread_factor(m, AW_PHASE_VALIDATE, threads);
    out->calibrate = (w->calib_flops * m->calib_s_per_flop + w->calib_values * m->calib_s_per_value) * fc;
    out->quantize = (w->params * m->quant_s_per_param + w->params_root_d * m->quant_s_per_param_root_d) * fq;
    out->quant_method = w->quant_flops * m->calib_s_per_flop * fc + w->quant_params * m->quant_s_per_param * fq;
    out->shard = w->shard_bytes * AW_COST_SHARD_S_PER_BYTE;
    out->validate = (w->valid_flops * m->valid_s_per_flop + w->valid_values * m->valid_s_per_value) * fv;
    /* the fit's validation ran INT8 products at about AW_COST_INT8_SPEEDUP
     * times the sgemm rate (bench_kernels): fp32 products instead cost the
     * difference more */
    out->validate += w->valid_fp_flops * m->calib_s_per_flop * (1.0 - 1.0 / AW_COST_INT8_SPEEDUP) * fv;
    out->head = (w->head_flops * m->head_s_per_flop + w->head_values * m->head_s_per_value) * fv;
    return AW_OK;
}

/* ---- partitions --------------------------------------------------------------- */

typedef enum { KIND_FIRST = 0, KIND_MID, KIND_LAST, KIND_ONLY, KIND_COUNT } stage_kind;

static stage_kind kind_of(int s, int S)
{
    if (S == 1) return KIND_ONLY;
    if (s == 0) return KIND_FIRST;
    if (s == S - 1) return KIND_LAST;
    return KIND_MID;
}

/* How many stages of each kind a layout of S stages has. */
static void kind_counts(int S, int n[KIND_COUNT])
{
    for (int t = 0; t < KIND_COUNT; t++) n[t] = 0;
    if (S == 1) {
        n[KIND_ONLY] = 1;
        return;
    }
    n[KIND_FIRST] = n[KIND_LAST] = 1;
    n[KIND_MID] = S - 2;
}

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return (a != 0 && b > UINT64_MAX / a) ? UINT64_MAX : a * b;
}

/* Bytes a rank of this kind holds besides its blocks. */
static uint64_t kind_mem(const aw_plan_costs *c, stage_kind t)
{
    uint64_t m = c->rank_fixed_bytes;
    if (t != KIND_MID) m = sat_add(m, c->ends_bytes);
    if (t == KIND_LAST || t == KIND_ONLY) m = sat_add(m, c->head_ws_bytes);
    return m;
}

/* Most blocks a rank of this kind holds under mem (at most n_layers). */
static int kind_cap(const aw_plan_costs *c, stage_kind t, uint64_t mem)
{
    uint64_t base = kind_mem(c, t);
    if (base >= mem) return 0;
    if (c->block_bytes == 0) return c->n_layers;
    uint64_t k = (mem - base) / c->block_bytes;
    return k > (uint64_t)c->n_layers ? c->n_layers : (int)k;
}

/* Memory of a rank of kind t with k blocks. */
static uint64_t stage_mem(const aw_plan_costs *c, stage_kind t, int k)
{
    return sat_add(sat_mul((uint64_t)k, c->block_bytes), kind_mem(c, t));
}

/* 1 if S stages can hold the blocks under mem. */
static int mem_fits(const aw_plan_costs *c, int S, uint64_t mem)
{
    int cnt[KIND_COUNT];
    kind_counts(S, cnt);
    uint64_t sum = 0;
    for (int t = 0; t < KIND_COUNT; t++) {
        if (!cnt[t]) continue;
        int cap = kind_cap(c, (stage_kind)t, mem);
        if (cap < 1) return 0;
        sum += (uint64_t)cap * (uint64_t)cnt[t];
    }
    return sum >= (uint64_t)c->n_layers;
}

static uint64_t min_mem(const aw_plan_costs *c, int S)
{
    /* the last kind holding every block fits for any S <= n_layers */
    uint64_t hi = stage_mem(c, S == 1 ? KIND_ONLY : KIND_LAST, c->n_layers), lo = 0;
    while (lo < hi) { /* smallest mem in [lo, hi] that fits */
        uint64_t mid = lo + (hi - lo) / 2;
        if (mem_fits(c, S, mid)) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* What a partition of S stages with R replicas is scored with. */
typedef struct {
    const aw_plan_costs *c;
    int S;
    int cnt[KIND_COUNT];
    int cap[KIND_COUNT];       /* memory bound on blocks per kind */
    double t_block;            /* seconds of one block on one rank (the partition's unit) */
    double extra[KIND_COUNT];  /* seconds a kind pays besides its blocks */
} part_ctx;

/* The one expression of a stage's cost: every comparison uses it. */
static double kind_cost(const part_ctx *p, int t, int k) { return (double)k * p->t_block + p->extra[t]; }

/* Largest k <= cap[t] with kind_cost(t, k) <= C (0 if none). */
static int kind_kmax(const part_ctx *p, int t, double C)
{
    int lo = 0, hi = p->cap[t];
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (kind_cost(p, t, mid) <= C) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static int cost_fits(const part_ctx *p, double C)
{
    uint64_t sum = 0;
    for (int t = 0; t < KIND_COUNT; t++) {
        if (!p->cnt[t]) continue;
        int k = kind_kmax(p, t, C);
        if (k < 1) return 0;
        sum += (uint64_t)k * (uint64_t)p->cnt[t];
    }
    return sum >= (uint64_t)p->c->n_layers;
}

static double rate_time(double work, double rate) { return rate > 0 ? work / rate : 0.0; }

/* Partition into S stages with R replicas under mem: 1 and the plan's
 * first_layer filled, or 0 if the blocks do not fit. */
static int partition(const aw_plan_costs *c, const aw_plan_rates *r, int S, int R, uint64_t mem,
                     aw_plan *out)
{
    if (S < 1 || S > c->n_layers || S > AW_PLAN_MAX_STAGES || !mem_fits(c, S, mem)) return 0;
    part_ctx p = {.c = c, .S = S};
    kind_counts(S, p.cnt);
    for (int t = 0; t < KIND_COUNT; t++) p.cap[t] = kind_cap(c, (stage_kind)t, mem);
    double head = rate_time(c->head_flops / R, r->flops_per_s);
    double ends_rd = rate_time((double)c->ends_read_bytes, r->read_bytes_per_s);
    /* a block's share of a stage: the terms of stage_phases */
    p.t_block = rate_time(c->block_flops / R + c->work.quant_flops, r->flops_per_s) +
                c->work.shard_bytes * AW_COST_SHARD_S_PER_BYTE +
                rate_time((double)c->block_read_bytes, r->read_bytes_per_s);
    if (c->timed) {
        head = c->block_s.head / R;
        p.t_block = (c->block_s.calibrate + c->block_s.validate) / R + c->block_s.quantize +
                    c->block_s.quant_method + c->block_s.shard +
                    rate_time((double)c->block_read_bytes, r->read_bytes_per_s);
    }
    p.extra[KIND_FIRST] = ends_rd;
    p.extra[KIND_MID] = 0;
    p.extra[KIND_LAST] = p.extra[KIND_ONLY] = ends_rd + head;
    if (!(p.t_block > 0)) {
        /* blocks that cost nothing: balance their count, memory still bounds */
        p.t_block = 1;
        for (int t = 0; t < KIND_COUNT; t++) p.extra[t] = 0;
    }

    /* C* = the smallest candidate k * t_block + extra(kind) that fits */
    double best = -1;
    for (int t = 0; t < KIND_COUNT; t++) {
        if (!p.cnt[t]) continue;
        int lo = 1, hi = p.cap[t];
        if (hi < 1 || !cost_fits(&p, kind_cost(&p, t, hi))) continue;
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            if (cost_fits(&p, kind_cost(&p, t, mid))) hi = mid;
            else lo = mid + 1;
        }
        double v = kind_cost(&p, t, lo);
        if (best < 0 || v < best) best = v;
    }
    if (best < 0) return 0; /* cannot happen when mem_fits: the largest candidate fits */

    int k[AW_PLAN_MAX_STAGES];
    int sum = 0;
    for (int s = 0; s < S; s++) {
        k[s] = kind_kmax(&p, kind_of(s, S), best);
        sum += k[s];
    }
    while (sum > c->n_layers) {
        int pick = -1;
        for (int s = 0; s < S; s++) {
            if (k[s] <= 1) continue;
            if (pick < 0) { pick = s; continue; }
            int ts = kind_of(s, S), tp = kind_of(pick, S);
            double cs = kind_cost(&p, ts, k[s]), cp = kind_cost(&p, tp, k[pick]);
            uint64_t ms = stage_mem(c, (stage_kind)ts, k[s]), mp = stage_mem(c, (stage_kind)tp, k[pick]);
            if (cs > cp || (cs == cp && ms > mp)) pick = s;
        }
        if (pick < 0) return 0; /* every stage at one block: S > n_layers, excluded above */
        k[pick]--;
        sum--;
    }
    out->first_layer[0] = 0;
    for (int s = 0; s < S; s++) out->first_layer[s + 1] = out->first_layer[s] + k[s];
    return 1;
}

/* The report's shown layers that stage s holds. */
static int shown_in(const aw_plan_costs *c, const aw_plan *p, int s)
{
    int n = 0;
    for (int i = 0; i < c->n_shown && i < AW_PLAN_MAX_SHOWN; i++)
        n += c->shown[i] >= p->first_layer[s] && c->shown[i] < p->first_layer[s + 1];
    return n;
}

/* Time of stage s of p by phase (the terms of the top comment). */
static void stage_phases(const aw_plan_costs *c, const aw_plan_rates *r, const aw_plan *p, int s,
                         double ph[AW_PHASE_COUNT])
{
    stage_kind t = kind_of(s, p->stages);
    int k = p->first_layer[s + 1] - p->first_layer[s], R = p->replicas;
    int has_head = t == KIND_LAST || t == KIND_ONLY, has_ends = t != KIND_MID;
    double bytes = (double)k * (double)c->block_read_bytes + (has_ends ? (double)c->ends_read_bytes : 0.0);
    ph[AW_PHASE_LOAD] = rate_time(bytes, r->read_bytes_per_s);
    if (c->timed) {
        ph[AW_PHASE_CALIBRATE] = k * c->block_s.calibrate / R;
        ph[AW_PHASE_QUANTIZE] =
            (k + shown_in(c, p, s)) * c->block_s.quantize + k * (c->block_s.quant_method + c->block_s.shard);
        ph[AW_PHASE_VALIDATE] = (k * c->block_s.validate + (has_head ? c->block_s.head : 0.0)) / R;
    } else {
        /* FLOPs only: quantization's element-wise work is not counted,
         * its matrix products are */
        ph[AW_PHASE_CALIBRATE] = rate_time(k * c->work.calib_flops / R, r->flops_per_s);
        ph[AW_PHASE_QUANTIZE] =
            rate_time(k * c->work.quant_flops, r->flops_per_s) + k * c->work.shard_bytes * AW_COST_SHARD_S_PER_BYTE;
        ph[AW_PHASE_VALIDATE] =
            rate_time((k * c->work.valid_flops + (has_head ? c->head_flops : 0.0)) / R, r->flops_per_s);
    }
}

/* Memory and time estimates of a partitioned plan (see the top comment). */
static void estimate(const aw_plan_costs *c, const aw_plan_rates *r, aw_plan *p)
{
    double slowest = 0, fill = 0;
    p->phase_stage = 0;
    for (int s = 0; s < p->stages; s++) {
        stage_kind t = kind_of(s, p->stages);
        int k = p->first_layer[s + 1] - p->first_layer[s];
        int has_head = t == KIND_LAST || t == KIND_ONLY, has_ends = t != KIND_MID;
        p->mem_bytes[s] = stage_mem(c, t, k);
        if (c->timed) {
            double ph[AW_PHASE_COUNT];
            stage_phases(c, r, p, s, ph);
            p->seconds[s] = ph[AW_PHASE_LOAD] + ph[AW_PHASE_CALIBRATE] + ph[AW_PHASE_QUANTIZE] + ph[AW_PHASE_VALIDATE];
        } else {
            /* the FLOPs of the streamed phases (block_flops: calibration's,
             * validation's), the method's own products, the shards, the reads */
            double bytes = (double)k * (double)c->block_read_bytes + (has_ends ? (double)c->ends_read_bytes : 0.0);
            double flops = k * c->block_flops + (has_head ? c->head_flops : 0.0);
            p->seconds[s] = rate_time(flops / p->replicas + k * c->work.quant_flops, r->flops_per_s) +
                            k * c->work.shard_bytes * AW_COST_SHARD_S_PER_BYTE + rate_time(bytes, r->read_bytes_per_s);
        }
        /* the streamed phases, one rank's share of a block of samples */
        if (s < p->stages - 1) {
            double one = c->timed ? k * (c->block_s.calibrate + c->block_s.validate)
                                  : rate_time(k * c->block_flops + (has_head ? c->head_flops : 0.0), r->flops_per_s);
            fill += one / (c->sample_blocks > 0 ? c->sample_blocks : 1);
        }
        if (p->seconds[s] > slowest) {
            slowest = p->seconds[s];
            p->phase_stage = s;
        }
    }
    stage_phases(c, r, p, p->phase_stage, p->phase_seconds);
    p->fill_seconds = fill;
    p->total_seconds = slowest + fill;
}

/* Decimal GB for messages, as a "%.*f" pair: one decimal unless whole
 * ("21.7", "80"). */
#define GB_FMT "%.*f"
#define GB_ARG(bytes) ((bytes) % 1000000000u ? 1 : 0), ((double)(bytes) / 1e9)
/* Whole GB, rounded up: what a suggestion must ask for to be enough. */
static unsigned long long gb_up(uint64_t bytes)
{
    return (unsigned long long)(bytes / 1000000000u + (bytes % 1000000000u != 0));
}

static int max_stages(const aw_plan_costs *c)
{
    return c->n_layers < AW_PLAN_MAX_STAGES ? c->n_layers : AW_PLAN_MAX_STAGES;
}

/* Fewest stages (any world) whose ranks fit mem; 0 if none. */
static int min_stages(const aw_plan_costs *c, uint64_t mem)
{
    for (int S = 1; S <= max_stages(c); S++)
        if (mem_fits(c, S, mem)) return S;
    return 0;
}

/* The budget the smallest plan of any world needs: one block on the last
 * stage (with the ends and the head's scratch) when there are enough stages. */
static aw_status check_block_fits(const aw_plan_costs *c, uint64_t mem)
{
    uint64_t need = min_mem(c, max_stages(c));
    if (need <= mem) return AW_OK;
    return AW_FAIL(AW_ERR_PLAN,
                   "one decoder block needs " GB_FMT " GB, " GB_FMT " GB with the per-rank buffers, but "
                   "--mem-per-rank is " GB_FMT " GB: raise --mem-per-rank to at least %llu GB (block plus "
                   "per-rank buffers)",
                   GB_ARG(c->block_bytes), GB_ARG(need), GB_ARG(mem), gb_up(need));
}

static aw_status check_inputs(const aw_plan_costs *c, const aw_plan_rates *r, int world, uint64_t mem,
                              int stages_req, int replicas_req, const aw_plan *out)
{
    AW_RETURN_IF(!c || !r || !out, AW_ERR_ARG, "aw_plan_make: NULL argument");
    AW_RETURN_IF(c->n_layers < 1, AW_ERR_ARG, "plan: %d decoder blocks: expected at least 1", c->n_layers);
    AW_RETURN_IF(world < 1, AW_ERR_ARG, "plan: world of %d ranks: expected at least 1", world);
    AW_RETURN_IF(mem == 0, AW_ERR_ARG, "plan: memory per rank is 0");
    AW_RETURN_IF(stages_req < 0 || replicas_req < 0, AW_ERR_ARG,
                 "plan: negative stages (%d) or replicas (%d)", stages_req, replicas_req);
    /* NaN fails every comparison: written so that it is refused */
    AW_RETURN_IF(!(r->flops_per_s > 0 && r->flops_per_s < 1e300 && r->read_bytes_per_s > 0 &&
                   r->read_bytes_per_s < 1e300),
                 AW_ERR_ARG, "plan: rates must be positive and finite (%g FLOP/s, %g B/s)", r->flops_per_s,
                 r->read_bytes_per_s);
    AW_RETURN_IF(!(c->block_flops >= 0 && c->block_flops < 1e300 && c->head_flops >= 0 &&
                   c->head_flops < 1e300),
                 AW_ERR_ARG, "plan: FLOP counts must be non-negative and finite");
    AW_RETURN_IF(c->timed && !(work_ok(c->block_s.calibrate) && work_ok(c->block_s.quantize) &&
                               work_ok(c->block_s.validate) && work_ok(c->block_s.head) &&
                               work_ok(c->block_s.quant_method) && work_ok(c->block_s.shard)),
                 AW_ERR_ARG, "plan: measured seconds must be non-negative and finite");
    AW_RETURN_IF(!(work_ok(c->work.calib_flops) && work_ok(c->work.valid_flops) && work_ok(c->work.quant_flops) &&
                   work_ok(c->work.shard_bytes)),
                 AW_ERR_ARG, "plan: work counts must be non-negative and finite");
    return AW_OK;
}

/* Auto layout failed: say how many ranks of this size would do, or what
 * size these ranks would need. */
static aw_status no_layout(const aw_plan_costs *c, int world, uint64_t mem)
{
    int smin = min_stages(c, mem), smax = max_stages(c);
    uint64_t need = UINT64_MAX; /* least budget of any layout of this world */
    for (int S = 1; S <= smax && S <= world; S++)
        if (world % S == 0) {
            uint64_t m = min_mem(c, S);
            if (m < need) need = m;
        }
    if (world < smin)
        return AW_FAIL(AW_ERR_PLAN,
                       "no layout of %d ranks fits " GB_FMT " GB per rank: the model needs at least %d "
                       "ranks of " GB_FMT " GB (or %llu GB per rank)",
                       world, GB_ARG(mem), smin, GB_ARG(mem), gb_up(need));
    /* enough ranks, but no divisor of the world in [smin, smax] */
    int64_t w2 = (int64_t)world + 1; /* ends by smin * ceil((world + 1) / smin) */
    int s2 = smin;
    for (;; w2++) {
        for (s2 = smin; s2 <= smax && w2 % s2; s2++) continue;
        if (s2 <= smax) break;
    }
    return AW_FAIL(AW_ERR_PLAN,
                   "no layout of %d ranks fits " GB_FMT " GB per rank: stages must divide the ranks and number %d "
                   "to %d at this size: use %lld ranks (%d stages x %lld replicas) (or %llu GB per rank)",
                   world, GB_ARG(mem), smin, smax, (long long)w2, s2, (long long)(w2 / s2), gb_up(need));
}

aw_status aw_plan_make(const aw_plan_costs *c, const aw_plan_rates *r, int world, uint64_t mem_per_rank,
                       int stages_req, int replicas_req, aw_plan *out)
{
    AW_TRY(check_inputs(c, r, world, mem_per_rank, stages_req, replicas_req, out));
    int S = 0, R = 0;
    if (stages_req && replicas_req) {
        AW_RETURN_IF((int64_t)stages_req * replicas_req != world, AW_ERR_PLAN,
                     "world of %d ranks is not --stages %d x --replicas %d (= %lld)", world, stages_req,
                     replicas_req, (long long)stages_req * replicas_req);
        S = stages_req;
    } else if (stages_req) {
        AW_RETURN_IF(world % stages_req, AW_ERR_PLAN,
                     "world of %d ranks is not stages x replicas with --stages %d", world, stages_req);
        S = stages_req;
    } else if (replicas_req) {
        AW_RETURN_IF(world % replicas_req, AW_ERR_PLAN,
                     "world of %d ranks is not stages x replicas with --replicas %d", world, replicas_req);
        S = world / replicas_req;
    }
    if (S) {
        AW_RETURN_IF(S > c->n_layers, AW_ERR_PLAN, "%d stages for %d decoder blocks: at most %d stages", S,
                     c->n_layers, c->n_layers);
        AW_RETURN_IF(S > AW_PLAN_MAX_STAGES, AW_ERR_PLAN, "%d stages: at most %d stages", S, AW_PLAN_MAX_STAGES);
        R = world / S;
        AW_TRY(check_block_fits(c, mem_per_rank));
        if (!partition(c, r, S, R, mem_per_rank, out)) {
            int smin = min_stages(c, mem_per_rank);
            return AW_FAIL(AW_ERR_PLAN,
                           "%d stages do not fit " GB_FMT " GB per rank: their ranks need %llu GB; raise "
                           "--mem-per-rank to at least %llu GB or use at least %d stages",
                           S, GB_ARG(mem_per_rank), gb_up(min_mem(c, S)), gb_up(min_mem(c, S)), smin);
        }
    } else {
        /* fewest stages first: the rest of the world become replicas */
        for (int s = 1; s <= world && s <= max_stages(c); s++) {
            if (world % s) continue;
            if (partition(c, r, s, world / s, mem_per_rank, out)) {
                S = s;
                break;
            }
        }
        if (!S) {
            AW_TRY(check_block_fits(c, mem_per_rank));
            return no_layout(c, world, mem_per_rank);
        }
        R = world / S;
    }
    out->world = world;
    out->stages = S;
    out->replicas = R;
    out->rates = *r;
    estimate(c, r, out);
    return AW_OK;
}

aw_status aw_plan_min_mem(const aw_plan_costs *c, int stages, uint64_t *out)
{
    AW_RETURN_IF(!c || !out, AW_ERR_ARG, "aw_plan_min_mem: NULL argument");
    AW_RETURN_IF(c->n_layers < 1 || stages < 1 || stages > max_stages(c), AW_ERR_ARG,
                 "aw_plan_min_mem: %d stages for %d decoder blocks", stages, c->n_layers);
    *out = min_mem(c, stages);
    return AW_OK;
}

int aw_plan_stage_of_layer(const aw_plan *p, int layer)
{
    if (!p || p->stages < 1 || layer < p->first_layer[0] || layer >= p->first_layer[p->stages]) return -1;
    int lo = 0, hi = p->stages - 1; /* last stage whose first layer <= layer */
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (p->first_layer[mid] <= layer) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}
