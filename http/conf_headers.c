/*
 * Directives of header rewriting (proxy_set_header, proxy_hide_header,
 * proxy_pass_header, proxy_http_version, add_header, server_tokens,
 * underscores_in_headers, ignore_invalid_headers), their inheritance, and
 * their compilation into what headers.c walks per request.
 *
 * Inheritance is nginx's: a list (proxy_set_header, add_header,
 * proxy_hide_header, proxy_pass_header) is inherited whole by a level that
 * has none of its own, and replaced whole by a level that has any.
 *
 * Defaults where nginx's differ on purpose (see the module's report in
 * ARCHITECTURE.md): proxy_http_version is 1.1, and the default
 * "Connection: close" is left out when the upstream has a keepalive pool, so
 * that `keepalive N` alone keeps upstream connections (a config written for
 * nginx, with "proxy_http_version 1.1; proxy_set_header Connection "";",
 * behaves the same).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "balancer/balancer.h"
#include "core/conf.h"
#include "core/cycle.h"
#include "headers.h"
#include "http.h"

_Static_assert(offsetof(gw_http_loc_t, hconf) == offsetof(gw_http_srv_t, hconf) &&
                   offsetof(gw_http_srv_t, hconf) == offsetof(gw_http_conf_t, hconf),
               "hconf must sit at the same place in every level");

enum { OWN_SET = 1, OWN_ADD = 2, OWN_HIDE = 4, OWN_PASS = 8, OWN_REDIRECT = 16 };

/* The level's settings, created by its first header directive (or when merging). */
static gw_hconf_t *hconf_of(void *level)
{
    gw_hconf_t **slot = (gw_hconf_t **)((char *)level + offsetof(gw_http_loc_t, hconf));

    if (*slot == NULL) {
        *slot = calloc(1, sizeof(**slot));
        if (*slot) {
            (*slot)->http_version = GW_CONF_UNSET_INT;
            (*slot)->server_tokens = GW_CONF_UNSET_INT;
            (*slot)->underscores = GW_CONF_UNSET_INT;
            (*slot)->ignore_invalid = GW_CONF_UNSET_INT;
            (*slot)->expires = GW_EXPIRES_UNSET;
        }
    }
    return *slot;
}

/* ---- name sets ---- */

static int name_add(gw_hname_set_t *s, const char *name, size_t len)
{
    gw_hname_t *grown = realloc(s->v, (s->n + 1) * sizeof(*grown));
    gw_hname_t *m;

    if (grown == NULL)
        return -1;
    s->v = grown;
    m = &s->v[s->n];
    m->lc = strndup(name, len);
    if (m->lc == NULL)
        return -1;
    for (char *p = m->lc; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p | 0x20);
    m->len = (uint32_t)len;
    m->hash = gw_hdr_hash(name, len);
    s->bloom |= 1ull << (m->hash & 63);
    s->n++;
    return 0;
}

static int name_in(const gw_hname_set_t *s, const char *name, size_t len)
{
    for (uint32_t i = 0; s && i < s->n; i++)
        if (s->v[i].len == len && strncasecmp(s->v[i].lc, name, len) == 0)
            return 1;
    return 0;
}

static void names_free(gw_hname_set_t *s)
{
    for (uint32_t i = 0; s && i < s->n; i++)
        free(s->v[i].lc);
    if (s)
        free(s->v);
}

static int is_name(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* ---- setters ---- */

static void entry_free(gw_hentry_t *e)
{
    free(e->name);
    free(e->line);
    gw_cv_free(e->cv);
}

static void list_free(gw_hlist_t *l)
{
    for (uint32_t i = 0; l && i < l->n; i++)
        entry_free(&l->e[i]);
    if (l)
        free(l->e);
    free(l);
}

/* Append NAME VALUE to the level's list *lp (created on first use), the value compiled now. */
static int add_entry(const gw_conf_node_t *n, gw_hlist_t **lp, uint8_t *owns, uint8_t own_bit, int always,
                     gw_conf_err_t *err)
{
    const char *name = n->args[1], *value = n->args[2];
    gw_hentry_t e = {0}, *grown;
    char msg[256];

    if (*lp == NULL) {
        *lp = calloc(1, sizeof(**lp));
        if (*lp == NULL)
            return gw_conf_error(err, n, "out of memory");
        *owns |= own_bit;
    }
    e.name = strdup(name);
    e.name_len = (uint32_t)strlen(name);
    e.hash = gw_hdr_hash(name, e.name_len);
    e.always = (uint8_t)always;
    e.kind = is_name(name, "connection") ? GW_HK_CONNECTION : is_name(name, "upgrade") ? GW_HK_UPGRADE : GW_HK_OTHER;
    if (e.name == NULL)
        return gw_conf_error(err, n, "out of memory");
    e.cv = gw_cv_compile(value, msg, sizeof(msg));
    if (e.cv == NULL) {
        free(e.name);
        return gw_conf_error(err, n, "%s", msg);
    }
    if (!gw_cv_has_vars(e.cv)) {
        /* A constant: the whole line is written once, here. */
        gw_cv_free(e.cv);
        e.cv = NULL;
        if (*value && asprintf(&e.line, "%s: %s\r\n", name, value) < 0) {
            free(e.name);
            return gw_conf_error(err, n, "out of memory");
        }
        e.line_len = e.line ? (uint32_t)strlen(e.line) : 0;
    }
    grown = realloc((*lp)->e, ((*lp)->n + 1) * sizeof(*grown));
    if (grown == NULL) {
        entry_free(&e);
        return gw_conf_error(err, n, "out of memory");
    }
    (*lp)->e = grown;
    (*lp)->e[(*lp)->n++] = e;
    return 0;
}

/* proxy_set_header NAME VALUE */
static int set_proxy_set_header(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                                gw_conf_err_t *err)
{
    gw_hconf_t *hc = hconf_of(conf);

    if (hc == NULL)
        return gw_conf_error(err, n, "out of memory");
    return add_entry(n, &hc->set, &hc->owns, OWN_SET, 0, err);
}

/* add_header NAME VALUE [always] */
static int set_add_header(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                          gw_conf_err_t *err)
{
    gw_hconf_t *hc = hconf_of(conf);

    if (hc == NULL)
        return gw_conf_error(err, n, "out of memory");
    if (n->nargs == 4 && strcmp(n->args[3], "always") != 0)
        return gw_conf_error(err, n, "invalid parameter \"%s\"", n->args[3]);
    return add_entry(n, &hc->add, &hc->owns, OWN_ADD, n->nargs == 4, err);
}

/* proxy_hide_header NAME, proxy_pass_header NAME */
static int set_name_list(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                         gw_conf_err_t *err)
{
    gw_hconf_t *hc = hconf_of(conf);
    int hide = cmd->offset == offsetof(gw_hconf_t, hide);
    gw_hname_set_t **sp = hide ? &hc->hide : &hc->pass;

    if (hc == NULL)
        return gw_conf_error(err, n, "out of memory");
    if (*sp == NULL) {
        *sp = calloc(1, sizeof(**sp));
        if (*sp == NULL)
            return gw_conf_error(err, n, "out of memory");
        hc->owns |= hide ? OWN_HIDE : OWN_PASS;
    }
    if (name_add(*sp, n->args[1], strlen(n->args[1])) < 0)
        return gw_conf_error(err, n, "out of memory");
    return 0;
}

static int set_http_version(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                            gw_conf_err_t *err)
{
    gw_hconf_t *hc = hconf_of(conf);

    if (hc == NULL)
        return gw_conf_error(err, n, "out of memory");
    if (hc->http_version != GW_CONF_UNSET_INT)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (strcmp(n->args[1], "1.0") == 0)
        hc->http_version = 0;
    else if (strcmp(n->args[1], "1.1") == 0)
        hc->http_version = 1;
    else
        return gw_conf_error(err, n, "invalid value \"%s\"", n->args[1]);
    return 0;
}

/* server_tokens on | off | build ("build" names no build here: the same as on) */
static int set_server_tokens(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                             gw_conf_err_t *err)
{
    gw_hconf_t *hc = hconf_of(conf);

    if (hc == NULL)
        return gw_conf_error(err, n, "out of memory");
    if (hc->server_tokens != GW_CONF_UNSET_INT)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (strcmp(n->args[1], "on") == 0 || strcmp(n->args[1], "build") == 0)
        hc->server_tokens = 1;
    else if (strcmp(n->args[1], "off") == 0)
        hc->server_tokens = 0;
    else
        return gw_conf_error(err, n, "invalid value \"%s\"", n->args[1]);
    return 0;
}

/* expires TIME | epoch | max | off (TIME may be negative; "modified" and "@" are not supported) */
static int set_expires(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                       gw_conf_err_t *err)
{
    gw_hconf_t *hc = hconf_of(conf);
    const char *v = n->args[n->nargs - 1];
    uint64_t ms;

    if (hc == NULL)
        return gw_conf_error(err, n, "out of memory");
    if (hc->expires != GW_EXPIRES_UNSET)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (n->nargs == 3 || v[0] == '@')
        return gw_conf_error(err, n, "\"expires %s\" is not supported yet", n->nargs == 3 ? n->args[1] : "@time");
    if (strcmp(v, "off") == 0) {
        hc->expires = GW_EXPIRES_OFF;
    } else if (strcmp(v, "epoch") == 0) {
        hc->expires = GW_EXPIRES_EPOCH;
    } else if (strcmp(v, "max") == 0) {
        hc->expires = GW_EXPIRES_MAX;
    } else {
        int neg = v[0] == '-';

        if (gw_conf_parse_msec(v + neg, &ms) < 0)
            return gw_conf_error(err, n, "invalid value \"%s\"", v);
        hc->expires = GW_EXPIRES_TIME;
        hc->expires_sec = (int64_t)(ms / 1000) * (neg ? -1 : 1);
    }
    return 0;
}

static int set_flag(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_hconf_t *hc = hconf_of(conf);

    if (hc == NULL)
        return gw_conf_error(err, n, "out of memory");
    return gw_conf_set_flag_slot(n, cmd, hc, user, err);
}

/* proxy_redirect default | off | REDIRECT REPLACEMENT (a level's rules replace the inherited ones) */
static int set_proxy_redirect(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                              gw_conf_err_t *err)
{
    gw_hconf_t *hc = hconf_of(conf);
    gw_redirect_t r = {0}, *grown;
    int off = n->nargs == 2 && strcmp(n->args[1], "off") == 0;
    char msg[256];

    if (hc == NULL)
        return gw_conf_error(err, n, "out of memory");
    if (n->nargs == 2 && !off && strcmp(n->args[1], "false") != 0 && strcmp(n->args[1], "default") != 0)
        return gw_conf_error(err, n, "invalid parameter \"%s\"", n->args[1]);
    if (hc->redirect == NULL) {
        hc->redirect = calloc(1, sizeof(*hc->redirect));
        if (hc->redirect == NULL)
            return gw_conf_error(err, n, "out of memory");
        hc->owns |= OWN_REDIRECT;
    }
    if (off || strcmp(n->args[1], "false") == 0)
        return 0; /* no rule added: an empty list */
    if (n->nargs == 3) {
        if (n->args[1][0] == '~')
            return gw_conf_error(err, n, "regular expressions in \"proxy_redirect\" are not supported yet");
        r.from = strdup(n->args[1]);
        if (r.from == NULL)
            return gw_conf_error(err, n, "out of memory");
        r.from_len = (uint32_t)strlen(r.from);
        r.own_from = 1;
        r.to = gw_cv_compile(n->args[2], msg, sizeof(msg));
        if (r.to == NULL) {
            free(r.from);
            return gw_conf_error(err, n, "%s", msg);
        }
        if (!gw_cv_has_vars(r.to)) {
            gw_cv_free(r.to);
            r.to = NULL;
            r.to_text = strdup(n->args[2]);
            r.to_len = (uint32_t)strlen(n->args[2]);
            if (r.to_text == NULL) {
                free(r.from);
                return gw_conf_error(err, n, "out of memory");
            }
        }
    }
    grown = realloc(hc->redirect->v, (hc->redirect->n + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(r.from);
        gw_cv_free(r.to);
        free((char *)r.to_text);
        return gw_conf_error(err, n, "out of memory");
    }
    hc->redirect->v = grown;
    hc->redirect->v[hc->redirect->n++] = r;
    return 0;
}

static void redirects_free(gw_redirects_t *l)
{
    for (uint32_t i = 0; l && i < l->n; i++) {
        free(l->v[i].from);
        gw_cv_free(l->v[i].to);
        free((char *)l->v[i].to_text);
    }
    if (l)
        free(l->v);
    free(l);
}

#define HSL (GW_CONF_HTTP | GW_CONF_SERVER | GW_CONF_LOCATION)
#define HS (GW_CONF_HTTP | GW_CONF_SERVER)
#define HC(field) offsetof(gw_hconf_t, field)

static const gw_conf_cmd_t cmds[] = {
    {"proxy_set_header", HSL, GW_CONF_TAKE2, set_proxy_set_header, 0},
    {"proxy_hide_header", HSL, GW_CONF_TAKE1, set_name_list, HC(hide)},
    {"proxy_pass_header", HSL, GW_CONF_TAKE1, set_name_list, HC(pass)},
    {"proxy_http_version", HSL, GW_CONF_TAKE1, set_http_version, 0},
    {"proxy_redirect", HSL, GW_CONF_TAKE12, set_proxy_redirect, 0},
    {"add_header", HSL, GW_CONF_TAKE2 | GW_CONF_TAKE3, set_add_header, 0},
    {"server_tokens", HSL, GW_CONF_TAKE1, set_server_tokens, 0},
    {"expires", HSL, GW_CONF_TAKE12, set_expires, 0},
    {"underscores_in_headers", HS, GW_CONF_FLAG, set_flag, HC(underscores)},
    {"ignore_invalid_headers", HS, GW_CONF_FLAG, set_flag, HC(ignore_invalid)},
    {NULL, 0, 0, NULL, 0},
};

/* ---- merging and compiling ---- */

static void merge(gw_hconf_t *c, const gw_hconf_t *p)
{
    if (c->set == NULL)
        c->set = p->set;
    if (c->add == NULL)
        c->add = p->add;
    if (c->hide == NULL)
        c->hide = p->hide;
    if (c->pass == NULL)
        c->pass = p->pass;
    if (c->redirect == NULL)
        c->redirect = p->redirect;
    if (c->http_version == GW_CONF_UNSET_INT)
        c->http_version = p->http_version;
    if (c->server_tokens == GW_CONF_UNSET_INT)
        c->server_tokens = p->server_tokens;
    if (c->underscores == GW_CONF_UNSET_INT)
        c->underscores = p->underscores;
    if (c->ignore_invalid == GW_CONF_UNSET_INT)
        c->ignore_invalid = p->ignore_invalid;
    if (c->expires == GW_EXPIRES_UNSET) {
        c->expires = p->expires;
        c->expires_sec = p->expires_sec;
    }
}

static int push_up(gw_hconf_t *hc, const gw_hentry_t *e)
{
    gw_hentry_t *grown = realloc(hc->up, (hc->nup + 1) * sizeof(*grown));

    if (grown == NULL)
        return -1;
    hc->up = grown;
    hc->up[hc->nup++] = *e; /* shares the name, line and cv of the configured entry */
    hc->up_const_len += e->line_len;
    return 0;
}

/*
 * The upstream list of a location: its proxy_set_header lines in order, then
 * nginx's defaults it did not override (Host $proxy_host, Connection close;
 * and TE, Keep-Alive, Expect, Upgrade set to "": removed). The framing
 * headers stay the request's: the body is streamed as it came, so a
 * Content-Length or Transfer-Encoding from the configuration would lie.
 */
static int compile_upstream(gw_hconf_t *hc, const gw_http_loc_t *loc)
{
    static const gw_hentry_t host = {.name = (char *)"Host", .name_len = 4, .kind = GW_HK_HOST};
    static const gw_hentry_t conn_close = {.name = (char *)"Connection", .name_len = 10,
                                           .line = (char *)"Connection: close\r\n", .line_len = 19,
                                           .kind = GW_HK_CONNECTION};
    static const char *const removed[] = {"te", "keep-alive", "expect", "upgrade"};
    const gw_hlist_t *set = hc->set;
    gw_hname_set_t names = {0};

    for (uint32_t i = 0; set && i < set->n; i++) {
        const gw_hentry_t *e = &set->e[i];

        if (is_name(e->name, "content-length") || is_name(e->name, "transfer-encoding"))
            continue;
        if (push_up(hc, e) < 0 || name_add(&names, e->name, e->name_len) < 0)
            goto nomem;
    }
    if (!name_in(&names, "host", 4) && (push_up(hc, &host) < 0 || name_add(&names, "host", 4) < 0))
        goto nomem;
    if (!name_in(&names, "connection", 10)) {
        /* With a keepalive pool (and 1.1) the connection is meant to be reused: no close (see the top). */
        if (!(loc->upstream && loc->upstream->keepalive && hc->http_version == 1) && push_up(hc, &conn_close) < 0)
            goto nomem;
        if (name_add(&names, "connection", 10) < 0)
            goto nomem;
    }
    for (size_t i = 0; i < sizeof(removed) / sizeof(removed[0]); i++)
        if (!name_in(&names, removed[i], strlen(removed[i])) && name_add(&names, removed[i], strlen(removed[i])) < 0)
            goto nomem;
    hc->up_skip = names;
    return 0;
nomem:
    names_free(&names);
    return -1;
}

/* Response headers not passed: nginx's defaults and proxy_hide_header, less proxy_pass_header. */
static int compile_response(gw_hconf_t *hc)
{
    static const char *const hidden[] = {"date", "server", "x-pad", "x-accel-expires", "x-accel-redirect",
                                         "x-accel-limit-rate", "x-accel-buffering", "x-accel-charset"};

    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
        if (!name_in(hc->pass, hidden[i], strlen(hidden[i])) && name_add(&hc->rs_hide, hidden[i], strlen(hidden[i])) < 0)
            return -1;
    for (uint32_t i = 0; hc->hide && i < hc->hide->n; i++)
        if (!name_in(hc->pass, hc->hide->v[i].lc, hc->hide->v[i].len) &&
            name_add(&hc->rs_hide, hc->hide->v[i].lc, hc->hide->v[i].len) < 0)
            return -1;
    if (hc->expires > GW_EXPIRES_OFF &&
        (name_add(&hc->rs_expires, "expires", 7) < 0 || name_add(&hc->rs_expires, "cache-control", 13) < 0))
        return -1;
    hc->pass_server = (uint8_t)name_in(hc->pass, "server", 6);
    hc->pass_date = (uint8_t)name_in(hc->pass, "date", 4);
    return 0;
}

static const gw_hconf_t defaults = {
    .http_version = 1, .server_tokens = 1, .underscores = 0, .ignore_invalid = 1, .expires = GW_EXPIRES_OFF,
};

/*
 * A location's proxy_redirect rules, "default" (also nginx's default when
 * none is set) resolved: proxy_pass's URL as written is replaced by the
 * location's name, or, without a URI part, URL/ by "/". Regex and named
 * locations have no default.
 */
static int compile_redirects(gw_hconf_t *hc, const gw_http_loc_t *loc)
{
    static const gw_redirect_t dflt = {0};
    const gw_redirect_t *v = hc->redirect ? hc->redirect->v : &dflt;
    uint32_t n = hc->redirect ? hc->redirect->n : 1;

    hc->rd = calloc(n ? n : 1, sizeof(*hc->rd));
    if (hc->rd == NULL)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        gw_redirect_t r = v[i];

        if (r.from == NULL) {
            if (loc->proxy_pass == NULL || loc->kind == GW_LOC_REGEX || loc->kind == GW_LOC_REGEX_CI ||
                loc->kind == GW_LOC_NAMED)
                continue;
            if (asprintf(&r.from, "%s%s", loc->proxy_pass, loc->proxy_uri ? "" : "/") < 0)
                return -1;
            r.from_len = (uint32_t)strlen(r.from);
            r.to_text = loc->proxy_uri ? loc->match : "/";
            r.to_len = (uint32_t)strlen(r.to_text);
            r.own_from = 2; /* made here: freed with the compiled list */
        } else {
            r.own_from = 0;
        }
        hc->rd[hc->nrd++] = r;
    }
    return 0;
}

/* Merge a level from its parent and compile it; `loc` when the level is a location. */
static int finish(void *level, const gw_hconf_t *parent, const gw_http_loc_t *loc, const char *file,
                  uint32_t line, gw_conf_err_t *err)
{
    gw_hconf_t *hc = hconf_of(level);
    gw_conf_node_t where = {.file = file, .line = line};

    if (hc == NULL)
        return gw_conf_error(err, &where, "out of memory");
    merge(hc, parent ? parent : &defaults);
    if (compile_response(hc) < 0 || (loc && loc->upstream && compile_upstream(hc, loc) < 0) ||
        (loc && loc->upstream && compile_redirects(hc, loc) < 0))
        return gw_conf_error(err, &where, "out of memory");
    return 0;
}

static int init_cycle(gw_cycle_t *cy, gw_conf_err_t *err)
{
    gw_http_conf_t *h = cy->http;

    if (h == NULL)
        return 0;
    if (finish(h, NULL, NULL, "", 0, err) < 0)
        return -1;
    for (uint32_t i = 0; i < h->nsrvs; i++) {
        gw_http_srv_t *s = h->srvs[i];

        if (finish(s, h->hconf, NULL, s->file, s->line, err) < 0)
            return -1;
        /* a nested location inherits from the one around it (listed before it) */
        for (uint32_t k = 0; k < s->nlocs; k++)
            if (finish(s->locs[k], s->locs[k]->parent ? s->locs[k]->parent->hconf : s->hconf, s->locs[k],
                       s->locs[k]->file, s->locs[k]->line, err) < 0)
                return -1;
    }
    return 0;
}

int gw_headers_conf_finish(void *level, const gw_hconf_t *parent, const gw_http_loc_t *loc, gw_conf_err_t *err)
{
    return finish(level, parent, loc, "", 0, err);
}

void gw_headers_conf_free(gw_hconf_t *hc)
{
    if (hc == NULL)
        return;
    if (hc->owns & OWN_SET)
        list_free(hc->set);
    if (hc->owns & OWN_ADD)
        list_free(hc->add);
    if (hc->owns & OWN_HIDE) {
        names_free(hc->hide);
        free(hc->hide);
    }
    if (hc->owns & OWN_PASS) {
        names_free(hc->pass);
        free(hc->pass);
    }
    if (hc->owns & OWN_REDIRECT)
        redirects_free(hc->redirect);
    for (uint32_t i = 0; i < hc->nrd; i++)
        if (hc->rd[i].own_from == 2)
            free(hc->rd[i].from);
    free(hc->rd);
    free(hc->up);
    names_free(&hc->up_skip);
    names_free(&hc->rs_hide);
    names_free(&hc->rs_expires);
    free(hc);
}

/* Runs before the http module's (modules are freed in reverse): the levels still exist. */
static void free_cycle(gw_cycle_t *cy)
{
    gw_http_conf_t *h = cy->http;

    if (h == NULL)
        return;
    for (uint32_t i = 0; i < h->nsrvs; i++) {
        gw_http_srv_t *s = h->srvs[i];

        for (uint32_t k = 0; k < s->nlocs; k++) {
            gw_headers_conf_free(s->locs[k]->hconf);
            s->locs[k]->hconf = NULL;
        }
        gw_headers_conf_free(s->hconf);
        s->hconf = NULL;
    }
    gw_headers_conf_free(h->hconf);
    h->hconf = NULL;
}

const gw_module_t gw_http_headers_module = {
    .name = "http_headers",
    .cmds = cmds,
    .init_cycle = init_cycle,
    .free_cycle = free_cycle,
};
