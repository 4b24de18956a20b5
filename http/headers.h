/*
 * Header rewriting as nginx does it: the request head sent upstream
 * (proxy_set_header, proxy_http_version, nginx's defaults, invalid names
 * dropped) and what is added to or hidden from the response head
 * (proxy_hide_header, proxy_pass_header, add_header, Server, Date).
 *
 * Everything a request needs is compiled at configuration load into its
 * level's gw_hconf_t (conf_headers.c): ordered lists with constant lines
 * pre-rendered and values as compiled complex values, and name sets matched
 * by the hash every header got while it was parsed. Building a head is then
 * one pass over the request's headers and the compiled lists, with no name
 * lookups.
 */
#ifndef GW_HEADERS_H
#define GW_HEADERS_H

#include <stddef.h>
#include <stdint.h>

#include "core/conf-t.h"
#include "request-t.h"
#include "vars.h"

/* A set of header names (lower-cased), matched by hash then by name. */
typedef struct gw_hname {
    char *lc;
    uint32_t len;
    uint32_t hash; /* gw_hdr_hash */
} gw_hname_t;

typedef struct gw_hname_set {
    gw_hname_t *v;
    uint32_t n;
    uint64_t bloom; /* bit (hash & 63) of every member: most names are rejected by one AND */
} gw_hname_set_t;

/* What an entry of the upstream list is, for the few the proxy must know about. */
enum {
    GW_HK_OTHER = 0,
    GW_HK_HOST,       /* nginx's default Host: $proxy_host, written straight from the location */
    GW_HK_CONNECTION, /* a value naming "close" means the upstream connection is not reused */
    GW_HK_UPGRADE,    /* a non-empty value: the request asks the backend to switch protocols */
};

/* One proxy_set_header or add_header line. */
typedef struct gw_hentry {
    char *name; /* as written: sent with this case, as nginx does */
    uint32_t name_len;
    uint32_t hash;
    gw_cv_t *cv;  /* the value when it has variables, else NULL */
    char *line;   /* "Name: value\r\n" for a constant value; NULL when the constant is empty */
    uint32_t line_len;
    uint8_t always; /* add_header ... always */
    uint8_t kind;   /* GW_HK_* */
} gw_hentry_t;

typedef struct gw_hlist {
    gw_hentry_t *e;
    uint32_t n;
} gw_hlist_t;

/* expires: off (or unset), a time from now, epoch, max. */
enum { GW_EXPIRES_UNSET = -1, GW_EXPIRES_OFF = 0, GW_EXPIRES_TIME, GW_EXPIRES_EPOCH, GW_EXPIRES_MAX };

/* One proxy_redirect rule: a Location starting with `from` gets it replaced by `to`. */
typedef struct gw_redirect {
    char *from;        /* NULL in a configured list: "default" (resolved per location) */
    uint32_t from_len;
    gw_cv_t *to;       /* the replacement when it has variables */
    const char *to_text; /* ... else the constant replacement */
    uint32_t to_len;
    uint8_t own_from;  /* a compiled default: `from` was made for it */
} gw_redirect_t;

typedef struct gw_redirects {
    gw_redirect_t *v;
    uint32_t n; /* 0 with off: proxy_redirect off */
} gw_redirects_t;

struct gw_hconf {
    /* As written at this level; NULL or -1 when not, and then inherited
     * whole from the enclosing level (a level that sets any proxy_set_header
     * replaces the inherited list, as nginx does). */
    gw_hlist_t *set;       /* proxy_set_header */
    gw_hlist_t *add;       /* add_header */
    gw_hname_set_t *hide;  /* proxy_hide_header */
    gw_hname_set_t *pass;  /* proxy_pass_header */
    gw_redirects_t *redirect; /* proxy_redirect */
    int http_version;      /* proxy_http_version: the minor version, 0 or 1 */
    int server_tokens;
    int underscores;       /* underscores_in_headers */
    int ignore_invalid;    /* ignore_invalid_headers */
    int expires;           /* GW_EXPIRES_* */
    int64_t expires_sec;   /* GW_EXPIRES_TIME: seconds from now, may be negative */
    uint8_t owns;          /* which of the four lists this level allocated (freed with it) */

    /* Compiled once merged (init_cycle). */
    gw_hentry_t *up;      /* headers sent upstream, in order: proxy_set_header, then nginx's defaults */
    uint32_t nup;
    uint32_t up_const_len; /* bytes of the constant lines among them */
    gw_hname_set_t up_skip; /* request headers not forwarded: named by an entry, or removed by default */
    gw_hname_set_t rs_hide; /* response headers not passed: nginx's defaults and proxy_hide_header, less pass */
    gw_redirect_t *rd;      /* proxy_redirect rules of a location, "default" resolved */
    uint32_t nrd;
    gw_hname_set_t rs_expires; /* with expires: Expires and Cache-Control, replaced by ours */
    uint8_t pass_server;    /* the backend's Server / Date are passed, none of ours is added */
    uint8_t pass_date;
};

/*
 * Merge a level's settings (`level` is a gw_http_conf_t, gw_http_srv_t or
 * gw_http_loc_t; `loc` the same pointer when it is a location, else NULL)
 * from its parent's (NULL: the defaults) and compile them. 0, or -1 with err.
 * conf_headers.c does this for every level at load; unit tests call it.
 */
int gw_headers_conf_finish(void *level, const gw_hconf_t *parent, const gw_http_loc_t *loc, gw_conf_err_t *err);
void gw_headers_conf_free(gw_hconf_t *hc);

/* Is header `h` of a message whose store is `buf` a member of s? (by the hash computed while parsing) */
int gw_hname_has(const gw_hname_set_t *s, const char *buf, const gw_hdr_t *h);

/* The settings that apply to req: its location's, else its server's, else the listen's default server's. */
const gw_hconf_t *gw_headers_conf(const gw_http_req_t *req);

/* Does nginx drop this request header (ignore_invalid_headers, underscores_in_headers of req's server)? */
int gw_headers_ignored(const gw_http_req_t *req, const gw_hdr_t *h);

/* A piece of the upstream request target (request.c computes them: proxy_pass URI rules). */
typedef struct gw_iov {
    const char *p;
    uint32_t n;
} gw_iov_t;

/*
 * The request head for the upstream, malloc'ed (NULL when out of memory):
 * method, the target given as `uri` pieces, proxy_http_version, then the
 * compiled header list, then the request's own headers less hop-by-hop,
 * replaced and invalid ones. Sets req->up_conn_close when the head asks
 * the backend to close and req->up_upgrade when it sends an Upgrade.
 */
char *gw_headers_upstream_head(gw_http_req_t *req, const gw_iov_t *uri, uint32_t nuri, uint32_t *len);

/* Should the response header `h` (of req->out) be passed to the client? */
int gw_headers_pass_response(const gw_http_req_t *req, const gw_hdr_t *h);

/* Room gw_headers_response_own may use. */
#define GW_HEADERS_OWN_MAX 128

/*
 * Our Server and Date lines, which open a response head (as nginx's do),
 * into out (GW_HEADERS_OWN_MAX bytes); returns the length. For a response
 * from the backend (`proxied`), proxy_pass_header Server / Date leaves ours
 * out even when the backend sent none, as nginx does.
 */
size_t gw_headers_response_own(const gw_http_req_t *req, int proxied, char *out);

/*
 * add_header's lines for a response with `status` (those without `always`
 * only for the 2xx/3xx statuses nginx lists), which close a response head:
 * written into out (capacity cap); returns the full length, which may exceed
 * cap (then call again with that much room).
 */
size_t gw_headers_response_added(const gw_http_req_t *req, unsigned status, char *out, size_t cap);

/*
 * proxy_redirect applied to the response's Location (the first one): the
 * rewritten value, malloc'ed, made absolute as nginx does when it starts
 * with '/', and *index the header it replaces; NULL when no rule applies
 * (or out of memory: the header then goes as it came).
 */
char *gw_headers_redirect(const gw_http_req_t *req, uint32_t *index, size_t *len);

/* "Server: gateway/VERSION\r\n" or "Server: gateway\r\n" per server_tokens of req (NULL: on). */
const char *gw_headers_server_line(const gw_http_req_t *req, uint32_t *len);

#endif
