"""Requests the gateway must refuse: each gets its status code and a closed
connection, nothing reaches the backend, and everybody else carries on."""

import pytest

from rawhttp import Conn, chunked, exchange

LIMITED = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    client_max_body_size 1k;
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}
"""


@pytest.fixture
def gw_and_backend(backends, gateway):
    b0, = backends(1)
    return gateway(LIMITED, [b0]), b0


def refused(gw, request):
    """Send one raw request on a new connection: (status, closed afterwards)."""
    r, closed = exchange(gw.port, request)
    return r.status, closed


def get_with(*header_lines):
    return b"GET / HTTP/1.1\r\nHost: test\r\n" + b"".join(h + b"\r\n" for h in header_lines) + b"\r\n"


BAD_REQUESTS_400 = {
    "garbage request line": b"THIS IS NOT HTTP\r\n\r\n",
    "binary request line": b"\x00\x01\x02\x03\xff\r\n\r\n",
    "space before the colon": get_with(b"X-Foo : bar"),
    "space inside a header name": get_with(b"Bad Header: x"),
    "empty header name": get_with(b": value"),
    "NUL in a value": get_with(b"X-Foo: a\x00b"),
    "bare CR in a value": get_with(b"X-Foo: a\rb"),
    "Content-Length with Transfer-Encoding": (b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n"
                                              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "two different Content-Lengths": (b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n"
                                      b"Content-Length: 6\r\n\r\nhello!"),
    "a list of Content-Lengths": b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "HTTP/1.1 without Host": b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS_400))
def test_400_and_close(gw_and_backend, case):
    gw, b0 = gw_and_backend

    status, closed = refused(gw, BAD_REQUESTS_400[case])

    assert status == 400
    assert closed
    assert b0.requests_seen == 0


@pytest.mark.gateway_only("nginx reads a header line without a colon as a header with no value")
def test_400_for_a_header_line_without_colon(gw_and_backend):
    gw, b0 = gw_and_backend

    status, closed = refused(gw, get_with(b"NoColonHere"))

    assert status == 400
    assert closed


@pytest.mark.gateway_only("nginx answers 413 but keeps the connection to discard the announced body")
def test_413_for_content_length_over_client_max_body_size(gw_and_backend):
    gw, b0 = gw_and_backend

    # Only the head is sent: the answer must not wait for the 2048 bytes.
    status, closed = refused(gw, b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2048\r\n\r\n")

    assert status == 413
    assert closed
    assert b0.requests_seen == 0


def test_413_status_for_content_length_over_client_max_body_size(gw_and_backend):
    gw, b0 = gw_and_backend

    with gw.conn() as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 2048\r\n\r\n")
        r = c.read_response()

    assert r.status == 413


def test_413_for_a_chunked_body_that_grows_past_client_max_body_size(gw_and_backend):
    gw, b0 = gw_and_backend
    request = (b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunked([b"a" * 512] * 4))          # 2 KiB against a 1 KiB limit

    status, closed = refused(gw, request)

    assert status == 413
    assert closed


def test_a_body_of_exactly_client_max_body_size_passes(gw_and_backend):
    gw, b0 = gw_and_backend

    with gw.conn() as c:
        r = c.request("POST", "/echo", body=b"a" * 1024)

    assert r.status == 200
    assert r.header("X-Body-Len") == "1024"


def test_414_for_a_request_target_over_8_kib(gw_and_backend):
    gw, b0 = gw_and_backend

    status, closed = refused(gw, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: test\r\n\r\n")

    assert status == 414
    assert closed


@pytest.mark.gateway_only("nginx answers 400 (Request Header Or Cookie Too Large) where we answer 431")
def test_431_for_a_header_line_over_8_kib(gw_and_backend):
    gw, b0 = gw_and_backend

    status, closed = refused(gw, get_with(b"X-Long: " + b"a" * 9000))

    assert status == 431
    assert closed


@pytest.mark.gateway_only("nginx answers 400 (Request Header Or Cookie Too Large) where we answer 431")
def test_431_for_headers_over_32_kib_in_total(gw_and_backend):
    gw, b0 = gw_and_backend
    forty_1k_headers = [b"X-H%d: %s" % (i, b"b" * 1000) for i in range(40)]   # each line well under 8 KiB

    status, closed = refused(gw, get_with(*forty_1k_headers))

    assert status == 431
    assert closed


@pytest.mark.parametrize("coding", [b"gzip", b"gzip, chunked"])
def test_501_for_an_unknown_transfer_coding(gw_and_backend, coding):
    gw, b0 = gw_and_backend

    status, closed = refused(gw, b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: %s\r\n\r\n"
                                 b"0\r\n\r\n" % coding)

    assert status == 501
    assert closed


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/3.1"])
def test_505_for_an_http_version_above_1(gw_and_backend, version):
    gw, b0 = gw_and_backend

    status, closed = refused(gw, b"GET / %s\r\nHost: test\r\n\r\n" % version)

    assert status == 505
    assert closed


def test_bad_requests_do_not_disturb_other_connections(gw_and_backend):
    gw, b0 = gw_and_backend
    bad = list(BAD_REQUESTS_400.values()) + [
        b"GET / HTTP/2.0\r\nHost: test\r\n\r\n",
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: test\r\n\r\n",
        get_with(b"X-Long: " + b"a" * 9000),
    ]

    with gw.conn() as good, Conn(gw.port) as stalled:
        stalled.send(b"GET / HTTP/1.1\r\nHost: test\r\nX-Unfinished: ")   # and nothing more
        for i, request in enumerate(bad):
            with gw.conn() as c:
                c.send(request)
                assert c.read_response().status >= 400
            r = good.request("POST", "/echo?i=%d" % i, body=b"still fine %d" % i)
            assert r.status == 200
            assert r.body == b"still fine %d" % i

    assert b0.requests_seen == len(bad)
