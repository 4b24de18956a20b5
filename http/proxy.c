/*
 * Proxying: the state machines of a client connection and of the upstream
 * connection carrying its current request.
 *
 * Client side (req->rq_state):      Upstream side (req->rs_state):
 *   idle (no req) -> HEAD              NONE -> CONNECTING -> HEAD -> BODY -> DONE
 *   HEAD -> BODY   head forwarded              (a pooled connection skips CONNECTING)
 *   BODY -> DONE   body forwarded
 * An exchange ends when both are DONE: the upstream goes back to its pool
 * (or is closed), and the client connection either parses the next
 * pipelined request, waits idle (keep-alive, no memory but its slot), or
 * closes. Bytes flow without copies: received buffers are queued on the
 * other side's connection and released when sent; only heads are rebuilt.
 *
 * Error convention: functions returning int give GW_ERR when the exchange
 * was ended and `req` freed; the caller must not touch it again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "balancer/balancer.h"
#include "core/worker.h"
#include "core/conn.h"
#include "core/gw.h"
#include "core/log.h"
#include "errors.h"
#include "http.h"
#include "request.h"
#include "response.h"

static const gw_conn_ops_t client_ops;
static const gw_conn_ops_t up_ops;

static void client_process(gw_worker_t *w, gw_http_req_t *req);

/* ---- exchange lifetime ---- */

static gw_http_req_t *req_new(gw_worker_t *w, gw_conn_t *c)
{
    gw_http_req_t *req = calloc(1, sizeof(*req));

    if (req == NULL)
        return NULL;
    req->w = w;
    req->client = c;
    req->start_us = w->now_us;
    gw_segq_init(&req->inq);
    gw_request_parser_init(req);
    c->data = req;
    return req;
}

static void req_free(gw_worker_t *w, gw_http_req_t *req)
{
    gw_segq_clear(&req->inq, &w->segs, &w->bufs);
    gw_msg_free(&req->in);
    gw_msg_free(&req->out);
    if (req->client)
        req->client->data = NULL;
    free(req);
}

/* Ready req for the next request already waiting in inq (pipelining). */
static void req_reset(gw_http_req_t *req)
{
    gw_msg_reset(&req->in);
    gw_msg_reset(&req->out);
    /* The parser stopped right after the previous message; it goes on from there. */
    llhttp_resume(&req->rq);
    req->srv = NULL;
    req->loc = NULL;
    req->rt = NULL;
    req->peer = NULL;
    req->body_bytes = 0;
    req->status = req->err_status = 0;
    req->rq_state = GW_RQ_HEAD;
    req->rs_state = GW_RS_NONE;
    req->pause = GW_PAUSE_NONE;
    req->host_count = req->te_count = 0;
    req->expect_100 = req->is_head = req->up_reused = req->up_keepalive = req->up_leftover = 0;
    req->conn_close = req->head_lf = 0;
    req->dechunk = req->head_sent = req->in_1xx = req->up_paused = req->retried = req->rs_started = 0;
}

static const gw_http_lconf_t *lconf(const gw_http_req_t *req)
{
    if (req->loc)
        return &req->loc->lc;
    if (req->srv)
        return &req->srv->lc;
    return &((const gw_http_addr_t *)req->client->ctx)->dflt->lc;
}

static int body_pending(const gw_http_req_t *req)
{
    /* llhttp counts content_length down as the body is read. */
    return req->rq_state != GW_RQ_DONE && ((req->rq.flags & F_CHUNKED) || req->rq.content_length > 0);
}

static void log_upstream(const gw_http_req_t *req, const char *what, int err)
{
    if (!gw_log_enabled(GW_LOG_ERR))
        return;
    if (err)
        gw_log(GW_LOG_ERR, "%s (%d: %s), upstream: \"%s\" in \"%s\"", what, err, strerror(err),
               req->peer ? req->peer->name : "-", req->rt ? req->rt->u->name : "-");
    else
        gw_log(GW_LOG_ERR, "%s, upstream: \"%s\" in \"%s\"", what, req->peer ? req->peer->name : "-",
               req->rt ? req->rt->u->name : "-");
}

/* Detach the upstream: back to the pool when the exchange left it clean, else closed. */
static void release_upstream(gw_worker_t *w, gw_http_req_t *req, int reusable)
{
    gw_conn_t *up = req->up;

    if (up == NULL)
        return;
    req->up = NULL;
    up->data = NULL;
    gw_conn_timer_off(w, up);
    if (reusable && req->rt->u->keepalive && up->requests < req->rt->u->keepalive_requests)
        gw_pool_put(w, req->rt, up, req->peer);
    else
        gw_conn_close(w, up);
}

/* End everything now, without a response: the client is gone or broke the protocol mid-stream. */
static void abort_all(gw_worker_t *w, gw_http_req_t *req)
{
    gw_conn_t *c = req->client;

    release_upstream(w, req, 0);
    req_free(w, req);
    gw_conn_close(w, c);
}

/*
 * Both sides are done. Returns GW_ERR when req was freed (connection idle or
 * closing), 0 when req was reset for a pipelined request the caller must
 * parse (client_process).
 */
static int exchange_done(gw_worker_t *w, gw_http_req_t *req)
{
    gw_conn_t *c = req->client;
    const gw_http_lconf_t *lc = lconf(req);
    int paused = req->client_paused;

    gw_worker_exchange_done(w, req->start_us);
    release_upstream(w, req, req->up_keepalive && !req->up_leftover);
    req->client_paused = 0;
    if (!req->keepalive || req->client_eof || w->stopping) {
        int linger = req->inq.bytes > 0;

        req_free(w, req);
        gw_conn_finish(w, c, linger);
        return GW_ERR;
    }
    if (paused)
        gw_conn_recv_start(w, c);
    if (req->inq.bytes == 0) {
        req_free(w, req);
        gw_conn_timer(w, c, lc->keepalive_timeout);
        return GW_ERR;
    }
    req_reset(req);
    req->start_us = w->now_us;
    gw_conn_timer(w, c, lc->client_header_timeout);
    return 0;
}

/*
 * Answer `status` ourselves (no response byte was sent yet); the response
 * side is then done. A request whose body is still arriving cannot keep the
 * connection: it closes after the answer (lingering, so the answer is read).
 */
static int respond_status(gw_worker_t *w, gw_http_req_t *req, unsigned status)
{
    gw_conn_t *c = req->client;
    uint32_t len;
    char *resp;

    release_upstream(w, req, 0);
    if (body_pending(req))
        req->keepalive = 0;
    resp = gw_http_error_response(status, req->keepalive, req->is_head, &len);
    if (resp)
        gw_conn_send_heap(w, c, resp, resp, len);
    req->status = (uint16_t)status;
    req->rs_state = GW_RS_DONE;
    req->head_sent = 1;
    if (!req->keepalive || resp == NULL) {
        req_free(w, req);
        gw_conn_finish(w, c, 1);
        return GW_ERR;
    }
    return 0;
}

/* A malformed or refused request: answer and close. */
static int client_error(gw_worker_t *w, gw_http_req_t *req, unsigned status)
{
    req->keepalive = 0;
    respond_status(w, req, status);
    return GW_ERR;
}

/* The response side finished outside client_process: end the exchange, go on with the next. */
static void after_response(gw_worker_t *w, gw_http_req_t *req)
{
    if (exchange_done(w, req) == 0)
        client_process(w, req);
}

/* The upstream failed: an error page if nothing was sent yet, else cut the client off. */
static void upstream_failed(gw_worker_t *w, gw_http_req_t *req, unsigned status)
{
    if (req->head_sent) {
        abort_all(w, req);
        return;
    }
    if (respond_status(w, req, status) == 0 && req->rq_state == GW_RQ_DONE)
        after_response(w, req);
}

/* ---- routing ---- */

static const gw_http_srv_t *find_server(const gw_http_addr_t *a, const char *host, uint32_t len)
{
    if (host && len) {
        for (uint32_t i = 0; i < a->nsrvs; i++) {
            const gw_http_srv_t *s = a->srvs[i];

            for (uint32_t k = 0; k < s->nnames; k++)
                if (strlen(s->names[k]) == len && strncasecmp(s->names[k], host, len) == 0)
                    return s;
        }
    }
    return a->dflt;
}

static const gw_http_loc_t *find_location(const gw_http_srv_t *s, const char *path, uint32_t len)
{
    for (uint32_t i = 0; i < s->nlocs; i++) {
        const gw_http_loc_t *l = s->locs[i];

        if (l->exact ? (len == l->match_len && memcmp(path, l->match, len) == 0)
                     : (len >= l->match_len && memcmp(path, l->match, l->match_len) == 0))
            return l;
    }
    return NULL;
}

/* ---- upstream side ---- */

/* Send the request head on a pooled connection to peer, or on a new one. Returns 0 or GW_ERR. */
static int attach_upstream(gw_worker_t *w, gw_http_req_t *req, int allow_pool)
{
    const gw_http_lconf_t *lc = lconf(req);
    gw_conn_t *up = allow_pool ? gw_pool_get(w, req->rt, req->peer) : NULL;
    uint32_t len;
    char *head;
    int err = 0;

    head = gw_request_upstream_head(req, &len);
    if (head == NULL)
        return client_error(w, req, 500);
    if (up) {
        up->ops = &up_ops;
        up->data = req;
        req->up_reused = 1;
        req->rs_state = GW_RS_HEAD;
        gw_conn_timer(w, up, lc->proxy_read_timeout);
    } else {
        up = gw_conn_connect(w, &req->peer->addr, &up_ops, req, &err);
        if (up == NULL) {
            free(head);
            log_upstream(req, "socket() failed while connecting to upstream", -err);
            upstream_failed(w, req, 502);
            return GW_ERR;
        }
        up->ctx = req->peer;
        req->up_reused = 0;
        req->rs_state = GW_RS_CONNECTING;
        gw_conn_timer(w, up, lc->proxy_connect_timeout);
    }
    req->up = up;
    up->requests++;
    gw_response_parser_init(req);
    gw_conn_send_heap(w, up, head, head, len);
    return 0;
}

static int start_upstream(gw_worker_t *w, gw_http_req_t *req)
{
    req->rt = gw_upstream_rt(w, req->loc->upstream);
    req->peer = gw_balancer_pick(req->rt, NULL);
    if (req->peer == NULL) {
        log_upstream(req, "no live upstreams while connecting to upstream", 0);
        upstream_failed(w, req, 502);
        return GW_ERR;
    }
    return attach_upstream(w, req, 1);
}

static void pause_upstream(gw_worker_t *w, gw_http_req_t *req)
{
    if (req->up_paused || req->up == NULL)
        return;
    req->up_paused = 1;
    gw_conn_recv_stop(w, req->up);
    gw_conn_timer_off(w, req->up);
    gw_conn_timer(w, req->client, lconf(req)->send_timeout);
}

static void response_done(gw_worker_t *w, gw_http_req_t *req)
{
    req->rs_state = GW_RS_DONE;
    if (req->up_paused && req->up) {
        gw_conn_recv_start(w, req->up);
        req->up_paused = 0;
    }
    if (req->rq_state != GW_RQ_DONE) {
        /* Answered before the body was read (a backend may refuse early):
         * the rest of the body has nowhere to go, so the connection ends. */
        gw_conn_t *c = req->client;

        release_upstream(w, req, 0);
        req_free(w, req);
        gw_conn_finish(w, c, 1);
        return;
    }
    after_response(w, req);
}

/* The response head is complete: decide the framing towards the client and queue the head. */
static int response_head(gw_worker_t *w, gw_http_req_t *req)
{
    llhttp_t *rs = &req->rs;
    int no_body = (rs->flags & F_SKIPBODY) != 0;
    uint32_t len;
    char *head;

    /* An HTTP/1.0 client cannot read chunked: send the body decoded, then close. */
    req->dechunk = (rs->flags & F_CHUNKED) && !no_body && req->rq.http_minor == 0;
    if (llhttp_message_needs_eof(rs) || req->dechunk)
        req->keepalive = 0; /* the end of the body is the end of the connection */
    req->up_keepalive = llhttp_should_keep_alive(rs) != 0;
    head = gw_response_client_head(req, &len);
    if (head == NULL) {
        upstream_failed(w, req, 500);
        return GW_ERR;
    }
    gw_conn_send_heap(w, req->client, head, head, len);
    req->head_sent = 1;
    req->rs_state = GW_RS_BODY;
    return 0;
}

static void feed_response(gw_worker_t *w, gw_http_req_t *req, const char *p, uint32_t n, uint32_t bid)
{
    llhttp_errno_t e;
    uint32_t fwd;

    req->cur_bid = bid;
    if (req->rs_state == GW_RS_HEAD) {
        uint32_t used;

        req->pause = GW_PAUSE_NONE;
        e = llhttp_execute(&req->rs, p, n);
        if (e == HPE_OK)
            return;
        if (e != HPE_PAUSED || req->pause != GW_PAUSE_HEADERS) {
            log_upstream(req, "upstream sent invalid header while reading response header from upstream", 0);
            upstream_failed(w, req, 502);
            return;
        }
        used = (uint32_t)(llhttp_get_error_pos(&req->rs) - p);
        llhttp_resume(&req->rs);
        if (response_head(w, req) < 0)
            return;
        p += used;
        n -= used;
    }
    req->pause = GW_PAUSE_NONE;
    e = llhttp_execute(&req->rs, p, n);
    if (e == HPE_OK) {
        fwd = n;
    } else if (e == HPE_PAUSED && req->pause == GW_PAUSE_DONE) {
        fwd = (uint32_t)(llhttp_get_error_pos(&req->rs) - p);
    } else {
        log_upstream(req, "upstream sent invalid body while reading upstream", 0);
        upstream_failed(w, req, 502);
        return;
    }
    if (!req->dechunk && fwd)
        gw_conn_send_buf(w, req->client, p, fwd, bid);
    if (req->pause == GW_PAUSE_DONE) {
        if (fwd < n)
            req->up_leftover = 1; /* bytes past the response: never reuse this connection */
        response_done(w, req);
        return;
    }
    if (req->client->out.bytes >= GW_QUEUE_HIGH)
        pause_upstream(w, req);
}

static void up_on_data(gw_worker_t *w, gw_conn_t *up, char *data, uint32_t len, uint32_t bid)
{
    gw_http_req_t *req = up->data;

    req->rs_started = 1;
    if (!req->up_paused)
        gw_conn_timer(w, up, lconf(req)->proxy_read_timeout);
    feed_response(w, req, data, len, bid);
    gw_buf_unref(&w->bufs, bid);
}

static void up_on_eof(gw_worker_t *w, gw_conn_t *up, int err)
{
    gw_http_req_t *req = up->data;

    if (req->rs_state == GW_RS_BODY && err == 0) {
        /* A body delimited by the close ends here; any other is cut short. */
        req->pause = GW_PAUSE_NONE;
        if (llhttp_finish(&req->rs) == HPE_PAUSED && req->pause == GW_PAUSE_DONE) {
            req->up_keepalive = 0;
            response_done(w, req);
            return;
        }
        log_upstream(req, "upstream prematurely closed connection while reading upstream", 0);
        abort_all(w, req);
        return;
    }
    if (req->rs_state == GW_RS_HEAD && req->up_reused && !req->retried && !req->rs_started &&
        req->rq_state == GW_RQ_DONE && req->body_bytes == 0) {
        /* A pooled connection the backend had closed just before we reused it:
         * nothing was answered and nothing but the head was sent, so sending
         * it again on a fresh connection is safe (nginx does the same). */
        req->retried = 1;
        release_upstream(w, req, 0);
        attach_upstream(w, req, 0);
        return;
    }
    log_upstream(req, "upstream prematurely closed connection while reading response header from upstream", -err);
    upstream_failed(w, req, 502);
}

static void up_on_send_error(gw_worker_t *w, gw_conn_t *up, int err)
{
    gw_http_req_t *req = up->data;

    log_upstream(req, "send() failed while sending request to upstream", -err);
    upstream_failed(w, req, 502);
}

static void up_on_connect(gw_worker_t *w, gw_conn_t *up, int res)
{
    gw_http_req_t *req = up->data;

    if (res < 0) {
        log_upstream(req, "connect() failed while connecting to upstream", -res);
        upstream_failed(w, req, 502);
        return;
    }
    req->rs_state = GW_RS_HEAD;
    gw_conn_recv_start(w, up);
    gw_conn_timer(w, up, lconf(req)->proxy_read_timeout);
}

static void up_on_timeout(gw_worker_t *w, gw_conn_t *up)
{
    gw_http_req_t *req = up->data;

    if (req->rs_state == GW_RS_CONNECTING)
        log_upstream(req, "upstream timed out while connecting to upstream", ETIMEDOUT);
    else
        log_upstream(req, "upstream timed out while reading response from upstream", ETIMEDOUT);
    upstream_failed(w, req, 504);
}

/* The request body drained from the upstream's queue: read more from the client. */
static void up_on_sent(gw_worker_t *w, gw_conn_t *up)
{
    gw_http_req_t *req = up->data;

    if (!req->up_paused)
        gw_conn_timer(w, up, lconf(req)->proxy_read_timeout);
    if (req->client_paused && up->out.bytes < GW_QUEUE_LOW) {
        req->client_paused = 0;
        gw_conn_recv_start(w, req->client);
        client_process(w, req);
    }
}

static const gw_conn_ops_t up_ops = {
    .on_data = up_on_data,
    .on_eof = up_on_eof,
    .on_sent = up_on_sent,
    .on_send_error = up_on_send_error,
    .on_connect = up_on_connect,
    .on_timeout = up_on_timeout,
};

/* ---- client side ---- */

static void request_done(gw_worker_t *w, gw_http_req_t *req)
{
    req->rq_state = GW_RQ_DONE;
    gw_conn_timer_off(w, req->client);
}

/* The head is complete: route it, check it, and start the upstream side. */
static int head_complete(gw_worker_t *w, gw_http_req_t *req)
{
    gw_conn_t *c = req->client;
    const gw_http_lconf_t *lc;
    const char *host, *path;
    uint32_t hlen, plen;
    int status;

    c->requests++;
    req->is_head = req->rq.method == HTTP_HEAD;
    gw_request_host(req, &host, &hlen);
    req->srv = find_server(c->ctx, host, hlen);
    gw_request_path(req, &path, &plen);
    if (plen == 0 || (path[0] != '/' && !(plen == 1 && path[0] == '*')))
        return client_error(w, req, 400);
    req->loc = find_location(req->srv, path, plen);
    lc = lconf(req);
    if (lc->keepalive_timeout == 0 || c->requests >= lc->keepalive_requests || w->stopping)
        req->keepalive = 0;
    status = gw_request_check(req);
    if (status)
        return client_error(w, req, (unsigned)status);
    req->rq_state = GW_RQ_BODY;
    if (req->loc == NULL || req->loc->upstream == NULL)
        return respond_status(w, req, 404);
    if (req->expect_100 && body_pending(req))
        gw_conn_send_static(w, c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    if (start_upstream(w, req) < 0)
        return GW_ERR;
    if (body_pending(req))
        gw_conn_timer(w, c, lc->client_body_timeout);
    else
        gw_conn_timer_off(w, c);
    return 0;
}

/*
 * Parse client bytes [data, data+len) of buffer bid. Returns how many were
 * used (the rest belongs to a later request), or GW_ERR when the exchange ended.
 */
static int feed_request(gw_worker_t *w, gw_http_req_t *req, const char *data, uint32_t len, uint32_t bid)
{
    uint32_t used = 0, fwd;
    int r;

    if (req->rq_state == GW_RQ_HEAD) {
        r = gw_request_parse_head(req, data, len, &used);
        if (r == GW_AGAIN)
            return (int)len;
        if (r != 0)
            return client_error(w, req, (unsigned)r);
        if (head_complete(w, req) < 0)
            return GW_ERR;
    }
    /* The body: forwarded as received, framing included (chunked stays chunked). */
    r = gw_request_parse_body(req, data + used, len - used, &fwd);
    if (r > 0)
        return client_error(w, req, (unsigned)r);
    if (fwd && req->up)
        gw_conn_send_buf(w, req->up, data + used, fwd, bid);
    if (r == 0)
        request_done(w, req);
    else if (fwd)
        gw_conn_timer(w, req->client, lconf(req)->client_body_timeout);
    return (int)(used + fwd);
}

static void pause_client(gw_worker_t *w, gw_http_req_t *req)
{
    if (req->client_paused)
        return;
    req->client_paused = 1;
    gw_conn_recv_stop(w, req->client);
}

/* Parse what the client sent, as far as the exchange's state allows. */
static void client_process(gw_worker_t *w, gw_http_req_t *req)
{
    while (req->inq.head) {
        gw_seg_t *s = req->inq.head;
        int n;

        if (req->rq_state == GW_RQ_DONE) {
            if (req->rs_state != GW_RS_DONE)
                break; /* the next request waits for this response */
            if (exchange_done(w, req) < 0)
                return;
            continue;
        }
        if (req->up && req->up->out.bytes >= GW_QUEUE_HIGH) {
            pause_client(w, req); /* the upstream reads slower than the client sends */
            return;
        }
        n = feed_request(w, req, s->data, s->len, s->bid);
        if (n < 0)
            return;
        gw_segq_consume(&req->inq, &w->segs, &w->bufs, (uint32_t)n);
    }
    if (req->rq_state == GW_RQ_DONE && req->rs_state == GW_RS_DONE) {
        exchange_done(w, req); /* a local answer (no upstream) to a request without body */
        return;
    }
    if (req->inq.bytes >= GW_QUEUE_HIGH)
        pause_client(w, req);
}

static void client_on_data(gw_worker_t *w, gw_conn_t *c, char *data, uint32_t len, uint32_t bid)
{
    gw_http_req_t *req = c->data;
    gw_seg_t *s;

    if (gw_conn_is_closing(c)) {
        gw_buf_unref(&w->bufs, bid);
        return;
    }
    if (req == NULL) {
        req = req_new(w, c);
        if (req == NULL) {
            gw_buf_unref(&w->bufs, bid);
            gw_conn_close(w, c);
            return;
        }
        gw_conn_timer(w, c, lconf(req)->client_header_timeout);
    }
    s = gw_seg_alloc(&w->segs);
    if (s == NULL) {
        gw_buf_unref(&w->bufs, bid);
        abort_all(w, req);
        return;
    }
    s->data = data;
    s->len = len;
    s->bid = (int32_t)bid; /* the queue now holds the reference the recv gave us */
    s->block = NULL;
    gw_segq_push(&req->inq, s);
    client_process(w, req);
}

static void client_on_eof(gw_worker_t *w, gw_conn_t *c, int err)
{
    gw_http_req_t *req = c->data;

    if (req == NULL || gw_conn_is_closing(c)) {
        if (req)
            req_free(w, req);
        gw_conn_close(w, c);
        return;
    }
    if (err == 0 && req->rq_state == GW_RQ_DONE) {
        /* Half-close after a whole request: still answer it, then close. */
        req->client_eof = 1;
        req->keepalive = 0;
        return;
    }
    abort_all(w, req);
}

static void client_on_send_error(gw_worker_t *w, gw_conn_t *c, int err)
{
    gw_http_req_t *req = c->data;

    if (req)
        abort_all(w, req);
    else
        gw_conn_close(w, c);
}

static void client_on_sent(gw_worker_t *w, gw_conn_t *c)
{
    gw_http_req_t *req = c->data;

    if (req == NULL || !req->up_paused)
        return;
    if (c->out.bytes < GW_QUEUE_LOW && req->up) {
        req->up_paused = 0;
        gw_conn_recv_start(w, req->up);
        gw_conn_timer(w, req->up, lconf(req)->proxy_read_timeout);
        gw_conn_timer_off(w, c);
    } else {
        gw_conn_timer(w, c, lconf(req)->send_timeout);
    }
}

/* Idle: keepalive_timeout. Otherwise client_header/body_timeout or send_timeout: nginx closes without an answer. */
static void client_on_timeout(gw_worker_t *w, gw_conn_t *c)
{
    gw_http_req_t *req = c->data;

    if (req)
        abort_all(w, req);
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

static const gw_conn_ops_t client_ops = {
    .on_data = client_on_data,
    .on_eof = client_on_eof,
    .on_sent = client_on_sent,
    .on_send_error = client_on_send_error,
    .on_timeout = client_on_timeout,
    .on_stop = client_on_stop,
};

void gw_http_accept(gw_worker_t *w, gw_conn_t *c, const gw_listen_t *l)
{
    const gw_http_addr_t *a = l->ctx;

    c->ops = &client_ops;
    c->ctx = a;
    gw_conn_recv_start(w, c);
    /* nginx waits client_header_timeout for the first byte of a new connection. */
    gw_conn_timer(w, c, a->dflt->lc.client_header_timeout);
}

int gw_http_init_worker(gw_worker_t *w)
{
    return 0;
}

/* A fast stop leaves exchanges in flight: free their state (sockets and
 * buffers go with the worker's table and ring, see worker_free). */
void gw_http_exit_worker(gw_worker_t *w)
{
    for (uint32_t i = 0; i < w->used_hwm; i++) {
        gw_conn_t *c = &w->conns[i];

        if ((c->flags & GW_CONN_USED) && c->ops == &client_ops && c->data)
            req_free(w, c->data);
    }
}
