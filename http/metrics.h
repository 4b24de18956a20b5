/*
 * The counters of one configuration (metrics.c) as the scrape (scrape.c)
 * reads them. Per worker and configuration, one block laid out as
 *   [gw_srv_stats_t x nsrvs][gw_peer_stats_t x npeers]
 * allocated by the worker when it takes the configuration on and published
 * in blocks[worker id - 1]; freed with the configuration, once no worker
 * uses it (so a scrape on a connection of that configuration never reads
 * freed memory).
 */
#ifndef GW_HTTP_METRICS_H
#define GW_HTTP_METRICS_H

#include "balancer/balancer-t.h"
#include "core/cycle-t.h"
#include "core/stats.h"
#include "http-t.h"

#define GW_METRICS_MAX_WORKERS 1024 /* worker_processes' limit */

typedef struct gw_srv_stats {
    gw_counter_t by_class[GW_STATUS_CLASSES];
} gw_srv_stats_t;

typedef struct gw_srv_ref {
    const gw_http_srv_t *srv;
    uint32_t idx;
} gw_srv_ref_t;

typedef struct gw_metrics_conf {
    uint32_t nsrvs;
    char **srv_labels;    /* per server block: its first server_name, made unique */
    gw_srv_ref_t *by_ptr; /* servers sorted by address, to find a request's index */
    gw_upstream_t *const *ups;
    uint32_t nups;
    uint32_t *peer_base; /* per upstream: index of its first peer in the block */
    uint32_t npeers;
    char **peer_labels;  /* per peer: its address, made unique within its upstream */
    size_t peers_off;    /* offset of the peers in a block */
    size_t block_size;
    _Atomic(char *) blocks[GW_METRICS_MAX_WORKERS];
} gw_metrics_conf_t;

static inline gw_srv_stats_t *gw_metrics_srvs(char *block)
{
    return (gw_srv_stats_t *)block;
}

static inline gw_peer_stats_t *gw_metrics_peers(const gw_metrics_conf_t *m, char *block)
{
    return (gw_peer_stats_t *)(block + m->peers_off);
}

int gw_metrics_init_cycle(gw_cycle_t *cy, gw_conf_err_t *err);
void gw_metrics_free_cycle(gw_cycle_t *cy);
int gw_metrics_init_worker(gw_worker_t *w, struct gw_wcycle *wc);

/* Append Prometheus text for everything to *buf (malloc'ed, grown). 0 or -ENOMEM. */
int gw_metrics_render(const gw_cycle_t *cy, uint64_t now_ms, char **buf, size_t *len);
/* nginx's stub_status text. */
int gw_metrics_stub_status(char **buf, size_t *len);

#endif
