/*
 * The upstream side of the proxy (see proxy.h): choose a peer, send the
 * request head (and the body as it arrives) on a pooled or new connection,
 * parse the response and stream it to the client. Failures go to
 * proxy_next_upstream: nginx's rules decide whether another peer gets the
 * request, and the balancer hears about every attempt.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer/balancer.h"
#include "core/conn.h"
#include "core/gw.h"
#include "answers.h"
#include "gzip.h"
#include "obs.h"
#include "proxy.h"
#include "request.h"
#include "tls/tls.h"
#include "response.h"
#include "tunnel.h"
#include "vars.h"

static const gw_conn_ops_t up_ops;

static const gw_http_lconf_t *lconf(const gw_http_req_t *req)
{
    return gw_exchange_lconf(req);
}

static unsigned ft_of_status(unsigned status)
{
    switch (status) {
    case 500: return GW_FT_HTTP_500;
    case 502: return GW_FT_HTTP_502;
    case 503: return GW_FT_HTTP_503;
    case 504: return GW_FT_HTTP_504;
    case 403: return GW_FT_HTTP_403;
    case 404: return GW_FT_HTTP_404;
    case 429: return GW_FT_HTTP_429;
    default: return 0;
    }
}

/* nginx's non-idempotent methods: not sent twice unless non_idempotent is given. */
static int idempotent(const gw_http_req_t *req)
{
    return req->rq.method != HTTP_POST && req->rq.method != HTTP_LOCK && req->rq.method != HTTP_PATCH;
}

static int has_body(const gw_http_req_t *req)
{
    return req->body_bytes > 0 || gw_exchange_body_pending(req);
}

/* Has anything of this request reached the current upstream's socket? */
static int request_sent(const gw_http_req_t *req)
{
    const gw_conn_t *up = req->up;

    if (req->up_sent)
        return 1;
    if (up == NULL)
        return 0;
    /* up_sent waits for the queue to drain: a short send (or a failed one,
     * which drops the queue) shows only as bytes gone from c->out. Over TLS
     * the head leaves c->out as soon as it is made into records. */
    return (up->flags & GW_CONN_SENDING) || up->queued - up->out.bytes != req->up_mark || gw_tls_encoded(up);
}

/*
 * May this failure (GW_FT_*) send the request to another peer? nginx's rules:
 * the condition is listed in proxy_next_upstream, nothing of a response went
 * to the client, the tries and time limits allow, and a request already sent
 * is not repeated if it is non-idempotent (unless non_idempotent) or has a
 * body (streamed, not kept: it cannot be replayed).
 */
static int can_retry(const gw_http_req_t *req, unsigned ft)
{
    const gw_http_lconf_t *lc = lconf(req);
    uint64_t mask = lc->proxy_next_upstream;

    if (!(mask & ft) || req->head_sent)
        return 0;
    if (lc->proxy_next_upstream_tries && req->tries >= lc->proxy_next_upstream_tries)
        return 0;
    if (lc->proxy_next_upstream_timeout && (req->w->now_us - req->start_us) / 1000 >= lc->proxy_next_upstream_timeout)
        return 0;
    if (request_sent(req) && ((!idempotent(req) && !(mask & GW_FT_NON_IDEMPOTENT)) || has_body(req)))
        return 0;
    return 1;
}

/* Do the failure's conditions count against the peer (max_fails)? nginx: not for 403/404. */
static int counts_as_failure(const gw_http_req_t *req, unsigned ft)
{
    if (ft & (GW_FT_ERROR | GW_FT_TIMEOUT | GW_FT_INVALID_HEADER))
        return 1;
    return (ft & (GW_FT_HTTP_500 | GW_FT_HTTP_502 | GW_FT_HTTP_503 | GW_FT_HTTP_504 | GW_FT_HTTP_429)) &&
           (lconf(req)->proxy_next_upstream & ft);
}

/*
 * Queue the request head (and what body was already queued, `body`) on a
 * pooled connection to req->peer, or on a new one. 0, or GW_ERR when the
 * exchange ended.
 */
static void upstream_error(gw_worker_t *w, gw_http_req_t *req, unsigned ft, unsigned status, const char *what,
                           int err);

static int attach(gw_worker_t *w, gw_http_req_t *req, int allow_pool, gw_segq_t *body)
{
    const gw_http_lconf_t *lc = lconf(req);
    gw_conn_t *up = allow_pool ? gw_pool_get(w, req->rt, req->peer) : NULL;
    uint32_t len;
    char *head;
    int err = 0;

    /* A pooled connection of the other kind (plain vs TLS: one upstream may
     * serve both http:// and https:// locations) is not reusable here. */
    if (up && gw_tls_is_tls(up) != (req->loc->proxy_https != 0)) {
        gw_conn_close(w, up);
        up = NULL;
    }
    head = gw_request_upstream_head(req, &len);
    if (head == NULL) {
        if (body)
            gw_segq_clear(body, &w->segs, &w->bufs);
        return gw_exchange_client_error(w, req, 500);
    }
    if (up) {
        up->ops = &up_ops;
        up->data = req;
        gw_tls_encoded_reset(up);
        req->up_reused = 1;
        req->rs_state = GW_RS_HEAD;
        gw_conn_timer(w, up, lc->proxy_send_timeout); /* the head is being sent; read time starts when it is out */
    } else {
        up = gw_conn_connect(w, req->client->wc, &req->peer->addr, &up_ops, req, &err);
        if (up == NULL) {
            free(head);
            if (body)
                gw_segq_clear(body, &w->segs, &w->bufs);
            upstream_error(w, req, GW_FT_ERROR, 502, "socket() failed while connecting to upstream", -err);
            return GW_ERR;
        }
        up->ctx = req->peer;
        req->up_reused = 0;
        req->rs_state = GW_RS_CONNECTING;
        gw_conn_timer(w, up, lc->proxy_connect_timeout);
    }
    req->up = up;
    req->up_sent = 0;
    req->up_mark = up->queued - up->out.bytes; /* what leaves c->out from here on is this request's */
    up->requests++;
    gw_obs_attempt_begin(req, req->up_reused);
    gw_response_parser_init(req);
    gw_conn_send_heap(w, up, head, head, len);
    if (body)
        gw_conn_send_queue(w, up, body);
    return 0;
}

/* Pick a peer for the request (first attempt or retry). NULL: none left. */
static const gw_peer_t *pick(gw_worker_t *w, gw_http_req_t *req)
{
    gw_peer_t *p;

    req->pick.now = w->now;
    p = gw_balancer_get(req->rt, &req->pick);
    if (p) {
        req->peer = p;
        req->peer_active = 1;
        req->tries++;
    }
    return p;
}

/*
 * Send the request to another peer. The current upstream is given up (and
 * the balancer told whether it failed); a body still waiting in its queue
 * (never sent: the connect failed) moves to the new connection. Returns -1,
 * touching nothing, when no other peer is usable.
 */
static int retry(gw_worker_t *w, gw_http_req_t *req, int failed)
{
    gw_upstream_rt_t *rt = req->rt;
    gw_peer_t *next;
    gw_segq_t body;

    req->pick.now = w->now;
    next = gw_balancer_get(rt, &req->pick);
    if (next == NULL)
        return -1;
    gw_segq_init(&body);
    if (req->up && !request_sent(req) && gw_conn_take_output(w, req->up, &body) == 0 && body.head) {
        /* The first piece is the old head: a new one is built for the new peer. */
        gw_seg_t *h = body.head;

        body.head = h->next;
        body.bytes -= h->len;
        body.count--;
        if (body.head == NULL)
            body.tailp = &body.head;
        gw_seg_release(&w->segs, &w->bufs, h);
    }
    gw_exchange_release_upstream(w, req, 0, failed); /* reports req->peer: the old one */
    req->peer = next;
    req->peer_active = 1;
    req->tries++;
    req->rs_state = GW_RS_NONE;
    req->rs_started = req->up_reused = req->in_1xx = req->up_keepalive = req->up_leftover = 0;
    req->err_status = 0;
    attach(w, req, 1, &body); /* its own failures end or retry the exchange */
    return 0;
}

/*
 * The upstream failed (GW_FT_* `ft`). Log it, then retry on another peer if
 * the rules allow; otherwise answer `status` (nothing sent yet) or cut the
 * client off (a response was under way).
 */
static void upstream_error(gw_worker_t *w, gw_http_req_t *req, unsigned ft, unsigned status, const char *what,
                           int err)
{
    int failed = counts_as_failure(req, ft);

    gw_obs_attempt_failed(req, status, ft & (GW_FT_ERROR | GW_FT_TIMEOUT | GW_FT_INVALID_HEADER));
    gw_exchange_log_upstream(req, what, err);
    if (can_retry(req, ft) && retry(w, req, failed) == 0)
        return;
    gw_exchange_release_upstream(w, req, 0, failed);
    if (req->head_sent) {
        gw_exchange_abort(w, req);
        return;
    }
    /* An error_page may have sent the request to a named location: then the response is not done. */
    if (gw_exchange_respond(w, req, status) == 0 && req->rq_state == GW_RQ_DONE && req->rs_state == GW_RS_DONE)
        gw_exchange_after_response(w, req);
}

int gw_proxy_start(gw_worker_t *w, gw_http_req_t *req)
{
    const gw_upstream_t *u = req->loc->upstream;
    const gw_peer_addr_t *pa = &req->client->peer;

    req->rt = gw_upstream_rt(req->client->wc, u);
    if (pa->family) {
        req->pick.addr = pa->addr;
        req->pick.addr_len = pa->family == AF_INET6 ? 16 : 4;
    }
    if (u->hash_key_cv) {
        size_t n = gw_cv_eval(u->hash_key_cv, req, req->key, sizeof(req->key));

        req->pick.key = req->key;
        if (n > sizeof(req->key)) {
            free(req->key_long);
            req->key_long = malloc(n);
            if (req->key_long == NULL)
                return gw_exchange_respond(w, req, 500) < 0 ? GW_ERR : 0;
            gw_cv_eval(u->hash_key_cv, req, req->key_long, n);
            req->pick.key = req->key_long;
        }
        req->pick.key_len = (uint32_t)n;
    }
    if (pick(w, req) == NULL) {
        gw_obs_attempt_none(req);
        gw_exchange_log_upstream(req, "no live upstreams while connecting to upstream", 0);
        return gw_exchange_respond(w, req, 502) < 0 ? GW_ERR : 0;
    }
    return attach(w, req, 1, NULL);
}

/* ---- the response ---- */

static void pause_upstream(gw_worker_t *w, gw_http_req_t *req)
{
    if (req->up_paused || req->up == NULL)
        return;
    req->up_paused = 1;
    gw_conn_recv_stop(w, req->up);
    gw_conn_timer_off(w, req->up);
    gw_conn_timer(w, req->client, lconf(req)->send_timeout);
}

void gw_proxy_client_drained(gw_worker_t *w, gw_http_req_t *req)
{
    gw_conn_t *c = req->client;

    if (c->out.bytes < GW_QUEUE_LOW && req->up) {
        req->up_paused = 0;
        gw_conn_recv_start(w, req->up);
        gw_conn_timer(w, req->up, lconf(req)->proxy_read_timeout);
        gw_conn_timer_off(w, c);
    } else {
        gw_conn_timer(w, c, lconf(req)->send_timeout);
    }
}

static void response_done(gw_worker_t *w, gw_http_req_t *req)
{
    if (req->gz && gw_gzip_finish(w, req) < 0) {
        upstream_error(w, req, GW_FT_ERROR, 502, "gzip compression failed", ENOMEM);
        return;
    }
    req->rs_state = GW_RS_DONE;
    if (req->up_paused && req->up) {
        gw_conn_recv_start(w, req->up);
        req->up_paused = 0;
    }
    if (req->rq_state != GW_RQ_DONE) {
        /* Answered before the body was read (a backend may refuse early):
         * the rest of the body has nowhere to go, so the connection ends. */
        gw_conn_t *c = req->client;

        gw_exchange_release_upstream(w, req, 0, 0);
        gw_conn_timer(w, c, lconf(req)->send_timeout); /* for the response to leave (then lingering) */
        gw_exchange_free(w, req);
        gw_conn_finish(w, c, 1);
        return;
    }
    gw_exchange_after_response(w, req);
}

/*
 * The response head is complete: a status listed in proxy_next_upstream may
 * send the request elsewhere; otherwise decide the framing towards the client
 * and queue the head. 0, or GW_ERR when this response will not be forwarded.
 */
static int response_head(gw_worker_t *w, gw_http_req_t *req)
{
    llhttp_t *rs = &req->rs;
    unsigned ft = ft_of_status(req->status);
    uint32_t len;
    char *head;

    gw_obs_attempt_header(req);
    if (ft && can_retry(req, ft)) {
        char what[64];

        snprintf(what, sizeof(what), "upstream answered %u, trying the next one", req->status);
        gw_exchange_log_upstream(req, what, 0);
        if (retry(w, req, counts_as_failure(req, ft)) == 0)
            return GW_ERR;
    }
    if (gw_answers_intercepts(req, req->status)) {
        /* proxy_intercept_errors: this answer is dropped (with its connection) for the error_page's. */
        gw_exchange_release_upstream(w, req, 0, 0);
        if (gw_exchange_respond(w, req, req->status) == 0 && req->rq_state == GW_RQ_DONE &&
            req->rs_state == GW_RS_DONE)
            gw_exchange_after_response(w, req);
        return GW_ERR;
    }
    if (req->ep_status) {
        /* An error_page without "=" (or with "=CODE") keeps the status it was given. */
        req->status = req->ep_status;
        req->out.line_len = 0;
    }
    if (lconf(req)->gzip == 1 && gw_gzip_start(req) < 0) {
        upstream_error(w, req, 0, 500, "out of memory starting gzip", ENOMEM);
        return GW_ERR;
    }
    /* An HTTP/1.0 client cannot read chunked: send the body decoded, then close. */
    req->dechunk = (rs->flags & F_CHUNKED) && !(rs->flags & F_SKIPBODY) && req->rq.http_minor == 0 && !req->gz;
    /* the end of the body is the end of the connection, unless the compressed body goes out chunked */
    if ((llhttp_message_needs_eof(rs) && !gw_gzip_chunked(req)) || req->dechunk ||
        (req->gz && !req->is_head && !gw_gzip_chunked(req)))
        req->keepalive = 0;
    if (w->stopping || req->client->wc != w->cur)
        req->keepalive = 0; /* stopping, or a reload made this connection's configuration old */
    req->up_keepalive = llhttp_should_keep_alive(rs) != 0 && !req->up_conn_close;
    head = gw_response_client_head(req, &len);
    if (head == NULL) {
        upstream_error(w, req, 0, 500, "out of memory building the response head", ENOMEM);
        return GW_ERR;
    }
    gw_conn_send_heap(w, req->client, head, head, len);
    req->body_mark = req->client->queued;
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
        used = e == HPE_OK ? n : (uint32_t)(llhttp_get_error_pos(&req->rs) - p);
        if ((e != HPE_OK && (e != HPE_PAUSED || req->pause != GW_PAUSE_HEADERS)) ||
            gw_response_check_head(req, p, used) < 0) {
            upstream_error(w, req, GW_FT_INVALID_HEADER, 502,
                           "upstream sent invalid header while reading response header from upstream", 0);
            return;
        }
        if (e == HPE_OK)
            return;
        llhttp_resume(&req->rs);
        if (req->status == 101) {
            gw_tunnel_start(w, req, p + used, n - used, bid);
            return;
        }
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
        upstream_error(w, req, GW_FT_ERROR, 502, "upstream sent invalid body while reading upstream", 0);
        return;
    }
    if (gw_response_check_framing(req, p, fwd, req->pause == GW_PAUSE_DONE) < 0) {
        upstream_error(w, req, GW_FT_ERROR, 502, "upstream sent invalid chunked response while reading upstream", 0);
        return;
    }
    if (!req->dechunk && !req->gz && fwd)
        gw_conn_send_buf(w, req->client, p, fwd, bid);
    if (req->pause == GW_PAUSE_DONE) {
        if (fwd < n)
            req->up_leftover = 1; /* bytes past the response: never reuse this connection */
        response_done(w, req);
        return;
    }
    if (req->gz && req->client->out.bytes == 0)
        gw_gzip_idle(w, req); /* the client waits: what zlib holds goes now (else when its queue drains) */
    if (gw_queue_high(&req->client->out))
        pause_upstream(w, req);
}

/* ---- the upstream connection ---- */

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
        upstream_error(w, req, GW_FT_ERROR, 502, "upstream prematurely closed connection while reading upstream", 0);
        return;
    }
    if (req->rs_state == GW_RS_HEAD && req->up_reused && !req->retried && !req->rs_started && idempotent(req) &&
        !has_body(req)) {
        /* A pooled connection the backend closed just as we reused it: the
         * peer is fine, the connection was stale. Send the request again on
         * a fresh one to the same peer; not a try, not a failure. */
        req->retried = 1;
        gw_conn_close(w, req->up);
        req->up->data = NULL;
        req->up = NULL;
        attach(w, req, 0, NULL);
        return;
    }
    upstream_error(w, req, GW_FT_ERROR, 502,
                   "upstream prematurely closed connection while reading response header from upstream", -err);
}

static void up_on_send_error(gw_worker_t *w, gw_conn_t *up, int err)
{
    upstream_error(w, up->data, GW_FT_ERROR, 502, "send() failed while sending request to upstream", -err);
}

static void up_on_connect(gw_worker_t *w, gw_conn_t *up, int res)
{
    gw_http_req_t *req = up->data;

    if (res < 0) {
        upstream_error(w, req, GW_FT_ERROR, 502, "connect() failed while connecting to upstream", -res);
        return;
    }
    gw_obs_attempt_connected(req);
    req->rs_state = GW_RS_HEAD;
    /* proxy_pass https://: the request waits in up's queue until the TLS handshake is done (tls/). */
    if (req->loc->proxy_https && (res = gw_tls_connect(w, up, req->loc->proxy_ssl, req->loc->proxy_host,
                                                       req->loc->proxy_host_len)) < 0) {
        upstream_error(w, req, GW_FT_ERROR, 502, "SSL_new() failed while SSL handshaking to upstream", -res);
        return;
    }
    gw_conn_recv_start(w, up);
    /* The head is queued: proxy_send_timeout until it is out (up_on_sent), then proxy_read_timeout. */
    gw_conn_timer(w, up, lconf(req)->proxy_send_timeout);
}

/* Still sending the request (head or body) to the upstream, nothing received yet? */
static int sending(const gw_http_req_t *req)
{
    const gw_conn_t *up = req->up;

    return up && req->rs_state == GW_RS_HEAD && !req->rs_started && (up->out.bytes || (up->flags & GW_CONN_SENDING));
}

void gw_proxy_body_queued(gw_worker_t *w, gw_http_req_t *req)
{
    /* nginx's proxy_send_timeout: how long the upstream may stop taking the
     * request. Counted from the latest body bytes queued or the last drain. */
    if (!req->up_paused && sending(req))
        gw_conn_timer(w, req->up, lconf(req)->proxy_send_timeout);
}

static void up_on_timeout(gw_worker_t *w, gw_conn_t *up)
{
    gw_http_req_t *req = up->data;

    if (req->rs_state == GW_RS_CONNECTING)
        upstream_error(w, req, GW_FT_TIMEOUT, 504, "upstream timed out while connecting to upstream", ETIMEDOUT);
    else if (sending(req))
        upstream_error(w, req, GW_FT_TIMEOUT, 504, "upstream timed out while sending request to upstream",
                       ETIMEDOUT);
    else
        upstream_error(w, req, GW_FT_TIMEOUT, 504,
                       req->rs_state == GW_RS_HEAD ? "upstream timed out while reading response header from upstream"
                                                   : "upstream timed out while reading upstream",
                       ETIMEDOUT);
}

/*
 * The buffer ring ran dry: this upstream is not read until buffers come back.
 * If its client still has output to take, that output holds some of them:
 * wait for the client as when its queue is full (pause_upstream), so that
 * send_timeout bounds a client that stopped reading, and proxy_read_timeout
 * does not blame the upstream for bytes we did not read. Without such output
 * the exchange only waits for buffers that others hold.
 */
static void up_on_starved(gw_worker_t *w, gw_conn_t *up)
{
    gw_http_req_t *req = up->data;

    if (req && req->up == up && gw_conn_has_output(req->client))
        pause_upstream(w, req);
}

/* Part of the request reached the upstream; the body drained from its queue: read more from the client. */
static void up_on_sent(gw_worker_t *w, gw_conn_t *up)
{
    gw_http_req_t *req = up->data;

    req->up_sent = 1;
    if (!req->up_paused)
        gw_conn_timer(w, up, lconf(req)->proxy_read_timeout);
    if (req->client_paused && up->out.bytes < GW_QUEUE_LOW) {
        req->client_paused = 0;
        gw_conn_recv_start(w, req->client);
        gw_client_process(w, req);
    }
}

static const gw_conn_ops_t up_ops = {
    .on_data = up_on_data,
    .on_eof = up_on_eof,
    .on_sent = up_on_sent,
    .on_send_error = up_on_send_error,
    .on_connect = up_on_connect,
    .on_timeout = up_on_timeout,
    .on_starved = up_on_starved,
};
