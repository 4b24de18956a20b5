/*
 * The upstream registry: `upstream NAME { server ...; keepalive N; }` blocks,
 * upstreams made for proxy_pass addresses, and each worker's runtime view.
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
    u = calloc(1, sizeof(*u));
    if (list == NULL || u == NULL) {
        free(u);
        if (list)
            r->list = list;
        return NULL;
    }
    r->list = list;
    u->name = strdup(name);
    u->idx = r->n;
    u->ops = &gw_round_robin_ops;
    u->keepalive_requests = 1000;   /* nginx's defaults */
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

/* Resolve `text` and append one peer per address. */
static int add_peers(gw_upstream_t *u, const char *text, uint32_t weight, const gw_conf_node_t *n,
                     gw_conf_err_t *err)
{
    gw_addr_t addrs[MAX_ADDRS_PER_NAME];
    const char *why;
    gw_peer_t *peers;
    int k = gw_addr_resolve(text, 80, 0, addrs, MAX_ADDRS_PER_NAME, &why);

    if (k < 0)
        return gw_conf_error(err, n, "%s in upstream \"%s\"", why, text);
    peers = realloc(u->peers, (u->npeers + (uint32_t)k) * sizeof(*peers));
    if (peers == NULL)
        return gw_conf_error(err, n, "out of memory");
    u->peers = peers;
    for (int i = 0; i < k; i++) {
        gw_peer_t *p = &u->peers[u->npeers];

        memset(p, 0, sizeof(*p));
        p->addr = addrs[i];
        /* Several addresses for one name: show which one in logs. */
        if (k > 1)
            gw_addr_format(&addrs[i], p->name, sizeof(p->name));
        else
            snprintf(p->name, sizeof(p->name), "%s", text);
        p->weight = weight;
        p->idx = u->npeers++;
    }
    if (u->npeers > 64 * 4)
        return gw_conf_error(err, n, "too many servers in upstream \"%s\" (256 at most)", u->name);
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
    if (add_peers(u, hostport, 1, n, err) < 0)
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
    return 0;
}

/* server ADDR [weight=N]; */
static int set_server(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_upstream_t *u = conf;
    uint64_t weight = 1;

    for (uint32_t i = 2; i < n->nargs; i++) {
        const char *a = n->args[i];

        if (strncmp(a, "weight=", 7) == 0) {
            if (gw_conf_parse_uint(a + 7, &weight) < 0 || weight == 0 || weight > 10000)
                return gw_conf_error(err, n, "invalid parameter \"%s\"", a);
            continue;
        }
        return gw_conf_error(err, n, "invalid parameter \"%s\"", a);
    }
    return add_peers(u, n->args[1], (uint32_t)weight, n, err);
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
        free(r->list[i]->name);
        free(r->list[i]->peers);
        free(r->list[i]);
    }
    free(r->list);
    free(r);
    cy->balancer = NULL;
}

static int init_worker(gw_worker_t *w)
{
    registry_t *r = registry_of((gw_cycle_t *)w->cycle);
    gw_upstream_rt_t *rts;

    if (r == NULL || r->n == 0)
        return 0;
    rts = calloc(r->n, sizeof(*rts));
    if (rts == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < r->n; i++) {
        rts[i].u = r->list[i];
        rts[i].lb = r->list[i]->ops->worker_init(r->list[i]);
        if (rts[i].lb == NULL) {
            w->balancer = rts; /* exit_worker frees what was made */
            return -ENOMEM;
        }
    }
    w->balancer = rts;
    return 0;
}

static void exit_worker(gw_worker_t *w)
{
    registry_t *r = registry_of((gw_cycle_t *)w->cycle);
    gw_upstream_rt_t *rts = w->balancer;

    if (rts == NULL)
        return;
    for (uint32_t i = 0; i < r->n; i++) {
        if (rts[i].lb)
            r->list[i]->ops->worker_free(rts[i].lb);
        gw_pool_free(w, &rts[i].pool);
    }
    free(rts);
    w->balancer = NULL;
}

gw_upstream_rt_t *gw_upstream_rt(gw_worker_t *w, const gw_upstream_t *u)
{
    return &((gw_upstream_rt_t *)w->balancer)[u->idx];
}

const gw_module_t gw_balancer_module = {
    .name = "upstream",
    .cmds = cmds,
    .free_cycle = free_cycle,
    .init_worker = init_worker,
    .exit_worker = exit_worker,
};
