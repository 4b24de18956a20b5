"""Load generators: building the wrk / h2load command line and parsing what
they print. Both run with one thread, pinned with the backend (CPU 0)."""
import os
import re
import subprocess

from . import system

WRK_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "wrk")
GENERATORS = ["wrk", "h2load"]


class Unsupported(Exception):
    """The generator cannot run this scenario."""


def url(port, scenario):
    return f"http://127.0.0.1:{port}{scenario.path}"


def wrk_argv(port, scenario, conns, duration, post_file=None):
    # --latency: percentile table (p50/p99). --timeout 5s: a 1 MiB response
    # at 1024 connections can legitimately take >1 s; slower counts as error.
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration:g}s", "--latency",
            "--timeout", "5s"]
    if scenario.conn_close:
        argv += ["-H", "Connection: close"]   # wrk reconnects after each
    if scenario.body_size:
        argv += ["-s", os.path.join(WRK_DIR, "post4k.lua")]
    return argv + [url(port, scenario)]


def h2load_argv(port, scenario, conns, duration, post_file=None):
    if scenario.conn_close:
        # h2load --h1 does not reconnect after "Connection: close": it stalls.
        raise Unsupported("h2load --h1 cannot reconnect per request")
    argv = ["h2load", "--h1", "-t1", f"-c{conns}", "-D", f"{duration:g}"]
    if scenario.body_size:
        argv += ["-d", post_file]             # POSTs the file's contents
    return argv + [url(port, scenario)]


ARGV = {"wrk": wrk_argv, "h2load": h2load_argv}


def run(gen, port, scenario, conns, duration, cpus, post_file=None):
    """Run one load; returns the parsed result dict (with 'cmd' and 'raw')."""
    argv = system.taskset(cpus, ARGV[gen](port, scenario, conns, duration,
                                          post_file))
    try:
        r = subprocess.run(argv, capture_output=True, text=True,
                           timeout=duration + 60)
        out = r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + "\n[timed out]"
    res = PARSE[gen](out)
    res["cmd"] = " ".join(_quote(a) for a in argv)
    if res["requests"] is None:
        res["parse_error"] = out[-2000:]
    return res


def _quote(arg):
    return f"'{arg}'" if " " in arg else arg


# ---- parsing -----------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


_BYTES = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3,
          "TB": 1024 ** 4, "PB": 1024 ** 5}


def _empty():
    return {"rps": None, "requests": None, "bytes": None, "duration_s": None,
            "p50_ms": None,
            "p99_ms": None, "mean_ms": None, "errors": {}, "error_count": 0}


def parse_wrk(out):
    res = _empty()
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", out)
    if m:
        res["requests"] = int(m.group(1))
        res["duration_s"] = _ms(m.group(2) + m.group(3)) / 1000
    m = re.search(r" requests in \S+, ([\d.]+)(B|KB|MB|GB|TB|PB) read", out)
    if m:       # every byte read, partial responses included (2 decimals)
        res["bytes"] = int(float(m.group(1)) * _BYTES[m.group(2)])
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        if m:
            res[key] = _ms(m.group(1))
    m = re.search(r"^\s+Latency\s+(\S+)", out, re.M)
    if m:
        res["mean_ms"] = _ms(m.group(1))
    errors = {}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    if m:
        errors.update(zip(["connect", "read", "write", "timeout"],
                          map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors["status"] = int(m.group(1))
    res["errors"] = {k: v for k, v in errors.items() if v}
    res["error_count"] = sum(errors.values())
    return res


def parse_h2load(out):
    res = _empty()
    m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", out)
    if m:
        res["rps"] = float(m.group(2))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, "
                  r"(\d+) succeeded, (\d+) failed, (\d+) errored, "
                  r"(\d+) timeout", out)
    if m:
        total, _, done, ok, failed, errored, timeout = map(int, m.groups())
        res["requests"] = done
        if res["rps"]:
            res["duration_s"] = done / res["rps"]
        errors = {"failed": failed, "errored": errored, "timeout": timeout}
        res["errors"] = {k: v for k, v in errors.items() if v}
        # h2load counts errored/timeout requests among the failed ones.
        res["error_count"] = failed
    m = re.search(r"traffic: \S+ \((\d+)\) total", out)
    if m:
        res["bytes"] = int(m.group(1))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx",
                  out)
    if m:
        bad = int(m.group(3)) + int(m.group(4))
        if bad:
            res["errors"]["status"] = bad
            res["error_count"] += bad
    # h2load prints min/max/mean/sd only: no percentiles.
    m = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if m:
        res["mean_ms"] = _ms(m.group(3))
    return res


PARSE = {"wrk": parse_wrk, "h2load": parse_h2load}
