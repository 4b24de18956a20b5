"""Clients that are slow, silent or too many: client_header_timeout,
client_body_timeout and send_timeout close them (nginx sends no answer then);
at worker_connections, or out of descriptors, the gateway stops taking
connections without spinning and takes them again when slots or descriptors
free up, serving every client that waited in the backlog; a slowloris crowd of 1,000
connections trickling header bytes does not keep an ordinary client from
being answered, and each of them is closed at client_header_timeout.

No timing is asserted: a timeout is checked by the connection being closed
within a generous bound, never by how soon."""

import os
import resource
import socket
import time

import pytest

from conftest import NGINX
from rawhttp import Conn, ProtocolError

TIMEOUTS = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 4096; }
http {
    client_header_timeout 1s;
    client_body_timeout 1s;
    send_timeout 1s;
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}
"""

CLOSE_BOUND = 10   # seconds: far above the 1 s timeouts, only a bound against hanging forever


@pytest.fixture
def gw_and_backend(backends, gateway):
    b0, = backends(1)
    return gateway(TIMEOUTS, [b0]), b0


def test_client_header_timeout_closes_a_connection_that_sends_nothing(gw_and_backend):
    gw, b0 = gw_and_backend

    with Conn(gw.port) as c:
        assert c.closed_by_peer(timeout=CLOSE_BOUND)
        assert c.buf == b""                 # closed without an answer, as nginx does

    assert b0.connections_accepted == 0


def test_client_header_timeout_closes_an_unfinished_head(gw_and_backend):
    gw, b0 = gw_and_backend

    with Conn(gw.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: test\r\nX-Unfinished: ")
        assert c.closed_by_peer(timeout=CLOSE_BOUND)
        assert c.buf == b""

    assert b0.requests_seen == 0


def test_client_header_timeout_is_not_renewed_by_each_byte(gw_and_backend):
    gw, b0 = gw_and_backend
    deadline = time.monotonic() + CLOSE_BOUND

    with Conn(gw.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: test\r\n")
        closed = False
        while not closed and time.monotonic() < deadline:
            try:
                c.send(b"X")            # a byte every 0.2 s: well inside 1 s each time
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            closed = c.closed_by_peer(timeout=0.2)

    assert closed
    assert b0.requests_seen == 0


def test_client_body_timeout_closes_a_stalled_body(gw_and_backend):
    gw, b0 = gw_and_backend

    with Conn(gw.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\nabc")
        assert c.closed_by_peer(timeout=CLOSE_BOUND)
        assert b" 200 " not in bytes(c.buf)


def test_send_timeout_closes_a_client_that_stops_reading(gw_and_backend):
    gw, b0 = gw_and_backend
    size = 256 * 1024 * 1024              # far more than socket buffers and queues hold

    with Conn(gw.port) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        c.send_request("GET", "/bytes?n=%d" % size)
        time.sleep(3)                      # read nothing for three send_timeouts
        try:
            c.read_response(sink=lambda piece: None)
        except (ProtocolError, ConnectionResetError):
            pass                           # cut off: what send_timeout does
        else:
            pytest.fail("the whole %d bytes arrived: send_timeout did not close" % size)


def test_a_timed_out_client_does_not_disturb_others(gw_and_backend):
    gw, b0 = gw_and_backend

    with Conn(gw.port) as stalled, gw.conn() as good:
        stalled.send(b"GET / HTTP/1.1\r\nHost: test\r\n")
        for i in range(5):
            assert good.request("GET", "/?i=%d" % i).status == 200
        assert stalled.closed_by_peer(timeout=CLOSE_BOUND)
        assert good.request("GET", "/after").status == 200


# ---- worker_connections ----

LIMITED = """
daemon off;
pid gateway.pid;
error_log stderr;
worker_processes 1;
events { worker_connections 16; }
http {
    client_header_timeout 60s;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}
"""


def cpu_seconds(pid):
    """User + system CPU time of a process and all its threads, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_at_worker_connections_accept_backs_off_without_spinning(backends, gateway):
    b0, = backends(1)
    gw = gateway(LIMITED, [b0])

    # Fill every slot with a connection that has sent half a head.
    full = []
    for i in range(16):
        c = Conn(gw.port)
        c.send(b"GET / HTTP/1.1\r\n")
        full.append(c)
    time.sleep(0.3)
    # More keep arriving: they wait in the backlog (or are refused), nothing spins.
    waiting = [Conn(gw.port) for _ in range(20)]
    before = cpu_seconds(gw.pid)
    time.sleep(2)
    used = cpu_seconds(gw.pid) - before

    assert used < 1.0, "%.2f s of CPU in 2 s with the connection table full: a busy loop" % used
    if not NGINX:   # nginx's alert, word for word (nginx itself writes it to its own log file)
        assert "16 worker_connections are not enough" in gw.stderr()

    # Slots free up: the gateway takes connections again and answers.
    for c in full:
        c.close()
    for c in waiting:
        c.close()
    deadline = time.monotonic() + CLOSE_BOUND
    while True:
        try:
            with gw.conn(timeout=2) as c:
                assert c.request("GET", "/").status == 200
            break
        except (ProtocolError, OSError):
            assert time.monotonic() < deadline, "no answer after the connections went away"
            time.sleep(0.2)


@pytest.mark.gateway_only("lowers the descriptor limit of the running process, which for nginx is the master, "
                          "not the workers")
def test_out_of_descriptors_accept_backs_off_and_every_waiting_client_is_served(backends, gateway):
    b0, = backends(1)
    gw = gateway(LIMITED.replace("worker_connections 16", "worker_connections 1024"), [b0])
    with gw.conn() as warm:
        assert warm.request("GET", "/").status == 200
    # Room for a few more descriptors only: the next accepts fail with EMFILE.
    used = len(os.listdir("/proc/%d/fd" % gw.pid))
    soft, hard = resource.prlimit(gw.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(gw.pid, resource.RLIMIT_NOFILE, (used + 4, hard))
    clients = [Conn(gw.port) for _ in range(12)]
    before = cpu_seconds(gw.pid)
    time.sleep(2)
    used_cpu = cpu_seconds(gw.pid) - before

    assert used_cpu < 1.0, "%.2f s of CPU in 2 s out of descriptors: a busy loop" % used_cpu
    # (accept() then fails with EMFILE and backs off, "[crit] accept() ... Too many open files"; the
    # kernel does not always apply a limit lowered from outside to io_uring's accepts at once, so the
    # message is not asserted: the point is no spinning, and nobody lost.)

    # Descriptors come back: every client that waited in the backlog is served.
    resource.prlimit(gw.pid, resource.RLIMIT_NOFILE, (soft, hard))
    for i, c in enumerate(clients):
        r = c.request("GET", "/waited%d" % i)
        assert r.status == 200
        c.close()


# ---- slowloris ----

SLOWLORIS = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 4096; }
http {
    client_header_timeout 3s;
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}
"""


def is_closed(s):
    """Non-blocking: has the peer closed (EOF or reset)?"""
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slowloris_1000_trickling_connections(backends, gateway):
    b0, = backends(1)
    gw = gateway(SLOWLORIS, [b0])
    crowd = []
    try:
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
            s.sendall(b"GET /slow%d HTTP/1.1\r\nHost: test\r\n" % i)
            s.setblocking(False)
            crowd.append(s)

        answered = 0
        open_ = set(range(len(crowd)))
        deadline = time.monotonic() + 3 + 3 * CLOSE_BOUND
        with gw.conn() as good:
            while open_ and time.monotonic() < deadline:
                for i in list(open_):       # one more header byte each
                    try:
                        crowd[i].send(b"X")
                    except BlockingIOError:
                        pass
                    except OSError:
                        open_.discard(i)
                        continue
                    if is_closed(crowd[i]):
                        open_.discard(i)
                # the ordinary client is answered all along
                r = good.request("GET", "/ordinary%d" % answered)
                assert r.status == 200
                answered += 1
                time.sleep(0.2)

        assert not open_, "%d trickling connections still open" % len(open_)
        assert answered >= 1
        assert b0.requests_seen == answered    # none of the crowd's requests got through
    finally:
        for s in crowd:
            s.close()
