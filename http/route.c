/*
 * Routing (see route.h): pure functions over the configuration, so the
 * unit tests drive them without a worker.
 */
#include "route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Host ---- */

int gw_route_host(const char *h, uint32_t len, char *out, uint32_t size)
{
    enum { USUAL, LITERAL, REST } state = USUAL;
    uint32_t host_len = len, dot_pos = len;

    for (uint32_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)h[i];

        switch (ch) {
        case '.':
            if (i > 0 && dot_pos == i - 1)
                return -1;
            dot_pos = i;
            break;
        case ':':
            if (state == USUAL) {
                host_len = i;
                state = REST;
            }
            break;
        case '[':
            if (i == 0)
                state = LITERAL;
            break;
        case ']':
            if (state == LITERAL) {
                host_len = i + 1;
                state = REST;
            }
            break;
        default:
            if (ch == '/' || ch <= 0x20 || ch == 0x7f)
                return -1;
            break;
        }
    }
    if (host_len > 0 && dot_pos == host_len - 1)
        host_len--;
    if (host_len == 0 || host_len > size)
        return -1;
    for (uint32_t i = 0; i < host_len; i++)
        out[i] = (h[i] >= 'A' && h[i] <= 'Z') ? (char)(h[i] | 0x20) : h[i];
    return (int)host_len;
}

/* ---- server_name ---- */

typedef struct name_ent {
    const char *s; /* exact: the name; head: ".example.com"; tail: "www.example." */
    uint32_t len;
    uint8_t bare; /* head written ".example.com": also matches "example.com" */
    const gw_http_srv_t *srv;
} name_ent_t;

typedef struct re_ent {
    const gw_regex_t *re;
    const gw_http_srv_t *srv;
} re_ent_t;

struct gw_route_names {
    name_ent_t *exact, *head, *tail;
    uint32_t nexact, nhead, ntail;
    re_ent_t *re;
    uint32_t nre;
};

static const name_ent_t *find_name(const name_ent_t *e, uint32_t n, const char *s, uint32_t len)
{
    for (uint32_t i = 0; i < n; i++)
        if (e[i].len == len && memcmp(e[i].s, s, len) == 0)
            return &e[i];
    return NULL;
}

const gw_http_srv_t *gw_route_server(const gw_http_addr_t *a, const char *host, uint32_t len)
{
    const struct gw_route_names *t = a->names;
    const name_ent_t *e, *best = NULL;

    if (t == NULL)
        return a->dflt;
    e = find_name(t->exact, t->nexact, host, len);
    if (e)
        return e->srv;
    for (uint32_t i = 0; i < t->nhead; i++) {
        e = &t->head[i];
        if ((len > e->len && memcmp(host + len - e->len, e->s, e->len) == 0) ||
            (e->bare && len == e->len - 1 && memcmp(host, e->s + 1, len) == 0))
            if (best == NULL || e->len > best->len)
                best = e;
    }
    if (best)
        return best->srv;
    for (uint32_t i = 0; i < t->ntail; i++) {
        e = &t->tail[i];
        if (len > e->len && memcmp(host, e->s, e->len) == 0 && (best == NULL || e->len > best->len))
            best = e;
    }
    if (best)
        return best->srv;
    /* nginx runs the regexes only on a non-empty host */
    for (uint32_t i = 0; len && i < t->nre; i++)
        if (gw_regex_match(t->re[i].re, host, len, NULL) > 0)
            return t->re[i].srv;
    return a->dflt;
}

static int push_name(name_ent_t **arr, uint32_t *n, const char *s, uint32_t len, int bare, const gw_http_srv_t *srv)
{
    name_ent_t *grown;

    if (find_name(*arr, *n, s, len))
        return 0; /* nginx: "conflicting server name ..., ignored": the first server keeps it */
    grown = realloc(*arr, (*n + 1) * sizeof(**arr));
    if (grown == NULL)
        return -1;
    grown[*n] = (name_ent_t){.s = s, .len = len, .bare = (uint8_t)bare, .srv = srv};
    *arr = grown;
    (*n)++;
    return 0;
}

/* One name of a server into the address's table. 0, -1 out of memory, -2 invalid wildcard. */
static int add_name(struct gw_route_names *t, const gw_http_srv_t *s, uint32_t k)
{
    const char *name = s->names[k];
    size_t len = strlen(name);
    const char *star = strchr(name, '*');

    if (s->name_re[k]) {
        re_ent_t *grown = realloc(t->re, (t->nre + 1) * sizeof(*grown));

        if (grown == NULL)
            return -1;
        grown[t->nre++] = (re_ent_t){.re = s->name_re[k], .srv = s};
        t->re = grown;
        return 0;
    }
    if (strstr(name, "..") || (star && strchr(star + 1, '*')))
        return -2;
    if (len > 1 && name[0] == '.')
        return push_name(&t->head, &t->nhead, name, (uint32_t)len, 1, s);
    if (len > 2 && name[0] == '*' && name[1] == '.')
        return push_name(&t->head, &t->nhead, name + 1, (uint32_t)len - 1, 0, s);
    if (len > 2 && name[len - 2] == '.' && name[len - 1] == '*')
        return push_name(&t->tail, &t->ntail, name, (uint32_t)len - 1, 0, s);
    if (star)
        return -2;
    return push_name(&t->exact, &t->nexact, name, (uint32_t)len, 0, s);
}

void gw_route_free_names(gw_http_addr_t *a)
{
    struct gw_route_names *t = a->names;

    if (t == NULL)
        return;
    free(t->exact);
    free(t->head);
    free(t->tail);
    free(t->re);
    free(t);
    a->names = NULL;
}

int gw_route_build_names(gw_http_addr_t *a, char *msg, size_t size)
{
    struct gw_route_names *t;

    /* nginx builds no table for an address with one server (it is the default for every host). */
    if (a->nsrvs < 2)
        return 0;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto nomem;
    a->names = t;
    for (uint32_t i = 0; i < a->nsrvs; i++) {
        const gw_http_srv_t *s = a->srvs[i];

        if (s->nnames == 0 && push_name(&t->exact, &t->nexact, "", 0, 0, s) < 0)
            goto nomem;
        for (uint32_t k = 0; k < s->nnames; k++) {
            int rc = add_name(t, s, k);

            if (rc == -1)
                goto nomem;
            if (rc == -2) {
                char text[64];

                gw_addr_format(&a->addr, text, sizeof(text));
                snprintf(msg, size, "invalid server name or wildcard \"%s\" on %s", s->names[k], text);
                return -1;
            }
        }
    }
    return 0;
nomem:
    snprintf(msg, size, "out of memory");
    return -1;
}

/* ---- URI ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int gw_route_needs_normalize(const char *p, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        if (p[i] == '%' || (p[i] == '/' && i + 1 < len && (p[i + 1] == '/' || p[i + 1] == '.')))
            return 1;
    return 0;
}

int gw_route_normalize(const char *path, uint32_t len, char *out)
{
    uint32_t o = 0, w = 0, pos = 0;
    int trailing = 0;

    /* Decode first: an escaped '/' or '.' counts as one, as in nginx. */
    for (uint32_t i = 0; i < len;) {
        int c = (unsigned char)path[i];

        if (c == '%') {
            int hi = i + 2 < len ? hexval(path[i + 1]) : -1, lo = hi >= 0 ? hexval(path[i + 2]) : -1;

            if (lo < 0 || (hi | lo) == 0)
                return -1;
            c = hi << 4 | lo;
            i += 3;
        } else {
            i++;
        }
        out[o++] = (char)c;
    }
    if (o == 0 || out[0] != '/')
        return (int)o;
    /* Then segment by segment: empty ones merged, "." dropped, ".." pops. */
    while (pos < o) {
        uint32_t start = pos + 1, end = start;

        while (end < o && out[end] != '/')
            end++;
        if (end == start || (end - start == 1 && out[start] == '.')) {
            trailing = 1;
        } else if (end - start == 2 && out[start] == '.' && out[start + 1] == '.') {
            if (w == 0)
                return -1;
            while (out[--w] != '/')
                ;
            trailing = 1;
        } else {
            memmove(out + w, out + pos, end - pos);
            w += end - pos;
            trailing = 0;
        }
        pos = end;
    }
    if (trailing || w == 0)
        out[w++] = '/';
    return (int)w;
}

/* nginx's NGX_ESCAPE_URI set (1.22, probed): controls, space, " # % < > ? \\ ^ ` { | }, DEL and 8-bit bytes. */
static int must_escape(unsigned char c)
{
    return c <= 0x20 || c >= 0x7f || (c < 0x80 && strchr("\"#%<>?\\^`{|}", c) != NULL);
}

size_t gw_route_upstream_uri_size(const gw_http_loc_t *loc, const gw_route_uri_t *u)
{
    if (loc->proxy_uri == NULL)
        return u->raw_len + u->query_len;
    return loc->proxy_uri_len + 3 * (size_t)u->uri_len + u->query_len;
}

char *gw_route_put_upstream_uri(const gw_http_loc_t *loc, const gw_route_uri_t *u, char *p)
{
    static const char hex[] = "0123456789ABCDEF";
    uint32_t skip;

    if (loc->proxy_uri == NULL) {
        memcpy(p, u->raw, u->raw_len);
        p += u->raw_len;
    } else {
        /* The location's name is replaced by the URI part (nginx: only for
         * prefix and exact locations; conf_route.c refuses the others). */
        skip = u->uri_len >= loc->match_len ? loc->match_len : u->uri_len;
        memcpy(p, loc->proxy_uri, loc->proxy_uri_len);
        p += loc->proxy_uri_len;
        for (uint32_t i = skip; i < u->uri_len; i++) {
            unsigned char c = (unsigned char)u->uri[i];

            if (u->quoted && must_escape(c)) {
                *p++ = '%';
                *p++ = hex[c >> 4];
                *p++ = hex[c & 15];
            } else {
                *p++ = (char)c;
            }
        }
    }
    memcpy(p, u->query, u->query_len);
    return p + u->query_len;
}

/* ---- locations ---- */

enum { S_DECLINED, S_OK, S_AGAIN, S_DONE, S_ERROR }; /* nginx's find_location results */

static int find_static(const gw_route_level_t *lv, const char *u, uint32_t len, const gw_http_loc_t **loc)
{
    const gw_http_loc_t *best = NULL, *redirect = NULL;

    for (uint32_t i = 0; i < lv->nstatics; i++) {
        const gw_http_loc_t *l = lv->statics[i];
        uint32_t ml = l->match_len;

        if (l->kind == GW_LOC_EXACT) {
            if (ml == len && memcmp(l->match, u, len) == 0) {
                *loc = l;
                return S_OK;
            }
        } else if (ml <= len && memcmp(l->match, u, ml) == 0 && (best == NULL || ml > best->match_len)) {
            best = l;
        }
        if (l->auto_redirect && ml == len + 1 && memcmp(l->match, u, len) == 0)
            redirect = l;
    }
    /* "/docs" with only "location /docs/": 301, unless a location is named "/docs" itself. */
    if (redirect && !(best && best->match_len == len)) {
        *loc = redirect;
        return S_DONE;
    }
    if (best) {
        *loc = best;
        return S_AGAIN;
    }
    return S_DECLINED;
}

static int find_location(const gw_route_level_t *lv, const char *u, uint32_t len, const gw_http_loc_t **loc,
                         gw_regex_caps_t *caps)
{
    const gw_http_loc_t *l = NULL;
    int noregex = 0, rc = find_static(lv, u, len, &l);

    if (rc != S_DECLINED)
        *loc = l;
    if (rc == S_AGAIN) {
        noregex = l->kind == GW_LOC_NOREGEX;
        rc = find_location(&l->sub, u, len, loc, caps); /* nested locations */
    }
    if (rc == S_OK || rc == S_DONE || rc == S_ERROR)
        return rc;
    for (uint32_t i = 0; !noregex && i < lv->nregexes; i++) {
        int m = gw_regex_match(lv->regexes[i]->re, u, len, caps);

        if (m < 0)
            return S_ERROR;
        if (m > 0) {
            *loc = lv->regexes[i];
            rc = find_location(&lv->regexes[i]->sub, u, len, loc, caps);
            return rc == S_ERROR ? S_ERROR : S_OK;
        }
    }
    return rc;
}

int gw_route_location(const gw_http_srv_t *s, const char *uri, uint32_t len, const gw_http_loc_t **loc,
                      gw_regex_caps_t *caps)
{
    int rc;

    *loc = NULL;
    if (caps)
        caps->n = 0;
    rc = find_location(&s->top, uri, len, loc, caps);
    if (rc == S_ERROR)
        return GW_ROUTE_ERROR;
    if (rc == S_DONE)
        return GW_ROUTE_REDIRECT;
    return *loc ? GW_ROUTE_FOUND : GW_ROUTE_NONE;
}

const gw_http_loc_t *gw_route_named(const gw_http_srv_t *s, const char *name)
{
    for (uint32_t i = 0; i < s->nnamed; i++)
        if (strcmp(s->named[i]->match, name) == 0)
            return s->named[i];
    return NULL;
}

static int cmp_static(const void *a, const void *b)
{
    const gw_http_loc_t *x = *(gw_http_loc_t *const *)a, *y = *(gw_http_loc_t *const *)b;
    int c = strcmp(x->match, y->match);

    if (c)
        return c;
    if ((x->kind == GW_LOC_EXACT) != (y->kind == GW_LOC_EXACT))
        return x->kind == GW_LOC_EXACT ? -1 : 1;
    /* equal: keep config order, so a duplicate is reported at the later one */
    return x->line < y->line ? -1 : x->line > y->line;
}

int gw_route_build_level(gw_route_level_t *lv, gw_http_loc_t **locs, uint32_t n, const gw_http_loc_t *parent,
                         char *msg, size_t size, const gw_http_loc_t **bad)
{
    for (uint32_t i = 0; i < n; i++) {
        gw_http_loc_t *l = locs[i], ***arr;
        uint32_t *cnt;
        gw_http_loc_t **grown;

        if (l->parent != parent || l->kind == GW_LOC_NAMED)
            continue;
        if (l->kind == GW_LOC_REGEX || l->kind == GW_LOC_REGEX_CI) {
            arr = &lv->regexes;
            cnt = &lv->nregexes;
        } else {
            arr = &lv->statics;
            cnt = &lv->nstatics;
        }
        grown = realloc(*arr, (*cnt + 1) * sizeof(*grown));
        if (grown == NULL) {
            snprintf(msg, size, "out of memory");
            *bad = l;
            return -1;
        }
        grown[(*cnt)++] = l;
        *arr = grown;
    }
    if (lv->nstatics)
        qsort(lv->statics, lv->nstatics, sizeof(*lv->statics), cmp_static);
    for (uint32_t i = 1; i < lv->nstatics; i++) {
        const gw_http_loc_t *x = lv->statics[i - 1], *y = lv->statics[i];

        if (strcmp(x->match, y->match) == 0 && (x->kind == GW_LOC_EXACT) == (y->kind == GW_LOC_EXACT)) {
            snprintf(msg, size, "duplicate location \"%s\"", y->match);
            *bad = y;
            return -1;
        }
    }
    return 0;
}
