"""50 MiB each way, compared by sha256: nothing lost, reordered or truncated."""

import hashlib

from backend import deterministic_bytes, deterministic_sha256

MIB = 1024 * 1024
SIZE = 50 * MIB
TIMEOUT = 30.0

BIG_BODIES = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    client_max_body_size 100m;
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}
"""


def test_50_mib_upload_with_content_length(backends, gateway):
    b0, = backends(1)
    gw = gateway(BIG_BODIES, [b0])

    with gw.conn(timeout=TIMEOUT) as c:
        c.send(b"POST /sha256 HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % SIZE)
        for block in deterministic_bytes(SIZE, seed=11):
            c.send(block)
        r = c.read_response()

    assert r.status == 200
    assert r.header("X-Body-Len") == str(SIZE)
    assert r.header("X-Body-Sha256") == deterministic_sha256(SIZE, seed=11)


def test_50_mib_upload_chunked(backends, gateway):
    b0, = backends(1)
    gw = gateway(BIG_BODIES, [b0])

    with gw.conn(timeout=TIMEOUT) as c:
        c.send(b"POST /sha256 HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
        for block in deterministic_bytes(SIZE, seed=12):
            c.send(b"%x\r\n%s\r\n" % (len(block), block))
        c.send(b"0\r\n\r\n")
        r = c.read_response()

    assert r.status == 200
    assert r.header("X-Body-Len") == str(SIZE)
    assert r.header("X-Body-Sha256") == deterministic_sha256(SIZE, seed=12)


def test_50_mib_download(backends, gateway):
    b0, = backends(1)
    gw = gateway(BIG_BODIES, [b0])
    received = hashlib.sha256()
    length = 0

    def sink(piece):
        nonlocal length
        received.update(piece)
        length += len(piece)

    with gw.conn(timeout=TIMEOUT) as c:
        r = c.request("GET", "/bytes?n=%d&seed=13" % SIZE, sink=sink)

    assert r.status == 200
    assert length == SIZE
    assert received.hexdigest() == deterministic_sha256(SIZE, seed=13)
