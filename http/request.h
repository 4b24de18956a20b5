/* The request side of an exchange (see request.c). */
#ifndef GW_REQUEST_H
#define GW_REQUEST_H

#include "request-t.h"

/* Set up req->rq for a new request on this connection. */
void gw_request_parser_init(gw_http_req_t *req);

/* The status to answer for a request parse error (the callbacks' own, or llhttp's mapped). */
uint16_t gw_request_parse_error(gw_http_req_t *req, llhttp_errno_t e);

/* Checks once the head is complete and the location known: 0, or the status to answer. */
int gw_request_check(gw_http_req_t *req);

/* The host the request names (absolute-form target, else Host), without port. */
void gw_request_host(const gw_http_req_t *req, const char **host, uint32_t *len);

/* The path of the target, without the query. */
void gw_request_path(const gw_http_req_t *req, const char **path, uint32_t *len);

/* The head to send upstream, malloc'ed; NULL when out of memory. */
char *gw_request_upstream_head(const gw_http_req_t *req, uint32_t *len);

#endif
