/* aw_cli_method.c - the method and scheme options, one parser for `run`,
 * `plan` and the lines of a sweep's grid file, so that the three accept the
 * same options with the same rules and messages (see aw_cli.h). */
#include "aw_cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

void aw_cli_method_init(aw_cli_method_opts *mo)
{
    memset(mo, 0, sizeof *mo);
    mo->kind = AW_METHOD_AWEQ;
    mo->alpha = 0.5f;
    mo->group = 128;
    mo->sym = -1;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0') return -1;
    *out = v;
    return 0;
}

int aw_cli_method_apply(aw_cli_method_opts *mo, int code, const char *arg, char *msg, size_t cap)
{
    long v;
    double x;
    switch (code) {
    case AW_MO_METHOD:
        if (aw_method_parse(arg, &mo->kind) != AW_OK) return aw_cli_say(msg, cap, "%s", aw_err_message());
        return 0;
    case AW_MO_ALPHA: {
        /* read as a float, not a double rounded to one (twice rounded, a
         * rare input would lose its last bit) */
        char *end;
        float a = strtof(arg, &end);
        if (*end || end == arg || !(a >= 0.0f && a <= 1.0f))
            return aw_cli_say(msg, cap, "--alpha '%s': expected a number in [0, 1]", arg);
        mo->alpha = a;
        mo->alpha_set = 1;
        return 0;
    }
    case AW_MO_NOBC: mo->nobc = 1; return 0;
    case AW_MO_WBITS:
        if (aw_cli_parse_int(arg, 3, 8, &v) || (v != 3 && v != 4 && v != 8))
            return aw_cli_say(msg, cap, "--wbits '%s': expected 3, 4 or 8", arg);
        mo->wbits = (int)v;
        return 0;
    case AW_MO_GROUP:
        if (aw_cli_parse_int(arg, 0, 1 << 20, &v) || (v != 0 && v < 8))
            return aw_cli_say(msg, cap, "--group '%s': expected 0 (one step per output channel) or a group of at least 8 "
                                 "inputs, e.g. 128", arg);
        mo->group = (int)v;
        mo->group_set = 1;
        return 0;
    case AW_MO_SYM: mo->sym = 1; return 0;
    case AW_MO_ASYM: mo->sym = 0; return 0;
    case AW_MO_ACTORDER: mo->act_order = 1; return 0;
    case AW_MO_ABITS:
        if (aw_cli_parse_int(arg, 4, 8, &v)) return aw_cli_say(msg, cap, "--abits '%s': expected 4 to 8", arg);
        mo->abits = (int)v;
        return 0;
    case AW_MO_AGROUP:
        if (aw_cli_parse_int(arg, 0, 1 << 20, &v) || (v != 0 && v < 8))
            return aw_cli_say(msg, cap, "--agroup '%s': expected 0 (one step per token) or a group of at least 8 inputs, "
                                 "e.g. 128", arg);
        mo->agroup = (int)v;
        mo->agroup_set = 1;
        return 0;
    case AW_MO_ADYNAMIC: mo->adynamic = 1; return 0;
    case AW_MO_KEEP:
        if (parse_double(arg, &x) || !(x >= 0.0 && x < 100.0))
            return aw_cli_say(msg, cap, "--keep-salient '%s': expected a percent in [0, 100), e.g. 1", arg);
        mo->keep_pct = x;
        mo->keep_set = 1;
        return 0;
    default: return aw_cli_say(msg, cap, "internal: option code %d is not a method option", code);
    }
}

int aw_cli_method_finish(const aw_cli_method_opts *mo, aw_method *m, char *msg, size_t cap)
{
    aw_method_kind k = mo->kind;
    const char *name = aw_method_names[k];
    int corrects = k == AW_METHOD_AWEQ || k == AW_METHOD_AWEQ_SEARCH;
    if (mo->nobc && !corrects)
        return aw_cli_say(msg, cap, "--no-bias-correction applies to --method aweq and aweq+search");
    if (mo->alpha_set && k != AW_METHOD_AWEQ && k != AW_METHOD_SMOOTHQUANT)
        return aw_cli_say(msg, cap, "--alpha does not apply to --method %s", name);
    if (mo->act_order && k != AW_METHOD_GPTQ) return aw_cli_say(msg, cap, "--act-order goes with --method gptq");
    if (mo->abits && mo->abits < 8 && !mo->adynamic)
        return aw_cli_say(msg, cap, "--abits %d needs --adynamic (static activations are 8-bit, one step per tensor)",
                   mo->abits);
    if (mo->abits == 8 && !mo->adynamic && mo->wbits)
        return aw_cli_say(msg, cap, "--abits with --wbits needs --adynamic (weight-only schemes keep activations in "
                             "floating point)");
    if (mo->agroup_set && !mo->adynamic) return aw_cli_say(msg, cap, "--agroup needs --adynamic");
    aw_scheme sc = AW_SCHEME_W8A8;
    if (mo->adynamic) {
        /* without --wbits: 8-bit symmetric weights, one step per output channel */
        sc = (aw_scheme){.wbits = mo->wbits ? mo->wbits : 8,
                         .group = mo->wbits || mo->group_set ? mo->group : 0,
                         .sym = mo->sym != 0,
                         .act = AW_ACT_DYNAMIC,
                         .abits = mo->abits ? mo->abits : 8,
                         .agroup = mo->agroup,
                         .keep_pct = 0.0};
    } else if (mo->wbits) {
        sc = (aw_scheme){.wbits = mo->wbits, .group = mo->group, .sym = mo->sym != 0, .act = AW_ACT_FLOAT,
                         .abits = 0, .agroup = 0, .keep_pct = 0.0};
    } else {
        if (mo->group_set || mo->sym >= 0)
            return aw_cli_say(msg, cap, "--group, --sym and --asym go with --wbits (weight-only schemes) or --adynamic");
        if (k == AW_METHOD_AWQ || k == AW_METHOD_AWEQ_SEARCH || k == AW_METHOD_GPTQ)
            return aw_cli_say(msg, cap, "--method %s makes weight-only or dynamic schemes: give --wbits 3, 4 or 8 (or "
                                 "--adynamic)", name);
    }
    if (mo->keep_set && mo->keep_pct > 0) {
        if (k == AW_METHOD_AWQ || k == AW_METHOD_AWEQ_SEARCH || k == AW_METHOD_GPTQ)
            return aw_cli_say(msg, cap, "--keep-salient does not go with --method %s (its search or sweep does not know "
                                 "kept channels): use rtn, smoothquant or aweq", name);
        sc.keep_pct = mo->keep_pct;
    }
    if (aw_scheme_check(&sc) != AW_OK) return aw_cli_say(msg, cap, "%s", aw_err_message());
    m->kind = k;
    m->alpha = mo->alpha;
    m->bias_correction = corrects && !mo->nobc;
    m->scheme = sc;
    m->act_order = mo->act_order;
    return 0;
}

static const struct option aw_method_longopts[] = {AW_CLI_METHOD_LONGOPTS, {0, 0, 0, 0}};

int aw_cli_method_parse_line(const char *line, aw_method *m, char *msg, size_t cap)
{
    aw_cli_method_opts mo;
    aw_cli_method_init(&mo);
    char *copy = strdup(line);
    if (!copy) return aw_cli_say(msg, cap, "out of memory");
    int rc = 0, n = 0;
    char *save = NULL;
    char *tok = strtok_r(copy, " \t\r\n", &save);
    while (tok && rc == 0) {
        if (strncmp(tok, "--", 2) != 0 || !tok[2]) {
            rc = aw_cli_say(msg, cap, "'%s': expected an option (--method, --wbits, ...)", tok);
            break;
        }
        char *name = tok + 2, *val = strchr(name, '=');
        if (val) *val++ = '\0';
        const struct option *op = NULL;
        for (const struct option *p = aw_method_longopts; p->name; p++)
            if (strcmp(p->name, name) == 0) op = p;
        if (!op) {
            rc = aw_cli_say(msg, cap, "unknown option '--%s' (a grid line takes the method and scheme options of a run)",
                     name);
            break;
        }
        if (op->has_arg == no_argument && val) {
            rc = aw_cli_say(msg, cap, "--%s takes no value", name);
            break;
        }
        if (op->has_arg == required_argument && !val) {
            val = strtok_r(NULL, " \t\r\n", &save);
            if (!val) {
                rc = aw_cli_say(msg, cap, "--%s needs a value", name);
                break;
            }
        }
        rc = aw_cli_method_apply(&mo, op->val, val, msg, cap);
        n++;
        tok = strtok_r(NULL, " \t\r\n", &save);
    }
    free(copy);
    if (rc == 0 && n == 0) rc = aw_cli_say(msg, cap, "no options");
    if (rc == 0) rc = aw_cli_method_finish(&mo, m, msg, cap);
    return rc;
}
