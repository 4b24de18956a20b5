"""Run Debian's nginx on a gateway test config, beside the gateway, so one
test can send the same requests to both and assert they agree.

    ng = start_nginx(tmp_path / "nginx", CONFIG, backends, port2=...)
    ... rawhttp.get(ng.port, ...) ...
    ng.stop()

The config text is the gateway's, with the same placeholders ({port} is a
port of nginx's own); conftest.nginxify adds what nginx needs on top.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import fill_placeholders, free_port, nginxify, port_accepts

NGINX_BIN = "/usr/sbin/nginx"


class Nginx:
    def __init__(self, prefix, config, backends=(), **ports):
        self.prefix = Path(prefix)
        (self.prefix / "logs").mkdir(parents=True, exist_ok=True)
        self.port = ports.pop("port", None) or free_port()
        mapping = {"port": self.port, "prefix": str(self.prefix)}
        mapping.update({"b%d" % i: b.port for i, b in enumerate(backends)})
        mapping.update(ports)
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(nginxify(fill_placeholders(config, mapping), self.prefix))
        self.stderr_path = self.prefix / "stderr.log"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [NGINX_BIN, "-p", str(self.prefix), "-c", str(self.conf), "-e", str(self.prefix / "error.log")],
                cwd=str(self.prefix), stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
        deadline = time.monotonic() + 30      # a bound for a loaded machine
        while not port_accepts(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("nginx did not start:\n" + self.stderr_path.read_text(errors="replace") +
                                   (self.prefix / "error.log").read_text(errors="replace")
                                   if (self.prefix / "error.log").exists() else "")
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(timeout=5)


def start_nginx(prefix, config, backends=(), **ports):
    """nginx serving `config` (daemon off and a pid file in the prefix are the config's business)."""
    return Nginx(prefix, config, backends, **ports)


def nginx_check(prefix, config, **ports):
    """`nginx -t` on config: (returncode, output with the prefix path as PREFIX)."""
    prefix = Path(prefix)
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    mapping = {"port": ports.pop("port", None) or free_port(), "prefix": str(prefix)}
    mapping.update(ports)
    conf = prefix / "nginx.conf"
    conf.write_text(nginxify(fill_placeholders(config, mapping), prefix))
    res = subprocess.run([NGINX_BIN, "-p", str(prefix), "-c", str(conf), "-e", "/dev/null", "-t"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    return res.returncode, res.stdout.decode("utf-8", "replace")
