/*
 * hash KEY [consistent], with nginx's hash functions so keys map the same
 * way as there:
 * - plain: crc32 of the key (of "<n>KEY" on the n-th rehash), (crc >> 16) &
 *   0x7fff added to a running hash, which picks by weight among all
 *   primaries (Cache::Memcached's scheme). Adding or removing a server moves
 *   most keys.
 * - consistent (ketama): each server gets 160 points per unit of weight on a
 *   circle, point j at crc32(HOST "\0" PORT <point j-1, 4 bytes LE>); a key
 *   goes to the first point at or after crc32(KEY). Removing one of n servers
 *   moves about 1/n of the keys: only those whose points it held.
 * An unusable pick moves on (rehash, or the next point); after 20 tries
 * round-robin decides.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "balancer.h"

typedef struct point {
    uint32_t hash;
    uint32_t server; /* index of a primary: peers with the same `server` text share */
} point_t;

typedef struct ring {
    point_t *points;
    uint32_t n;
} ring_t;

static uint32_t crc(uint32_t prev, const void *p, size_t n)
{
    return (uint32_t)crc32(prev, p, (uInt)n);
}

static int cmp_points(const void *a, const void *b)
{
    const point_t *x = a, *y = b;

    return x->hash < y->hash ? -1 : x->hash > y->hash ? 1 : (x->server < y->server ? -1 : x->server > y->server);
}

static int hash_init(gw_upstream_t *u, char *msg, size_t size)
{
    ring_t *r;
    uint32_t total = 0, n = 0;

    if (!u->consistent)
        return 0;
    for (uint32_t i = 0; i < u->nprimary; i++)
        total += u->peers[i].weight * 160;
    r = calloc(1, sizeof(*r));
    if (r == NULL || (r->points = calloc(total ? total : 1, sizeof(point_t))) == NULL) {
        free(r);
        snprintf(msg, size, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < u->nprimary; i++) {
        const char *server = u->peers[i].server, *port = "";
        size_t hlen = strlen(server), k = hlen;
        uint8_t prev[4] = {0, 0, 0, 0};
        uint32_t base;

        /* Several addresses of one name ("app:80" resolving to two) share the
         * name's points, as in nginx; the first of them carries them. */
        if (i > 0 && strcmp(u->peers[i - 1].server, server) == 0)
            continue;
        /* nginx's split: a port is a last ':' followed only by digits ("[::1]" has none) */
        while (k > 0 && server[k - 1] >= '0' && server[k - 1] <= '9')
            k--;
        if (k > 0 && server[k - 1] == ':') {
            port = server + k;
            hlen = k - 1;
        }
        base = crc(0, server, hlen);
        base = crc(base, "", 1);
        base = crc(base, port, strlen(port));
        for (uint32_t j = 0; j < u->peers[i].weight * 160; j++) {
            uint32_t h = crc(base, prev, 4);

            r->points[n].hash = h;
            r->points[n].server = i;
            n++;
            prev[0] = (uint8_t)h;
            prev[1] = (uint8_t)(h >> 8);
            prev[2] = (uint8_t)(h >> 16);
            prev[3] = (uint8_t)(h >> 24);
        }
    }
    qsort(r->points, n, sizeof(point_t), cmp_points);
    /* Equal hashes: the first one wins, as in nginx. */
    {
        uint32_t k = 0;

        for (uint32_t j = 0; j < n; j++)
            if (k == 0 || r->points[j].hash != r->points[k - 1].hash)
                r->points[k++] = r->points[j];
        r->n = k;
    }
    u->lb_conf = r;
    return 0;
}

static void hash_free(gw_upstream_t *u)
{
    ring_t *r = u->lb_conf;

    if (r) {
        free(r->points);
        free(r);
        u->lb_conf = NULL;
    }
}

/* The usable peer among those configured with the same text as peers[first]. */
static gw_peer_t *among_server(gw_upstream_rt_t *rt, gw_pick_ctx_t *ctx, uint32_t first)
{
    const gw_upstream_t *u = rt->u;
    uint32_t end = first + 1;

    while (end < u->nprimary && strcmp(u->peers[end].server, u->peers[first].server) == 0)
        end++;
    if (end == first + 1)
        return gw_peer_usable(rt, &u->peers[first], ctx) ? &u->peers[first] : NULL;
    return gw_rr_pick_range(rt, ctx, first, end);
}

static gw_peer_t *consistent_pick(gw_upstream_rt_t *rt, gw_pick_ctx_t *ctx)
{
    const ring_t *r = rt->u->lb_conf;

    if (!ctx->started) {
        uint32_t h = crc(0, ctx->key, ctx->key_len), lo = 0, hi = r->n;

        while (lo < hi) { /* the first point at or after h */
            uint32_t mid = lo + (hi - lo) / 2;

            if (r->points[mid].hash < h)
                lo = mid + 1;
            else
                hi = mid;
        }
        ctx->hash = lo;
        ctx->started = 1;
    }
    /* a retry starts at the same point: the name's other addresses come first, as in nginx */
    while (ctx->tries <= 20) {
        gw_peer_t *p = among_server(rt, ctx, r->points[ctx->hash % r->n].server);

        if (p)
            return p;
        ctx->hash++;
        ctx->tries++;
    }
    return gw_rr_pick_range(rt, ctx, 0, rt->u->nprimary);
}

static gw_peer_t *hash_pick(gw_upstream_rt_t *rt, gw_pick_ctx_t *ctx)
{
    const gw_upstream_t *u = rt->u;

    if (u->nprimary == 1 || u->total_weight == 0)
        return gw_rr_pick_range(rt, ctx, 0, u->nprimary);
    if (u->consistent)
        return consistent_pick(rt, ctx);
    /* every candidate hashes "KEY", "1KEY", "2KEY", ...; only unusable ones count towards the 20 */
    while (ctx->tries <= 20) {
        char num[16];
        uint32_t h = 0, i = 0;
        uint64_t w;

        if (ctx->rehash > 0)
            h = crc(h, num, (size_t)snprintf(num, sizeof(num), "%u", ctx->rehash));
        h = crc(h, ctx->key, ctx->key_len);
        ctx->hash += (h >> 16) & 0x7fff;
        ctx->rehash++;
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

const gw_balancer_ops_t gw_hash_ops = {
    .name = "hash",
    .init = hash_init,
    .free = hash_free,
    .pick = hash_pick,
};
