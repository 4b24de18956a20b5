/*
 * Smooth weighted round-robin, nginx's algorithm: every pick adds each
 * usable peer's (effective) weight to its current weight, takes the largest,
 * and subtracts the total from the winner. Weights 5,1,1 give a a b a c a a;
 * equal weights give plain rotation. State is per worker (gw_peer_state_t).
 */
#include "balancer.h"

static gw_peer_t *rr_pick(gw_upstream_rt_t *rt, gw_pick_ctx_t *ctx)
{
    return gw_rr_pick_range(rt, ctx, 0, rt->u->nprimary);
}

const gw_balancer_ops_t gw_round_robin_ops = {
    .name = "round_robin",
    .pick = rr_pick,
};
