/*
 * Tests for balancer/least_conn.c: with requests held (picked, not done) the
 * next one goes to the peer with the fewest active requests relative to its
 * weight; equal ones share by smooth weighted round-robin; done() lowers the
 * counts; unusable peers are skipped.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/balancer/fixture.h"
#include "tests/unit/test.h"

/* The smallest active/weight among usable (not down) primaries, as a fraction compared by cross-multiplying. */
static int is_least(const gw_upstream_rt_t *rt, int k)
{
    const gw_upstream_t *u = rt->u;

    for (uint32_t i = 0; i < u->nprimary; i++) {
        if (u->peers[i].down)
            continue;
        if ((uint64_t)rt->ps[i].active * u->peers[k].weight < (uint64_t)rt->ps[k].active * u->peers[i].weight)
            return 0;
    }
    return 1;
}

/* Equal weights, all idle: plain rotation, like round-robin. */
static void test_ties_rotate(void)
{
    gw_upstream_t *u = fx_upstream(&gw_least_conn_ops, 3, NULL);
    gw_upstream_rt_t rt;
    char seq[32];

    fx_rt_init(&rt, u, 1);
    CHECK_STR(fx_sequence(&rt, 0, 9, seq), "abcabcabc");
    /* b busy with one held request: a and c tie at 0 and alternate */
    rt.ps[1].active = 1;
    CHECK_STR(fx_sequence(&rt, 0, 6, seq), "acacac");
    rt.ps[1].active = 0;
    fx_rt_free(&rt);
    fx_free(u);
}

/* Held requests: every new one goes to a least loaded peer, so the load stays level. */
static void test_held_requests_spread(void)
{
    gw_upstream_t *u = fx_upstream(&gw_least_conn_ops, 4, NULL);
    gw_upstream_rt_t rt;
    int bad = 0;

    fx_rt_init(&rt, u, 1);
    for (int i = 0; i < 40; i++) {
        gw_pick_ctx_t ctx;
        gw_peer_t *p;

        fx_ctx(&ctx, 0);
        /* which peers are least loaded before this pick? */
        {
            int least[4];

            for (int k = 0; k < 4; k++)
                least[k] = is_least(&rt, k);
            p = gw_balancer_get(&rt, &ctx);
            CHECK(p != NULL);
            if (p == NULL)
                break;
            bad += !least[p->idx];
        }
    }
    CHECK_INT(bad, 0);
    for (int k = 0; k < 4; k++)
        CHECK_INT(rt.ps[k].active, 10);
    /* done() lowers the counts: release three on c, the next three go to c */
    for (int i = 0; i < 3; i++)
        gw_balancer_done(&rt, &u->peers[2], GW_PEER_OK, 0);
    CHECK_INT(rt.ps[2].active, 7);
    CHECK_INT(fx_get(&rt, 0), 2);
    CHECK_INT(fx_get(&rt, 0), 2);
    CHECK_INT(fx_get(&rt, 0), 2);
    CHECK_INT(rt.ps[2].active, 10);
    /* a failure counts as done too */
    gw_balancer_done(&rt, &u->peers[3], GW_PEER_FAILED, 0);
    CHECK_INT(rt.ps[3].active, 9);
    fx_rt_free(&rt);
    fx_free(u);
}

/*
 * Weights 2,1: active per weight decides, so held requests settle at 2:1.
 * With actives 2 and 1 the peers tie (2/2 == 1/1): smooth weighted
 * round-robin between them, "a b a" per cycle of 3 from a fresh state.
 */
static void test_weights(void)
{
    static const uint32_t w[] = {2, 1};
    gw_upstream_t *u = fx_upstream(&gw_least_conn_ops, 2, w);
    gw_upstream_rt_t rt;
    char seq[32];

    fx_rt_init(&rt, u, 1);
    {
        int bad = 0;

        for (int i = 0; i < 30; i++) {
            int l0 = is_least(&rt, 0), l1 = is_least(&rt, 1), k = fx_get(&rt, 0);

            bad += k == 0 ? !l0 : k == 1 ? !l1 : 1;
        }
        CHECK_INT(bad, 0);
    }
    CHECK_INT(rt.ps[0].active, 20);
    CHECK_INT(rt.ps[1].active, 10);
    /* actives 2 and 1 */
    rt.ps[0].active = 2;
    rt.ps[1].active = 1;
    rt.ps[0].current_weight = rt.ps[1].current_weight = 0;
    /* each request is done at once, so every pick sees the tie 2:1 */
    CHECK_STR(fx_sequence(&rt, 0, 9, seq), "abaabaaba");
    /* actives 2 and 2: b has more per weight (2/1 > 2/2): a, always */
    rt.ps[1].active = 2;
    CHECK_STR(fx_sequence(&rt, 0, 5, seq), "aaaaa");
    /* actives 4 and 1: a has more per weight (4/2 > 1/1): b */
    rt.ps[0].active = 4;
    rt.ps[1].active = 1;
    CHECK_STR(fx_sequence(&rt, 0, 5, seq), "bbbbb");
    fx_rt_free(&rt);
    fx_free(u);

    /* 3,1 held: 30 and 10, with each pick a least one */
    {
        static const uint32_t w31[] = {3, 1};
        int bad = 0;

        u = fx_upstream(&gw_least_conn_ops, 2, w31);
        fx_rt_init(&rt, u, 1);
        for (int i = 0; i < 40; i++) {
            int l0 = is_least(&rt, 0), l1 = is_least(&rt, 1), k = fx_get(&rt, 0);

            bad += k == 0 ? !l0 : k == 1 ? !l1 : 1;
        }
        CHECK_INT(bad, 0);
        CHECK_INT(rt.ps[0].active, 30);
        CHECK_INT(rt.ps[1].active, 10);
        fx_rt_free(&rt);
        fx_free(u);
    }
}

/* Down, tried, failed and full peers are not candidates, however idle. */
static void test_unusable_skipped(void)
{
    gw_upstream_t *u = fx_new(&gw_least_conn_ops, 3, NULL);
    gw_upstream_rt_t rt;
    gw_pick_ctx_t ctx;
    gw_peer_t *p;

    u->peers[0].down = 1;
    u->peers[2].max_conns = 1;
    fx_finish(u);
    fx_rt_init(&rt, u, 1);
    rt.ps[1].active = 5;
    /* c idle, a down: c */
    CHECK_INT(fx_get(&rt, 0), 2);
    /* c full now (max_conns 1): b, despite its 5 */
    CHECK_INT(fx_get(&rt, 0), 1);
    gw_balancer_done(&rt, &u->peers[2], GW_PEER_OK, 0);
    /* c tried in this request: b */
    fx_ctx(&ctx, 0);
    ctx.tried[0] = 1u << 2;
    p = gw_balancer_get(&rt, &ctx);
    CHECK(p == &u->peers[1]);
    /* c failed (max_fails 1): b */
    gw_balancer_done(&rt, &u->peers[1], GW_PEER_OK, 0);
    fx_fail(&rt, 2, 1, 100);
    CHECK_INT(fx_get(&rt, 200), 1);
    fx_rt_free(&rt);
    fx_free(u);
}

int main(void)
{
    RUN(test_ties_rotate);
    RUN(test_held_requests_spread);
    RUN(test_weights);
    RUN(test_unusable_skipped);
    return gw_test_done();
}
