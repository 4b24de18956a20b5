/*
 * Variables and complex values (see vars.h). Every getter writes its value
 * into the caller's buffer (up to cap bytes) and returns its full length, so
 * one evaluation pass both measures and fills.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "request.h"
#include "vars.h"

typedef size_t (*getter_fn)(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap);

typedef struct piece {
    getter_fn get; /* NULL: a literal */
    char *text;    /* the literal, or the name suffix of a prefixed variable ($http_x_y -> "x_y") */
    size_t len;
} piece_t;

struct gw_cv {
    piece_t *pieces;
    uint32_t n;
};

static size_t put(char *out, size_t cap, const char *s, size_t n)
{
    if (cap)
        memcpy(out, s, n < cap ? n : cap);
    return n;
}

static size_t put_lower(char *out, size_t cap, const char *s, size_t n)
{
    for (size_t i = 0; i < n && i < cap; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    return n;
}

static const gw_conn_t *client(const gw_http_req_t *req)
{
    return req->client;
}

/* ---- header lookups ---- */

/* The first header whose name matches `name` with '_' standing for '-', case-insensitively. */
static const gw_hdr_t *find_header(const gw_msg_t *m, const char *name, size_t len)
{
    for (uint32_t i = 0; i < m->n; i++) {
        const gw_hdr_t *h = &m->h[i];
        const char *hn = m->buf + h->name;
        size_t k;

        if (h->name_len != len)
            continue;
        for (k = 0; k < len; k++) {
            char a = (char)tolower((unsigned char)hn[k]), b = (char)tolower((unsigned char)name[k]);

            if (a != b && !(a == '-' && b == '_'))
                break;
        }
        if (k == len)
            return h;
    }
    return NULL;
}

static size_t get_http(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    const gw_hdr_t *h = find_header(&req->in, arg, arg_len);

    return h ? put(out, cap, req->in.buf + h->value, h->value_len) : 0;
}

/* $cookie_NAME: the value of NAME in the Cookie header(s). */
static size_t get_cookie(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    const gw_msg_t *m = &req->in;

    for (uint32_t i = 0; i < m->n; i++) {
        const gw_hdr_t *h = &m->h[i];
        const char *v = m->buf + h->value, *end = v + h->value_len;

        if (h->name_len != 6 || strncasecmp(m->buf + h->name, "cookie", 6) != 0)
            continue;
        while (v < end) {
            const char *semi, *eq;

            while (v < end && (*v == ' ' || *v == ';'))
                v++;
            semi = memchr(v, ';', (size_t)(end - v));
            if (semi == NULL)
                semi = end;
            eq = memchr(v, '=', (size_t)(semi - v));
            if (eq && (size_t)(eq - v) == arg_len && strncasecmp(v, arg, arg_len) == 0)
                return put(out, cap, eq + 1, (size_t)(semi - eq - 1));
            v = semi;
        }
    }
    return 0;
}

/* $arg_NAME: NAME's value in the query string (names compared case-insensitively, as nginx). */
static size_t get_arg(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    gw_target_t t;
    const char *q, *end;

    gw_request_target(req, &t);
    if (t.query_len < 2)
        return 0;
    q = t.query + 1;
    end = t.query + t.query_len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q)), *eq;

        if (amp == NULL)
            amp = end;
        eq = memchr(q, '=', (size_t)(amp - q));
        if (eq && (size_t)(eq - q) == arg_len && strncasecmp(q, arg, arg_len) == 0)
            return put(out, cap, eq + 1, (size_t)(amp - eq - 1));
        q = amp + 1;
    }
    return 0;
}

/* ---- fixed variables ---- */

static size_t get_host(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    const char *h;
    uint32_t n;

    /* the request line's host, else Host, else the server's name; lower-cased, no port (nginx) */
    gw_request_host(req, &h, &n);
    if (n)
        return put_lower(out, cap, h, n);
    if (req->srv && req->srv->nnames)
        return put(out, cap, req->srv->names[0], strlen(req->srv->names[0]));
    return 0;
}

static size_t format_addr(const gw_peer_addr_t *p, char *buf, size_t size)
{
    if (p->family == 0 || inet_ntop(p->family, p->addr, buf, (socklen_t)size) == NULL)
        return 0;
    return strlen(buf);
}

static size_t get_remote_addr(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    char buf[64];
    size_t n = format_addr(&client(req)->peer, buf, sizeof(buf));

    return put(out, cap, buf, n);
}

static size_t get_binary_remote_addr(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out,
                                     size_t cap)
{
    const gw_peer_addr_t *p = &client(req)->peer;

    return p->family ? put(out, cap, (const char *)p->addr, p->family == AF_INET ? 4 : 16) : 0;
}

static size_t get_remote_port(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    char buf[8];
    int n = snprintf(buf, sizeof(buf), "%u", client(req)->peer.port);

    return client(req)->peer.family ? put(out, cap, buf, (size_t)n) : 0;
}

static size_t get_proxy_add_xff(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    const gw_hdr_t *h = find_header(&req->in, "x-forwarded-for", 15);
    size_t n = 0;

    if (h && h->value_len) {
        n += put(out, cap, req->in.buf + h->value, h->value_len);
        n += put(out + (n < cap ? n : cap), cap > n ? cap - n : 0, ", ", 2);
    }
    return n + get_remote_addr(req, NULL, 0, out + (n < cap ? n : cap), cap > n ? cap - n : 0);
}

static size_t get_scheme(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return put(out, cap, "http", 4);
}

static size_t get_request_uri(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return put(out, cap, req->in.buf, req->in.line_len);
}

static size_t get_uri(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    gw_target_t t;

    gw_request_target(req, &t);
    return put(out, cap, t.path, t.path_len);
}

static size_t get_args(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    gw_target_t t;

    gw_request_target(req, &t);
    return t.query_len > 1 ? put(out, cap, t.query + 1, t.query_len - 1) : 0;
}

static size_t get_is_args(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    gw_target_t t;

    gw_request_target(req, &t);
    return t.query_len ? put(out, cap, "?", 1) : 0;
}

static size_t get_request_method(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    const char *m = llhttp_method_name((llhttp_method_t)req->rq.method);

    return put(out, cap, m, strlen(m));
}

static size_t get_server_name(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    const gw_http_srv_t *s = req->srv;

    return s && s->nnames ? put(out, cap, s->names[0], strlen(s->names[0])) : 0;
}

static const gw_addr_t *listen_addr(const gw_http_req_t *req)
{
    return &((const gw_http_addr_t *)client(req)->ctx)->addr;
}

static size_t get_server_port(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    char buf[8];
    int n = snprintf(buf, sizeof(buf), "%u", gw_addr_port(listen_addr(req)));

    return put(out, cap, buf, (size_t)n);
}

static size_t get_server_addr(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char buf[64];
    const gw_addr_t *a = listen_addr(req);
    const void *ip;

    /* A wildcard listen does not say which address was reached: ask the
     * socket (a syscall, only for configurations that use this variable). */
    if (getsockname(client(req)->fd, (struct sockaddr *)&ss, &sl) == 0 &&
        (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
        a = &(gw_addr_t){.ss = ss, .len = sl};
    ip = a->ss.ss_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr
                                     : (const void *)&((const struct sockaddr_in *)&a->ss)->sin_addr;
    if (inet_ntop(a->ss.ss_family, ip, buf, sizeof(buf)) == NULL)
        return 0;
    return put(out, cap, buf, strlen(buf));
}

static size_t get_proxy_host(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return req->loc && req->loc->proxy_host ? put(out, cap, req->loc->proxy_host, req->loc->proxy_host_len) : 0;
}

static size_t get_server_protocol(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return put(out, cap, req->rq.http_minor == 0 ? "HTTP/1.0" : "HTTP/1.1", 8);
}

static const struct {
    const char *name;
    getter_fn get;
} fixed[] = {
    {"host", get_host},
    {"remote_addr", get_remote_addr},
    {"binary_remote_addr", get_binary_remote_addr},
    {"remote_port", get_remote_port},
    {"proxy_add_x_forwarded_for", get_proxy_add_xff},
    {"scheme", get_scheme},
    {"request_uri", get_request_uri},
    {"uri", get_uri},
    {"document_uri", get_uri},
    {"args", get_args},
    {"query_string", get_args},
    {"is_args", get_is_args},
    {"request_method", get_request_method},
    {"server_name", get_server_name},
    {"server_port", get_server_port},
    {"server_addr", get_server_addr},
    {"server_protocol", get_server_protocol},
    {"proxy_host", get_proxy_host},
};

static const struct {
    const char *prefix;
    getter_fn get;
} prefixed[] = {
    {"http_", get_http},
    {"cookie_", get_cookie},
    {"arg_", get_arg},
};

/* Resolve a variable name into a piece. 0 or -1 (unknown). */
static int resolve(const char *name, size_t len, piece_t *p)
{
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (strlen(fixed[i].name) == len && memcmp(fixed[i].name, name, len) == 0) {
            p->get = fixed[i].get;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof(prefixed) / sizeof(prefixed[0]); i++) {
        size_t pl = strlen(prefixed[i].prefix);

        if (len > pl && memcmp(prefixed[i].prefix, name, pl) == 0) {
            p->get = prefixed[i].get;
            p->text = strndup(name + pl, len - pl);
            p->len = len - pl;
            return p->text ? 0 : -1;
        }
    }
    return -1;
}

static int is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

gw_cv_t *gw_cv_compile(const char *text, char *msg, size_t size)
{
    gw_cv_t *cv = calloc(1, sizeof(*cv));
    size_t cap = 0;
    const char *p = text;

    if (cv == NULL)
        goto nomem;
    while (*p) {
        piece_t piece = {0};
        const char *start = p;

        if (*p == '$' && (is_name_char(p[1]) || (p[1] == '{' && strchr(p, '}')))) {
            int braced = p[1] == '{';
            const char *name = p + 1 + braced, *end = name;

            while (is_name_char(*end))
                end++;
            if (braced && *end != '}') {
                snprintf(msg, size, "the closing bracket in \"%.*s\" variable is missing", (int)(end - name), name);
                gw_cv_free(cv);
                return NULL;
            }
            if (end == name || resolve(name, (size_t)(end - name), &piece) < 0) {
                snprintf(msg, size, "unknown \"%.*s\" variable", (int)(end - name), name);
                gw_cv_free(cv);
                return NULL;
            }
            p = end + braced;
        } else {
            /* a literal run up to the next variable */
            p++;
            while (*p && !(*p == '$' && (is_name_char(p[1]) || p[1] == '{')))
                p++;
            piece.text = strndup(start, (size_t)(p - start));
            piece.len = (size_t)(p - start);
            if (piece.text == NULL)
                goto nomem;
        }
        if (cv->n == cap) {
            piece_t *grown = realloc(cv->pieces, (cap ? cap * 2 : 4) * sizeof(*grown));

            if (grown == NULL) {
                free(piece.text);
                goto nomem;
            }
            cv->pieces = grown;
            cap = cap ? cap * 2 : 4;
        }
        cv->pieces[cv->n++] = piece;
    }
    return cv;
nomem:
    snprintf(msg, size, "out of memory");
    gw_cv_free(cv);
    return NULL;
}

void gw_cv_free(gw_cv_t *cv)
{
    if (cv == NULL)
        return;
    for (uint32_t i = 0; i < cv->n; i++)
        free(cv->pieces[i].text);
    free(cv->pieces);
    free(cv);
}

int gw_cv_has_vars(const gw_cv_t *cv)
{
    for (uint32_t i = 0; i < cv->n; i++)
        if (cv->pieces[i].get)
            return 1;
    return 0;
}

size_t gw_cv_eval(const gw_cv_t *cv, const gw_http_req_t *req, char *out, size_t cap)
{
    size_t n = 0;

    for (uint32_t i = 0; i < cv->n; i++) {
        const piece_t *p = &cv->pieces[i];
        char *at = out + (n < cap ? n : cap);
        size_t room = n < cap ? cap - n : 0;

        n += p->get ? p->get(req, p->text, p->len, at, room) : put(at, room, p->text, p->len);
    }
    return n;
}
