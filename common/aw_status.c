/* aw_status.c - message table and the per-thread error context. */
#include "aw_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    const char *text;
} aw_status_entry;

static const aw_status_entry aw_status_table[] = {
    [AW_OK] = {"AW_OK", "no error"},
    [AW_ERR_NOMEM] = {"AW_ERR_NOMEM", "out of memory"},
    [AW_ERR_IO] = {"AW_ERR_IO", "input/output error"},
    [AW_ERR_ARG] = {"AW_ERR_ARG", "invalid argument"},
    [AW_ERR_ST_TRUNCATED] = {"AW_ERR_ST_TRUNCATED", "safetensors file truncated"},
    [AW_ERR_ST_HEADER_SIZE] = {"AW_ERR_ST_HEADER_SIZE", "safetensors header length out of range"},
    [AW_ERR_ST_JSON] = {"AW_ERR_ST_JSON", "safetensors header is malformed"},
    [AW_ERR_ST_DTYPE] = {"AW_ERR_ST_DTYPE", "safetensors unknown dtype"},
    [AW_ERR_ST_SHAPE] = {"AW_ERR_ST_SHAPE", "safetensors shape does not match byte length"},
    [AW_ERR_ST_OFFSETS] = {"AW_ERR_ST_OFFSETS", "safetensors data offsets out of range"},
    [AW_ERR_ST_OVERLAP] = {"AW_ERR_ST_OVERLAP", "safetensors tensors overlap or leave a gap"},
    [AW_ERR_ST_DUPLICATE] = {"AW_ERR_ST_DUPLICATE", "safetensors duplicate tensor name"},
    [AW_ERR_INDEX] = {"AW_ERR_INDEX", "safetensors index malformed"},
    [AW_ERR_INDEX_PATH] = {"AW_ERR_INDEX_PATH", "shard path leaves the model folder"},
    [AW_ERR_MISSING_SHARD] = {"AW_ERR_MISSING_SHARD", "shard file missing"},
    [AW_ERR_MISSING_TENSOR] = {"AW_ERR_MISSING_TENSOR", "tensor missing"},
    [AW_ERR_CONFIG] = {"AW_ERR_CONFIG", "model config invalid"},
    [AW_ERR_UNSUPPORTED] = {"AW_ERR_UNSUPPORTED", "unsupported model or option"},
    [AW_ERR_TOKENS] = {"AW_ERR_TOKENS", "token file invalid"},
    [AW_ERR_NONFINITE] = {"AW_ERR_NONFINITE", "non-finite value"},
    [AW_ERR_DTYPE] = {"AW_ERR_DTYPE", "wrong dtype"},
    [AW_ERR_MPI] = {"AW_ERR_MPI", "MPI error"},
    [AW_ERR_CUDA] = {"AW_ERR_CUDA", "CUDA error"},
    [AW_ERR_NCCL] = {"AW_ERR_NCCL", "NCCL error"},
    [AW_ERR_ZSTD] = {"AW_ERR_ZSTD", "zstd error"},
    [AW_ERR_PLAN] = {"AW_ERR_PLAN", "no plan fits"},
    [AW_ERR_NO_DEVICE] = {"AW_ERR_NO_DEVICE", "device not available"},
    [AW_ERR_CHECKSUM] = {"AW_ERR_CHECKSUM", "checksum mismatch"},
    [AW_ERR_VALIDATION] = {"AW_ERR_VALIDATION", "validation gate failed"},
    [AW_ERR_REMOTE] = {"AW_ERR_REMOTE", "another rank failed"},
    [AW_ERR_INTERRUPTED] = {"AW_ERR_INTERRUPTED", "interrupted by SIGTERM"},
    [AW_ERR_TOKENIZER] = {"AW_ERR_TOKENIZER", "tokenizer invalid or unsupported"},
    [AW_ERR_CORPUS] = {"AW_ERR_CORPUS", "text corpus invalid"},
};
_Static_assert(sizeof aw_status_table / sizeof aw_status_table[0] == AW_STATUS_COUNT,
               "every status needs a table entry");

static _Thread_local char aw_err_msg[1024];
static _Thread_local char aw_err_loc[128];

const char *aw_strerror(aw_status st)
{
    if ((unsigned)st >= AW_STATUS_COUNT) return "unknown status";
    return aw_status_table[st].text;
}

const char *aw_status_name(aw_status st)
{
    if ((unsigned)st >= AW_STATUS_COUNT) return "AW_ERR_UNKNOWN";
    return aw_status_table[st].name;
}

aw_status aw_err_set(aw_status st, const char *src_file, int src_line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(aw_err_msg, sizeof aw_err_msg, fmt, ap);
    va_end(ap);
    const char *base = strrchr(src_file, '/');
    /* keep "folder/file.c" so the location says which module raised it */
    if (base) {
        const char *p = base;
        while (p > src_file && p[-1] != '/') p--;
        base = p;
    } else {
        base = src_file;
    }
    snprintf(aw_err_loc, sizeof aw_err_loc, "%s:%d", base, src_line);
    return st;
}

const char *aw_err_message(void) { return aw_err_msg; }
const char *aw_err_where(void) { return aw_err_loc; }

void aw_err_clear(void)
{
    aw_err_msg[0] = '\0';
    aw_err_loc[0] = '\0';
}
