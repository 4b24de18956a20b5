"""Turning the raw runs into medians, the markdown table, the stdout summary
and the PNG chart."""
import math
import statistics

from .scenarios import REFERENCE, SCENARIOS

# A proxy below this CPU utilisation was not the bottleneck: CPU 0 (load
# generator + backend) was, so its req/s says little about the proxy.
SATURATED = 0.90
# Share of the proxy's core used by anything else during a run (other
# processes, kernel threads) above which the run is marked as disturbed.
NOISY = 0.05


# ---- aggregation -------------------------------------------------------------

def _median(values):
    """Medians, not means: one round disturbed by the VM, the other core or
    a timer tick is common on a 2-core machine and should not move the
    quoted figure; the min-max spread is kept next to it."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def aggregate(data):
    """{(scenario, conns, contender): medians over rounds + perf figures}."""
    groups = {}
    for run in data["load"]:
        groups.setdefault((run["scenario"], run["conns"], run["contender"]),
                          []).append(run)
    agg = {}
    for key, runs in groups.items():
        rps = [r["rps"] for r in runs if r["rps"] is not None]
        requests = sum(r["requests"] or 0 for r in runs)
        errors = sum(r["error_count"] for r in runs)
        kinds = {}
        for r in runs:
            for k, v in r["errors"].items():
                kinds[k] = kinds.get(k, 0) + v
        agg[key] = {
            "rounds": len(runs),
            "rps": _median(rps),
            "rps_min": min(rps) if rps else None,
            "rps_max": max(rps) if rps else None,
            "p50_ms": _median(r["p50_ms"] for r in runs),
            "p99_ms": _median(r["p99_ms"] for r in runs),
            "mean_ms": _median(r["mean_ms"] for r in runs),
            "cpu_us_per_req": _median(r.get("cpu_us_per_req") for r in runs),
            "inflight_share": _median(r.get("inflight_share") for r in runs),
            "upstream_conns_per_1k": _median(r.get("upstream_conns_per_1k")
                                             for r in runs),
            "cpu_util": _median(r["cpu_util"] for r in runs),
            "core_other": _median(r.get("core_other") for r in runs),
            "load_core_other": _median(r.get("load_core_other")
                                       for r in runs),
            "core_steal": _median(r.get("core_steal") for r in runs),
            "rss_mib": max(r["rss_kib"] for r in runs) / 1024,
            "requests": requests,
            "errors": errors,
            "error_kinds": kinds,
            "error_rate": errors / (requests + errors) if requests + errors
            else None,
        }
    for rec in data["perf"]:
        key = (rec["scenario"], rec["conns"], rec["contender"])
        if key in agg:
            agg[key]["syscalls_per_req"] = rec.get("syscalls_per_req")
            agg[key]["perf_rps"] = rec.get("rps")
    for rec in data["direct"]:
        agg[(rec["scenario"], rec["conns"], "direct")] = {
            "rps": rec["rps"], "p50_ms": rec["p50_ms"], "p99_ms": rec["p99_ms"],
            "mean_ms": rec["mean_ms"], "errors": rec["error_count"]}
    return agg


def ratio(a, b):
    return a / b if a is not None and b else None


def geomean(values):
    values = [v for v in values if v]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


# ---- formatting --------------------------------------------------------------

def fmt(v, digits=1, suffix=""):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}{suffix}"


def fmt_ratio(v):
    return "–" if v is None else f"{v:.2f}×"


def fmt_errors(a):
    if not a.get("errors"):
        return "0"
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(a["error_kinds"].items()))
    return f"⚠ {a['errors']:,} ({a['error_rate']:.2%}: {kinds})"


def noisy(a):
    return max(a.get("core_other") or 0, a.get("load_core_other") or 0) \
        >= NOISY


def contender_label(name, a):
    flags = ""
    if a.get("errors"):
        flags += " ⚠"
    if a.get("cpu_util") is not None and a["cpu_util"] < SATURATED:
        flags += " ‡"
    if noisy(a):
        flags += " §"
    return f"**{name}**{flags}" if flags else name


# ---- markdown ----------------------------------------------------------------

def markdown(data, agg):
    meta = data["meta"]
    lines = [f"# gateway benchmark — {meta['started']} "
             f"({meta['preset']} run)", ""]
    lines += _header(data)
    load_scen = [s for s in meta["scenarios"] if not SCENARIOS[s].idle]
    contenders = meta["contenders_run"]
    others = [c for c in contenders if c != REFERENCE]
    if load_scen and others:
        lines += _summary_table(meta, agg, load_scen, others)
    for s in load_scen:
        lines += _scenario_table(meta, agg, s, contenders)
    if "idle" in meta["scenarios"]:
        lines += _idle_table(data, contenders)
    if data["problems"]:
        lines += ["## Problems", ""]
        lines += [f"- {p['contender']} / {p['scenario']}: {p['message']}"
                  for p in data["problems"]]
        lines.append("")
    lines += _legend()
    return "\n".join(lines) + "\n"


def _header(data):
    meta = data["meta"]
    m = meta["machine"]
    lines = [
        f"- Machine: {m.get('cpu_model', '?')}, {m['cpus']} CPUs, "
        f"Linux {m['kernel']}.",
        f"- Pinning: proxy under test on CPU {_cpus(meta['proxy_cpus'])}; "
        f"backend ({meta['backend_workers']} nginx workers), load generator, "
        f"perf and this harness on CPU {_cpus(meta['load_cpus'])}.",
        f"- Load: {meta['generator']} (1 thread), {meta['rounds']} round(s) "
        f"× {meta['duration']:g} s per point, contenders alternated "
        f"({' '.join(meta['contenders_run'])} …), medians quoted; "
        f"syscalls from a separate {meta['perf_duration']:g} s run under "
        f"perf.",
        f"- Upstream keep-alive: {meta['upstream_keepalive']} idle "
        "connections per proxy (keepalive / pool-max-conn).",
        f"- RLIMIT_NOFILE {meta['nofile']}; "
        + ", ".join(f"{k} {v[1]}" for k, v in meta["sysctls"].items()) + ".",
    ]
    busy = meta.get("preflight_busy")
    if busy:
        lines.append("- ⚠ Machine not idle before the run: " + "; ".join(
            f"{share:.0%} CPU {cmd}" for share, _, cmd in busy[:5]) + ".")
    for name, c in data["contenders"].items():
        state = c.get("version") or ""
        if c["status"] != "ok":
            state = f"**skipped**: {c['note']}"
        elif c.get("note"):
            state += f" ({c['note']})"
        lines.append(f"- {name}: {state}")
    return lines + [""]


def _cpus(cpus):
    return ",".join(map(str, cpus))


def _summary_table(meta, agg, scenarios, others):
    head = ["scenario", "conns", f"{REFERENCE} req/s"]
    for o in others:
        head += [f"{o}/{REFERENCE} req/s", f"{o}/{REFERENCE} CPU/req",
                 f"{o}/{REFERENCE} syscalls/req"]
    lines = ["## Summary: ratios against nginx", "",
             "req/s: higher is better; CPU/req and syscalls/req: lower is "
             "better.", "", _row(head), _row(["---"] * len(head))]
    for s in scenarios:
        for c in meta["conns"]:
            ref = agg.get((s, c, REFERENCE), {})
            row = [s, str(c), fmt(ref.get("rps"), 0)]
            for o in others:
                a = agg.get((s, c, o), {})
                flag = " ⚠" if a.get("errors") else ""
                row += [fmt_ratio(ratio(a.get("rps"), ref.get("rps"))) + flag,
                        fmt_ratio(ratio(a.get("cpu_us_per_req"),
                                        ref.get("cpu_us_per_req"))),
                        fmt_ratio(ratio(a.get("syscalls_per_req"),
                                        ref.get("syscalls_per_req")))]
            lines.append(_row(row))
    return lines + [""]


def _scenario_table(meta, agg, s, contenders):
    sc = SCENARIOS[s]
    head = ["conns", "contender", "req/s", "×nginx", "min–max req/s",
            "p50 ms", "p99 ms", "CPU µs/req", "×nginx", "syscalls/req",
            "×nginx", "proxy CPU", "other load (proxy core / load core)",
            "upstream conns /1k req", "RSS MiB", "errors"]
    lines = [f"## {s}: {sc.title}", "", _row(head), _row(["---"] * len(head))]
    for c in meta["conns"]:
        ref = agg.get((s, c, REFERENCE), {})
        for name in contenders:
            a = agg.get((s, c, name))
            if a is None:
                continue
            lines.append(_row([
                str(c), contender_label(name, a), _rps(a),
                fmt_ratio(ratio(a["rps"], ref.get("rps"))),
                f"{fmt(a['rps_min'], 0)}–{fmt(a['rps_max'], 0)}",
                _p50(a), fmt(a["p99_ms"], 2),
                fmt(a["cpu_us_per_req"], 1),
                fmt_ratio(ratio(a["cpu_us_per_req"],
                                ref.get("cpu_us_per_req"))),
                fmt(a.get("syscalls_per_req"), 2),
                fmt_ratio(ratio(a.get("syscalls_per_req"),
                                ref.get("syscalls_per_req"))),
                fmt(a["cpu_util"] and a["cpu_util"] * 100, 0, "%"),
                f"{fmt((a['core_other'] or 0) * 100, 0, '%')} / "
                f"{fmt((a['load_core_other'] or 0) * 100, 0, '%')}",
                fmt(a.get("upstream_conns_per_1k"), 1),
                fmt(a["rss_mib"], 1), fmt_errors(a)]))
        d = agg.get((s, c, "direct"))
        if d:
            lines.append(_row([str(c), "*direct (no proxy)*", fmt(d["rps"], 0),
                               "", "", _p50(d), fmt(d["p99_ms"], 2),
                               "", "", "", "", "", "", "", "",
                               "⚠ " + str(d["errors"]) if d["errors"] else "0"
                               ]))
    return lines + [""]


INFLIGHT = 0.10


def _rps(a):
    """≈: many requests were still in flight when wrk stopped, compared with
    those it completed, so its req/s is understated (run longer)."""
    mark = "≈" if (a.get("inflight_share") or 0) >= INFLIGHT else ""
    return mark + fmt(a["rps"], 0)


def _p50(a):
    """h2load reports no percentiles, only a mean: show that instead."""
    if a["p50_ms"] is None and a.get("mean_ms") is not None:
        return f"mean {a['mean_ms']:.2f}"
    return fmt(a["p50_ms"], 2)


def _idle_table(data, contenders):
    recs = {r["contender"]: r for r in data["idle"]}
    ref = recs.get(REFERENCE, {})
    head = ["contender", "connections held", "RSS before MiB", "RSS after MiB",
            "KiB/conn", "×nginx", "fds after", "errors"]
    n = data["meta"]["idle_conns"]
    lines = [f"## idle: {n:,} idle keep-alive connections (memory)", "",
             _row(head), _row(["---"] * len(head))]
    for name in contenders:
        r = recs.get(name)
        if r is None:
            continue
        label = f"**{name}** ⚠" if r["error_count"] else name
        lines.append(_row([
            label, f"{r['alive']:,}/{r['requested']:,}",
            fmt(r["before"]["rss_kib"] / 1024, 1),
            fmt(r["after"]["rss_kib"] / 1024, 1),
            fmt(r.get("kib_per_conn"), 2),
            fmt_ratio(ratio(r.get("kib_per_conn"), ref.get("kib_per_conn"))),
            f"{r['after']['fds']:,}",
            f"⚠ {r['error_count']:,}" if r["error_count"] else "0"]))
    return lines + [""]


def _legend():
    return [
        "## How to read",
        "",
        "- Every figure is the median over the rounds; min–max req/s shows "
        "the spread.",
        "- ×nginx: the contender's figure divided by nginx's at the same "
        "connection count.",
        "- CPU µs/req: the proxy's utime+stime (all its processes and "
        "threads) over the run, divided by the requests wrk completed.",
        "- proxy CPU: that CPU time divided by the wall time of the run; "
        f"‡ marks a proxy under {SATURATED:.0%}: it was not saturated, CPU 0 "
        "(wrk + backend) was the limit, so compare CPU µs/req rather than "
        "req/s.",
        "- *direct (no proxy)*: the generator against the backend alone, "
        "i.e. what CPU 0 can deliver: a proxy near it is not the limit. (For "
        "`close` it is no ceiling: direct, the backend also accepts a "
        "connection per request, which a proxy's upstream keep-alive spares "
        "it.)",
        "- other load: CPU time of anything but the benchmark's own "
        "processes on the proxy's core / on the load core during the runs "
        f"(median, share of the run); § marks {NOISY:.0%} or more on either: "
        "the machine was not quiet, rerun before trusting those rows.",
        "- ≈ before req/s: the connections (requests in flight when wrk "
        f"stopped) were {INFLIGHT:.0%} or more of the completed requests, "
        "so wrk's req/s is understated: run longer (--duration). CPU/req "
        "and syscalls/req count responses from the bytes read (partial "
        "ones included) and are not affected.",
        "- upstream conns /1k req: connections the backend accepted during "
        "the run per 1000 responses: ~0 when the proxy's upstream keep-alive "
        "pool (64) covers the load, up to 1000 when every request opens one.",
        "- syscalls/req: raw_syscalls:sys_enter on the proxy's worker(s) "
        "over a separate run under perf, divided by its requests.",
        "- ⚠: the contender had errors (non-2xx/3xx responses, socket "
        "connect/read/write errors or timeouts, or idle connections lost); "
        "its figures are suspect.",
        "- See bench/README.md for the exact commands behind each column.",
    ]


def _row(cells):
    return "| " + " | ".join(cells) + " |"


# ---- stdout summary ------------------------------------------------------------

def summary_line(data, agg, s):
    """One line per scenario: nginx's absolute figures, everyone else as
    ratios (geometric mean over the connection counts when several)."""
    meta = data["meta"]
    parts = []
    if SCENARIOS[s].idle:
        recs = {r["contender"]: r for r in data["idle"] if r["scenario"] == s}
        ref = recs.get(REFERENCE, {}).get("kib_per_conn")
        for name in meta["contenders_run"]:
            r = recs.get(name)
            if r is None:
                continue
            kib = r.get("kib_per_conn")
            txt = f"{name} {fmt(kib, 2)} KiB/conn"
            if name != REFERENCE:
                txt += f" ({fmt_ratio(ratio(kib, ref))})"
            if r["error_count"]:
                txt += f" ⚠ {r['error_count']} lost/failed"
            parts.append(txt)
        return f"{s:7} " + " | ".join(parts)
    conns = meta["conns"]
    for name in meta["contenders_run"]:
        rows = [agg.get((s, c, name)) for c in conns]
        rows = [r for r in rows if r]
        if not rows:
            continue
        errs = sum(r["errors"] for r in rows)
        if name == REFERENCE:
            txt = (f"{name} {fmt(geomean(r['rps'] for r in rows), 0)} req/s "
                   f"{fmt(geomean(r['cpu_us_per_req'] for r in rows), 1)} "
                   "µs/req")
        else:
            rr = geomean(ratio(agg.get((s, c, name), {}).get("rps"),
                               agg.get((s, c, REFERENCE), {}).get("rps"))
                         for c in conns)
            cr = geomean(ratio(agg.get((s, c, name), {}).get("cpu_us_per_req"),
                               agg.get((s, c, REFERENCE), {}).get(
                                   "cpu_us_per_req")) for c in conns)
            txt = f"{name} {fmt_ratio(rr)} req/s {fmt_ratio(cr)} CPU/req"
        if errs:
            txt += f" ⚠ {errs} errors"
        parts.append(txt)
    if not parts:
        return f"{s:7} no data (see the problems in latest.md)"
    where = f"c={conns[0]}" if len(conns) == 1 else \
        f"geo-mean over c={','.join(map(str, conns))}"
    return f"{s:7} " + " | ".join(parts) + f"   ({where})"


# ---- chart -------------------------------------------------------------------

COLORS = {"nginx": "#009639", "haproxy": "#1f6fb2", "gateway": "#d9480f"}


def chart(data, agg, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta = data["meta"]
    load_scen = [s for s in meta["scenarios"] if not SCENARIOS[s].idle]
    idle = "idle" in meta["scenarios"] and data["idle"]
    cols = len(load_scen) + (1 if idle else 0)
    if not cols:
        return False
    fig, axes = plt.subplots(2, cols, figsize=(3.6 * cols + 1, 7.5),
                             squeeze=False)
    names = meta["contenders_run"]
    for i, s in enumerate(load_scen):
        _bars(axes[0][i], agg, s, meta["conns"], names, "rps", 1e-3,
              f"{s}: req/s (thousands)", direct=True)
        _bars(axes[1][i], agg, s, meta["conns"], names, "cpu_us_per_req", 1,
              f"{s}: proxy CPU µs/request")
    if idle:
        recs = {r["contender"]: r for r in data["idle"]}
        shown = [n for n in names if n in recs]
        for row, (key, title) in enumerate([
                ("kib_per_conn", "idle: KiB per connection"),
                ("rss_after", "idle: RSS MiB holding connections")]):
            ax = axes[row][cols - 1]
            vals = [recs[n].get(key) if key != "rss_after"
                    else recs[n]["after"]["rss_kib"] / 1024 for n in shown]
            bars = ax.bar(shown, [v or 0 for v in vals],
                          color=[COLORS.get(n, "grey") for n in shown])
            for b, n in zip(bars, shown):
                if recs[n]["error_count"]:
                    b.set_hatch("xx")
            ax.set_title(title, fontsize=9)
            ax.tick_params(labelsize=8)
    fig.suptitle(f"gateway vs nginx vs HAProxy, 1 core each "
                 f"({meta['generator']}, medians of {meta['rounds']}; "
                 f"hatched = errors; dashes = no-proxy ceiling)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _bars(ax, agg, s, conns, names, key, scale, title, direct=False):
    width = 0.8 / max(len(names), 1)
    for j, name in enumerate(names):
        xs, ys, lo, hi, hatch = [], [], [], [], []
        for k, c in enumerate(conns):
            a = agg.get((s, c, name))
            if not a or a.get(key) is None:
                continue
            xs.append(k + (j - (len(names) - 1) / 2) * width)
            ys.append(a[key] * scale)
            if key == "rps":
                lo.append((a["rps"] - a["rps_min"]) * scale)
                hi.append((a["rps_max"] - a["rps"]) * scale)
            hatch.append(bool(a.get("errors")))
        bars = ax.bar(xs, ys, width, label=name, color=COLORS.get(name, "grey"),
                      yerr=[lo, hi] if key == "rps" and xs else None,
                      capsize=2)
        for b, h in zip(bars, hatch):
            if h:
                b.set_hatch("xx")
    if direct:
        for k, c in enumerate(conns):
            d = agg.get((s, c, "direct"))
            if d and d.get("rps"):
                ax.hlines(d["rps"] * scale, k - 0.45, k + 0.45, colors="black",
                          linestyles="dashed", linewidth=1)
    ax.set_xticks(range(len(conns)))
    ax.set_xticklabels([f"c={c}" for c in conns], fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7)
