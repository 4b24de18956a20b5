#!/usr/bin/python3
"""A small scriptable HTTP/1.1 backend for the gateway's integration tests and demo.

Standalone:   python3 tests/backend.py --port 3001 --name app1
In-process:   b = Backend(name="app1").start(); ... b.port, b.requests_seen ...; b.stop()

One thread per connection, keep-alive and pipelining, Content-Length and
chunked request bodies. Every response carries `X-Backend: NAME`. What it does
is chosen by the path:

  /                   200 "backend NAME\\n" (also any unknown path)
  /echo               200, body = request body; X-Method, X-Uri (raw target),
                      X-Body-Sha256, X-Body-Len, X-Request-Framing
                      (content-length | chunked | none)
  /headers            200 JSON {request_line, method, target, version,
                      headers: [[name, value], ...]} exactly as received
  /status/CODE        that status; 204 and 304 without a body
  /respond?status=CODE&h=NAME:VALUE&h=...
                      that status (default 200) with these response headers
                      (repeat h for several, in order), body "respond\\n"
  /delay?ms=N         sleep N ms, then 200
  /chunked?n=N&size=S[&delay_ms=D][&seed=K]
                      chunked response: N chunks of S bytes of the
                      deterministic stream (see deterministic_bytes), sleeping
                      D ms before each chunk; X-Body-Sha256 of the whole body
  /bytes?n=N[&seed=K][&framing=length|chunked|close]
                      N bytes of the deterministic stream; `close` sends no
                      length and closes the connection at the end
  /sha256             reads the body streaming and answers "HEX LEN\\n" with
                      X-Body-Sha256 and X-Body-Len
  /conn-id            body = the id of this connection (1, 2, ... per backend)
  /close-early        closes the connection without answering
  /close-mid?n=N      Content-Length N, then N/2 body bytes, then closes
  /garbage[?kind=status|header]
                      a malformed status line (default) or a valid status
                      line followed by a malformed header line, then closes
  /reset              resets the connection (SO_LINGER 0 then close: RST)

Counters for in-process use: requests_seen, connections_accepted,
connections_open and `requests` (the last RECORDED requests as
RequestRecord: conn_id, method, target, headers).

Behaviour switches (constructor keywords, or attributes changed at any time
in-process; --respond-as / --keepalive-idle / --close-after standalone):

  respond_as="/status/503"   answer EVERY request as if its target were this
                             (path and query): a backend that fails, resets
                             (/reset), is slow (/delay?ms=N)... whatever the
                             client asked for. None (default): the target.
  keepalive_idle=0.2         close a connection that waited this many seconds
                             for its next request (as a server's keep-alive
                             timeout does); None: IDLE_TIMEOUT.
  close_after=N              close a connection right after its N-th response,
                             silently (no Connection: close): the stale
                             keep-alive connection a proxy must not trust.

Standard library only.
"""

import argparse
import collections
import hashlib
import http
import json
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

MAX_HEAD = 64 * 1024        # request line + headers
IDLE_TIMEOUT = 60.0         # seconds a connection may sit idle (also any single recv)
STREAM_BLOCK = 64 * 1024    # deterministic stream block size
RECORDED = 1000             # how many recent requests `requests` keeps


def stream_block(seed, index):
    """Block `index` of the deterministic stream for `seed` (STREAM_BLOCK bytes)."""
    return hashlib.shake_256(b"gateway-test-stream:%d:%d" % (seed, index)).digest(STREAM_BLOCK)


def deterministic_bytes(n, seed=0):
    """Yield the first n bytes of the stream for `seed`, a block at a time.

    The stream is shake_256("gateway-test-stream:SEED:I") for I = 0, 1, ...,
    each STREAM_BLOCK bytes long, concatenated: tests recompute it to compare.
    """
    index = 0
    while n > 0:
        block = stream_block(seed, index)
        if n < len(block):
            block = block[:n]
        yield block
        n -= len(block)
        index += 1


def deterministic_sha256(n, seed=0):
    """Hex sha256 of the first n bytes of the stream for `seed`."""
    h = hashlib.sha256()
    for block in deterministic_bytes(n, seed):
        h.update(block)
    return h.hexdigest()


class BadRequest(Exception):
    """The client sent something that is not HTTP/1.1; answer 400 and close."""


class PeerClosed(Exception):
    """The peer closed (or reset) the connection in the middle of a message."""


class _Reader:
    """Buffered reads from a socket: lines with a length limit, exact counts."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        data = self.sock.recv(256 * 1024)
        if not data:
            raise PeerClosed()
        self.buf += data

    def read_head(self):
        """Bytes up to and including the blank line; None on EOF before any byte."""
        while True:
            # Tolerate empty lines before a request (RFC 9112 2.2).
            while self.buf.startswith(b"\r\n"):
                del self.buf[:2]
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buf[:end + 4])
                del self.buf[:end + 4]
                return head
            if len(self.buf) > MAX_HEAD:
                raise BadRequest("request head too large")
            try:
                self._fill()
            except PeerClosed:
                if self.buf:
                    raise
                return None

    def read_line(self, limit=4096):
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[:end + 2]
                return line
            if len(self.buf) > limit:
                raise BadRequest("line too long")
            self._fill()

    def read_some(self, limit):
        """At least one byte, at most `limit`."""
        if not self.buf:
            self._fill()
        data = bytes(self.buf[:limit])
        del self.buf[:limit]
        return data

    def buffered(self):
        return len(self.buf)


class Request:
    """One parsed request; the body is read through body_pieces()/read_body()."""

    def __init__(self, reader, head):
        self._reader = reader
        lines = head[:-4].split(b"\r\n")
        self.request_line = lines[0].decode("latin-1")
        parts = self.request_line.split(" ")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise BadRequest("bad request line")
        self.method, self.target, self.version = parts
        if self.version not in ("HTTP/1.0", "HTTP/1.1"):
            raise BadRequest("bad version")
        self.headers = []
        for raw in lines[1:]:
            line = raw.decode("latin-1")
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip() or " " in name or "\t" in name:
                raise BadRequest("bad header line %r" % line)
            self.headers.append((name, value.strip(" \t")))
        url = urllib.parse.urlsplit(self.target)
        self.path = url.path
        self.query = dict(urllib.parse.parse_qsl(url.query))

        te = self.header_values("transfer-encoding")
        cl = self.header_values("content-length")
        if te:
            codings = [c.strip().lower() for v in te for c in v.split(",") if c.strip()]
            if cl or not codings or codings[-1] != "chunked":
                raise BadRequest("bad transfer-encoding")
            self.framing = "chunked"
            self._remaining = None
        elif cl:
            if len(set(cl)) != 1 or not cl[0].isdigit():
                raise BadRequest("bad content-length")
            self.framing = "content-length"
            self._remaining = int(cl[0])
        else:
            self.framing = "none"
            self._remaining = 0
        self._chunk_left = 0
        self._done = self.framing == "none" or self._remaining == 0
        self.wants_continue = any(v.lower() == "100-continue" for v in self.header_values("expect"))

    def header_values(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def connection_tokens(self):
        return {t.strip().lower() for v in self.header_values("connection") for t in v.split(",")}

    def keep_alive(self):
        tokens = self.connection_tokens()
        if "close" in tokens:
            return False
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return True

    def body_pieces(self):
        """Yield the request body in pieces as they arrive (de-chunked)."""
        while not self._done:
            if self.framing == "content-length":
                piece = self._reader.read_some(min(self._remaining, 256 * 1024))
                self._remaining -= len(piece)
                self._done = self._remaining == 0
                yield piece
                continue
            if self._chunk_left == 0:
                size_line = self._reader.read_line().split(b";")[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    raise BadRequest("bad chunk size %r" % size_line) from None
                if size == 0:
                    while self._reader.read_line(MAX_HEAD):  # trailers until the blank line
                        pass
                    self._done = True
                    return
                self._chunk_left = size
            piece = self._reader.read_some(min(self._chunk_left, 256 * 1024))
            self._chunk_left -= len(piece)
            if self._chunk_left == 0 and self._reader.read_line() != b"":
                raise BadRequest("chunk not followed by CRLF")
            yield piece

    def read_body(self):
        return b"".join(self.body_pieces())

    def drain(self):
        for _ in self.body_pieces():
            pass


RequestRecord = collections.namedtuple("RequestRecord", "conn_id method target headers")


class _CloseConnection(Exception):
    """A handler asks to end the connection without further ado."""


class Backend:
    """The backend server. start() binds (port 0 picks a free port) and serves
    from background threads until stop()."""

    def __init__(self, name="backend", host="127.0.0.1", port=0, quiet=True, respond_as=None,
                 keepalive_idle=None, close_after=None):
        self.name = name
        self.host = host
        self.port = port
        self.quiet = quiet
        self.respond_as = respond_as            # see the module docstring
        self.keepalive_idle = keepalive_idle
        self.close_after = close_after
        self.requests_seen = 0
        self.connections_accepted = 0
        self.connections_open = 0
        self.requests = collections.deque(maxlen=RECORDED)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._listener = None
        self._conns = set()
        self._threads = []
        self._stopping = False
        self._stopped = threading.Event()    # wakes handlers that sleep

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.host, self.port))
        ls.listen(512)
        self.port = ls.getsockname()[1]
        self._listener = ls
        t = threading.Thread(target=self._accept_loop, name="backend-%s-accept" % self.name, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        with self._lock:
            self._stopping = True
            conns = list(self._conns)
        self._stopped.set()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
            except OSError:
                pass
            self._listener.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in list(self._threads):
            t.join(timeout=2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_for_requests(self, n, timeout=5.0):
        """Block until at least n requests were seen; returns whether they were."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.requests_seen < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def _sleep(self, seconds):
        """Sleep, unless the backend stops meanwhile: then end the connection."""
        if self._stopped.wait(seconds):
            raise _CloseConnection()

    def _log(self, msg):
        if not self.quiet:
            print("[%s] %s" % (self.name, msg), file=sys.stderr, flush=True)

    def _accept_loop(self):
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._stopping:
                    sock.close()
                    return
                self.connections_accepted += 1
                self.connections_open += 1
                conn_id = self.connections_accepted
                self._conns.add(sock)
                self._threads = [t for t in self._threads if t.is_alive()]
                t = threading.Thread(target=self._serve, args=(sock, conn_id),
                                     name="backend-%s-conn-%d" % (self.name, conn_id), daemon=True)
                self._threads.append(t)
            t.start()

    # -- one connection ----------------------------------------------------

    def _serve(self, sock, conn_id):
        sock.settimeout(IDLE_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = _Reader(sock)
        answered = 0
        try:
            while True:
                idle = self.keepalive_idle
                if idle is not None and reader.buffered() == 0:
                    ready, _, _ = select.select([sock], [], [], idle)
                    if not ready:
                        self._log("connection %d idle for %g s: closing" % (conn_id, idle))
                        break
                head = reader.read_head()
                if head is None:
                    break
                req = Request(reader, head)
                with self._changed:
                    self.requests_seen += 1
                    self.requests.append(RequestRecord(conn_id, req.method, req.target, list(req.headers)))
                    self._changed.notify_all()
                self._log("%s %s" % (req.method, req.target))
                if req.wants_continue and not req._done and reader.buffered() == 0:
                    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                keep = self._dispatch(sock, req, conn_id)
                if not keep:
                    break
                req.drain()
                answered += 1
                if self.close_after is not None and answered >= self.close_after:
                    break
        except BadRequest as e:
            self._log("bad request: %s" % e)
            try:
                self._send(sock, None, 400, [], b"bad request\n", keep_alive=False)
            except OSError:
                pass
        except (_CloseConnection, PeerClosed, OSError):
            pass
        finally:
            with self._changed:
                self._conns.discard(sock)
                self.connections_open -= 1
                self._changed.notify_all()
            try:
                sock.close()
            except OSError:
                pass

    def _send(self, sock, req, status, headers, body=b"", keep_alive=True, length=True):
        """Send a complete response; the body is bytes or an iterable of bytes."""
        reason = _reason(status)
        head = ["HTTP/1.1 %d %s" % (status, reason), "X-Backend: %s" % self.name]
        head += ["%s: %s" % h for h in headers]
        no_body = status in (204, 304) or 100 <= status < 200
        if length and not no_body:
            size = len(body) if isinstance(body, (bytes, bytearray)) else None
            if size is not None:
                head.append("Content-Length: %d" % size)
        if not keep_alive:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if no_body or (req is not None and req.method == "HEAD"):
            sock.sendall(data)
            return
        if isinstance(body, (bytes, bytearray)):
            sock.sendall(data + body)
            return
        sock.sendall(data)
        for piece in body:
            sock.sendall(piece)

    def _dispatch(self, sock, req, conn_id):
        """Answer one request. Returns whether the connection may serve another."""
        keep = req.keep_alive()
        path, q = req.path, req.query
        if self.respond_as is not None:
            url = urllib.parse.urlsplit(self.respond_as)
            path, q = url.path, dict(urllib.parse.parse_qsl(url.query))

        def num(key, default):
            try:
                return int(q.get(key, default))
            except ValueError:
                return default

        if path == "/echo":
            body = req.read_body()
            headers = [("Content-Type", "application/octet-stream"),
                       ("X-Method", req.method), ("X-Uri", req.target),
                       ("X-Body-Sha256", hashlib.sha256(body).hexdigest()),
                       ("X-Body-Len", str(len(body))), ("X-Request-Framing", req.framing)]
            self._send(sock, req, 200, headers, body, keep)
        elif path == "/headers":
            req.drain()
            doc = {"request_line": req.request_line, "method": req.method, "target": req.target,
                   "version": req.version, "headers": [list(h) for h in req.headers]}
            body = (json.dumps(doc, indent=1) + "\n").encode()
            self._send(sock, req, 200, [("Content-Type", "application/json")], body, keep)
        elif path == "/respond":
            req.drain()
            pairs = urllib.parse.parse_qsl(urllib.parse.urlsplit(self.respond_as or req.target).query)
            code = num("status", 200)
            headers = [tuple(v.split(":", 1)) for k, v in pairs if k == "h" and ":" in v]
            self._send(sock, req, code, headers, b"respond\n", keep)
        elif path.startswith("/status/"):
            req.drain()
            try:
                code = int(path[len("/status/"):])
            except ValueError:
                code = 400
            if not 200 <= code <= 599:
                code = 400
            self._send(sock, req, code, [("Content-Type", "text/plain")], b"status %d\n" % code, keep)
        elif path == "/delay":
            req.drain()
            ms = num("ms", 1000)
            self._sleep(ms / 1000.0)
            self._send(sock, req, 200, [("Content-Type", "text/plain")], b"delayed %d ms\n" % ms, keep)
        elif path == "/chunked":
            req.drain()
            n, size, delay, seed = num("n", 3), num("size", 16), num("delay_ms", 0), num("seed", 0)
            body = b"".join(deterministic_bytes(n * size, seed))
            headers = [("Content-Type", "application/octet-stream"), ("Transfer-Encoding", "chunked"),
                       ("X-Body-Sha256", hashlib.sha256(body).hexdigest())]

            def chunks():
                for i in range(n):
                    if delay:
                        self._sleep(delay / 1000.0)
                    piece = body[i * size:(i + 1) * size]
                    if piece:
                        yield b"%x\r\n%s\r\n" % (len(piece), piece)
                yield b"0\r\n\r\n"
            self._send(sock, req, 200, headers, chunks(), keep, length=False)
        elif path == "/bytes":
            req.drain()
            n, seed, framing = num("n", 1024), num("seed", 0), q.get("framing", "length")
            headers = [("Content-Type", "application/octet-stream")]
            if framing == "chunked":
                headers.append(("Transfer-Encoding", "chunked"))
                pieces = (b"%x\r\n%s\r\n" % (len(b), b) for b in deterministic_bytes(n, seed))
                self._send(sock, req, 200, headers, _chain(pieces, [b"0\r\n\r\n"]), keep, length=False)
            elif framing == "close":
                self._send(sock, req, 200, headers, deterministic_bytes(n, seed), False, length=False)
                keep = False
            else:
                headers.append(("Content-Length", str(n)))
                self._send(sock, req, 200, headers, deterministic_bytes(n, seed), keep, length=False)
        elif path == "/sha256":
            h, total = hashlib.sha256(), 0
            for piece in req.body_pieces():
                h.update(piece)
                total += len(piece)
            headers = [("Content-Type", "text/plain"), ("X-Body-Sha256", h.hexdigest()),
                       ("X-Body-Len", str(total)), ("X-Request-Framing", req.framing)]
            self._send(sock, req, 200, headers, b"%s %d\n" % (h.hexdigest().encode(), total), keep)
        elif path == "/conn-id":
            req.drain()
            self._send(sock, req, 200, [("Content-Type", "text/plain")], b"%d" % conn_id, keep)
        elif path == "/close-early":
            req.drain()
            raise _CloseConnection()
        elif path == "/close-mid":
            req.drain()
            n = num("n", 1000)
            head = "HTTP/1.1 200 OK\r\nX-Backend: %s\r\nContent-Length: %d\r\n\r\n" % (self.name, n)
            sock.sendall(head.encode() + b"".join(deterministic_bytes(n // 2)))
            raise _CloseConnection()
        elif path == "/garbage":
            req.drain()
            if q.get("kind") == "header":
                sock.sendall(b"HTTP/1.1 200 OK\r\nX-Backend: %s\r\nthis line is not a header\r\n"
                             b"Content-Length: 2\r\n\r\nok" % self.name.encode())
            else:
                sock.sendall(b"HTTP/1.1 OK-ish garbage \x01\x02\r\nX-Backend: %s\r\n\r\n" % self.name.encode())
            raise _CloseConnection()
        elif path == "/reset":
            req.drain()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raise _CloseConnection()
        else:
            req.drain()
            self._send(sock, req, 200, [("Content-Type", "text/plain")], b"backend %s\n" % self.name.encode(), keep)
        return keep


def _chain(*iterables):
    for it in iterables:
        yield from it


def _reason(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Scriptable HTTP/1.1 backend for the gateway's tests and demo. "
                    "Every response carries X-Backend: NAME. Paths: / /echo /headers /status/CODE "
                    "/delay?ms=N /chunked?n=N&size=S[&delay_ms=D] /bytes?n=N[&seed=K][&framing=length|chunked|close] "
                    "/sha256 /conn-id /close-early /close-mid?n=N /garbage[?kind=header] /reset "
                    "(see the module docstring for details).")
    ap.add_argument("--port", type=int, required=True, help="TCP port to listen on (0 picks a free one)")
    ap.add_argument("--name", default="backend", help="name shown in X-Backend and in the / body")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--quiet", action="store_true", help="do not log each request to stderr")
    ap.add_argument("--respond-as", metavar="TARGET",
                    help="answer every request as if its target were TARGET (e.g. /delay?ms=30, /status/503)")
    ap.add_argument("--keepalive-idle", type=float, metavar="S",
                    help="close a connection idle for S seconds between requests")
    ap.add_argument("--close-after", type=int, metavar="N",
                    help="close a connection silently after its N-th response")
    args = ap.parse_args(argv)

    backend = Backend(name=args.name, host=args.host, port=args.port, quiet=args.quiet,
                      respond_as=args.respond_as, keepalive_idle=args.keepalive_idle,
                      close_after=args.close_after).start()
    print("backend %s listening on %s:%d" % (args.name, args.host, backend.port), file=sys.stderr, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
    backend.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
