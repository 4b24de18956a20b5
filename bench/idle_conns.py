#!/usr/bin/python3
"""Open N keep-alive connections to a proxy, do one request on each, hold them.

Used by bench/run for the idle-connection memory scenario, and usable by hand:

    taskset -c 0 bench/idle_conns.py --port 8080 --count 10000
    # prints "READY ok=10000 failed=0" once every connection has had its
    # response; measure the proxy's RSS now (grep VmRSS /proc/PID/status).
    # Type "check" + Enter: prints "ALIVE n" (connections the proxy has not
    # closed). EOF (Ctrl-D) or "quit" closes everything and exits.

Each connection sends one GET and reads the whole response, so the proxy has
finished a request on it and holds it exactly as an idle keep-alive client.
Connections are opened in batches: connect + send for a batch, then read the
batch's responses, which keeps the SYN backlog small and the run fast.
"""
import argparse
import resource
import socket
import sys


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def read_response(sock):
    """Read one HTTP/1.1 response (Content-Length or chunked); True if 2xx."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return False
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status_ok = lines[0].split(b" ")[1].startswith(b"2")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    if b"content-length" in headers:
        need = int(headers[b"content-length"])
        while len(body) < need:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            body += chunk
    elif headers.get(b"transfer-encoding") == b"chunked":
        while not body.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                return False
            body += chunk
    return status_ok


def open_batch(host, port, request, n):
    """Connect n sockets, send the request on each, then read each response."""
    socks, failed = [], 0
    for _ in range(n):
        try:
            s = socket.create_connection((host, port), timeout=10)
            s.sendall(request)
            socks.append(s)
        except OSError:
            failed += 1
    kept = []
    for s in socks:
        try:
            if read_response(s):
                kept.append(s)
                continue
        except OSError:
            pass
        failed += 1
        s.close()
    return kept, failed


def count_alive(socks):
    """Connections the peer has not closed: a non-blocking peek either finds
    nothing to read (idle, alive) or data; b"" or an error means closed."""
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1, socket.MSG_PEEK):
                alive += 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--path", default="/small")
    ap.add_argument("--batch", type=int, default=200)
    args = ap.parse_args()

    raise_nofile(args.count + 100)
    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
               "\r\n").encode()
    socks, failed = [], 0
    while len(socks) + failed < args.count:
        n = min(args.batch, args.count - len(socks) - failed)
        kept, bad = open_batch(args.host, args.port, request, n)
        socks += kept
        failed += bad
    print(f"READY ok={len(socks)} failed={failed}", flush=True)

    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "check":
            print(f"ALIVE {count_alive(socks)}", flush=True)
        elif cmd == "quit":
            break
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
