"""Starting and stopping the backend and the contenders, and finding the
gateway binary (building it first)."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time

from . import system

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(BENCH_DIR)
CONF_DIR = os.path.join(BENCH_DIR, "conf")


def render(template_path, out_path, variables):
    """Fill @NAME@ placeholders; a placeholder left unfilled is an error."""
    with open(template_path) as f:
        text = f.read()
    for key, value in variables.items():
        text = text.replace(f"@{key}@", str(value))
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        raise ValueError(f"{template_path}: no value for {', '.join(left)}")
    with open(out_path, "w") as f:
        f.write(text)


class Server:
    """One server process tree (nginx master + workers, haproxy, gateway),
    started in its own directory and process group, pinned with taskset."""

    def __init__(self, name, binary, template, argv, cpus, workdir, port):
        self.name = name
        self.binary = binary
        self.template = template
        self.argv_fn = argv          # (binary, workdir, conf_path) -> argv
        self.cpus = cpus
        self.dir = workdir
        self.port = port
        self.conf = os.path.join(workdir, os.path.basename(template)[:-3])
        self.log_path = os.path.join(workdir, "stdout-stderr.log")
        self.proc = None
        self.wire_bytes = None   # of the current scenario's response

    @property
    def argv(self):
        return system.taskset(self.cpus, self.argv_fn(self.binary, self.dir,
                                                      self.conf))

    def start(self, variables, timeout=10.0):
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        render(self.template, self.conf,
               dict(variables, TMPDIR=self.dir, PORT=self.port))
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=logf, stderr=logf,
                                     stdin=subprocess.DEVNULL, cwd=self.dir,
                                     start_new_session=True)
        logf.close()
        # Ready = answers a request (nginx listens before its workers exist).
        if not system.wait_until(lambda: self.answers() or not self.alive(),
                                 timeout, step=0.1) or not self.alive():
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(f"{self.name} did not start on port {self.port}"
                               f" (log {self.log_path}):\n{tail}")

    def answers(self, path="/small"):
        try:
            return request(self.port, "GET", path)[0] == 200
        except OSError:
            return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        """The whole tree: CPU time and RSS are summed over all of it."""
        return system.process_tree(self.proc.pid) if self.alive() else []

    def workers(self):
        """Processes that serve traffic: the children when there is a master
        (nginx), else the process itself (haproxy -db, a single-process
        gateway)."""
        if not self.alive():
            return []
        return system.children(self.proc.pid) or [self.proc.pid]

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()        # nginx: fast shutdown; haproxy: stop
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)   # leftover workers
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def log_tail(self, lines=15):
        out = []
        for path in [self.log_path] + sorted(
                os.path.join(self.dir, f) for f in os.listdir(self.dir)
                if f.endswith("error.log")):
            try:
                with open(path, errors="replace") as f:
                    out += [f"  {os.path.basename(path)}: {l.rstrip()}"
                            for l in f.readlines()[-lines:]]
            except OSError:
                pass
        return "\n".join(out)


def request(port, method, path, body=None, timeout=10):
    """One request on a fresh connection: (status, body length)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, len(resp.read())
    finally:
        conn.close()


def accepts(port):
    """The backend's count of accepted connections (stub_status), or None.
    The request for it opens one connection itself, counted already."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/_stub")
        text = conn.getresponse().read().decode()
        return int(text.splitlines()[2].split()[0])
    except (OSError, ValueError, IndexError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wire_bytes(port, scenario, timeout=10):
    """Size on the wire (status line + headers + body) of the response the
    load generator gets for scenario: the unit that turns the bytes it read
    into a count of responses, partial ones included."""
    head = f"{scenario.method} {scenario.path} HTTP/1.1\r\n" \
           f"Host: 127.0.0.1:{port}\r\n"
    if scenario.conn_close:
        head += "Connection: close\r\n"
    if scenario.body_size:
        head += f"Content-Length: {scenario.body_size}\r\n"
    req = (head + "\r\n").encode() + b"x" * scenario.body_size
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return None
            buf += chunk
        header, _, body = buf.partition(b"\r\n\r\n")
        length = None
        for line in header.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            return None
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                return None
            body += chunk
        return len(header) + 4 + length


# ---- the servers -----------------------------------------------------------

def _nginx_argv(binary, workdir, conf):
    return [binary, "-p", workdir, "-c", conf]


def _haproxy_argv(binary, workdir, conf):
    # -db: foreground, no master process: one process, the one that works.
    return [binary, "-f", conf, "-db"]


def backend(binary, cpus, workdir, port):
    return Server("backend", binary, os.path.join(CONF_DIR, "backend.conf.in"),
                  _nginx_argv, cpus, workdir, port)


def contender(name, binary, cpus, workdir, port, template=None):
    argv = _haproxy_argv if name == "haproxy" else _nginx_argv
    template = template or os.path.join(CONF_DIR, f"{name}.conf.in")
    return Server(name, binary, template, argv, cpus, workdir, port)


# ---- the gateway binary ----------------------------------------------------

def build_gateway(log_path):
    """meson setup (release) if there is no build dir yet, then ninja.
    Returns None on success, else a one-line reason."""
    build = os.path.join(REPO_DIR, "build")
    steps = []
    if not os.path.exists(os.path.join(build, "build.ninja")):
        steps.append(["meson", "setup", "build", "--buildtype=release"])
    steps.append(["ninja", "-C", "build"])
    with open(log_path, "w") as logf:
        for argv in steps:
            logf.write(f"$ {' '.join(argv)}\n")
            logf.flush()
            try:
                r = subprocess.run(argv, cwd=REPO_DIR, stdout=logf,
                                   stderr=subprocess.STDOUT, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as e:
                return f"`{' '.join(argv)}` could not run: {e}"
            if r.returncode != 0:
                return f"`{' '.join(argv)}` failed (exit {r.returncode}), " \
                       f"see {os.path.relpath(log_path, REPO_DIR)}"
    return None


def build_type():
    path = os.path.join(REPO_DIR, "build", "meson-info",
                        "intro-buildoptions.json")
    try:
        with open(path) as f:
            for opt in json.load(f):
                if opt.get("name") == "buildtype":
                    return opt.get("value")
    except (OSError, ValueError):
        pass
    return None


def find_gateway(build, log_path):
    """(binary, template, note): binary is None when the gateway is skipped.
    GATEWAY_BIN overrides build/gateway (any binary taking -p DIR -c CONF,
    e.g. /usr/sbin/nginx as a stand-in); GATEWAY_CONF overrides the config
    template (e.g. bench/conf/nginx.conf.in for an nginx stand-in)."""
    template = os.environ.get("GATEWAY_CONF") or None
    if template and not os.path.isfile(template):
        return None, None, f"GATEWAY_CONF={template} does not exist"
    override = os.environ.get("GATEWAY_BIN")
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override, template, "GATEWAY_BIN override, no build"
        return None, None, f"GATEWAY_BIN={override} is not an executable file"
    binary = os.path.join(REPO_DIR, "build", "gateway")
    note = "not rebuilt: --no-build"
    if build:
        t0 = time.monotonic()
        failure = build_gateway(log_path)
        if failure:
            # A stale binary from an earlier build would be measured as if it
            # were the current code: skip rather than mislead.
            return None, None, f"build failed: {failure}"
        note = f"built in {time.monotonic() - t0:.0f} s"
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        return None, None, "build/gateway does not exist (yet)"
    bt = build_type()
    if bt and bt != "release":
        note += f"; WARNING: build/ is configured with buildtype={bt}, " \
                "not release"
    return binary, template, note
