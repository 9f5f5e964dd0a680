/*
 * aw_status.h - the project's one status enum and its error context.
 *
 * Every function that can fail returns an aw_status. Values are pinned: new
 * codes are appended before AW_STATUS_COUNT, never renumbered. The human
 * message of the most recent failure on this thread (file, tensor, rank...)
 * is kept by aw_err_set() and read with aw_err_message(); the source location
 * that raised it with aw_err_where(). Only pipeline/ decides to exit.
 */
#ifndef AW_STATUS_H
#define AW_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AW_OK = 0,
    AW_ERR_NOMEM = 1,           /* allocation failed */
    AW_ERR_IO = 2,              /* open/read/write/rename failed (errno text in message) */
    AW_ERR_ARG = 3,             /* bad argument or command line */
    AW_ERR_ST_TRUNCATED = 4,    /* safetensors: file shorter than its 8-byte prefix or data section */
    AW_ERR_ST_HEADER_SIZE = 5,  /* safetensors: header length beyond the file or the cap */
    AW_ERR_ST_JSON = 6,         /* safetensors: header is not the JSON the format requires */
    AW_ERR_ST_DTYPE = 7,        /* safetensors: unknown dtype */
    AW_ERR_ST_SHAPE = 8,        /* safetensors: shape x dtype size != byte length, or overflow */
    AW_ERR_ST_OFFSETS = 9,      /* safetensors: data_offsets out of the data section or reversed */
    AW_ERR_ST_OVERLAP = 10,     /* safetensors: tensors overlap or leave a gap */
    AW_ERR_ST_DUPLICATE = 11,   /* safetensors: the same tensor name twice */
    AW_ERR_INDEX = 12,          /* model.safetensors.index.json malformed */
    AW_ERR_INDEX_PATH = 13,     /* a shard name that leaves the model folder */
    AW_ERR_MISSING_SHARD = 14,  /* a shard named by the index is not there */
    AW_ERR_MISSING_TENSOR = 15, /* a tensor the model needs is not in the checkpoint */
    AW_ERR_CONFIG = 16,         /* config.json missing or malformed */
    AW_ERR_UNSUPPORTED = 17,    /* a model or option this project cannot handle (yet) */
    AW_ERR_TOKENS = 18,         /* calibration token file malformed */
    AW_ERR_NONFINITE = 19,      /* NaN or Inf in weights or activations */
    AW_ERR_DTYPE = 20,          /* a tensor has a dtype the operation does not accept */
    AW_ERR_MPI = 21,            /* an MPI call failed */
    AW_ERR_CUDA = 22,           /* a CUDA, cuBLAS call failed */
    AW_ERR_NCCL = 23,           /* an NCCL call failed */
    AW_ERR_ZSTD = 24,           /* zstd compression or decompression failed */
    AW_ERR_PLAN = 25,           /* no plan fits the world and memory budget */
    AW_ERR_NO_DEVICE = 26,      /* a backend was asked for that is not present */
    AW_ERR_CHECKSUM = 27,       /* stored checksum does not match the content */
    AW_ERR_VALIDATION = 28,     /* a validation gate failed */
    AW_ERR_REMOTE = 29,         /* another rank failed */
    AW_ERR_INTERRUPTED = 30,    /* SIGTERM (preemption): stopped at a safe point */
    AW_ERR_TOKENIZER = 31,      /* tokenizer files malformed or of an unsupported kind */
    AW_ERR_CORPUS = 32,         /* text corpus unreadable: bad UTF-8, JSON, field, zstd, too short */
    AW_STATUS_COUNT
} aw_status;

/* Short fixed text for a status ("safetensors header length out of range"). */
const char *aw_strerror(aw_status st);
/* Stable identifier of a status ("AW_ERR_ST_OFFSETS"), for logs and tests. */
const char *aw_status_name(aw_status st);

/* Record the context of a failure on this thread and return st.
 * fmt is the user-facing text: name the file, tensor and value involved. */
aw_status aw_err_set(aw_status st, const char *src_file, int src_line,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Message of the last aw_err_set() on this thread ("" if none). */
const char *aw_err_message(void);
/* "file.c:123" of the last aw_err_set() on this thread ("" if none). */
const char *aw_err_where(void);
/* Forget the last error (tests). */
void aw_err_clear(void);

#define AW_FAIL(st, ...) aw_err_set((st), __FILE__, __LINE__, __VA_ARGS__)

/* Return st with a message when cond holds. */
#define AW_RETURN_IF(cond, st, ...)                                    \
    do {                                                               \
        if (cond) return AW_FAIL((st), __VA_ARGS__);                   \
    } while (0)

/* Propagate a failure of expr unchanged (its context is already set). */
#define AW_TRY(expr)                                                   \
    do {                                                               \
        aw_status aw_try_st_ = (expr);                                 \
        if (aw_try_st_ != AW_OK) return aw_try_st_;                    \
    } while (0)

/* Same two for functions that clean up at a `fail:` label with a local `st`. */
#define AW_GOTO_IF(cond, code, ...)                                    \
    do {                                                               \
        if (cond) {                                                    \
            st = AW_FAIL((code), __VA_ARGS__);                         \
            goto fail;                                                 \
        }                                                              \
    } while (0)

#define AW_CHECK(expr)                                                 \
    do {                                                               \
        st = (expr);                                                   \
        if (st != AW_OK) goto fail;                                    \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif
