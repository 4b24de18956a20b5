"""One measurement each: a load run with the proxy's CPU time and RSS, a
syscall count under perf, the direct-to-backend ceiling, and the idle
connection memory test."""
import os
import signal
import subprocess
import sys
import tempfile
import time

from . import loadgen, servers, system

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_run(server, gen, scenario, conns, duration, cpus, post_file,
             backend):
    """A load run against server, reading the proxy's CPU time before and
    after it. CPU time per request is the figure that survives when the proxy
    is not the bottleneck (then req/s measures CPU 0, not the proxy).
    backend: its processes tell what else ran on CPU 0, and its accept count
    how many upstream connections the proxy opened."""
    pids, load_pids = server.pids(), backend.pids()
    accepts0 = servers.accepts(backend.port)
    # Loopback: the receive work for packets the proxy sends runs as softirq
    # on the proxy's core: inline (charged to the proxy) or, under load,
    # deferred to ksoftirqd/N, which is then the proxy's cost too.
    softirqd = system.ksoftirqd(server.cpus)
    core0, load0 = system.cpu_stat(server.cpus), system.cpu_stat(cpus)
    ours0 = system.cpu_seconds(load_pids) + system.own_cpu_seconds()
    cpu0, t0 = system.cpu_seconds(pids), time.monotonic()
    sirq0 = system.cpu_seconds(softirqd)
    res = loadgen.run(gen, server.port, scenario, conns, duration, cpus,
                      post_file)
    wall = time.monotonic() - t0
    pids = server.pids() or pids
    proc = system.cpu_seconds(pids) - cpu0
    sirq = system.cpu_seconds(softirqd) - sirq0
    cpu = proc + sirq
    ours = system.cpu_seconds(load_pids) + system.own_cpu_seconds() - ours0
    core1, load1 = system.cpu_stat(server.cpus), system.cpu_stat(cpus)
    accepts1 = servers.accepts(backend.port)
    # What else ran on each core: other processes and kernel threads. A
    # shared machine is not always quiet, and a busy neighbour on CPU 1
    # slows the proxy, on CPU 0 the load. (Steal: time the hypervisor took.)
    other = max(0.0, core1[0] - core0[0] - cpu)
    load_other = max(0.0, load1[0] - load0[0] - ours)
    per_wall = (lambda x: round(x / wall, 3)) if wall else (lambda x: None)
    res.update(cpu_s=round(cpu, 3), proc_cpu_s=round(proc, 3),
               softirqd_s=round(sirq, 3), wall_s=round(wall, 3),
               cpu_util=per_wall(cpu), core_other=per_wall(other),
               load_core_other=per_wall(load_other),
               core_steal=per_wall(core1[1] - core0[1]),
               rss_kib=system.rss_kib(pids), pss_kib=system.pss_kib(pids),
               alive=server.alive())
    count_responses(res, server.wire_bytes, conns)
    if res["responses"]:
        res["cpu_us_per_req"] = round(cpu / res["responses"] * 1e6, 2)
    if accepts0 is not None and accepts1 is not None and res["responses"]:
        # Upstream keep-alive at work: a proxy that keeps its 64 idle
        # connections open opens almost none; one that closes and reopens
        # them pays a connect per request (and fills TIME_WAIT).
        res["upstream_conns"] = accepts1 - accepts0 - 1
        res["upstream_conns_per_1k"] = round(
            res["upstream_conns"] / res["responses"] * 1000, 2)
    return res


def count_responses(res, wire_bytes, conns):
    """The denominator of the per-request figures. wrk counts completed
    requests only, so when a run is short next to the response time (1 MiB
    at 1024 connections: ~1 s each, 1024 in flight), the work spent on the
    requests still in flight at the end inflates CPU/req. Bytes read
    / bytes per response counts the partial responses too; it equals the
    completed count when responses are quick. inflight_share says how much
    wrk's own req/s is understated by the same effect."""
    res["responses"] = res["requests"]
    if res["bytes"] and wire_bytes:
        res["responses"] = round(max(res["bytes"] / wire_bytes,
                                     res["requests"] or 0), 1)
    if res["requests"]:
        res["inflight_share"] = round(conns / res["requests"], 3)


def direct_run(port, gen, scenario, conns, duration, cpus, post_file):
    """wrk straight at the backend: the most CPU 0 (load generator + backend)
    can deliver. A proxy whose req/s comes near it was not the bottleneck."""
    return loadgen.run(gen, port, scenario, conns, duration, cpus, post_file)


def perf_run(server, gen, scenario, conns, duration, cpus, post_file):
    """Syscalls per request: perf counts the raw_syscalls:sys_enter
    tracepoint on the worker process(es) only (for nginx the worker, not the
    master, which sleeps through the run; -p covers every thread present at
    attach time). This is a separate, shorter run and not one of the timed
    rounds: an enabled syscall tracepoint sends every syscall of the traced
    task through the slow tracing path, which would tax the proxy's req/s
    (most for whoever makes the most syscalls)."""
    if not system.have("perf"):
        return {"error": "perf not installed (apt-get install linux-perf)"}
    targets = server.workers()
    with tempfile.NamedTemporaryFile("r", suffix=".perf") as out:
        argv = ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter,task-clock",
                "-p", ",".join(map(str, targets)), "-o", out.name]
        perf = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)   # perf attaches asynchronously and says nothing
        res = loadgen.run(gen, server.port, scenario, conns, duration, cpus,
                          post_file)
        perf.send_signal(signal.SIGINT)
        try:
            _, err = perf.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            perf.kill()
            _, err = perf.communicate()
        counts = parse_perf(out.read())
    rec = {"cmd": " ".join(argv[:-2]), "pids": targets, "rps": res["rps"],
           "requests": res["requests"], "error_count": res["error_count"]}
    rec.update(counts)
    if counts.get("syscalls") is None:
        rec["error"] = (err or "perf counted nothing").strip()[-500:]
    else:
        count_responses(res, server.wire_bytes, conns)
        rec["responses"] = res["responses"]
        if res["responses"]:
            rec["syscalls_per_req"] = round(
                counts["syscalls"] / res["responses"], 3)
    return rec


def parse_perf(text):
    """perf stat -x, lines: value,unit,event,..."""
    counts = {"syscalls": None, "task_clock_ms": None}
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) < 3 or line.startswith("#"):
            continue
        try:
            value = float(parts[0])
        except ValueError:       # "<not counted>", "<not supported>"
            continue
        if parts[2].startswith("raw_syscalls:sys_enter"):
            counts["syscalls"] = int(value)
        elif parts[2].startswith("task-clock"):
            counts["task_clock_ms"] = value
    return counts


def idle_test(server, count, cpus, settle=1.0):
    """Memory per idle keep-alive connection: RSS of the (freshly started)
    proxy before and after bench/idle_conns.py opens `count` connections and
    completes one request on each, then holds them open.
    Freshly started matters: memory freed by earlier load runs would be
    reused by the allocator and hide the per-connection cost."""
    for _ in range(10):              # lazy start-up work, upstream pool
        server.answers()
    time.sleep(settle)
    pids = server.pids()
    before = {"rss_kib": system.rss_kib(pids), "pss_kib": system.pss_kib(pids),
              "fds": system.fd_count(pids)}
    helper = subprocess.Popen(
        system.taskset(cpus, [sys.executable, os.path.join(BENCH_DIR,
                                                           "idle_conns.py"),
                              "--port", str(server.port), "--count",
                              str(count)]),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    try:
        ready = helper.stdout.readline().split()      # READY ok=N failed=M
        open_s = time.monotonic() - t0
        ok = int(ready[1].split("=")[1]) if len(ready) == 3 else 0
        failed = int(ready[2].split("=")[1]) if len(ready) == 3 else count
        time.sleep(settle)           # let the proxy finish its bookkeeping
        pids = server.pids()
        after = {"rss_kib": system.rss_kib(pids),
                 "pss_kib": system.pss_kib(pids), "fds": system.fd_count(pids)}
        helper.stdin.write("check\n")
        helper.stdin.flush()
        line = helper.stdout.readline().split()         # ALIVE n
        alive = int(line[1]) if len(line) == 2 else 0
    finally:
        try:
            helper.stdin.close()
        except OSError:
            pass
        try:
            helper.wait(30)
        except subprocess.TimeoutExpired:
            helper.kill()
    rec = {"requested": count, "ok": ok, "failed": failed, "alive": alive,
           "open_s": round(open_s, 2), "before": before, "after": after,
           "proxy_alive": server.alive()}
    if alive:
        rec["kib_per_conn"] = round(
            (after["rss_kib"] - before["rss_kib"]) / alive, 3)
        rec["error_count"] = failed + (ok - alive)
    else:
        rec["error_count"] = count
    return rec
