/*
 * Keepalive pools: idle upstream connections cached per worker and upstream,
 * most recently used first. A pooled connection keeps its recv armed, so a
 * backend closing it (or sending anything unasked) is seen at once and the
 * connection leaves the pool instead of being handed to a request.
 */
#include <stddef.h>
#include <stdlib.h>

#include "balancer.h"
#include "core/conn.h"

/* The keepalive-idle gauge of c's peer (c->ctx) moves by d. */
static void count_idle(gw_pool_t *p, const gw_conn_t *c, int d)
{
    gw_upstream_rt_t *rt = (gw_upstream_rt_t *)((char *)p - offsetof(gw_upstream_rt_t, pool));
    const gw_peer_t *peer = c->ctx;

    if (rt->st && peer)
        gw_gauge_add(&rt->st[peer->idx].idle, d);
}

static void pool_remove(gw_pool_t *p, gw_conn_t *c)
{
    for (uint32_t i = 0; i < p->n; i++) {
        if (p->idle[i] == c) {
            count_idle(p, c, -1);
            for (uint32_t j = i + 1; j < p->n; j++)
                p->idle[j - 1] = p->idle[j];
            p->n--;
            return;
        }
    }
}

static void idle_close(gw_worker_t *w, gw_conn_t *c)
{
    gw_pool_t *p = c->data;

    pool_remove(p, c);
    gw_conn_close(w, c);
}

static void idle_on_data(gw_worker_t *w, gw_conn_t *c, char *data, uint32_t len, uint32_t bid)
{
    /* Bytes on an idle connection: the backend is confused; never reuse it. */
    gw_buf_unref(&w->bufs, bid);
    idle_close(w, c);
}

static void idle_on_eof(gw_worker_t *w, gw_conn_t *c, int err)
{
    idle_close(w, c);
}

static const gw_conn_ops_t idle_ops = {
    .on_data = idle_on_data,
    .on_eof = idle_on_eof,
    .on_timeout = idle_close,
    .on_stop = idle_close,
    .on_retire = idle_close,
};

gw_conn_t *gw_pool_get(gw_worker_t *w, gw_upstream_rt_t *rt, const gw_peer_t *peer)
{
    gw_pool_t *p = &rt->pool;

    for (uint32_t i = p->n; i-- > 0;) {
        gw_conn_t *c = p->idle[i];

        if (c->ctx != peer || (c->flags & (GW_CONN_CLOSING | GW_CONN_READ_EOF)))
            continue;
        for (uint32_t j = i + 1; j < p->n; j++)
            p->idle[j - 1] = p->idle[j];
        p->n--;
        count_idle(p, c, -1);
        gw_conn_timer_off(w, c);
        return c;
    }
    return NULL;
}

void gw_pool_put(gw_worker_t *w, gw_upstream_rt_t *rt, gw_conn_t *c, const gw_peer_t *peer)
{
    gw_pool_t *p = &rt->pool;
    uint32_t max = rt->u->keepalive;

    /* Not into the pool of a configuration a reload replaced: it is draining. */
    if (max == 0 || w->stopping || c->wc != w->cur || (c->flags & (GW_CONN_CLOSING | GW_CONN_READ_EOF))) {
        gw_conn_close(w, c);
        return;
    }
    if (p->cap < max) {
        gw_conn_t **idle = realloc(p->idle, max * sizeof(*idle));

        if (idle == NULL) {
            gw_conn_close(w, c);
            return;
        }
        p->idle = idle;
        p->cap = max;
    }
    if (p->n == max) /* full: the least recently used one goes */
        idle_close(w, p->idle[0]);
    c->ops = &idle_ops;
    c->data = p;
    c->ctx = peer;
    p->idle[p->n++] = c;
    count_idle(p, c, 1);
    gw_conn_timer(w, c, rt->u->keepalive_timeout);
    gw_conn_recv_start(w, c);
}

void gw_pool_free(gw_worker_t *w, gw_pool_t *p)
{
    free(p->idle);
    p->idle = NULL;
    p->n = p->cap = 0;
}
