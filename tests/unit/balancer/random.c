/*
 * Tests for balancer/random.c: draws follow the weights (a fixed seed, a
 * chi-square bound and every share within 3% of its weight's), down and
 * tried peers are never drawn, a seed replays, and `two` steers new
 * requests away from a loaded peer where plain random does not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/balancer/fixture.h"
#include "tests/unit/test.h"

#define DRAWS 200000

/*
 * Spread of DRAWS requests over peers of weights w. Checks each share is
 * within 3% (relative) of w_i / total and Pearson's chi-square is under the
 * 0.1% critical value for n - 1 degrees of freedom.
 */
static void check_spread(uint32_t n, const uint32_t *w, int two, uint64_t seed)
{
    /* chi-square 0.999 quantiles for 1..7 degrees of freedom */
    static const double crit[] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32};
    gw_upstream_t *u = fx_new(&gw_random_ops, n, w);
    gw_upstream_rt_t rt;
    uint32_t count[8] = {0};
    double chi2 = 0;

    u->two = (uint8_t)two;
    fx_finish(u);
    fx_rt_init(&rt, u, seed);
    for (int i = 0; i < DRAWS; i++) {
        int k = fx_request(&rt, 0, GW_PEER_OK);

        if (k >= 0)
            count[k]++;
    }
    for (uint32_t i = 0; i < n; i++) {
        double want = (double)DRAWS * w[i] / (double)u->total_weight, d = count[i] - want;

        chi2 += d * d / want;
        CHECK(count[i] > want * 0.97 && count[i] < want * 1.03);
    }
    CHECK(chi2 < crit[n - 1]);
    if (!(chi2 < crit[n - 1]))
        fprintf(stderr, "  chi2 %.2f (n %u, two %d, seed %llu)\n", chi2, n, two, (unsigned long long)seed);
    fx_rt_free(&rt);
    fx_free(u);
}

static void test_spread_follows_weights(void)
{
    static const uint32_t w1234[] = {1, 2, 3, 4}, weq[] = {1, 1, 1, 1, 1, 1}, w91[] = {9, 1};

    check_spread(4, w1234, 0, 1);
    check_spread(4, w1234, 0, 0x9E3779B97F4A7C15ull);
    check_spread(6, weq, 0, 42);
    check_spread(2, w91, 0, 7);
    /* two, all idle: each request is done before the next, so still by weight */
    check_spread(6, weq, 1, 42);
}

static void test_down_and_tried(void)
{
    gw_upstream_t *u = fx_new(&gw_random_ops, 4, NULL);
    gw_upstream_rt_t rt;
    uint32_t count[4] = {0};
    int bad = 0;

    u->peers[1].down = 1;
    fx_finish(u);
    fx_rt_init(&rt, u, 3);
    for (int i = 0; i < 10000; i++) {
        int k = fx_request(&rt, 0, GW_PEER_OK);

        if (k >= 0)
            count[k]++;
    }
    CHECK_INT(count[1], 0);
    CHECK(count[0] > 3000 && count[2] > 3000 && count[3] > 3000);
    /* retries: three distinct peers, then NULL */
    for (int r = 0; r < 100; r++) {
        gw_pick_ctx_t ctx;
        gw_peer_t *p[4];

        fx_ctx(&ctx, 0);
        for (int t = 0; t < 4; t++)
            p[t] = gw_balancer_get(&rt, &ctx);
        bad += !p[0] || !p[1] || !p[2] || p[0] == p[1] || p[1] == p[2] || p[0] == p[2] || p[3] != NULL;
        for (int t = 0; t < 3; t++)
            if (p[t])
                gw_balancer_done(&rt, p[t], GW_PEER_OK, 0);
    }
    CHECK_INT(bad, 0);
    fx_rt_free(&rt);
    fx_free(u);
}

/* Per worker generator: the same seed replays the same draws, another seed does not. */
static void test_seed_replays(void)
{
    gw_upstream_t *u = fx_upstream(&gw_random_ops, 8, NULL);
    gw_upstream_rt_t a, b, c;
    int same_ab = 1, same_ac = 1;

    fx_rt_init(&a, u, 1234);
    fx_rt_init(&b, u, 1234);
    fx_rt_init(&c, u, 1235);
    for (int i = 0; i < 1000; i++) {
        int x = fx_request(&a, 0, GW_PEER_OK), y = fx_request(&b, 0, GW_PEER_OK), z = fx_request(&c, 0, GW_PEER_OK);

        same_ab &= x == y;
        same_ac &= x == z;
    }
    CHECK(same_ab);
    CHECK(!same_ac);
    fx_rt_free(&a);
    fx_rt_free(&b);
    fx_rt_free(&c);
    fx_free(u);
}

/*
 * Skew: peer 0 holds `held` requests (picked through the balancer, not done),
 * the others none. Of `draws` new requests (each done at once), how many go
 * to peer 0?
 */
static uint32_t skewed_share(uint32_t n, int two, uint32_t held, int draws, uint64_t seed)
{
    gw_upstream_t *u = fx_new(&gw_random_ops, n, NULL);
    gw_upstream_rt_t rt;
    uint32_t to0 = 0;

    u->two = (uint8_t)two;
    fx_finish(u);
    fx_rt_init(&rt, u, seed);
    for (uint32_t i = 0; i < held; i++) {
        gw_pick_ctx_t ctx;

        fx_ctx(&ctx, 0);
        for (uint32_t k = 1; k < n; k++) /* the others "tried": only peer 0 can take it */
            ctx.tried[k / 64] |= 1ull << (k % 64);
        CHECK(gw_balancer_get(&rt, &ctx) == &u->peers[0]);
    }
    CHECK_INT(rt.ps[0].active, held);
    for (int i = 0; i < draws; i++)
        to0 += fx_request(&rt, 0, GW_PEER_OK) == 0;
    fx_rt_free(&rt);
    fx_free(u);
    return to0;
}

static void test_two_avoids_loaded_peer(void)
{
    const int draws = 100000;
    static const uint32_t ns[] = {2, 4, 8};

    for (int i = 0; i < 3; i++) {
        uint32_t n = ns[i], plain = skewed_share(n, 0, 50, draws, 77), two = skewed_share(n, 1, 50, draws, 77);
        double want = (double)draws / n;

        fprintf(stderr, "  n=%u, peer 0 holding 50: random %u/%d (%.2f%%), random two %u/%d (%.2f%%)\n", n, plain,
                draws, 100.0 * plain / draws, two, draws, 100.0 * two / draws);
        CHECK(plain > want * 0.97 && plain < want * 1.03);
        CHECK(two < (uint32_t)(draws / 100));
    }
    /* two: the loaded one still wins when it is the only usable one */
    {
        gw_upstream_t *u = fx_new(&gw_random_ops, 2, NULL);
        gw_upstream_rt_t rt;

        u->two = 1;
        u->peers[1].down = 1;
        fx_finish(u);
        fx_rt_init(&rt, u, 5);
        rt.ps[0].active = 50;
        CHECK_INT(fx_request(&rt, 0, GW_PEER_OK), 0);
        fx_rt_free(&rt);
        fx_free(u);
    }
}

/* two compares active per weight: weights 3,1 with actives 3,1 tie (either may win); 4,1 sends to b. */
static void test_two_relative_to_weight(void)
{
    static const uint32_t w[] = {3, 1};
    gw_upstream_t *u = fx_new(&gw_random_ops, 2, w);
    gw_upstream_rt_t rt;
    uint32_t to_b = 0;

    u->two = 1;
    fx_finish(u);
    fx_rt_init(&rt, u, 9);
    rt.ps[0].active = 4;
    rt.ps[1].active = 1;
    for (int i = 0; i < 1000; i++)
        to_b += fx_request(&rt, 0, GW_PEER_OK) == 1;
    CHECK_INT(to_b, 1000); /* 4/3 > 1/1 */
    rt.ps[0].active = 2;
    to_b = 0;
    for (int i = 0; i < 1000; i++)
        to_b += fx_request(&rt, 0, GW_PEER_OK) == 1;
    CHECK_INT(to_b, 0); /* 2/3 < 1/1 */
    fx_rt_free(&rt);
    fx_free(u);
}

int main(void)
{
    RUN(test_spread_follows_weights);
    RUN(test_down_and_tried);
    RUN(test_seed_replays);
    RUN(test_two_avoids_loaded_peer);
    RUN(test_two_relative_to_weight);
    return gw_test_done();
}
