"""A raw HTTP/1.1 client for the integration tests: exact bytes out, parsed responses in.

Every socket operation has a timeout, so a test never hangs on a silent server:
a read that times out raises socket.timeout (an OSError) and fails the test.

    with Conn(port) as c:
        c.send(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        r = c.read_response()
        assert r.status == 200
        assert c.closed_by_peer() is False
"""

import socket
import time

DEFAULT_TIMEOUT = 5.0


class ProtocolError(Exception):
    """The server's bytes are not a well-formed HTTP/1.1 response."""


class Response:
    def __init__(self, version, status, reason, headers, body, framing, interim):
        self.version = version      # "HTTP/1.1"
        self.status = status        # int
        self.reason = reason
        self.headers = headers      # [(name, value), ...] as received
        self.body = body            # bytes (b"" when a sink consumed it)
        self.framing = framing      # "content-length" | "chunked" | "close" | "none"
        self.interim = interim      # the 1xx responses that came before, as Response

    def header(self, name, default=None):
        """The first value of header `name` (any case), or default."""
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def header_values(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def connection_tokens(self):
        return {t.strip().lower() for v in self.header_values("connection") for t in v.split(",")}

    def __repr__(self):
        return "<Response %d %s, %d body bytes, %s>" % (self.status, self.reason, len(self.body), self.framing)


class Conn:
    """One client connection to 127.0.0.1:port."""

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def settimeout(self, timeout):
        self.sock.settimeout(timeout)

    # -- sending -----------------------------------------------------------

    def send(self, data):
        self.sock.sendall(data)

    def send_request(self, method, target, headers=(), body=None, version="HTTP/1.1", host="127.0.0.1"):
        """Send one request. A Host header is added unless `host` is None or
        headers has one; Content-Length is added for a bytes body unless
        headers already frame it."""
        self.send(build_request(method, target, headers, body, version, host))

    def request(self, method, target, headers=(), body=None, version="HTTP/1.1", host="127.0.0.1", sink=None):
        """Send one request and read its (final) response."""
        self.send_request(method, target, headers, body, version, host)
        return self.read_response(method=method, sink=sink)

    def get(self, target, headers=()):
        return self.request("GET", target, headers)

    # -- receiving ---------------------------------------------------------

    def _fill(self):
        if self.eof:
            raise ProtocolError("connection closed; have %r" % bytes(self.buf[:200]))
        data = self.sock.recv(256 * 1024)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _line(self, limit=64 * 1024):
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[:end + 2]
                return line
            if len(self.buf) > limit:
                raise ProtocolError("line longer than %d bytes" % limit)
            if not self._fill():
                raise ProtocolError("connection closed inside a line: %r" % bytes(self.buf[:200]))

    def _exact(self, n, sink):
        while n > 0:
            if not self.buf and not self._fill():
                raise ProtocolError("connection closed with %d body bytes missing" % n)
            piece = bytes(self.buf[:n])
            del self.buf[:len(piece)]
            n -= len(piece)
            sink(piece)

    def read_head(self):
        """Read a status line and headers: (version, status, reason, headers)."""
        while not self.buf:
            if not self._fill():
                raise ProtocolError("connection closed before a response")
        line = self._line().decode("latin-1")
        parts = line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit() or len(parts[1]) != 3:
            raise ProtocolError("bad status line %r" % line)
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        while True:
            line = self._line().decode("latin-1")
            if line == "":
                return version, status, reason, headers
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError("bad header line %r" % line)
            headers.append((name, value.strip(" \t")))

    def read_response(self, method="GET", sink=None, interim_ok=True):
        """Read one final response (1xx interim responses are collected in
        .interim). With `sink`, body bytes are passed to sink(piece) instead
        of being kept (for big bodies)."""
        interim = []
        while True:
            version, status, reason, headers = self.read_head()
            if 100 <= status < 200 and status != 101:
                interim.append(Response(version, status, reason, headers, b"", "none", []))
                if not interim_ok:
                    return interim[-1]
                continue
            break
        kept = []
        out = sink if sink is not None else kept.append
        r = Response(version, status, reason, headers, b"", "none", interim)
        te = [v.lower() for v in r.header_values("transfer-encoding")]
        cl = r.header_values("content-length")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif te:
            if te[-1].split(",")[-1].strip() != "chunked":
                raise ProtocolError("unknown transfer-encoding %r" % te)
            r.framing = "chunked"
            while True:
                size_line = self._line().split(b";")[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    raise ProtocolError("bad chunk size line %r" % size_line) from None
                if size == 0:
                    while self._line() != b"":  # trailers
                        pass
                    break
                self._exact(size, out)
                if self._line() != b"":
                    raise ProtocolError("chunk data not followed by CRLF")
        elif cl:
            if len(set(cl)) != 1 or not cl[0].isdigit():
                raise ProtocolError("bad content-length %r" % cl)
            r.framing = "content-length"
            self._exact(int(cl[0]), out)
        else:
            r.framing = "close"
            while True:
                if self.buf:
                    out(bytes(self.buf))
                    self.buf.clear()
                if not self._fill():
                    break
        r.body = b"".join(kept)
        return r

    def closed_by_peer(self, timeout=3.0):
        """Wait up to `timeout` for the server to close: True on EOF or reset,
        False if the connection is still open then. Bytes that arrive first
        are kept in self.buf."""
        if self.eof:
            return True
        deadline = time.monotonic() + timeout
        old = self.sock.gettimeout()
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                try:
                    data = self.sock.recv(65536)
                except socket.timeout:
                    return False
                except (ConnectionResetError, BrokenPipeError):
                    self.eof = True
                    return True
                if not data:
                    self.eof = True
                    return True
                self.buf += data
        finally:
            self.sock.settimeout(old)


def build_request(method, target, headers=(), body=None, version="HTTP/1.1", host="127.0.0.1"):
    headers = list(headers)
    names = {n.lower() for n, _ in headers}
    if host is not None and "host" not in names:
        headers.insert(0, ("Host", host))
    if isinstance(body, (bytes, bytearray)) and "content-length" not in names and "transfer-encoding" not in names:
        if body or method in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(body))))
    head = "%s %s %s\r\n" % (method, target, version)
    head += "".join("%s: %s\r\n" % h for h in headers) + "\r\n"
    return head.encode("latin-1") + (bytes(body) if body else b"")


def chunked(pieces):
    """Encode an iterable of bytes as a chunked body (with the final 0 chunk)."""
    out = bytearray()
    for p in pieces:
        if p:
            out += b"%x\r\n%s\r\n" % (len(p), p)
    out += b"0\r\n\r\n"
    return bytes(out)


def get(port, target, headers=(), timeout=DEFAULT_TIMEOUT):
    """One GET on a fresh connection."""
    with Conn(port, timeout=timeout) as c:
        return c.request("GET", target, headers)


def exchange(port, data, timeout=DEFAULT_TIMEOUT):
    """Send raw bytes on a fresh connection; read one response; report
    whether the server then closed: (response, closed)."""
    with Conn(port, timeout=timeout) as c:
        c.send(data)
        r = c.read_response()
        return r, c.closed_by_peer()
