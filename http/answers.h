/*
 * Answers the gateway gives itself instead of proxying (answers.c): return,
 * internal, allow/deny, error_page, and the header limits of
 * large_client_header_buffers.
 */
#ifndef GW_ANSWERS_H
#define GW_ANSWERS_H

#include "core/worker-t.h"
#include "request-t.h"

/* "Not mine": the caller goes on as if nothing had been configured. */
#define GW_ANS_DECLINED 1

/*
 * The head is routed (req->srv, req->loc): apply, in nginx's phase order,
 * the server's return, the location's `internal` (404 to a direct request),
 * its return, then allow/deny (403). GW_ANS_DECLINED when the request goes
 * on to the proxy; else 0 or GW_ERR as gw_exchange_respond.
 */
int gw_answers_route(gw_worker_t *w, gw_http_req_t *req);

/*
 * We are about to answer `status` ourselves: does an error_page say
 * otherwise? GW_ANS_DECLINED when none applies; else it answered (a file, a
 * return, a redirect) or proxied to a named location: 0 or GW_ERR as
 * gw_exchange_respond.
 */
int gw_answers_error_page(gw_worker_t *w, gw_http_req_t *req, unsigned status);

/* nginx's own response for status (its page, if it has one), error_page aside. 0 or GW_ERR as gw_exchange_respond. */
int gw_answers_plain(gw_worker_t *w, gw_http_req_t *req, unsigned status);

/*
 * A relative Location (`url`, starting with '/') made absolute as nginx does
 * with absolute_redirect on; malloc'ed, NULL when out of memory. Also for
 * proxy_redirect's results (headers.c).
 */
char *gw_answers_absolute(const gw_http_req_t *req, const char *url, size_t len, size_t *out_len);

/* A redirect answer (status 301...) to url, made absolute as nginx does when it starts with '/'. 0 or GW_ERR. */
int gw_answers_redirect(gw_worker_t *w, gw_http_req_t *req, unsigned status, const char *url, size_t len);

/* proxy_intercept_errors: should the upstream's answer with `status` be replaced by an error_page? */
int gw_answers_intercepts(const gw_http_req_t *req, unsigned status);

/* Set req->in's limits from large_client_header_buffers (the address's default server, as nginx). */
void gw_answers_header_limits(gw_http_req_t *req);

#endif
