/*
 * Tests for balancer/ip_hash.c against nginx's formula: the first three
 * octets of an IPv4 address or all sixteen of an IPv6 one, h = (h * 113 +
 * byte) % 6271 from 89, picked by weight over the total weight of the
 * primaries (down ones included). Stable across workers and across
 * re-created upstreams; a /24 shares a peer; a down or failed peer moves
 * only its own clients; retries carry the hash on; all tried gives NULL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/balancer/fixture.h"
#include "tests/unit/test.h"

#define NADDR 2000

/*
 * nginx's ngx_http_upstream_get_ip_hash_peer for one request (iphp->hash,
 * iphp->tries kept across its retries). usable[i]: peer i may take it (not
 * down, failed or tried). Returns the peer, or -1 where nginx hands over to
 * round-robin (more than 20 unusable candidates).
 */
typedef struct ref {
    uint32_t hash, tries;
} ref_t;

static void ref_init(ref_t *r)
{
    r->hash = 89;
    r->tries = 0;
}

static int ref_get(ref_t *r, const uint8_t *addr, uint8_t len, const gw_upstream_t *u, const int *usable)
{
    uint32_t n = len == 16 ? 16 : 3, hash = r->hash;

    if (r->tries > 20)
        return -1;
    for (;;) {
        uint64_t w;
        uint32_t i = 0;

        for (uint32_t k = 0; k < n; k++)
            hash = (hash * 113 + addr[k]) % 6271;
        w = hash % u->total_weight;
        while (w >= u->peers[i].weight)
            w -= u->peers[i++].weight;
        if (usable[i]) {
            r->hash = hash;
            return (int)i;
        }
        if (++r->tries > 20)
            return -1;
    }
}

/* The peer of a first attempt from addr when every peer is usable. */
static int ref_first(const uint8_t *addr, uint8_t len, const gw_upstream_t *u)
{
    int usable[GW_MAX_PEERS];
    ref_t r;

    for (uint32_t i = 0; i < GW_MAX_PEERS; i++)
        usable[i] = 1;
    ref_init(&r);
    return ref_get(&r, addr, len, u, usable);
}

/* A request from addr at `now`, done at once. */
static int pick_addr(gw_upstream_rt_t *rt, const uint8_t *addr, uint8_t len, uint64_t now)
{
    gw_pick_ctx_t ctx;
    gw_peer_t *p;

    fx_ctx(&ctx, now);
    ctx.addr = addr;
    ctx.addr_len = len;
    p = gw_balancer_get(rt, &ctx);
    if (p == NULL)
        return -1;
    gw_balancer_done(rt, p, GW_PEER_OK, now);
    return (int)p->idx;
}

/* A spread of client addresses, distinct /24s. */
static void make_addrs(uint8_t (*a)[4], int n, unsigned seed)
{
    srand(seed);
    for (int i = 0; i < n; i++) {
        a[i][0] = (uint8_t)(1 + rand() % 223);
        a[i][1] = (uint8_t)rand();
        a[i][2] = (uint8_t)rand();
        a[i][3] = (uint8_t)rand();
    }
}

/* Worked out by hand: 192.168.1.x: 89 -> (89*113+192)%6271 = 3978 -> 4441 -> 154; 154 % 3 = 1. */
static void test_by_hand(void)
{
    static const uint8_t a[] = {192, 168, 1, 10}, b[] = {10, 0, 0, 1};
    gw_upstream_t *u3 = fx_upstream(&gw_ip_hash_ops, 3, NULL), *u4 = fx_upstream(&gw_ip_hash_ops, 4, NULL);
    gw_upstream_rt_t rt3, rt4;

    fx_rt_init(&rt3, u3, 1);
    fx_rt_init(&rt4, u4, 1);
    CHECK_INT(ref_first(a, 4, u3), 1);
    CHECK_INT(pick_addr(&rt3, a, 4, 0), 1); /* 154 % 3 */
    CHECK_INT(pick_addr(&rt4, a, 4, 0), 2); /* 154 % 4 */
    /* 10.0.0.x: 89 -> 10067 % 6271 = 3796 -> 2500 -> 2565; % 3 = 0, % 4 = 1 */
    CHECK_INT(pick_addr(&rt3, b, 4, 0), 0);
    CHECK_INT(pick_addr(&rt4, b, 4, 0), 1);
    fx_rt_free(&rt3);
    fx_rt_free(&rt4);
    fx_free(u3);
    fx_free(u4);
}

/* Many addresses, several weight sets, against the reference. */
static void test_against_reference(void)
{
    static const uint32_t w[][5] = {{1, 1, 1, 1, 1}, {3, 1, 2, 1, 1}, {10, 1, 1, 5, 2}};
    static uint8_t a[NADDR][4];

    make_addrs(a, NADDR, 11);
    for (int s = 0; s < 3; s++) {
        gw_upstream_t *u = fx_upstream(&gw_ip_hash_ops, 5, w[s]);
        gw_upstream_rt_t rt;
        int mismatches = 0, count[5] = {0};

        fx_rt_init(&rt, u, 1);
        for (int i = 0; i < NADDR; i++) {
            int k = pick_addr(&rt, a[i], 4, 0);

            mismatches += k != ref_first(a[i], 4, u);
            if (k >= 0)
                count[k]++;
        }
        CHECK_INT(mismatches, 0);
        /* and by weight, roughly: the heaviest peer gets the most */
        for (int k = 0; k < 5; k++)
            if (w[s][k] == 10)
                CHECK(count[k] > NADDR / 2);
        fx_rt_free(&rt);
        fx_free(u);
    }
}

/* Same address, same peer: in every worker (whatever each has done before) and in a re-created upstream. */
static void test_stable(void)
{
    static uint8_t a[NADDR][4];
    static int first[NADDR];
    gw_upstream_t *u = fx_upstream(&gw_ip_hash_ops, 4, NULL), *u2;
    gw_upstream_rt_t rt1, rt2, rt3;
    int moved = 0;

    make_addrs(a, NADDR, 5);
    fx_rt_init(&rt1, u, 1);
    fx_rt_init(&rt2, u, 0xdeadbeef);
    for (int i = 0; i < 37; i++) /* rt2 has a history */
        pick_addr(&rt2, a[(i * 7) % NADDR], 4, 0);
    for (int i = 0; i < NADDR; i++) {
        first[i] = pick_addr(&rt1, a[i], 4, 0);
        moved += pick_addr(&rt2, a[NADDR - 1 - i], 4, 0) != ref_first(a[NADDR - 1 - i], 4, u);
    }
    CHECK_INT(moved, 0);
    /* again, in rt1 */
    moved = 0;
    for (int i = 0; i < NADDR; i++)
        moved += pick_addr(&rt1, a[i], 4, 0) != first[i];
    CHECK_INT(moved, 0);
    /* a new instance of the same upstream */
    u2 = fx_upstream(&gw_ip_hash_ops, 4, NULL);
    fx_rt_init(&rt3, u2, 99);
    moved = 0;
    for (int i = 0; i < NADDR; i++)
        moved += pick_addr(&rt3, a[i], 4, 0) != first[i];
    CHECK_INT(moved, 0);
    fx_rt_free(&rt1);
    fx_rt_free(&rt2);
    fx_rt_free(&rt3);
    fx_free(u);
    fx_free(u2);
}

/* IPv4: only the first three octets count; each of them does. */
static void test_ipv4_prefix(void)
{
    gw_upstream_t *u = fx_upstream(&gw_ip_hash_ops, 5, NULL);
    gw_upstream_rt_t rt;
    uint8_t a[4] = {192, 168, 1, 0};
    int k0, same = 1;

    fx_rt_init(&rt, u, 1);
    k0 = pick_addr(&rt, a, 4, 0);
    for (int x = 1; x < 256; x++) {
        a[3] = (uint8_t)x;
        same &= pick_addr(&rt, a, 4, 0) == k0;
    }
    CHECK(same);
    for (int byte = 0; byte < 3; byte++) {
        int seen = 0;

        memcpy(a, (uint8_t[]){192, 168, 1, 7}, 4);
        for (int x = 0; x < 256; x++) {
            int k;

            a[byte] = (uint8_t)x;
            k = pick_addr(&rt, a, 4, 0);
            if (k >= 0)
                seen |= 1 << k;
        }
        CHECK_INT(seen, 0x1f); /* octet `byte` reaches every peer */
    }
    fx_rt_free(&rt);
    fx_free(u);
}

/* IPv6: all sixteen bytes count, the last one included. */
static void test_ipv6_all_bytes(void)
{
    static const uint8_t base[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    gw_upstream_t *u = fx_upstream(&gw_ip_hash_ops, 5, NULL);
    gw_upstream_rt_t rt;
    uint8_t a[16];
    int mismatches = 0;

    fx_rt_init(&rt, u, 1);
    for (int byte = 0; byte < 16; byte++) {
        int seen = 0;

        memcpy(a, base, 16);
        for (int x = 0; x < 256; x++) {
            int k;

            a[byte] = (uint8_t)x;
            k = pick_addr(&rt, a, 16, 0);
            mismatches += k != ref_first(a, 16, u);
            if (k >= 0)
                seen |= 1 << k;
        }
        CHECK(seen != 0 && (seen & (seen - 1)) != 0); /* more than one peer: byte `byte` counts */
    }
    CHECK_INT(mismatches, 0);
    /* an IPv4-mapped address (::ffff:10.0.0.1) is IPv6 to nginx: all 16 bytes, not the /24 */
    {
        static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};

        CHECK_INT(pick_addr(&rt, mapped, 16, 0), ref_first(mapped, 16, u));
    }
    fx_rt_free(&rt);
    fx_free(u);
}

/* A down or failed peer moves its own clients only, where nginx's rehash sends them. */
static void check_only_own_move(int failed)
{
    static uint8_t a[NADDR][4];
    static int before[NADDR];
    gw_upstream_t *u = fx_upstream(&gw_ip_hash_ops, 4, NULL);
    gw_upstream_rt_t rt;
    int others_moved = 0, own_stayed = 0, wrong_place = 0, own = 0;
    int usable[4] = {1, 1, 0, 1};

    make_addrs(a, NADDR, 3);
    fx_rt_init(&rt, u, 1);
    for (int i = 0; i < NADDR; i++)
        before[i] = pick_addr(&rt, a[i], 4, 1000);
    if (failed)
        fx_fail(&rt, 2, 1, 1000); /* max_fails 1: out for 10 s */
    else
        u->peers[2].down = 1;
    for (int i = 0; i < NADDR; i++) {
        int k = pick_addr(&rt, a[i], 4, 2000);
        ref_t r;

        if (before[i] != 2) {
            others_moved += k != before[i];
            continue;
        }
        own++;
        own_stayed += k == 2;
        ref_init(&r);
        wrong_place += k != ref_get(&r, a[i], 4, u, usable);
    }
    CHECK(own > NADDR / 8);
    CHECK_INT(others_moved, 0);
    CHECK_INT(own_stayed, 0);
    CHECK_INT(wrong_place, 0);
    /* failed: back after fail_timeout (a trial, then everyone) */
    if (failed) {
        int back = 0;

        for (int i = 0; i < NADDR; i++)
            back += pick_addr(&rt, a[i], 4, 20000) == before[i];
        CHECK_INT(back, NADDR);
    }
    fx_rt_free(&rt);
    fx_free(u);
}

static void test_down_moves_only_its_clients(void)
{
    check_only_own_move(0);
}

static void test_failed_moves_only_its_clients(void)
{
    check_only_own_move(1);
}

/* One request's retries: the hash carries on (nginx), every peer at most once, then NULL. */
static void test_retries(void)
{
    static uint8_t a[200][4];
    gw_upstream_t *u = fx_upstream(&gw_ip_hash_ops, 4, NULL);
    gw_upstream_rt_t rt;
    int mismatches = 0, distinct_bad = 0, null_bad = 0;

    make_addrs(a, 200, 8);
    fx_rt_init(&rt, u, 1);
    for (int i = 0; i < 200; i++) {
        gw_pick_ctx_t ctx;
        int usable[4] = {1, 1, 1, 1}, seen = 0;
        ref_t r;

        fx_ctx(&ctx, 0);
        ctx.addr = a[i];
        ctx.addr_len = 4;
        ref_init(&r);
        for (int t = 0; t < 4; t++) {
            gw_peer_t *p = gw_balancer_get(&rt, &ctx);
            int want = ref_get(&r, a[i], 4, u, usable);

            if (p == NULL) {
                distinct_bad++;
                break;
            }
            /* the first two attempts are well within the 20 candidates */
            if (t < 2)
                mismatches += (int)p->idx != want;
            distinct_bad += (seen >> p->idx) & 1;
            seen |= 1 << p->idx;
            usable[p->idx] = 0;
        }
        null_bad += gw_balancer_get(&rt, &ctx) != NULL;
        for (uint32_t k = 0; k < 4; k++)
            if (gw_pick_tried(&ctx, k))
                gw_balancer_done(&rt, &u->peers[k], GW_PEER_OK, 0);
    }
    CHECK_INT(mismatches, 0);
    CHECK_INT(distinct_bad, 0);
    CHECK_INT(null_bad, 0);
    fx_rt_free(&rt);
    fx_free(u);
}

/* No address (a client on a unix socket), or one primary: round-robin. */
static void test_round_robin_cases(void)
{
    gw_upstream_t *u = fx_upstream(&gw_ip_hash_ops, 3, NULL), *u1 = fx_upstream(&gw_ip_hash_ops, 1, NULL);
    gw_upstream_rt_t rt, rt1;
    static const uint8_t a[] = {10, 1, 2, 3};
    char seq[8];

    fx_rt_init(&rt, u, 1);
    fx_rt_init(&rt1, u1, 1);
    CHECK_STR(fx_sequence(&rt, 0, 6, seq), "abcabc");
    CHECK_INT(pick_addr(&rt1, a, 4, 0), 0);
    fx_rt_free(&rt);
    fx_rt_free(&rt1);
    fx_free(u);
    fx_free(u1);
}

/*
 * nginx gives up on hashing after the first candidate plus 20 rehashes
 * (`if (++iphp->tries > 20)`): 21 candidates. Here: 20 peers, only c and t
 * usable; an address whose first 20 candidates are all down and whose 21st
 * is t goes to t in nginx; round-robin would say c.
 */
static void test_twenty_rehashes(void)
{
    gw_upstream_t *u = fx_new(&gw_ip_hash_ops, 20, NULL);
    gw_upstream_rt_t rt;
    int usable[20] = {0}, found = 0, wrong = 0;

    for (uint32_t i = 0; i < 20; i++)
        u->peers[i].down = i != 2 && i != 19;
    usable[2] = usable[19] = 1;
    fx_finish(u);
    fx_rt_init(&rt, u, 1);
    for (uint32_t x = 0; x < (1u << 24) && found < 5; x += 257) {
        uint8_t a[4] = {(uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x, 1};
        uint32_t hash = 89, n = 0;
        ref_t r;

        /* the first usable candidate's position */
        for (;;) {
            for (int k = 0; k < 3; k++)
                hash = (hash * 113 + a[k]) % 6271;
            n++;
            if (usable[hash % 20] || n > 21)
                break;
        }
        if (n != 21 || hash % 20 != 19)
            continue;
        found++;
        ref_init(&r);
        CHECK_INT(ref_get(&r, a, 4, u, usable), 19);
        /* BUG: balancer/ip_hash.c:21 `while (ctx->tries++ < 20)` tries 20 candidates, nginx 21 (and a
         * retry's budget shrinks by each earlier successful pick, which nginx does not count). */
        wrong += pick_addr(&rt, a, 4, 0) != 19;
    }
    CHECK(found > 0);
    CHECK_INT(wrong, 0);
    fx_rt_free(&rt);
    fx_free(u);
}

int main(void)
{
    RUN(test_by_hand);
    RUN(test_against_reference);
    RUN(test_stable);
    RUN(test_ipv4_prefix);
    RUN(test_ipv6_all_bytes);
    RUN(test_down_moves_only_its_clients);
    RUN(test_failed_moves_only_its_clients);
    RUN(test_retries);
    RUN(test_round_robin_cases);
    RUN(test_twenty_rehashes);
    return gw_test_done();
}
