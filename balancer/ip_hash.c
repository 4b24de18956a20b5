/*
 * ip_hash, nginx's scheme, so a client lands on the same server in every
 * worker and every gateway (or nginx) with the same server list: the first
 * three octets of an IPv4 address (a /24 shares a server) or all sixteen of
 * an IPv6 one, hashed as h = (h * 113 + byte) % 6271 from 89; the hash picks
 * by weight among all primaries (down ones included, so a server going down
 * only moves its own clients). An unusable pick rehashes, carrying the hash
 * on; after 21 unusable candidates round-robin decides.
 */
#include "balancer.h"

static gw_peer_t *iph_pick(gw_upstream_rt_t *rt, gw_pick_ctx_t *ctx)
{
    const gw_upstream_t *u = rt->u;
    uint32_t n = ctx->addr_len == 16 ? 16 : 3;

    if (ctx->addr == NULL || ctx->addr_len < 4 || u->nprimary == 1 || u->total_weight == 0)
        return gw_rr_pick_range(rt, ctx, 0, u->nprimary);
    if (!ctx->started) {
        ctx->hash = 89;
        ctx->started = 1;
    }
    /* nginx counts only unusable candidates, 21 of them at most per request (over all its retries) */
    while (ctx->tries <= 20) {
        uint64_t w;
        uint32_t i = 0;

        for (uint32_t k = 0; k < n; k++)
            ctx->hash = (ctx->hash * 113 + ctx->addr[k]) % 6271;
        w = ctx->hash % u->total_weight;
        while (w >= u->peers[i].weight) {
            w -= u->peers[i].weight;
            i++;
        }
        if (gw_peer_usable(rt, &u->peers[i], ctx))
            return &u->peers[i];
        ctx->tries++;
    }
    return gw_rr_pick_range(rt, ctx, 0, u->nprimary);
}

const gw_balancer_ops_t gw_ip_hash_ops = {
    .name = "ip_hash",
    .pick = iph_pick,
};
