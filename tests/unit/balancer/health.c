/*
 * Tests for balancer/health.c (and the parts of balancer.c that use it):
 * nginx's passive health over an injected clock. max_fails failures take a
 * peer out for fail_timeout; then exactly one trial request; a good trial
 * brings it back, a bad one keeps it out another window; max_fails=0 never
 * takes a peer out; a lone server is always tried; backups only while no
 * primary is usable; when nothing is usable the failures are forgotten so
 * the next request tries again; max_conns.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/balancer/fixture.h"
#include "tests/unit/test.h"

#define T0 1000000 /* the clock the tests start at, ms */

/* How many of n requests at `now` (each done OK at once) go to peer k. */
static int count_to(gw_upstream_rt_t *rt, int n, uint64_t now, int k)
{
    int c = 0;

    for (int i = 0; i < n; i++)
        c += fx_request(rt, now, GW_PEER_OK) == k;
    return c;
}

/* A request picked at `now` that fails: index or -1. */
static int failing_request(gw_upstream_rt_t *rt, uint64_t now)
{
    return fx_request(rt, now, GW_PEER_FAILED);
}

/* max_fails=1: one failure and the peer is out for fail_timeout, to the millisecond. */
static void test_max_fails_1(void)
{
    gw_upstream_t *u = fx_upstream(&gw_round_robin_ops, 2, NULL);
    gw_upstream_rt_t rt;

    fx_rt_init(&rt, u, 1);
    CHECK_INT(failing_request(&rt, T0), 0);
    CHECK_INT(rt.ps[0].fails, 1);
    CHECK_INT(count_to(&rt, 10, T0, 0), 0);
    CHECK_INT(count_to(&rt, 10, T0 + 5000, 0), 0);
    CHECK_INT(count_to(&rt, 10, T0 + 10000, 0), 0); /* now - checked <= fail_timeout: still out */
    CHECK(count_to(&rt, 10, T0 + 10001, 0) > 0); /* the trial, then back (it succeeded) */
    CHECK_INT(rt.ps[0].fails, 0);
    CHECK_INT(count_to(&rt, 10, T0 + 10002, 0), 5);
    fx_rt_free(&rt);
    fx_free(u);
}

/* max_fails=3: two failures keep it in, the third (each within the window of the one before) takes it out. */
static void test_max_fails_3(void)
{
    gw_upstream_t *u = fx_new(&gw_round_robin_ops, 2, NULL);
    gw_upstream_rt_t rt;

    u->peers[0].max_fails = 3;
    fx_finish(u);
    fx_rt_init(&rt, u, 1);
    fx_fail(&rt, 0, 2, T0);
    CHECK_INT(rt.ps[0].fails, 2);
    CHECK(count_to(&rt, 20, T0 + 100, 0) > 0);
    fx_fail(&rt, 0, 1, T0 + 9000);
    CHECK_INT(count_to(&rt, 20, T0 + 9000, 0), 0);
    CHECK_INT(count_to(&rt, 20, T0 + 19000, 0), 0);
    CHECK_INT(rt.ps[0].fails, 3);
    CHECK(count_to(&rt, 20, T0 + 19001, 0) > 0); /* the trial, answered: back */
    CHECK_INT(rt.ps[0].fails, 0);
    fx_rt_free(&rt);
    fx_free(u);

    /*
     * Failures further apart than fail_timeout, with traffic in between, do
     * not add up (nginx: a request picked after the window and answered
     * clears the count).
     */
    u = fx_new(&gw_round_robin_ops, 2, NULL);
    u->peers[0].max_fails = 3;
    fx_finish(u);
    fx_rt_init(&rt, u, 1);
    for (int i = 0; i < 5; i++) {
        uint64_t t = T0 + (uint64_t)i * 20000;

        fx_fail(&rt, 0, 2, t);
        CHECK(count_to(&rt, 4, t + 15000, 0) > 0); /* picked after the window, answered OK */
        CHECK_INT(rt.ps[0].fails, 0);
    }
    fx_rt_free(&rt);
    fx_free(u);

    /* answered exactly fail_timeout after the failures: not past the window yet, so the count stays */
    u = fx_new(&gw_round_robin_ops, 2, NULL);
    u->peers[0].max_fails = 3;
    fx_finish(u);
    fx_rt_init(&rt, u, 1);
    fx_fail(&rt, 0, 2, T0);
    CHECK(count_to(&rt, 4, T0 + 10000, 0) > 0);
    CHECK_INT(rt.ps[0].fails, 2);
    fx_fail(&rt, 0, 1, T0 + 10000);
    CHECK_INT(count_to(&rt, 4, T0 + 10001, 0), 0);
    fx_rt_free(&rt);
    fx_free(u);
}

/* After the window exactly one trial: a second concurrent pick does not get the peer. */
static void test_one_trial(void)
{
    gw_upstream_t *u = fx_upstream(&gw_round_robin_ops, 3, NULL);
    gw_upstream_rt_t rt;
    int to_a = 0;

    fx_rt_init(&rt, u, 1);
    fx_fail(&rt, 0, 1, T0);
    /* 30 requests held at T0 + 10001: a gets one of them */
    for (int i = 0; i < 30; i++)
        to_a += fx_get(&rt, T0 + 10001) == 0;
    CHECK_INT(to_a, 1);
    CHECK_INT(rt.ps[0].active, 1);
    /* and still one later in the new window, while the trial is out */
    for (int i = 0; i < 30; i++)
        to_a += fx_get(&rt, T0 + 15000) == 0;
    CHECK_INT(to_a, 1);
    fx_rt_free(&rt);
    fx_free(u);
}

/* The trial succeeds: failures cleared, back in the rotation. */
static void test_trial_success(void)
{
    gw_upstream_t *u = fx_upstream(&gw_round_robin_ops, 2, NULL);
    gw_upstream_rt_t rt;
    gw_pick_ctx_t ctx;
    gw_peer_t *p = NULL;
    char seq[16];

    fx_rt_init(&rt, u, 1);
    fx_fail(&rt, 0, 1, T0);
    for (int i = 0; i < 10; i++) { /* requests until the trial goes to a */
        fx_ctx(&ctx, T0 + 10001);
        p = gw_balancer_get(&rt, &ctx);
        if (p == NULL || p->idx == 0)
            break;
        gw_balancer_done(&rt, p, GW_PEER_OK, T0 + 10001);
    }
    CHECK(p == &u->peers[0]);
    CHECK_INT(rt.ps[0].fails, 1);
    gw_balancer_done(&rt, &u->peers[0], GW_PEER_OK, T0 + 10050);
    CHECK_INT(rt.ps[0].fails, 0);
    fx_sequence(&rt, T0 + 10060, 6, seq);
    CHECK(strcmp(seq, "ababab") == 0 || strcmp(seq, "bababa") == 0);
    fx_rt_free(&rt);
    fx_free(u);
}

/* The trial fails: out for another fail_timeout from the trial's failure. */
static void test_trial_failure(void)
{
    gw_upstream_t *u = fx_upstream(&gw_round_robin_ops, 2, NULL);
    gw_upstream_rt_t rt;

    fx_rt_init(&rt, u, 1);
    fx_fail(&rt, 0, 1, T0);
    /* the trial (b may come first: a's effective weight is 0), answered with a failure at T0 + 10500 */
    {
        int got = -1;

        for (int i = 0; i < 5 && got != 0; i++) {
            gw_pick_ctx_t ctx;
            gw_peer_t *p;

            fx_ctx(&ctx, T0 + 10001);
            p = gw_balancer_get(&rt, &ctx);
            if (p == NULL)
                break;
            got = (int)p->idx;
            gw_balancer_done(&rt, p, got == 0 ? GW_PEER_FAILED : GW_PEER_OK, got == 0 ? T0 + 10500 : T0 + 10001);
        }
        CHECK_INT(got, 0);
    }
    CHECK_INT(rt.ps[0].fails, 2);
    CHECK_INT(count_to(&rt, 10, T0 + 20500, 0), 0);
    CHECK(count_to(&rt, 10, T0 + 20501, 0) > 0);
    fx_rt_free(&rt);
    fx_free(u);
}

/* max_fails=0: failures are counted, never acted on. */
static void test_max_fails_0(void)
{
    gw_upstream_t *u = fx_new(&gw_round_robin_ops, 2, NULL);
    gw_upstream_rt_t rt;
    char seq[16];

    u->peers[0].max_fails = 0;
    fx_finish(u);
    fx_rt_init(&rt, u, 1);
    fx_fail(&rt, 0, 100, T0);
    CHECK_INT(rt.ps[0].fails, 100);
    CHECK_INT(rt.ps[0].effective_weight, 1);
    CHECK_STR(fx_sequence(&rt, T0, 6, seq), "ababab");
    fx_rt_free(&rt);
    fx_free(u);
}

/* A lone server (no backups) is always tried, failed or not; down or full it is not. */
static void test_lone_server(void)
{
    gw_upstream_t *u = fx_upstream(&gw_round_robin_ops, 1, NULL);
    gw_upstream_rt_t rt;
    gw_pick_ctx_t ctx;

    fx_rt_init(&rt, u, 1);
    for (int i = 0; i < 5; i++)
        CHECK_INT(failing_request(&rt, T0 + (uint64_t)i), 0);
    CHECK_INT(fx_request(&rt, T0 + 10, GW_PEER_OK), 0);
    /* tried in this request: no second attempt */
    fx_ctx(&ctx, T0);
    CHECK(gw_balancer_get(&rt, &ctx) == &u->peers[0]);
    CHECK(gw_balancer_get(&rt, &ctx) == NULL);
    gw_balancer_done(&rt, &u->peers[0], GW_PEER_OK, T0);
    fx_rt_free(&rt);
    fx_free(u);

    /* with the other algorithms too */
    {
        const gw_balancer_ops_t *ops[] = {&gw_least_conn_ops, &gw_ip_hash_ops, &gw_random_ops, &gw_hash_ops};

        for (int a = 0; a < 4; a++) {
            u = fx_upstream(ops[a], 1, NULL);
            fx_rt_init(&rt, u, 1);
            fx_fail(&rt, 0, 3, T0);
            fx_ctx(&ctx, T0);
            ctx.key = "k";
            ctx.key_len = 1;
            CHECK(gw_balancer_get(&rt, &ctx) == &u->peers[0]);
            fx_rt_free(&rt);
            fx_free(u);
        }
    }

    u = fx_new(&gw_round_robin_ops, 1, NULL);
    u->peers[0].max_conns = 1;
    fx_finish(u);
    fx_rt_init(&rt, u, 1);
    CHECK_INT(fx_get(&rt, T0), 0);
    CHECK_INT(fx_get(&rt, T0), -1);
    u->peers[0].down = 1;
    rt.ps[0].active = 0;
    CHECK_INT(fx_get(&rt, T0), -1);
    fx_rt_free(&rt);
    fx_free(u);
}

/* Every primary failed, no backups: NULL, and the failures are forgotten, so the next request gets a primary. */
static void test_all_failed_reset(void)
{
    gw_upstream_t *u = fx_upstream(&gw_round_robin_ops, 3, NULL);
    gw_upstream_rt_t rt;

    fx_rt_init(&rt, u, 1);
    for (uint32_t k = 0; k < 3; k++)
        fx_fail(&rt, k, 1, T0);
    CHECK_INT(fx_get(&rt, T0 + 1), -1);
    for (uint32_t k = 0; k < 3; k++)
        CHECK_INT(rt.ps[k].fails, 0);
    CHECK(fx_request(&rt, T0 + 2, GW_PEER_OK) >= 0);
    fx_rt_free(&rt);
    fx_free(u);

    /* gw_health_reset itself, and through get when the backups are unusable too */
    u = fx_new(&gw_round_robin_ops, 3, NULL);
    u->peers[2].backup = 1;
    fx_finish(u);
    fx_rt_init(&rt, u, 1);
    for (uint32_t k = 0; k < 3; k++)
        rt.ps[k].fails = 7;
    gw_health_reset(&rt);
    CHECK_INT(rt.ps[0].fails, 0);
    CHECK_INT(rt.ps[1].fails, 0);
    for (uint32_t k = 0; k < 3; k++)
        fx_fail(&rt, k, 1, T0);
    CHECK_INT(fx_get(&rt, T0 + 1), -1);
    CHECK_INT(fx_request(&rt, T0 + 2, GW_PEER_OK) < 2, 1); /* a primary */
    fx_rt_free(&rt);
    fx_free(u);

    /* nothing usable because all were tried by this request: nothing to forget */
    u = fx_upstream(&gw_round_robin_ops, 2, NULL);
    fx_rt_init(&rt, u, 1);
    {
        gw_pick_ctx_t ctx;
        gw_peer_t *p = NULL;

        fx_ctx(&ctx, T0);
        for (int i = 0; i < 3 && (p = gw_balancer_get(&rt, &ctx)) != NULL; i++)
            gw_balancer_done(&rt, p, GW_PEER_FAILED, T0);
        CHECK(p == NULL);
        CHECK_INT(rt.ps[0].fails, 1);
        CHECK_INT(rt.ps[1].fails, 1);
    }
    fx_rt_free(&rt);
    fx_free(u);
}

/* Backups only while no primary is usable; primaries take over again when they recover. */
static void test_backups(void)
{
    gw_upstream_t *u = fx_new(&gw_round_robin_ops, 4, NULL);
    gw_upstream_rt_t rt;
    int to_backup = 0;

    u->peers[2].backup = u->peers[3].backup = 1;
    fx_finish(u);
    CHECK_INT(u->nprimary, 2);
    CHECK_INT(u->total_weight, 2);
    fx_rt_init(&rt, u, 1);
    for (int i = 0; i < 20; i++)
        to_backup += fx_request(&rt, T0, GW_PEER_OK) >= 2;
    CHECK_INT(to_backup, 0);
    /* one primary failed: the other takes everything */
    fx_fail(&rt, 0, 1, T0);
    CHECK_INT(count_to(&rt, 10, T0 + 1, 1), 10);
    /* both failed: the backups, in rotation */
    fx_fail(&rt, 1, 1, T0 + 2);
    CHECK_INT(count_to(&rt, 10, T0 + 3, 2), 5);
    CHECK_INT(count_to(&rt, 10, T0 + 3, 3), 5);
    /* after the windows: trials to the primaries (answered OK), then the primaries only */
    to_backup = 0;
    for (int i = 0; i < 20; i++)
        to_backup += fx_request(&rt, T0 + 10003, GW_PEER_OK) >= 2;
    CHECK_INT(to_backup, 0);
    CHECK_INT(rt.ps[0].fails, 0);
    CHECK_INT(rt.ps[1].fails, 0);
    to_backup = 0;
    for (int i = 0; i < 20; i++)
        to_backup += fx_request(&rt, T0 + 10004, GW_PEER_OK) >= 2;
    CHECK_INT(to_backup, 0);
    fx_rt_free(&rt);
    fx_free(u);

    /* retries: primaries first, then backups, each once, then NULL (a down backup never) */
    u = fx_new(&gw_least_conn_ops, 4, NULL);
    u->peers[2].backup = u->peers[3].backup = 1;
    u->peers[3].down = 1;
    fx_finish(u);
    fx_rt_init(&rt, u, 1);
    {
        gw_pick_ctx_t ctx;
        gw_peer_t *p[4];

        fx_ctx(&ctx, T0);
        for (int t = 0; t < 4; t++)
            p[t] = gw_balancer_get(&rt, &ctx);
        CHECK(p[0] && p[1] && p[0]->idx < 2 && p[1]->idx < 2 && p[0] != p[1]);
        CHECK(p[2] == &u->peers[2]);
        CHECK(p[3] == NULL);
    }
    fx_rt_free(&rt);
    fx_free(u);
}

/* max_conns: a full peer is skipped; NULL when every one is full; room again after done(). */
static void test_max_conns(void)
{
    gw_upstream_t *u = fx_new(&gw_round_robin_ops, 2, NULL);
    gw_upstream_rt_t rt;
    int to[2] = {0, 0}, k;

    u->peers[0].max_conns = 2;
    u->peers[1].max_conns = 1;
    fx_finish(u);
    fx_rt_init(&rt, u, 1);
    for (int i = 0; i < 3; i++) {
        k = fx_get(&rt, T0);
        CHECK(k >= 0);
        if (k >= 0)
            to[k]++;
    }
    CHECK_INT(to[0], 2);
    CHECK_INT(to[1], 1);
    CHECK_INT(fx_get(&rt, T0), -1);
    CHECK_INT(fx_get(&rt, T0), -1);
    gw_balancer_done(&rt, &u->peers[1], GW_PEER_OK, T0);
    CHECK_INT(fx_get(&rt, T0), 1);
    CHECK_INT(fx_get(&rt, T0), -1);
    gw_balancer_done(&rt, &u->peers[0], GW_PEER_OK, T0);
    CHECK_INT(fx_get(&rt, T0), 0);
    fx_rt_free(&rt);
    fx_free(u);

    /* every algorithm skips a full peer */
    {
        const gw_balancer_ops_t *ops[] = {&gw_least_conn_ops, &gw_ip_hash_ops, &gw_random_ops, &gw_hash_ops};
        static const uint8_t addr[4] = {10, 9, 8, 7};

        for (int a = 0; a < 4; a++) {
            int bad = 0;

            u = fx_new(ops[a], 3, NULL);
            u->peers[1].max_conns = 1;
            fx_finish(u);
            fx_rt_init(&rt, u, 1);
            rt.ps[1].active = 1;
            for (int i = 0; i < 50; i++) {
                gw_pick_ctx_t ctx;
                char key[8];
                gw_peer_t *p;

                fx_ctx(&ctx, T0);
                snprintf(key, sizeof(key), "k%d", i);
                ctx.key = key;
                ctx.key_len = (uint32_t)strlen(key);
                ctx.addr = addr;
                ctx.addr_len = 4;
                p = gw_balancer_get(&rt, &ctx);
                bad += p == NULL || p->idx == 1;
                if (p)
                    gw_balancer_done(&rt, p, GW_PEER_OK, T0);
            }
            CHECK_INT(bad, 0);
            fx_rt_free(&rt);
            fx_free(u);
        }
    }
}

int main(void)
{
    RUN(test_max_fails_1);
    RUN(test_max_fails_3);
    RUN(test_one_trial);
    RUN(test_trial_success);
    RUN(test_trial_failure);
    RUN(test_max_fails_0);
    RUN(test_lone_server);
    RUN(test_all_failed_reset);
    RUN(test_backups);
    RUN(test_max_conns);
    return gw_test_done();
}
