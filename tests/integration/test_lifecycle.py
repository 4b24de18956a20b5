"""Stopping and signalling a running gateway: graceful quit, fast stop,
`-s stop|quit|reload|reopen` through the pid file."""

import signal
import time

import pytest

from conftest import port_accepts

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


def wait_until(predicate, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_sigquit_finishes_the_request_in_flight_then_exits_0(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    # The read starts almost 5 s before the answer is due: its timeout must be well past that.
    with gw.conn(timeout=30) as c:
        c.send_request("GET", "/delay?ms=5000")
        assert b0.wait_for_requests(1, timeout=10)          # the request is at the backend

        gw.signal(signal.SIGQUIT)
        # while that request is still in flight (it takes 5 s), new connections are refused
        refusing = wait_until(lambda: not port_accepts(gw.port), timeout=4.0)
        r = c.read_response()

    assert refusing, "new connections were still accepted after SIGQUIT"
    assert r.status == 200
    assert r.body == b"delayed 5000 ms\n"
    assert gw.wait(timeout=5) == 0


def test_sigterm_exits_promptly_even_with_a_request_in_flight(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    with gw.conn() as c:
        c.send_request("GET", "/delay?ms=10000")
        assert b0.wait_for_requests(1, timeout=10)

        start = time.monotonic()
        gw.signal(signal.SIGTERM)
        status = gw.wait(timeout=3)

    assert status is not None, "still running 3 s after SIGTERM"
    assert time.monotonic() - start < 3
    # nginx exits 0 on SIGTERM; dying of the signal itself is "prompt" too, but not a crash.
    assert status in (0, -signal.SIGTERM)


def test_sigterm_on_an_idle_gateway(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    gw.signal(signal.SIGTERM)

    assert gw.wait(timeout=3) in (0, -signal.SIGTERM)


@pytest.mark.parametrize("command", ["stop", "quit"])
def test_s_signals_the_running_process_through_the_pid_file(backends, gateway, command):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])
    assert (gw.prefix / "gateway.pid").read_text().strip() == str(gw.pid)

    gw.expect_exit = True
    res = gw.cli("-s", command)

    assert res.returncode == 0, res.output
    assert gw.wait(timeout=5) == 0
    assert not port_accepts(gw.port)


def test_s_reload_picks_up_the_new_config(backends, gateway):
    b0, b1 = backends(2)
    gw = gateway(ONE_BACKEND, [b0])
    assert gw.get("/").header("X-Backend") == "b0"

    gw.conf.write_text(gw.conf.read_text().replace(str(b0.port), str(b1.port)))
    res = gw.cli("-s", "reload")

    assert res.returncode == 0, res.output
    assert wait_until(lambda: gw.get("/").header("X-Backend") == "b1", timeout=30, step=0.1)
    assert gw.proc.poll() is None                 # same process, still running


def test_s_reopen_keeps_serving(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])

    res = gw.cli("-s", "reopen")

    assert res.returncode == 0, res.output
    assert gw.get("/").status == 200
    assert gw.proc.poll() is None


def test_s_without_a_running_process_fails_and_names_the_pid_file(backends, gateway):
    b0, = backends(1)
    gw = gateway(ONE_BACKEND, [b0])
    gw.stop()

    res = gw.cli("-s", "stop")

    assert res.returncode != 0
    assert "gateway.pid" in res.output
