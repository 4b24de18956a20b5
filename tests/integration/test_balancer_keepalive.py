"""Upstream keep-alive pools (`keepalive N` in an upstream): far fewer
upstream connections, the pool's size, keepalive_timeout and
keepalive_requests, and pooled connections that the backend closes: such a
connection is never handed a request (and a request that meets one just as
it closes is sent again on a fresh connection when that is safe).

Upstream connections are counted by the backends (connections_accepted,
connections_open)."""

import random
import threading
import time

import pytest


def config(upstream, location=""):
    return """
daemon off;
pid gateway.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    upstream app {
%s
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://app;
%s
        }
    }
}
""" % (upstream, location)


def wait_until(pred, timeout=30.0):     # a bound for a loaded machine; it returns as soon as pred holds
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in %.1f s" % timeout
        time.sleep(0.01)


def requests_over(gw, n, conns=4, target="/"):
    """n sequential GETs spread over `conns` client keep-alive connections
    (in turn); every answer must be a 200. Returns the answers."""
    clients = [gw.conn() for _ in range(conns)]
    answers = []
    try:
        for i in range(n):
            r = clients[i % conns].get(target)
            assert r.status == 200, (i, r, r.body)
            answers.append(r)
    finally:
        for c in clients:
            c.close()
    return answers


# ---- fewer connections --------------------------------------------------------------

@pytest.mark.parametrize("pool, most", [("keepalive 8;", 10), ("", None)], ids=["keepalive-8", "no-keepalive"])
def test_keepalive_cuts_the_upstream_connections(backends, gateway, pool, most):
    b0, b1 = backends(2)
    gw = gateway(config("""
        server 127.0.0.1:{b0};
        server 127.0.0.1:{b1};
        %s""" % pool), [b0, b1], workers=1)

    requests_over(gw, 500, conns=4)

    opened = b0.connections_accepted + b1.connections_accepted
    assert b0.requests_seen + b1.requests_seen == 500
    if most is None:
        assert opened == 500                     # a connection per request, closed after it
    else:
        assert opened <= most, opened


def test_the_pool_keeps_at_most_n_idle_connections(backends, gateway):
    b0, = backends(1)
    gw = gateway(config("""
        server 127.0.0.1:{b0};
        keepalive 8;"""), [b0], workers=1)

    threads = [threading.Thread(target=gw.get, args=("/delay?ms=300",), daemon=True) for _ in range(16)]
    for t in threads:
        t.start()
    wait_until(lambda: b0.requests_seen == 16)
    assert b0.connections_open == 16
    for t in threads:
        t.join(timeout=5)

    wait_until(lambda: b0.connections_open == 8)
    time.sleep(0.3)
    assert b0.connections_open == 8              # eight idle ones kept, the rest closed
    requests_over(gw, 16, conns=1)
    assert b0.connections_accepted == 16         # and reused


def test_keepalive_timeout_closes_an_idle_pooled_connection(backends, gateway):
    b0, = backends(1)
    gw = gateway(config("""
        server 127.0.0.1:{b0};
        keepalive 8;
        keepalive_timeout 400ms;"""), [b0], workers=1)

    requests_over(gw, 3, conns=1)
    done = time.monotonic()
    assert b0.connections_open == 1
    wait_until(lambda: b0.connections_open == 0)

    assert time.monotonic() - done >= 0.3
    requests_over(gw, 3, conns=1)
    assert b0.connections_accepted == 2


def test_keepalive_requests_closes_an_upstream_connection_after_n_requests(backends, gateway):
    b0, = backends(1)
    gw = gateway(config("""
        server 127.0.0.1:{b0};
        keepalive 8;
        keepalive_requests 5;"""), [b0], workers=1)

    answers = requests_over(gw, 50, conns=2, target="/conn-id")

    conn_ids = [int(r.body) for r in answers]
    assert b0.connections_accepted == 10
    assert sorted(conn_ids) == sorted(list(range(1, 11)) * 5)   # each carried exactly five
    wait_until(lambda: b0.connections_open <= 1)


# ---- pooled connections the backend closes ------------------------------------------

def test_a_pooled_connection_the_backend_closed_is_never_used(backends, gateway):
    b0, = backends(1, keepalive_idle=0.2)          # the backend drops connections idle 200 ms
    gw = gateway(config("""
        server 127.0.0.1:{b0};
        keepalive 8;"""), [b0], workers=1)

    statuses = []
    with gw.conn() as c:
        for cycle in range(3):
            for i in range(6):                      # GETs and POSTs with bodies: none may meet a dead connection
                if i % 2:
                    r = c.request("POST", "/echo", body=b"payload %d" % i)
                    assert r.body == b"payload %d" % i
                else:
                    r = c.get("/")
                statuses.append(r.status)
            opened = b0.connections_accepted
            wait_until(lambda: b0.connections_open == 0)    # the backend closed the idle pooled one
            time.sleep(0.05)
            assert opened == cycle + 1

    assert statuses == [200] * 18
    assert b0.connections_accepted == 3              # a new one after each close, then reused


def test_requests_racing_the_backend_idle_close_all_succeed(backends, gateway):
    # The backend closes a connection idle 50 ms; requests come every 40 to
    # 60 ms, so some meet a connection the backend is closing right then.
    b0, = backends(1, keepalive_idle=0.05)
    gw = gateway(config("""
        server 127.0.0.1:{b0};
        keepalive 8;"""), [b0], workers=1)
    rnd = random.Random(7)

    statuses = []
    with gw.conn() as c:
        for _ in range(50):
            statuses.append(c.get("/").status)
            time.sleep(rnd.uniform(0.04, 0.06))

    assert statuses == [200] * 50
    assert b0.connections_accepted > 5               # the backend did close some in between


def test_a_backend_that_closes_after_every_response_costs_no_get(backends, gateway):
    # Keep-alive as far as the headers go, then a close: the pooled connection
    # is dead just after it is put back.
    b0, b1 = backends(2, close_after=1)
    gw = gateway(config("""
        server 127.0.0.1:{b0};
        server 127.0.0.1:{b1};
        keepalive 8;"""), [b0, b1], workers=1)

    requests_over(gw, 200, conns=1)

    assert b0.requests_seen + b1.requests_seen >= 200
    assert b0.connections_accepted + b1.connections_accepted == b0.requests_seen + b1.requests_seen


def test_a_backend_restarted_behind_a_pool_costs_nothing(backends, gateway):
    b0, = backends(1)
    gw = gateway(config("""
        server 127.0.0.1:{b0};
        keepalive 8;"""), [b0], workers=1)
    requests_over(gw, 20, conns=4)
    assert b0.connections_accepted <= 4

    b0.stop()                                        # every pooled connection closed
    b0_again, = backends(names=["b0"], ports=[b0.port])
    time.sleep(0.05)
    answers = requests_over(gw, 20, conns=4)

    assert [r.header("X-Backend") for r in answers] == ["b0"] * 20
    assert b0_again.connections_accepted <= 4
