"""Fixtures for the integration tests: in-process backends, a gateway process
started from a config text, and the binary itself.

The binary is $GATEWAY_BIN, else build/gateway at the repository root. A
missing binary fails the tests (it is never a reason to skip them).

GATEWAY_TEST_AGAINST=nginx runs the same scenarios against /usr/sbin/nginx
(to check the tests themselves): the config text gets what nginx needs on top
(an `events {}` block, temp paths in the prefix, HTTP/1.1 to upstreams), and
tests marked gateway_only (where our contract deliberately differs from
nginx) are skipped.
"""

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))       # backend.py
sys.path.insert(0, str(HERE))                       # rawhttp.py

from backend import Backend  # noqa: E402
import rawhttp  # noqa: E402

AGAINST = os.environ.get("GATEWAY_TEST_AGAINST", "gateway")
if AGAINST not in ("gateway", "nginx"):
    raise SystemExit("GATEWAY_TEST_AGAINST must be 'gateway' or 'nginx', not %r" % AGAINST)
NGINX = AGAINST == "nginx"
NGINX_BIN = "/usr/sbin/nginx"
PROG = "nginx" if NGINX else "gateway"   # the name the binary prints before its messages

START_TIMEOUT = 5.0      # seconds for a started gateway to accept connections
STOP_TIMEOUT = 5.0       # seconds after SIGTERM before SIGKILL
TEST_TIMEOUT = int(os.environ.get("GATEWAY_TEST_TIMEOUT", "90"))  # hard limit per test


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "gateway_only(reason): the contract differs from nginx here; skipped when "
                   "GATEWAY_TEST_AGAINST=nginx")


def pytest_collection_modifyitems(config, items):
    if not NGINX:
        return
    for item in items:
        mark = item.get_closest_marker("gateway_only")
        if mark is not None:
            reason = mark.args[0] if mark.args else mark.kwargs.get("reason", "gateway only")
            item.add_marker(pytest.mark.skip(reason="nginx differs: " + reason))


@pytest.fixture(autouse=True)
def _hard_timeout():
    """No test may hang: every socket operation already has a timeout, this
    is the last line of defence (SIGALRM interrupts the main thread)."""
    def expired(signum, frame):
        raise TimeoutError("test exceeded %d s" % TEST_TIMEOUT)
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_TIMEOUT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _ephemeral_low():
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_handed_out = set()
_port_rng = random.Random()


def _bindable(port):
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False


def free_port():
    """A TCP port nothing uses right now on any address (so a wildcard listen can bind it too).

    Never the same port twice in a session: a port handed out is often bound only
    later (a gateway started after two ports were picked), so the kernel would
    happily pick it again meanwhile. And taken below the ephemeral range when
    there is room: a port from that range can become the source port of any
    outgoing connection (a client's, the gateway's to a backend) before the
    gateway binds it, and the gateway then fails with EADDRINUSE."""
    low = _ephemeral_low()
    if low > 11000:
        for _ in range(1000):
            port = _port_rng.randrange(10000, low)
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("0.0.0.0", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def port_accepts(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def gateway_bin():
    """Path of the binary under test."""
    if NGINX:
        return NGINX_BIN
    path = Path(os.environ.get("GATEWAY_BIN") or REPO_ROOT / "build" / "gateway")
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail("gateway binary not found at %s: build it (meson setup build && ninja -C build) "
                    "or point GATEWAY_BIN at it" % path, pytrace=False)
    return str(path)


def run_cli(binary, args, cwd=None, timeout=10, env=None):
    """Run the binary to completion (bounded): CompletedProcess with text
    stdout/stderr and .output = stdout + stderr."""
    if NGINX and "-e" not in args:
        # Debian's nginx logs to stderr by default, in the log format; with
        # another error log it prints "nginx: [emerg] ..." as a stock build does.
        args = ["-e", "/dev/null"] + list(args)
    res = subprocess.run([binary] + [str(a) for a in args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    res.stdout = res.stdout.decode("utf-8", "replace")
    res.stderr = res.stderr.decode("utf-8", "replace")
    res.output = res.stdout + res.stderr
    return res


@pytest.fixture
def cli(gateway_bin):
    """cli(*args, cwd=None, timeout=10) runs the binary to completion."""
    def run(*args, cwd=None, timeout=10):
        return run_cli(gateway_bin, args, cwd=cwd, timeout=timeout)
    return run


_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def fill_placeholders(text, mapping):
    """Replace {name} with mapping[name]; nginx's own braces are left alone
    (they are never written `{word}`)."""
    def sub(m):
        name = m.group(1)
        if name not in mapping:
            raise KeyError("config placeholder {%s} has no value" % name)
        value = mapping[name]
        return str(value() if callable(value) else value)
    return _PLACEHOLDER.sub(sub, text)


def nginxify(text, prefix, proxy_defaults=True):
    """What nginx needs on top of a gateway config, added without moving any
    line (so FILE:LINE in messages stays the same): `events {}` when there is
    none, temp paths in the prefix, HTTP/1.1 without Connection to upstreams
    (our defaults; proxy_defaults=False leaves nginx's own)."""
    main = ""
    if os.geteuid() == 0:
        main += "user root; "           # workers must write temp files in the (0700) prefix
    if not re.search(r"(?m)^\s*events\s*\{", text):
        main += "events {} "
    http = ((" access_log off; proxy_http_version 1.1; proxy_set_header Connection \"\";" if proxy_defaults
             else " access_log off;") +
            " client_body_temp_path %s/client_body_temp; proxy_temp_path %s/proxy_temp; " % (prefix, prefix))
    text = re.sub(r"(?m)^(\s*http\s*\{)", lambda m: m.group(1) + http, text, count=1)
    return main + text


def write_config(prefix, config, files=None, mapping=None, nginx_proxy_defaults=True):
    """Write gateway.conf (and `files`, name -> text) into prefix; returns the
    config path. Placeholders are filled from mapping."""
    prefix = Path(prefix)
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "logs").mkdir(exist_ok=True)
    mapping = dict(mapping or {})
    mapping.setdefault("prefix", str(prefix))
    for name, text in (files or {}).items():
        path = prefix / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fill_placeholders(text, mapping))
    conf = prefix / "gateway.conf"
    text = fill_placeholders(config, mapping)
    if NGINX:
        text = nginxify(text, prefix, nginx_proxy_defaults)
    conf.write_text(text)
    return conf


class Gateway:
    """A running gateway (or nginx) process serving one config."""

    def __init__(self, binary, prefix, config, backends=(), workers=None, args=(), files=None,
                 wait=True, nginx_proxy_defaults=True, env=None, **ports):
        self.binary = binary
        self.prefix = Path(prefix)
        self.port = ports.pop("port", None) or free_port()
        mapping = {"port": self.port, "dead": _lazy_free_port(), "prefix": str(self.prefix)}
        mapping.update({"b%d" % i: b.port for i, b in enumerate(backends)})
        mapping.update(ports)
        if config is None:      # quick mode: the command line is all there is
            self.prefix.mkdir(parents=True, exist_ok=True)
            self.conf = None
            self.argv = [binary]
        else:
            self.conf = write_config(self.prefix, config, files, mapping, nginx_proxy_defaults)
            self.argv = [binary, "-p", str(self.prefix), "-c", str(self.conf)]
        if workers is not None:
            self.argv += (["-g", "worker_processes %s;" % workers] if NGINX else ["--workers", str(workers)])
        self.argv += [fill_placeholders(str(a), mapping) for a in args]
        self._stderr_path = self.prefix / "stderr.log"
        self._stdout_path = self.prefix / "stdout.log"
        self.expect_exit = False     # set when the test itself ends the process
        # env: variables set on top of the tests' own environment (which may carry GW_IO_URING_DISABLE)
        environ = dict(os.environ, **env) if env else None
        with open(self._stdout_path, "wb") as out, open(self._stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, cwd=str(self.prefix), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, start_new_session=True, env=environ)
        if wait:
            self.wait_ready()

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        return self._stderr_path.read_text(errors="replace")

    def stdout(self):
        return self._stdout_path.read_text(errors="replace")

    def wait_ready(self, port=None, timeout=START_TIMEOUT):
        port = port or self.port
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("%s exited with %s before accepting on port %d; argv %s\n--- stderr:\n%s"
                            % (PROG, self.proc.returncode, port, self.argv, self.stderr()), pytrace=False)
            if port_accepts(port):
                return
            time.sleep(0.02)
        self.kill()
        pytest.fail("%s did not accept on port %d within %.0f s; argv %s\n--- stderr:\n%s"
                    % (PROG, port, timeout, self.argv, self.stderr()), pytrace=False)

    def signal(self, sig):
        """Send sig to the main process; the test now expects it may exit."""
        self.expect_exit = True
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """Wait for exit; returns the exit status, or None if still running."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        self.expect_exit = True
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)    # workers too
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT. Returns the exit status."""
        self.expect_exit = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(STOP_TIMEOUT) is None:
                self.kill()
        # Reap any worker left behind by a master that died.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.proc.returncode

    def cli(self, *args, timeout=10):
        """Run the binary with this instance's prefix and config plus args
        (e.g. "-s", "stop")."""
        return run_cli(self.binary, ["-p", str(self.prefix), "-c", str(self.conf)] + list(args),
                       cwd=str(self.prefix), timeout=timeout)

    def conn(self, timeout=rawhttp.DEFAULT_TIMEOUT):
        return rawhttp.Conn(self.port, timeout=timeout)

    def get(self, target, headers=(), timeout=rawhttp.DEFAULT_TIMEOUT):
        return rawhttp.get(self.port, target, headers, timeout=timeout)


class _lazy_free_port:
    """{dead}: a port with no listener, chosen only if the config uses it."""

    def __init__(self):
        self.port = None

    def __call__(self):
        if self.port is None:
            self.port = free_port()
        return self.port


# On the process's stderr, any of these means a crash even if the main process lived on
# (a worker that died, a sanitizer report).
_CRASH = re.compile(r"AddressSanitizer|LeakSanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer|runtime error:"
                    r"|SIGSEGV|SIGABRT|SIGBUS|Segmentation fault|exited on signal (6|7|11)\b")


@pytest.fixture
def gateway(gateway_bin, tmp_path):
    """gateway(config, backends=[...], workers=None, args=(), files={}, wait=True,
    nginx_proxy_defaults=True, env=None, **ports)
    starts the binary on `config` (placeholders: {port} the listen port,
    {b0} {b1} ... the backends' ports, {dead} a port nobody listens on,
    {prefix}, and any **ports) and waits until {port} accepts. With config
    None, the command line is the binary and `args` only (quick mode; the
    placeholders work in args too). nginx_proxy_defaults=False runs nginx
    without the proxy_http_version/Connection lines nginxify adds (to
    compare with nginx's own defaults). env={"NAME": "value"} adds
    variables to the process's environment (GW_RING_BUFFERS). Stopped with
    SIGTERM (then SIGKILL) after the test; a process that died on its own, or
    a crash or sanitizer report on its stderr, fails the test."""
    started = []

    def start(config, backends=(), **kw):
        gw = Gateway(gateway_bin, tmp_path / ("gw%d" % len(started)), config, backends, **kw)
        started.append(gw)
        return gw

    yield start

    problems = []
    for gw in started:
        died, expected = gw.proc.poll(), gw.expect_exit
        gw.stop()
        err = gw.stderr()
        if died is not None and not expected:
            problems.append("%s exited on its own with status %s during the test\n--- stderr:\n%s"
                            % (PROG, died, err[-20000:]))
        elif _CRASH.search(err):
            problems.append("crash report on %s's stderr:\n%s" % (PROG, err[-20000:]))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def backends():
    """backends(n) starts n in-process backends named b0, b1, ... on free
    ports (counters readable: .requests_seen, .connections_accepted).
    backends(names=["b1"], ports=[port]) starts them on given ports (a
    backend brought back where a stopped one was); other keywords
    (respond_as=, keepalive_idle=, close_after=) go to every Backend."""
    started = []

    def start(n=1, names=None, ports=None, **options):
        names = names or ["b%d" % (len(started) + i) for i in range(n)]
        ports = ports or [0] * len(names)
        new = [Backend(name=name, port=port, **options).start() for name, port in zip(names, ports)]
        started.extend(new)
        return new

    yield start
    for b in started:
        b.stop()
