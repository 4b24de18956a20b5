/*
 * Directives for the answers the gateway gives itself and for its limits:
 * return, error_page, root, internal, allow, deny, proxy_intercept_errors,
 * large_client_header_buffers. Their values live in the gw_http_ans_t that
 * follows the gw_http_lconf_t in every level's struct.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "conf_answers.h"
#include "core/conf.h"
#include "core/cycle.h"
#include "vars.h"

_Static_assert(offsetof(gw_http_loc_t, ans) == offsetof(gw_http_srv_t, ans), "ans at one offset in every level");
_Static_assert(offsetof(gw_http_loc_t, ans) == offsetof(gw_http_conf_t, ans), "ans at one offset in every level");

static gw_http_ans_t *ans_of(void *conf)
{
    return (gw_http_ans_t *)((char *)conf + offsetof(gw_http_loc_t, ans));
}

static int parse_code(const char *s, uint64_t *code)
{
    return gw_conf_parse_uint(s, code) < 0 || *code > 999 ? -1 : 0;
}

static struct gw_cv *compile(const gw_conf_node_t *n, const char *text, gw_conf_err_t *err)
{
    char msg[256];
    struct gw_cv *cv = gw_cv_compile(text, msg, sizeof(msg));

    if (cv == NULL)
        gw_conf_error(err, n, "%s", msg);
    return cv;
}

/* return CODE [TEXT] | return URL (a 302). Only the first return of a level counts, as in nginx. */
static int set_return(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_http_ans_t *a = ans_of(conf);
    const char *text = NULL;
    uint64_t code;

    if (parse_code(n->args[1], &code) == 0) {
        if (n->nargs == 3)
            text = n->args[2];
    } else if (n->nargs == 2 && (strncmp(n->args[1], "http://", 7) == 0 || strncmp(n->args[1], "https://", 8) == 0 ||
                                 strncmp(n->args[1], "$scheme", 7) == 0)) {
        code = 302;
        text = n->args[1];
    } else {
        return gw_conf_error(err, n, "invalid return code \"%s\"", n->args[1]);
    }
    if (a->ret_code)
        return 0;
    if (text && (a->ret_text = compile(n, text, err)) == NULL)
        return -1;
    a->ret_code = (uint16_t)code;
    return 0;
}

/* error_page CODE ... [=[CODE]] URI|@name|URL */
static int set_error_page(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                          gw_conf_err_t *err)
{
    gw_http_ans_t *a = ans_of(conf);
    const char *eq = n->args[n->nargs - 2];
    uint32_t last = n->nargs - 1; /* codes are args[1 .. last) */
    int overwrite = -1;
    gw_error_page_t *grown;

    if (eq[0] == '=') {
        uint64_t v;

        if (last == 2)
            return gw_conf_error(err, n, "invalid value \"%s\"", eq);
        if (eq[1]) {
            if (parse_code(eq + 1, &v) < 0)
                return gw_conf_error(err, n, "invalid value \"%s\"", eq);
            overwrite = (int)v;
        } else {
            overwrite = 0;
        }
        last--;
    }
    if (a->error_pages && !(a->own & GW_ANS_OWN_PAGES))
        a->error_pages = NULL, a->nerror_pages = 0;
    for (uint32_t i = 1; i < last; i++) {
        uint64_t code;

        if (gw_conf_parse_uint(n->args[i], &code) < 0 || code == 499) /* 499: the client closed, nothing to answer */
            return gw_conf_error(err, n, "invalid value \"%s\"", n->args[i]);
        if (code < 300 || code > 599)
            return gw_conf_error(err, n, "value \"%s\" must be between 300 and 599", n->args[i]);
        grown = realloc(a->error_pages, (a->nerror_pages + 1) * sizeof(*grown));
        if (grown == NULL)
            return gw_conf_error(err, n, "out of memory");
        a->error_pages = grown;
        a->own |= GW_ANS_OWN_PAGES;
        grown += a->nerror_pages;
        grown->status = (uint16_t)code;
        grown->overwrite = (int16_t)overwrite;
        grown->target = compile(n, n->args[n->nargs - 1], err);
        if (grown->target == NULL)
            return -1;
        a->nerror_pages++;
    }
    return 0;
}

static int set_root(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_http_ans_t *a = ans_of(conf);
    size_t len;

    if (a->root)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (strchr(n->args[1], '$'))
        return gw_conf_error(err, n, "variables in \"root\" are not supported");
    a->root = gw_cycle_path(user, n->args[1]);
    if (a->root == NULL)
        return gw_conf_error(err, n, "out of memory");
    a->own |= GW_ANS_OWN_ROOT;
    len = strlen(a->root);
    while (len > 1 && a->root[len - 1] == '/') /* the URI brings its own */
        a->root[--len] = '\0';
    return 0;
}

static int set_internal(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                        gw_conf_err_t *err)
{
    ans_of(conf)->internal = 1;
    return 0;
}

static int set_access(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_http_ans_t *a = ans_of(conf);
    gw_access_rule_t r, *grown;

    if (gw_access_parse(n->args[1], n->args[0][0] == 'd', &r) < 0)
        return gw_conf_error(err, n, "invalid parameter \"%s\"", n->args[1]);
    grown = realloc(a->rules, (a->nrules + 1) * sizeof(*grown));
    if (grown == NULL)
        return gw_conf_error(err, n, "out of memory");
    a->rules = grown;
    a->own |= GW_ANS_OWN_RULES;
    a->rules[a->nrules++] = r;
    return 0;
}

static int set_intercept(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                         gw_conf_err_t *err)
{
    gw_http_ans_t *a = ans_of(conf);

    if (a->intercept_errors)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (strcmp(n->args[1], "on") == 0)
        a->intercept_errors = 2;
    else if (strcmp(n->args[1], "off") == 0)
        a->intercept_errors = 1;
    else
        return gw_conf_error(err, n, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"",
                             n->args[1], n->args[0]);
    return 0;
}

/* large_client_header_buffers NUMBER SIZE */
static int set_header_buffers(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                              gw_conf_err_t *err)
{
    gw_http_ans_t *a = ans_of(conf);
    uint64_t num, size;

    if (a->hdr_buf_n)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (gw_conf_parse_uint(n->args[1], &num) < 0 || num == 0 || num > 1024 || gw_conf_parse_size(n->args[2], &size) < 0 ||
        size < 2 || size > (1u << 20) || num * size > (1u << 24))
        return gw_conf_error(err, n, "\"%s\" directive invalid value", n->args[0]);
    a->hdr_buf_n = (uint32_t)num;
    a->hdr_buf_size = (uint32_t)size;
    return 0;
}

#define HSL (GW_CONF_HTTP | GW_CONF_SERVER | GW_CONF_LOCATION)

static const gw_conf_cmd_t answers_cmds[] = {
    {"return", GW_CONF_SERVER | GW_CONF_LOCATION, GW_CONF_TAKE12, set_return, 0},
    {"error_page", HSL, GW_CONF_2MORE, set_error_page, 0},
    {"root", HSL, GW_CONF_TAKE1, set_root, 0},
    {"internal", GW_CONF_LOCATION, GW_CONF_NOARGS, set_internal, 0},
    {"allow", HSL, GW_CONF_TAKE1, set_access, 0},
    {"deny", HSL, GW_CONF_TAKE1, set_access, 0},
    {"proxy_intercept_errors", HSL, GW_CONF_TAKE1, set_intercept, 0},
    {"large_client_header_buffers", GW_CONF_HTTP | GW_CONF_SERVER, GW_CONF_TAKE2, set_header_buffers, 0},
    {NULL, 0, 0, NULL, 0},
};

int gw_answers_defaults(const gw_cycle_t *cy, gw_http_ans_t *a)
{
    if (a->root == NULL) {
        a->root = gw_cycle_path(cy, "html");
        if (a->root == NULL)
            return -1;
        a->own |= GW_ANS_OWN_ROOT;
    }
    if (a->intercept_errors == 0)
        a->intercept_errors = 1;
    if (a->hdr_buf_n == 0) {
        a->hdr_buf_n = 4;
        a->hdr_buf_size = 8192;
    }
    return 0;
}

void gw_answers_merge(gw_http_ans_t *child, const gw_http_ans_t *parent)
{
    if (child->error_pages == NULL) {
        child->error_pages = parent->error_pages;
        child->nerror_pages = parent->nerror_pages;
    }
    if (child->rules == NULL) {
        child->rules = parent->rules;
        child->nrules = parent->nrules;
    }
    if (child->root == NULL)
        child->root = parent->root;
    if (child->intercept_errors == 0)
        child->intercept_errors = parent->intercept_errors;
    if (child->hdr_buf_n == 0) {
        child->hdr_buf_n = parent->hdr_buf_n;
        child->hdr_buf_size = parent->hdr_buf_size;
    }
}

void gw_answers_free(gw_http_ans_t *a)
{
    gw_cv_free(a->ret_text);
    if (a->own & GW_ANS_OWN_PAGES) {
        for (uint32_t i = 0; i < a->nerror_pages; i++)
            gw_cv_free(a->error_pages[i].target);
        free(a->error_pages);
    }
    if (a->own & GW_ANS_OWN_RULES)
        free(a->rules);
    if (a->own & GW_ANS_OWN_ROOT)
        free(a->root);
    memset(a, 0, sizeof(*a));
}

const gw_module_t gw_answers_module = {
    .name = "answers",
    .cmds = answers_cmds,
};
