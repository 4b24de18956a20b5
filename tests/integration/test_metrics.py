"""Metrics: the Prometheus scrape endpoint (`prometheus;`), nginx's
`stub_status;`, and whether the numbers are the truth: promtool accepts a
live scrape, a real Prometheus server scraping the gateway sees exactly the
requests the test sent, and per-upstream counters match what each backend
counted."""

import json
import signal
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import NGINX, free_port

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"

# A server for the application and one, on its own port, for the counters:
# scrapes are requests too, and must not be counted among the application's.
CONFIG = """
daemon off;
worker_processes 2;
http {
    upstream app {
        server 127.0.0.1:{b0};
        server 127.0.0.1:{b1};
        keepalive 8;
    }
    server {
        listen 127.0.0.1:{port};
        server_name app.example;
        location / { proxy_pass http://app; }
    }
    server {
        listen 127.0.0.1:{mport};
        location = /metrics { prometheus; }
        location = /status { stub_status; }
    }
}
"""

STUB_STATUS = re.compile(
    r"\AActive connections: (\d+) \n"
    r"server accepts handled requests\n"
    r" (\d+) (\d+) (\d+) \n"
    r"Reading: (\d+) Writing: (\d+) Waiting: (\d+) \n\Z")


def http_get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return r.status, r.headers, r.read().decode()


def parse_samples(text):
    """{(name, frozenset(labels)): value} from Prometheus text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, "unparsable sample line %r" % line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def sample(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def send(gw, n, path="/"):
    with gw.conn() as c:
        for _ in range(n):
            assert c.get(path).status == 200


@pytest.mark.gateway_only("prometheus is the gateway's directive")
def test_live_scrape_passes_promtool(gateway, backends):
    b = backends(2)
    gw = gateway(CONFIG, b, mport=(mport := free_port()))
    send(gw, 10)
    status, headers, text = http_get(mport, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert check.returncode == 0 and check.stdout == b"" and check.stderr == b"", (check.stdout, check.stderr)
    s = parse_samples(text)
    assert sample(s, "gateway_build_info", version=re.search(r'version="([^"]+)"', text).group(1),
                  liburing=re.search(r'liburing="([^"]+)"', text).group(1),
                  wolfssl=re.search(r'wolfssl="([^"]+)"', text).group(1)) == 1
    assert sample(s, "gateway_http_requests_total", server="app.example", code="2xx") == 10
    # TLS is registered before it exists: present, zero.
    assert sample(s, "gateway_tls_handshakes_total", version="TLSv1.3", mode="kernel") == 0
    assert sample(s, "gateway_connections_writing") >= 1          # the scrape itself
    workers = [v for (name, labels), v in s.items() if name == "gateway_worker_requests_total"]
    assert len(workers) == 2 and sum(workers) >= 11


@pytest.mark.gateway_only("prometheus is the gateway's directive")
def test_upstream_counters_match_what_backends_counted(gateway, backends):
    b = backends(2)
    gw = gateway(CONFIG, b, mport=(mport := free_port()))
    for _ in range(7):                 # new connections, spread over both workers
        send(gw, 3)
    s = parse_samples(http_get(mport, "/metrics")[2])
    total = 0
    for be in b:
        server = "127.0.0.1:%d" % be.port
        got = sample(s, "gateway_upstream_requests_total", upstream="app", server=server, code="2xx")
        assert got == be.requests_seen, (server, got, be.requests_seen)
        assert sample(s, "gateway_upstream_failures_total", upstream="app", server=server) == 0
        assert sample(s, "gateway_upstream_server_state", upstream="app", server=server, state="up") == 1
        assert sample(s, "gateway_upstream_header_duration_seconds_count", upstream="app",
                      server=server) == be.requests_seen
        assert sample(s, "gateway_upstream_active_requests", upstream="app", server=server) == 0
        total += got
    assert total == 21
    assert b[0].requests_seen > 0 and b[1].requests_seen > 0


@pytest.mark.gateway_only("prometheus is the gateway's directive")
def test_failed_server_is_counted_and_shown_unavailable(gateway, backends):
    b = backends(1)
    config = CONFIG.replace("server 127.0.0.1:{b1};", "server 127.0.0.1:{dead} max_fails=1 fail_timeout=60s;")
    gw = gateway(config, b, mport=(mport := free_port()), workers=1)
    send(gw, 4)
    s = parse_samples(http_get(mport, "/metrics")[2])
    dead = [lab for (name, labs) in s for lab in labs
            if name == "gateway_upstream_failures_total" and lab[0] == "server" and lab[1] != "127.0.0.1:%d" % b[0].port]
    assert len(dead) == 1
    dead_server = dead[0][1]
    assert sample(s, "gateway_upstream_failures_total", upstream="app", server=dead_server) == 1
    assert sample(s, "gateway_upstream_retries_total", upstream="app", server=dead_server) == 1
    assert sample(s, "gateway_upstream_server_state", upstream="app", server=dead_server, state="unavailable") == 1
    assert sample(s, "gateway_upstream_requests_total", upstream="app", server="127.0.0.1:%d" % b[0].port,
                  code="2xx") == 4 == b[0].requests_seen
    assert sample(s, "gateway_http_requests_total", server="app.example", code="2xx") == 4


def test_stub_status_has_nginx_format(gateway, backends):
    """Same text as nginx's (this test also runs against nginx)."""
    b = backends(2)
    gw = gateway(CONFIG.replace("location = /metrics { prometheus; }", ""), b, mport=(mport := free_port()))
    send(gw, 5)
    status, headers, text = http_get(mport, "/status")
    assert status == 200
    assert headers["Content-Type"] == "text/plain"
    m = STUB_STATUS.match(text)
    assert m, repr(text)
    active, accepts, handled, requests, reading, writing, waiting = map(int, m.groups())
    assert accepts == handled >= 2
    assert requests >= 6                 # five requests and this one
    assert writing >= 1                  # this request
    assert active == reading + writing + waiting
    # Keep-alive connections count as waiting.
    with gw.conn() as c:
        assert c.get("/").status == 200
        m = STUB_STATUS.match(http_get(mport, "/status")[2])
        assert int(m.group(7)) >= 1


def wait_for(what, fn, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last is not None:
                return last
        except OSError as e:
            last = e
        time.sleep(0.25)
    pytest.fail("timed out waiting for %s (last: %r)" % (what, last))


@pytest.mark.gateway_only("prometheus is the gateway's directive")
@pytest.mark.skipif(not shutil.which(PROMETHEUS), reason="Debian's prometheus package is not installed")
def test_real_prometheus_sees_exactly_the_requests_sent(gateway, backends, tmp_path):
    b = backends(2)
    gw = gateway(CONFIG, b, mport=(mport := free_port()))
    pport = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: gateway\n    static_configs:\n"
        "      - targets: ['127.0.0.1:%d']\n" % mport)
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen([PROMETHEUS, "--config.file=%s" % (tmp_path / "prometheus.yml"),
                             "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % pport],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def query(expr):
            url = "http://127.0.0.1:%d/api/v1/query?%s" % (pport, urllib.parse.urlencode({"query": expr}))
            with urllib.request.urlopen(url, timeout=5) as r:
                body = json.load(r)
            assert body["status"] == "success", body
            return body["data"]["result"]

        # Prometheus up and scraping us.
        wait_for("a first scrape", lambda: query('up{job="gateway"} == 1') or None, 60)
        sent = 37
        for _ in range(sent):
            with gw.conn() as c:
                assert c.get("/").status == 200
        exprs = ('sum(gateway_http_requests_total{server="app.example"})',
                 'sum(gateway_upstream_requests_total{upstream="app",code="2xx"})')

        # Both counters from the same wait: a later query on its own can land after a scrape
        # that timed out on a loaded machine, when Prometheus has marked the series stale.
        def exact():
            rs = [query(e) for e in exprs]
            return rs if all(r and float(r[0]["value"][1]) == sent for r in rs) else None
        result = wait_for("both counters at %d" % sent, exact, 60)
        assert [float(r[0]["value"][1]) for r in result] == [sent, sent]
        assert sent == b[0].requests_seen + b[1].requests_seen
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=10)
        except subprocess.TimeoutExpired:
            prom.kill()
        log.close()


@pytest.mark.gateway_only("prometheus is the gateway's directive")
def test_reload_keeps_process_counters_and_restarts_per_server_ones(gateway, backends):
    """Connections, requests and bytes live as long as the process; counters per
    server block and upstream server belong to a configuration (its blocks and
    servers), so a reload starts them at zero: Prometheus' rate() sees a reset."""
    b = backends(2)
    gw = gateway(CONFIG, b, mport=(mport := free_port()), workers=1)
    send(gw, 3)
    gw.proc.send_signal(signal.SIGHUP)

    def switched():
        s = parse_samples(http_get(mport, "/metrics")[2])
        return sample(s, "gateway_http_requests_total", server="app.example", code="2xx") == 0
    wait_for("the reload", lambda: switched() or None, 30)
    send(gw, 2)
    s = parse_samples(http_get(mport, "/metrics")[2])
    assert sample(s, "gateway_http_requests_total", server="app.example", code="2xx") == 2
    assert sample(s, "gateway_http_responses_total", code="2xx") >= 5
    assert sample(s, "gateway_http_requests_started_total") >= 6
