/*
 * The request side of an exchange: llhttp callbacks that collect the head,
 * the checks a strict proxy makes before forwarding anything (RFC 9112), and
 * the head sent upstream (hop-by-hop headers removed, Host and Connection
 * set as nginx does by default).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/gw.h"
#include "headers.h"
#include "request.h"
#include "route.h"

static gw_http_req_t *req_of(llhttp_t *p)
{
    return p->data;
}

/* A callback cannot answer the client itself (llhttp still runs): it records
 * the status and stops the parser; the caller answers. */
static int fail(gw_http_req_t *req, uint16_t status)
{
    if (req->err_status == 0)
        req->err_status = status;
    return -1;
}

static int msg_result(gw_http_req_t *req, int r, uint16_t too_long)
{
    switch (r) {
    case GW_MSG_OK:
        return 0;
    case GW_MSG_TOO_LONG_LINE:
        return fail(req, too_long);
    case GW_MSG_TOO_LARGE:
        return fail(req, 431);
    default:
        return fail(req, 500);
    }
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    gw_http_req_t *req = req_of(p);

    return msg_result(req, gw_msg_line(&req->in, at, n), 414);
}

static int on_url_complete(llhttp_t *p)
{
    gw_http_req_t *req = req_of(p);

    gw_msg_line_done(&req->in);
    /* llhttp lets a tab (and other controls) through in the target; the line
     * we send upstream is rebuilt around it, and a backend splitting on
     * whitespace would read another target (RFC 9112 3.2: visible characters
     * only; nginx refuses them too). Bytes above 0x7f stay: nginx takes them. */
    for (uint32_t i = 0; i < req->in.line_len; i++) {
        unsigned char c = (unsigned char)req->in.buf[i];

        if (c <= 0x20 || c == 0x7f)
            return fail(req, 400);
    }
    return 0;
}

static int on_version_complete(llhttp_t *p)
{
    /* llhttp lets 0.9 and 2.0 through; a 1.x proxy answers the rest with 505. */
    if (p->http_major != 1 || p->http_minor > 1)
        return fail(req_of(p), 505);
    req_of(p)->keepalive = p->http_minor == 1; /* the default; Connection may change it */
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    gw_http_req_t *req = req_of(p);
    int r = gw_msg_field(&req->in, at, n);

    /* One field too many: answered once the name is complete, not here.
     * llhttp calls this as each piece of a name arrives, so failing here
     * would answer 431 or 400 (a bad byte later in the same name) depending
     * on how the bytes were cut. */
    if (r == GW_MSG_TOO_LARGE && req->in.n == GW_MSG_MAX_HEADERS) {
        req->too_many_fields = 1;
        return 0;
    }
    return msg_result(req, r, 431);
}

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int on_header_field_complete(llhttp_t *p)
{
    gw_http_req_t *req = req_of(p);
    gw_hdr_t *h;

    if (req->too_many_fields)
        return fail(req, 431);
    gw_msg_field_done(&req->in);
    h = gw_msg_last(&req->in);
    /* A field name is a token (RFC 9110 5.1); llhttp lets whitespace before
     * the colon and inside the name through, which RFC 9112 5.1 forbids. */
    if (h->name_len == 0)
        return fail(req, 400);
    for (uint32_t i = 0; i < h->name_len; i++)
        if (!is_tchar((unsigned char)req->in.buf[h->name + i]))
            return fail(req, 400);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    gw_http_req_t *req = req_of(p);
    char before = req->piece && at > req->piece ? at[-1] : req->head_lf ? '\n' : 0;

    /* obs-fold (RFC 9112 5.2): llhttp 8 unfolds it silently, handing the
     * continuation line over as more value starting right after the LF with
     * its SP or HT. A proxy in front of other parsers must not let a folded
     * header through. (An empty value is handed over as n == 0 there too.) */
    if (n && (at[0] == ' ' || at[0] == '\t') && before == '\n')
        return fail(req, 400);
    return msg_result(req, gw_msg_value(&req->in, at, n), 431);
}

/* Checks that need one whole header. */
static int on_header_value_complete(llhttp_t *p)
{
    gw_http_req_t *req = req_of(p);
    gw_hdr_t *h;
    const char *v;

    gw_msg_value_done(&req->in);
    h = gw_msg_last(&req->in);
    v = req->in.buf + h->value;
    /* obs-fold (RFC 9112 5.2) and bare CR/LF or NUL inside a value: reject, never forward. */
    for (uint32_t i = 0; i < h->value_len; i++)
        if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
            return fail(req, 400);
    /* A trailer may not carry framing (RFC 9110 6.5.1): the chunked body and
     * its trailers go upstream as received, and a backend merging them into
     * the head would see a second length. */
    if (req->in_body && (h->id == GW_H_CONTENT_LENGTH || h->id == GW_H_TRANSFER_ENCODING))
        return fail(req, 400);
    switch (h->id) {
    case GW_H_HOST:
        if (++req->host_count > 1 || h->value_len == 0)
            return fail(req, 400);
        break;
    case GW_H_TRANSFER_ENCODING:
        /* Only "chunked", once. Chunked but not last, or repeated, leaves the
         * length ambiguous (400: what smuggling relies on); any other coding is
         * one we do not implement (501, as nginx). */
        if (++req->te_count > 1)
            return fail(req, 400);
        if (h->value_len != 7 || strncasecmp(v, "chunked", 7) != 0) {
            int last_is_chunked = h->value_len > 7 && strncasecmp(v + h->value_len - 7, "chunked", 7) == 0 &&
                                  (v[h->value_len - 8] == ',' || v[h->value_len - 8] == ' ');

            if (gw_token_list_has(v, h->value_len, "chunked") && !last_is_chunked)
                return fail(req, 400);
            return fail(req, 501);
        }
        break;
    case GW_H_CONNECTION:
        /* "close" anywhere wins over any "keep-alive" (RFC 9112 9.6). */
        if (gw_token_list_has(v, h->value_len, "close")) {
            req->keepalive = 0;
            req->conn_close = 1;
        } else if (p->http_minor == 0 && !req->conn_close && gw_token_list_has(v, h->value_len, "keep-alive")) {
            req->keepalive = 1;
        }
        break;
    case GW_H_UPGRADE:
        if (h->value_len)
            req->upgrade = 1;
        break;
    case GW_H_EXPECT:
        if (h->value_len == 12 && strncasecmp(v, "100-continue", 12) == 0)
            req->expect_100 = 1;
        break;
    default:
        break;
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    gw_http_req_t *req = req_of(p);

    /* llhttp takes "GET /\n" (no version) as HTTP/0.9, without calling
     * on_version_complete: a 1.x proxy refuses it. */
    if (p->http_major != 1)
        return fail(req, 400);

    /* llhttp would stop at the end of an upgrade request and take what
     * follows as another protocol. Whether it is depends on the upstream's
     * answer (101 or not): until then it is HTTP, a pipelined request. */
    p->upgrade = 0;
    req->pause = GW_PAUSE_HEADERS;
    return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    gw_http_req_t *req = req_of(p);

    req->body_bytes += n;
    if (req->loc && req->loc->lc.client_max_body_size && req->body_bytes > req->loc->lc.client_max_body_size)
        return fail(req, 413);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    gw_http_req_t *req = req_of(p);

    req->pause = GW_PAUSE_DONE;
    return HPE_PAUSED;
}

static llhttp_settings_t settings;

void gw_request_parser_init(gw_http_req_t *req)
{
    if (settings.on_url == NULL) {
        llhttp_settings_init(&settings);
        settings.on_url = on_url;
        settings.on_url_complete = on_url_complete;
        settings.on_version_complete = on_version_complete;
        settings.on_header_field = on_header_field;
        settings.on_header_field_complete = on_header_field_complete;
        settings.on_header_value = on_header_value;
        settings.on_header_value_complete = on_header_value_complete;
        settings.on_headers_complete = on_headers_complete;
        settings.on_body = on_body;
        settings.on_message_complete = on_message_complete;
    }
    llhttp_init(&req->rq, HTTP_REQUEST, &settings);
    req->rq.data = req;
}

uint16_t gw_request_parse_error(gw_http_req_t *req, llhttp_errno_t e)
{
    if (req->err_status)
        return req->err_status;
    switch (e) {
    case HPE_INVALID_VERSION:
        /* "HTTP/3.1": well-formed but not ours (505); "HTTP/x": malformed (400). */
        return strcmp(llhttp_get_error_reason(&req->rq), "Invalid HTTP version") == 0 ? 505 : 400;
    case HPE_INVALID_TRANSFER_ENCODING:
        return 400;
    default:
        return 400;
    }
}

/* Remember where this piece starts and whether what came before ended a line (obs-fold check). */
static void piece_start(gw_http_req_t *req, const char *p)
{
    req->piece = p;
}

static void piece_end(gw_http_req_t *req, const char *p, uint32_t used)
{
    if (used)
        req->head_lf = p[used - 1] == '\n';
}

int gw_request_parse_head(gw_http_req_t *req, const char *p, uint32_t n, uint32_t *used)
{
    llhttp_errno_t e;

    req->pause = GW_PAUSE_NONE;
    req->in_body = 0;
    piece_start(req, p);
    e = llhttp_execute(&req->rq, p, n);
    if (e == HPE_OK) {
        *used = n;
        piece_end(req, p, n);
        return GW_AGAIN;
    }
    if (e != HPE_PAUSED || req->pause != GW_PAUSE_HEADERS)
        return gw_request_parse_error(req, e);
    *used = (uint32_t)(llhttp_get_error_pos(&req->rq) - p);
    piece_end(req, p, *used);
    gw_chunked_init(&req->chunked);
    req->in_body = 1; /* fields from now on are trailers */
    llhttp_resume(&req->rq);
    return 0;
}

int gw_request_parse_body(gw_http_req_t *req, const char *p, uint32_t n, uint32_t *used)
{
    int chunked = (req->rq.flags & F_CHUNKED) != 0, end = 0;
    uint32_t upto = n;
    llhttp_errno_t e;

    /* A chunked body is forwarded as is: the strict reading (chunked.c) must
     * end exactly where llhttp's does. It goes first, and llhttp only reads
     * up to the first byte it refuses, so whichever of the two objects first
     * in the stream decides the answer, however the bytes were cut. */
    if (chunked) {
        end = gw_chunked_scan(&req->chunked, p, n);
        if (end == GW_CHUNKED_BAD)
            upto = req->chunked.bad;
    }
    req->pause = GW_PAUSE_NONE;
    piece_start(req, p); /* trailers come through on_header_value too */
    e = llhttp_execute(&req->rq, p, upto);
    if (e == HPE_OK) {
        *used = upto;
    } else if (e == HPE_PAUSED && req->pause == GW_PAUSE_DONE) {
        *used = (uint32_t)(llhttp_get_error_pos(&req->rq) - p);
    } else {
        return gw_request_parse_error(req, e);
    }
    piece_end(req, p, *used);
    if (chunked && (end == GW_CHUNKED_BAD || (e == HPE_OK ? end != GW_CHUNKED_MORE : end != (int)*used)))
        return 400;
    return e == HPE_OK ? GW_AGAIN : 0;
}

int gw_request_check(gw_http_req_t *req)
{
    llhttp_t *p = &req->rq;

    if (p->http_minor == 1 && req->host_count == 0)
        return 400; /* RFC 9112 3.2 */
    if (req->te_count && p->http_minor == 0)
        return 400; /* Transfer-Encoding means nothing to 1.0: refuse the ambiguity */
    if (req->loc && req->loc->lc.client_max_body_size && (p->flags & F_CONTENT_LENGTH) &&
        p->content_length > req->loc->lc.client_max_body_size)
        return 413;
    return 0;
}

void gw_request_host(const gw_http_req_t *req, const char **host, uint32_t *len)
{
    const gw_msg_t *m = &req->in;
    const char *url = m->buf;

    *host = NULL;
    *len = 0;
    /* absolute-form (RFC 9112 3.2.2): the target's authority wins over Host. */
    if (m->line_len > 7 && strncasecmp(url, "http://", 7) == 0) {
        const char *start = url + 7, *end = start;

        while (end < url + m->line_len && *end != '/' && *end != '?')
            end++;
        *host = start;
        *len = (uint32_t)(end - start);
    } else {
        for (uint32_t i = 0; i < m->n; i++) {
            if (m->h[i].id == GW_H_HOST) {
                *host = m->buf + m->h[i].value;
                *len = m->h[i].value_len;
                break;
            }
        }
    }
    /* Drop the port ("example.com:8080", "[::1]:80"). */
    if (*host && *len) {
        const char *h = *host;
        uint32_t n = *len;

        if (h[0] == '[') {
            const char *close = memchr(h, ']', n);

            if (close)
                *len = (uint32_t)(close - h + 1);
        } else {
            const char *colon = memchr(h, ':', n);

            if (colon)
                *len = (uint32_t)(colon - h);
        }
    }
}

void gw_request_target(const gw_http_req_t *req, gw_target_t *t)
{
    const char *url = req->in.buf;
    uint32_t n = req->in.line_len;
    const char *q;

    /* absolute-form: skip scheme and authority; the path ends at '?' too
     * ("http://h?x=/y" has the path "/"). */
    if (n > 7 && strncasecmp(url, "http://", 7) == 0) {
        uint32_t i = 7;

        while (i < n && url[i] != '/' && url[i] != '?')
            i++;
        url += i;
        n -= i;
    }
    q = memchr(url, '?', n);
    t->path = url;
    t->path_len = q ? (uint32_t)(q - url) : n;
    t->query = url + t->path_len;
    t->query_len = n - t->path_len;
    if (t->path_len == 0 && req->in.line_len > 7 && strncasecmp(req->in.buf, "http://", 7) == 0) {
        t->path = "/"; /* "http://h" means "/" */
        t->path_len = 1;
    }
}

void gw_request_path(const gw_http_req_t *req, const char **path, uint32_t *len)
{
    gw_target_t t;

    gw_request_target(req, &t);
    *path = t.path;
    *len = t.path_len;
}

char *gw_request_upstream_head(gw_http_req_t *req, uint32_t *out_len)
{
    const gw_http_loc_t *loc = req->loc;
    gw_route_uri_t ru;
    gw_target_t t;
    gw_iov_t uri;
    char small[1024], *buf, *head;
    size_t size;

    /* Always origin-form upstream. proxy_pass with a URI part replaces the
     * matched location prefix (location /api/ + proxy_pass http://b/ sends
     * /api/x as /x; an exact location is replaced whole, as nginx does): route.c. */
    gw_request_target(req, &t);
    ru = (gw_route_uri_t){.raw = t.path, .raw_len = t.path_len, .uri = req->uri ? req->uri : t.path,
                          .uri_len = req->uri ? req->uri_len : t.path_len, .query = t.query,
                          .query_len = t.query_len, .quoted = req->uri_quoted};
    if (req->internal_uri) { /* error_page's internal redirect: the new URI, as nginx sends it */
        ru.raw = req->uri;
        ru.raw_len = req->uri_len;
        ru.query = req->uri + req->uri_len;
        ru.query_len = req->uri_query_len;
        ru.quoted = 0;
    }
    size = gw_route_upstream_uri_size(loc, &ru);
    buf = size <= sizeof(small) ? small : malloc(size);
    if (buf == NULL)
        return NULL;
    uri.p = buf;
    uri.n = (uint32_t)(gw_route_put_upstream_uri(loc, &ru, buf) - buf);
    head = gw_headers_upstream_head(req, &uri, 1, out_len);
    if (buf != small)
        free(buf);
    return head;
}
