/*
 * Answers the gateway gives itself (see answers.h). They run where nginx
 * runs them: a server's `return` before anything of a location (its server
 * rewrite phase), then the location's `internal` check, its `return`
 * (rewrite phase), and only then allow/deny (access phase) - so a location's
 * `return` answers even a client its `deny` would refuse, as in nginx.
 *
 * error_page targets: a URI is matched against the server's locations; a
 * location with `return` answers, one that proxies gets the request as a GET
 * of that URI (nginx's internal redirect), anything else is served as a file
 * under the location's (or server's) `root` (page_file.c). A named location
 * (@name) that proxies gets the request as it was.
 * Proxying again needs a request without a body: we stream bodies, so it
 * went to the first upstream and is gone (nginx buffers it). A URL is a
 * redirect.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>

#include "access.h"
#include "answers.h"
#include "core/addr.h"
#include "core/gw.h"
#include "core/log.h"
#include "errors.h"
#include "headers.h"
#include "page_file.h"
#include "limit_req.h"
#include "http.h"
#include "proxy.h"
#include "request.h"
#include "route.h"
#include "tls/tls.h"
#include "vars.h"

static const gw_http_ans_t *ans_of(const gw_http_req_t *req)
{
    return req->loc ? &req->loc->ans : &req->srv->ans;
}

/* Evaluate cv into a malloc'ed string (NUL-terminated); NULL when out of memory. */
static char *eval(const struct gw_cv *cv, const gw_http_req_t *req, size_t *len)
{
    char small[512];
    size_t n = gw_cv_eval(cv, req, small, sizeof(small));
    char *out = malloc(n + 1);

    if (out == NULL)
        return NULL;
    if (n <= sizeof(small))
        memcpy(out, small, n);
    else
        gw_cv_eval(cv, req, out, n);
    out[n] = '\0';
    *len = n;
    return out;
}

static int is_redirect(unsigned code)
{
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

/*
 * A relative Location made absolute as nginx does with absolute_redirect on:
 * the scheme, the host the client asked for (canonical: lower-cased, no
 * port), else the address it connected to; the port unless the scheme's
 * default (80, 443). Malloc'ed; NULL when out of memory.
 */
char *gw_answers_absolute(const gw_http_req_t *req, const char *url, size_t len, size_t *out_len)
{
    const gw_http_addr_t *a = req->client->ctx;
    unsigned port = gw_addr_port(&a->addr);
    int tls = gw_tls_is_tls(req->client);
    char host[1024], portbuf[8] = "";
    const char *raw;
    uint32_t rlen;
    int hn = -1;
    char *out;
    int n;

    gw_request_host(req, &raw, &rlen);
    if (raw && rlen)
        hn = gw_route_host(raw, rlen, host, sizeof(host) - 1);
    if (hn <= 0) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        const void *ip = NULL;

        if (getsockname(req->client->fd, (struct sockaddr *)&ss, &sl) == 0)
            ip = ss.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                                         : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (ip == NULL || inet_ntop(ss.ss_family, ip, host, sizeof(host)) == NULL)
            host[0] = '\0';
        hn = (int)strlen(host);
    }
    if (port != (tls ? 443 : 80))
        snprintf(portbuf, sizeof(portbuf), ":%u", port);
    n = asprintf(&out, "%s://%.*s%s%.*s", tls ? "https" : "http", hn, host, portbuf, (int)len, url);
    if (n < 0)
        return NULL;
    *out_len = (size_t)n;
    return out;
}

/*
 * Build the answer `a` for req: keep-alive settled (the upstream released),
 * our Server and Date lines and add_header's as for any response, the
 * server's name (server_tokens) at the foot of a page. `special`: nginx's
 * page for a->status (gw_http_special_response). NULL when out of memory.
 */
static char *build(gw_worker_t *w, gw_http_req_t *req, gw_answer_t *a, int special, uint32_t *len)
{
    char top[GW_HEADERS_OWN_MAX], sig[64], small[1024], *added = small;
    uint32_t slen;
    const char *sline = gw_headers_server_line(req, &slen);
    size_t n;
    char *resp;

    a->keepalive = gw_exchange_answer_begin(w, req);
    a->head_only = req->is_head;
    a->top_len = gw_headers_response_own(req, 0, top);
    a->top = top;
    /* "Server: NAME\r\n" -> NAME */
    snprintf(sig, sizeof(sig), "%.*s", (int)(slen > 10 ? slen - 10 : 0), sline + 8);
    a->sig = sig;
    n = gw_headers_response_added(req, a->status, small, sizeof(small));
    if (n > sizeof(small)) {
        added = malloc(n);
        if (added == NULL)
            return NULL;
        gw_headers_response_added(req, a->status, added, n);
    }
    a->added = added;
    a->added_len = n;
    resp = special ? gw_http_special_response(a, len) : gw_http_answer(a, len);
    if (added != small)
        free(added);
    return resp;
}

/* Send a built response (NULL: out of memory) for status. 0 or GW_ERR. */
static int send_answer(gw_worker_t *w, gw_http_req_t *req, unsigned status, char *resp, uint32_t len)
{
    return gw_exchange_answer_send(w, req, status, resp, len);
}

/* A redirect to url (made absolute when it starts with '/'). */
static int redirect(gw_worker_t *w, gw_http_req_t *req, unsigned status, const char *url, size_t ulen)
{
    gw_answer_t a = {.status = status};
    char *abs = NULL;
    uint32_t len = 0;
    char *resp;

    if (ulen && url[0] == '/') {
        abs = gw_answers_absolute(req, url, ulen, &ulen);
        if (abs == NULL)
            return gw_answers_plain(w, req, 500);
        url = abs;
    }
    a.location = url;
    a.location_len = (uint32_t)ulen;
    resp = build(w, req, &a, 1, &len);
    free(abs);
    return send_answer(w, req, status, resp, len);
}

int gw_answers_redirect(gw_worker_t *w, gw_http_req_t *req, unsigned status, const char *url, size_t len)
{
    return redirect(w, req, status, url, len);
}

/* An answer with a body of ours (return's text, a file) and extra header lines (may be NULL). */
static int answer_with(gw_worker_t *w, gw_http_req_t *req, unsigned status, const char *ctype, const char *body,
                       size_t blen, const char *extra, size_t extra_len)
{
    gw_answer_t a = {.status = status, .ctype = ctype, .body = body, .body_len = blen, .extra = extra,
                     .extra_len = extra_len};
    uint32_t len = 0;
    char *resp = build(w, req, &a, 0, &len);

    return send_answer(w, req, status, resp, len);
}

int gw_answers_plain(gw_worker_t *w, gw_http_req_t *req, unsigned status)
{
    gw_answer_t a = {.status = status};
    uint32_t len = 0;
    char *resp = build(w, req, &a, 1, &len);

    return send_answer(w, req, status, resp, len);
}

/* 444: close without a word (the client sees the connection end). */
static int close_silently(gw_worker_t *w, gw_http_req_t *req)
{
    req->status = 444; /* what the access log says, as nginx's */
    req->head_sent = 1;
    gw_exchange_abort(w, req);
    return GW_ERR;
}

/*
 * `return code [text]` of a level. `forced` is the status an error_page
 * imposes (0: none). Without text a code is answered like an error the
 * gateway makes (error_page applies) unless an error_page is running.
 */
static int do_return(gw_worker_t *w, gw_http_req_t *req, const gw_http_ans_t *a, unsigned forced)
{
    unsigned code = a->ret_code;
    size_t len;
    char *text;
    int r;

    if (code == 444)
        return close_silently(w, req);
    if (a->ret_text == NULL) {
        if (req->error_page)
            return gw_answers_plain(w, req, code >= 300 || !forced ? code : forced);
        return gw_exchange_respond(w, req, code);
    }
    text = eval(a->ret_text, req, &len);
    if (text == NULL)
        return gw_answers_plain(w, req, 500);
    if (is_redirect(code))
        r = redirect(w, req, forced ? forced : code, text, len);
    else
        r = answer_with(w, req, forced ? forced : code, "text/plain", text, len, NULL, 0);
    free(text);
    return r;
}

/* Do a level's allow/deny refuse this client? (logged as nginx does) */
static int forbidden(const gw_http_req_t *req, const gw_http_ans_t *a)
{
    char ip[INET6_ADDRSTRLEN] = "-";

    if (a->nrules == 0 || gw_access_allowed(a->rules, a->nrules, &req->client->peer))
        return 0;
    if (gw_log_enabled(GW_LOG_ERR)) {
        if (req->client->peer.family)
            inet_ntop(req->client->peer.family, req->client->peer.addr, ip, sizeof(ip));
        gw_log(GW_LOG_ERR, "access forbidden by rule, client: %s", ip);
    }
    return 1;
}

int gw_answers_route(gw_worker_t *w, gw_http_req_t *req)
{
    const gw_http_ans_t *a;
    unsigned code = 0;

    if (req->srv->ans.ret_code)
        return do_return(w, req, &req->srv->ans, 0);
    if (req->loc && req->loc->ans.internal)
        return gw_exchange_respond(w, req, 404);
    if (req->loc && req->loc->ans.ret_code)
        return do_return(w, req, &req->loc->ans, 0);
    /* preaccess: limit_req (a delay is carried out by the caller, after access) */
    switch (gw_limit_req_check(w, req, &code, &req->limit_delay_ms)) {
    case GW_LIMIT_REJECT:
        return gw_exchange_respond(w, req, code);
    case GW_LIMIT_DELAY:
        break;
    default:
        req->limit_delay_ms = 0;
    }
    a = ans_of(req);
    if (forbidden(req, a))
        return gw_exchange_respond(w, req, 403);
    return GW_ANS_DECLINED;
}

/*
 * An error_page URI (nginx's internal redirect): $uri becomes it, and its
 * location answers - with its return, by proxying (a GET, as nginx makes
 * it, of the new URI; only for a request without a body), or with a file
 * under its root.
 */
static int reproxy(gw_worker_t *w, gw_http_req_t *req, const gw_http_loc_t *l, unsigned forced);

static int serve_uri(gw_worker_t *w, gw_http_req_t *req, const char *target, size_t tlen, unsigned forced)
{
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    char *uri = malloc(tlen + 1), *path, *body = NULL;
    const gw_http_loc_t *tl;
    size_t blen = 0, extra_len;
    char extra[160];
    unsigned st, status;
    struct stat sb;
    int r;

    if (uri == NULL)
        return gw_answers_plain(w, req, 500);
    memcpy(uri, target, tlen);
    uri[tlen] = '\0';
    free(req->uri_buf);
    req->uri_buf = uri;
    req->uri = uri;
    req->uri_len = (uint32_t)plen;
    req->uri_query_len = (uint32_t)(tlen - plen);
    req->uri_quoted = 0;
    req->caps.n = 0; /* $1..$9 pointed into the old URI */
    tl = gw_http_find_location(req->srv, uri, (uint32_t)plen);
    req->loc = tl;
    if (req->srv->ans.ret_code)
        return do_return(w, req, &req->srv->ans, forced);
    if (tl && tl->ans.ret_code)
        return do_return(w, req, &tl->ans, forced);
    /* An internal redirect meets allow/deny again (nginx's access phase runs for it). */
    if (forbidden(req, tl ? &tl->ans : &req->srv->ans))
        return gw_answers_plain(w, req, 403);
    if (tl && tl->upstream) {
        if (req->body_bytes || gw_exchange_body_pending(req)) {
            gw_log(GW_LOG_ERR, "error_page to \"%s\" not proxied: the request body is gone", uri);
            return GW_ANS_DECLINED;
        }
        req->internal_uri = 1;
        if (!req->is_head)
            req->rq.method = HTTP_GET;
        return reproxy(w, req, tl, forced);
    }
    if (memmem(uri, plen, "/../", 4) || (plen >= 3 && memcmp(uri + plen - 3, "/..", 3) == 0))
        return gw_answers_plain(w, req, 400);
    if (asprintf(&path, "%s%.*s", tl ? tl->ans.root : req->srv->ans.root, (int)plen, uri) < 0)
        return gw_answers_plain(w, req, 500);
    st = gw_page_file_read(path, &body, &blen, &sb);
    if (st) {
        gw_log(GW_LOG_ERR, "open() \"%s\" failed (error_page)", path);
        free(path);
        return gw_answers_plain(w, req, st);
    }
    status = forced ? forced : 200;
    extra_len = gw_page_file_validators(&sb, status, extra, sizeof(extra));
    r = answer_with(w, req, status, gw_page_file_type(path), body, blen, extra, extra_len);
    free(body);
    free(path);
    return r;
}

/* Proxy the request again, to l's upstream; its status replaced by `forced` unless 0. */
static int reproxy(gw_worker_t *w, gw_http_req_t *req, const gw_http_loc_t *l, unsigned forced)
{
    gw_exchange_release_upstream(w, req, 0, 0);
    req->loc = l;
    req->ep_status = (uint16_t)forced;
    req->rt = NULL;
    req->peer = NULL;
    memset(&req->pick, 0, sizeof(req->pick));
    req->tries = 0;
    req->rs_state = GW_RS_NONE;
    req->rs_started = req->up_reused = req->in_1xx = req->up_keepalive = req->up_leftover = req->retried = 0;
    req->err_status = 0;
    return gw_proxy_start(w, req);
}

int gw_answers_error_page(gw_worker_t *w, gw_http_req_t *req, unsigned status)
{
    const gw_error_page_t *ep = NULL;
    const gw_http_ans_t *a;
    unsigned forced;
    size_t len;
    char *target;
    int r;

    if (req->error_page || req->srv == NULL || req->head_sent)
        return GW_ANS_DECLINED;
    a = ans_of(req);
    for (uint32_t i = 0; i < a->nerror_pages && ep == NULL; i++)
        if (a->error_pages[i].status == status)
            ep = &a->error_pages[i];
    if (ep == NULL)
        return GW_ANS_DECLINED;
    req->error_page = 1;
    /* No "=": the original status stays; "=": the target's; "=CODE": CODE. */
    forced = ep->overwrite < 0 ? status : (unsigned)ep->overwrite;
    target = eval(ep->target, req, &len);
    if (target == NULL)
        return GW_ANS_DECLINED;
    if (target[0] == '/') {
        /* nginx turns the request into a GET (a HEAD stays one) for the new URI. */
        r = serve_uri(w, req, target, len, forced);
    } else if (target[0] == '@') {
        const gw_http_loc_t *l = gw_route_named(req->srv, target);

        if (l == NULL) {
            gw_log(GW_LOG_ERR, "could not find named location \"%s\"", target);
            r = gw_answers_plain(w, req, 500);
        } else if (l->ans.ret_code) {
            req->loc = l;
            r = do_return(w, req, &l->ans, forced);
        } else if (forbidden(req, &l->ans)) {
            req->loc = l;
            r = gw_answers_plain(w, req, 403);
        } else if (l->upstream && req->body_bytes == 0 && !gw_exchange_body_pending(req)) {
            r = reproxy(w, req, l, forced);
        } else {
            r = GW_ANS_DECLINED;
        }
    } else {
        r = redirect(w, req, is_redirect(forced) ? forced : 302, target, len);
    }
    free(target);
    return r;
}

int gw_answers_intercepts(const gw_http_req_t *req, unsigned status)
{
    const gw_http_ans_t *a;

    if (status < 300 || req->error_page || req->loc == NULL)
        return 0;
    a = &req->loc->ans;
    if (a->intercept_errors != 2)
        return 0;
    for (uint32_t i = 0; i < a->nerror_pages; i++)
        if (a->error_pages[i].status == status)
            return 1;
    return 0;
}

void gw_answers_header_limits(gw_http_req_t *req)
{
    const gw_http_addr_t *addr = req->client->ctx;
    const gw_http_ans_t *a = &addr->dflt->ans;

    req->in.max_line = a->hdr_buf_size;
    req->in.max_total = a->hdr_buf_n * a->hdr_buf_size;
}
