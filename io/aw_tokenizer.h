/*
 * aw_tokenizer.h - the model's own tokenizer, read from its Hugging Face
 * folder, giving the same ids as Hugging Face `tokenizers` on the same text.
 *
 * Supported forms (looked for in this order):
 *   - tokenizer.json with a "BPE" model: ByteLevel pre-tokenizer (GPT-2,
 *     OPT, LLaMA 3), or the Metaspace / byte_fallback form of LLaMA-family
 *     folders (SentencePiece BPE converted), with added/special tokens;
 *   - vocab.json + merges.txt: byte-level BPE of GPT-2 and OPT.
 * tokenizer_config.json / special_tokens_map.json say which BOS/EOS the
 * folder uses and whether BOS is added (OPT prepends "</s>").
 * Anything else (a SentencePiece tokenizer.model alone, a WordPiece or
 * Unigram tokenizer.json) is refused with AW_ERR_TOKENIZER naming the file
 * and what is unsupported.
 *
 * What tokenizer.json may hold: model BPE (byte_fallback, fuse_unk,
 * unk_token, ignore_merges, subword prefix/suffix; no dropout); normalizer
 * Prepend / Replace(String) / Sequence; pre-tokenizer ByteLevel, Metaspace,
 * Split with the GPT-2, cl100k (LLaMA 3) or Qwen2 regex, Sequence; post-
 * processor TemplateProcessing, ByteLevel, Roberta/BertProcessing, Sequence.
 * An explicit add_bos_token / add_eos_token in tokenizer_config.json
 * replaces the template, as transformers does. truncation and padding are
 * ignored. The ids equal those of Hugging Face `tokenizers` 0.23 (and of
 * transformers' AutoTokenizer for vocab.json + merges.txt folders):
 * tests/io/test_tokenizer.c holds the evidence.
 */
#ifndef AW_TOKENIZER_H
#define AW_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "aw_status.h"

/* A growable vector of token ids. Zero it to start; aw_idvec_free releases. */
typedef struct {
    uint32_t *v;
    size_t n, cap;
} aw_idvec;

/* Append one id; AW_ERR_NOMEM on allocation failure (v unchanged). */
aw_status aw_idvec_push(aw_idvec *v, uint32_t id);
/* Release the ids; accepts a zeroed vector. */
void aw_idvec_free(aw_idvec *v);

typedef struct aw_tokenizer aw_tokenizer;

/* Open the tokenizer of a model folder (see the forms above). On failure
 * *out is NULL and the message names the file and the defect. */
aw_status aw_tokenizer_open(const char *model_dir, aw_tokenizer **out);
/* Build a tokenizer from the bytes of one tokenizer.json (no config files
 * are read; label names it in messages). For tests and the fuzzer. On
 * failure *out is NULL. */
aw_status aw_tokenizer_open_json(const char *json, size_t len, const char *label,
                                 aw_tokenizer **out);
/* Release; accepts NULL. */
void aw_tokenizer_close(aw_tokenizer *t);

/* Append the ids of text (len bytes of UTF-8, may hold NUL bytes) to out, as
 * Hugging Face's `tokenizer(text, add_special_tokens=add_special)` gives
 * them: with add_special, the tokens the folder's config adds (BOS in front
 * for OPT and LLaMA). Text that is not valid UTF-8 is refused with
 * AW_ERR_CORPUS giving the byte offset of the first bad sequence (the
 * caller names the file); out then holds what it held before. Thread-safe
 * for concurrent calls on one tokenizer. */
aw_status aw_tokenizer_encode(const aw_tokenizer *t, const char *text, size_t len, int add_special,
                              aw_idvec *out);

/* Number of ids the tokenizer can produce: its largest id + 1. */
uint32_t aw_tokenizer_vocab_size(const aw_tokenizer *t);
/* BOS id, or -1 when the folder defines none. */
int64_t aw_tokenizer_bos(const aw_tokenizer *t);
/* One line saying what was read, e.g. "byte-level BPE, 50265 tokens
 * (vocab.json + merges.txt), BOS </s> = 2 added". */
const char *aw_tokenizer_describe(const aw_tokenizer *t);

#endif
