/*
 * Inside the proxy: an exchange (a request, the upstream carrying it, its
 * response) across three files.
 *   exchange.c  its lifetime: creation, answers of our own, the end
 *   client.c    the client side: parsing, routing, the request body
 *   proxy.c     the upstream side: balancing, retries, the response
 *
 * Client side (req->rq_state):      Upstream side (req->rs_state):
 *   idle (no req) -> HEAD              NONE -> CONNECTING -> HEAD -> BODY -> DONE
 *   HEAD -> BODY   head forwarded              (a pooled connection skips CONNECTING)
 *   BODY -> DONE   body forwarded      a retry goes back to CONNECTING/HEAD on another peer
 * An exchange ends when both are DONE and the response is sent (queued output
 * gone to the kernel): send_timeout bounds that wait.
 *
 * Convention: functions returning int give GW_ERR when the exchange was
 * ended and `req` freed; the caller must not touch it again.
 */
#ifndef GW_PROXY_H
#define GW_PROXY_H

#include "core/worker-t.h"
#include "request-t.h"

/* Is q past a backpressure mark (GW_QUEUE_HIGH bytes or GW_QUEUE_HIGH_PIECES pieces)? */
static inline int gw_queue_high(const gw_segq_t *q)
{
    return q->bytes >= GW_QUEUE_HIGH || q->count >= GW_QUEUE_HIGH_PIECES;
}

/* ---- exchange.c ---- */
gw_http_req_t *gw_exchange_new(gw_worker_t *w, gw_conn_t *c);
void gw_exchange_free(gw_worker_t *w, gw_http_req_t *req);
const gw_http_lconf_t *gw_exchange_lconf(const gw_http_req_t *req);
int gw_exchange_body_pending(const gw_http_req_t *req);
/* Detach the upstream: to its pool when `reusable`, else closed; tell the balancer `failed` or not. */
void gw_exchange_release_upstream(gw_worker_t *w, gw_http_req_t *req, int reusable, int failed);
/* End everything now, without a response. */
void gw_exchange_abort(gw_worker_t *w, gw_http_req_t *req);
/* Both sides done: GW_ERR when req was freed, 0 when reset for a pipelined
 * request, GW_AGAIN while the response is still being sent (req is left as it
 * is; client_on_sent ends it: gw_exchange_after_response). */
int gw_exchange_done(gw_worker_t *w, gw_http_req_t *req);
/* Answer `status` ourselves (nothing of a response sent yet). */
int gw_exchange_respond(gw_worker_t *w, gw_http_req_t *req, unsigned status);
/* An answer of our own, in two steps: release the upstream and settle
 * keep-alive (returned), then send the response built with it (NULL: out of
 * memory, the connection closes). The second returns 0 or GW_ERR. */
int gw_exchange_answer_begin(gw_worker_t *w, gw_http_req_t *req);
int gw_exchange_answer_send(gw_worker_t *w, gw_http_req_t *req, unsigned status, char *resp, uint32_t len);
/* A malformed or refused request: answer and close. Always GW_ERR. */
int gw_exchange_client_error(gw_worker_t *w, gw_http_req_t *req, unsigned status);
/* The response side finished outside client parsing: end, go on with the next request. */
void gw_exchange_after_response(gw_worker_t *w, gw_http_req_t *req);
void gw_exchange_log_upstream(const gw_http_req_t *req, const char *what, int err);

/* ---- client.c ---- */
void gw_client_process(gw_worker_t *w, gw_http_req_t *req);
extern const gw_conn_ops_t gw_client_ops;

/* ---- proxy.c ---- */
/* Choose a peer and send the request head there. 0 or GW_ERR. */
int gw_proxy_start(gw_worker_t *w, gw_http_req_t *req);
/* Request body bytes were queued on the upstream: proxy_send_timeout runs while it does not take them. */
void gw_proxy_body_queued(gw_worker_t *w, gw_http_req_t *req);
/* The client's queue drained below the low mark: read the upstream again. */
void gw_proxy_client_drained(gw_worker_t *w, gw_http_req_t *req);

#endif
