"""The balancing methods: least_conn and random two (keep away from a busy
server), ip_hash and hash (a client or key always lands on the same server,
in every worker, across restarts; the placement is nginx's, computed here
independently), and weights.

Hash placement is checked against Python versions of nginx's functions
(ip_hash: h = (h * 113 + octet) % 6271 from 89; hash: Cache::Memcached's
crc32 scheme; hash ... consistent: ketama, 160 points per weight unit)."""

import bisect
import os
import socket
import struct
import threading
import time
import zlib
from collections import Counter

import pytest

import rawhttp

NGINX = os.environ.get("GATEWAY_TEST_AGAINST") == "nginx"


def config(upstream, location=""):
    return """
daemon off;
pid gateway.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    upstream app {
%s
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://app;
%s
        }
    }
}
""" % (upstream, location)


def servers(n, extra=None):
    """`server` lines for {b0} .. {b<n-1>}; extra: index -> parameters."""
    extra = extra or {}
    return "\n".join("        server 127.0.0.1:{b%d}%s;" % (i, (" " + extra[i]) if i in extra else "")
                     for i in range(n))


def answer(gw, target="/", headers=()):
    r = gw.get(target, headers)
    assert r.status == 200, (r, r.body)
    return r.header("X-Backend")


def who_answers(gw, n, target="/"):
    return Counter(answer(gw, target) for _ in range(n))


class InFlight:
    """A GET in the background (a slow one holds its server)."""

    def __init__(self, gw, target):
        self.response = None
        self._t = threading.Thread(target=lambda: setattr(self, "response", gw.get(target, timeout=10)),
                                   daemon=True)
        self._t.start()

    def wait(self):
        self._t.join(timeout=15)
        return self.response


def wait_until(pred, timeout=30.0):     # a bound for a loaded machine; it returns as soon as pred holds
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in %.1f s" % timeout
        time.sleep(0.01)


# ---- least_conn, random two: keep away from the busy server -------------------------

@pytest.mark.parametrize("method, to_busy", [
    ("least_conn;", 0),
    ("random two;", 0),                     # two different servers drawn: the busy one always loses
    ("random two least_conn;", 0),
    ("", 10),                               # round-robin does not care: one in three
])
def test_new_requests_go_around_a_server_holding_a_slow_request(backends, gateway, method, to_busy):
    bs = backends(3)
    gw = gateway(config(method + "\n" + servers(3)), bs, workers=1)

    slow = InFlight(gw, "/delay?ms=700")
    wait_until(lambda: sum(b.requests_seen for b in bs) == 1)
    busy = next(b.name for b in bs if b.requests_seen)

    seen = who_answers(gw, 30)

    assert seen[busy] == to_busy, seen
    assert slow.wait().status == 200


# random two draws two different servers: with three, two of them busy, it
# draws both busy ones a third of the time; with two it always sees both.
@pytest.mark.parametrize("method, n", [("least_conn;", 3), ("random two;", 2)])
def test_concurrent_slow_requests_spread_one_per_server(backends, gateway, method, n):
    bs = backends(n)
    gw = gateway(config(method + "\n" + servers(n)), bs, workers=1)

    held = []
    for i in range(n):
        held.append(InFlight(gw, "/delay?ms=600"))
        wait_until(lambda: sum(b.requests_seen for b in bs) == i + 1)

    assert [b.requests_seen for b in bs] == [1] * n
    assert all(h.wait().status == 200 for h in held)


def _load_share(gw, seconds, clients):
    """Run `clients` threads of back-to-back GETs for `seconds`; Counter of X-Backend."""
    seen, lock, stop = Counter(), threading.Lock(), threading.Event()
    bad = []

    def run():
        with rawhttp.Conn(gw.port, timeout=10) as c:
            while not stop.is_set():
                r = c.get("/")
                with lock:
                    if r.status != 200:
                        bad.append(r)
                    seen[r.header("X-Backend")] += 1

    threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert not bad, bad[:3]
    return seen


@pytest.mark.parametrize("method, slow_share", [
    ("least_conn;", (0, 0.05)),
    ("random two;", (0, 0.05)),
    ("", (0.30, 0.37)),                      # round-robin: a third, and everybody waits for it
])
def test_one_slow_backend_among_fast_ones_gets_few_requests(backends, gateway, method, slow_share):
    bs = backends(3)
    bs[0].respond_as = "/delay?ms=150"      # b0 takes 150 ms for anything
    gw = gateway(config(method + "\n" + servers(3)), bs, workers=1)

    seen = _load_share(gw, 1.0, clients=4)

    share = seen["b0"] / sum(seen.values())
    assert slow_share[0] <= share <= slow_share[1], seen
    assert sum(seen.values()) >= 40


# ---- ip_hash --------------------------------------------------------------------

def ip_hash_index(ip, weights, down=()):
    """nginx's ip_hash: the server index for an IPv4 client (None: round-robin decides)."""
    octets = [int(x) for x in ip.split(".")][:3]
    h = 89
    for _ in range(20):
        for o in octets:
            h = (h * 113 + o) % 6271
        w, i = h % sum(weights), 0
        while w >= weights[i]:
            w -= weights[i]
            i += 1
        if i not in down:
            return i
    return None


class ConnFrom(rawhttp.Conn):
    """A client connection from a given source address (any 127.x.y.z works on lo)."""

    def __init__(self, port, source, timeout=rawhttp.DEFAULT_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False


def answer_from(gw, source):
    with ConnFrom(gw.port, source) as c:
        r = c.get("/")
    assert r.status == 200
    return r.header("X-Backend")


def test_ip_hash_keeps_a_client_on_one_server(backends, gateway):
    bs = backends(3)
    gw = gateway(config("ip_hash;\n" + servers(3)), bs, workers=1)

    seen = who_answers(gw, 30)

    assert seen == {"b%d" % ip_hash_index("127.0.0.1", [1, 1, 1]): 30}


def test_ip_hash_with_two_workers_many_connections(backends, gateway):
    bs = backends(3)
    gw = gateway(config("ip_hash;\n" + servers(3)), bs, workers=2)

    seen = who_answers(gw, 60)

    assert seen == {"b%d" % ip_hash_index("127.0.0.1", [1, 1, 1]): 60}


def test_ip_hash_places_each_client_network_as_nginx_does(backends, gateway):
    bs = backends(4)
    gw = gateway(config("ip_hash;\n" + servers(4, {0: "weight=2"})), bs, workers=2)
    nets = ["127.%d.%d" % (i // 7, 3 * i % 251) for i in range(24)]

    placed = {net: answer_from(gw, net + ".1") for net in nets}

    assert placed == {net: "b%d" % ip_hash_index(net + ".1", [2, 1, 1, 1]) for net in nets}
    assert len(set(placed.values())) == 4
    # The last octet plays no part: a /24 shares a server.
    assert all(answer_from(gw, net + ".200") == placed[net] for net in nets[:6])


def test_ip_hash_a_down_server_moves_only_its_own_clients(backends, gateway):
    bs = backends(3)
    nets = ["127.%d.%d" % (i // 7, 3 * i % 251) for i in range(24)]
    gw = gateway(config("ip_hash;\n" + servers(3)), bs, workers=1)
    before = {net: answer_from(gw, net + ".1") for net in nets}
    gw.stop()

    gw = gateway(config("ip_hash;\n" + servers(3, {1: "down"})), bs, workers=1)
    after = {net: answer_from(gw, net + ".1") for net in nets}

    assert "b1" in before.values() and "b1" not in after.values()
    assert all(after[n] == before[n] for n in nets if before[n] != "b1")
    assert after == {n: "b%d" % ip_hash_index(n + ".1", [1, 1, 1], down={1}) for n in nets}


# ---- hash KEY [consistent] ------------------------------------------------------

def memcached_hash_index(key, weights, down=()):
    """nginx's `hash KEY` (Cache::Memcached's scheme): crc32 of KEY, then of
    "1KEY", "2KEY"... while the pick is unusable, summed (None: round-robin)."""
    h = 0
    for tries in range(20):
        data = (str(tries) if tries else "") + key
        h += (zlib.crc32(data.encode()) >> 16) & 0x7fff
        w, i = h % sum(weights), 0
        while w >= weights[i]:
            w -= weights[i]
            i += 1
        if i not in down:
            return i
    return None


class Ketama:
    """nginx's `hash KEY consistent`: 160 points per weight unit for each
    server, point j = crc32(HOST "\\0" PORT prev_point_LE32)."""

    def __init__(self, ports, weights=None):
        weights = weights or [1] * len(ports)
        points = []
        for idx, (port, weight) in enumerate(zip(ports, weights)):
            base, prev = b"127.0.0.1\0" + str(port).encode(), 0
            for _ in range(160 * weight):
                prev = zlib.crc32(base + struct.pack("<I", prev))
                points.append((prev, idx))
        points.sort(key=lambda p: p[0])          # stable, as nginx's insertion sort
        self.points = [p for k, p in enumerate(points) if k == 0 or p[0] != points[k - 1][0]]
        self.hashes = [p[0] for p in self.points]

    def index(self, key, down=()):
        """The server of the first point at or after crc32(key); for an
        unusable server, the next point's (20 tries, as nginx)."""
        i = bisect.bisect_left(self.hashes, zlib.crc32(key.encode()))
        for k in range(20):
            server = self.points[(i + k) % len(self.points)][1]
            if server not in down:
                return server
        return None


KEYS = ["user%d" % i for i in range(40)]


def placement(gw, keys, repeat=1):
    """key -> the one backend that answered it (each key asked `repeat` times, new connections)."""
    out = {}
    for k in keys:
        who = {answer(gw, "/?k=" + k) for _ in range(repeat)}
        assert len(who) == 1, (k, who)
        out[k] = who.pop()
    return out


def test_hash_consistent_key_goes_where_ketama_puts_it(backends, gateway):
    bs = backends(4)
    gw = gateway(config("hash $arg_k consistent;\n" + servers(4)), bs, workers=1)
    ring = Ketama([b.port for b in bs])

    placed = placement(gw, KEYS, repeat=3)

    assert placed == {k: "b%d" % ring.index(k) for k in KEYS}
    assert len(set(placed.values())) == 4


def test_hash_consistent_is_the_same_in_two_workers_and_after_a_restart(backends, gateway):
    bs = backends(4)
    conf = config("hash $arg_k consistent;\n" + servers(4))
    gw = gateway(conf, bs, workers=2)
    first = placement(gw, KEYS, repeat=4)              # 4 new connections per key: both workers
    gw.stop()

    gw = gateway(conf, bs, workers=2)
    again = placement(gw, KEYS, repeat=2)

    assert again == first


def test_hash_consistent_removing_a_server_moves_only_its_keys(backends, gateway):
    bs = backends(4)
    keys = ["item-%d" % i for i in range(80)]
    gw = gateway(config("hash $arg_k consistent;\n" + servers(4)), bs, workers=1)
    before = placement(gw, keys)
    gw.stop()

    gw = gateway(config("hash $arg_k consistent;\n" + servers(3)), bs[:3], workers=1)
    after = placement(gw, keys)

    stayed = [k for k in keys if before[k] != "b3"]
    moved = [k for k in keys if before[k] == "b3"]
    assert 8 <= len(moved) <= 35, Counter(before.values())
    assert all(after[k] == before[k] for k in stayed)
    assert all(after[k] != "b3" for k in moved)
    ring3 = Ketama([b.port for b in bs[:3]])
    assert after == {k: "b%d" % ring3.index(k) for k in keys}


def test_hash_consistent_a_dead_server_hands_its_keys_to_the_next_point(backends, gateway):
    bs = backends(4)
    gw = gateway(config("hash $arg_k consistent;\n" + servers(4, {2: "max_fails=1 fail_timeout=30s"})),
                 bs, workers=1)
    ring = Ketama([b.port for b in bs])
    before = placement(gw, KEYS)
    bs[2].stop()                                    # a cache shard goes away

    after = placement(gw, KEYS, repeat=2)           # no error: its keys fail over

    assert after == {k: "b%d" % ring.index(k, down={2}) for k in KEYS}
    assert all(after[k] == before[k] for k in KEYS if before[k] != "b2")
    assert "b2" in before.values()


def test_hash_plain_a_down_server_rehashes_its_keys_as_nginx_does(backends, gateway):
    bs = backends(3)
    gw = gateway(config("hash $arg_k;\n" + servers(3, {0: "down"})), bs, workers=1)

    placed = placement(gw, KEYS)

    assert placed == {k: "b%d" % memcached_hash_index(k, [1, 1, 1], down={0}) for k in KEYS}


# nginx hashes the whole key (a $request_uri is up to 8 KiB here).
def test_hash_uses_the_whole_key_however_long(backends, gateway):
    bs = backends(4)
    gw = gateway(config("hash $request_uri consistent;\n" + servers(4)), bs, workers=1)
    ring = Ketama([b.port for b in bs])
    uris = ["/api/v1/" + "x" * 150 + "?session=%d" % i for i in range(24)]

    placed = {u: answer(gw, u) for u in uris}

    assert placed == {u: "b%d" % ring.index(u) for u in uris}
    assert len(set(placed.values())) >= 3


def test_hash_consistent_weight_takes_a_bigger_share(backends, gateway):
    bs = backends(2)
    gw = gateway(config("hash $arg_k consistent;\n" + servers(2, {0: "weight=3"})), bs, workers=1)
    ring = Ketama([b.port for b in bs], [3, 1])
    keys = ["w%d" % i for i in range(100)]

    placed = placement(gw, keys)

    assert placed == {k: "b%d" % ring.index(k) for k in keys}
    assert Counter(placed.values())["b0"] >= 60


def test_hash_plain_places_keys_as_nginx_does_in_both_workers(backends, gateway):
    bs = backends(3)
    gw = gateway(config("hash $arg_k;\n" + servers(3)), bs, workers=2)

    placed = placement(gw, KEYS, repeat=3)

    assert placed == {k: "b%d" % memcached_hash_index(k, [1, 1, 1]) for k in KEYS}


@pytest.mark.parametrize("key, request_for, key_of", [
    ("$request_uri", lambda v: ("/p/" + v + "?x=1", []), lambda v: "/p/" + v + "?x=1"),
    ("$cookie_user", lambda v: ("/", [("Cookie", "a=1; user=" + v + "; b=2")]), lambda v: v),
    ("$http_x_tenant", lambda v: ("/", [("X-Tenant", v)]), lambda v: v),
    ("$arg_a-$arg_b", lambda v: ("/?b=" + v + "&a=k", []), lambda v: "k-" + v),
], ids=["request_uri", "cookie", "header", "two-args"])
def test_hash_key_variables(backends, gateway, key, request_for, key_of):
    bs = backends(4)
    gw = gateway(config("hash %s consistent;\n" % key + servers(4)), bs, workers=1)
    ring = Ketama([b.port for b in bs])
    values = ["v%d" % i for i in range(24)]

    placed = {v: answer(gw, *request_for(v)) for v in values}

    assert placed == {v: "b%d" % ring.index(key_of(v)) for v in values}


def test_hash_remote_addr_is_the_client_address(backends, gateway):
    bs = backends(4)
    gw = gateway(config("hash $remote_addr consistent;\n" + servers(4)), bs, workers=1)
    ring = Ketama([b.port for b in bs])
    clients = ["127.0.%d.%d" % (i, 7 * i % 250 + 1) for i in range(16)]

    placed = {ip: answer_from(gw, ip) for ip in clients}

    assert placed == {ip: "b%d" % ring.index(ip) for ip in clients}


# ---- weights and random ---------------------------------------------------------

@pytest.mark.parametrize("method, low, high", [
    ("", 300, 300),                 # smooth weighted round-robin: exact
    ("least_conn;", 300, 300),      # sequential requests: always a tie, broken by weighted round-robin
    ("random;", 260, 340),          # binomial(400, 3/4): sd 8.7
    pytest.param("random two;", 260, 340, marks=pytest.mark.gateway_only(
        "nginx's random two redraws until the second pick differs and keeps the second on a tie: "
        "with two servers at 3:1 it sends 1:3")),
])
def test_weight_3_against_1_gives_3_to_1_over_400_requests(backends, gateway, method, low, high):
    bs = backends(2)
    gw = gateway(config(method + "\n" + servers(2, {0: "weight=3"})), bs, workers=1)

    seen = who_answers(gw, 400)

    assert low <= seen["b0"] <= high, seen
    assert seen["b0"] + seen["b1"] == 400


@pytest.mark.parametrize("method", ["random;", "random two;"])
def test_random_spreads_over_every_server(backends, gateway, method):
    bs = backends(4)
    gw = gateway(config(method + "\n" + servers(4)), bs, workers=1)

    seen = who_answers(gw, 400)

    assert all(60 <= seen["b%d" % i] <= 140 for i in range(4)), seen     # 100 +- 4.6 sd


def test_random_two_spreads_concurrent_load(backends, gateway):
    bs = backends(4)
    gw = gateway(config("random two;\n" + servers(4)), bs, workers=1)

    seen = _load_share(gw, 0.8, clients=8)

    total = sum(seen.values())
    assert total >= 200
    assert all(0.15 * total <= seen["b%d" % i] <= 0.35 * total for i in range(4)), seen
