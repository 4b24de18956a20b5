/*
 * Tests for core/stats.c: histogram bucketing at and around every bound,
 * summing histograms and workers' counters, status classes, and the layout
 * promise that each worker's counters start on their own cache line.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/stats.h"
#include "core/worker-t.h"
#include "tests/unit/test.h"

static void test_bucket_bounds(void)
{
    for (unsigned i = 0; i < GW_HIST_BUCKETS; i++) {
        gw_hist_t h;
        uint64_t us = (uint64_t)(gw_hist_bounds[i] * 1e6 + 0.5);

        memset(&h, 0, sizeof(h));
        gw_hist_observe(&h, us);     /* on the bound: in it (le = less or equal) */
        gw_hist_observe(&h, us + 1); /* just above: the next one */
        CHECK_INT(gw_stat_get(&h.bucket[i]), 1);
        CHECK_INT(gw_stat_get(&h.bucket[i + 1]), 1);
        CHECK_INT(gw_stat_get(&h.sum_us), 2 * us + 1);
    }
}

static void test_bounds_increase(void)
{
    for (unsigned i = 1; i < GW_HIST_BUCKETS; i++)
        CHECK(gw_hist_bounds[i] > gw_hist_bounds[i - 1]);
}

static void test_zero_and_huge(void)
{
    gw_hist_t h;

    memset(&h, 0, sizeof(h));
    gw_hist_observe(&h, 0);
    gw_hist_observe(&h, UINT64_MAX / 4);
    CHECK_INT(gw_stat_get(&h.bucket[0]), 1);
    CHECK_INT(gw_stat_get(&h.bucket[GW_HIST_BUCKETS]), 1);
}

static void test_accumulate(void)
{
    gw_stats_t a, b;
    gw_stats_sum_t s;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&s, 0, sizeof(s));
    gw_stat_add(&a.accepted, 3);
    gw_stat_add(&b.accepted, 4);
    gw_gauge_add(&a.active, 2);
    gw_gauge_add(&b.active, 5);
    gw_gauge_add(&b.active, -1);
    gw_stat_inc(&a.by_class[gw_status_class(204)]);
    gw_stat_inc(&b.by_class[gw_status_class(503)]);
    gw_stat_inc(&b.by_class[gw_status_class(0)]);
    gw_hist_observe(&a.duration, 50);
    gw_hist_observe(&b.duration, 50);
    gw_stats_accumulate(&s, &a);
    gw_stats_accumulate(&s, &b);
    CHECK_INT(s.accepted, 7);
    CHECK_INT(s.active, 6);
    CHECK_INT(s.by_class[1], 1);
    CHECK_INT(s.by_class[4], 1);
    CHECK_INT(s.by_class[5], 1);
    CHECK_INT(s.duration.bucket[0], 2);
    CHECK_INT(s.duration.sum_us, 100);
}

static void test_status_classes(void)
{
    CHECK_INT(gw_status_class(100), 0);
    CHECK_INT(gw_status_class(299), 1);
    CHECK_INT(gw_status_class(499), 3);
    CHECK_INT(gw_status_class(599), 4);
    CHECK_INT(gw_status_class(600), 5);
    CHECK_INT(gw_status_class(99), 5);
    CHECK_STR(gw_status_class_names[5], "other");
}

static void test_own_cache_line(void)
{
    CHECK_INT(offsetof(gw_worker_t, st) % GW_CACHE_LINE, 0);
    CHECK_INT(sizeof(gw_worker_t) % GW_CACHE_LINE, 0);
}

int main(void)
{
    RUN(test_bucket_bounds);
    RUN(test_bounds_increase);
    RUN(test_zero_and_huge);
    RUN(test_accumulate);
    RUN(test_status_classes);
    RUN(test_own_cache_line);
    return gw_test_done();
}
