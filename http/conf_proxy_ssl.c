/*
 * proxy_ssl_* (http, server and location level, inherited downwards as in
 * nginx) and building the TLS client context of every location whose
 * proxy_pass says https://. Defaults are nginx's: no verification, no SNI,
 * proxy_ssl_name = the proxy_pass host, TLSv1.2 TLSv1.3 (nginx 1.22 adds
 * TLSv1 TLSv1.1, which Debian's wolfSSL does not offer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/conf.h"
#include "core/cycle.h"
#include "conf_proxy_ssl.h"
#include "http.h"
#include "tls/tls.h"

static gw_tls_proxy_conf_t *pconf_new(void)
{
    gw_tls_proxy_conf_t *p = calloc(1, sizeof(*p));

    if (p) {
        p->verify = p->verify_depth = p->server_name = p->protocols = p->session_reuse = -1;
    }
    return p;
}

/* The struct of the level a directive is in: the http block, a server, or a location. */
static gw_tls_proxy_conf_t *level(void *conf, void *user)
{
    gw_cycle_t *cy = user;
    gw_http_conf_t *hc = cy->http;
    gw_tls_proxy_conf_t **slot = NULL;

    if (conf == hc)
        slot = &hc->proxy_ssl;
    for (uint32_t i = 0; slot == NULL && i < hc->nsrvs; i++)
        if (conf == hc->srvs[i])
            slot = &hc->srvs[i]->proxy_ssl;
    if (slot == NULL)
        slot = &((gw_http_loc_t *)conf)->proxy_ssl;
    if (*slot == NULL)
        *slot = pconf_new();
    return *slot;
}

#define LEVEL_OR_FAIL(p)                                                                                             \
    gw_tls_proxy_conf_t *p = level(conf, user);                                                                      \
    if (p == NULL)                                                                                                   \
        return gw_conf_error(err, n, "out of memory");

static int dup_once(const gw_conf_node_t *n, char **slot, const char *value, gw_conf_err_t *err)
{
    if (*slot)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    *slot = strdup(value);
    return *slot ? 0 : gw_conf_error(err, n, "out of memory");
}

/* A file: resolved against the configuration's directory, as nginx does. */
static int path_once(const gw_conf_node_t *n, void *user, char **slot, const char **file, uint32_t *line,
                     gw_conf_err_t *err)
{
    gw_cycle_t *cy = user;

    if (*slot)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (n->args[1][0] == '/' || cy->conf.conf_prefix == NULL)
        *slot = gw_cycle_path(cy, n->args[1]);
    else if (asprintf(slot, "%s%s", cy->conf.conf_prefix, n->args[1]) < 0)
        *slot = NULL;
    *file = n->file;
    *line = n->line;
    return *slot ? 0 : gw_conf_error(err, n, "out of memory");
}

static int flag_once(const gw_conf_node_t *n, int *slot, gw_conf_err_t *err)
{
    if (*slot != -1)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    *slot = strcasecmp(n->args[1], "on") == 0;
    return 0;
}

static int set_verify(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(p);
    return flag_once(n, &p->verify, err);
}

static int set_server_name(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                           gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(p);
    return flag_once(n, &p->server_name, err);
}

static int set_session_reuse(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                             gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(p);
    return flag_once(n, &p->session_reuse, err);
}

static int set_depth(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    uint64_t v;

    LEVEL_OR_FAIL(p);
    if (p->verify_depth != -1)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (gw_conf_parse_uint(n->args[1], &v) < 0 || v > 100)
        return gw_conf_error(err, n, "invalid value \"%s\" in \"%s\" directive", n->args[1], n->args[0]);
    p->verify_depth = (int)v;
    return 0;
}

static int set_trusted(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(p);
    return path_once(n, user, &p->trusted, &p->trusted_file, &p->trusted_line, err);
}

static int set_cert(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(p);
    return path_once(n, user, &p->cert, &p->cert_file, &p->cert_line, err);
}

static int set_key(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(p);
    return path_once(n, user, &p->key, &p->key_file, &p->key_line, err);
}

static int set_name(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(p);
    if (strchr(n->args[1], '$'))
        return gw_conf_error(err, n, "variables in \"proxy_ssl_name\" are not supported yet");
    return dup_once(n, &p->name, n->args[1], err);
}

static int set_ciphers(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(p);
    return dup_once(n, &p->ciphers, n->args[1], err);
}

static int set_protocols(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                         gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(p);
    if (p->protocols != -1)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    p->protocols = 0;
    for (uint32_t i = 1; i < n->nargs; i++) {
        const char *a = n->args[i];

        if (strcmp(a, "TLSv1.2") == 0)
            p->protocols |= GW_TLS_V1_2;
        else if (strcmp(a, "TLSv1.3") == 0)
            p->protocols |= GW_TLS_V1_3;
        else if (strcmp(a, "SSLv2") && strcmp(a, "SSLv3") && strcmp(a, "TLSv1") && strcmp(a, "TLSv1.1"))
            return gw_conf_error(err, n, "invalid value \"%s\"", a);
    }
    return 0;
}

#define HSL (GW_CONF_HTTP | GW_CONF_SERVER | GW_CONF_LOCATION)

static const gw_conf_cmd_t cmds[] = {
    {"proxy_ssl_verify", HSL, GW_CONF_FLAG, set_verify, 0},
    {"proxy_ssl_verify_depth", HSL, GW_CONF_TAKE1, set_depth, 0},
    {"proxy_ssl_trusted_certificate", HSL, GW_CONF_TAKE1, set_trusted, 0},
    {"proxy_ssl_server_name", HSL, GW_CONF_FLAG, set_server_name, 0},
    {"proxy_ssl_name", HSL, GW_CONF_TAKE1, set_name, 0},
    {"proxy_ssl_protocols", HSL, GW_CONF_1MORE, set_protocols, 0},
    {"proxy_ssl_ciphers", HSL, GW_CONF_TAKE1, set_ciphers, 0},
    {"proxy_ssl_certificate", HSL, GW_CONF_TAKE1, set_cert, 0},
    {"proxy_ssl_certificate_key", HSL, GW_CONF_TAKE1, set_key, 0},
    {"proxy_ssl_session_reuse", HSL, GW_CONF_FLAG, set_session_reuse, 0},
    {NULL, 0, 0, NULL, 0},
};

/* Fill what `p` leaves unset from `from` (a parent level), copying strings. */
static void inherit(gw_tls_proxy_conf_t *p, const gw_tls_proxy_conf_t *from)
{
    if (from == NULL)
        return;
    if (p->verify == -1)
        p->verify = from->verify;
    if (p->verify_depth == -1)
        p->verify_depth = from->verify_depth;
    if (p->server_name == -1)
        p->server_name = from->server_name;
    if (p->protocols == -1)
        p->protocols = from->protocols;
    if (p->session_reuse == -1)
        p->session_reuse = from->session_reuse;
    if (p->trusted == NULL && from->trusted) {
        p->trusted = strdup(from->trusted);
        p->trusted_file = from->trusted_file;
        p->trusted_line = from->trusted_line;
    }
    if (p->cert == NULL && from->cert) {
        p->cert = strdup(from->cert);
        p->cert_file = from->cert_file;
        p->cert_line = from->cert_line;
    }
    if (p->key == NULL && from->key) {
        p->key = strdup(from->key);
        p->key_file = from->key_file;
        p->key_line = from->key_line;
    }
    if (p->name == NULL && from->name)
        p->name = strdup(from->name);
    if (p->ciphers == NULL && from->ciphers)
        p->ciphers = strdup(from->ciphers);
}

static int init_cycle(gw_cycle_t *cy, gw_conf_err_t *err)
{
    gw_http_conf_t *hc = cy->http;

    if (hc == NULL)
        return 0;
    for (uint32_t i = 0; i < hc->nsrvs; i++) {
        gw_http_srv_t *s = hc->srvs[i];

        for (uint32_t k = 0; k < s->nlocs; k++) {
            gw_http_loc_t *l = s->locs[k];
            gw_conf_node_t where = {.file = l->pp_file, .line = l->pp_line};
            gw_tls_proxy_conf_t *p;

            if (!l->proxy_https)
                continue;
            if (l->proxy_ssl == NULL && (l->proxy_ssl = pconf_new()) == NULL)
                return gw_conf_error(err, &where, "out of memory");
            p = l->proxy_ssl;
            /* Nested locations: their parents first (locs lists a parent before its children). */
            for (const gw_http_loc_t *up = l->parent; up; up = up->parent)
                inherit(p, up->proxy_ssl);
            inherit(p, s->proxy_ssl);
            inherit(p, hc->proxy_ssl);
            if (p->verify == -1)
                p->verify = 0;
            if (p->verify_depth == -1)
                p->verify_depth = 1;
            if (p->server_name == -1)
                p->server_name = 0;
            if (p->protocols == -1)
                p->protocols = GW_TLS_V1_2 | GW_TLS_V1_3;
            if (p->session_reuse == -1)
                p->session_reuse = 1;
            if (gw_tls_proxy_build(p, &where, err) < 0)
                return -1;
        }
    }
    return 0;
}

static void pconf_free(gw_tls_proxy_conf_t *p)
{
    if (p == NULL)
        return;
    gw_tls_proxy_free(p);
    free(p->trusted);
    free(p->name);
    free(p->ciphers);
    free(p->cert);
    free(p->key);
    free(p);
}

static void free_cycle(gw_cycle_t *cy)
{
    gw_http_conf_t *hc = cy->http;

    if (hc == NULL)
        return;
    for (uint32_t i = 0; i < hc->nsrvs; i++) {
        for (uint32_t k = 0; k < hc->srvs[i]->nlocs; k++) {
            pconf_free(hc->srvs[i]->locs[k]->proxy_ssl);
            hc->srvs[i]->locs[k]->proxy_ssl = NULL;
        }
        pconf_free(hc->srvs[i]->proxy_ssl);
        hc->srvs[i]->proxy_ssl = NULL;
    }
    pconf_free(hc->proxy_ssl);
    hc->proxy_ssl = NULL;
}

static void exit_worker(gw_worker_t *w, struct gw_wcycle *wc)
{
    gw_tls_proxy_thread_exit();
    gw_tls_thread_exit();
}

const gw_module_t gw_http_proxy_ssl_module = {
    .name = "http_proxy_ssl",
    .cmds = cmds,
    .init_cycle = init_cycle,
    .free_cycle = free_cycle,
    .exit_worker = exit_worker,
};
