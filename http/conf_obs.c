/*
 * The observability module: its directives (prometheus, stub_status,
 * log_format, access_log, error_log below main), the answers of a location
 * that serves metrics itself, and its place in the module list
 * (http/modules.c, after http: it needs the servers and upstreams resolved).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accesslog.h"
#include "core/conf.h"
#include "core/conn.h"
#include "core/cycle.h"
#include "core/gw.h"
#include "core/log.h"
#include "errors.h"
#include "headers.h"
#include "metrics.h"
#include "obs.h"
#include "proxy.h"
#include "request.h"
#include "route.h"

/* prometheus; / stub_status; — a location answering with the counters. */
static int set_handler(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_http_lconf_t *lc = conf;
    uint64_t h = strcmp(n->args[0], "prometheus") == 0 ? GW_OBS_PROMETHEUS : GW_OBS_STUB_STATUS;

    if (lc->obs_handler != GW_CONF_UNSET_U64)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (n->nargs == 2 && strcmp(n->args[1], "on") != 0) /* nginx before 1.7.5 wrote "stub_status on;" */
        return gw_conf_error(err, n, "invalid parameter \"%s\"", n->args[1]);
    lc->obs_handler = h;
    return 0;
}

/* error_log FILE [LEVEL] below main: that level's messages about requests go there. */
static int set_error_log(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                         gw_conf_err_t *err)
{
    gw_http_lconf_t *lc = conf;
    gw_cycle_t *cy = user;
    int level = GW_LOG_ERR;
    gw_log_sink_t *sink;
    char *path;
    int r;

    if (lc->error_log != GW_CONF_UNSET_U64)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (n->nargs == 3 && (level = gw_log_level_parse(n->args[2])) < 0)
        return gw_conf_error(err, n, "invalid log level \"%s\"", n->args[2]);
    path = strcmp(n->args[1], "stderr") == 0 ? strdup("stderr") : gw_cycle_path(cy, n->args[1]);
    if (path == NULL)
        return gw_conf_error(err, n, "out of memory");
    r = gw_log_sink_open(path, level, &sink);
    if (r < 0) {
        gw_conf_error(err, n, "open() \"%s\" failed (%d: %s)", path, -r, strerror(-r));
        free(path);
        return -1;
    }
    free(path);
    lc->error_log = (uint64_t)(uintptr_t)sink;
    return 0;
}

#define HSL (GW_CONF_HTTP | GW_CONF_SERVER | GW_CONF_LOCATION)

static const gw_conf_cmd_t obs_cmds[] = {
    {"prometheus", GW_CONF_LOCATION, GW_CONF_NOARGS, set_handler, 0},
    {"stub_status", GW_CONF_LOCATION, GW_CONF_NOARGS | GW_CONF_TAKE1, set_handler, 0},
    {"error_log", HSL, GW_CONF_TAKE12, set_error_log, 0},
    {"log_format", GW_CONF_HTTP, GW_CONF_2MORE, gw_accesslog_set_format, 0},
    {"access_log", HSL, GW_CONF_1MORE, gw_accesslog_set, 0},
    {NULL, 0, 0, NULL, 0},
};

static int init_cycle(gw_cycle_t *cy, gw_conf_err_t *err)
{
    if (gw_metrics_init_cycle(cy, err) < 0)
        return -1;
    return gw_accesslog_init_cycle(cy, err);
}

static void free_cycle(gw_cycle_t *cy)
{
    gw_metrics_free_cycle(cy);
    gw_accesslog_free_cycle(cy);
}

static void exit_worker(gw_worker_t *w, struct gw_wcycle *wc)
{
    gw_accesslog_thread_free(); /* grown again by the next line, if any */
}

const gw_module_t gw_obs_module = {
    .name = "obs",
    .cmds = obs_cmds,
    .init_cycle = init_cycle,
    .free_cycle = free_cycle,
    .init_worker = gw_metrics_init_worker,
    .exit_worker = exit_worker,
};

/* ---- a location answering itself ---- */

int gw_obs_handle(gw_worker_t *w, gw_http_req_t *req, unsigned handler)
{
    char top[GW_HEADERS_OWN_MAX], *body = NULL, *resp;
    gw_answer_t a = {.status = 200, .head_only = req->is_head};
    size_t blen = 0;
    uint32_t len = 0;
    int r;

    if (req->rq.method != HTTP_GET && req->rq.method != HTTP_HEAD)
        return gw_exchange_respond(w, req, 405);
    if (handler == GW_OBS_PROMETHEUS) {
        r = gw_metrics_render(req->client->wc->cycle, w->now, &body, &blen);
        a.ctype = "text/plain; version=0.0.4; charset=utf-8";
    } else {
        r = gw_metrics_stub_status(&body, &blen);
        a.ctype = "text/plain";
    }
    if (r < 0)
        return gw_exchange_respond(w, req, 500);
    a.keepalive = gw_exchange_answer_begin(w, req);
    a.body = body;
    a.body_len = blen;
    a.top = top;
    a.top_len = gw_headers_response_own(req, 0, top);
    resp = gw_http_answer(&a, &len);
    free(body);
    return gw_exchange_answer_send(w, req, 200, resp, len);
}

/* ---- messages about a request ---- */

static const gw_log_sink_t *sink_of(const gw_http_req_t *req)
{
    const gw_http_lconf_t *lc = gw_exchange_lconf(req);

    return lc->error_log && lc->error_log != GW_CONF_UNSET_U64 ? (const gw_log_sink_t *)(uintptr_t)lc->error_log
                                                                : NULL;
}

static int level_on(const gw_log_sink_t *s, gw_log_level_t level)
{
    return s ? (int)level <= s->level : gw_log_enabled(level);
}

void gw_obs_log_upstream(const gw_http_req_t *req, const char *what, int err)
{
    const gw_log_sink_t *s = sink_of(req);
    const char *srv = req->srv && req->srv->nnames ? req->srv->names[0] : "";
    const char *host = "", *wh = strstr(what, " while ");
    const gw_peer_addr_t *pa = &req->client->peer;
    char client[64] = "", reason[160] = "", upstream[160] = "";
    uint32_t host_len = 0;
    gw_target_t t = {0};

    if (!level_on(s, GW_LOG_ERR))
        return;
    if (pa->family)
        inet_ntop(pa->family, pa->addr, client, sizeof(client));
    for (uint32_t i = 0; i < req->in.n; i++)
        if (req->in.h[i].id == GW_H_HOST) {
            host = req->in.buf + req->in.h[i].value;
            host_len = req->in.h[i].value_len;
            break;
        }
    if (req->in.line_len)
        gw_request_target(req, &t);
    /* nginx's shape: "what (errno: text) while context" */
    if (err)
        snprintf(reason, sizeof(reason), " (%d: %s)", err, strerror(err));
    if (req->peer) {
        /* The URI as sent upstream (nginx shows that one), built as request.c builds it. */
        char uri[512];
        uint32_t ulen = 0;

        if (t.path) {
            gw_route_uri_t ru = {.raw = t.path, .raw_len = t.path_len, .uri = req->uri ? req->uri : t.path,
                                 .uri_len = req->uri ? req->uri_len : t.path_len, .query = t.query,
                                 .query_len = t.query_len, .quoted = req->uri_quoted};

            if (req->loc && gw_route_upstream_uri_size(req->loc, &ru) <= sizeof(uri))
                ulen = (uint32_t)(gw_route_put_upstream_uri(req->loc, &ru, uri) - uri);
        }
        snprintf(upstream, sizeof(upstream), ", upstream: \"http://%s%.*s\"", req->peer->name, (int)ulen, uri);
    }
    else if (req->rt)
        snprintf(upstream, sizeof(upstream), ", upstream: \"http://%s\"", req->rt->u->name);
    gw_log_to(s, GW_LOG_ERR,
              "*%llu %.*s%s%s, client: %s, server: %s, request: \"%s %.*s HTTP/%d.%d\"%s, host: \"%.*s\"",
              (unsigned long long)req->client->number, (int)(wh ? wh - what : (long)strlen(what)), what, reason,
              wh ? wh : "", client, srv, llhttp_method_name((llhttp_method_t)req->rq.method), (int)req->in.line_len,
              req->in.buf ? req->in.buf : "", req->rq.http_major, req->rq.http_minor, upstream, (int)host_len, host);
}
