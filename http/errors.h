/* Responses the gateway makes itself: error pages in nginx's shape. */
#ifndef GW_ERRORS_H
#define GW_ERRORS_H

#include <stdint.h>

/*
 * A complete response for `status` (400, 404, 413, 414, 431, 500, 501, 502,
 * 504, 505, ...), malloc'ed, with an HTML body unless `head_only`, and
 * "Connection: keep-alive" or "close". NULL when out of memory.
 */
char *gw_http_error_response(unsigned status, int keepalive, int head_only, uint32_t *len);

/* "Bad Gateway" for 502, ... */
const char *gw_http_reason(unsigned status);

#endif
