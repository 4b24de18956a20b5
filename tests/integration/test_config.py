"""What a config means once running: includes, server_name, location
prefixes, size units, the pid file."""

from conftest import free_port
from rawhttp import Conn

MAIN_WITH_INCLUDES = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    include servers/*.conf;
}
"""

SERVER_A = """
server {
    listen 127.0.0.1:{port};
    location / {
        proxy_pass http://127.0.0.1:{b0};
    }
}
"""

SERVER_B = """
server {
    listen 127.0.0.1:{port2};
    location / {
        proxy_pass http://127.0.0.1:{b1};
    }
}
"""


def test_servers_come_from_an_include_glob(backends, gateway):
    b0, b1 = backends(2)
    port2 = free_port()
    gw = gateway(MAIN_WITH_INCLUDES, [b0, b1], port2=port2,
                 files={"servers/a.conf": SERVER_A, "servers/b.conf": SERVER_B})
    gw.wait_ready(port=port2)

    with Conn(gw.port) as a, Conn(port2) as b:
        assert a.get("/").header("X-Backend") == "b0"
        assert b.get("/").header("X-Backend") == "b1"


NAMED_SERVERS = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    server {
        listen 127.0.0.1:{port};
        server_name a.test;
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
    server {
        listen 127.0.0.1:{port};
        server_name b.test www.b.test;
        location / {
            proxy_pass http://127.0.0.1:{b1};
        }
    }
}
"""


def test_server_name_picks_the_server_by_host(backends, gateway):
    b0, b1 = backends(2)
    gw = gateway(NAMED_SERVERS, [b0, b1])

    def backend_for(host):
        with gw.conn() as c:
            return c.request("GET", "/", host=host).header("X-Backend")

    assert backend_for("a.test") == "b0"
    assert backend_for("b.test") == "b1"
    assert backend_for("www.b.test") == "b1"
    assert backend_for("B.TEST") == "b1"              # names are case-insensitive
    assert backend_for("b.test:8080") == "b1"         # the port is not part of the name
    assert backend_for("unknown.test") == "b0"        # the first server is the default


LOCATIONS = """
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
        location /api/v2/ {
            proxy_pass http://127.0.0.1:{b2};
        }
        location /api/ {
            proxy_pass http://127.0.0.1:{b1};
        }
    }
}
"""


def test_the_longest_matching_location_prefix_wins(backends, gateway):
    bs = backends(3)
    gw = gateway(LOCATIONS, bs)

    assert gw.get("/").header("X-Backend") == "b0"
    assert gw.get("/other/api/").header("X-Backend") == "b0"
    assert gw.get("/api/users?id=1").header("X-Backend") == "b1"
    assert gw.get("/api/v2/users").header("X-Backend") == "b2"
    assert gw.get("/api/v3/users").header("X-Backend") == "b1"


SIZE_IN_K = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    client_max_body_size 64k;
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}
"""


def test_64k_means_65536_bytes(backends, gateway):
    b0, = backends(1)
    gw = gateway(SIZE_IN_K, [b0])

    with gw.conn() as c:
        at_limit = c.request("POST", "/echo", body=b"x" * 65536)
    with gw.conn() as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 65537\r\n\r\n")
        over_limit = c.read_response()

    assert at_limit.status == 200
    assert over_limit.status == 413


def test_pid_file_is_relative_to_the_prefix(backends, gateway):
    b0, = backends(1)
    gw = gateway(SIZE_IN_K, [b0])

    assert (gw.prefix / "gateway.pid").read_text().strip() == str(gw.pid)
