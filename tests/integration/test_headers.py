"""Header rewriting: what the backend receives (proxy_set_header and its
inheritance, nginx's defaults, proxy_http_version, invalid names dropped)
and what the client receives (proxy_hide_header, proxy_pass_header,
add_header, server_tokens). Each case checks both sides exactly, and runs
against nginx too (GATEWAY_TEST_AGAINST=nginx)."""

import json

import pytest

from conftest import NGINX, PROG

HEAD = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
"""


def sent(gw, target="/headers", headers=(), method="GET", body=None, host="127.0.0.1", version="HTTP/1.1"):
    """(request line, [(name, value)] the backend received, the response)."""
    with gw.conn() as c:
        r = c.request(method, target, headers=headers, body=body, host=host, version=version)
    assert r.status == 200, r
    doc = json.loads(r.body)
    return doc["request_line"], [tuple(h) for h in doc["headers"]], r


def lower(headers):
    return [(n.lower(), v) for n, v in headers]


# ---- what the backend receives ----

def test_nginx_defaults_host_is_proxy_host_and_connection_close(backends, gateway):
    """No proxy_set_header anywhere: Host $proxy_host and Connection close
    first, then the client's headers in order (its Host and Connection
    replaced). nginx's own default version is 1.0, ours 1.1 (documented)."""
    b0, = backends(1)
    gw = gateway(HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        location / { proxy_pass http://127.0.0.1:{b0}; }
    }
}""", [b0], nginx_proxy_defaults=False)

    line, got, _ = sent(gw, "/headers?x=1", headers=[("User-Agent", "t/1"), ("Connection", "keep-alive"),
                                                     ("Accept", "*/*")], host="client.example")

    assert line == "GET /headers?x=1 HTTP/%s" % ("1.0" if NGINX else "1.1")
    assert got == [("Host", "127.0.0.1:%d" % b0.port), ("Connection", "close"), ("User-Agent", "t/1"),
                   ("Accept", "*/*")]


def test_proxy_set_header_lines_come_first_then_defaults_then_the_request(backends, gateway):
    b0, = backends(1)
    gw = gateway(HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header x-lower-case "as written";
            proxy_set_header Host $host;
            proxy_set_header X-Custom "from config";
        }
    }
}""", [b0])

    line, got, _ = sent(gw, headers=[("X-Forwarded-For", "10.0.0.1"), ("X-Custom", "from client"),
                                     ("X-Forwarded-For", "10.0.0.2"), ("Accept", "*/*")], host="Site.Example:8080")

    assert got == [("X-Real-IP", "127.0.0.1"), ("X-Forwarded-For", "10.0.0.1, 10.0.0.2, 127.0.0.1"),
                   ("x-lower-case", "as written"), ("Host", "site.example"), ("X-Custom", "from config"),
                   ("Connection", "close"), ("Accept", "*/*")]


def test_empty_value_removes_the_header(backends, gateway):
    b0, = backends(1)
    gw = gateway(HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
            proxy_set_header User-Agent "";
            proxy_set_header X-Maybe $http_x_missing;
            proxy_set_header X-Present $http_x_here;
            proxy_set_header Accept-Encoding "";
        }
    }
}""", [b0])

    _, got, _ = sent(gw, headers=[("User-Agent", "t/1"), ("Accept-Encoding", "gzip"), ("X-Here", "yes")])

    assert got == [("X-Present", "yes"), ("Host", "127.0.0.1:%d" % b0.port), ("Connection", "close"),
                   ("X-Here", "yes")]


INHERIT = HEAD + """
http {
    proxy_set_header X-From-Http http;
    add_header X-Add-Http http;
    server {
        listen 127.0.0.1:{port};
        location /inherit-http/ { proxy_pass http://127.0.0.1:{b0}/; }
    }
    server {
        listen 127.0.0.1:{port2};
        proxy_set_header X-From-Server server;
        add_header X-Add-Server server;
        location /inherit-server/ { proxy_pass http://127.0.0.1:{b0}/; }
        location /own/ {
            proxy_pass http://127.0.0.1:{b0}/;
            proxy_set_header X-From-Location location;
            add_header X-Add-Location location;
        }
        location /removed/ {
            proxy_pass http://127.0.0.1:{b0}/;
            proxy_set_header X-From-Server "";
        }
    }
}"""


def test_a_level_with_any_proxy_set_header_replaces_the_inherited_list(backends, gateway):
    b0, = backends(1)
    port2 = __import__("conftest").free_port()
    gw = gateway(INHERIT, [b0], port2=port2)

    def ours(got):
        return [(n, v) for n, v in got if n.startswith("X-From")]

    _, got, r = sent(gw, "/inherit-http/headers")
    assert ours(got) == [("X-From-Http", "http")]
    assert r.header_values("X-Add-Http") == ["http"]

    gw.port = port2
    _, got, r = sent(gw, "/inherit-server/headers")
    assert ours(got) == [("X-From-Server", "server")]
    assert (r.header_values("X-Add-Http"), r.header_values("X-Add-Server")) == ([], ["server"])

    _, got, r = sent(gw, "/own/headers")
    assert ours(got) == [("X-From-Location", "location")]
    assert r.header_values("X-Add-Server") == [] and r.header_values("X-Add-Location") == ["location"]

    _, got, _ = sent(gw, "/removed/headers", headers=[("X-From-Server", "client")])
    assert ours(got) == []                          # removed: neither ours nor the client's


def test_a_replaced_list_brings_back_connection_close(backends, gateway):
    """nginxify puts proxy_set_header Connection "" at the http level: a
    location with a list of its own drops it, and nginx's default comes back."""
    b0, = backends(1)
    gw = gateway(HEAD + """
http {
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
            proxy_set_header X-A a;
        }
        location /inherits/ {
            proxy_pass http://127.0.0.1:{b0}/;
        }
    }
}""", [b0], nginx_proxy_defaults=False)

    _, got, _ = sent(gw)
    assert got == [("X-A", "a"), ("Host", "127.0.0.1:%d" % b0.port), ("Connection", "close")]
    _, got, _ = sent(gw, "/inherits/headers")
    assert got == [("Host", "127.0.0.1:%d" % b0.port)]


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_proxy_http_version(backends, gateway, version):
    b0, = backends(1)
    gw = gateway(HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:{b0};
            proxy_http_version %s;
            proxy_set_header X-A a;
        }
    }
}""" % version, [b0])

    line, got, _ = sent(gw, "/headers")

    assert line == "GET /headers HTTP/%s" % version
    assert got == [("X-A", "a"), ("Host", "127.0.0.1:%d" % b0.port), ("Connection", "close")]


def test_upstream_host_is_the_upstream_name(backends, gateway):
    b0, = backends(1)
    gw = gateway(HEAD + """
http {
    upstream app_servers { server 127.0.0.1:{b0}; }
    server {
        listen 127.0.0.1:{port};
        location / { proxy_pass http://app_servers; proxy_set_header X-A a; }
    }
}""", [b0])

    _, got, _ = sent(gw)

    assert got == [("X-A", "a"), ("Host", "app_servers"), ("Connection", "close")]


KEEPALIVE = HEAD + """
http {
    upstream pool {
        server 127.0.0.1:{b0};
        keepalive 4;
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://pool;
            %s
        }
    }
}"""


@pytest.mark.parametrize("directives, reused", [
    ('proxy_http_version 1.1; proxy_set_header Connection "";', True),
    ('proxy_http_version 1.1; proxy_set_header Connection "";  proxy_set_header X-A a;', True),
    ('proxy_http_version 1.1; proxy_set_header Connection close;', False),
    # No Connection set: nginx sends its default "close"; we leave it out for
    # an upstream with a keepalive pool (documented deviation).
    ('proxy_http_version 1.1; proxy_set_header X-A a;', not NGINX),
    ('proxy_http_version 1.0; proxy_set_header Connection "";', False),     # 1.0 without keep-alive: closed
    ('proxy_http_version 1.0; proxy_set_header Connection keep-alive;', True),
], ids=["connection-empty", "with-other-headers", "connection-close", "default-connection", "http10",
        "http10-keep-alive"])
def test_upstream_keepalive_follows_the_connection_header(backends, gateway, directives, reused):
    b0, = backends(1)
    gw = gateway(KEEPALIVE % directives, [b0])

    ids = set()
    for _ in range(4):
        r = gw.get("/conn-id")
        assert r.status == 200
        ids.add(r.body)

    assert (len(ids) == 1) == reused, ids


@pytest.mark.gateway_only("nginx's default is HTTP/1.0 with Connection: close, which no pool can reuse")
def test_keepalive_alone_keeps_upstream_connections(backends, gateway):
    """Our documented deviation: with `keepalive` in the upstream and no
    Connection set, the default Connection: close is left out."""
    b0, = backends(1)
    gw = gateway(KEEPALIVE % "", [b0])

    ids = {gw.get("/conn-id").body for _ in range(4)}
    line, got, _ = sent(gw)

    assert len(ids) == 1
    assert line == "GET /headers HTTP/1.1"
    assert got == [("Host", "pool")]


INVALID = HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        %s
        location / {
            proxy_pass http://127.0.0.1:{b0};
            proxy_set_header X-Seen-Under $http_x_under;
        }
    }
}"""


@pytest.mark.parametrize("directives, passed", [
    ("", ["X-Ok"]),
    ("underscores_in_headers on;", ["X_Under", "X-Ok"]),
    ("ignore_invalid_headers off;", ["X_Under", "X.Dot", "X-Ok"]),
], ids=["defaults", "underscores", "no-ignore"])
def test_invalid_header_names_are_dropped(backends, gateway, directives, passed):
    b0, = backends(1)
    gw = gateway(INVALID % directives, [b0])

    _, got, _ = sent(gw, headers=[("X_Under", "u"), ("X.Dot", "d"), ("X-Ok", "o")])

    client = [n for n, _ in got if n not in ("Host", "Connection", "X-Seen-Under")]
    assert client == passed
    # a dropped header is not seen by $http_NAME either
    assert [v for n, v in got if n == "X-Seen-Under"] == (["u"] if "X_Under" in passed else [])


# ---- what the client receives ----

def respond(*headers, status=200):
    from urllib.parse import urlencode
    return "/respond?" + urlencode([("status", status)] + [("h", "%s:%s" % h) for h in headers])


RESPONSE = HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        %s
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}"""


def our_server(value):
    return value == PROG or value.startswith(PROG + "/")


def test_backend_server_and_date_are_replaced_by_ours(backends, gateway):
    b0, = backends(1)
    gw = gateway(RESPONSE % "", [b0])

    r = gw.get(respond(("Server", "backend/1"), ("Date", "Thu, 01 Jan 1970 00:00:00 GMT"), ("X-Pad", "p"),
                       ("X-Accel-Buffering", "no"), ("X-Powered-By", "php"), ("X-Other", "o")))

    assert r.status == 200
    assert len(r.header_values("Server")) == 1 and our_server(r.header("Server"))
    assert "/" in r.header("Server")                          # server_tokens on: the version
    assert len(r.header_values("Date")) == 1 and r.header("Date") != "Thu, 01 Jan 1970 00:00:00 GMT"
    assert r.header("Date").endswith(" GMT")
    assert r.header("X-Pad") is None and r.header("X-Accel-Buffering") is None
    assert r.header("X-Powered-By") == "php" and r.header("X-Other") == "o"


def test_proxy_pass_header_passes_server_and_date(backends, gateway):
    b0, = backends(1)
    gw = gateway(RESPONSE % "proxy_pass_header Server; proxy_pass_header Date; proxy_pass_header X-Pad;", [b0])

    r = gw.get(respond(("Server", "backend/1"), ("Date", "Thu, 01 Jan 1970 00:00:00 GMT"), ("X-Pad", "p")))
    assert r.header_values("Server") == ["backend/1"]
    assert r.header_values("Date") == ["Thu, 01 Jan 1970 00:00:00 GMT"]
    assert r.header("X-Pad") == "p"

    r = gw.get(respond(("X-Other", "o")))                 # passed, but none came: none at all (as nginx)
    assert r.header("Server") is None and r.header("Date") is None


def test_proxy_hide_header(backends, gateway):
    b0, = backends(1)
    gw = gateway(RESPONSE % "proxy_hide_header X-Secret; proxy_hide_header x-powered-by;", [b0])

    r = gw.get(respond(("X-Secret", "s"), ("X-Powered-By", "php"), ("X-Secret", "again"), ("X-Kept", "k")))

    assert r.header("X-Secret") is None and r.header("X-Powered-By") is None
    assert r.header("X-Kept") == "k"


@pytest.mark.parametrize("tokens", ["on", "off"])
def test_server_tokens(backends, gateway, tokens):
    b0, = backends(1)
    gw = gateway(RESPONSE % ("server_tokens %s;" % tokens), [b0])

    server = gw.get("/").header("Server")

    assert our_server(server)
    assert ("/" in server) == (tokens == "on")


ADD = HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        add_header X-Plain plain;
        add_header X-Always always always;
        add_header X-Uri $request_uri;
        add_header X-Empty $http_x_missing always;
        location / {
            proxy_pass http://127.0.0.1:{b0};
        }
    }
}"""


@pytest.mark.parametrize("status, plain", [
    (200, True), (201, True), (204, True), (206, True), (301, True), (302, True), (303, True), (304, True),
    (307, True), (308, True), (202, False), (404, False), (500, False), (503, False),
])
def test_add_header_without_always_only_on_some_statuses(backends, gateway, status, plain):
    b0, = backends(1)
    gw = gateway(ADD, [b0])
    target = "/status/%d" % status

    with gw.conn() as c:
        r = c.get(target)

    assert r.status == status
    assert r.header_values("X-Plain") == (["plain"] if plain else [])
    assert r.header_values("X-Uri") == ([target] if plain else [])
    assert r.header_values("X-Always") == ["always"]
    assert r.header("X-Empty") is None                      # an empty value adds nothing


def test_add_header_adds_to_the_backends_own(backends, gateway):
    b0, = backends(1)
    gw = gateway(ADD, [b0])

    r = gw.get(respond(("X-Plain", "backend")))

    assert r.header_values("X-Plain") == ["backend", "plain"]


@pytest.mark.parametrize("line, message", [
    ("proxy_http_version 2.0;", 'invalid value "2.0"'),
    ("add_header X-A a sometimes;", 'invalid parameter "sometimes"'),
    ("proxy_set_header X-A;", 'invalid number of arguments in "proxy_set_header" directive'),
    ("proxy_set_header X-A $nope;", 'unknown "nope" variable'),
    ("underscores_in_headers maybe;", 'it must be "on" or "off"'),
])
def test_bad_directives(cli, tmp_path, line, message):
    from conftest import write_config
    conf = write_config(tmp_path, HEAD + """
http {
    server {
        listen 127.0.0.1:1;
        %s
        location / { proxy_pass http://127.0.0.1:2; }
    }
}""" % line)
    r = cli("-t", "-p", tmp_path, "-c", conf)
    assert r.returncode != 0
    assert message in r.output
    if "variable" not in message:
        assert "in %s:10" % conf in r.output


LOCAL = HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        %s
        add_header X-Plain plain;
        add_header X-Always always always;
        location / { proxy_pass http://127.0.0.1:{b0}; }
        location = /ok { return 200 "fine\\n"; }
        location = /moved { return 301 /elsewhere; }
        location = /gone { return 410; }
        location = /dead { proxy_pass http://127.0.0.1:{dead}; }
    }
}"""


@pytest.mark.parametrize("target, status, plain", [
    ("/ok", 200, True), ("/moved", 301, True), ("/gone", 410, False), ("/dead", 502, False),
])
def test_our_own_answers_get_server_date_and_add_header(backends, gateway, target, status, plain):
    b0, = backends(1)
    gw = gateway(LOCAL % "", [b0])

    r = gw.get(target)

    assert r.status == status
    assert len(r.header_values("Server")) == 1 and our_server(r.header("Server")) and "/" in r.header("Server")
    assert len(r.header_values("Date")) == 1 and r.header("Date").endswith(" GMT")
    assert r.header_values("X-Plain") == (["plain"] if plain else [])
    assert r.header_values("X-Always") == ["always"]


def test_server_tokens_off_on_our_own_answers(backends, gateway):
    b0, = backends(1)
    gw = gateway(LOCAL % "server_tokens off;", [b0])

    assert gw.get("/gone").header("Server") == PROG
    assert gw.get("/ok").body == b"fine\n"


def test_nested_locations_inherit_from_the_enclosing_one(backends, gateway):
    b0, = backends(1)
    gw = gateway(HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        proxy_set_header X-Level server;
        location /outer/ {
            proxy_pass http://127.0.0.1:{b0}/;
            proxy_set_header X-Level outer;
            add_header X-Add outer;
            location /outer/inner/ {
                proxy_pass http://127.0.0.1:{b0}/;
            }
            location /outer/own/ {
                proxy_pass http://127.0.0.1:{b0}/;
                proxy_set_header X-Level own;
            }
        }
    }
}""", [b0])

    def level(target):
        _, got, r = sent(gw, target)
        return [v for n, v in got if n == "X-Level"], r.header_values("X-Add")

    assert level("/outer/headers") == (["outer"], ["outer"])
    assert level("/outer/inner/headers") == (["outer"], ["outer"])
    assert level("/outer/own/headers") == (["own"], ["outer"])


@pytest.mark.gateway_only("nginx writes a decoded $uri into a header as is, CR LF included")
def test_a_decoded_value_cannot_split_a_header(backends, gateway):
    b0, = backends(1)
    gw = gateway(HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        add_header X-Uri-Back $uri always;
        location /x/ {
            proxy_pass http://127.0.0.1:{b0}/headers?;
            proxy_set_header X-Uri $uri;
        }
    }
}""", [b0])

    with gw.conn() as c:
        r = c.request("GET", "/x/a%0D%0AX-Injected:%20yes")
    got = json.loads(r.body)["headers"]

    assert [n for n, _ in got if n.lower() == "x-injected"] == []
    assert [v for n, v in got if n == "X-Uri"] == ["/x/a  X-Injected: yes"]
    assert r.header("X-Injected") is None and r.header("X-Uri-Back") == "/x/a  X-Injected: yes"


# ---- proxy_redirect: the backend's Location ----

REDIRECT = HEAD + """
http {
    upstream app { server 127.0.0.1:{b0}; }
    server {
        listen 127.0.0.1:{port};
        server_name main.example;
        location / { proxy_pass http://127.0.0.1:{b0}; }
        location /one/ { proxy_pass http://127.0.0.1:{b0}/two/; }
        location /up/ { proxy_pass http://app; }
        location /off/ { proxy_pass http://127.0.0.1:{b0}; proxy_redirect off; }
        location /exp/ {
            proxy_pass http://127.0.0.1:{b0};
            proxy_redirect http://127.0.0.1:{b0}/a/ http://$host:9/b/;
            proxy_redirect http://x.example/ /y/;
        }
        location /both/ {
            proxy_pass http://127.0.0.1:{b0};
            proxy_redirect http://x.example/ /y/;
            proxy_redirect default;
        }
    }
}"""


@pytest.mark.parametrize("path, location, expected", [
    ("/", "{B}/x", "http://main.example:{port}/x"),          # default: proxy_pass's URL/ -> "/", made absolute
    ("/", "/rel", "/rel"),                                    # relative from the backend: left alone
    ("/", "{B}", "{B}"),                                      # "URL/" is the prefix
    ("/", "HTTP://127.0.0.1:{b0}/x", "HTTP://127.0.0.1:{b0}/x"),  # compared as written
    ("/one/r", "{B}/two/x", "http://main.example:{port}/one/x"),  # with a URI part: it becomes the location's name
    ("/one/r", "{B}/twox", "{B}/twox"),
    ("/up/r", "http://app/x", "http://main.example:{port}/x"),
    ("/up/r", "http://app:80/x", "http://app:80/x"),
    ("/off/r", "{B}/x", "{B}/x"),
    ("/exp/r", "{B}/a/q", "http://main.example:9/b/q"),      # variables in the replacement
    ("/exp/r", "http://x.example/z", "http://main.example:{port}/y/z"),
    ("/exp/r", "{B}/x", "{B}/x"),                            # rules of its own: no default
    ("/both/r", "{B}/x", "http://main.example:{port}/x"),
    ("/both/r", "http://x.example/z", "http://main.example:{port}/y/z"),
])
def test_proxy_redirect(backends, gateway, path, location, expected):
    b0, = backends(1)
    gw = gateway(REDIRECT, [b0])
    fill = {"B": "http://127.0.0.1:%d" % b0.port, "b0": b0.port, "port": gw.port}
    b0.respond_as = respond(("Location", location.format(**fill)), status=302)

    with gw.conn() as c:
        r = c.request("GET", path, host="Main.Example:8080")

    assert r.status == 302
    assert r.header_values("Location") == [expected.format(**fill)]


# ---- expires ----

EXPIRES = HEAD + """
http {
    server {
        listen 127.0.0.1:{port};
        expires 1h;
        location / { proxy_pass http://127.0.0.1:{b0}; }
        location /off/ { proxy_pass http://127.0.0.1:{b0}; expires off; }
        location /epoch/ { proxy_pass http://127.0.0.1:{b0}; expires epoch; }
        location /max/ { proxy_pass http://127.0.0.1:{b0}; expires max; }
        location /neg/ { proxy_pass http://127.0.0.1:{b0}; expires -1; }
        location /zero/ { proxy_pass http://127.0.0.1:{b0}; expires 0; }
        location = /answer { return 200 "ok\\n"; }
    }
}"""


def seconds_from_now(http_date):
    import email.utils
    import time
    return email.utils.parsedate_to_datetime(http_date).timestamp() - time.time()


@pytest.mark.parametrize("path, status, expires, cache_control", [
    ("/x", 200, 3600, ["max-age=3600"]),
    ("/x", 404, None, ["backend"]),                 # not a status expires applies to: the backend's stay
    ("/off/x", 200, None, ["backend"]),
    ("/epoch/x", 200, "Thu, 01 Jan 1970 00:00:01 GMT", ["no-cache"]),
    ("/max/x", 200, "Thu, 31 Dec 2037 23:55:55 GMT", ["max-age=315360000"]),
    ("/neg/x", 200, -1, ["no-cache"]),
    ("/zero/x", 200, 0, ["max-age=0"]),
    ("/answer", 200, 3600, ["max-age=3600"]),      # our own answers too
], ids=["1h", "404", "off", "epoch", "max", "negative", "zero", "answer"])
def test_expires(backends, gateway, path, status, expires, cache_control):
    b0, = backends(1)
    gw = gateway(EXPIRES, [b0])
    b0.respond_as = respond(("Expires", "backend"), ("Cache-Control", "backend"), status=status)

    r = gw.get(path)

    assert r.status == status
    assert r.header_values("Cache-Control") == cache_control
    got = r.header_values("Expires")
    if expires is None:
        assert got == ["backend"]
    elif isinstance(expires, str):
        assert got == [expires]
    else:
        assert len(got) == 1 and abs(seconds_from_now(got[0]) - expires) < 5
