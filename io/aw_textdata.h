/*
 * aw_textdata.h - from text files to the token sets the program runs on:
 *   - calibration: every document of every file (in order) tokenized on its
 *     own with the tokenizer's special tokens (BOS in front for OPT and
 *     LLaMA), the ids concatenated into one stream, and windows drawn from
 *     it with Python's seeded `random` as GPTQ draws them (aw_draw_windows):
 *     n_calib calibration windows, then n_hold held-out windows that never
 *     overlap them (docs/calibration-text.md);
 *   - evaluation (the WikiText-2 protocol): the rows of the text (a .txt
 *     cut after every "\n", each row keeping its "\n"; the documents of a
 *     .jsonl; a row of whitespace alone becomes "", as in Hugging Face's
 *     wikitext dataset) joined with "\n\n", tokenized once, cut into
 *     n = tokens / seq_len non-overlapping windows.
 * Errors name the file: an empty corpus, a corpus shorter than one window,
 * and everything aw_corpus and aw_tokenizer refuse.
 */
#ifndef AW_TEXTDATA_H
#define AW_TEXTDATA_H

#include <stdint.h>

#include "aw_status.h"
#include "aw_tokenizer.h"
#include "aw_tokens.h"

typedef struct {
    const char *const *files; /* .txt / .jsonl, each optionally .zst */
    int n_files;
    const char *text_field;   /* jsonl member; NULL: "text" */
    uint32_t n_calib;         /* calibration windows */
    uint32_t n_hold;          /* held-out windows (may be 0) */
    uint32_t seq_len;         /* tokens per window */
    uint64_t seed;
    int quiet;                /* no progress line on stderr */
} aw_calib_text_opts;

/* The one holdout rule (a run's split of a token file, `eval --holdout`,
 * and the draw below): of n_seq sequences the last llround(share * n_seq)
 * are held out, at least one when share > 0; 0 for share 0. */
uint64_t aw_holdout_count(uint64_t n_seq, double share);
/* Held-out windows to draw beside n_calib calibration windows so that a
 * run given the token file and --holdout share holds out exactly these:
 * the M with M == max(1, llround(share * (n_calib + M))) (0 for share 0),
 * about n_calib * share / (1 - share). */
uint32_t aw_holdout_windows(uint32_t n_calib, double share);
/* More held-out windows than this are refused (aw_holdout_windows returns
 * UINT32_MAX for them). */
#define AW_MAX_HOLDOUT_WINDOWS (1u << 24)

/* Tokenize the files and draw the windows into out (n_calib + n_hold
 * sequences of seq_len, calibration first; vocab_size the tokenizer's).
 * *stream_tokens (may be NULL) receives the length of the token stream. */
aw_status aw_calib_from_text(const aw_tokenizer *t, const aw_calib_text_opts *o, aw_tokens *out,
                             uint64_t *stream_tokens);

/* The evaluation token stream of path (the protocol above) into ids
 * (appended; zero it first). */
aw_status aw_eval_text_stream(const aw_tokenizer *t, const char *path, const char *text_field,
                              aw_idvec *ids);

#endif
