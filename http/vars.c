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
#include <sys/random.h>
#include <sys/socket.h>

#include "headers.h"
#include "request.h"
#include "tls/tls.h"
#include "vars.h"

typedef gw_var_get_fn getter_fn;

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

/* Does header h carry the name `name` with '_' standing for '-', case-insensitively ($http_NAME)? */
static int name_matches(const gw_msg_t *m, const gw_hdr_t *h, const char *name, size_t len)
{
    const char *hn = m->buf + h->name;

    if (h->name_len != len)
        return 0;
    for (size_t k = 0; k < len; k++) {
        char a = (char)tolower((unsigned char)hn[k]), b = (char)tolower((unsigned char)name[k]);

        if (a != b && !(a == '-' && b == '_'))
            return 0;
    }
    return 1;
}

/*
 * Every header named `name`, values joined with `sep` (nginx 1.23 and later
 * join repeated headers; Cookie with "; ", the rest with ", "). Headers nginx
 * ignores (invalid names) are not seen.
 */
static size_t join_headers(const gw_http_req_t *req, const char *name, size_t len, const char *sep, char *out,
                           size_t cap)
{
    const gw_msg_t *m = &req->in;
    size_t n = 0;
    int first = 1;

    for (uint32_t i = 0; i < m->n; i++) {
        const gw_hdr_t *h = &m->h[i];

        if (!name_matches(m, h, name, len) || (h->flags && req->client && gw_headers_ignored(req, h)))
            continue;
        if (!first)
            n += put(out + (n < cap ? n : cap), n < cap ? cap - n : 0, sep, strlen(sep));
        n += put(out + (n < cap ? n : cap), n < cap ? cap - n : 0, m->buf + h->value, h->value_len);
        first = 0;
    }
    return n;
}

static size_t get_http(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    int cookie = arg_len == 6 && strncasecmp(arg, "cookie", 6) == 0;

    return join_headers(req, arg, arg_len, cookie ? "; " : ", ", out, cap);
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
    if (n > 1 && h[n - 1] == '.')
        n--; /* "example.com." is example.com */
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

/* Every X-Forwarded-For of the request joined, then the client's address. */
static size_t get_proxy_add_xff(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    size_t n = join_headers(req, "x_forwarded_for", 15, ", ", out, cap);

    if (n)
        n += put(out + (n < cap ? n : cap), cap > n ? cap - n : 0, ", ", 2);
    return n + get_remote_addr(req, NULL, 0, out + (n < cap ? n : cap), cap > n ? cap - n : 0);
}

static size_t get_scheme(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return gw_tls_is_tls(client(req)) ? put(out, cap, "https", 5) : put(out, cap, "http", 4);
}

/* $https: "on" over TLS, else empty. $ssl_*: the negotiated parameters (tls/), empty without TLS. */
static size_t get_https(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return gw_tls_is_tls(client(req)) ? put(out, cap, "on", 2) : 0;
}

static size_t put_str(char *out, size_t cap, const char *s)
{
    return s ? put(out, cap, s, strlen(s)) : 0;
}

static size_t get_ssl_protocol(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return put_str(out, cap, gw_tls_protocol(client(req)));
}

static size_t get_ssl_cipher(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return put_str(out, cap, gw_tls_cipher(client(req)));
}

static size_t get_ssl_server_name(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return put_str(out, cap, gw_tls_server_name(client(req)));
}

/* $ssl_session_reused: "r" when the handshake resumed a session, else "." (nginx's). */
static size_t get_ssl_session_reused(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out,
                                     size_t cap)
{
    if (!gw_tls_is_tls(client(req)))
        return 0;
    return put(out, cap, gw_tls_session_reused(client(req)) ? "r" : ".", 1);
}

static size_t get_ssl_alpn(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return put_str(out, cap, gw_tls_alpn(client(req)));
}

/* The target as sent, less the scheme and authority of an absolute-form one. */
static size_t get_request_uri(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    gw_target_t t;
    size_t n;

    gw_request_target(req, &t);
    n = put(out, cap, t.path, t.path_len);
    return n + put(out + (n < cap ? n : cap), cap > n ? cap - n : 0, t.query, t.query_len);
}

static size_t get_uri(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    gw_target_t t;

    if (req->uri) /* normalized by routing (route.c): decoded, dots and double slashes resolved */
        return put(out, cap, req->uri, req->uri_len);
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
    return t.query_len > 1 ? put(out, cap, "?", 1) : 0;
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

static int is_wildcard(const gw_addr_t *a)
{
    static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

    if (a->ss.ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr, &any6, sizeof(any6)) == 0;
    return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
}

static size_t get_server_addr(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    gw_addr_t local;
    char buf[64];
    const gw_addr_t *a = listen_addr(req);
    const void *ip;

    /* A wildcard listen does not say which address was reached: ask the
     * socket (a syscall, only for configurations that use this variable). */
    if (is_wildcard(a)) {
        local.len = sizeof(local.ss);
        if (getsockname(client(req)->fd, (struct sockaddr *)&local.ss, &local.len) == 0 &&
            (local.ss.ss_family == AF_INET || local.ss.ss_family == AF_INET6))
            a = &local;
    }
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

/* $proxy_port: the port of proxy_pass's address (80, or 443 for https://, when it names none). */
static size_t get_proxy_port(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    const char *h, *colon;
    uint32_t n;

    if (req->loc == NULL || req->loc->proxy_host == NULL)
        return 0;
    h = req->loc->proxy_host;
    n = req->loc->proxy_host_len;
    colon = memrchr(h, ':', n);
    if (colon == NULL || memchr(colon, ']', (size_t)(h + n - colon)))
        return req->loc->proxy_https ? put(out, cap, "443", 3) : put(out, cap, "80", 2);
    return put(out, cap, colon + 1, (size_t)(h + n - colon - 1));
}

static size_t get_content_type(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return join_headers(req, "content_type", 12, ", ", out, cap);
}

static size_t get_content_length(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return join_headers(req, "content_length", 14, ", ", out, cap);
}

static size_t put_u64(char *out, size_t cap, uint64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);

    return put(out, cap, buf, (size_t)n);
}

static size_t get_connection(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return put_u64(out, cap, client(req)->number);
}

static size_t get_connection_requests(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out,
                                      size_t cap)
{
    return put_u64(out, cap, client(req)->requests);
}

/* splitmix64 over a per-thread state seeded by the kernel: unpredictable enough for an id, no lock, no syscall. */
static uint64_t next_random(void)
{
    static __thread uint64_t state;
    static __thread int seeded;
    uint64_t z;

    if (!seeded) {
        if (getrandom(&state, sizeof(state), 0) != sizeof(state))
            state = (uint64_t)(uintptr_t)&state ^ 0x9e3779b97f4a7c15ull;
        seeded = 1;
    }
    z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* $request_id: 32 hex digits, drawn the first time the request uses it and the same after. */
static size_t get_request_id(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    /* The id is a cache filled on first use: the request is otherwise read-only here. */
    uint64_t *id = ((gw_http_req_t *)req)->request_id;
    char buf[33];

    while (id[0] == 0 && id[1] == 0) {
        id[0] = next_random();
        id[1] = next_random();
    }
    snprintf(buf, sizeof(buf), "%016llx%016llx", (unsigned long long)id[0], (unsigned long long)id[1]);
    return put(out, cap, buf, 32);
}

static size_t get_capture(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    uint32_t n = (uint32_t)(arg[0] - '0'), start, end;

    if (n >= req->caps.n || req->uri == NULL)
        return 0;
    start = req->caps.ov[2 * n];
    end = req->caps.ov[2 * n + 1];
    if (start == UINT32_MAX || end > req->uri_len || start > end)
        return 0; /* the group did not take part in the match */
    return put(out, cap, req->uri + start, end - start);
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
    {"https", get_https},
    {"ssl_protocol", get_ssl_protocol},
    {"ssl_cipher", get_ssl_cipher},
    {"ssl_server_name", get_ssl_server_name},
    {"ssl_alpn_protocol", get_ssl_alpn},
    {"ssl_session_reused", get_ssl_session_reused},
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
    {"proxy_port", get_proxy_port},
    {"content_type", get_content_type},
    {"content_length", get_content_length},
    {"connection", get_connection},
    {"connection_requests", get_connection_requests},
    {"request_id", get_request_id},
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
    /* $1..$9: the captures of the regex location that matched (route.c) */
    if (len == 1 && name[0] >= '1' && name[0] <= '9') {
        p->get = get_capture;
        p->text = strndup(name, 1);
        p->len = 1;
        return p->text ? 0 : -1;
    }
    /* Variables another module defines (vars.h: gw_vars_more), when linked in. */
    for (const gw_var_def_t *d = gw_vars_more; d && d->name; d++) {
        size_t nl = strlen(d->name);

        if (!d->prefix && nl == len && memcmp(d->name, name, len) == 0) {
            p->get = d->get;
            return 0;
        }
        if (d->prefix && len > nl && memcmp(d->name, name, nl) == 0) {
            p->get = d->get;
            p->text = strndup(name + nl, len - nl);
            p->len = len - nl;
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

        if (*p == '$') {
            int braced = p[1] == '{';
            const char *name = p + 1 + braced, *end = name;

            while (is_name_char(*end))
                end++;
            if (end == name) {
                /* nginx: every '$' starts a variable; there is no escape */
                snprintf(msg, size, "invalid variable name");
                gw_cv_free(cv);
                return NULL;
            }
            if (braced && *end != '}') {
                snprintf(msg, size, "the closing bracket in \"%.*s\" variable is missing", (int)(end - name), name);
                gw_cv_free(cv);
                return NULL;
            }
            if (resolve(name, (size_t)(end - name), &piece) < 0) {
                snprintf(msg, size, "unknown \"%.*s\" variable", (int)(end - name), name);
                gw_cv_free(cv);
                return NULL;
            }
            p = end + braced;
        } else {
            /* a literal run up to the next variable */
            p++;
            while (*p && *p != '$')
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
