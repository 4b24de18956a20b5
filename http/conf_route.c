/*
 * The routing directives: listen, server_name, location (nested too) and
 * proxy_pass, with nginx's checks and wording; and, once the http block is
 * read, the tables route.c searches and the sockets to bind.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer/balancer.h"
#include "conf_route.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/cycle.h"
#include "http.h"
#include "regex.h"
#include "route.h"

/* ---- listen ---- */

static gw_http_addr_t *find_addr(gw_http_conf_t *hc, const gw_addr_t *addr)
{
    for (uint32_t i = 0; i < hc->naddrs; i++)
        if (gw_addr_equal(&hc->addrs[i]->addr, addr))
            return hc->addrs[i];
    return NULL;
}

/* Server s listens on lc's address: nginx's checks, in its words, at the listen line. */
static int add_listen(gw_http_conf_t *hc, gw_http_srv_t *s, const gw_http_listen_conf_t *lc,
                      const gw_conf_node_t *n, gw_conf_err_t *err)
{
    gw_http_addr_t *a = find_addr(hc, &lc->addr);
    char text[64];

    gw_addr_format(&lc->addr, text, sizeof(text));
    if (a == NULL) {
        a = calloc(1, sizeof(*a));
        if (a == NULL || gw_http_push_ptr(&hc->addrs, &hc->naddrs, a) < 0) {
            free(a);
            return gw_conf_error(err, n, "out of memory");
        }
        a->addr = lc->addr;
        a->backlog = 511;
        a->file = lc->file;
        a->line = lc->line;
    }
    for (uint32_t i = 0; i < a->nsrvs; i++)
        if (a->srvs[i] == s)
            return gw_conf_error(err, n, "a duplicate listen %s", text);
    if (lc->options) {
        if (a->options)
            return gw_conf_error(err, n, "duplicate listen options for %s", text);
        a->options = 1;
        a->backlog = lc->backlog;
        a->bind = lc->bind;
    }
    if (lc->ssl && !a->ssl) {
        a->ssl = 1;
        a->ssl_file = lc->file;
        a->ssl_line = lc->line;
    }
    if (lc->default_server) {
        if (a->dflt)
            return gw_conf_error(err, n, "a duplicate default server for %s", text);
        a->dflt = s;
    }
    if (gw_http_push_ptr(&a->srvs, &a->nsrvs, s) < 0)
        return gw_conf_error(err, n, "out of memory");
    return 0;
}

/* listen ADDR [default_server] [backlog=N] [reuseport] [bind] [ipv6only=on] */
static int set_listen(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_cycle_t *cy = user;
    gw_http_srv_t *s = conf;
    gw_http_listen_conf_t lc = {.backlog = 511, .file = n->file, .line = n->line};
    gw_addr_t addrs[8];
    const char *why;
    int naddrs = gw_addr_resolve(n->args[1], 80, 1, addrs, 8, &why);

    if (naddrs < 0)
        return gw_conf_error(err, n, "%s in \"%s\" of the \"listen\" directive", why, n->args[1]);
    for (uint32_t i = 2; i < n->nargs; i++) {
        const char *a = n->args[i];
        uint64_t v;

        if (strcmp(a, "default_server") == 0 || strcmp(a, "default") == 0) {
            lc.default_server = 1;
        } else if (strcmp(a, "reuseport") == 0) {
            /* every worker listens on its own SO_REUSEPORT socket anyway; as in
             * nginx it also means a socket of its own beside a wildcard */
            lc.reuseport = lc.bind = lc.options = 1;
        } else if (strcmp(a, "bind") == 0) {
            lc.bind = lc.options = 1;
        } else if (strcmp(a, "ipv6only=on") == 0 || strcmp(a, "deferred") == 0) {
            lc.bind = lc.options = 1; /* ipv6only is always on; deferred accept is an optimisation we skip */
        } else if (strncmp(a, "backlog=", 8) == 0) {
            if (gw_conf_parse_uint(a + 8, &v) < 0 || v == 0 || v > 65535)
                return gw_conf_error(err, n, "invalid backlog \"%s\"", a);
            lc.backlog = (int)v;
            lc.bind = lc.options = 1; /* a socket option: nginx gives the address a socket of its own */
        } else if (strcmp(a, "ssl") == 0) {
            lc.ssl = 1; /* TLS on this address (conf_tls.c) */
        } else if (strcmp(a, "http2") == 0) {
            /* ALPN offers http/1.1 only, so clients that would speak h2 fall back to it */
            gw_conf_log(GW_LOG_WARN, n, "the \"http2\" parameter of \"listen\": HTTP/2 is not supported yet, "
                                        "clients get HTTP/1.1");
        } else if (strcmp(a, "quic") == 0) {
            return gw_conf_error(err, n, "the \"%s\" parameter of \"listen\" is not supported yet", a);
        } else {
            return gw_conf_error(err, n, "invalid parameter \"%s\"", a);
        }
    }
    for (int k = 0; k < naddrs; k++) {
        gw_http_listen_conf_t *grown = realloc(s->listens, (s->nlistens + 1) * sizeof(*grown));

        if (grown == NULL)
            return gw_conf_error(err, n, "out of memory");
        s->listens = grown;
        lc.addr = addrs[k];
        s->listens[s->nlistens++] = lc;
        if (add_listen(cy->http, s, &lc, n, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- server_name ---- */

static int set_server_name(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                           gw_conf_err_t *err)
{
    gw_http_srv_t *s = conf;

    for (uint32_t i = 1; i < n->nargs; i++) {
        const char *v = n->args[i];
        size_t len = strlen(v);
        gw_regex_t *re = NULL;
        gw_regex_t **grown;
        char *name;

        if ((v[0] == '*' && (len < 3 || v[1] != '.')) || (v[0] == '.' && len < 2))
            return gw_conf_error(err, n, "server name \"%s\" is invalid", v);
        if (len > 1 && v[0] == '~') {
            char msg[512];

            /* nginx matches server_name regexes caselessly */
            re = gw_regex_compile(v + 1, 1, msg, sizeof(msg));
            if (re == NULL)
                return gw_conf_error(err, n, "%s", msg);
        }
        name = strdup(v); /* a regex keeps its '~': the first name is $server_name, as written */
        grown = realloc(s->name_re, (s->nnames + 1) * sizeof(*grown));
        if (grown)
            s->name_re = grown;
        if (name == NULL || grown == NULL || gw_http_push_ptr(&s->names, &s->nnames, name) < 0) {
            free(name);
            gw_regex_free(re);
            return gw_conf_error(err, n, "out of memory");
        }
        s->name_re[s->nnames - 1] = re;
        if (re == NULL)
            for (char *p = name; *p; p++)
                *p = (char)tolower((unsigned char)*p);
    }
    return 0;
}

/* ---- location ---- */

/* location [=|~|~*|^~] URI { ... } and location @name { ... }, at server level or inside a location. */
static int add_location(const gw_conf_node_t *n, gw_http_srv_t *s, gw_http_loc_t *parent, void *user,
                        gw_conf_err_t *err)
{
    const char *name = n->args[1];
    gw_loc_kind_t kind = GW_LOC_PREFIX;
    gw_http_loc_t *l;
    gw_regex_t *re = NULL;

    if (n->nargs == 3) {
        const char *mod = n->args[1];

        name = n->args[2];
        if (strcmp(mod, "=") == 0)
            kind = GW_LOC_EXACT;
        else if (strcmp(mod, "^~") == 0)
            kind = GW_LOC_NOREGEX;
        else if (strcmp(mod, "~") == 0)
            kind = GW_LOC_REGEX;
        else if (strcmp(mod, "~*") == 0)
            kind = GW_LOC_REGEX_CI;
        else
            return gw_conf_error(err, n, "invalid location modifier \"%s\"", mod);
    } else if (name[0] == '=') {
        kind = GW_LOC_EXACT;
        name++;
    } else if (name[0] == '~') {
        kind = GW_LOC_REGEX;
        name++;
        if (name[0] == '*') {
            kind = GW_LOC_REGEX_CI;
            name++;
        }
    } else if (name[0] == '@') {
        kind = GW_LOC_NAMED;
    }
    if (kind == GW_LOC_REGEX || kind == GW_LOC_REGEX_CI) {
        char msg[512];

        re = gw_regex_compile(name, kind == GW_LOC_REGEX_CI, msg, sizeof(msg));
        if (re == NULL)
            return gw_conf_error(err, n, "%s", msg);
    }
    if (parent) {
        const char *why = NULL;

        if (parent->kind == GW_LOC_EXACT)
            why = "location \"%s\" cannot be inside the exact location \"%s\"";
        else if (parent->kind == GW_LOC_NAMED)
            why = "location \"%s\" cannot be inside the named location \"%s\"";
        else if (kind == GW_LOC_NAMED)
            why = "named location \"%s\" can be on the server level only";
        else if (re == NULL && strncmp(name, parent->match, parent->match_len) != 0)
            why = "location \"%s\" is outside location \"%s\"";
        if (why) {
            gw_regex_free(re);
            return gw_conf_error(err, n, why, name, parent->match);
        }
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL || gw_http_push_ptr(&s->locs, &s->nlocs, l) < 0 ||
        (kind == GW_LOC_NAMED && gw_http_push_ptr(&s->named, &s->nnamed, l) < 0) || (l->match = strdup(name)) == NULL) {
        /* l, once in s->locs, is freed with the cycle */
        if (l && (s->nlocs == 0 || s->locs[s->nlocs - 1] != l))
            free(l);
        gw_regex_free(re);
        return gw_conf_error(err, n, "out of memory");
    }
    memset(&l->lc, 0xff, sizeof(l->lc)); /* every setting unset (http_conf.c merges) */
    l->match_len = (uint32_t)strlen(name);
    l->kind = (uint8_t)kind;
    l->exact = kind == GW_LOC_EXACT;
    l->re = re;
    l->parent = parent;
    l->srv = s;
    l->file = n->file;
    l->line = n->line;
    return gw_conf_apply(n->children, n->nchildren, GW_CONF_LOCATION, gw_cycle_tables(), l, user, err);
}

static int set_location(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                        gw_conf_err_t *err)
{
    return add_location(n, conf, NULL, user, err);
}

static int set_nested_location(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                               gw_conf_err_t *err)
{
    gw_http_loc_t *parent = conf;

    return add_location(n, parent->srv, parent, user, err);
}

/* ---- proxy_pass ---- */

static int set_proxy_pass(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                          gw_conf_err_t *err)
{
    gw_http_loc_t *l = conf;
    const char *url = n->args[1];

    if (l->proxy_pass)
        return gw_conf_error(err, n, "\"proxy_pass\" directive is duplicate");
    if (strchr(url, '$'))
        return gw_conf_error(err, n, "variables in \"proxy_pass\" are not supported yet");
    if (strncasecmp(url, "https://", 8) == 0)
        l->proxy_https = 1; /* TLS to the upstream (conf_proxy_ssl.c) */
    else if (strncasecmp(url, "http://", 7) != 0)
        return gw_conf_error(err, n, "invalid URL prefix in \"%s\"", url);
    if (url[7 + l->proxy_https] == '\0' || url[7 + l->proxy_https] == '/')
        return gw_conf_error(err, n, "no host in \"%s\"", url);
    /* Which part of the request URI a URI part would replace is only known
     * for prefix and exact locations. */
    if ((l->kind == GW_LOC_NAMED || l->kind == GW_LOC_REGEX || l->kind == GW_LOC_REGEX_CI) && strchr(url + 7 + l->proxy_https, '/'))
        return gw_conf_error(err, n,
                             "\"proxy_pass\" cannot have URI part in location given by regular expression, or "
                             "inside named location, or inside \"if\" statement, or inside \"limit_except\" block");
    l->proxy_pass = strdup(url);
    if (l->proxy_pass == NULL)
        return gw_conf_error(err, n, "out of memory");
    if (l->match_len && l->match[l->match_len - 1] == '/' &&
        (l->kind == GW_LOC_PREFIX || l->kind == GW_LOC_NOREGEX || l->kind == GW_LOC_EXACT))
        l->auto_redirect = 1;
    l->pp_file = n->file;
    l->pp_line = n->line;
    return 0;
}

#define ROUTE_CMDS_LOC (GW_CONF_LOCATION)

const gw_conf_cmd_t gw_route_cmds[] = {
    {"listen", GW_CONF_SERVER, GW_CONF_1MORE, set_listen, 0},
    {"server_name", GW_CONF_SERVER, GW_CONF_1MORE, set_server_name, 0},
    {"location", GW_CONF_SERVER, GW_CONF_BLOCK | GW_CONF_TAKE12, set_location, 0},
    {"location", GW_CONF_LOCATION, GW_CONF_BLOCK | GW_CONF_TAKE12, set_nested_location, 0},
    {"proxy_pass", GW_CONF_LOCATION, GW_CONF_TAKE1, set_proxy_pass, 0},
    {NULL, 0, 0, NULL, 0},
};

/* ---- after the http block ---- */

/* Resolve proxy_pass into an upstream, $proxy_host and the URI part. */
static int resolve_proxy_pass(gw_cycle_t *cy, gw_http_loc_t *l, gw_conf_err_t *err)
{
    const char *hostport = l->proxy_pass + 7 + l->proxy_https;
    const char *slash = strchr(hostport, '/');
    size_t hlen = slash ? (size_t)(slash - hostport) : strlen(hostport);
    gw_conf_node_t where = {.file = l->pp_file, .line = l->pp_line};
    char *host = strndup(hostport, hlen);
    char *with_port = NULL;

    if (host == NULL)
        return gw_conf_error(err, &where, "out of memory");
    l->upstream = strchr(host, ':') ? NULL : gw_upstream_find(cy, host);
    /* https:// without a port means 443 (the implicit upstream is named with it). */
    if (l->upstream == NULL && l->proxy_https && !strchr(host, ':') && asprintf(&with_port, "%s:443", host) < 0)
        with_port = NULL;
    if (l->upstream == NULL)
        l->upstream = gw_upstream_for_address(cy, with_port ? with_port : host, &where, err);
    free(with_port);
    if (l->upstream == NULL) {
        free(host);
        return -1;
    }
    /* nginx's $proxy_host drops the scheme's default port. */
    if (!l->proxy_https && hlen > 3 && strcmp(host + hlen - 3, ":80") == 0)
        host[hlen - 3] = '\0';
    if (l->proxy_https && hlen > 4 && strcmp(host + hlen - 4, ":443") == 0)
        host[hlen - 4] = '\0';
    l->proxy_host = host;
    l->proxy_host_len = (uint32_t)strlen(host);
    if (slash) {
        l->proxy_uri = strdup(slash);
        if (l->proxy_uri == NULL)
            return gw_conf_error(err, &where, "out of memory");
        l->proxy_uri_len = (uint32_t)strlen(slash);
    }
    return 0;
}

static int is_wildcard(const gw_addr_t *a)
{
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

static gw_http_addr_t *wildcard_for(gw_http_conf_t *hc, const gw_addr_t *a)
{
    for (uint32_t i = 0; i < hc->naddrs; i++) {
        const gw_addr_t *w = &hc->addrs[i]->addr;

        if (w->ss.ss_family == a->ss.ss_family && gw_addr_port(w) == gw_addr_port(a) && is_wildcard(w))
            return hc->addrs[i];
    }
    return NULL;
}

static int build_server(gw_cycle_t *cy, gw_http_conf_t *hc, gw_http_srv_t *s, gw_conf_err_t *err)
{
    char msg[512];
    const gw_http_loc_t *bad;

    if (s->nlistens == 0) { /* nginx: a server without listen serves *:80 */
        gw_http_listen_conf_t dflt = {.backlog = 511, .file = s->file, .line = s->line};
        gw_conf_node_t where = {.file = s->file, .line = s->line};
        const char *why;

        gw_addr_resolve("80", 80, 1, &dflt.addr, 1, &why);
        s->listens = malloc(sizeof(*s->listens));
        if (s->listens == NULL)
            return gw_conf_error(err, &where, "out of memory");
        s->listens[0] = dflt;
        s->nlistens = 1;
        if (add_listen(hc, s, &dflt, &where, err) < 0)
            return -1;
    }
    for (uint32_t k = 0; k < s->nlocs; k++) {
        gw_http_loc_t *l = s->locs[k];

        if (l->proxy_pass && resolve_proxy_pass(cy, l, err) < 0)
            return -1;
        if (gw_route_build_level(&l->sub, s->locs, s->nlocs, l, msg, sizeof(msg), &bad) < 0)
            return gw_conf_error(err, &(gw_conf_node_t){.file = bad->file, .line = bad->line}, "%s", msg);
    }
    if (gw_route_build_level(&s->top, s->locs, s->nlocs, NULL, msg, sizeof(msg), &bad) < 0)
        return gw_conf_error(err, &(gw_conf_node_t){.file = bad->file, .line = bad->line}, "%s", msg);
    return 0;
}

int gw_route_init_cycle(gw_cycle_t *cy, gw_conf_err_t *err)
{
    gw_http_conf_t *hc = cy->http;

    for (uint32_t i = 0; i < hc->nsrvs; i++)
        if (build_server(cy, hc, hc->srvs[i], err) < 0)
            return -1;
    for (uint32_t i = 0; i < hc->naddrs; i++) {
        gw_http_addr_t *a = hc->addrs[i], *w;
        gw_listen_t *l;

        if (a->dflt == NULL)
            a->dflt = a->srvs[0];
        if (gw_route_build_names(a, err->msg, sizeof(err->msg)) < 0)
            return -1;
        /* nginx binds only the wildcard when a port has one: the specific
         * addresses are told apart by the connection's local address. */
        w = is_wildcard(&a->addr) || a->bind ? NULL : wildcard_for(hc, &a->addr);
        if (w) {
            if (gw_http_push_ptr(&w->specific, &w->nspecific, a) < 0)
                return gw_conf_error(err, &(gw_conf_node_t){.file = a->file, .line = a->line}, "out of memory");
            continue;
        }
        l = gw_cycle_listen(cy, &a->addr, a->backlog, a->file, a->line);
        if (l == NULL)
            return gw_conf_error(err, &(gw_conf_node_t){.file = a->file, .line = a->line}, "out of memory");
        l->ctx = a;
        l->on_accept = gw_http_accept;
    }
    return 0;
}

void gw_route_free_loc(gw_http_loc_t *l)
{
    gw_regex_free(l->re);
    free(l->sub.statics);
    free(l->sub.regexes);
}

void gw_route_free_server(gw_http_srv_t *s)
{
    for (uint32_t k = 0; k < s->nnames; k++)
        gw_regex_free(s->name_re[k]);
    free(s->name_re);
    free(s->top.statics);
    free(s->top.regexes);
    free(s->named);
}

void gw_route_free_addrs(gw_http_conf_t *hc)
{
    for (uint32_t i = 0; i < hc->naddrs; i++) {
        gw_route_free_names(hc->addrs[i]);
        free(hc->addrs[i]->specific);
        free(hc->addrs[i]->srvs);
        free(hc->addrs[i]);
    }
    free(hc->addrs);
    hc->addrs = NULL;
    hc->naddrs = 0;
}

/* A worker done with a configuration lets go of its regex match data. */
static void exit_worker(gw_worker_t *w, struct gw_wcycle *wc)
{
    gw_regex_thread_exit();
}

const gw_module_t gw_route_module = {
    .name = "route",
    .cmds = gw_route_cmds,
    .exit_worker = exit_worker,
};
