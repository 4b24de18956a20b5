"""Round-robin over an upstream group: exact with one worker, even with two."""

from collections import Counter

import pytest

TWO_BACKENDS = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    upstream app {
        server 127.0.0.1:{b0};
        server 127.0.0.1:{b1};
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://app;
        }
    }
}
"""

THREE_BACKENDS = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    upstream app {
        server 127.0.0.1:{b0};
        server 127.0.0.1:{b1};
        server 127.0.0.1:{b2};
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://app;
        }
    }
}
"""

WEIGHTED = """
daemon off;
pid gateway.pid;
worker_processes 1;
events { worker_connections 1024; }
http {
    upstream app {
        server 127.0.0.1:{b0} weight=3;
        server 127.0.0.1:{b1};
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://app;
        }
    }
}
"""

# No worker_processes: the test passes --workers 2.
TWO_BACKENDS_ANY_WORKERS = """
daemon off;
pid gateway.pid;
events { worker_connections 1024; }
http {
    upstream app {
        server 127.0.0.1:{b0};
        server 127.0.0.1:{b1};
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://app;
        }
    }
}
"""


def who_answers(gw, n):
    """X-Backend of n requests, each on a new client connection."""
    answers = []
    for _ in range(n):
        r = gw.get("/")
        assert r.status == 200
        answers.append(r.header("X-Backend"))
    return answers


def test_two_backends_alternate_exactly(backends, gateway):
    bs = backends(2)
    gw = gateway(TWO_BACKENDS, bs)

    seq = who_answers(gw, 10)

    first, second = seq[0], seq[1]
    assert {first, second} == {"b0", "b1"}
    assert seq == [first, second] * 5


def test_three_backends_take_turns_exactly(backends, gateway):
    bs = backends(3)
    gw = gateway(THREE_BACKENDS, bs)

    seq = who_answers(gw, 12)

    assert set(seq[:3]) == {"b0", "b1", "b2"}
    assert seq == seq[:3] * 4


def test_weights_set_the_share(backends, gateway):
    bs = backends(2)
    gw = gateway(WEIGHTED, bs)

    counts = Counter(who_answers(gw, 20))       # five whole rounds of 3 + 1

    assert counts == {"b0": 15, "b1": 5}


def test_two_workers_spread_many_connections_evenly(backends, gateway):
    bs = backends(2)
    gw = gateway(TWO_BACKENDS_ANY_WORKERS, bs, workers=2)

    counts = Counter(who_answers(gw, 60))

    assert 24 <= counts["b0"] <= 36, counts
    assert 24 <= counts["b1"] <= 36, counts
    assert bs[0].requests_seen + bs[1].requests_seen == 60


@pytest.mark.gateway_only("quick mode is the gateway's own command line")
def test_quick_mode_round_robins_over_the_upstreams(backends, gateway):
    bs = backends(2)
    gw = gateway(None, bs, args=["--listen", "127.0.0.1:{port}",
                                 "--upstream", "127.0.0.1:{b0}", "--upstream", "127.0.0.1:{b1}"])

    counts = Counter(who_answers(gw, 20))

    # However many workers quick mode starts, each one alternates.
    assert 6 <= counts["b0"] <= 14, counts
    assert 6 <= counts["b1"] <= 14, counts
