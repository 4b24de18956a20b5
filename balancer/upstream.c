/*
 * The upstream registry: `upstream NAME { ... }` blocks and the upstreams
 * made for proxy_pass addresses, their directives (server, the balancing
 * methods, keepalive), and each worker's runtime view of them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer.h"
#include "core/conf.h"
#include "core/cycle.h"
#include "core/gw.h"
#include "core/worker-t.h"

#define MAX_ADDRS_PER_NAME 16

typedef struct registry {
    gw_upstream_t **list;
    uint32_t n;
} registry_t;

/* The registry hangs off cy->balancer, an opaque slot: the core knows no balancer types. */
static registry_t *registry_of(gw_cycle_t *cy)
{
    return cy->balancer;
}

static registry_t *registry_get(gw_cycle_t *cy)
{
    if (cy->balancer == NULL)
        cy->balancer = calloc(1, sizeof(registry_t));
    return cy->balancer;
}

static gw_upstream_t *upstream_new(gw_cycle_t *cy, const char *name, const gw_conf_node_t *n)
{
    registry_t *r = registry_get(cy);
    gw_upstream_t *u, **list;

    if (r == NULL)
        return NULL;
    list = realloc(r->list, (r->n + 1) * sizeof(*list));
    if (list == NULL)
        return NULL;
    r->list = list;
    u = calloc(1, sizeof(*u));
    if (u == NULL)
        return NULL;
    u->name = strdup(name);
    u->idx = r->n;
    u->ops = &gw_round_robin_ops;
    u->keepalive_requests = 1000; /* nginx's defaults */
    u->keepalive_timeout = 60000;
    u->file = n->file;
    u->line = n->line;
    r->list[r->n++] = u;
    return u;
}

gw_upstream_t *gw_upstream_find(gw_cycle_t *cy, const char *name)
{
    registry_t *r = registry_of(cy);

    for (uint32_t i = 0; r && i < r->n; i++)
        if (!r->list[i]->implicit && strcmp(r->list[i]->name, name) == 0)
            return r->list[i];
    return NULL;
}

gw_upstream_t *const *gw_upstreams(gw_cycle_t *cy, uint32_t *n)
{
    registry_t *r = registry_of(cy);

    *n = r ? r->n : 0;
    return r ? r->list : NULL;
}

/* Resolve `text` and append one peer per address, all with the parameters of `tmpl`. */
static int add_peers(gw_upstream_t *u, const char *text, const gw_peer_t *tmpl, const gw_conf_node_t *n,
                     gw_conf_err_t *err)
{
    gw_addr_t addrs[MAX_ADDRS_PER_NAME];
    const char *why;
    gw_peer_t *peers;
    int k = gw_addr_resolve(text, 80, 0, addrs, MAX_ADDRS_PER_NAME, &why);

    if (k < 0)
        return gw_conf_error(err, n, "%s in upstream \"%s\"", why, text);
    if (u->npeers + (uint32_t)k > GW_MAX_PEERS)
        return gw_conf_error(err, n, "too many servers in upstream \"%s\" (%u at most)", u->name, GW_MAX_PEERS);
    peers = realloc(u->peers, (u->npeers + (uint32_t)k) * sizeof(*peers));
    if (peers == NULL)
        return gw_conf_error(err, n, "out of memory");
    u->peers = peers;
    for (int i = 0; i < k; i++) {
        gw_peer_t *p = &u->peers[u->npeers++];

        *p = *tmpl;
        p->addr = addrs[i];
        snprintf(p->server, sizeof(p->server), "%s", text);
        /* Several addresses for one name: logs say which one. */
        if (k > 1)
            gw_addr_format(&addrs[i], p->name, sizeof(p->name));
        else
            snprintf(p->name, sizeof(p->name), "%s", text);
    }
    return 0;
}

static const gw_peer_t default_peer = {.weight = 1, .max_fails = 1, .fail_timeout = 10000};

/*
 * Primaries first, then backups, each in configured order; index them, sum
 * the primaries' weights, check what the method allows, let it prepare.
 */
static int finish_upstream(gw_upstream_t *u, const gw_conf_node_t *n, gw_conf_err_t *err)
{
    gw_peer_t *sorted = malloc(u->npeers * sizeof(*sorted));
    uint32_t k = 0;
    char msg[256];

    if (sorted == NULL)
        return gw_conf_error(err, n, "out of memory");
    for (int backup = 0; backup <= 1; backup++)
        for (uint32_t i = 0; i < u->npeers; i++)
            if (u->peers[i].backup == backup)
                sorted[k++] = u->peers[i];
    free(u->peers);
    u->peers = sorted;
    u->nprimary = 0;
    u->total_weight = 0;
    for (uint32_t i = 0; i < u->npeers; i++) {
        u->peers[i].idx = i;
        if (!u->peers[i].backup) {
            u->nprimary++;
            u->total_weight += u->peers[i].weight;
        }
    }
    if (u->nprimary == 0)
        return gw_conf_error(err, n, "no primary servers in upstream \"%s\" (only backups)", u->name);
    /* nginx refuses backups where the method decides by hash or at random. */
    if (u->nprimary < u->npeers && u->ops != &gw_round_robin_ops && u->ops != &gw_least_conn_ops)
        return gw_conf_error(err, n, "\"backup\" servers cannot be used with \"%s\" in upstream \"%s\"", u->ops->name,
                             u->name);
    if (u->ops->init && u->ops->init(u, msg, sizeof(msg)) < 0)
        return gw_conf_error(err, n, "%s", msg);
    return 0;
}

gw_upstream_t *gw_upstream_for_address(gw_cycle_t *cy, const char *hostport, const gw_conf_node_t *n,
                                       gw_conf_err_t *err)
{
    registry_t *r = registry_get(cy);
    gw_upstream_t *u;

    /* Two locations proxying to the same address share one upstream (and pool). */
    for (uint32_t i = 0; r && i < r->n; i++)
        if (r->list[i]->implicit && strcmp(r->list[i]->name, hostport) == 0)
            return r->list[i];
    u = upstream_new(cy, hostport, n);
    if (u == NULL) {
        gw_conf_error(err, n, "out of memory");
        return NULL;
    }
    u->implicit = 1;
    if (add_peers(u, hostport, &default_peer, n, err) < 0 || finish_upstream(u, n, err) < 0)
        return NULL;
    return u;
}

/* upstream NAME { ... } */
static int set_upstream(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                        gw_conf_err_t *err)
{
    gw_cycle_t *cy = user;
    gw_upstream_t *u;

    if (gw_upstream_find(cy, n->args[1]))
        return gw_conf_error(err, n, "duplicate upstream \"%s\"", n->args[1]);
    u = upstream_new(cy, n->args[1], n);
    if (u == NULL)
        return gw_conf_error(err, n, "out of memory");
    if (gw_conf_apply(n->children, n->nchildren, GW_CONF_UPSTREAM, gw_cycle_tables(), u, cy, err) < 0)
        return -1;
    if (u->npeers == 0)
        return gw_conf_error(err, n, "no servers are inside upstream");
    return finish_upstream(u, n, err);
}

static int param_uint(const char *v, uint64_t max, uint32_t *out)
{
    uint64_t x;

    if (gw_conf_parse_uint(v, &x) < 0 || x > max)
        return -1;
    *out = (uint32_t)x;
    return 0;
}

/* server ADDR [weight=N] [max_fails=N] [fail_timeout=T] [max_conns=N] [backup] [down] */
static int set_server(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_upstream_t *u = conf;
    gw_peer_t p = default_peer;

    for (uint32_t i = 2; i < n->nargs; i++) {
        const char *a = n->args[i];
        int bad = 0;

        if (strncmp(a, "weight=", 7) == 0)
            bad = param_uint(a + 7, 10000, &p.weight) < 0 || p.weight == 0;
        else if (strncmp(a, "max_fails=", 10) == 0)
            bad = param_uint(a + 10, 1000000, &p.max_fails) < 0;
        else if (strncmp(a, "fail_timeout=", 13) == 0)
            bad = gw_conf_parse_msec(a + 13, &p.fail_timeout) < 0;
        else if (strncmp(a, "max_conns=", 10) == 0)
            bad = param_uint(a + 10, 1000000, &p.max_conns) < 0;
        else if (strcmp(a, "backup") == 0)
            p.backup = 1;
        else if (strcmp(a, "down") == 0)
            p.down = 1;
        else
            bad = 1;
        if (bad)
            return gw_conf_error(err, n, "invalid parameter \"%s\"", a);
    }
    return add_peers(u, n->args[1], &p, n, err);
}

static int set_method(gw_upstream_t *u, const gw_conf_node_t *n, const gw_balancer_ops_t *ops, gw_conf_err_t *err)
{
    if (u->ops != &gw_round_robin_ops)
        return gw_conf_error(err, n, "load balancing method redefined");
    u->ops = ops;
    return 0;
}

static int set_least_conn(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                          gw_conf_err_t *err)
{
    return set_method(conf, n, &gw_least_conn_ops, err);
}

static int set_ip_hash(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    return set_method(conf, n, &gw_ip_hash_ops, err);
}

/* random [two [least_conn]] */
static int set_random(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_upstream_t *u = conf;

    if (n->nargs >= 2) {
        if (strcmp(n->args[1], "two") != 0)
            return gw_conf_error(err, n, "invalid parameter \"%s\"", n->args[1]);
        if (n->nargs == 3 && strcmp(n->args[2], "least_conn") != 0)
            return gw_conf_error(err, n, "invalid parameter \"%s\"", n->args[2]);
        u->two = 1;
    }
    return set_method(u, n, &gw_random_ops, err);
}

/* hash KEY [consistent]; the key is compiled by the HTTP layer (it names variables). */
static int set_hash(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_upstream_t *u = conf;

    if (n->nargs == 3) {
        if (strcmp(n->args[2], "consistent") != 0)
            return gw_conf_error(err, n, "invalid parameter \"%s\"", n->args[2]);
        u->consistent = 1;
    }
    u->hash_key = strdup(n->args[1]);
    if (u->hash_key == NULL)
        return gw_conf_error(err, n, "out of memory");
    return set_method(u, n, &gw_hash_ops, err);
}

static int set_keepalive(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                         gw_conf_err_t *err)
{
    gw_upstream_t *u = conf;
    uint64_t v;

    if (u->keepalive)
        return gw_conf_error(err, n, "\"keepalive\" directive is duplicate");
    if (gw_conf_parse_uint(n->args[1], &v) < 0 || v == 0 || v > 65536)
        return gw_conf_error(err, n, "invalid value \"%s\" in \"keepalive\" directive", n->args[1]);
    u->keepalive = (uint32_t)v;
    return 0;
}

static int set_keepalive_timeout(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                                 gw_conf_err_t *err)
{
    gw_upstream_t *u = conf;

    if (gw_conf_parse_msec(n->args[1], &u->keepalive_timeout) < 0)
        return gw_conf_error(err, n, "invalid value \"%s\" in \"%s\" directive", n->args[1], n->args[0]);
    return 0;
}

static int set_keepalive_requests(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                                  gw_conf_err_t *err)
{
    gw_upstream_t *u = conf;
    uint64_t v;

    if (gw_conf_parse_uint(n->args[1], &v) < 0 || v == 0 || v > UINT32_MAX)
        return gw_conf_error(err, n, "invalid value \"%s\" in \"%s\" directive", n->args[1], n->args[0]);
    u->keepalive_requests = (uint32_t)v;
    return 0;
}

static const gw_conf_cmd_t cmds[] = {
    {"upstream", GW_CONF_HTTP, GW_CONF_BLOCK | GW_CONF_TAKE1, set_upstream, 0},
    {"server", GW_CONF_UPSTREAM, GW_CONF_1MORE, set_server, 0},
    {"least_conn", GW_CONF_UPSTREAM, GW_CONF_NOARGS, set_least_conn, 0},
    {"ip_hash", GW_CONF_UPSTREAM, GW_CONF_NOARGS, set_ip_hash, 0},
    {"random", GW_CONF_UPSTREAM, GW_CONF_NOARGS | GW_CONF_TAKE12, set_random, 0},
    {"hash", GW_CONF_UPSTREAM, GW_CONF_TAKE12, set_hash, 0},
    {"keepalive", GW_CONF_UPSTREAM, GW_CONF_TAKE1, set_keepalive, 0},
    {"keepalive_timeout", GW_CONF_UPSTREAM, GW_CONF_TAKE1, set_keepalive_timeout, 0},
    {"keepalive_requests", GW_CONF_UPSTREAM, GW_CONF_TAKE1, set_keepalive_requests, 0},
    {NULL, 0, 0, NULL, 0},
};

static void free_cycle(gw_cycle_t *cy)
{
    registry_t *r = registry_of(cy);

    if (r == NULL)
        return;
    for (uint32_t i = 0; i < r->n; i++) {
        gw_upstream_t *u = r->list[i];

        if (u->ops->free)
            u->ops->free(u);
        free(u->name);
        free(u->peers);
        free(u->hash_key);
        free(u);
    }
    free(r->list);
    free(r);
    cy->balancer = NULL;
}

static void free_rts(gw_upstream_rt_t *rts, uint32_t n, gw_worker_t *w)
{
    for (uint32_t i = 0; i < n; i++) {
        free(rts[i].ps);
        gw_pool_free(w, &rts[i].pool);
    }
    free(rts);
}

static int init_worker(gw_worker_t *w, gw_wcycle_t *wc)
{
    registry_t *r = registry_of((gw_cycle_t *)wc->cycle);
    gw_upstream_rt_t *rts;

    if (r == NULL || r->n == 0)
        return 0;
    rts = calloc(r->n, sizeof(*rts));
    if (rts == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < r->n; i++) {
        const gw_upstream_t *u = r->list[i];

        rts[i].u = u;
        rts[i].ps = calloc(u->npeers, sizeof(*rts[i].ps));
        if (rts[i].ps == NULL) {
            free_rts(rts, i + 1, w);
            return -ENOMEM;
        }
        for (uint32_t k = 0; k < u->npeers; k++)
            rts[i].ps[k].effective_weight = u->peers[k].weight;
        /* Different per worker and upstream, never zero (xorshift's fixed point). */
        rts[i].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(w->id * 1000003u + i + 1) ^ w->now_us;
        if (rts[i].rng == 0)
            rts[i].rng = 1;
    }
    wc->balancer = rts;
    return 0;
}

static void exit_worker(gw_worker_t *w, gw_wcycle_t *wc)
{
    registry_t *r = registry_of((gw_cycle_t *)wc->cycle);

    if (wc->balancer)
        free_rts(wc->balancer, r->n, w);
    wc->balancer = NULL;
}

gw_upstream_rt_t *gw_upstream_rt(gw_wcycle_t *wc, const gw_upstream_t *u)
{
    return &((gw_upstream_rt_t *)wc->balancer)[u->idx];
}

const gw_module_t gw_balancer_module = {
    .name = "upstream",
    .cmds = cmds,
    .free_cycle = free_cycle,
    .init_worker = init_worker,
    .exit_worker = exit_worker,
};
