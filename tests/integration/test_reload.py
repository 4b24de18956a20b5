"""Reload under load: 20 reloads, alternating a valid configuration (which
moves traffic to the other backend) and an invalid one (kept out, the error
logged with FILE:LINE), while wrk drives keep-alive connections and new
connections per request. Not one request may fail, not one connection may be
refused or cut."""

import re
import signal
import subprocess
import time

import pytest

CONFIG = """
daemon off;
pid gateway.pid;
worker_processes 2;
error_log stderr notice;
events { worker_connections 4096; }
http {
    upstream app {
        server 127.0.0.1:{b0};
        keepalive 16;
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://app;
        }
    }
}
"""

def wrk(port, seconds, close):
    args = ["wrk", "-t1", "-c16", "-d%ds" % seconds, "--timeout", "10s"]
    if close:
        args += ["-H", "Connection: close"]
    return subprocess.Popen(args + ["http://127.0.0.1:%d/" % port], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def count(gw, text):
    return gw.stderr().count(text)


def wait_for(cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.gateway_only("nginx's old workers close idle keep-alive connections at a reload: wrk counts read errors")
def test_twenty_reloads_under_load_lose_nothing(backends, gateway):
    b0, b1 = backends(2)
    gw = gateway(CONFIG, [b0, b1])
    valid = [gw.conf.read_text().replace(":%d;" % b0.port, ":%d;" % port) for port in (b1.port, b0.port)]
    invalid = gw.conf.read_text().replace(
        "        location / {\n            proxy_pass http://app;\n        }\n",
        "        location / {\n            proxy_pass http://app;\n        }\n        broken_directive on;\n")
    bad_line = invalid.split("\n").index("        broken_directive on;") + 1

    loads = [wrk(gw.port, 20, close=False), wrk(gw.port, 20, close=True)]
    time.sleep(1)                                   # both are running before the first reload
    applied = rejected = 0
    for i in range(20):
        if i % 2 == 0:
            gw.conf.write_text(valid[(i // 2) % 2])
            before = count(gw, "every worker serves new connections with the new configuration")
            gw.signal(signal.SIGHUP)
            assert wait_for(lambda: count(gw, "every worker serves new connections with the new "
                                              "configuration") > before, 10), gw.stderr()[-3000:]
            applied += 1
        else:
            gw.conf.write_text(invalid)
            before = count(gw, "keeping the running configuration")
            gw.signal(signal.SIGHUP)
            assert wait_for(lambda: count(gw, "keeping the running configuration") > before, 10), gw.stderr()[-3000:]
            rejected += 1
        gw.expect_exit = False                      # a reload is not an exit
    still_running = [p.poll() is None for p in loads]
    outputs = [p.communicate(timeout=60)[0] for p in loads]

    assert all(still_running), "the reloads outlasted the load; they must happen under it"
    assert (applied, rejected) == (10, 10)
    assert gw.proc.poll() is None
    assert ('unknown directive "broken_directive" in %s:%d; keeping the running configuration'
            % (gw.conf, bad_line)) in gw.stderr()
    for out in outputs:
        done = int(re.search(r"(\d+) requests in", out).group(1))
        assert done > 100, out
        assert "Socket errors" not in out, out          # connect, read, write or timeout
        assert "Non-2xx or 3xx responses" not in out, out
    # both configurations served: the valid ones alternate between the backends
    assert b0.requests_seen > 0 and b1.requests_seen > 0
