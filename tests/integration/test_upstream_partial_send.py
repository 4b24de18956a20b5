"""A request only partly sent to a backend that then fails must never reach
the next backend cut or corrupted.

The first backend here accepts and never reads, so the request (a body far
larger than the socket buffers) goes out only in part, then it resets the
connection. nginx buffers the body and sends the whole request to the next
backend; the gateway streams the body and cannot replay what it already
sent, so it answers 502 and the next backend sees nothing. Either way the
next backend never gets a request missing some of its bytes."""

import hashlib
import select
import socket
import struct
import threading
import time

import rawhttp

BODY = bytes(range(256)) * (4 * 1024 * 1024 // 256)     # 4 MiB


class Sink:
    """A backend that accepts, takes (almost) nothing into a tiny receive
    window, never reads, and resets each connection after `hold` seconds.

    hold_back() makes the next connection to it wait: the one-place accept
    queue is filled with a connection of our own, so the gateway's SYN is
    dropped and sent again a second later (the kernel's first retransmit),
    after the queue was emptied. Meanwhile the gateway queues the client's
    body for this upstream; its first send then cannot go out whole."""

    def __init__(self, hold=0.7):
        self.hold = hold
        self.accepted = 0
        self._dummies = set()
        self._lock = threading.Lock()
        self._closed = False
        self._sock = socket.socket()
        # Inherited by the accepted sockets: a small window, and small segments so
        # that the gateway's end starts with a small send buffer (the kernel sizes it
        # from the segment size).
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(0)                            # room for one connection waiting to be accepted
        self.port = self._sock.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        threading.Thread(target=self._loop, daemon=True).start()

    def hold_back(self):
        with self._lock:
            self._open.clear()
            d = socket.create_connection(("127.0.0.1", self.port))
            self._dummies.add(d.getsockname()[1])
        threading.Timer(0.4, self._open.set).start()
        return d

    def _loop(self):
        while not self._closed:
            if not self._open.wait(0.05):
                continue
            with self._lock:
                if not self._open.is_set() or not select.select([self._sock], [], [], 0.05)[0]:
                    continue
                try:
                    s, peer = self._sock.accept()
                except OSError:
                    return
                if peer[1] in self._dummies:
                    s.close()
                    continue
            self.accepted += 1
            threading.Thread(target=self._hold_then_reset, args=(s,), daemon=True).start()

    def _hold_then_reset(self, s):
        time.sleep(self.hold)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()                                       # RST: unread data is thrown away

    def close(self):
        self._closed = True
        self._sock.close()


CONFIG = """
daemon off;
pid gateway.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    upstream app {
        server 127.0.0.1:{sink} max_fails=0;
        server 127.0.0.1:{b0} max_fails=0;
    }
    server {
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location / {
            proxy_pass http://app;
            proxy_next_upstream error timeout;
            proxy_read_timeout 5s;
            proxy_send_timeout 5s;
        }
    }
}
"""


def put_big_body(port):
    """PUT (idempotent: retried if the rules allow) of BODY, sent at once
    from another thread while the answer is read here."""
    c = rawhttp.Conn(port, timeout=30)
    data = rawhttp.build_request("PUT", "/echo", [("Content-Length", str(len(BODY)))]) + BODY

    def send():
        try:
            c.send(data)
        except OSError:
            pass                                        # answered early and closed: fine
    t = threading.Thread(target=send, daemon=True)
    t.start()
    try:
        return c.read_response("PUT")
    finally:
        c.close()
        t.join(timeout=10)


def test_a_partly_sent_body_never_reaches_the_next_backend_cut(backends, gateway):
    sink = Sink()
    answers, dummies = [], []
    try:
        b0, = backends(1)
        gw = gateway(CONFIG, [b0], workers=1, sink=sink.port)

        for _ in range(2):                              # round-robin: one starts at the sink
            dummies.append(sink.hold_back())
            answers.append(put_big_body(gw.port))
    finally:
        sink.close()
        for d in dummies:
            d.close()

    assert sink.accepted >= 1
    whole = hashlib.sha256(BODY).hexdigest()
    for r in answers:
        if r.status == 200:
            # Served by b0 (directly, or after a retry with the whole request: nginx).
            assert r.header("X-Body-Sha256") == whole, "b0 got a different body"
        else:
            assert r.status == 502, r
    # Whatever reached b0 was the whole request: each attempt there answered 200 with the full body.
    assert b0.requests_seen == sum(r.status == 200 for r in answers), (b0.requests_seen, answers)
