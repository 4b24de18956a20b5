"""Helpers for the WebSocket tests (test_websocket.py, test_websocket_raw.py):
tests/ws_backend.py as a subprocess, fixtures that start it behind a
gateway, and just enough RFC 6455 framing for raw-socket clients and
backends that control every byte."""

import asyncio
import base64
import hashlib
import json
import os
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

import rawhttp

WS_BACKEND = Path(__file__).resolve().parents[1] / "ws_backend.py"
sys.path.insert(0, str(WS_BACKEND.parent))
from ws_backend import pattern  # noqa: E402,F401 (the tests' reference bytes)


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
