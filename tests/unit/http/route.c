/*
 * Tests for http/route.c on configurations loaded for real (gw_cycle_load):
 * Host canonicalization, server_name precedence, location precedence
 * (exact, ^~, longest prefix, regexes in order, nested), the trailing-slash
 * redirect, named locations, URI normalization and the URI sent upstream.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cycle.h"
#include "http/route.h"
#include "tests/unit/test.h"

static gw_cycle_t cy;

static int load(const char *http_body)
{
    gw_conf_err_t err;
    char *text;
    int rc;

    if (asprintf(&text, "events { }\nhttp {\n%s\n}\n", http_body) < 0)
        return -1;
    rc = gw_cycle_load(&cy, "/tmp/", "test.conf", text, NULL, &err);
    if (rc < 0)
        fprintf(stderr, "load: %s\n", err.msg);
    free(text);
    return rc;
}

static const char *load_error(const char *http_body)
{
    static gw_conf_err_t err;
    gw_cycle_t c;
    char *text;

    if (asprintf(&text, "events { }\nhttp {\n%s\n}\n", http_body) < 0)
        return "";
    if (gw_cycle_load(&c, "/tmp/", "test.conf", text, NULL, &err) == 0)
        snprintf(err.msg, sizeof(err.msg), "(loaded)");
    gw_cycle_free(&c);
    free(text);
    return err.msg;
}

static const gw_http_addr_t *addr0(void)
{
    return ((gw_http_conf_t *)cy.http)->addrs[0];
}

/* The first server_name of the server a Host goes to. */
static const char *server_for(const char *host)
{
    char buf[256];
    int n = gw_route_host(host, (uint32_t)strlen(host), buf, sizeof(buf));
    const gw_http_srv_t *s = gw_route_server(addr0(), buf, n < 0 ? 0 : (uint32_t)n);

    return s->nnames ? s->names[0] : "(none)";
}

static void test_host(void)
{
    char out[64];
    int n;

    n = gw_route_host("Exact.TEST.:8080", 16, out, sizeof(out));
    CHECK_INT(n, 10);
    CHECK(memcmp(out, "exact.test", 10) == 0);
    n = gw_route_host("[::1]:80", 8, out, sizeof(out));
    CHECK_INT(n, 5);
    CHECK(memcmp(out, "[::1]", 5) == 0);
    CHECK_INT(gw_route_host("a..b", 4, out, sizeof(out)), -1);
    CHECK_INT(gw_route_host("a/b", 3, out, sizeof(out)), -1);
    CHECK_INT(gw_route_host(":80", 3, out, sizeof(out)), -1);
    CHECK_INT(gw_route_host(".", 1, out, sizeof(out)), -1);
    CHECK_INT(gw_route_host("a b", 3, out, sizeof(out)), -1);
    CHECK_INT(gw_route_host(".a.b", 4, out, sizeof(out)), 4);
}

static void test_server_names(void)
{
    if (load("server { listen 127.0.0.1:1; server_name dflt; }\n"
             "server { listen 127.0.0.1:1; server_name exact.test ~^exact; }\n"
             "server { listen 127.0.0.1:1; server_name *.w.test; }\n"
             "server { listen 127.0.0.1:1; server_name *.deep.w.test; }\n"
             "server { listen 127.0.0.1:1; server_name .dot.test; }\n"
             "server { listen 127.0.0.1:1; server_name www.*; }\n"
             "server { listen 127.0.0.1:1; server_name www.long.*; }\n"
             "server { listen 127.0.0.1:1; server_name ~^r\\d+$ ~^ZZ; }\n"
             "server { listen 127.0.0.1:1; server_name \"\"; }\n") < 0) {
        CHECK(0);
        return;
    }
    CHECK_STR(server_for("exact.test"), "exact.test");
    CHECK_STR(server_for("EXACT.test."), "exact.test");
    CHECK_STR(server_for("exactly"), "exact.test"); /* its regex */
    CHECK_STR(server_for("a.w.test"), "*.w.test");
    CHECK_STR(server_for("a.b.w.test"), "*.w.test");
    CHECK_STR(server_for("w.test"), "dflt");
    CHECK_STR(server_for("x.deep.w.test"), "*.deep.w.test");
    CHECK_STR(server_for("deep.w.test"), "*.w.test");
    CHECK_STR(server_for("dot.test"), ".dot.test");
    CHECK_STR(server_for("a.dot.test"), ".dot.test");
    CHECK_STR(server_for("adot.test"), "dflt");
    CHECK_STR(server_for("www.x.org"), "www.*");
    CHECK_STR(server_for("www.long.org"), "www.long.*");
    CHECK_STR(server_for("www"), "dflt");
    CHECK_STR(server_for("r12"), "~^r\\d+$");
    CHECK_STR(server_for("zz-caseless"), "~^r\\d+$");
    CHECK_STR(server_for("r12x"), "dflt");
    CHECK_STR(server_for(""), "");
    gw_cycle_free(&cy);
}

/* Which location a URI lands in: its name, "301:NAME" for the redirect, or "-". */
static const char *loc_for(const char *uri)
{
    static char out[128];
    const gw_http_loc_t *l;
    const gw_http_srv_t *s = addr0()->dflt;
    int rc = gw_route_location(s, uri, (uint32_t)strlen(uri), &l, NULL);

    if (rc == GW_ROUTE_NONE)
        return "-";
    snprintf(out, sizeof(out), "%s%s%s", rc == GW_ROUTE_REDIRECT ? "301:" : "",
             l->kind == GW_LOC_EXACT ? "=" : l->kind == GW_LOC_NOREGEX ? "^~" : l->kind == GW_LOC_REGEX ? "~"
                                                                          : l->kind == GW_LOC_REGEX_CI ? "~*" : "",
             l->match);
    return out;
}

static void test_locations(void)
{
    const gw_http_loc_t *named;

    if (load("server { listen 127.0.0.1:1;\n"
             " location = / { }\n location / { }\n"
             " location /api/ { proxy_pass http://127.0.0.1:9/; }\n"
             " location ^~ /static/ { proxy_pass http://127.0.0.1:9; }\n"
             " location ~ \\.php$ { }\n location ~* \\.(png|jpg)$ { }\n"
             " location /img/ { }\n"
             " location /n/ { location /n/in/ { proxy_pass http://127.0.0.1:9; } location ~ \\.txt$ { } }\n"
             " location = /e { } location /e { }\n"
             " location @fallback { proxy_pass http://127.0.0.1:9; }\n"
             "}\n") < 0) {
        CHECK(0);
        return;
    }
    CHECK_STR(loc_for("/"), "=/");
    CHECK_STR(loc_for("/x"), "/");
    CHECK_STR(loc_for("/api/x"), "/api/");
    CHECK_STR(loc_for("/api"), "301:/api/");
    CHECK_STR(loc_for("/static/a.php"), "^~/static/");
    CHECK_STR(loc_for("/static"), "301:^~/static/");
    CHECK_STR(loc_for("/a.php"), "~\\.php$");
    CHECK_STR(loc_for("/img/a.PNG"), "~*\\.(png|jpg)$");
    CHECK_STR(loc_for("/img/a.gif"), "/img/");
    CHECK_STR(loc_for("/img"), "/");
    CHECK_STR(loc_for("/n/in/x"), "/n/in/");
    CHECK_STR(loc_for("/n/in"), "301:/n/in/");
    CHECK_STR(loc_for("/n/in/a.txt"), "~\\.txt$");
    CHECK_STR(loc_for("/n/a.php"), "~\\.php$");
    CHECK_STR(loc_for("/e"), "=/e");
    CHECK_STR(loc_for("/e/"), "/e");
    CHECK_STR(loc_for("/@fallback"), "/");
    named = gw_route_named(addr0()->dflt, "@fallback");
    CHECK(named && named->kind == GW_LOC_NAMED && named->upstream);
    CHECK(gw_route_named(addr0()->dflt, "@nope") == NULL);
    gw_cycle_free(&cy);
    gw_regex_thread_exit();
}

static const char *norm(const char *in)
{
    static char out[256];
    int n = gw_route_normalize(in, (uint32_t)strlen(in), out);

    if (n < 0)
        return "(400)";
    out[n] = '\0';
    return out;
}

static void test_normalize(void)
{
    CHECK_STR(norm("/"), "/");
    CHECK_STR(norm("/a//b"), "/a/b");
    CHECK_STR(norm("/a/./b"), "/a/b");
    CHECK_STR(norm("/a/../b"), "/b");
    CHECK_STR(norm("/a/b/.."), "/a/");
    CHECK_STR(norm("/a/."), "/a/");
    CHECK_STR(norm("/a/"), "/a/");
    CHECK_STR(norm("/%61%2Fb"), "/a/b");
    CHECK_STR(norm("/a/%2e%2e/c"), "/c");
    CHECK_STR(norm("/..."), "/...");
    CHECK_STR(norm("/a..b/.c"), "/a..b/.c");
    CHECK_STR(norm("/.."), "(400)");
    CHECK_STR(norm("/a/../.."), "(400)");
    CHECK_STR(norm("/%00"), "(400)");
    CHECK_STR(norm("/%zz"), "(400)");
    CHECK_STR(norm("/%4"), "(400)");
    CHECK_INT(gw_route_needs_normalize("/a/b.c", 6), 0);
    CHECK_INT(gw_route_needs_normalize("/a//b", 5), 1);
}

static const char *upstream_uri(const char *match, const char *proxy_uri, const char *raw, const char *uri,
                                const char *query, int quoted)
{
    static char out[512];
    gw_http_loc_t loc = {.match = (char *)match, .match_len = (uint32_t)strlen(match), .proxy_uri = (char *)proxy_uri,
                         .proxy_uri_len = proxy_uri ? (uint32_t)strlen(proxy_uri) : 0};
    gw_route_uri_t u = {raw, (uint32_t)strlen(raw), uri, (uint32_t)strlen(uri), query, (uint32_t)strlen(query), quoted};
    char *end;

    CHECK(gw_route_upstream_uri_size(&loc, &u) < sizeof(out));
    end = gw_route_put_upstream_uri(&loc, &u, out);
    *end = '\0';
    return out;
}

static void test_upstream_uri(void)
{
    CHECK_STR(upstream_uri("/api/", "/", "/api/users", "/api/users", "?x=1", 0), "/users?x=1");
    CHECK_STR(upstream_uri("/api/", NULL, "/api//users", "/api/users", "?x=1", 0), "/api//users?x=1");
    CHECK_STR(upstream_uri("/api/", "/v1/", "/api/a%20b", "/api/a b", "", 1), "/v1/a%20b");
    CHECK_STR(upstream_uri("/api/", "/", "/api/%7e", "/api/~", "", 1), "/~");
    CHECK_STR(upstream_uri("/x", "/y", "/x", "/x", "?q", 0), "/y?q");
    CHECK_STR(upstream_uri("/a/", "/", "/a/%22%7c%21", "/a/\"|!", "", 1), "/%22%7C!");
}

static void test_config_errors(void)
{
    CHECK_CONTAINS(load_error("server { location /a { location /b { } } }"),
                   "location \"/b\" is outside location \"/a\" in test.conf:3");
    CHECK_CONTAINS(load_error("server { location ~ /a { proxy_pass http://127.0.0.1:9/x; } }"),
                   "\"proxy_pass\" cannot have URI part");
    CHECK_CONTAINS(load_error("server { location /a { }\nlocation /a { } }"), "duplicate location \"/a\" in test.conf:4");
    CHECK_CONTAINS(load_error("server { listen 127.0.0.1:1; server_name a; }\n"
                              "server { listen 127.0.0.1:1; server_name a.*.b; }"),
                   "invalid server name or wildcard \"a.*.b\" on 127.0.0.1:1");
    CHECK_STR(load_error("server { listen 127.0.0.1:1; server_name a.*.b; }"), "(loaded)");
}

int main(void)
{
    RUN(test_host);
    RUN(test_server_names);
    RUN(test_locations);
    RUN(test_normalize);
    RUN(test_upstream_uri);
    RUN(test_config_errors);
    gw_regex_thread_exit();
    return gw_test_done();
}
