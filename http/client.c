/*
 * The client side of the proxy (see proxy.h): bytes from the client are
 * queued (inq), parsed as far as the exchange allows, the head routed and
 * checked, and the body forwarded to the upstream as received, framing
 * included, without copies.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "core/conn.h"
#include "core/gw.h"
#include "answers.h"
#include "gzip.h"
#include "http.h"
#include "obs.h"
#include "proxy.h"
#include "request.h"
#include "route.h"
#include "tunnel.h"
#include "tls/tls.h"

/* ---- routing ---- */

/*
 * Server, normalized URI and location for the head just read (route.c does
 * the matching). Returns 0, or the status to answer (400 for a bad Host or
 * path, 500 when a regex fails); *redirect is set for nginx's trailing-slash 301.
 */
static int route(gw_http_req_t *req, int *redirect)
{
    const gw_http_addr_t *a = req->client->ctx;
    const char *host, *path;
    char hbuf[1024];
    int hn = 0, rc;
    uint32_t hlen, plen;

    gw_request_host(req, &host, &hlen);
    if (host && hlen) {
        hn = gw_route_host(host, hlen, hbuf, sizeof(hbuf));
        if (hn < 0 && hlen <= sizeof(hbuf))
            return 400; /* nginx: "client sent invalid host header" */
    }
    req->srv = gw_route_server(a, hbuf, hn < 0 ? 0 : (uint32_t)hn);
    gw_request_path(req, &path, &plen);
    if (plen == 0 || path[0] != '/')
        return 400; /* nginx refuses "OPTIONS *" too */
    req->uri = path;
    req->uri_len = plen;
    if (path[0] == '/' && gw_route_needs_normalize(path, plen)) {
        int n;

        req->uri_buf = malloc(plen);
        if (req->uri_buf == NULL)
            return 500;
        n = gw_route_normalize(path, plen, req->uri_buf);
        if (n < 0)
            return 400;
        req->uri = req->uri_buf;
        req->uri_len = (uint32_t)n;
        req->uri_quoted = memchr(path, '%', plen) != NULL;
    }
    rc = gw_route_location(req->srv, req->uri, req->uri_len, &req->loc, &req->caps);
    if (rc == GW_ROUTE_ERROR)
        return 500;
    *redirect = rc == GW_ROUTE_REDIRECT;
    return 0;
}

/* For error_page's internal redirects: the location a URI (already normalized) maps to. */
const gw_http_loc_t *gw_http_find_location(const gw_http_srv_t *s, const char *path, uint32_t len)
{
    const gw_http_loc_t *l;

    gw_route_location(s, path, len, &l, NULL);
    return l;
}

/* nginx's 301 from "/docs" to "/docs/" (query kept), made absolute on the host asked for. */
static int redirect(gw_worker_t *w, gw_http_req_t *req)
{
    gw_target_t t;
    char *url;
    int n, r;

    gw_request_target(req, &t);
    n = asprintf(&url, "%s%.*s", req->loc->match, (int)t.query_len, t.query);
    if (n < 0)
        return gw_exchange_client_error(w, req, 500);
    r = gw_answers_redirect(w, req, 301, url, (size_t)n);
    free(url);
    return r;
}

/* ---- parsing ---- */

static void request_done(gw_worker_t *w, gw_http_req_t *req)
{
    req->rq_state = GW_RQ_DONE;
    gw_conn_timer_off(w, req->client);
}

static int proceed(gw_worker_t *w, gw_http_req_t *req);
static void pause_client(gw_worker_t *w, gw_http_req_t *req);

/* The head is complete: route it, check it, and start the upstream side. */
static int head_complete(gw_worker_t *w, gw_http_req_t *req)
{
    gw_conn_t *c = req->client;
    const gw_http_lconf_t *lc;
    int status, to_slash = 0;

    c->requests++;
    gw_obs_head_done(w, req);
    req->is_head = req->rq.method == HTTP_HEAD;
    status = route(req, &to_slash);
    if (status)
        return gw_exchange_client_error(w, req, (unsigned)status);
    lc = gw_exchange_lconf(req);
    /* No keep-alive when stopping or when a reload made this connection's configuration old. */
    if (lc->keepalive_timeout == 0 || c->requests >= lc->keepalive_requests || w->stopping || c->wc != w->cur)
        req->keepalive = 0;
    status = gw_request_check(req);
    if (status)
        return gw_exchange_client_error(w, req, (unsigned)status);
    req->rq_state = GW_RQ_BODY;
    /* nginx: a server-level return comes first (server rewrite phase), then this
     * redirect (find_config), then the location's own answers */
    if (to_slash && !req->srv->ans.ret_code)
        return redirect(w, req);
    status = gw_answers_route(w, req);
    if (status != GW_ANS_DECLINED)
        return status;
    if (req->limit_delay_ms) { /* limit_req: hold the request (and its body) until the timer */
        req->delayed = 1;
        pause_client(w, req);
        gw_conn_timer(w, c, req->limit_delay_ms);
        return 0;
    }
    return proceed(w, req);
}

/* After the checks: answer from the location itself, or start proxying. */
static int proceed(gw_worker_t *w, gw_http_req_t *req)
{
    gw_conn_t *c = req->client;
    const gw_http_lconf_t *lc = gw_exchange_lconf(req);

    if (lc->obs_handler)
        return gw_obs_handle(w, req, (unsigned)lc->obs_handler);
    if (req->loc == NULL || req->loc->upstream == NULL)
        return gw_exchange_respond(w, req, 404);
    if (req->expect_100 && gw_exchange_body_pending(req))
        gw_conn_send_static(w, c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    if (gw_proxy_start(w, req) < 0)
        return GW_ERR;
    if (gw_exchange_body_pending(req))
        gw_conn_timer(w, c, lc->client_body_timeout);
    else
        gw_conn_timer_off(w, c);
    return 0;
}

/*
 * Body bytes to the upstream: a slice of their receive buffer (one more
 * reference, no copy), or a copy when they waited in inq on the heap
 * (gw_segq_unpin: bid < 0). Returns 0, or -ENOMEM.
 */
static int forward_body(gw_worker_t *w, gw_conn_t *up, const char *data, uint32_t len, int32_t bid)
{
    char *block;

    if (bid >= 0) {
        gw_conn_send_buf(w, up, data, len, (uint32_t)bid);
        return 0;
    }
    block = malloc(len);
    if (block == NULL)
        return -ENOMEM;
    memcpy(block, data, len);
    gw_conn_send_heap(w, up, block, block, len);
    return 0;
}

/*
 * Parse client bytes [data, data+len) of a piece of inq (bid: its buffer, or
 * GW_SEG_HEAP). Returns how many were used (the rest belongs to a later
 * request), or GW_ERR when the exchange ended.
 */
static int feed_request(gw_worker_t *w, gw_http_req_t *req, const char *data, uint32_t len, int32_t bid)
{
    uint32_t used = 0, fwd;
    int r;

    if (req->rq_state == GW_RQ_HEAD) {
        r = gw_request_parse_head(req, data, len, &used);
        req->request_length += r == GW_AGAIN ? len : used;
        if (r == GW_AGAIN)
            return (int)len;
        if (r != 0)
            return gw_exchange_client_error(w, req, (unsigned)r);
        if (head_complete(w, req) < 0)
            return GW_ERR;
        if (req->delayed)
            return (int)used; /* the body waits in inq with the request */
    }
    /* The body: forwarded as received, framing included (chunked stays chunked). */
    r = gw_request_parse_body(req, data + used, len - used, &fwd);
    req->request_length += fwd;
    if (r > 0)
        return gw_exchange_client_error(w, req, (unsigned)r);
    if (fwd && req->up) {
        if (forward_body(w, req->up, data + used, fwd, bid) < 0) {
            gw_exchange_abort(w, req);
            return GW_ERR;
        }
        gw_proxy_body_queued(w, req);
    }
    if (r == 0)
        request_done(w, req);
    else if (fwd)
        gw_conn_timer(w, req->client, gw_exchange_lconf(req)->client_body_timeout);
    return (int)(used + fwd);
}

static void pause_client(gw_worker_t *w, gw_http_req_t *req)
{
    if (req->client_paused)
        return;
    req->client_paused = 1;
    gw_conn_recv_stop(w, req->client);
}

void gw_client_process(gw_worker_t *w, gw_http_req_t *req)
{
    while (req->inq.head) {
        gw_seg_t *s = req->inq.head;
        int n;

        if (req->delayed)
            return;
        if (req->rq_state == GW_RQ_DONE) {
            int r = req->rs_state == GW_RS_DONE ? gw_exchange_done(w, req) : GW_AGAIN;

            if (r == GW_AGAIN) {
                /* The next request waits for this response to arrive, which
                 * needs receive buffers, and to be sent, which needs the
                 * client to read: its bytes must not hold any buffer. Left
                 * in them, as many pipelining clients as the ring has
                 * buffers would hold it all, and every response would wait
                 * for proxy_read_timeout (then 504). Copied now, once (a
                 * failed copy only leaves them where they were). */
                gw_segq_unpin(&req->inq, &w->bufs);
                break;
            }
            if (r < 0)
                return;
            continue;
        }
        if (req->up && gw_queue_high(&req->up->out)) {
            pause_client(w, req); /* the upstream reads slower than the client sends */
            return;
        }
        n = feed_request(w, req, s->data, s->len, s->bid);
        if (n < 0)
            return;
        gw_segq_consume(&req->inq, &w->segs, &w->bufs, (uint32_t)n);
    }
    /* A local answer (no upstream) to a request without body; or, while the
     * end of a response is sent (flushing), inq still has its limit. */
    if (req->rq_state == GW_RQ_DONE && req->rs_state == GW_RS_DONE && !req->flushing &&
        gw_exchange_done(w, req) != GW_AGAIN)
        return;
    if (gw_queue_high(&req->inq))
        pause_client(w, req);
}

/* ---- the client connection ---- */

static void client_on_data(gw_worker_t *w, gw_conn_t *c, char *data, uint32_t len, uint32_t bid)
{
    gw_http_req_t *req = c->data;
    gw_seg_t *s;

    if (gw_conn_is_closing(c)) {
        gw_buf_unref(&w->bufs, bid);
        return;
    }
    if (req == NULL) {
        req = gw_exchange_new(w, c);
        if (req == NULL) {
            gw_buf_unref(&w->bufs, bid);
            gw_conn_close(w, c);
            return;
        }
        gw_answers_header_limits(req);
        gw_conn_timer(w, c, gw_exchange_lconf(req)->client_header_timeout);
    }
    s = gw_seg_alloc(&w->segs);
    if (s == NULL) {
        gw_buf_unref(&w->bufs, bid);
        gw_exchange_abort(w, req);
        return;
    }
    s->data = data;
    s->len = len;
    s->bid = (int32_t)bid; /* the queue now holds the reference the recv gave us */
    s->block = NULL;
    gw_segq_push(&req->inq, s);
    gw_client_process(w, req);
}

static void client_on_eof(gw_worker_t *w, gw_conn_t *c, int err)
{
    gw_http_req_t *req = c->data;

    if (req == NULL || gw_conn_is_closing(c)) {
        if (req)
            gw_exchange_free(w, req);
        gw_conn_close(w, c);
        return;
    }
    if (err == 0 && req->rq_state == GW_RQ_DONE) {
        /* Half-close after a whole request: still answer it, then close. */
        req->client_eof = 1;
        req->keepalive = 0;
        return;
    }
    gw_exchange_abort(w, req);
}

/* limit_req's wait is over: go on where head_complete stopped, then with the bytes that waited. */
static void limit_req_resume(gw_worker_t *w, gw_http_req_t *req)
{
    gw_conn_t *c = req->client;

    req->delayed = 0;
    gw_conn_timer_off(w, c);
    if (proceed(w, req) < 0)
        return;
    if (req->client_paused && !gw_conn_is_closing(c)) {
        req->client_paused = 0;
        gw_conn_recv_start(w, c);
    }
    gw_client_process(w, req);
}

static void client_on_send_error(gw_worker_t *w, gw_conn_t *c, int err)
{
    gw_http_req_t *req = c->data;

    if (req)
        gw_exchange_abort(w, req);
    else
        gw_conn_close(w, c);
}

static void client_on_sent(gw_worker_t *w, gw_conn_t *c)
{
    gw_http_req_t *req = c->data;

    if (req && req->flushing) { /* the whole response is sent: the exchange ends */
        gw_exchange_after_response(w, req);
        return;
    }
    if (req && req->gz)
        gw_gzip_idle(w, req); /* all sent: what zlib holds back goes now */
    if (req && req->up_paused)
        gw_proxy_client_drained(w, req);
}

/* Idle: keepalive_timeout. Otherwise client_header/body_timeout or send_timeout: nginx closes without an answer. */
static void client_on_timeout(gw_worker_t *w, gw_conn_t *c)
{
    gw_http_req_t *req = c->data;

    if (req && req->delayed) {
        limit_req_resume(w, req);
        return;
    }
    if (req)
        gw_exchange_abort(w, req);
    else
        gw_conn_close(w, c);
}

static void client_on_stop(gw_worker_t *w, gw_conn_t *c)
{
    gw_http_req_t *req = c->data;

    if (req == NULL)
        gw_conn_close(w, c); /* idle keep-alive: nothing to finish */
    else
        req->keepalive = 0; /* finish this exchange, then close */
}

const gw_conn_ops_t gw_client_ops = {
    .on_data = client_on_data,
    .on_eof = client_on_eof,
    .on_sent = client_on_sent,
    .on_send_error = client_on_send_error,
    .on_timeout = client_on_timeout,
    .on_stop = client_on_stop,
};

/* A wildcard socket that also serves specific addresses of its port: which one was connected to. */
static const gw_http_addr_t *local_addr(const gw_http_addr_t *a, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return a;
    for (uint32_t i = 0; i < a->nspecific; i++) {
        const struct sockaddr_storage *x = &a->specific[i]->addr.ss;

        if (x->ss_family != ss.ss_family)
            continue;
        if (ss.ss_family == AF_INET
                ? ((const struct sockaddr_in *)x)->sin_addr.s_addr == ((struct sockaddr_in *)&ss)->sin_addr.s_addr
                : memcmp(&((const struct sockaddr_in6 *)x)->sin6_addr, &((struct sockaddr_in6 *)&ss)->sin6_addr,
                         sizeof(struct in6_addr)) == 0)
            return a->specific[i];
    }
    return a;
}

void gw_http_accept(gw_worker_t *w, gw_conn_t *c, const gw_listen_t *l)
{
    const gw_http_addr_t *a = l->ctx;

    static _Atomic uint64_t serial;

    if (a->nspecific)
        a = local_addr(a, c->fd);

    c->ops = &gw_client_ops;
    c->ctx = a;
    c->number = ++serial;
    if (a->tls && gw_tls_attach(w, c, a->tls) < 0)
        return; /* closed */
    gw_conn_recv_start(w, c);
    /* nginx waits client_header_timeout for the first byte of a new connection
     * (and, like nginx, for the whole TLS handshake: the owner hears nothing
     * from a TLS connection until it is done). */
    gw_conn_timer(w, c, a->dflt->lc.client_header_timeout);
}

int gw_http_init_worker(gw_worker_t *w, gw_wcycle_t *wc)
{
    return 0;
}

/* A fast stop leaves exchanges in flight: free their state (sockets and
 * buffers go with the worker's table and ring, see worker_free). Called for
 * each configuration; a drained one has no connections left. */
void gw_http_exit_worker(gw_worker_t *w, gw_wcycle_t *wc)
{
    for (uint32_t i = 0; i < w->used_hwm; i++) {
        gw_conn_t *c = &w->conns[i];

        if ((c->flags & GW_CONN_USED) && c->wc == wc && c->ops == &gw_client_ops && c->data)
            gw_exchange_free(w, c->data);
    }
    gw_tunnel_exit_worker(w, wc);
}
