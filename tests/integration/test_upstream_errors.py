"""When the backend fails: 502 for a refused, broken or nonsensical upstream,
504 when it is too slow to connect to or to answer."""

import socket
import time

import pytest

from rawhttp import ProtocolError

ONE_BACKEND = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}
"""

NOBODY_LISTENING = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    upstream app {
        server 127.0.0.1:{dead};
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://app;
        }
    }
}
"""


def test_502_when_the_upstream_refuses_the_connection(gateway):
    gw = gateway(NOBODY_LISTENING)

    r = gw.get("/")

    assert r.status == 502


@pytest.mark.parametrize("path", [
    pytest.param("/garbage", marks=pytest.mark.gateway_only(
        "nginx takes a response without a valid status line for HTTP/0.9 and relays it")),
    "/garbage?kind=header",
    "/close-early",
    "/reset",
])
def test_502_when_the_backend_answers_nonsense_or_nothing(backends, gateway, path):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    r = gw.get(path)

    assert r.status == 502
    assert b0.requests_seen == 1


def test_backend_closing_mid_body_is_not_passed_off_as_complete(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    with gw.conn() as c:
        c.send_request("GET", "/close-mid?n=100000")
        try:
            r = c.read_response()
        except ProtocolError:
            pass                        # head relayed, then the body cut short: the client can tell
        else:
            assert r.status == 502      # or the gateway noticed before relaying the head
        assert c.closed_by_peer(timeout=3)


READ_TIMEOUT_AT = {
    "http": """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    proxy_read_timeout 1s;
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}
""",
    "server": """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    server {
        listen 127.0.0.1:{port};
        proxy_read_timeout 1s;
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}
""",
    "location": """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_read_timeout 1s;
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}
""",
}


@pytest.mark.parametrize("level", ["http", "server", "location"])
def test_504_when_the_backend_is_slower_than_proxy_read_timeout(backends, gateway, level):
    b0, = backends(1)
    gw = gateway(READ_TIMEOUT_AT[level], [b0])

    start = time.monotonic()
    r = gw.get("/delay?ms=3000")
    took = time.monotonic() - start

    assert r.status == 504
    assert took >= 0.8          # the configured 1 s, not an immediate failure (the status says not the 3 s answer)


def test_a_fast_enough_backend_is_not_timed_out(backends, gateway):
    b0, = backends(1)
    gw = gateway(READ_TIMEOUT_AT["location"], [b0])

    r = gw.get("/delay?ms=300")

    assert r.status == 200


CONNECT_TIMEOUT = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    upstream app {
        server 127.0.0.1:{blackhole};
    }
    server {
        listen 127.0.0.1:{port};
        proxy_connect_timeout 1s;
        proxy_read_timeout 30s;
        location / {
            proxy_pass http://app;
        }
    }
}
"""


@pytest.fixture
def blackhole_port():
    """A port whose SYNs go unanswered: a listener with a backlog of 0 that
    never accepts, its queue already full with one connection of ours."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=2)
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(0.3)
    try:
        probe.connect(("127.0.0.1", port))
        pytest.fail("the blackhole listener accepted a second connection; cannot test connect timeouts")
    except socket.timeout:
        pass
    finally:
        probe.close()
    yield port
    filler.close()
    listener.close()


def test_504_when_connecting_takes_longer_than_proxy_connect_timeout(gateway, blackhole_port):
    gw = gateway(CONNECT_TIMEOUT, blackhole=blackhole_port)

    start = time.monotonic()
    r = gw.get("/")
    took = time.monotonic() - start

    assert r.status == 504
    assert took >= 0.8          # the configured 1 s, not an immediate failure (the status says not the 3 s answer)


def test_gateway_keeps_serving_after_upstream_failures(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    for path in ("/close-early", "/reset", "/garbage?kind=header", "/close-mid?n=1000"):
        try:
            gw.get(path)
        except ProtocolError:
            pass

    r = gw.get("/")
    assert r.status == 200
    assert r.body == b"backend b0\n"
