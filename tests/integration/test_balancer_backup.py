"""Servers that are not always there: `backup` servers (only when every
primary is unavailable), `down` servers (never), and max_conns (a server
already carrying that many requests is passed over, as if unavailable)."""

import threading
import time
from collections import Counter

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


def who_answers(gw, n, target="/"):
    """Counter of X-Backend over n GETs on new connections; every one must be a 200."""
    seen = Counter()
    for _ in range(n):
        r = gw.get(target)
        assert r.status == 200, (r, r.body)
        seen[r.header("X-Backend")] += 1
    return seen


class InFlight:
    """A GET sent in the background (a slow one holds its server); .response when done."""

    def __init__(self, gw, target):
        self.response = None
        self.error = None
        self._t = threading.Thread(target=self._run, args=(gw, target), daemon=True)
        self._t.start()

    def _run(self, gw, target):
        try:
            self.response = gw.get(target, timeout=10)
        except Exception as e:          # noqa: BLE001
            self.error = e

    def wait(self):
        self._t.join(timeout=15)
        assert self.error is None, self.error
        return self.response


def wait_until(pred, timeout=30.0):     # a bound for a loaded machine; it returns as soon as pred holds
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in %.1f s" % timeout
        time.sleep(0.01)


# ---- backup ---------------------------------------------------------------

# fail_timeout 3 s: restarting two backends on a loaded machine stays well inside it.
PRIMARIES_AND_A_BACKUP = """
        server 127.0.0.1:{b0} fail_timeout=3s;
        server 127.0.0.1:{b1} fail_timeout=3s;
        server 127.0.0.1:{b2} backup;"""


def test_a_backup_gets_nothing_while_a_primary_is_up(backends, gateway):
    p0, p1, bk = backends(3)
    gw = gateway(config(PRIMARIES_AND_A_BACKUP), [p0, p1, bk], workers=1)

    assert who_answers(gw, 20) == {"b0": 10, "b1": 10}

    p0.stop()                                   # one primary down: the other carries it all
    assert who_answers(gw, 20) == {"b1": 20}
    assert bk.requests_seen == 0


def test_the_backup_takes_over_when_every_primary_is_down_and_gives_back_after_recovery(backends, gateway):
    p0, p1, bk = backends(3)
    gw = gateway(config(PRIMARIES_AND_A_BACKUP), [p0, p1, bk], workers=1)

    p0.stop()
    p1.stop()
    down_at = time.monotonic()
    assert who_answers(gw, 20) == {"b2": 20}    # no request lost: the first ones fail over to it

    p0_again, p1_again = backends(names=["b0", "b1"], ports=[p0.port, p1.port])
    assert who_answers(gw, 10) == {"b2": 10}    # the primaries are still inside fail_timeout

    # Once fail_timeout is over (nginx counts it in whole seconds: 3 to 4 s),
    # a primary gets its trial request, and then the backup is idle again.
    while p0_again.requests_seen + p1_again.requests_seen == 0:
        assert time.monotonic() - down_at < 30, "the primaries never got a request back"   # a bound, not a timing
        who_answers(gw, 1)
        time.sleep(0.02)
    assert time.monotonic() - down_at >= 3.0
    time.sleep(0.1)
    back = who_answers(gw, 20)
    assert back["b2"] == 0, back
    assert back["b0"] >= 8 and back["b1"] >= 8, back


def test_a_backup_with_least_conn(backends, gateway):
    p0, bk = backends(2)
    gw = gateway(config("""
        least_conn;
        server 127.0.0.1:{b0};
        server 127.0.0.1:{b1} backup;"""), [p0, bk], workers=1)

    assert who_answers(gw, 5) == {"b0": 5}
    p0.stop()
    assert who_answers(gw, 5) == {"b1": 5}


# ---- down -----------------------------------------------------------------

@pytest.mark.parametrize("method", ["", "least_conn;", "random;", "random two;", "ip_hash;",
                                    "hash $arg_k;", "hash $arg_k consistent;"])
def test_a_down_server_never_gets_a_request(backends, gateway, method):
    b0, b1, b2 = backends(3)
    gw = gateway(config("""
        %s
        server 127.0.0.1:{b0};
        server 127.0.0.1:{b1} down;
        server 127.0.0.1:{b2};""" % method), [b0, b1, b2], workers=1)

    seen = Counter()
    for k in range(60):
        seen += who_answers(gw, 1, "/?k=key%d" % k)

    assert seen["b1"] == 0
    assert sum(seen.values()) == 60
    if not method.startswith("hash"):          # ip_hash: one client, one server
        return
    assert seen["b0"] > 0 and seen["b2"] > 0    # keys still spread over the others


def test_down_primaries_leave_it_to_the_backup(backends, gateway):
    b0, b1 = backends(2)
    gw = gateway(config("""
        server 127.0.0.1:{b0} down;
        server 127.0.0.1:{b1} backup;"""), [b0, b1], workers=1)

    assert who_answers(gw, 5) == {"b1": 5}


# ---- max_conns ------------------------------------------------------------

def test_max_conns_sends_the_next_request_to_the_other_server(backends, gateway):
    b0, b1 = backends(2)
    gw = gateway(config("""
        server 127.0.0.1:{b0} max_conns=1;
        server 127.0.0.1:{b1} max_conns=1;"""), [b0, b1], workers=1)

    slow = InFlight(gw, "/delay?ms=1000")
    wait_until(lambda: b0.requests_seen + b1.requests_seen == 1)
    busy, free = (b0, b1) if b0.requests_seen else (b1, b0)

    # Round-robin would send every other one to the busy server.
    assert who_answers(gw, 6) == {free.name: 6}
    assert busy.requests_seen == 1

    r = slow.wait()
    assert r.status == 200 and r.header("X-Backend") == busy.name
    assert who_answers(gw, 4) == {"b0": 2, "b1": 2}   # free again: both take turns


def test_max_conns_reached_everywhere_gives_502(backends, gateway):
    b0, b1 = backends(2)
    gw = gateway(config("""
        server 127.0.0.1:{b0} max_conns=1;
        server 127.0.0.1:{b1} max_conns=1;"""), [b0, b1], workers=1)

    held = [InFlight(gw, "/delay?ms=3000"), InFlight(gw, "/delay?ms=3000")]
    wait_until(lambda: b0.requests_seen == 1 and b1.requests_seen == 1)

    r = gw.get("/")
    assert r.status == 502
    # At once, not after the slow ones: they are still being served (no timing: a loaded
    # machine can take a while, the slow ones take 3 s).
    assert [h.response for h in held] == [None, None]
    assert "no live upstreams" in gw.stderr()

    assert [h.wait().status for h in held] == [200, 200]
    assert gw.get("/").status == 200            # and servers are free again


def test_max_conns_on_a_lone_server(backends, gateway):
    b0, = backends(1)
    gw = gateway(config("""
        server 127.0.0.1:{b0} max_conns=1;"""), [b0], workers=1)

    held = InFlight(gw, "/delay?ms=800")
    wait_until(lambda: b0.requests_seen == 1)

    assert gw.get("/").status == 502
    assert held.wait().status == 200
    assert gw.get("/").status == 200


def test_max_conns_full_primaries_spill_to_the_backup(backends, gateway):
    b0, bk = backends(2)
    gw = gateway(config("""
        server 127.0.0.1:{b0} max_conns=1;
        server 127.0.0.1:{b1} backup;"""), [b0, bk], workers=1)

    held = InFlight(gw, "/delay?ms=800")
    wait_until(lambda: b0.requests_seen == 1)

    assert who_answers(gw, 3) == {"b1": 3}
    assert held.wait().header("X-Backend") == "b0"
    assert who_answers(gw, 3) == {"b0": 3}
