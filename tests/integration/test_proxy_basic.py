"""Proxying the ordinary things: methods, request and response bodies, status
codes without a body, what reaches the backend and what does not."""

import hashlib
import json
import time

import pytest

from backend import deterministic_bytes
from rawhttp import chunked

ONE_BACKEND = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}
"""


def stream(n, seed=0):
    return b"".join(deterministic_bytes(n, seed))


def test_get_is_answered_by_the_backend(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    r = gw.get("/")

    assert r.status == 200
    assert r.header("X-Backend") == "b0"
    assert r.body == b"backend b0\n"
    assert b0.requests_seen == 1


def test_request_target_and_method_reach_the_backend_unchanged(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    r = gw.get("/echo?a=1&b=%20x&c=/slash")

    assert r.status == 200
    assert r.header("X-Method") == "GET"
    assert r.header("X-Uri") == "/echo?a=1&b=%20x&c=/slash"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_proxied(backends, gateway, method):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    with gw.conn() as c:
        r = c.request(method, "/echo", body=b"payload")

    assert r.status == 200
    assert r.header("X-Method") == method
    assert r.body == b"payload"


def test_head_gets_the_headers_but_no_body(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    with gw.conn() as c:
        head = c.request("HEAD", "/bytes?n=5000")
        # Had any body bytes followed the HEAD response, this would read them as a status line.
        after = c.request("GET", "/")

    assert head.status == 200
    assert head.body == b""
    assert head.header("Content-Length") == "5000"
    assert after.status == 200
    assert after.body == b"backend b0\n"


def test_post_with_content_length_arrives_intact(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])
    body = stream(100 * 1024, seed=1)

    with gw.conn() as c:
        r = c.request("POST", "/echo", body=body)

    assert r.status == 200
    assert r.header("X-Method") == "POST"
    assert r.header("X-Body-Len") == str(len(body))
    assert r.header("X-Body-Sha256") == hashlib.sha256(body).hexdigest()
    assert r.body == body


def test_post_with_chunked_body_arrives_intact(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])
    data = stream(1 + 7 + 4096 + 65539 + 2, seed=2)
    pieces = [data[:1], data[1:8], data[8:4104], data[4104:69643], data[69643:]]
    head = b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"

    with gw.conn() as c:
        c.send(head + chunked(pieces))
        r = c.read_response()

    assert r.status == 200
    assert r.header("X-Body-Len") == str(len(data))
    assert r.header("X-Body-Sha256") == hashlib.sha256(data).hexdigest()
    assert r.body == data


def test_chunked_body_with_extensions_and_trailer_arrives_intact(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])
    request = (b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;name=value\r\nhello\r\n"
               b"6\r\n world\r\n"
               b"0\r\nX-Trailer: yes\r\n\r\n")

    with gw.conn() as c:
        c.send(request)
        r = c.read_response()

    assert r.status == 200
    assert r.body == b"hello world"


def test_post_with_empty_body(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    with gw.conn() as c:
        r = c.request("POST", "/echo", headers=[("Content-Length", "0")])

    assert r.status == 200
    assert r.header("X-Body-Len") == "0"
    assert r.body == b""


def test_chunked_response_arrives_intact(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    r = gw.get("/chunked?n=20&size=1000&seed=3")

    assert r.status == 200
    assert r.body == stream(20 * 1000, seed=3)


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_response_body_arrives_intact_whatever_the_backend_framing(backends, gateway, framing):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    r = gw.get("/bytes?n=1048576&seed=4&framing=%s" % framing)

    assert r.status == 200
    assert len(r.body) == 1048576
    assert r.body == stream(1048576, seed=4)


def test_response_is_streamed_not_buffered_whole(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    with gw.conn() as c:
        start = time.monotonic()
        c.send_request("GET", "/chunked?n=3&size=100&delay_ms=3000")
        c.read_head()
        head_after = time.monotonic() - start

    # The backend needs 9 s for the whole body; the head must not wait for it.
    assert head_after < 6.0


@pytest.mark.parametrize("code", [204, 304])
def test_status_without_body_then_keep_alive_goes_on(backends, gateway, code):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    with gw.conn() as c:
        r = c.get("/status/%d" % code)
        after = c.get("/")

    assert r.status == code
    assert r.body == b""
    assert after.status == 200
    assert after.body == b"backend b0\n"


@pytest.mark.parametrize("code", [201, 404, 500, 503])
def test_backend_status_and_body_pass_through(backends, gateway, code):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    r = gw.get("/status/%d" % code)

    assert r.status == code
    assert r.body == b"status %d\n" % code


def headers_seen_by_backend(gw, headers):
    with gw.conn() as c:
        r = c.request("GET", "/headers", headers=headers)
    assert r.status == 200
    return json.loads(r.body)["headers"]


def names(headers):
    return [n.lower() for n, _ in headers]


@pytest.mark.parametrize("hop_header", [
    ("Keep-Alive", "timeout=5, max=100"),
    ("TE", "trailers"),
    pytest.param(("Proxy-Connection", "keep-alive"),
                 marks=pytest.mark.gateway_only("nginx forwards Proxy-Connection")),
    ("Upgrade", "h2c"),        # not an upgrade: Connection does not name it
], ids=["Keep-Alive", "TE", "Proxy-Connection", "Upgrade"])
def test_hop_by_hop_header_is_not_forwarded(backends, gateway, hop_header):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    seen = headers_seen_by_backend(gw, [("Connection", "keep-alive"), hop_header, ("X-Custom", "kept")])

    assert ("X-Custom", "kept") in [tuple(h) for h in seen]
    assert hop_header[0].lower() not in names(seen)


def test_client_connection_header_is_not_forwarded(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    seen = headers_seen_by_backend(gw, [("Connection", "keep-alive, x-hop-token"), ("X-Custom", "kept")])

    # The gateway may say Connection: keep-alive/close to the backend itself,
    # but the client's value (with its own token) must not go through.
    forwarded = [v.lower() for n, v in seen if n.lower() == "connection"]
    assert not any("x-hop-token" in v for v in forwarded)
    assert ("X-Custom", "kept") in [tuple(h) for h in seen]


def test_end_to_end_headers_keep_their_order_and_duplicates(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    seen = headers_seen_by_backend(gw, [("X-Dup", "1"), ("X-Other", "a"), ("X-Dup", "2"), ("Accept", "*/*")])

    ours = [(n.lower(), v) for n, v in seen if n.lower() in ("x-dup", "x-other", "accept")]
    assert ours == [("x-dup", "1"), ("x-other", "a"), ("x-dup", "2"), ("accept", "*/*")]
