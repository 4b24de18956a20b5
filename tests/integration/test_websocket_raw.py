"""WebSocket tunnels byte by byte: raw-socket clients and backends (framing
from wsutil.py) check what a WebSocket library would hide: bytes sent in
the same write as the handshake (either way), half-close, resets, a slow or
stalled reader, the 101's own headers, a pipelined request after a non-101
answer, and the end of a TLS session.
"""

import hashlib
import socket
import ssl
import struct
import time

import pytest

import rawhttp
from wsutil import (MiB, WS_CONF, WS_KEY, WSS_CONF, RawUpgradeBackend, accept_of, connect, frame, pattern,
                    read_frame, run, switching, upgrade_request)
from wsutil import ws_backend, ws_cert, ws_gateway  # noqa: F401 (fixtures)


def test_client_reset_closes_the_server_side(ws_gateway):
    gw, b = ws_gateway()

    with rawhttp.Conn(gw.port) as c:
        c.send(upgrade_request("/echo"))
        assert c.read_response().status == 101
        c.send(frame(b"ping?"))
        assert read_frame(c) == (0x1, b"ping?")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # closed with linger 0: a reset

    s = b.wait_stats(lambda s: s["open"] == 0)
    assert s["open"] == 0 and s["accepted"] == 1


def test_bytes_behind_the_101_in_the_same_write_reach_the_client(gateway):
    def script(sock, head):
        # The 101 head and the first message leave in one send.
        sock.sendall(switching(head) + frame(b"right behind the head", mask=False))
        data = sock.recv(65536)
        return data

    raw = RawUpgradeBackend(script)
    try:
        gw = gateway(WS_CONF, [raw], read_timeout="60s")

        async def go():
            async with connect(gw, "/raw") as ws:
                assert await ws.recv() == "right behind the head"
        run(go())
    finally:
        raw.close()


def test_bytes_behind_the_upgrade_request_in_the_same_write_reach_the_server(ws_gateway):
    gw, b = ws_gateway()

    with rawhttp.Conn(gw.port) as c:
        # The handshake and two frames in one write: the frames must not be lost or parsed as HTTP.
        c.send(upgrade_request("/echo") + frame(b"early one") + frame(b"\x00\x01early two", opcode=0x2))
        r = c.read_response()
        assert r.status == 101
        assert r.header("Sec-WebSocket-Accept") == accept_of(WS_KEY)
        assert "upgrade" in r.connection_tokens()
        assert r.header("Upgrade").lower() == "websocket"
        assert read_frame(c) == (0x1, b"early one")
        assert read_frame(c) == (0x2, b"\x00\x01early two")


@pytest.mark.gateway_only("nginx 1.22 closes both sides at the first EOF; the gateway half-closes")
def test_half_close_from_the_client_is_propagated(gateway):
    def script(sock, head):
        sock.sendall(switching(head))
        got = b""
        while True:                                    # read until the client's EOF arrives through the proxy
            data = sock.recv(65536)
            if not data:
                break
            got += data
        sock.sendall(frame(b"after your EOF", mask=False))   # still allowed: only one direction ended
        sock.close()
        return got

    raw = RawUpgradeBackend(script)
    try:
        gw = gateway(WS_CONF, [raw], read_timeout="60s")
        with rawhttp.Conn(gw.port) as c:
            c.send(upgrade_request("/raw"))
            assert c.read_response().status == 101
            c.send(frame(b"then EOF"))
            c.sock.shutdown(socket.SHUT_WR)
            assert read_frame(c) == (0x1, b"after your EOF")
            assert c.closed_by_peer(timeout=10)
        assert raw.done.wait(10) and raw.error is None
        assert len(raw.result) == 2 + 4 + len(b"then EOF")   # the whole frame, then the EOF
    finally:
        raw.close()


@pytest.mark.gateway_only("nginx 1.22 closes both sides at the first EOF; the gateway half-closes")
def test_half_close_from_the_server_is_propagated(gateway):
    def script(sock, head):
        sock.sendall(switching(head) + frame(b"bye for now", mask=False))
        sock.shutdown(socket.SHUT_WR)
        got = b""
        while True:                                    # the client still talks; then it closes too
            data = sock.recv(65536)
            if not data:
                break
            got += data
        return got

    raw = RawUpgradeBackend(script)
    try:
        gw = gateway(WS_CONF, [raw], read_timeout="60s")
        with rawhttp.Conn(gw.port) as c:
            c.send(upgrade_request("/raw"))
            assert c.read_response().status == 101
            assert read_frame(c) == (0x1, b"bye for now")
            assert c.closed_by_peer(timeout=10)          # the server's EOF came through
            c.send(frame(b"one more"))
            c.sock.shutdown(socket.SHUT_WR)
            assert raw.done.wait(10) and raw.error is None
        assert len(raw.result) == 2 + 4 + len(b"one more")
    finally:
        raw.close()


def test_non_101_answer_keeps_http_for_a_pipelined_request(gateway, backends):
    b0, = backends(1)
    gw = gateway(WS_CONF, [b0], read_timeout="60s")

    with rawhttp.Conn(gw.port) as c:
        # An upgrade the backend ignores (200), and a second request in the same write.
        c.send(upgrade_request("/") + b"GET /conn-id HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = c.read_response()
        second = c.read_response()
    assert first.status == 200 and first.body == b"backend b0\n"
    assert second.status == 200 and second.body.strip().isdigit()
    assert b0.requests_seen == 2


def test_101_head_sent_to_the_client(ws_gateway):
    gw, b = ws_gateway()

    with rawhttp.Conn(gw.port) as c:
        c.send(upgrade_request("/echo"))
        r = c.read_response()
    assert r.status == 101
    assert r.connection_tokens() == {"upgrade"}
    assert r.header_values("Upgrade") == ["websocket"]
    assert r.header("Content-Length") is None and r.header("Transfer-Encoding") is None


def test_a_slow_reader_gets_every_byte(ws_gateway):
    gw, b = ws_gateway()
    size = 16 * MiB + 5

    with rawhttp.Conn(gw.port, timeout=20) as c:
        c.send(upgrade_request("/big?size=%d" % size))
        assert c.read_response().status == 101
        time.sleep(1.0)                                  # the proxy holds back; nothing may be lost
        opcode, payload = read_frame(c)
    assert opcode == 0x2 and len(payload) == size
    assert hashlib.sha256(payload).digest() == hashlib.sha256(pattern(size)).digest()


def test_a_client_that_stops_reading_is_dropped_after_send_timeout(gateway, ws_backend):
    b = ws_backend()
    conf = WS_CONF.replace("proxy_read_timeout {read_timeout};", "proxy_read_timeout 60s; send_timeout 1s;")
    gw = gateway(conf, [b])

    with rawhttp.Conn(gw.port, timeout=20) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        c.send(upgrade_request("/big?size=%d" % (64 * MiB)))
        # Never read: the proxy's queue towards us fills, the backend is held back,
        # and after send_timeout without progress the tunnel is closed.
        s = b.wait_stats(lambda s: s["accepted"] == 1 and s["open"] == 0, timeout=30)
    assert s["accepted"] == 1 and s["open"] == 0


def test_wss_upstream_end_ends_the_tls_session_with_close_notify(gateway, ws_cert):

    def script(sock, head):
        sock.sendall(switching(head) + frame(b"last words", mask=False))
        time.sleep(0.3)                                # the frame is out (drained) before the EOF
        sock.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        sock.close()

    raw = RawUpgradeBackend(script)
    try:
        gw = gateway(WSS_CONF, [raw], files=ws_cert)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF     # Python's default would hide a missing close_notify
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as plain:
            with ctx.wrap_socket(plain) as s:
                s.sendall(upgrade_request("/raw"))
                data = b""
                while True:
                    piece = s.recv(65536)                # SSLEOFError if the session was cut short
                    if not piece:
                        break
                    data += piece
        assert data.startswith(b"HTTP/1.1 101 ")
        assert data.endswith(frame(b"last words", mask=False))
    finally:
        raw.close()
