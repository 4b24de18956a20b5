/*
 * Access logs, as nginx writes them:
 *   log_format NAME [escape=default|json|none] STRING ...;    (http)
 *   access_log PATH [FORMAT [buffer=SIZE] [flush=TIME]];     (http, server, location)
 *   access_log off;
 * `combined` is predefined. A level with access_log directives of its own
 * uses only those; one without inherits its parent's. With none anywhere
 * nothing is logged (nginx would write logs/access.log: a proxy in front of
 * busy services should not fill a disk unasked).
 *
 * A line is built when its request ends, in the worker that served it, and
 * appended to that worker's buffer for the file (core/logbuf.c), which the
 * ring writes: the request path never waits on the disk.
 */
#include "accesslog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "core/cycle.h"
#include "core/log.h"
#include "core/logbuf.h"
#include "proxy.h"
#include "vars.h"

enum { ESC_DEFAULT = 0, ESC_JSON, ESC_NONE };

typedef struct piece {
    char *lit; /* a literal, or NULL */
    size_t lit_len;
    gw_cv_t *var; /* one variable */
} piece_t;

typedef struct log_format {
    char *name;
    int escape;
    piece_t *p;
    uint32_t n;
} log_format_t;

typedef struct alog {
    int fd;
    const log_format_t *fmt;
    uint32_t buffer;   /* buffer=, 0: none */
    uint64_t flush_ms; /* flush=, 0: none */
} alog_t;

/* One level's access_log directives (lconf.access_log points here). n == 0: off. */
typedef struct gw_alog_conf {
    alog_t *logs;
    uint32_t n;
} gw_alog_conf_t;

/* The configuration's formats and logs, for lookups and freeing. */
struct gw_obs_conf {
    log_format_t **formats;
    uint32_t nformats;
    gw_alog_conf_t **confs;
    uint32_t nconfs;
};

#define COMBINED                                                                                                       \
    "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" "              \
    "\"$http_user_agent\""

static void format_free(log_format_t *f)
{
    for (uint32_t i = 0; f && i < f->n; i++) {
        free(f->p[i].lit);
        gw_cv_free(f->p[i].var);
    }
    if (f) {
        free(f->p);
        free(f->name);
        free(f);
    }
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Split text into literals and single variables, each compiled (unknown ones are errors). */
static log_format_t *format_compile(const char *name, int escape, const char *text, char *msg, size_t size)
{
    log_format_t *f = calloc(1, sizeof(*f));
    const char *p = text;

    if (f == NULL || (f->name = strdup(name)) == NULL)
        goto nomem;
    f->escape = escape;
    while (*p) {
        piece_t piece = {0};
        const char *start = p;
        piece_t *grown;

        if (*p == '$') {
            const char *end = p + 1 + (p[1] == '{');
            char *one;

            while (is_name_char(*end))
                end++;
            if (p[1] == '{' && *end == '}')
                end++;
            one = strndup(p, (size_t)(end - p));
            if (one == NULL)
                goto nomem;
            piece.var = gw_cv_compile(one, msg, size);
            free(one);
            if (piece.var == NULL) {
                format_free(f);
                return NULL;
            }
            p = end;
        } else {
            while (*p && *p != '$')
                p++;
            piece.lit_len = (size_t)(p - start);
            if ((piece.lit = strndup(start, piece.lit_len)) == NULL)
                goto nomem;
        }
        grown = realloc(f->p, (f->n + 1) * sizeof(*grown));
        if (grown == NULL) {
            free(piece.lit);
            gw_cv_free(piece.var);
            goto nomem;
        }
        f->p = grown;
        f->p[f->n++] = piece;
    }
    return f;
nomem:
    snprintf(msg, size, "out of memory");
    format_free(f);
    return NULL;
}

static struct gw_obs_conf *obs_conf(gw_cycle_t *cy)
{
    gw_http_conf_t *hc = cy->http;

    if (hc->obs == NULL)
        hc->obs = calloc(1, sizeof(*hc->obs));
    return hc->obs;
}

static int add_format(struct gw_obs_conf *oc, log_format_t *f)
{
    log_format_t **grown = realloc(oc->formats, (oc->nformats + 1) * sizeof(*grown));

    if (grown == NULL)
        return -1;
    oc->formats = grown;
    oc->formats[oc->nformats++] = f;
    return 0;
}

static const log_format_t *find_format(struct gw_obs_conf *oc, const char *name)
{
    char msg[64];
    log_format_t *f;

    for (uint32_t i = 0; i < oc->nformats; i++)
        if (strcmp(oc->formats[i]->name, name) == 0)
            return oc->formats[i];
    if (strcmp(name, "combined") != 0)
        return NULL;
    f = format_compile("combined", ESC_DEFAULT, COMBINED, msg, sizeof(msg));
    if (f == NULL || add_format(oc, f) < 0) {
        format_free(f);
        return NULL;
    }
    return f;
}

int gw_accesslog_set_format(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                            gw_conf_err_t *err)
{
    struct gw_obs_conf *oc = obs_conf(user);
    uint32_t first = 2;
    int escape = ESC_DEFAULT;
    char msg[256], *text;
    size_t len = 0;
    log_format_t *f;

    if (oc == NULL)
        return gw_conf_error(err, n, "out of memory");
    if (strcmp(n->args[1], "combined") == 0 || find_format(oc, n->args[1]))
        return gw_conf_error(err, n, "duplicate \"log_format\" name \"%s\"", n->args[1]);
    if (strncmp(n->args[2], "escape=", 7) == 0) {
        const char *e = n->args[2] + 7;

        if (strcmp(e, "default") == 0)
            escape = ESC_DEFAULT;
        else if (strcmp(e, "json") == 0)
            escape = ESC_JSON;
        else if (strcmp(e, "none") == 0)
            escape = ESC_NONE;
        else
            return gw_conf_error(err, n, "unknown log format escaping \"%s\"", e);
        first = 3;
        if (n->nargs == 3)
            return gw_conf_error(err, n, "invalid number of arguments in \"log_format\" directive");
    }
    for (uint32_t i = first; i < n->nargs; i++)
        len += strlen(n->args[i]);
    text = malloc(len + 1);
    if (text == NULL)
        return gw_conf_error(err, n, "out of memory");
    text[0] = '\0';
    for (uint32_t i = first; i < n->nargs; i++) /* nginx joins the strings as they are */
        strcat(text, n->args[i]);
    f = format_compile(n->args[1], escape, text, msg, sizeof(msg));
    free(text);
    if (f == NULL)
        return gw_conf_error(err, n, "%s", msg);
    if (add_format(oc, f) < 0) {
        format_free(f);
        return gw_conf_error(err, n, "out of memory");
    }
    return 0;
}

/* The level's list: created by its first access_log, grown by the next ones. */
static gw_alog_conf_t *level_conf(struct gw_obs_conf *oc, gw_http_lconf_t *lc)
{
    gw_alog_conf_t *ac, **grown;

    if (lc->access_log != GW_CONF_UNSET_U64)
        return (gw_alog_conf_t *)(uintptr_t)lc->access_log;
    ac = calloc(1, sizeof(*ac));
    grown = realloc(oc->confs, (oc->nconfs + 1) * sizeof(*grown));
    if (ac == NULL || grown == NULL) {
        free(ac);
        if (grown)
            oc->confs = grown;
        return NULL;
    }
    oc->confs = grown;
    oc->confs[oc->nconfs++] = ac;
    lc->access_log = (uint64_t)(uintptr_t)ac;
    return ac;
}

int gw_accesslog_set(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_cycle_t *cy = user;
    struct gw_obs_conf *oc = obs_conf(cy);
    gw_http_lconf_t *lc = conf;
    alog_t log = {.fd = -1}, *grown;
    gw_alog_conf_t *ac;
    const char *fname = "combined";
    uint32_t i = 2;
    char *path;

    if (oc == NULL || (ac = level_conf(oc, lc)) == NULL)
        return gw_conf_error(err, n, "out of memory");
    if (strcmp(n->args[1], "off") == 0) {
        if (n->nargs != 2)
            return gw_conf_error(err, n, "invalid parameter \"%s\"", n->args[2]);
        return 0; /* an empty list: nothing logged at this level */
    }
    if (n->nargs > 2 && strchr(n->args[2], '=') == NULL) {
        fname = n->args[2];
        i = 3;
    }
    log.fmt = find_format(oc, fname);
    if (log.fmt == NULL)
        return gw_conf_error(err, n, "unknown log format \"%s\"", fname);
    for (; i < n->nargs; i++) {
        const char *a = n->args[i];
        uint64_t v;

        if (strncmp(a, "buffer=", 7) == 0) {
            if (gw_conf_parse_size(a + 7, &v) < 0 || v == 0 || v > (64u << 20))
                return gw_conf_error(err, n, "invalid buffer size \"%s\"", a + 7);
            log.buffer = (uint32_t)v;
        } else if (strncmp(a, "flush=", 6) == 0) {
            if (gw_conf_parse_msec(a + 6, &v) < 0 || v == 0)
                return gw_conf_error(err, n, "invalid flush time \"%s\"", a + 6);
            log.flush_ms = v;
        } else if (strncmp(a, "gzip", 4) == 0 || strncmp(a, "if=", 3) == 0) {
            return gw_conf_error(err, n, "the \"%.*s\" parameter of \"access_log\" is not supported yet",
                                 (int)strcspn(a, "="), a);
        } else {
            return gw_conf_error(err, n, "invalid parameter \"%s\"", a);
        }
    }
    if (log.flush_ms && !log.buffer)
        log.buffer = 64 * 1024; /* nginx: flush= alone means a 64k buffer */
    path = gw_cycle_path(cy, n->args[1]);
    if (path == NULL)
        return gw_conf_error(err, n, "out of memory");
    log.fd = gw_log_file_open(path);
    if (log.fd < 0) {
        gw_conf_error(err, n, "open() \"%s\" failed (%d: %s)", path, -log.fd, strerror(-log.fd));
        free(path);
        return -1;
    }
    free(path);
    grown = realloc(ac->logs, (ac->n + 1) * sizeof(*grown));
    if (grown == NULL)
        return gw_conf_error(err, n, "out of memory");
    ac->logs = grown;
    ac->logs[ac->n++] = log;
    return 0;
}

int gw_accesslog_init_cycle(gw_cycle_t *cy, gw_conf_err_t *err)
{
    return gw_vars_log_linked() ? 0 : -1;
}

void gw_accesslog_free_cycle(gw_cycle_t *cy)
{
    gw_http_conf_t *hc = cy->http;
    struct gw_obs_conf *oc = hc ? hc->obs : NULL;

    if (oc == NULL)
        return;
    for (uint32_t i = 0; i < oc->nformats; i++)
        format_free(oc->formats[i]);
    for (uint32_t i = 0; i < oc->nconfs; i++) {
        free(oc->confs[i]->logs);
        free(oc->confs[i]);
    }
    free(oc->formats);
    free(oc->confs);
    free(oc);
    hc->obs = NULL;
}

/* ---- writing a line ---- */

typedef struct line {
    char *p;
    size_t len, cap;
} line_t;

static int room(line_t *l, size_t more)
{
    char *grown;
    size_t cap;

    if (l->len + more <= l->cap)
        return 0;
    cap = l->cap ? l->cap : 4096;
    while (cap < l->len + more)
        cap *= 2;
    grown = realloc(l->p, cap);
    if (grown == NULL)
        return -1;
    l->p = grown;
    l->cap = cap;
    return 0;
}

/* nginx's escaping of a variable's value: "default" as \xHH, "json" as JSON string escapes. */
static void put_escaped(line_t *l, const char *v, size_t n, int escape)
{
    static const char hex[] = "0123456789ABCDEF";

    if (room(l, n * 6) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        char *o = l->p + l->len;

        if (escape == ESC_NONE) {
            *o = (char)c;
            l->len++;
        } else if (escape == ESC_JSON) {
            const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;

            if (e) {
                memcpy(o, e, 2);
                l->len += 2;
            } else if (c < 0x20) {
                memcpy(o, "\\u00", 4);
                o[4] = hex[c >> 4];
                o[5] = hex[c & 15];
                l->len += 6;
            } else {
                *o = (char)c;
                l->len++;
            }
        } else if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
            o[0] = '\\';
            o[1] = 'x';
            o[2] = hex[c >> 4];
            o[3] = hex[c & 15];
            l->len += 4;
        } else {
            *o = (char)c;
            l->len++;
        }
    }
}

static void format_line(line_t *l, const log_format_t *f, const gw_http_req_t *req)
{
    char small[512];

    l->len = 0;
    for (uint32_t i = 0; i < f->n; i++) {
        const piece_t *p = &f->p[i];
        size_t n;

        if (p->lit) {
            if (room(l, p->lit_len) == 0) {
                memcpy(l->p + l->len, p->lit, p->lit_len);
                l->len += p->lit_len;
            }
            continue;
        }
        n = gw_cv_eval(p->var, req, small, sizeof(small));
        if (n == 0) { /* nginx prints a missing value as "-", except in json and none escaping */
            if (f->escape == ESC_DEFAULT)
                put_escaped(l, "-", 1, ESC_NONE);
        } else if (n <= sizeof(small)) {
            put_escaped(l, small, n, f->escape);
        } else {
            char *big = malloc(n);

            if (big) {
                gw_cv_eval(p->var, req, big, n);
                put_escaped(l, big, n, f->escape);
                free(big);
            }
        }
    }
    if (room(l, 1) == 0)
        l->p[l->len++] = '\n';
}

/* The line being built, per worker thread: grown once, reused for every request. */
static _Thread_local line_t line;

void gw_accesslog_thread_free(void)
{
    free(line.p);
    line = (line_t){0};
}

void gw_accesslog_request(gw_worker_t *w, gw_http_req_t *req, unsigned status)
{
    const gw_http_lconf_t *lc = gw_exchange_lconf(req);
    const gw_alog_conf_t *ac;

    if (lc->access_log == 0 || lc->access_log == GW_CONF_UNSET_U64)
        return;
    ac = (const gw_alog_conf_t *)(uintptr_t)lc->access_log;
    for (uint32_t i = 0; i < ac->n; i++) {
        const alog_t *log = &ac->logs[i];

        format_line(&line, log->fmt, req);
        gw_logbuf_append(w, log->fd, line.p, line.len, log->buffer, log->flush_ms);
    }
}
