"""The test backend on its own, spoken to directly: if it is wrong, every
other test is. Needs no gateway."""

import hashlib
import json
import socket
import time

import pytest

from backend import Backend, deterministic_bytes, deterministic_sha256
from rawhttp import Conn, ProtocolError, build_request, chunked


@pytest.fixture
def b0():
    backend = Backend(name="b0").start()
    yield backend
    backend.stop()


def test_root_names_the_backend(b0):
    with Conn(b0.port) as c:
        r = c.get("/anything/unknown")

    assert r.status == 200
    assert r.header("X-Backend") == "b0"
    assert r.body == b"backend b0\n"


def test_echo_with_content_length_and_chunked(b0):
    with Conn(b0.port) as c:
        by_length = c.request("POST", "/echo?q=1", body=b"hello")
        c.send(b"PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked([b"hel", b"lo"]))
        by_chunks = c.read_response()
        c.send(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        no_body = c.read_response()

    assert by_length.body == b"hello"
    assert by_length.header("X-Uri") == "/echo?q=1"
    assert by_length.header("X-Request-Framing") == "content-length"
    assert by_chunks.body == b"hello"
    assert by_chunks.header("X-Method") == "PUT"
    assert by_chunks.header("X-Request-Framing") == "chunked"
    assert by_chunks.header("X-Body-Sha256") == hashlib.sha256(b"hello").hexdigest()
    assert no_body.header("X-Request-Framing") == "none"
    assert no_body.header("X-Body-Len") == "0"


def test_headers_are_reported_as_received(b0):
    with Conn(b0.port) as c:
        r = c.request("GET", "/headers", headers=[("x-Lower", "1"), ("X-Dup", "a"), ("X-Dup", "b")], host="h.test")

    doc = json.loads(r.body)
    assert doc["request_line"] == "GET /headers HTTP/1.1"
    assert doc["headers"] == [["Host", "h.test"], ["x-Lower", "1"], ["X-Dup", "a"], ["X-Dup", "b"]]


def test_pipelined_requests_and_connection_ids(b0):
    with Conn(b0.port) as c:
        c.send(build_request("GET", "/conn-id") + build_request("HEAD", "/bytes?n=10")
               + build_request("GET", "/status/204") + build_request("GET", "/conn-id"))
        first = c.read_response()
        head = c.read_response(method="HEAD")
        empty = c.read_response()
        again = c.read_response()
    with Conn(b0.port) as c:
        other = c.get("/conn-id")

    assert first.body == again.body == b"1"
    assert head.header("Content-Length") == "10" and head.body == b""
    assert empty.status == 204
    assert other.body == b"2"
    assert b0.connections_accepted == 2
    assert b0.requests_seen == 5


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_bytes_is_the_deterministic_stream(b0, framing):
    with Conn(b0.port) as c:
        r = c.get("/bytes?n=200000&seed=5&framing=%s" % framing)

    assert hashlib.sha256(r.body).hexdigest() == deterministic_sha256(200000, seed=5)
    assert r.framing == {"length": "content-length", "chunked": "chunked", "close": "close"}[framing]


def test_chunked_response(b0):
    with Conn(b0.port) as c:
        r = c.get("/chunked?n=4&size=10")

    assert r.framing == "chunked"
    assert r.body == b"".join(deterministic_bytes(40))
    assert r.header("X-Body-Sha256") == hashlib.sha256(r.body).hexdigest()


def test_sha256_streams_the_body(b0):
    body = b"".join(deterministic_bytes(3 * 1024 * 1024, seed=9))
    with Conn(b0.port) as c:
        r = c.request("POST", "/sha256", body=body)

    assert r.header("X-Body-Sha256") == hashlib.sha256(body).hexdigest()
    assert r.header("X-Body-Len") == str(len(body))


def test_expect_100_continue_is_answered(b0):
    with Conn(b0.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        interim = c.read_response(interim_ok=False)
        c.send(b"ok")
        final = c.read_response()

    assert interim.status == 100
    assert final.body == b"ok"


def test_delay(b0):
    start = time.monotonic()
    with Conn(b0.port) as c:
        r = c.get("/delay?ms=200")

    assert r.body == b"delayed 200 ms\n"
    assert time.monotonic() - start >= 0.2


def test_http10_without_keep_alive_is_closed(b0):
    with Conn(b0.port) as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        r = c.read_response()

        assert r.status == 200
        assert c.closed_by_peer(timeout=2)


def test_failure_modes(b0):
    with Conn(b0.port) as c:
        c.send_request("GET", "/close-early")
        assert c.closed_by_peer(timeout=2) and not c.buf
    with Conn(b0.port) as c:
        c.send_request("GET", "/close-mid?n=100")
        with pytest.raises(ProtocolError):
            c.read_response()
    for kind in ("", "?kind=header"):
        with Conn(b0.port) as c:
            c.send_request("GET", "/garbage" + kind)
            with pytest.raises(ProtocolError):
                c.read_response()
    with Conn(b0.port) as c:
        c.send_request("GET", "/reset")
        with pytest.raises(ConnectionResetError):
            c.sock.settimeout(2)
            c.sock.recv(100)


def test_a_malformed_request_gets_400(b0):
    with Conn(b0.port) as c:
        c.send(b"NOT HTTP\r\n\r\n")
        r = c.read_response()

        assert r.status == 400
        assert c.closed_by_peer(timeout=2)


def test_stop_releases_the_port():
    backend = Backend(name="gone").start()
    port = backend.port
    backend.stop()

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
