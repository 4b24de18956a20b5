/*
 * The variables of a request's outcome, for log_format (and anything else
 * that compiles variables): $status, sizes, times, the upstream attempts
 * ($upstream_* list one value per attempt, ", "-separated, as nginx does),
 * $request, $remote_user, $pipe. They reach vars.c's table through its
 * gw_vars_more hook. A value that does not exist is empty (the log prints
 * "-").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "accesslog.h"
#include "core/worker-t.h"
#include "message.h"
#include "request-t.h"
#include "vars.h"

static size_t put(char *out, size_t cap, const char *s, size_t n)
{
    if (cap)
        memcpy(out, s, n < cap ? n : cap);
    return n;
}

static size_t putf_u64(char *out, size_t cap, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%llu", (unsigned long long)v);

    return put(out, cap, b, (size_t)n);
}

/* µs as nginx's seconds with milliseconds: "0.012" */
static size_t putf_ms(char *out, size_t cap, uint64_t us)
{
    char b[32];
    int n = snprintf(b, sizeof(b), "%llu.%03llu", (unsigned long long)(us / 1000000),
                     (unsigned long long)(us / 1000 % 1000));

    return put(out, cap, b, (size_t)n);
}

static size_t get_status(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    char b[8];
    int n = snprintf(b, sizeof(b), "%03u", req->status);

    return put(out, cap, b, (size_t)n);
}

static uint64_t queued(const gw_http_req_t *req)
{
    return req->client ? req->client->queued : 0;
}

static size_t get_bytes_sent(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return putf_u64(out, cap, queued(req) - req->out_mark);
}

static size_t get_body_bytes_sent(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return putf_u64(out, cap, req->body_mark ? queued(req) - req->body_mark : 0);
}

static size_t get_request_length(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return putf_u64(out, cap, req->request_length);
}

static size_t get_request_time(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return putf_ms(out, cap, req->w->now_us - req->start_us);
}

/* ---- the upstream attempts ---- */

enum { UP_ADDR, UP_STATUS, UP_RESPONSE, UP_CONNECT, UP_HEADER };

static size_t upstream_list(const gw_http_req_t *req, int what, char *out, size_t cap)
{
    size_t n = 0;

    for (uint32_t i = 0; i < req->natt; i++) {
        const gw_http_attempt_t *a = &req->att[i];
        uint32_t t = GW_ATT_NONE;
        char *at = out + (n < cap ? n : cap);
        size_t room = n < cap ? cap - n : 0;

        if (i) {
            n += put(at, room, ", ", 2);
            at = out + (n < cap ? n : cap);
            room = n < cap ? cap - n : 0;
        }
        switch (what) {
        case UP_ADDR:
            if (a->peer)
                n += put(at, room, a->peer->name, strlen(a->peer->name));
            else if (req->rt) /* no live upstreams: nginx names the group */
                n += put(at, room, req->rt->u->name, strlen(req->rt->u->name));
            else
                n += put(at, room, "-", 1);
            continue;
        case UP_STATUS:
            if (a->status) {
                n += putf_u64(at, room, a->status);
                continue;
            }
            break;
        case UP_RESPONSE:
            t = a->ended ? a->total_us : (uint32_t)(req->w->now_us - a->start_us);
            break;
        case UP_CONNECT:
            t = a->connect_us;
            break;
        default:
            t = a->header_us;
            break;
        }
        n += t == GW_ATT_NONE ? put(at, room, "-", 1) : putf_ms(at, room, t);
    }
    return n;
}

#define UPSTREAM_GETTER(fn, what)                                                                                      \
    static size_t fn(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)                \
    {                                                                                                                  \
        return upstream_list(req, what, out, cap);                                                                     \
    }
UPSTREAM_GETTER(get_upstream_addr, UP_ADDR)
UPSTREAM_GETTER(get_upstream_status, UP_STATUS)
UPSTREAM_GETTER(get_upstream_response_time, UP_RESPONSE)
UPSTREAM_GETTER(get_upstream_connect_time, UP_CONNECT)
UPSTREAM_GETTER(get_upstream_header_time, UP_HEADER)

/* ---- time ---- */

/* Formatting a time costs a localtime_r: once per second per thread is enough. */
typedef struct time_cache {
    time_t sec;
    char local[32], iso[32];
    size_t local_len, iso_len;
} time_cache_t;

static const time_cache_t *now_text(void)
{
    static _Thread_local time_cache_t tc;
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    long off;

    if (now == tc.sec)
        return &tc;
    localtime_r(&now, &tm);
    off = tm.tm_gmtoff / 60;
    tc.sec = now;
    tc.local_len = (size_t)snprintf(tc.local, sizeof(tc.local), "%02d/%s/%d:%02d:%02d:%02d %c%02ld%02ld", tm.tm_mday,
                                    months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
                                    off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
    tc.iso_len = (size_t)snprintf(tc.iso, sizeof(tc.iso), "%d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
                                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                                  off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
    return &tc;
}

static size_t get_time_local(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    const time_cache_t *tc = now_text();

    return put(out, cap, tc->local, tc->local_len);
}

static size_t get_time_iso8601(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    const time_cache_t *tc = now_text();

    return put(out, cap, tc->iso, tc->iso_len);
}

static size_t get_msec(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    struct timeval tv;
    char b[32];
    int n;

    gettimeofday(&tv, NULL);
    n = snprintf(b, sizeof(b), "%lld.%03ld", (long long)tv.tv_sec, (long)(tv.tv_usec / 1000));
    return put(out, cap, b, (size_t)n);
}

/* ---- the request ---- */

/* "GET /x?y HTTP/1.1": the request line as received (empty before it was read). */
static size_t get_request(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    const char *m = llhttp_method_name((llhttp_method_t)req->rq.method);
    char tail[16];
    size_t n = 0, ml = strlen(m);
    int tl;

    if (req->in.line_len == 0 || req->rq.http_major == 0)
        return 0;
    tl = snprintf(tail, sizeof(tail), " HTTP/%u.%u", req->rq.http_major, req->rq.http_minor);
    n += put(out, cap, m, ml);
    n += put(out + (n < cap ? n : cap), n < cap ? cap - n : 0, " ", 1);
    n += put(out + (n < cap ? n : cap), n < cap ? cap - n : 0, req->in.buf, req->in.line_len);
    n += put(out + (n < cap ? n : cap), n < cap ? cap - n : 0, tail, (size_t)tl);
    return n;
}

static int b64(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* $remote_user: the user of "Authorization: Basic base64(user:password)". */
static size_t get_remote_user(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    for (uint32_t i = 0; i < req->in.n; i++) {
        const gw_hdr_t *h = &req->in.h[i];
        const unsigned char *v = (const unsigned char *)req->in.buf + h->value;
        char user[256];
        size_t n = 0, k = 6;
        uint32_t acc = 0, bits = 0;

        if (h->name_len != 13 || strncasecmp(req->in.buf + h->name, "Authorization", 13) != 0)
            continue;
        if (h->value_len < 6 || strncasecmp((const char *)v, "Basic ", 6) != 0)
            return 0;
        for (; k < h->value_len && v[k] == ' '; k++)
            ;
        for (; k < h->value_len && b64(v[k]) >= 0 && n < sizeof(user); k++) {
            acc = acc << 6 | (uint32_t)b64(v[k]);
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                user[n] = (char)(acc >> bits & 0xff);
                if (user[n] == ':')
                    return put(out, cap, user, n);
                n++;
            }
        }
        return 0; /* no colon: not a user:password pair */
    }
    return 0;
}

static size_t get_pipe(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return put(out, cap, req->obs_pipe ? "p" : ".", 1);
}

/* No proxy_cache here: nginx's value without a cache (empty). */
static size_t get_empty(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap)
{
    return 0;
}

const gw_var_def_t gw_vars_more[] = {
    {"status", get_status, 0},
    {"bytes_sent", get_bytes_sent, 0},
    {"body_bytes_sent", get_body_bytes_sent, 0},
    {"request_length", get_request_length, 0},
    {"request_time", get_request_time, 0},
    {"upstream_addr", get_upstream_addr, 0},
    {"upstream_status", get_upstream_status, 0},
    {"upstream_response_time", get_upstream_response_time, 0},
    {"upstream_connect_time", get_upstream_connect_time, 0},
    {"upstream_header_time", get_upstream_header_time, 0},
    {"time_local", get_time_local, 0},
    {"time_iso8601", get_time_iso8601, 0},
    {"msec", get_msec, 0},
    {"request", get_request, 0},
    {"remote_user", get_remote_user, 0},
    {"pipe", get_pipe, 0},
    {"upstream_cache_status", get_empty, 0},
    {NULL, NULL, 0},
};

/* vars.c reaches gw_vars_more through a weak reference, which alone would
 * not pull this file out of the static library: the access log calls this. */
int gw_vars_log_linked(void)
{
    return gw_vars_more[0].name != NULL;
}
