/*
 * aw_corpus.h - text corpora for calibration and evaluation, read as a
 * sequence of documents:
 *   - .txt: the whole file is one document;
 *   - .jsonl: one JSON object per line, the document is its string member
 *     `text_field` ("text" by default); empty lines are skipped;
 *   - either compressed with zstd (name ending in .zst, e.g. the Pile's
 *     val.jsonl.zst), decompressed as a stream, never whole in memory
 *     (only one document at a time is).
 * Every document is checked to be valid UTF-8. Errors are AW_ERR_CORPUS (or
 * AW_ERR_IO for a file that cannot be opened or read) with a message naming
 * the file and the line or byte offset: a line that is not JSON or lacks
 * the field (or holds another type), invalid UTF-8, a truncated or corrupt
 * .zst, a line (or .txt document) longer than the cap.
 * An empty corpus (no documents, or only empty ones) is not an error here:
 * the caller counts documents and bytes and decides. The exact reading rules
 * and the Python lines that draw the same windows are in
 * docs/calibration-text.md.
 */
#ifndef AW_CORPUS_H
#define AW_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "aw_status.h"

typedef struct aw_corpus aw_corpus;

/* Longest .jsonl line (without its '\n') or .txt document, by default: a
 * guard against a file with no line ends, not a limit of the format. */
#define AW_CORPUS_MAX_DOC ((size_t)1 << 30)

/* Open path; text_field NULL means "text" (used for .jsonl only). The type
 * comes from the name: .txt, .jsonl, .txt.zst, .jsonl.zst (AW_ERR_ARG for
 * another). AW_ERR_IO if the file cannot be opened; *out is NULL on failure,
 * else owned by the caller (aw_corpus_close). Nothing is read yet. */
aw_status aw_corpus_open(const char *path, const char *text_field, aw_corpus **out);
/* The next document: *doc (not NUL-terminated, may hold NUL bytes) and *len,
 * valid until the next call or close. At the end, AW_OK with *doc NULL (and
 * again on every later call). After a failure every later call fails too. */
aw_status aw_corpus_next(aw_corpus *c, const char **doc, size_t *len);
/* Lower (or raise) the cap AW_CORPUS_MAX_DOC for this corpus; call before
 * the first aw_corpus_next. max_bytes is clamped to [1, SIZE_MAX / 4]. */
void aw_corpus_set_max_doc(aw_corpus *c, size_t max_bytes);
/* Release; accepts NULL. */
void aw_corpus_close(aw_corpus *c);

/* Python's `random` (MT19937), so that another tool can draw the same
 * windows: aw_pyrand_seed(r, S) is `random.seed(S)` for an integer S >= 0,
 * aw_pyrand_randbelow(r, n) is `random.randrange(n)` (n >= 1), hence
 * `random.randint(a, b)` is a + aw_pyrand_randbelow(r, b - a + 1). */
typedef struct {
    uint32_t mt[624];
    int idx;
} aw_pyrand;
void aw_pyrand_seed(aw_pyrand *r, uint64_t seed);
uint32_t aw_pyrand_randbelow(aw_pyrand *r, uint32_t n);
/* The same for any n >= 1 up to 2^64 - 1 (getrandbits(k) for k > 32 takes
 * two 32-bit outputs, the first one the low word, as CPython does); equal
 * to aw_pyrand_randbelow for n < 2^32. n = 0 returns 0 and draws nothing. */
uint64_t aw_pyrand_randbelow64(aw_pyrand *r, uint64_t n);

/* Windows of a token stream, drawn as GPTQ draws its calibration samples:
 *   random.seed(seed)
 *   for i in range(n_calib): s = random.randint(0, n_tokens - L - 1)
 * window i is stream[s : s + L]. Then n_hold held-out windows continue from
 * the same generator with the same formula, a start being drawn again while
 * its window overlaps any calibration window (at most 1000 draws each;
 * AW_ERR_CORPUS saying the corpus is too short if that fails). starts_out
 * (n_calib + n_hold) receives the starts in that order, calibration first.
 * Held-out windows may overlap each other, never a calibration window.
 * AW_ERR_CORPUS when n_tokens < L + 1 (shorter than one window); AW_ERR_ARG
 * for L = 0 or starts_out NULL with windows to draw. */
aw_status aw_draw_windows(size_t n_tokens, uint32_t L, uint32_t n_calib, uint32_t n_hold,
                          uint64_t seed, uint64_t *starts_out);

#endif
