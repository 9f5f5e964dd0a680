/* aw_scheme.c - checks and labels of quantization schemes (aw_scheme.h). */
#include "aw_scheme.h"

#include <stdio.h>

aw_status aw_scheme_check(const aw_scheme *s)
{
    if (s->act == AW_ACT_I8_TENSOR) {
        AW_RETURN_IF(s->wbits != 8 || !s->sym, AW_ERR_ARG, "W8A8 is symmetric 8-bit");
        return AW_OK;
    }
    AW_RETURN_IF(s->wbits != 3 && s->wbits != 4 && s->wbits != 8, AW_ERR_ARG,
                 "--wbits %d: expected 3, 4 or 8", s->wbits);
    AW_RETURN_IF(s->group != 0 && s->group < 8, AW_ERR_ARG,
                 "--group %d: expected 0 (one step per output channel) or a group of at least 8 inputs",
                 s->group);
    return AW_OK;
}

const char *aw_scheme_label(const aw_scheme *s, char *buf, int cap)
{
    if (s->act == AW_ACT_I8_TENSOR) snprintf(buf, (size_t)cap, "w8a8");
    else if (s->group > 0) snprintf(buf, (size_t)cap, "w%d g%d %s", s->wbits, s->group, s->sym ? "sym" : "asym");
    else snprintf(buf, (size_t)cap, "w%d per-channel %s", s->wbits, s->sym ? "sym" : "asym");
    return buf;
}
