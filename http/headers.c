/*
 * Header rewriting at request time (see headers.h): the upstream request
 * head, which response headers pass, and the lines we add to a response.
 * Configuration and compilation live in conf_headers.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "answers.h"
#include "core/gw.h"
#include "headers.h"

int gw_hname_has(const gw_hname_set_t *s, const char *buf, const gw_hdr_t *h)
{
    if (!(s->bloom & (1ull << (h->hash & 63))))
        return 0;
    for (uint32_t i = 0; i < s->n; i++) {
        const gw_hname_t *m = &s->v[i];
        uint32_t k = 0;

        if (m->hash != h->hash || m->len != h->name_len)
            continue;
        while (k < m->len) {
            char c = buf[h->name + k];

            if ((c >= 'A' && c <= 'Z' ? (char)(c | 0x20) : c) != m->lc[k])
                break;
            k++;
        }
        if (k == m->len)
            return 1;
    }
    return 0;
}

/* NULL only for a request built by a unit test, with neither server nor client. */
static const gw_http_srv_t *server_of(const gw_http_req_t *req)
{
    if (req->srv)
        return req->srv;
    return req->client ? ((const gw_http_addr_t *)req->client->ctx)->dflt : NULL;
}

const gw_hconf_t *gw_headers_conf(const gw_http_req_t *req)
{
    return req->loc ? req->loc->hconf : server_of(req)->hconf;
}

/*
 * nginx's ignore_invalid_headers (on by default) drops a request header whose
 * name holds anything but letters, digits and '-', and '_' too unless
 * underscores_in_headers is on: such a header is neither forwarded nor seen
 * by $http_NAME. Both are server-level settings.
 */
int gw_headers_ignored(const gw_http_req_t *req, const gw_hdr_t *h)
{
    const gw_hconf_t *hc;

    if (h->flags == 0 || server_of(req) == NULL)
        return 0;
    hc = server_of(req)->hconf;
    if (!hc->ignore_invalid)
        return 0;
    return (h->flags & GW_HF_INVALID) || ((h->flags & GW_HF_UNDERSCORE) && !hc->underscores);
}

/*
 * A value from variables may hold what the client sent decoded ($uri turns
 * %0D%0A into CR LF): written as is it would end the header and start
 * another (request or response splitting), which nginx lets through. We
 * turn CR, LF and NUL into spaces.
 */
static void defuse(char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
            v[i] = ' ';
}

/* ---- a growing output buffer ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf_t;

static int reserve(sbuf_t *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 256;
    char *grown;

    if (b->len + more <= b->cap)
        return 0;
    while (cap < b->len + more)
        cap *= 2;
    grown = realloc(b->p, cap);
    if (grown == NULL)
        return -1;
    b->p = grown;
    b->cap = cap;
    return 0;
}

/* The caller reserved the room. */
static void put(sbuf_t *b, const char *s, size_t n)
{
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

#define PUT_LIT(b, s) put((b), (s), sizeof(s) - 1)

/*
 * Append "Name: value\r\n" for an entry whose value has variables; nothing
 * when the value comes out empty (nginx sends no header then). Returns the
 * value's offset in b (0 when nothing was written) or -1 when out of memory.
 */
static long put_evaluated(sbuf_t *b, const gw_hentry_t *e, const gw_http_req_t *req)
{
    size_t start = b->len, room, n;

    if (reserve(b, e->name_len + 2 + 128 + 2) < 0)
        return -1;
    put(b, e->name, e->name_len);
    PUT_LIT(b, ": ");
    room = b->cap - b->len - 2;
    n = gw_cv_eval(e->cv, req, b->p + b->len, room);
    if (n > room) {
        if (reserve(b, n + 2) < 0)
            return -1;
        gw_cv_eval(e->cv, req, b->p + b->len, n);
    }
    if (n == 0) {
        b->len = start;
        return 0;
    }
    defuse(b->p + b->len, n);
    b->len += n;
    PUT_LIT(b, "\r\n");
    return (long)(b->len - n - 2);
}

/* ---- the request head sent upstream ---- */

char *gw_headers_upstream_head(gw_http_req_t *req, const gw_iov_t *uri, uint32_t nuri, uint32_t *out_len)
{
    const gw_hconf_t *hc = gw_headers_conf(req);
    const gw_http_loc_t *loc = req->loc;
    const gw_msg_t *m = &req->in;
    const char *method = llhttp_method_name((llhttp_method_t)req->rq.method);
    size_t mlen = strlen(method);
    /* The body is streamed as received: a chunked one cannot go out as 1.0. */
    int minor = hc->http_version || (req->rq.flags & F_CHUNKED);
    sbuf_t b = {0};
    size_t need;

    need = mlen + 1 + sizeof(" HTTP/1.1\r\n") + hc->up_const_len + loc->proxy_host_len + sizeof("Host: \r\n") +
           sizeof("Transfer-Encoding: chunked\r\n") + 2 + 256;
    for (uint32_t i = 0; i < nuri; i++)
        need += uri[i].n;
    for (uint32_t i = 0; i < m->n; i++)
        need += m->h[i].name_len + m->h[i].value_len + 4;
    if (reserve(&b, need) < 0)
        return NULL;

    put(&b, method, mlen);
    PUT_LIT(&b, " ");
    for (uint32_t i = 0; i < nuri; i++)
        put(&b, uri[i].p, uri[i].n);
    if (minor)
        PUT_LIT(&b, " HTTP/1.1\r\n");
    else
        PUT_LIT(&b, " HTTP/1.0\r\n");

    /* An HTTP/1.0 request keeps its connection only if it says keep-alive. */
    req->up_conn_close = !minor;
    req->up_upgrade = 0;
    for (uint32_t i = 0; i < hc->nup; i++) {
        const gw_hentry_t *e = &hc->up[i];
        const char *v;
        size_t vlen;
        long off;

        if (e->kind == GW_HK_HOST) {
            if (reserve(&b, sizeof("Host: \r\n") + loc->proxy_host_len) < 0)
                goto nomem;
            PUT_LIT(&b, "Host: ");
            put(&b, loc->proxy_host, loc->proxy_host_len);
            PUT_LIT(&b, "\r\n");
            continue;
        }
        if (e->line) {
            if (reserve(&b, e->line_len) < 0)
                goto nomem;
            put(&b, e->line, e->line_len);
            v = e->line + e->name_len + 2;
            vlen = e->line_len - e->name_len - 4;
        } else if (e->cv) {
            off = put_evaluated(&b, e, req);
            if (off < 0)
                goto nomem;
            if (off == 0)
                continue;
            v = b.p + off;
            vlen = b.len - (size_t)off - 2;
        } else {
            continue; /* set to "": only removes the request's header */
        }
        if (e->kind == GW_HK_CONNECTION && gw_token_list_has(v, vlen, "close"))
            req->up_conn_close = 1;
        else if (e->kind == GW_HK_CONNECTION && !minor && gw_token_list_has(v, vlen, "keep-alive"))
            req->up_conn_close = 0;
        else if (e->kind == GW_HK_UPGRADE)
            req->up_upgrade = 1;
    }

    /* The request's own headers: room for them was reserved up front. */
    if (reserve(&b, sizeof("Transfer-Encoding: chunked\r\n") + 2) < 0)
        goto nomem;
    for (uint32_t i = 0; i < m->n; i++) {
        const gw_hdr_t *h = &m->h[i];

        switch (h->id) {
        case GW_H_HOST:
        case GW_H_CONNECTION:
        case GW_H_KEEP_ALIVE:
        case GW_H_PROXY_CONNECTION:
        case GW_H_TE:
        case GW_H_TRAILER:
        case GW_H_UPGRADE:
        case GW_H_EXPECT: /* we answered 100-continue ourselves */
            continue;
        case GW_H_TRANSFER_ENCODING: /* checked to be exactly "chunked"; the body is forwarded as is */
            PUT_LIT(&b, "Transfer-Encoding: chunked\r\n");
            continue;
        default:
            break;
        }
        if (h->flags && gw_headers_ignored(req, h))
            continue;
        if (h->id != GW_H_CONTENT_LENGTH && gw_hname_has(&hc->up_skip, m->buf, h))
            continue;
        put(&b, m->buf + h->name, h->name_len);
        PUT_LIT(&b, ": ");
        put(&b, m->buf + h->value, h->value_len);
        PUT_LIT(&b, "\r\n");
    }
    PUT_LIT(&b, "\r\n");
    *out_len = (uint32_t)b.len;
    return b.p;
nomem:
    free(b.p);
    return NULL;
}

/* ---- the response head ---- */

/* nginx adds add_header's headers (without `always`) only to these. */
static int add_header_status(unsigned status)
{
    switch (status) {
    case 200: case 201: case 204: case 206:
    case 301: case 302: case 303: case 304: case 307: case 308:
        return 1;
    default:
        return 0;
    }
}

int gw_headers_pass_response(const gw_http_req_t *req, const gw_hdr_t *h)
{
    const gw_hconf_t *hc = gw_headers_conf(req);

    if (hc->rs_expires.n && add_header_status(req->status) && gw_hname_has(&hc->rs_expires, req->out.buf, h))
        return 0; /* ours replace them */
    return !gw_hname_has(&hc->rs_hide, req->out.buf, h);
}

/* An HTTP date (RFC 9110 5.6.7) into buf (64 bytes); its length (29 for years of 4 digits). */
static size_t http_date(time_t t, char *buf)
{
    static const char days[][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;

    gmtime_r(&t, &tm);
    return (size_t)snprintf(buf, 64, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
                            months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* "Date: ...\r\n" for now, formatted at most once a second per thread. */
static const char *date_line(void)
{
    static __thread time_t cached = -1;
    static __thread char line[80];
    time_t now = time(NULL);

    if (now != cached) {
        memcpy(line, "Date: ", 6);
        memcpy(line + 6 + http_date(now, line + 6), "\r\n", 3);
        cached = now;
    }
    return line;
}

static const char server_full[] = "Server: gateway/" GW_VERSION "\r\n";
static const char server_bare[] = "Server: gateway\r\n";

const char *gw_headers_server_line(const gw_http_req_t *req, uint32_t *len)
{
    int tokens = req == NULL || server_of(req) == NULL || server_of(req)->hconf == NULL ||
                 gw_headers_conf(req)->server_tokens;

    *len = tokens ? sizeof(server_full) - 1 : sizeof(server_bare) - 1;
    return tokens ? server_full : server_bare;
}

/* Appends that count past the end: the total says how much room was needed. */
static size_t cput(char *out, size_t cap, size_t at, const char *s, size_t n)
{
    if (at < cap)
        memcpy(out + at, s, n < cap - at ? n : cap - at);
    return at + n;
}

size_t gw_headers_response_own(const gw_http_req_t *req, int proxied, char *out)
{
    const gw_hconf_t *hc = gw_headers_conf(req);
    size_t at = 0;
    uint32_t n;

    /* A passed Server or Date replaces ours, even when the backend sent none (nginx). */
    if (!(proxied && hc->pass_server)) {
        const char *s = gw_headers_server_line(req, &n);

        memcpy(out, s, n);
        at = n;
    }
    if (!(proxied && hc->pass_date)) {
        const char *s = date_line();

        n = (uint32_t)strlen(s);
        memcpy(out + at, s, n);
        at += n;
    }
    return at;
}

size_t gw_headers_response_added(const gw_http_req_t *req, unsigned status, char *out, size_t cap)
{
    const gw_hconf_t *hc = gw_headers_conf(req);
    size_t at = 0;

    if (hc->expires > GW_EXPIRES_OFF && add_header_status(status)) {
        /* nginx's expires: Expires and Cache-Control, for the statuses add_header uses */
        char line[160];
        int n = 0;

        if (hc->expires == GW_EXPIRES_MAX)
            n = snprintf(line, sizeof(line), "Expires: Thu, 31 Dec 2037 23:55:55 GMT\r\n"
                                             "Cache-Control: max-age=315360000\r\n");
        else if (hc->expires == GW_EXPIRES_EPOCH)
            n = snprintf(line, sizeof(line), "Expires: Thu, 01 Jan 1970 00:00:01 GMT\r\nCache-Control: no-cache\r\n");
        if (n == 0) {
            char date[64];

            http_date(time(NULL) + hc->expires_sec, date);
            if (hc->expires_sec < 0)
                n = snprintf(line, sizeof(line), "Expires: %s\r\nCache-Control: no-cache\r\n", date);
            else
                n = snprintf(line, sizeof(line), "Expires: %s\r\nCache-Control: max-age=%lld\r\n", date,
                             (long long)hc->expires_sec);
        }
        at = cput(out, cap, at, line, (size_t)n);
    }
    if (hc->add == NULL)
        return at;
    for (uint32_t i = 0; i < hc->add->n; i++) {
        const gw_hentry_t *e = &hc->add->e[i];
        size_t v, n;

        if (!e->always && !add_header_status(status))
            continue;
        if (e->line) {
            at = cput(out, cap, at, e->line, e->line_len);
            continue;
        }
        if (e->cv == NULL)
            continue;
        /* Evaluated in place after "Name: "; an empty value takes the name back. */
        v = cput(out, cap, at, e->name, e->name_len);
        v = cput(out, cap, v, ": ", 2);
        n = gw_cv_eval(e->cv, req, out + (v < cap ? v : cap), v < cap ? cap - v : 0);
        if (v + n <= cap)
            defuse(out + v, n);
        if (n)
            at = cput(out, cap, v + n, "\r\n", 2);
    }
    return at;
}

char *gw_headers_redirect(const gw_http_req_t *req, uint32_t *index, size_t *len)
{
    const gw_hconf_t *hc = gw_headers_conf(req);
    const gw_msg_t *m = &req->out;
    static const gw_hname_t location = {.lc = (char *)"location", .len = 8};
    gw_hname_t name = location;
    gw_hname_set_t one;
    const char *v;
    uint32_t i, vlen;

    if (hc->nrd == 0)
        return NULL;
    name.hash = gw_hdr_hash("location", 8);
    one = (gw_hname_set_t){.v = &name, .n = 1, .bloom = 1ull << (name.hash & 63)};
    for (i = 0; i < m->n; i++)
        if (gw_hname_has(&one, m->buf, &m->h[i]))
            break;
    if (i == m->n)
        return NULL;
    v = m->buf + m->h[i].value;
    vlen = m->h[i].value_len;
    for (uint32_t k = 0; k < hc->nrd; k++) {
        const gw_redirect_t *r = &hc->rd[k];
        size_t tlen, rest = vlen - r->from_len;
        char *out, *abs;

        /* a prefix, compared as written (nginx: case matters) */
        if (vlen < r->from_len || memcmp(v, r->from, r->from_len) != 0)
            continue;
        tlen = r->to ? gw_cv_eval(r->to, req, NULL, 0) : r->to_len;
        out = malloc(tlen + rest + 1);
        if (out == NULL)
            return NULL;
        if (r->to)
            gw_cv_eval(r->to, req, out, tlen);
        else
            memcpy(out, r->to_text, tlen);
        memcpy(out + tlen, v + r->from_len, rest);
        defuse(out, tlen + rest);
        *len = tlen + rest;
        *index = i;
        if (*len && out[0] == '/') {
            abs = gw_answers_absolute(req, out, *len, len);
            free(out);
            out = abs;
        }
        return out;
    }
    return NULL;
}
