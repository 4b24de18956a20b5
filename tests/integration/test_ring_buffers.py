"""Running out of receive buffers is backpressure, never lost data.

Each worker receives into a ring of provided buffers (core/buf.c). When every
buffer is held (by bytes queued for a peer that reads slowly), a receive ends
with ENOBUFS and the connection waits until an eighth of the ring is free
again. These scenarios shrink the ring to a few buffers with GW_RING_BUFFERS,
run one worker, and check outcomes only: every byte arrives (sha256), nothing
is answered 5xx, nothing is reset, nobody waits forever.

The contract while the ring is dry: a new connection is accepted and waits; it
is served once buffers come back, that is when the readers holding them read
on, or at the latest when send_timeout closes the ones that stopped. What
waits for a buffer never holds one that what it waits for needs: partial
request heads are copied out of the ring as they are parsed, and bytes that
arrive behind a complete request (pipelining, data behind an Upgrade) are
copied out while that request's response is pending.

A stalled reader holds at most its queue (GW_QUEUE_HIGH bytes or 64 pieces),
and only until send_timeout; the end of a response is sent before
keepalive_timeout starts.

Where a scenario is sure to run the ring dry (readers that stop), the counter
gateway_worker_recv_buffer_waits_total proves it did (one that never did would
test nothing); concurrent uploads and tunnels usually do, but not always (with
single-shot receives rarely), so there it is not asserted. Against nginx (GATEWAY_TEST_AGAINST=nginx) the knob and the
counter do not exist; the outcomes are checked all the same."""

import hashlib
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from backend import deterministic_bytes, deterministic_sha256
from conftest import NGINX, run_cli, write_config
from rawhttp import Conn, build_request

MIB = 1024 * 1024
TIMEOUT = 30.0        # every socket operation: far above anything expected, only a bound against hanging

CONF = """
daemon off;
pid gateway.pid;
worker_processes 1;
error_log logs/error.log info;
events { worker_connections 1024; }
http {
    client_max_body_size 64m;
    send_timeout {send_timeout};
    keepalive_timeout {keepalive_timeout};
    proxy_read_timeout 60s;
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $http_connection;
        }
        {metrics}
    }
}
"""
METRICS = "location = /metrics { prometheus; }"


def start(gateway, backend, nbufs=16, send_timeout="60s", keepalive_timeout="75s"):
    """One worker on CONF with a ring of nbufs buffers (None: the built-in count)."""
    env = {"GW_RING_BUFFERS": str(nbufs)} if nbufs else None
    gw = gateway(CONF, [backend], env=env, send_timeout=send_timeout, keepalive_timeout=keepalive_timeout,
                 metrics="" if NGINX else METRICS)
    if nbufs and not NGINX:
        # The port accepts before the worker has logged its setup: wait for the line.
        want, log = "%d x 16384 B provided buffers" % nbufs, ""
        deadline = time.monotonic() + TIMEOUT
        while want not in log and time.monotonic() < deadline:
            time.sleep(0.02)
            log = (gw.prefix / "logs" / "error.log").read_text()
        assert want in log, log
    return gw


def buffer_waits(gw):
    """How many receives found the ring empty so far (None against nginx)."""
    if NGINX:
        return None
    body = gw.get("/metrics", timeout=TIMEOUT).body.decode()
    return sum(int(v) for v in re.findall(r'^gateway_worker_recv_buffer_waits_total\{[^}]*\} (\d+)$', body, re.M))


def assert_ran_dry(gw):
    waits = buffer_waits(gw)
    assert waits is None or waits > 0, "the ring never ran dry: the scenario tested nothing"


def slow_conn(gw, rcvbuf=32 * 1024):
    """A client connection with a small receive buffer, so that when it stops
    reading the gateway's queue for it fills instead of the kernel's buffers."""
    c = Conn(gw.port, timeout=TIMEOUT)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    return c


def run_all(fn, args):
    """fn(arg) for every arg at once, one thread each; results in order (exceptions raised)."""
    with ThreadPoolExecutor(max_workers=len(args)) as pool:
        return list(pool.map(fn, args))


class Digest:
    """A sink for a response body: length and sha256, optionally slow."""

    def __init__(self, pause_every=0, pause=0.0):
        self.sha = hashlib.sha256()
        self.length = 0
        self.pause_every = pause_every
        self.pause = pause
        self._since = 0

    def __call__(self, piece):
        self.sha.update(piece)
        self.length += len(piece)
        self._since += len(piece)
        if self.pause_every and self._since >= self.pause_every:
            self._since = 0
            time.sleep(self.pause)


def read_many_chunks(c):
    """(length, sha256) of a chunked body whose head was read: parsed in place,
    for a body of many small chunks (rawhttp's reader is not made for that)."""
    buf, pos, sha, length = c.buf, 0, hashlib.sha256(), 0

    def need(n):
        while len(buf) < n:
            data = c.sock.recv(256 * 1024)
            if not data:
                raise ConnectionError("closed inside the body")
            buf.extend(data)

    while True:
        end = buf.find(b"\r\n", pos)
        while end < 0:
            need(len(buf) + 1)
            end = buf.find(b"\r\n", pos)
        size = int(bytes(buf[pos:end]).split(b";")[0], 16)
        pos = end + 2
        need(pos + size + 2)
        if size == 0:
            return length, sha.hexdigest()
        sha.update(buf[pos:pos + size])
        length += size
        pos += size + 2


# ---- the knob ----


@pytest.mark.gateway_only("GW_RING_BUFFERS is the gateway's test knob")
@pytest.mark.parametrize("value", ["12", "4", "65536", "abc", "16k", ""])
def test_a_bad_ring_size_stops_the_start_with_a_message(gateway_bin, tmp_path, value):
    conf = write_config(tmp_path, CONF, mapping={"port": 1, "b0": 2, "send_timeout": "60s", "keepalive_timeout": "75s",
                                                 "metrics": METRICS})
    res = run_cli(gateway_bin, ["-p", str(tmp_path), "-c", str(conf)], env=dict(os.environ, GW_RING_BUFFERS=value))

    assert res.returncode == 1
    assert '[emerg] GW_RING_BUFFERS="%s": must be a power of two from 8 to 32768' % value in res.stderr


# ---- downloads: clients that stop reading hold the ring ----


def test_slow_readers_of_large_downloads_get_every_byte(backends, gateway):
    b0, = backends(1)
    gw = start(gateway, b0, nbufs=16)
    n, size = 32, 4 * MIB
    go = threading.Barrier(n, timeout=TIMEOUT)

    def download(i):
        with slow_conn(gw) as c:
            c.send_request("GET", "/bytes?n=%d&seed=%d" % (size, i))
            go.wait()                   # every request is out: now nobody reads for a while
            time.sleep(1.0)
            sink = Digest(pause_every=256 * 1024, pause=0.01 * (i % 4))
            r = c.read_response(sink=sink)
            return r.status, sink.length, sink.sha.hexdigest()

    results = run_all(download, range(n))

    for i, (status, length, sha) in enumerate(results):
        assert (status, length) == (200, size), i
        assert sha == deterministic_sha256(size, seed=i), i
    assert_ran_dry(gw)


# ---- uploads ----


def test_concurrent_large_uploads_arrive_whole(backends, gateway):
    b0, = backends(1)
    gw = start(gateway, b0, nbufs=16)
    n, size = 32, 2 * MIB
    go = threading.Barrier(n, timeout=TIMEOUT)

    def upload(i):
        chunked = i % 2 == 1
        with Conn(gw.port, timeout=TIMEOUT) as c:
            framing = "Transfer-Encoding: chunked" if chunked else "Content-Length: %d" % size
            c.send(b"POST /sha256 HTTP/1.1\r\nHost: test\r\n%s\r\n\r\n" % framing.encode())
            go.wait()
            for k, block in enumerate(deterministic_bytes(size, seed=100 + i)):
                c.send(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                if k % 8 == i % 8:
                    time.sleep(0.02)    # uneven senders
            if chunked:
                c.send(b"0\r\n\r\n")
            r = c.read_response()
            return r.status, r.header("X-Body-Len"), r.header("X-Body-Sha256")

    results = run_all(upload, range(n))

    for i, (status, length, sha) in enumerate(results):
        assert (status, length) == (200, str(size)), i
        assert sha == deterministic_sha256(size, seed=100 + i), i


# ---- a new connection while the ring is dry ----


def hold_the_ring(gw, n, target):
    """n connections that download `target` % i each and read nothing yet."""
    holders = []
    for i in range(n):
        c = slow_conn(gw)
        c.send_request("GET", target % i)
        holders.append(c)
    return holders


def test_a_new_client_is_served_once_stalled_readers_read_on(backends, gateway):
    b0, = backends(1)
    gw = start(gateway, b0, nbufs=16)
    size = 8 * MIB
    holders = hold_the_ring(gw, 4, "/bytes?n=%d&seed=2%%02d" % size)
    try:
        assert b0.wait_for_requests(4, timeout=TIMEOUT)
        time.sleep(2.0)                 # let their queues fill the ring (not asserted: the counter says)
        newcomer = Conn(gw.port, timeout=TIMEOUT)
        newcomer.send_request("GET", "/")

        # The stalled readers read on: buffers come back, the newcomer is answered.
        def drain(i):
            sink = Digest()
            r = holders[i].read_response(sink=sink)
            return r.status, sink.length, sink.sha.hexdigest()
        with ThreadPoolExecutor(max_workers=len(holders)) as pool:
            drained = pool.map(drain, range(len(holders)))
            r = newcomer.read_response()
            drained = list(drained)
        newcomer.close()
    finally:
        for c in holders:
            c.close()

    assert r.status == 200 and r.body == b"backend b0\n"
    for i, (status, length, sha) in enumerate(drained):
        assert (status, length, sha) == (200, size, deterministic_sha256(size, seed=200 + i)), i
    assert_ran_dry(gw)


def test_readers_that_never_read_on_are_closed_at_send_timeout_and_free_the_ring(backends, gateway):
    b0, = backends(1)
    gw = start(gateway, b0, nbufs=16, send_timeout="1s")
    # Responses trickling in small pieces: the holders' queues grow side by
    # side and the ring runs dry before any of them reaches GW_QUEUE_HIGH.
    holders = hold_the_ring(gw, 8, "/chunked?n=4000&size=4096&delay_ms=1&seed=%d")
    try:
        assert b0.wait_for_requests(len(holders), timeout=TIMEOUT)
        time.sleep(1.0)
        # Answered at the latest once send_timeout closed the holders.
        with Conn(gw.port, timeout=TIMEOUT) as newcomer:
            r = newcomer.request("GET", "/")
        # Closed without reading a byte of them (reading would let them go on):
        # the gateway closing a holder closes its upstream connection too.
        deadline = time.monotonic() + TIMEOUT
        while b0.connections_open and time.monotonic() < deadline:
            time.sleep(0.05)
        upstreams_open = b0.connections_open
        closed = [c.closed_by_peer(timeout=TIMEOUT) for c in holders]
    finally:
        for c in holders:
            c.close()

    assert r.status == 200 and r.body == b"backend b0\n"
    assert upstreams_open == 0
    assert closed == [True] * len(holders)
    assert_ran_dry(gw)
    # The upstreams were not blamed for bytes the gateway did not read.
    if not NGINX:
        assert "upstream timed out" not in (gw.prefix / "logs" / "error.log").read_text()


def test_a_reader_of_small_pieces_that_stops_holds_a_bounded_share(backends, gateway):
    """A response streamed in 64-byte chunks to a client that stops reading:
    each piece received holds a whole buffer, so counted in bytes alone its
    queue would take the ring (256 buffers here) long before GW_QUEUE_HIGH.
    Counted in pieces too, it holds a bounded share: others are served
    meanwhile, and the stalled reader, reading on, gets every byte."""
    b0, = backends(1)
    gw = start(gateway, b0, nbufs=256)
    stalled = Conn(gw.port, timeout=TIMEOUT)
    try:
        stalled.send_request("GET", "/chunked?n=200000&size=64&seed=7")
        assert b0.wait_for_requests(1, timeout=TIMEOUT)
        time.sleep(2.0)                 # its queue fills meanwhile (not asserted)
        with Conn(gw.port, timeout=TIMEOUT) as other:
            r = other.request("GET", "/")
        _, status, _, headers = stalled.read_head()
        length, sha = read_many_chunks(stalled)
    finally:
        stalled.close()

    assert r.status == 200 and r.body == b"backend b0\n"
    assert status == 200 and length == 200000 * 64
    assert ("X-Body-Sha256", sha) in headers


# ---- the end of a response ----


def test_a_slow_reader_gets_the_end_of_its_response_before_keepalive_timeout_starts(backends, gateway):
    """The gateway has the whole response long before a slow client has read
    it; keepalive_timeout counts only from when the last byte was sent (until
    then send_timeout applies), so a short one does not cut the body. The
    built-in ring: this is about timers, not about running dry."""
    b0, = backends(1)
    gw = start(gateway, b0, nbufs=None, keepalive_timeout="50ms")
    size = 4 * MIB

    with slow_conn(gw) as c:
        c.send_request("GET", "/bytes?n=%d&seed=9" % size)
        sink = Digest(pause_every=16 * 1024, pause=0.008)
        r = c.read_response(sink=sink)
        closed = c.closed_by_peer(timeout=TIMEOUT)  # then the idle connection is closed

    assert (r.status, sink.length) == (200, size)
    assert sink.sha.hexdigest() == deterministic_sha256(size, seed=9)
    assert closed


# ---- partial heads ----


def test_partial_request_heads_hold_no_buffer(backends, gateway):
    """A crowd of slowloris connections, each with an unfinished head, on a
    ring of 8 buffers: their bytes are copied out of the ring as they are
    parsed, so ordinary clients are served all along, and each head, once
    finished, is answered as sent."""
    b0, = backends(1)
    gw = start(gateway, b0, nbufs=8)
    crowd = []
    try:
        for i in range(64):
            c = Conn(gw.port, timeout=TIMEOUT)
            c.send(b"GET /echo?slow=%d HTTP/1.1\r\nHost: test\r\nX-Part: " % i)
            crowd.append(c)
        for rnd in range(3):            # a header byte more from each, and an ordinary client each round
            for c in crowd:
                c.send(b"x")
            with Conn(gw.port, timeout=TIMEOUT) as ordinary:
                r = ordinary.request("GET", "/?round=%d" % rnd)
            assert r.status == 200 and r.body == b"backend b0\n"
        for c in crowd:
            c.send(b"\r\n\r\n")
        answers = [c.read_response() for c in crowd]
    finally:
        for c in crowd:
            c.close()

    assert [a.status for a in answers] == [200] * len(crowd)
    assert [a.header("X-Uri") for a in answers] == ["/echo?slow=%d" % i for i in range(len(crowd))]


# ---- bytes behind a complete request ----


def test_pipelined_requests_do_not_starve_their_own_responses(backends, gateway):
    """Each client sends a request and, in the same write, the start of the
    next one. While the first response is pending those bytes wait; had they
    stayed in their receive buffers, 16 such clients would hold the whole
    ring, the responses could not be received, and every exchange would
    wait for proxy_read_timeout (then 504)."""
    b0, = backends(1)
    gw = start(gateway, b0, nbufs=16)
    n = 32

    def pipelined(i):
        with Conn(gw.port, timeout=TIMEOUT) as c:
            c.send(build_request("GET", "/delay?ms=300&i=%d" % i) + b"GET /echo?second=%d HTTP/1.1\r\nHo" % i)
            first = c.read_response()
            c.send(b"st: test\r\nContent-Length: 6\r\n\r\nsecond")
            second = c.read_response()
            return first.status, first.body, second.status, second.body, second.header("X-Uri")

    results = run_all(pipelined, range(n))

    for i, res in enumerate(results):
        assert res == (200, b"delayed 300 ms\n", 200, b"second", "/echo?second=%d" % i), i


# ---- a tunnel ----


class EchoTunnelBackend:
    """Answers every upgrade request with a 101, then sends back every byte
    it receives (full duplex, one thread per connection)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn):
        try:
            conn.settimeout(TIMEOUT)
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    return
                head += data
            rest = head[head.index(b"\r\n\r\n") + 4:]
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n" + rest)
            while True:
                data = conn.recv(65536)
                if not data:
                    conn.shutdown(socket.SHUT_WR)
                    return
                conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()


def test_tunnels_echo_every_byte(gateway):
    """Upgraded connections carrying data both ways at once through a tiny
    ring, some of it sent right behind the upgrade request."""
    echo = EchoTunnelBackend()
    try:
        gw = start(gateway, echo, nbufs=16)
        n, size = 8, 2 * MIB

        def tunnel(i):
            with Conn(gw.port, timeout=TIMEOUT) as c:
                payload = b"".join(deterministic_bytes(size, seed=300 + i))
                c.send(b"GET /t%d HTTP/1.1\r\nHost: test\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n" % i
                       + payload[:1000])
                sender = threading.Thread(target=c.send, args=(payload[1000:],))
                sender.start()
                _, status, _, _ = c.read_head()
                got = bytearray(c.buf)
                c.buf.clear()
                while len(got) < size:
                    data = c.sock.recv(256 * 1024)
                    if not data:
                        break
                    got += data
                sender.join(TIMEOUT)
                return status, len(got), hashlib.sha256(got).hexdigest()

        results = run_all(tunnel, range(n))
    finally:
        echo.close()

    for i, (status, length, sha) in enumerate(results):
        assert (status, length, sha) == (101, size, deterministic_sha256(size, seed=300 + i)), i
