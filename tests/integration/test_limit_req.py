"""limit_req_zone / limit_req, as nginx: a leaky bucket per key with burst,
nodelay and delay, checked after `return` and before allow/deny.

At rate=1r/m the bucket drains 1/60 of a request per second, far less than
one request during a test, so the counts are exact: with burst=B, B + 1
requests pass in a row and the rest are refused, on the gateway and on nginx
alike (the same tests run against nginx with GATEWAY_TEST_AGAINST=nginx)."""

import threading

import pytest

from conftest import NGINX, PROG
from rawhttp import Conn

CONFIG = """
daemon off;
pid gateway.pid;
error_log stderr info;
events { worker_connections 1024; }
http {
    limit_req_zone $binary_remote_addr zone=per_ip:1m rate=1r/m;
    limit_req_zone $http_x_user zone=per_user:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=fast:1m rate=5r/s;
    limit_req_zone $binary_remote_addr zone=dry:1m rate=1r/m;
    server {
        listen 127.0.0.1:{port};
        limit_req zone=per_ip burst=2 nodelay;
        location / { proxy_pass http://127.0.0.1:{b0}; }
        location /status429/ {
            limit_req zone=per_ip burst=2 nodelay;
            limit_req_status 429;
            proxy_pass http://127.0.0.1:{b0};
        }
        location /user/ { limit_req zone=per_user burst=1 nodelay; proxy_pass http://127.0.0.1:{b0}; }
        location /ret/ { return 200 "answered by return\\n"; }
        location /denied/ { deny all; proxy_pass http://127.0.0.1:{b0}; }
        location /delay/ { limit_req zone=fast burst=10; proxy_pass http://127.0.0.1:{b0}/; }
        location /dry/ {
            limit_req zone=dry burst=1 nodelay;
            limit_req_dry_run on;
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}
"""


@pytest.fixture
def gw(backends, gateway):
    b0, = backends(1)
    return gateway(CONFIG, [b0], workers=2), b0


def statuses(gw, path, n, headers=None):
    """n GETs, each on its own connection (so both workers take some)."""
    out = []
    for _ in range(n):
        with Conn(gw.port) as c:
            out.append(c.request("GET", path, headers=headers or ()).status)
    return out


def test_burst_then_503_shared_by_the_workers(gw):
    g, b0 = gw
    got = statuses(g, "/a", 8)
    # burst=2: the first request and two more in excess pass; nothing is
    # accounted for a refused one, so all later ones are refused too
    assert got == [200, 200, 200] + [503] * 5
    assert b0.requests_seen == 3


def test_limit_req_status(gw):
    g, b0 = gw
    assert statuses(g, "/status429/x", 5) == [200, 200, 200, 429, 429]


def test_location_with_its_own_limit_replaces_the_servers(gw):
    g, b0 = gw
    # /user/ limits per X-User only (burst=1): the server's per-IP limit is not inherited
    assert statuses(g, "/user/1", 4, [("X-User", "alice")]) == [200, 200, 503, 503]
    assert statuses(g, "/user/1", 3, [("X-User", "bob")]) == [200, 200, 503]
    # an empty key is not limited at all
    assert statuses(g, "/user/1", 5) == [200] * 5


def test_return_runs_before_the_limit(gw):
    g, b0 = gw
    assert statuses(g, "/ret/", 6) == [200] * 6
    assert b0.requests_seen == 0
    # ... and did not use up the per-IP bucket
    assert statuses(g, "/a", 4) == [200, 200, 200, 503]


def test_limit_runs_before_deny(gw):
    g, b0 = gw
    # preaccess before access: the bucket fills on denied requests, then 503 wins
    assert statuses(g, "/denied/", 5) == [403, 403, 403, 503, 503]


def test_dry_run_counts_but_lets_everything_through(gw):
    g, b0 = gw
    assert statuses(g, "/dry/", 4) == [200] * 4
    assert "limiting requests, dry run" in g.stderr()


def test_delay_holds_requests_and_bodies_intact(gw):
    """Without nodelay, requests in excess wait their turn (5r/s here) instead
    of being refused; a POST body sent meanwhile arrives whole."""
    g, b0 = gw
    results = []

    def post(i):
        with Conn(g.port) as c:
            body = (b"%d" % i) * 5000
            r = c.request("POST", "/delay/echo", body=body)
            results.append((r.status, r.body == body))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [(200, True)] * 4
    assert b0.requests_seen == 4
    assert "delaying request" in g.stderr()


@pytest.mark.gateway_only("nginx 1.22 passes -t with a limit_req naming no zone")
def test_unknown_zone_is_a_config_error(cli, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("events {}\nhttp {\n    server {\n        listen 127.0.0.1:1;\n"
                    "        limit_req zone=nope burst=1;\n    }\n}\n")
    r = cli("-t", "-c", conf)
    assert r.returncode != 0
    assert 'zone "nope"' in r.stderr


@pytest.mark.parametrize("line, message", [
    ("limit_req_zone $binary_remote_addr zone=z:1m rate=fast;", 'invalid rate "rate=fast"'),
    ("limit_req_zone $binary_remote_addr rate=1r/s rate=2r/s;", '"limit_req_zone" must have "zone" parameter'),
    ("limit_req_zone $binary_remote_addr zone=z rate=1r/s;", 'invalid zone size "zone=z"'),
    ("limit_req_zone $binary_remote_addr zone=z:1k rate=1r/s;", 'zone "zone=z:1k" is too small'),
    ("limit_req_zone $binary_remote_addr rate=1r/s burst=5;", 'invalid parameter "burst=5"'),
    ("server { limit_req zone=z burst=x; }", 'invalid burst value "burst=x"'),
])
def test_bad_zone_lines_name_file_and_line(cli, tmp_path, line, message):
    conf = tmp_path / "bad.conf"
    conf.write_text("events {}\nhttp {\n    %s\n}\n" % line)
    r = cli("-t", "-c", conf)
    assert r.returncode != 0
    assert message in r.stderr
    assert "%s:3" % conf in r.stderr
