/*
 * Counters and histograms written by one thread and read by another.
 *
 * Every counter has exactly one writer (the worker that owns it) and is
 * summed across workers only when someone scrapes. The writer does a plain
 * load + store (relaxed atomics compile to ordinary moves on x86 and arm64),
 * never a locked read-modify-write, and each worker's block starts on its
 * own cache line, so the request path never shares a written line with
 * another core. A reader may see a value a few increments old, never a torn
 * one.
 */
#ifndef GW_STATS_H
#define GW_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define GW_CACHE_LINE 64

typedef _Atomic uint64_t gw_counter_t;
typedef _Atomic int64_t gw_gauge_t;

/* Single writer: add without a locked instruction. */
static inline void gw_stat_add(gw_counter_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

static inline void gw_stat_inc(gw_counter_t *c)
{
    gw_stat_add(c, 1);
}

static inline void gw_gauge_add(gw_gauge_t *g, int64_t v)
{
    atomic_store_explicit(g, atomic_load_explicit(g, memory_order_relaxed) + v, memory_order_relaxed);
}

static inline void gw_gauge_set(gw_gauge_t *g, int64_t v)
{
    atomic_store_explicit(g, v, memory_order_relaxed);
}

static inline uint64_t gw_stat_get(const gw_counter_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static inline int64_t gw_gauge_get(const gw_gauge_t *g)
{
    return atomic_load_explicit(g, memory_order_relaxed);
}

/*
 * A latency histogram with fixed bucket bounds (seconds, Prometheus' usual
 * set stretched down to 100 µs: a proxy hop on a LAN is sub-millisecond).
 * Buckets hold plain (not cumulative) counts; the scrape accumulates.
 */
#define GW_HIST_BUCKETS 14
extern const double gw_hist_bounds[GW_HIST_BUCKETS]; /* upper bounds, s; +Inf is implicit */

typedef struct gw_hist {
    gw_counter_t bucket[GW_HIST_BUCKETS + 1]; /* last: above every bound */
    gw_counter_t sum_us;
} gw_hist_t;

/* Record one observation of `us` microseconds. */
void gw_hist_observe(gw_hist_t *h, uint64_t us);

/* Add src into dst (plain numbers, for summing workers at scrape time). */
typedef struct gw_hist_sum {
    uint64_t bucket[GW_HIST_BUCKETS + 1];
    uint64_t sum_us;
} gw_hist_sum_t;

void gw_hist_accumulate(gw_hist_sum_t *dst, const gw_hist_t *src);

/* Status classes: 1xx..5xx, and anything else (0: no response). */
enum { GW_STATUS_CLASSES = 6 };

static inline unsigned gw_status_class(unsigned status)
{
    return status >= 100 && status < 600 ? status / 100 - 1 : 5;
}

extern const char *const gw_status_class_names[GW_STATUS_CLASSES]; /* "1xx" ... "5xx", "other" */

/* TLS handshakes, registered before TLS exists (issue 7) so dashboards need no change then. */
enum { GW_TLS_V12 = 0, GW_TLS_V13, GW_TLS_VERSIONS };
enum { GW_TLS_KERNEL = 0, GW_TLS_USERSPACE, GW_TLS_MODES };

/*
 * One worker's counters that live as long as the process (a reload does not
 * reset them). Embedded in gw_worker_t, cache-line aligned.
 */
typedef struct gw_stats {
    _Alignas(GW_CACHE_LINE) gw_counter_t accepted; /* connections accepted */
    gw_counter_t handled;                          /* ... and given a slot */
    gw_gauge_t active;                             /* client connections open */
    gw_gauge_t reading;                            /* requests whose head is being read */
    gw_gauge_t writing;                            /* requests past their head, not finished */
    gw_counter_t requests;                         /* requests finished (nginx counts every one) */
    gw_counter_t by_class[GW_STATUS_CLASSES];
    gw_counter_t bytes_in;  /* bytes received from clients */
    gw_counter_t bytes_out; /* bytes sent to clients */
    gw_hist_t duration;     /* request time */
    gw_counter_t tls_handshakes[GW_TLS_VERSIONS][GW_TLS_MODES];
    gw_counter_t tls_failures;
    gw_counter_t log_writes;  /* access log writes submitted */
    gw_counter_t log_dropped; /* access log bytes lost (write failed or buffers exhausted) */
    gw_counter_t buf_waits;   /* receives that found the provided-buffer ring empty (-ENOBUFS) */
} gw_stats_t;

/* Sum of every worker's gw_stats_t, for a scrape. */
typedef struct gw_stats_sum {
    uint64_t accepted, handled, requests, bytes_in, bytes_out, tls_failures, log_writes, log_dropped;
    int64_t active, reading, writing;
    uint64_t by_class[GW_STATUS_CLASSES];
    uint64_t tls_handshakes[GW_TLS_VERSIONS][GW_TLS_MODES];
    gw_hist_sum_t duration;
} gw_stats_sum_t;

void gw_stats_accumulate(gw_stats_sum_t *dst, const gw_stats_t *src);

#endif
