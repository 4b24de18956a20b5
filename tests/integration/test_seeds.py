"""The four nginx guides in ../shared/seeds, as their users wrote them.

tests/integration/seeds/*.conf hold each guide's configuration as written,
with only addresses turned into placeholders and certificate paths pointed at
test certificates (each file's header says what was changed). UNSUPPORTED
lists, per guide, the directives the gateway refuses, with why. The tests:

- `-t` on the configuration as written names exactly those directives, one
  after the other, each at its FILE:LINE (nothing is ignored silently);
- without them, the configuration passes `-t` (on nginx too);
- running it in front of test backends, the guide's promises hold: routing,
  redirects to https, TLS, forwarded headers, security headers (with nginx's
  add_header inheritance rule), rate limits, error pages, stub_status,
  access logs. The same checks run against nginx with GATEWAY_TEST_AGAINST=nginx.
"""

import http.client
import re
import socket
import ssl
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from conftest import NGINX, PROG, free_port

SEEDS = Path(__file__).parent / "seeds"

WHY = {
    "ssl_dhparam": "DHE key exchange: the gateway offers ECDHE only",
    "proxy_cache": "there is no response cache",
    "alias": "the gateway serves no static files (only error pages)",
}

UNSUPPORTED = {
    "000_paperclip": ["ssl_dhparam"],
    "001_pipelit": [],
    "002_multi_backend": ["proxy_cache_path", "ssl_dhparam", "alias", "proxy_cache", "proxy_cache_valid",
                          "proxy_cache_valid", "proxy_cache_use_stale", "proxy_cache_lock"],
    "003_self_hosting": ["proxy_cache_path", "ssl_dhparam", "proxy_cache", "proxy_cache_valid"],
}


def why(name):
    return next(v for k, v in WHY.items() if name.startswith(k))


def strip_directive(text, line, name):
    """Remove the first `name ...;` statement at or after `line` (1-based)."""
    start = sum(len(x) + 1 for x in text.split("\n")[:line - 1])
    m = re.compile(r"(?<![\w$])" + re.escape(name) + r"\b(?:\{\w+\}|[^;{}])*;").search(text, start)
    assert m, "no %s statement from line %d" % (name, line)
    return text[:m.start()] + text[m.end():]


def reduced(seed):
    """The configuration without what UNSUPPORTED lists (for both servers)."""
    text = (SEEDS / (seed + ".conf")).read_text()
    for name in UNSUPPORTED[seed]:
        text = strip_directive(text, 1, name)
    return text


@pytest.fixture(scope="module")
def pem(tmp_path_factory):
    d = tmp_path_factory.mktemp("seedcerts")
    names = ["yourdomain.com", "www.yourdomain.com", "paperclip.yourdomain.com", "your-domain.com",
             "app.example.com"]
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-subj", "/CN=yourdomain.com",
                    "-addext", "subjectAltName=" + ",".join("DNS:" + n for n in names)],
                   check=True, capture_output=True)
    return {"live/fullchain.pem": (d / "cert.pem").read_text(), "live/privkey.pem": (d / "key.pem").read_text()}


def files_for(pem):
    f = dict(pem)
    f["options-ssl-nginx.conf"] = (SEEDS / "options-ssl-nginx.conf").read_text()
    f["snippets/security-headers.conf"] = (SEEDS / "snippets" / "security-headers.conf").read_text()
    f["error-pages/custom_502.html"] = "<h1>We'll be right back</h1>\n"
    f["ssl-dhparams.pem"] = ""
    return f


def write(tmp_path, seed, text, pem, nb=3):
    """The configuration with placeholders filled, and its files, in tmp_path."""
    mapping = {"port": free_port(), "tls_port": free_port(), "prefix": str(tmp_path)}
    mapping.update({"b%d" % i: free_port() for i in range(nb)})
    (tmp_path / "logs").mkdir(exist_ok=True)
    for name, content in files_for(pem).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    for k, v in mapping.items():
        text = text.replace("{%s}" % k, str(v))
    conf = tmp_path / (seed + ".conf")
    conf.write_text(text)
    return conf


@pytest.mark.gateway_only("walks the gateway's own -t errors")
@pytest.mark.parametrize("seed", sorted(UNSUPPORTED))
def test_as_written_each_unsupported_directive_is_named_at_its_line(cli, tmp_path, pem, seed):
    conf = write(tmp_path, seed, (SEEDS / (seed + ".conf")).read_text(), pem)
    named = []
    for _ in range(len(UNSUPPORTED[seed]) + 1):
        r = cli("-t", "-p", str(tmp_path) + "/", "-c", conf)
        if r.returncode == 0:
            break
        m = re.search(r'\[emerg\] unknown directive "([^"]+)" in (\S+):(\d+)', r.stderr)
        assert m, r.stderr
        name, where, line = m.group(1), m.group(2), int(m.group(3))
        assert where == str(conf)
        assert name in conf.read_text().split("\n")[line - 1]
        assert why(name)
        named.append(name)
        conf.write_text(strip_directive(conf.read_text(), line, name))
    assert named == UNSUPPORTED[seed]
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("seed", sorted(UNSUPPORTED))
def test_without_them_it_passes_t(cli, tmp_path, pem, seed):
    conf = write(tmp_path, seed, reduced(seed), pem)
    r = cli("-t", "-p", str(tmp_path) + "/", "-c", conf)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr


# ---- running them ----

def tls_get(port, name, target, headers=None, method="GET"):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    c.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=name)
    c.request(method, target, headers=dict({"Host": name}, **(headers or {})))
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def plain_get(port, name, target, host="127.0.0.1"):
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request("GET", target, headers={"Host": name})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def headers_seen(body):
    import json
    return {k.lower(): v for k, v in json.loads(body)["headers"]}


@pytest.fixture
def run_seed(gateway, backends, pem):
    def run(seed, nb=1):
        bs = backends(nb)
        gw = gateway(reduced(seed), bs, files=files_for(pem), tls_port=free_port(), nginx_proxy_defaults=False)
        gw.tls_port = int(re.search(r"listen (\d+) ssl", gw.conf.read_text()).group(1))
        return gw, bs
    return run


def test_000_paperclip(run_seed):
    gw, (b0,) = run_seed("000_paperclip")
    st, h, body = plain_get(gw.port, "paperclip.yourdomain.com", "/headers")
    assert st == 200
    seen = headers_seen(body)
    assert seen["host"] == "paperclip.yourdomain.com"
    assert seen["x-real-ip"] == "127.0.0.1"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"

    st, h, _ = plain_get(gw.port, "redirect.paperclip.yourdomain.com", "/x?y=1")
    assert st == 301
    assert h["location"] == "https://redirect.paperclip.yourdomain.com/x?y=1"

    st, h, body = tls_get(gw.tls_port, "paperclip.yourdomain.com", "/headers")
    assert st == 200
    assert headers_seen(body)["x-forwarded-proto"] == "https"
    assert h["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert h["x-content-type-options"] == "nosniff"
    assert h["x-frame-options"] == "SAMEORIGIN"
    assert h["referrer-policy"] == "strict-origin-when-cross-origin"

    # a location with its own add_header does not inherit the server's (nginx's rule)
    st, h, _ = tls_get(gw.tls_port, "paperclip.yourdomain.com", "/app.js")
    assert st == 200
    assert h["cache-control"] == "public, no-transform"
    assert "strict-transport-security" not in h

    # /api/auth: 30r/m with burst=10: eleven in a row pass, then 503
    got = [tls_get(gw.tls_port, "paperclip.yourdomain.com", "/api/auth/login")[0] for _ in range(20)]
    assert got[:11] == [200] * 11
    assert 503 in got[11:]


def test_001_pipelit(run_seed):
    gw, (b0,) = run_seed("001_pipelit")
    st, h, _ = plain_get(gw.port, "your-domain.com", "/jobs?page=2")
    assert st == 301
    assert h["location"] == "https://your-domain.com/jobs?page=2"

    st, h, body = tls_get(gw.tls_port, "your-domain.com", "/headers")
    assert st == 200
    seen = headers_seen(body)
    assert seen["host"] == "your-domain.com"
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-real-ip"] == "127.0.0.1"


def test_002_multi_backend(run_seed, tmp_path):
    gw, bs = run_seed("002_multi_backend", nb=3)
    name = "yourdomain.com"
    st, h, _ = plain_get(gw.port, name, "/pricing")
    assert (st, h["location"]) == (301, "https://yourdomain.com/pricing")

    seen = set()
    for _ in range(12):
        st, h, body = tls_get(gw.tls_port, name, "/")
        assert st == 200
        seen.add(body)
        # location / sets its own add_header (X-Cache-Status, empty: not sent), so the
        # server's security headers are not inherited there - the guide's pitfall, kept
        assert "strict-transport-security" not in h
        assert "x-cache-status" not in h
        assert "server" in h and "/" not in h["server"]           # server_tokens off
    assert seen == {b"backend b0\n", b"backend b1\n", b"backend b2\n"}

    st, h, _ = tls_get(gw.tls_port, name, "/api/auth/login")
    assert st == 200
    assert h["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert h["x-frame-options"] == "SAMEORIGIN"

    # the guide's gzip: JSON over gzip_min_length 256 is compressed, with Vary; a short answer is not
    pad = "y" * 3000
    st, h, body = tls_get(gw.tls_port, name, "/headers", headers={"Accept-Encoding": "gzip", "X-Pad": pad})
    assert st == 200
    assert (h["content-encoding"], h["vary"]) == ("gzip", "Accept-Encoding")
    assert "content-length" not in h and len(body) < 1000
    assert headers_seen(zlib.decompress(body, 16 + zlib.MAX_WBITS))["x-pad"] == pad
    st, h, body = tls_get(gw.tls_port, name, "/", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in h and body.startswith(b"backend ")

    assert tls_get(gw.tls_port, name, "/.git/config")[0] == 404
    assert tls_get(gw.tls_port, name, "/db.sql")[0] == 404

    st, h, body = tls_get(gw.tls_port, name, "/nginx_status")
    assert st == 200
    assert re.match(rb"Active connections: \d+ \nserver accepts handled requests\n \d+ \d+ \d+ \n"
                    rb"Reading: \d+ Writing: \d+ Waiting: \d+ \n$", body)

    # every backend down: the custom page, with 502
    for b in bs:
        b.stop()
    st, h, body = tls_get(gw.tls_port, name, "/")
    assert st == 502
    assert body == b"<h1>We'll be right back</h1>\n"

    # the guide's log format, with the upstream named
    log = Path(gw.prefix) / "logs" / "yourdomain.com-access.log"
    deadline = time.monotonic() + 30      # a bound for a loaded machine
    while time.monotonic() < deadline and b"upstream=127.0.0.1:" not in (log.read_bytes() if log.exists() else b""):
        time.sleep(0.05)
    lines = log.read_text().splitlines()
    assert any(re.fullmatch(r'127\.0\.0\.1 - - \[[^\]]+\] "GET / HTTP/1\.1" 200 \d+ "-" "-" '
                            r'upstream=127\.0\.0\.1:\d+ upstream_response_time=\d+\.\d{3} '
                            r'request_time=\d+\.\d{3} cache=-', line) for line in lines), lines


def test_003_self_hosting(run_seed):
    gw, (b0,) = run_seed("003_self_hosting")
    name = "app.example.com"
    st, h, _ = plain_get(gw.port, name, "/x")
    assert (st, h["location"]) == (301, "https://app.example.com/x")
    st, h, _ = plain_get(gw.port, name, "/y", host="::1")
    assert (st, h["location"]) == (301, "https://app.example.com/y")

    st, h, body = tls_get(gw.tls_port, name, "/headers")
    assert st == 200
    assert headers_seen(body)["x-forwarded-proto"] == "https"
    for k, v in [("x-frame-options", "SAMEORIGIN"), ("x-content-type-options", "nosniff"),
                 ("x-xss-protection", "1; mode=block"), ("referrer-policy", "strict-origin-when-cross-origin"),
                 ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
                 ("strict-transport-security", "max-age=31536000; includeSubDomains")]:
        assert h[k] == v

    st, h, _ = tls_get(gw.tls_port, name, "/style.css")
    assert st == 200
    assert "x-frame-options" not in h      # its own add_header: the snippet is not inherited
