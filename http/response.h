/* The response side of an exchange (see response.c). */
#ifndef GW_RESPONSE_H
#define GW_RESPONSE_H

#include "request-t.h"

/* Set up req->rs for the response to the request just sent. */
void gw_response_parser_init(gw_http_req_t *req);

/*
 * Response head bytes llhttp took, [p, p+n), in order: -1 when a line has
 * whitespace where nginx refuses it (inside a field name, or at the start
 * of a line), which llhttp's lenient header mode (bare LF) would let by.
 */
int gw_response_check_head(gw_http_req_t *req, const char *p, uint32_t n);

/*
 * The body bytes llhttp took, [p, p+n), `done` when they end the response:
 * for a chunked body, 0 when the strict reading (chunked.c) agrees, -1 when
 * it does not (the upstream is not to be trusted with another request).
 */
int gw_response_check_framing(gw_http_req_t *req, const char *p, uint32_t n, int done);

/* The head to send the client, malloc'ed; NULL when out of memory.
 * Uses req->keepalive and req->dechunk as decided by the caller. */
char *gw_response_client_head(const gw_http_req_t *req, uint32_t *len);

#endif
