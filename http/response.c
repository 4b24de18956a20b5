/*
 * The response side of an exchange: llhttp callbacks that collect the
 * upstream's head (skipping interim 1xx responses), and the head sent to the
 * client, with hop-by-hop headers replaced by our own connection handling.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/conn.h"
#include "errors.h"
#include "gzip.h"
#include "headers.h"
#include "response.h"

static gw_http_req_t *req_of(llhttp_t *p)
{
    return p->data;
}

/* Anything wrong with the upstream's head is a 502 for the client. */
static int fail(gw_http_req_t *req)
{
    if (req->err_status == 0)
        req->err_status = 502;
    return -1;
}

static int on_status(llhttp_t *p, const char *at, size_t n)
{
    gw_http_req_t *req = req_of(p);

    return gw_msg_line(&req->out, at, n) == GW_MSG_OK ? 0 : fail(req);
}

static int on_status_complete(llhttp_t *p)
{
    gw_msg_line_done(&req_of(p)->out);
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    gw_http_req_t *req = req_of(p);

    return gw_msg_field(&req->out, at, n) == GW_MSG_OK ? 0 : fail(req);
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

    /* A field name is a token (RFC 9110 5.1): llhttp lets an empty one through. */
    if (req->out.n == 0)
        return fail(req);
    h = gw_msg_last(&req->out);
    if (req->out.len == h->name)
        return fail(req);
    for (uint32_t i = h->name; i < req->out.len; i++)
        if (!is_tchar((unsigned char)req->out.buf[i]))
            return fail(req);
    gw_msg_field_done(&req->out);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    gw_http_req_t *req = req_of(p);

    return gw_msg_value(&req->out, at, n) == GW_MSG_OK ? 0 : fail(req);
}

static int on_header_value_complete(llhttp_t *p)
{
    gw_http_req_t *req = req_of(p);
    gw_hdr_t *h;

    gw_msg_value_done(&req->out);
    h = gw_msg_last(&req->out);
    for (uint32_t i = 0; i < h->value_len; i++) {
        unsigned char c = (unsigned char)req->out.buf[h->value + i];

        /* Never pass a header split on to the client; nor other control
         * characters, which llhttp's lenient mode (see gw_response_parser_init)
         * lets into a value: the client's parser may be strict. */
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(req);
    }
    if (h->id == GW_H_TRANSFER_ENCODING) {
        /* Only "chunked", once, as nginx: the header is hop-by-hop and
         * dropped, so any other coding would reach the client still applied
         * and unannounced (and a body "until close" where the backend meant
         * otherwise is the ambiguity smuggling lives on). */
        if (h->value_len != 7 || strncasecmp(req->out.buf + h->value, "chunked", 7) != 0)
            return fail(req);
        for (uint32_t i = 0; i + 1 < req->out.n; i++)
            if (req->out.h[i].id == GW_H_TRANSFER_ENCODING)
                return fail(req);
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    gw_http_req_t *req = req_of(p);
    unsigned status = p->status_code;

    /* llhttp reads any number of digits up to 999: a status line is three (RFC 9112 4). */
    if (status < 100)
        return fail(req);
    if (status == 101 && req->upgrade) {
        /* The switch the client asked for: what follows the head is the new protocol (tunnel.c). */
        req->status = 101;
        req->pause = GW_PAUSE_HEADERS;
        return HPE_PAUSED;
    }
    if (status >= 100 && status < 200) {
        if (status == 101)
            return fail(req); /* nothing asked to switch protocols */
        /* Interim response (100, 103): not forwarded; the final one follows. */
        req->in_1xx = 1;
        gw_msg_reset(&req->out);
        return 0;
    }
    /* These never have a body, whatever Content-Length says (RFC 9110 6.4.1). */
    if (req->is_head || status == 204 || status == 304)
        p->flags |= F_SKIPBODY;
    req->status = (uint16_t)status;
    req->pause = GW_PAUSE_HEADERS;
    return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    gw_http_req_t *req = req_of(p);

    /* Only in dechunk mode are bodies forwarded slice by slice (decoded);
     * otherwise the caller forwards the raw bytes, framing included. */
    if (req->gz)
        return gw_gzip_body(req, at, n) == 0 ? 0 : -1;
    if (req->dechunk && req->client)
        gw_conn_send_buf(req->w, req->client, at, (uint32_t)n, req->cur_bid);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    gw_http_req_t *req = req_of(p);

    if (req->in_1xx) {
        req->in_1xx = 0;
        return 0;
    }
    req->pause = GW_PAUSE_DONE;
    return HPE_PAUSED;
}

static llhttp_settings_t settings;

void gw_response_parser_init(gw_http_req_t *req)
{
    if (settings.on_status == NULL) {
        llhttp_settings_init(&settings);
        settings.on_status = on_status;
        settings.on_status_complete = on_status_complete;
        settings.on_header_field = on_header_field;
        settings.on_header_field_complete = on_header_field_complete;
        settings.on_header_value = on_header_value;
        settings.on_header_value_complete = on_header_value_complete;
        settings.on_headers_complete = on_headers_complete;
        settings.on_body = on_body;
        settings.on_message_complete = on_message_complete;
    }
    llhttp_init(&req->rs, HTTP_RESPONSE, &settings);
    /* Backends (CGI, busybox httpd) end head lines with a bare LF; nginx
     * takes them. llhttp 8 takes one only in its lenient header mode, which
     * also lets whitespace before a colon through: gw_response_check_head
     * keeps that (and a head line starting with whitespace) a 502, as nginx
     * has it. The request side stays strict. */
    llhttp_set_lenient_headers(&req->rs, 1);
    req->rs.data = req;
    req->rs_line = GW_RS_LINE_STATUS;
    gw_msg_reset(&req->out);
    gw_chunked_init(&req->rs_chunked);
}

int gw_response_check_head(gw_http_req_t *req, const char *p, uint32_t n)
{
    uint8_t st = req->rs_line;

    for (uint32_t i = 0; i < n; i++) {
        char c = p[i];

        switch (st) {
        case GW_RS_LINE_STATUS: /* a status line, or a header's value: up to the LF */
            if (c == '\n')
                st = GW_RS_LINE_START;
            break;
        case GW_RS_LINE_START:
            if (c == '\n')
                st = GW_RS_LINE_STATUS; /* the blank line: a final head's body, or the head after a 1xx */
            else if (c == ' ' || c == '\t')
                return -1; /* obs-fold (or space after the status line) */
            else if (c != '\r')
                st = c == ':' ? GW_RS_LINE_STATUS : GW_RS_LINE_NAME;
            break;
        default: /* GW_RS_LINE_NAME */
            if (c == ':')
                st = GW_RS_LINE_STATUS;
            else if (c == ' ' || c == '\t')
                return -1; /* "Name : value": a lenient llhttp would take "Name" */
            else if (c == '\n')
                st = GW_RS_LINE_START;
            break;
        }
    }
    req->rs_line = st;
    return 0;
}

int gw_response_check_framing(gw_http_req_t *req, const char *p, uint32_t n, int done)
{
    int end;

    if (!(req->rs.flags & F_CHUNKED) || (req->rs.flags & F_SKIPBODY))
        return 0;
    end = gw_chunked_scan(&req->rs_chunked, p, n);
    return (done ? end == (int)n : end == GW_CHUNKED_MORE) ? 0 : -1;
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, s) put((p), (s), sizeof(s) - 1)

char *gw_response_client_head(const gw_http_req_t *req, uint32_t *out_len)
{
    const gw_msg_t *m = &req->out;
    int chunked = req->gz ? gw_gzip_chunked(req) : (req->rs.flags & F_CHUNKED) && !req->dechunk;
    const char *reason = m->buf;
    uint32_t reason_len = m->line_len;
    size_t need, added, room, loc_len = 0;
    uint32_t loc_idx = UINT32_MAX;
    char *head, *p, *loc;

    if (reason_len == 0) {
        reason = gw_http_reason(req->status); /* nginx's phrase ("Bad Gateway"), not llhttp's enum name */
        reason_len = (uint32_t)strlen(reason);
    }
    need = sizeof("HTTP/1.1 000 \r\n") + reason_len + sizeof("Transfer-Encoding: chunked\r\n") +
           sizeof("Connection: keep-alive\r\n") + 2;
    for (uint32_t i = 0; i < m->n; i++)
        need += m->h[i].name_len + m->h[i].value_len + 4;
    need += GW_HEADERS_OWN_MAX + GW_GZIP_HEAD_MAX + 4 * m->n; /* gzip: its lines, a "W/" per ETag */
    /* proxy_redirect: the Location to send instead of the backend's */
    loc = gw_headers_redirect(req, &loc_idx, &loc_len);
    need += loc_len;
    room = 512; /* add_header's lines usually fit; if not, they are written again with the room they need */
    head = malloc(need + room);
    if (head == NULL) {
        free(loc);
        return NULL;
    }
    p = head + sprintf(head, "HTTP/1.1 %03u ", req->status);
    p = put(p, reason, reason_len);
    p = PUT_LIT(p, "\r\n");
    p += gw_headers_response_own(req, 1, p);
    for (uint32_t i = 0; i < m->n; i++) {
        const gw_hdr_t *h = &m->h[i];

        switch (h->id) {
        case GW_H_UPGRADE:
            if (req->status == 101)
                break; /* the protocol switched to */
            continue;
        case GW_H_CONNECTION:
        case GW_H_KEEP_ALIVE:
        case GW_H_PROXY_CONNECTION:
        case GW_H_TE:
        case GW_H_TRAILER:
        case GW_H_TRANSFER_ENCODING:
            continue;
        default:
            if (!gw_headers_pass_response(req, h))
                continue;
            if (req->gz && gw_gzip_header(req, h, &p))
                continue; /* dropped, or written changed */
            break;
        }
        p = put(p, m->buf + h->name, h->name_len);
        p = PUT_LIT(p, ": ");
        if (i == loc_idx)
            p = put(p, loc, loc_len);
        else
            p = put(p, m->buf + h->value, h->value_len);
        p = PUT_LIT(p, "\r\n");
    }
    free(loc);
    added = gw_headers_response_added(req, req->status, p, room);
    if (added > room) {
        size_t at = (size_t)(p - head);
        char *grown = realloc(head, need + added);

        if (grown == NULL) {
            free(head);
            return NULL;
        }
        head = grown;
        p = head + at;
        gw_headers_response_added(req, req->status, p, added);
    }
    p += added;
    if (req->gz || req->gz_vary)
        p += gw_gzip_head_lines(req, p);
    /* A HEAD response keeps the framing a GET would get; 204/304 have none. */
    if (chunked && req->status != 204 && req->status != 304)
        p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
    if (req->status == 101)
        p = PUT_LIT(p, "Connection: upgrade\r\n");
    else if (req->keepalive)
        p = PUT_LIT(p, "Connection: keep-alive\r\n");
    else
        p = PUT_LIT(p, "Connection: close\r\n");
    p = PUT_LIT(p, "\r\n");
    *out_len = (uint32_t)(p - head);
    return head;
}
