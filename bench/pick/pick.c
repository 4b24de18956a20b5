/*
 * The cost of balancing one request: a gw_balancer_get + gw_balancer_done
 * pair (a fresh gw_pick_ctx_t each time, as a request starts with one), per
 * algorithm, with 2, 8 and 32 equal-weight peers, all healthy. ip_hash cycles
 * through 1024 client addresses, hash through 1024 keys ("/item/<n>", about
 * the length of a URI), so the hashing is paid as in real traffic; random
 * draws from the per-worker generator.
 *
 * Each cell is the median of 5 runs of `iters` pairs, timed with
 * clock_gettime(CLOCK_MONOTONIC) around the whole loop, in ns per pair.
 * Prints a markdown table and, with -o FILE, writes it there too.
 *
 *   pick [-n ITERS] [-o FILE]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "balancer/balancer.h"

#define RUNS 5
#define NINPUTS 1024 /* distinct addresses / keys, cycled */

typedef struct algo {
    const char *name;
    const gw_balancer_ops_t *ops;
    int two, consistent;
} algo_t;

static const algo_t algos[] = {
    {"round_robin", &gw_round_robin_ops, 0, 0},
    {"least_conn", &gw_least_conn_ops, 0, 0},
    {"ip_hash", &gw_ip_hash_ops, 0, 0},
    {"random", &gw_random_ops, 0, 0},
    {"random two", &gw_random_ops, 1, 0},
    {"hash $request_uri", &gw_hash_ops, 0, 0},
    {"hash $request_uri consistent", &gw_hash_ops, 0, 1},
};

static const uint32_t sizes[] = {2, 8, 32};

static uint8_t addrs[NINPUTS][4];
static char keys[NINPUTS][32];
static uint32_t key_lens[NINPUTS];
static volatile uint32_t sink; /* keeps the picks observable */

/* An upstream as finish_upstream() leaves it: n primaries, weight 1, nginx's health defaults. */
static gw_upstream_t *make_upstream(const algo_t *a, uint32_t n)
{
    gw_upstream_t *u = calloc(1, sizeof(*u));
    char msg[128];

    u->name = "bench";
    u->ops = a->ops;
    u->two = (uint8_t)a->two;
    u->consistent = (uint8_t)a->consistent;
    u->peers = calloc(n, sizeof(*u->peers));
    u->npeers = u->nprimary = n;
    for (uint32_t i = 0; i < n; i++) {
        gw_peer_t *p = &u->peers[i];

        p->weight = 1;
        p->max_fails = 1;
        p->fail_timeout = 10000;
        p->idx = i;
        snprintf(p->server, sizeof(p->server), "10.0.%u.%u:8080", i / 250, i % 250 + 1);
        snprintf(p->name, sizeof(p->name), "%s", p->server);
        u->total_weight += p->weight;
    }
    if (u->ops->init && u->ops->init(u, msg, sizeof(msg)) < 0) {
        fprintf(stderr, "pick: %s: %s\n", a->name, msg);
        exit(1);
    }
    return u;
}

static void free_upstream(gw_upstream_t *u)
{
    if (u->ops->free)
        u->ops->free(u);
    free(u->peers);
    free(u);
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One run: iters get+done pairs on a fresh worker view. ns per pair. */
static double run_once(const gw_upstream_t *u, uint64_t iters)
{
    gw_upstream_rt_t rt;
    uint32_t acc = 0;
    double t0, t1;

    memset(&rt, 0, sizeof(rt));
    rt.u = u;
    rt.ps = calloc(u->npeers, sizeof(*rt.ps));
    for (uint32_t i = 0; i < u->npeers; i++)
        rt.ps[i].effective_weight = u->peers[i].weight;
    rt.rng = 0x9E3779B97F4A7C15ull;
    t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        uint32_t k = (uint32_t)i & (NINPUTS - 1);
        gw_pick_ctx_t ctx;
        gw_peer_t *p;

        memset(&ctx, 0, sizeof(ctx));
        ctx.now = 1000000 + (i >> 10); /* a clock that moves, about a ms per 1024 requests */
        ctx.addr = addrs[k];
        ctx.addr_len = 4;
        ctx.key = keys[k];
        ctx.key_len = key_lens[k];
        p = gw_balancer_get(&rt, &ctx);
        if (p == NULL) {
            fprintf(stderr, "pick: no peer\n");
            exit(1);
        }
        acc += p->idx;
        gw_balancer_done(&rt, p, GW_PEER_OK, ctx.now);
    }
    t1 = now_ns();
    sink = acc;
    free(rt.ps);
    return (t1 - t0) / (double)iters;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median_ns(const gw_upstream_t *u, uint64_t iters)
{
    double r[RUNS];

    run_once(u, iters / 10 + 1); /* warm caches and branch predictors */
    for (int i = 0; i < RUNS; i++)
        r[i] = run_once(u, iters);
    qsort(r, RUNS, sizeof(r[0]), cmp_double);
    return r[RUNS / 2];
}

static void cpu_model(char *buf, size_t size)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];

    snprintf(buf, size, "unknown CPU");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');

        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(buf, size, "%s", colon + 2);
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    uint64_t iters = 2000000;
    const char *out = NULL;
    char table[8192], cpu[128], date[32];
    size_t n = 0;
    struct utsname un;
    time_t t = time(NULL);
    int opt;

    while ((opt = getopt(argc, argv, "n:o:")) != -1) {
        if (opt == 'n')
            iters = strtoull(optarg, NULL, 10);
        else if (opt == 'o')
            out = optarg;
        else {
            fprintf(stderr, "usage: pick [-n ITERS] [-o FILE]\n");
            return 2;
        }
    }
    if (iters == 0)
        iters = 1;
    srand(1);
    for (int i = 0; i < NINPUTS; i++) {
        for (int b = 0; b < 4; b++)
            addrs[i][b] = (uint8_t)rand();
        key_lens[i] = (uint32_t)snprintf(keys[i], sizeof(keys[i]), "/item/%d", rand());
    }
    cpu_model(cpu, sizeof(cpu));
    uname(&un);
    strftime(date, sizeof(date), "%Y-%m-%d", gmtime(&t));

    n += (size_t)snprintf(table + n, sizeof(table) - n,
                          "# Balancer pick cost\n\n"
                          "One `gw_balancer_get` + `gw_balancer_done` pair, ns (median of %d runs of %llu pairs), "
                          "equal weights, all peers healthy.\n"
                          "%s, %s %s, %s, `bench/pick/run`.\n\n"
                          "| algorithm | 2 peers | 8 peers | 32 peers |\n| --- | ---: | ---: | ---: |\n",
                          RUNS, (unsigned long long)iters, cpu, un.sysname, un.release, date);
    for (size_t a = 0; a < sizeof(algos) / sizeof(algos[0]); a++) {
        n += (size_t)snprintf(table + n, sizeof(table) - n, "| %s |", algos[a].name);
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            gw_upstream_t *u = make_upstream(&algos[a], sizes[s]);

            n += (size_t)snprintf(table + n, sizeof(table) - n, " %.1f |", median_ns(u, iters));
            free_upstream(u);
        }
        n += (size_t)snprintf(table + n, sizeof(table) - n, "\n");
        fprintf(stderr, "%s done\n", algos[a].name);
    }
    fputs(table, stdout);
    if (out) {
        FILE *f = fopen(out, "w");

        if (f == NULL || fputs(table, f) < 0 || fclose(f) != 0) {
            perror(out);
            return 1;
        }
    }
    return 0;
}
