/*
 * Smooth weighted round-robin, nginx's algorithm: every pick adds each
 * peer's weight to its current weight, takes the largest, and subtracts the
 * total from the winner. Weights 5,1,1 give a a b a c a a; equal weights give
 * plain rotation. State is per worker.
 */
#include <stdint.h>
#include <stdlib.h>

#include "balancer.h"

typedef struct rr_state {
    int64_t *current; /* per peer */
} rr_state_t;

static void *rr_worker_init(const gw_upstream_t *u)
{
    rr_state_t *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return NULL;
    st->current = calloc(u->npeers, sizeof(*st->current));
    if (st->current == NULL) {
        free(st);
        return NULL;
    }
    return st;
}

static void rr_worker_free(void *state)
{
    rr_state_t *st = state;

    free(st->current);
    free(st);
}

static int tried(const gw_pick_ctx_t *ctx, uint32_t i)
{
    return ctx && ctx->tried && (ctx->tried[i / 64] >> (i % 64)) & 1;
}

static gw_peer_t *rr_pick(void *state, const gw_upstream_t *u, const gw_pick_ctx_t *ctx)
{
    rr_state_t *st = state;
    int64_t total = 0;
    gw_peer_t *best = NULL;

    for (uint32_t i = 0; i < u->npeers; i++) {
        if (tried(ctx, i))
            continue;
        st->current[i] += u->peers[i].weight;
        total += u->peers[i].weight;
        if (best == NULL || st->current[i] > st->current[best->idx])
            best = &u->peers[i];
    }
    if (best)
        st->current[best->idx] -= total;
    return best;
}

const gw_balancer_ops_t gw_round_robin_ops = {
    .name = "round_robin",
    .worker_init = rr_worker_init,
    .worker_free = rr_worker_free,
    .pick = rr_pick,
};
