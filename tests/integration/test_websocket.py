"""WebSockets through the proxy: with nginx's three lines in a location

    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";

an upgrade request reaches the backend, its 101 turns both connections into
a tunnel, and a real WebSocket client (python3-websockets) talks to a real
WebSocket server (tests/ws_backend.py, a subprocess) through it. Without
them no upgrade happens. Raw sockets check what a library would hide: bytes
sent in the same packet as the handshake, half-close, the 101's headers.
"""

import asyncio
import base64
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import websockets
import websockets.exceptions

import rawhttp
from conftest import NGINX

WS_BACKEND = Path(__file__).resolve().parents[1] / "ws_backend.py"
sys.path.insert(0, str(WS_BACKEND.parent))
from ws_backend import pattern  # noqa: E402

WS_CONF = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    upstream ws { server 127.0.0.1:{b0}; }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://ws;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout {read_timeout};
        }
        location /plain/ {
            proxy_pass http://ws/;
        }
    }
}
"""

MiB = 1024 * 1024


class WsBackend:
    """tests/ws_backend.py in a subprocess on a free port."""

    def __init__(self, args=()):
        self.tls = "--cert" in args
        self.proc = subprocess.Popen([sys.executable, str(WS_BACKEND), "--port", "0"] + list(args),
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            pytest.fail("ws_backend.py did not start: %r" % line, pytrace=False)
        self.port = int(line.split()[1])

    def stats(self):
        if self.tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with urllib.request.urlopen("https://127.0.0.1:%d/stats" % self.port, timeout=5, context=ctx) as r:
                return json.loads(r.read())
        with urllib.request.urlopen("http://127.0.0.1:%d/stats" % self.port, timeout=5) as r:
            return json.loads(r.read())

    def wait_stats(self, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats()
            if predicate(s) or time.monotonic() > deadline:
                return s
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)


@pytest.fixture
def ws_backend():
    started = []

    def start(args=()):
        b = WsBackend(args)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def ws_gateway(gateway, ws_backend):
    """(gateway, backend) with WS_CONF; read_timeout= changes proxy_read_timeout."""
    def start(read_timeout="60s", config=WS_CONF):
        b = ws_backend()
        gw = gateway(config, [b], read_timeout=read_timeout)
        return gw, b
    return start


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def connect(gw, path, **kw):
    kw.setdefault("compression", None)
    kw.setdefault("max_size", None)
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", 10)
    return websockets.connect("ws://127.0.0.1:%d%s" % (gw.port, path), **kw)


# ---- WebSocket framing for the raw-socket tests ----

WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def upgrade_request(path, host="127.0.0.1"):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, host, WS_KEY)).encode()


def frame(payload, opcode=0x1, mask=True):
    """One final frame; clients mask (RFC 6455 5.3), servers do not."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_frame(conn):
    """(opcode, payload) of the next frame on a rawhttp.Conn (unmasked, from a server)."""
    def need(n):
        while len(conn.buf) < n:
            if not conn._fill():
                raise rawhttp.ProtocolError("closed inside a frame")
        out = bytes(conn.buf[:n])
        del conn.buf[:n]
        return out
    b0, b1 = need(2)
    n = b1 & 0x7f
    if n == 126:
        n, = struct.unpack("!H", need(2))
    elif n == 127:
        n, = struct.unpack("!Q", need(8))
    key = need(4) if b1 & 0x80 else None
    payload = need(n)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0f, payload


class RawUpgradeBackend:
    """A backend that answers one upgrade request with `script(sock, head)`:
    the test decides byte for byte what the server side does."""

    def __init__(self, script):
        self.script = script
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.result = None
        self.error = None
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    raise EOFError("closed before a whole head")
                head += data
            self.result = self.script(conn, head)
        except Exception as e:  # reported by the test through .error
            self.error = e
        finally:
            self.done.set()

    def close(self):
        self.sock.close()


def switching(head):
    key = [line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
           if line.lower().startswith(b"sec-websocket-key:")][0]
    return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: %s\r\n\r\n" % accept_of(key)).encode()


# ---- the scenarios ----

def test_echo_text_and_binary(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/echo") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01binary\xff")
            assert await ws.recv() == b"\x00\x01binary\xff"
            for i in range(50):
                await ws.send("m%d" % i)
            assert [await ws.recv() for _ in range(50)] == ["m%d" % i for i in range(50)]
    run(go())


def test_large_frames_both_ways(ws_gateway):
    gw, b = ws_gateway()
    up = pattern(8 * MiB + 3)

    async def go():
        async with connect(gw, "/big?size=%d" % (6 * MiB + 1)) as ws:
            down = await ws.recv()
            assert len(down) == 6 * MiB + 1 and down == pattern(6 * MiB + 1)
            await ws.send(up)
            back = await ws.recv()
            assert len(back) == len(up) and hashlib.sha256(back).digest() == hashlib.sha256(up).digest()
    run(go())


def test_ping_pong_both_ways(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/ping") as ws:
            assert await ws.recv() == "pong-ok"          # the server's ping was answered by the client
            waiter = await ws.ping(b"from-client")
            await asyncio.wait_for(waiter, 10)
            await ws.send("still here")
            assert await ws.recv() == "still here"
    run(go())


def test_close_from_the_client_reaches_the_server(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/echo") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            await ws.close(4002, "client done")
            assert ws.close_code == 4002
    run(go())

    s = b.wait_stats(lambda s: s["open"] == 0 and s["closes"])
    assert s["open"] == 0
    assert s["closes"] == [[4002, "client done"]]


def test_close_from_the_server_reaches_the_client(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/close?after=1&code=4001") as ws:
            await ws.send("last")
            assert await ws.recv() == "last"
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4001 and closed.value.rcvd.reason == "bye"
    run(go())


def test_server_dropping_the_connection_closes_the_client(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/drop?after=1") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            with pytest.raises(websockets.exceptions.ConnectionClosedError):
                await ws.recv()                          # no close frame: 1006
    run(go())


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


def test_idle_tunnel_is_closed_after_proxy_read_timeout(ws_gateway):
    gw, b = ws_gateway(read_timeout="1s")

    async def go():
        async with connect(gw, "/idle") as ws:
            with pytest.raises(websockets.exceptions.ConnectionClosedError):
                await asyncio.wait_for(ws.recv(), 30)    # nothing is sent; the proxy gives up
    run(go())
    s = b.wait_stats(lambda s: s["open"] == 0)
    assert s["open"] == 0


def test_a_tunnel_with_traffic_outlives_proxy_read_timeout(ws_gateway):
    gw, b = ws_gateway(read_timeout="2s")

    async def go():
        async with connect(gw, "/echo") as ws:
            for i in range(16):                        # 4 s of traffic, a message every 0.25 s
                await ws.send("tick %d" % i)
                assert await ws.recv() == "tick %d" % i
                await asyncio.sleep(0.25)
    run(go())


def test_many_concurrent_tunnels(ws_gateway):
    gw, b = ws_gateway()
    n = 100

    async def one(i):
        async with connect(gw, "/echo") as ws:
            for k in range(5):
                msg = "conn %d msg %d" % (i, k)
                await ws.send(msg)
                assert await ws.recv() == msg
            return i

    async def go():
        done = await asyncio.gather(*(one(i) for i in range(n)))
        assert sorted(done) == list(range(n))
    run(go())
    s = b.wait_stats(lambda s: s["open"] == 0)
    assert s["accepted"] == n and s["open"] == 0


def test_server_speaking_first(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/first?msg=welcome") as ws:
            assert await ws.recv() == "welcome"
            await ws.send("and back")
            assert await ws.recv() == "and back"
    run(go())


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


def test_no_upgrade_without_the_headers(gateway, ws_backend, backends):
    b = ws_backend()
    plain = """
    daemon off;
    events { worker_connections 1024; }
    http {
        server {
            listen 127.0.0.1:{port};
            location / { proxy_pass http://127.0.0.1:{b0}; }
            location /h { proxy_pass http://127.0.0.1:{b1}/headers; }
        }
    }
    """
    hb, = backends(1)
    gw = gateway(plain, [b, hb])

    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            async with connect(gw, "/echo"):
                pass
        assert e.value.status_code != 101
    run(go())
    assert b.stats()["accepted"] == 0                  # the backend never switched

    # What the backend gets: no Upgrade, and not Connection: upgrade.
    with rawhttp.Conn(gw.port) as c:
        r = c.get("/h", headers=[("Upgrade", "websocket"), ("Connection", "Upgrade")])
    assert r.status == 200
    got = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
    assert "upgrade" not in got
    assert "upgrade" not in got.get("connection", "").lower()


def test_upgrade_refused_by_the_backend_is_an_ordinary_response(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            async with connect(gw, "/reject"):
                pass
        assert e.value.status_code == 403
    run(go())


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


def test_tunnel_survives_a_reload(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/echo") as ws:
            await ws.send("before")
            assert await ws.recv() == "before"

            res = gw.cli("-s", "reload")
            assert res.returncode == 0, res.output
            # New connections are served (by the new configuration) ...
            deadline = time.monotonic() + 10
            while True:
                try:
                    async with connect(gw, "/echo") as ws2:
                        await ws2.send("new")
                        assert await ws2.recv() == "new"
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            # ... and the old tunnel is still open.
            for i in range(5):
                await ws.send("after %d" % i)
                assert await ws.recv() == "after %d" % i
    run(go())
    assert gw.proc.poll() is None


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


WSS_CONF = """
daemon off;
events { worker_connections 1024; }
http {
    ssl_protocols TLSv1.2 TLSv1.3;
    server {
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {prefix}/ws.crt;
        ssl_certificate_key {prefix}/ws.key;
        location / {
            proxy_pass http://127.0.0.1:{b0};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}
"""


@pytest.fixture(scope="module")
def ws_cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("wscert")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(d / "ws.key"), "-out", str(d / "ws.crt"), "-subj", "/CN=ws.test"],
                   check=True, capture_output=True)
    return {"ws.crt": (d / "ws.crt").read_text(), "ws.key": (d / "ws.key").read_text()}


def test_wss_echo_and_close_from_either_side(gateway, ws_backend, ws_cert):
    import ssl
    b = ws_backend()
    gw = gateway(WSS_CONF, [b], files=ws_cert)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def wss(path):
        return websockets.connect("wss://127.0.0.1:%d%s" % (gw.port, path), ssl=ctx, compression=None,
                                  max_size=None, ping_interval=None, open_timeout=10)

    async def go():
        async with wss("/echo") as ws:
            big = pattern(3 * MiB)
            await ws.send(big)
            assert await ws.recv() == big
            await ws.close(4003, "tls done")
        async with wss("/close?after=1&code=4004") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4004
    run(go())
    s = b.wait_stats(lambda s: s["open"] == 0 and len(s["closes"]) == 2)
    assert [4003, "tls done"] in s["closes"] and s["open"] == 0


def test_wss_upstream_end_ends_the_tls_session_with_close_notify(gateway, ws_cert):
    import ssl

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


def test_tunnel_to_a_tls_upstream(gateway, ws_backend, ws_cert, tmp_path):
    (tmp_path / "up.crt").write_text(ws_cert["ws.crt"])
    (tmp_path / "up.key").write_text(ws_cert["ws.key"])
    b = ws_backend(["--cert", str(tmp_path / "up.crt"), "--key", str(tmp_path / "up.key")])
    conf = WS_CONF.replace("proxy_pass http://ws;", "proxy_pass https://ws;")
    gw = gateway(conf, [b], read_timeout="60s")

    async def go():
        async with connect(gw, "/echo") as ws:
            big = pattern(2 * MiB + 1)
            await ws.send(big)
            assert await ws.recv() == big
            await ws.close(4005, "over tls")
        async with connect(gw, "/close?after=1&code=4006") as ws:
            await ws.send("y")
            assert await ws.recv() == "y"
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4006
    run(go())
    s = b.wait_stats(lambda s: s["open"] == 0 and len(s["closes"]) == 2)
    assert [4005, "over tls"] in s["closes"] and s["open"] == 0


def test_access_log_has_the_upgraded_request_when_the_tunnel_ends(gateway, ws_backend):
    b = ws_backend()
    conf = WS_CONF.replace("listen 127.0.0.1:{port};", "listen 127.0.0.1:{port}; access_log {prefix}/ws.log;")
    gw = gateway(conf, [b], read_timeout="60s")
    log = gw.prefix / "ws.log"

    async def go():
        async with connect(gw, "/echo") as ws:
            await ws.send(pattern(200000))
            assert len(await ws.recv()) == 200000
            await ws.close()
    run(go())

    deadline = time.monotonic() + 10
    while not (log.exists() and "/echo" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    line = [x for x in log.read_text().splitlines() if "/echo" in x][0]
    # combined: ... "GET /echo HTTP/1.1" 101 BODY_BYTES "-" "UA": the tunnel's bytes count, as in nginx
    status, body_bytes = line.split('" ')[1].split()[:2]
    assert status == "101"
    assert int(body_bytes) > 200000


def test_graceful_quit_waits_for_an_open_tunnel(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/echo") as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            gw.signal(signal.SIGQUIT)
            await asyncio.sleep(0.5)
            assert gw.proc.poll() is None              # still serving the tunnel
            await ws.send("during the quit")
            assert await ws.recv() == "during the quit"
    run(go())
    assert gw.wait(timeout=10) == 0                    # the last tunnel closed: the process ends
