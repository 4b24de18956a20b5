"""Access and error logs: the predefined `combined` format and a custom one,
line for line; escaping (default and json); reopening after logrotate
renamed the file (no line lost, new lines in the new file); buffer= and
flush=; error_log below main with nginx's message shape. These scenarios also
run against nginx (GATEWAY_TEST_AGAINST=nginx), except where marked."""

import os
import re
import signal
import threading
import time

import pytest

from conftest import NGINX

TIME_LOCAL = r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}"

BASE = """
daemon off;
pid logs/test.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
%s
    server {
        listen 127.0.0.1:{port};
        server_name app;
%s
        location / { proxy_pass http://127.0.0.1:{b0}; }
    }
}
"""


def config(http="", server=""):
    return BASE % (http, server)


def read_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return []


def wait_lines(path, n, timeout=10):
    """The file's lines once it has at least n (writes are asynchronous)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = read_lines(path)
        if len(lines) >= n:
            time.sleep(0.1)        # anything beyond n would be a bug: let it show
            return read_lines(path)
        time.sleep(0.02)
    pytest.fail("%s has %d lines, expected %d" % (path, len(read_lines(path)), n))


def test_combined_lines_are_exact(gateway, backends):
    b = backends(1)
    gw = gateway(config(server="access_log logs/access.log;"), b)
    expected = []
    with gw.conn() as c:
        for target, ua, ref in [("/", "tester/1.0", None), ("/status/404", "curl/8", "http://ref.example/"),
                                ("/echo?x=1", "a b", None)]:
            headers = [("User-Agent", ua)] + ([("Referer", ref)] if ref else [])
            r = c.get(target, headers)
            expected.append((target, r.status, len(r.body), ref or "-", ua))
    lines = wait_lines(gw.prefix / "logs" / "access.log", 3)
    assert len(lines) == 3
    for line, (target, status, size, ref, ua) in zip(lines, expected):
        pattern = r'127\.0\.0\.1 - - \[%s\] "GET %s HTTP/1\.1" %d %d "%s" "%s"' % (
            TIME_LOCAL, re.escape(target), status, size, re.escape(ref), re.escape(ua))
        assert re.fullmatch(pattern, line), (line, pattern)


def test_custom_format_with_upstream_attempts(gateway, backends):
    """A refused first server and the retry on the second: $upstream_* list both attempts."""
    b = backends(1)
    fmt = ("log_format up '$request|$status|$body_bytes_sent|$request_length|$upstream_addr|"
           "$upstream_status|$connection_requests|$remote_user';")
    conf = config(http=fmt + "\n    upstream two { server 127.0.0.1:{dead}; server 127.0.0.1:{b0}; }",
                  server="access_log logs/up.log up;").replace("proxy_pass http://127.0.0.1:{b0};",
                                                               "proxy_pass http://two;")
    gw = gateway(conf, b)
    with gw.conn() as c:
        r1 = c.get("/one")
        r2 = c.get("/two", [("Authorization", "Basic Ym9iOnNlY3JldA==")])    # bob:secret
    assert r1.status == r2.status == 200
    lines = wait_lines(gw.prefix / "logs" / "up.log", 2)
    dead = re.search(r"server 127\.0\.0\.1:(\d+);", gw.conf.read_text()).group(1)
    req1 = "GET /one HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    assert lines[0] == "GET /one HTTP/1.1|200|%d|%d|127.0.0.1:%s, 127.0.0.1:%d|502, 200|1|-" % (
        len(r1.body), len(req1), dead, b[0].port)
    req2 = "GET /two HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic Ym9iOnNlY3JldA==\r\n\r\n"
    assert lines[1] == "GET /two HTTP/1.1|200|%d|%d|127.0.0.1:%d|200|2|bob" % (len(r2.body), len(req2), b[0].port)


def test_local_answer_and_times(gateway, backends):
    """No upstream: $upstream_* are "-"; times are seconds with milliseconds."""
    b = backends(1)
    fmt = "log_format t '$status $upstream_addr $upstream_response_time $request_time $msec $time_iso8601';"
    gw = gateway(config(http=fmt, server="access_log logs/t.log t;\n        location = /nothing { return 404; }"), b)
    assert gw.get("/nothing").status == 404
    assert gw.get("/").status == 200
    lines = wait_lines(gw.prefix / "logs" / "t.log", 2)
    assert re.fullmatch(r"404 - - \d+\.\d{3} \d{10}\.\d{3} \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", lines[0]), lines[0]
    assert re.fullmatch(r"200 127\.0\.0\.1:%d \d+\.\d{3} \d+\.\d{3} \d{10}\.\d{3} \S+" % b[0].port, lines[1]), lines[1]


def test_escaping_default_and_json(gateway, backends):
    b = backends(1)
    http = ("log_format plain '$http_user_agent';\n"
            "    log_format js escape=json '{\"ua\":\"$http_user_agent\",\"ref\":\"$http_referer\"}';\n"
            "    log_format raw escape=none '$http_user_agent';")
    server = "access_log logs/plain.log plain; access_log logs/js.log js; access_log logs/raw.log raw;"
    gw = gateway(config(http=http, server=server), b)
    ua = 'a"b\\c\td\u00e9'
    with gw.conn() as c:
        c.send(("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: %s\r\n\r\n" % ua).encode("utf-8"))
        assert c.read_response().status == 200
    plain = wait_lines(gw.prefix / "logs" / "plain.log", 1)
    js = wait_lines(gw.prefix / "logs" / "js.log", 1)
    raw = wait_lines(gw.prefix / "logs" / "raw.log", 1)
    assert plain == ["a\\x22b\\x5Cc\\x09d\\xC3\\xA9"]
    assert js == ['{"ua":"a\\"b\\\\c\\td\u00e9","ref":""}']
    assert raw == [ua]


def test_reopen_after_rename_loses_no_line(gateway, backends):
    """logrotate's way: rename, then -s reopen, while requests keep coming."""
    b = backends(1)
    gw = gateway(config(server="access_log logs/access.log;"), b)
    log = gw.prefix / "logs" / "access.log"
    rotated = gw.prefix / "logs" / "access.log.1"
    total, sent = 300, []
    go = threading.Event()

    def client():
        with gw.conn() as c:
            for i in range(total):
                if i == total // 3:
                    go.set()
                assert c.get("/?n=%d" % i).status == 200
                sent.append(i)

    t = threading.Thread(target=client)
    t.start()
    go.wait(30)
    os.rename(log, rotated)
    res = gw.cli("-s", "reopen")
    assert res.returncode == 0, res.output
    t.join(60)
    assert len(sent) == total
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(read_lines(rotated)) + len(read_lines(log)) < total:
        time.sleep(0.05)
    old, new = read_lines(rotated), read_lines(log)
    numbers = [int(re.search(r'"GET /\?n=(\d+) ', line).group(1)) for line in old + new]
    assert sorted(numbers) == list(range(total))          # every line, once
    assert len(old) >= total // 3 and len(new) > 0         # the new file took over
    # After the reopen, new requests go to the new file only.
    before = len(old)
    assert gw.get("/?n=last").status == 200
    wait_lines(log, len(new) + 1)
    assert len(read_lines(rotated)) == before


def test_buffered_lines_wait_for_flush_or_stop(gateway, backends):
    b = backends(1)
    server = ("access_log logs/big.log combined buffer=1m;\n"
              "        access_log logs/timed.log combined buffer=1m flush=1s;")
    gw = gateway(config(server=server), b)
    with gw.conn() as c:
        for _ in range(3):
            assert c.get("/").status == 200
    # flush=: written within its time although the buffer is far from full
    assert len(wait_lines(gw.prefix / "logs" / "timed.log", 3)) == 3
    # buffer= alone: nothing until the buffer fills or the process stops
    assert read_lines(gw.prefix / "logs" / "big.log") == []
    gw.signal(signal.SIGQUIT)
    assert gw.wait(10) == 0
    assert len(read_lines(gw.prefix / "logs" / "big.log")) == 3


def test_access_log_off_and_inheritance(gateway, backends):
    b = backends(1)
    server = ("access_log logs/server.log;\n"
              "        location /quiet { access_log off; proxy_pass http://127.0.0.1:{b0}; }\n"
              "        location /own { access_log logs/own.log; proxy_pass http://127.0.0.1:{b0}; }")
    gw = gateway(config(server=server), b)
    for path in ("/", "/quiet", "/own", "/"):
        assert gw.get(path).status == 200
    assert len(wait_lines(gw.prefix / "logs" / "server.log", 2)) == 2
    assert len(wait_lines(gw.prefix / "logs" / "own.log", 1)) == 1
    assert all("/quiet" not in line for line in read_lines(gw.prefix / "logs" / "server.log"))


def test_location_error_log_names_the_upstream_and_the_reason(gateway, backends):
    b = backends(1)
    server = ("location /down { error_log logs/down.log error; proxy_pass http://127.0.0.1:{dead}; }\n"
              "        location /slow { error_log logs/slow.log; proxy_read_timeout 300ms; "
              "proxy_pass http://127.0.0.1:{b0}/delay; }")
    gw = gateway(config(server=server), b)
    assert gw.get("/down/x").status == 502
    assert gw.get("/slow?ms=2000").status == 504
    dead = re.search(r"location /down .*?127\.0\.0\.1:(\d+);", gw.conf.read_text()).group(1)
    down = wait_lines(gw.prefix / "logs" / "down.log", 1)
    assert re.search(r'^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[error\] \d+#\d+: (\*\d+ )?'
                     r'connect\(\) failed \(111: Connection refused\) while connecting to upstream, '
                     r'client: 127\.0\.0\.1, server: app, request: "GET /down/x HTTP/1\.1", '
                     r'upstream: "http://127\.0\.0\.1:%s/down/x", host: "127\.0\.0\.1(:\d+)?"$' % dead, down[0]), down
    slow = wait_lines(gw.prefix / "logs" / "slow.log", 1)
    assert re.search(r'\[error\] \d+#\d+: (\*\d+ )?upstream timed out \(110: Connection timed out\) while reading '
                     r'response header from upstream, client: 127\.0\.0\.1, server: app, '
                     r'request: "GET /slow\?ms=2000 HTTP/1\.1", upstream: "http://127\.0\.0\.1:%d/delay\?ms=2000"'
                     % b[0].port, slow[0]), slow


@pytest.mark.gateway_only("nginx's default is logs/access.log; ours is no access log unless configured")
def test_no_access_log_unless_configured(gateway, backends):
    b = backends(1)
    gw = gateway(config(), b)
    assert gw.get("/").status == 200
    time.sleep(0.3)
    assert not (gw.prefix / "logs" / "access.log").exists()


def test_reopen_moves_the_error_logs_too(gateway, backends):
    b = backends(1)
    conf = config(server="location /down { error_log logs/down.log; proxy_pass http://127.0.0.1:{dead}; }")
    conf = conf.replace("daemon off;", "daemon off;\nerror_log logs/main.log notice;")
    gw = gateway(conf, b)
    logs = gw.prefix / "logs"
    assert gw.get("/down").status == 502
    wait_lines(logs / "down.log", 1)
    os.rename(logs / "down.log", logs / "down.log.1")
    os.rename(logs / "main.log", logs / "main.log.1")
    assert gw.cli("-s", "reopen").returncode == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (logs / "main.log").exists():
        time.sleep(0.02)
    assert gw.get("/down").status == 502
    assert len(wait_lines(logs / "down.log", 1)) == 1
    assert len(read_lines(logs / "down.log.1")) == 1
    assert any("reopening logs" in line for line in read_lines(logs / "main.log.1"))


def test_no_live_upstreams_names_the_group(gateway, backends):
    b = backends(1)
    fmt = "log_format up '$status $upstream_addr $upstream_status';"
    conf = config(http=fmt + "\n    upstream gone { server 127.0.0.1:{dead} max_fails=1; "
                             "server 127.0.0.1:{dead} max_fails=1; }",
                  server="access_log logs/up.log up;").replace("proxy_pass http://127.0.0.1:{b0};",
                                                               "proxy_pass http://gone;")
    gw = gateway(conf, b)
    assert gw.get("/").status == 502      # both tried, both refused
    assert gw.get("/").status == 502      # none left
    lines = wait_lines(gw.prefix / "logs" / "up.log", 2)
    assert re.fullmatch(r"502 127\.0\.0\.1:(\d+), 127\.0\.0\.1:\1 502, 502", lines[0]), lines[0]
    assert lines[1] == "502 gone 502"
