/*
 * nginx's gzip filter for proxied responses: which responses are
 * compressed (gw_gzip_start, at the response head), the head's changes
 * (Content-Encoding, Vary, no Content-Length, weak ETag) and the body
 * compressed as it streams into new heap segments on the client connection.
 * Nothing here runs unless gzip is on for the request's location.
 */
#ifndef GW_GZIP_H
#define GW_GZIP_H

#include <stddef.h>

#include "core/worker-t.h"
#include "request-t.h"

/* Room gw_gzip_head_lines may need in a response head. */
#define GW_GZIP_HEAD_MAX 64

/*
 * The response head is complete and gzip is on: apply nginx's tests (status,
 * Content-Encoding, Content-Length, gzip_types, HEAD; then Accept-Encoding,
 * gzip_http_version, gzip_proxied for a request with Via, gzip_disable).
 * Sets req->gz_vary (gzip_vary and the response was a candidate) and
 * req->gz (the body will be compressed). 0, or -1 when out of memory.
 */
int gw_gzip_start(gw_http_req_t *req);

/* Is the compressed body sent chunked (an HTTP/1.1 client)? 0 when not compressing. */
int gw_gzip_chunked(const gw_http_req_t *req);

/*
 * For the client head: 1 when the upstream's header h is dropped (Content-Length,
 * Accept-Ranges, an ETag that cannot be weakened) or was written at *p (the
 * weakened ETag, *p advanced past it, at most h's length + 4 more); 0 to pass it.
 */
int gw_gzip_header(const gw_http_req_t *req, const gw_hdr_t *h, char **p);

/* Content-Encoding and Vary lines the head gets; returns the bytes written (<= GW_GZIP_HEAD_MAX). */
size_t gw_gzip_head_lines(const gw_http_req_t *req, char *out);

/* Body bytes (decoded, from llhttp's on_body). 0, or -1 when compression failed. */
int gw_gzip_body(gw_http_req_t *req, const char *p, size_t n);

/* The client has nothing left to send: push out what zlib holds back, if
 * anything was fed since the last flush (Z_SYNC_FLUSH). A failure shows at
 * the next gw_gzip_body or gw_gzip_finish. */
void gw_gzip_idle(gw_worker_t *w, gw_http_req_t *req);

/* The body is complete: the rest of the stream and the gzip trailer, then the
 * last chunk; req->gz is freed. 0, or -1 when compression failed. */
int gw_gzip_finish(gw_worker_t *w, gw_http_req_t *req);

/* Drop the compression state (exchange over or aborted) and gz_vary. */
void gw_gzip_free(gw_http_req_t *req);

#endif
