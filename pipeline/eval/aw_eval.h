/*
 * aw_eval.h - an independent evaluator of a written checkpoint: the
 * perplexity of the model exactly as a compressed-tensors folder describes
 * it (docs/checkpoint-format.md: config.json's quantization_config; W8A8
 * "int-quantized": per quantized Linear an I8 `weight`, a single
 * `weight_scale` and `input_scale`; weight-only "pack-quantized": packed
 * I32 `weight_packed`, `weight_scale` per row and group, `weight_shape`,
 * `weight_zero_point` when asymmetric; dynamic activations
 * "int-quantized": I8 `weight`, `weight_scale` per row and group, I8
 * `weight_zero_point` when asymmetric; any with a float `bias`;
 * LayerNorms, embeddings, positions and final LayerNorm as floats). It reads only config.json, the safetensors and a token file, never
 * aweq_report.json nor anything the quantizer kept, so that agreement with
 * the pipeline's own end-to-end perplexity shows the checkpoint holds what was
 * validated. Sequences are selected, batched and summed as aw_run() does, so
 * the two numbers are comparable bit for bit.
 */
#ifndef AW_EVAL_H
#define AW_EVAL_H

#include <stdint.h>

#include "aw_comm.h"
#include "aw_config.h"
#include "aw_model.h"
#include "aw_model_files.h"
#include "aw_scheme.h"
#include "aw_status.h"

/* Logit rows computed at once: the pipeline's chunk, which keeps the order of
 * summation (and the BLAS shapes) the same as its validation. */
#define AW_EVAL_LOGIT_CHUNK 128

typedef struct {
    double ppl;          /* exp(nll / n_pred) */
    double nll;          /* sum over predicted tokens of -log p(next token) */
    uint64_t n_pred;     /* predicted tokens: n_seq * (seq_len - 1) */
    uint32_t n_seq;      /* sequences evaluated */
    uint32_t first_seq;  /* index of the first of them in the token file */
    uint32_t seq_len;    /* tokens per sequence */
    double seconds;      /* wall time of the whole evaluation, loading included */
    aw_scheme scheme;    /* the checkpoint's (aw_scheme_label for the user) */
} aw_eval_result;

/* Fill q (created with aw_qblock_create for c and the checkpoint's scheme,
 * from aw_check_quant_config) with decoder block `layer` of a
 * compressed-tensors checkpoint. W8A8: INT8 weights (AW_ERR_DTYPE unless
 * I8, AW_ERR_ST_SHAPE unless [out, in]), single-value weight and input
 * scales (AW_ERR_UNSUPPORTED for per-channel or group scales,
 * AW_ERR_NONFINITE unless finite and > 0). Weight-only: the codes unpacked
 * from `weight_packed` (AW_ERR_DTYPE unless I32, AW_ERR_ST_SHAPE unless
 * [out, ceil(in * b / 32)]; AW_ERR_UNSUPPORTED naming the older packing of
 * floor(32 / b) codes a word), `weight_shape` (I64 or I32 {out, in}),
 * steps from `weight_scale` (float [out, ng], finite and > 0), zero points
 * unpacked from `weight_zero_point` (I32 [ceil(out * b / 32), ng]) when
 * asymmetric, else 2^(b-1). Dynamic activations (int-quantized): `weight`
 * I8 [out, in] holding compressed-tensors' signed values q_s (codes = q_s +
 * 2^(b-1)), steps from `weight_scale` as weight-only, `weight_zero_point`
 * I8 [out, ng] (zero points z_s + 2^(b-1)) when asymmetric, and wq = q_s -
 * z_s (AW_ERR_DTYPE unless I8, AW_ERR_ST_SHAPE for another shape,
 * AW_ERR_UNSUPPORTED for a value outside the b-bit range). Either way
 * biases and LayerNorms as f32
 * (checked finite); a missing tensor is AW_ERR_MISSING_TENSOR. q->s[] is
 * set to 1 (equalization is folded into the checkpoint) and bias_plain to
 * bias. Messages name the file and the tensor; on failure q's contents are
 * unspecified (it stays owned by the caller). */
aw_status aw_qblock_load(const aw_model_config *c, const aw_model_files *mf, int layer, aw_qblock *q);

/* AW_OK if config.json at config_path describes what aw_qblock_load and the
 * forward run, with its scheme in *scheme (when not NULL): compressed-tensors,
 * either format int-quantized (or naive-quantized) with 8-bit symmetric int
 * weights and static input activations, per tensor (W8A8), or format
 * pack-quantized with int weights of 3, 4 or 8 bits per group or per
 * channel, symmetric or not, actorder null or "weight", and no input
 * activations (weight-only), or format int-quantized with such weights and
 * dynamic (true) symmetric int input activations of 4 to 8 bits per token
 * or per group, groups nested (AW_ACT_DYNAMIC; static low-bit or
 * asymmetric activations, strategies tensor or block, "local" refused);
 * every config group the same scheme, one of
 * them targeting "Linear". AW_ERR_UNSUPPORTED saying what differs, naming
 * the file and the key ("not a quantized checkpoint" without
 * quantization_config); AW_ERR_CONFIG if the file cannot be read or parsed
 * or a key has the wrong type. */
aw_status aw_check_quant_config(const char *config_path, aw_scheme *scheme);

/* Evaluate the quantized checkpoint in model_dir (W8A8 or weight-only) on
 * the token file tokens_path:
 * holdout 0 takes every sequence, else the last aw_holdout_count(n_seq,
 * holdout) (llround(holdout * n_seq), at least 1), as aw_run() holds them out; blocks of `batch` sequences. Progress
 * lines on stderr unless quiet. r is zeroed first and filled on success. */
aw_status aw_eval(const char *model_dir, const char *tokens_path, double holdout, int batch,
                  int quiet, aw_eval_result *r);

/* ---- the WikiText-2 protocol on text (eval --text) ----------------------- */

typedef struct {
    const char *model_dir;   /* an fp checkpoint, or a quantized one (quantization_config) */
    const char *text_path;   /* .txt or .jsonl, optionally .zst (aw_textdata.h) */
    const char *text_field;  /* jsonl member; NULL: "text" */
    int seq_len;             /* window length (2048 the standard) */
    int max_windows;         /* 0: every window; else the first max_windows */
    int backend_want;        /* -1 auto, or aw_backend_kind */
    int staged;              /* the CPU kernels through the device data path */
    int quiet;
} aw_eval_text_opts;

typedef struct {
    double ppl, nll;          /* exp(nll / n_pred); nll summed window by window in order */
    uint64_t n_pred;          /* n_windows * (seq_len - 1) */
    uint64_t text_tokens;     /* tokens of the whole text */
    uint32_t n_windows, seq_len;
    int quantized;            /* 1: a quantized checkpoint, of scheme */
    aw_scheme scheme;         /* the checkpoint's, when quantized */
    double seconds;
    char backend[160];        /* rank 0's backend and device */
} aw_eval_text_result;

/* Perplexity of text_path under the model: the rows of the text joined with
 * "\n\n", tokenized once with the folder's tokenizer (BOS in front), cut
 * into n = tokens / seq_len windows; each window's NLL over its seq_len - 1
 * predicted tokens. Windows are dealt round robin over the ranks of world
 * (each holds the whole model) and computed one at a time, and their sums
 * added in window order on every rank: the result does not depend on the
 * rank count. Collective over world. */
aw_status aw_eval_text(const aw_eval_text_opts *o, const aw_comm *world, aw_eval_text_result *r);

#endif
