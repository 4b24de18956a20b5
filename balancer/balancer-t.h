/* Types of upstreams, peers and the balancing interface (see balancer.h). */
#ifndef GW_BALANCER_T_H
#define GW_BALANCER_T_H

#include <stdint.h>

#include "core/addr.h"
#include "core/conn-t.h"

typedef struct gw_peer {
    gw_addr_t addr;
    char name[96];   /* as written ("127.0.0.1:3001", "app:80"), for logs and $upstream_addr */
    uint32_t weight; /* weight=, default 1 */
    uint32_t idx;    /* position in the upstream's peers */
} gw_peer_t;

typedef struct gw_upstream gw_upstream_t;
typedef struct gw_balancer_ops gw_balancer_ops_t;

/* What a pick may use: peers already tried for this request are skipped. */
typedef struct gw_pick_ctx {
    const uint64_t *tried; /* bitmap over peer idx, or NULL */
} gw_pick_ctx_t;

/* An algorithm (STYLE.md 4): per-worker state, one pick per request. */
struct gw_balancer_ops {
    const char *name;
    void *(*worker_init)(const gw_upstream_t *u); /* NULL on allocation failure */
    void (*worker_free)(void *state);
    /* A peer not in ctx->tried, or NULL when none is left. */
    gw_peer_t *(*pick)(void *state, const gw_upstream_t *u, const gw_pick_ctx_t *ctx);
};

struct gw_upstream {
    char *name;         /* block name; for proxy_pass to an address, the address as written */
    gw_peer_t *peers;
    uint32_t npeers;
    uint32_t idx;       /* position in the registry = index of the per-worker state */
    uint32_t keepalive; /* idle connections cached per worker (keepalive N); 0 = close after each response */
    uint32_t keepalive_requests;
    uint64_t keepalive_timeout; /* ms */
    int implicit;       /* made from a proxy_pass address, not an upstream block */
    const gw_balancer_ops_t *ops;
    const char *file;
    uint32_t line;
};

/* A per-worker cache of idle upstream connections (keepalive N). */
typedef struct gw_pool {
    gw_conn_t **idle; /* most recently used last */
    uint32_t n, cap;
} gw_pool_t;

/* An upstream as one worker sees it. */
typedef struct gw_upstream_rt {
    const gw_upstream_t *u;
    void *lb; /* the algorithm's state */
    gw_pool_t pool;
} gw_upstream_rt_t;

#endif
