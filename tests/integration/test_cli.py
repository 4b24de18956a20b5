"""The command line: -t/-T config checks with nginx's wording, -V, -h, -g,
and what happens with no configuration at all."""

import re

import pytest

from conftest import PROG, free_port, write_config

GOOD = """
daemon off;
pid gateway.pid;
worker_processes auto;
error_log logs/error.log info;
events {
    worker_connections 1024;
}
http {
    client_max_body_size 64k;
    keepalive_timeout 10s;
    proxy_read_timeout 1m;
    proxy_connect_timeout 5s;
    upstream app {
        server 127.0.0.1:3001 weight=2;
        server 127.0.0.1:3002;
        keepalive 16;
    }
    include conf.d/*.conf;
    server {
        listen 127.0.0.1:{port};
        server_name example.test www.example.test;
        location / {
            proxy_pass http://app;
        }
        location /direct {
            proxy_read_timeout 30s;
            proxy_pass http://127.0.0.1:3003;
        }
    }
}
"""

INCLUDED_SERVER = """
server {
    listen 127.0.0.1:{port2};
    location / {
        proxy_pass http://app;
    }
}
"""


@pytest.fixture
def check(cli, tmp_path):
    """check(config, files={}) writes the config and runs `-t` on it:
    (result, path of gateway.conf)."""
    def run(config, files=None, extra_args=()):
        conf = write_config(tmp_path, config, files, {"port": free_port(), "port2": free_port()})
        res = cli("-p", str(tmp_path), "-c", conf, "-t", *extra_args)
        return res, conf
    return run


def test_t_accepts_a_good_config(check):
    res, conf = check(GOOD, files={"conf.d/extra.conf": INCLUDED_SERVER})

    assert res.returncode == 0, res.output
    assert "%s: the configuration file %s syntax is ok" % (PROG, conf) in res.stderr
    assert "%s: configuration file %s test is successful" % (PROG, conf) in res.stderr


def test_t_accepts_an_include_glob_that_matches_nothing(check):
    res, conf = check(GOOD)

    assert res.returncode == 0, res.output


HTTP_BLOCK = """
daemon off;
pid gateway.pid;
http {
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://127.0.0.1:3001;
        }
    }
}
"""

# name: (config, files, (file, line), what the message must say)
# `file` None means gateway.conf itself.
BAD_CONFIGS = {
    "unknown directive": (
        """
daemon off;
pid gateway.pid;
frobnicate on;
http {
}
""", None, (None, 4), 'unknown directive "frobnicate"'),

    "proxy_pass at http level": (
        """
daemon off;
pid gateway.pid;
http {
    proxy_pass http://127.0.0.1:3001;
}
""", None, (None, 5), '"proxy_pass" directive is not allowed here'),

    "worker_processes inside http": (
        """
daemon off;
pid gateway.pid;
http {
    worker_processes 2;
}
""", None, (None, 5), '"worker_processes" directive is not allowed here'),

    "too many arguments": (
        """
daemon off;
pid gateway.pid;
worker_processes 1 2;
""", None, (None, 4), 'invalid number of arguments in "worker_processes" directive'),

    "no argument": (
        """
daemon off;
pid gateway.pid;
http {
    client_max_body_size;
}
""", None, (None, 5), 'invalid number of arguments in "client_max_body_size" directive'),

    "missing semicolon before }": (
        """
daemon off;
pid gateway.pid;
http {
    keepalive_timeout 10s
}
""", None, (None, 6), 'unexpected "}"'),

    "missing semicolon at the end": (
        """
daemon off;
pid gateway.pid""", None, (None, 3), "unexpected end of file"),

    "unclosed brace": (
        """
daemon off;
pid gateway.pid;
http {
    server {
        listen 127.0.0.1:{port};
    }
""", None, (None, 8), 'unexpected end of file, expecting "}"'),

    "extra closing brace": (
        """
daemon off;
pid gateway.pid;
http {
}
}
""", None, (None, 6), 'unexpected "}"'),

    "bad size": (
        """
daemon off;
pid gateway.pid;
http {
    client_max_body_size 10x;
}
""", None, (None, 5), "client_max_body_size"),

    "bad time": (
        """
daemon off;
pid gateway.pid;
http {
    keepalive_timeout 10 parsecs;
}
""", None, (None, 5), "keepalive_timeout"),

    "unknown upstream host": (
        # An empty label: the name fails to resolve without asking any DNS server.
        """
daemon off;
pid gateway.pid;
http {
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://no-such-host..invalid;
        }
    }
}
""", None, (None, 8), "no-such-host..invalid"),

    "unknown host in an upstream block": (
        """
daemon off;
pid gateway.pid;
http {
    upstream app {
        server no-such-host..invalid:3001;
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://app;
        }
    }
}
""", None, (None, 6), "no-such-host..invalid"),

    "include of a missing file": (
        """
daemon off;
pid gateway.pid;
http {
    include missing.conf;
}
""", None, (None, 5), "missing.conf"),

    "error inside an included file": (
        """
daemon off;
pid gateway.pid;
http {
    include conf.d/*.conf;
}
""", {"conf.d/broken.conf": """# an included file

server {
    listen 127.0.0.1:{port};
    frobnicate on;
}
"""}, ("conf.d/broken.conf", 5), 'unknown directive "frobnicate"'),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_t_rejects_a_bad_config_naming_file_and_line(check, tmp_path, case):
    config, files, (where, line), message = BAD_CONFIGS[case]

    res, conf = check(config, files)

    path = conf if where is None else tmp_path / where
    assert res.returncode != 0, res.output
    emerg = [ln for ln in res.stderr.splitlines() if ln.startswith("%s: [emerg] " % PROG)]
    assert emerg, res.stderr
    assert message in emerg[0]
    assert emerg[0].endswith(" in %s:%d" % (path, line)), emerg[0]
    assert "%s: configuration file %s test failed" % (PROG, conf) in res.stderr


def test_g_adds_main_level_directives(check):
    res, conf = check(HTTP_BLOCK, extra_args=("-g", "worker_processes 2;"))

    assert res.returncode == 0, res.output


def test_g_errors_say_command_line(check):
    res, conf = check(HTTP_BLOCK, extra_args=("-g", "frobnicate on;"))

    assert res.returncode != 0
    assert '%s: [emerg] unknown directive "frobnicate" in command line' % PROG in res.stderr


def test_big_t_dumps_every_file_read(cli, tmp_path):
    files = {"conf.d/extra.conf": INCLUDED_SERVER}
    conf = write_config(tmp_path, GOOD, files, {"port": free_port(), "port2": free_port()})

    res = cli("-p", str(tmp_path), "-c", conf, "-T")

    assert res.returncode == 0, res.output
    assert "%s: configuration file %s test is successful" % (PROG, conf) in res.stderr
    dump = res.stdout if "# configuration file" in res.stdout else res.stderr   # nginx: stdout
    main_at = dump.index("# configuration file %s:\n" % conf)
    assert dump[main_at:].split(":\n", 1)[1].startswith(conf.read_text())
    included = tmp_path / "conf.d" / "extra.conf"
    inc_at = dump.index("# configuration file %s:\n" % included)
    assert dump[inc_at:].split(":\n", 1)[1].startswith(included.read_text())


@pytest.mark.gateway_only("the version banner is the gateway's own")
def test_big_v_names_version_and_libraries(cli):
    res = cli("-V")

    assert res.returncode == 0
    assert "gateway version: gateway/0.1.0" in res.output
    for lib in ("liburing", "wolfSSL", "llhttp", "jemalloc"):
        assert re.search(r"%s\D{0,20}\d+\.\d+" % lib, res.output, re.IGNORECASE), (lib, res.output)


def test_h_prints_usage(cli):
    res = cli("-h")

    assert res.returncode == 0
    for option in ("-c", "-p", "-t", "-s", "-g"):
        assert option in res.output


@pytest.mark.gateway_only("nginx falls back to its compiled-in config path")
def test_no_config_and_no_quick_mode_explains_how_to_start(cli, tmp_path):
    res = cli("-p", str(tmp_path), cwd=tmp_path)

    assert res.returncode != 0
    assert "-c" in res.output
    assert "--listen" in res.output


def test_unknown_option_is_an_error(cli):
    res = cli("--no-such-option")

    assert res.returncode != 0
    assert res.output
