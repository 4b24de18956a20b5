/*
 * Fuzz target: rewriting the request head for the upstream
 * (gw_request_upstream_head in http/request.c). The first bytes choose the
 * location (how much of the path it matched, proxy_pass with or without a
 * URI, upstream keepalive); the rest is a request. Whatever the client sent,
 * a head we accepted must become one that a strict parser reads as one
 * request: same method, the expected target, our Host, no hop-by-hop field,
 * at most one Transfer-Encoding, and nothing after the blank line.
 */
#include <strings.h>

#include "core/gw.h"
#include "http/headers.h"
#include "http/request.h"
#include "tests/fuzz/fuzz.h"

/* What a strict parser reads back from the rewritten head. */
typedef struct reread {
    int headers_done;
    uint32_t n_te, n_host, n_hop, n_fields;
    char field[64];
    uint32_t field_len;
    char url[GW_MSG_MAX_LINE * 2];
    uint32_t url_len;
} reread_t;

static int rr_url(llhttp_t *p, const char *at, size_t n)
{
    reread_t *r = p->data;

    FUZZ_ASSERT(r->url_len + n <= sizeof(r->url));
    memcpy(r->url + r->url_len, at, n);
    r->url_len += (uint32_t)n;
    return 0;
}

static int rr_field(llhttp_t *p, const char *at, size_t n)
{
    reread_t *r = p->data;
    size_t room = sizeof(r->field) - r->field_len;

    memcpy(r->field + r->field_len, at, n < room ? n : room);
    r->field_len += (uint32_t)(n < room ? n : room);
    return 0;
}

static int is(const reread_t *r, const char *name)
{
    return r->field_len == strlen(name) && strncasecmp(r->field, name, r->field_len) == 0;
}

static int rr_field_done(llhttp_t *p)
{
    reread_t *r = p->data;

    r->n_fields++;
    r->n_te += is(r, "transfer-encoding");
    r->n_host += is(r, "host");
    r->n_hop += is(r, "keep-alive") || is(r, "proxy-connection") || is(r, "te") || is(r, "upgrade") ||
                is(r, "trailer") || is(r, "expect");
    r->field_len = 0;
    return 0;
}

static int rr_headers_done(llhttp_t *p)
{
    ((reread_t *)p->data)->headers_done = 1;
    return HPE_PAUSED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static llhttp_settings_t rs;
    static reread_t r;
    gw_http_req_t *req;
    gw_http_loc_t loc;
    gw_upstream_t u;
    gw_upstream_rt_t rt;
    gw_target_t t;
    gw_conf_err_t err;
    uint32_t off = 0, len, head_len;
    char *in, *head, *want;
    uint8_t match, shape;
    llhttp_t p;
    llhttp_errno_t e;

    if (size < 2)
        return 0;
    match = data[0];
    shape = data[1];
    data += 2;
    size -= 2;

    req = calloc(1, sizeof(*req));
    gw_request_parser_init(req);
    in = fuzz_copy(data, size);
    if (gw_request_parse_head(req, in, (uint32_t)size, &off) != 0 || gw_request_check(req) != 0)
        goto out;
    gw_request_target(req, &t);
    /* http/client.c answers 400 for a path that is neither "/..." nor "*". */
    if (t.path_len == 0 || (t.path[0] != '/' && !(t.path_len == 1 && t.path[0] == '*')))
        goto out;

    /* The location matched a prefix of the path, as routing guarantees. */
    memset(&loc, 0, sizeof(loc));
    loc.match_len = match % (t.path_len + 1);
    loc.match = fuzz_copy((const uint8_t *)t.path, loc.match_len);
    loc.exact = (shape & 1) && loc.match_len == t.path_len;
    loc.proxy_host = "backend.example:8080";
    loc.proxy_host_len = (uint32_t)strlen(loc.proxy_host);
    if (shape & 2) {
        loc.proxy_uri = (shape & 4) ? "/base/" : "/";
        loc.proxy_uri_len = (uint32_t)strlen(loc.proxy_uri);
    }
    memset(&u, 0, sizeof(u));
    memset(&rt, 0, sizeof(rt));
    u.keepalive = (shape & 8) ? 16 : 0;
    rt.u = &u;
    loc.upstream = &u;
    req->loc = &loc;
    req->rt = &rt;
    /* nginx's default header settings, compiled for this location */
    FUZZ_ASSERT(gw_headers_conf_finish(&loc, NULL, &loc, &err) == 0);

    head = gw_request_upstream_head(req, &len);
    gw_headers_conf_free(loc.hconf);
    FUZZ_ASSERT(head != NULL);

    /* The target we meant to send. */
    want = malloc(t.path_len + t.query_len + 16);
    head_len = 0;
    if (loc.proxy_uri) {
        memcpy(want, loc.proxy_uri, loc.proxy_uri_len);
        head_len = loc.proxy_uri_len;
        memcpy(want + head_len, t.path + loc.match_len, t.path_len - loc.match_len);
        head_len += t.path_len - loc.match_len;
    } else {
        memcpy(want, t.path, t.path_len);
        head_len = t.path_len;
    }
    memcpy(want + head_len, t.query, t.query_len);
    head_len += t.query_len;

    /* Read it back strictly, from an exactly-sized copy. */
    if (rs.on_url == NULL) {
        llhttp_settings_init(&rs);
        rs.on_url = rr_url;
        rs.on_header_field = rr_field;
        rs.on_header_field_complete = rr_field_done;
        rs.on_headers_complete = rr_headers_done;
    }
    memset(&r, 0, sizeof(r));
    llhttp_init(&p, HTTP_REQUEST, &rs);
    p.data = &r;
    e = llhttp_execute(&p, head, len);
    if (e != HPE_PAUSED || !r.headers_done) {
        fprintf(stderr, "rewritten head does not parse: %s (%s)\n%.*s\n", llhttp_errno_name(e),
                llhttp_get_error_reason(&p), (int)len, head);
        abort();
    }
    FUZZ_ASSERT(llhttp_get_error_pos(&p) == head + len); /* nothing after the blank line */
    FUZZ_ASSERT(p.method == req->rq.method);
    FUZZ_ASSERT(r.url_len == head_len && memcmp(r.url, want, head_len) == 0);
    FUZZ_ASSERT(r.n_host == 1 && r.n_hop == 0 && r.n_te <= 1);
    FUZZ_ASSERT(r.n_te == req->te_count);
    free(want);
    free(head);
    free(loc.match);
out:
    free(in);
    gw_msg_free(&req->in);
    free(req);
    return 0;
}
