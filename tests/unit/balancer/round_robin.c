/*
 * Tests for balancer/round_robin.c: nginx's smooth weighted round-robin.
 * Exact sequences (equal weights rotate; 5,1,1 gives a a b a c a a), each
 * peer chosen `weight` times per cycle, and the tried set: a retry never
 * lands on a peer already tried, and NULL when every peer was.
 */
#include <stdlib.h>
#include <string.h>

#include "balancer/balancer.h"
#include "tests/unit/test.h"

#define MAXP 130

static gw_peer_t peers[MAXP];
static gw_upstream_t ups;

static gw_upstream_t *make(const uint32_t *weights, uint32_t n)
{
    memset(peers, 0, sizeof(peers));
    memset(&ups, 0, sizeof(ups));
    for (uint32_t i = 0; i < n; i++) {
        peers[i].weight = weights[i];
        peers[i].idx = i;
        snprintf(peers[i].name, sizeof(peers[i].name), "%c", i < 26 ? 'a' + i : 'A' + (i - 26) % 26);
    }
    ups.name = "test";
    ups.peers = peers;
    ups.npeers = n;
    ups.ops = &gw_round_robin_ops;
    return &ups;
}

/* n picks as a string of peer names ('-' for NULL). */
static const char *sequence(void *st, const gw_upstream_t *u, const gw_pick_ctx_t *ctx, int n)
{
    static char out[512];
    int i;

    for (i = 0; i < n && i < (int)sizeof(out) - 1; i++) {
        gw_peer_t *p = gw_round_robin_ops.pick(st, u, ctx);

        out[i] = p ? p->name[0] : '-';
    }
    out[i] = '\0';
    return out;
}

static void test_ops(void)
{
    CHECK_STR(gw_round_robin_ops.name, "round_robin");
    CHECK(gw_round_robin_ops.worker_init != NULL);
    CHECK(gw_round_robin_ops.worker_free != NULL);
    CHECK(gw_round_robin_ops.pick != NULL);
}

static void test_equal_weights(void)
{
    static const uint32_t w[] = {1, 1, 1};
    gw_upstream_t *u = make(w, 3);
    void *st = gw_round_robin_ops.worker_init(u);

    CHECK(st != NULL);
    CHECK_STR(sequence(st, u, NULL, 12), "abcabcabcabc");
    gw_round_robin_ops.worker_free(st);

    /* equal but not 1 */
    {
        static const uint32_t w3[] = {3, 3, 3, 3};

        u = make(w3, 4);
        st = gw_round_robin_ops.worker_init(u);
        CHECK_STR(sequence(st, u, NULL, 12), "abcdabcdabcd");
        gw_round_robin_ops.worker_free(st);
    }
    /* one peer */
    {
        static const uint32_t w1[] = {1};

        u = make(w1, 1);
        st = gw_round_robin_ops.worker_init(u);
        CHECK_STR(sequence(st, u, NULL, 5), "aaaaa");
        gw_round_robin_ops.worker_free(st);
    }
    /* a context without a tried set is the same as none */
    {
        gw_pick_ctx_t ctx = {.tried = NULL};

        u = make(w, 3);
        st = gw_round_robin_ops.worker_init(u);
        CHECK_STR(sequence(st, u, &ctx, 6), "abcabc");
        gw_round_robin_ops.worker_free(st);
    }
}

static void test_nginx_weights(void)
{
    static const uint32_t w[] = {5, 1, 1};
    gw_upstream_t *u = make(w, 3);
    void *st = gw_round_robin_ops.worker_init(u);

    /* nginx's smooth weighted round-robin: a a b a c a a, then again */
    CHECK_STR(sequence(st, u, NULL, 7), "aabacaa");
    CHECK_STR(sequence(st, u, NULL, 21), "aabacaaaabacaaaabacaa");
    gw_round_robin_ops.worker_free(st);

    /* through the inline helper the HTTP side uses */
    {
        gw_upstream_rt_t rt = {.u = u};

        rt.lb = gw_round_robin_ops.worker_init(u);
        CHECK(gw_balancer_pick(&rt, NULL) == &peers[0]);
        CHECK(gw_balancer_pick(&rt, NULL) == &peers[0]);
        CHECK(gw_balancer_pick(&rt, NULL) == &peers[1]);
        gw_round_robin_ops.worker_free(rt.lb);
    }
    /* 2,1 and 1,2 */
    {
        static const uint32_t w21[] = {2, 1}, w12[] = {1, 2};

        u = make(w21, 2);
        st = gw_round_robin_ops.worker_init(u);
        CHECK_STR(sequence(st, u, NULL, 6), "abaaba");
        gw_round_robin_ops.worker_free(st);
        u = make(w12, 2);
        st = gw_round_robin_ops.worker_init(u);
        CHECK_STR(sequence(st, u, NULL, 6), "babbab");
        gw_round_robin_ops.worker_free(st);
    }
}

/* Over any sum(weights) consecutive picks from the start, each peer comes `weight` times. */
static void test_shares(void)
{
    static const uint32_t sets[][6] = {
        {3, 2, 1, 0, 0, 0}, {1, 2, 3, 4, 0, 0}, {10, 1, 0, 0, 0, 0}, {7, 7, 1, 0, 0, 0}, {1, 1, 1, 1, 1, 100},
    };

    for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
        uint32_t n = 0, total = 0;
        gw_upstream_t *u;
        void *st;

        while (n < 6 && sets[s][n])
            total += sets[s][n++];
        u = make(sets[s], n);
        st = gw_round_robin_ops.worker_init(u);
        for (int cycle = 0; cycle < 3; cycle++) {
            uint32_t count[6] = {0};
            uint32_t run = 0, longest = 0, last = UINT32_MAX;

            for (uint32_t k = 0; k < total; k++) {
                gw_peer_t *p = gw_round_robin_ops.pick(st, u, NULL);

                CHECK(p != NULL);
                if (p == NULL)
                    break;
                count[p->idx]++;
                run = p->idx == last ? run + 1 : 1;
                last = p->idx;
                if (run > longest)
                    longest = run;
            }
            for (uint32_t i = 0; i < n; i++)
                CHECK_INT(count[i], sets[s][i]);
            /* smooth: with 10,1 the lone b falls in the middle of each cycle */
            if (s == 2)
                CHECK_INT(longest, 5);
            /* with 7,7,1 a and b alternate */
            if (s == 3)
                CHECK(longest <= 2);
        }
        gw_round_robin_ops.worker_free(st);
    }
}

static void set_bit(uint64_t *bits, uint32_t i)
{
    bits[i / 64] |= 1ull << (i % 64);
}

static void test_tried(void)
{
    static const uint32_t w[] = {1, 1, 1};
    uint64_t tried[3] = {0};
    gw_pick_ctx_t ctx = {.tried = tried};
    gw_upstream_t *u = make(w, 3);
    void *st = gw_round_robin_ops.worker_init(u);

    /* a tried: only b and c */
    set_bit(tried, 0);
    CHECK_STR(sequence(st, u, &ctx, 6), "bcbcbc");
    /* a and c tried: only b */
    set_bit(tried, 2);
    CHECK_STR(sequence(st, u, &ctx, 3), "bbb");
    /* all tried: nothing */
    set_bit(tried, 1);
    CHECK(gw_round_robin_ops.pick(st, u, &ctx) == NULL);
    CHECK(gw_round_robin_ops.pick(st, u, &ctx) == NULL);
    /* a request that tried nothing still gets everyone */
    memset(tried, 0, sizeof(tried));
    {
        const char *s = sequence(st, u, &ctx, 3);

        CHECK(strchr(s, 'a') && strchr(s, 'b') && strchr(s, 'c'));
    }
    gw_round_robin_ops.worker_free(st);

    /* a retry after a pick, weights 5,1,1: the first pick a, the retry without a */
    {
        static const uint32_t w511[] = {5, 1, 1};
        gw_peer_t *p;

        u = make(w511, 3);
        st = gw_round_robin_ops.worker_init(u);
        memset(tried, 0, sizeof(tried));
        p = gw_round_robin_ops.pick(st, u, &ctx);
        CHECK(p == &peers[0]);
        set_bit(tried, p->idx);
        p = gw_round_robin_ops.pick(st, u, &ctx);
        CHECK(p == &peers[1]);
        set_bit(tried, p->idx);
        p = gw_round_robin_ops.pick(st, u, &ctx);
        CHECK(p == &peers[2]);
        set_bit(tried, p->idx);
        CHECK(gw_round_robin_ops.pick(st, u, &ctx) == NULL);
        gw_round_robin_ops.worker_free(st);
    }

    /* more than 64 peers: the bitmap's later words count */
    {
        static uint32_t wmany[MAXP];
        uint64_t big[(MAXP + 63) / 64] = {0};
        gw_pick_ctx_t bctx = {.tried = big};
        uint32_t n = 130;

        for (uint32_t i = 0; i < n; i++)
            wmany[i] = 1 + i % 3;
        u = make(wmany, n);
        st = gw_round_robin_ops.worker_init(u);
        for (uint32_t i = 0; i < n; i++)
            if (i != 100)
                set_bit(big, i);
        for (int k = 0; k < 5; k++)
            CHECK(gw_round_robin_ops.pick(st, u, &bctx) == &peers[100]);
        /* tried one by one as a retry loop would: each peer once, then NULL */
        memset(big, 0, sizeof(big));
        for (uint32_t k = 0; k < n; k++) {
            gw_peer_t *p = gw_round_robin_ops.pick(st, u, &bctx);

            CHECK(p != NULL);
            if (p == NULL)
                break;
            CHECK(!((big[p->idx / 64] >> (p->idx % 64)) & 1));
            set_bit(big, p->idx);
        }
        CHECK(gw_round_robin_ops.pick(st, u, &bctx) == NULL);
        gw_round_robin_ops.worker_free(st);
    }
}

static void test_no_peers(void)
{
    gw_upstream_t *u = make(NULL, 0);
    void *st = gw_round_robin_ops.worker_init(u);

    CHECK(st != NULL);
    CHECK(gw_round_robin_ops.pick(st, u, NULL) == NULL);
    gw_round_robin_ops.worker_free(st);
}

/* Two workers balance independently (state per worker). */
static void test_independent_state(void)
{
    static const uint32_t w[] = {1, 1, 1};
    gw_upstream_t *u = make(w, 3);
    void *s1 = gw_round_robin_ops.worker_init(u), *s2 = gw_round_robin_ops.worker_init(u);

    CHECK(s1 != s2);
    CHECK_STR(sequence(s1, u, NULL, 2), "ab");
    CHECK_STR(sequence(s2, u, NULL, 1), "a");
    CHECK_STR(sequence(s1, u, NULL, 1), "c");
    CHECK_STR(sequence(s2, u, NULL, 2), "bc");
    gw_round_robin_ops.worker_free(s1);
    gw_round_robin_ops.worker_free(s2);
}

int main(void)
{
    RUN(test_ops);
    RUN(test_equal_weights);
    RUN(test_nginx_weights);
    RUN(test_shares);
    RUN(test_tried);
    RUN(test_no_peers);
    RUN(test_independent_state);
    return gw_test_done();
}
