"""What is measured: the scenarios and the run presets."""
from dataclasses import dataclass

SMALL_BODY = "0123456789abcdef" * 4          # 64 B, served from memory
FILE_SIZES = {"16k": 16 * 1024, "1m": 1024 * 1024}  # served from tmpfs
POST_SIZE = 4096


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    path: str = "/small"
    method: str = "GET"
    body_size: int = 0          # request body (POST)
    conn_close: bool = False    # "Connection: close" on every request
    idle: bool = False          # the idle-connection memory test, not a load
    response_size: int = len(SMALL_BODY)


SCENARIOS = {s.name: s for s in [
    Scenario("small", "64 B response over keep-alive"),
    Scenario("16k", "16 KiB response over keep-alive", path="/16k",
             response_size=FILE_SIZES["16k"]),
    Scenario("1m", "1 MiB response over keep-alive", path="/1m",
             response_size=FILE_SIZES["1m"]),
    Scenario("post4k", "4 KiB POST over keep-alive, 64 B response",
             path="/post", method="POST", body_size=POST_SIZE),
    Scenario("close", "new connection per request (Connection: close), "
             "64 B response", conn_close=True),
    Scenario("idle", "idle keep-alive connections: proxy memory per "
             "connection", idle=True),
]}

CONTENDERS = ["nginx", "haproxy", "gateway"]   # round order: A B C A B C ...
REFERENCE = "nginx"                            # ratios are X / nginx

# Full run: ~10 min with two contenders, ~15 with three.
FULL = dict(scenarios=list(SCENARIOS), conns=[64, 256, 1024], rounds=3,
            duration=5.0, warmup=1.0, perf_duration=2.0, idle_conns=10000)
# --quick: about a minute; one connection count, two rounds, short runs.
QUICK = dict(scenarios=["small", "16k", "close", "idle"], conns=[256],
             rounds=2, duration=2.0, warmup=0.5, perf_duration=1.0,
             idle_conns=10000)
