"""WebSockets through the proxy: with nginx's three lines in a location

    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";

an upgrade request reaches the backend, its 101 turns both connections into
a tunnel, and a real WebSocket client (python3-websockets) talks to a real
WebSocket server (tests/ws_backend.py, a subprocess) through it. Without
them no upgrade happens. What a library would hide (bytes in the same
packet as the handshake, half-close, resets, stalls) is in
test_websocket_raw.py.
"""

import asyncio
import hashlib
import json
import signal
import ssl
import time

import pytest
import websockets
import websockets.exceptions

import rawhttp
from conftest import NGINX
from wsutil import MiB, WS_CONF, WSS_CONF, connect, pattern, run
from wsutil import ws_backend, ws_cert, ws_gateway  # noqa: F401 (fixtures)


def test_echo_text_and_binary(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/echo") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01binary\xff")
            assert await ws.recv() == b"\x00\x01binary\xff"
            for i in range(50):
                await ws.send("m%d" % i)
            assert [await ws.recv() for _ in range(50)] == ["m%d" % i for i in range(50)]
    run(go())


def test_large_frames_both_ways(ws_gateway):
    gw, b = ws_gateway()
    up = pattern(8 * MiB + 3)

    async def go():
        async with connect(gw, "/big?size=%d" % (6 * MiB + 1)) as ws:
            down = await ws.recv()
            assert len(down) == 6 * MiB + 1 and down == pattern(6 * MiB + 1)
            await ws.send(up)
            back = await ws.recv()
            assert len(back) == len(up) and hashlib.sha256(back).digest() == hashlib.sha256(up).digest()
    run(go())


def test_ping_pong_both_ways(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/ping") as ws:
            assert await ws.recv() == "pong-ok"          # the server's ping was answered by the client
            waiter = await ws.ping(b"from-client")
            await asyncio.wait_for(waiter, 10)
            await ws.send("still here")
            assert await ws.recv() == "still here"
    run(go())


def test_close_from_the_client_reaches_the_server(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/echo") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            await ws.close(4002, "client done")
            assert ws.close_code == 4002
    run(go())

    s = b.wait_stats(lambda s: s["open"] == 0 and s["closes"])
    assert s["open"] == 0
    assert s["closes"] == [[4002, "client done"]]


def test_close_from_the_server_reaches_the_client(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/close?after=1&code=4001") as ws:
            await ws.send("last")
            assert await ws.recv() == "last"
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4001 and closed.value.rcvd.reason == "bye"
    run(go())


def test_server_dropping_the_connection_closes_the_client(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/drop?after=1") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            with pytest.raises(websockets.exceptions.ConnectionClosedError):
                await ws.recv()                          # no close frame: 1006
    run(go())


def test_idle_tunnel_is_closed_after_proxy_read_timeout(ws_gateway):
    gw, b = ws_gateway(read_timeout="1s")

    async def go():
        async with connect(gw, "/idle") as ws:
            with pytest.raises(websockets.exceptions.ConnectionClosedError):
                await asyncio.wait_for(ws.recv(), 30)    # nothing is sent; the proxy gives up
    run(go())
    s = b.wait_stats(lambda s: s["open"] == 0)
    assert s["open"] == 0


def test_a_tunnel_with_traffic_outlives_proxy_read_timeout(ws_gateway):
    gw, b = ws_gateway(read_timeout="2s")

    async def go():
        async with connect(gw, "/echo") as ws:
            for i in range(16):                        # 4 s of traffic, a message every 0.25 s
                await ws.send("tick %d" % i)
                assert await ws.recv() == "tick %d" % i
                await asyncio.sleep(0.25)
    run(go())


def test_many_concurrent_tunnels(ws_gateway):
    gw, b = ws_gateway()
    n = 100

    async def one(i):
        async with connect(gw, "/echo") as ws:
            for k in range(5):
                msg = "conn %d msg %d" % (i, k)
                await ws.send(msg)
                assert await ws.recv() == msg
            return i

    async def go():
        done = await asyncio.gather(*(one(i) for i in range(n)))
        assert sorted(done) == list(range(n))
    run(go())
    s = b.wait_stats(lambda s: s["open"] == 0)
    assert s["accepted"] == n and s["open"] == 0


def test_server_speaking_first(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/first?msg=welcome") as ws:
            assert await ws.recv() == "welcome"
            await ws.send("and back")
            assert await ws.recv() == "and back"
    run(go())


def test_no_upgrade_without_the_headers(gateway, ws_backend, backends):
    b = ws_backend()
    plain = """
    daemon off;
    events { worker_connections 1024; }
    http {
        server {
            listen 127.0.0.1:{port};
            location / { proxy_pass http://127.0.0.1:{b0}; }
            location /h { proxy_pass http://127.0.0.1:{b1}/headers; }
        }
    }
    """
    hb, = backends(1)
    gw = gateway(plain, [b, hb])

    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            async with connect(gw, "/echo"):
                pass
        assert e.value.status_code != 101
    run(go())
    assert b.stats()["accepted"] == 0                  # the backend never switched

    # What the backend gets: no Upgrade, and not Connection: upgrade.
    with rawhttp.Conn(gw.port) as c:
        r = c.get("/h", headers=[("Upgrade", "websocket"), ("Connection", "Upgrade")])
    assert r.status == 200
    got = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
    assert "upgrade" not in got
    assert "upgrade" not in got.get("connection", "").lower()


def test_upgrade_refused_by_the_backend_is_an_ordinary_response(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            async with connect(gw, "/reject"):
                pass
        assert e.value.status_code == 403
    run(go())


def test_tunnel_survives_a_reload(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/echo") as ws:
            await ws.send("before")
            assert await ws.recv() == "before"

            res = gw.cli("-s", "reload")
            assert res.returncode == 0, res.output
            # New connections are served (by the new configuration) ...
            deadline = time.monotonic() + 10
            while True:
                try:
                    async with connect(gw, "/echo") as ws2:
                        await ws2.send("new")
                        assert await ws2.recv() == "new"
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            # ... and the old tunnel is still open.
            for i in range(5):
                await ws.send("after %d" % i)
                assert await ws.recv() == "after %d" % i
    run(go())
    assert gw.proc.poll() is None


def test_wss_echo_and_close_from_either_side(gateway, ws_backend, ws_cert):
    b = ws_backend()
    gw = gateway(WSS_CONF, [b], files=ws_cert)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def wss(path):
        return websockets.connect("wss://127.0.0.1:%d%s" % (gw.port, path), ssl=ctx, compression=None,
                                  max_size=None, ping_interval=None, open_timeout=10)

    async def go():
        async with wss("/echo") as ws:
            big = pattern(3 * MiB)
            await ws.send(big)
            assert await ws.recv() == big
            await ws.close(4003, "tls done")
        async with wss("/close?after=1&code=4004") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4004
    run(go())
    s = b.wait_stats(lambda s: s["open"] == 0 and len(s["closes"]) == 2)
    assert [4003, "tls done"] in s["closes"] and s["open"] == 0


def test_tunnel_to_a_tls_upstream(gateway, ws_backend, ws_cert, tmp_path):
    (tmp_path / "up.crt").write_text(ws_cert["ws.crt"])
    (tmp_path / "up.key").write_text(ws_cert["ws.key"])
    b = ws_backend(["--cert", str(tmp_path / "up.crt"), "--key", str(tmp_path / "up.key")])
    conf = WS_CONF.replace("proxy_pass http://ws;", "proxy_pass https://ws;")
    gw = gateway(conf, [b], read_timeout="60s")

    async def go():
        async with connect(gw, "/echo") as ws:
            big = pattern(2 * MiB + 1)
            await ws.send(big)
            assert await ws.recv() == big
            await ws.close(4005, "over tls")
        async with connect(gw, "/close?after=1&code=4006") as ws:
            await ws.send("y")
            assert await ws.recv() == "y"
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4006
    run(go())
    s = b.wait_stats(lambda s: s["open"] == 0 and len(s["closes"]) == 2)
    assert [4005, "over tls"] in s["closes"] and s["open"] == 0


def test_access_log_has_the_upgraded_request_when_the_tunnel_ends(gateway, ws_backend):
    b = ws_backend()
    conf = WS_CONF.replace("listen 127.0.0.1:{port};", "listen 127.0.0.1:{port}; access_log {prefix}/ws.log;")
    gw = gateway(conf, [b], read_timeout="60s")
    log = gw.prefix / "ws.log"

    async def go():
        async with connect(gw, "/echo") as ws:
            await ws.send(pattern(200000))
            assert len(await ws.recv()) == 200000
            await ws.close()
    run(go())

    deadline = time.monotonic() + 10
    while not (log.exists() and "/echo" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    line = [x for x in log.read_text().splitlines() if "/echo" in x][0]
    # combined: ... "GET /echo HTTP/1.1" 101 BODY_BYTES "-" "UA": the tunnel's bytes count, as in nginx
    status, body_bytes = line.split('" ')[1].split()[:2]
    assert status == "101"
    assert int(body_bytes) > 200000


def test_graceful_quit_waits_for_an_open_tunnel(ws_gateway):
    gw, b = ws_gateway()

    async def go():
        async with connect(gw, "/echo") as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            gw.signal(signal.SIGQUIT)
            await asyncio.sleep(0.5)
            assert gw.proc.poll() is None              # still serving the tunnel
            await ws.send("during the quit")
            assert await ws.recv() == "during the quit"
    run(go())
    assert gw.wait(timeout=10) == 0                    # the last tunnel closed: the process ends


# The location block the guides (issue 5's seed configs) use for WebSockets, on loopback.
GUIDE_CONF = """
daemon off;
events { worker_connections 1024; }
http {
    server {
        listen 127.0.0.1:{port};
        server_name app.example;
        location / {
            proxy_pass http://127.0.0.1:{b0};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection 'upgrade';
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_cache_bypass $http_upgrade;
            proxy_read_timeout 300;
            proxy_connect_timeout 300;
            proxy_send_timeout 300;
        }
    }
}
"""


def test_the_guides_location_block(gateway, ws_backend):
    b = ws_backend()
    if not NGINX:
        # proxy_cache_bypass means nothing without a cache; the gateway has none.
        conf = GUIDE_CONF.replace("            proxy_cache_bypass $http_upgrade;\n", "")
    else:
        conf = GUIDE_CONF
    gw = gateway(conf, [b])

    async def go():
        async with connect(gw, "/headers", extra_headers=[("X-Forwarded-For", "10.1.2.3")]) as ws:
            got = {k.lower(): v for k, v in json.loads(await ws.recv())}
            await ws.send("ok")
            assert await ws.recv() == "ok"
        return got
    got = run(go())
    assert got["upgrade"] == "websocket"
    assert got["connection"] == "upgrade"
    assert got["host"] == "127.0.0.1"                 # $host: without the port
    assert got["x-real-ip"] == "127.0.0.1"
    assert got["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
    assert got["x-forwarded-proto"] == "http"
    assert "sec-websocket-key" in got


def test_many_tunnels_moving_megabytes_at_once(ws_gateway):
    gw, b = ws_gateway()
    n, size = 16, 4 * MiB

    async def one(i):
        data = pattern(size + i)
        async with connect(gw, "/echo") as ws:
            await ws.send(data)
            back = await ws.recv()
            assert len(back) == len(data) and hashlib.sha256(back).digest() == hashlib.sha256(data).digest()
            return i

    async def go():
        assert sorted(await asyncio.gather(*(one(i) for i in range(n)))) == list(range(n))
    run(go(), timeout=80)
