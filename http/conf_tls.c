/*
 * ssl_* directives (http and server level) and the glue between the HTTP
 * configuration and tls/: for every address with `listen ... ssl`, each of
 * its servers gets a wolfSSL context built from its merged settings, and the
 * address a gw_tls_listen_t that finds a server's context by SNI and answers
 * plain HTTP the way nginx does. Runs after the http module's init_cycle
 * (module order), when addresses and default servers are known.
 *
 * Defaults and deliberate differences from nginx 1.22:
 *   ssl_protocols TLSv1.2 TLSv1.3 (nginx also enables TLSv1 TLSv1.1; they are
 *     accepted here but never offered: Debian's wolfSSL is built without them)
 *   ssl_ciphers: wolfSSL's default list unless set (nginx: HIGH:!aNULL:!MD5)
 *   ssl_session_cache: builtin (wolfSSL's process-wide cache; nginx: none,
 *     which still resumes through tickets)
 *   ssl_ktls off: like nginx, where kTLS takes `ssl_conf_command Options KTLS`;
 *     the kernel path cannot be exercised on every machine (see tls/ktls.c)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/conf.h"
#include "core/conn.h"
#include "core/cycle.h"
#include "conf_tls.h"
#include "http.h"
#include "route.h"
#include "tls/tls.h"

static gw_tls_conf_t *tls_conf_new(void)
{
    gw_tls_conf_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->protocols = -1;
    t->prefer_server = -1;
    t->ktls = -1;
    t->session_tickets = -1;
    t->session_cache = -1;
    t->session_timeout = GW_CONF_UNSET_MSEC;
    return t;
}

/* The settings of the level the directive is in: the http block's or a server's. */
static gw_tls_conf_t *level(void *conf, void *user)
{
    gw_cycle_t *cy = user;
    struct gw_tls_conf **slot;

    if (conf == cy->http)
        slot = &((gw_http_conf_t *)conf)->ssl;
    else
        slot = &((gw_http_srv_t *)conf)->ssl;
    if (*slot == NULL)
        *slot = tls_conf_new();
    return *slot;
}

#define LEVEL_OR_FAIL(t)                                                                                             \
    gw_tls_conf_t *t = level(conf, user);                                                                            \
    if (t == NULL)                                                                                                   \
        return gw_conf_error(err, n, "out of memory");

static int set_path(const gw_conf_node_t *n, void *user, char **slot, const char **file, uint32_t *line,
                    gw_conf_err_t *err)
{
    if (*slot)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    /* nginx resolves certificate paths against the configuration's directory. */
    if (n->args[1][0] == '/' || ((gw_cycle_t *)user)->conf.conf_prefix == NULL)
        *slot = gw_cycle_path(user, n->args[1]);
    else if (asprintf(slot, "%s%s", ((gw_cycle_t *)user)->conf.conf_prefix, n->args[1]) < 0)
        *slot = NULL;
    if (*slot == NULL)
        return gw_conf_error(err, n, "out of memory");
    *file = n->file;
    *line = n->line;
    return 0;
}

static int set_certificate(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                           gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(t);
    return set_path(n, user, &t->cert, &t->cert_file, &t->cert_line, err);
}

static int set_certificate_key(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                               gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(t);
    return set_path(n, user, &t->key, &t->key_file, &t->key_line, err);
}

static int set_protocols(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                         gw_conf_err_t *err)
{
    static const gw_conf_bit_t names[] = {{"SSLv2", 0}, {"SSLv3", 0}, {"TLSv1", GW_TLS_V1}, {"TLSv1.1", GW_TLS_V1_1},
                 {"TLSv1.2", GW_TLS_V1_2}, {"TLSv1.3", GW_TLS_V1_3}};
    LEVEL_OR_FAIL(t);
    if (t->protocols != -1)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    t->protocols = 0;
    for (uint32_t i = 1; i < n->nargs; i++) {
        uint64_t bit;

        if (gw_conf_bit(n, i, names, sizeof(names) / sizeof(names[0]), &bit, err) < 0)
            return -1;
        t->protocols |= (int)bit;
    }
    return 0;
}

static int set_ciphers(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                       gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(t);
    if (t->ciphers)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    t->ciphers = strdup(n->args[1]);
    return t->ciphers ? 0 : gw_conf_error(err, n, "out of memory");
}

static int set_flag(const gw_conf_node_t *n, int *slot, gw_conf_err_t *err)
{
    if (*slot != -1)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    *slot = strcasecmp(n->args[1], "on") == 0;
    return 0;
}

static int set_prefer(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(t);
    return set_flag(n, &t->prefer_server, err);
}

static int set_ktls(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(t);
    return set_flag(n, &t->ktls, err);
}

static int set_tickets(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                       gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(t);
    return set_flag(n, &t->session_tickets, err);
}

/* ssl_session_cache off | none | [builtin[:size]] [shared:name:size]: the cache is wolfSSL's own either way. */
static int set_session_cache(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                             gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(t);
    if (t->session_cache != -1)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    for (uint32_t i = 1; i < n->nargs; i++) {
        const char *a = n->args[i];

        if (strcmp(a, "off") == 0 || strcmp(a, "none") == 0) {
            if (n->nargs != 2)
                return gw_conf_error(err, n, "invalid session cache \"%s\"", a);
            t->session_cache = 0;
        } else if (strcmp(a, "builtin") == 0 || strncmp(a, "builtin:", 8) == 0 ||
                   (strncmp(a, "shared:", 7) == 0 && strchr(a + 7, ':') && strchr(a + 7, ':') != a + 7)) {
            t->session_cache = 1;
        } else {
            return gw_conf_error(err, n, "invalid session cache \"%s\"", a);
        }
    }
    return 0;
}

static int set_session_timeout(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                               gw_conf_err_t *err)
{
    LEVEL_OR_FAIL(t);
    if (t->session_timeout != GW_CONF_UNSET_MSEC)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (gw_conf_parse_msec(n->args[1], &t->session_timeout) < 0)
        return gw_conf_error(err, n, "invalid value \"%s\" in \"%s\" directive", n->args[1], n->args[0]);
    return 0;
}

#define HS (GW_CONF_HTTP | GW_CONF_SERVER)

static const gw_conf_cmd_t tls_cmds[] = {
    {"ssl_certificate", HS, GW_CONF_TAKE1, set_certificate, 0},
    {"ssl_certificate_key", HS, GW_CONF_TAKE1, set_certificate_key, 0},
    {"ssl_protocols", HS, GW_CONF_1MORE, set_protocols, 0},
    {"ssl_ciphers", HS, GW_CONF_TAKE1, set_ciphers, 0},
    {"ssl_prefer_server_ciphers", HS, GW_CONF_FLAG, set_prefer, 0},
    {"ssl_session_cache", HS, GW_CONF_TAKE12, set_session_cache, 0},
    {"ssl_session_tickets", HS, GW_CONF_FLAG, set_tickets, 0},
    {"ssl_session_timeout", HS, GW_CONF_TAKE1, set_session_timeout, 0},
    {"ssl_ktls", HS, GW_CONF_FLAG, set_ktls, 0},
    {NULL, 0, 0, NULL, 0},
};

/* ---- building ---- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* A server's settings: its own, then the http block's, then the defaults. Strings are copied (each level frees its own). */
static int merge(gw_tls_conf_t *t, const gw_tls_conf_t *p)
{
    static const gw_tls_conf_t none = {.protocols = -1,
                                       .prefer_server = -1,
                                       .ktls = -1,
                                       .session_tickets = -1,
                                       .session_cache = -1,
                                       .session_timeout = GW_CONF_UNSET_MSEC};

    if (p == NULL)
        p = &none;
    if (t->cert == NULL && p->cert) {
        t->cert = strdup(p->cert);
        t->cert_file = p->cert_file;
        t->cert_line = p->cert_line;
    }
    if (t->key == NULL && p->key) {
        t->key = strdup(p->key);
        t->key_file = p->key_file;
        t->key_line = p->key_line;
    }
    if (t->ciphers == NULL)
        t->ciphers = dup_or_null(p->ciphers);
    if (t->protocols == -1)
        t->protocols = p->protocols != -1 ? p->protocols : GW_TLS_V1_2 | GW_TLS_V1_3;
    if (t->prefer_server == -1)
        t->prefer_server = p->prefer_server != -1 ? p->prefer_server : 0;
    if (t->ktls == -1)
        t->ktls = p->ktls != -1 ? p->ktls : 0;
    if (t->session_tickets == -1)
        t->session_tickets = p->session_tickets != -1 ? p->session_tickets : 1;
    if (t->session_cache == -1)
        t->session_cache = p->session_cache != -1 ? p->session_cache : 1;
    if (t->session_timeout == GW_CONF_UNSET_MSEC)
        t->session_timeout = p->session_timeout != GW_CONF_UNSET_MSEC ? p->session_timeout : 300000;
    return (p->cert && !t->cert) || (p->key && !t->key) ? -1 : 0;
}

/* SNI picks a server as the Host header does (route.c); a server without a certificate keeps the default's. */
static const gw_tls_conf_t *select_server(const void *arg, const char *name, uint32_t len)
{
    const gw_http_srv_t *s = gw_route_server(arg, name, len);

    return s ? s->ssl : NULL;
}

/* Plain HTTP on a TLS port: nginx's answer (its 497 turned into a 400), then close. */
static void plain_http(gw_worker_t *w, gw_conn_t *c)
{
    static const char body[] = "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n"
                               "<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
                               "<center>The plain HTTP request was sent to HTTPS port</center>\r\n"
                               "<hr><center>gateway</center>\r\n</body>\r\n</html>\r\n";
    static char resp[1024];
    static _Atomic int len;
    int n = len;

    if (n == 0) { /* every worker builds the same bytes: a race is harmless */
        n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 400 Bad Request\r\nServer: gateway\r\nContent-Type: text/html\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     sizeof(body) - 1, body);
        len = n;
    }
    gw_conn_send_static(w, c, resp, (uint32_t)n);
    gw_conn_finish(w, c, 1); /* lingering: the request may not be read whole */
}

static int init_cycle(gw_cycle_t *cy, gw_conf_err_t *err)
{
    gw_http_conf_t *hc = cy->http;
    int any_ktls = 0;

    if (hc == NULL)
        return 0;
    for (uint32_t i = 0; i < hc->naddrs; i++) {
        gw_http_addr_t *a = hc->addrs[i];
        gw_conf_node_t at_listen;
        gw_tls_listen_t *lst;

        if (!a->ssl)
            continue;
        at_listen = (gw_conf_node_t){.file = a->ssl_file, .line = a->ssl_line};
        lst = calloc(1, sizeof(*lst));
        if (lst == NULL)
            return gw_conf_error(err, &at_listen, "out of memory");
        a->tls = lst;
        lst->select = select_server;
        lst->arg = a;
        lst->plain_http = plain_http;
        for (uint32_t k = 0; k < a->nsrvs; k++) {
            gw_http_srv_t *s = a->srvs[k];
            gw_conf_node_t at_srv = {.file = s->file, .line = s->line};

            if (s->ssl == NULL && (s->ssl = calloc(1, sizeof(*s->ssl))) != NULL) {
                gw_tls_conf_t fresh = {.protocols = -1, .prefer_server = -1, .ktls = -1, .session_tickets = -1,
                                       .session_cache = -1, .session_timeout = GW_CONF_UNSET_MSEC};
                *s->ssl = fresh;
            }
            if (s->ssl == NULL || merge(s->ssl, hc->ssl) < 0)
                return gw_conf_error(err, &at_srv, "out of memory");
            if (s->ssl->ctx == NULL && (s->ssl->cert || s == a->dflt)) {
                if (gw_tls_conf_build(s->ssl, lst, s == a->dflt && !s->ssl->cert ? &at_listen : &at_srv, err) < 0)
                    return -1;
            }
            if (s->ssl->ctx)
                gw_tls_listen_setup(lst, s->ssl);
            any_ktls |= s->ssl->ktls == 1;
        }
        lst->dflt = a->dflt->ssl;
    }
    if (any_ktls)
        gw_tls_ktls_probe();
    return 0;
}

static void conf_free(gw_tls_conf_t *t)
{
    if (t == NULL)
        return;
    gw_tls_conf_free(t);
    free(t->cert);
    free(t->key);
    free(t->ciphers);
    free(t);
}

/* Runs before the http module's free_cycle (modules are freed in reverse). */
static void free_cycle(gw_cycle_t *cy)
{
    gw_http_conf_t *hc = cy->http;

    if (hc == NULL)
        return;
    for (uint32_t i = 0; i < hc->nsrvs; i++) {
        conf_free(hc->srvs[i]->ssl);
        hc->srvs[i]->ssl = NULL;
    }
    for (uint32_t i = 0; i < hc->naddrs; i++) {
        free(hc->addrs[i]->tls);
        hc->addrs[i]->tls = NULL;
    }
    conf_free(hc->ssl);
    hc->ssl = NULL;
}

static int init_worker(gw_worker_t *w, struct gw_wcycle *wc)
{
    gw_tls_ktls_log_startup();
    return 0;
}

static void exit_worker(gw_worker_t *w, struct gw_wcycle *wc)
{
    gw_tls_thread_exit(); /* a cache: the next handshake refills it */
}

const gw_module_t gw_http_tls_module = {
    .name = "http_ssl",
    .cmds = tls_cmds,
    .init_cycle = init_cycle,
    .free_cycle = free_cycle,
    .init_worker = init_worker,
    .exit_worker = exit_worker,
};
