/*
 * Passive health, nginx's max_fails/fail_timeout: max_fails failures, each
 * less than fail_timeout after the previous one, make a peer unavailable for
 * fail_timeout; then it gets one trial request, and a success clears its
 * failures. `accessed` is the time of the last failure, `checked` the time
 * of the last failure or trial: a success after a trial (accessed < checked)
 * is what brings a peer back. Per worker, like everything here.
 */
#include "balancer.h"
#include "core/log.h"

int gw_peer_usable(const gw_upstream_rt_t *rt, const gw_peer_t *p, const gw_pick_ctx_t *ctx)
{
    const gw_peer_state_t *ps = &rt->ps[p->idx];

    if (p->down || gw_pick_tried(ctx, p->idx))
        return 0;
    if (p->max_conns && ps->active >= p->max_conns)
        return 0;
    /* A lone server is always tried: refusing it helps nobody (nginx). */
    if (rt->u->npeers == 1)
        return 1;
    if (p->max_fails && ps->fails >= p->max_fails && ctx->now - ps->checked <= p->fail_timeout)
        return 0;
    return 1;
}

void gw_health_picked(gw_upstream_rt_t *rt, const gw_peer_t *p, uint64_t now)
{
    gw_peer_state_t *ps = &rt->ps[p->idx];

    ps->active++;
    /* A failed peer past its window: this request is its trial, and it stays
     * out for another window unless the trial succeeds. */
    if (now - ps->checked > p->fail_timeout)
        ps->checked = now;
}

void gw_health_done(gw_upstream_rt_t *rt, const gw_peer_t *p, gw_peer_outcome_t outcome, uint64_t now)
{
    gw_peer_state_t *ps = &rt->ps[p->idx];

    if (ps->active)
        ps->active--;
    if (outcome == GW_PEER_OK) {
        if (ps->accessed < ps->checked)
            ps->fails = 0;
        return;
    }
    ps->fails++;
    ps->accessed = now;
    ps->checked = now;
    if (p->max_fails) {
        /* nginx: each failure costs weight/max_fails of effective weight; it climbs back per pick */
        ps->effective_weight -= p->weight / p->max_fails;
        if (ps->effective_weight < 0)
            ps->effective_weight = 0;
        if (ps->fails == p->max_fails)
            gw_log(GW_LOG_WARN, "upstream server temporarily disabled: \"%s\" in upstream \"%s\" for %llu ms",
                   p->name, rt->u->name, (unsigned long long)p->fail_timeout);
    }
}

void gw_health_reset(gw_upstream_rt_t *rt)
{
    for (uint32_t i = 0; i < rt->u->nprimary; i++)
        rt->ps[i].fails = 0;
}
