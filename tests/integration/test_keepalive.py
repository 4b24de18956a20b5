"""Connections that carry more than one request: keep-alive, pipelining,
HTTP/1.0 clients, Expect: 100-continue, idle timeouts, upstream reuse."""

import hashlib
import time

from backend import deterministic_bytes
from rawhttp import build_request

ONE_BACKEND = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    keepalive_timeout 10s;
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}
"""


def test_several_requests_on_one_client_connection(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    with gw.conn() as c:
        answers = [c.request("POST", "/echo?i=%d" % i, body=b"request %d" % i) for i in range(5)]
        still_open = not c.closed_by_peer(timeout=0.3)

    assert [r.status for r in answers] == [200] * 5
    assert [r.body for r in answers] == [b"request %d" % i for i in range(5)]
    assert still_open


def test_pipelined_requests_are_answered_in_order(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])
    pipeline = (build_request("GET", "/delay?ms=300")              # the slow one first
                + build_request("POST", "/echo?i=2", body=b"second")
                + build_request("GET", "/chunked?n=2&size=10")
                + build_request("GET", "/status/204")
                + build_request("HEAD", "/bytes?n=100")
                + build_request("GET", "/"))

    with gw.conn() as c:
        c.send(pipeline)                                               # one write
        answers = [c.read_response(method=m) for m in ("GET", "POST", "GET", "GET", "HEAD", "GET")]

    assert answers[0].body == b"delayed 300 ms\n"
    assert answers[1].header("X-Uri") == "/echo?i=2" and answers[1].body == b"second"
    assert answers[2].body == b"".join(deterministic_bytes(20))
    assert answers[3].status == 204
    assert answers[4].status == 200 and answers[4].body == b""
    assert answers[5].body == b"backend b0\n"


def test_http10_client_gets_an_answer_then_a_close(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    with gw.conn() as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        r = c.read_response()
        closed = c.closed_by_peer(timeout=3)

    assert r.status == 200
    assert r.body == b"backend b0\n"
    assert closed


def test_connection_close_from_the_client_is_honoured(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    with gw.conn() as c:
        r = c.request("GET", "/", headers=[("Connection", "close")])
        closed = c.closed_by_peer(timeout=3)

    assert r.status == 200
    assert closed


def test_expect_100_continue(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])
    body = b"".join(deterministic_bytes(10000, seed=21))

    with gw.conn() as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n"
               b"Expect: 100-continue\r\n\r\n" % len(body))
        interim = c.read_response(interim_ok=False)     # before any body byte is sent
        c.send(body)
        final = c.read_response()

    assert interim.version == "HTTP/1.1"
    assert interim.status == 100
    assert final.status == 200
    assert final.header("X-Body-Sha256") == hashlib.sha256(body).hexdigest()


IDLE_TIMEOUT_1S = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    keepalive_timeout 1s;
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}
"""


def test_idle_client_connection_is_closed_after_keepalive_timeout(backends, gateway):
    b0, = backends(1)
    gw = gateway(IDLE_TIMEOUT_1S, [b0])

    with gw.conn() as c:
        assert c.get("/").status == 200
        idle_since = time.monotonic()
        closed = c.closed_by_peer(timeout=4)
        idle_for = time.monotonic() - idle_since

    assert closed
    assert 0.5 <= idle_for <= 3.5


UPSTREAM_KEEPALIVE = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    upstream app {
        server 127.0.0.1:{b0};
        keepalive 8;
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://app;
        }
    }
}
"""


def test_upstream_connections_are_reused_with_keepalive(backends, gateway):
    b0, = backends(1)
    gw = gateway(UPSTREAM_KEEPALIVE, [b0])

    ids = [gw.get("/conn-id").body for _ in range(10)]    # a new client connection each time

    assert b0.requests_seen == 10
    assert b0.connections_accepted <= 2
    assert len(set(ids)) <= 2
