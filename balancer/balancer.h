/*
 * Where requests go: the upstream registry (upstream blocks and addresses
 * named by proxy_pass), the algorithms, passive health and the keepalive
 * pools. Everything mutable lives per worker (as nginx without `zone`): no
 * locks, and each worker balances and counts failures on its own.
 */
#ifndef GW_BALANCER_H
#define GW_BALANCER_H

#include <stddef.h>

#include "balancer-t.h"
#include "core/conf-t.h"
#include "core/cycle-t.h"
#include "core/module.h"

extern const gw_module_t gw_balancer_module;

/* The algorithms, one file each. */
extern const gw_balancer_ops_t gw_round_robin_ops; /* default: smooth weighted round-robin */
extern const gw_balancer_ops_t gw_least_conn_ops;  /* least_conn */
extern const gw_balancer_ops_t gw_ip_hash_ops;     /* ip_hash */
extern const gw_balancer_ops_t gw_random_ops;      /* random [two [least_conn]] */
extern const gw_balancer_ops_t gw_hash_ops;        /* hash KEY [consistent] */

/* ---- registry (upstream.c) ---- */

/* An upstream block by name, or NULL. */
gw_upstream_t *gw_upstream_find(gw_cycle_t *cy, const char *name);

/*
 * The upstream for proxy_pass to an address ("127.0.0.1:3001", "app:8080";
 * port 80 by default): resolved now, once, as nginx does. NULL with err
 * ("host not found in upstream ...", naming n's file:line).
 */
gw_upstream_t *gw_upstream_for_address(gw_cycle_t *cy, const char *hostport, const gw_conf_node_t *n,
                                       gw_conf_err_t *err);

/* Every upstream of the cycle (the HTTP layer compiles their hash keys). */
gw_upstream_t *const *gw_upstreams(gw_cycle_t *cy, uint32_t *n);

/* A worker's view of u, under the worker's configuration view wc (u must belong to wc's cycle). */
gw_upstream_rt_t *gw_upstream_rt(struct gw_wcycle *wc, const gw_upstream_t *u);

/* ---- picking (balancer.c) ---- */

/*
 * Choose a peer for a request: the algorithm among the primaries, then
 * round-robin among the backups when no primary is usable. The peer is
 * marked tried in ctx and counted active until gw_balancer_done. NULL: no
 * live upstreams (every peer down, failed, full or tried).
 */
gw_peer_t *gw_balancer_get(gw_upstream_rt_t *rt, gw_pick_ctx_t *ctx);

/* The request is done with p: successfully, or with a failure that counts towards max_fails. */
void gw_balancer_done(gw_upstream_rt_t *rt, const gw_peer_t *p, gw_peer_outcome_t outcome, uint64_t now);

static inline int gw_pick_tried(const gw_pick_ctx_t *ctx, uint32_t i)
{
    return (int)((ctx->tried[i / 64] >> (i % 64)) & 1);
}

/* Smooth weighted round-robin over usable peers [from, to): nginx's algorithm. */
gw_peer_t *gw_rr_pick_range(gw_upstream_rt_t *rt, gw_pick_ctx_t *ctx, uint32_t from, uint32_t to);

/* A uniform random 64-bit number from the upstream's per-worker generator. */
uint64_t gw_balancer_random(gw_upstream_rt_t *rt);

/* ---- passive health (health.c) ---- */

/* May p take this request: not down, not tried, under max_conns, not in a failure window. */
int gw_peer_usable(const gw_upstream_rt_t *rt, const gw_peer_t *p, const gw_pick_ctx_t *ctx);

/* Bookkeeping when p is picked / when its request ends. */
void gw_health_picked(gw_upstream_rt_t *rt, const gw_peer_t *p, uint64_t now);
void gw_health_done(gw_upstream_rt_t *rt, const gw_peer_t *p, gw_peer_outcome_t outcome, uint64_t now);

/* Every primary failed: forget the failures so the next request tries again (nginx). */
void gw_health_reset(gw_upstream_rt_t *rt);

/* ---- keepalive pools (pool.c) ---- */

/*
 * gw_pool_get returns an idle connection to `peer` (removed from the pool,
 * its ops/data still the pool's: the caller sets its own), or NULL.
 * gw_pool_put caches c (whose response completed cleanly) or closes it when
 * the pool is full or disabled.
 */
gw_conn_t *gw_pool_get(gw_worker_t *w, gw_upstream_rt_t *rt, const gw_peer_t *peer);
void gw_pool_put(gw_worker_t *w, gw_upstream_rt_t *rt, gw_conn_t *c, const gw_peer_t *peer);
void gw_pool_free(gw_worker_t *w, gw_pool_t *p);

#endif
