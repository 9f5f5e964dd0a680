/* bench_tokenize: time aw_tokenizer_encode over one whole file (one call,
 * one thread), best of N runs. Not a test; bench/tokenize_vs_hf.py runs it
 * beside Hugging Face tokenizers on the same text.
 *
 *   bench_tokenize MODEL_DIR TEXT_FILE [--runs N] [--no-special] [--dump IDS]
 *
 * Prints the tokenizer, MB/s and tokens/s of the best run (the first run,
 * with a cold word cache, beside it), and a last line
 * "RESULT seconds=... ids=... bytes=... first=..." for scripts. --dump writes the ids
 * of the last run as little-endian uint32. Exit 1 on any failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aw_clock.h"
#include "aw_fs.h"
#include "aw_tokenizer.h"

int main(int argc, char **argv)
{
    const char *dir = NULL, *file = NULL, *dump = NULL;
    int runs = 5, add_special = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-special") == 0)
            add_special = 0;
        else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc)
            dump = argv[++i];
        else if (!dir)
            dir = argv[i];
        else if (!file)
            file = argv[i];
        else
            dir = NULL, i = argc;
    }
    if (!dir || !file || runs < 1) {
        fprintf(stderr, "usage: %s MODEL_DIR TEXT_FILE [--runs N] [--no-special] [--dump IDS]\n",
                argv[0]);
        return 2;
    }
    char *text;
    size_t len;
    aw_tokenizer *tk = NULL;
    if (aw_read_file(file, (size_t)1 << 31, &text, &len) != AW_OK ||
        aw_tokenizer_open(dir, &tk) != AW_OK) {
        fprintf(stderr, "bench_tokenize: %s\n", aw_err_message());
        return 1;
    }
    printf("tokenizer: %s\n", aw_tokenizer_describe(tk));
    double best = 1e30, first = 0;
    aw_idvec ids = {0};
    for (int r = 0; r < runs; r++) {
        ids.n = 0;
        double t0 = aw_now();
        aw_status st = aw_tokenizer_encode(tk, text, len, add_special, &ids);
        double dt = aw_now() - t0;
        if (st != AW_OK) {
            fprintf(stderr, "bench_tokenize: %s: %s\n", file, aw_err_message());
            return 1;
        }
        if (r == 0) first = dt; /* cold word cache */
        if (dt < best) best = dt;
    }
    printf("%zu bytes -> %zu ids: best of %d %.4f s, %.2f MB/s, %.0f tokens/s (first run %.4f s)\n",
           len, ids.n, runs, best, (double)len / best / 1e6, (double)ids.n / best, first);
    printf("RESULT seconds=%.6f ids=%zu bytes=%zu first=%.6f\n", best, ids.n, len, first);
    int rc = 0;
    if (dump) {
        FILE *f = fopen(dump, "wb");
        for (size_t i = 0; f && i < ids.n; i++) {
            uint8_t b[4] = {(uint8_t)ids.v[i], (uint8_t)(ids.v[i] >> 8), (uint8_t)(ids.v[i] >> 16),
                            (uint8_t)(ids.v[i] >> 24)};
            if (fwrite(b, 1, 4, f) != 4) break;
        }
        if (!f || fclose(f) != 0) {
            fprintf(stderr, "bench_tokenize: cannot write %s\n", dump);
            rc = 1;
        }
    }
    aw_idvec_free(&ids);
    aw_tokenizer_close(tk);
    free(text);
    return rc;
}
