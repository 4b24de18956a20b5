/* Histograms and summing (see stats.h). */
#include "stats.h"

const double gw_hist_bounds[GW_HIST_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                0.025,  0.05,    0.1,    0.25,  0.5,    1,     5};

/* The same bounds in µs, so observing is integer compares only. */
static const uint64_t bounds_us[GW_HIST_BUCKETS] = {100,   250,   500,    1000,   2500,   5000,    10000,
                                                     25000, 50000, 100000, 250000, 500000, 1000000, 5000000};

const char *const gw_status_class_names[GW_STATUS_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};

void gw_hist_observe(gw_hist_t *h, uint64_t us)
{
    unsigned i = 0;

    while (i < GW_HIST_BUCKETS && us > bounds_us[i])
        i++;
    gw_stat_inc(&h->bucket[i]);
    gw_stat_add(&h->sum_us, us);
}

void gw_hist_accumulate(gw_hist_sum_t *dst, const gw_hist_t *src)
{
    for (unsigned i = 0; i <= GW_HIST_BUCKETS; i++)
        dst->bucket[i] += gw_stat_get(&src->bucket[i]);
    dst->sum_us += gw_stat_get(&src->sum_us);
}

void gw_stats_accumulate(gw_stats_sum_t *dst, const gw_stats_t *src)
{
    dst->accepted += gw_stat_get(&src->accepted);
    dst->handled += gw_stat_get(&src->handled);
    dst->active += gw_gauge_get(&src->active);
    dst->reading += gw_gauge_get(&src->reading);
    dst->writing += gw_gauge_get(&src->writing);
    dst->requests += gw_stat_get(&src->requests);
    for (unsigned i = 0; i < GW_STATUS_CLASSES; i++)
        dst->by_class[i] += gw_stat_get(&src->by_class[i]);
    dst->bytes_in += gw_stat_get(&src->bytes_in);
    dst->bytes_out += gw_stat_get(&src->bytes_out);
    gw_hist_accumulate(&dst->duration, &src->duration);
    for (unsigned v = 0; v < GW_TLS_VERSIONS; v++)
        for (unsigned m = 0; m < GW_TLS_MODES; m++)
            dst->tls_handshakes[v][m] += gw_stat_get(&src->tls_handshakes[v][m]);
    dst->tls_failures += gw_stat_get(&src->tls_failures);
    dst->log_writes += gw_stat_get(&src->log_writes);
    dst->log_dropped += gw_stat_get(&src->log_dropped);
}
