"""gzip for proxied responses (nginx's ngx_http_gzip_module): which responses
are compressed (Accept-Encoding, status, Content-Encoding, gzip_types,
gzip_min_length, HEAD, gzip_http_version, gzip_proxied for requests with Via,
gzip_disable), what the head becomes (Content-Encoding, Vary, no
Content-Length, chunked, weak ETag), and that the compressed body inflates to
exactly the backend's bytes whatever its framing. Runs against nginx too
(GATEWAY_TEST_AGAINST=nginx)."""

import email.utils
import hashlib
import time
import urllib.parse
import zlib

import pytest

from backend import deterministic_bytes, deterministic_sha256
from conftest import NGINX

GZ = (("Accept-Encoding", "gzip, deflate"),)

CONF = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    gzip on;
    gzip_types application/octet-stream text/plain;
    gzip_min_length 1;
    server {
        listen 127.0.0.1:{port};
        location / { proxy_pass http://127.0.0.1:{b0}; }
        location /vary/ { gzip_vary on; proxy_pass http://127.0.0.1:{b0}/; }
        location /min/ { gzip_min_length 2000; proxy_pass http://127.0.0.1:{b0}/; }
        location /css/ { gzip_types text/css; gzip_types IMAGE/svg+xml; proxy_pass http://127.0.0.1:{b0}/; }
        location /any/ { gzip_proxied any; proxy_pass http://127.0.0.1:{b0}/; }
        location /expired/ { gzip_proxied expired; proxy_pass http://127.0.0.1:{b0}/; }
        location /nocache/ { gzip_proxied no-cache private; proxy_pass http://127.0.0.1:{b0}/; }
        location /noetag/ { gzip_proxied no_etag; proxy_pass http://127.0.0.1:{b0}/; }
        location /v10/ { gzip_http_version 1.0; proxy_pass http://127.0.0.1:{b0}/; }
        location /disable/ { gzip_disable "^curl/" msie6; proxy_pass http://127.0.0.1:{b0}/; }
        location /level9/ { gzip_comp_level 9; gzip_types *; proxy_pass http://127.0.0.1:{b0}/; }
        location /off/ { gzip off; proxy_pass http://127.0.0.1:{b0}/; }
        location /stream/ { proxy_buffering off; proxy_pass http://127.0.0.1:{b0}/; }
    }
}
"""


@pytest.fixture
def gw(backends, gateway):
    b0, = backends(1)
    return gateway(CONF, [b0])


def fetch(gw, target, headers=GZ, method="GET", version="HTTP/1.1"):
    with gw.conn() as c:
        return c.request(method, target, headers=headers, version=version)


def data(n, seed=0):
    return b"".join(deterministic_bytes(n, seed))


def compressed(r):
    """The response went out gzip'ed, as nginx sends it: no length, chunked to HTTP/1.1."""
    if r.header("Content-Encoding") != "gzip":
        return False
    assert r.header("Content-Length") is None, r.headers
    return True


def inflate(r):
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = d.decompress(r.body) + d.flush()
    assert d.eof and d.unused_data == b"", "one complete gzip member"
    return out


# ---- the body inflates to exactly the backend's ----

@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_large_body_of_any_framing_inflates_to_the_backends_bytes(gw, framing):
    n = 3 * 1024 * 1024 + 17
    r = fetch(gw, "/bytes?n=%d&seed=3&framing=%s" % (n, framing))

    assert r.status == 200
    assert compressed(r)
    assert r.framing == "chunked"
    assert r.header_values("Content-Encoding") == ["gzip"]
    assert inflate(r) == data(n, 3)


def test_many_small_chunks(gw):
    r = fetch(gw, "/chunked?n=200&size=333&seed=5")

    assert compressed(r) and r.framing == "chunked"
    assert inflate(r) == data(200 * 333, 5)


def test_compressible_body_shrinks_and_level_9_works(gw):
    # /headers echoes the request: JSON (not listed but gzip_types * here), padded with a long header
    pad = "x" * 6000
    r = fetch(gw, "/level9/headers", headers=GZ + (("X-Pad", pad),))

    assert r.status == 200 and compressed(r)
    body = inflate(r)
    assert pad.encode() in body
    assert len(r.body) < len(body) / 10


def test_keep_alive_goes_on_after_a_compressed_response(gw):
    with gw.conn() as c:
        for i in range(3):
            r = c.request("GET", "/bytes?n=5000&seed=%d&framing=close" % i, headers=GZ)
            assert compressed(r) and inflate(r) == data(5000, i)
        r = c.request("GET", "/bytes?n=100", headers=())
        assert r.header("Content-Encoding") is None and r.body == data(100)


def test_a_slow_stream_is_not_held_back(gw):
    """Each piece the backend sends reaches the client while the backend
    still holds the rest back (nginx: with proxy_buffering off)."""
    with gw.conn(timeout=10) as c:
        c.send_request("GET", "/stream/chunked?n=3&size=1000&delay_ms=1500&seed=2", headers=GZ)
        _, status, _, headers = c.read_head()
        assert status == 200
        assert dict((n.lower(), v) for n, v in headers)["content-encoding"] == "gzip"
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        got = b""
        while len(got) < 1000:  # the first piece, well before the second one is sent
            size = int(c._line().split(b";")[0], 16)
            assert size > 0, "the stream ended before the first piece came out"
            piece = bytearray()
            c._exact(size, piece.extend)
            assert c._line() == b""
            got += d.decompress(bytes(piece))
        assert got == data(3000, 2)[:1000]


def sanitized(pid):
    """An ASan build keeps freed blocks in quarantine: its RSS says nothing about what is held."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_a_reader_that_stops_holds_the_backend_back(gw):
    """Backpressure survives compression: while the client reads nothing, the
    gateway does not take in (and compress) the whole body; then every byte
    comes out right. (Against nginx only the bytes are checked: its workers
    are other processes, and it buffers to disk by design.)"""
    n = 32 * 1024 * 1024
    with gw.conn(timeout=30) as c:
        # warm up: a transfer as big touches every page of the receive buffer ring once
        c.request("GET", "/bytes?n=%d" % n, sink=lambda piece: None)
        c.request("GET", "/bytes?n=%d" % (1 << 20), headers=GZ, sink=lambda piece: None)
        before = rss_kib(gw.pid)
        c.send_request("GET", "/bytes?n=%d&seed=9" % n, headers=GZ)
        time.sleep(1.5)  # time enough to swallow it all, were nothing holding it back
        grown = rss_kib(gw.pid) - before
        d, h, total = zlib.decompressobj(16 + zlib.MAX_WBITS), hashlib.sha256(), [0]

        def sink(piece):
            out = d.decompress(piece)
            h.update(out)
            total[0] += len(out)
        r = c.read_response(sink=sink)

    assert compressed(r) and d.eof
    assert (total[0], h.hexdigest()) == (n, deterministic_sha256(n, 9))
    if not NGINX and not sanitized(gw.pid):
        assert grown < 12 * 1024, "the gateway grew by %d KiB while the client read nothing" % grown


# ---- what is not compressed ----

def test_no_accept_encoding_no_compression(gw):
    r = fetch(gw, "/bytes?n=5000", headers=())

    assert r.header("Content-Encoding") is None
    assert r.header("Content-Length") == "5000"
    assert r.body == data(5000)


@pytest.mark.parametrize("ae", ["deflate", "gzip;q=0", "gzip; q=0.000", "x-gzip", "br, identity"])
def test_accept_encoding_without_gzip(gw, ae):
    r = fetch(gw, "/bytes?n=5000", headers=(("Accept-Encoding", ae),))

    assert r.header("Content-Encoding") is None and r.body == data(5000)


@pytest.mark.parametrize("ae", ["gzip", "GZIP", "deflate, gzip", "br,gzip;q=0.5", "gzip; q=1"])
def test_accept_encoding_with_gzip(gw, ae):
    r = fetch(gw, "/bytes?n=5000", headers=(("Accept-Encoding", ae),))

    assert compressed(r) and inflate(r) == data(5000)


def test_type_not_listed_is_not_compressed_text_html_always_is(gw):
    r = fetch(gw, "/css/bytes?n=5000")
    assert r.header("Content-Encoding") is None and r.body == data(5000)

    r = fetch(gw, "/css/respond?h=Content-Type:text/css")
    assert compressed(r) and inflate(r) == b"respond\n"

    r = fetch(gw, "/css/respond?h=Content-Type:TEXT/HTML;%20charset=utf-8")
    assert compressed(r) and inflate(r) == b"respond\n"

    r = fetch(gw, "/css/respond?h=Content-Type:image/svg%2Bxml")  # a second gzip_types adds to the first
    assert compressed(r) and inflate(r) == b"respond\n"

    r = fetch(gw, "/css/respond?h=X-No-Type:1")  # no Content-Type at all
    assert r.header("Content-Encoding") is None and r.body == b"respond\n"


def test_below_min_length_only_when_the_length_is_known(gw):
    r = fetch(gw, "/min/bytes?n=1999")
    assert r.header("Content-Encoding") is None and r.header("Content-Length") == "1999"

    r = fetch(gw, "/min/bytes?n=2000")
    assert compressed(r) and inflate(r) == data(2000)

    r = fetch(gw, "/min/bytes?n=100&framing=chunked")  # no length: compressed
    assert compressed(r) and inflate(r) == data(100)


def test_head_gets_the_head_a_get_would_without_framing(gw):
    """nginx: a HEAD answer says gzip as the GET's would, with neither length nor chunked."""
    with gw.conn() as c:
        for target in ["/vary/bytes?n=5000", "/vary/bytes?n=5000&framing=chunked"]:
            r = c.request("HEAD", target, headers=GZ)
            assert r.status == 200
            assert r.header("Content-Encoding") == "gzip" and r.header("Vary") == "Accept-Encoding"
            assert r.header("Content-Length") is None and r.header("Transfer-Encoding") is None
        r = c.request("HEAD", "/vary/bytes?n=5000", headers=())
        assert r.header("Content-Encoding") is None and r.header("Content-Length") == "5000"
        assert r.header("Vary") == "Accept-Encoding"
        r = c.request("GET", "/bytes?n=5000", headers=GZ)  # the connection goes on
        assert compressed(r) and inflate(r) == data(5000)


def test_already_encoded_passes_untouched(gw):
    r = fetch(gw, "/respond?h=Content-Type:text/plain&h=Content-Encoding:br")

    assert r.header_values("Content-Encoding") == ["br"]
    assert r.header("Content-Length") == "8" and r.body == b"respond\n"


@pytest.mark.parametrize("code", [204, 304])
def test_no_body_statuses(gw, code):
    r = fetch(gw, "/status/%d" % code)

    assert r.status == code
    assert r.header("Content-Encoding") is None
    assert r.header("Transfer-Encoding") is None


@pytest.mark.parametrize("code,gzipped", [(403, True), (404, True), (500, False), (201, False), (503, False)])
def test_only_200_403_404_are_compressed(gw, code, gzipped):
    r = fetch(gw, "/status/%d" % code)

    assert r.status == code
    if gzipped:
        assert compressed(r) and inflate(r) == b"status %d\n" % code
    else:
        assert r.header("Content-Encoding") is None and r.body == b"status %d\n" % code


def test_gzip_off_in_a_location(gw):
    r = fetch(gw, "/off/bytes?n=5000")

    assert r.header("Content-Encoding") is None and r.body == data(5000)


# ---- the head ----

def test_vary_when_the_response_could_be_compressed(gw):
    r = fetch(gw, "/vary/bytes?n=5000")
    assert compressed(r) and r.header_values("Vary") == ["Accept-Encoding"]

    # the client did not ask, but another might: Vary all the same (nginx)
    r = fetch(gw, "/vary/bytes?n=5000", headers=())
    assert r.header("Content-Encoding") is None and r.header_values("Vary") == ["Accept-Encoding"]

    # never a candidate (type not listed): no Vary
    r = fetch(gw, "/vary/respond?h=Content-Type:image/png")
    assert r.header("Vary") is None

    r = fetch(gw, "/bytes?n=5000")  # gzip_vary off
    assert compressed(r) and r.header("Vary") is None


def test_strong_etag_becomes_weak(gw):
    r = fetch(gw, "/respond?h=Content-Type:text/plain&h=ETag:%22abc%22")
    assert compressed(r) and r.header_values("ETag") == ['W/"abc"']

    r = fetch(gw, "/respond?h=Content-Type:text/plain&h=ETag:W/%22abc%22")
    assert compressed(r) and r.header_values("ETag") == ['W/"abc"']

    r = fetch(gw, "/respond?h=Content-Type:text/plain&h=ETag:%22abc%22", headers=())
    assert r.header_values("ETag") == ['"abc"']


def test_accept_ranges_is_dropped(gw):
    r = fetch(gw, "/respond?h=Content-Type:text/plain&h=Accept-Ranges:bytes")
    assert compressed(r) and r.header("Accept-Ranges") is None

    r = fetch(gw, "/respond?h=Content-Type:text/plain&h=Accept-Ranges:bytes", headers=())
    assert r.header("Accept-Ranges") == "bytes"


def test_http_1_0_client(gw):
    # gzip_http_version 1.1 (default): not for HTTP/1.0
    r = fetch(gw, "/bytes?n=5000", version="HTTP/1.0")
    assert r.header("Content-Encoding") is None and r.body == data(5000)

    # gzip_http_version 1.0: compressed, delimited by the close
    r = fetch(gw, "/v10/bytes?n=70000&framing=chunked", version="HTTP/1.0")
    assert compressed(r)
    assert r.framing == "close" and r.header("Transfer-Encoding") is None
    assert inflate(r) == data(70000)


# ---- gzip_proxied and gzip_disable ----

VIA = GZ + (("Via", "1.1 cache.example"),)


def http_date(offset):
    return urllib.parse.quote(email.utils.formatdate(time.time() + offset, usegmt=True))


def test_proxied_off_by_default(gw):
    r = fetch(gw, "/bytes?n=5000", headers=VIA)

    assert r.header("Content-Encoding") is None and r.body == data(5000)


def test_proxied_any(gw):
    r = fetch(gw, "/any/bytes?n=5000", headers=VIA)

    assert compressed(r) and inflate(r) == data(5000)


def test_proxied_expired(gw):
    r = fetch(gw, "/expired/respond?h=Content-Type:text/plain&h=Expires:" + http_date(-3600), headers=VIA)
    assert compressed(r)

    r = fetch(gw, "/expired/respond?h=Content-Type:text/plain&h=Expires:" + http_date(3600), headers=VIA)
    assert r.header("Content-Encoding") is None

    r = fetch(gw, "/any/respond?h=Content-Type:text/plain&h=Expires:" + http_date(3600), headers=VIA)
    assert compressed(r)


def test_proxied_cache_control(gw):
    for cc, gzipped in [("no-cache", True), ("private,%20max-age=0", True), ("max-age=60", False),
                        ("no-store", False)]:
        r = fetch(gw, "/nocache/respond?h=Content-Type:text/plain&h=Cache-Control:" + cc, headers=VIA)
        assert (r.header("Content-Encoding") == "gzip") == gzipped, cc


def test_proxied_no_etag(gw):
    r = fetch(gw, "/noetag/respond?h=Content-Type:text/plain", headers=VIA)
    assert compressed(r)

    r = fetch(gw, "/noetag/respond?h=Content-Type:text/plain&h=ETag:%22x%22", headers=VIA)
    assert r.header("Content-Encoding") is None


def test_disable_by_user_agent(gw):
    r = fetch(gw, "/disable/bytes?n=5000", headers=GZ + (("User-Agent", "curl/8.0"),))
    assert r.header("Content-Encoding") is None

    r = fetch(gw, "/disable/bytes?n=5000", headers=GZ + (("User-Agent", "Mozilla/4.0 (compatible; MSIE 6.0)"),))
    assert r.header("Content-Encoding") is None

    r = fetch(gw, "/disable/bytes?n=5000", headers=GZ + (("User-Agent", "Mozilla/5.0 Firefox"),))
    assert compressed(r) and inflate(r) == data(5000)


# ---- configuration ----

@pytest.mark.parametrize("line,message", [
    ("gzip maybe;", 'invalid value "maybe" in "gzip" directive, it must be "on" or "off"'),
    ("gzip_comp_level 10;", "value must be between 1 and 9"),
    ("gzip_http_version 2.0;", 'invalid value "2.0"'),
    ("gzip on; gzip off;", '"gzip" directive is duplicate'),
    ("gzip_comp_level x;", '"gzip_comp_level" directive invalid number'),
    ("gzip_min_length x;", '"gzip_min_length" directive invalid value'),
    ("gzip_proxied any sometimes;", 'invalid value "sometimes"'),
    ('gzip_disable "(";', 'pcre2_compile() failed: missing closing parenthesis in "("'),
])
def test_config_errors_name_file_and_line(cli, tmp_path, line, message):
    conf = tmp_path / "bad.conf"
    conf.write_text("events {}\nhttp {\n    %s\n}\n" % line)
    r = cli("-t", "-p", str(tmp_path) + "/", "-c", str(conf))

    assert r.returncode != 0
    assert "%s in %s:3" % (message, conf) in r.stderr



@pytest.mark.parametrize("line,warning", [
    ("gzip_types text/css TEXT/css;", 'duplicate MIME type "text/css"'),
    ("gzip_types text/html;", 'duplicate MIME type "text/html"'),
    ("gzip_proxied any any;", 'duplicate value "any"'),
])
def test_config_warnings(cli, tmp_path, line, warning):
    conf = tmp_path / "warn.conf"
    conf.write_text("events {}\nhttp {\n    %s\n}\n" % line)
    r = cli("-t", "-p", str(tmp_path) + "/", "-c", str(conf))

    assert r.returncode == 0, r.stderr
    assert "[warn]" in r.stderr and "%s in %s:3" % (warning, conf) in r.stderr
