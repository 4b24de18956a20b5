"""TLS termination: `listen ... ssl`, certificates chosen by SNI, protocols,
ALPN, the $ssl_* variables, plain HTTP on a TLS port, bad certificates at
`-t`, a stalled handshake, large bodies and keep-alive over TLS. Clients:
curl, `openssl s_client` and Python's ssl module. Certificates are made at
test time with the openssl CLI."""

import hashlib
import http.client
import re
import socket
import ssl
import subprocess
import time

import pytest

from backend import deterministic_sha256
from conftest import NGINX, PROG
from rawhttp import Conn

# One server per name, each with its own self-signed certificate.
TWO_SERVERS = """daemon off;
http {
    ssl_protocols {protocols};
    {http_extra}
    server {
        listen 127.0.0.1:{port} ssl;
        server_name a.test;
        ssl_certificate {certs}/a.crt;
        ssl_certificate_key {certs}/a.key;
        {srv_extra}
        location / { proxy_pass http://127.0.0.1:{b0}; }
        location = /vars { return 200 "$scheme|$https|$ssl_protocol|$ssl_cipher|$ssl_server_name"; }
    }
    server {
        listen 127.0.0.1:{port} ssl;
        server_name b.test;
        ssl_certificate {certs}/b.crt;
        ssl_certificate_key {certs}/b.key;
        location / { proxy_pass http://127.0.0.1:{b0}; }
        location = /vars { return 200 "$scheme|$https|$ssl_protocol|$ssl_cipher|$ssl_server_name"; }
    }
}
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    for name in ("a", "b"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-keyout", str(d / (name + ".key")), "-out", str(d / (name + ".crt")),
                        "-subj", "/CN=%s.test" % name, "-addext", "subjectAltName=DNS:%s.test" % name],
                       check=True, capture_output=True)
    # A chain: a CA and a leaf it signed, the PEM holding leaf then CA.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"), "-subj", "/CN=Test CA"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "leaf.key"),
                    "-out", str(d / "leaf.csr"), "-subj", "/CN=chain.test"], check=True, capture_output=True)
    (d / "ext").write_text("subjectAltName=DNS:chain.test\n")
    subprocess.run(["openssl", "x509", "-req", "-in", str(d / "leaf.csr"), "-CA", str(d / "ca.crt"),
                    "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(d / "ext"),
                    "-out", str(d / "leaf.crt")], check=True, capture_output=True)
    (d / "chain.crt").write_text((d / "leaf.crt").read_text() + (d / "ca.crt").read_text())
    return d


def start(gateway, backends, certs, http_extra="", srv_extra="", protocols="TLSv1.2 TLSv1.3", **kw):
    """The two servers; ssl_protocols is written out because nginx 1.22's default lacks TLSv1.3."""
    b = backends(1)
    return gateway(TWO_SERVERS, b, certs=certs, http_extra=http_extra, srv_extra=srv_extra, protocols=protocols,
                   **kw)


def client_ctx(version=None, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_conn(port, name="a.test", version=None, alpn=None, timeout=5):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return client_ctx(version, alpn).wrap_socket(raw, server_hostname=name)


def https(port, name="a.test", version=None, timeout=10):
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=client_ctx(version))


def der(path):
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def get(sock, target, host="a.test"):
    """One request on a TLS socket; returns (status line, headers text, body)."""
    sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (target, host)).encode())
    data = b""
    while True:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), head.decode(), body


# ---- clients and protocols ----

@pytest.mark.parametrize("version,name", [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_python_client(gateway, backends, certs, version, name):
    gw = start(gateway, backends, certs)
    with tls_conn(gw.port, version=version) as s:
        assert s.version() == name
        status, _, body = get(s, "/")
        assert status == "HTTP/1.1 200 OK"
        assert body == b"backend b0\n"


@pytest.mark.parametrize("flag,name", [("--tlsv1.2 --tls-max 1.2", "TLSv1.2"), ("--tlsv1.3", "TLSv1.3")])
def test_curl(gateway, backends, certs, flag, name):
    gw = start(gateway, backends, certs)
    res = subprocess.run(["curl", "-sS", "-v", "-k", *flag.split(), "--resolve", "a.test:%d:127.0.0.1" % gw.port,
                          "https://a.test:%d/" % gw.port], capture_output=True, timeout=20)
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"backend b0\n"
    assert ("SSL connection using %s" % name).encode() in res.stderr
    assert b"ALPN: server accepted http/1.1" in res.stderr or b"ALPN, server accepted to use http/1.1" in res.stderr


@pytest.mark.parametrize("flag,name", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_openssl_s_client(gateway, backends, certs, flag, name):
    gw = start(gateway, backends, certs)
    res = subprocess.run(["openssl", "s_client", flag, "-connect", "127.0.0.1:%d" % gw.port, "-servername", "b.test",
                          "-alpn", "http/1.1", "-ign_eof"],
                         input=b"GET / HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n",
                         capture_output=True, timeout=20)
    out = res.stdout.decode("utf-8", "replace")
    assert "HTTP/1.1 200 OK" in out
    assert "backend b0" in out
    assert re.search(r"Protocol\s*: " + re.escape(name), out)
    assert "CN = b.test" in out or "CN=b.test" in out
    assert "ALPN protocol: http/1.1" in out


def test_protocols_restricted(gateway, backends, certs):
    gw = start(gateway, backends, certs, protocols="TLSv1.3")
    with tls_conn(gw.port, version=ssl.TLSVersion.TLSv1_3) as s:
        assert s.version() == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        tls_conn(gw.port, version=ssl.TLSVersion.TLSv1_2).close()


def test_ciphers_and_server_preference(gateway, backends, certs):
    gw = start(gateway, backends, certs,
               http_extra="ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305; "
                          "ssl_prefer_server_ciphers on;")
    with tls_conn(gw.port, version=ssl.TLSVersion.TLSv1_2) as s:
        assert s.cipher()[0] == "ECDHE-RSA-AES128-GCM-SHA256"
        status, _, body = get(s, "/vars")
        assert body.decode().split("|")[3] == "ECDHE-RSA-AES128-GCM-SHA256"
    # The list leaves TLS 1.3 alone, as OpenSSL's does.
    with tls_conn(gw.port, version=ssl.TLSVersion.TLSv1_3) as s:
        assert s.version() == "TLSv1.3"


# ---- SNI, ALPN, variables ----

@pytest.mark.parametrize("name,cert", [("a.test", "a"), ("b.test", "b"), ("unknown.test", "a")])
def test_sni_picks_the_certificate(gateway, backends, certs, name, cert):
    gw = start(gateway, backends, certs)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with tls_conn(gw.port, name=name, version=version) as s:
            assert s.getpeercert(binary_form=True) == der(certs / (cert + ".crt"))


def test_sni_verified_by_the_client(gateway, backends, certs):
    """A verifying client that trusts only b's certificate accepts the answer for b.test."""
    gw = start(gateway, backends, certs)
    ctx = ssl.create_default_context(cafile=str(certs / "b.crt"))
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", gw.port), timeout=5), server_hostname="b.test") as s:
        assert s.getpeercert()["subject"] == ((("commonName", "b.test"),),)


def test_certificate_chain(gateway, backends, certs):
    b = backends(1)
    gw = gateway("""daemon off;
        http { ssl_protocols TLSv1.2 TLSv1.3;
               server { listen 127.0.0.1:{port} ssl; ssl_certificate {certs}/chain.crt;
                        ssl_certificate_key {certs}/leaf.key; location / { proxy_pass http://127.0.0.1:{b0}; } } }
    """, b, certs=certs)
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))   # trusts the CA only
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", gw.port), timeout=5), server_hostname="chain.test") as s:
        status, _, body = get(s, "/", host="chain.test")
        assert status == "HTTP/1.1 200 OK"


@pytest.mark.parametrize("offer,chosen", [(["h2", "http/1.1"], "http/1.1"), (["http/1.1"], "http/1.1")])
def test_alpn(gateway, backends, certs, offer, chosen):
    gw = start(gateway, backends, certs)
    with tls_conn(gw.port, alpn=offer) as s:
        assert s.selected_alpn_protocol() == chosen
        assert get(s, "/")[0] == "HTTP/1.1 200 OK"


@pytest.mark.parametrize("version,proto,cipher", [
    (ssl.TLSVersion.TLSv1_2, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384"),
    (ssl.TLSVersion.TLSv1_3, "TLSv1.3", "TLS_AES_256_GCM_SHA384")])
def test_variables(gateway, backends, certs, version, proto, cipher):
    gw = start(gateway, backends, certs)
    with tls_conn(gw.port, name="b.test", version=version) as s:
        negotiated = s.cipher()[0]
        status, _, body = get(s, "/vars", host="b.test")
    assert status == "HTTP/1.1 200 OK"
    assert body.decode() == "https|on|%s|%s|b.test" % (proto, negotiated)


def test_scheme_redirect_from_port_80(gateway, backends, certs):
    """The usual pair: plain HTTP redirected to the TLS server on another port."""
    b = backends(1)
    gw = gateway("""daemon off;
        http {
            server { listen 127.0.0.1:{plain}; server_name a.test;
                     location / { return 301 https://$host:{port}$request_uri; } }
            server { listen 127.0.0.1:{port} ssl; server_name a.test; ssl_protocols TLSv1.2 TLSv1.3;
                     ssl_certificate {certs}/a.crt; ssl_certificate_key {certs}/a.key;
                     location / { proxy_pass http://127.0.0.1:{b0}; } }
        }
    """, b, certs=certs, plain=_free_port())
    plain = int(re.search(r"listen 127.0.0.1:(\d+);", gw.conf.read_text()).group(1))
    with Conn(plain) as c:
        r = c.request("GET", "/x?y=1", host="a.test")
    assert r.status == 301
    assert r.header("Location") == "https://a.test:%d/x?y=1" % gw.port
    # ... and following it lands on the TLS server.
    res = subprocess.run(["curl", "-sS", "-k", "-L", "--resolve", "a.test:%d:127.0.0.1" % plain,
                          "--resolve", "a.test:%d:127.0.0.1" % gw.port, "http://a.test:%d/" % plain],
                         capture_output=True, timeout=20)
    assert res.stdout == b"backend b0\n", res.stderr


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- errors ----

def test_plain_http_on_tls_port(gateway, backends, certs):
    gw = start(gateway, backends, certs)
    with Conn(gw.port) as c:
        r = c.request("GET", "/", host="a.test")
        assert r.status == 400
        assert b"The plain HTTP request was sent to HTTPS port" in r.body
        assert c.closed_by_peer()
    # The port still speaks TLS to the next client.
    with tls_conn(gw.port) as s:
        assert get(s, "/")[0] == "HTTP/1.1 200 OK"


def _config_error(cli, tmp_path, certs, cert, key):
    conf = tmp_path / "gateway.conf"
    conf.write_text("events {}\nhttp {\n    server {\n        listen 127.0.0.1:1 ssl;\n"
                    "        ssl_certificate %s;\n        ssl_certificate_key %s;\n    }\n}\n" % (cert, key))
    (tmp_path / "logs").mkdir(exist_ok=True)
    res = cli("-t", "-p", str(tmp_path), "-c", str(conf))
    assert res.returncode != 0
    assert "[emerg]" in res.output
    return res.output, str(conf)


def test_wrong_key_rejected_by_t(cli, tmp_path, certs):
    out, conf = _config_error(cli, tmp_path, certs, certs / "a.crt", certs / "b.key")
    assert str(certs / "b.key") in out
    if not NGINX:
        assert "key values mismatch" in out
        assert "in %s:6" % conf in out


def test_missing_certificate_rejected_by_t(cli, tmp_path, certs):
    out, conf = _config_error(cli, tmp_path, certs, certs / "nope.crt", certs / "a.key")
    assert 'cannot load certificate "%s"' % (certs / "nope.crt") in out
    if not NGINX:
        assert "in %s:5" % conf in out


def test_not_a_certificate_rejected_by_t(cli, tmp_path, certs):
    out, conf = _config_error(cli, tmp_path, certs, certs / "ext", certs / "a.key")
    assert 'cannot load certificate "%s"' % (certs / "ext") in out


@pytest.mark.gateway_only("nginx reports it without FILE:LINE")
def test_missing_certificate_for_ssl_listen(cli, tmp_path):
    conf = tmp_path / "gateway.conf"
    conf.write_text("http {\n    server {\n        listen 127.0.0.1:1 ssl;\n    }\n}\n")
    (tmp_path / "logs").mkdir(exist_ok=True)
    res = cli("-t", "-p", str(tmp_path), "-c", str(conf))
    assert res.returncode != 0
    assert 'no "ssl_certificate" is defined for the "listen ... ssl" directive in %s:3' % conf in res.output


def test_stalled_handshake_times_out_alone(gateway, backends, certs):
    gw = start(gateway, backends, certs, http_extra="client_header_timeout 1s;")
    stalled = socket.create_connection(("127.0.0.1", gw.port), timeout=30)
    stalled.sendall(b"\x16\x03\x01\x02\x00\x01")   # the start of a ClientHello, then nothing
    silent = socket.create_connection(("127.0.0.1", gw.port), timeout=30)   # sends nothing at all
    try:
        # Others are served meanwhile.
        for _ in range(3):
            with tls_conn(gw.port) as s:
                assert get(s, "/")[0] == "HTTP/1.1 200 OK"
        # Closed by the gateway after client_header_timeout (1 s), not the default 60 s: the
        # 30 s bound leaves a loaded machine room without timing anything. A reset (data
        # the gateway never read) is a close by the gateway too.
        for s in (stalled, silent):
            s.settimeout(30)
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
    finally:
        stalled.close()
        silent.close()


def test_garbage_handshake_does_not_hurt(gateway, backends, certs):
    gw = start(gateway, backends, certs)
    for junk in (b"\x16\x03\x01\x00\x05hello", b"\x16" + b"\xff" * 300, b"\x16\x03\x03\x40\x00" + b"A" * 20000):
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        try:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass
        finally:
            s.close()
    with tls_conn(gw.port) as s:
        assert get(s, "/")[0] == "HTTP/1.1 200 OK"


# ---- bodies and connections ----

def test_large_bodies_both_ways(gateway, backends, certs):
    gw = start(gateway, backends, certs, http_extra="client_max_body_size 0;")
    up = bytes(range(256)) * (8 * 4096 + 17)     # 8 MiB + a bit
    conn = https(gw.port)
    conn.request("POST", "/sha256", body=up, headers={"Host": "a.test"})
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200
    assert r.getheader("X-Body-Sha256") == hashlib.sha256(up).hexdigest()
    assert r.getheader("X-Body-Len") == str(len(up))
    n = 20 * 1024 * 1024 + 3
    for framing in ("length", "chunked"):
        conn.request("GET", "/bytes?n=%d&framing=%s" % (n, framing), headers={"Host": "a.test"})
        r = conn.getresponse()
        h = hashlib.sha256()
        got = 0
        while True:
            piece = r.read(1 << 16)
            if not piece:
                break
            h.update(piece)
            got += len(piece)
        assert (r.status, got) == (200, n)
        assert h.hexdigest() == deterministic_sha256(n)
    conn.close()
    assert body


def test_keepalive_over_tls(gateway, backends, certs):
    gw = start(gateway, backends, certs)
    conn = https(gw.port)
    conn.connect()
    first = conn.sock
    for i in range(20):
        conn.request("POST", "/echo", body=b"x" * i * 1000, headers={"Host": "a.test"})
        r = conn.getresponse()
        assert r.status == 200
        assert r.read() == b"x" * i * 1000
        assert conn.sock is first      # the same TLS connection throughout
    conn.close()


def test_pipelined_requests_over_tls(gateway, backends, certs):
    gw = start(gateway, backends, certs)
    with tls_conn(gw.port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n" * 5 +
                  b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            data += piece
    assert data.count(b"HTTP/1.1 200 OK") == 6
    assert data.count(b"backend b0\n") == 6


def test_many_concurrent_tls_clients(gateway, backends, certs):
    gw = start(gateway, backends, certs, workers=2)
    socks = [tls_conn(gw.port, version=ssl.TLSVersion.TLSv1_3 if i % 2 else ssl.TLSVersion.TLSv1_2)
             for i in range(30)]
    try:
        for s in socks:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        for s in socks:
            data = b""
            while True:
                piece = s.recv(65536)
                if not piece:
                    break
                data += piece
            assert data.startswith(b"HTTP/1.1 200 OK")
    finally:
        for s in socks:
            s.close()


@pytest.mark.gateway_only("ssl_ktls is the gateway's directive (nginx: ssl_conf_command Options KTLS)")
def test_ktls_on_falls_back_or_installs(gateway, backends, certs):
    """With ssl_ktls on, requests work whatever the kernel can do: where it
    has no TLS module (this machine) the record layer stays in userspace and
    the startup log says so."""
    gw = start(gateway, backends, certs, http_extra="ssl_ktls on;",
               args=["-g", "error_log stderr info;"])
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with tls_conn(gw.port, version=version) as s:
            assert get(s, "/")[0] == "HTTP/1.1 200 OK"
    conn = https(gw.port)
    for _ in range(3):
        conn.request("GET", "/bytes?n=300000", headers={"Host": "a.test"})
        r = conn.getresponse()
        assert r.status == 200 and len(r.read()) == 300000
    conn.close()
    err = gw.stderr()
    assert "kTLS available" in err or "TLS record layer: userspace" in err


@pytest.mark.gateway_only("the handshake failure is logged in the gateway's words")
def test_handshake_failure_logged(gateway, backends, certs):
    gw = start(gateway, backends, certs, protocols="TLSv1.3", args=["-g", "error_log stderr info;"])
    with pytest.raises(ssl.SSLError):
        tls_conn(gw.port, version=ssl.TLSVersion.TLSv1_2).close()
    with tls_conn(gw.port) as s:
        assert get(s, "/")[0] == "HTTP/1.1 200 OK"
    deadline = time.monotonic() + 30      # a bound for a loaded machine, not a timing
    while "SSL_do_handshake() failed" not in gw.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "SSL_do_handshake() failed" in gw.stderr()
    assert "while SSL handshaking, client: 127.0.0.1" in gw.stderr()


# ---- session resumption ----

def _resumed(port, version):
    """Connect, make a request, then reconnect with the session: was it resumed?"""
    ctx = client_ctx(version)
    sessions = []
    for _ in range(2):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="a.test",
                            session=sessions[-1] if sessions else None)
        with s:
            assert get(s, "/")[0] == "HTTP/1.1 200 OK"   # reading lets a TLS 1.3 ticket arrive
            sessions.append(s.session)
            reused = s.session_reused
    return reused


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_resumption_with_tickets(gateway, backends, certs, version):
    gw = start(gateway, backends, certs)
    assert _resumed(gw.port, version)


def test_resumption_from_the_cache_without_tickets(gateway, backends, certs):
    gw = start(gateway, backends, certs, http_extra="ssl_session_tickets off; ssl_session_cache shared:SSL:1m; "
                                                    "ssl_session_timeout 5m;")
    assert _resumed(gw.port, ssl.TLSVersion.TLSv1_2)


def test_no_resumption_when_off(gateway, backends, certs):
    gw = start(gateway, backends, certs, http_extra="ssl_session_tickets off; ssl_session_cache off;")
    assert not _resumed(gw.port, ssl.TLSVersion.TLSv1_2)


# ---- TLS to upstreams (proxy_pass https://) ----

# The gateway is its own TLS upstream: {port} is plain HTTP and proxies over
# TLS to {tls}, whose servers (a.test, b.test) proxy to the backend.
UPSTREAM_TLS = """daemon off;
http {
    ssl_protocols TLSv1.2 TLSv1.3;
    client_max_body_size 0;
    upstream tls_pool { server 127.0.0.1:{tls}; keepalive 4; }
    server {
        listen 127.0.0.1:{port};
        %s
        location / { proxy_pass https://127.0.0.1:{tls}; }
        location /pooled/ { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass https://tls_pool/; }
    }
    server {
        listen 127.0.0.1:{tls} ssl;
        server_name a.test;
        ssl_certificate {certs}/a.crt;
        ssl_certificate_key {certs}/a.key;
        location / { proxy_pass http://127.0.0.1:{b0}; }
        location = /vars { return 200 "$scheme|$ssl_protocol|$ssl_server_name"; }
    }
    server {
        listen 127.0.0.1:{tls} ssl;
        server_name b.test;
        ssl_certificate {certs}/b.crt;
        ssl_certificate_key {certs}/b.key;
        location = /vars { return 200 "b|$scheme|$ssl_protocol|$ssl_server_name"; }
    }
}
"""


def upstream_gw(gateway, backends, certs, directives=""):
    return gateway(UPSTREAM_TLS % directives, backends(1), certs=certs, tls=_free_port())


def plain_get(gw, target):
    with Conn(gw.port) as c:
        return c.request("GET", target, host="front.test")


def test_upstream_tls_without_verification(gateway, backends, certs):
    gw = upstream_gw(gateway, backends, certs)
    r = plain_get(gw, "/")
    assert (r.status, r.body) == (200, b"backend b0\n")
    r = plain_get(gw, "/vars")
    assert r.status == 200
    scheme, proto, sni = r.body.decode().split("|")
    assert (scheme, sni) == ("https", "")            # no SNI unless proxy_ssl_server_name on
    assert proto in ("TLSv1.2", "TLSv1.3")


def test_upstream_tls_verified(gateway, backends, certs):
    gw = upstream_gw(gateway, backends, certs, "proxy_ssl_verify on; proxy_ssl_trusted_certificate {certs}/a.crt; "
                                               "proxy_ssl_name a.test;")
    assert plain_get(gw, "/").status == 200


@pytest.mark.parametrize("directives", [
    "proxy_ssl_verify on; proxy_ssl_trusted_certificate {certs}/b.crt; proxy_ssl_name a.test;",   # untrusted
    "proxy_ssl_verify on; proxy_ssl_trusted_certificate {certs}/a.crt; proxy_ssl_name c.test;",   # wrong name
])
def test_upstream_bad_certificate_refused(gateway, backends, certs, directives):
    gw = upstream_gw(gateway, backends, certs, directives)
    assert plain_get(gw, "/").status == 502
    # ... and nothing was left behind: the next request fails the same way, promptly.
    assert plain_get(gw, "/").status == 502


def test_upstream_sni(gateway, backends, certs):
    gw = upstream_gw(gateway, backends, certs, "proxy_ssl_server_name on; proxy_ssl_name b.test; "
                                               "proxy_ssl_verify on; proxy_ssl_trusted_certificate {certs}/b.crt;")
    r = plain_get(gw, "/vars")
    # b's certificate was served (it verified against b.crt alone) and the name
    # reached the TLS server; the server block is still chosen by Host.
    assert r.status == 200
    assert r.body.decode().startswith("https|TLSv1.")
    assert r.body.decode().endswith("|b.test")


def test_upstream_tls_keepalive_and_bodies(gateway, backends, certs):
    gw = upstream_gw(gateway, backends, certs)
    up = bytes(range(256)) * 4096 * 3      # 3 MiB
    with Conn(gw.port, timeout=30) as c:
        for i in range(5):
            r = c.request("POST", "/pooled/sha256", body=up, host="front.test")
            assert r.status == 200
            assert r.header("X-Body-Sha256") == hashlib.sha256(up).hexdigest()
            r = c.request("GET", "/pooled/bytes?n=%d" % (2_000_000 + i), host="front.test")
            assert r.status == 200 and len(r.body) == 2_000_000 + i
            assert hashlib.sha256(r.body).hexdigest() == deterministic_sha256(2_000_000 + i)


@pytest.mark.gateway_only("the gateway's own counters (prometheus)")
def test_handshakes_counted_in_metrics(gateway, backends, certs):
    b = backends(1)
    gw = gateway("""daemon off;
        http {
            server { listen 127.0.0.1:{plain}; location /metrics { prometheus; } }
            server { listen 127.0.0.1:{port} ssl; ssl_protocols TLSv1.2 TLSv1.3;
                     ssl_certificate {certs}/a.crt; ssl_certificate_key {certs}/a.key;
                     location / { proxy_pass http://127.0.0.1:{b0}; } }
        }
    """, b, certs=certs, plain=_free_port(), workers=1)
    plain = int(re.search(r"listen 127.0.0.1:(\d+);", gw.conf.read_text()).group(1))
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with tls_conn(gw.port, version=version) as s:
            assert get(s, "/")[0] == "HTTP/1.1 200 OK"
    with Conn(gw.port) as c:                       # plain HTTP on the TLS port: a failure
        assert c.request("GET", "/", host="a.test").status == 400
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)   # a broken ClientHello: a failure
    s.sendall(b"\x16\x03\x01\x00\x05hello")
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    s.close()

    def counters():
        with Conn(plain) as c:
            text = c.request("GET", "/metrics").body.decode()
        found = dict(re.findall(r'^(gateway_tls_handshake\S*) (\d+)$', text, re.M))
        return found

    deadline = time.monotonic() + 30      # a bound for a loaded machine, not a timing
    while True:
        m = counters()
        if m.get("gateway_tls_handshake_failures_total") == "2" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert m['gateway_tls_handshakes_total{version="TLSv1.2",mode="userspace"}'] == "2"
    assert m['gateway_tls_handshakes_total{version="TLSv1.3",mode="userspace"}'] == "1"
    assert m["gateway_tls_handshake_failures_total"] == "2"


def test_upstream_handshake_failure_goes_to_the_next_peer(gateway, backends, certs):
    """One peer of the upstream speaks plain HTTP (the handshake fails: it is
    the plain front server itself, which answers a ClientHello with a 400), the
    other TLS: every request, body included, ends on the TLS one."""
    b = backends(1)
    gw = gateway("""daemon off;
        http {
            ssl_protocols TLSv1.2 TLSv1.3;
            upstream mixed { server 127.0.0.1:{port}; server 127.0.0.1:{tls}; }
            server { listen 127.0.0.1:{port}; location / { proxy_pass https://mixed; } }
            server { listen 127.0.0.1:{tls} ssl; ssl_certificate {certs}/a.crt; ssl_certificate_key {certs}/a.key;
                     location / { proxy_pass http://127.0.0.1:{b0}; } }
        }
    """, b, certs=certs, tls=_free_port(), workers=1)
    body = b"payload-" * 5000
    for _ in range(4):
        with Conn(gw.port) as c:
            r = c.request("POST", "/echo", body=body, host="front.test")
        assert r.status == 200
        assert r.body == body


@pytest.mark.parametrize("proto", ["TLSv1.2", "TLSv1.3"])
def test_upstream_session_reuse(gateway, backends, certs, proto):
    """Without a keepalive pool every request opens a new TLS connection
    upstream; from the second on, the session of an earlier one is resumed."""
    b = backends(1)
    gw = gateway("""daemon off;
        http {
            server { listen 127.0.0.1:{port}; proxy_ssl_protocols %s;
                     location / { proxy_pass https://127.0.0.1:{tls}; } }
            server { listen 127.0.0.1:{tls} ssl; ssl_protocols TLSv1.2 TLSv1.3;
                     ssl_certificate {certs}/a.crt; ssl_certificate_key {certs}/a.key;
                     location = /reused { return 200 "$ssl_protocol $ssl_session_reused"; } }
        }
    """ % proto, b, certs=certs, tls=_free_port(), workers=1)
    seen = [plain_get(gw, "/reused").body.decode() for _ in range(4)]
    assert seen[0] == proto + " ."
    assert seen[1:] == [proto + " r"] * 3
