"""Failover: a backend that dies, fails or answers badly costs the client
nothing when the rules allow another try (nginx's proxy_next_upstream), and
is left alone for fail_timeout after max_fails failures (then one trial).

Most scenarios count attempts at the backends: `respond_as` makes a backend
answer every request the same way (/reset, /status/503, /delay?ms=N), and
requests_seen says how many attempts reached it."""

import hashlib
import socket
import threading
import time
from collections import Counter

import pytest

import rawhttp


def config(upstream, location=""):
    """One upstream `app` (the servers and options given), one location
    proxying to it (plus the directives given)."""
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
    """(status, X-Backend) of n GETs, each on a new client connection."""
    out = []
    for _ in range(n):
        r = gw.get(target)
        out.append((r.status, r.header("X-Backend")))
    return out


def attempts(*bs):
    return sum(b.requests_seen for b in bs)


class Load:
    """Clients sending GETs as fast as they can until stopped: `keepalive`
    threads each over one client connection, `fresh` threads each opening a
    new connection per request. Every outcome is kept in .results as
    (time, status, X-Backend), or (time, "error", repr) for an exception."""

    def __init__(self, port, keepalive=2, fresh=2):
        self.port = port
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(reuse,), daemon=True)
                         for reuse in [True] * keepalive + [False] * fresh]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def _record(self, *item):
        with self._lock:
            self.results.append((time.monotonic(),) + item)

    def _run(self, reuse):
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = rawhttp.Conn(self.port)
                r = conn.get("/")
                self._record(r.status, r.header("X-Backend"))
                if not reuse or "close" in r.connection_tokens():
                    conn.close()
                    conn = None
            except Exception as e:      # noqa: BLE001 - every failure is a result
                self._record("error", repr(e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def since(self, t0, t1=float("inf")):
        with self._lock:
            return [r for r in self.results if t0 <= r[0] < t1]


# ---- a backend dies, comes back -----------------------------------------------

@pytest.mark.parametrize("pool, workers", [("", 1), ("keepalive 16;", 1), ("keepalive 16;", 2)],
                         ids=["fresh-upstream-conns", "pooled-upstream-conns", "pooled-2-workers"])
def test_a_backend_killed_under_load_costs_no_request(backends, gateway, pool, workers):
    b0, b1, b2 = backends(3)
    gw = gateway(config("""
        server 127.0.0.1:{b0} fail_timeout=3s;
        server 127.0.0.1:{b1} fail_timeout=3s;
        server 127.0.0.1:{b2} fail_timeout=3s;
        %s""" % pool), [b0, b1, b2], workers=workers)

    with Load(gw.port, keepalive=2 * workers, fresh=2 * workers) as load:
        # Under way on all three before the kill (a fixed sleep was not enough on a loaded machine).
        deadline = time.monotonic() + 30
        while len(set(r[2] for r in load.since(0))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        killed = time.monotonic()
        b1.stop()                                           # in-flight requests cut, port refused
        time.sleep(0.3)                                     # down long enough to be tried (and fail)
        back = time.monotonic()
        b1_again, = backends(names=["b1"], ports=[b1.port])   # back, but still out for fail_timeout
        time.sleep(max(0, killed + 2.5 - time.monotonic()))
        seen_in_window = b1_again.requests_seen
        # The window ends 3 s after the last failure (nginx: 3 to 4 s, it counts whole seconds).
        while b1_again.requests_seen == 0 and time.monotonic() - back < 10:
            time.sleep(0.01)
        recovered = time.monotonic()
        # Enough answers after it to judge its share (a loaded machine may answer few per second).
        deadline = recovered + 30
        while (time.monotonic() < recovered + 0.7 or len(load.since(recovered + 0.2)) < 30) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        ended = time.monotonic()

    everything = load.since(0)
    statuses = Counter(r[1] for r in everything)
    assert statuses == {200: len(everything)}, (statuses, [r for r in everything if r[1] != 200][:5])
    assert len(everything) > 300
    before = Counter(r[2] for r in load.since(0, killed))
    assert set(before) == {"b0", "b1", "b2"}, before
    if workers == 1:
        # (With two, a worker that never met the dead b1 may send to it as soon as it is back.)
        assert seen_in_window == 0, "b1 got requests inside its fail_timeout"
        assert recovered - killed >= 2.9, "b1 back after %.2f s, before fail_timeout" % (recovered - killed)
    after = Counter(r[2] for r in load.since(recovered + 0.2, ended))
    assert after["b1"] >= 0.2 * sum(after.values()), after       # its normal share again (a third)


def test_after_fail_timeout_one_trial_request_then_its_share(backends, gateway):
    b0, b1, b2 = backends(3)
    gw = gateway(config("""
        server 127.0.0.1:{b0} fail_timeout=3s;
        server 127.0.0.1:{b1} fail_timeout=3s;
        server 127.0.0.1:{b2} fail_timeout=3s;"""), [b0, b1, b2], workers=1)
    b1.stop()
    failed_at = time.monotonic()
    answers = who_answers(gw, 6)                            # b1 is tried, fails, is passed over
    assert all(a == 200 for a, _ in answers), answers
    # Back, but slow for its first answers: the trial takes 2 s (long beside the 0.4 s look
    # below, so a loaded machine cannot see it end). fail_timeout is 3 s so that restarting
    # the backend, however slow, stays well inside the window.
    b1_again, = backends(names=["b1"], ports=[b1.port], respond_as="/delay?ms=2000")

    inside = who_answers(gw, 10)                            # well inside the window
    assert b1_again.requests_seen == 0
    assert {b for _, b in inside} == {"b0", "b2"}

    with Load(gw.port, keepalive=3, fresh=0) as load:
        # After fail_timeout (nginx: 3 to 4 s, whole seconds) comes the trial, 2 s long.
        while b1_again.requests_seen == 0 and time.monotonic() - failed_at < 10:
            time.sleep(0.01)
        trial_at = time.monotonic()
        time.sleep(0.4)
        during_trial = b1_again.requests_seen
        b1_again.respond_as = None
    assert trial_at - failed_at >= 3.0, "trial after %.2f s, inside fail_timeout" % (trial_at - failed_at)
    assert during_trial == 1, "one trial request, not %d" % during_trial
    assert all(r[1] == 200 for r in load.since(0))

    share = Counter(b for _, b in who_answers(gw, 30))
    assert 8 <= share["b1"] <= 12, share


@pytest.mark.parametrize("max_fails, attempts_at_b0", [(1, 1), (3, 3), (0, 10)])
def test_max_fails_failures_take_a_backend_out(backends, gateway, max_fails, attempts_at_b0):
    # b0 resets every connection; each GET it fails goes on to b1.
    b0, b1 = backends(2)
    b0.respond_as = "/reset"
    gw = gateway(config("""
        server 127.0.0.1:{b0} max_fails=%d fail_timeout=10s;
        server 127.0.0.1:{b1};""" % max_fails), [b0, b1], workers=1)

    answers = who_answers(gw, 20)

    assert answers == [(200, "b1")] * 20
    assert b0.requests_seen == attempts_at_b0   # 0: never taken out; round-robin gives it every other one


def test_all_backends_down_gives_502_and_says_no_live_upstreams(backends, gateway):
    gw = gateway(config("""
        server 127.0.0.1:{dead};
        server 127.0.0.1:{dead2};"""), workers=1, dead2=_dead_port())

    statuses = [gw.get("/").status for _ in range(3)]

    assert statuses == [502, 502, 502]
    assert "no live upstreams" in gw.stderr()


def _dead_port():
    """A port nobody listens on (bound, then closed at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- which failures are tried again --------------------------------------------

RESET_TWICE = """
        server 127.0.0.1:{b0} max_fails=0;
        server 127.0.0.1:{b1} max_fails=0;"""


@pytest.mark.parametrize("how", ["/reset", "/close-early"])
@pytest.mark.parametrize("method, tried", [
    ("GET", 2), ("HEAD", 2), ("PUT", 2), ("DELETE", 2), ("OPTIONS", 2),
    ("POST", 1), ("PATCH", 1), ("LOCK", 1),
])
def test_only_idempotent_requests_are_sent_again_after_the_backend_got_them(backends, gateway, method, tried, how):
    # Both backends read the request, then reset (or close) without a word.
    b0, b1 = backends(2, respond_as=how)
    gw = gateway(config(RESET_TWICE), [b0, b1], workers=1)

    with gw.conn() as c:
        r = c.request(method, "/", body=b"" if method in ("POST", "PUT", "PATCH") else None)

    assert r.status == 502
    assert attempts(b0, b1) == tried


def test_a_get_that_meets_a_reset_is_answered_by_the_other_backend(backends, gateway):
    b0, b1 = backends(2)
    b0.respond_as = "/reset"
    gw = gateway(config(RESET_TWICE), [b0, b1], workers=1)

    answers = who_answers(gw, 6)

    assert answers == [(200, "b1")] * 6
    assert b0.requests_seen == 3                        # every other one tried there first


def test_a_post_with_a_body_that_meets_a_reset_is_not_sent_again(backends, gateway):
    b0, b1 = backends(2, respond_as="/reset")
    gw = gateway(config(RESET_TWICE), [b0, b1], workers=1)

    with gw.conn() as c:
        r = c.request("POST", "/echo", body=b"x" * 1000)

    assert r.status == 502
    assert attempts(b0, b1) == 1
    assert [q.method for q in list(b0.requests) + list(b1.requests)] == ["POST"]


def test_non_idempotent_lets_a_post_be_sent_again(backends, gateway):
    b0, b1 = backends(2, respond_as="/reset")
    gw = gateway(config(RESET_TWICE, "proxy_next_upstream error non_idempotent;"), [b0, b1], workers=1)

    with gw.conn() as c:
        r = c.request("POST", "/", body=b"")

    assert r.status == 502
    assert attempts(b0, b1) == 2


@pytest.mark.gateway_only("nginx buffers the request body and replays it; the gateway streams it and never replays")
@pytest.mark.parametrize("method, next_upstream", [("PUT", "error"), ("POST", "error non_idempotent")])
def test_a_body_already_streamed_to_a_backend_is_never_replayed(backends, gateway, method, next_upstream):
    b0, b1 = backends(2, respond_as="/reset")
    gw = gateway(config(RESET_TWICE, "proxy_next_upstream %s;" % next_upstream), [b0, b1], workers=1)

    with gw.conn() as c:
        r = c.request(method, "/", body=b"y" * 5000)

    assert r.status == 502
    assert attempts(b0, b1) == 1


@pytest.mark.parametrize("size, body_later", [(100, False), (512 * 1024, False), (100, True)],
                         ids=["small", "512k", "body-after-the-head"])
def test_a_post_whose_connect_failed_goes_to_the_next_backend_with_its_body(backends, gateway, size, body_later):
    live, = backends(1)
    gw = gateway(config("""
        server 127.0.0.1:{dead} max_fails=0;
        server 127.0.0.1:{b0} max_fails=0;"""), [live], workers=1)
    body = bytes(range(256)) * (size // 256) + b"z" * (size % 256)

    answers = []
    for i in range(4):                                  # round-robin: two of them try {dead} first
        with gw.conn() as c:
            head = rawhttp.build_request("POST", "/echo?i=%d" % i, [("Content-Length", str(len(body)))])
            if body_later:
                c.send(head)
                time.sleep(0.1)
                c.send(body)
            else:
                c.send(head + body)
            answers.append(c.read_response())

    assert [r.status for r in answers] == [200] * 4
    assert all(r.header("X-Body-Sha256") == hashlib.sha256(body).hexdigest() for r in answers)
    assert live.requests_seen == 4


def test_a_response_cut_after_its_head_was_relayed_is_not_tried_again(backends, gateway):
    # Head and half the body, then a close: the client already has the head.
    b0, b1 = backends(2, respond_as="/close-mid?n=100000")
    gw = gateway(config(RESET_TWICE), [b0, b1], workers=1)

    with gw.conn() as c:
        c.send_request("GET", "/")
        try:
            r = c.read_response()
        except rawhttp.ProtocolError:
            pass                                        # relayed, then cut short: the client can tell
        else:
            assert r.status == 502, r
        assert c.closed_by_peer(timeout=3)

    assert attempts(b0, b1) == 1


# ---- which answers are tried again ---------------------------------------------

def test_503_is_passed_on_by_default(backends, gateway):
    b0, b1 = backends(2, respond_as="/status/503")
    gw = gateway(config(RESET_TWICE), [b0, b1], workers=1)

    assert gw.get("/").status == 503
    assert attempts(b0, b1) == 1


def test_next_upstream_http_503_sends_a_503_to_the_other_backend(backends, gateway):
    b0, b1 = backends(2)
    b0.respond_as = "/status/503"
    gw = gateway(config("""
        server 127.0.0.1:{b0} max_fails=0;
        server 127.0.0.1:{b1} max_fails=0;""", "proxy_next_upstream http_502 http_503;"), [b0, b1], workers=1)

    answers = who_answers(gw, 6)

    assert answers == [(200, "b1")] * 6
    assert b0.requests_seen == 3


@pytest.mark.parametrize("code", [500, 502, 503, 504, 403, 404, 429])
def test_next_upstream_http_code_tries_each_backend_then_passes_the_last_answer(backends, gateway, code):
    b0, b1, b2 = backends(3, respond_as="/status/%d" % code)
    gw = gateway(config("""
        server 127.0.0.1:{b0} max_fails=0;
        server 127.0.0.1:{b1} max_fails=0;
        server 127.0.0.1:{b2} max_fails=0;""", "proxy_next_upstream http_%d;" % code), [b0, b1, b2], workers=1)

    r = gw.get("/")

    assert r.status == code
    assert r.body == b"status %d\n" % code                # the backend's own answer, not the gateway's
    assert (b0.requests_seen, b1.requests_seen, b2.requests_seen) == (1, 1, 1)


@pytest.mark.parametrize("next_upstream, tried", [("http_503", 1), ("http_503 non_idempotent", 2)])
def test_a_post_answered_503_is_sent_again_only_with_non_idempotent(backends, gateway, next_upstream, tried):
    b0, b1 = backends(2, respond_as="/status/503")
    gw = gateway(config(RESET_TWICE, "proxy_next_upstream %s;" % next_upstream), [b0, b1], workers=1)

    with gw.conn() as c:
        r = c.request("POST", "/", body=b"")

    assert r.status == 503
    assert attempts(b0, b1) == tried


@pytest.mark.parametrize("code, counts", [(503, True), (404, False)])
def test_a_retried_503_counts_as_a_failure_a_retried_404_does_not(backends, gateway, code, counts):
    b0, b1 = backends(2)
    b0.respond_as = "/status/%d" % code
    gw = gateway(config("""
        server 127.0.0.1:{b0} max_fails=1 fail_timeout=10s;
        server 127.0.0.1:{b1};""", "proxy_next_upstream http_%d;" % code), [b0, b1], workers=1)

    answers = who_answers(gw, 10)

    assert answers == [(200, "b1")] * 10
    assert b0.requests_seen == (1 if counts else 5)


def test_next_upstream_off_gives_the_error_at_once(backends, gateway):
    b0, b1 = backends(2, respond_as="/reset")
    gw = gateway(config(RESET_TWICE, "proxy_next_upstream off;"), [b0, b1], workers=1)

    assert gw.get("/").status == 502
    assert attempts(b0, b1) == 1


def test_next_upstream_off_with_one_dead_backend_fails_the_requests_sent_there(backends, gateway):
    live, = backends(1)
    gw = gateway(config("""
        server 127.0.0.1:{dead} max_fails=0;
        server 127.0.0.1:{b0} max_fails=0;""", "proxy_next_upstream off;"), [live], workers=1)

    statuses = Counter(s for s, _ in who_answers(gw, 10))

    assert statuses == {502: 5, 200: 5}
    assert live.requests_seen == 5


@pytest.mark.parametrize("tries, expected", [(0, 4), (1, 1), (2, 2), (3, 3)])
def test_next_upstream_tries_caps_the_attempts(backends, gateway, tries, expected):
    bs = backends(4, respond_as="/reset")
    gw = gateway(config("""
        server 127.0.0.1:{b0} max_fails=0;
        server 127.0.0.1:{b1} max_fails=0;
        server 127.0.0.1:{b2} max_fails=0;
        server 127.0.0.1:{b3} max_fails=0;""", "proxy_next_upstream_tries %d;" % tries), bs, workers=1)

    assert gw.get("/").status == 502
    assert attempts(*bs) == expected


def test_a_read_timeout_goes_to_the_next_backend_by_default(backends, gateway):
    b0, b1 = backends(2)
    b0.respond_as = "/delay?ms=3000"
    gw = gateway(config("""
        server 127.0.0.1:{b0} max_fails=0;
        server 127.0.0.1:{b1} max_fails=0;""", "proxy_read_timeout 300ms;"), [b0, b1], workers=1)

    answers = who_answers(gw, 2)

    assert answers == [(200, "b1")] * 2
    assert b0.requests_seen == 1


def test_without_timeout_in_next_upstream_a_read_timeout_is_a_504(backends, gateway):
    b0, b1 = backends(2, respond_as="/delay?ms=3000")
    gw = gateway(config(RESET_TWICE, "proxy_read_timeout 300ms; proxy_next_upstream error;"), [b0, b1], workers=1)

    assert gw.get("/").status == 504
    assert attempts(b0, b1) == 1


def test_next_upstream_timeout_stops_the_tries(backends, gateway):
    # Each try times out after 400 ms; after 1 s no new try starts: 3 tries (0, 0.4, 0.8 s).
    bs = backends(5, respond_as="/delay?ms=3000")
    gw = gateway(config("\n".join("        server 127.0.0.1:{b%d} max_fails=0;" % i for i in range(5)),
                        "proxy_read_timeout 400ms; proxy_next_upstream_timeout 1s;"), bs, workers=1)

    started = time.monotonic()
    r = gw.get("/")

    assert r.status == 504
    assert attempts(*bs) == 3
    assert time.monotonic() - started >= 1.0     # the third try started before 1 s, none after


@pytest.mark.parametrize("next_upstream, status, tried", [
    ("error timeout", 502, 1),
    ("error timeout invalid_header", 502, 2),
])
def test_invalid_header_is_tried_again_only_when_listed(backends, gateway, next_upstream, status, tried):
    b0, b1 = backends(2, respond_as="/garbage?kind=header")
    gw = gateway(config(RESET_TWICE, "proxy_next_upstream %s;" % next_upstream), [b0, b1], workers=1)

    assert gw.get("/").status == status
    assert attempts(b0, b1) == tried
