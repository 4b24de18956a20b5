/*
 * An exchange's lifetime (see proxy.h): created when the first byte of a
 * request arrives, ended when its response is done. Then the upstream goes
 * back to its pool (or is closed), and the client connection parses the next
 * pipelined request, waits idle (keep-alive: no memory but its slot), or
 * closes.
 */
#include <stdlib.h>
#include <string.h>

#include "balancer/balancer.h"
#include "core/conn.h"
#include "core/gw.h"
#include "core/log.h"
#include "core/worker.h"
#include "answers.h"
#include "errors.h"
#include "gzip.h"
#include "obs.h"
#include "proxy.h"
#include "request.h"

gw_http_req_t *gw_exchange_new(gw_worker_t *w, gw_conn_t *c)
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
    gw_obs_request_begin(w, req);
    return req;
}

static void peer_done(gw_worker_t *w, gw_http_req_t *req, int failed)
{
    if (req->peer_active) {
        req->peer_active = 0;
        gw_balancer_done(req->rt, req->peer, failed ? GW_PEER_FAILED : GW_PEER_OK, w->now);
    }
}

void gw_exchange_free(gw_worker_t *w, gw_http_req_t *req)
{
    gw_obs_request_end(w, req);
    peer_done(w, req, 0);
    gw_segq_clear(&req->inq, &w->segs, &w->bufs);
    gw_msg_free(&req->in);
    gw_msg_free(&req->out);
    gw_gzip_free(req);
    free(req->key_long);
    free(req->uri_buf);
    if (req->client)
        req->client->data = NULL;
    free(req);
}

/* Ready req for the next request already waiting in inq (pipelining). */
static void reset(gw_worker_t *w, gw_http_req_t *req)
{
    gw_obs_request_end(w, req);
    gw_msg_reset(&req->in);
    gw_msg_reset(&req->out);
    gw_gzip_free(req);
    /* The parser stopped right after the previous message; it goes on from there. */
    llhttp_resume(&req->rq);
    req->srv = NULL;
    req->loc = NULL;
    free(req->uri_buf);
    req->uri_buf = NULL;
    req->uri = NULL;
    req->uri_len = 0;
    req->uri_quoted = 0;
    req->caps.n = 0;
    req->rt = NULL;
    req->peer = NULL;
    memset(&req->pick, 0, sizeof(req->pick));
    free(req->key_long);
    req->key_long = NULL;
    req->limit_delay_ms = 0;
    req->delayed = 0;
    req->start_us = w->now_us;
    req->body_bytes = 0;
    req->status = req->err_status = 0;
    req->rq_state = GW_RQ_HEAD;
    req->rs_state = GW_RS_NONE;
    req->pause = GW_PAUSE_NONE;
    req->host_count = req->te_count = req->tries = 0;
    req->expect_100 = req->is_head = req->up_reused = req->up_keepalive = req->up_leftover = 0;
    req->conn_close = req->head_lf = req->up_sent = req->upgrade = 0;
    req->error_page = req->internal_uri = 0;
    req->ep_status = 0;
    req->request_id[0] = req->request_id[1] = 0;
    req->dechunk = req->head_sent = req->in_1xx = req->up_paused = req->retried = req->rs_started = 0;
    req->flushing = 0;
    gw_obs_request_begin(w, req);
}

const gw_http_lconf_t *gw_exchange_lconf(const gw_http_req_t *req)
{
    if (req->loc)
        return &req->loc->lc;
    if (req->srv)
        return &req->srv->lc;
    return &((const gw_http_addr_t *)req->client->ctx)->dflt->lc;
}

int gw_exchange_body_pending(const gw_http_req_t *req)
{
    /* llhttp counts content_length down as the body is read. */
    return req->rq_state != GW_RQ_DONE && ((req->rq.flags & F_CHUNKED) || req->rq.content_length > 0);
}

void gw_exchange_log_upstream(const gw_http_req_t *req, const char *what, int err)
{
    gw_obs_log_upstream(req, what, err);
}

void gw_exchange_release_upstream(gw_worker_t *w, gw_http_req_t *req, int reusable, int failed)
{
    gw_conn_t *up = req->up;

    gw_obs_attempt_end(req);
    peer_done(w, req, failed);
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

void gw_exchange_abort(gw_worker_t *w, gw_http_req_t *req)
{
    gw_conn_t *c = req->client;

    gw_exchange_release_upstream(w, req, 0, 0);
    gw_exchange_free(w, req);
    gw_conn_close(w, c);
}

int gw_exchange_done(gw_worker_t *w, gw_http_req_t *req)
{
    gw_conn_t *c = req->client;
    const gw_http_lconf_t *lc = gw_exchange_lconf(req);
    int paused = req->client_paused;

    if (!req->flushing) {
        gw_worker_exchange_done(w, req->start_us);
        gw_exchange_release_upstream(w, req, req->up_keepalive && !req->up_leftover, 0);
    }
    if (gw_conn_has_output(c)) {
        /* The end of the response is still going out. Until it is sent the
         * client is writing, not idle: send_timeout applies (as nginx's
         * writer), and keepalive_timeout starts only afterwards. Started now,
         * it would close a slow reader before the last of its response left
         * (a truncated body); with no timer at all, a client that stopped
         * reading would keep its buffers for ever. client_on_sent ends the
         * exchange once everything is sent. Bytes of the next request wait in
         * inq meanwhile: a pipelining client is served in order. */
        if (!req->flushing) {
            req->flushing = 1;
            gw_conn_timer(w, c, lc->send_timeout);
        }
        return GW_AGAIN;
    }
    req->flushing = 0;
    req->client_paused = 0;
    /* req->keepalive is what the response head promised: closing after a
     * promised keep-alive would race a client already sending the next
     * request. A reload or stop since then is handled by the next exchange. */
    if (!req->keepalive || req->client_eof) {
        int linger = req->inq.bytes > 0;

        gw_exchange_free(w, req);
        gw_conn_finish(w, c, linger);
        return GW_ERR;
    }
    if (paused)
        gw_conn_recv_start(w, c);
    if (req->inq.bytes == 0) {
        gw_exchange_free(w, req);
        gw_conn_timer(w, c, lc->keepalive_timeout);
        return GW_ERR;
    }
    reset(w, req);
    gw_conn_timer(w, c, lc->client_header_timeout);
    return 0;
}

int gw_exchange_answer_begin(gw_worker_t *w, gw_http_req_t *req)
{
    gw_exchange_release_upstream(w, req, 0, 0);
    if (gw_exchange_body_pending(req) || w->stopping || req->client->wc != w->cur)
        req->keepalive = 0;
    return req->keepalive;
}

/*
 * The response side is then done. A request whose body is still arriving
 * cannot keep the connection: it closes after the answer (lingering, so the
 * answer is read before a reset could destroy it).
 */
int gw_exchange_answer_send(gw_worker_t *w, gw_http_req_t *req, unsigned status, char *resp, uint32_t len)
{
    gw_conn_t *c = req->client;

    if (resp) {
        const char *end = memmem(resp, len, "\r\n\r\n", 4);

        gw_conn_send_heap(w, c, resp, resp, len);
        req->body_mark = end ? c->queued - (len - (uint32_t)(end + 4 - resp)) : c->queued;
    }
    req->status = (uint16_t)status;
    req->rs_state = GW_RS_DONE;
    req->head_sent = 1;
    if (!req->keepalive || resp == NULL) {
        gw_conn_timer(w, c, gw_exchange_lconf(req)->send_timeout); /* for the answer to leave (then lingering) */
        gw_exchange_free(w, req);
        gw_conn_finish(w, c, 1);
        return GW_ERR;
    }
    return 0;
}

int gw_exchange_respond(gw_worker_t *w, gw_http_req_t *req, unsigned status)
{
    int r = gw_answers_error_page(w, req, status);

    return r != GW_ANS_DECLINED ? r : gw_answers_plain(w, req, status);
}

int gw_exchange_client_error(gw_worker_t *w, gw_http_req_t *req, unsigned status)
{
    req->keepalive = 0;
    gw_exchange_respond(w, req, status);
    return GW_ERR;
}

void gw_exchange_after_response(gw_worker_t *w, gw_http_req_t *req)
{
    if (gw_exchange_done(w, req) == 0)
        gw_client_process(w, req);
}
