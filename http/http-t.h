/* Types of the HTTP configuration (see http_conf.c). */
#ifndef GW_HTTP_T_H
#define GW_HTTP_T_H

#include <stdint.h>

#include "balancer/balancer-t.h"
#include "core/addr.h"

struct gw_cv; /* a compiled complex value (vars.h) */

/*
 * Settings allowed at http, server and location level (each directive's
 * table entry says which); a level inherits what it leaves unset, as nginx
 * merges. All times in ms, sizes in bytes, GW_CONF_UNSET_* until merged.
 */
typedef struct gw_http_lconf {
    uint64_t client_max_body_size; /* 0 = unlimited */
    uint64_t keepalive_timeout;    /* 0 = no keep-alive */
    uint64_t keepalive_requests;
    uint64_t client_header_timeout;
    uint64_t client_body_timeout;
    uint64_t send_timeout;
    uint64_t proxy_connect_timeout;
    uint64_t proxy_read_timeout;
    uint64_t proxy_send_timeout;
    uint64_t proxy_next_upstream; /* GW_FT_* mask */
    uint64_t proxy_next_upstream_tries;   /* 0 = no limit */
    uint64_t proxy_next_upstream_timeout; /* ms, 0 = no limit */
    /* observability (conf_obs.c): pointers as integers so merging stays one loop; 0 = none */
    uint64_t obs_handler; /* GW_OBS_PROMETHEUS / GW_OBS_STUB_STATUS (this location answers itself) */
    uint64_t access_log;  /* gw_alog_conf_t *, or 0 (off) */
    uint64_t error_log;   /* gw_log_sink_t *, or 0 (the main error_log) */
    /* limit_req (limit_req.c): the level's list as an integer, 0 = none; status 0 = 503; level + 1, 0 = error */
    uint64_t limit_req;
    uint64_t limit_req_status;
    uint64_t limit_req_log_level;
    uint64_t limit_req_dry_run;
    /* gzip (conf_gzip.c, gzip.c); lists as pointers (gw_gzip_types_t *, gw_gzip_disable_t *), 0 = none */
    uint64_t gzip;              /* 0 off, 1 on */
    uint64_t gzip_types;        /* besides text/html, always compressed */
    uint64_t gzip_min_length;
    uint64_t gzip_comp_level;
    uint64_t gzip_proxied;      /* GW_GZIP_PROXIED_* mask; 0 = off */
    uint64_t gzip_vary;
    uint64_t gzip_http_version; /* the lowest minor version of HTTP/1.x compressed for */
    uint64_t gzip_disable;
} gw_http_lconf_t;

/* Header rewriting settings of one level (headers.h); the same position in
 * every level's struct (after lc and ans), so one setter serves all three. */
typedef struct gw_hconf gw_hconf_t;

/* proxy_next_upstream conditions (nginx's names). */
enum {
    GW_FT_ERROR = 1u << 0,
    GW_FT_TIMEOUT = 1u << 1,
    GW_FT_INVALID_HEADER = 1u << 2,
    GW_FT_HTTP_500 = 1u << 3,
    GW_FT_HTTP_502 = 1u << 4,
    GW_FT_HTTP_503 = 1u << 5,
    GW_FT_HTTP_504 = 1u << 6,
    GW_FT_HTTP_403 = 1u << 7,
    GW_FT_HTTP_404 = 1u << 8,
    GW_FT_HTTP_429 = 1u << 9,
    GW_FT_NON_IDEMPOTENT = 1u << 10,
};

/* An allow/deny rule (access.c): family 0 is "all". */
typedef struct gw_access_rule {
    uint8_t family; /* AF_INET, AF_INET6, or 0 for "all" */
    uint8_t deny;
    uint8_t addr[16]; /* network, already masked */
    uint8_t mask[16];
} gw_access_rule_t;

/* error_page CODE [=[CODE]] TARGET: one entry per code. */
typedef struct gw_error_page {
    uint16_t status;
    int16_t overwrite;    /* -1: keep the original status; 0 ("="): the target's; else this status */
    struct gw_cv *target; /* URI, @name or URL (may hold variables) */
} gw_error_page_t;

/*
 * What the gateway answers itself (conf_answers.c): return, error_page,
 * root, allow/deny, internal, ... The second member of every level's struct
 * (http conf, server, location), so a directive's setter finds it at the
 * same offset whatever the level. Merged downwards in conf_answers.c.
 */
typedef struct gw_http_ans {
    struct gw_cv *ret_text; /* return's text or URL; NULL: none */
    uint16_t ret_code;      /* 0: no return at this level */
    uint8_t internal;       /* location only */
    uint8_t intercept_errors; /* proxy_intercept_errors: 0 unset, 1 off, 2 on */
    uint8_t own;            /* GW_ANS_OWN_*: what this level allocated (the rest is its parent's) */
    gw_error_page_t *error_pages; /* NULL: inherited */
    uint32_t nerror_pages;
    gw_access_rule_t *rules; /* NULL: inherited */
    uint32_t nrules;
    char *root; /* NULL: inherited ("html" in the prefix at the top) */
    uint32_t hdr_buf_n, hdr_buf_size; /* large_client_header_buffers; 0 unset */
} gw_http_ans_t;

enum { GW_ANS_OWN_PAGES = 1, GW_ANS_OWN_RULES = 2, GW_ANS_OWN_ROOT = 4 };

/* How a location matches (nginx's modifiers). */
typedef enum gw_loc_kind {
    GW_LOC_PREFIX,   /* location /x */
    GW_LOC_EXACT,    /* location = /x */
    GW_LOC_NOREGEX,  /* location ^~ /x: a prefix that, when longest, skips the regexes */
    GW_LOC_REGEX,    /* location ~ re */
    GW_LOC_REGEX_CI, /* location ~* re */
    GW_LOC_NAMED,    /* location @name: reached only internally (error_page, ...) */
} gw_loc_kind_t;

typedef struct gw_http_loc gw_http_loc_t;
typedef struct gw_http_srv gw_http_srv_t;
struct gw_regex;

/* The locations directly inside one level (a server or a location), as
 * route.c searches them: static ones sorted by name, regexes in config order. */
typedef struct gw_route_level {
    gw_http_loc_t **statics; /* exact, prefix and ^~, sorted by name (byte order) */
    uint32_t nstatics;
    gw_http_loc_t **regexes; /* ~ and ~*, in config order */
    uint32_t nregexes;
} gw_route_level_t;

struct gw_http_loc {
    gw_http_lconf_t lc;
    gw_http_ans_t ans;
    gw_hconf_t *hconf; /* proxy_set_header, add_header, ... (conf_headers.c) */
    char *match; /* the location's URI, regex or @name as written (without modifier) */
    uint32_t match_len;
    uint8_t exact;            /* location = /x (kind == GW_LOC_EXACT) */
    uint8_t kind;             /* gw_loc_kind_t */
    uint8_t auto_redirect;    /* proxy_pass and a name ending in '/': "/x" answers 301 to "/x/" */
    struct gw_regex *re;      /* kind REGEX / REGEX_CI */
    gw_http_loc_t *parent;    /* the enclosing location, NULL at server level */
    gw_http_srv_t *srv;       /* the server it belongs to */
    gw_route_level_t sub;     /* nested locations */
    char *proxy_pass;         /* as written, resolved in init_cycle */
    gw_upstream_t *upstream;  /* NULL: nothing to proxy to (404) */
    char *proxy_host;         /* nginx's $proxy_host: the Host sent upstream */
    uint32_t proxy_host_len;
    char *proxy_uri;          /* URI part of proxy_pass ("/" in http://b/), NULL if none */
    uint32_t proxy_uri_len;
    const char *file;
    uint32_t line;
    const char *pp_file;      /* where proxy_pass was written */
    uint32_t pp_line;
    uint8_t proxy_https;      /* proxy_pass https://: TLS to the upstream (conf_proxy_ssl.c) */
    struct gw_tls_proxy_conf *proxy_ssl; /* proxy_ssl_* written here; merged and built when proxy_https */
};

typedef struct gw_http_listen_conf {
    gw_addr_t addr;
    int default_server;
    int backlog;
    int reuseport;
    int bind;     /* bind, or reuseport: its own socket even beside a wildcard */
    int options;  /* a socket option was given (nginx: "duplicate listen options") */
    int ssl; /* listen ... ssl (conf_tls.c) */
    const char *file;
    uint32_t line;
} gw_http_listen_conf_t;

struct gw_http_srv {
    gw_http_lconf_t lc;
    gw_http_ans_t ans;
    gw_hconf_t *hconf;
    char **names; /* server_name as written (a regex with its '~'), lower-cased unless a regex */
    uint32_t nnames;
    struct gw_regex **name_re; /* per name: the compiled ~regex, else NULL */
    gw_http_loc_t **locs; /* every location of the server, nested ones too, in config order
                           * (a parent before its children): for merging and freeing */
    uint32_t nlocs;
    gw_route_level_t top; /* the server-level locations, as route.c searches them */
    gw_http_loc_t **named; /* location @name */
    uint32_t nnamed;
    gw_http_listen_conf_t *listens;
    uint32_t nlistens;
    const char *file;
    uint32_t line;
    struct gw_tls_conf *ssl; /* ssl_* settings (conf_tls.c); NULL until one is written */
    struct gw_tls_proxy_conf *proxy_ssl; /* proxy_ssl_* written at server level (conf_proxy_ssl.c) */
};

struct gw_route_names;

/* The servers sharing one listening address: a listen's ctx. */
typedef struct gw_http_addr gw_http_addr_t;
struct gw_http_addr {
    gw_addr_t addr; /* as configured ($server_addr, $server_port) */
    gw_http_srv_t **srvs;
    uint32_t nsrvs;
    gw_http_srv_t *dflt;
    struct gw_route_names *names; /* server_name lookup (route.c) */
    /* A wildcard address whose port also has specific addresses (listen 80 and
     * listen 127.0.0.1:80): only the wildcard is bound, as nginx does, and an
     * accepted connection picks its specific address by getsockname. */
    gw_http_addr_t **specific;
    uint32_t nspecific;
    int backlog;      /* from the listen that set options, else 511 */
    int bind;         /* a listen asked for its own socket (bind, reuseport) */
    int options;      /* options were given once already */
    const char *file; /* the first listen naming it, for bind errors */
    uint32_t line;
    int ssl;              /* some `listen ... ssl` names this address ... */
    const char *ssl_file; /* ... the first one here */
    uint32_t ssl_line;
    struct gw_tls_listen *tls; /* built for it (conf_tls.c) */
};

typedef struct gw_http_conf {
    gw_http_lconf_t lc;
    gw_http_ans_t ans;
    gw_hconf_t *hconf;
    gw_http_srv_t **srvs;
    uint32_t nsrvs;
    gw_http_addr_t **addrs;
    uint32_t naddrs;
    struct gw_limit_reg *limit_req; /* limit_req zones and lists (limit_req.c) */
    struct gw_metrics_conf *metrics; /* per-server and per-peer counters (metrics.c) */
    struct gw_obs_conf *obs;         /* log formats and access logs (accesslog.c) */
    struct gw_tls_conf *ssl; /* http-level ssl_* settings (conf_tls.c) */
    struct gw_tls_proxy_conf *proxy_ssl; /* http-level proxy_ssl_* (conf_proxy_ssl.c) */
} gw_http_conf_t;

#endif
