"""Strict HTTP/1.1 (RFC 9112), as a table: malformed and ambiguous requests,
each with the answer a strict proxy gives and a closed connection, and the
bytes sent after it (a second request, the smuggling attempt) never reach the
backend. Rows refused in the head reach the backend not at all. The cases
test_malformed_requests.py already lists go through the smuggling check here
too. Then the response side: a backend whose framing is ambiguous gets a 502
for the client, and its connection is never used again.

Rows marked gateway_only are where we are deliberately stricter than nginx
(or answer differently); the reason says what nginx does."""

import socket
import threading
import time
from collections import namedtuple

import pytest

from rawhttp import Conn, ProtocolError
from test_malformed_requests import BAD_REQUESTS_400

CONFIG = """
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

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n"

# stage "head": refused before anything is forwarded (the backend sees no connection);
# stage "body": the head may have gone upstream, the body's framing is refused on the way.
Row = namedtuple("Row", "request status stage")


def post(headers, body=b"", version=b"HTTP/1.1", target=b"/echo"):
    host = b"Host: test\r\n" if version == b"HTTP/1.1" else b""
    return (b"POST " + target + b" " + version + b"\r\n" + host
            + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body)


def get_with(*header_lines, version=b"HTTP/1.1"):
    return b"GET / " + version + b"\r\n" + b"".join(h + b"\r\n" for h in header_lines) + b"\r\n"


CHUNKED = b"Transfer-Encoding: chunked"

ROWS = {
    # Content-Length
    "duplicate equal Content-Length": Row(post([b"Content-Length: 5", b"Content-Length: 5"], b"hello"), 400, "head"),
    "Content-Length with a plus sign": Row(post([b"Content-Length: +5"], b"hello"), 400, "head"),
    "Content-Length with a minus sign": Row(post([b"Content-Length: -5"], b"hello"), 400, "head"),
    "Content-Length in hex": Row(post([b"Content-Length: 0x5"], b"hello"), 400, "head"),
    "Content-Length overflowing 64 bits": Row(post([b"Content-Length: 18446744073709551621"], b"hello"), 400, "head"),
    "empty Content-Length": Row(post([b"Content-Length: "], b""), 400, "head"),
    "Content-Length with two numbers": Row(post([b"Content-Length: 5 5"], b"hello"), 400, "head"),
    "Transfer-Encoding before Content-Length": Row(post([CHUNKED, b"Content-Length: 5"], b"0\r\n\r\n"), 400, "head"),
    # Transfer-Encoding
    "Transfer-Encoding repeated": Row(post([CHUNKED, CHUNKED], b"0\r\n\r\n"), 400, "head"),
    "chunked not last": Row(post([b"Transfer-Encoding: chunked, gzip"], b"0\r\n\r\n"), 400, "head"),
    "chunked twice in one list": Row(post([b"Transfer-Encoding: chunked, chunked"], b"0\r\n\r\n"), 400, "head"),
    "Transfer-Encoding in HTTP/1.0": Row(post([CHUNKED], b"0\r\n\r\n", version=b"HTTP/1.0"), 400, "head"),
    # chunked framing
    "chunk size not hex": Row(post([CHUNKED], b"zz\r\nhello\r\n0\r\n\r\n"), 400, "body"),
    "chunk size with a sign": Row(post([CHUNKED], b"+5\r\nhello\r\n0\r\n\r\n"), 400, "body"),
    "chunk size with 0x": Row(post([CHUNKED], b"0x5\r\nhello\r\n0\r\n\r\n"), 400, "body"),
    "chunk size overflowing 64 bits": Row(post([CHUNKED], b"10000000000000005\r\nhello\r\n0\r\n\r\n"), 400, "body"),
    "chunk data longer than declared": Row(post([CHUNKED], b"3\r\nhello\r\n0\r\n\r\n"), 400, "body"),
    "chunk size line ended by a bare LF": Row(post([CHUNKED], b"5\nhello\r\n0\r\n\r\n"), 400, "body"),
    "last chunk ended by CR CR": Row(post([CHUNKED], b"5\r\nhello\r\n0\r\n\r\r"), 400, "body"),
    "Content-Length in a trailer": Row(post([CHUNKED], b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n"), 400, "body"),
    "Transfer-Encoding in a trailer": Row(post([CHUNKED], b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"),
                                          400, "body"),
    # field syntax
    "obs-fold": Row(get_with(b"Host: test", b"X-Folded: a", b" b"), 400, "head"),
    "obs-fold with a tab": Row(get_with(b"Host: test", b"X-Folded: a", b"\tb"), 400, "head"),
    "tab before the colon": Row(get_with(b"Host: test", b"X-Foo\t: bar"), 400, "head"),
    "NUL in a header name": Row(get_with(b"Host: test", b"X-F\x00oo: bar"), 400, "head"),
    "bare CR ending a header line": Row(b"GET / HTTP/1.1\r\nHost: test\rX-Foo: bar\r\n\r\n", 400, "head"),
    "bare CR in the request line": Row(b"GET /a\rb HTTP/1.1\r\nHost: test\r\n\r\n", 400, "head"),
    "tab in the target": Row(b"GET /a\tb HTTP/1.1\r\nHost: test\r\n\r\n", 400, "head"),
    "DEL in the target": Row(b"GET /a\x7fb HTTP/1.1\r\nHost: test\r\n\r\n", 400, "head"),
    "LF line endings": Row(b"GET / HTTP/1.1\nHost: test\n\n", 400, "head"),
    # Host
    "duplicate Host": Row(get_with(b"Host: test", b"Host: other"), 400, "head"),
    "empty Host": Row(get_with(b"Host: "), 400, "head"),
    "absolute-form without Host in HTTP/1.1": Row(b"GET http://test/ HTTP/1.1\r\n\r\n", 400, "head"),
    # method, version, target
    "lower-case method": Row(b"get / HTTP/1.1\r\nHost: test\r\n\r\n", 400, "head"),
    "method with a non-token byte": Row(b"G@T / HTTP/1.1\r\nHost: test\r\n\r\n", 400, "head"),
    "version HTTP/1.x": Row(b"GET / HTTP/1.x\r\nHost: test\r\n\r\n", 400, "head"),
    "version in lower case": Row(b"GET / http/1.1\r\nHost: test\r\n\r\n", 400, "head"),
    "no version (HTTP/0.9)": Row(b"GET /\r\n\r\n", 400, "head"),
    "target not starting with /": Row(b"GET index.html HTTP/1.1\r\nHost: test\r\n\r\n", 400, "head"),
    "authority-form with GET": Row(b"GET test:80 HTTP/1.1\r\nHost: test\r\n\r\n", 400, "head"),
    "overlong request line": Row(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: test\r\n\r\n", 414, "head"),
    "overlong header line": Row(get_with(b"Host: test", b"X-Long: " + b"a" * 70000), 431, "head"),
    "too many header bytes": Row(get_with(b"Host: test", *[b"X-H%d: %s" % (i, b"b" * 4000) for i in range(20)]),
                                 431, "head"),
}

NGINX_DIFFERS = {
    "chunked not last": "nginx answers 501 for any list of codings",
    "chunked twice in one list": "nginx answers 501 for any list of codings",
    "chunk size line ended by a bare LF": "stricter than nginx, which accepts a bare LF after the chunk size",
    "Content-Length in a trailer": "stricter than nginx, which reads the body and drops the trailers",
    "Transfer-Encoding in a trailer": "stricter than nginx, which reads the body and drops the trailers",
    "LF line endings": "stricter than nginx, which accepts a bare LF as a line ending (llhttp does not)",
    "no version (HTTP/0.9)": "stricter than nginx, which answers an HTTP/0.9 request with an HTTP/0.9 response",
    "overlong header line": "nginx answers 400 (Request Header Or Cookie Too Large) where we answer 431",
    "too many header bytes": "nginx answers 400 (Request Header Or Cookie Too Large) where we answer 431",
}


def table():
    params = []
    for name, row in ROWS.items():
        marks = [pytest.mark.gateway_only(NGINX_DIFFERS[name])] if name in NGINX_DIFFERS else []
        params.append(pytest.param(row, id=name, marks=marks))
    for name, request in BAD_REQUESTS_400.items():   # test_malformed_requests.py's, smuggling checked here
        params.append(pytest.param(Row(request, 400, "head" if b"Transfer-Encoding" not in request else "body"),
                                   id="malformed: " + name))
    return params


@pytest.fixture
def gw_and_backend(backends, gateway):
    b0, = backends(1)
    return gateway(CONFIG, [b0]), b0


def send_all(c, data):
    """Send what the server will take: it may close after the head it refused."""
    try:
        c.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


@pytest.mark.parametrize("row", table())
def test_refused_closed_and_nothing_smuggled(gw_and_backend, row):
    gw, b0 = gw_and_backend

    with Conn(gw.port) as c:
        send_all(c, row.request + SMUGGLED)
        r = c.read_response()
        closed = c.closed_by_peer()
    time.sleep(0.2)   # let anything that was forwarded arrive before counting

    assert r.status == row.status
    assert closed
    assert "/smuggled" not in [q.target for q in b0.requests]
    if row.stage == "head":
        assert b0.connections_accepted == 0


def test_absolute_form_is_sent_upstream_in_origin_form(gw_and_backend):
    gw, b0 = gw_and_backend

    with gw.conn() as c:
        c.send(b"POST http://test/echo?x=1 HTTP/1.1\r\nHost: ignored.example\r\nContent-Length: 2\r\n\r\nok")
        r = c.read_response()

    assert r.status == 200
    assert r.header("X-Uri") == "/echo?x=1"
    assert r.body == b"ok"


# ---- the response side ----

class RawBackend:
    """Answers the first request on each connection with canned bytes, and
    records any later request on the same connection (a reuse)."""

    def __init__(self, response):
        self.response = response
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.reused = 0
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.conns.append(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        buf, served = b"", 0
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = s.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf[buf.index(b"\r\n\r\n") + 4:]
                if served:
                    with self.lock:
                        self.reused += 1
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nreused")
                else:
                    s.sendall(self.response)
                served += 1
        except OSError:
            return

    def stop(self):
        self.sock.close()
        for s in self.conns:
            s.close()


KEEPALIVE = """
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

AMBIGUOUS_RESPONSES = {
    "Content-Length with Transfer-Encoding":
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nhello",
    "two different Content-Lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "a list of Content-Lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "Content-Length with a sign": b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
    "Transfer-Encoding not chunked last": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "Transfer-Encoding repeated": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"0\r\n\r\n"),
    "a coding we do not know": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello",
}

# The head has gone to the client before the body shows its framing is
# wrong: the client sees a cut-off response, never a complete one.
BAD_CHUNKED_RESPONSES = {
    "chunk size not hex": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk size overflowing": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n",
    "chunk data longer than declared": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
    "last chunk ended by CR CR": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\r",
}


@pytest.fixture
def raw_backend():
    started = []

    def start(response):
        b = RawBackend(response)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


# nginx 1.22 relays every one of these (Transfer-Encoding wins over
# Content-Length, the last Content-Length counts, codings are passed along) or
# waits for a body it reads its own way: we are stricter.
NGINX_RELAYS = pytest.mark.gateway_only("stricter than nginx 1.22, which relays an upstream's ambiguous framing")


@NGINX_RELAYS
@pytest.mark.parametrize("name", list(AMBIGUOUS_RESPONSES))
def test_ambiguous_response_framing_is_a_502_and_the_connection_is_not_reused(raw_backend, gateway, name):
    b0 = raw_backend(AMBIGUOUS_RESPONSES[name])
    gw = gateway(KEEPALIVE, [b0])

    for i in range(3):
        with gw.conn() as c:
            r = c.request("GET", "/%d" % i)
            assert r.status == 502

    assert b0.connections == 3
    assert b0.reused == 0


@pytest.mark.parametrize("name", list(BAD_CHUNKED_RESPONSES))
def test_bad_chunked_response_is_cut_off_and_the_connection_is_not_reused(raw_backend, gateway, name):
    b0 = raw_backend(BAD_CHUNKED_RESPONSES[name])
    gw = gateway(KEEPALIVE, [b0])

    for i in range(3):
        with gw.conn() as c:
            c.send_request("GET", "/%d" % i)
            try:
                r = c.read_response()
            except ProtocolError:
                pass                          # head relayed, the body cut off: the client can tell
            else:
                assert r.status == 502        # or refused before the head went out
            assert c.closed_by_peer()

    assert b0.connections == 3
    assert b0.reused == 0
