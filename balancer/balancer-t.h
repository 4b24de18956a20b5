/* Types of upstreams, peers and the balancing interface (see balancer.h). */
#ifndef GW_BALANCER_T_H
#define GW_BALANCER_T_H

#include <stdint.h>

#include "core/addr.h"
#include "core/conn-t.h"
#include "core/stats.h"

#define GW_MAX_PEERS 256 /* per upstream: the tried set is a 256-bit map */

/* A server of an upstream, as configured. Immutable once loaded. */
typedef struct gw_peer {
    gw_addr_t addr;
    char name[96];         /* for logs and $upstream_addr: the address ("127.0.0.1:3001") */
    char server[96];       /* the server directive's text ("app:80"); names resolving to several addresses share it */
    uint32_t weight;       /* weight=, default 1 */
    uint32_t max_fails;    /* max_fails=, default 1; 0 = never marked unavailable */
    uint64_t fail_timeout; /* fail_timeout=, ms, default 10 s */
    uint32_t max_conns;    /* max_conns=, 0 = unlimited */
    uint8_t backup;        /* only when every primary is unavailable */
    uint8_t down;          /* never */
    uint32_t idx;          /* position in the upstream's peers: primaries first, then backups */
} gw_peer_t;

/* A peer as one worker sees it: everything that changes per request. */
typedef struct gw_peer_state {
    uint32_t active;          /* requests in flight to it (least_conn, random two, max_conns) */
    uint32_t fails;           /* failures since it last worked */
    uint64_t accessed;        /* ms: last failure */
    uint64_t checked;         /* ms: last failure or trial request */
    int64_t current_weight;   /* smooth weighted round-robin */
    int64_t effective_weight; /* lowered by failures, climbs back by one per pick (nginx) */
} gw_peer_state_t;

typedef struct gw_upstream gw_upstream_t;
typedef struct gw_upstream_rt gw_upstream_rt_t;
typedef struct gw_balancer_ops gw_balancer_ops_t;

/*
 * One request's view of balancing, kept across its retries: which peers were
 * tried, and what the algorithm hashes on.
 */
typedef struct gw_pick_ctx {
    uint64_t tried[GW_MAX_PEERS / 64];
    uint64_t now;            /* ms, for failure windows */
    const uint8_t *addr;     /* client address bytes (ip_hash): 4 for IPv4, 16 for IPv6 */
    uint8_t addr_len;
    const char *key;         /* evaluated `hash` key */
    uint32_t key_len;
    uint32_t tries;          /* algorithm-private: unusable candidates so far (nginx's 20 limit) */
    uint32_t hash;           /* algorithm-private: running hash of this request */
    uint32_t rehash;         /* algorithm-private: candidates hashed so far (hash's "1KEY", "2KEY", ...) */
    uint8_t started;         /* algorithm-private: hash is initialised */
} gw_pick_ctx_t;

/* An algorithm (STYLE.md 4): one file each, behind this. */
struct gw_balancer_ops {
    const char *name;
    /* After the upstream's servers are known (config time): 0, or -1 with msg. Optional. */
    int (*init)(gw_upstream_t *u, char *msg, size_t size);
    void (*free)(gw_upstream_t *u);
    /* A usable primary peer not yet tried, or NULL. Backups are the caller's business. */
    gw_peer_t *(*pick)(gw_upstream_rt_t *rt, gw_pick_ctx_t *ctx);
};

struct gw_upstream {
    char *name;           /* block name; for proxy_pass to an address, the address as written */
    gw_peer_t *peers;     /* primaries [0, nprimary), backups [nprimary, npeers) */
    uint32_t npeers;
    uint32_t nprimary;
    uint64_t total_weight; /* of the primaries, down ones included (hash stability) */
    uint32_t idx;          /* position in the registry = index of the per-worker state */
    uint32_t keepalive;    /* idle connections cached per worker (keepalive N); 0 = close after each response */
    uint32_t keepalive_requests;
    uint64_t keepalive_timeout; /* ms */
    int implicit;          /* made from a proxy_pass address, not an upstream block */
    const gw_balancer_ops_t *ops;
    uint8_t two;           /* random two */
    uint8_t consistent;    /* hash ... consistent */
    char *hash_key;        /* hash KEY, as written (compiled by the HTTP layer) */
    void *hash_key_cv;     /* ... and compiled, owned by the HTTP layer */
    void *lb_conf;         /* the algorithm's config-time data (the consistent-hash ring) */
    const char *file;
    uint32_t line;
};

/* A per-worker cache of idle upstream connections (keepalive N). */
typedef struct gw_pool {
    gw_conn_t **idle; /* most recently used last */
    uint32_t n, cap;
} gw_pool_t;

/*
 * A peer's counters in one worker, for the scrape (http/metrics.c): written
 * only by that worker, read by whichever worker serves the scrape.
 */
typedef struct gw_peer_stats {
    gw_counter_t by_class[GW_STATUS_CLASSES]; /* attempts by response status class */
    gw_counter_t failures;                    /* attempts that failed (error, timeout, invalid header) */
    gw_counter_t retries;                     /* attempts passed on to another peer */
    gw_gauge_t active;                        /* requests in flight to it */
    gw_gauge_t idle;                          /* keepalive connections idle in the pool */
    _Atomic uint64_t fail_until;              /* ms (CLOCK_MONOTONIC): unavailable until then */
    gw_hist_t connect;                        /* connect time (new connections) */
    gw_hist_t header;                         /* time to the response head */
} gw_peer_stats_t;

/* An upstream as one worker sees it. */
struct gw_upstream_rt {
    const gw_upstream_t *u;
    gw_peer_state_t *ps; /* one per peer */
    gw_peer_stats_t *st; /* one per peer, or NULL (no metrics: unit tests) */
    gw_pool_t pool;
    uint64_t rng;        /* random, random two */
};

/* What a request reports back about the peer it used. */
typedef enum gw_peer_outcome {
    GW_PEER_OK = 0,
    GW_PEER_FAILED, /* counts towards max_fails */
} gw_peer_outcome_t;

#endif
