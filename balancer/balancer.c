/*
 * Picking, common to every algorithm: primaries through the algorithm,
 * backups by round-robin when no primary is usable, and the accounting
 * health and least_conn rely on.
 */
#include "balancer.h"

gw_peer_t *gw_rr_pick_range(gw_upstream_rt_t *rt, gw_pick_ctx_t *ctx, uint32_t from, uint32_t to)
{
    const gw_upstream_t *u = rt->u;
    gw_peer_t *best = NULL;
    int64_t total = 0;

    for (uint32_t i = from; i < to; i++) {
        gw_peer_t *p = &u->peers[i];
        gw_peer_state_t *ps = &rt->ps[i];

        if (!gw_peer_usable(rt, p, ctx))
            continue;
        ps->current_weight += ps->effective_weight;
        total += ps->effective_weight;
        if (ps->effective_weight < (int64_t)p->weight)
            ps->effective_weight++;
        if (best == NULL || ps->current_weight > rt->ps[best->idx].current_weight)
            best = p;
    }
    if (best)
        rt->ps[best->idx].current_weight -= total;
    return best;
}

/* Mirror what a scrape shows of p (active requests, failure window) into its counters. */
static void publish(gw_upstream_rt_t *rt, const gw_peer_t *p)
{
    const gw_peer_state_t *ps = &rt->ps[p->idx];
    gw_peer_stats_t *st;

    if (rt->st == NULL)
        return;
    st = &rt->st[p->idx];
    gw_gauge_set(&st->active, ps->active);
    atomic_store_explicit(&st->fail_until,
                          p->max_fails && ps->fails >= p->max_fails ? ps->checked + p->fail_timeout : 0,
                          memory_order_relaxed);
}

gw_peer_t *gw_balancer_get(gw_upstream_rt_t *rt, gw_pick_ctx_t *ctx)
{
    const gw_upstream_t *u = rt->u;
    gw_peer_t *p = u->ops->pick(rt, ctx);

    if (p == NULL && u->npeers > u->nprimary)
        p = gw_rr_pick_range(rt, ctx, u->nprimary, u->npeers);
    if (p == NULL) {
        /* Nothing usable. If failures are why, forget them (nginx): this
         * request gets 502, the next one tries the peers again. */
        int all_tried = 1;

        for (uint32_t i = 0; i < u->nprimary; i++)
            all_tried &= gw_pick_tried(ctx, i);
        if (!all_tried) {
            gw_health_reset(rt);
            for (uint32_t i = 0; i < u->nprimary; i++)
                publish(rt, &u->peers[i]);
        }
        return NULL;
    }
    ctx->tried[p->idx / 64] |= 1ull << (p->idx % 64);
    gw_health_picked(rt, p, ctx->now);
    publish(rt, p);
    return p;
}

void gw_balancer_done(gw_upstream_rt_t *rt, const gw_peer_t *p, gw_peer_outcome_t outcome, uint64_t now)
{
    gw_health_done(rt, p, outcome, now);
    publish(rt, p);
}

uint64_t gw_balancer_random(gw_upstream_rt_t *rt)
{
    /* xorshift64*: fast, and per worker, so no shared state to contend on */
    uint64_t x = rt->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rt->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}
