/*
 * random [two [least_conn]]: a peer drawn at random in proportion to its
 * weight; with `two`, two different peers are drawn and the one with fewer
 * active requests relative to its weight wins (the power of two choices:
 * nearly least_conn's spread, without scanning, and without every worker
 * herding onto the same idle peer).
 */
#include "balancer.h"

/* A usable primary drawn by weight, skipping `not` (may be NULL). */
static gw_peer_t *draw(gw_upstream_rt_t *rt, gw_pick_ctx_t *ctx, const gw_peer_t *not)
{
    const gw_upstream_t *u = rt->u;
    uint64_t total = 0, x;

    for (uint32_t i = 0; i < u->nprimary; i++)
        if (&u->peers[i] != not && gw_peer_usable(rt, &u->peers[i], ctx))
            total += u->peers[i].weight;
    if (total == 0)
        return NULL;
    x = gw_balancer_random(rt) % total;
    for (uint32_t i = 0; i < u->nprimary; i++) {
        gw_peer_t *p = &u->peers[i];

        if (p == not || !gw_peer_usable(rt, p, ctx))
            continue;
        if (x < p->weight)
            return p;
        x -= p->weight;
    }
    return NULL; /* not reached */
}

static gw_peer_t *random_pick(gw_upstream_rt_t *rt, gw_pick_ctx_t *ctx)
{
    gw_peer_t *a = draw(rt, ctx, NULL), *b;

    if (a == NULL || !rt->u->two)
        return a;
    b = draw(rt, ctx, a);
    if (b == NULL)
        return a;
    /* fewer active per weight wins: active_b / w_b < active_a / w_a */
    if ((uint64_t)rt->ps[b->idx].active * a->weight < (uint64_t)rt->ps[a->idx].active * b->weight)
        return b;
    return a;
}

const gw_balancer_ops_t gw_random_ops = {
    .name = "random",
    .pick = random_pick,
};
