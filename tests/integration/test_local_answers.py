"""Answers the gateway gives itself, and its limits, as nginx gives them:
return (text, redirects, 444), allow/deny, error_page (files under root,
locations with return, URLs, named locations), internal,
proxy_intercept_errors, large_client_header_buffers, keepalive_requests and
proxy_send_timeout. Bodies are compared exactly: nginx's pages differ from
ours only in the server's name at their foot."""

import email.utils
import http.client
import json
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import NGINX, PROG, free_port, write_config
from rawhttp import Conn, exchange

SIGNATURE = "nginx/1.22.1" if NGINX else "gateway/0.1.0"

TITLES = {301: "Moved Permanently", 302: "Found", 303: "See Other", 307: "Temporary Redirect",
          308: "Permanent Redirect", 403: "Forbidden", 404: "Not Found", 502: "Bad Gateway",
          503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}
REASONS = {**TITLES, 302: "Moved Temporarily", 200: "OK"}


def page(status):
    """nginx's built-in page for status."""
    title = "%d %s" % (status, TITLES[status])
    return ("<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n"
            "<hr><center>%s</center>\r\n</body>\r\n</html>\r\n" % (title, title, SIGNATURE)).encode()


def request(gw, target, host="h.test", method="GET", headers=(), via="127.0.0.1"):
    with Conn(gw.port, host=via) as c:
        return c.request(method, target, headers=headers, host=host)


def assert_page(r, status, location=None):
    assert (r.status, r.reason) == (status, REASONS[status])
    assert r.header("Content-Type") == "text/html"
    assert r.body == page(status)
    assert r.header("Location") == location


HEAD = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 64; }
"""

# ---- return -------------------------------------------------------------

RETURNS = HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        location /text { return 200 "hello $host $request_uri\\n"; }
        location /empty { return 200; }
        location /teapot { return 418; }
        location /nocontent { return 204; }
        location /notfound { return 404; }
        location /custom404 { return 404 "not here\\n"; }
        location /r301 { return 301 https://$host$request_uri; }
        location /r302 { return 302 http://example.com/302; }
        location /r303 { return 303 http://example.com/303; }
        location /r307 { return 307 http://example.com/307; }
        location /r308 { return 308 http://example.com/308; }
        location /bare { return http://example.com/bare; }
        location /relative { return 302 /new/place?x=1; }
        location /close { return 444; }
        location / { proxy_pass http://127.0.0.1:{b0}; }
    }
}
"""


@pytest.fixture
def returns(backends, gateway):
    b0, = backends(1)
    return gateway(RETURNS, [b0]), b0


def test_return_text_with_variables(returns):
    gw, b0 = returns
    r = request(gw, "/text?a=1")
    assert (r.status, r.reason) == (200, "OK")
    assert r.header("Content-Type") == "text/plain"
    assert r.body == b"hello h.test /text?a=1\n"
    assert r.header("Content-Length") == str(len(r.body))
    assert b0.requests_seen == 0


def test_return_code_without_text(returns):
    gw, _ = returns
    r = request(gw, "/empty")
    assert (r.status, r.header("Content-Type"), r.header("Content-Length"), r.body) == (200, "text/plain", "0", b"")
    r = request(gw, "/teapot")
    assert (r.status, r.reason, r.header("Content-Type"), r.header("Content-Length")) == (418, "", None, "0")
    r = request(gw, "/nocontent")
    assert (r.status, r.header("Content-Type"), r.header("Content-Length"), r.body) == (204, None, None, b"")


def test_return_error_code_gives_the_builtin_page(returns):
    gw, _ = returns
    assert_page(request(gw, "/notfound"), 404)


def test_return_error_code_with_text(returns):
    gw, _ = returns
    r = request(gw, "/custom404")
    assert (r.status, r.header("Content-Type"), r.body) == (404, "text/plain", b"not here\n")


def test_return_301_to_https_host_request_uri(returns):
    gw, _ = returns
    assert_page(request(gw, "/r301/a?b=c", host="www.example.org:8080"), 301,
                location="https://www.example.org/r301/a?b=c")


@pytest.mark.parametrize("code", [302, 303, 307, 308])
def test_return_redirect_codes(returns, code):
    gw, _ = returns
    assert_page(request(gw, "/r%d" % code), code, location="http://example.com/%d" % code)


def test_return_url_alone_is_a_302(returns):
    gw, _ = returns
    assert_page(request(gw, "/bare"), 302, location="http://example.com/bare")


def test_relative_redirect_is_made_absolute(returns):
    gw, _ = returns
    assert_page(request(gw, "/relative", host="h.test:1234"), 302,
                location="http://h.test:%d/new/place?x=1" % gw.port)


def test_head_gets_the_head_only(returns):
    gw, _ = returns
    r = request(gw, "/text", method="HEAD")
    assert (r.status, r.header("Content-Length"), r.body) == (200, "19", b"")


def test_return_keeps_the_connection(returns):
    gw, b0 = returns
    with Conn(gw.port) as c:
        assert c.get("/text").status == 200
        assert c.get("/r301").status == 301
        assert c.get("/notfound").status == 404
        assert c.get("/").status == 200
        assert c.closed_by_peer(timeout=0.3) is False
    assert b0.requests_seen == 1


def test_return_444_closes_without_a_response(returns):
    gw, b0 = returns
    with Conn(gw.port) as c:
        c.send(b"GET /close HTTP/1.1\r\nHost: h.test\r\n\r\n")
        assert c.closed_by_peer() is True
        assert bytes(c.buf) == b""
    assert request(gw, "/").status == 200  # the others carry on


SERVER_RETURN = HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        return 301 https://$host$request_uri;
        location / { proxy_pass http://127.0.0.1:{b0}; }
        location /x { return 200 "location\\n"; }
    }
}
"""


def test_server_level_return_runs_before_locations(backends, gateway):
    b0, = backends(1)
    gw = gateway(SERVER_RETURN, [b0])
    assert_page(request(gw, "/x?y", host="example.net"), 301, location="https://example.net/x?y")
    assert_page(request(gw, "/"), 301, location="https://h.test/")
    assert b0.requests_seen == 0


TOKENS = HEAD + """
http {
    server_tokens off;
    add_header X-Plain plain;
    add_header X-Always always always;
    server {
        listen 127.0.0.1:{port};
        location /ok { return 200 "ok\\n"; }
        location /moved { return 301 http://example.com/; }
        location /missing { return 404; }
    }
}
"""


def test_our_answers_carry_date_server_tokens_and_add_header(gateway):
    gw = gateway(TOKENS)
    bare = "nginx" if NGINX else "gateway"
    r = request(gw, "/ok")
    assert (r.status, r.header("Server"), r.header("X-Plain"), r.header("X-Always")) == (200, bare, "plain", "always")
    assert r.header("Date", "").endswith(" GMT")
    r = request(gw, "/moved")
    assert (r.status, r.header("X-Plain"), r.header("X-Always")) == (301, "plain", "always")
    r = request(gw, "/missing")
    assert (r.status, r.header("Server"), r.header("X-Plain"), r.header("X-Always")) == (404, bare, None, "always")
    assert r.body.endswith(b"<hr><center>" + bare.encode() + b"</center>\r\n</body>\r\n</html>\r\n")


TLS_REDIRECT = HEAD + """
http {
    server {
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {prefix}/t.crt;
        ssl_certificate_key {prefix}/t.key;
        location / { return 302 /elsewhere; }
    }
}
"""


def test_relative_redirect_over_tls_is_https(gateway, tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=t.test",
                    "-keyout", str(tmp_path / "t.key"), "-out", str(tmp_path / "t.crt")],
                   check=True, capture_output=True)
    gw = gateway(TLS_REDIRECT, files={name: (tmp_path / name).read_text() for name in ("t.key", "t.crt")})
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", gw.port, timeout=10, context=ctx)
    conn.request("GET", "/x", headers={"Host": "t.test"})
    r = conn.getresponse()
    assert (r.status, r.getheader("Location")) == (302, "https://t.test:%d/elsewhere" % gw.port)
    conn.close()


# ---- allow / deny -----------------------------------------------------------

ACCESS = HEAD + """
http {
    deny 10.0.0.0/8;
    server {
        listen 127.0.0.1:{port};
        listen [::1]:{port};
        location /inherited { proxy_pass http://127.0.0.1:{b0}; }
        location /denyall { deny all; proxy_pass http://127.0.0.1:{b0}; }
        location /first { allow 127.0.0.1; deny all; proxy_pass http://127.0.0.1:{b0}; }
        location /cidr { deny 127.0.0.0/8; allow all; proxy_pass http://127.0.0.1:{b0}; }
        location /other { allow 10.1.2.3; allow 192.168.0.0/16; deny all; proxy_pass http://127.0.0.1:{b0}; }
        location /v6 { allow ::1; deny all; proxy_pass http://127.0.0.1:{b0}; }
        location /v6net { deny ::/0; proxy_pass http://127.0.0.1:{b0}; }
        location /returned { deny all; return 200 "return comes first\\n"; }
    }
    server {
        listen 127.0.0.2:{port};
        deny all;
        location / { proxy_pass http://127.0.0.1:{b0}; }
        location /open { allow 127.0.0.2; proxy_pass http://127.0.0.1:{b0}; }
    }
}
"""


@pytest.fixture
def access(backends, gateway):
    b0, = backends(1)
    return gateway(ACCESS, [b0]), b0


@pytest.mark.parametrize("path,allowed", [
    ("/inherited", True), ("/denyall", False), ("/first", True), ("/cidr", False), ("/other", False),
    ("/v6", False), ("/v6net", True)])
def test_allow_deny_ipv4(access, path, allowed):
    gw, b0 = access
    r = request(gw, path)
    if allowed:
        assert r.status == 200 and r.header("X-Backend") == "b0"
    else:
        assert_page(r, 403)


@pytest.mark.parametrize("path,allowed", [("/v6", True), ("/v6net", False), ("/first", False), ("/denyall", False),
                                          ("/inherited", True)])
def test_allow_deny_ipv6(access, path, allowed):
    gw, b0 = access
    r = request(gw, path, via="::1")
    if allowed:
        assert r.status == 200 and r.header("X-Backend") == "b0"
    else:
        assert_page(r, 403)


def test_a_location_return_is_not_subject_to_deny(access):
    """nginx runs return (rewrite phase) before allow/deny (access phase)."""
    gw, _ = access
    r = request(gw, "/returned")
    assert (r.status, r.body) == (200, b"return comes first\n")


def test_rules_are_inherited_only_by_levels_without_their_own(access):
    gw, b0 = access
    with Conn(gw.port, host="127.0.0.2") as c:
        assert_page(c.get("/"), 403)
        r = c.get("/open")
        assert r.status == 200 and r.header("X-Backend") == "b0"
    assert b0.requests_seen == 1


def test_forbidden_keeps_the_connection(access):
    gw, b0 = access
    with Conn(gw.port) as c:
        assert c.get("/denyall").status == 403
        assert c.get("/first").status == 200
        assert c.closed_by_peer(timeout=0.3) is False


DENIED_PAGES = HEAD + """
http {
    root {prefix}/html;
    server {
        listen 127.0.0.1:{port};
        deny all;
        error_page 403 /403.html;
        location / { proxy_pass http://127.0.0.1:{b0}; }
        location = /403.html { allow all; }
        location /open/ { allow all; error_page 404 /404.html; return 404; }
        location /named/ { allow all; error_page 502 @closed; proxy_pass http://127.0.0.1:{dead}; }
        location @closed { deny all; proxy_pass http://127.0.0.1:{b0}; }
    }
    server {
        listen 127.0.0.2:{port};
        deny all;
        error_page 403 /403.html;
        location / { proxy_pass http://127.0.0.1:{b0}; }
    }
}
"""


def test_error_page_targets_meet_allow_and_deny(backends, gateway):
    """nginx's access phase runs again for an internal redirect."""
    b0, = backends(1)
    gw = gateway(DENIED_PAGES, [b0], files=dict(PAGES, **{"html/403.html": "<p>custom 403</p>\n"}))
    r = request(gw, "/")
    assert (r.status, r.body) == (403, b"<p>custom 403</p>\n")   # the page's own location allows
    assert_page(request(gw, "/open/x"), 403)                       # /404.html falls in the denied "/"
    assert (request(gw, "/named/x").status, b0.requests_seen) == (403, 0)
    with Conn(gw.port, host="127.0.0.2") as c:
        assert_page(c.get("/"), 403)                               # nothing allows the page itself


# ---- error_page -------------------------------------------------------------

PAGES = {"html/404.html": "<h1>custom 404</h1>\n", "html/50x.txt": "oops\n", "errors/e.html": "<p>from errors</p>\n"}

ERROR_PAGES = HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        root {prefix}/html;
        error_page 404 /404.html;
        location /kept { return 404; }
        location /to200 { error_page 404 =200 /404.html; return 404; }
        location /totarget { error_page 404 = /50x.txt; return 404; }
        location /tourl { error_page 404 http://example.com/nf; return 404; }
        location /tourl301 { error_page 404 =301 http://example.com/nf; return 404; }
        location /missing { error_page 404 /nothing.html; return 404; }
        location /dead { error_page 502 504 /50x.txt; proxy_pass http://127.0.0.1:{dead}; }
        location /dead-own-root { error_page 502 /e.html; proxy_pass http://127.0.0.1:{dead}; }
        location = /e.html { root {prefix}/errors; }
        location /to-internal { error_page 404 /internal/x; return 404; }
        location /internal/ { internal; return 200 "internal answer\\n"; }
        location /forbidden { error_page 403 =200 /internal/y; deny all; proxy_pass http://127.0.0.1:{b0}; }
        location /none { proxy_pass http://127.0.0.1:{b0}; }
        location /dead-proxied { error_page 502 /headers?from=dead; proxy_pass http://127.0.0.1:{dead}; }
        location /dead-replaced { error_page 502 =203 /fb/headers; proxy_pass http://127.0.0.1:{dead}; }
        location /headers { proxy_pass http://127.0.0.1:{b0}; }
        location /fb/ { proxy_pass http://127.0.0.1:{b0}/; }
        location /small { client_max_body_size 10; error_page 413 /50x.txt; proxy_pass http://127.0.0.1:{b0}; }
    }
}
"""


@pytest.fixture
def pages(backends, gateway):
    b0, = backends(1)
    return gateway(ERROR_PAGES, [b0], files=PAGES), b0


def test_error_page_file_keeps_the_status(pages):
    gw, _ = pages
    r = request(gw, "/kept")
    assert (r.status, r.header("Content-Type"), r.body) == (404, "text/html", b"<h1>custom 404</h1>\n")


def test_error_page_with_equals_code(pages):
    gw, _ = pages
    r = request(gw, "/to200")
    assert (r.status, r.reason, r.header("Content-Type"), r.body) == (200, "OK", "text/html",
                                                                       b"<h1>custom 404</h1>\n")


def test_error_page_files_carry_nginx_validators(pages):
    """ETag ("mtime-size" in hex) always; Last-Modified and Accept-Ranges on a 200 only."""
    gw, _ = pages
    st = os.stat(gw.prefix / "html" / "404.html")
    etag = '"%x-%x"' % (int(st.st_mtime), st.st_size)
    r = request(gw, "/to200")
    assert (r.header("ETag"), r.header("Accept-Ranges")) == (etag, "bytes")
    assert r.header("Last-Modified") == email.utils.formatdate(int(st.st_mtime), usegmt=True)
    r = request(gw, "/kept")
    assert (r.status, r.header("ETag"), r.header("Accept-Ranges"), r.header("Last-Modified")) == (404, etag, None, None)


def test_error_page_with_bare_equals_takes_the_targets_status(pages):
    gw, _ = pages
    r = request(gw, "/totarget")
    assert (r.status, r.header("Content-Type"), r.body) == (200, "text/plain", b"oops\n")


def test_error_page_to_a_url_redirects(pages):
    gw, _ = pages
    assert_page(request(gw, "/tourl"), 302, location="http://example.com/nf")
    assert_page(request(gw, "/tourl301"), 301, location="http://example.com/nf")


def test_error_page_to_a_missing_file_gives_the_builtin_page(pages):
    gw, _ = pages
    assert_page(request(gw, "/missing"), 404)


def test_error_page_for_an_unreachable_upstream(pages):
    gw, _ = pages
    r = request(gw, "/dead")
    assert (r.status, r.reason, r.header("Content-Type"), r.body) == (502, "Bad Gateway", "text/plain", b"oops\n")


def test_error_page_file_from_the_target_locations_root(pages):
    gw, _ = pages
    r = request(gw, "/dead-own-root")
    assert (r.status, r.header("Content-Type"), r.body) == (502, "text/html", b"<p>from errors</p>\n")


def test_error_page_to_a_location_with_return(pages):
    gw, _ = pages
    r = request(gw, "/to-internal")
    assert (r.status, r.header("Content-Type"), r.body) == (404, "text/plain", b"internal answer\n")
    r = request(gw, "/forbidden")
    assert (r.status, r.body) == (200, b"internal answer\n")


def test_error_page_to_a_location_that_proxies(pages):
    """nginx's internal redirect: a GET of the new URI (its own query, not the client's)."""
    gw, b0 = pages
    with Conn(gw.port) as c:
        r = c.request("POST", "/dead-proxied?a=b", body=b"")
        assert (r.status, r.reason, r.header("X-Backend")) == (502, "Bad Gateway", "b0")
        got = json.loads(r.body)
        assert (got["method"], got["target"]) == ("GET", "/headers?from=dead")
        r = c.get("/dead-replaced?a=b")
        assert (r.status, r.header("X-Backend")) == (203, "b0")
        got = json.loads(r.body)
        assert (got["method"], got["target"]) == ("GET", "/headers")
    assert b0.requests_seen == 2


def test_error_page_for_a_body_too_large(pages):
    gw, b0 = pages
    with Conn(gw.port) as c:
        r = c.request("POST", "/small", body=b"x" * 100)
        assert (r.status, r.header("Content-Type"), r.body) == (413, "text/plain", b"oops\n")
    assert b0.requests_seen == 0


def test_internal_location_is_404_to_a_direct_request(pages):
    gw, _ = pages
    r = request(gw, "/internal/x")
    assert (r.status, r.header("Content-Type"), r.body) == (404, "text/html", b"<h1>custom 404</h1>\n")


def test_error_page_inherited_from_the_server(pages):
    gw, b0 = pages
    r = request(gw, "/nowhere-at-all")  # no location: the server's 404 and its error_page
    assert (r.status, r.body) == (404, b"<h1>custom 404</h1>\n")


def test_error_pages_keep_the_connection(pages):
    gw, _ = pages
    with Conn(gw.port) as c:
        assert c.get("/kept").status == 404
        assert c.get("/dead").status == 502
        assert c.get("/tourl").status == 302
        assert c.closed_by_peer(timeout=0.3) is False


NAMED = HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        location /target/ { error_page 502 503 = @fallback; proxy_pass http://127.0.0.1:{dead}; }
        location /kept/ { error_page 502 @fallback; proxy_pass http://127.0.0.1:{dead}; }
        location /forced/ { error_page 502 =200 @fallback; proxy_pass http://127.0.0.1:{dead}; }
        location /intercepted/ {
            proxy_intercept_errors on;
            error_page 503 = @fallback;
            proxy_pass http://127.0.0.1:{b0};
        }
        location /returned/ { error_page 404 @answer; return 404; }
        location @fallback { proxy_pass http://127.0.0.1:{b1}; }
        location @answer { return 200 "from a named location\\n"; }
    }
}
"""


@pytest.fixture
def named(backends, gateway):
    b0, = backends(1, respond_as="/status/503")
    b1, = backends(1, respond_as="/status/201")
    return gateway(NAMED, [b0, b1]), b0, b1


def test_error_page_to_a_named_location_with_bare_equals(named):
    gw, _, b1 = named
    r = request(gw, "/target/x?y=1")
    assert (r.status, r.reason, r.header("X-Backend"), r.body) == (201, "Created", "b1", b"status 201\n")
    assert b1.requests_seen == 1


def test_error_page_to_a_named_location_keeps_the_status(named):
    gw, _, _ = named
    r = request(gw, "/kept/x")
    assert (r.status, r.reason, r.header("X-Backend"), r.body) == (502, "Bad Gateway", "b1", b"status 201\n")
    r = request(gw, "/forced/x")
    assert (r.status, r.reason, r.header("X-Backend"), r.body) == (200, "OK", "b1", b"status 201\n")


def test_intercepted_upstream_error_to_a_named_location(named):
    gw, b0, b1 = named
    with Conn(gw.port) as c:
        r = c.get("/intercepted/a")
        assert (r.status, r.header("X-Backend"), r.body) == (201, "b1", b"status 201\n")
        r = c.get("/intercepted/b")
        assert (r.status, r.header("X-Backend")) == (201, "b1")
    assert (b0.requests_seen, b1.requests_seen) == (2, 2)


def test_error_page_to_a_named_location_with_return(named):
    gw, _, _ = named
    r = request(gw, "/returned/")
    assert (r.status, r.header("Content-Type"), r.body) == (404, "text/plain", b"from a named location\n")


SEED_PATTERNS = HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        location / { proxy_pass http://127.0.0.1:{dead}; }
        location ~ /\\. { deny all; return 404; }
        location /nginx_status { stub_status on; allow 127.0.0.1; deny all; }
        location /private_status { stub_status on; allow 10.0.0.1; deny all; }
        error_page 502 503 504 /custom_502.html;
        location = /custom_502.html { root {prefix}/error-pages; internal; }
    }
}
"""


def test_the_guides_patterns(gateway):
    """As the reverse-proxy guides write them: a custom 502 page from its own
    root, internal; hidden files answered 404 (return comes before deny);
    a status page for localhost only."""
    page = "<h1>We'll Be Right Back</h1>\n"
    gw = gateway(SEED_PATTERNS, files={"error-pages/custom_502.html": page})
    with Conn(gw.port) as c:
        r = c.get("/app")
        assert (r.status, r.header("Content-Type"), r.body) == (502, "text/html", page.encode())
        assert_page(c.get("/.git/config"), 404)
        assert_page(c.get("/custom_502.html"), 404)
        r = c.get("/nginx_status")
        assert r.status == 200 and r.body.startswith(b"Active connections:")
        assert_page(c.get("/private_status"), 403)


# ---- proxy_intercept_errors --------------------------------------------------

INTERCEPT = HEAD + """
http {
    root {prefix}/html;
    error_page 404 /404.html;
    server {
        listen 127.0.0.1:{port};
        location /on/ { proxy_intercept_errors on; proxy_pass http://127.0.0.1:{b0}/; }
        location /off/ { proxy_pass http://127.0.0.1:{b0}/; }
    }
}
"""


def test_proxy_intercept_errors(backends, gateway):
    b0, = backends(1)
    gw = gateway(INTERCEPT, [b0], files=PAGES)
    with Conn(gw.port) as c:
        r = c.get("/on/status/404")
        assert (r.status, r.header("X-Backend"), r.body) == (404, None, b"<h1>custom 404</h1>\n")
        r = c.get("/on/status/500")  # no error_page for 500: passed through
        assert (r.status, r.header("X-Backend"), r.body) == (500, "b0", b"status 500\n")
        r = c.get("/off/status/404")
        assert (r.status, r.header("X-Backend"), r.body) == (404, "b0", b"status 404\n")
        r = c.get("/on/status/200")
        assert (r.status, r.header("X-Backend")) == (200, "b0")
    assert b0.requests_seen == 4


# ---- limits ---------------------------------------------------------------------

LIMITS = HEAD + """
http {
    large_client_header_buffers 2 1k;
    keepalive_requests 3;
    server {
        listen 127.0.0.1:{port};
        location / { proxy_pass http://127.0.0.1:{b0}; }
    }
}
"""


@pytest.fixture
def limits(backends, gateway):
    b0, = backends(1)
    return gateway(LIMITS, [b0]), b0


def test_large_client_header_buffers_request_line(limits):
    gw, b0 = limits
    r, closed = exchange(gw.port, b"GET /" + b"a" * 1500 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (r.status, closed) == (414, True)
    r = request(gw, "/" + "a" * 700, headers=[("X-Fine", "b" * 700)])
    assert r.status == 200
    assert b0.requests_seen == 1


@pytest.mark.gateway_only("nginx answers 400 (Request Header Or Cookie Too Large) where we answer 431")
def test_large_client_header_buffers_header_line_and_total(limits):
    gw, b0 = limits
    r, closed = exchange(gw.port, b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + b"b" * 1500 + b"\r\n\r\n")
    assert (r.status, closed) == (431, True)
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"c" * 800) for i in range(3))
    r, closed = exchange(gw.port, b"GET / HTTP/1.1\r\nHost: h\r\n" + many + b"\r\n")
    assert (r.status, closed) == (431, True)
    assert b0.requests_seen == 0


def test_keepalive_requests(limits):
    gw, b0 = limits
    with Conn(gw.port) as c:
        for i in range(2):
            r = c.get("/")
            assert r.status == 200 and "close" not in r.connection_tokens()
        r = c.get("/")
        assert r.status == 200 and "close" in r.connection_tokens()
        assert c.closed_by_peer() is True


# ---- proxy_send_timeout ----------------------------------------------------------

SEND_TIMEOUT = HEAD + """
http {
    client_max_body_size 0;
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_send_timeout 1s;
            proxy_read_timeout 60s;
            proxy_pass http://127.0.0.1:{sink};
        }
    }
}
"""


def test_proxy_send_timeout_when_the_upstream_stops_reading(gateway):
    """The upstream accepts and never reads: once the socket buffers are full,
    proxy_send_timeout (not proxy_read_timeout) ends the wait with a 504."""
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(lsock.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        gw = gateway(SEND_TIMEOUT, sink=lsock.getsockname()[1])
        size = 64 * 1024 * 1024
        with Conn(gw.port, timeout=30) as c:
            c.send(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % size)

            def feed():
                chunk = b"x" * 65536
                try:
                    for _ in range(size // len(chunk)):
                        c.sock.sendall(chunk)
                except OSError:
                    pass

            sender = threading.Thread(target=feed, daemon=True)
            sender.start()
            r = c.read_response()
            assert r.status == 504
        if not NGINX:
            assert "while sending request to upstream" in (gw.prefix / "logs" / "error.log").read_text()
    finally:
        stop.set()
        t.join()
        for s in held:
            s.close()
        lsock.close()


# ---- configuration errors ---------------------------------------------------------

BAD = {
    "return abc;": 'invalid return code "abc"',
    "return 1000;": 'invalid return code "1000"',
    "return 200 a b;": 'invalid number of arguments in "return" directive',
    "error_page 200 /x;": 'value "200" must be between 300 and 599',
    "error_page 499 /x;": 'invalid value "499"',
    "error_page abc /x;": 'invalid value "abc"',
    "error_page 404 =abc /x;": 'invalid value "=abc"',
    "error_page = /x;": 'invalid value "="',
    "error_page 404;": 'invalid number of arguments in "error_page" directive',
    "allow foo;": 'invalid parameter "foo"',
    "deny 10.0.0.0/33;": 'invalid parameter "10.0.0.0/33"',
    "deny ::1/129;": 'invalid parameter "::1/129"',
    "internal 1;": 'invalid number of arguments in "internal" directive',
    "root /a; root /b;": '"root" directive is duplicate',
    "proxy_intercept_errors maybe;":
        'invalid value "maybe" in "proxy_intercept_errors" directive, it must be "on" or "off"',
    "large_client_header_buffers 4 8k;": '"large_client_header_buffers" directive is not allowed here',
}


@pytest.mark.parametrize("directive", list(BAD))
def test_bad_directives_are_named_with_file_and_line(cli, tmp_path, directive):
    config = HEAD + "http {\n    server {\n        listen 127.0.0.1:{port};\n        location / {\n            " + \
        directive + "\n        }\n    }\n}\n"
    conf = write_config(tmp_path, config, None, {"port": free_port()})
    line = config.splitlines().index("            " + directive) + 1
    res = cli("-p", str(tmp_path), "-c", conf, "-t")
    assert res.returncode != 0, res.output
    emerg = [ln for ln in res.stderr.splitlines() if ln.startswith("%s: [emerg] " % PROG)]
    assert emerg, res.stderr
    assert emerg[0] == "%s: [emerg] %s in %s:%d" % (PROG, BAD[directive], conf, line)


@pytest.mark.parametrize("directive", ["large_client_header_buffers 0 8k;", "large_client_header_buffers 4 x;"])
def test_bad_header_buffers(cli, tmp_path, directive):
    config = HEAD + "http {\n    " + directive + "\n}\n"
    conf = write_config(tmp_path, config, None, {})
    res = cli("-p", str(tmp_path), "-c", conf, "-t")
    assert res.returncode != 0, res.output
    assert '%s: [emerg] "large_client_header_buffers" directive invalid value in %s:%d' % (
        PROG, conf, config.splitlines().index("    " + directive) + 1) in res.stderr


# ---- what the access log says ------------------------------------------------------

LOGGED = HEAD + """
http {
    log_format st '$status $request';
    server {
        listen 127.0.0.1:{port};
        root {prefix}/html;
        access_log logs/st.log st;
        location /close { return 444; }
        location /moved { return 301 http://example.com/; }
        location /denied { deny all; proxy_pass http://127.0.0.1:{b0}; }
        location /page { error_page 404 =200 /404.html; return 404; }
        location / { proxy_pass http://127.0.0.1:{b0}; }
    }
}
"""


def test_access_log_has_our_statuses(backends, gateway):
    b0, = backends(1)
    gw = gateway(LOGGED, [b0], files=PAGES)
    with Conn(gw.port) as c:
        c.send(b"GET /close HTTP/1.1\r\nHost: h\r\n\r\n")
        assert c.closed_by_peer() is True
    with Conn(gw.port) as c:
        assert [c.get(t).status for t in ("/moved", "/denied", "/page", "/")] == [301, 403, 200, 200]
    path = gw.prefix / "logs" / "st.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(path.read_text().splitlines() if path.exists() else []) < 5:
        time.sleep(0.05)
    assert path.read_text().splitlines() == ["444 GET /close HTTP/1.1", "301 GET /moved HTTP/1.1",
                                             "403 GET /denied HTTP/1.1", "200 GET /page HTTP/1.1",
                                             "200 GET / HTTP/1.1"]
