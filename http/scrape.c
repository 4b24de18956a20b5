/*
 * The scrape: every worker's counters summed into Prometheus' text format
 * (version 0.0.4), and nginx's stub_status. Runs in the worker serving the
 * scrape and only reads other workers' counters (relaxed loads, stats.h).
 * Families are written whole, one after the other: the text format wants a
 * family's samples together.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/worker.h"
#include "core/gw.h"
#include "gw_config.h"
#include "metrics.h"

typedef struct sb {
    char *p;
    size_t len, cap;
    int err;
} sb_t;

static void sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->err)
        return;
    for (;;) {
        size_t cap;
        char *grown;

        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->err = -EINVAL;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        cap = (b->cap + (size_t)n + 1) * 2;
        grown = realloc(b->p, cap);

        if (grown == NULL) {
            b->err = -ENOMEM;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
}

/* A label value, escaped as the text format requires (\\, \", \n). */
static void sb_label(sb_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            sb_printf(b, "\\%c", *s);
        else if (*s == '\n')
            sb_printf(b, "\\n");
        else
            sb_printf(b, "%c", *s);
    }
}

static void family(sb_t *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The samples of one histogram; `labels` is "" or `a="x",b="y",` (trailing comma). */
static void histogram(sb_t *b, const char *name, const char *labels, const gw_hist_sum_t *h)
{
    uint64_t cum = 0;

    for (unsigned i = 0; i < GW_HIST_BUCKETS; i++) {
        cum += h->bucket[i];
        sb_printf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, gw_hist_bounds[i], (unsigned long long)cum);
    }
    cum += h->bucket[GW_HIST_BUCKETS];
    sb_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    if (*labels) {
        size_t n = strlen(labels) - 1; /* without the trailing comma */

        sb_printf(b, "%s_sum{%.*s} %.6f\n%s_count{%.*s} %llu\n", name, (int)n, labels, (double)h->sum_us / 1e6, name,
                  (int)n, labels, (unsigned long long)cum);
    } else {
        sb_printf(b, "%s_sum %.6f\n%s_count %llu\n", name, (double)h->sum_us / 1e6, name, (unsigned long long)cum);
    }
}

static void sum_workers(gw_stats_sum_t *s)
{
    int n;
    gw_worker_t *ws = gw_workers_all(&n);

    memset(s, 0, sizeof(*s));
    for (int i = 0; ws && i < n; i++)
        gw_stats_accumulate(s, &ws[i].st);
}

static void render_core(sb_t *b, const gw_stats_sum_t *s)
{
    int64_t waiting = s->active - s->reading - s->writing;
    static const char *const versions[GW_TLS_VERSIONS] = {"TLSv1.2", "TLSv1.3"};
    static const char *const modes[GW_TLS_MODES] = {"kernel", "userspace"};

    family(b, "gateway_build_info", "gauge", "Version of the gateway and of the libraries it was built with.");
    sb_printf(b, "gateway_build_info{version=\"%s\",liburing=\"%s\",wolfssl=\"%s\"} 1\n", GW_VERSION,
              GW_LIBURING_VERSION, GW_WOLFSSL_VERSION);
    family(b, "gateway_connections_accepted_total", "counter", "Client connections accepted.");
    sb_printf(b, "gateway_connections_accepted_total %llu\n", (unsigned long long)s->accepted);
    family(b, "gateway_connections_handled_total", "counter",
           "Client connections handled (accepted and given a slot).");
    sb_printf(b, "gateway_connections_handled_total %llu\n", (unsigned long long)s->handled);
    family(b, "gateway_connections_active", "gauge", "Client connections open, idle ones included.");
    sb_printf(b, "gateway_connections_active %lld\n", (long long)s->active);
    family(b, "gateway_connections_reading", "gauge", "Connections reading a request head.");
    sb_printf(b, "gateway_connections_reading %lld\n", (long long)s->reading);
    family(b, "gateway_connections_writing", "gauge", "Connections with a request being answered.");
    sb_printf(b, "gateway_connections_writing %lld\n", (long long)s->writing);
    family(b, "gateway_connections_waiting", "gauge", "Idle keep-alive connections.");
    sb_printf(b, "gateway_connections_waiting %lld\n", (long long)(waiting > 0 ? waiting : 0));
    family(b, "gateway_http_requests_started_total", "counter", "Requests begun (stub_status' requests).");
    sb_printf(b, "gateway_http_requests_started_total %llu\n", (unsigned long long)s->requests);
    family(b, "gateway_http_responses_total", "counter", "Requests finished, by status class (every server).");
    for (unsigned i = 0; i < GW_STATUS_CLASSES; i++)
        sb_printf(b, "gateway_http_responses_total{code=\"%s\"} %llu\n", gw_status_class_names[i],
                  (unsigned long long)s->by_class[i]);
    family(b, "gateway_http_request_duration_seconds", "histogram",
           "Time from a request's first byte to the end of its response.");
    histogram(b, "gateway_http_request_duration_seconds", "", &s->duration);
    family(b, "gateway_http_received_bytes_total", "counter", "Bytes received from clients.");
    sb_printf(b, "gateway_http_received_bytes_total %llu\n", (unsigned long long)s->bytes_in);
    family(b, "gateway_http_sent_bytes_total", "counter", "Bytes sent to clients.");
    sb_printf(b, "gateway_http_sent_bytes_total %llu\n", (unsigned long long)s->bytes_out);
    family(b, "gateway_tls_handshakes_total", "counter", "TLS handshakes completed, by version and record layer.");
    for (unsigned v = 0; v < GW_TLS_VERSIONS; v++)
        for (unsigned m = 0; m < GW_TLS_MODES; m++)
            sb_printf(b, "gateway_tls_handshakes_total{version=\"%s\",mode=\"%s\"} %llu\n", versions[v], modes[m],
                      (unsigned long long)s->tls_handshakes[v][m]);
    family(b, "gateway_tls_handshake_failures_total", "counter", "TLS handshakes that failed.");
    sb_printf(b, "gateway_tls_handshake_failures_total %llu\n", (unsigned long long)s->tls_failures);
    family(b, "gateway_access_log_writes_total", "counter", "Access log writes submitted.");
    sb_printf(b, "gateway_access_log_writes_total %llu\n", (unsigned long long)s->log_writes);
    family(b, "gateway_access_log_dropped_bytes_total", "counter", "Access log bytes that could not be written.");
    sb_printf(b, "gateway_access_log_dropped_bytes_total %llu\n", (unsigned long long)s->log_dropped);
}

static void render_workers(sb_t *b)
{
    int n;
    gw_worker_t *ws = gw_workers_all(&n);

    family(b, "gateway_worker_requests_total", "counter", "Requests begun, per worker.");
    for (int i = 0; ws && i < n; i++)
        sb_printf(b, "gateway_worker_requests_total{worker=\"%d\"} %llu\n", ws[i].id,
                  (unsigned long long)gw_stat_get(&ws[i].st.requests));
    family(b, "gateway_worker_connections_active", "gauge", "Client connections open, per worker.");
    for (int i = 0; ws && i < n; i++)
        sb_printf(b, "gateway_worker_connections_active{worker=\"%d\"} %lld\n", ws[i].id,
                  (long long)gw_gauge_get(&ws[i].st.active));
    family(b, "gateway_worker_recv_buffer_waits_total", "counter",
           "Receives that found the worker's provided-buffer ring empty and waited for buffers to come back.");
    for (int i = 0; ws && i < n; i++)
        sb_printf(b, "gateway_worker_recv_buffer_waits_total{worker=\"%d\"} %llu\n", ws[i].id,
                  (unsigned long long)gw_stat_get(&ws[i].st.buf_waits));
}

typedef struct peer_sum {
    uint64_t by_class[GW_STATUS_CLASSES], failures, retries, fail_until;
    int64_t active, idle;
    gw_hist_sum_t connect, header;
} peer_sum_t;

/* `upstream="u",server="p",` for peer k of upstream i. */
static void peer_labels(sb_t *b, const gw_metrics_conf_t *m, uint32_t i, uint32_t k)
{
    sb_printf(b, "upstream=\"");
    sb_label(b, m->ups[i]->name);
    sb_printf(b, "\",server=\"");
    sb_label(b, m->peer_labels[m->peer_base[i] + k]);
    sb_printf(b, "\",");
}

static const char *peer_state(const gw_peer_t *p, const peer_sum_t *ps, uint64_t now_ms)
{
    if (p->down)
        return "down";
    if (ps->fail_until > now_ms)
        return "unavailable";
    return p->backup ? "backup" : "up";
}

static void render_upstreams(sb_t *b, const gw_metrics_conf_t *m, const peer_sum_t *sum, uint64_t now_ms)
{
    static const char *const states[] = {"up", "unavailable", "backup", "down"};
    sb_t lab = {0};

#define EACH_PEER                                                                                                      \
    for (uint32_t i = 0; i < m->nups; i++)                                                                             \
        for (uint32_t k = 0; k < m->ups[i]->npeers; k++)
#define PS (&sum[m->peer_base[i] + k])
#define LABELS() (lab.len = 0, peer_labels(&lab, m, i, k), lab.err ? "" : lab.p)
    family(b, "gateway_upstream_requests_total", "counter", "Attempts sent to an upstream server, by status class.");
    EACH_PEER
    {
        const char *l = LABELS();

        for (unsigned c = 0; c < GW_STATUS_CLASSES; c++)
            sb_printf(b, "gateway_upstream_requests_total{%scode=\"%s\"} %llu\n", l, gw_status_class_names[c],
                      (unsigned long long)PS->by_class[c]);
    }
    family(b, "gateway_upstream_failures_total", "counter",
           "Attempts that failed (error, timeout, invalid header; counted towards max_fails).");
    EACH_PEER
    {
        const char *l = LABELS();

        sb_printf(b, "gateway_upstream_failures_total{%.*s} %llu\n", (int)strlen(l) - 1, l,
                  (unsigned long long)PS->failures);
    }
    family(b, "gateway_upstream_retries_total", "counter", "Requests passed on from this server to another one.");
    EACH_PEER
    {
        const char *l = LABELS();

        sb_printf(b, "gateway_upstream_retries_total{%.*s} %llu\n", (int)strlen(l) - 1, l,
                  (unsigned long long)PS->retries);
    }
    family(b, "gateway_upstream_server_state", "gauge",
           "1 for the server's current state: up, unavailable (failed in some worker), backup, down.");
    EACH_PEER
    {
        const char *l = LABELS(), *st = peer_state(&m->ups[i]->peers[k], PS, now_ms);

        for (unsigned s = 0; s < 4; s++)
            sb_printf(b, "gateway_upstream_server_state{%sstate=\"%s\"} %d\n", l, states[s],
                      strcmp(st, states[s]) == 0);
    }
    family(b, "gateway_upstream_active_requests", "gauge", "Requests in flight to the server.");
    EACH_PEER
    {
        const char *l = LABELS();

        sb_printf(b, "gateway_upstream_active_requests{%.*s} %lld\n", (int)strlen(l) - 1, l, (long long)PS->active);
    }
    family(b, "gateway_upstream_keepalive_idle_connections", "gauge", "Idle keepalive connections to the server.");
    EACH_PEER
    {
        const char *l = LABELS();

        sb_printf(b, "gateway_upstream_keepalive_idle_connections{%.*s} %lld\n", (int)strlen(l) - 1, l,
                  (long long)PS->idle);
    }
    family(b, "gateway_upstream_connect_duration_seconds", "histogram", "Time to connect to the server.");
    EACH_PEER
    histogram(b, "gateway_upstream_connect_duration_seconds", LABELS(), &PS->connect);
    family(b, "gateway_upstream_header_duration_seconds", "histogram",
           "Time from the start of an attempt to the server's complete response head.");
    EACH_PEER
    histogram(b, "gateway_upstream_header_duration_seconds", LABELS(), &PS->header);
#undef EACH_PEER
#undef PS
#undef LABELS
    free(lab.p);
}

static void sum_peers(const gw_metrics_conf_t *m, peer_sum_t *sum)
{
    for (uint32_t w = 0; w < GW_METRICS_MAX_WORKERS; w++) {
        char *block = atomic_load_explicit(&m->blocks[w], memory_order_acquire);
        const gw_peer_stats_t *ps;

        if (block == NULL)
            continue;
        ps = gw_metrics_peers(m, block);
        for (uint32_t i = 0; i < m->npeers; i++) {
            uint64_t fu = atomic_load_explicit(&ps[i].fail_until, memory_order_relaxed);

            for (unsigned c = 0; c < GW_STATUS_CLASSES; c++)
                sum[i].by_class[c] += gw_stat_get(&ps[i].by_class[c]);
            sum[i].failures += gw_stat_get(&ps[i].failures);
            sum[i].retries += gw_stat_get(&ps[i].retries);
            sum[i].active += gw_gauge_get(&ps[i].active);
            sum[i].idle += gw_gauge_get(&ps[i].idle);
            if (fu > sum[i].fail_until)
                sum[i].fail_until = fu;
            gw_hist_accumulate(&sum[i].connect, &ps[i].connect);
            gw_hist_accumulate(&sum[i].header, &ps[i].header);
        }
    }
}

static void render_servers(sb_t *b, const gw_metrics_conf_t *m)
{
    uint64_t *sum = calloc((size_t)m->nsrvs * GW_STATUS_CLASSES + 1, sizeof(uint64_t));

    if (sum == NULL) {
        b->err = -ENOMEM;
        return;
    }
    for (uint32_t w = 0; w < GW_METRICS_MAX_WORKERS; w++) {
        char *block = atomic_load_explicit(&m->blocks[w], memory_order_acquire);

        for (uint32_t i = 0; block && i < m->nsrvs; i++)
            for (unsigned c = 0; c < GW_STATUS_CLASSES; c++)
                sum[i * GW_STATUS_CLASSES + c] += gw_stat_get(&gw_metrics_srvs(block)[i].by_class[c]);
    }
    family(b, "gateway_http_requests_total", "counter",
           "Requests finished, by server block (its first server_name) and status class.");
    for (uint32_t i = 0; i < m->nsrvs; i++) {
        for (unsigned c = 0; c < GW_STATUS_CLASSES; c++) {
            sb_printf(b, "gateway_http_requests_total{server=\"");
            sb_label(b, m->srv_labels[i]);
            sb_printf(b, "\",code=\"%s\"} %llu\n", gw_status_class_names[c],
                      (unsigned long long)sum[i * GW_STATUS_CLASSES + c]);
        }
    }
    free(sum);
}

int gw_metrics_render(const gw_cycle_t *cy, uint64_t now_ms, char **buf, size_t *len)
{
    const gw_http_conf_t *hc = cy->http;
    const gw_metrics_conf_t *m = hc ? hc->metrics : NULL;
    gw_stats_sum_t s;
    sb_t b = {0};

    sum_workers(&s);
    render_core(&b, &s);
    render_workers(&b);
    if (m) {
        peer_sum_t *sum = calloc(m->npeers + 1, sizeof(*sum));

        render_servers(&b, m);
        if (sum == NULL)
            b.err = -ENOMEM;
        else
            sum_peers(m, sum);
        if (sum && m->npeers)
            render_upstreams(&b, m, sum, now_ms);
        free(sum);
    }
    if (b.err) {
        free(b.p);
        return b.err;
    }
    *buf = b.p;
    *len = b.len;
    return 0;
}

int gw_metrics_stub_status(char **buf, size_t *len)
{
    gw_stats_sum_t s;
    sb_t b = {0};
    int64_t waiting;

    sum_workers(&s);
    waiting = s.active - s.reading - s.writing;
    /* nginx's exact text, trailing spaces included: tools parse it. */
    sb_printf(&b,
              "Active connections: %lld \nserver accepts handled requests\n %llu %llu %llu \n"
              "Reading: %lld Writing: %lld Waiting: %lld \n",
              (long long)s.active, (unsigned long long)s.accepted, (unsigned long long)s.handled,
              (unsigned long long)s.requests, (long long)s.reading, (long long)s.writing,
              (long long)(waiting > 0 ? waiting : 0));
    if (b.err) {
        free(b.p);
        return b.err;
    }
    *buf = b.p;
    *len = b.len;
    return 0;
}
