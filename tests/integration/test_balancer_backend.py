"""The backend switches the balancer tests rely on, checked on the backend
alone (no gateway): respond_as, keepalive_idle, close_after."""

import time

import pytest

from backend import Backend
from rawhttp import Conn, ProtocolError


@pytest.fixture
def start():
    started = []

    def run(**options):
        b = Backend(name="b0", **options).start()
        started.append(b)
        return b
    yield run
    for b in started:
        b.stop()


def test_respond_as_answers_every_request_the_same_way(start):
    b = start(respond_as="/status/503")

    with Conn(b.port) as c:
        answers = [c.get(target) for target in ("/", "/echo", "/anything?x=1")]

    assert [r.status for r in answers] == [503] * 3
    assert [q.target for q in b.requests] == ["/", "/echo", "/anything?x=1"]   # recorded as asked


def test_respond_as_can_be_switched_while_running(start):
    b = start(respond_as="/delay?ms=200")
    with Conn(b.port) as c:
        t0 = time.monotonic()
        assert c.get("/").body == b"delayed 200 ms\n"
        assert time.monotonic() - t0 >= 0.2
        b.respond_as = None
        assert c.get("/").body == b"backend b0\n"


def test_respond_as_reset_reads_the_body_then_resets(start):
    b = start(respond_as="/reset")
    with Conn(b.port) as c:
        c.send_request("POST", "/", body=b"x" * 1000)
        with pytest.raises((ProtocolError, ConnectionResetError)):
            c.read_response()
    assert b.requests_seen == 1


def test_keepalive_idle_closes_an_idle_connection(start):
    b = start(keepalive_idle=0.2)
    with Conn(b.port) as c:
        assert c.get("/").status == 200
        assert c.get("/").status == 200          # back to back: still open
        t0 = time.monotonic()
        assert c.closed_by_peer(timeout=2)
        assert 0.15 <= time.monotonic() - t0 < 30    # its own idle limit, not IDLE_TIMEOUT (60 s)
    assert b.connections_accepted == 1


def test_close_after_closes_silently_after_n_responses(start):
    b = start(close_after=2)
    with Conn(b.port) as c:
        first, second = c.get("/"), c.get("/")
        assert c.closed_by_peer(timeout=2)
    assert "close" not in first.connection_tokens() | second.connection_tokens()
    assert b.requests_seen == 2
