#!/usr/bin/python3
"""A WebSocket backend for the gateway's tests (python3-websockets, Debian's).

    python3 tests/ws_backend.py --port 0      # prints "READY PORT" once listening
    python3 tests/ws_backend.py --port 0 --cert C --key K   # the same over TLS (wss)

What it does is chosen by the path of the upgrade request:

  /echo               every message (text or binary) sent back as it came
  /first?msg=TEXT     sends TEXT as soon as the connection is open, then echoes
  /big?size=N         sends one binary message of N bytes (the deterministic
                      pattern of pattern(N)) on open, then echoes
  /close?after=N[&code=C]
                      echoes N messages, then closes with code C (default 1000)
                      and reason "bye"
  /drop?after=N       echoes N messages, then drops the TCP connection
                      without a closing handshake
  /ping               sends a ping, waits for its pong, then sends "pong-ok";
                      then echoes
  /headers            sends the upgrade request's headers as JSON
                      ([[name, value], ...]) on open, then echoes
  /idle               sends nothing, reads until the peer closes
  /reject             no upgrade: answers 403 "rejected\\n"
  /stats              plain HTTP (no upgrade): JSON {"open": connections open,
                      "accepted": n, "closes": [[code, reason], ...] as each
                      connection ended, seen from this side}

No ping of its own (ping_interval off), so an idle test is really idle.
Standard library plus websockets only.
"""

import argparse
import asyncio
import http
import json
import ssl
import sys
import urllib.parse

import websockets
import websockets.exceptions


def pattern(n):
    """n bytes of a fixed pattern that no offset error can hide."""
    block = bytes((i * 7 + i // 251) & 0xff for i in range(65536))
    return (block * (n // len(block) + 1))[:n]


class Stats:
    def __init__(self):
        self.open = 0
        self.accepted = 0
        self.closes = []


STATS = Stats()


async def process_request(path, headers):
    target = urllib.parse.urlsplit(path)
    if target.path == "/stats":
        body = json.dumps({"open": STATS.open, "accepted": STATS.accepted, "closes": STATS.closes}).encode()
        return http.HTTPStatus.OK, [("Content-Type", "application/json"), ("Connection", "close")], body
    if target.path == "/reject":
        return http.HTTPStatus.FORBIDDEN, [("Connection", "close")], b"rejected\n"
    return None


async def echo(ws, limit=None):
    n = 0
    async for msg in ws:
        await ws.send(msg)
        n += 1
        if limit is not None and n >= limit:
            return


async def handler(ws, path=None):
    target = urllib.parse.urlsplit(ws.path)
    q = {k: v[-1] for k, v in urllib.parse.parse_qs(target.query).items()}
    STATS.open += 1
    STATS.accepted += 1
    try:
        if target.path == "/first":
            await ws.send(q.get("msg", "hello"))
            await echo(ws)
        elif target.path == "/big":
            await ws.send(pattern(int(q.get("size", "1048576"))))
            await echo(ws)
        elif target.path == "/close":
            await echo(ws, int(q.get("after", "1")))
            await ws.close(int(q.get("code", "1000")), "bye")
        elif target.path == "/drop":
            await echo(ws, int(q.get("after", "1")))
            ws.transport.abort()
        elif target.path == "/ping":
            waiter = await ws.ping(b"from-server")
            await asyncio.wait_for(waiter, 10)
            await ws.send("pong-ok")
            await echo(ws)
        elif target.path == "/headers":
            await ws.send(json.dumps([[k, v] for k, v in ws.request_headers.raw_items()]))
            await echo(ws)
        elif target.path == "/idle":
            async for _ in ws:
                pass
        else:
            await echo(ws)
    except websockets.exceptions.ConnectionClosed:
        pass
    finally:
        STATS.open -= 1
        STATS.closes.append([ws.close_code, ws.close_reason])


async def main(port, cert=None, key=None):
    tls = None
    if cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
    async with websockets.serve(handler, "127.0.0.1", port, process_request=process_request,
                                ping_interval=None, max_size=None, max_queue=None,
                                compression=None, ssl=tls) as server:
        bound = server.sockets[0].getsockname()[1]
        print("READY %d" % bound, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert", help="serve TLS with this certificate (PEM)")
    ap.add_argument("--key", help="... and this key")
    args = ap.parse_args()
    try:
        asyncio.run(main(args.port, args.cert, args.key))
    except KeyboardInterrupt:
        sys.exit(0)
