/*
 * Response compression (see gzip.h). The decision follows nginx's
 * ngx_http_gzip_header_filter and ngx_http_gzip_ok, in their order, so the
 * same requests get the same answers (and the same Vary). The body arrives
 * decoded from llhttp's on_body and is deflated with a gzip wrapper into
 * heap blocks that become the client's output segments: a block is queued
 * when full, or, when the client has nothing left to send, flushed
 * (Z_SYNC_FLUSH) so a slow stream is never held back. An HTTP/1.1 client gets
 * every block as one chunk: the chunk-size line is written into room kept in
 * front of the data, the CRLF after it.
 */
#define ZLIB_CONST
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "conf_gzip.h"
#include "core/conn.h"
#include "core/gw.h"
#include "gzip.h"
#include "proxy.h"

#define OUT_SIZE (16 * 1024) /* compressed bytes per block (per chunk) */
#define ROOM 10              /* in front of the data: "ffffffff\r\n" at most */

struct gw_gzip {
    z_stream zs;
    char *block;  /* the block being filled: ROOM, then OUT_SIZE of data, then CRLF */
    size_t fed;   /* input given to zlib since the last flush: what a flush would push out */
    uint8_t chunked;
    uint8_t failed;
    uint8_t stream; /* zs is initialised: not for HEAD, whose head alone says gzip (as nginx's does) */
};

static const gw_hdr_t *find(const gw_msg_t *m, const char *name)
{
    size_t len = strlen(name);

    for (uint32_t i = 0; i < m->n; i++)
        if (m->h[i].name_len == len && strncasecmp(m->buf + m->h[i].name, name, len) == 0)
            return &m->h[i];
    return NULL;
}

static int is_named(const gw_msg_t *m, const gw_hdr_t *h, const char *name)
{
    size_t len = strlen(name);

    return h->name_len == len && strncasecmp(m->buf + h->name, name, len) == 0;
}

/* gzip_types: the Content-Type up to its parameters, as nginx compares it (no trimming). */
static int type_listed(const gw_http_lconf_t *lc, const gw_msg_t *out)
{
    const gw_gzip_types_t *t = (const gw_gzip_types_t *)(uintptr_t)lc->gzip_types;
    const gw_hdr_t *h = find(out, "Content-Type");
    const char *v, *semi;
    size_t len;

    if (t && t->any)
        return 1;
    if (h == NULL || h->value_len == 0)
        return 0;
    v = out->buf + h->value;
    semi = memchr(v, ';', h->value_len);
    len = semi ? (size_t)(semi - v) : h->value_len;
    if (len == 9 && strncasecmp(v, "text/html", 9) == 0)
        return 1;
    for (uint32_t i = 0; t && i < t->n; i++)
        if (strlen(t->types[i]) == len && strncasecmp(v, t->types[i], len) == 0)
            return 1;
    return 0;
}

/*
 * The weight after "q=", as nginx reads it: "0" or "1", then optionally a
 * point and at most three digits, up to ',' or ' ' or the end. Returns 0 for
 * q=0 and for anything unreadable (or above 1): both refuse the coding.
 */
static int weight(const char *p, const char *end)
{
    int q, digits = 0;

    if (p >= end || (*p != '0' && *p != '1'))
        return 0;
    q = (*p++ - '0') * 1000;
    if (p == end || *p == ',' || *p == ' ')
        return q;
    if (*p++ != '.')
        return 0;
    for (int scale = 100; p < end && *p != ',' && *p != ' '; p++, scale /= 10) {
        if (*p < '0' || *p > '9' || ++digits > 3)
            return 0;
        q += (*p - '0') * scale;
    }
    return q > 1000 ? 0 : q;
}

/* Does Accept-Encoding list gzip, as a whole token, without q=0? */
static int accepts_gzip(const char *v, size_t len)
{
    const char *end = v + len, *p = v;

    for (;;) {
        const char *hit = NULL;

        for (const char *s = p; s + 4 <= end; s++)
            if (strncasecmp(s, "gzip", 4) == 0) {
                hit = s;
                break;
            }
        if (hit == NULL)
            return 0;
        p = hit + 4;
        if (hit == v || hit[-1] == ',' || hit[-1] == ' ')
            break;
    }
    while (p < end && *p == ' ')
        p++;
    if (p == end || *p == ',')
        return 1;
    if (*p++ != ';')
        return 0;
    while (p < end && *p == ' ')
        p++;
    if (p == end)
        return 1;
    if ((*p != 'q' && *p != 'Q') || p + 2 > end || p[1] != '=')
        return 0;
    return weight(p + 2, end) > 0;
}

static int parse_http_time(const char *v, size_t len, time_t *t)
{
    static const char *const formats[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                          "%a %b %e %H:%M:%S %Y"};
    char s[64];

    if (len >= sizeof(s))
        return -1;
    memcpy(s, v, len);
    s[len] = '\0';
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        struct tm tm = {0};
        const char *end = strptime(s, formats[i], &tm);

        if (end && *end == '\0') {
            *t = timegm(&tm);
            return 0;
        }
    }
    return -1;
}

static int cache_control_has(const gw_msg_t *out, const char *token)
{
    for (uint32_t i = 0; i < out->n; i++)
        if (is_named(out, &out->h[i], "Cache-Control") &&
            gw_token_list_has(out->buf + out->h[i].value, out->h[i].value_len, token))
            return 1;
    return 0;
}

/* gzip_proxied, for a request that came through a proxy (it has Via): nginx's tests in nginx's order. */
static int proxied_ok(const gw_http_req_t *req, uint64_t p)
{
    const gw_msg_t *out = &req->out;
    const gw_hdr_t *e, *d;

    if (p == 0 || (p & GW_GZIP_PROXIED_OFF))
        return 0;
    if (p & GW_GZIP_PROXIED_ANY)
        return 1;
    if ((p & GW_GZIP_PROXIED_AUTH) && find(&req->in, "Authorization"))
        return 1;
    if ((e = find(out, "Expires")) != NULL) {
        time_t expires, date;

        if (!(p & GW_GZIP_PROXIED_EXPIRED) || parse_http_time(out->buf + e->value, e->value_len, &expires) < 0)
            return 0;
        if ((d = find(out, "Date")) != NULL) {
            if (parse_http_time(out->buf + d->value, d->value_len, &date) < 0)
                return 0;
        } else {
            date = time(NULL);
        }
        return expires < date;
    }
    if (find(out, "Cache-Control")) {
        return ((p & GW_GZIP_PROXIED_NO_CACHE) && cache_control_has(out, "no-cache")) ||
               ((p & GW_GZIP_PROXIED_NO_STORE) && cache_control_has(out, "no-store")) ||
               ((p & GW_GZIP_PROXIED_PRIVATE) && cache_control_has(out, "private"));
    }
    if ((p & GW_GZIP_PROXIED_NO_LM) && find(out, "Last-Modified"))
        return 0;
    if ((p & GW_GZIP_PROXIED_NO_ETAG) && find(out, "ETag"))
        return 0;
    return 1;
}

/* nginx's msie6: "MSIE 4.", "MSIE 5." or "MSIE 6." without "SV1" after it. */
static int is_msie6(const char *ua, size_t len)
{
    char s[512];
    const char *m;

    if (len >= sizeof(s))
        len = sizeof(s) - 1;
    memcpy(s, ua, len);
    s[len] = '\0';
    m = strstr(s, "MSIE ");
    if (m == NULL || m + 7 >= s + len || m[6] != '.')
        return 0;
    return m[5] == '4' || m[5] == '5' || (m[5] == '6' && strstr(m + 8, "SV1") == NULL);
}

static int disabled(const gw_http_req_t *req, const gw_http_lconf_t *lc)
{
    const gw_gzip_disable_t *d = (const gw_gzip_disable_t *)(uintptr_t)lc->gzip_disable;
    const gw_hdr_t *ua = find(&req->in, "User-Agent");
    const char *v;

    if (d == NULL || ua == NULL)
        return 0;
    v = req->in.buf + ua->value;
    if (d->msie6 && is_msie6(v, ua->value_len))
        return 1;
    for (uint32_t i = 0; i < d->n; i++)
        if (gw_regex_match(d->re[i], v, ua->value_len, NULL) != 0)
            return 1; /* nginx declines on a matching error too */
    return 0;
}

/* nginx's ngx_http_gzip_ok: does this client get a compressed answer? */
static int client_ok(const gw_http_req_t *req, const gw_http_lconf_t *lc)
{
    const gw_hdr_t *ae = find(&req->in, "Accept-Encoding");

    if (ae == NULL || !accepts_gzip(req->in.buf + ae->value, ae->value_len))
        return 0;
    if (req->rq.http_major == 1 && req->rq.http_minor < lc->gzip_http_version)
        return 0;
    if (find(&req->in, "Via") && !proxied_ok(req, lc->gzip_proxied))
        return 0;
    return !disabled(req, lc);
}

int gw_gzip_start(gw_http_req_t *req)
{
    const gw_http_lconf_t *lc = gw_exchange_lconf(req);
    const gw_hdr_t *ce = find(&req->out, "Content-Encoding");
    int64_t length = (req->rs.flags & F_CONTENT_LENGTH) ? (int64_t)req->rs.content_length : -1;
    int wbits = MAX_WBITS, memlevel = MAX_MEM_LEVEL - 1;
    struct gw_gzip *gz;

    if ((req->status != 200 && req->status != 403 && req->status != 404) || (ce && ce->value_len) ||
        (length != -1 && (uint64_t)length < lc->gzip_min_length) || !type_listed(lc, &req->out))
        return 0;
    req->gz_vary = lc->gzip_vary == 1;
    if (!client_ok(req, lc))
        return 0;
    /* A short body needs no 32 KiB window (and its 256 KiB of hash): nginx's sizing, 262 bytes of lookahead. */
    if (length > 0) {
        while (wbits > 9 && length < (1 << (wbits - 1)) - 262) {
            wbits--;
            memlevel--;
        }
        if (memlevel < 1)
            memlevel = 1;
    }
    gz = calloc(1, sizeof(*gz));
    if (gz == NULL)
        return -1;
    if (req->is_head) {
        req->gz = gz; /* the head as a GET would get it, without its framing (nginx) */
        return 0;
    }
    if (deflateInit2(&gz->zs, (int)lc->gzip_comp_level, Z_DEFLATED, wbits + 16, memlevel, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        free(gz);
        return -1;
    }
    gz->chunked = req->rq.http_major > 1 || req->rq.http_minor >= 1;
    gz->stream = 1;
    req->gz = gz;
    return 0;
}

int gw_gzip_chunked(const gw_http_req_t *req)
{
    return req->gz && req->gz->chunked;
}

int gw_gzip_header(const gw_http_req_t *req, const gw_hdr_t *h, char **p)
{
    const gw_msg_t *m = &req->out;
    const char *v = m->buf + h->value;

    if (h->id == GW_H_CONTENT_LENGTH || is_named(m, h, "Accept-Ranges"))
        return 1;
    if (!is_named(m, h, "ETag"))
        return 0;
    /* The compressed body is not the same bytes: a strong validator becomes weak, nginx drops an invalid one. */
    if (h->value_len >= 2 && v[0] == 'W' && v[1] == '/')
        return 0;
    if (h->value_len == 0 || v[0] != '"')
        return 1;
    memcpy(*p, "ETag: W/", 8);
    memcpy(*p + 8, v, h->value_len);
    memcpy(*p + 8 + h->value_len, "\r\n", 2);
    *p += 10 + h->value_len;
    return 1;
}

size_t gw_gzip_head_lines(const gw_http_req_t *req, char *out)
{
    size_t n = 0;

    if (req->gz) {
        memcpy(out, "Content-Encoding: gzip\r\n", 24);
        n = 24;
    }
    if (req->gz_vary) {
        memcpy(out + n, "Vary: Accept-Encoding\r\n", 23);
        n += 23;
    }
    return n;
}

/* Queue the filled part of the block (as one chunk for HTTP/1.1); the next deflate gets a new one. */
static void emit(gw_worker_t *w, gw_http_req_t *req)
{
    struct gw_gzip *gz = req->gz;
    uint32_t len = OUT_SIZE - gz->zs.avail_out;
    char *data = gz->block + ROOM;

    if (len == 0)
        return; /* keep the empty block for the next bytes */
    if (gz->chunked) {
        char line[ROOM + 1];
        int k = snprintf(line, sizeof(line), "%x\r\n", len);

        data -= k;
        memcpy(data, line, (size_t)k);
        memcpy(gz->block + ROOM + len, "\r\n", 2);
        len += (uint32_t)k + 2;
    }
    gw_conn_send_heap(w, req->client, gz->block, data, len);
    gz->block = NULL;
}

/*
 * Run deflate over what next_in holds with `flush`, queueing each block
 * that fills; with a flush, what is left goes out too. 0, or -1 (no memory,
 * or zlib refused).
 */
static int run(gw_worker_t *w, gw_http_req_t *req, int flush)
{
    struct gw_gzip *gz = req->gz;
    int rc;

    if (gz->failed)
        return -1;
    for (;;) {
        if (gz->block == NULL) {
            gz->block = malloc(ROOM + OUT_SIZE + 2);
            if (gz->block == NULL) {
                gz->failed = 1;
                return -1;
            }
            gz->zs.next_out = (Bytef *)gz->block + ROOM;
            gz->zs.avail_out = OUT_SIZE;
        }
        rc = deflate(&gz->zs, flush);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            gz->failed = 1;
            return -1;
        }
        if (gz->zs.avail_out != 0)
            break; /* all input taken and, for a flush, all output written */
        emit(w, req);
    }
    if (flush != Z_NO_FLUSH) {
        emit(w, req);
        gz->fed = 0;
    }
    return 0;
}

int gw_gzip_body(gw_http_req_t *req, const char *p, size_t n)
{
    struct gw_gzip *gz = req->gz;

    gz->zs.next_in = (const Bytef *)p;
    gz->zs.avail_in = (uInt)n;
    gz->fed += n;
    return run(req->w, req, Z_NO_FLUSH);
}

void gw_gzip_idle(gw_worker_t *w, gw_http_req_t *req)
{
    if (req->gz && req->gz->fed)
        run(w, req, Z_SYNC_FLUSH);
}

int gw_gzip_finish(gw_worker_t *w, gw_http_req_t *req)
{
    int rc = 0;

    if (req->gz->stream) {
        req->gz->zs.avail_in = 0;
        rc = run(w, req, Z_FINISH);
    }
    if (rc == 0 && req->gz->chunked)
        gw_conn_send_static(w, req->client, "0\r\n\r\n", 5);
    gw_gzip_free(req);
    return rc;
}

void gw_gzip_free(gw_http_req_t *req)
{
    struct gw_gzip *gz = req->gz;

    req->gz_vary = 0;
    if (gz == NULL)
        return;
    if (gz->stream)
        deflateEnd(&gz->zs);
    free(gz->block);
    free(gz);
    req->gz = NULL;
}
