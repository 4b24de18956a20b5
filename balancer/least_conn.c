/*
 * least_conn, nginx's: the usable peer with the fewest active requests
 * relative to its weight (active_a / weight_a < active_b / weight_b, compared
 * by cross-multiplying); several equal ones share by smooth weighted
 * round-robin. "Active" is per worker: each worker balances what it carries.
 */
#include "balancer.h"

static gw_peer_t *lc_pick(gw_upstream_rt_t *rt, gw_pick_ctx_t *ctx)
{
    const gw_upstream_t *u = rt->u;
    gw_peer_t *best = NULL, *p;
    int many = 0;
    int64_t total = 0;

    for (uint32_t i = 0; i < u->nprimary; i++) {
        p = &u->peers[i];
        if (!gw_peer_usable(rt, p, ctx))
            continue;
        if (best == NULL ||
            (uint64_t)rt->ps[i].active * best->weight < (uint64_t)rt->ps[best->idx].active * p->weight) {
            best = p;
            many = 0;
        } else if ((uint64_t)rt->ps[i].active * best->weight == (uint64_t)rt->ps[best->idx].active * p->weight) {
            many = 1;
        }
    }
    if (best == NULL || !many)
        return best;
    /* A tie: smooth weighted round-robin among the tied peers only. */
    {
        gw_peer_t *tied = best;
        uint32_t ba = rt->ps[tied->idx].active, bw = tied->weight;

        best = NULL;
        for (uint32_t i = tied->idx; i < u->nprimary; i++) {
            gw_peer_state_t *ps = &rt->ps[i];

            p = &u->peers[i];
            if (!gw_peer_usable(rt, p, ctx) || (uint64_t)ps->active * bw != (uint64_t)ba * p->weight)
                continue;
            ps->current_weight += ps->effective_weight;
            total += ps->effective_weight;
            if (ps->effective_weight < (int64_t)p->weight)
                ps->effective_weight++;
            if (best == NULL || ps->current_weight > rt->ps[best->idx].current_weight)
                best = p;
        }
        rt->ps[best->idx].current_weight -= total;
    }
    return best;
}

const gw_balancer_ops_t gw_least_conn_ops = {
    .name = "least_conn",
    .pick = lc_pick,
};
