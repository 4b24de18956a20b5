/*
 * Request rate limiting, nginx's leaky bucket (see limit_req.h).
 *
 * A zone is the one piece of request-path state shared by the workers: a
 * rate limit per client must hold whichever worker the kernel handed the
 * connection to. nginx keeps it in shared memory under a mutex; here it is
 * an open-addressed table of 16-byte slots updated with compare-and-swap, so
 * no worker ever waits for another. Only locations with limit_req touch it.
 *
 * A slot holds the key's 64-bit hash and one word of state: the excess in
 * thousandths of a request (nginx's unit) and the millisecond of the last
 * accounted request. A key probes PROBES slots; when all are taken by other
 * keys, the one idle longest is reused (nginx evicts its least recently used
 * states when the zone is full). Two workers racing for one slot can lose an
 * update; the bucket is then off by one request, never unsafe.
 *
 * Zones belong to a configuration: a reload starts them afresh (nginx keeps
 * a zone whose name and size did not change).
 */
#include "limit_req.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/conf.h"
#include "core/cycle.h"
#include "core/gw.h"
#include "core/log.h"
#include "http.h"
#include "proxy.h"
#include "vars.h"

#define PROBES 8
#define SLOT_BYTES 16 /* what a zone's size buys: size / 16 slots */

typedef struct slot {
    _Atomic uint64_t key;   /* hash of the key; 0 = free */
    _Atomic uint64_t state; /* excess (thousandths) << 32 | last (ms, wrapping) */
} slot_t;

typedef struct zone {
    char *name;
    gw_cv_t *key;
    uint64_t rate; /* thousandths of a request per second (nginx: rate * 1000) */
    uint64_t size;
    slot_t *slots;
    uint64_t mask;
    uint64_t epoch; /* ms: `last` counts from here */
    const char *file;
    uint32_t line;
    int used;
} zone_t;

/* One limit_req line. */
typedef struct limit {
    zone_t *zone;       /* resolved in init_cycle */
    char *zone_name;
    uint64_t burst;     /* thousandths */
    uint64_t delay;     /* thousandths of excess served without delay; UINT64_MAX = nodelay */
    const char *file;
    uint32_t line;
} limit_t;

/* A level's limit_req lines (a level with any replaces what it inherits). */
typedef struct limit_list {
    limit_t *v;
    uint32_t n;
    struct limit_list *next; /* every list of the configuration, for freeing */
} limit_list_t;

typedef struct gw_limit_reg {
    zone_t **zones;
    uint32_t nzones;
    limit_list_t *lists;
} gw_limit_reg_t;

static gw_limit_reg_t *reg_of(gw_cycle_t *cy, gw_conf_err_t *err, const gw_conf_node_t *n)
{
    gw_http_conf_t *hc = cy->http;

    if (hc->limit_req == NULL && (hc->limit_req = calloc(1, sizeof(gw_limit_reg_t))) == NULL)
        gw_conf_error(err, n, "out of memory");
    return hc->limit_req;
}

static zone_t *zone_find(const gw_limit_reg_t *r, const char *name)
{
    for (uint32_t i = 0; i < r->nzones; i++)
        if (strcmp(r->zones[i]->name, name) == 0)
            return r->zones[i];
    return NULL;
}

/* "10r/s", "30r/m" -> thousandths of a request per second (nginx's rounding). */
static int parse_rate(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);

    if (end == s || v == 0 || v > 1000000000ull)
        return -1;
    if (strcmp(end, "r/s") == 0)
        *out = v * 1000;
    else if (strcmp(end, "r/m") == 0)
        *out = v * 1000 / 60;
    else
        return -1;
    return *out ? 0 : -1;
}

/* limit_req_zone KEY zone=NAME:SIZE rate=RATE */
static int set_zone(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_limit_reg_t *r = reg_of(user, err, n);
    zone_t *z, **zs;
    char msg[256];
    uint64_t rate = 0, size = 0;
    const char *name = NULL;
    size_t name_len = 0;

    if (r == NULL)
        return -1;
    for (uint32_t i = 2; i < n->nargs; i++) {
        const char *a = n->args[i], *colon;

        if (strncmp(a, "zone=", 5) == 0) {
            name = a + 5;
            colon = strchr(name, ':');
            if (colon == NULL || colon == name || gw_conf_parse_size(colon + 1, &size) < 0 || size == 0)
                return gw_conf_error(err, n, "invalid zone size \"%s\"", a);
            name_len = (size_t)(colon - name);
        } else if (strncmp(a, "rate=", 5) == 0) {
            if (parse_rate(a + 5, &rate) < 0)
                return gw_conf_error(err, n, "invalid rate \"%s\"", a);
        } else {
            return gw_conf_error(err, n, "invalid parameter \"%s\"", a);
        }
    }
    if (name == NULL)
        return gw_conf_error(err, n, "\"%s\" must have \"zone\" parameter", n->args[0]);
    if (size < 32 * 1024)
        return gw_conf_error(err, n, "zone \"%s\" is too small", name - 5);
    if (rate == 0)
        rate = 1000; /* nginx's default: 1r/s */
    z = calloc(1, sizeof(*z));
    if (z == NULL || (z->name = strndup(name, name_len)) == NULL) {
        free(z);
        return gw_conf_error(err, n, "out of memory");
    }
    if (zone_find(r, z->name)) {
        gw_conf_error(err, n, "duplicate zone \"%s\"", z->name);
        free(z->name);
        free(z);
        return -1;
    }
    z->key = gw_cv_compile(n->args[1], msg, sizeof(msg));
    zs = realloc(r->zones, (r->nzones + 1) * sizeof(*zs));
    if (z->key == NULL || zs == NULL) {
        if (zs)
            r->zones = zs;
        gw_cv_free(z->key);
        free(z->name);
        free(z);
        return gw_conf_error(err, n, "%s", zs ? msg : "out of memory");
    }
    r->zones = zs;
    r->zones[r->nzones++] = z;
    z->rate = rate;
    z->size = size;
    z->file = n->file;
    z->line = n->line;
    return 0;
}

/* limit_req zone=NAME [burst=N] [nodelay | delay=N] */
static int set_limit(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_http_lconf_t *lc = conf;
    gw_limit_reg_t *r = reg_of(user, err, n);
    limit_list_t *l;
    limit_t lim = {.delay = 0, .file = n->file, .line = n->line}, *v;
    uint64_t x;

    if (r == NULL)
        return -1;
    for (uint32_t i = 1; i < n->nargs; i++) {
        const char *a = n->args[i];

        if (strncmp(a, "zone=", 5) == 0 && a[5]) {
            free(lim.zone_name);
            if ((lim.zone_name = strdup(a + 5)) == NULL)
                return gw_conf_error(err, n, "out of memory");
        } else if (strncmp(a, "burst=", 6) == 0) {
            if (gw_conf_parse_uint(a + 6, &x) < 0 || x == 0 || x > 100000000) {
                free(lim.zone_name);
                return gw_conf_error(err, n, "invalid burst value \"%s\"", a);
            }
            lim.burst = x * 1000;
        } else if (strncmp(a, "delay=", 6) == 0) {
            if (gw_conf_parse_uint(a + 6, &x) < 0 || x == 0 || x > 100000000) {
                free(lim.zone_name);
                return gw_conf_error(err, n, "invalid delay value \"%s\"", a);
            }
            lim.delay = x * 1000;
        } else if (strcmp(a, "nodelay") == 0) {
            lim.delay = UINT64_MAX;
            } else {
            free(lim.zone_name);
            return gw_conf_error(err, n, "invalid parameter \"%s\"", a);
        }
    }
    if (lim.zone_name == NULL)
        return gw_conf_error(err, n, "\"%s\" must have \"zone\" parameter", n->args[0]);
    if (lc->limit_req == GW_CONF_UNSET_U64) { /* this level's first: its own list */
        l = calloc(1, sizeof(*l));
        if (l == NULL) {
            free(lim.zone_name);
            return gw_conf_error(err, n, "out of memory");
        }
        l->next = r->lists;
        r->lists = l;
        lc->limit_req = (uint64_t)(uintptr_t)l;
    }
    l = (limit_list_t *)(uintptr_t)lc->limit_req;
    for (uint32_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].zone_name, lim.zone_name) == 0) {
            gw_conf_error(err, n, "duplicate limit_req \"%s\"", lim.zone_name);
            free(lim.zone_name);
            return -1;
        }
    v = realloc(l->v, (l->n + 1) * sizeof(*v));
    if (v == NULL) {
        free(lim.zone_name);
        return gw_conf_error(err, n, "out of memory");
    }
    l->v = v;
    l->v[l->n++] = lim;
    return 0;
}

/* limit_req_status CODE (400..599), stored as is; 0 (unset) means 503. */
static int set_status(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_http_lconf_t *lc = conf;
    uint64_t v;

    if (lc->limit_req_status != GW_CONF_UNSET_U64)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (gw_conf_parse_uint(n->args[1], &v) < 0 || v < 400 || v > 599)
        return gw_conf_error(err, n, "value must be between 400 and 599");
    lc->limit_req_status = v;
    return 0;
}

/* limit_req_log_level info|notice|warn|error, stored as level + 1; 0 (unset) means error. */
static int set_log_level(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                         gw_conf_err_t *err)
{
    gw_http_lconf_t *lc = conf;
    int level = gw_log_level_parse(n->args[1]);

    if (lc->limit_req_log_level != GW_CONF_UNSET_U64)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (level < GW_LOG_ERR || level > GW_LOG_INFO)
        return gw_conf_error(err, n, "invalid value \"%s\"", n->args[1]);
    lc->limit_req_log_level = (uint64_t)level + 1;
    return 0;
}

/* limit_req_dry_run on|off: 1 on, 0 (or unset) off */
static int set_dry_run(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                       gw_conf_err_t *err)
{
    gw_http_lconf_t *lc = conf;

    if (lc->limit_req_dry_run != GW_CONF_UNSET_U64)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    lc->limit_req_dry_run = strcmp(n->args[1], "on") == 0;
    return 0;
}

#define HSL (GW_CONF_HTTP | GW_CONF_SERVER | GW_CONF_LOCATION)

static const gw_conf_cmd_t limit_cmds[] = {
    {"limit_req_zone", GW_CONF_HTTP, GW_CONF_TAKE3, set_zone, 0},
    {"limit_req", HSL, GW_CONF_1MORE, set_limit, 0},
    {"limit_req_status", HSL, GW_CONF_TAKE1, set_status, 0},
    {"limit_req_log_level", HSL, GW_CONF_TAKE1, set_log_level, 0},
    {"limit_req_dry_run", HSL, GW_CONF_FLAG, set_dry_run, 0},
    {NULL, 0, 0, NULL, 0},
};

static uint64_t next_pow2(uint64_t v)
{
    uint64_t p = 1;

    while (p < v)
        p <<= 1;
    return p;
}

/* The workers' clock (CLOCK_MONOTONIC, ms), so `last` compares with w->now. */
static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int init_cycle(gw_cycle_t *cy, gw_conf_err_t *err)
{
    gw_http_conf_t *hc = cy->http;
    gw_limit_reg_t *r = hc ? hc->limit_req : NULL;

    if (r == NULL)
        return 0;
    for (limit_list_t *l = r->lists; l; l = l->next)
        for (uint32_t i = 0; i < l->n; i++) {
            l->v[i].zone = zone_find(r, l->v[i].zone_name);
            if (l->v[i].zone == NULL) {
                snprintf(err->msg, sizeof(err->msg), "zone \"%s\" is unknown in %s:%u", l->v[i].zone_name,
                         l->v[i].file, l->v[i].line);
                return -1;
            }
            l->v[i].zone->used = 1;
        }
    for (uint32_t i = 0; i < r->nzones; i++) {
        zone_t *z = r->zones[i];
        uint64_t n = next_pow2(z->size / SLOT_BYTES);

        if (!z->used) /* nginx allocates unused zones too; nothing reads them */
            continue;
        z->slots = calloc(n, sizeof(slot_t));
        if (z->slots == NULL) {
            snprintf(err->msg, sizeof(err->msg), "could not allocate zone \"%s\" in %s:%u", z->name, z->file,
                     z->line);
            return -1;
        }
        z->mask = n - 1;
        z->epoch = now_ms();
    }
    return 0;
}

static void free_cycle(gw_cycle_t *cy)
{
    gw_http_conf_t *hc = cy->http;
    gw_limit_reg_t *r = hc ? hc->limit_req : NULL;

    if (r == NULL)
        return;
    for (uint32_t i = 0; i < r->nzones; i++) {
        gw_cv_free(r->zones[i]->key);
        free(r->zones[i]->slots);
        free(r->zones[i]->name);
        free(r->zones[i]);
    }
    free(r->zones);
    while (r->lists) {
        limit_list_t *l = r->lists;

        r->lists = l->next;
        for (uint32_t i = 0; i < l->n; i++)
            free(l->v[i].zone_name);
        free(l->v);
        free(l);
    }
    free(r);
    hc->limit_req = NULL;
}

const gw_module_t gw_limit_req_module = {
    .name = "limit_req",
    .cmds = limit_cmds,
    .init_cycle = init_cycle,
    .free_cycle = free_cycle,
};

/* ---- the request path ---- */

/* 64-bit FNV-1a, never 0 (0 marks a free slot). */
static uint64_t hash_key(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h ? h : 1;
}

static uint64_t pack(uint64_t excess, uint32_t last)
{
    return excess << 32 | last;
}

/* nginx's arithmetic: the bucket drains `rate` per second and each request adds 1000. */
static int64_t excess_after(const zone_t *z, uint64_t state, uint32_t now)
{
    int64_t ms = (int32_t)(now - (uint32_t)state);
    int64_t excess;

    if (ms < 0)
        ms = 0; /* another worker's clock read a little later than ours */
    excess = (int64_t)(state >> 32) - (int64_t)z->rate * ms / 1000 + 1000;
    return excess < 0 ? 0 : excess;
}

/* The slot for key h: its own, a free one, or the one idle longest (*fresh: a new state). */
static slot_t *slot_for(zone_t *z, uint64_t h, uint32_t now, int *fresh)
{
    slot_t *oldest = NULL;
    int64_t oldest_idle = -1;

    for (uint64_t i = 0; i < PROBES; i++) {
        slot_t *s = &z->slots[(h + i) & z->mask];
        uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
        int64_t idle;

        if (k == h)
            return s;
        if (k == 0) {
            uint64_t zero = 0;

            atomic_store_explicit(&s->state, pack(0, now), memory_order_relaxed);
            if (atomic_compare_exchange_strong(&s->key, &zero, h)) {
                *fresh = 1;
                return s;
            }
            if (zero == h)
                return s;
            continue;
        }
        idle = (int32_t)(now - (uint32_t)atomic_load_explicit(&s->state, memory_order_relaxed));
        if (idle > oldest_idle) {
            oldest_idle = idle;
            oldest = s;
        }
    }
    atomic_store_explicit(&oldest->state, pack(0, now), memory_order_relaxed);
    atomic_store_explicit(&oldest->key, h, memory_order_release);
    *fresh = 1;
    return oldest;
}

typedef struct pending {
    const zone_t *zone;
    slot_t *slot;
    uint64_t seen;   /* the state read */
    uint64_t excess; /* after this request */
} pending_t;

static void log_limit(const gw_http_req_t *req, const gw_http_lconf_t *lc, const zone_t *z, uint64_t excess,
                      int reject)
{
    int level = lc->limit_req_log_level ? (int)lc->limit_req_log_level - 1 : GW_LOG_ERR;
    char ip[INET6_ADDRSTRLEN] = "-";

    if (!reject)
        level = level == GW_LOG_INFO ? GW_LOG_INFO : level + 1; /* nginx logs delays one level lower */
    if (!gw_log_enabled((gw_log_level_t)level))
        return;
    if (req->client->peer.family)
        inet_ntop(req->client->peer.family, req->client->peer.addr, ip, sizeof(ip));
    if (reject)
        gw_log((gw_log_level_t)level, "limiting requests%s, excess: %llu.%03llu by zone \"%s\", client: %s",
               lc->limit_req_dry_run == 1 ? ", dry run" : "", (unsigned long long)(excess / 1000),
               (unsigned long long)(excess % 1000), z->name, ip);
    else
        gw_log((gw_log_level_t)level, "delaying request%s, excess: %llu.%03llu, by zone \"%s\", client: %s",
               lc->limit_req_dry_run == 1 ? ", dry run" : "", (unsigned long long)(excess / 1000),
               (unsigned long long)(excess % 1000), z->name, ip);
}

int gw_limit_req_check(gw_worker_t *w, gw_http_req_t *req, unsigned *status, uint64_t *delay_ms)
{
    const gw_http_lconf_t *lc = gw_exchange_lconf(req);
    const limit_list_t *l;
    pending_t p[16];
    uint64_t delay = 0;
    uint32_t n = 0;

    if (lc->limit_req == 0 || lc->limit_req == GW_CONF_UNSET_U64)
        return GW_LIMIT_PASS;
    l = (const limit_list_t *)(uintptr_t)lc->limit_req;
    for (uint32_t i = 0; i < l->n && n < 16; i++) {
        const limit_t *lim = &l->v[i];
        zone_t *z = lim->zone;
        char buf[256];
        size_t len = gw_cv_eval(z->key, req, buf, sizeof(buf));
        uint32_t now = (uint32_t)(w->now - z->epoch);
        uint64_t h, state;
        int64_t excess;
        char *big = NULL;
        int fresh = 0;

        if (len == 0)
            continue; /* nginx: an empty key is not limited */
        if (len > sizeof(buf)) {
            big = malloc(len);
            if (big == NULL)
                continue;
            gw_cv_eval(z->key, req, big, len);
        }
        h = hash_key(big ? big : buf, len);
        free(big);
        p[n].zone = z;
        p[n].slot = slot_for(z, h, now, &fresh);
        state = atomic_load_explicit(&p[n].slot->state, memory_order_relaxed);
        excess = fresh ? 0 : excess_after(z, state, now); /* nginx: a new state starts empty */
        if ((uint64_t)excess > lim->burst) {
            log_limit(req, lc, z, (uint64_t)excess, 1);
            if (lc->limit_req_dry_run == 1)
                continue;
            *status = lc->limit_req_status ? (unsigned)lc->limit_req_status : 503;
            return GW_LIMIT_REJECT; /* nothing accounted, as nginx */
        }
        p[n].seen = state;
        p[n].excess = (uint64_t)excess;
        if (lim->delay != UINT64_MAX && (uint64_t)excess > lim->delay) {
            uint64_t d = ((uint64_t)excess - lim->delay) * 1000 / z->rate;

            if (d > delay)
                delay = d;
            log_limit(req, lc, z, (uint64_t)excess, 0);
        }
        n++;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t now = (uint32_t)(w->now - p[i].zone->epoch);

        /* Lost to another worker's update of the same key: the bucket misses this request. */
        atomic_compare_exchange_strong(&p[i].slot->state, &p[i].seen, pack(p[i].excess, now));
    }
    if (delay == 0 || lc->limit_req_dry_run == 1) /* a dry run accounts, as nginx, but never holds */
        return GW_LIMIT_PASS;
    *delay_ms = delay;
    return GW_LIMIT_DELAY;
}
