/* The request side of an exchange (see request.c). */
#ifndef GW_REQUEST_H
#define GW_REQUEST_H

#include "request-t.h"

/* Set up req->rq for a new request on this connection. */
void gw_request_parser_init(gw_http_req_t *req);

/* The status to answer for a request parse error (the callbacks' own, or llhttp's mapped). */
uint16_t gw_request_parse_error(gw_http_req_t *req, llhttp_errno_t e);

/*
 * Feed head bytes. GW_AGAIN: all n taken, the head goes on; 0: the head
 * ended after *used bytes (the rest is body or the next request); else the
 * HTTP status to answer (400, 414, 431, 501, 505).
 */
int gw_request_parse_head(gw_http_req_t *req, const char *p, uint32_t n, uint32_t *used);

/*
 * Feed body bytes (framing included). GW_AGAIN: all n taken, the body goes
 * on; 0: the request ended after *used bytes; else the status (400, 413).
 */
int gw_request_parse_body(gw_http_req_t *req, const char *p, uint32_t n, uint32_t *used);

/* Checks once the head is complete and the location known: 0, or the status to answer. */
int gw_request_check(gw_http_req_t *req);

/* The host the request names (absolute-form target, else Host), without port. */
void gw_request_host(const gw_http_req_t *req, const char **host, uint32_t *len);

/* The request target split: path (never empty; "/" for "http://h") and query (with its '?'). */
typedef struct gw_target {
    const char *path;
    uint32_t path_len;
    const char *query;
    uint32_t query_len;
} gw_target_t;

void gw_request_target(const gw_http_req_t *req, gw_target_t *t);

/* The path of the target, without the query. */
void gw_request_path(const gw_http_req_t *req, const char **path, uint32_t *len);

/* The head to send upstream, malloc'ed; NULL when out of memory (see gw_headers_upstream_head). */
char *gw_request_upstream_head(gw_http_req_t *req, uint32_t *len);

#endif
