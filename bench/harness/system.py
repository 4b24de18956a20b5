"""Machine set-up and /proc readings: CPU pinning, fd limits, sysctls, ports,
process trees, CPU time and memory of a process tree."""
import os
import resource
import shutil
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
WANT_NOFILE = 65536


def log(msg=""):
    print(msg, flush=True)


# ---- pinning ---------------------------------------------------------------

def pin_self(cpus):
    """Keep this script (and every child that does not re-pin itself: perf,
    the idle-connection helper) off the proxy's core."""
    os.sched_setaffinity(0, set(cpus))


def taskset(cpus, argv):
    """argv prefixed with taskset: taskset execs the program, so the pid of
    the Popen is the program's own pid."""
    return ["taskset", "-c", ",".join(str(c) for c in cpus)] + list(argv)


# ---- limits and sysctls ----------------------------------------------------

def raise_nofile(want=WANT_NOFILE):
    """Raise RLIMIT_NOFILE for this process; children inherit it. Returns the
    limit obtained (the hard limit caps it without CAP_SYS_RESOURCE)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(hard, target)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


SYSCTL_MIN = {
    # Accept queues: 10k idle connections are opened in bursts and wrk opens
    # up to 1024 at once; a short queue turns into SYN retries (1 s stalls).
    "net/core/somaxconn": 65535,
    "net/ipv4/tcp_max_syn_backlog": 65535,
}


def raise_sysctls():
    """Raise (never lower) the sysctls above; returns {name: (old, new)}."""
    changes = {}
    for name, want in SYSCTL_MIN.items():
        path = "/proc/sys/" + name
        try:
            with open(path) as f:
                old = int(f.read().split()[0])
            if old < want:
                with open(path, "w") as f:
                    f.write(str(want))
            with open(path) as f:
                changes[name.replace("/", ".")] = (old, int(f.read().split()[0]))
        except OSError as e:
            changes[name.replace("/", ".")] = (None, f"unchanged ({e.strerror})")
    return changes


# ---- ports -----------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# ---- process trees ---------------------------------------------------------

def children(pid):
    """Direct children of pid (all its threads' children)."""
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids


def process_tree(pid):
    """pid and all its descendants (nginx: master + workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def ksoftirqd(cpus):
    """pids of the ksoftirqd/N threads of the given CPUs."""
    want = {f"ksoftirqd/{c}" for c in cpus}
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() in want:
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def cpu_seconds(pids):
    """utime + stime summed over pids, from /proc/PID/stat (fields 14, 15).
    These include every thread of the process, io_uring's io-wq and SQPOLL
    threads too (they belong to the process's thread group), and threads that
    already exited. Resolution is one clock tick (10 ms), i.e. well under 1%
    of a multi-second run."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return ticks / CLK_TCK


def own_cpu_seconds():
    """CPU time of this script and of its reaped children (wrk, h2load)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pids):
    """VmRSS summed over pids. For nginx (master + worker) pages shared since
    fork are counted in each process; deltas (idle test) are unaffected."""
    return sum(_status_kib(p, "VmRSS") for p in pids)


def pss_kib(pids):
    """Proportional set size summed over pids (shared pages split)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def fd_count(pids):
    n = 0
    for pid in pids:
        try:
            n += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            pass
    return n


def cpu_stat(cpus):
    """(busy, steal) seconds of the given CPUs from /proc/stat. busy is
    user+nice+system+irq+softirq: everything that ran there, any process."""
    busy = steal = 0
    with open("/proc/stat") as f:
        for line in f:
            name, *vals = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and \
                    int(name[3:]) in cpus:
                v = [int(x) for x in vals]
                busy += v[0] + v[1] + v[2] + v[5] + v[6]
                steal += v[7] if len(v) > 7 else 0
    return busy / CLK_TCK, steal / CLK_TCK


def busy_processes(seconds=1.0, min_share=0.05, exclude=()):
    """Processes (other than ours) that used more than min_share of a CPU
    over `seconds`: [(share, pid, command)], busiest first."""
    def snapshot():
        out = {}
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) not in exclude:
                t = cpu_seconds([int(d)])
                out[int(d)] = t
        return out
    a = snapshot()
    time.sleep(seconds)
    b = snapshot()
    found = []
    for pid, t in b.items():
        share = (t - a.get(pid, t)) / seconds
        if share >= min_share:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(
                        errors="replace").strip()[:100]
            except OSError:
                cmd = "?"
            found.append((round(share, 2), pid, cmd))
    return sorted(found, reverse=True)


def wait_until(pred, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


# ---- tools -----------------------------------------------------------------

def have(tool):
    return shutil.which(tool) is not None


def tool_version(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (r.stdout + r.stderr).strip().splitlines()
    return text[0] if text else None


def machine_info():
    info = {"kernel": os.uname().release, "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info
