/*
 * Tests for http/vars.c: the complex-value compiler (literals, $name,
 * ${name}, nginx's errors) and the getters evaluated on parsed requests,
 * including evaluation into a buffer too small (the length is still the
 * whole value, the buffer holds its start).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "core/gw.h"
#include "http/headers.h"
#include "http/request.h"
#include "http/vars.h"
#include "tests/unit/test.h"

static gw_http_addr_t listen_addr;
static gw_http_srv_t server;
static gw_conn_t client;
static char *names[] = {(char *)"srv.example"};

static void setup(void)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&listen_addr.addr.ss;
    gw_conf_err_t err;

    sin->sin_family = AF_INET;
    sin->sin_port = htons(8080);
    inet_pton(AF_INET, "127.0.0.2", &sin->sin_addr);
    listen_addr.addr.len = sizeof(*sin);
    listen_addr.dflt = &server;
    server.names = names;
    server.nnames = 1;
    CHECK_INT(gw_headers_conf_finish(&server, NULL, NULL, &err), 0);
    client.ctx = &listen_addr;
    client.peer.family = AF_INET;
    client.peer.port = 40000;
    inet_pton(AF_INET, "192.0.2.9", client.peer.addr);
    client.number = 77;
    client.requests = 3;
}

static gw_http_req_t *req_of(const char *text)
{
    gw_http_req_t *req = calloc(1, sizeof(*req));
    uint32_t used;

    req->client = &client;
    req->srv = &server;
    gw_request_parser_init(req);
    CHECK_INT(gw_request_parse_head(req, text, (uint32_t)strlen(text), &used), 0);
    return req;
}

static void free_req(gw_http_req_t *req)
{
    gw_msg_free(&req->in);
    free(req);
}

/* Compile `cv`, evaluate it on the request `text`, return the value (static buffer). */
static const char *eval(const char *cv_text, const char *text)
{
    static char out[1024];
    char msg[256] = "";
    gw_cv_t *cv = gw_cv_compile(cv_text, msg, sizeof(msg));
    gw_http_req_t *req;
    size_t n;

    CHECK(cv != NULL);
    if (cv == NULL) {
        fprintf(stderr, "  compile(%s): %s\n", cv_text, msg);
        return "";
    }
    req = req_of(text);
    n = gw_cv_eval(cv, req, out, sizeof(out) - 1);
    out[n < sizeof(out) - 1 ? n : sizeof(out) - 1] = '\0';
    free_req(req);
    gw_cv_free(cv);
    return out;
}

static const char *compile_error(const char *cv_text)
{
    static char msg[256];
    gw_cv_t *cv;

    msg[0] = '\0';
    cv = gw_cv_compile(cv_text, msg, sizeof(msg));
    CHECK(cv == NULL);
    gw_cv_free(cv);
    return msg;
}

static void test_compile(void)
{
    char msg[64];
    gw_cv_t *cv = gw_cv_compile("plain text", msg, sizeof(msg));

    CHECK(cv != NULL && !gw_cv_has_vars(cv));
    gw_cv_free(cv);
    cv = gw_cv_compile("a$host", msg, sizeof(msg));
    CHECK(cv != NULL && gw_cv_has_vars(cv));
    gw_cv_free(cv);
    CHECK_STR(compile_error("$nope"), "unknown \"nope\" variable");
    CHECK_STR(compile_error("x${nope}y"), "unknown \"nope\" variable");
    CHECK_STR(compile_error("a$"), "invalid variable name");
    CHECK_STR(compile_error("a$ b"), "invalid variable name");
    CHECK_STR(compile_error("${host"), "the closing bracket in \"host\" variable is missing");
    CHECK_STR(compile_error("$http_"), "unknown \"http_\" variable");
}

static const char get[] = "GET /p/a?x=1&Name=v HTTP/1.1\r\nHost: Srv.Example.:81\r\nX-Forwarded-For: 10.0.0.1\r\n"
                          "Cookie: a=1; sid=s2\r\nX-Forwarded-For: 10.0.0.2\r\nX_Under: u\r\n\r\n";

static void test_values(void)
{
    CHECK_STR(eval("[$host]", get), "[srv.example]");
    CHECK_STR(eval("${host}x", get), "srv.examplex");
    CHECK_STR(eval("$http_host", get), "Srv.Example.:81");
    CHECK_STR(eval("$request_uri|$uri|$args|$is_args|$arg_name|$arg_x|$arg_none", get),
              "/p/a?x=1&Name=v|/p/a|x=1&Name=v|?|v|1|");
    CHECK_STR(eval("$proxy_add_x_forwarded_for", get), "10.0.0.1, 10.0.0.2, 192.0.2.9");
    CHECK_STR(eval("$http_x_forwarded_for", get), "10.0.0.1, 10.0.0.2");
    CHECK_STR(eval("$cookie_sid/$cookie_a/$cookie_none", get), "s2/1/");
    CHECK_STR(eval("$remote_addr:$remote_port", get), "192.0.2.9:40000");
    CHECK_STR(eval("$server_addr:$server_port $server_name", get), "127.0.0.2:8080 srv.example");
    CHECK_STR(eval("$connection $connection_requests", get), "77 3");
    CHECK_STR(eval("$request_method $server_protocol $scheme", get), "GET HTTP/1.1 http");
    /* underscores_in_headers off: X_Under is ignored, $http_x_under sees nothing */
    CHECK_STR(eval("<$http_x_under>", get), "<>");
    /* absolute-form */
    CHECK_STR(eval("$host $request_uri", "GET http://Abs.Example:9/q?z HTTP/1.1\r\nHost: other\r\n\r\n"),
              "abs.example /q?z");
    /* no Host at all: the server's name */
    CHECK_STR(eval("$host", "GET / HTTP/1.0\r\n\r\n"), "srv.example");
    CHECK_STR(eval("$is_args", "GET /p? HTTP/1.1\r\nHost: h\r\n\r\n"), "");
    CHECK_INT(strlen(eval("$request_id", get)), 32);
    CHECK_INT(strspn(eval("$request_id", get), "0123456789abcdef"), 32);
}

static void test_small_buffer(void)
{
    char msg[64], out[4];
    gw_cv_t *cv = gw_cv_compile("$host-$host", msg, sizeof(msg));
    gw_http_req_t *req = req_of(get);

    CHECK_INT(gw_cv_eval(cv, req, out, sizeof(out)), 23);
    CHECK(memcmp(out, "srv.", 4) == 0);
    CHECK_INT(gw_cv_eval(cv, req, NULL, 0), 23);
    free_req(req);
    gw_cv_free(cv);
}

static void test_request_id_is_stable_within_a_request(void)
{
    char msg[64], a[40], b[40];
    gw_cv_t *cv = gw_cv_compile("$request_id", msg, sizeof(msg));
    gw_http_req_t *req = req_of(get), *other = req_of(get);

    gw_cv_eval(cv, req, a, sizeof(a));
    gw_cv_eval(cv, req, b, sizeof(b));
    CHECK(memcmp(a, b, 32) == 0);
    gw_cv_eval(cv, other, b, sizeof(b));
    CHECK(memcmp(a, b, 32) != 0);
    free_req(req);
    free_req(other);
    gw_cv_free(cv);
}

int main(void)
{
    setup();
    RUN(test_compile);
    RUN(test_values);
    RUN(test_small_buffer);
    RUN(test_request_id_is_stable_within_a_request);
    gw_headers_conf_free(server.hconf);
    return gw_test_done();
}
