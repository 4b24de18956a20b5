/*
 * Upstreams built by hand for the balancer tests, the way finish_upstream()
 * in balancer/upstream.c leaves them: peers with nginx's defaults (weight 1,
 * max_fails 1, fail_timeout 10 s), primaries first then backups, idx set,
 * total_weight the primaries' sum (down ones included), the algorithm's init
 * run. A gw_upstream_rt_t stands for one worker's view, as init_worker()
 * makes it. Time is whatever the test says it is (ctx.now, in ms).
 */
#ifndef GW_TEST_BALANCER_FIXTURE_H
#define GW_TEST_BALANCER_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer/balancer.h"

/*
 * An upstream of n peers using ops. weights may be NULL (all 1). Server
 * texts are "10.0.0.<i+1>:80". Adjust peers (backup, down, max_fails, ...)
 * and then call fx_finish().
 */
static inline gw_upstream_t *fx_new(const gw_balancer_ops_t *ops, uint32_t n, const uint32_t *weights)
{
    gw_upstream_t *u = calloc(1, sizeof(*u));

    u->name = "test";
    u->ops = ops;
    u->peers = calloc(n, sizeof(*u->peers));
    u->npeers = n;
    for (uint32_t i = 0; i < n; i++) {
        gw_peer_t *p = &u->peers[i];

        p->weight = weights ? weights[i] : 1;
        p->max_fails = 1;
        p->fail_timeout = 10000;
        p->idx = i;
        snprintf(p->server, sizeof(p->server), "10.0.0.%u:80", i + 1);
        snprintf(p->name, sizeof(p->name), "%s", p->server);
    }
    return u;
}

/* Count primaries (backups must come last), sum their weights, run the algorithm's init. 0 or -1. */
static inline int fx_finish(gw_upstream_t *u)
{
    char msg[128];

    u->nprimary = 0;
    u->total_weight = 0;
    for (uint32_t i = 0; i < u->npeers; i++) {
        u->peers[i].idx = i;
        if (!u->peers[i].backup) {
            u->nprimary++;
            u->total_weight += u->peers[i].weight;
        }
    }
    if (u->ops->init && u->ops->init(u, msg, sizeof(msg)) < 0) {
        fprintf(stderr, "init: %s\n", msg);
        return -1;
    }
    return 0;
}

/* fx_new + fx_finish for the common case. */
static inline gw_upstream_t *fx_upstream(const gw_balancer_ops_t *ops, uint32_t n, const uint32_t *weights)
{
    gw_upstream_t *u = fx_new(ops, n, weights);

    fx_finish(u);
    return u;
}

static inline void fx_free(gw_upstream_t *u)
{
    if (u->ops->free)
        u->ops->free(u);
    free(u->peers);
    free(u);
}

/* One worker's view of u. */
static inline void fx_rt_init(gw_upstream_rt_t *rt, const gw_upstream_t *u, uint64_t seed)
{
    memset(rt, 0, sizeof(*rt));
    rt->u = u;
    rt->ps = calloc(u->npeers, sizeof(*rt->ps));
    for (uint32_t i = 0; i < u->npeers; i++)
        rt->ps[i].effective_weight = u->peers[i].weight;
    rt->rng = seed ? seed : 1;
}

static inline void fx_rt_free(gw_upstream_rt_t *rt)
{
    free(rt->ps);
    rt->ps = NULL;
}

/* A fresh request at `now`. */
static inline void fx_ctx(gw_pick_ctx_t *ctx, uint64_t now)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->now = now;
}

/* Index of the peer a new request gets (held: no done), or -1. */
static inline int fx_get(gw_upstream_rt_t *rt, uint64_t now)
{
    gw_pick_ctx_t ctx;
    gw_peer_t *p;

    fx_ctx(&ctx, now);
    p = gw_balancer_get(rt, &ctx);
    return p ? (int)p->idx : -1;
}

/* A whole request at `now`: pick, then done with `outcome`. Index or -1. */
static inline int fx_request(gw_upstream_rt_t *rt, uint64_t now, gw_peer_outcome_t outcome)
{
    gw_pick_ctx_t ctx;
    gw_peer_t *p;

    fx_ctx(&ctx, now);
    p = gw_balancer_get(rt, &ctx);
    if (p == NULL)
        return -1;
    gw_balancer_done(rt, p, outcome, now);
    return (int)p->idx;
}

/* n successful requests at `now`, their peers as letters ('a' + idx, '-' for NULL) into out (n + 1 bytes). */
static inline const char *fx_sequence(gw_upstream_rt_t *rt, uint64_t now, int n, char *out)
{
    for (int i = 0; i < n; i++) {
        int k = fx_request(rt, now, GW_PEER_OK);

        out[i] = k < 0 ? '-' : (char)('a' + k);
    }
    out[n] = '\0';
    return out;
}

/* Failed requests to peer k until it has `times` failures (done with FAILED without picking). */
static inline void fx_fail(gw_upstream_rt_t *rt, uint32_t k, int times, uint64_t now)
{
    for (int i = 0; i < times; i++) {
        rt->ps[k].active++; /* as if picked: done() takes it back */
        gw_balancer_done(rt, &rt->u->peers[k], GW_PEER_FAILED, now);
    }
}

#endif
