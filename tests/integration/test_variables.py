"""Variables, as the backend sees them: each variable is sent upstream in a
header of its own (proxy_set_header X-V-NAME $NAME), and each case checks
the value the backend received. The same scenarios run against nginx
(GATEWAY_TEST_AGAINST=nginx)."""

import json
import re

import pytest

VARIABLES = [
    "host", "http_host", "remote_addr", "remote_port", "proxy_add_x_forwarded_for", "scheme",
    "request_uri", "uri", "args", "arg_name", "is_args", "request_method", "server_name", "server_port",
    "server_addr", "http_x_custom", "cookie_session", "connection", "request_id", "proxy_host",
    "proxy_port", "server_protocol", "content_type", "content_length", "query_string", "http_cookie",
    "http_x_forwarded_for",
]

CONFIG = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    upstream named_up {
        server 127.0.0.1:{b0};
    }
    server {
        listen 127.0.0.1:{port};
        server_name first.example second.example;
%(sets)s
        proxy_set_header X-Twice-Id $request_id;
        proxy_set_header X-Braced "<${host}>";
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
        location /named/ {
            proxy_pass http://named_up/;
        }
    }
}
""" % {"sets": "\n".join("        proxy_set_header X-V-%s $%s;" % (v.replace("_", "-"), v) for v in VARIABLES)}


def seen(conn, method="GET", target="/headers", headers=(), body=None, version="HTTP/1.1", host="127.0.0.1"):
    """Send a request on conn; return {variable: value} as the backend got them, and the raw header list."""
    r = conn.request(method, target, headers=headers, body=body, version=version, host=host)
    assert r.status == 200, r
    got = json.loads(r.body)["headers"]
    values = {}
    for name, value in got:
        if name.lower().startswith("x-v-"):
            values[name[4:].lower().replace("-", "_")] = value
    return values, got


@pytest.fixture
def gw(backends, gateway):
    b0, = backends(1)
    g = gateway(CONFIG, [b0], host="{host}")     # ${host} in the config: the placeholder gives itself back
    g.b0 = b0
    return g


def test_host_is_lower_case_without_port(gw):
    with gw.conn() as c:
        v, _ = seen(c, host="First.EXAMPLE:8080")
    assert v["host"] == "first.example"
    assert v["http_host"] == "First.EXAMPLE:8080"
    assert v["server_name"] == "first.example"


def test_host_of_an_absolute_form_request_comes_from_the_target(gw):
    with gw.conn() as c:
        v, _ = seen(c, target="http://Second.Example:99/headers?q=1", host="first.example")
    assert v["host"] == "second.example"
    assert v["request_uri"] == "/headers?q=1"
    assert v["uri"] == "/headers"
    assert v["args"] == "q=1"


def test_host_falls_back_to_the_server_name(gw):
    with gw.conn() as c:
        v, _ = seen(c, version="HTTP/1.0", host=None)
    assert v["host"] == "first.example"
    assert "http_host" not in v                   # empty: not sent at all
    assert v["server_protocol"] == "HTTP/1.0"


def test_client_address_and_port(gw):
    with gw.conn() as c:
        port = c.sock.getsockname()[1]
        v, _ = seen(c)
    assert v["remote_addr"] == "127.0.0.1"
    assert v["remote_port"] == str(port)
    assert v["server_addr"] == "127.0.0.1"
    assert v["server_port"] == str(gw.port)
    assert v["scheme"] == "http"
    assert v["server_protocol"] == "HTTP/1.1"


def test_proxy_add_x_forwarded_for_joins_every_header_then_the_client(gw):
    with gw.conn() as c:
        v, _ = seen(c)
        assert v["proxy_add_x_forwarded_for"] == "127.0.0.1"
        v, _ = seen(c, headers=[("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-For", "10.0.0.2")])
        assert v["proxy_add_x_forwarded_for"] == "10.0.0.1, 10.0.0.2, 127.0.0.1"
        assert v["http_x_forwarded_for"] == "10.0.0.1, 10.0.0.2"
        v, _ = seen(c, headers=[("X-Forwarded-For", "192.0.2.7, 10.0.0.1")])
        assert v["proxy_add_x_forwarded_for"] == "192.0.2.7, 10.0.0.1, 127.0.0.1"


def test_request_line_variables(gw):
    with gw.conn() as c:
        v, _ = seen(c, target="/headers?Name=v%201&other=2")
        assert v["request_uri"] == "/headers?Name=v%201&other=2"
        assert v["uri"] == "/headers"
        assert v["args"] == v["query_string"] == "Name=v%201&other=2"
        assert v["arg_name"] == "v%201"               # argument names compare case-insensitively
        assert v["is_args"] == "?"
        assert v["request_method"] == "GET"
        v, _ = seen(c, target="/headers")
        assert "args" not in v and "is_args" not in v and "arg_name" not in v
        v, _ = seen(c, target="/headers?")
        assert "is_args" not in v                    # nothing after the "?": no arguments
        assert v["request_uri"] == "/headers?"
        v, _ = seen(c, method="DELETE")
        assert v["request_method"] == "DELETE"


def test_headers_and_cookies(gw):
    with gw.conn() as c:
        v, _ = seen(c, headers=[("X-Custom", "one"), ("Cookie", "a=1; session=abc; z=9"), ("Cookie", "late=2")])
    assert v["http_x_custom"] == "one"
    assert v["cookie_session"] == "abc"
    assert v["http_cookie"] == "a=1; session=abc; z=9; late=2"


def test_content_type_and_length(gw):
    with gw.conn() as c:
        v, _ = seen(c, method="POST", headers=[("Content-Type", "text/plain")], body=b"12345")
    assert v["content_type"] == "text/plain"
    assert v["content_length"] == "5"


def test_connection_is_the_connection_serial_number(gw):
    with gw.conn() as c:
        a, _ = seen(c)
        b, _ = seen(c)
    with gw.conn() as c:
        other, _ = seen(c)
    assert a["connection"].isdigit() and a["connection"] == b["connection"]
    assert other["connection"].isdigit() and other["connection"] != a["connection"]


def test_request_id_is_32_hex_digits_per_request(gw):
    ids = []
    with gw.conn() as c:
        for _ in range(3):
            v, raw = seen(c)
            twice = [val for name, val in raw if name.lower() == "x-twice-id"]
            assert re.fullmatch(r"[0-9a-f]{32}", v["request_id"])
            assert twice == [v["request_id"]]        # the same value however often it is used
            ids.append(v["request_id"])
    assert len(set(ids)) == 3


def test_proxy_host_and_port(gw):
    with gw.conn() as c:
        v, raw = seen(c)
        assert v["proxy_host"] == "127.0.0.1:%d" % gw.b0.port
        assert v["proxy_port"] == str(gw.b0.port)
        v, raw = seen(c, target="/named/headers")
        assert v["proxy_host"] == "named_up"
        assert v["proxy_port"] == "80"


def test_braces(gw):
    with gw.conn() as c:
        _, raw = seen(c, host="first.example")
    got = dict((n.lower(), v) for n, v in raw)
    assert got["x-braced"] == "<first.example>"


UNKNOWN = """
events { }
http {
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
            proxy_set_header X-A $no_such_variable;
        }
    }
}
"""


def test_unknown_variable_is_a_config_error(backends, cli, tmp_path):
    from conftest import write_config
    conf = write_config(tmp_path, UNKNOWN, mapping={"port": 1, "b0": 2})
    r = cli("-t", "-p", tmp_path, "-c", conf)
    assert r.returncode != 0
    # nginx names no file:line here (it resolves variables after reading the file); we do
    assert 'unknown "no_such_variable" variable' in r.output


def test_server_addr_on_a_wildcard_listen(backends, gateway):
    b0, = backends(1)
    gw = gateway("""
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    server {
        listen {port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
            proxy_set_header X-V-Server-Addr $server_addr;
            proxy_set_header X-V-Server-Port $server_port;
        }
    }
}""", [b0])
    with gw.conn() as c:
        v, _ = seen(c)
    assert v["server_addr"] == "127.0.0.1"
    assert v["server_port"] == str(gw.port)
