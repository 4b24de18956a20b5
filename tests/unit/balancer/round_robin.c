/*
 * Tests for balancer/round_robin.c (and gw_rr_pick_range in balancer.c):
 * nginx's smooth weighted round-robin. Exact sequences (plain rotation,
 * nginx's "a a b a c a a" for 5,1,1), a reference model for other weights,
 * each peer picked `weight` times per cycle, the tried set on retries, down
 * peers, and effective_weight after failures (lowered by weight/max_fails
 * per failure, back up by one per pick).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/balancer/fixture.h"
#include "tests/unit/test.h"

/* The algorithm as nginx writes it (ngx_http_upstream_get_peer), over all peers, none failed. */
typedef struct model {
    uint32_t n;
    int64_t weight[16], cw[16], eff[16];
} model_t;

static void model_init(model_t *m, uint32_t n, const uint32_t *w)
{
    memset(m, 0, sizeof(*m));
    m->n = n;
    for (uint32_t i = 0; i < n; i++)
        m->weight[i] = m->eff[i] = w[i];
}

static int model_pick(model_t *m)
{
    int best = -1;
    int64_t total = 0;

    for (uint32_t i = 0; i < m->n; i++) {
        m->cw[i] += m->eff[i];
        total += m->eff[i];
        if (m->eff[i] < m->weight[i])
            m->eff[i]++;
        if (best < 0 || m->cw[i] > m->cw[best])
            best = (int)i;
    }
    m->cw[best] -= total;
    return best;
}

static void test_equal_weights_rotate(void)
{
    gw_upstream_t *u = fx_upstream(&gw_round_robin_ops, 3, NULL);
    gw_upstream_rt_t rt;
    char seq[32];

    fx_rt_init(&rt, u, 1);
    CHECK_STR(fx_sequence(&rt, 0, 12, seq), "abcabcabcabc");
    fx_rt_free(&rt);
    fx_free(u);
}

static void test_nginx_5_1_1(void)
{
    static const uint32_t w[] = {5, 1, 1};
    gw_upstream_t *u = fx_upstream(&gw_round_robin_ops, 3, w);
    gw_upstream_rt_t rt;
    char seq[32];

    fx_rt_init(&rt, u, 1);
    /* The example in nginx's commit introducing smooth weighted round-robin. */
    CHECK_STR(fx_sequence(&rt, 0, 7, seq), "aabacaa");
    CHECK_STR(fx_sequence(&rt, 0, 7, seq), "aabacaa");
    CHECK_STR(fx_sequence(&rt, 0, 14, seq), "aabacaaaabacaa");
    fx_rt_free(&rt);
    fx_free(u);
}

/* The picks of `rounds` cycles for weights w against the model, and `weight` picks of each peer per cycle. */
static void check_against_model(uint32_t n, const uint32_t *w, int rounds)
{
    gw_upstream_t *u = fx_upstream(&gw_round_robin_ops, n, w);
    gw_upstream_rt_t rt;
    model_t m;
    int mismatches = 0;

    fx_rt_init(&rt, u, 1);
    model_init(&m, n, w);
    for (int r = 0; r < rounds; r++) {
        uint32_t count[16] = {0};

        for (uint64_t k = 0; k < u->total_weight; k++) {
            int got = fx_request(&rt, 0, GW_PEER_OK), want = model_pick(&m);

            mismatches += got != want;
            if (got >= 0)
                count[got]++;
        }
        for (uint32_t i = 0; i < n; i++)
            CHECK_INT(count[i], w[i]);
    }
    CHECK_INT(mismatches, 0);
    fx_rt_free(&rt);
    fx_free(u);
}

static void test_weights_against_model(void)
{
    static const uint32_t w321[] = {3, 2, 1}, w12[] = {1, 2}, w4321[] = {4, 3, 2, 1}, w17[] = {1, 7, 1, 3, 10};
    char seq[32];
    gw_upstream_t *u;
    gw_upstream_rt_t rt;

    check_against_model(3, w321, 20);
    check_against_model(2, w12, 20);
    check_against_model(4, w4321, 20);
    check_against_model(5, w17, 20);
    /* and a random set of weights */
    {
        uint32_t w[12];

        srand(7);
        for (int i = 0; i < 12; i++)
            w[i] = 1 + (uint32_t)(rand() % 20);
        check_against_model(12, w, 10);
    }
    /* two literal sequences, worked out by hand from the algorithm */
    u = fx_upstream(&gw_round_robin_ops, 3, w321);
    fx_rt_init(&rt, u, 1);
    CHECK_STR(fx_sequence(&rt, 0, 12, seq), "abacbaabacba");
    fx_rt_free(&rt);
    fx_free(u);
    u = fx_upstream(&gw_round_robin_ops, 2, w12);
    fx_rt_init(&rt, u, 1);
    CHECK_STR(fx_sequence(&rt, 0, 6, seq), "babbab");
    fx_rt_free(&rt);
    fx_free(u);
}

/* Workers do not share state: each rt starts its own rotation. */
static void test_workers_independent(void)
{
    static const uint32_t w[] = {5, 1, 1};
    gw_upstream_t *u = fx_upstream(&gw_round_robin_ops, 3, w);
    gw_upstream_rt_t rt1, rt2;
    char seq[32];

    fx_rt_init(&rt1, u, 1);
    fx_rt_init(&rt2, u, 2);
    CHECK_STR(fx_sequence(&rt1, 0, 3, seq), "aab");
    CHECK_STR(fx_sequence(&rt2, 0, 7, seq), "aabacaa");
    CHECK_STR(fx_sequence(&rt1, 0, 4, seq), "acaa");
    fx_rt_free(&rt1);
    fx_rt_free(&rt2);
    fx_free(u);
}

/* One request's retries: each lands on a peer not yet tried; NULL when all were. */
static void test_tried_set(void)
{
    static const uint32_t w[] = {5, 1, 1};
    gw_upstream_t *u = fx_upstream(&gw_round_robin_ops, 3, w);
    gw_upstream_rt_t rt;
    gw_pick_ctx_t ctx;
    gw_peer_t *p[4];

    fx_rt_init(&rt, u, 1);
    for (int req = 0; req < 20; req++) {
        fx_ctx(&ctx, 0);
        for (int k = 0; k < 4; k++)
            p[k] = gw_balancer_get(&rt, &ctx);
        CHECK(p[0] && p[1] && p[2]);
        if (p[0] && p[1] && p[2]) {
            CHECK(p[0] != p[1] && p[1] != p[2] && p[0] != p[2]);
            CHECK(gw_pick_tried(&ctx, 0) && gw_pick_tried(&ctx, 1) && gw_pick_tried(&ctx, 2));
        }
        CHECK(p[3] == NULL);
        for (int k = 0; k < 3; k++)
            if (p[k])
                gw_balancer_done(&rt, p[k], GW_PEER_OK, 0);
    }
    for (uint32_t i = 0; i < 3; i++)
        CHECK_INT(rt.ps[i].active, 0);
    /* A tried peer, however heavy, is skipped on the retry: "a" then never "a" again in that request. */
    fx_ctx(&ctx, 0);
    ctx.tried[0] = 1; /* peer a tried */
    for (int k = 0; k < 2; k++) {
        gw_peer_t *q = gw_balancer_get(&rt, &ctx);

        CHECK(q != NULL && q->idx != 0);
    }
    CHECK(gw_balancer_get(&rt, &ctx) == NULL);
    fx_rt_free(&rt);
    fx_free(u);
}

/* A retry after a failure lands elsewhere even with max_fails=0 (no health involved). */
static void test_retry_after_failure(void)
{
    gw_upstream_t *u = fx_new(&gw_round_robin_ops, 2, NULL);
    gw_upstream_rt_t rt;
    gw_pick_ctx_t ctx;
    gw_peer_t *p, *q;

    u->peers[0].max_fails = u->peers[1].max_fails = 0;
    fx_finish(u);
    fx_rt_init(&rt, u, 1);
    for (int i = 0; i < 10; i++) {
        fx_ctx(&ctx, 0);
        p = gw_balancer_get(&rt, &ctx);
        CHECK(p != NULL);
        if (p == NULL)
            break;
        gw_balancer_done(&rt, p, GW_PEER_FAILED, 0);
        q = gw_balancer_get(&rt, &ctx);
        CHECK(q != NULL && q != p);
        if (q)
            gw_balancer_done(&rt, q, GW_PEER_OK, 0);
    }
    fx_rt_free(&rt);
    fx_free(u);
}

static void test_down_never_picked(void)
{
    static const uint32_t w[] = {1, 3, 1, 1};
    gw_upstream_t *u = fx_new(&gw_round_robin_ops, 4, w);
    gw_upstream_rt_t rt;
    char seq[64];

    u->peers[1].down = 1;
    fx_finish(u);
    CHECK_INT(u->total_weight, 6); /* down ones count (hash stability) */
    fx_rt_init(&rt, u, 1);
    fx_sequence(&rt, 0, 60, seq);
    CHECK(strchr(seq, 'b') == NULL);
    CHECK(strchr(seq, '-') == NULL);
    CHECK_STR(seq + 54, "acdacd");
    fx_rt_free(&rt);
    fx_free(u);

    /* all down: nothing */
    u = fx_new(&gw_round_robin_ops, 2, NULL);
    u->peers[0].down = u->peers[1].down = 1;
    fx_finish(u);
    fx_rt_init(&rt, u, 1);
    CHECK_INT(fx_get(&rt, 0), -1);
    CHECK_INT(rt.ps[0].active + rt.ps[1].active, 0);
    fx_rt_free(&rt);
    fx_free(u);
}

/*
 * nginx: a failure costs weight / max_fails of effective weight (not below
 * 0); every pick in which the peer takes part gives one back, up to weight.
 */
static void test_effective_weight(void)
{
    static const uint32_t w[] = {10, 10};
    gw_upstream_t *u = fx_new(&gw_round_robin_ops, 2, w);
    gw_upstream_rt_t rt;
    int picks_a = 0;

    u->peers[0].max_fails = 5; /* 10 / 5 = 2 per failure */
    u->peers[1].max_fails = 0; /* never marked: weight untouched */
    fx_finish(u);
    fx_rt_init(&rt, u, 1);
    fx_fail(&rt, 0, 3, 0);
    CHECK_INT(rt.ps[0].effective_weight, 4);
    CHECK_INT(rt.ps[0].fails, 3);
    fx_fail(&rt, 1, 3, 0);
    CHECK_INT(rt.ps[1].effective_weight, 10);
    /* Now a and b both usable (3 < 5 failures); each pick raises a by one. */
    for (int i = 0; i < 6; i++) {
        int k = fx_request(&rt, 0, GW_PEER_OK);

        picks_a += k == 0;
        CHECK_INT(rt.ps[0].effective_weight, 5 + i);
    }
    /* weights 4..9 against 10: a gets fewer than half of these picks */
    CHECK(picks_a < 3);
    for (int i = 0; i < 10; i++)
        fx_request(&rt, 0, GW_PEER_OK);
    CHECK_INT(rt.ps[0].effective_weight, 10); /* capped at weight */
    fx_rt_free(&rt);
    fx_free(u);

    /* weight 3, max_fails 2: 3/2 = 1 per failure (integer division, as nginx) */
    {
        static const uint32_t w3[] = {3, 1};

        u = fx_new(&gw_round_robin_ops, 2, w3);
        u->peers[0].max_fails = 2;
        fx_finish(u);
        fx_rt_init(&rt, u, 1);
        fx_fail(&rt, 0, 1, 0);
        CHECK_INT(rt.ps[0].effective_weight, 2);
        fx_rt_free(&rt);
        fx_free(u);
    }
    /* weight 1, max_fails 1: down to 0, never negative */
    u = fx_upstream(&gw_round_robin_ops, 2, NULL);
    fx_rt_init(&rt, u, 1);
    fx_fail(&rt, 0, 3, 0);
    CHECK_INT(rt.ps[0].effective_weight, 0);
    fx_rt_free(&rt);
    fx_free(u);
}

int main(void)
{
    RUN(test_equal_weights_rotate);
    RUN(test_nginx_5_1_1);
    RUN(test_weights_against_model);
    RUN(test_workers_independent);
    RUN(test_tried_set);
    RUN(test_retry_after_failure);
    RUN(test_down_never_picked);
    RUN(test_effective_weight);
    return gw_test_done();
}
