/* aw_scheme.c - checks and labels of quantization schemes (aw_scheme.h). */
#include "aw_scheme.h"

#include <stdio.h>
#include <string.h>

aw_status aw_scheme_check(const aw_scheme *s)
{
    AW_RETURN_IF(!(s->keep_pct >= 0.0 && s->keep_pct < 100.0), AW_ERR_ARG,
                 "--keep-salient %g: expected a share in [0, 100) percent", s->keep_pct);
    if (s->act == AW_ACT_I8_TENSOR) {
        AW_RETURN_IF(s->wbits != 8 || !s->sym, AW_ERR_ARG, "W8A8 is symmetric 8-bit");
        return AW_OK;
    }
    AW_RETURN_IF(s->wbits != 3 && s->wbits != 4 && s->wbits != 8, AW_ERR_ARG,
                 "--wbits %d: expected 3, 4 or 8", s->wbits);
    AW_RETURN_IF(s->group != 0 && s->group < 8, AW_ERR_ARG,
                 "--group %d: expected 0 (one step per output channel) or a group of at least 8 inputs",
                 s->group);
    if (s->act != AW_ACT_DYNAMIC) return AW_OK;
    AW_RETURN_IF(s->abits < 4 || s->abits > 8, AW_ERR_ARG, "--abits %d: expected 4 to 8", s->abits);
    AW_RETURN_IF(s->agroup != 0 && s->agroup < 8, AW_ERR_ARG,
                 "--agroup %d: expected 0 (one step per token) or a group of at least 8 inputs", s->agroup);
    AW_RETURN_IF(s->group > 0 && s->agroup > 0 && s->group % s->agroup != 0 && s->agroup % s->group != 0,
                 AW_ERR_ARG, "--group %d and --agroup %d: one must divide the other (the integer product runs "
                 "over inputs that share both steps)", s->group, s->agroup);
    AW_RETURN_IF(s->wbits == 8 && !s->sym, AW_ERR_ARG,
                 "--wbits 8 --asym with integer activations: the weights' signed values (q - z) do not fit INT8");
    return AW_OK;
}

const char *aw_scheme_label(const aw_scheme *s, char *buf, int cap)
{
    int n;
    if (s->act == AW_ACT_I8_TENSOR) n = snprintf(buf, (size_t)cap, "w8a8");
    else if (s->group > 0) n = snprintf(buf, (size_t)cap, "w%d g%d %s", s->wbits, s->group, s->sym ? "sym" : "asym");
    else n = snprintf(buf, (size_t)cap, "w%d per-channel %s", s->wbits, s->sym ? "sym" : "asym");
    if (n < 0 || n >= cap) return buf;
    if (s->act == AW_ACT_DYNAMIC) {
        int m = s->agroup > 0 ? snprintf(buf + n, (size_t)(cap - n), " a%d g%d", s->abits, s->agroup)
                              : snprintf(buf + n, (size_t)(cap - n), " a%d token", s->abits);
        if (m < 0 || m >= cap - n) return buf;
        n += m;
    }
    if (s->keep_pct > 0) snprintf(buf + n, (size_t)(cap - n), " keep %g%%", s->keep_pct);
    return buf;
}

const char *aw_scheme_title(const aw_scheme *s, char *buf, int cap)
{
    if (s->act == AW_ACT_I8_TENSOR && !(s->keep_pct > 0)) {
        snprintf(buf, (size_t)cap, "W8A8");
        return buf;
    }
    return aw_scheme_label(s, buf, cap);
}
