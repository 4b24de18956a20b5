/*
 * The gzip directives, at http, server and location level, inherited
 * downwards like every gw_http_lconf_t field (nginx's defaults are set in
 * http_conf.c's lconf_defaults):
 *
 *   gzip on|off                    off
 *   gzip_types MIME... | *         text/html (always compressed when gzip is on)
 *   gzip_min_length SIZE           20 (compared with the response's Content-Length)
 *   gzip_comp_level 1..9           1
 *   gzip_proxied off|expired|no-cache|no-store|private|no_last_modified|no_etag|auth|any...   off
 *   gzip_vary on|off               off
 *   gzip_http_version 1.0|1.1      1.1
 *   gzip_disable REGEX|msie6...    none (User-Agent patterns)
 *
 * The lists (types, disable) are allocated per level that writes them; a
 * level that does not inherits its parent's pointer, so freeing walks the
 * levels and frees a pointer only where it differs from the parent's.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_gzip.h"
#include "core/conf.h"
#include "core/cycle.h"
#include "core/log.h"
#include "http.h"

#define LC(field) offsetof(gw_http_lconf_t, field)
#define HSL (GW_CONF_HTTP | GW_CONF_SERVER | GW_CONF_LOCATION)

/* Every level's struct starts with its gw_http_lconf_t. */
static uint64_t *slot(void *conf, const gw_conf_cmd_t *cmd)
{
    return (uint64_t *)((char *)conf + cmd->offset);
}

static int duplicate(const gw_conf_node_t *n, gw_conf_err_t *err)
{
    return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
}

/* gzip, gzip_vary: the core already checked the value is on or off. */
static int set_flag(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    uint64_t *v = slot(conf, cmd);

    if (*v != GW_CONF_UNSET_U64)
        return duplicate(n, err);
    *v = strcasecmp(n->args[1], "on") == 0;
    return 0;
}

static int set_comp_level(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                          gw_conf_err_t *err)
{
    uint64_t *v = slot(conf, cmd), level;

    if (*v != GW_CONF_UNSET_U64)
        return duplicate(n, err);
    if (gw_conf_parse_uint(n->args[1], &level) < 0)
        return gw_conf_error(err, n, "\"%s\" directive invalid number", n->args[0]);
    if (level < 1 || level > 9)
        return gw_conf_error(err, n, "value must be between 1 and 9");
    *v = level;
    return 0;
}

static int set_http_version(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                            gw_conf_err_t *err)
{
    uint64_t *v = slot(conf, cmd);

    if (*v != GW_CONF_UNSET_U64)
        return duplicate(n, err);
    if (strcmp(n->args[1], "1.0") == 0)
        *v = 0;
    else if (strcmp(n->args[1], "1.1") == 0)
        *v = 1;
    else
        return gw_conf_error(err, n, "invalid value \"%s\"", n->args[1]);
    return 0;
}

static int set_proxied(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                       gw_conf_err_t *err)
{
    static const gw_conf_bit_t names[] = {
        {"off", GW_GZIP_PROXIED_OFF},
        {"expired", GW_GZIP_PROXIED_EXPIRED},
        {"no-cache", GW_GZIP_PROXIED_NO_CACHE},
        {"no-store", GW_GZIP_PROXIED_NO_STORE},
        {"private", GW_GZIP_PROXIED_PRIVATE},
        {"no_last_modified", GW_GZIP_PROXIED_NO_LM},
        {"no_etag", GW_GZIP_PROXIED_NO_ETAG},
        {"auth", GW_GZIP_PROXIED_AUTH},
        {"any", GW_GZIP_PROXIED_ANY},
    };
    uint64_t *v = slot(conf, cmd), mask = 0;

    if (*v != GW_CONF_UNSET_U64)
        return duplicate(n, err);
    for (uint32_t i = 1; i < n->nargs; i++) {
        uint64_t bit;

        if (gw_conf_bit(n, i, names, sizeof(names) / sizeof(names[0]), &bit, err) < 0)
            return -1;
        if (mask & bit)
            gw_conf_log(GW_LOG_WARN, n, "duplicate value \"%s\"", n->args[i]);
        mask |= bit;
    }
    *v = mask;
    return 0;
}

static void types_free(gw_gzip_types_t *t)
{
    if (t == NULL)
        return;
    for (uint32_t i = 0; i < t->n; i++)
        free(t->types[i]);
    free(t->types);
    free(t);
}

/* gzip_types may be written several times at one level: each adds to its list; "*" ends it (nginx). */
static int set_types(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    uint64_t *v = slot(conf, cmd);
    gw_gzip_types_t *t;
    char **grown;

    if (*v == GW_CONF_UNSET_U64) {
        t = calloc(1, sizeof(*t));
        if (t == NULL)
            return gw_conf_error(err, n, "out of memory");
        *v = (uint64_t)(uintptr_t)t; /* owned by this level from here on, even on a later error */
    }
    t = (gw_gzip_types_t *)(uintptr_t)*v;
    if (t->any)
        return 0;
    grown = realloc(t->types, (t->n + n->nargs) * sizeof(*grown));
    if (grown == NULL)
        return gw_conf_error(err, n, "out of memory");
    t->types = grown;
    for (uint32_t i = 1; i < n->nargs; i++) {
        uint32_t k;
        char *s;

        if (strcmp(n->args[i], "*") == 0) {
            t->any = 1;
            return 0;
        }
        s = strdup(n->args[i]);
        if (s == NULL)
            return gw_conf_error(err, n, "out of memory");
        for (char *p = s; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        for (k = 0; k < t->n && strcmp(t->types[k], s) != 0; k++)
            ;
        if (k < t->n || strcmp(s, "text/html") == 0) { /* text/html is always in the list */
            gw_conf_log(GW_LOG_WARN, n, "duplicate MIME type \"%s\"", s);
            free(s);
            continue;
        }
        t->types[t->n++] = s;
    }
    return 0;
}

static void disable_free(gw_gzip_disable_t *d)
{
    if (d == NULL)
        return;
    for (uint32_t i = 0; i < d->n; i++)
        gw_regex_free(d->re[i]);
    free(d->re);
    free(d);
}

/* gzip_disable may be written several times at one level: each adds to its list (nginx). */
static int set_disable(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                       gw_conf_err_t *err)
{
    uint64_t *v = slot(conf, cmd);
    gw_gzip_disable_t *d;
    gw_regex_t **grown;

    if (*v == GW_CONF_UNSET_U64) {
        d = calloc(1, sizeof(*d));
        if (d == NULL)
            return gw_conf_error(err, n, "out of memory");
        *v = (uint64_t)(uintptr_t)d;
    }
    d = (gw_gzip_disable_t *)(uintptr_t)*v;
    grown = realloc(d->re, (d->n + n->nargs) * sizeof(*grown));
    if (grown == NULL)
        return gw_conf_error(err, n, "out of memory");
    d->re = grown;
    for (uint32_t i = 1; i < n->nargs; i++) {
        char msg[512];

        if (strcmp(n->args[i], "msie6") == 0) {
            d->msie6 = 1;
            continue;
        }
        d->re[d->n] = gw_regex_compile(n->args[i], 1, msg, sizeof(msg));
        if (d->re[d->n] == NULL)
            return gw_conf_error(err, n, "%s", msg);
        d->n++;
    }
    return 0;
}

static const gw_conf_cmd_t gzip_cmds[] = {
    {"gzip", HSL, GW_CONF_FLAG, set_flag, LC(gzip)},
    {"gzip_vary", HSL, GW_CONF_FLAG, set_flag, LC(gzip_vary)},
    {"gzip_types", HSL, GW_CONF_1MORE, set_types, LC(gzip_types)},
    {"gzip_min_length", HSL, GW_CONF_TAKE1, gw_conf_set_size_slot, LC(gzip_min_length)},
    {"gzip_comp_level", HSL, GW_CONF_TAKE1, set_comp_level, LC(gzip_comp_level)},
    {"gzip_proxied", HSL, GW_CONF_1MORE, set_proxied, LC(gzip_proxied)},
    {"gzip_http_version", HSL, GW_CONF_TAKE1, set_http_version, LC(gzip_http_version)},
    {"gzip_disable", HSL, GW_CONF_1MORE, set_disable, LC(gzip_disable)},
    {NULL, 0, 0, NULL, 0},
};

/* Free the lists `lc` allocated itself (not those it inherited from `parent`). */
static void free_level(const gw_http_lconf_t *lc, const gw_http_lconf_t *parent)
{
    if (lc->gzip_types != GW_CONF_UNSET_U64 && (parent == NULL || lc->gzip_types != parent->gzip_types))
        types_free((gw_gzip_types_t *)(uintptr_t)lc->gzip_types);
    if (lc->gzip_disable != GW_CONF_UNSET_U64 && (parent == NULL || lc->gzip_disable != parent->gzip_disable))
        disable_free((gw_gzip_disable_t *)(uintptr_t)lc->gzip_disable);
}

/* Runs before http's free_cycle (modules are freed in reverse order), while the levels exist. */
static void free_cycle(gw_cycle_t *cy)
{
    gw_http_conf_t *hc = cy->http;

    if (hc == NULL)
        return;
    for (uint32_t i = 0; i < hc->nsrvs; i++) {
        gw_http_srv_t *s = hc->srvs[i];

        /* children first: their test reads the parent's pointer, still unfreed */
        for (uint32_t k = s->nlocs; k-- > 0;) {
            const gw_http_loc_t *l = s->locs[k];

            free_level(&l->lc, l->parent ? &l->parent->lc : &s->lc);
        }
        free_level(&s->lc, &hc->lc);
    }
    free_level(&hc->lc, NULL);
}

const gw_module_t gw_gzip_module = {
    .name = "gzip",
    .cmds = gzip_cmds,
    .free_cycle = free_cycle,
};
