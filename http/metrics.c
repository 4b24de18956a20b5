/*
 * Counting requests and upstream attempts (see obs.h, metrics.h). Process-
 * wide figures (connections, requests, bytes, durations) go to the worker's
 * own gw_stats_t and survive reloads; per server block and per upstream
 * server figures belong to a configuration, since the blocks and servers are
 * the configuration's (a reload starts them at zero, which Prometheus' rate()
 * reads as a counter reset).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer/balancer.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/worker.h"
#include "metrics.h"
#include "obs.h"

void gw_accesslog_request(gw_worker_t *w, gw_http_req_t *req, unsigned status);

static int cmp_ref(const void *a, const void *b)
{
    const gw_srv_ref_t *x = a, *y = b;

    return x->srv < y->srv ? -1 : x->srv > y->srv;
}

/* Label values must be unique per metric: a repeated name gets "#n" appended. */
static char *unique_label(char **done, uint32_t ndone, const char *name)
{
    char *out = strdup(name);

    for (unsigned k = 2; out; k++) {
        uint32_t i;

        for (i = 0; i < ndone && strcmp(done[i], out) != 0; i++)
            ;
        if (i == ndone)
            return out;
        free(out);
        if (asprintf(&out, "%s#%u", name, k) < 0)
            return NULL;
    }
    return NULL;
}

int gw_metrics_init_cycle(gw_cycle_t *cy, gw_conf_err_t *err)
{
    gw_http_conf_t *hc = cy->http;
    gw_metrics_conf_t *m;
    gw_conf_node_t where = {.file = cy->conf_file, .line = 0};

    if (hc == NULL)
        return 0;
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return gw_conf_error(err, &where, "out of memory");
    hc->metrics = m;
    m->nsrvs = hc->nsrvs;
    m->srv_labels = calloc(hc->nsrvs + 1, sizeof(char *));
    m->by_ptr = calloc(hc->nsrvs + 1, sizeof(*m->by_ptr));
    if (m->srv_labels == NULL || m->by_ptr == NULL)
        return gw_conf_error(err, &where, "out of memory");
    for (uint32_t i = 0; i < hc->nsrvs; i++) {
        const gw_http_srv_t *s = hc->srvs[i];

        m->srv_labels[i] = unique_label(m->srv_labels, i, s->nnames && s->names[0][0] ? s->names[0] : "_");
        if (m->srv_labels[i] == NULL)
            return gw_conf_error(err, &where, "out of memory");
        m->by_ptr[i] = (gw_srv_ref_t){.srv = s, .idx = i};
    }
    qsort(m->by_ptr, hc->nsrvs, sizeof(*m->by_ptr), cmp_ref);

    m->ups = gw_upstreams(cy, &m->nups);
    m->peer_base = calloc(m->nups + 1, sizeof(uint32_t));
    if (m->peer_base == NULL)
        return gw_conf_error(err, &where, "out of memory");
    for (uint32_t i = 0; i < m->nups; i++) {
        m->peer_base[i] = m->npeers;
        m->npeers += m->ups[i]->npeers;
    }
    m->peer_labels = calloc(m->npeers + 1, sizeof(char *));
    if (m->peer_labels == NULL)
        return gw_conf_error(err, &where, "out of memory");
    for (uint32_t i = 0; i < m->nups; i++) {
        for (uint32_t k = 0; k < m->ups[i]->npeers; k++) {
            uint32_t at = m->peer_base[i] + k;

            m->peer_labels[at] = unique_label(m->peer_labels + m->peer_base[i], k, m->ups[i]->peers[k].name);
            if (m->peer_labels[at] == NULL)
                return gw_conf_error(err, &where, "out of memory");
        }
    }
    m->peers_off = (m->nsrvs * sizeof(gw_srv_stats_t) + GW_CACHE_LINE - 1) / GW_CACHE_LINE * GW_CACHE_LINE;
    m->block_size = m->peers_off + m->npeers * sizeof(gw_peer_stats_t);
    m->block_size = (m->block_size + GW_CACHE_LINE - 1) / GW_CACHE_LINE * GW_CACHE_LINE;
    if (m->block_size == 0)
        m->block_size = GW_CACHE_LINE;
    return 0;
}

void gw_metrics_free_cycle(gw_cycle_t *cy)
{
    gw_http_conf_t *hc = cy->http;
    gw_metrics_conf_t *m = hc ? hc->metrics : NULL;

    if (m == NULL)
        return;
    for (uint32_t i = 0; m->srv_labels && i < m->nsrvs; i++)
        free(m->srv_labels[i]);
    for (uint32_t i = 0; m->peer_labels && i < m->npeers; i++)
        free(m->peer_labels[i]);
    for (uint32_t i = 0; i < GW_METRICS_MAX_WORKERS; i++)
        free(atomic_load(&m->blocks[i]));
    free(m->srv_labels);
    free(m->peer_labels);
    free(m->by_ptr);
    free(m->peer_base);
    free(m);
    hc->metrics = NULL;
}

/* In the worker: its block for this configuration, and the balancer's pointers into it. */
int gw_metrics_init_worker(gw_worker_t *w, struct gw_wcycle *wc)
{
    const gw_http_conf_t *hc = wc->cycle->http;
    gw_metrics_conf_t *m = hc ? hc->metrics : NULL;
    char *block;

    if (m == NULL || w->id < 1 || w->id > GW_METRICS_MAX_WORKERS)
        return 0;
    block = atomic_load(&m->blocks[w->id - 1]);
    if (block == NULL) {
        block = aligned_alloc(GW_CACHE_LINE, m->block_size);
        if (block == NULL)
            return -ENOMEM;
        memset(block, 0, m->block_size);
        atomic_store_explicit(&m->blocks[w->id - 1], block, memory_order_release);
    }
    for (uint32_t i = 0; i < m->nups; i++)
        gw_upstream_rt(wc, m->ups[i])->st = gw_metrics_peers(m, block) + m->peer_base[i];
    return 0;
}

static const gw_metrics_conf_t *metrics_of(const gw_http_req_t *req)
{
    const gw_http_conf_t *hc = req->client->wc->cycle->http;

    return hc ? hc->metrics : NULL;
}

static char *own_block(const gw_worker_t *w, const gw_metrics_conf_t *m)
{
    if (m == NULL || w->id < 1 || w->id > GW_METRICS_MAX_WORKERS)
        return NULL;
    return atomic_load_explicit(&m->blocks[w->id - 1], memory_order_relaxed);
}

static gw_srv_stats_t *srv_stats(const gw_worker_t *w, const gw_http_req_t *req)
{
    const gw_metrics_conf_t *m = metrics_of(req);
    char *block = own_block(w, m);
    uint32_t lo = 0, hi;

    if (block == NULL || req->srv == NULL)
        return NULL;
    hi = m->nsrvs;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;

        if (m->by_ptr[mid].srv == req->srv)
            return gw_metrics_srvs(block) + m->by_ptr[mid].idx;
        if (m->by_ptr[mid].srv < req->srv)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- a request ---- */

void gw_obs_request_begin(gw_worker_t *w, gw_http_req_t *req)
{
    gw_stat_inc(&w->st.requests); /* nginx counts a request when it begins */
    gw_gauge_add(&w->st.reading, 1);
    req->obs_phase = GW_OBS_READING;
    req->natt = 0;
    req->request_length = 0;
    req->out_mark = req->client ? req->client->queued : 0;
    req->obs_pipe = req->inq.bytes > 0; /* already received while the previous one was answered */
    req->body_mark = 0;
}

void gw_obs_head_done(gw_worker_t *w, gw_http_req_t *req)
{
    if (req->obs_phase != GW_OBS_READING)
        return;
    gw_gauge_add(&w->st.reading, -1);
    gw_gauge_add(&w->st.writing, 1);
    req->obs_phase = GW_OBS_WRITING;
}

void gw_obs_request_end(gw_worker_t *w, gw_http_req_t *req)
{
    gw_srv_stats_t *ss;
    uint64_t us = w->now_us - req->start_us;
    unsigned status, cls;

    if (req->obs_phase == GW_OBS_NONE)
        return;
    gw_gauge_add(req->obs_phase == GW_OBS_READING ? &w->st.reading : &w->st.writing, -1);
    req->obs_phase = GW_OBS_NONE;
    gw_obs_attempt_end(req);
    /* A head that never completed and got no answer is no request (nginx logs none either). */
    if (req->srv == NULL && req->status == 0)
        return;
    /* nginx's 499: the client went away before the response began. */
    status = req->head_sent ? req->status : 499;
    cls = gw_status_class(status);
    gw_stat_inc(&w->st.by_class[cls]);
    gw_hist_observe(&w->st.duration, us);
    ss = srv_stats(w, req);
    if (ss)
        gw_stat_inc(&ss->by_class[cls]);
    req->status = (uint16_t)status; /* what $status shows */
    gw_accesslog_request(w, req, status);
}

/* ---- upstream attempts ---- */

static gw_http_attempt_t *last_attempt(gw_http_req_t *req)
{
    return req->natt ? &req->att[req->natt - 1] : NULL;
}

static gw_peer_stats_t *peer_stats(const gw_http_req_t *req, const gw_peer_t *p)
{
    return req->rt && req->rt->st && p ? &req->rt->st[p->idx] : NULL;
}

void gw_obs_attempt_begin(gw_http_req_t *req, int pooled)
{
    gw_http_attempt_t *a = last_attempt(req);

    if (a && a->peer == req->peer && !a->ended) {
        /* The same attempt again on a fresh connection (a stale pooled one was closed). */
        a->connect_us = pooled ? 0 : GW_ATT_NONE;
        a->pooled = (uint8_t)pooled;
        return;
    }
    if (a) {
        gw_peer_stats_t *st = peer_stats(req, a->peer);

        if (st)
            gw_stat_inc(&st->retries); /* the previous peer's request went on to this one */
    }
    if (req->natt < GW_HTTP_MAX_ATTEMPTS)
        req->natt++;
    a = &req->att[req->natt - 1];
    *a = (gw_http_attempt_t){.peer = req->peer,
                             .start_us = req->w->now_us,
                             .connect_us = pooled ? 0 : GW_ATT_NONE,
                             .header_us = GW_ATT_NONE,
                             .total_us = GW_ATT_NONE,
                             .pooled = (uint8_t)pooled};
}

void gw_obs_attempt_connected(gw_http_req_t *req)
{
    gw_http_attempt_t *a = last_attempt(req);

    if (a && !a->ended)
        a->connect_us = (uint32_t)(req->w->now_us - a->start_us);
}

void gw_obs_attempt_header(gw_http_req_t *req)
{
    gw_http_attempt_t *a = last_attempt(req);

    if (a && !a->ended) {
        a->header_us = (uint32_t)(req->w->now_us - a->start_us);
        a->status = req->status;
    }
}

void gw_obs_attempt_failed(gw_http_req_t *req, unsigned status, int counts)
{
    gw_http_attempt_t *a = last_attempt(req);

    if (a && !a->ended) {
        if (a->status == 0 || a->header_us == GW_ATT_NONE)
            a->status = (uint16_t)status;
        a->failed |= (uint8_t)(counts != 0);
    }
}

void gw_obs_attempt_none(gw_http_req_t *req)
{
    gw_http_attempt_t *a;

    gw_obs_attempt_end(req);
    if (req->natt < GW_HTTP_MAX_ATTEMPTS)
        req->natt++;
    a = &req->att[req->natt - 1];
    *a = (gw_http_attempt_t){.peer = NULL,
                             .start_us = req->w->now_us,
                             .connect_us = GW_ATT_NONE,
                             .header_us = GW_ATT_NONE,
                             .total_us = 0,
                             .status = 502,
                             .ended = 1};
}

void gw_obs_attempt_end(gw_http_req_t *req)
{
    gw_http_attempt_t *a = last_attempt(req);
    gw_peer_stats_t *st;

    if (a == NULL || a->ended)
        return;
    a->ended = 1;
    a->total_us = (uint32_t)(req->w->now_us - a->start_us);
    st = peer_stats(req, a->peer);
    if (st == NULL)
        return;
    gw_stat_inc(&st->by_class[gw_status_class(a->status)]);
    if (a->failed)
        gw_stat_inc(&st->failures);
    if (!a->pooled && a->connect_us != GW_ATT_NONE)
        gw_hist_observe(&st->connect, a->connect_us);
    if (a->header_us != GW_ATT_NONE)
        gw_hist_observe(&st->header, a->header_us);
}
