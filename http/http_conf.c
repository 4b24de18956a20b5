/*
 * The http { } configuration: server and location blocks, listen,
 * server_name, proxy_pass and the per-level settings, merged downwards as
 * nginx does (a level inherits what it leaves unset).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer/balancer.h"
#include "core/conf.h"
#include "core/cycle.h"
#include "conf_answers.h"
#include "core/gw.h"
#include "conf_route.h"
#include "http.h"
#include "vars.h"

#define LC(field) offsetof(gw_http_lconf_t, field)

/* Every field of gw_http_lconf_t is a uint64_t with UINT64_MAX as "unset". */
static void lconf_init(gw_http_lconf_t *lc)
{
    memset(lc, 0xff, sizeof(*lc));
}

static void lconf_merge(gw_http_lconf_t *child, const gw_http_lconf_t *parent)
{
    uint64_t *c = (uint64_t *)child;
    const uint64_t *p = (const uint64_t *)parent;

    for (size_t i = 0; i < sizeof(*child) / sizeof(uint64_t); i++)
        if (c[i] == UINT64_MAX)
            c[i] = p[i];
}

/* nginx's defaults, applied at the http level before merging down. */
static void lconf_defaults(gw_http_lconf_t *lc)
{
    const gw_http_lconf_t d = {
        .client_max_body_size = 1024 * 1024,
        .keepalive_timeout = 75000,
        .keepalive_requests = 1000,
        .client_header_timeout = 60000,
        .client_body_timeout = 60000,
        .send_timeout = 60000,
        .proxy_connect_timeout = 60000,
        .proxy_read_timeout = 60000,
        .proxy_send_timeout = 60000,
        .proxy_next_upstream = GW_FT_ERROR | GW_FT_TIMEOUT,
        .proxy_next_upstream_tries = 0,
        .proxy_next_upstream_timeout = 0,
        .gzip_min_length = 20,
        .gzip_comp_level = 1,
        .gzip_http_version = 1,
    };

    lconf_merge(lc, &d);
}

/* The settings directives write into the gw_http_lconf_t at the start of
 * every level's struct (http conf, server, location all begin with one). */
static int set_lc_size(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    return gw_conf_set_size_slot(n, cmd, conf, user, err);
}

static int set_lc_msec(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    return gw_conf_set_msec_slot(n, cmd, conf, user, err);
}

/* keepalive_timeout T [header_timeout]: nginx's second value only feeds a
 * "Keep-Alive: timeout=" response header, which HTTP/1.1 clients ignore. */
static int set_keepalive_timeout(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                                 gw_conf_err_t *err)
{
    gw_http_lconf_t *lc = conf;
    uint64_t ignored;

    if (lc->keepalive_timeout != GW_CONF_UNSET_MSEC)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (gw_conf_parse_msec(n->args[1], &lc->keepalive_timeout) < 0 ||
        (n->nargs == 3 && gw_conf_parse_msec(n->args[2], &ignored) < 0))
        return gw_conf_error(err, n, "invalid value \"%s\" in \"%s\" directive", n->args[n->nargs - 1],
                             n->args[0]);
    return 0;
}

static int set_keepalive_requests(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                                  gw_conf_err_t *err)
{
    return gw_conf_set_uint_slot(n, cmd, conf, user, err);
}

static int set_http(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err);
static int set_next_upstream(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                             gw_conf_err_t *err);
static int set_server(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                      gw_conf_err_t *err);

#define HSL (GW_CONF_HTTP | GW_CONF_SERVER | GW_CONF_LOCATION)
#define HS (GW_CONF_HTTP | GW_CONF_SERVER)

const gw_conf_cmd_t gw_http_cmds[] = {
    {"http", GW_CONF_MAIN, GW_CONF_BLOCK | GW_CONF_NOARGS, set_http, 0},
    {"server", GW_CONF_HTTP, GW_CONF_BLOCK | GW_CONF_NOARGS, set_server, 0},
    {"client_max_body_size", HSL, GW_CONF_TAKE1, set_lc_size, LC(client_max_body_size)},
    {"keepalive_timeout", HSL, GW_CONF_TAKE12, set_keepalive_timeout, 0},
    {"keepalive_requests", HSL, GW_CONF_TAKE1, set_keepalive_requests, LC(keepalive_requests)},
    {"client_header_timeout", HS, GW_CONF_TAKE1, set_lc_msec, LC(client_header_timeout)},
    {"client_body_timeout", HSL, GW_CONF_TAKE1, set_lc_msec, LC(client_body_timeout)},
    {"send_timeout", HSL, GW_CONF_TAKE1, set_lc_msec, LC(send_timeout)},
    {"proxy_connect_timeout", HSL, GW_CONF_TAKE1, set_lc_msec, LC(proxy_connect_timeout)},
    {"proxy_read_timeout", HSL, GW_CONF_TAKE1, set_lc_msec, LC(proxy_read_timeout)},
    {"proxy_send_timeout", HSL, GW_CONF_TAKE1, set_lc_msec, LC(proxy_send_timeout)},
    {"proxy_next_upstream", HSL, GW_CONF_1MORE, set_next_upstream, 0},
    {"proxy_next_upstream_tries", HSL, GW_CONF_TAKE1, gw_conf_set_uint_slot, LC(proxy_next_upstream_tries)},
    {"proxy_next_upstream_timeout", HSL, GW_CONF_TAKE1, set_lc_msec, LC(proxy_next_upstream_timeout)},
    {NULL, 0, 0, NULL, 0},
};

/* proxy_next_upstream error | timeout | invalid_header | http_5xx ... | non_idempotent | off */
static int set_next_upstream(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                             gw_conf_err_t *err)
{
    static const gw_conf_bit_t names[] = {
        {"error", GW_FT_ERROR},       {"timeout", GW_FT_TIMEOUT},   {"invalid_header", GW_FT_INVALID_HEADER},
        {"http_500", GW_FT_HTTP_500}, {"http_502", GW_FT_HTTP_502}, {"http_503", GW_FT_HTTP_503},
        {"http_504", GW_FT_HTTP_504}, {"http_403", GW_FT_HTTP_403}, {"http_404", GW_FT_HTTP_404},
        {"http_429", GW_FT_HTTP_429}, {"non_idempotent", GW_FT_NON_IDEMPOTENT},
    };
    gw_http_lconf_t *lc = conf;
    uint64_t mask = 0;

    if (lc->proxy_next_upstream != GW_CONF_UNSET_U64)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    for (uint32_t i = 1; i < n->nargs; i++) {
        uint64_t bit;

        if (strcmp(n->args[i], "off") == 0) {
            if (n->nargs != 2)
                return gw_conf_error(err, n, "\"off\" cannot be combined with other values");
            mask = 0;
            continue;
        }
        if (gw_conf_bit(n, i, names, sizeof(names) / sizeof(names[0]), &bit, err) < 0)
            return -1;
        mask |= bit;
    }
    lc->proxy_next_upstream = mask;
    return 0;
}

/* Append item to a growing array of pointers (*arrayp, *n): the configuration's lists. */
int gw_http_push_ptr(void *arrayp, uint32_t *n, void *item)
{
    void ***array = arrayp;
    void **grown = realloc(*array, (*n + 1) * sizeof(void *));

    if (grown == NULL)
        return -1;
    grown[(*n)++] = item;
    *array = grown;
    return 0;
}

static int set_http(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_cycle_t *cy = user;
    gw_http_conf_t *hc;

    if (cy->http)
        return gw_conf_error(err, n, "\"http\" directive is duplicate");
    hc = calloc(1, sizeof(*hc));
    if (hc == NULL)
        return gw_conf_error(err, n, "out of memory");
    lconf_init(&hc->lc);
    cy->http = hc;
    return gw_conf_apply(n->children, n->nchildren, GW_CONF_HTTP, gw_cycle_tables(), hc, cy, err);
}

static int set_server(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                      gw_conf_err_t *err)
{
    gw_http_conf_t *hc = conf;
    gw_http_srv_t *s = calloc(1, sizeof(*s));

    if (s == NULL || gw_http_push_ptr(&hc->srvs, &hc->nsrvs, s) < 0) {
        free(s);
        return gw_conf_error(err, n, "out of memory");
    }
    lconf_init(&s->lc);
    s->file = n->file;
    s->line = n->line;
    return gw_conf_apply(n->children, n->nchildren, GW_CONF_SERVER, gw_cycle_tables(), s, user, err);
}

/* hash KEY names variables: compile every upstream's key now (the balancer cannot). */
static int compile_hash_keys(gw_cycle_t *cy, gw_conf_err_t *err)
{
    uint32_t n;
    gw_upstream_t *const *ups = gw_upstreams(cy, &n);

    for (uint32_t i = 0; i < n; i++) {
        char msg[256];

        if (ups[i]->hash_key == NULL)
            continue;
        ups[i]->hash_key_cv = gw_cv_compile(ups[i]->hash_key, msg, sizeof(msg));
        if (ups[i]->hash_key_cv == NULL)
            return gw_conf_error(err, &(gw_conf_node_t){.file = ups[i]->file, .line = ups[i]->line}, "%s", msg);
    }
    return 0;
}

static int init_cycle(gw_cycle_t *cy, gw_conf_err_t *err)
{
    gw_http_conf_t *hc = cy->http;

    if (compile_hash_keys(cy, err) < 0)
        return -1;
    if (hc == NULL)
        return 0;
    lconf_defaults(&hc->lc);
    if (gw_answers_defaults(cy, &hc->ans) < 0)
        return gw_conf_error(err, &(gw_conf_node_t){.file = cy->conf_file, .line = 0}, "out of memory");
    for (uint32_t i = 0; i < hc->nsrvs; i++) {
        gw_http_srv_t *s = hc->srvs[i];

        lconf_merge(&s->lc, &hc->lc);
        gw_answers_merge(&s->ans, &hc->ans);
        /* s->locs lists a parent before its children: each inherits from what encloses it */
        for (uint32_t k = 0; k < s->nlocs; k++) {
            gw_http_loc_t *l = s->locs[k];

            lconf_merge(&l->lc, l->parent ? &l->parent->lc : &s->lc);
            gw_answers_merge(&l->ans, l->parent ? &l->parent->ans : &s->ans);
        }
    }
    return gw_route_init_cycle(cy, err);
}

static void free_cycle(gw_cycle_t *cy)
{
    gw_http_conf_t *hc = cy->http;
    uint32_t nu;
    gw_upstream_t *const *ups = gw_upstreams(cy, &nu);

    for (uint32_t i = 0; i < nu; i++) {
        gw_cv_free(ups[i]->hash_key_cv);
        ups[i]->hash_key_cv = NULL;
    }
    if (hc == NULL)
        return;
    for (uint32_t i = 0; i < hc->nsrvs; i++) {
        gw_http_srv_t *s = hc->srvs[i];

        for (uint32_t k = 0; k < s->nnames; k++)
            free(s->names[k]);
        for (uint32_t k = 0; k < s->nlocs; k++) {
            free(s->locs[k]->match);
            free(s->locs[k]->proxy_pass);
            free(s->locs[k]->proxy_host);
            free(s->locs[k]->proxy_uri);
            gw_answers_free(&s->locs[k]->ans);
            gw_route_free_loc(s->locs[k]);
            free(s->locs[k]);
        }
        gw_route_free_server(s);
        free(s->names);
        free(s->locs);
        free(s->listens);
        gw_answers_free(&s->ans);
        free(s);
    }
    gw_route_free_addrs(hc);
    free(hc->srvs);
    gw_answers_free(&hc->ans);
    free(hc);
    cy->http = NULL;
}

const gw_module_t gw_http_module = {
    .name = "http",
    .cmds = gw_http_cmds,
    .init_cycle = init_cycle,
    .free_cycle = free_cycle,
    .init_worker = gw_http_init_worker,
    .exit_worker = gw_http_exit_worker,
};
