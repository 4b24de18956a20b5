"""Upstream response heads whose lines end in a bare LF (CGI scripts,
busybox httpd) are taken, as nginx takes them; whitespace where nginx
refuses it in a response head stays a 502, and so do control characters
in a value (nginx passes them on; the gateway never did).
(Requests stay strict: see test_strict_http.py.)

The backend is a raw socket that answers every connection with the given
bytes, sent in the pieces given (a pause between them, so that they arrive
apart), then closes."""

import socket
import threading
import time

import pytest

import rawhttp


class Canned:
    def __init__(self, pieces):
        self.pieces = pieces
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                s, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(s,), daemon=True).start()

    def _answer(self, s):
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(5)
            got = b""
            while b"\r\n\r\n" not in got:
                more = s.recv(65536)
                if not more:
                    return
                got += more
            for i, piece in enumerate(self.pieces):
                if i:
                    time.sleep(0.05)
                s.sendall(piece)
            time.sleep(0.1)
        except OSError:
            pass
        finally:
            s.close()

    def close(self):
        self._sock.close()


CONFIG = """
daemon off;
pid gateway.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{raw};
        }
    }
}
"""


@pytest.fixture
def canned(gateway):
    started = []

    def start(*pieces):
        c = Canned(list(pieces))
        started.append(c)
        return gateway(CONFIG, raw=c.port)

    yield start
    for c in started:
        c.close()


@pytest.mark.parametrize("pieces", [
    [b"HTTP/1.1 200 OK\nContent-Length: 5\nX-A: b\n\nhello"],
    [b"HTTP/1.1 200 OK\r\nContent-Length: 5\nX-A: b\r\n\nhello"],
    [b"HTTP/1.0 200 OK\nX-A: b\n\nhello"],                              # until close
    [b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nX-A: b\n\n5\r\nhello\r\n0\r\n\r\n"],
    [b"HTTP/1.1 200 OK\n", b"Content-Len", b"gth: 5\nX-A:", b" b\n", b"\n", b"hello"],
], ids=["all-lf", "mixed", "until-close", "chunked", "in-pieces"])
def test_a_response_head_with_bare_lf_line_ends_is_taken(canned, pieces):
    gw = canned(*pieces)

    r = rawhttp.get(gw.port, "/")

    assert r.status == 200
    assert r.header("X-A") == "b"
    assert r.body == b"hello"


@pytest.mark.parametrize("pieces", [
    [b"HTTP/1.1 200 OK\nContent-Length : 5\nX-A: b\n\nhello"],            # whitespace before the colon
    [b"HTTP/1.1 200 OK\r\nContent-Length\t: 5\r\n\r\nhello"],
    [b"HTTP/1.1 200 OK\n", b"Content-Length", b" : 5\n\nhello"],          # ... arriving apart from the name
    [b"HTTP/1.1 200 OK\n X-A: b\nContent-Length: 5\n\nhello"],            # a space after the status line
    [b"HTTP/1.1 200 OK\nX-A: b\n c\nContent-Length: 5\n\nhello"],         # obs-fold
    [b"HTTP/1.1 200 OK\nX-A: b\rc\nContent-Length: 5\n\nhello"],          # a bare CR inside a value
    pytest.param([b"HTTP/1.1 200 OK\nX-A: b\x1dc\nContent-Length: 5\n\nhello"],  # a control character in a value
                 marks=pytest.mark.gateway_only("nginx passes control characters in a backend's header value on")),
], ids=["space-before-colon", "tab-before-colon", "space-in-a-later-piece", "space-after-status-line",
        "obs-fold", "bare-cr", "control-char"])
def test_whitespace_nginx_refuses_in_a_response_head_is_still_a_502(canned, pieces):
    gw = canned(*pieces)

    r = rawhttp.get(gw.port, "/")

    assert r.status == 502
