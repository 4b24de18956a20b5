/*
 * Where requests go: the upstream registry (upstream blocks and addresses
 * named by proxy_pass), the algorithms, and the keepalive pools. Everything
 * mutable lives per worker (as nginx without `zone`): no locks, and each
 * worker balances on its own.
 */
#ifndef GW_BALANCER_H
#define GW_BALANCER_H

#include "balancer-t.h"
#include "core/conf-t.h"
#include "core/cycle-t.h"
#include "core/module.h"

extern const gw_module_t gw_balancer_module;
extern const gw_balancer_ops_t gw_round_robin_ops;

/* An upstream block by name, or NULL. */
gw_upstream_t *gw_upstream_find(gw_cycle_t *cy, const char *name);

/*
 * The upstream for proxy_pass to an address ("127.0.0.1:3001", "app:8080";
 * port 80 by default): resolved now, once, as nginx does. NULL with err
 * ("host not found in upstream ...", naming n's file:line).
 */
gw_upstream_t *gw_upstream_for_address(gw_cycle_t *cy, const char *hostport, const gw_conf_node_t *n,
                                       gw_conf_err_t *err);

/* This worker's view of u. */
gw_upstream_rt_t *gw_upstream_rt(gw_worker_t *w, const gw_upstream_t *u);

static inline gw_peer_t *gw_balancer_pick(gw_upstream_rt_t *rt, const gw_pick_ctx_t *ctx)
{
    return rt->u->ops->pick(rt->lb, rt->u, ctx);
}

/*
 * Keepalive pool. gw_pool_get returns an idle connection to `peer` (removed
 * from the pool, its ops/data still the pool's: the caller sets its own), or
 * NULL. gw_pool_put caches c (whose response completed cleanly) or closes it
 * when the pool is full or disabled.
 */
gw_conn_t *gw_pool_get(gw_worker_t *w, gw_upstream_rt_t *rt, const gw_peer_t *peer);
void gw_pool_put(gw_worker_t *w, gw_upstream_rt_t *rt, gw_conn_t *c, const gw_peer_t *peer);
void gw_pool_free(gw_worker_t *w, gw_pool_t *p);

#endif
